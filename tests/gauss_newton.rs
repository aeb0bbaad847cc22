//! The grid evaluator's Gauss-Newton moments (`CpuLaw::evaluate_gn`)
//! against a plain f64 loop over the points: f and the gradient as
//! `evaluate` gives them, and J^T W J from each point's Jacobian row, for
//! separable laws whose axis term is a fused power (LoopLM) and one that
//! is not, on a ragged grid, in linear and log space.

mod common;
use common::evaluator::*;

use sweepfit::backend::weights::{resolve_curves, Resolved, Weighting, ALL_POINTS, UNWEIGHTED};
use sweepfit::backend::{CpuLaw, CpuLayout, Evaluator};
use sweepfit::data::{Dataset, Row};
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::CompiledLaw;
use sweepfit::objective::{LossKind, Objective, Space};

/// f and the gradient within 1e-10 of the reference (relative to |f| and
/// to the gradient's norm), H's entries within 1e-9 of sqrt(H_ii H_jj):
/// the same terms summed in another order.
const REL: f64 = 1e-10;
const H_REL: f64 = 1e-9;

/// LoopLM with an axis term that is not one power of D (two terms of it),
/// written so that the prediction is (axis terms) + (curve terms).
const TWO_AXIS_TERMS: &str =
    "B/(D + t2)^beta + K/log(D) + (E + A/(N + t1)^alpha + C/(T + t3)^gamma)";

/// Five curves over a shared token grid, some shorter and some with gaps,
/// losses from LoopLM at its truth with a wiggle; weights varied from
/// cell to cell, or one per curve (whose full rows of a tile take the
/// evaluator's shortcut, and whose gaps do not).
fn ragged(varied: bool) -> Dataset {
    let law = looplm_law();
    let truth = params_of(&law, &TRUTH);
    let grid: Vec<f64> = (0..700).map(|j| 1e8 + 3e7 * j as f64).collect();
    let mut rows = Vec::new();
    for (i, (n, t)) in [
        (53e6, 1.0),
        (160e6, 2.0),
        (374e6, 1.0),
        (374e6, 4.0),
        (1.36e9, 3.0),
    ]
    .into_iter()
    .enumerate()
    {
        for (j, &d) in grid.iter().enumerate() {
            if (i == 1 && j > 400) || (i == 3 && j % 4 == 1) {
                continue;
            }
            rows.push(Row {
                run: format!("r{i}"),
                n,
                t,
                tokens: d,
                loss: law.eval(&[n, d, t], &truth) + 0.02 * ((j * 5 + i * 3) as f64).sin(),
                weight: match varied {
                    true => 1.0 + ((i + j) % 3) as f64,
                    false => 1.0 + i as f64,
                },
            });
        }
    }
    Dataset::from_rows(rows)
}

/// f, g and J^T W J at `params` under the weighting `wt` (None: the
/// sweep's own weights), one point at a time in f64.
fn reference_gn(
    law: &CompiledLaw,
    sweep: &Sweep,
    obj: &Objective,
    wt: Option<&Resolved>,
    params: &[f64],
) -> (f64, Vec<f64>, Vec<f64>) {
    let (f, g) = reference(law, sweep, obj, wt, params);
    let np = law.params.len();
    let mut h = vec![0.0; np * np];
    let mut grad = vec![0.0; np];
    let nv = sweep.n_vars;
    for (c, r) in sweep.curves.iter().enumerate() {
        for i in r.clone() {
            let w = sweep.w[i] * wt.map_or(1.0, |w| w.factor(c, i - r.start, i));
            if w == 0.0 {
                continue;
            }
            let pred = law.eval_grad(&sweep.vars[i * nv..(i + 1) * nv], params, &mut grad);
            let scale = match obj.space {
                Space::Linear => 1.0,
                Space::Log => 1.0 / pred,
            };
            for a in 0..np {
                for b in 0..np {
                    h[a * np + b] += w * scale * scale * grad[a] * grad[b];
                }
            }
        }
    }
    (f, g, h)
}

