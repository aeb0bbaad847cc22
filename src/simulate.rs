//! Synthetic sweeps with known truth, behind `sweepfit simulate`.
//!
//! Preset `looplm20`: five model sizes, each a looped model read at
//! recurrent steps T = 1..4, so 20 curves, from 0 to 20B tokens, drawn from
//! the LoopLM law plus Gaussian noise and, optionally, two departures real
//! curves show (an early transient and a late rise of shallow steps).

use crate::{
    data::{Config, Dataset},
    format::format_count,
    law::{builtin_law, CompiledLaw},
};
use anyhow::Context;
use indexmap::IndexMap;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::Serialize;
use std::path::Path;

/// Model sizes of the preset, in parameters.
pub const LOOPLM20_N: [f64; 5] = [53e6, 134e6, 374e6, 778e6, 1.36e9];
/// Recurrent steps read for every model.
pub const LOOPLM20_T: [f64; 4] = [1.0, 2.0, 3.0, 4.0];
/// Last token count of every curve.
pub const LOOPLM20_TOKENS: f64 = 20e9;

/// Token scale of the warm-up transient: it has mostly faded by ~0.5B.
const WARMUP_TOKENS: f64 = 2e8;
/// Fraction of training after which the late rise starts.
const LATE_RISE_FROM: f64 = 0.6;
/// Floor on simulated losses, so absurd noise cannot make them <= 0.
const MIN_LOSS: f64 = 1e-3;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimOptions {
    /// Seed of the noise; the same seed gives the same dataset.
    pub seed: u64,
    /// Points per curve, evenly spaced in tokens from 0 to 20B inclusive
    /// (a single point sits at 0).
    pub points_per_curve: usize,
    /// Standard deviation of the Gaussian noise, in loss units; 0 gives the
    /// law exactly. The magnitude is used, so a negative value acts as
    /// positive; a non-finite one as 0.
    pub noise: f64,
    /// Height of an early transient added to every curve:
    /// `warmup * exp(-D / 2e8)`.
    pub warmup: f64,
    /// Loss added at the end of training to the shallow steps of the two
    /// smallest models: `late_rise * max(0, D/20B - 0.6)^2 / 0.16` for
    /// T = 1 and half that for T = 2.
    pub late_rise: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            points_per_curve: 500,
            noise: 0.02,
            warmup: 0.0,
            late_rise: 0.0,
        }
    }
}

/// True parameters of the preset's looplm law (raw units, in the law's
/// order). Losses start near 10 at D = 0 and end between ~2.9 and ~4.0 at
/// 20B tokens.
const LOOPLM20_TRUTH: [(&str, f64); 10] = [
    ("E", 1.8),
    ("A", 268.0),
    ("t1", 1e7),
    ("alpha", 0.30),
    ("B", 2018.0),
    ("t2", 1.06e7),
    ("beta", 0.35),
    ("C", 0.675),
    ("t3", 0.5),
    ("gamma", 1.0),
];

/// The preset's true parameters by name, in the looplm law's order.
pub fn looplm20_truth_by_name() -> impl Iterator<Item = (&'static str, f64)> {
    LOOPLM20_TRUTH.into_iter()
}

/// The looplm law the preset is drawn from (variables N, D, T), with its
/// true parameters in the law's order.
fn looplm20_law() -> (CompiledLaw, Vec<f64>) {
    let law = builtin_law("looplm")
        .and_then(|f| f.compile("laws/looplm.toml").ok())
        .expect("the built-in looplm law compiles");
    let truth = law
        .params
        .iter()
        .map(|p| {
            LOOPLM20_TRUTH
                .iter()
                .find(|(n, _)| n == p)
                .expect("a value for every looplm parameter")
                .1
        })
        .collect();
    (law, truth)
}

