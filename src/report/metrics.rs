//! Goodness of fit in loss units, overall and per curve. Unweighted: these
//! describe the fit to the data, whatever weights the objective used.

use super::{ConfigMetrics, Metrics};
use crate::{
    data::Dataset,
    law::{predict_raw, NP},
};

/// Sums over one group of points.
#[derive(Default)]
struct Acc {
    n: usize,
    ss_tot: f64,
    ss_res: f64,
    sum_abs: f64,
    sum_pct: f64,
}

impl Acc {
    fn new(loss: &[f64], pred: &[f64]) -> Acc {
        let n = loss.len();
        // Two passes (mean first) so SS_tot does not lose digits to
        // cancellation when the curve is nearly flat.
        let mean = loss.iter().sum::<f64>() / n as f64;
        let mut a = Acc {
            n,
            ..Acc::default()
        };
        for (&y, &p) in loss.iter().zip(pred) {
            let r = p - y;
            a.ss_tot += (y - mean) * (y - mean);
            a.ss_res += r * r;
            a.sum_abs += r.abs();
            a.sum_pct += r.abs() / y.abs();
        }
        a
    }

    /// R² = 1 - SS_res/SS_tot; NaN when the losses are all equal (or there
    /// are none), since the ratio is then undefined.
    fn r2(&self) -> f64 {
        if self.ss_tot > 0.0 {
            1.0 - self.ss_res / self.ss_tot
        } else {
            f64::NAN
        }
    }

    fn rmse(&self) -> f64 {
        (self.ss_res / self.n as f64).sqrt()
    }

    fn mae(&self) -> f64 {
        self.sum_abs / self.n as f64
    }

    fn mape(&self) -> f64 {
        100.0 * self.sum_pct / self.n as f64
    }
}

/// The law with raw-unit `params` at every point of `ds`.
fn predictions(ds: &Dataset, params: &[f64; NP]) -> Vec<f64> {
    let mut pred = vec![0.0; ds.points()];
    for c in &ds.configs {
        for i in c.range() {
            pred[i] = predict_raw(params, c.n, ds.tokens[i], c.t);
        }
    }
    pred
}

/// Metrics of the law with raw-unit `params` against every point of `ds`.
/// Residuals are pred - loss; MAPE is mean |pred - loss| / loss in percent.
/// With no points the values are NaN.
pub fn compute_metrics(ds: &Dataset, params: &[f64; NP]) -> Metrics {
    let pred = predictions(ds, params);
    let all = Acc::new(&ds.loss, &pred);
    let per_config = ds
        .configs
        .iter()
        .map(|c| {
            let a = Acc::new(&ds.loss[c.range()], &pred[c.range()]);
            ConfigMetrics {
                run: c.run.clone(),
                n: c.n,
                t: c.t,
                points: c.len,
                // Points are sorted by tokens within a curve.
                tokens_min: ds.tokens[c.range()].first().copied().unwrap_or(f64::NAN),
                tokens_max: ds.tokens[c.range()].last().copied().unwrap_or(f64::NAN),
                r2: a.r2(),
                rmse: a.rmse(),
                mape: a.mape(),
            }
        })
        .collect();
    Metrics {
        r2: all.r2(),
        rmse: all.rmse(),
        mae: all.mae(),
        mape: all.mape(),
        log: None,
        per_config,
    }
}

/// R² and RMSE of the log loss over every point of `ds` (None where a loss
/// or prediction is not positive).
pub fn log_metrics(ds: &Dataset, params: &[f64; NP]) -> Option<super::LogMetrics> {
    let pred = predictions(ds, params);
    super::LogMetrics::new(&ds.loss, &pred)
}

