//! Weighted evaluation on the GPU (`GpuLaw::set_weightings` and
//! `evaluate_weighted`) against the f64 specification
//! (`common::evaluator::reference`), for the looplm law compiled from its
//! formula on simulated sweeps: curve multipliers, token-fraction limits,
//! Poisson point counts and their combinations; every loss and space;
//! points and starts split into chunks; unweighted starts in a weighted
//! batch; invalid indices and weightings; replaced weightings; undefined or
//! overflowing points that count only with weight; curves out of storage
//! order. The Poisson counts the GPU draws are checked to be exactly the
//! CPU's, point by point.
//!
//! The GPU works in f32: objective within 1e-5 relative, gradient within
//! 1e-3 of the reference gradient's norm (objective within 1e-6 where two
//! GPU pipelines are compared). Sweeps are in units where model sizes and
//! token counts are at most 1, so every gradient entry is of a size that
//! the check against the norm tests.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, which runs them on Mesa's software Vulkan driver) and otherwise skip
//! with a printed reason.

mod common;
use common::adapter;
use common::evaluator::*;

use sweepfit::backend::gpu::{GpuDevice, GpuLaw, GpuLimits};
use sweepfit::backend::weights::{
    self, resolve_curves, Resolved, Weighting, ALL_POINTS, UNWEIGHTED,
};
use sweepfit::data::Dataset;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::CompiledLaw;
use sweepfit::objective::{LossKind, Objective, Space};
use sweepfit::simulate::{simulate_looplm20, SimOptions};

/// 20 curves (5 sizes x 4 recurrent steps) of `points` points each, in
/// unit scale.
fn sim(points: usize) -> Dataset {
    unit_scaled(&simulate_looplm20(&SimOptions {
        points_per_curve: points,
        ..SimOptions::default()
    }))
}

/// The looplm law on a sweep, with its objective.
struct Case {
    law: CompiledLaw,
    sweep: Sweep,
    obj: Objective,
}

impl Case {
    fn new(ds: &Dataset, obj: Objective) -> Case {
        Case {
            law: looplm_law(),
            sweep: sweep_of(ds, &obj),
            obj,
        }
    }

    fn np(&self) -> usize {
        self.law.params.len()
    }

    /// The case on a freshly opened device, as the fits build it.
    fn gpu(&self, adapter: &wgpu::Adapter, limits: Option<GpuLimits>) -> GpuLaw {
        let dev = GpuDevice::open(adapter).expect("GPU device");
        let plan = Plan::for_sweep(&self.law, &self.sweep);
        GpuLaw::new(&dev, &plan, &self.sweep, self.obj, limits).expect("GPU law")
    }

    fn resolve(&self, ws: &[Weighting]) -> Vec<Resolved> {
        ws.iter()
            .map(|w| resolve_curves(w, &self.sweep.curves, &self.sweep.w).expect("valid weighting"))
            .collect()
    }

    fn reference(&self, w: Option<&Resolved>, p: &[f64]) -> (f64, Vec<f64>) {
        reference(&self.law, &self.sweep, &self.obj, w, p)
    }

    /// Start k of the GPU's answer `got` against the reference under
    /// `which[k]`; a non-finite reference objective must be non-finite on
    /// the GPU too.
    fn expect_reference(
        &self,
        resolved: &[Resolved],
        params: &[Vec<f64>],
        which: &[u32],
        got: &Evals,
        what: &str,
    ) {
        let np = self.np();
        for (k, (p, &w)) in params.iter().zip(which).enumerate() {
            let r = (w != UNWEIGHTED).then(|| &resolved[w as usize]);
            let (f, g) = self.reference(r, p);
            let at = format!("{what} start {k} weighting {w}");
            let gk = &got.1[k * np..(k + 1) * np];
            if f.is_nan() {
                assert!(
                    got.0[k].is_nan(),
                    "{at}: f {} where the reference is NaN",
                    got.0[k]
                );
                continue;
            }
            assert!(
                got.0[k].is_finite() && gk.iter().all(|v| v.is_finite()),
                "{at}: non-finite {} {gk:?} where the reference is {f}",
                got.0[k]
            );
            assert_close((got.0[k], gk), (f, &g), 1e-5, 1e-3, &at);
        }
    }
}

