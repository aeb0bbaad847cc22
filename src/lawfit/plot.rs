//! The Real-vs-Pred picture of a fit of any law.

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::data::{Check, Schedules, Selector, Table};
use crate::law::parse::SCHEDULE;
use crate::law::CompiledLaw;
use crate::report::{format_count, title_r2, LawFitReport, Panel, PlotOptions, DEFAULT_TITLE};
use crate::stats::central;

/// The Real-vs-Pred picture of a law fit over the rows of `table` (the
/// fitted CSV, or the pred.csv written beside fit.json): one panel per
/// curve, x along the law's axis (else the variable with the most distinct
/// values), panels placed in columns and rows by the two per-curve
/// variables that vary most, each with its values in its title.
///
/// With `schedules` (a law that sums along the steps, drawn along its
/// step variable), each panel carries its run's learning rate from step 0
/// to its last, drawn under its curve.
pub fn panels(
    law: &CompiledLaw,
    axis: Option<&str>,
    r: &LawFitReport,
    table: &Table,
    schedules: Option<&Schedules>,
) -> anyhow::Result<(Vec<Panel>, PlotOptions)> {
    let held: Vec<bool> = match (table.find("set"), &r.test) {
        (Some(c), _) => table.columns[c].iter().map(|s| s == "test").collect(),
        (None, Some(t)) => {
            let sel = Selector::parse(&t.selector).map_err(|e| anyhow::anyhow!(e))?;
            // Rows without the column (runs the fit never saw) are
            // neither fitted nor held out: drawn unmarked.
            match table.lookup(&sel.column)? {
                Some(_) => sel.rows(table)?,
                None => vec![false; table.rows()],
            }
        }
        (None, None) => vec![false; table.rows()],
    };
    // Rows without their predictions (not pred.csv) of a law that sums
    // along the steps read each run's schedule from `schedules`.
    let with_handles;
    let reads = law.variables.iter().any(|v| v == SCHEDULE);
    let column = r.variables.get(SCHEDULE).map_or(SCHEDULE, String::as_str);
    let bare = reads && table.find("pred").is_none() && table.lookup(column)?.is_none();
    let table = match schedules {
        Some(s) if !reads => anyhow::bail!(
            "{}: the law sums along no steps, so it reads no schedule (leave out --schedule)",
            s.path.display()
        ),
        None if bare => anyhow::bail!(
            "{}: the law sums along its runs' steps: give the runs' schedules (--schedule \
             FILE), or draw the pred.csv its fit wrote",
            table.path.display()
        ),
        Some(s) if bare => {
            let mut t = table.clone();
            super::schedule::attach_checked(&mut t, s, law, &r.variables)?;
            with_handles = t;
            &with_handles
        }
        _ => table,
    };
    let (panels, mut opts) = draw(law, axis, &r.variables, &r.by, r, &held, table, schedules)?;
    opts.title = Some(title(r, &panels));
    Ok((panels, opts))
}

/// The picture's title: the law and its R². Rows other than the fit's
/// (runs it never saw) are scored themselves, beside the fit's R², which
/// says nothing about them.
fn title(r: &LawFitReport, panels: &[Panel]) -> String {
    let (mut y, mut q) = (Vec::new(), Vec::new());
    for p in panels {
        for ((&l, &x), &held) in p.loss.iter().zip(&p.pred).zip(&p.held_out) {
            if !held && x.is_finite() {
                y.push(l);
                q.push(x);
            }
        }
    }
    let here = crate::report::SetMetrics::new(&y, &q).r2;
    let fit = r.metrics.r2;
    let same = (here - fit).abs() <= 5e-5 || (here.is_nan() && fit.is_nan());
    let (mut title, fits) = if y.is_empty() || same {
        (
            format!("{DEFAULT_TITLE} · {} law · R² = {}", r.law, title_r2(fit)),
            "",
        )
    } else {
        (
            format!(
                "{DEFAULT_TITLE} · {} law · R² = {} here (the fit's {})",
                r.law,
                title_r2(here),
                title_r2(fit)
            ),
            "the fit's ",
        )
    };
    if let Some(t) = &r.test {
        title.push_str(&format!(" · {fits}test R² = {}", title_r2(t.metrics.r2)));
    }
    title
}