/// R², RMSE and MAPE (percent) of the law with raw-unit `params` on the
/// points `idx` of `ds` only (e.g. a fold's held-out points). NaN when
/// `idx` is empty.
pub fn subset_metrics(ds: &Dataset, params: &[f64; NP], idx: &[usize]) -> (f64, f64, f64) {
    let mut cfg_of = vec![0usize; ds.points()];
    for (ci, c) in ds.configs.iter().enumerate() {
        cfg_of[c.range()].fill(ci);
    }
    let loss: Vec<f64> = idx.iter().map(|&i| ds.loss[i]).collect();
    let pred: Vec<f64> = idx
        .iter()
        .map(|&i| {
            let c = &ds.configs[cfg_of[i]];
            predict_raw(params, c.n, ds.tokens[i], c.t)
        })
        .collect();
    if idx.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let a = Acc::new(&loss, &pred);
    (a.r2(), a.rmse(), a.mape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Row;

    const P: [f64; NP] = [1.8, 268.0, 0.30, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];

    fn rows(run: &str, n: f64, t: f64, pts: &[(f64, f64)]) -> Vec<Row> {
        pts.iter()
            .map(|&(tokens, loss)| Row {
                run: run.into(),
                n,
                t,
                tokens,
                loss,
                weight: 1.0,
            })
            .collect()
    }

    #[test]
    fn exact_predictions_give_perfect_metrics() {
        let mut r = Vec::new();
        for (n, t) in [(53e6, 1.0), (1.36e9, 3.0)] {
            let pts: Vec<(f64, f64)> = (0..5)
                .map(|i| (i as f64 * 1e9, predict_raw(&P, n, i as f64 * 1e9, t)))
                .collect();
            r.extend(rows("a", n, t, &pts));
        }
        let ds = Dataset::from_rows(r);
        let m = compute_metrics(&ds, &P);
        assert!((m.r2 - 1.0).abs() < 1e-12);
        assert!(m.rmse < 1e-12 && m.mae < 1e-12 && m.mape < 1e-10);
        assert_eq!(m.per_config.len(), 2);
        assert_eq!(m.per_config[1].n, 1.36e9);
        assert_eq!(m.per_config[1].t, 3.0);
        assert_eq!(m.per_config[1].points, 5);
        assert!((m.per_config[0].r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_values() {
        // A flat law: E = 2 and every other term zero, so pred = 2 everywhere.
        let mut p = [0.0; NP];
        p[0] = 2.0;
        p[8] = 1.0;
        p[9] = 1.0;
        let ds = Dataset::from_rows(
            [
                rows("x", 1e8, 1.0, &[(0.0, 1.0), (1.0, 3.0)]),
                rows("y", 2e8, 1.0, &[(0.0, 4.0)]),
            ]
            .concat(),
        );
        let m = compute_metrics(&ds, &p);
        // Residuals +1, -1, -2; losses 1, 3, 4 (mean 8/3).
        let ss_tot = (1.0f64 - 8.0 / 3.0).powi(2)
            + (3.0f64 - 8.0 / 3.0).powi(2)
            + (4.0f64 - 8.0 / 3.0).powi(2);
        assert!((m.r2 - (1.0 - 6.0 / ss_tot)).abs() < 1e-12);
        assert!((m.rmse - 2.0f64.sqrt()).abs() < 1e-12);
        assert!((m.mae - 4.0 / 3.0).abs() < 1e-12);
        assert!((m.mape - 100.0 * (1.0 + 1.0 / 3.0 + 0.5) / 3.0).abs() < 1e-9);
        // Curve x: losses 1, 3 (SS_tot 2), residuals +1, -1 (SS_res 2).
        assert!(m.per_config[0].r2.abs() < 1e-12);
        assert!((m.per_config[0].rmse - 1.0).abs() < 1e-12);
        // Curve y has one point: R² is undefined.
        assert!(m.per_config[1].r2.is_nan());
        assert!((m.per_config[1].mape - 50.0).abs() < 1e-12);
    }

    #[test]
    fn subset_metrics_match_the_metrics_of_the_subset_alone() {
        let mut p = [0.0; NP];
        p[0] = 2.0;
        p[8] = 1.0;
        p[9] = 1.0;
        let ds = Dataset::from_rows(
            [
                rows("x", 1e8, 1.0, &[(0.0, 1.0), (1.0, 3.0), (2.0, 9.0)]),
                rows("y", 2e8, 1.0, &[(0.0, 4.0)]),
            ]
            .concat(),
        );
        // Points 1 and 3: losses 3 and 4 against pred 2.
        let (r2, rmse, mape) = subset_metrics(&ds, &p, &[1, 3]);
        let sub = Dataset::from_rows(
            [
                rows("x", 1e8, 1.0, &[(1.0, 3.0)]),
                rows("y", 2e8, 1.0, &[(0.0, 4.0)]),
            ]
            .concat(),
        );
        let m = compute_metrics(&sub, &p);
        assert_eq!((r2, rmse, mape), (m.r2, m.rmse, m.mape));
        assert!((r2 - (1.0 - 5.0 / 0.5)).abs() < 1e-12);
        assert!(subset_metrics(&ds, &p, &[]).0.is_nan());
    }

    #[test]
    fn empty_dataset_gives_nan() {
        let m = compute_metrics(&Dataset::default(), &P);
        assert!(m.r2.is_nan() && m.rmse.is_nan() && m.mae.is_nan() && m.mape.is_nan());
        assert!(m.per_config.is_empty());
    }
}
