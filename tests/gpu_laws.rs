//! Kernels generated from compiled laws, on the GPU, against the CPU
//! evaluator of the same plan: every built-in law and the random formulas
//! of the law-language property test, on three shapes of sweep (curves on
//! a shared axis, a variable that changes along each curve, a table of
//! one-point curves), every loss and space, with and without weightings,
//! with the work split forced small.
//!
//! Tolerances (the GPU works in f32, the CPU in f64): objective within
//! 1e-5 relative; every gradient entry on its own scale, not the whole
//! gradient's: a gradient entry is a sum of per-point terms whose f32
//! rounding scales with the terms, not with the sum, so it must be within
//! 1e-4 of the sum of the terms' absolute values, plus what the f32 error
//! of the predictions (below) moves it by through the residuals. Likewise
//! the objective, where the residuals
//! are tiny and a prediction's f32 rounding error is not (a law such as
//! log((1 + v)^2) with v small cancels most of its digits): it may also be
//! within the change that four f32 roundings of every node of every
//! prediction could make, by the nodes' first-order condition numbers. A
//! hardware GPU's transcendentals reach that floor where the software
//! driver's do not.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, which runs them on Mesa's software Vulkan driver) and otherwise skip
//! with a printed reason. The naga validation of every built-in law's
//! kernel needs no adapter.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{adapter, random_formula, FORMULA_VARS};
use sweepfit::backend::gpu::{self, GpuDevice, GpuLaw, GpuLimits, Layout};
use sweepfit::backend::weights::{resolve_curves, Resolved, Weighting, UNWEIGHTED};
use sweepfit::backend::CpuLaw;
use sweepfit::law::dag::Node;
use sweepfit::law::ops::Func;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::{builtin_law, builtin_names, CompiledLaw};
use sweepfit::objective::{LossKind, Objective, Space};

/// The shapes of sweep every law is checked on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Curves along the axis variable on a shared grid of values, the
    /// other variables constant along each curve.
    Grid,
    /// As Grid, but the first non-axis variable changes along each curve
    /// (its nodes are per point).
    Varying,
    /// One point per curve, no axis (a table of final losses).
    Table,
}

const SHAPES: [Shape; 3] = [Shape::Grid, Shape::Varying, Shape::Table];