/// The picture of one eval fold: `params` on every row, `held` marked.
pub fn fold_panels(
    b: &super::BoundLaw,
    table: &Table,
    params: &IndexMap<String, f64>,
    held: &[bool],
) -> anyhow::Result<(Vec<Panel>, PlotOptions)> {
    let r = LawFitReport {
        params: params.clone(),
        ..super::empty_report(b)
    };
    draw(
        &b.law,
        b.file.axis.as_deref(),
        &b.file.variables,
        &[],
        &r,
        held,
        table,
        None,
    )
}

/// Panels of `table`'s rows with the parameters of `r` (its groups' by the
/// `by` columns), `held` rows marked, each with its run's learning rate
/// from `schedules` where the panels run along a step variable of the
/// law's sums; the options without a title.
#[allow(clippy::too_many_arguments)]
fn draw(
    law: &CompiledLaw,
    axis: Option<&str>,
    variables: &IndexMap<String, String>,
    by: &[String],
    r: &LawFitReport,
    held: &[bool],
    table: &Table,
    schedules: Option<&Schedules>,
) -> anyhow::Result<(Vec<Panel>, PlotOptions)> {
    let mut vars = Vec::new();
    let mut var_cols = Vec::new();
    // pred.csv leaves out the schedule handles a fit along the steps reads
    // (they mean nothing to another process): its curves are its runs,
    // its predictions the ones written.
    let written = law.sums_steps() && table.find("pred").is_some();
    for v in &law.variables {
        let col = variables.get(v).map_or(v.as_str(), String::as_str);
        if v == crate::law::parse::SCHEDULE && written && table.lookup(col)?.is_none() {
            vars.push(vec![0.0; table.rows()]);
            var_cols.push(usize::MAX);
            continue;
        }
        let c = table.require(col, &format!("variable {v}"))?;
        vars.push(table.numbers(c, Check::Finite)?);
        var_cols.push(c);
    }
    let loss = table.numbers(table.require("loss", "the loss")?, Check::Finite)?;
    let rows = table.rows();
    // Parameters of every row: its group's, or the fit's.
    let by_cols: Vec<usize> = by
        .iter()
        .map(|b| table.require(b, "a --by column of the fit"))
        .collect::<Result<_, _>>()?;
    let key_of = |row: usize| -> Vec<String> {
        by_cols
            .iter()
            .map(|&c| table.columns[c][row].to_string())
            .collect()
    };
    let param_vec = |m: &IndexMap<String, f64>| -> Vec<f64> {
        law.params
            .iter()
            .map(|n| m.get(n).copied().unwrap_or(f64::NAN))
            .collect()
    };
    let group_params: HashMap<Vec<String>, Vec<f64>> = r
        .groups
        .iter()
        .map(|g| {
            let key = g.key.values().map(|v| crate::data::cell_key(v)).collect();
            (key, param_vec(&g.params))
        })
        .collect();
    let top = param_vec(&r.params);
    let nv = vars.len();
    let distinct = |v: usize| {
        let mut d: Vec<u64> = vars[v].iter().map(|x| x.to_bits()).collect();
        d.sort_unstable();
        d.dedup();
        d.len()
    };
    let x = axis
        .and_then(|a| law.variables.iter().position(|v| v == a))
        .or_else(|| (0..nv).max_by_key(|&v| distinct(v)))
        .unwrap_or(0);
    // A bootstrapped fit (not one per --by group) draws its prediction
    // band: the first scheme with replicates, curves before points.
    let band = match (&r.bootstrap, r.groups.is_empty()) {
        (Some(b), true) => b
            .resamples
            .iter()
            .find(|rs| rs.samples.len() >= 2)
            .map(|rs| (rs.samples.as_slice(), b.level, rs.kind.as_str())),
        _ => None,
    };
    let schedule = law
        .variables
        .iter()
        .position(|v| v == crate::law::parse::SCHEDULE);
    // A law that sums along the steps reads its runs' schedules, which
    // were registered by the process that fitted it: drawn from pred.csv,
    // its prediction is the one written there, without a band.
    let stored = if law.sums_steps() {
        match table.find("pred") {
            Some(c) => Some(table.numbers(c, Check::Finite)?),
            None if schedule
                .is_some_and(|v| vars[v].iter().all(|&h| crate::law::steps::known_run(h))) =>
            {
                None
            }
            None => anyhow::bail!(
                "the law sums along its runs' steps: draw it from the pred.csv its fit wrote, \
                 or give the runs' schedules (--schedule FILE)"
            ),
        }
    } else {
        None
    };
    let band = if stored.is_some() { None } else { band };
    let band_label = band.map(|(_, level, kind)| format!("{}% band ({kind})", 100.0 * level));
    let band = band.map(|(s, level, _)| (s, level));
    let run = table.find("run");
    // A curve's run's learning rate, (step, lr) from step 0 to its last,
    // where x is a step variable of the law's sums.
    let steps_along_x =
        schedules.filter(|_| super::schedule::step_vars(law).iter().any(|&(v, _)| v == x));
    let lr_of = |first: usize, c: &[usize]| -> Vec<(f64, f64)> {
        let Some(s) = steps_along_x else {
            return Vec::new();
        };
        let name = run.map_or("", |rc| &table.columns[rc][first]);
        let Some(i) = s.run_index(name) else {
            return Vec::new();
        };
        let lr = &s.runs[i].lr;
        let last = c.iter().map(|&row| vars[x][row]).fold(0.0f64, f64::max);
        let end = (last as usize).min(lr.len().saturating_sub(1));
        (0..=end).map(|k| (k as f64, lr[k])).collect()
    };
    // Curves: rows with equal run, group, values of all but x and columns
    // that split curves, as the fit made them.
    let split = super::split_columns(table, &vars, &var_cols, x);
    let mut curves: Vec<Vec<usize>> = Vec::new();
    // (group key, run, bits of the other variables' values, split columns)
    type CurveKey = (Vec<String>, Option<String>, Vec<u64>, Vec<String>);
    let mut index: HashMap<CurveKey, usize> = HashMap::new();
    let others: Vec<&Vec<f64>> = (0..nv).filter(|&v| v != x).map(|v| &vars[v]).collect();
    for row in 0..rows {
        let k = (
            key_of(row),
            run.map(|c| table.columns[c][row].to_string()),
            others.iter().map(|col| col[row].to_bits()).collect(),
            split
                .iter()
                .map(|&c| table.columns[c][row].to_string())
                .collect(),
        );
        let ci = *index.entry(k).or_insert_with(|| {
            curves.push(Vec::new());
            curves.len() - 1
        });
        curves[ci].push(row);
    }
    for c in &mut curves {
        c.sort_by(|&a, &b| vars[x][a].total_cmp(&vars[x][b]));
    }
    // Per-curve variables that vary across curves, most values first (a
    // run's schedule is a handle, not a value: the run's name says it).
    let mut per_curve: Vec<usize> = (0..nv)
        .filter(|&v| v != x && distinct(v) > 1 && Some(v) != schedule)
        .collect();
    per_curve.sort_by_key(|&v| std::cmp::Reverse(distinct(v)));
    // Panels in order of those variables' values (groups and runs keep
    // their order of appearance).
    curves.sort_by(|a, b| {
        per_curve
            .iter()
            .rev()
            .map(|&v| vars[v][a[0]].total_cmp(&vars[v][b[0]]))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    // A run's name adds nothing to a label where the curves' values of
    // the per-curve variables and split columns tell them apart.
    let values_tell_apart = !per_curve.is_empty() && {
        let mut seen = std::collections::HashSet::new();
        curves.iter().all(|c| {
            let r = c[0];
            let vals: Vec<u64> = per_curve.iter().map(|&v| vars[v][r].to_bits()).collect();
            let cells: Vec<&str> = split.iter().map(|&s| &table.columns[s][r]).collect();
            seen.insert((vals, cells))
        })
    };
    let wrap = per_curve.is_empty() || (per_curve.len() == 1 && distinct(per_curve[0]) > 8);
    let cols_wrap = (curves.len() as f64).sqrt().ceil().max(1.0) as usize;
    let mut panels = Vec::with_capacity(curves.len());
    let mut point = vec![0.0; nv];
    for (ci, c) in curves.iter().enumerate() {
        let first = c[0];
        let params = if by_cols.is_empty() {
            &top
        } else {
            // Matched by value, as the fit grouped them (1e3 is 1000).
            let key: Vec<String> = key_of(first)
                .iter()
                .map(|v| crate::data::cell_key(v))
                .collect();
            group_params.get(&key).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no group of the fit has {}",
                    table.place(first),
                    key_of(first).join(",")
                )
            })?
        };
        let pred = c
            .iter()
            .map(|&row| match &stored {
                Some(p) => p[row],
                None => {
                    for (v, col) in vars.iter().enumerate() {
                        point[v] = col[row];
                    }
                    law.eval(&point, params)
                }
            })
            .collect();
        // The band: percentiles of the replicates' predictions.
        let band = match band {
            Some((samples, level)) => {
                let mut v = vec![0.0; samples.len()];
                c.iter()
                    .map(|&row| {
                        for (k, col) in vars.iter().enumerate() {
                            point[k] = col[row];
                        }
                        for (x, s) in v.iter_mut().zip(samples) {
                            *x = law.eval(&point, s);
                        }
                        central(&mut v, level)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let mut label: Vec<String> = key_of(first);
        if let Some(rc) = run.filter(|_| by_cols.is_empty() && !values_tell_apart) {
            if !table.columns[rc][first].is_empty() {
                label.push(table.columns[rc][first].to_string());
            }
        }
        // The grid's row variable first, as "T = 4, N = 1.36B".
        for &v in per_curve.iter().rev() {
            label.push(format!(
                "{} = {}",
                law.variables[v],
                format_count(vars[v][first])
            ));
        }
        // A --by column is in the label already (the group's key).
        for &s in split.iter().filter(|s| !by_cols.contains(s)) {
            label.push(format!(
                "{} = {}",
                table.headers[s], &table.columns[s][first]
            ));
        }
        // Nothing tells the curves apart (no run column, no variable
        // constant along them): named by place, never by the wrap's
        // indices as if they were values.
        if label.is_empty() {
            label.push(match curves.len() {
                1 => "all rows".to_string(),
                _ => format!("curve {}", ci + 1),
            });
        }
        let (n, t) = if wrap {
            ((ci % cols_wrap) as f64, (ci / cols_wrap) as f64)
        } else {
            (
                vars[per_curve[0]][first],
                per_curve.get(1).map_or(0.0, |&v| vars[v][first]),
            )
        };
        panels.push(Panel {
            run: label.join(", "),
            n,
            t,
            label: label.join(", "),
            tokens: c.iter().map(|&row| vars[x][row]).collect(),
            loss: c.iter().map(|&row| loss[row]).collect(),
            pred,
            held_out: c.iter().map(|&row| held[row]).collect(),
            band,
            schedule: lr_of(first, c),
        });
    }
    // A linear axis counts in the unit of its largest value; `Auto` makes
    // it logarithmic where it spans decades, when drawn.
    let hi = vars[x].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let x_unit = match hi {
        m if m >= 1e9 => 1e9,
        m if m >= 1e6 => 1e6,
        m if m >= 1e3 => 1e3,
        _ => 1.0,
    };
    let mut opts = PlotOptions {
        x_label: law.variables[x].clone(),
        x_unit,
        ..PlotOptions::default()
    };
    if let Some(l) = band_label {
        opts.band_label = l;
    }
    Ok((panels, opts))
}