fn evaluate_gn(grid: &CpuLaw, params: &[Vec<f64>]) -> Vec<(f64, Vec<f64>, Vec<f64>)> {
    let np = params[0].len();
    let flat = params.concat();
    let k = params.len();
    let (mut f, mut g, mut h) = (vec![0.0; k], vec![0.0; k * np], vec![0.0; k * np * np]);
    grid.evaluate_gn(&flat, &mut f, &mut g, &mut h);
    (0..k)
        .map(|j| {
            (
                f[j],
                g[j * np..(j + 1) * np].to_vec(),
                h[j * np * np..(j + 1) * np * np].to_vec(),
            )
        })
        .collect()
}

/// Parameter vectors of `law` (LoopLM's FAR, with K where the law has it).
fn starts(law: &CompiledLaw) -> Vec<Vec<f64>> {
    FAR.iter()
        .map(|p| {
            let mut named: Vec<(&str, f64)> = p.to_vec();
            named.push(("K", 0.3));
            params_of(law, &named)
        })
        .collect()
}

fn check(law: &CompiledLaw, fused_power: bool) {
    for varied in [true, false] {
        check_on(law, fused_power, &ragged(varied));
    }
}

fn check_on(law: &CompiledLaw, fused_power: bool, ds: &Dataset) {
    for space in [Space::Linear, Space::Log] {
        let obj = Objective {
            loss: LossKind::Mse,
            space,
            delta: 1e-3,
        };
        let sweep = sweep_of(ds, &obj);
        let grid = CpuLaw::new(Plan::for_sweep(law, &sweep), &sweep, obj).unwrap();
        assert_eq!(grid.layout(), CpuLayout::Grid);
        assert!(grid.has_gauss_newton(), "{space:?}: the law is separable");
        assert_eq!(grid.fused_power(), fused_power, "{space:?}");
        let ps = starts(law);
        let got = evaluate_gn(&grid, &ps);
        let plain = cpu_evaluate(&grid, &ps);
        let mut finite = 0;
        for (k, (p, (f, g, h))) in ps.iter().zip(&got).enumerate() {
            let what = format!("{space:?}, params {k}");
            let (fw, gw, hw) = reference_gn(law, &sweep, &obj, None, p);
            if !fw.is_finite() {
                continue;
            }
            finite += 1;
            assert_close((*f, g), (fw, &gw), REL, REL, &what);
            // The same objective and gradient as the gradient's own pass.
            assert_close((*f, g), (plain[k].0, &plain[k].1), REL, REL, &what);
            assert_h(h, &hw, &what);
        }
        assert!(finite >= 2, "{space:?}: {finite} finite references");
    }
}

/// Every entry of `h` within H_REL of the reference's, relative to
/// sqrt(H_ii H_jj).
fn assert_h(h: &[f64], hw: &[f64], what: &str) {
    assert_h_within(h, hw, H_REL, what);
}

/// [`assert_h`] within `tol`.
fn assert_h_within(h: &[f64], hw: &[f64], tol: f64, what: &str) {
    let np = (hw.len() as f64).sqrt() as usize;
    for a in 0..np {
        for b in 0..np {
            let scale = (hw[a * np + a] * hw[b * np + b]).sqrt().max(1e-300);
            let e = (h[a * np + b] - hw[a * np + b]).abs() / scale;
            assert!(
                e <= tol,
                "{what}: H[{a}][{b}] {} against {} (rel {e:e})",
                h[a * np + b],
                hw[a * np + b]
            );
        }
    }
}

#[test]
fn looplm_moments_match_the_reference() {
    check(&looplm_law(), true);
}

#[test]
fn moments_of_an_axis_term_that_is_not_one_power_match_the_reference() {
    let law = CompiledLaw::from_formula(TWO_AXIS_TERMS, &["N", "D", "T"]).unwrap();
    check(&law, false);
}

