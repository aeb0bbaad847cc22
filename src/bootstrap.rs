//! Bootstrap uncertainty of a fit: the resampling schemes, their draws and
//! the statistics of the replicates (the batch that refits them is
//! `lawfit::bootstrap`). Every replicate is a weighting of the fit's rows:
//! - curves: the sweep's curves drawn with replacement (a curve drawn k
//!   times gets multiplier k), for errors correlated within a run;
//! - points: every point counted a Poisson(1) number of times (the
//!   "Poisson bootstrap"), drawn by a counter-based hash on the backend,
//!   so no replicate stores per-point weights.
//!
//! Each free parameter gets the replicates' standard deviation and a
//! percentile interval.

use anyhow::bail;
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::backend::Weighting;
use crate::optim;
use crate::stats::central;

/// The replicates of one resampling scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResampleReport {
    /// "curves": whole curves drawn with replacement; "points": every point
    /// counted a Poisson(1) number of times.
    pub kind: String,
    pub replicates: usize,
    /// Replicates whose optimiser converged.
    pub converged: usize,
    pub converged_fraction: f64,
    /// Replicates with a finite objective, which the statistics use.
    pub used: usize,
    /// Per free parameter: standard error and percentile interval.
    pub params: IndexMap<String, Interval>,
    /// Parameters of every used replicate, raw units, law order (prediction
    /// bands are computed from these).
    pub samples: Vec<Vec<f64>>,
}

/// Spread of one parameter over the replicates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Standard deviation of the replicates.
    pub se: f64,
    /// Percentile interval at the report's level.
    pub lo: f64,
    pub hi: f64,
}

/// What is resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resample {
    /// Whole curves, with replacement.
    Curves,
    /// Points, each counted a Poisson(1) number of times.
    Points,
}

