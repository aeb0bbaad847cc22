//! Weighted evaluation on the GPU against the f64 specification
//! (weights::reference_evaluate). The GPU works in f32; tolerances as in
//! gpu_parity.rs: objective within 1e-5 relative, gradient within 1e-3 of
//! the reference gradient's norm.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, which runs them on Mesa's software Vulkan driver) and otherwise skip
//! with a printed reason.

mod common;
use common::{adapter, compare, param_batch, sweep};

use sweepfit::backend::gpu::GpuLimits;
use sweepfit::backend::weights::{self, Weighting, ALL_POINTS, UNWEIGHTED};
use sweepfit::backend::{Backend, Eval, GpuBackend, Prepared};
use sweepfit::law::NP;
use sweepfit::objective::{LossKind, Objective, Space};

/// The reference evaluation of every start under its weighting.
fn reference(
    data: &Prepared,
    weightings: &[Weighting],
    params: &[[f64; NP]],
    which: &[u32],
) -> Vec<Eval> {
    let resolved: Vec<_> = weightings
        .iter()
        .map(|w| weights::resolve(w, data).expect("valid weighting"))
        .collect();
    params
        .iter()
        .zip(which)
        .map(|(p, &w)| {
            let r = (w != UNWEIGHTED).then(|| &resolved[w as usize]);
            weights::reference_evaluate(data, r, p)
        })
        .collect()
}

/// Register `weightings` on a GPU backend, evaluate `params[k]` under
/// `which[k]` and compare with the reference; a repeated call must give
/// the same answer.
fn check(
    data: &Prepared,
    weightings: &[Weighting],
    params: &[[f64; NP]],
    which: &[u32],
    limits: Option<GpuLimits>,
    what: &str,
) {
    let Some(adapter) = adapter() else { return };
    let mut gpu = GpuBackend::on_adapter(&adapter, data, limits).expect("GPU backend");
    gpu.set_weightings(weightings).expect("set_weightings");
    let mut got = vec![Eval::ZERO; params.len()];
    gpu.evaluate_weighted(params, which, &mut got).unwrap();
    compare(
        &reference(data, weightings, params, which),
        &got,
        1e-5,
        what,
    );
    let mut again = vec![Eval::ZERO; params.len()];
    gpu.evaluate_weighted(params, which, &mut again).unwrap();
    assert_eq!(got, again, "{what}: repeated evaluation differs");
}

/// Each of `weightings` (and UNWEIGHTED) for every parameter vector.
fn all_pairs(n_weightings: usize, params: &[[f64; NP]]) -> (Vec<[f64; NP]>, Vec<u32>) {
    let mut ps = Vec::new();
    let mut which = Vec::new();
    for p in params {
        for w in (0..n_weightings as u32).chain([UNWEIGHTED]) {
            ps.push(*p);
            which.push(w);
        }
    }
    (ps, which)
}

/// Multipliers with zeros and counts, token-fraction limits, Poisson
/// seeds, and their combinations, for a sweep of `nc` configurations of
/// `len` points each.
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
        // Curve-level bootstrap: counts 0..3 per configuration.
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
    let ds = sweep(150);
    let data = Prepared::new(&ds, Objective::default());
    let ws = mixed_weightings(ds.configs.len(), 150);
    let (params, which) = all_pairs(ws.len(), &param_batch(4));
    check(&data, &ws, &params, &which, None, "mixed weightings");
}

#[test]
fn every_loss_and_space() {
    let ds = sweep(120);
    let ws = mixed_weightings(ds.configs.len(), 120);
    for loss in [LossKind::Mse, LossKind::Huber] {
        for space in [Space::Linear, Space::Log] {
            let delta = if space == Space::Log { 1e-3 } else { 0.02 };
            let o = Objective { loss, space, delta };
            let data = Prepared::new(&ds, o);
            let (params, which) = all_pairs(ws.len(), &param_batch(3));
            check(&data, &ws, &params, &which, None, &format!("{o:?}"));
        }
    }
}

/// Small limits split the points into several chunks (whose first global
/// index the Poisson hash and the `first` limits depend on, and with
/// configurations straddling chunk boundaries) and the starts into several
/// dispatches.
#[test]
fn chunking_of_points_and_starts() {
    let ds = sweep(200);
    let data = Prepared::new(&ds, Objective::default());
    let limits = GpuLimits {
        max_points_per_chunk: 512,
        max_starts_per_dispatch: 64,
        max_groups: 3,
    };
    let ws = mixed_weightings(ds.configs.len(), 200);
    let params = param_batch(150);
    let which: Vec<u32> = (0..params.len())
        .map(|k| match k % (ws.len() + 1) {
            i if i == ws.len() => UNWEIGHTED,
            i => i as u32,
        })
        .collect();
    check(&data, &ws, &params, &which, Some(limits), "chunked");
}