/// Objectives, and gradients row-major, of a batch of starts.
type Evals = (Vec<f64>, Vec<f64>);

/// The GPU's plain evaluation of `params`.
fn plain(gpu: &mut GpuLaw, params: &[Vec<f64>]) -> Evals {
    let flat = params.concat();
    let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; flat.len()]);
    gpu.evaluate(&flat, &mut f, &mut g).expect("evaluation");
    (f, g)
}

/// The GPU's evaluation of `params[k]` under registered weighting
/// `which[k]`.
fn weighted(gpu: &mut GpuLaw, params: &[Vec<f64>], which: &[u32]) -> anyhow::Result<Evals> {
    let flat = params.concat();
    let (mut f, mut g) = (vec![0.0; which.len()], vec![0.0; flat.len()]);
    gpu.evaluate_weighted(&flat, which, &mut f, &mut g)?;
    Ok((f, g))
}

/// Register `weightings` on the GPU, evaluate `params[k]` under `which[k]`
/// and compare with the reference; a repeated call, which reuses every
/// buffer, must give the same answer.
fn check(
    case: &Case,
    weightings: &[Weighting],
    params: &[Vec<f64>],
    which: &[u32],
    limits: Option<GpuLimits>,
    what: &str,
) {
    let Some(adapter) = adapter() else { return };
    let mut gpu = case.gpu(&adapter, limits);
    let resolved = case.resolve(weightings);
    gpu.set_weightings(&resolved).expect("set_weightings");
    let got = weighted(&mut gpu, params, which).unwrap();
    case.expect_reference(&resolved, params, which, &got, what);
    let again = weighted(&mut gpu, params, which).unwrap();
    assert_eq!(got, again, "{what}: repeated evaluation differs");
}

/// Each of `n_weightings` weightings (and UNWEIGHTED) for every parameter
/// vector.
fn all_pairs(n_weightings: usize, params: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<u32>) {
    let mut ps = Vec::new();
    let mut which = Vec::new();
    for p in params {
        for w in (0..n_weightings as u32).chain([UNWEIGHTED]) {
            ps.push(p.clone());
            which.push(w);
        }
    }
    (ps, which)
}

/// Multipliers with zeros and counts, token-fraction limits, Poisson
/// seeds, and their combinations, for a sweep of `nc` curves of `len`
/// points each.
fn mixed_weightings(nc: usize, len: u32) -> Vec<Weighting> {
    let counts: Vec<f64> = (0..nc).map(|c| [0.0, 1.0, 2.0, 3.0][c % 4]).collect();
    let firsts: Vec<u32> = (0..nc as u32)
        .map(|c| match c % 5 {
            0 => ALL_POINTS,
            1 => len / 2,
            2 => 1,
            3 => 0,
            _ => len - 7,
        })
        .collect();
    vec![
        // Curve-level bootstrap: counts 0..3 per curve.
        Weighting {
            config: counts.clone(),
            first: vec![ALL_POINTS; nc],
            poisson: None,
        },
        // Fractional multipliers.
        Weighting {
            config: (0..nc).map(|c| 0.25 + c as f64 / 7.0).collect(),
            first: vec![ALL_POINTS; nc],
            poisson: None,
        },
        // Token-fraction folds.
        Weighting {
            config: vec![1.0; nc],
            first: firsts.clone(),
            poisson: None,
        },
        // Point resampling with two seeds, 0 included.
        Weighting {
            poisson: Some(0),
            ..Weighting::uniform(nc)
        },
        Weighting {
            poisson: Some(12345),
            ..Weighting::uniform(nc)
        },
        // Everything at once.
        Weighting {
            config: counts,
            first: firsts,
            poisson: Some(0xdead_beef),
        },
    ]
}

