//! What a fit produced, and how it is written: fit.json, pred.csv, the
//! terminal summary and the pictures (the Real-vs-Pred grid, the
//! residual grid and the profile curves).

pub mod compare;
mod compare_plot;
mod eval;
mod json;
pub mod legacy;
mod plot;
mod pred_csv;
mod profile_plot;
mod residuals;
mod table;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::identify::Identifiability;
use crate::profile::ProfileReport;

pub use crate::bootstrap::{Interval, ResampleReport};
pub use crate::format::format_count;
pub use compare_plot::{draw_compare, COMPARE_TITLE};
pub use eval::{
    eval_summary, write_eval_csv, write_eval_json, EvalReport, FoldReport, ProtocolSummary,
};
pub(crate) use json::validate_bootstrap;
pub use json::{parse_json, pretty_json, write_pretty};
pub use plot::{
    band_legend, draw_grid, fold_title, format_sig, grid_layout, max_markers, panel_title,
    read_pred_csv, resolve_x_scale, square_grid, tick_label, title_r2, x_axis_name, GridLayout,
    Panel, PlotFormat, PlotOptions, XScale, DEFAULT_TITLE, HEADER_HEIGHT, LOG_SPAN, MAX_LINE,
    X_LABEL_HEIGHT, Y_LABEL_WIDTH,
};
pub use pred_csv::write_table_pred_csv;
pub use profile_plot::{
    draw_profiles, interval_text, level_text, profile_layout, profile_title, PROFILE_TITLE,
};
pub use residuals::{draw_residuals, residual_range, residual_title, residuals, RESIDUALS_TITLE};
pub use table::law_summary;

/// Bootstrap uncertainty of a fit: every replicate refits a resample of
/// the data, started from the best fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapReport {
    /// Seed of the resampling.
    pub seed: u64,
    /// Nominal coverage of the percentile intervals.
    pub level: f64,
    /// Wall-clock seconds of all replicates.
    pub seconds: f64,
    pub resamples: Vec<ResampleReport>,
    /// Schemes skipped and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// How the best start was finished: Gauss-Newton in f64 from where the
/// search left it, until one more step would change nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolishReport {
    /// The relative Newton decrement at the optimum, sqrt(g^T H^-1 g / 2f)
    /// over the free parameters off their bounds: the objective is within
    /// f grad_norm^2 / 2 of the local minimum, and every parameter within
    /// grad_norm sqrt(rows) standard errors of it.
    pub grad_norm: f64,
    /// Gauss-Newton steps tried.
    pub newton_steps: usize,
    /// grad_norm at most 1e-6, or the fit exact.
    pub converged: bool,
    /// The law reproduces the data to rounding: the residuals are at the
    /// level of the last digits of the data, and grad_norm measures only
    /// rounding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
    /// The objective falls along a direction the data leave undetermined:
    /// the point is a saddle, not a minimum (and not converged); says
    /// along which parameters and by how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saddle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveReport {
    pub loss: String,
    pub space: String,
    pub delta: f64,
    /// Best objective value reached (weighted mean of rho over points).
    pub value: f64,
}

/// R² and RMSE of ln(pred) against ln(loss): what a fit in log space
/// minimises, and what papers that fit there quote.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogMetrics {
    pub r2: f64,
    pub rmse: f64,
}

impl LogMetrics {
    /// None unless every loss and prediction is positive.
    pub fn new(loss: &[f64], pred: &[f64]) -> Option<LogMetrics> {
        if loss.is_empty() || !loss.iter().chain(pred).all(|v| *v > 0.0) {
            return None;
        }
        let ly: Vec<f64> = loss.iter().map(|v| v.ln()).collect();
        let lp: Vec<f64> = pred.iter().map(|v| v.ln()).collect();
        let m = SetMetrics::new(&ly, &lp);
        Some(LogMetrics {
            r2: m.r2,
            rmse: m.rmse,
        })
    }
}

fn nan() -> f64 {
    f64::NAN
}

fn is_nan(v: &f64) -> bool {
    v.is_nan()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartsReport {
    pub count: usize,
    /// Starts whose final objective is within 1e-6 (relative) of the best.
    pub at_best: usize,
    /// status name -> number of starts that ended with it.
    pub status_counts: IndexMap<String, usize>,
    /// Optimiser iterations of the longest-running start.
    pub iterations: usize,
    /// Batched backend calls made.
    pub evaluations: usize,
    /// Objective evaluations summed over all starts (one is a pass over
    /// every point for one parameter vector).
    pub start_evaluations: usize,
}

/// Numbers of one set of rows against their predictions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetMetrics {
    pub points: usize,
    pub r2: f64,
    pub rmse: f64,
    pub mae: f64,
    /// Sum of squared residuals (pred - loss).
    pub sse: f64,
    /// Mean |pred - loss| / |loss|, in percent (absent in files written
    /// before it was recorded).
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub mape: f64,
    /// The fitted space's numbers for `--space log` fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogMetrics>,
    /// Per curve of the rows (rows sharing a run and every variable but the
    /// axis), for data with curves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_curve: Vec<CurveMetrics>,
}

