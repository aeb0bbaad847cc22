//! Weighted evaluation on the CPU evaluator (`CpuLaw::
//! evaluate_weighted`) of the compiled looplm law against the plain f64
//! reference: every layout, every objective, curve multipliers, token
//! limits, Poisson resampling and their combinations; weightings against
//! data that means the same without them (a curve left out, a curve twice,
//! truncated curves); independence from the batch and the thread count;
//! unweighted entries; bad indices and weightings; and held-out points
//! where the law is undefined.

mod common;
use common::evaluator::*;

use sweepfit::backend::weights::{resolve_curves, Resolved, Weighting, ALL_POINTS, UNWEIGHTED};
use sweepfit::backend::{CpuLaw, CpuLayout};
use sweepfit::data::{Config, Dataset};
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::CompiledLaw;
use sweepfit::objective::{LossKind, Objective, Space};
use sweepfit::simulate::{simulate_looplm20, SimOptions};

/// Against the reference: f within 1e-10 of |f|, the gradient within 1e-9
/// of its norm (the evaluator sums in another order, with its own ln).
const REL_F: f64 = 1e-10;
const REL_G: f64 = 1e-9;

/// Between a weighting and the data it stands for: the same terms, only
/// normalised and summed in another order.
const SAME_F: f64 = 1e-12;
const SAME_G: f64 = 1e-11;

/// The truth, two perturbations of it, and the two far vectors.
fn params(law: &CompiledLaw) -> Vec<Vec<f64>> {
    let truth = params_of(law, &TRUTH);
    let mut v = vec![truth.clone()];
    for k in 1..3 {
        let mut p = truth.clone();
        for (j, x) in p.iter_mut().enumerate() {
            *x *= 1.0 + 0.05 * ((7 * k + j) as f64).sin();
        }
        v.push(p);
    }
    v.extend(FAR[..2].iter().map(|p| params_of(law, p)));
    v
}

/// The simulated looplm20 sweep (20 curves on one token grid, from D = 0)
/// with unequal point weights, so that the dataset weights matter.
fn looplm(points_per_curve: usize) -> Dataset {
    let mut ds = simulate_looplm20(&SimOptions {
        points_per_curve,
        ..SimOptions::default()
    });
    for (i, w) in ds.weight.iter_mut().enumerate() {
        *w = 1.0 + (i % 3) as f64 + 0.25 * (i % 7) as f64;
    }
    ds
}

/// The same sweep with every curve on token counts of its own, which the
/// grid layout cannot share.
fn ragged(points_per_curve: usize) -> Dataset {
    let mut ds = looplm(points_per_curve);
    for (ci, c) in ds.configs.iter().enumerate() {
        for d in &mut ds.tokens[c.range()] {
            *d += 1e6 * (ci + 1) as f64;
        }
    }
    ds
}

fn lens(ds: &Dataset) -> Vec<usize> {
    ds.configs.iter().map(|c| c.len).collect()
}

/// Multipliers 0, 1, 2, 3 and 0.5 in turn over the curves.
fn multipliers(nc: usize) -> Vec<f64> {
    (0..nc).map(|c| [0.0, 1.0, 2.0, 3.0, 0.5][c % 5]).collect()
}

/// The first `frac` of every curve's points (at least one).
fn token_fraction(lens: &[usize], frac: f64) -> Vec<u32> {
    lens.iter()
        .map(|&l| ((frac * l as f64).ceil() as u32).max(1))
        .collect()
}

/// A spread of weightings: each kind alone and combined.
fn weightings(lens: &[usize]) -> Vec<Weighting> {
    let nc = lens.len();
    let all = Weighting::uniform(nc);
    // Limits of every kind: none, everything, a few points, most points,
    // and just past the first span of a long curve.
    let mixed_first: Vec<u32> = lens
        .iter()
        .enumerate()
        .map(|(c, &l)| match c % 5 {
            0 => 0,
            1 => ALL_POINTS,
            2 => 3,
            3 => (l as u32).saturating_sub(2),
            _ => 2100,
        })
        .collect();
    vec![
        all.clone(),
        Weighting {
            config: multipliers(nc),
            ..all.clone()
        },
        Weighting {
            first: token_fraction(lens, 0.3),
            ..all.clone()
        },
        Weighting {
            first: mixed_first.clone(),
            ..all.clone()
        },
        Weighting {
            poisson: Some(1),
            ..all.clone()
        },
        Weighting {
            poisson: Some(0xdead_beef),
            ..all.clone()
        },
        Weighting {
            config: multipliers(nc),
            first: token_fraction(lens, 0.75),
            poisson: Some(7),
        },
        Weighting {
            config: (0..nc).map(|c| (c % 3) as f64).collect(),
            first: mixed_first,
            poisson: Some(12345),
        },
    ]
}

