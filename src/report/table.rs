//! Plain-text summary of a fit for the terminal.

use crate::format::{format_count, format_value, row_format};
use crate::identify::Identifiability;
use crate::profile::ProfileReport;
use std::fmt::Write;

/// The parameters under a "parameters" line: name, value (with its
/// asymptotic standard error, to the digits the error supports, when the
/// identifiability report is there) and, with a bootstrap, each scheme's
/// standard error and interval; fixed and flagged ones tagged.
fn param_table(
    s: &mut String,
    params: &indexmap::IndexMap<String, f64>,
    fixed: &[String],
    boot: Option<&super::BootstrapReport>,
    ident: Option<&Identifiability>,
    profile: Option<&ProfileReport>,
) {
    s.push_str("\nparameters\n");
    let resamples = boot.map_or(&[][..], |b| &b.resamples[..]);
    let rows: Vec<Vec<String>> = params
        .iter()
        .map(|(name, &v)| {
            let se = ident.and_then(|i| i.standard_errors.get(name));
            let value = match se {
                Some(&se) if se.is_finite() => crate::identify::with_error(v, se),
                Some(_) => format!("{} ± inf", format_value(v)),
                None => format_value(v),
            };
            let mut row = vec![name.clone(), value];
            // The row's interval ends and errors in one style (a standard
            // error of 57194 beside an end of 1.791e6 reads as two scales).
            let profiled = profile.and_then(|p| p.params.get(name));
            let booted: Vec<_> = resamples.iter().map(|rs| rs.params.get(name)).collect();
            let mut numbers: Vec<f64> = profiled.map_or(vec![], |i| vec![i.lo, i.hi]);
            for i in booted.iter().flatten() {
                numbers.extend([i.se, i.lo, i.hi]);
            }
            let fmt = row_format(&numbers);
            if profile.is_some() {
                row.push(match profiled {
                    Some(i) => i.text(&fmt),
                    None => String::new(),
                });
            }
            for i in booted {
                match i {
                    Some(i) => {
                        row.push(fmt(i.se));
                        row.push(format!("[{}, {}]", fmt(i.lo), fmt(i.hi)));
                    }
                    None => row.extend([String::new(), String::new()]),
                }
            }
            let flagged = ident.is_some_and(|i| i.flagged.iter().any(|f| &f.param == name));
            let tag = if fixed.contains(name) {
                "(fixed)"
            } else if flagged {
                "(!)"
            } else {
                ""
            };
            row.push(tag.to_string());
            row
        })
        .collect();
    let mut align = vec![Align::Left, Align::Right];
    let value_head = if ident.is_some() {
        "value ± SE"
    } else {
        "value"
    };
    let mut header: Vec<String> = vec!["param".into(), value_head.into()];
    if let Some(p) = profile {
        header.push(format!("{}% profile", 100.0 * p.level));
        align.push(Align::Right);
    }
    if let Some(b) = boot {
        let pct = format!("{}%", 100.0 * b.level);
        for rs in resamples {
            header.push(format!("SE ({})", rs.kind));
            header.push(format!("{pct} interval ({})", rs.kind));
            align.extend([Align::Right, Align::Right]);
        }
    }
    header.push(String::new());
    align.push(Align::Left);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let with_header = boot.is_some() || ident.is_some() || profile.is_some();
    table(s, with_header.then_some(&header[..]), &rows, &align);
    if let Some(i) = ident {
        identifiability_lines(s, i);
    }
    if let Some(p) = profile {
        for (name, i) in &p.params {
            if !i.open.is_empty() {
                let _ = writeln!(s, "profile of {name}: {}", i.open);
            }
        }
        for n in &p.notes {
            let _ = writeln!(s, "profile: {n}");
        }
    }
    if let Some(b) = boot {
        for rs in resamples {
            let _ = writeln!(
                s,
                "bootstrap ({}): {} replicates, {} converged ({:.0}%), {} with a finite objective used",
                rs.kind,
                rs.replicates,
                rs.converged,
                100.0 * rs.converged_fraction,
                rs.used
            );
        }
        for n in &b.notes {
            let _ = writeln!(s, "bootstrap: {n}");
        }
        let _ = writeln!(s, "bootstrap time: {:.2} s", b.seconds);
    }
}