impl Resample {
    pub fn name(self) -> &'static str {
        match self {
            Resample::Curves => "curves",
            Resample::Points => "points",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// Replicates per resampling scheme.
    pub replicates: usize,
    pub resamples: Vec<Resample>,
    pub seed: u64,
    /// Nominal coverage of the percentile intervals, in (0, 1).
    pub level: f64,
    pub lbfgs: optim::Options,
}

/// Redraws allowed for a replicate that leaves no point weighted (only
/// possible on tiny sweeps).
const MAX_REDRAWS: usize = 100;

/// The weightings of `replicates` resamples of kind `kind` of curves that
/// weigh `curve_weight` in all, reproducible from `seed` (a curve drawn k
/// times gets multiplier k; points get a Poisson seed). A curve resample
/// must keep a curve of positive weight; a point resample must pass
/// `points_keep_some`. Others are redrawn.
pub fn draw(
    kind: Resample,
    replicates: usize,
    curve_weight: &[f64],
    seed: u64,
    points_keep_some: impl Fn(&Weighting) -> bool,
) -> anyhow::Result<Vec<Weighting>> {
    // Separate streams per kind, so adding a kind changes no other's draws.
    let stream = match kind {
        Resample::Curves => 0x6375_7276_6573,
        Resample::Points => 0x706f_696e_7473,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ stream);
    let nc = curve_weight.len();
    let keeps_some = |w: &Weighting| match kind {
        Resample::Curves => w.config.iter().zip(curve_weight).any(|(m, t)| m * t > 0.0),
        Resample::Points => points_keep_some(w),
    };
    let mut out = Vec::with_capacity(replicates);
    for _ in 0..replicates {
        let mut tries = 0;
        let w = loop {
            let mut w = Weighting::uniform(nc);
            match kind {
                Resample::Curves => {
                    w.config = vec![0.0; nc];
                    for _ in 0..nc {
                        w.config[rng.random_range(0..nc)] += 1.0;
                    }
                }
                Resample::Points => w.poisson = Some(rng.random()),
            }
            if keeps_some(&w) {
                break w;
            }
            tries += 1;
            if tries >= MAX_REDRAWS {
                bail!("no {} resample keeps any data point", kind.name());
            }
        };
        out.push(w);
    }
    Ok(out)
}

/// The schemes of `asked` that can run on data of `curves` curves, and
/// notes on those that cannot: resampling one curve with replacement
/// always gives that curve back.
pub fn schemes(
    asked: &[Resample],
    curves: usize,
    replicates: usize,
) -> anyhow::Result<(Vec<Resample>, Vec<String>)> {
    let mut notes = Vec::new();
    let distinct = distinct_curve_draws(curves);
    if asked.contains(&Resample::Curves) && curves >= 2 && distinct < replicates as f64 {
        notes.push(format!(
            "curves: {curves} curves can be drawn in only {distinct} different ways, so the \
             {replicates} replicates repeat them; the interval rests on those few (resample \
             points too)"
        ));
    }
    let kinds: Vec<Resample> = asked
        .iter()
        .copied()
        .filter(|&k| {
            let keep = k != Resample::Curves || curves >= 2;
            if !keep {
                notes.push(
                    "curves: skipped, the data has a single curve (resample points instead)"
                        .to_string(),
                );
            }
            keep
        })
        .collect();
    if kinds.is_empty() {
        bail!(
            "nothing to bootstrap: {}",
            if notes.is_empty() {
                "no resampling scheme given".to_string()
            } else {
                notes.join("; ")
            }
        );
    }
    Ok((kinds, notes))
}

/// Multisets of `n` curves drawn from `n`: C(2n - 1, n), the distinct
/// resamples of the curves scheme (in f64, as it grows past any count of
/// replicates quickly).
fn distinct_curve_draws(n: usize) -> f64 {
    (1..=n)
        .fold(1.0, |c, i| c * (n - 1 + i) as f64 / i as f64)
        .round()
}

/// The statistics of one kind's replicates: per parameter of `names`
/// (index into a sample, name), the replicates' spread and interval.
pub fn resample_report(
    kind: Resample,
    opts: &BootstrapOptions,
    names: &[(usize, String)],
    converged: usize,
    samples: Vec<Vec<f64>>,
) -> ResampleReport {
    let params = names
        .iter()
        .map(|(i, name)| {
            let v: Vec<f64> = samples.iter().map(|s| s[*i]).collect();
            (name.clone(), interval(&v, opts.level))
        })
        .collect::<IndexMap<_, _>>();
    ResampleReport {
        kind: kind.name().to_string(),
        replicates: opts.replicates,
        converged,
        converged_fraction: converged as f64 / opts.replicates as f64,
        used: samples.len(),
        params,
        samples,
    }
}

/// Standard deviation and central percentile interval of `v`. NaN when
/// there are fewer than two values.
pub fn interval(v: &[f64], level: f64) -> Interval {
    if v.len() < 2 {
        return Interval {
            se: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let (lo, hi) = central(&mut v.to_vec(), level);
    Interval {
        se: var.sqrt(),
        lo,
        hi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_the_replicates_quantiles_and_spread() {
        let i = interval(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 0.5);
        assert!((i.se - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((i.lo, i.hi), (4.0, 5.5));
    }

    #[test]
    fn the_distinct_curve_draws_are_counted_by_enumerating_them() {
        for n in 1..=6usize {
            // Every sequence of n draws from n curves, as counts per curve.
            let mut seen = std::collections::HashSet::new();
            for code in 0..n.pow(n as u32) {
                let mut counts = vec![0u8; n];
                let mut c = code;
                for _ in 0..n {
                    counts[c % n] += 1;
                    c /= n;
                }
                seen.insert(counts);
            }
            assert_eq!(distinct_curve_draws(n), seen.len() as f64, "{n} curves");
        }
    }

    #[test]
    fn few_curves_are_noted_when_the_replicates_outnumber_their_draws() {
        let (_, notes) = schemes(&[Resample::Curves, Resample::Points], 3, 200).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("only 10 different ways"), "{}", notes[0]);
        let (_, notes) = schemes(&[Resample::Curves], 6, 200).unwrap();
        assert!(notes.is_empty(), "462 draws of 6 curves: {notes:?}");
        let (_, notes) = schemes(&[Resample::Points], 3, 200).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
    }
}
