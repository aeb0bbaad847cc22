//! Weighted evaluation on the CPU backend (`set_weightings`,
//! `evaluate_weighted`) against the specification, `weights::
//! reference_evaluate`: both layouts, every objective, configuration
//! multipliers, token limits, Poisson resampling and their combinations;
//! held-out curves against the data without them; independence from the
//! batch and the thread count; and held-out points where the law is
//! undefined.

mod common;
use common::assert_close_to;

use sweepfit::backend::weights::{self, ALL_POINTS};
use sweepfit::backend::{Backend, CpuBackend, CpuLayout, Eval, Prepared, Weighting, UNWEIGHTED};
use sweepfit::data::{Config, Dataset};
use sweepfit::law::{A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};
use sweepfit::objective::{LossKind, Objective, Space};
use sweepfit::simulate::{looplm20_truth, simulate_looplm20, SimOptions};

fn objectives() -> Vec<Objective> {
    let mut v = Vec::new();
    for space in [Space::Linear, Space::Log] {
        for (loss, delta) in [(LossKind::Mse, 1e-3), (LossKind::Huber, 0.02)] {
            v.push(Objective { loss, space, delta });
        }
    }
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

/// Parameter vectors (internal units) for `data`: the truth, two
/// perturbations of it, and two far from it (large gradients).
fn params(data: &Prepared) -> Vec<[f64; NP]> {
    let truth = data.scale.to_internal(&looplm20_truth());
    let mut v = vec![truth];
    for k in 1..3 {
        let mut p = truth;
        for (j, x) in p.iter_mut().enumerate() {
            *x *= 1.0 + 0.05 * ((7 * k + j) as f64).sin();
        }
        v.push(p);
    }
    v.push([1.6, 0.6, 0.35, 0.02, 1.1, 0.4, 3e-3, 0.5, 0.9, 0.7]);
    v.push([1.2, 0.3, 0.5, 0.1, 0.9, 0.3, 1e-2, 0.2, 1.5, 0.1]);
    v
}

fn lens(ds: &Dataset) -> Vec<usize> {
    ds.configs.iter().map(|c| c.len).collect()
}

/// Multipliers 0, 1, 2, 3 and 0.5 in turn over the configurations.
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
    // and just past the first point block of a long curve.
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

fn assert_close(got: &Eval, want: &Eval, what: &str) {
    assert_close_to(got, want, 1e-10, 1e-9, what);
}

/// Bit-for-bit equality, NaN included.
fn assert_same_bits(a: &Eval, b: &Eval, what: &str) {
    let bits = |e: &Eval| (e.f.to_bits(), e.g.map(f64::to_bits));
    assert_eq!(bits(a), bits(b), "{what}: {a:?} vs {b:?}");
}

/// The backends to compare: the layout `CpuBackend::new` picks and both
/// forced layouts (where the data allows the grid).
fn backends(data: &Prepared) -> Vec<(String, CpuBackend)> {
    let auto = CpuBackend::new(data.clone());
    let mut v = vec![(format!("auto {:?}", auto.layout()), auto)];
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        if let Ok(b) = CpuBackend::with_layout(data.clone(), layout) {
            v.push((format!("{layout:?}"), b));
        }
    }
    v
}

fn evaluate(b: &mut CpuBackend, params: &[[f64; NP]]) -> Vec<Eval> {
    let mut out = vec![Eval::ZERO; params.len()];
    b.evaluate(params, &mut out).unwrap();
    out
}

fn evaluate_weighted(b: &mut CpuBackend, params: &[[f64; NP]], which: &[u32]) -> Vec<Eval> {
    let mut out = vec![Eval::ZERO; params.len()];
    b.evaluate_weighted(params, which, &mut out).unwrap();
    out
}

