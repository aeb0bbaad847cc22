//! Per-problem weightings: how one problem of a batch (a bootstrap
//! replicate, a hold-out fold) weighs the data, without a copy of the
//! points per problem.
//!
//! A point's effective weight is its dataset weight times
//! - its configuration's multiplier (0 leaves a curve out, k counts it k
//!   times in a curve-level bootstrap),
//! - 1 if it is among its configuration's first `first[c]` points in token
//!   order, else 0 (token-fraction folds), and
//! - optionally a Poisson(1) count drawn from a counter-based hash of
//!   (seed, point index), so any backend can recompute it on the fly.
//!
//! The hash and the Poisson draw use only u32 arithmetic and integer
//! comparisons, so the CPU and the GPU (shaders/law_common.wgsl) draw
//! exactly the same counts. Multipliers are divided by the weighting's
//! total on the host, so every problem's objective stays a weighted mean.

use std::ops::Range;

use anyhow::{bail, ensure};

/// Index meaning "the dataset's own weights" in `evaluate_weighted`.
pub const UNWEIGHTED: u32 = u32::MAX;

/// `first[c]` value keeping every point of the configuration.
pub const ALL_POINTS: u32 = u32::MAX;

/// How one problem weighs the data (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Weighting {
    /// Multiplier per configuration; 0 leaves the curve out.
    pub config: Vec<f64>,
    /// Points kept per configuration, counted from the smallest tokens.
    pub first: Vec<u32>,
    /// Seed of the Poisson(1) point counts; None for no point resampling.
    pub poisson: Option<u32>,
}

impl Weighting {
    /// Every point with its dataset weight.
    pub fn uniform(configs: usize) -> Weighting {
        Weighting {
            config: vec![1.0; configs],
            first: vec![ALL_POINTS; configs],
            poisson: None,
        }
    }

    /// Whether point `pos` (0-based, token order) of configuration `c`
    /// takes part, ignoring the Poisson count.
    pub fn keeps(&self, c: usize, pos: usize) -> bool {
        self.config[c] != 0.0 && (pos as u64) < self.first[c] as u64
    }
}

/// A weighting ready for a backend: multipliers already divided by the
/// weighting's total effective weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub mult: Vec<f64>,
    pub first: Vec<u32>,
    /// `mix(seed)`, the per-weighting half of the hash, when resampling.
    pub poisson: Option<u32>,
}

impl Resolved {
    /// The factor a point's dataset weight is multiplied by: configuration
    /// `c`, position `pos` in it, global point index `key`.
    #[inline]
    pub fn factor(&self, c: usize, pos: usize, key: usize) -> f64 {
        if (pos as u64) >= self.first[c] as u64 {
            return 0.0;
        }
        match self.poisson {
            Some(s) => self.mult[c] * poisson1(point_hash(s, key as u32)) as f64,
            None => self.mult[c],
        }
    }
}

/// Check `w` against curves with point ranges `curves` (points in the
/// order positions count) and dataset weights `weights`, and normalise it.
/// Errors when a multiplier is negative or not finite, or when no point
/// keeps a positive weight.
pub fn resolve_curves(
    w: &Weighting,
    curves: &[Range<usize>],
    weights: &[f64],
) -> anyhow::Result<Resolved> {
    let nc = curves.len();
    ensure!(
        w.config.len() == nc && w.first.len() == nc,
        "a weighting has {} multipliers and {} limits for {nc} curves",
        w.config.len(),
        w.first.len()
    );
    if let Some(m) = w.config.iter().find(|m| !m.is_finite() || **m < 0.0) {
        bail!("a curve multiplier of {m}: multipliers must be finite and >= 0");
    }
    let mut r = Resolved {
        mult: w.config.clone(),
        first: w.first.clone(),
        poisson: w.poisson.map(mix),
    };
    let mut total = 0.0;
    for (ci, c) in curves.iter().enumerate() {
        for i in c.clone() {
            total += weights[i] * r.factor(ci, i - c.start, i);
        }
    }
    if !(total > 0.0 && total.is_finite()) {
        bail!("a weighting leaves no data point with a positive weight");
    }
    for m in &mut r.mult {
        *m /= total;
    }
    Ok(r)
}

/// Whether every weighting was resolved for `n_curves` curves: an
/// evaluator refuses one resolved against another sweep.
pub fn check_curves(weightings: &[Resolved], n_curves: usize) -> anyhow::Result<()> {
    if let Some(r) = weightings
        .iter()
        .find(|r| r.mult.len() != n_curves || r.first.len() != n_curves)
    {
        bail!(
            "a weighting of {} curves for a sweep of {n_curves}",
            r.mult.len()
        );
    }
    Ok(())
}

/// A 32-bit integer mixer (xor-shift-multiply rounds with constants found
/// to give good avalanche): small, branch-free and identical in WGSL.
#[inline]
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The hash of point `key` under a weighting whose mixed seed is `s`.
#[inline]
pub fn point_hash(s: u32, key: u32) -> u32 {
    mix(mix(key ^ s))
}

/// floor(P(X <= k) 2^32) for X ~ Poisson(1), k = 0..9. The count drawn from
/// a uniform u32 h is how many of these h reaches; P(X > 9) ~ 1e-7 is
/// folded into 9.
pub const POISSON1_CDF: [u32; 9] = [
    1_580_030_168,
    3_160_060_337,
    3_950_075_421,
    4_213_413_783,
    4_279_248_373,
    4_292_415_291,
    4_294_609_777,
    4_294_923_276,
    4_294_962_463,
];

/// The Poisson(1) count of a uniform u32 `h` (inverse CDF).
#[inline]
pub fn poisson1(h: u32) -> u32 {
    POISSON1_CDF.iter().map(|&t| (h >= t) as u32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_counts_have_mean_and_variance_one() {
        let s = mix(7);
        let n = 200_000u32;
        let counts: Vec<f64> = (0..n).map(|k| poisson1(point_hash(s, k)) as f64).collect();
        let mean = counts.iter().sum::<f64>() / n as f64;
        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: ~0.0022 for the mean, ~0.0045 for the variance.
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        let zeros = counts.iter().filter(|&&c| c == 0.0).count() as f64 / n as f64;
        assert!((zeros - (-1f64).exp()).abs() < 0.005, "P(0) = {zeros}");
    }

    #[test]
    fn cdf_table_matches_the_distribution() {
        let mut cdf = 0.0;
        let mut term = (-1f64).exp();
        for (k, &t) in POISSON1_CDF.iter().enumerate() {
            cdf += term;
            term /= (k + 1) as f64;
            assert_eq!(t, (cdf * 4_294_967_296.0).floor() as u32, "k = {k}");
        }
    }

    #[test]
    fn seeds_give_different_draws() {
        let (a, b) = (mix(1), mix(2));
        let same = (0..1000u32)
            .filter(|&k| poisson1(point_hash(a, k)) == poisson1(point_hash(b, k)))
            .count();
        // Two independent Poisson(1) draws agree with probability ~0.31.
        assert!((200..420).contains(&same), "{same} of 1000 equal");
    }
}
