//! Reading a law fit back from its fit.json, and predicting with it.

use anyhow::{bail, Context};
use indexmap::IndexMap;

use crate::data::{cell_key, Schedules, Table};
use crate::law::parse::SCHEDULE;
use crate::law::{CompiledLaw, LawFile};
use crate::report::{BootstrapReport, LawFitReport};

/// A law fit read back from its fit.json.
pub struct LawFit {
    pub report: LawFitReport,
    /// The law compiled with the variables it was fitted with.
    pub law: CompiledLaw,
    pub axis: Option<String>,
    /// The law file, with the variables bound as in the fit.
    pub file: LawFile,
}

impl LawFit {
    /// Give `table` the columns the fit filled with the law's defaults
    /// (T = 1 on a sweep without a T column), where it lacks them.
    pub fn fill_defaults(&self, table: &mut crate::data::Table) -> anyhow::Result<()> {
        super::binding::fill_defaults(&self.file, table, &super::BindOptions::default())
    }
}

/// Read a law fit's fit.json, checking that it has every parameter.
pub fn read_law_fit(path: &std::path::Path) -> anyhow::Result<LawFit> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    law_fit(&text, &path.display().to_string())
}

/// A law fit from the text of its fit.json; `origin` names it in messages.
pub fn law_fit(text: &str, origin: &str) -> anyhow::Result<LawFit> {
    // Files written before every law had one driver are read as fits of
    // the looplm law file.
    let legacy = serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| crate::report::legacy::is_legacy(&v));
    let r: LawFitReport = if legacy {
        crate::report::legacy::upgrade(text)
            .with_context(|| format!("{origin}: not a usable fit"))?
    } else {
        crate::report::parse_json(text)
            .with_context(|| format!("{origin}: not a fit.json of a law fit"))?
    };
    LawFit::from_report(r, origin)
}

impl LawFit {
    /// A law fit from its report, its law compiled and every set of
    /// parameters checked; `origin` names it in messages.
    pub fn from_report(r: LawFitReport, origin: &str) -> anyhow::Result<LawFit> {
        let law_origin = format!("{origin} (law_file)");
        let mut file = LawFile::parse(&r.law_file, &law_origin)?;
        file.variables = r.variables.clone();
        let law = file.compile(&law_origin)?;
        validate(&r, &law, &file).with_context(|| format!("{origin}: not a usable fit"))?;
        Ok(LawFit {
            report: r,
            law,
            axis: file.axis.clone(),
            file,
        })
    }
}

/// Everything a reader of a law fit relies on, as strictly as a built-in
/// law's fit.json is checked: the law file is the fitted one, every set of
/// parameters is complete and finite, group keys are distinct, and the
/// bootstrap samples are what bands are computed from. Errors name the
/// field.
fn validate(r: &LawFitReport, law: &CompiledLaw, file: &LawFile) -> anyhow::Result<()> {
    let formula = &file.formula;
    if formula.trim() != r.formula.trim() {
        bail!(
            "law_file has the formula '{}' but formula says the fit was of '{}': the two \
             must agree (was the law_file edited?)",
            formula.trim(),
            r.formula.trim()
        );
    }
    let params = |field: &str, params: &IndexMap<String, f64>| -> anyhow::Result<()> {
        for name in &law.params {
            let v = match params.get(name) {
                Some(&v) if v.is_finite() => v,
                Some(_) => bail!("{field}.{name} is not finite (null, NaN or infinite)"),
                None => bail!("{field}.{name} is missing"),
            };
            // Outside the law file's declarations by more than rounding:
            // no fit ends there, an edit does.
            if let Some(d) = file.params.get(name) {
                let slack = |b: f64| 1e-9 * b.abs().max(1.0);
                let low = d.lower.is_some_and(|lo| v < lo - slack(lo));
                let high = d.upper.is_some_and(|hi| v > hi + slack(hi));
                let sign = d.positive == Some(true) && v < 0.0;
                if low || high || sign {
                    bail!(
                        "{field}.{name} = {v}: {} (was fit.json edited?)",
                        d.allows(v).err().unwrap_or_default()
                    );
                }
            }
        }
        if let Some(extra) = params.keys().find(|k| !law.params.contains(k)) {
            bail!(
                "{field}.{extra}: the law has no such parameter (its parameters: {})",
                law.params.join(", ")
            );
        }
        Ok(())
    };
    if let Some(f) = r.fixed.iter().find(|f| !law.params.contains(f)) {
        bail!("fixed names {f}, which is not a parameter of the law");
    }
    let n = law.params.len();
    if r.groups.is_empty() {
        params("params", &r.params)?;
        if let Some(b) = &r.bootstrap {
            crate::report::validate_bootstrap(b, "bootstrap", n)?;
        }
        return Ok(());
    }
    if !r.params.is_empty() {
        bail!("params is set although the fit has groups, which hold their own");
    }
    let mut keys: Vec<Vec<&String>> = Vec::new();
    for (i, g) in r.groups.iter().enumerate() {
        let field = format!("groups[{i}]");
        if !g.key.keys().eq(r.by.iter()) {
            bail!(
                "{field}.key has the columns {:?}, not those of by ({:?})",
                g.key.keys().collect::<Vec<_>>(),
                r.by
            );
        }
        let key: Vec<&String> = g.key.values().collect();
        if let Some(j) = keys.iter().position(|k| *k == key) {
            bail!("{field}.key is that of groups[{j}] ({key:?}): each group is listed once");
        }
        keys.push(key);
        params(&format!("{field}.params"), &g.params)?;
        if let Some(b) = &g.bootstrap {
            crate::report::validate_bootstrap(b, &format!("{field}.bootstrap"), n)?;
        }
    }
    Ok(())
}