fn resolve(w: &Weighting, sweep: &Sweep) -> Resolved {
    resolve_curves(w, &sweep.curves, &sweep.w).unwrap()
}

type Value = (f64, Vec<f64>);

/// Bit-for-bit equality, NaN included.
fn assert_same_bits(a: &Value, b: &Value, what: &str) {
    let bits = |v: &Value| -> Vec<u64> {
        std::iter::once(v.0)
            .chain(v.1.iter().copied())
            .map(f64::to_bits)
            .collect()
    };
    assert_eq!(bits(a), bits(b), "{what}: {a:?} vs {b:?}");
}

/// Every weighting with every parameter vector, plus UNWEIGHTED entries,
/// in one interleaved batch per layout and objective, against the
/// reference. Returns how many reference values were finite.
fn check_against_reference(ds: &Dataset, ws: &[Weighting]) -> usize {
    let law = looplm_law();
    let ps = params(&law);
    let mut finite = 0;
    for obj in objectives() {
        let sweep = sweep_of(ds, &obj);
        let resolved: Vec<Resolved> = ws.iter().map(|w| resolve(w, &sweep)).collect();
        // Interleaved: consecutive starts mostly differ in weighting.
        let mut batch = Vec::new();
        let mut which = Vec::new();
        for (pi, p) in ps.iter().enumerate() {
            for k in 0..ws.len() {
                batch.push(p.clone());
                which.push(k as u32);
            }
            if pi % 2 == 0 {
                batch.push(p.clone());
                which.push(UNWEIGHTED);
            }
        }
        let want: Vec<Value> = batch
            .iter()
            .zip(&which)
            .map(|(p, &k)| {
                let w = (k != UNWEIGHTED).then(|| &resolved[k as usize]);
                reference(&law, &sweep, &obj, w, p)
            })
            .collect();
        finite += want.iter().filter(|v| v.0.is_finite()).count();
        for (name, grid) in cpu_grids(&law, &sweep, &obj) {
            let got = cpu_evaluate_weighted(&grid, &batch, &which, &resolved).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let what = format!("{obj:?}, {name}, start {i}, weighting {}", which[i]);
                assert_matches((g.0, &g.1), (w.0, &w.1), REL_F, REL_G, &what);
            }
        }
    }
    finite
}

#[test]
fn weightings_match_the_reference_on_a_shared_grid() {
    let ds = looplm(301);
    let finite = check_against_reference(&ds, &weightings(&lens(&ds)));
    // Most starts must be finite for the comparison to mean something.
    assert!(finite > 4 * 5 * 8 / 2, "{finite} finite references");
    assert_eq!(
        CpuLayout::of(&sweep_of(&ds, &Objective::default())),
        CpuLayout::Grid
    );
}

#[test]
fn weightings_match_the_reference_across_blocks_and_tiles() {
    // 2500 points per curve: two spans per curve in the point layout, and
    // several grid tiles; limits fall inside the second span.
    let ds = looplm(2500);
    let nc = ds.configs.len();
    let ws = vec![
        Weighting {
            first: (0..nc).map(|c| [2100, 1000, 2049, 0][c % 4]).collect(),
            ..Weighting::uniform(nc)
        },
        Weighting {
            config: multipliers(nc),
            first: token_fraction(&lens(&ds), 0.9),
            poisson: Some(99),
        },
        Weighting {
            poisson: Some(3),
            ..Weighting::uniform(nc)
        },
    ];
    let finite = check_against_reference(&ds, &ws);
    assert!(finite > 4 * 5 * 3 / 2, "{finite} finite references");
}

#[test]
fn curves_on_their_own_tokens_use_the_point_layout() {
    let ds = ragged(257);
    assert_eq!(
        CpuLayout::of(&sweep_of(&ds, &Objective::default())),
        CpuLayout::Points
    );
    let finite = check_against_reference(&ds, &weightings(&lens(&ds)));
    assert!(finite > 4 * 5 * 8 / 2, "{finite} finite references");
}