/// Every weighting with every parameter vector, plus UNWEIGHTED entries,
/// in one interleaved batch per backend and objective, against the
/// reference. Returns how many reference values were finite.
fn check_against_reference(ds: &Dataset, ws: &[Weighting]) -> usize {
    let mut finite = 0;
    for obj in objectives() {
        let data = Prepared::new(ds, obj);
        let resolved: Vec<_> = ws
            .iter()
            .map(|w| weights::resolve(w, &data).unwrap())
            .collect();
        let ps = params(&data);
        // Interleaved: consecutive starts mostly differ in weighting.
        let mut batch = Vec::new();
        let mut which = Vec::new();
        for (pi, p) in ps.iter().enumerate() {
            for k in 0..ws.len() {
                batch.push(*p);
                which.push(k as u32);
            }
            if pi % 2 == 0 {
                batch.push(*p);
                which.push(UNWEIGHTED);
            }
        }
        let want: Vec<Eval> = batch
            .iter()
            .zip(&which)
            .map(|(p, &k)| {
                let w = (k != UNWEIGHTED).then(|| &resolved[k as usize]);
                weights::reference_evaluate(&data, w, p)
            })
            .collect();
        finite += want.iter().filter(|e| e.is_finite()).count();
        for (name, mut b) in backends(&data) {
            b.set_weightings(ws).unwrap();
            let got = evaluate_weighted(&mut b, &batch, &which);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(
                    g,
                    w,
                    &format!("{obj:?}, {name}, start {i}, weighting {}", which[i]),
                );
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
        CpuBackend::new(Prepared::new(&ds, Objective::default())).layout(),
        CpuLayout::Grid
    );
}

#[test]
fn weightings_match_the_reference_across_blocks_and_tiles() {
    // 2500 points per curve: two point blocks per curve, two grid blocks
    // and several tiles; limits fall inside the second point block.
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
    assert!(check_against_reference(&ds, &ws) > 0);
}

#[test]
fn curves_on_their_own_tokens_use_the_point_layout() {
    let ds = ragged(257);
    let data = Prepared::new(&ds, Objective::default());
    assert_eq!(CpuBackend::new(data).layout(), CpuLayout::Points);
    let finite = check_against_reference(&ds, &weightings(&lens(&ds)));
    assert!(finite > 4 * 5 * 8 / 2, "{finite} finite references");
}

/// `ds` without configuration `c`.
fn without(ds: &Dataset, c: usize) -> Dataset {
    let mut out = Dataset::default();
    for (ci, cfg) in ds.configs.iter().enumerate() {
        if ci != c {
            push_config(&mut out, ds, cfg, &cfg.run);
        }
    }
    out
}

/// `ds` with configuration `c` in it twice (the copy under another run).
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

/// Weighted evaluations under `w` on `ds` against unweighted ones on
/// `other`, a dataset meaning the same (both weighted means), for every
/// objective and backend.
fn check_equivalent(ds: &Dataset, w: &Weighting, other: &Dataset, what: &str) {
    for obj in objectives() {
        let data = Prepared::new(ds, obj);
        let other_data = Prepared::new(other, obj);
        assert_eq!(data.scale, other_data.scale, "the scale must not change");
        let ps = params(&data);
        let mut plain = CpuBackend::new(other_data);
        let want = evaluate(&mut plain, &ps);
        assert!(want.iter().all(Eval::is_finite));
        for (name, mut b) in backends(&data) {
            b.set_weightings(std::slice::from_ref(w)).unwrap();
            let got = evaluate_weighted(&mut b, &ps, &vec![0; ps.len()]);
            for (k, (g, e)) in got.iter().zip(&want).enumerate() {
                assert_close_to(g, e, 1e-12, 1e-11, &format!("{what}, {obj:?}, {name}, {k}"));
            }
        }
    }
}

#[test]
fn holding_out_a_curve_equals_leaving_it_out_of_the_data() {
    for ds in [looplm(203), ragged(203)] {
        let nc = ds.configs.len();
        // The first, a middle and the one before last configuration: none
        // alone holds the largest N or D (the last holds the largest D of
        // the ragged sweep), so the scale stays.
        for c in [0, 9, nc - 2] {
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
    let ds = ragged(203);
    let first = token_fraction(&lens(&ds), 0.4);
    let mut cut = Dataset::default();
    for (cfg, &f) in ds.configs.iter().zip(&first) {
        let short = Config {
            len: f as usize,
            ..cfg.clone()
        };
        push_config(&mut cut, &ds, &short, &cfg.run);
    }
    // Truncating changes the largest token count, hence the scale: one
    // more point at that count, of weight 0, restores it and changes
    // nothing else.
    let i = (0..ds.points())
        .max_by(|&a, &b| ds.tokens[a].total_cmp(&ds.tokens[b]))
        .unwrap();
    cut.tokens.push(ds.tokens[i]);
    cut.loss.push(ds.loss[i]);
    cut.weight.push(0.0);
    cut.configs.last_mut().unwrap().len += 1;
    let w = Weighting {
        first,
        ..Weighting::uniform(ds.configs.len())
    };
    check_equivalent(&ds, &w, &cut, "first 40%");
}

#[test]
fn results_do_not_depend_on_the_batch_or_the_thread_count() {
    let ds = looplm(301);
    let data = Prepared::new(&ds, Objective::default());
    let ws = weightings(&lens(&ds));
    let base = params(&data);
    // 200 starts: varied parameters, weightings in no particular order,
    // every sixth unweighted.
    let batch: Vec<[f64; NP]> = (0..200)
        .map(|i| {
            let mut p = base[i % base.len()];
            p[BETA] *= 1.0 + 1e-3 * i as f64;
            p
        })
        .collect();
    let which: Vec<u32> = (0..200)
        .map(|i| {
            if i % 6 == 5 {
                UNWEIGHTED
            } else {
                ((i * 7 + i / 13) % ws.len()) as u32
            }
        })
        .collect();
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let make = || {
            let mut b = CpuBackend::with_layout(data.clone(), layout).unwrap();
            b.set_weightings(&ws).unwrap();
            b
        };
        let mut b = make();
        let all = evaluate_weighted(&mut b, &batch, &which);
        assert!(all.iter().all(Eval::is_finite));
        // Each start alone.
        for (i, (p, &k)) in batch.iter().zip(&which).enumerate() {
            let alone = evaluate_weighted(&mut b, &[*p], &[k]);
            assert_same_bits(&alone[0], &all[i], &format!("{layout:?}: start {i} alone"));
        }
        // Reversed, and in a batch of one weighting.
        let rev_p: Vec<_> = batch.iter().rev().copied().collect();
        let rev_w: Vec<_> = which.iter().rev().copied().collect();
        let rev = evaluate_weighted(&mut b, &rev_p, &rev_w);
        for (i, e) in rev.iter().rev().enumerate() {
            assert_same_bits(e, &all[i], &format!("{layout:?}: start {i} reversed"));
        }
        let same: Vec<usize> = (0..200).filter(|&i| which[i] == which[0]).collect();
        let sp: Vec<_> = same.iter().map(|&i| batch[i]).collect();
        let one = evaluate_weighted(&mut b, &sp, &vec![which[0]; sp.len()]);
        for (e, &i) in one.iter().zip(&same) {
            assert_same_bits(e, &all[i], &format!("{layout:?}: start {i} among its kind"));
        }
        // Other thread counts, which also change how starts are chunked.
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| evaluate_weighted(&mut make(), &batch, &which));
            for (i, (g, a)) in got.iter().zip(&all).enumerate() {
                assert_same_bits(g, a, &format!("{layout:?}: {threads} threads, start {i}"));
            }
        }
    }
}