/// [`simulate_looplm20`], refused where a loss overflowed (noise or a
/// transient so large that it is infinite): such a sweep cannot be fitted.
pub fn simulate_looplm20_checked(o: &SimOptions) -> anyhow::Result<Dataset> {
    let ds = simulate_looplm20(o);
    if let Some(&l) = ds.loss.iter().find(|l| !l.is_finite()) {
        anyhow::bail!(
            "a simulated loss is {l}: --noise {:e}, --warmup {:e} or --late-rise {:e} is too \
             large to simulate",
            o.noise,
            o.warmup,
            o.late_rise
        );
    }
    Ok(ds)
}

/// [`simulate_looplm20_checked`] for a fit in linear space (`demo`): its
/// losses must also be small enough to square.
pub fn simulate_looplm20_to_fit(o: &SimOptions) -> anyhow::Result<Dataset> {
    let ds = simulate_looplm20_checked(o)?;
    let most = crate::data::MAX_LINEAR_LOSS;
    if let Some(&l) = ds.loss.iter().find(|l| l.abs() > most) {
        anyhow::bail!(
            "a simulated loss is {l:e}, beyond ±{most:e}, where a fit in linear space overflows: \
             --noise {:e}, --warmup {:e} or --late-rise {:e} is too large",
            o.noise,
            o.warmup,
            o.late_rise
        );
    }
    Ok(ds)
}

/// The preset's sweep: configs ordered by N, then T; run label
/// `looplm-<N>` shared by the four steps of a model (a looped run logs one
/// loss per step). Weights are all 1.
pub fn simulate_looplm20(o: &SimOptions) -> Dataset {
    let (law, truth) = looplm20_law();
    // The law's variables in its own order, read by name.
    let slot = |name: &str| {
        law.variables
            .iter()
            .position(|v| v == name)
            .expect("looplm reads N, D and T")
    };
    let (vn, vd, vt) = (slot("N"), slot("D"), slot("T"));
    let mut x = vec![0.0; law.variables.len()];
    let sd = o.noise.abs();
    let normal = (sd.is_finite() && sd > 0.0).then(|| Normal::new(0.0, sd).expect("finite sd"));
    let mut rng = StdRng::seed_from_u64(o.seed);
    let ppc = o.points_per_curve;
    let tokens_at = |i: usize| {
        if ppc > 1 {
            LOOPLM20_TOKENS * i as f64 / (ppc - 1) as f64
        } else {
            0.0
        }
    };

    let mut ds = Dataset::default();
    for (ni, &n) in LOOPLM20_N.iter().enumerate() {
        let run = format!("looplm-{}", format_count(n));
        for &t in &LOOPLM20_T {
            // Late rise only for the shallow steps of the two smallest models.
            let rise = if ni >= 2 {
                0.0
            } else if t == 1.0 {
                o.late_rise
            } else if t == 2.0 {
                0.5 * o.late_rise
            } else {
                0.0
            };
            let start = ds.tokens.len();
            for i in 0..ppc {
                let d = tokens_at(i);
                (x[vn], x[vd], x[vt]) = (n, d, t);
                let mut y = law.eval(&x, &truth);
                if o.warmup != 0.0 {
                    y += o.warmup * (-d / WARMUP_TOKENS).exp();
                }
                if rise != 0.0 {
                    let x = (d / LOOPLM20_TOKENS - LATE_RISE_FROM).max(0.0);
                    y += rise * x * x / ((1.0 - LATE_RISE_FROM) * (1.0 - LATE_RISE_FROM));
                }
                if let Some(nd) = &normal {
                    y += nd.sample(&mut rng);
                }
                ds.tokens.push(d);
                ds.loss.push(y.max(MIN_LOSS));
                ds.weight.push(1.0);
            }
            ds.configs.push(Config {
                run: run.clone(),
                n,
                t,
                start,
                len: ppc,
            });
        }
    }
    ds
}