/// `ds` without curve `c`.
fn without(ds: &Dataset, c: usize) -> Dataset {
    let mut out = Dataset::default();
    for (ci, cfg) in ds.configs.iter().enumerate() {
        if ci != c {
            push_config(&mut out, ds, cfg, &cfg.run);
        }
    }
    out
}

/// `ds` with curve `c` in it twice (the copy under another run).
fn with_copy(ds: &Dataset, c: usize) -> Dataset {
    let mut out = ds.clone();
    let cfg = &ds.configs[c];
    push_config(&mut out, ds, cfg, &format!("{}-copy", cfg.run));
    out
}

fn push_config(out: &mut Dataset, ds: &Dataset, cfg: &Config, run: &str) {
    let start = out.tokens.len();
    out.tokens.extend_from_slice(&ds.tokens[cfg.range()]);
    out.loss.extend_from_slice(&ds.loss[cfg.range()]);
    out.weight.extend_from_slice(&ds.weight[cfg.range()]);
    out.configs.push(Config {
        run: run.to_string(),
        start,
        ..cfg.clone()
    });
}

/// Weighted evaluations under `w` on `ds` against plain ones on `other`,
/// data meaning the same (both weighted means), for every objective and
/// layout.
fn check_equivalent(ds: &Dataset, w: &Weighting, other: &Dataset, what: &str) {
    let law = looplm_law();
    let ps = params(&law);
    for obj in objectives() {
        let sweep = sweep_of(ds, &obj);
        let other = sweep_of(other, &obj);
        let plain = CpuLaw::new(Plan::for_sweep(&law, &other), &other, obj).unwrap();
        let want = cpu_evaluate(&plain, &ps);
        assert!(
            want.iter().all(|v| v.0.is_finite()),
            "{what}, {obj:?}: {want:?}"
        );
        let r = [resolve(w, &sweep)];
        for (name, grid) in cpu_grids(&law, &sweep, &obj) {
            let got = cpu_evaluate_weighted(&grid, &ps, &vec![0; ps.len()], &r).unwrap();
            for (k, (g, e)) in got.iter().zip(&want).enumerate() {
                let what = format!("{what}, {obj:?}, {name}, params {k}");
                assert_close((g.0, &g.1), (e.0, &e.1), SAME_F, SAME_G, &what);
            }
        }
    }
}

#[test]
fn holding_out_a_curve_equals_leaving_it_out_of_the_data() {
    for ds in [looplm(203), ragged(203)] {
        let nc = ds.configs.len();
        // The first, a middle and the last curve.
        for c in [0, 9, nc - 1] {
            let mut w = Weighting::uniform(nc);
            w.config[c] = 0.0;
            check_equivalent(&ds, &w, &without(&ds, c), &format!("without {c}"));
        }
    }
}

#[test]
fn a_multiplier_of_two_equals_the_curve_twice() {
    let ds = looplm(203);
    let mut w = Weighting::uniform(ds.configs.len());
    w.config[6] = 2.0;
    check_equivalent(&ds, &w, &with_copy(&ds, 6), "curve 6 twice");
}

#[test]
fn a_token_limit_equals_the_truncated_curves() {
    for ds in [looplm(203), ragged(203)] {
        let first = token_fraction(&lens(&ds), 0.4);
        let mut cut = Dataset::default();
        for (cfg, &f) in ds.configs.iter().zip(&first) {
            let short = Config {
                len: f as usize,
                ..cfg.clone()
            };
            push_config(&mut cut, &ds, &short, &cfg.run);
        }
        let w = Weighting {
            first,
            ..Weighting::uniform(ds.configs.len())
        };
        check_equivalent(&ds, &w, &cut, "first 40%");
    }
}

