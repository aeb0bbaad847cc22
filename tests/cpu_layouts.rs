//! The CPU backend's two layouts (a shared token grid, and points per
//! configuration) against a plain f64 reference written with std's ln and
//! powf, for every objective, on shared, ragged, non-shared and duplicated
//! token values.

mod common;
use common::assert_close_to;

use sweepfit::backend::{Backend, CpuBackend, CpuLayout, Eval, Prepared};
use sweepfit::data::{Dataset, Row};
use sweepfit::law::{predict_raw, A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};
use sweepfit::objective::{LossKind, Objective, Space};

const TRUTH: [f64; NP] = [1.8, 268.0, 0.3, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];

/// Internal parameter vectors away from the optimum; the last two put the
/// prediction near zero at large tokens (see `padded_cells_outside_log_domain`).
const PARAMS: [[f64; NP]; 4] = [
    [1.6, 0.6, 0.35, 0.02, 1.1, 0.4, 3e-3, 0.5, 0.9, 0.7],
    [1.2, 0.3, 0.5, 0.1, 0.9, 0.3, 1e-2, 0.2, 1.5, 0.1],
    [2.5, 0.05, 0.7, 0.3, 0.4, 1.2, 0.05, 0.0, 1.0, 0.0],
    [0.4, 1.4, 0.2, 1e-3, 2.0, 0.25, 1e-4, -0.1, 0.6, 2.0],
];

fn objectives() -> Vec<Objective> {
    let mut v = Vec::new();
    for space in [Space::Linear, Space::Log] {
        for (loss, delta) in [(LossKind::Mse, 1e-3), (LossKind::Huber, 0.02)] {
            v.push(Objective { loss, space, delta });
        }
    }
    v
}

/// A curve: model size, recurrent step, and its token counts.
struct Curve {
    n: f64,
    t: f64,
    tokens: Vec<f64>,
}

/// Losses from the law plus a deterministic wiggle, varied weights.
fn rows(curves: &[Curve]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, c) in curves.iter().enumerate() {
        for (j, &d) in c.tokens.iter().enumerate() {
            rows.push(Row {
                run: format!("r{i}"),
                n: c.n,
                t: c.t,
                tokens: d,
                loss: predict_raw(&TRUTH, c.n, d, c.t) + 0.03 * ((j * 7 + i * 3) as f64).sin(),
                weight: 1.0 + ((i + j) % 3) as f64,
            });
        }
    }
    rows
}

fn dataset(curves: &[Curve]) -> Dataset {
    Dataset::from_rows(rows(curves))
}

/// `m` token counts 1e8..2e10, not a multiple of the vector width.
fn grid(m: usize) -> Vec<f64> {
    (0..m).map(|j| 1e8 + 2e10 * j as f64 / m as f64).collect()
}

/// Straightforward f64 objective and gradient.
fn reference(data: &Prepared, p: &[f64; NP]) -> Eval {
    let obj = data.objective;
    let mut e = Eval::ZERO;
    for cfg in &data.configs {
        let (xn, xt) = (cfg.n + p[T1], cfg.t + p[T3]);
        let (un, ut) = (xn.powf(-p[ALPHA]), xt.powf(-p[GAMMA]));
        for i in cfg.start..cfg.start + cfg.len {
            let x = data.d[i] + p[T2];
            let v = x.powf(-p[BETA]);
            let pred = p[E] + p[A] * un + p[B] * v + p[C] * ut;
            let (r, drdp) = match obj.space {
                Space::Linear => (pred - data.y[i], 1.0),
                Space::Log => (pred.ln() - data.y[i], 1.0 / pred),
            };
            let (rho, drho) = match obj.loss {
                LossKind::Mse => (0.5 * r * r, r),
                LossKind::Huber if r.abs() <= obj.delta => (0.5 * r * r, r),
                LossKind::Huber => (
                    obj.delta * (r.abs() - 0.5 * obj.delta),
                    obj.delta.copysign(r),
                ),
            };
            let w = data.w[i];
            let g = w * drho * drdp;
            e.f += w * rho;
            let mut dp = [0.0; NP];
            dp[E] = 1.0;
            dp[A] = un;
            dp[ALPHA] = -p[A] * un * xn.ln();
            dp[T1] = -p[ALPHA] * p[A] * un / xn;
            dp[B] = v;
            dp[BETA] = -p[B] * v * x.ln();
            dp[T2] = -p[BETA] * p[B] * v / x;
            dp[C] = ut;
            dp[GAMMA] = -p[C] * ut * xt.ln();
            dp[T3] = -p[GAMMA] * p[C] * ut / xt;
            for (a, d) in e.g.iter_mut().zip(dp) {
                *a += g * d;
            }
        }
    }
    e
}

fn evaluate(backend: &mut CpuBackend, params: &[[f64; NP]]) -> Vec<Eval> {
    let mut out = vec![Eval::ZERO; params.len()];
    backend.evaluate(params, &mut out).unwrap();
    out
}