#[test]
fn weightings_match_the_reference() {
    let case = Case::new(&sim(150), Objective::default());
    let ws = mixed_weightings(case.sweep.curves.len(), 150);
    let (params, which) = all_pairs(ws.len(), &scaled_starts(&case.law, 4));
    check(&case, &ws, &params, &which, None, "mixed weightings");
}

#[test]
fn every_loss_and_space() {
    let ds = sim(120);
    for loss in [LossKind::Mse, LossKind::Huber] {
        for space in [Space::Linear, Space::Log] {
            // Small enough that residuals fall on both sides of it.
            let delta = if space == Space::Log { 1e-3 } else { 0.02 };
            let case = Case::new(&ds, Objective { loss, space, delta });
            let ws = mixed_weightings(case.sweep.curves.len(), 120);
            let (params, which) = all_pairs(ws.len(), &scaled_starts(&case.law, 3));
            check(
                &case,
                &ws,
                &params,
                &which,
                None,
                &format!("{:?}", case.obj),
            );
        }
    }
}

/// Small limits split the points into several chunks (whose first global
/// index the Poisson hash and the `first` limits depend on, and with
/// curves straddling chunk boundaries) and the starts into several
/// dispatches.
#[test]
fn chunking_of_points_and_starts() {
    let case = Case::new(&sim(200), Objective::default());
    let limits = GpuLimits {
        max_points_per_chunk: 512,
        max_starts_per_dispatch: 64,
        max_groups: 3,
    };
    let ws = mixed_weightings(case.sweep.curves.len(), 200);
    let params = scaled_starts(&case.law, 150);
    let which: Vec<u32> = (0..params.len())
        .map(|k| match k % (ws.len() + 1) {
            i if i == ws.len() => UNWEIGHTED,
            i => i as u32,
        })
        .collect();
    check(&case, &ws, &params, &which, Some(limits), "chunked");
}

/// UNWEIGHTED starts in a weighted batch give what plain evaluation gives.
/// Both run the same arithmetic on the same weights but in different
/// pipelines, which a driver may compile differently, so they are compared
/// at f32 rounding level rather than bit for bit.
#[test]
fn unweighted_in_a_weighted_batch_equals_plain_evaluation() {
    let Some(adapter) = adapter() else { return };
    let case = Case::new(&sim(150), Objective::default());
    let np = case.np();
    let mut gpu = case.gpu(&adapter, None);
    let params = scaled_starts(&case.law, 70);
    let want = plain(&mut gpu, &params);
    // Plain evaluation itself is right, or agreeing with it proves nothing.
    case.expect_reference(
        &[],
        &params,
        &vec![UNWEIGHTED; params.len()],
        &want,
        "plain",
    );
    let same = |got: &Evals, k: usize, what: &str| {
        assert_close(
            (got.0[k], &got.1[k * np..(k + 1) * np]),
            (want.0[k], &want.1[k * np..(k + 1) * np]),
            1e-6,
            1e-3,
            &format!("{what} start {k}"),
        );
    };
    // Before any weighting is registered, UNWEIGHTED alone is valid.
    let got = weighted(&mut gpu, &params, &vec![UNWEIGHTED; params.len()]).unwrap();
    (0..params.len()).for_each(|k| same(&got, k, "unweighted only"));

    let ws = mixed_weightings(case.sweep.curves.len(), 150);
    let resolved = case.resolve(&ws);
    gpu.set_weightings(&resolved).unwrap();
    let which: Vec<u32> = (0..params.len() as u32)
        .map(|k| if k % 2 == 0 { UNWEIGHTED } else { k % 6 })
        .collect();
    let got = weighted(&mut gpu, &params, &which).unwrap();
    for (k, &w) in which.iter().enumerate() {
        if w == UNWEIGHTED {
            same(&got, k, "mixed batch");
        }
    }
    // The weighted starts beside them are right too.
    case.expect_reference(&resolved, &params, &which, &got, "mixed batch");
    // Plain evaluation is unaffected by the registered weightings.
    assert_eq!(want, plain(&mut gpu, &params));
}