/// Predictions of a law fit on the product of `at` (variable, values): a
/// header and rows (group key columns first when the fit has groups). The
/// columns are the law's variables named by the data columns they were
/// fitted from (looplm's D is `tokens`), the axis last so that each curve's
/// rows come together; a variable not in `at` that took one value in the
/// fitted rows (T = 1 in a sweep of ordinary models) keeps it. A law that
/// sums along the steps predicts each run of `schedules` (runs never
/// trained included), in a column `run`.
pub fn predict_rows(
    r: &LawFitReport,
    law: &CompiledLaw,
    axis: Option<&str>,
    at: &[(String, Vec<f64>)],
    schedules: Option<&Schedules>,
) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let schedule_var = law.variables.iter().position(|v| v == SCHEDULE);
    if at.iter().any(|(n, _)| n == SCHEDULE) {
        bail!("--at {SCHEDULE}: each run's schedule comes from the schedules given, not a list");
    }
    let mut at = at.to_vec();
    let runs: Vec<(f64, String)> = match (schedule_var, schedules) {
        (Some(_), Some(s)) => {
            let runs: Vec<(f64, String)> = super::schedule_handles(s)
                .into_iter()
                .zip(s.runs.keys())
                .map(|(h, name)| (h as f64, name.clone()))
                .collect();
            at.push((SCHEDULE.into(), runs.iter().map(|r| r.0).collect()));
            runs
        }
        (Some(_), None) => bail!(
            "the law sums along its runs' steps: give the schedules to predict under (run,step,lr)"
        ),
        (None, Some(s)) => bail!(
            "{}: the law sums along no steps, so it reads no schedule",
            s.path.display()
        ),
        (None, None) => Vec::new(),
    };
    // A schedule's handle is shown as its run's name.
    let shown = |v: usize, x: f64| match runs.iter().find(|(h, _)| *h == x) {
        Some((_, name)) if Some(v) == schedule_var => match name.as_str() {
            Schedules::EVERY_RUN => String::new(),
            name => name.to_string(),
        },
        _ => x.to_string(),
    };
    let at = &at[..];
    if let Some(s) = schedules.filter(|_| schedule_var.is_some()) {
        check_steps_at(law, s, at)?;
    }
    if let Some((n, _)) = at.iter().find(|(n, _)| !law.variables.contains(n)) {
        bail!(
            "--at {n}: the law has no variable {n} (its variables: {})",
            law.variables.join(", ")
        );
    }
    for (i, (n, _)) in at.iter().enumerate() {
        if at[..i].iter().any(|(m, _)| m == n) {
            bail!(
                "--at {n} is given twice: give each variable once, with all its values in one \
                 list (e.g. --at {n}=1e9,1e10)"
            );
        }
    }
    // The column order: the law's, the axis moved last.
    let mut order: Vec<usize> = (0..law.variables.len()).collect();
    if let Some(a) = axis.and_then(|a| law.variables.iter().position(|v| v == a)) {
        order.retain(|&v| v != a);
        order.push(a);
    }
    let mut axes = vec![Vec::new(); law.variables.len()];
    for (v, name) in law.variables.iter().enumerate() {
        axes[v] = match at.iter().find(|(n, _)| n == name) {
            Some((_, values)) => values.clone(),
            None => match r.ranges.get(name) {
                Some(&[lo, hi]) if lo == hi => vec![lo],
                _ => bail!("give --at {name}=LIST: {}", fitted_values(r, name)),
            },
        };
    }
    let sets = fit_sets(r, law);
    let kinds = band_kinds(sets.iter().map(|(_, _, b)| *b));
    let total: usize = axes.iter().map(Vec::len).product::<usize>() * sets.len();
    if total > crate::values::MAX_ROWS {
        bail!(
            "{total} rows asked for, more than {}",
            crate::values::MAX_ROWS
        );
    }
    let vars: Vec<String> = order
        .iter()
        .map(|&v| {
            let name = &law.variables[v];
            match Some(v) == schedule_var {
                true => "run".to_string(),
                false => r.variables.get(name).unwrap_or(name).clone(),
            }
        })
        .collect();
    // A group's column that is also a variable's (--by N) is the group's
    // value, not the one predicted at: named apart, so that no two
    // columns share a name.
    let mut header: Vec<String> =
        r.by.iter()
            .map(|b| match vars.contains(b) {
                true => format!("by_{b}"),
                false => b.clone(),
            })
            .collect();
    header.extend(vars);
    header.push("pred".into());
    for k in &kinds {
        header.push(format!("lo_{k}"));
        header.push(format!("hi_{k}"));
    }
    let mut rows = Vec::with_capacity(total);
    let mut point = vec![0.0; axes.len()];
    let mut v = Vec::new();
    for (key, p, boot) in &sets {
        let count: usize = axes.iter().map(Vec::len).product();
        for mut k in 0..count {
            // Last column fastest.
            for &v in order.iter().rev() {
                let values = &axes[v];
                point[v] = values[k % values.len()];
                k /= values.len();
            }
            let mut row = key.clone();
            row.extend(order.iter().map(|&v| shown(v, point[v])));
            row.push(law.eval(&point, p).to_string());
            // The band of each scheme (empty where this fit has no such
            // replicates).
            for kind in &kinds {
                match band(law, &point, *boot, kind, &mut v) {
                    Some((lo, hi)) => row.extend([lo.to_string(), hi.to_string()]),
                    None => row.extend([String::new(), String::new()]),
                }
            }
            rows.push(row);
        }
    }
    Ok((header, rows))
}

