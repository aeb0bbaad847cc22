//! Which law? Several laws on the same data, each evaluated under the
//! same hold-out protocols ([`evaluate`]) and fitted on all rows, then
//! ranked by held-out error and, for least squares, by AIC and BIC.

use std::time::Instant;

use super::{bind, evaluate, BindOptions, LawEvalOptions, LawFitOptions};
use crate::data::Table;
use crate::law::LawFile;
use crate::objective::LossKind;
use crate::optim::Progress;
use crate::report::compare::{rank, CompareReport, LawEntry};

/// A law to compare: its file, text and where it came from (see
/// [`crate::options::law_source`]).
pub type LawSource = (LawFile, String, String);

/// Evaluate every law of `laws` on `table` (each bound to it as a fit
/// binds) under `eval`'s protocols, with `fit`'s options; `progress` is
/// told which law (its index) is running.
pub fn compare(
    laws: &[LawSource],
    table: &Table,
    binding: &BindOptions,
    fit: &LawFitOptions,
    eval: &LawEvalOptions,
    mut progress: impl FnMut(usize, Progress),
) -> anyhow::Result<CompareReport> {
    let started = Instant::now();
    if laws.is_empty() {
        anyhow::bail!("give at least one law to compare (--law, --law-file or --laws-dir)");
    }
    let mse = fit.objective.loss == LossKind::Mse;
    // Every law is asked for the same protocols; one that does not apply
    // to a law (sizes without N) is noted for it.
    let eval = &LawEvalOptions {
        lenient: true,
        ..eval.clone()
    };
    let mut entries: Vec<LawEntry> = Vec::with_capacity(laws.len());
    let mut notes = Vec::new();
    let mut points = 0;
    for (i, (file, text, origin)) in laws.iter().enumerate() {
        // Each law binds on its own copy: binding fills the columns a law
        // defaults (T = 1) where the data lack them.
        let mut t = table.clone();
        let b = bind(file.clone(), text, origin, &mut t, binding)
            .map_err(|e| e.context(format!("law {}", display_name(file))))?;
        let out = evaluate(&b, &t, fit, eval, |p| progress(i, p))
            .map_err(|e| e.context(format!("law {}", display_name(file))))?;
        let r = out.report;
        let full = &r.full;
        points = full.train_points;
        let free = full.params.len() - r.fixed.len();
        let (aic, bic) = if mse && full.objective > 0.0 {
            // Gaussian likelihood with the variance at its estimate, the
            // weighted mean squared residual (2 f: f sums w r^2 / 2 with
            // weights summing to 1); k counts the variance too.
            let n = full.train_points as f64;
            let ll = -0.5 * n * ((2.0 * std::f64::consts::PI * 2.0 * full.objective).ln() + 1.0);
            let k = (free + 1) as f64;
            (Some(2.0 * k - 2.0 * ll), Some(k * n.ln() - 2.0 * ll))
        } else {
            (None, None)
        };
        let mut name = display_name(file);
        if entries.iter().any(|e| e.law == name) {
            name = format!("{name} ({})", i + 1);
        }
        // How each law was read is in its evaluation (`eval.notes`).
        notes.extend(
            r.notes
                .iter()
                .filter(|n| !n.starts_with("variables: "))
                .map(|n| format!("{name}: {n}")),
        );
        entries.push(LawEntry {
            law: name,
            formula: file.formula.clone(),
            free_params: free,
            objective: full.objective,
            starts: full.starts,
            at_best: full.at_best,
            aic,
            bic,
            r2: full.r2,
            rmse: full.rmse,
            protocols: r.summary.clone(),
            eval: r,
        });
    }
    let criteria = if mse {
        "AIC = 2k - 2 ln L and BIC = k ln n - 2 ln L of the fit on all rows: L the Gaussian \
         likelihood of the residuals with their variance estimated, k the free parameters plus \
         that variance, n the rows; lower is better, and only differences between laws mean \
         anything (about 2 or more for AIC)."
    } else {
        "No AIC or BIC: a robust loss (Huber) has no likelihood to count parameters against; \
         the laws are ranked by held-out error alone."
    }
    .to_string();
    Ok(CompareReport {
        loss: fit.objective.loss_name().to_string(),
        space: fit.objective.space_name().to_string(),
        points,
        ranking: rank(&entries),
        laws: entries,
        criteria,
        seconds: started.elapsed().as_secs_f64(),
        notes,
    })
}

/// A law's name in the comparison: its file's name, or a bare formula's
/// text.
fn display_name(file: &LawFile) -> String {
    if file.name == "custom" {
        file.formula.clone()
    } else {
        file.name.clone()
    }
}