#[test]
fn invalid_indices_and_weightings_are_errors() {
    let Some(adapter) = adapter() else { return };
    let case = Case::new(&sim(40), Objective::default());
    let nc = case.sweep.curves.len();
    let mut gpu = case.gpu(&adapter, None);
    let params = scaled_starts(&case.law, 3);
    // Nothing registered yet.
    assert!(weighted(&mut gpu, &params, &[0, 0, 0]).is_err());
    let two = case.resolve(&[Weighting::uniform(nc), Weighting::uniform(nc)]);
    gpu.set_weightings(&two).unwrap();
    let err = weighted(&mut gpu, &params, &[0, 2, UNWEIGHTED]).unwrap_err();
    assert!(err.to_string().contains("weighting 2"), "{err:#}");
    // One index short of the starts.
    let flat = params.concat();
    let (mut f, mut g) = (vec![0.0; 3], vec![0.0; flat.len()]);
    assert!(gpu
        .evaluate_weighted(&flat, &[0, 1], &mut f, &mut g)
        .is_err());
    // Parameters of two starts for three.
    let mut g2 = vec![0.0; 2 * case.np()];
    let two_starts = &flat[..2 * case.np()];
    assert!(gpu
        .evaluate_weighted(two_starts, &[0, 1, UNWEIGHTED], &mut f, &mut g2)
        .is_err());

    // Invalid weightings are rejected.
    let resolve = |w: &Weighting| resolve_curves(w, &case.sweep.curves, &case.sweep.w);
    let negative = Weighting {
        config: vec![-1.0; nc],
        ..Weighting::uniform(nc)
    };
    assert!(resolve(&negative).is_err());
    let empty = Weighting {
        config: vec![0.0; nc],
        ..Weighting::uniform(nc)
    };
    assert!(resolve(&empty).is_err());
    assert!(resolve(&Weighting::uniform(nc + 1)).is_err());
    // The GPU refuses one resolved for other curves, and keeps the
    // registered ones.
    let mut other = two[0].clone();
    other.mult.push(0.0);
    other.first.push(ALL_POINTS);
    assert!(gpu.set_weightings(&[two[0].clone(), other]).is_err());
    let which = [0, 1, UNWEIGHTED];
    let got = weighted(&mut gpu, &params, &which).unwrap();
    case.expect_reference(&two, &params, &which, &got, "after a refused weighting");
}

/// Registering again replaces the weightings, whether the new set is
/// larger (a new buffer) or smaller (the old one reused).
#[test]
fn weightings_can_be_replaced() {
    let Some(adapter) = adapter() else { return };
    let case = Case::new(&sim(60), Objective::default());
    let nc = case.sweep.curves.len();
    let mut gpu = case.gpu(&adapter, None);
    let params = scaled_starts(&case.law, 5);
    let many = mixed_weightings(nc, 60);
    let few = vec![Weighting {
        poisson: Some(99),
        ..Weighting::uniform(nc)
    }];
    for ws in [&few, &many, &few] {
        let resolved = case.resolve(ws);
        gpu.set_weightings(&resolved).unwrap();
        let which: Vec<u32> = (0..params.len() as u32)
            .map(|k| k % ws.len() as u32)
            .collect();
        let got = weighted(&mut gpu, &params, &which).unwrap();
        case.expect_reference(&resolved, &params, &which, &got, "replaced");
    }
}