/// Every step `at` asks a law's sums to run to: a whole number within
/// each run's schedule (past its end the law has no value).
fn check_steps_at(
    law: &CompiledLaw,
    s: &Schedules,
    at: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    for (v, reach) in super::schedule::step_vars(law) {
        let name = &law.variables[v];
        let Some((_, values)) = at.iter().find(|(n, _)| n == name) else {
            continue;
        };
        whole_steps(name, values)?;
        for &step in values {
            for (run, sched) in &s.runs {
                if step + reach as f64 >= sched.lr.len() as f64 {
                    let run = match run.as_str() {
                        Schedules::EVERY_RUN => "the schedule".to_string(),
                        run => format!("run '{run}'"),
                    };
                    let past = match reach {
                        0 => String::new(),
                        r => format!(
                            " (the law reads {r} step{} past it)",
                            if r == 1 { "" } else { "s" }
                        ),
                    };
                    bail!(
                        "--at {name}: step {step}{past} is past the end of {run} in {} (its last \
                         step is {})",
                        sched.path.display(),
                        sched.lr.len() - 1
                    );
                }
            }
        }
    }
    Ok(())
}

/// Errors unless every value `--at NAME` gives is a step: a whole number,
/// 0 or more.
pub(super) fn whole_steps(name: &str, values: &[f64]) -> anyhow::Result<()> {
    if let Some(step) = values.iter().find(|&&x| !(x >= 0.0 && x.fract() == 0.0)) {
        bail!(
            "--at {name}: {step} is not a step (a whole number, 0 or more); a range \
             START:STOP:COUNT gives whole steps when COUNT - 1 divides STOP - START"
        );
    }
    Ok(())
}