#[test]
fn unweighted_entries_equal_plain_evaluation() {
    for ds in [looplm(301), ragged(301)] {
        for obj in objectives() {
            let data = Prepared::new(&ds, obj);
            let ps = params(&data);
            for (name, mut b) in backends(&data) {
                let plain = evaluate(&mut b, &ps);
                // Nothing registered: every start unweighted.
                let none = evaluate_weighted(&mut b, &ps, &vec![UNWEIGHTED; ps.len()]);
                // Mixed with weighted starts.
                b.set_weightings(&weightings(&lens(&ds))).unwrap();
                let mut batch = Vec::new();
                let mut which = Vec::new();
                for p in &ps {
                    batch.extend([*p, *p, *p]);
                    which.extend([4, UNWEIGHTED, 1]);
                }
                let mixed = evaluate_weighted(&mut b, &batch, &which);
                for (k, e) in plain.iter().enumerate() {
                    let what = format!("{obj:?}, {name}, params {k}");
                    assert_same_bits(&none[k], e, &what);
                    assert_same_bits(&mixed[3 * k + 1], e, &what);
                    let want = weights::reference_evaluate(&data, None, &ps[k]);
                    assert_close(e, &want, &what);
                }
                // And a weighted start differs (the check can fail).
                assert_ne!(mixed[0].f, mixed[1].f, "{obj:?}, {name}");
            }
        }
    }
}