/// f and every gradient entry within 1e-10 of the reference (relative to
/// |f| and to the gradient's norm); non-finite exactly where the reference
/// is.
fn assert_close(got: &Eval, want: &Eval, what: &str) {
    assert_close_to(got, want, 1e-10, 1e-10, what);
}

/// Both layouts (where the data allows the grid) against the reference,
/// for every objective and all of PARAMS in one batch. Returns the layout
/// `CpuBackend::new` chose for each objective.
fn check_all(ds: &Dataset) -> CpuLayout {
    let mut chosen = Vec::new();
    for obj in objectives() {
        let data = Prepared::new(ds, obj);
        let want: Vec<Eval> = PARAMS.iter().map(|p| reference(&data, p)).collect();
        let auto = CpuBackend::new(data.clone());
        chosen.push(auto.layout());
        let mut backends = vec![(format!("{:?}", auto.layout()), auto)];
        for layout in [CpuLayout::Points, CpuLayout::Grid] {
            if let Ok(b) = CpuBackend::with_layout(data.clone(), layout) {
                assert_eq!(b.layout(), layout);
                backends.push((format!("forced {layout:?}"), b));
            }
        }
        for (name, backend) in &mut backends {
            let got = evaluate(backend, &PARAMS);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(g, w, &format!("{obj:?}, {name} layout, params {k}"));
            }
        }
    }
    assert!(chosen.windows(2).all(|w| w[0] == w[1]));
    chosen[0]
}

#[test]
fn shared_grid_uses_the_grid_and_matches_the_reference() {
    // 2500 tokens span two grid blocks and several tiles; N and T vary.
    let curves: Vec<Curve> = [(53e6, 1.0), (374e6, 1.0), (374e6, 3.0), (1.36e9, 2.0)]
        .into_iter()
        .map(|(n, t)| Curve {
            n,
            t,
            tokens: grid(2500),
        })
        .collect();
    let ds = dataset(&curves);
    assert_eq!(check_all(&ds), CpuLayout::Grid);
    let backend = CpuBackend::new(Prepared::new(&ds, Objective::default()));
    let device = backend.info().device;
    assert!(
        device.ends_with("f64, shared token grid (4 curves x 2500 tokens)"),
        "{device}"
    );
}

#[test]
fn ragged_grid_matches_the_reference() {
    let full = grid(301);
    let curves = vec![
        Curve {
            n: 53e6,
            t: 1.0,
            tokens: full.clone(),
        },
        // Shorter, as when a run stopped early.
        Curve {
            n: 160e6,
            t: 1.0,
            tokens: full[..180].to_vec(),
        },
        // Misses every third value, and starts late.
        Curve {
            n: 374e6,
            t: 1.0,
            tokens: full
                .iter()
                .enumerate()
                .filter(|(j, _)| j % 3 != 1 && *j > 20)
                .map(|(_, d)| *d)
                .collect(),
        },
        // A few values of its own.
        Curve {
            n: 1.36e9,
            t: 2.0,
            tokens: full
                .iter()
                .copied()
                .chain((0..7).map(|j| 3e8 + 1e6 * j as f64))
                .collect(),
        },
    ];
    assert_eq!(check_all(&dataset(&curves)), CpuLayout::Grid);
}

#[test]
fn mostly_distinct_tokens_use_the_point_layout() {
    // Each curve logs at its own token counts.
    let curves: Vec<Curve> = (0..5)
        .map(|i| Curve {
            n: 50e6 * (i + 1) as f64,
            t: 1.0,
            tokens: grid(203).iter().map(|d| d + 1e6 * (i + 1) as f64).collect(),
        })
        .collect();
    let ds = dataset(&curves);
    assert_eq!(check_all(&ds), CpuLayout::Points);
    let device = CpuBackend::new(Prepared::new(&ds, Objective::default()))
        .info()
        .device;
    assert!(
        device.ends_with("f64, point layout (1015 points)"),
        "{device}"
    );
}

#[test]
fn a_single_curve_uses_the_point_layout() {
    let ds = dataset(&[Curve {
        n: 53e6,
        t: 1.0,
        tokens: grid(100),
    }]);
    assert_eq!(check_all(&ds), CpuLayout::Points);
}