/// (group key, parameters in the law's order, bootstrap) of every fit of
/// a report: the one fit, or each group's.
type Set<'a> = (Vec<String>, Vec<f64>, Option<&'a BootstrapReport>);

fn fit_sets<'a>(r: &'a LawFitReport, law: &CompiledLaw) -> Vec<Set<'a>> {
    if r.groups.is_empty() {
        return vec![(
            Vec::new(),
            law.params.iter().map(|n| r.params[n]).collect(),
            r.bootstrap.as_ref(),
        )];
    }
    r.groups
        .iter()
        .map(|g| {
            let key = g.key.values().cloned().collect();
            let p = law.params.iter().map(|n| g.params[n]).collect();
            (key, p, g.bootstrap.as_ref())
        })
        .collect()
}

/// The band columns' schemes: every scheme any fit was bootstrapped with.
fn band_kinds<'a>(boots: impl Iterator<Item = Option<&'a BootstrapReport>>) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for rs in boots.flatten().flat_map(|b| &b.resamples) {
        if !kinds.contains(&rs.kind) {
            kinds.push(rs.kind.clone());
        }
    }
    kinds
}

/// The band of scheme `kind` at `point`: the central percentile interval
/// of the replicates' predictions; `None` where the fit has fewer than two
/// such replicates. `scratch` is reused between calls.
fn band(
    law: &CompiledLaw,
    point: &[f64],
    boot: Option<&BootstrapReport>,
    kind: &str,
    scratch: &mut Vec<f64>,
) -> Option<(f64, f64)> {
    let b = boot?;
    let rs = b.resamples.iter().find(|rs| rs.kind == kind)?;
    if rs.samples.len() < 2 {
        return None;
    }
    scratch.clear();
    scratch.extend(rs.samples.iter().map(|s| law.eval(point, s)));
    Some(crate::stats::central(scratch, b.level))
}

/// Predictions at the rows of a table, and the bands of every bootstrap
/// scheme (`lo`, `hi` per row; NaN where a row's fit has no such band).
#[derive(Debug, Clone, PartialEq)]
pub struct RowPredictions {
    pub pred: Vec<f64>,
    /// (scheme, lo, hi).
    pub bands: Vec<(String, Vec<f64>, Vec<f64>)>,
}