/// Undefined points (D + t2 <= 0) make f NaN only where they keep a
/// positive weight; with weight 0 (left out by a multiplier, a limit or a
/// Poisson count of 0) they contribute nothing.
#[test]
fn undefined_points_count_only_with_weight() {
    let Some(adapter) = adapter() else { return };
    let mut ds = sim(50);
    // Every curve starts at 0 tokens: move all but curve 0 away from 0 so
    // that, with t2 < 0, its first point (point 0 of the sweep) alone is
    // undefined.
    for c in &ds.configs[1..] {
        for d in &mut ds.tokens[c.range()] {
            *d += 1e-3;
        }
    }
    let case = Case::new(&ds, Objective::default());
    let nc = case.sweep.curves.len();
    let mut p = scaled_starts(&case.law, 1).remove(0);
    p[param_index(&case.law, "t2")] = -1e-6;
    // Point 0's Poisson count under a seed, as the CPU draws it.
    let count0 = |seed: u32| weights::poisson1(weights::point_hash(weights::mix(seed), 0));
    let zero_seed = (0..).find(|&s| count0(s) == 0).unwrap();
    let kept_seed = (0..).find(|&s| count0(s) > 0).unwrap();
    let mut without = Weighting::uniform(nc);
    without.config[0] = 0.0;
    let mut no_prefix = Weighting::uniform(nc);
    no_prefix.first[0] = 0;
    let mut with = Weighting::uniform(nc);
    with.first[0] = 1;
    let ws = [
        without,
        no_prefix,
        Weighting {
            poisson: Some(zero_seed),
            ..Weighting::uniform(nc)
        },
        with,
        Weighting {
            poisson: Some(kept_seed),
            ..Weighting::uniform(nc)
        },
    ];
    let mut gpu = case.gpu(&adapter, None);
    let resolved = case.resolve(&ws);
    gpu.set_weightings(&resolved).unwrap();
    let which = [0, 1, 2, 3, 4, UNWEIGHTED];
    let params = vec![p; 6];
    let got = weighted(&mut gpu, &params, &which).unwrap();
    // Finite and right where the point is left out...
    case.expect_reference(&resolved, &params[..3], &which[..3], &got, "left out");
    // ...NaN where it counts (in the reference too, so the case is real).
    for (k, &w) in which.iter().enumerate().skip(3) {
        let r = (w != UNWEIGHTED).then(|| &resolved[w as usize]);
        let want = case.reference(r, &params[k]).0;
        assert!(want.is_nan(), "reference start {k}: {want}");
        assert!(got.0[k].is_nan(), "gpu start {k}: {}", got.0[k]);
    }
}

/// The Poisson counts the GPU draws are exactly the CPU's
/// (`Resolved::factor`), at every point, for several seeds.
///
/// The law is made constant (A = B = C = 0, E = 2) and every target 1, so
/// each point's residual is exactly 1 and rho exactly 1/2 in f32 too. A
/// weighting that keeps only the first j+1 points of curve c, with
/// multiplier 1 and no normalisation, then has f = w/2 x (sum of the GPU's
/// counts over those points); the counts are integers below 10 and
/// w = 1/1000, so each prefix sum is read back exactly by rounding and the
/// count at each point is the difference of two of them. Small chunks
/// put points at many global offsets, which the hash keys depend on.
/// Normalised Poisson weightings are checked against the reference as in
/// the other tests.
#[test]
fn poisson_counts_are_exact() {
    let Some(adapter) = adapter() else { return };
    let mut case = Case::new(&sim(50), Objective::default()); // 20 curves, 1000 points
    case.sweep.y.fill(1.0);
    let w = case.sweep.w[0];
    assert!(case.sweep.w.iter().all(|&v| v == w), "uniform weights");
    let nc = case.sweep.curves.len();
    let mut p = scaled_starts(&case.law, 1).remove(0);
    for (name, v) in [("E", 2.0), ("A", 0.0), ("B", 0.0), ("C", 0.0)] {
        p[param_index(&case.law, name)] = v;
    }
    let limits = GpuLimits {
        max_points_per_chunk: 256,
        max_starts_per_dispatch: 64,
        max_groups: 2,
    };
    let mut gpu = case.gpu(&adapter, Some(limits));
    let seeds = [0u32, 1, 2, 7, 1000, 0xffff_ffff];
    let mut seen = [0usize; 10];
    for &seed in &seeds {
        let all = Resolved {
            mult: vec![1.0; nc],
            first: vec![ALL_POINTS; nc],
            poisson: Some(weights::mix(seed)),
        };
        // One weighting per (curve, prefix), in point order.
        let mut prefixes = Vec::new();
        for (c, r) in case.sweep.curves.iter().enumerate() {
            for j in 0..r.len() {
                let mut mult = vec![0.0; nc];
                mult[c] = 1.0;
                prefixes.push(Resolved {
                    mult,
                    first: vec![j as u32 + 1; nc],
                    poisson: all.poisson,
                });
            }
        }
        gpu.set_weightings(&prefixes).unwrap();
        let which: Vec<u32> = (0..prefixes.len() as u32).collect();
        let params = vec![p.clone(); prefixes.len()];
        let (f, _) = weighted(&mut gpu, &params, &which).unwrap();
        let mut k = 0;
        for (c, r) in case.sweep.curves.iter().enumerate() {
            let mut before = 0.0;
            for (pos, i) in r.clone().enumerate() {
                let sum = f[k] / (0.5 * w);
                k += 1;
                let rounded = sum.round();
                assert!(
                    (sum - rounded).abs() < 0.05,
                    "seed {seed} curve {c}: prefix sum {sum} is not a whole count"
                );
                let gpu_count = rounded - before;
                before = rounded;
                let cpu_count = all.factor(c, pos, i);
                assert_eq!(
                    gpu_count, cpu_count,
                    "seed {seed}: count of point {i} (curve {c}, position {pos})"
                );
                seen[cpu_count as usize] += 1;
            }
        }
    }
    // The draws vary, so equal counts are not equal by accident.
    assert!(
        seen[0] > 0 && seen[1] > 0 && seen[2] > 0 && seen[3] > 0,
        "{seen:?}"
    );

    // The same seeds as whole, normalised weightings.
    let ws: Vec<Weighting> = seeds
        .iter()
        .map(|&s| Weighting {
            poisson: Some(s),
            ..Weighting::uniform(nc)
        })
        .collect();
    let which: Vec<u32> = (0..ws.len() as u32).collect();
    let params = scaled_starts(&case.law, ws.len());
    check(&case, &ws, &params, &which, Some(limits), "poisson seeds");
}