#[test]
fn duplicate_tokens_count_twice() {
    let curves = vec![
        Curve {
            n: 53e6,
            t: 1.0,
            tokens: grid(150),
        },
        Curve {
            n: 374e6,
            t: 1.0,
            tokens: grid(150),
        },
    ];
    // The last point repeated, with its own weight.
    let mut dup = rows(&curves);
    let mut extra = dup.last().unwrap().clone();
    extra.weight = 2.5;
    dup.push(extra);
    let ds = Dataset::from_rows(dup);
    assert_eq!(check_all(&ds), CpuLayout::Points);
    let data = Prepared::new(&ds, Objective::default());
    let err = CpuBackend::with_layout(data.clone(), CpuLayout::Grid)
        .err()
        .unwrap();
    assert!(
        format!("{err}").contains("two points at one axis value"),
        "{err}"
    );

    // The same as that point once with the two weights added, which the
    // grid layout evaluates.
    let mut single = rows(&curves);
    single.last_mut().unwrap().weight += 2.5;
    let mut grid_backend = CpuBackend::new(Prepared::new(
        &Dataset::from_rows(single),
        Objective::default(),
    ));
    assert_eq!(grid_backend.layout(), CpuLayout::Grid);
    let want = evaluate(&mut grid_backend, &PARAMS);
    let got = evaluate(&mut CpuBackend::new(data), &PARAMS);
    for (g, w) in got.iter().zip(&want) {
        assert_close(g, w, "duplicate vs merged weight");
    }
}

#[test]
fn padded_cells_outside_log_domain_contribute_nothing() {
    // The short curve ends at 1.2e10 tokens; with these parameters its
    // prediction is positive there but negative further on, where it has
    // no points and the grid has padding.
    let full = grid(200);
    let curves = vec![
        Curve {
            n: 53e6,
            t: 1.0,
            tokens: full.clone(),
        },
        Curve {
            n: 1.36e9,
            t: 1.0,
            tokens: full.iter().copied().filter(|d| *d < 1.2e10).collect(),
        },
    ];
    let ds = dataset(&curves);
    let obj = Objective {
        loss: LossKind::Mse,
        space: Space::Log,
        delta: 1e-3,
    };
    let data = Prepared::new(&ds, obj);
    let mut p = PARAMS[0];
    p[C] = 0.0;
    let q = p;
    let pred = |e: f64, n: f64, d: f64| {
        e + q[A] * (n + q[T1]).powf(-q[ALPHA]) + q[B] * (d + q[T2]).powf(-q[BETA])
    };
    // Choose E so that the short curve's prediction crosses zero between
    // its last point and the largest tokens.
    let (short, long) = (data.configs[1], data.configs[0]);
    let last = data.d[short.start + short.len - 1];
    p[E] = -0.5 * (pred(0.0, short.n, last) + pred(0.0, short.n, 1.0));
    assert!(pred(p[E], short.n, last) > 0.0 && pred(p[E], short.n, 1.0) < 0.0);
    for i in long.start..long.start + long.len {
        assert!(
            pred(p[E], long.n, data.d[i]) > 0.0,
            "the long curve must stay in the domain"
        );
    }
    let want = reference(&data, &p);
    assert!(want.is_finite());
    let mut backend = CpuBackend::new(data);
    assert_eq!(backend.layout(), CpuLayout::Grid);
    assert_close(&evaluate(&mut backend, &[p])[0], &want, "padded cells");

    // A real point outside the domain still makes the value non-finite.
    let mut q = p;
    q[E] -= 1.0;
    let out = evaluate(&mut backend, &[q, p]);
    assert!(!out[0].f.is_finite());
    assert_close(&out[1], &want, "neighbour in the batch");
}

#[test]
fn empty_batch_and_empty_data() {
    let ds = dataset(&[
        Curve {
            n: 53e6,
            t: 1.0,
            tokens: grid(10),
        },
        Curve {
            n: 1e9,
            t: 1.0,
            tokens: grid(10),
        },
    ]);
    let mut b = CpuBackend::new(Prepared::new(&ds, Objective::default()));
    b.evaluate(&[], &mut []).unwrap();
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let mut b = CpuBackend::with_layout(
            Prepared::new(&Dataset::default(), Objective::default()),
            layout,
        )
        .unwrap();
        assert_eq!(evaluate(&mut b, &PARAMS[..1])[0], Eval::ZERO);
    }
}

#[test]
fn many_curves_at_one_token_count() {
    // Final losses only, all at the same tokens: more configurations than
    // a grid work item keeps constants for at once.
    let curves: Vec<Curve> = (0..70_000)
        .map(|i| Curve {
            n: 1e7 * (1.0 + i as f64 * 1e-3),
            t: 1.0 + (i % 4) as f64,
            tokens: vec![2e10],
        })
        .collect();
    assert_eq!(check_all(&dataset(&curves)), CpuLayout::Grid);
}

#[test]
fn values_do_not_depend_on_the_thread_count() {
    let curves: Vec<Curve> = [53e6, 374e6, 1.36e9]
        .into_iter()
        .map(|n| Curve {
            n,
            t: 1.0,
            tokens: grid(2100),
        })
        .collect();
    let data = Prepared::new(&dataset(&curves), Objective::default());
    let params: Vec<[f64; NP]> = (0..37).map(|i| PARAMS[i % PARAMS.len()]).collect();
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let runs: Vec<Vec<Eval>> = [1, 3]
            .into_iter()
            .map(|threads| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut b = CpuBackend::with_layout(data.clone(), layout).unwrap();
                    evaluate(&mut b, &params)
                })
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{layout:?}");
    }
}