/// A sweep of `law`'s variables with values of order one to ten, and
/// targets from the law at `truth` plus noise.
fn sweep(law: &CompiledLaw, axis: Option<usize>, shape: Shape, truth: &[f64], seed: u64) -> Sweep {
    let mut rng = StdRng::seed_from_u64(seed);
    let nv = law.variables.len();
    let axis = match shape {
        Shape::Table => None,
        _ => axis.or(Some(0)),
    };
    let (n_curves, per_curve) = match shape {
        Shape::Table => (150, 1),
        _ => (7, 37),
    };
    let varying = (0..nv).find(|&v| Some(v) != axis);
    let (mut vars, mut y, mut w, mut curves) = (vec![], vec![], vec![], vec![]);
    for c in 0..n_curves {
        let fixed: Vec<f64> = (0..nv).map(|_| rng.random_range(1.0..4.0)).collect();
        let start = y.len();
        // Ragged: curves stop at different points of the grid.
        let len = per_curve - (c % 3) * (per_curve / 5);
        for i in 0..len {
            let mut x = fixed.clone();
            if let Some(a) = axis {
                x[a] = 1.0 + 0.25 * i as f64;
            }
            if let (Shape::Varying, Some(v)) = (shape, varying) {
                x[v] = fixed[v] * (1.0 + 0.05 * i as f64);
            }
            let pred = law.eval(&x, truth);
            vars.extend(&x);
            y.push(pred + rng.random_range(-0.05..0.05) * pred.abs().max(0.1));
            w.push(rng.random_range(0.5..1.5));
        }
        curves.push(start..y.len());
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    Sweep::new(nv, curves, vars, y, w, axis.map(|a| a as u16))
}

fn objectives() -> Vec<Objective> {
    let mut out = Vec::new();
    for loss in [LossKind::Mse, LossKind::Huber] {
        for space in [Space::Linear, Space::Log] {
            let delta = if space == Space::Log { 1e-2 } else { 0.05 };
            out.push(Objective { loss, space, delta });
        }
    }
    out
}

/// Weightings of every kind: curve multipliers with some curves left out,
/// first-points limits, Poisson counts, and all at once.
fn weightings(sweep: &Sweep) -> Vec<Resolved> {
    let nc = sweep.curves.len();
    let mut rng = StdRng::seed_from_u64(11);
    let mult: Vec<f64> = (0..nc)
        .map(|c| {
            if c % 4 == 1 {
                0.0
            } else {
                rng.random_range(0.5..2.0)
            }
        })
        .collect();
    let first: Vec<u32> = sweep
        .curves
        .iter()
        .map(|r| (r.len() as u32).div_ceil(2))
        .collect();
    let all = vec![1.0; nc];
    let none = vec![u32::MAX; nc];
    [
        (mult.clone(), none.clone(), None),
        (all.clone(), first.clone(), None),
        (all, none, Some(7)),
        (mult, first, Some(3)),
    ]
    .into_iter()
    .map(|(config, first, poisson)| {
        let w = Weighting {
            config,
            first,
            poisson,
        };
        resolve_curves(&w, &sweep.curves, &sweep.w).expect("a valid weighting")
    })
    .collect()
}

/// Parameter vectors near `truth`.
fn params_near(truth: &[f64], k: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..k)
        .flat_map(|_| {
            truth
                .iter()
                .map(|&v| v * rng.random_range(0.8..1.25))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Scales of the f32 rounding, from the sweep's own weights (weightings
/// scale them by a few at most).
struct Scale {
    /// Per start and parameter, the sum over points of the absolute values
    /// of the gradient's terms: w |rho'(r)| |dr/dpred| |dpred/dp|.
    grad: Vec<f64>,
    /// Per start and parameter, what the f32 error of the predictions
    /// moves the gradient by through the residual: the sum over points of
    /// w |rho''(r)| |dr/dpred|^2 |dpred/dp| delta, with delta the
    /// prediction's f32 floor (four roundings of every node, by condition).
    grad_residual: Vec<f64>,
    /// Per start, the objective's first-order change when every node of
    /// every prediction moves by its own size: the sum over points of
    /// w |rho'(r)| |dr/dpred| kappa, kappa from [`condition`].
    objective: Vec<f64>,
}

/// The prediction's absolute first-order error if every node of the law
/// is off by one part in its own size: the sum over nodes of |d pred /
/// d node| |node|, by reverse mode over the law's graph in f64. A power's
/// node counts 1 + |b ln a| times, for the rounding of b log a inside it.
fn condition(law: &CompiledLaw, x: &[f64], p: &[f64]) -> f64 {
    let mut v = Vec::new();
    law.graph.eval_all(law.value, x, p, &mut v);
    let mut adj = vec![0.0; v.len()];
    adj[law.value as usize] = 1.0;
    let mut kappa = 0.0;
    for i in (0..v.len()).rev() {
        let a = adj[i];
        if a == 0.0 {
            continue;
        }
        let mut times = 1.0;
        let mut push = |j: u32, d: f64| adj[j as usize] += a * d;
        match law.graph.node(i as u32) {
            Node::Const(_) | Node::Var(_) | Node::Param(_) => {}
            Node::Neg(x) => push(x, -1.0),
            Node::Add(x, y) => {
                push(x, 1.0);
                push(y, 1.0);
            }
            Node::Sub(x, y) => {
                push(x, 1.0);
                push(y, -1.0);
            }
            Node::Mul(x, y) => {
                push(x, v[y as usize]);
                push(y, v[x as usize]);
            }
            Node::Div(x, y) => {
                push(x, 1.0 / v[y as usize]);
                push(y, -v[i] / v[y as usize]);
            }
            Node::Pow(x, y) => {
                let (b, e) = (v[x as usize], v[y as usize]);
                let ln = b.abs().ln();
                push(x, e * v[i] / b);
                push(y, v[i] * ln);
                times += (e * ln).abs();
            }
            Node::Fn1(Func::Exp, x) => push(x, v[i]),
            Node::Fn1(Func::Log, x) => push(x, 1.0 / v[x as usize]),
            Node::Fn1(Func::Sqrt, x) => push(x, 0.5 / v[i]),
            Node::Fn1(Func::Tanh, x) => push(x, 1.0 - v[i] * v[i]),
            Node::Fn1(Func::Sin, x) => push(x, v[x as usize].cos()),
            Node::Fn1(Func::Cos, x) => push(x, -v[x as usize].sin()),
            Node::Fn1(Func::Atan, x) => push(x, 1.0 / (1.0 + v[x as usize] * v[x as usize])),
            Node::Fn2(Func::Min | Func::Max, x, y) => {
                push(if v[i] == v[x as usize] { x } else { y }, 1.0)
            }
            Node::Fn1(f, _) | Node::Fn2(f, ..) => panic!("no reference partial for {}", f.name()),
            Node::Steps(..) => panic!("no reference partial for a sum along the steps"),
        }
        let term = (a * v[i]).abs() * times;
        if term.is_finite() {
            kappa += term;
        }
    }
    kappa
}

/// The scales of every start of `params`; with `weighted`, start k's point
/// weights are multiplied by its weighting's factors (which[k], or none
/// where it is UNWEIGHTED).
fn term_scale(
    law: &CompiledLaw,
    sweep: &Sweep,
    obj: Objective,
    params: &[f64],
    weighted: Option<(&[u32], &[Resolved])>,
) -> Scale {
    let np = law.params.len();
    // Each point's curve and position in it, for the weightings' factors.
    let mut place = vec![(0, 0); sweep.points()];
    for (c, r) in sweep.curves.iter().enumerate() {
        for i in r.clone() {
            place[i] = (c, i - r.start);
        }
    }
    let mut out = vec![0.0; params.len()];
    let mut grad_residual = vec![0.0; params.len()];
    let mut objective = vec![0.0; params.len() / np];
    let mut dp = vec![0.0; np];
    for (k, p) in params.chunks(np).enumerate() {
        let weighting = weighted.and_then(|(which, ws)| ws.get(which[k] as usize));
        for (i, &(c, pos)) in place.iter().enumerate() {
            let w = sweep.w[i] * weighting.map_or(1.0, |r| r.factor(c, pos, i));
            if w == 0.0 {
                continue;
            }
            let x = &sweep.vars[i * sweep.n_vars..(i + 1) * sweep.n_vars];
            let pred = law.eval_grad(x, p, &mut dp);
            let (r, drdp) = match obj.space {
                Space::Linear => (pred - sweep.y[i], 1.0),
                Space::Log => (pred.ln() - sweep.y[i], 1.0 / pred),
            };
            let (_, drho) = obj.rho(r);
            // rho'' is 1 inside Huber's threshold (and for MSE), 0 outside.
            let d2rho = if obj.loss == LossKind::Mse || r.abs() <= obj.delta {
                1.0
            } else {
                0.0
            };
            let kappa = condition(law, x, p);
            // An undefined point (the objective is NaN then) sets no floor.
            let term = w * (drho * drdp).abs() * kappa;
            if term.is_finite() {
                objective[k] += term;
            }
            for j in 0..np {
                let term = w * (drho * drdp * dp[j]).abs();
                if term.is_finite() {
                    out[k * np + j] += term;
                }
                let moved = w * d2rho * drdp * drdp * (dp[j] * kappa).abs();
                if moved.is_finite() {
                    grad_residual[k * np + j] += F32_ROUNDINGS * moved;
                }
            }
        }
    }
    Scale {
        grad: out,
        grad_residual,
        objective,
    }
}

/// Four f32 roundings (2^-24 each) of a node.
const F32_ROUNDINGS: f64 = 4.0 * 5.960464477539063e-8;

/// Objective within 1e-5 relative (or the f32 floor of its predictions);
/// every gradient entry on its own, within 1e-4 of its terms' scale plus
/// what the predictions' f32 floor moves it by (no tolerance borrowed from
/// the gradient's norm, so small entries such as an offset's are tested
/// too); where the CPU finds the law undefined (NaN), the GPU must too.
fn compare(
    np: usize,
    cpu: (&[f64], &[f64]),
    gpu: (&[f64], &[f64]),
    scale: &Scale,
    what: &str,
) -> usize {
    let mut compared = 0;
    for k in 0..cpu.0.len() {
        let (fc, fg) = (cpu.0[k], gpu.0[k]);
        if fc.is_nan() {
            assert!(fg.is_nan(), "{what} start {k}: cpu NaN, gpu {fg}");
            continue;
        }
        assert!(
            (fc - fg).abs() <= (1e-5 * fc.abs()).max(F32_ROUNDINGS * scale.objective[k]),
            "{what} start {k}: objective cpu {fc} gpu {fg} (floor {})",
            F32_ROUNDINGS * scale.objective[k]
        );
        let gc = &cpu.1[k * np..(k + 1) * np];
        let gg = &gpu.1[k * np..(k + 1) * np];
        for i in 0..np {
            let floor = 1e-4 * scale.grad[k * np + i] + scale.grad_residual[k * np + i];
            assert!(
                (gc[i] - gg[i]).abs() <= floor,
                "{what} start {k}: d/dp{i} cpu {} gpu {} (floor {floor})",
                gc[i],
                gg[i]
            );
        }
        compared += 1;
    }
    compared
}

/// Run `law` on `sweep` on both backends, plain and weighted, with the
/// device's work split and with a forced small one. Returns how many
/// evaluations were compared.
fn check_law(
    dev: &Arc<GpuDevice>,
    law: &CompiledLaw,
    sweep: &Sweep,
    obj: Objective,
    params: &[f64],
    what: &str,
) -> usize {
    let np = law.params.len();
    let k = params.len() / np;
    let plan = Plan::for_sweep(law, sweep);
    let cpu = CpuLaw::new(plan.clone(), sweep, obj).expect("a CPU layout");
    let (mut fc, mut gc) = (vec![0.0; k], vec![0.0; k * np]);
    cpu.evaluate(params, &mut fc, &mut gc);
    let scale = term_scale(law, sweep, obj, params, None);
    let ws = weightings(sweep);
    let which: Vec<u32> = (0..k as u32)
        .map(|i| {
            if i % 5 == 4 {
                UNWEIGHTED
            } else {
                i % ws.len() as u32
            }
        })
        .collect();
    let (mut fcw, mut gcw) = (vec![0.0; k], vec![0.0; k * np]);
    cpu.evaluate_with(params, &which, &ws, &mut fcw, &mut gcw)
        .unwrap();
    let scale_weighted = term_scale(law, sweep, obj, params, Some((&which, &ws)));
    let small = GpuLimits {
        max_points_per_chunk: 64,
        max_starts_per_dispatch: 64,
        max_groups: 2,
    };
    let mut compared = 0;
    // Both layouts wherever the sweep takes the grid.
    let layouts = if GpuLaw::layout_for(&plan, sweep).unwrap() == Layout::Grid {
        vec![Layout::Grid, Layout::Points]
    } else {
        vec![Layout::Points]
    };
    for (limits, layout) in [None, Some(small)]
        .into_iter()
        .flat_map(|l| layouts.iter().map(move |&y| (l, y)))
    {
        let mut gpu = GpuLaw::with_layout(dev, &plan, sweep, obj, limits, layout)
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let (mut fg, mut gg) = (vec![0.0; k], vec![0.0; k * np]);
        gpu.evaluate(params, &mut fg, &mut gg).unwrap();
        let tag = format!("{what} {limits:?} {layout:?}");
        compared += compare(np, (&fc, &gc), (&fg, &gg), &scale, &tag);
        gpu.set_weightings(&ws).unwrap();
        gpu.evaluate_weighted(params, &which, &mut fg, &mut gg)
            .unwrap();
        let tag = format!("{tag} weighted");
        compared += compare(np, (&fcw, &gcw), (&fg, &gg), &scale_weighted, &tag);
    }
    compared
}

fn device() -> Option<Arc<GpuDevice>> {
    adapter().map(|a| GpuDevice::open(&a).expect("open the GPU"))
}

/// Compiled built-in law, its axis variable's index and a parameter vector
/// of order one.
fn builtin(name: &str) -> (CompiledLaw, Option<usize>, Vec<f64>) {
    let file = builtin_law(name).unwrap();
    let law = file.compile(name).unwrap();
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a));
    let truth = law.params.iter().map(|_| 0.6).collect();
    (law, axis, truth)
}

#[test]
fn every_builtin_law_matches_the_cpu() {
    let Some(dev) = device() else { return };
    let mut compared = 0;
    for &name in builtin_names() {
        let (law, axis, truth) = builtin(name);
        // Laws that sum along their runs' steps read schedules these
        // sweeps do not have: their parity is tests/gpu_steps.rs's.
        if law.sums_steps() {
            continue;
        }
        for (s, shape) in SHAPES.into_iter().enumerate() {
            let sw = sweep(&law, axis, shape, &truth, s as u64);
            // Shared axis values: the grid layout runs (and check_law
            // compares it with the points layout).
            if shape == Shape::Grid && axis.is_some() {
                assert_eq!(layout(&law, &sw), Layout::Grid, "{name}");
            }
            for obj in objectives() {
                let params = params_near(&truth, 70, 5);
                let what = format!("{name} {shape:?} {obj:?}");
                compared += check_law(&dev, &law, &sw, obj, &params, &what);
            }
        }
    }
    // 8 laws x 3 shapes x 4 objectives x 4 runs x 70 starts, less the
    // log-space ones where the law is not positive.
    assert!(compared > 20_000, "only {compared} evaluations compared");
}

#[test]
fn random_formulas_match_the_cpu() {
    let Some(dev) = device() else { return };
    let mut rng = StdRng::seed_from_u64(7);
    let (mut laws, mut compared) = (0, 0);
    while laws < 40 {
        let text = random_formula(&mut rng, 4);
        // Formulas where a parameter cancels out are refused by design.
        let Ok(law) = CompiledLaw::from_formula(&text, &FORMULA_VARS) else {
            continue;
        };
        let truth: Vec<f64> = law
            .params
            .iter()
            .map(|_| rng.random_range(0.5..1.5))
            .collect();
        let shape = SHAPES[laws % 3];
        let sw = sweep(&law, Some(1), shape, &truth, laws as u64);
        let obj = objectives()[laws % 4];
        let params = params_near(&truth, 20, laws as u64);
        let what = format!("{text} {shape:?} {obj:?}");
        compared += check_law(&dev, &law, &sw, obj, &params, &what);
        laws += 1;
    }
    assert!(compared > 1500, "only {compared} evaluations compared");
}

/// naga validates the generated module of every built-in law on every
/// shape of sweep (no adapter needed).
#[test]
fn every_builtin_kernel_validates() {
    for &name in builtin_names() {
        let (law, axis, truth) = builtin(name);
        for (s, shape) in SHAPES.into_iter().enumerate() {
            let sw = sweep(&law, axis, shape, &truth, s as u64);
            let plan = Plan::for_sweep(&law, &sw);
            for layout in [Layout::Points, Layout::Grid] {
                let kernel = gpu::generate(&plan, layout)
                    .unwrap_or_else(|e| panic!("{name} {shape:?} {layout:?}: {e}"));
                gpu::validate(&kernel.source).unwrap_or_else(|e| {
                    panic!("{name} {shape:?} {layout:?}: {e}\n{}", kernel.source)
                });
                assert_eq!(kernel.n_params, law.params.len(), "{name}");
            }
        }
    }
}

/// An invalid module is reported with the offending generated line.
#[test]
fn an_invalid_module_shows_its_line() {
    let (law, axis, truth) = builtin("chinchilla");
    let sw = sweep(&law, axis, Shape::Grid, &truth, 0);
    let kernel = gpu::generate(&Plan::for_sweep(&law, &sw), Layout::Grid).unwrap();
    let broken = kernel
        .source
        .replace("let pred = ", "let pred = undefined_name + ");
    let err = gpu::validate(&broken).unwrap_err();
    assert!(err.contains("undefined_name"), "{err}");
}

/// A constant beyond single precision cannot run on the GPU: a clear error.
#[test]
fn a_constant_beyond_f32_is_refused() {
    for formula in ["E + A*x*1e300", "E + A*x/1e300"] {
        let law = CompiledLaw::from_formula(formula, &["x"]).unwrap();
        let sw = sweep(&law, None, Shape::Table, &[1.0, 1.0], 0);
        let err = gpu::generate(&Plan::for_sweep(&law, &sw), Layout::Points).unwrap_err();
        assert!(
            err.to_string().contains("single precision"),
            "{formula}: {err}"
        );
    }
}

/// A law of 30 parameters (ten power terms in as many variables) runs on
/// the GPU like a small one: no size is fixed in the kernel.
#[test]
fn a_law_with_thirty_parameters_matches_the_cpu() {
    let Some(dev) = device() else { return };
    let vars: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let formula: Vec<String> = (0..10)
        .map(|i| format!("a{i}/(x{i} + t{i})^b{i}"))
        .collect();
    let names: Vec<&str> = vars.iter().map(|s| s.as_str()).collect();
    let law = CompiledLaw::from_formula(&formula.join(" + "), &names).unwrap();
    assert_eq!(law.params.len(), 30);
    let truth: Vec<f64> = (0..30).map(|i| 0.3 + 0.02 * i as f64).collect();
    let mut compared = 0;
    for (s, shape) in SHAPES.into_iter().enumerate() {
        let sw = sweep(&law, Some(0), shape, &truth, s as u64);
        let params = params_near(&truth, 80, 9);
        let what = format!("30 parameters {shape:?}");
        compared += check_law(&dev, &law, &sw, Objective::default(), &params, &what);
    }
    assert!(compared > 900, "only {compared} evaluations compared");
}

/// Tiles whose curves every start of a workgroup row leaves out are not
/// read (a size fold's held-out curves): values are those of the CPU,
/// whether a row keeps one curve, all but one, or mixes weightings.
#[test]
fn left_out_curves_are_skipped_without_changing_values() {
    let Some(dev) = device() else { return };
    let law = CompiledLaw::from_formula("E + A/N^alpha + B/D^beta", &["N", "D"]).unwrap();
    let truth = [1.5, 2.0, 0.4, 3.0, 0.3];
    let (mut vars, mut y, mut w, mut curves) = (vec![], vec![], vec![], vec![]);
    for c in 0..20 {
        let start = y.len();
        for i in 0..300 {
            let x = [1.0 + c as f64, 1.0 + 0.1 * i as f64];
            vars.extend(x);
            y.push(law.eval(&x, &truth) * (1.0 + 0.01 * ((i * 7 + c) as f64).sin()));
            w.push(1.0 / 6000.0);
        }
        curves.push(start..y.len());
    }
    let sw = Sweep::new(2, curves, vars, y, w, Some(1));
    let plan = Plan::for_sweep(&law, &sw);
    let one: Vec<f64> = (0..20).map(|c| (c == 3) as u32 as f64).collect();
    let all_but: Vec<f64> = one.iter().map(|v| 1.0 - v).collect();
    let ws: Vec<Resolved> = [one, all_but]
        .into_iter()
        .map(|config| {
            let w = Weighting {
                config,
                ..Weighting::uniform(20)
            };
            resolve_curves(&w, &sw.curves, &sw.w).unwrap()
        })
        .collect();
    // Rows of 64 starts: the first keeps curve 3 only, the second all but
    // curve 3, the third mixes both and the unweighted sweep.
    let k = 192;
    let which: Vec<u32> = (0..k as u32)
        .map(|i| match i / 64 {
            0 => 0,
            1 => 1,
            _ => [0, 1, UNWEIGHTED][i as usize % 3],
        })
        .collect();
    let params = params_near(&truth, k, 3);
    let cpu = CpuLaw::new(plan.clone(), &sw, Objective::default()).unwrap();
    let (mut fc, mut gc) = (vec![0.0; k], vec![0.0; k * 5]);
    cpu.evaluate_with(&params, &which, &ws, &mut fc, &mut gc)
        .unwrap();
    let scale = term_scale(&law, &sw, Objective::default(), &params, None);
    let limits = GpuLimits {
        max_points_per_chunk: 1024,
        max_starts_per_dispatch: 128,
        max_groups: 3,
    };
    let mut gpu = GpuLaw::new(&dev, &plan, &sw, Objective::default(), Some(limits)).unwrap();
    gpu.set_weightings(&ws).unwrap();
    let (mut fg, mut gg) = (vec![0.0; k], vec![0.0; k * 5]);
    gpu.evaluate_weighted(&params, &which, &mut fg, &mut gg)
        .unwrap();
    let n = compare(5, (&fc, &gc), (&fg, &gg), &scale, "skipped curves");
    assert_eq!(n, k);
}

/// The layout the GPU picks for `law` on `sweep`.
fn layout(law: &CompiledLaw, sweep: &Sweep) -> Layout {
    GpuLaw::layout_for(&Plan::for_sweep(law, sweep), sweep).unwrap()
}

/// `sweep` rebuilt with each point's variables changed by `edit(curve,
/// point within the curve, variables)`, and its curves' points in reverse
/// order when `reverse`.
fn rebuilt(sweep: &Sweep, reverse: bool, edit: impl Fn(usize, usize, &mut [f64])) -> Sweep {
    let nv = sweep.n_vars;
    let (mut vars, mut y, mut w) = (vec![], vec![], vec![]);
    for (c, r) in sweep.curves.iter().enumerate() {
        let mut order: Vec<usize> = r.clone().collect();
        if reverse {
            order.reverse();
        }
        for (j, &i) in order.iter().enumerate() {
            let mut x = sweep.vars[i * nv..(i + 1) * nv].to_vec();
            edit(c, j, &mut x);
            vars.extend(x);
            y.push(sweep.y[i]);
            w.push(sweep.w[i]);
        }
    }
    Sweep::new(nv, sweep.curves.clone(), vars, y, w, sweep.axis)
}

/// The grid only where it holds: curves sharing the axis values densely,
/// no other variable changing along them, no curve with two points at one
/// value. (No adapter needed.)
#[test]
fn the_grid_is_chosen_only_where_it_holds() {
    let (law, axis, truth) = builtin("chinchilla");
    let a = axis.expect("chinchilla has an axis");
    let grid = sweep(&law, axis, Shape::Grid, &truth, 0);
    assert_eq!(layout(&law, &grid), Layout::Grid);
    for shape in [Shape::Varying, Shape::Table] {
        let sw = sweep(&law, axis, shape, &truth, 0);
        assert_eq!(layout(&law, &sw), Layout::Points, "{shape:?}");
    }
    // The second point of curve 0 at the first one's axis value.
    let first = grid.vars[a];
    let dup = rebuilt(&grid, false, |c, j, x| {
        if (c, j) == (0, 1) {
            x[a] = first;
        }
    });
    assert_eq!(layout(&law, &dup), Layout::Points);
    // Every curve on its own axis values: a grid 7 times the points.
    let sparse = rebuilt(&grid, false, |c, _, x| x[a] += 1000.0 * c as f64);
    assert_eq!(layout(&law, &sparse), Layout::Points);
}

/// On the grid a cell's place in its curve is its place in the sweep's
/// order, not along the axis: curves stored against the axis order keep
/// the CPU's first-points weightings and Poisson keys.
#[test]
fn curves_against_the_axis_order_match_the_cpu() {
    let Some(dev) = device() else { return };
    let (law, axis, truth) = builtin("chinchilla");
    let reversed = rebuilt(
        &sweep(&law, axis, Shape::Grid, &truth, 3),
        true,
        |_, _, _| {},
    );
    assert_eq!(layout(&law, &reversed), Layout::Grid);
    let params = params_near(&truth, 70, 5);
    let n = check_law(
        &dev,
        &law,
        &reversed,
        Objective::default(),
        &params,
        "reversed",
    );
    assert!(n >= 4 * 70, "only {n} evaluations compared");
}

/// A grid block holds one copy of the law's per-value nodes per axis
/// value: chinchilla's few get blocks of 16, LoopLM's more get 8, a law
/// with many gets smaller blocks before its registers spill. (No adapter
/// needed.)
#[test]
fn grid_blocks_shrink_for_laws_with_many_axis_nodes() {
    for (name, block) in [("chinchilla", 16), ("looplm", 8)] {
        let (law, axis, truth) = builtin(name);
        let sw = sweep(&law, axis, Shape::Grid, &truth, 0);
        let k = gpu::generate(&Plan::for_sweep(&law, &sw), Layout::Grid).unwrap();
        assert_eq!(k.block, block, "{name}");
    }
    // Six power terms of the axis variable alone.
    let formula: Vec<String> = (0..6).map(|i| format!("a{i}/(x + t{i})^b{i}")).collect();
    let law =
        CompiledLaw::from_formula(&format!("E + {}", formula.join(" + ")), &["x", "y"]).unwrap();
    let truth = vec![0.6; law.params.len()];
    let sw = sweep(&law, Some(0), Shape::Grid, &truth, 0);
    let plan = Plan::for_sweep(&law, &sw);
    let k = gpu::generate(&plan, Layout::Grid).unwrap();
    assert!(k.block <= 4 && k.block >= 2, "block {}", k.block);
    gpu::validate(&k.source).unwrap();
    // And the smaller blocks agree with the CPU.
    let Some(dev) = device() else { return };
    assert_eq!(layout(&law, &sw), Layout::Grid);
    let params = params_near(&truth, 70, 5);
    let n = check_law(
        &dev,
        &law,
        &sw,
        Objective::default(),
        &params,
        "six axis terms",
    );
    assert!(n >= 4 * 70, "only {n} evaluations compared");
    // Reports name the block size the law got.
    let gpu = GpuLaw::new(&dev, &plan, &sw, Objective::default(), None).unwrap();
    let said = gpu.describe_layout();
    assert!(
        said.contains(&format!("blocks of {} values", k.block)),
        "{said}"
    );
}

/// Built-in laws on a sweep at the sizes real sweeps have (N 5e7..1.4e9,
/// tokens 2e8..2e10, unique tokens 4e9, T 1..4), with parameters of a real
/// fit's magnitudes (offsets of 1e7, amplitudes of hundreds to thousands,
/// Kaplan's N_c of 8.8e13): the generic fit sends raw values to the GPU, so
/// its f32 arithmetic must hold there too, entry by entry, against the
/// same floors as above.
#[test]
fn builtin_laws_at_raw_sizes_match_the_cpu() {
    let Some(dev) = device() else { return };
    let truth_of = |name: &str| -> f64 {
        match name {
            "E" => 1.8,
            "A" => 268.0,
            "alpha" => 0.3,
            "t1" => 1e7,
            "B" => 1974.0,
            "beta" => 0.35,
            "t2" => 1e7,
            "C" => 0.7,
            "gamma" => 1.07,
            "t3" => 0.5,
            "R_N" => 5.3,
            "R_D" => 15.4,
            "N_c" => 8.8e13,
            "D_c" => 5.4e13,
            "alpha_N" => 0.076,
            "alpha_D" => 0.095,
            other => panic!("no raw-size value for {other}"),
        }
    };
    let sizes = [5.3e7, 1.34e8, 3.74e8, 7.78e8, 1.36e9];
    let mut compared = 0;
    // Not data-constrained: its d/dR_N is UN (1 - e^-x - x e^-x), which
    // cancels like x^2/2 for small x and loses about 4 digits in f32 at
    // these sizes (1.2e-4 relative on this sweep), beyond the floors here,
    // which bound the rounding of the values but not of such derivatives.
    for name in ["looplm", "looplm-total", "chinchilla", "kaplan"] {
        let (law, axis, _) = builtin(name);
        let axis = axis.expect("an axis");
        let truth: Vec<f64> = law.params.iter().map(|p| truth_of(p)).collect();
        let steps: &[f64] = if law.variables.iter().any(|v| v.starts_with('T')) {
            &[1.0, 2.0, 3.0, 4.0]
        } else {
            &[1.0]
        };
        let mut rng = StdRng::seed_from_u64(3);
        let (mut vars, mut y, mut w, mut curves) = (vec![], vec![], vec![], vec![]);
        for &n in &sizes {
            for &t in steps {
                let start = y.len();
                for i in 1..=40 {
                    let x: Vec<f64> = law
                        .variables
                        .iter()
                        .enumerate()
                        .map(|(v, name)| match name.as_str() {
                            _ if v == axis => 5e8 * i as f64,
                            "N" => n,
                            "U" => 4e9,
                            _ => t,
                        })
                        .collect();
                    let pred = law.eval(&x, &truth);
                    vars.extend(&x);
                    y.push(pred * (1.0 + rng.random_range(-0.01..0.01)));
                    w.push(1.0);
                }
                curves.push(start..y.len());
            }
        }
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= total);
        let sw = Sweep::new(law.variables.len(), curves, vars, y, w, Some(axis as u16));
        for obj in objectives() {
            let params = params_near(&truth, 24, 9);
            let what = format!("{name} at raw sizes {obj:?}");
            compared += check_law(&dev, &law, &sw, obj, &params, &what);
        }
    }
    assert!(compared > 2_000, "only {compared} evaluations compared");
}