#[test]
fn bad_indices_and_weightings_are_errors() {
    let ds = looplm(31);
    let data = Prepared::new(&ds, Objective::default());
    let nc = ds.configs.len();
    let p = params(&data);
    for (name, mut b) in backends(&data) {
        let mut out = vec![Eval::ZERO; 2];
        // Nothing registered yet.
        assert!(b
            .evaluate_weighted(&p[..2], &[0, UNWEIGHTED], &mut out)
            .is_err());
        let ws = weightings(&lens(&ds));
        b.set_weightings(&ws).unwrap();
        let n = ws.len() as u32;
        for bad in [n, n + 5, UNWEIGHTED - 1] {
            let err = b
                .evaluate_weighted(&p[..2], &[UNWEIGHTED, bad], &mut out)
                .unwrap_err();
            assert!(format!("{err}").contains("out of range"), "{name}: {err}");
        }
        // Lengths must agree.
        assert!(b.evaluate_weighted(&p[..2], &[0], &mut out).is_err());
        assert!(b.evaluate_weighted(&p[..1], &[0], &mut out).is_err());
        // The last valid index works.
        b.evaluate_weighted(&p[..2], &[n - 1, 0], &mut out).unwrap();

        // Invalid weightings are refused and leave the registered ones.
        let good = out.clone();
        let negative = Weighting {
            config: (0..nc).map(|c| if c == 3 { -1.0 } else { 1.0 }).collect(),
            ..Weighting::uniform(nc)
        };
        let empty = Weighting {
            config: vec![0.0; nc],
            ..Weighting::uniform(nc)
        };
        let short = Weighting::uniform(nc - 1);
        for w in [negative, empty, short] {
            assert!(b.set_weightings(&[Weighting::uniform(nc), w]).is_err());
        }
        let mut again = vec![Eval::ZERO; 2];
        b.evaluate_weighted(&p[..2], &[n - 1, 0], &mut again)
            .unwrap();
        assert_same_bits(&again[0], &good[0], &name);
        // Registering fewer makes the old indices invalid.
        b.set_weightings(&ws[..1]).unwrap();
        assert!(b.evaluate_weighted(&p[..2], &[1, 0], &mut out).is_err());
    }
}