/// How far the optimum converged, when the fit says.
fn polish_line(s: &mut String, p: Option<&super::PolishReport>) {
    if let Some(p) = p {
        let _ = writeln!(
            s,
            "optimum: grad_norm {:.1e} after {} Gauss-Newton steps{}",
            p.grad_norm,
            p.newton_steps,
            if p.exact {
                " (the fit is exact to rounding)"
            } else if p.saddle.is_some() {
                " (not converged: a saddle, not a minimum)"
            } else if p.converged {
                ""
            } else {
                " (not converged: above 1e-6)"
            }
        );
        if let Some(why) = &p.saddle {
            let _ = writeln!(s, "warning: {why}");
        }
    }
}

/// The identifiability report in a few lines: what (!) means, the
/// condition number and the weakest directions.
fn identifiability_lines(s: &mut String, i: &Identifiability) {
    // Every parameter fixed: nothing was estimated, nothing to say.
    if i.params.is_empty() && i.flagged.is_empty() {
        return;
    }
    for f in &i.flagged {
        let _ = writeln!(s, "(!) {}: {}", f.param, f.reason);
    }
    let condition = if i.condition.is_finite() {
        format!("{:.1e}", i.condition)
    } else {
        "infinite".to_string()
    };
    let _ = writeln!(
        s,
        "SE: asymptotic, rows taken as independent; condition number {condition} (scaled Hessian)"
    );
    for w in &i.weak {
        let _ = writeln!(s, "weakest: {} (eigenvalue {:.1e})", w.text, w.eigenvalue);
    }
}

/// The log-space numbers of a `--space log` fit, under the linear ones.
fn log_line(s: &mut String, log: Option<&super::LogMetrics>, what: &str) {
    if let Some(l) = log {
        let _ = writeln!(
            s,
            "{what} in log space (ln pred vs ln loss): R² {}  RMSE {}",
            format_r2(l.r2),
            format_value(l.rmse)
        );
    }
}

/// R2 is usually close to 1, where significant digits say little; fixed
/// decimals show how close.
pub(super) fn format_r2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "-".to_string()
    }
}

/// "  MAPE 0.45%", or nothing where no MAPE was recorded (older files).
fn mape_part(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("  MAPE {}", format_pct(v))
    }
}

/// The per-curve table of a law fit: each curve's labels (run) and the
/// variables constant along it, then how well it is fitted.
fn curve_table(s: &mut String, curves: &[super::CurveMetrics]) {
    let Some(first) = curves.first() else {
        return;
    };
    s.push_str("\nper curve\n");
    let mut header: Vec<&str> = first.labels.keys().map(String::as_str).collect();
    // A run's schedule is its label already (a handle, not a value).
    let shown_at = |k: &String| k != crate::law::parse::SCHEDULE;
    header.extend(first.at.keys().filter(|k| shown_at(k)).map(String::as_str));
    header.extend(["points", "R2", "RMSE", "MAPE"]);
    // A sweep of hundreds of curves lists them in fit.json, not here.
    let shown = if curves.len() > MAX_CURVE_ROWS {
        MAX_CURVE_ROWS / 2
    } else {
        curves.len()
    };
    let rows: Vec<Vec<String>> = curves[..shown]
        .iter()
        .map(|c| {
            let mut row: Vec<String> = c.labels.values().cloned().collect();
            row.extend(
                c.at.iter()
                    .filter(|(k, _)| shown_at(k))
                    .map(|(_, &v)| format_at(v)),
            );
            row.extend([
                c.points.to_string(),
                format_r2(c.r2),
                format_value(c.rmse),
                format_pct(c.mape),
            ]);
            row
        })
        .collect();
    let mut align = vec![Align::Left; first.labels.len()];
    align.resize(header.len(), Align::Right);
    table(s, Some(&header), &rows, &align);
    if shown < curves.len() {
        let _ = writeln!(
            s,
            "  ... and {} more curves (fit.json: metrics.per_curve)",
            curves.len() - shown
        );
    }
}

/// Curves the per-curve table lists in full.
const MAX_CURVE_ROWS: usize = 40;

/// A variable's value on a curve: integral counts as counts (53M), else as
/// any value.
fn format_at(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() >= 1e4 {
        format_count(v)
    } else {
        format_t(v)
    }
}

pub(super) fn format_pct(v: f64) -> String {
    if v.is_nan() {
        return "-".to_string();
    }
    format!("{}%", format_value(v))
}

/// A score as the tables print it: "-" where there is none (NaN).
pub(super) fn format_score(v: f64) -> String {
    if v.is_nan() {
        "-".to_string()
    } else {
        format_value(v)
    }
}