/// Curves listed out of storage order: the GPU packs points in list order,
/// but hash keys are the points' indices in the sweep and positions count
/// from each curve's own start.
#[test]
fn configurations_out_of_storage_order() {
    let case = Case::new(&sim(60), Objective::default());
    let s = case.sweep;
    let curves: Vec<_> = s.curves.iter().rev().cloned().collect();
    assert_ne!(
        curves[0].start, 0,
        "the first curve listed is not stored first"
    );
    let case = Case {
        sweep: Sweep::new(s.n_vars, curves, s.vars, s.y, s.w, s.axis),
        ..case
    };
    let ws = mixed_weightings(case.sweep.curves.len(), 60);
    let (params, which) = all_pairs(ws.len(), &scaled_starts(&case.law, 2));
    let limits = GpuLimits {
        max_points_per_chunk: 256,
        max_starts_per_dispatch: 64,
        max_groups: 2,
    };
    check(&case, &ws, &params, &which, Some(limits), "reordered");
}

/// Curves left out by a multiplier of 0 add nothing, even where their N
/// term overflows f32 (N + t1 rounds to 0 for the smallest model), which
/// would otherwise turn their zero sums into 0 * inf = NaN.
#[test]
fn left_out_curves_may_overflow() {
    let ds = sim(40);
    let case = Case::new(&ds, Objective::default());
    let n_min = ds.configs.iter().map(|c| c.n).fold(f64::INFINITY, f64::min);
    let mut p = scaled_starts(&case.law, 1).remove(0);
    p[param_index(&case.law, "t1")] = -n_min + 1e-30;
    let keep: Vec<f64> = ds
        .configs
        .iter()
        .map(|c| (c.n != n_min) as u32 as f64)
        .collect();
    let nc = keep.len();
    let ws = [
        Weighting {
            config: keep.clone(),
            ..Weighting::uniform(nc)
        },
        Weighting {
            config: keep,
            first: vec![20; nc],
            poisson: Some(5),
        },
    ];
    check(
        &case,
        &ws,
        &[p.clone(), p],
        &[0, 1],
        None,
        "overflowing curve left out",
    );
}