/// Evaluate `p` under `w` and unweighted on every backend, for `obj`:
/// the weighted value must be finite and match the reference, the
/// unweighted one must not be finite (so the held-out part matters).
fn check_held_out_undefined(
    ds: &Dataset,
    obj: Objective,
    w: &Weighting,
    p: &[f64; NP],
    what: &str,
) {
    let data = Prepared::new(ds, obj);
    let r = weights::resolve(w, &data).unwrap();
    let want = weights::reference_evaluate(&data, Some(&r), p);
    assert!(want.is_finite(), "{what}: reference {want:?}");
    assert!(!weights::reference_evaluate(&data, None, p).f.is_finite());
    for (name, mut b) in backends(&data) {
        b.set_weightings(std::slice::from_ref(w)).unwrap();
        let got = evaluate_weighted(&mut b, &[*p, *p, *p], &[0, UNWEIGHTED, 0]);
        assert_close(&got[0], &want, &format!("{what}, {obj:?}, {name}"));
        assert!(
            !got[1].f.is_finite(),
            "{what}, {obj:?}, {name}: {:?}",
            got[1]
        );
        assert_same_bits(&got[2], &got[0], &format!("{what}, {name}"));
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
    let data = Prepared::new(&ds, obj(LossKind::Mse));
    // B > 0 and a negative E: the prediction falls with tokens and turns
    // negative part way along every curve.
    let p = [-1.0, 0.1, 0.3, 0.01, 0.3, 0.5, 1e-3, 0.1, 1.0, 0.5];
    let pred = |c: usize, d: f64| {
        let cfg = data.configs[c];
        p[E] + p[A] * (cfg.n + p[T1]).powf(-p[ALPHA])
            + p[B] * (d + p[T2]).powf(-p[BETA])
            + p[C] * (cfg.t + p[T3]).powf(-p[GAMMA])
    };
    // Keep each curve's points up to where the prediction turns negative.
    let first: Vec<u32> = data
        .configs
        .iter()
        .enumerate()
        .map(|(c, cfg)| {
            let kept = (cfg.start..cfg.start + cfg.len)
                .take_while(|&i| pred(c, data.d[i]) > 0.0)
                .count();
            assert!(kept > 0 && kept < cfg.len, "curve {c} keeps {kept}");
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

#[test]
fn held_out_points_with_no_token_term_add_nothing() {
    // t2 < 0 makes d + t2 <= 0 at D = 0 only, a point of curve 0 alone: in
    // the grid a token column with no other point.
    let ds = one_curve_from_zero();
    let nc = ds.configs.len();
    let mut p = Prepared::new(&ds, Objective::default())
        .scale
        .to_internal(&looplm20_truth());
    p[T2] = -1e-3;
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
    let seed = (0..100u32)
        .find(|&s| weights::poisson1(weights::point_hash(weights::mix(s), 0)) == 0)
        .unwrap();
    let mut p = Prepared::new(&ds, Objective::default())
        .scale
        .to_internal(&looplm20_truth());
    p[T2] = -1e-3;
    let w = Weighting {
        poisson: Some(seed),
        ..Weighting::uniform(ds.configs.len())
    };
    for obj in objectives() {
        check_held_out_undefined(&ds, obj, &w, &p, "D = 0 drawn 0 times");
    }
}

#[test]
fn held_out_curves_with_no_size_term_add_nothing() {
    // t1 below -n of the smallest model only (53e6 of 1.36e9, scaled):
    // its four curves are held out.
    let ds = looplm(101);
    let nc = ds.configs.len();
    let mut p = Prepared::new(&ds, Objective::default())
        .scale
        .to_internal(&looplm20_truth());
    p[T1] = -0.045;
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
    let mut p = Prepared::new(&ds, Objective::default())
        .scale
        .to_internal(&looplm20_truth());
    p[T2] = -1e-3;
    for obj in objectives() {
        let data = Prepared::new(&ds, obj);
        let want = weights::reference_evaluate(&data, None, &p);
        assert!(want.is_finite());
        for (name, mut b) in backends(&data) {
            let got = evaluate(&mut b, &[p]);
            assert_close(&got[0], &want, &format!("{obj:?}, {name}"));
        }
    }
    // With its weight back, the point makes the value undefined.
    ds.weight[0] = 1.0;
    for (name, mut b) in backends(&Prepared::new(&ds, Objective::default())) {
        assert!(!evaluate(&mut b, &[p])[0].f.is_finite(), "{name}");
    }
}