/// T is a step count: integral values without decimals.
fn format_t(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e9 {
        format!("{}", t as i64)
    } else {
        format_value(t)
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Widest a cell is printed; longer ones (run labels can be any length)
/// are cut with an ellipsis. The files keep them whole.
const MAX_CELL: usize = 48;

/// `cell`, cut to [`MAX_CELL`] characters.
fn clip(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.chars().count() <= MAX_CELL {
        cell.into()
    } else {
        let mut s: String = cell.chars().take(MAX_CELL - 1).collect();
        s.push('…');
        s.into()
    }
}

/// Columns padded to their widest cell, two spaces apart, indented by two.
/// Padding is explicit: `format!`'s width argument is limited to u16.
fn table(out: &mut String, header: Option<&[&str]>, rows: &[Vec<String>], align: &[Align]) {
    let header: Option<Vec<String>> = header.map(|h| h.iter().map(|c| c.to_string()).collect());
    let all: Vec<Vec<std::borrow::Cow<'_, str>>> = header
        .iter()
        .chain(rows.iter())
        .map(|row| row.iter().map(|c| clip(c)).collect())
        .collect();
    let mut width = vec![0; align.len()];
    for row in &all {
        for (w, cell) in width.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in all {
        let mut line = String::from(" ");
        for ((cell, &w), a) in row.iter().zip(&width).zip(align) {
            line.push(' ');
            let pad = " ".repeat(w - cell.chars().count());
            match a {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Summary of a fit of any law: parameters (or one row per `--by` group),
/// fit quality on the fitted and the held-out rows, starts, notes.
pub fn law_summary(r: &super::LawFitReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "law: {} = {}", r.law, r.formula);
    let vars: Vec<String> = r
        .variables
        .iter()
        .map(|(v, c)| {
            if v == c {
                v.clone()
            } else {
                format!("{v} = {c}")
            }
        })
        .collect();
    let _ = writeln!(
        s,
        "variables: {} ({} rows fitted)",
        vars.join(", "),
        r.points
    );
    let fixed = |name: &str| r.fixed.iter().any(|f| f == name);
    if r.groups.is_empty() {
        param_table(
            &mut s,
            &r.params,
            &r.fixed,
            r.bootstrap.as_ref(),
            r.identifiability.as_ref(),
            r.profile.as_ref(),
        );
    } else {
        let _ = writeln!(s, "\n{} groups by {}", r.groups.len(), r.by.join(","));
        let names: Vec<String> = r.groups[0].params.keys().cloned().collect();
        let mut header: Vec<String> = r.by.clone();
        header.extend(names.iter().cloned());
        header.extend(["R² fit".to_string(), "RMSE fit".to_string()]);
        let judged = r.groups.iter().any(|g| g.identifiability.is_some());
        let tested = r.groups.iter().any(|g| g.test.is_some());
        if tested {
            header.extend(["R² test".to_string(), "RMSE test".to_string()]);
        }
        let rows: Vec<Vec<String>> = r
            .groups
            .iter()
            .map(|g| {
                let mut row: Vec<String> = g.key.values().cloned().collect();
                row.extend(g.params.values().map(|&v| format_value(v)));
                row.push(format_r2(g.metrics.r2));
                row.push(format_value(g.metrics.rmse));
                if tested {
                    let t = g.test.clone().unwrap_or_default();
                    row.push(format_r2(if t.points > 0 { t.r2 } else { f64::NAN }));
                    row.push(if t.points > 0 {
                        format_value(t.rmse)
                    } else {
                        "-".into()
                    });
                }
                if judged {
                    let flagged: Vec<&str> = g
                        .identifiability
                        .iter()
                        .flat_map(|i| i.flagged.iter().map(|f| f.param.as_str()))
                        .collect();
                    row.push(flagged.join(","));
                }
                row
            })
            .collect();
        if judged {
            header.push("flagged".to_string());
        }
        let mut align = vec![Align::Left; r.by.len()];
        align.resize(header.len(), Align::Right);
        if judged {
            *align.last_mut().expect("a column") = Align::Left;
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        table(&mut s, Some(&header), &rows, &align);
        if let Some(b) = r.groups.iter().find_map(|g| g.bootstrap.as_ref()) {
            let kinds: Vec<&str> = b.resamples.iter().map(|x| x.kind.as_str()).collect();
            let _ = writeln!(
                s,
                "  bootstrap ({}): {} replicates per group; each group's standard errors and \
                 {}% intervals are in fit.json (groups[].bootstrap)",
                kinds.join(", "),
                b.resamples.first().map_or(0, |x| x.replicates),
                100.0 * b.level
            );
        }
        if judged {
            let _ = writeln!(
                s,
                "  flagged: parameters a group's data do not determine (on a bound, or a 95% \
                 interval wider than half the value); standard errors, correlations and \
                 reasons are in fit.json (groups[].identifiability)"
            );
        }
        let fixed_names: Vec<&String> = names.iter().filter(|n| fixed(n)).collect();
        if !fixed_names.is_empty() {
            let list: Vec<&str> = fixed_names.iter().map(|n| n.as_str()).collect();
            let _ = writeln!(s, "  fixed: {}", list.join(", "));
        }
    }
    let m = &r.metrics;
    let o = &r.objective;
    let delta = if o.loss == "huber" {
        format!(" (delta {})", format_value(o.delta))
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "\nobjective: {}{delta} on {} loss = {:.6e}",
        o.loss, o.space, o.value
    );
    if !r.params.is_empty() && r.fixed.len() == r.params.len() {
        let _ = writeln!(
            s,
            "every parameter fixed (--fix): the objective and scores of the given values"
        );
    } else {
        polish_line(&mut s, r.polish.as_ref());
    }
    let pooled = if r.groups.is_empty() { "" } else { ", pooled" };
    let _ = writeln!(
        s,
        "fit ({} rows{pooled}): R² {}  RMSE {}  MAE {}{}  SSE {}",
        m.points,
        format_r2(m.r2),
        format_value(m.rmse),
        format_value(m.mae),
        mape_part(m.mape),
        format_value(m.sse)
    );
    log_line(&mut s, m.log.as_ref(), "fit");
    curve_table(&mut s, &m.per_curve);
    if let Some(t) = &r.test {
        let m = &t.metrics;
        let _ = writeln!(
            s,
            "test ({}, {} rows{pooled}): R² {}  RMSE {}  MAE {}  SSE {}",
            t.selector,
            m.points,
            format_r2(m.r2),
            format_value(m.rmse),
            format_value(m.mae),
            format_value(m.sse)
        );
        log_line(&mut s, m.log.as_ref(), "test");
        if let Some([r2, rmse, mae, mape, worst]) = super::CurveMetrics::mean(&m.per_curve) {
            let _ = writeln!(
                s,
                "test, mean over its {} curves: R² {}  RMSE {}  MAE {}  MAPE {}  worst {}",
                m.per_curve.len(),
                format_r2(r2),
                format_value(rmse),
                format_value(mae),
                format_pct(mape),
                format_pct(worst)
            );
        }
    }
    let st = &r.starts;
    let statuses: Vec<String> = st
        .status_counts
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let per = if r.groups.is_empty() {
        ""
    } else {
        ", each group's own"
    };
    let _ = writeln!(
        s,
        "starts: {} ({} at best{per}; {}), {} iterations (longest), {} batched evaluations",
        st.count,
        st.at_best,
        statuses.join(", "),
        st.iterations,
        st.evaluations
    );
    if !r.notes.is_empty() {
        s.push_str("notes:\n");
        for n in &r.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    let _ = writeln!(
        s,
        "time: {:.2} s on {} ({})",
        r.seconds, r.backend.kind, r.backend.device
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LawFitReport;
    use serde_json::json;

    /// A looplm fit of 20 curves, as an older fit.json wrote it (read
    /// through the same upgrade as such files).
    fn report() -> LawFitReport {
        let names = [
            "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
        ];
        let values = [
            1.8, 268.0, 0.30, 1.234e9, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5,
        ];
        let params: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(values)
            .map(|(n, v)| (n.to_string(), json!(v)))
            .collect();
        let mut per_config = Vec::new();
        for (i, n) in [53e6, 134e6, 374e6, 778e6, 1.36e9].into_iter().enumerate() {
            for t in 1..=4 {
                per_config.push(json!({
                    "run": format!("looplm-{}", format_count(n)),
                    "N": n, "T": t as f64, "points": 500 + i,
                    "tokens_min": 0.0, "tokens_max": 2e10,
                    "r2": 0.99 - 0.01 * t as f64, "rmse": 0.0201, "mape": 0.5123,
                }));
            }
        }
        let text = json!({
            "law": "looplm",
            "params": params,
            "fixed": ["t3"],
            "objective": {"loss": "huber", "space": "log", "delta": 1e-3, "value": 1.2345e-7},
            "metrics": {"r2": 0.99876, "rmse": 0.0201, "mae": 0.016, "mape": 0.52,
                        "per_config": per_config},
            "starts": {"count": 64, "at_best": 17,
                       "status_counts": {"converged": 60, "max_iterations": 4},
                       "iterations": 412, "evaluations": 530, "start_evaluations": 9000},
            "backend": {"kind": "cpu", "device": "16 threads"},
            "seconds": 1.25,
            "points": 10010,
            "configs": 20,
            "notes": ["t3 fixed at 0.5 by --fix"],
        })
        .to_string();
        crate::report::legacy::upgrade(&text).unwrap()
    }

    fn line_with<'a>(s: &'a str, start: &str) -> &'a str {
        s.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("{start}:\n{s}"))
    }

    #[test]
    fn summary_has_the_key_content() {
        let s = law_summary(&report());
        assert!(s.contains("looplm"));
        assert!(line_with(&s, "t3 ").contains("(fixed)"));
        assert!(!line_with(&s, "t1 ").contains("(fixed)"));
        assert!(line_with(&s, "t1 ").contains("1.234e9"));
        assert!(line_with(&s, "alpha").contains("0.3000"));
        let obj = line_with(&s, "objective");
        assert!(obj.contains("huber") && obj.contains("log") && obj.contains("delta"));
        let fit = line_with(&s, "fit (");
        for k in ["R² 0.9988", "RMSE 0.02010", "MAE 0.01600", "MAPE 0.5200%"] {
            assert!(fit.contains(k), "{fit}");
        }
        // All 20 curves, with compact N.
        let rows: Vec<&str> = s
            .lines()
            .filter(|l| l.trim_start().starts_with("looplm-"))
            .collect();
        assert_eq!(rows.len(), 20);
        assert!(rows.iter().any(|l| l.contains("1.36B")));
        assert!(rows[0].contains("53M"));
        let starts = line_with(&s, "starts");
        assert!(
            starts.contains("64") && starts.contains("17 at best"),
            "{starts}"
        );
        assert!(
            starts.contains("60 converged") && starts.contains("4 max_iterations"),
            "{starts}"
        );
        assert!(s.contains("t3 fixed at 0.5 by --fix"));
        let time = line_with(&s, "time");
        assert!(time.contains("1.25 s") && time.contains("cpu") && time.contains("16 threads"));
    }

    #[test]
    fn mse_objective_has_no_delta() {
        let mut r = report();
        r.objective.loss = "mse".into();
        assert!(!line_with(&law_summary(&r), "objective").contains("delta"));
    }

    #[test]
    fn curve_columns_are_aligned() {
        let s = law_summary(&report());
        let header = line_with(&s, "run ");
        let rows: Vec<&str> = s
            .lines()
            .filter(|l| l.trim_start().starts_with("looplm-"))
            .collect();
        // Right-aligned columns end at the same place as their header.
        for col in ["N", "T", "points", "R2", "RMSE", "MAPE"] {
            let end = header.find(&format!(" {col}")).unwrap() + 1 + col.len();
            for row in &rows {
                let b = row.as_bytes();
                assert!(b[end - 1] != b' ', "{col}: {row}");
                assert!(end == row.len() || b[end] == b' ', "{col}: {row}");
            }
        }
    }

    #[test]
    fn nan_r2_is_shown_as_dash() {
        let mut r = report();
        r.metrics.per_curve[0].r2 = f64::NAN;
        let s = law_summary(&r);
        let row = s
            .lines()
            .find(|l| l.trim_start().starts_with("looplm-53M"))
            .unwrap();
        assert!(row.contains(" - "), "{row}");
    }

    #[test]
    fn a_very_long_run_label_is_clipped_not_a_panic() {
        let mut r = report();
        let long = "x".repeat(70_000);
        r.metrics.per_curve[0]
            .labels
            .insert("run".into(), long.clone());
        let s = law_summary(&r);
        assert!(!s.contains(&long));
        let row = s.lines().find(|l| l.contains("xxxx")).unwrap();
        let label = row.split_whitespace().next().unwrap();
        assert_eq!(label.chars().count(), MAX_CELL);
        assert!(label.ends_with('…'));
    }
}
