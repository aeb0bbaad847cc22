//! What a fit reports beyond its parameters: the optimum's polish and
//! identifiability, predictions and their metrics, the starts' outcomes
//! and the backend.

use super::*;
use crate::law::parse::SCHEDULE;

/// Where the law is not finite: the first row and the smallest
/// sub-expression there that is not, as text.
pub(super) fn non_finite_site(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    p: &[f64],
    table: &Table,
) -> Option<String> {
    let law = &b.law;
    let mut point = vec![0.0; cols.vars.len()];
    let mut buf = Vec::new();
    let mut first = None;
    let mut bad_rows = Vec::new();
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        law.graph.eval_all(law.value, &point, p, &mut buf);
        if buf[law.value as usize].is_finite() {
            continue;
        }
        bad_rows.push(r);
        if first.is_some() {
            continue;
        }
        let Some(bad) = (0..=law.value).find(|&id| !buf[id as usize].is_finite()) else {
            continue;
        };
        // A run's schedule is a handle of this process, not a value: the
        // row's place names its run.
        let at: Vec<String> = law
            .variables
            .iter()
            .zip(&point)
            .filter(|(n, _)| n.as_str() != SCHEDULE)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        first = Some(format!(
            "at {} ({}), {} is {}",
            table.place(r),
            at.join(", "),
            show(law, bad),
            buf[bad as usize]
        ));
    }
    let mut site = first?;
    // Which rows, and what they share: rows at tokens = 0 under B/D^beta
    // are dropped with a filter, not fixed by the start ranges.
    let shared: Vec<(usize, f64)> = (0..cols.vars.len())
        .filter_map(|v| {
            let x = cols.vars[v][bad_rows[0]];
            bad_rows
                .iter()
                .all(|&r| cols.vars[v][r].to_bits() == x.to_bits())
                .then_some((v, x))
        })
        .filter(|&(v, x)| x == 0.0 && law.variables[v] != SCHEDULE)
        .collect();
    site.push_str(&format!(
        "; {} of the {} rows are not finite there",
        bad_rows.len(),
        rows.len()
    ));
    if let Some(&(v, _)) = shared.first() {
        let name = &law.variables[v];
        let col = b
            .file
            .variables
            .get(name)
            .map_or(name.as_str(), String::as_str);
        let filter = if col.eq_ignore_ascii_case("tokens") {
            " (--min-tokens 1 for the tokens column, or a filter of the data)"
        } else {
            " (a filter of the data)"
        };
        site.push_str(&format!(
            ", all with {name} = 0: drop those rows{filter}, or give the law an offset \
             ({name} + t)"
        ));
    }
    Some(site)
}

/// A node as formula text (sub-expressions beyond a depth elided).
pub(super) fn show(law: &CompiledLaw, id: NodeId) -> String {
    law.graph.expr(id, &law.variables, &law.params, 7)
}

/// What a job's polished optimum says: how far it converged, and what the
/// data determine there; `rows`, the job's row Jacobian if the polish
/// kept it (else made here).
pub(super) fn optimum_reports(
    data: Data,
    space: &LawSpace,
    g: &Group,
    fit: &JobFit,
    objective: &Objective,
    rows: Option<&RowJacobian>,
) -> (PolishReport, Identifiability) {
    let Data { b, cols, .. } = data;
    let p = &fit.polished;
    let mut polish = PolishReport {
        grad_norm: p.grad_norm,
        newton_steps: p.steps,
        converged: p.converged(),
        exact: p.exact,
        saddle: None,
    };
    let made;
    let rows = match rows {
        Some(r) => r,
        None => {
            made = row_jacobian(b, cols, &g.train, objective, space);
            &made
        }
    };
    let distinct = polish::distinct_values(&b.law.variables, &cols.vars, &g.train);
    let mut c = polish::curvature(&b.law, space, rows, p, *objective, distinct);
    let mut ident = identify::analyse(&c);
    // An ill-conditioned mse fit takes its errors from J itself.
    let ill = ident.condition.is_nan() || ident.condition > identify::JACOBIAN_CONDITION;
    if objective.loss == LossKind::Mse && ill {
        c.jacobian = Some(weighted_jacobian(
            b,
            cols,
            &g.train,
            space,
            &p.params,
            objective.space,
        ));
        ident = identify::analyse(&c);
    }
    if polish.converged && !polish.exact {
        polish.saddle = polish::saddle(&b.law, space, rows, p, &c);
        polish.converged &= polish.saddle.is_none();
    }
    (polish, ident)
}

/// The rows' Jacobian of the law at `params` in the raw form of `space`
/// (rows of positive weight x free parameters), each row times the square
/// root of its share of the weight, in the objective's space: what J^T W J
/// is formed from, evaluated row by row in f64.
fn weighted_jacobian(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    space: &LawSpace,
    params: &[f64],
    target: Space,
) -> nalgebra::DMatrix<f64> {
    let law = &b.law;
    let free = space.raw(law).free().to_vec();
    let kept: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|&r| cols.weight[r] > 0.0)
        .collect();
    let total: f64 = kept.iter().map(|&r| cols.weight[r]).sum();
    let upto = free
        .iter()
        .map(|&i| law.grad[i])
        .chain([law.value])
        .max()
        .unwrap_or(law.value);
    let mut j = nalgebra::DMatrix::zeros(kept.len(), free.len());
    let (mut point, mut buf) = (vec![0.0; cols.vars.len()], Vec::new());
    for (row, &r) in kept.iter().enumerate() {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        law.graph.eval_all(upto, &point, params, &mut buf);
        let mut w = (cols.weight[r] / total).sqrt();
        if target == Space::Log {
            w /= buf[law.value as usize];
        }
        for (k, &i) in free.iter().enumerate() {
            j[(row, k)] = w * buf[law.grad[i] as usize];
        }
    }
    j
}