#[test]
fn results_do_not_depend_on_the_batch_or_the_thread_count() {
    let ds = looplm(301);
    let obj = Objective::default();
    let law = looplm_law();
    let sweep = sweep_of(&ds, &obj);
    let resolved: Vec<Resolved> = weightings(&lens(&ds))
        .iter()
        .map(|w| resolve(w, &sweep))
        .collect();
    let base = params(&law);
    let beta = param_index(&law, "beta");
    // 200 starts: varied parameters, weightings in no particular order,
    // every sixth unweighted.
    let batch: Vec<Vec<f64>> = (0..200)
        .map(|i| {
            let mut p = base[i % base.len()].clone();
            p[beta] *= 1.0 + 1e-3 * i as f64;
            p
        })
        .collect();
    let which: Vec<u32> = (0..200)
        .map(|i| {
            if i % 6 == 5 {
                UNWEIGHTED
            } else {
                ((i * 7 + i / 13) % resolved.len()) as u32
            }
        })
        .collect();
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let make =
            || CpuLaw::with_layout(Plan::for_sweep(&law, &sweep), &sweep, obj, layout).unwrap();
        let grid = make();
        let run =
            |ps: &[Vec<f64>], ws: &[u32]| cpu_evaluate_weighted(&grid, ps, ws, &resolved).unwrap();
        let all = run(&batch, &which);
        assert!(all.iter().all(|v| v.0.is_finite()), "{layout:?}");
        // Each start alone.
        for (i, (p, &k)) in batch.iter().zip(&which).enumerate() {
            let alone = run(std::slice::from_ref(p), &[k]);
            assert_same_bits(&alone[0], &all[i], &format!("{layout:?}: start {i} alone"));
        }
        // Reversed, and in a batch of one weighting.
        let rev_p: Vec<_> = batch.iter().rev().cloned().collect();
        let rev_w: Vec<_> = which.iter().rev().copied().collect();
        let rev = run(&rev_p, &rev_w);
        for (i, e) in rev.iter().rev().enumerate() {
            assert_same_bits(e, &all[i], &format!("{layout:?}: start {i} reversed"));
        }
        let same: Vec<usize> = (0..200).filter(|&i| which[i] == which[0]).collect();
        let sp: Vec<_> = same.iter().map(|&i| batch[i].clone()).collect();
        let one = run(&sp, &vec![which[0]; sp.len()]);
        for (e, &i) in one.iter().zip(&same) {
            assert_same_bits(e, &all[i], &format!("{layout:?}: start {i} among its kind"));
        }
        // Other thread counts, which also change how starts are chunked.
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got =
                pool.install(|| cpu_evaluate_weighted(&make(), &batch, &which, &resolved).unwrap());
            for (i, (g, a)) in got.iter().zip(&all).enumerate() {
                assert_same_bits(g, a, &format!("{layout:?}: {threads} threads, start {i}"));
            }
        }
    }
}

#[test]
fn unweighted_entries_equal_plain_evaluation() {
    let law = looplm_law();
    let ps = params(&law);
    for ds in [looplm(301), ragged(301)] {
        for obj in objectives() {
            let sweep = sweep_of(&ds, &obj);
            let resolved: Vec<Resolved> = weightings(&lens(&ds))
                .iter()
                .map(|w| resolve(w, &sweep))
                .collect();
            for (name, grid) in cpu_grids(&law, &sweep, &obj) {
                let plain = cpu_evaluate(&grid, &ps);
                // No weightings at all: every start unweighted.
                let none =
                    cpu_evaluate_weighted(&grid, &ps, &vec![UNWEIGHTED; ps.len()], &[]).unwrap();
                // Mixed with weighted starts.
                let mut batch = Vec::new();
                let mut which = Vec::new();
                for p in &ps {
                    batch.extend([p.clone(), p.clone(), p.clone()]);
                    which.extend([4, UNWEIGHTED, 1]);
                }
                let mixed = cpu_evaluate_weighted(&grid, &batch, &which, &resolved).unwrap();
                for (k, e) in plain.iter().enumerate() {
                    let what = format!("{obj:?}, {name}, params {k}");
                    assert_same_bits(&none[k], e, &what);
                    assert_same_bits(&mixed[3 * k + 1], e, &what);
                    let want = reference(&law, &sweep, &obj, None, &ps[k]);
                    assert_matches((e.0, &e.1), (want.0, &want.1), REL_F, REL_G, &what);
                }
                // And a weighted start differs (the check can fail).
                assert_ne!(mixed[0].0, mixed[1].0, "{obj:?}, {name}");
            }
        }
    }
}

