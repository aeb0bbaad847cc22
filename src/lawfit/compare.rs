//! Which law? Several laws on the same data, each evaluated under the
//! same hold-out protocols ([`evaluate`]) and fitted on all rows, then
//! ranked by held-out error and, for least squares, by AIC and BIC.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{bind, evaluate, BindOptions, LawEvalOptions, LawFitOptions};
use crate::concurrent::{run_all, Event};
use crate::data::Table;
use crate::law::LawFile;
use crate::objective::LossKind;
use crate::optim::Progress;
use crate::report::compare::{rank, CompareReport, LawEntry};

/// A law to compare: its file, text and where it came from (see
/// [`crate::options::law_source`]).
pub type LawSource = (LawFile, String, String);

/// One law's part of a comparison: its entry (named by [`display_name`],
/// made unique by [`merge_laws`]), the rows of its fit on all rows, and its
/// notes. Laws are evaluated independently of each other, so a comparison
/// split across processes or machines ([`compare_law`] per law, then
/// [`merge_laws`] in the laws' order) reports exactly what one run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawResult {
    pub entry: LawEntry,
    pub points: usize,
    pub notes: Vec<String>,
}

/// Evaluate every law of `laws` on `table` (each bound to it as a fit
/// binds) under `eval`'s protocols, with `fit`'s options; `progress`
/// hears each law's progress (by its index) and when it is done.
///
/// The laws run side by side ([`crate::concurrent`]): each law's folds are
/// one lockstep batch, and the laws' batches share the machine, which a
/// law's own batch of a small sweep leaves mostly idle between its
/// evaluations. The report is the one the laws run one after another
/// give, bit for bit.
pub fn compare(
    laws: &[LawSource],
    table: &Table,
    binding: &BindOptions,
    fit: &LawFitOptions,
    eval: &LawEvalOptions,
    progress: impl FnMut(Event<Progress>),
) -> anyhow::Result<CompareReport> {
    let started = Instant::now();
    if laws.is_empty() {
        anyhow::bail!("give at least one law to compare (--law, --law-file or --laws-dir)");
    }
    let results = run_all(
        laws.len(),
        |i, tell| compare_law(&laws[i], table, binding, fit, eval, tell),
        progress,
    )?;
    Ok(merge_laws(results, fit, started.elapsed().as_secs_f64()))
}

/// One law of a comparison: bound to `table` as a fit binds, evaluated
/// under `eval`'s protocols (those that do not apply to it noted) and
/// fitted on all rows, with `fit`'s options.
pub fn compare_law(
    (file, text, origin): &LawSource,
    table: &Table,
    binding: &BindOptions,
    fit: &LawFitOptions,
    eval: &LawEvalOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<LawResult> {
    let eval = &LawEvalOptions {
        lenient: true,
        ..eval.clone()
    };
    let name = display_name(file);
    // Each law binds on its own copy: binding fills the columns a law
    // defaults (T = 1) where the data lack them.
    let mut t = table.clone();
    let b = bind(file.clone(), text, origin, &mut t, binding)
        .map_err(|e| e.context(format!("law {name}")))?;
    let out =
        evaluate(&b, &t, fit, eval, progress).map_err(|e| e.context(format!("law {name}")))?;
    let r = out.report;
    let full = &r.full;
    // With --by every group is fitted apart: its free parameters count
    // once per group.
    let free = (b.law.params.len() - r.fixed.len()) * full.groups.len().max(1);
    let (aic, bic) = if fit.objective.loss == LossKind::Mse && full.objective > 0.0 {
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
    // How each law was read is in its evaluation (`eval.notes`).
    let notes = r
        .notes
        .iter()
        .filter(|n| !n.starts_with("variables: "))
        .cloned()
        .collect();
    Ok(LawResult {
        points: full.train_points,
        entry: LawEntry {
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
        },
        notes,
    })
}

/// The comparison of the laws whose results are `results`, in the order
/// they were given: names made unique, notes named by law, the ranking.
/// `seconds` is the wall time it took.
pub fn merge_laws(results: Vec<LawResult>, fit: &LawFitOptions, seconds: f64) -> CompareReport {
    let mut entries: Vec<LawEntry> = Vec::with_capacity(results.len());
    let mut notes = Vec::new();
    let mut points = 0;
    for (i, r) in results.into_iter().enumerate() {
        let mut entry = r.entry;
        if entries.iter().any(|e| e.law == entry.law) {
            entry.law = format!("{} ({})", entry.law, i + 1);
        }
        notes.extend(r.notes.iter().map(|n| format!("{}: {n}", entry.law)));
        points = r.points;
        entries.push(entry);
    }
    let criteria = if fit.objective.loss == LossKind::Mse {
        "AIC = 2k - 2 ln L and BIC = k ln n - 2 ln L of the fit on all rows: L the Gaussian \
         likelihood of the residuals with their variance estimated, k the free parameters plus \
         that variance, n the rows; lower is better, and only differences between laws mean \
         anything (about 2 or more for AIC)."
    } else {
        "No AIC or BIC: a robust loss (Huber) has no likelihood to count parameters against; \
         the laws are ranked by held-out error alone."
    }
    .to_string();
    CompareReport {
        loss: fit.objective.loss_name().to_string(),
        space: fit.objective.space_name().to_string(),
        points,
        ranking: rank(&entries),
        laws: entries,
        criteria,
        seconds,
        notes,
    }
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