#[test]
fn moments_do_not_depend_on_the_batch() {
    let law = looplm_law();
    let obj = Objective::default();
    let sweep = sweep_of(&ragged(true), &obj);
    let grid = CpuLaw::new(Plan::for_sweep(&law, &sweep), &sweep, obj).unwrap();
    let ps = starts(&law);
    let together = evaluate_gn(&grid, &ps);
    for (p, t) in ps.iter().zip(&together) {
        let alone = &evaluate_gn(&grid, std::slice::from_ref(p))[0];
        assert_eq!(alone.0.to_bits(), t.0.to_bits());
        assert_eq!(alone.1, t.1);
        assert_eq!(alone.2, t.2);
    }
}

#[test]
fn a_law_that_is_not_separable_has_no_moments() {
    // D and N meet in one term: no split of the Jacobian by key.
    let law = CompiledLaw::from_formula("E + A/(N*D)^alpha + C/T^gamma", &["N", "D", "T"]).unwrap();
    let obj = Objective::default();
    let sweep = sweep_of(&ragged(true), &obj);
    let grid = CpuLaw::new(Plan::for_sweep(&law, &sweep), &sweep, obj).unwrap();
    assert_eq!(grid.layout(), CpuLayout::Grid);
    assert!(!grid.has_gauss_newton());
    assert!(!CpuLaw::gauss_newton_on(
        &Plan::for_sweep(&law, &sweep),
        &sweep,
        obj
    ));
}