#[test]
fn bad_indices_and_weightings_are_errors() {
    let ds = looplm(31);
    let obj = Objective::default();
    let law = looplm_law();
    let sweep = sweep_of(&ds, &obj);
    let nc = ds.configs.len();
    let p = params(&law);
    let p2 = &p[..2];
    let resolved: Vec<Resolved> = weightings(&lens(&ds))
        .iter()
        .map(|w| resolve(w, &sweep))
        .collect();
    let n = resolved.len() as u32;
    for (name, grid) in cpu_grids(&law, &sweep, &obj) {
        // No weightings: any index is out of range.
        let err = cpu_evaluate_weighted(&grid, p2, &[0, UNWEIGHTED], &[]).unwrap_err();
        assert!(format!("{err}").contains("out of range"), "{name}: {err}");
        for bad in [n, n + 5, UNWEIGHTED - 1] {
            let err = cpu_evaluate_weighted(&grid, p2, &[UNWEIGHTED, bad], &resolved).unwrap_err();
            assert!(format!("{err}").contains("out of range"), "{name}: {err}");
        }
        // Lengths must agree: which, f, g and the parameters.
        let np = p[0].len();
        let flat = p2.concat();
        let (mut f, mut g) = (vec![0.0; 2], vec![0.0; 2 * np]);
        assert!(grid
            .evaluate_with(&flat, &[0], &resolved, &mut f, &mut g)
            .is_err());
        assert!(grid
            .evaluate_with(&flat[..np], &[0], &resolved, &mut f, &mut g)
            .is_err());
        assert!(grid
            .evaluate_with(&flat, &[0, 0], &resolved, &mut f, &mut g[..np])
            .is_err());
        // The last valid index works.
        cpu_evaluate_weighted(&grid, p2, &[n - 1, 0], &resolved).unwrap();
        // Fewer weightings make the later indices invalid.
        assert!(cpu_evaluate_weighted(&grid, p2, &[1, 0], &resolved[..1]).is_err());
        // A weighting resolved for another number of curves.
        let fewer = sweep_of(&without(&ds, 3), &obj);
        let other = resolve(&Weighting::uniform(nc - 1), &fewer);
        let err = cpu_evaluate_weighted(&grid, p2, &[0, 0], &[other]).unwrap_err();
        assert!(format!("{err}").contains("curves"), "{name}: {err}");
    }

    // Weightings no sweep can take: a negative or non-finite multiplier,
    // nothing left with a positive weight, or a length other than the
    // curves'.
    let bad_mult = |m: f64| Weighting {
        config: (0..nc).map(|c| if c == 3 { m } else { 1.0 }).collect(),
        ..Weighting::uniform(nc)
    };
    let nothing = Weighting {
        config: vec![0.0; nc],
        ..Weighting::uniform(nc)
    };
    let no_points = Weighting {
        first: vec![0; nc],
        ..Weighting::uniform(nc)
    };
    let short = Weighting::uniform(nc - 1);
    let short_limits = Weighting {
        first: vec![ALL_POINTS; nc - 1],
        ..Weighting::uniform(nc)
    };
    for (what, w) in [
        ("negative", bad_mult(-1.0)),
        ("NaN", bad_mult(f64::NAN)),
        ("infinite", bad_mult(f64::INFINITY)),
        ("all curves out", nothing),
        ("no points kept", no_points),
        ("too few multipliers", short),
        ("too few limits", short_limits),
    ] {
        assert!(
            resolve_curves(&w, &sweep.curves, &sweep.w).is_err(),
            "{what}"
        );
    }
}

/// Evaluate `p` under `w` and unweighted in every layout, for `obj`: the
/// weighted value must be finite and match the reference, the unweighted
/// one must not be finite (so the held-out part matters).
fn check_held_out_undefined(ds: &Dataset, obj: Objective, w: &Weighting, p: &[f64], what: &str) {
    let law = looplm_law();
    let sweep = sweep_of(ds, &obj);
    let r = [resolve(w, &sweep)];
    let want = reference(&law, &sweep, &obj, Some(&r[0]), p);
    assert!(
        want.0.is_finite() && want.1.iter().all(|v| v.is_finite()),
        "{what}: reference {want:?}"
    );
    assert!(!reference(&law, &sweep, &obj, None, p).0.is_finite());
    let ps = vec![p.to_vec(); 3];
    for (name, grid) in cpu_grids(&law, &sweep, &obj) {
        let got = cpu_evaluate_weighted(&grid, &ps, &[0, UNWEIGHTED, 0], &r).unwrap();
        let what = format!("{what}, {obj:?}, {name}");
        assert_close(
            (got[0].0, &got[0].1),
            (want.0, &want.1),
            REL_F,
            REL_G,
            &what,
        );
        assert!(!got[1].0.is_finite(), "{what}: {:?}", got[1]);
        assert_same_bits(&got[2], &got[0], &what);
    }
}