/// A note naming the groups whose polish did not converge, if any.
pub(super) fn unconverged(reports: &[GroupReport]) -> Option<String> {
    let names: Vec<String> = reports
        .iter()
        .filter(|g| g.polish.as_ref().is_some_and(|p| !p.converged))
        .map(|g| key_text(&g.key))
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "the optimum of {} of {} groups did not converge to grad_norm 1e-6 ({})",
            names.len(),
            reports.len(),
            names.join("; ")
        )
    })
}

/// Predict `rows` with `params` into `pred`.
pub(super) fn predict_into(
    b: &BoundLaw,
    cols: &Columns,
    params: &[f64],
    rows: &[usize],
    pred: &mut [f64],
) {
    let mut point = vec![0.0; cols.vars.len()];
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        pred[r] = b.law.eval(&point, params);
    }
}

/// The metrics of the fitted `rows`: [`set_metrics`], and per curve where
/// the rows form curves along the law's axis.
pub(super) fn fit_metrics(
    b: &BoundLaw,
    table: &Table,
    cols: &Columns,
    pred: &[f64],
    rows: &[usize],
    space: Space,
) -> SetMetrics {
    let mut m = set_metrics(cols, pred, rows, space);
    let Some(axis) = b.axis else {
        return m;
    };
    let curves = curves_in(table, &cols.vars, axis, rows, &b.split);
    if curves.iter().all(|c| c.len() <= 1) {
        return m;
    }
    let mut label_cols: Vec<usize> = table.find("run").into_iter().collect();
    for &c in &b.split {
        if !label_cols.contains(&c) {
            label_cols.push(c);
        }
    }
    m.per_curve = curves
        .iter()
        .map(|c| {
            let first = c[0];
            let loss: Vec<f64> = c.iter().map(|&r| cols.loss[r]).collect();
            let pr: Vec<f64> = c.iter().map(|&r| pred[r]).collect();
            let all = SetMetrics::new(&loss, &pr);
            let along = c.iter().map(|&r| cols.vars[axis][r]);
            CurveMetrics {
                labels: label_cols
                    .iter()
                    .map(|&k| {
                        (
                            table.headers[k].clone(),
                            table.columns[k][first].to_string(),
                        )
                    })
                    .collect(),
                at: (0..cols.vars.len())
                    .filter(|&v| v != axis)
                    .map(|v| (b.law.variables[v].clone(), cols.vars[v][first]))
                    .collect(),
                points: c.len(),
                axis: [
                    along.clone().fold(f64::INFINITY, f64::min),
                    along.fold(f64::NEG_INFINITY, f64::max),
                ],
                r2: all.r2,
                rmse: all.rmse,
                mape: all.mape,
                mae: all.mae,
                worst_pct: loss
                    .iter()
                    .zip(&pr)
                    .map(|(&y, &p)| 100.0 * ((p - y) / y).abs())
                    .fold(f64::NAN, f64::max),
            }
        })
        .collect();
    m
}

/// The metrics of `rows`, with the log-space ones for `--space log` fits.
pub(super) fn set_metrics(
    cols: &Columns,
    pred: &[f64],
    rows: &[usize],
    space: Space,
) -> SetMetrics {
    let loss: Vec<f64> = rows.iter().map(|&r| cols.loss[r]).collect();
    let pr: Vec<f64> = rows.iter().map(|&r| pred[r]).collect();
    SetMetrics {
        log: (space == Space::Log)
            .then(|| crate::report::LogMetrics::new(&loss, &pr))
            .flatten(),
        ..SetMetrics::new(&loss, &pr)
    }
}

pub(super) fn status_counts(outcomes: &[Outcome]) -> IndexMap<String, usize> {
    Status::ENDED
        .iter()
        .map(|s| {
            (
                s.name().to_string(),
                outcomes.iter().filter(|o| o.status == *s).count(),
            )
        })
        .collect()
}

/// What evaluates a law fit with `opts`.
pub(super) fn backend_report(opts: &LawFitOptions) -> BackendReport {
    match &opts.device {
        Some(dev) => BackendReport {
            kind: "gpu".into(),
            device: format!("{}, f32, generated law kernel", dev.summary().short()),
        },
        None => cpu_report(),
    }
}

pub(super) fn cpu_report() -> BackendReport {
    BackendReport {
        kind: "cpu".into(),
        device: format!(
            "{} threads, f64, compiled law",
            rayon::current_num_threads()
        ),
    }
}

/// A report with nothing fitted yet: the law's identity only.
pub(super) fn empty_report(b: &BoundLaw) -> LawFitReport {
    LawFitReport {
        law: b.file.name.clone(),
        law_file: b.text.clone(),
        formula: b.file.formula.clone(),
        variables: b.file.variables.clone(),
        ranges: IndexMap::new(),
        params: IndexMap::new(),
        fixed: Vec::new(),
        objective: ObjectiveReport {
            loss: String::new(),
            space: String::new(),
            delta: 0.0,
            value: f64::NAN,
        },
        metrics: SetMetrics::default(),
        test: None,
        by: Vec::new(),
        groups: Vec::new(),
        starts: StartsReport {
            count: 0,
            at_best: 0,
            status_counts: IndexMap::new(),
            iterations: 0,
            evaluations: 0,
            start_evaluations: 0,
        },
        backend: cpu_report(),
        seconds: 0.0,
        points: 0,
        notes: Vec::new(),
        polish: None,
        identifiability: None,
        profile: None,
        bootstrap: None,
    }
}
