//! The CPU evaluator (`CpuLaw`) of the compiled looplm law in each
//! layout it accepts (a shared token grid, points per curve, a table of
//! one-point curves) against the plain f64 reference, for every objective,
//! on shared, ragged, non-shared and duplicated token values; padded grid
//! cells, empty batches and data, and independence from the thread count.

mod common;
use common::evaluator::*;

use sweepfit::backend::{CpuLaw, CpuLayout};
use sweepfit::data::{Dataset, Row};
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::CompiledLaw;
use sweepfit::objective::{LossKind, Objective, Space};

/// f and every gradient entry within 1e-10 of the f64 reference (relative
/// to |f| and to the gradient's norm): both sum the same terms in f64, in
/// another order.
const REL: f64 = 1e-10;

fn params(law: &CompiledLaw) -> Vec<Vec<f64>> {
    FAR.iter().map(|p| params_of(law, p)).collect()
}

/// A curve: model size, recurrent step, and its token counts.
struct Curve {
    n: f64,
    t: f64,
    tokens: Vec<f64>,
}

/// Losses from the law at the truth plus a deterministic wiggle, and
/// varied weights.
fn rows(curves: &[Curve]) -> Vec<Row> {
    let law = looplm_law();
    let truth = params_of(&law, &TRUTH);
    let mut rows = Vec::new();
    for (i, c) in curves.iter().enumerate() {
        for (j, &d) in c.tokens.iter().enumerate() {
            rows.push(Row {
                run: format!("r{i}"),
                n: c.n,
                t: c.t,
                tokens: d,
                loss: law.eval(&[c.n, d, c.t], &truth) + 0.03 * ((j * 7 + i * 3) as f64).sin(),
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

fn compile(law: &CompiledLaw, sweep: &Sweep, obj: Objective, layout: CpuLayout) -> CpuLaw {
    CpuLaw::with_layout(Plan::for_sweep(law, sweep), sweep, obj, layout).unwrap()
}

/// Every layout that accepts `sweep` against the reference, for every
/// objective and all of FAR in one batch. Returns the layout
/// `CpuLaw::new` chose (the same for every objective).
fn check_sweep(sweep: &Sweep) -> CpuLayout {
    let law = looplm_law();
    let ps = params(&law);
    let mut chosen = Vec::new();
    for obj in objectives() {
        let want: Vec<_> = ps
            .iter()
            .map(|p| reference(&law, sweep, &obj, None, p))
            .collect();
        // The comparison means little unless most values are finite.
        let finite = want.iter().filter(|(f, _)| f.is_finite()).count();
        assert!(finite >= 3, "{obj:?}: {finite} finite references");
        let grids = cpu_grids(&law, sweep, &obj);
        chosen.push(grids[0].1.layout());
        for (name, grid) in &grids {
            let got = cpu_evaluate(grid, &ps);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let what = format!("{obj:?}, {name} layout, params {k}");
                assert_matches((g.0, &g.1), (w.0, &w.1), REL, REL, &what);
            }
        }
    }
    assert!(chosen.windows(2).all(|w| w[0] == w[1]), "{chosen:?}");
    chosen[0]
}

fn check_all(ds: &Dataset) -> CpuLayout {
    check_sweep(&sweep_of(ds, &Objective::default()))
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
    // The grid is every curve over every token count: no padding.
    let sweep = sweep_of(&ds, &Objective::default());
    assert_eq!((sweep.curves.len(), sweep.axis_values.len()), (4, 2500));
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
    assert_eq!(ds.points(), 1015);
    assert_eq!(check_all(&ds), CpuLayout::Points);
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
    let law = looplm_law();
    let obj = Objective::default();
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
    let sweep = sweep_of(&ds, &obj);
    let err = CpuLaw::with_layout(Plan::for_sweep(&law, &sweep), &sweep, obj, CpuLayout::Grid)
        .err()
        .unwrap();
    assert!(err.contains("two points at one axis value"), "{err}");

    // The same as that point once with the two weights added, which the
    // grid layout evaluates.
    let mut single = rows(&curves);
    single.last_mut().unwrap().weight += 2.5;
    let merged = sweep_of(&Dataset::from_rows(single), &obj);
    let grid = CpuLaw::new(Plan::for_sweep(&law, &merged), &merged, obj).unwrap();
    assert_eq!(grid.layout(), CpuLayout::Grid);
    let ps = params(&law);
    let want = cpu_evaluate(&grid, &ps);
    let points = CpuLaw::new(Plan::for_sweep(&law, &sweep), &sweep, obj).unwrap();
    let got = cpu_evaluate(&points, &ps);
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let what = format!("duplicate vs merged weight, params {k}");
        assert_close((g.0, &g.1), (w.0, &w.1), REL, REL, &what);
    }
}

#[test]
fn padded_cells_outside_log_domain_contribute_nothing() {
    // The short curve ends before 1.2e10 tokens; with these parameters its
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
    let obj = Objective {
        loss: LossKind::Mse,
        space: Space::Log,
        delta: 1e-3,
    };
    let sweep = sweep_of(&dataset(&curves), &obj);
    let law = looplm_law();
    let mut p = params_of(&law, &FAR[0]);
    p[param_index(&law, "C")] = 0.0;
    let e = param_index(&law, "E");
    let pred = |p: &[f64], n: f64, d: f64| law.eval(&[n, d, 1.0], p);
    // Choose E so that the short curve's prediction crosses zero between
    // its last point and the largest tokens.
    let (long, short) = (sweep.curves[0].clone(), sweep.curves[1].clone());
    let last = sweep.vars[3 * (short.end - 1) + 1];
    let dmax = *sweep.axis_values.last().unwrap();
    assert!(last < dmax);
    p[e] = 0.0;
    p[e] = -0.5 * (pred(&p, 1.36e9, last) + pred(&p, 1.36e9, dmax));
    assert!(pred(&p, 1.36e9, last) > 0.0 && pred(&p, 1.36e9, dmax) < 0.0);
    for i in long {
        assert!(
            pred(&p, 53e6, sweep.vars[3 * i + 1]) > 0.0,
            "the long curve must stay in the domain"
        );
    }
    let want = reference(&law, &sweep, &obj, None, &p);
    assert!(want.0.is_finite());
    let grid = compile(&law, &sweep, obj, CpuLayout::Grid);
    assert_eq!(CpuLayout::of(&sweep), CpuLayout::Grid);
    let got = cpu_evaluate(&grid, std::slice::from_ref(&p));
    assert_close(
        (got[0].0, &got[0].1),
        (want.0, &want.1),
        REL,
        REL,
        "padded cells",
    );

    // A real point outside the domain still makes the value non-finite.
    let mut q = p.clone();
    q[e] -= 1.0;
    let out = cpu_evaluate(&grid, &[q, p]);
    assert!(!out[0].0.is_finite(), "{:?}", out[0]);
    let what = "neighbour in the batch";
    assert_close((out[1].0, &out[1].1), (want.0, &want.1), REL, REL, what);
}

#[test]
fn empty_batch_and_empty_data() {
    let law = looplm_law();
    let obj = Objective::default();
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
    let sweep = sweep_of(&ds, &obj);
    for (name, g) in cpu_grids(&law, &sweep, &obj) {
        g.evaluate(&[], &mut [], &mut []);
        assert!(cpu_evaluate(&g, &[]).is_empty(), "{name}");
    }
    let empty = sweep_of(&Dataset::default(), &obj);
    let p = params(&law);
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let g = compile(&law, &empty, obj, layout);
        // Poison the outputs: an empty sweep must still write zeros.
        let (mut f, mut gr) = (vec![f64::NAN; 2], vec![f64::NAN; 2 * p[0].len()]);
        g.evaluate(&[p[0].clone(), p[1].clone()].concat(), &mut f, &mut gr);
        assert!(
            f.iter().chain(&gr).all(|&v| v == 0.0),
            "{layout:?}: {f:?} {gr:?}"
        );
    }
}

#[test]
fn many_curves_at_one_token_count() {
    // Final losses only, all at the same tokens: more curves than a grid
    // work item keeps constants for at once.
    let curves: Vec<Curve> = (0..70_000)
        .map(|i| Curve {
            n: 1e7 * (1.0 + i as f64 * 1e-3),
            t: 1.0 + (i % 4) as f64,
            tokens: vec![2e10],
        })
        .collect();
    let ds = dataset(&curves);
    assert_eq!(check_all(&ds), CpuLayout::Grid);
    // Without an axis, the same one-point curves are a table.
    let s = sweep_of(&ds, &Objective::default());
    let table = Sweep::new(s.n_vars, s.curves, s.vars, s.y, s.w, None);
    assert_eq!(check_sweep(&table), CpuLayout::Table);
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
    let obj = Objective::default();
    let sweep = sweep_of(&dataset(&curves), &obj);
    let law = looplm_law();
    let base = params(&law);
    let ps: Vec<Vec<f64>> = (0..37).map(|i| base[i % base.len()].clone()).collect();
    let bits = |v: Vec<(f64, Vec<f64>)>| -> Vec<Vec<u64>> {
        v.into_iter()
            .map(|(f, g)| std::iter::once(f).chain(g).map(f64::to_bits).collect())
            .collect()
    };
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let runs: Vec<_> = [1, 3]
            .into_iter()
            .map(|threads| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| bits(cpu_evaluate(&compile(&law, &sweep, obj, layout), &ps)))
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{layout:?}");
    }
}