#[test]
fn held_out_points_outside_the_log_domain_add_nothing() {
    let ds = looplm(200);
    let obj = |loss| Objective {
        loss,
        space: Space::Log,
        delta: 0.02,
    };
    let law = looplm_law();
    // B > 0 and a negative E: the prediction falls with tokens and turns
    // negative part way along every curve.
    let p = params_of(
        &law,
        &[
            ("E", -1.0),
            ("A", 54.96),
            ("alpha", 0.3),
            ("t1", 1.36e7),
            ("B", 4.243e4),
            ("beta", 0.5),
            ("t2", 2e7),
            ("C", 0.1),
            ("gamma", 1.0),
            ("t3", 0.5),
        ],
    );
    let sweep = sweep_of(&ds, &obj(LossKind::Mse));
    // Keep each curve's points up to where the prediction turns negative.
    let first: Vec<u32> = sweep
        .curves
        .iter()
        .enumerate()
        .map(|(c, r)| {
            let kept = r
                .clone()
                .take_while(|&i| law.eval(&sweep.vars[3 * i..3 * i + 3], &p) > 0.0)
                .count();
            assert!(kept > 0 && kept < r.len(), "curve {c} keeps {kept}");
            kept as u32
        })
        .collect();
    let nc = ds.configs.len();
    let limited = Weighting {
        first: first.clone(),
        ..Weighting::uniform(nc)
    };
    let resampled = Weighting {
        config: multipliers(nc),
        first,
        poisson: Some(5),
    };
    for loss in [LossKind::Mse, LossKind::Huber] {
        check_held_out_undefined(&ds, obj(loss), &limited, &p, "limited");
        check_held_out_undefined(&ds, obj(loss), &resampled, &p, "resampled");
    }
}

/// looplm20 curves, of which only the first starts at D = 0; the others
/// start at 2e8 tokens.
fn one_curve_from_zero() -> Dataset {
    let src = looplm(101);
    let mut ds = Dataset::default();
    for (ci, cfg) in src.configs.iter().enumerate() {
        let mut c = cfg.clone();
        if ci > 0 {
            c.start += 1;
            c.len -= 1;
        }
        push_config(&mut ds, &src, &c, &cfg.run);
    }
    assert_eq!(ds.tokens[0], 0.0);
    assert!(ds.configs[1..].iter().all(|c| ds.tokens[c.start] >= 2e8));
    ds
}

/// The truth with t2 = -2e7: D + t2 <= 0 at D = 0 only, a point of curve
/// 0 alone (on the grid, a token column with no other point).
fn truth_without_token_term_at_zero(law: &CompiledLaw) -> Vec<f64> {
    let mut p = params_of(law, &TRUTH);
    p[param_index(law, "t2")] = -2e7;
    p
}

#[test]
fn held_out_points_with_no_token_term_add_nothing() {
    let ds = one_curve_from_zero();
    let nc = ds.configs.len();
    let p = truth_without_token_term_at_zero(&looplm_law());
    let mut out = Weighting::uniform(nc);
    out.config[0] = 0.0;
    let resampled = Weighting {
        poisson: Some(11),
        ..out.clone()
    };
    for obj in objectives() {
        check_held_out_undefined(&ds, obj, &out, &p, "curve 0 out");
        check_held_out_undefined(&ds, obj, &resampled, &p, "curve 0 out, resampled");
    }
}

#[test]
fn points_drawn_zero_times_add_nothing() {
    // As above, with the D = 0 point left out by its Poisson count alone.
    let ds = one_curve_from_zero();
    let sweep = sweep_of(&ds, &Objective::default());
    let w = (0..100u32)
        .map(|s| Weighting {
            poisson: Some(s),
            ..Weighting::uniform(ds.configs.len())
        })
        .find(|w| resolve(w, &sweep).factor(0, 0, 0) == 0.0)
        .unwrap();
    let p = truth_without_token_term_at_zero(&looplm_law());
    for obj in objectives() {
        check_held_out_undefined(&ds, obj, &w, &p, "D = 0 drawn 0 times");
    }
}

#[test]
fn held_out_curves_with_no_size_term_add_nothing() {
    // t1 below -N of the smallest model only (53e6 of 134e6 and up): its
    // four curves are held out.
    let ds = looplm(101);
    let nc = ds.configs.len();
    let law = looplm_law();
    let mut p = params_of(&law, &TRUTH);
    p[param_index(&law, "t1")] = -6.12e7;
    let w = Weighting {
        config: (0..nc).map(|c| if c < 4 { 0.0 } else { 1.0 }).collect(),
        ..Weighting::uniform(nc)
    };
    let resampled = Weighting {
        poisson: Some(2),
        ..w.clone()
    };
    for obj in objectives() {
        check_held_out_undefined(&ds, obj, &w, &p, "smallest model out");
        check_held_out_undefined(&ds, obj, &resampled, &p, "smallest model out, resampled");
    }
}