/// How well one curve is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveMetrics {
    /// What tells the curve apart besides its variables: its run, and any
    /// column that splits runs into curves.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// The variables constant along the curve, and their values.
    pub at: IndexMap<String, f64>,
    pub points: usize,
    /// Smallest and largest value of the axis variable on the curve.
    pub axis: [f64; 2],
    pub r2: f64,
    pub rmse: f64,
    pub mape: f64,
    /// Mean |pred - loss| (absent in files written before it was recorded).
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub mae: f64,
    /// Largest |pred - loss| / |loss| on the curve, in percent (absent in
    /// files written before it was recorded).
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub worst_pct: f64,
}

impl CurveMetrics {
    /// The mean over `curves` of R², RMSE, MAE, MAPE and worst relative
    /// error (percent), as multi-curve papers score held-out curves; None
    /// for fewer than two curves.
    pub fn mean(curves: &[CurveMetrics]) -> Option<[f64; 5]> {
        if curves.len() < 2 {
            return None;
        }
        let n = curves.len() as f64;
        let mut m = [0.0; 5];
        for c in curves {
            for (s, v) in m.iter_mut().zip([c.r2, c.rmse, c.mae, c.mape, c.worst_pct]) {
                *s += v / n;
            }
        }
        Some(m)
    }
}

impl SetMetrics {
    pub fn new(loss: &[f64], pred: &[f64]) -> SetMetrics {
        let n = loss.len();
        if n == 0 {
            return SetMetrics {
                points: 0,
                r2: f64::NAN,
                rmse: f64::NAN,
                mae: f64::NAN,
                sse: 0.0,
                mape: f64::NAN,
                log: None,
                per_curve: Vec::new(),
            };
        }
        let mean = loss.iter().sum::<f64>() / n as f64;
        // A spread no larger than the mean's own rounding is none: R² of
        // a constant target is undefined, not 1 - SSE/1e-33.
        let scale = loss.iter().fold(0.0f64, |m, y| m.max(y.abs()));
        let noise = n as f64 * (4.0 * f64::EPSILON * scale).powi(2);
        let (mut sst, mut sse, mut abs, mut pct) = (0.0, 0.0, 0.0, 0.0);
        for (&y, &p) in loss.iter().zip(pred) {
            sst += (y - mean) * (y - mean);
            sse += (p - y) * (p - y);
            abs += (p - y).abs();
            pct += (p - y).abs() / y.abs();
        }
        SetMetrics {
            points: n,
            r2: if sst > noise {
                1.0 - sse / sst
            } else {
                f64::NAN
            },
            rmse: (sse / n as f64).sqrt(),
            mae: abs / n as f64,
            sse,
            mape: 100.0 * pct / n as f64,
            log: None,
            per_curve: Vec::new(),
        }
    }
}

/// The held-out rows' score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub protocol: String,
    #[serde(rename = "where")]
    pub selector: String,
    #[serde(flatten)]
    pub metrics: SetMetrics,
}

/// One `--by` group's fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub key: IndexMap<String, String>,
    pub params: IndexMap<String, f64>,
    pub objective: f64,
    pub at_best: usize,
    pub metrics: SetMetrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<SetMetrics>,
    /// How the best start was finished (absent in files written before
    /// the polish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polish: Option<PolishReport>,
    /// What the data determine at the optimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiability: Option<Identifiability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapReport>,
}

/// fit.json of a law fitted from a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawFitReport {
    pub law: String,
    /// The whole law file, so that the fit can be read back alone.
    pub law_file: String,
    pub formula: String,
    /// Variable -> column.
    pub variables: IndexMap<String, String>,
    /// Variable -> [smallest, largest] value over the fitted rows, so that
    /// `predict` can say when it extrapolates (absent in older files).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ranges: IndexMap<String, [f64; 2]>,
    /// Best parameters (absent for `--by`, whose groups have their own).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, f64>,
    pub fixed: Vec<String>,
    pub objective: ObjectiveReport,
    /// Over the fitted rows, pooled over groups.
    pub metrics: SetMetrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
    pub starts: StartsReport,
    pub backend: BackendReport,
    pub seconds: f64,
    pub points: usize,
    pub notes: Vec<String>,
    /// How the best start was finished (absent in files written before
    /// the polish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polish: Option<PolishReport>,
    /// What the data determine at the optimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiability: Option<Identifiability>,
    /// Profile-likelihood intervals, when asked for (`--profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileReport>,
    /// Bootstrap uncertainty, when asked for; samples in the law's
    /// parameter order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendReport {
    pub kind: String,
    pub device: String,
}
