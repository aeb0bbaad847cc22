//! What `sweepfit eval` produced, and how it is written: eval.json,
//! eval.csv (one row per fold) and the terminal table.

use std::fmt::Write as _;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::table::{format_pct, format_r2, format_score};
use super::BackendReport;

/// Everything eval.json holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub law: String,
    pub loss: String,
    pub space: String,
    /// Parameters held fixed in every fold.
    pub fixed: Vec<String>,
    pub points: usize,
    pub configs: usize,
    /// The fit on all points, scored on all points (for comparison).
    pub full: FoldReport,
    pub folds: Vec<FoldReport>,
    /// Per protocol, the means over its folds.
    pub summary: Vec<ProtocolSummary>,
    pub backend: BackendReport,
    /// Batched objective calls of the whole evaluation.
    pub batched_evaluations: usize,
    pub seconds: f64,
    /// The columns every fold's fit is split by (`--by`), each group
    /// fitted apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    pub notes: Vec<String>,
}

/// One fold: its fit on the training points, scored on the held-out ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldReport {
    /// "sizes", "tokens", "leave-t", or "all" for the fit on every point.
    pub protocol: String,
    pub fold: String,
    pub train_points: usize,
    pub held_out_points: usize,
    /// Points the metrics are computed on: the held-out ones (all points
    /// for the fit on every point).
    pub scored_points: usize,
    /// Training objective at the fold's best start.
    pub objective: f64,
    pub starts: usize,
    pub at_best: usize,
    /// Fitted parameters, raw units (empty with `--by`).
    pub params: IndexMap<String, f64>,
    /// With `--by`: each group's fitted parameters, by its key
    /// ("run=a"); its metrics pool the groups' scored points.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub groups: IndexMap<String, IndexMap<String, f64>>,
    pub r2: f64,
    pub rmse: f64,
    /// Mean absolute percentage error, in percent.
    pub mape: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolSummary {
    pub protocol: String,
    pub folds: usize,
    pub r2: f64,
    pub rmse: f64,
    pub mape: f64,
}

/// Write eval.json; NaN metrics (a held-out set with constant loss)
/// become null.
pub fn write_eval_json(path: &Path, r: &EvalReport) -> anyhow::Result<()> {
    super::json::write_pretty(path, r)
}

/// One row per fold (the fit on all points first), for scripts.
pub fn write_eval_csv(path: &Path, r: &EvalReport) -> anyhow::Result<()> {
    crate::output::write_file(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        let mut header = vec![
            "protocol",
            "fold",
            "train_points",
            "held_out_points",
            "r2",
            "rmse",
            "mape",
            "objective",
        ];
        let names: Vec<&str> = r.full.params.keys().map(String::as_str).collect();
        header.extend(&names);
        w.write_record(&header)?;
        for f in std::iter::once(&r.full).chain(&r.folds) {
            let mut row = vec![
                f.protocol.clone(),
                f.fold.clone(),
                f.train_points.to_string(),
                f.held_out_points.to_string(),
                f.r2.to_string(),
                f.rmse.to_string(),
                f.mape.to_string(),
                f.objective.to_string(),
            ];
            row.extend(f.params.values().map(|v| v.to_string()));
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    })
}

/// Terminal table: every fold, then the per-protocol means.
pub fn eval_summary(r: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "law: {} ({} points in {} configurations), {} loss in {} space",
        r.law, r.points, r.configs, r.loss, r.space
    );
    let _ = writeln!(
        s,
        "\n{:<10} {:<40} {:>8} {:>8} {:>8} {:>11} {:>8}",
        "protocol", "fold", "train", "held out", "R2", "RMSE", "MAPE"
    );
    for f in std::iter::once(&r.full).chain(&r.folds) {
        let _ = writeln!(
            s,
            "{:<10} {:<40} {:>8} {:>8} {:>8} {:>11} {:>8}",
            f.protocol,
            f.fold,
            f.train_points,
            f.held_out_points,
            format_r2(f.r2),
            format_score(f.rmse),
            format_pct(f.mape)
        );
    }
    let _ = writeln!(
        s,
        "\n{:<10} {:>6} {:>10} {:>11} {:>10}",
        "protocol", "folds", "mean R2", "mean RMSE", "mean MAPE"
    );
    for p in &r.summary {
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>10} {:>11} {:>10}",
            p.protocol,
            p.folds,
            format_r2(p.r2),
            format_score(p.rmse),
            format_pct(p.mape)
        );
    }
    let _ = writeln!(
        s,
        "(R2, RMSE and MAPE on held-out points; the 'all' row scores the fit on every point)"
    );
    if !r.notes.is_empty() {
        s.push_str("notes:\n");
        for n in &r.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    let _ = writeln!(
        s,
        "time: {:.2} s on {} ({}), {} batched evaluations",
        r.seconds, r.backend.kind, r.backend.device, r.batched_evaluations
    );
    s
}