#[test]
fn points_of_zero_dataset_weight_add_nothing_unweighted() {
    // As above, with the D = 0 point weighing 0 in the data itself.
    let mut ds = one_curve_from_zero();
    ds.weight[0] = 0.0;
    let law = looplm_law();
    let p = truth_without_token_term_at_zero(&law);
    for obj in objectives() {
        let sweep = sweep_of(&ds, &obj);
        let want = reference(&law, &sweep, &obj, None, &p);
        assert!(want.0.is_finite(), "{obj:?}: {want:?}");
        for (name, grid) in cpu_grids(&law, &sweep, &obj) {
            let got = cpu_evaluate(&grid, std::slice::from_ref(&p));
            let what = format!("{obj:?}, {name}");
            assert_close(
                (got[0].0, &got[0].1),
                (want.0, &want.1),
                REL_F,
                REL_G,
                &what,
            );
        }
    }
    // With its weight back, the point makes the value undefined.
    ds.weight[0] = 1.0;
    let obj = Objective::default();
    let sweep = sweep_of(&ds, &obj);
    for (name, grid) in cpu_grids(&law, &sweep, &obj) {
        let got = cpu_evaluate(&grid, std::slice::from_ref(&p));
        assert!(!got[0].0.is_finite(), "{name}: {:?}", got[0]);
    }
}

/// Through the evaluator interface the CPU registers its weightings, as the
/// GPU must: the same bits as passing them with each call; a weighting for
/// another number of curves is refused and the registered ones stay.
#[test]
fn the_evaluator_interface_registers_weightings() {
    use sweepfit::backend::Evaluator;
    let ds = looplm(31);
    let obj = Objective::default();
    let law = looplm_law();
    let sweep = sweep_of(&ds, &obj);
    let nc = ds.configs.len();
    let p = params(&law);
    let resolved: Vec<Resolved> = weightings(&lens(&ds))
        .iter()
        .map(|w| resolve(w, &sweep))
        .collect();
    let which: Vec<u32> = (0..p.len() as u32)
        .map(|k| match k % 3 {
            0 => UNWEIGHTED,
            _ => k % resolved.len() as u32,
        })
        .collect();
    let flat = p.concat();
    let np = p[0].len();
    for (name, mut grid) in cpu_grids(&law, &sweep, &obj) {
        let want = cpu_evaluate_weighted(&grid, &p, &which, &resolved).unwrap();
        let run = |grid: &mut CpuLaw| {
            let (mut f, mut g) = (vec![0.0; p.len()], vec![0.0; flat.len()]);
            Evaluator::evaluate_weighted(grid, &flat, &which, &mut f, &mut g).map(|()| {
                f.into_iter()
                    .zip(g.chunks(np).map(<[f64]>::to_vec))
                    .collect::<Vec<Value>>()
            })
        };
        // Nothing registered yet: every weighted index is out of range.
        assert!(run(&mut grid).is_err(), "{name}");
        grid.set_weightings(&resolved).unwrap();
        let got = run(&mut grid).unwrap();
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_same_bits(a, b, &format!("{name} vector {k}"));
        }
        let fewer = sweep_of(&without(&ds, 3), &obj);
        let other = resolve(&Weighting::uniform(nc - 1), &fewer);
        let err = grid.set_weightings(&[other]).unwrap_err();
        assert!(format!("{err}").contains("curves"), "{name}: {err}");
        let again = run(&mut grid).unwrap();
        for (k, (a, b)) in again.iter().zip(&want).enumerate() {
            assert_same_bits(
                a,
                b,
                &format!("{name} vector {k} after a refused weighting"),
            );
        }
        // Plain evaluation through the interface checks its lengths.
        let (mut f, mut g) = (vec![0.0; 2], vec![0.0; np]);
        assert!(Evaluator::evaluate(&mut grid, &flat[..2 * np], &mut f, &mut g).is_err());
        assert_eq!(grid.n_params(), np);
        assert!(grid.describe().contains("f64"), "{}", grid.describe());
    }
}