/// Bootstrap weightings (curve multipliers, token limits, Poisson counts)
/// registered on the evaluator: each start's moments under its own, in
/// both spaces, with unweighted starts in the same batch.
#[test]
fn weighted_moments_match_the_reference() {
    let law = looplm_law();
    for space in [Space::Linear, Space::Log] {
        let obj = Objective {
            loss: LossKind::Mse,
            space,
            delta: 1e-3,
        };
        let sweep = sweep_of(&ragged(false), &obj);
        let nc = sweep.curves.len();
        let weightings: Vec<Resolved> = [
            Weighting {
                poisson: Some(7),
                ..Weighting::uniform(nc)
            },
            Weighting {
                config: vec![2.0, 0.0, 1.0, 1.0, 3.0],
                ..Weighting::uniform(nc)
            },
            Weighting {
                first: vec![300, ALL_POINTS, 50, ALL_POINTS, 600],
                poisson: Some(3),
                ..Weighting::uniform(nc)
            },
        ]
        .iter()
        .map(|w| resolve_curves(w, &sweep.curves, &sweep.w).unwrap())
        .collect();
        let mut grid = CpuLaw::new(Plan::for_sweep(&law, &sweep), &sweep, obj).unwrap();
        grid.set_weightings(&weightings).unwrap();
        let ps = starts(&law);
        let which = [2, UNWEIGHTED, 0, 1];
        let np = law.params.len();
        let k = ps.len();
        let (mut f, mut g, mut h) = (vec![0.0; k], vec![0.0; k * np], vec![0.0; k * np * np]);
        grid.evaluate_gn_weighted(&ps.concat(), &which, &mut f, &mut g, &mut h)
            .unwrap();
        let mut finite = 0;
        for (j, p) in ps.iter().enumerate() {
            let wt = (which[j] != UNWEIGHTED).then(|| &weightings[which[j] as usize]);
            let (fw, gw, hw) = reference_gn(&law, &sweep, &obj, wt, p);
            if !fw.is_finite() {
                continue;
            }
            finite += 1;
            let what = format!("{space:?}, params {j}, weighting {}", which[j]);
            assert_close((f[j], &g[j * np..(j + 1) * np]), (fw, &gw), REL, REL, &what);
            assert_h(&h[j * np * np..(j + 1) * np * np], &hw, &what);
        }
        assert!(finite >= 2, "{space:?}: {finite} finite references");
        // An index past the registered weightings is refused.
        let err = grid
            .evaluate_gn_weighted(&ps[0], &[3], &mut f[..1], &mut g[..np], &mut h[..np * np])
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}

/// The GPU twin's moments (`GpuLaw::gauss_newton`) against the f64
/// reference, for the laws and weightings above, in one chunk and split
/// over many chunks and workgroups: summed in f32, so f within 1e-4, the
/// gradient within 1e-3 of its norm and H within 1e-3 of sqrt(H_ii H_jj).
#[test]
fn the_gpu_moments_match_the_reference() {
    use sweepfit::backend::gpu::{GpuDevice, GpuLaw, GpuLimits};
    let Some(adapter) = common::adapter() else {
        return;
    };
    let dev = GpuDevice::open(&adapter).expect("open the GPU");
    let small = GpuLimits {
        max_points_per_chunk: 64,
        max_starts_per_dispatch: 64,
        max_groups: 3,
    };
    let two = CompiledLaw::from_formula(TWO_AXIS_TERMS, &["N", "D", "T"]).unwrap();
    for law in [looplm_law(), two] {
        let np = law.params.len();
        for (varied, space, limits) in [
            (true, Space::Linear, None),
            (false, Space::Log, None),
            (true, Space::Log, Some(small)),
        ] {
            let obj = Objective {
                loss: LossKind::Mse,
                space,
                delta: 1e-3,
            };
            let sweep = sweep_of(&ragged(varied), &obj);
            let nc = sweep.curves.len();
            let plan = Plan::for_sweep(&law, &sweep);
            let mut gpu = GpuLaw::gauss_newton(&dev, &plan, &sweep, obj, limits)
                .unwrap()
                .expect("a separable law on a grid has a Gauss-Newton twin");
            let weightings: Vec<Resolved> = [
                Weighting {
                    poisson: Some(7),
                    ..Weighting::uniform(nc)
                },
                Weighting {
                    config: vec![2.0, 0.0, 1.0, 1.0, 3.0],
                    first: vec![300, ALL_POINTS, 50, ALL_POINTS, 600],
                    ..Weighting::uniform(nc)
                },
            ]
            .iter()
            .map(|w| resolve_curves(w, &sweep.curves, &sweep.w).unwrap())
            .collect();
            gpu.set_weightings(&weightings).unwrap();
            let ps = starts(&law);
            let k = ps.len();
            for which in [None, Some(vec![1, UNWEIGHTED, 0, 1])] {
                let (mut f, mut g, mut h) =
                    (vec![0.0; k], vec![0.0; k * np], vec![0.0; k * np * np]);
                match &which {
                    None => gpu.evaluate_gn(&ps.concat(), &mut f, &mut g, &mut h),
                    Some(w) => gpu.evaluate_gn_weighted(&ps.concat(), w, &mut f, &mut g, &mut h),
                }
                .unwrap();
                let mut finite = 0;
                for (j, p) in ps.iter().enumerate() {
                    let wt = which
                        .as_ref()
                        .filter(|w| w[j] != UNWEIGHTED)
                        .map(|w| &weightings[w[j] as usize]);
                    let (fw, gw, hw) = reference_gn(&law, &sweep, &obj, wt, p);
                    if !fw.is_finite() {
                        continue;
                    }
                    finite += 1;
                    let what = format!("{space:?}, {limits:?}, params {j}, weighting {which:?}");
                    assert_close(
                        (f[j], &g[j * np..(j + 1) * np]),
                        (fw, &gw),
                        1e-4,
                        1e-3,
                        &what,
                    );
                    assert_h_within(&h[j * np * np..(j + 1) * np * np], &hw, 1e-3, &what);
                }
                assert!(finite >= 2, "{space:?}: {finite} finite references");
            }
        }
    }
}