/// UNWEIGHTED starts in a weighted batch give what plain evaluation gives.
/// Both run the same arithmetic on the same weights but in different
/// pipelines, which a driver may compile differently, so they are compared
/// at f32 rounding level rather than bit for bit.
#[test]
fn unweighted_in_a_weighted_batch_equals_plain_evaluation() {
    let Some(adapter) = adapter() else { return };
    let ds = sweep(150);
    let data = Prepared::new(&ds, Objective::default());
    let mut gpu = GpuBackend::on_adapter(&adapter, &data, None).expect("GPU backend");
    let params = param_batch(70);
    let mut plain = vec![Eval::ZERO; params.len()];
    gpu.evaluate(&params, &mut plain).unwrap();
    // Before any weighting is registered, UNWEIGHTED alone is valid.
    let mut got = vec![Eval::ZERO; params.len()];
    gpu.evaluate_weighted(&params, &vec![UNWEIGHTED; params.len()], &mut got)
        .unwrap();
    compare(&plain, &got, 1e-6, "unweighted only");

    let ws = mixed_weightings(ds.configs.len(), 150);
    gpu.set_weightings(&ws).unwrap();
    let which: Vec<u32> = (0..params.len() as u32)
        .map(|k| if k % 2 == 0 { UNWEIGHTED } else { k % 6 })
        .collect();
    gpu.evaluate_weighted(&params, &which, &mut got).unwrap();
    for (k, &w) in which.iter().enumerate() {
        if w == UNWEIGHTED {
            compare(&plain[k..k + 1], &got[k..k + 1], 1e-6, "mixed batch");
        }
    }
    // Plain evaluation is unaffected by the registered weightings.
    let mut after = vec![Eval::ZERO; params.len()];
    gpu.evaluate(&params, &mut after).unwrap();
    assert_eq!(plain, after);
}

#[test]
fn invalid_indices_and_weightings_are_errors() {
    let Some(adapter) = adapter() else { return };
    let ds = sweep(40);
    let data = Prepared::new(&ds, Objective::default());
    let nc = ds.configs.len();
    let mut gpu = GpuBackend::on_adapter(&adapter, &data, None).expect("GPU backend");
    let params = param_batch(3);
    let mut out = vec![Eval::ZERO; 3];
    // Nothing registered yet.
    assert!(gpu
        .evaluate_weighted(&params, &[0, 0, 0], &mut out)
        .is_err());
    gpu.set_weightings(&[Weighting::uniform(nc), Weighting::uniform(nc)])
        .unwrap();
    let err = gpu
        .evaluate_weighted(&params, &[0, 2, UNWEIGHTED], &mut out)
        .unwrap_err();
    assert!(err.to_string().contains("weighting 2"), "{err:#}");
    assert!(gpu.evaluate_weighted(&params, &[0, 1], &mut out).is_err());
    // Invalid weightings are rejected and leave the registered ones.
    let negative = Weighting {
        config: vec![-1.0; nc],
        ..Weighting::uniform(nc)
    };
    assert!(gpu.set_weightings(&[negative]).is_err());
    let empty = Weighting {
        config: vec![0.0; nc],
        ..Weighting::uniform(nc)
    };
    assert!(gpu.set_weightings(&[empty]).is_err());
    assert!(gpu.set_weightings(&[Weighting::uniform(nc + 1)]).is_err());
    gpu.evaluate_weighted(&params, &[0, 1, UNWEIGHTED], &mut out)
        .unwrap();
    assert!(out.iter().all(|e| e.is_finite()));
}

/// Registering again replaces the weightings, whether the new set is
/// larger (a new buffer) or smaller (the old one reused).
#[test]
fn weightings_can_be_replaced() {
    let Some(adapter) = adapter() else { return };
    let ds = sweep(60);
    let data = Prepared::new(&ds, Objective::default());
    let nc = ds.configs.len();
    let mut gpu = GpuBackend::on_adapter(&adapter, &data, None).expect("GPU backend");
    let params = param_batch(5);
    let many = mixed_weightings(nc, 60);
    let few = vec![Weighting {
        poisson: Some(99),
        ..Weighting::uniform(nc)
    }];
    for ws in [&few, &many, &few] {
        gpu.set_weightings(ws).unwrap();
        let which: Vec<u32> = (0..params.len() as u32)
            .map(|k| k % ws.len() as u32)
            .collect();
        let mut got = vec![Eval::ZERO; params.len()];
        gpu.evaluate_weighted(&params, &which, &mut got).unwrap();
        compare(
            &reference(&data, ws, &params, &which),
            &got,
            1e-5,
            "replaced",
        );
    }
}