/// Sidecar with the truth and the options, for checking a fit against:
/// `{"preset", "law", "params": {name: value} in law order, "options"}`.
pub fn write_truth_json(path: &Path, o: &SimOptions) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Truth<'a> {
        preset: &'static str,
        law: &'static str,
        params: IndexMap<&'static str, f64>,
        options: &'a SimOptions,
    }
    let params = looplm20_truth_by_name().collect();
    let truth = Truth {
        preset: "looplm20",
        law: "looplm",
        params,
        options: o,
    };
    let mut text = serde_json::to_string_pretty(&truth).context("serialising the truth")?;
    text.push('\n');
    crate::output::write_bytes(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64, ppc: usize, noise: f64) -> SimOptions {
        SimOptions {
            seed,
            points_per_curve: ppc,
            noise,
            ..SimOptions::default()
        }
    }

    #[test]
    fn default_options() {
        let o = SimOptions::default();
        assert_eq!((o.seed, o.points_per_curve), (0, 500));
        assert_eq!((o.noise, o.warmup, o.late_rise), (0.02, 0.0, 0.0));
    }

    #[test]
    fn shape_order_and_tokens() {
        let ds = simulate_looplm20(&opts(1, 50, 0.02));
        assert_eq!(ds.configs.len(), 20);
        assert_eq!(ds.points(), 20 * 50);
        assert_eq!(ds.loss.len(), ds.points());
        assert!(ds.weight.iter().all(|&w| w == 1.0));
        assert_eq!(ds.distinct_n(), LOOPLM20_N.to_vec());
        assert_eq!(ds.distinct_t(), LOOPLM20_T.to_vec());
        for (k, c) in ds.configs.iter().enumerate() {
            assert_eq!(c.n, LOOPLM20_N[k / 4]);
            assert_eq!(c.t, LOOPLM20_T[k % 4]);
            assert_eq!((c.start, c.len), (k * 50, 50));
            let tok = &ds.tokens[c.range()];
            assert_eq!(tok[0], 0.0);
            assert_eq!(tok[49], 20e9);
            assert!(tok.windows(2).all(|w| w[1] > w[0]));
        }
        assert_eq!(ds.configs[0].run, "looplm-53M");
        assert_eq!(ds.configs[3].run, "looplm-53M");
        assert_eq!(ds.configs[4].run, "looplm-134M");
        assert_eq!(ds.configs[19].run, "looplm-1.36B");
    }

    #[test]
    fn noiseless_is_the_law_and_in_the_stated_range() {
        let ds = simulate_looplm20(&opts(7, 11, 0.0));
        // The law written out here, not the compiled one the preset runs.
        let p: std::collections::HashMap<&str, f64> = looplm20_truth_by_name().collect();
        for c in &ds.configs {
            for i in c.range() {
                let d = ds.tokens[i];
                let want = p["E"]
                    + p["A"] * (c.n + p["t1"]).powf(-p["alpha"])
                    + p["B"] * (d + p["t2"]).powf(-p["beta"])
                    + p["C"] * (c.t + p["t3"]).powf(-p["gamma"]);
                let got = ds.loss[i];
                assert!((got - want).abs() <= 1e-13 * want, "{got} against {want}");
            }
            let first = ds.loss[c.start];
            let last = ds.loss[c.start + c.len - 1];
            assert!((9.0..=11.5).contains(&first), "{} T={}: {first}", c.n, c.t);
            assert!((2.5..=4.2).contains(&last), "{} T={}: {last}", c.n, c.t);
        }
    }

    #[test]
    fn deterministic_given_seed_and_seeds_differ() {
        let a = simulate_looplm20(&opts(42, 30, 0.02));
        let b = simulate_looplm20(&opts(42, 30, 0.02));
        let c = simulate_looplm20(&opts(43, 30, 0.02));
        assert_eq!(a, b);
        assert_ne!(a.loss, c.loss);
        assert_eq!(a.tokens, c.tokens);
    }

    #[test]
    fn noise_has_the_requested_size() {
        let noisy = simulate_looplm20(&opts(3, 500, 0.05));
        let clean = simulate_looplm20(&opts(3, 500, 0.0));
        let r: Vec<f64> = noisy
            .loss
            .iter()
            .zip(&clean.loss)
            .map(|(a, b)| a - b)
            .collect();
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        let sd = (r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.005, "{mean}");
        assert!((sd - 0.05).abs() < 0.003, "{sd}");
    }

    #[test]
    fn absurd_noise_keeps_losses_positive() {
        let ds = simulate_looplm20(&opts(5, 100, 50.0));
        assert!(ds.loss.iter().all(|&y| y >= MIN_LOSS));
    }

    #[test]
    fn warmup_raises_early_points_of_every_curve() {
        let clean = simulate_looplm20(&opts(0, 101, 0.0));
        let warm = simulate_looplm20(&SimOptions {
            warmup: 1.0,
            ..opts(0, 101, 0.0)
        });
        for c in &clean.configs {
            let s = c.start;
            // D = 0 gets the full amplitude; by 20B nothing is left.
            assert!((warm.loss[s] - clean.loss[s] - 1.0).abs() < 1e-12);
            assert!(warm.loss[s + 100] - clean.loss[s + 100] < 1e-12);
            // Mostly gone past ~0.5B tokens (point 3 is 0.6B).
            assert!(warm.loss[s + 3] - clean.loss[s + 3] < 0.06);
        }
    }

    #[test]
    fn late_rise_hits_only_shallow_steps_of_small_models() {
        let clean = simulate_looplm20(&opts(0, 101, 0.0));
        let late = simulate_looplm20(&SimOptions {
            late_rise: 0.4,
            ..opts(0, 101, 0.0)
        });
        for c in &clean.configs {
            let small = c.n < 200e6;
            let want = match (small, c.t as u32) {
                (true, 1) => 0.4,
                (true, 2) => 0.2,
                _ => 0.0,
            };
            let end = c.start + c.len - 1;
            assert!(
                (late.loss[end] - clean.loss[end] - want).abs() < 1e-12,
                "{c:?}"
            );
            // Nothing before 60% of training.
            let at60 = c.start + 60;
            assert_eq!(late.loss[at60], clean.loss[at60]);
            if want > 0.0 {
                // The curve really turns up at the end.
                assert!(late.loss[end] > late.loss[end - 10]);
            }
        }
    }

    #[test]
    fn departures_do_not_change_the_noise() {
        let base = opts(9, 40, 0.02);
        let a = simulate_looplm20(&base);
        let b = simulate_looplm20(&SimOptions {
            warmup: 0.5,
            late_rise: 0.3,
            ..base.clone()
        });
        let clean = simulate_looplm20(&SimOptions {
            noise: 0.0,
            ..base.clone()
        });
        let dep = simulate_looplm20(&SimOptions {
            noise: 0.0,
            warmup: 0.5,
            late_rise: 0.3,
            ..base
        });
        for i in 0..a.points() {
            let na = a.loss[i] - clean.loss[i];
            let nb = b.loss[i] - dep.loss[i];
            assert!((na - nb).abs() < 1e-12);
        }
    }

    #[test]
    fn single_point_and_empty_curves() {
        let one = simulate_looplm20(&opts(0, 1, 0.0));
        assert_eq!(one.points(), 20);
        assert!(one.tokens.iter().all(|&d| d == 0.0));
        let none = simulate_looplm20(&opts(0, 0, 0.0));
        assert_eq!((none.configs.len(), none.points()), (20, 0));
    }

    #[test]
    fn truth_json_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.json");
        let o = SimOptions {
            seed: 3,
            late_rise: 0.25,
            ..SimOptions::default()
        };
        write_truth_json(&path, &o).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["preset"], "looplm20");
        assert_eq!(v["law"], "looplm");
        assert_eq!(v["params"]["t2"], 1.06e7);
        assert_eq!(v["options"]["seed"], 3);
        assert_eq!(v["options"]["points_per_curve"], 500);
        assert_eq!(v["options"]["late_rise"], 0.25);
        // Parameters in law order (serde_json::Value would sort keys).
        let mut last = 0;
        for (name, _) in looplm20_truth_by_name() {
            let pos = text.find(&format!("\"{name}\":")).unwrap();
            assert!(pos > last, "{name}");
            last = pos;
        }
    }
}