/// Predictions of a law fit at every row of `table`: each variable read
/// from the column it was fitted from (a default such as T = 1 filled in
/// where the table has no column for it), and with groups, each row
/// predicted by the fit of its group (its values in the `by` columns). A
/// law that sums along the steps reads each row's run's schedule from
/// `schedules` (by the `run` column), every row's step checked against it.
pub fn predict_table(
    fit: &LawFit,
    table: &mut Table,
    schedules: Option<&Schedules>,
) -> anyhow::Result<RowPredictions> {
    let (r, law) = (&fit.report, &fit.law);
    fit.fill_defaults(table)?;
    match (law.variables.iter().any(|v| v == SCHEDULE), schedules) {
        (true, Some(s)) => super::schedule::attach_checked(table, s, law, &r.variables)?,
        (true, None) => bail!(
            "the law sums along its runs' steps: give the runs' schedules (run,step,lr) to \
             predict their rows"
        ),
        (false, Some(s)) => bail!(
            "{}: the law sums along no steps, so it reads no schedule",
            s.path.display()
        ),
        (false, None) => {}
    }
    let mut cols = Vec::with_capacity(law.variables.len());
    for v in &law.variables {
        let name = r.variables.get(v).unwrap_or(v);
        let c = table.require(name, &format!("the law's variable {v}"))?;
        cols.push(table.numbers(c, super::check_of(&fit.file, v))?);
    }
    let sets = fit_sets(r, law);
    // Per row, the fit that predicts it.
    let which: Vec<usize> = if r.groups.is_empty() {
        vec![0; table.rows()]
    } else {
        let mut key_cols = Vec::new();
        for name in &r.by {
            key_cols.push(table.require(name, "a column the fit's groups are keyed by")?);
        }
        let keys: Vec<Vec<String>> = sets
            .iter()
            .map(|(k, _, _)| k.iter().map(|c| cell_key(c)).collect())
            .collect();
        let mut which = Vec::with_capacity(table.rows());
        for row in 0..table.rows() {
            let key: Vec<String> = key_cols
                .iter()
                .map(|&c| cell_key(&table.columns[c][row]))
                .collect();
            let Some(g) = keys.iter().position(|k| *k == key) else {
                let shown: Vec<String> =
                    r.by.iter()
                        .zip(&key_cols)
                        .map(|(n, &c)| format!("{n} = {}", &table.columns[c][row]))
                        .collect();
                bail!(
                    "{}: the fit has no group with {} (it has {} groups)",
                    table.place(row),
                    shown.join(", "),
                    sets.len()
                );
            };
            which.push(g);
        }
        which
    };
    let kinds = band_kinds(sets.iter().map(|(_, _, b)| *b));
    let n = table.rows();
    let mut out = RowPredictions {
        pred: Vec::with_capacity(n),
        bands: kinds
            .iter()
            .map(|k| (k.clone(), Vec::with_capacity(n), Vec::with_capacity(n)))
            .collect(),
    };
    let mut point = vec![0.0; cols.len()];
    let mut scratch = Vec::new();
    for (row, &g) in which.iter().enumerate() {
        for (p, c) in point.iter_mut().zip(&cols) {
            *p = c[row];
        }
        let (_, params, boot) = &sets[g];
        out.pred.push(law.eval(&point, params));
        for (kind, lo, hi) in &mut out.bands {
            let (l, h) =
                band(law, &point, *boot, kind, &mut scratch).unwrap_or((f64::NAN, f64::NAN));
            lo.push(l);
            hi.push(h);
        }
    }
    Ok(out)
}

/// What the fit's rows held of variable `name`, to say when its values
/// must be given: its values per curve (the first 8), else its range.
fn fitted_values(r: &LawFitReport, name: &str) -> String {
    let mut values: Vec<f64> = r
        .metrics
        .per_curve
        .iter()
        .filter_map(|c| c.at.get(name).copied())
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let f = crate::format::format_value;
    if !values.is_empty() {
        let mut listed: Vec<String> = values.iter().take(8).map(|&v| f(v)).collect();
        if values.len() > 8 {
            listed.push("...".into());
        }
        return format!("the fitted curves have {name} = {}", listed.join(", "));
    }
    match r.ranges.get(name) {
        Some(&[lo, hi]) => format!("the fitted rows have {name} from {} to {}", f(lo), f(hi)),
        None => format!(
            "the law's variables are {}",
            r.variables.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Warnings for the `--at` values outside the range a variable had in the
/// fitted rows (extrapolation), one per variable; none for files written
/// before fits recorded their ranges.
pub fn extrapolation_warnings(r: &LawFitReport, at: &[(String, Vec<f64>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, values) in at {
        let Some(&[lo, hi]) = r.ranges.get(name) else {
            continue;
        };
        let outside: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| *v < lo || *v > hi)
            .collect();
        if let Some(far) = outside.iter().copied().max_by(|a, b| {
            (a - lo)
                .abs()
                .max((a - hi).abs())
                .total_cmp(&(b - lo).abs().max((b - hi).abs()))
        }) {
            let f = crate::format::format_value;
            out.push(format!(
                "{} of the {} values of {name} lie outside the fitted range [{}, {}] \
                 (e.g. {}): the law extrapolates there",
                outside.len(),
                values.len(),
                f(lo),
                f(hi),
                f(far)
            ));
        }
    }
    out
}