/// Undefined points (d + t2 <= 0) make f NaN only where they keep a
/// positive weight; with weight 0 (left out by a multiplier, a limit or a
/// Poisson count of 0) they contribute nothing.
#[test]
fn undefined_points_count_only_with_weight() {
    let Some(adapter) = adapter() else { return };
    let ds = sweep(50);
    let mut data = Prepared::new(&ds, Objective::default());
    let nc = ds.configs.len();
    // Every curve starts at 0 tokens: move all but configuration 0 away
    // from 0 so that, with t2 < 0, its first point alone is undefined.
    for c in &data.configs[1..] {
        for d in &mut data.d[c.start..c.start + c.len] {
            *d += 1e-3;
        }
    }
    let mut p = param_batch(1)[0];
    p[6] = -1e-6;
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
    let mut gpu = GpuBackend::on_adapter(&adapter, &data, None).expect("GPU backend");
    gpu.set_weightings(&ws).unwrap();
    let which = [0, 1, 2, 3, 4, UNWEIGHTED];
    let params = [p; 6];
    let mut out = vec![Eval::ZERO; 6];
    gpu.evaluate_weighted(&params, &which, &mut out).unwrap();
    let want = reference(&data, &ws, &params, &which);
    compare(&want[..3], &out[..3], 1e-5, "undefined point left out");
    for k in 3..6 {
        assert!(want[k].f.is_nan(), "reference start {k}: {:?}", want[k]);
        assert!(out[k].f.is_nan(), "gpu start {k}: {:?}", out[k]);
    }
}

/// The Poisson counts on the GPU are exactly those of weights::poisson1.
///
/// Residuals are set to lie in [1, 2) at the evaluated parameters, so
/// rho = r^2 / 2 >= 1/2 everywhere and a count off by one at any point i
/// moves f by at least w_i m / 2 (m: the weighting's normalised
/// multiplier). With 1000 points that is ~2e-4 of f, asserted below to be
/// over 10 times the f32 tolerance for each seed, so a single wrong count
/// fails the comparison. Small chunks put points at many global offsets,
/// which the hash keys depend on.
#[test]
fn poisson_counts_are_exact() {
    let Some(adapter) = adapter() else { return };
    let ds = sweep(50); // 20 curves, 1000 points
    let mut data = Prepared::new(&ds, Objective::default());
    let p = param_batch(1)[0];
    let mut fill = 0.0f64;
    for c in &data.configs {
        let base = p[0] + p[1] * (c.n + p[3]).powf(-p[2]) + p[7] * (c.t + p[9]).powf(-p[8]);
        for i in c.start..c.start + c.len {
            let pred = base + p[4] * (data.d[i] + p[6]).powf(-p[5]);
            // A low-discrepancy sequence: residuals spread over [1, 2).
            fill = (fill + 0.618_033_988_749_894_9) % 1.0;
            data.y[i] = pred - (1.0 + fill);
        }
    }
    let nc = ds.configs.len();
    let seeds = [0u32, 1, 2, 7, 1000, 0xffff_ffff];
    let ws: Vec<Weighting> = seeds
        .iter()
        .map(|&s| Weighting {
            poisson: Some(s),
            ..Weighting::uniform(nc)
        })
        .collect();
    let tol = 1e-5;
    for (wi, w) in ws.iter().enumerate() {
        let r = weights::resolve(w, &data).unwrap();
        let f = weights::reference_evaluate(&data, Some(&r), &p).f;
        // Smallest change of f by one count at any point.
        let step = data
            .w
            .iter()
            .map(|w| 0.5 * w * r.mult[0])
            .fold(f64::INFINITY, f64::min);
        assert!(
            step / f > 10.0 * tol,
            "seed {}: step {step} f {f}",
            seeds[wi]
        );
    }
    let limits = GpuLimits {
        max_points_per_chunk: 256,
        max_starts_per_dispatch: 64,
        max_groups: 2,
    };
    let which: Vec<u32> = (0..ws.len() as u32).collect();
    let params = vec![p; ws.len()];
    let mut gpu = GpuBackend::on_adapter(&adapter, &data, Some(limits)).expect("GPU backend");
    gpu.set_weightings(&ws).unwrap();
    let mut got = vec![Eval::ZERO; ws.len()];
    gpu.evaluate_weighted(&params, &which, &mut got).unwrap();
    compare(
        &reference(&data, &ws, &params, &which),
        &got,
        tol,
        "poisson counts",
    );
}

/// Configurations listed out of storage order: the GPU packs points in list
/// order, but hash keys are the points' indices in the Prepared.
#[test]
fn configurations_out_of_storage_order() {
    let ds = sweep(60);
    let mut data = Prepared::new(&ds, Objective::default());
    data.configs.reverse();
    let ws = mixed_weightings(ds.configs.len(), 60);
    let (params, which) = all_pairs(ws.len(), &param_batch(2));
    let limits = GpuLimits {
        max_points_per_chunk: 256,
        max_starts_per_dispatch: 64,
        max_groups: 2,
    };
    check(&data, &ws, &params, &which, Some(limits), "reordered");
}

/// Curves left out by a multiplier of 0 add nothing, even where their N
/// term overflows f32 (n + t1 rounds to 0 for the smallest model), which
/// would otherwise turn their zero sums into 0 * inf = NaN.
#[test]
fn left_out_curves_may_overflow() {
    let ds = sweep(40);
    let data = Prepared::new(&ds, Objective::default());
    let n_min = data
        .configs
        .iter()
        .map(|c| c.n)
        .fold(f64::INFINITY, f64::min);
    let mut p = param_batch(1)[0];
    p[3] = -n_min + 1e-30;
    let keep: Vec<f64> = data
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
        &data,
        &ws,
        &[p, p],
        &[0, 1],
        None,
        "overflowing curve left out",
    );
}
