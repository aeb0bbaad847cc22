//! What the evaluators' tests compare against: the looplm law compiled
//! from its formula, a sweep of a [`Dataset`] as the evaluators read it,
//! and the objective and gradient by a plain f64 loop over the points
//! (the law's own per-point value and gradient, one point at a time).

use sweepfit::backend::weights::Resolved;
use sweepfit::backend::{CpuLaw, CpuLayout};
use sweepfit::data::Dataset;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::CompiledLaw;
use sweepfit::objective::{Objective, Space};

/// The looplm law over variables N, D, T (D the axis).
pub const LOOPLM: &str = "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma";

/// The looplm law compiled; its parameters in `law.params` order.
pub fn looplm_law() -> CompiledLaw {
    CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).expect("the looplm formula compiles")
}

/// `ds` as a sweep of the looplm law: one curve per configuration (in the
/// order of `ds.configs`, which need not be storage order), variables
/// N, D, T with D the axis, targets in `obj`'s space and weights summing
/// to 1.
pub fn sweep_of(ds: &Dataset, obj: &Objective) -> Sweep {
    let mut vars = Vec::with_capacity(3 * ds.points());
    let (mut y, mut w, mut curves) = (Vec::new(), Vec::new(), Vec::new());
    for c in &ds.configs {
        let s = y.len();
        for i in c.range() {
            vars.extend([c.n, ds.tokens[i], c.t]);
            y.push(match obj.space {
                Space::Linear => ds.loss[i],
                Space::Log => ds.loss[i].ln(),
            });
            w.push(ds.weight[i]);
        }
        curves.push(s..y.len());
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    Sweep::new(3, curves, vars, y, w, Some(1))
}

/// Raw looplm parameters by name, in `law.params` order.
pub fn params_of(law: &CompiledLaw, by_name: &[(&str, f64)]) -> Vec<f64> {
    law.params
        .iter()
        .map(|p| {
            by_name
                .iter()
                .find(|(n, _)| n == p)
                .unwrap_or_else(|| panic!("no value for {p}"))
                .1
        })
        .collect()
}

/// Objective and gradient (by the law's raw parameters) of `params` on
/// `sweep` under the weighting `w` (`None`: the sweep's own weights):
/// sum over points of weight x factor x rho(residual), one point at a time
/// in f64. A point of positive weight where the law or the residual is not
/// finite makes f NaN.
pub fn reference(
    law: &CompiledLaw,
    sweep: &Sweep,
    obj: &Objective,
    w: Option<&Resolved>,
    params: &[f64],
) -> (f64, Vec<f64>) {
    let np = law.params.len();
    let (mut f, mut g) = (0.0, vec![0.0; np]);
    let mut grad = vec![0.0; np];
    let nv = sweep.n_vars;
    for (c, r) in sweep.curves.iter().enumerate() {
        for i in r.clone() {
            let wi = sweep.w[i] * w.map_or(1.0, |w| w.factor(c, i - r.start, i));
            if wi == 0.0 {
                continue;
            }
            let pred = law.eval_grad(&sweep.vars[i * nv..(i + 1) * nv], params, &mut grad);
            let (res, scale) = match obj.space {
                Space::Linear => (pred - sweep.y[i], 1.0),
                Space::Log => (pred.ln() - sweep.y[i], 1.0 / pred),
            };
            if !res.is_finite() || grad.iter().any(|v| !v.is_finite()) {
                f = f64::NAN;
                continue;
            }
            let (rho, drho) = obj.rho(res);
            f += wi * rho;
            for (o, d) in g.iter_mut().zip(&grad) {
                *o += wi * drho * scale * d;
            }
        }
    }
    (f, g)
}

/// Whether `got` is within `rel` of `want` (relative to |want|) and every
/// gradient entry within `grad_rel` of the reference gradient's norm.
pub fn assert_close(got: (f64, &[f64]), want: (f64, &[f64]), rel: f64, grad_rel: f64, what: &str) {
    let (fg, gg) = got;
    let (fw, gw) = want;
    let err = (fg - fw).abs() / fw.abs().max(1e-300);
    assert!(
        err <= rel,
        "{what}: objective {fg} against {fw} (rel {err:e})"
    );
    let norm = gw.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
    for (i, (a, b)) in gg.iter().zip(gw).enumerate() {
        let e = (a - b).abs() / norm;
        assert!(
            e <= grad_rel,
            "{what}: gradient[{i}] {a} against {b} (|g| {norm}, rel {e:e})"
        );
    }
}

/// Every loss in both spaces, with Huber's delta small enough that some
/// residuals fall outside it.
pub fn objectives() -> Vec<Objective> {
    use sweepfit::objective::LossKind;
    let mut v = Vec::new();
    for space in [Space::Linear, Space::Log] {
        for (loss, delta) in [(LossKind::Mse, 1e-3), (LossKind::Huber, 0.02)] {
            v.push(Objective { loss, space, delta });
        }
    }
    v
}

/// [`assert_close`], except that where the reference objective is not
/// finite the evaluator's must not be either.
pub fn assert_matches(
    got: (f64, &[f64]),
    want: (f64, &[f64]),
    rel: f64,
    grad_rel: f64,
    what: &str,
) {
    if !want.0.is_finite() {
        assert!(
            !got.0.is_finite(),
            "{what}: f = {} where the reference is {}",
            got.0,
            want.0
        );
        return;
    }
    assert_eq!(got.1.len(), want.1.len(), "{what}: gradient length");
    assert_close(got, want, rel, grad_rel, what);
}

/// `grid`'s objective and gradient for each parameter vector of `params`,
/// evaluated as one batch.
pub fn cpu_evaluate(grid: &CpuLaw, params: &[Vec<f64>]) -> Vec<(f64, Vec<f64>)> {
    let np = params.first().map_or(1, Vec::len);
    let flat: Vec<f64> = params.concat();
    let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; flat.len()]);
    grid.evaluate(&flat, &mut f, &mut g);
    f.into_iter()
        .zip(g.chunks(np).map(<[f64]>::to_vec))
        .collect()
}

/// [`cpu_evaluate`] with `params[k]` weighed by `resolved[which[k]]` (or
/// the sweep's own weights where it is `UNWEIGHTED`).
pub fn cpu_evaluate_weighted(
    grid: &CpuLaw,
    params: &[Vec<f64>],
    which: &[u32],
    resolved: &[Resolved],
) -> anyhow::Result<Vec<(f64, Vec<f64>)>> {
    let np = params.first().map_or(1, Vec::len);
    let flat: Vec<f64> = params.concat();
    let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; flat.len()]);
    grid.evaluate_with(&flat, which, resolved, &mut f, &mut g)?;
    Ok(f.into_iter()
        .zip(g.chunks(np).map(<[f64]>::to_vec))
        .collect())
}

/// The CPU evaluators of `law` on `sweep` to compare: the layout
/// `CpuLaw::new` picks, then every layout that accepts the sweep,
/// each named.
pub fn cpu_grids(law: &CompiledLaw, sweep: &Sweep, obj: &Objective) -> Vec<(String, CpuLaw)> {
    let plan = || Plan::for_sweep(law, sweep);
    let auto = CpuLaw::new(plan(), sweep, *obj).expect("the chosen layout holds the sweep");
    let mut v = vec![(format!("auto {:?}", auto.layout()), auto)];
    for layout in [CpuLayout::Points, CpuLayout::Grid, CpuLayout::Table] {
        if let Ok(g) = CpuLaw::with_layout(plan(), sweep, *obj, layout) {
            assert_eq!(g.layout(), layout);
            v.push((format!("{layout:?}"), g));
        }
    }
    v
}

/// `ds` with model sizes and token counts divided by their largest values
/// (so all lie in (0, 1]): with parameters of order one, as from
/// [`scaled_starts`], every gradient entry is then of comparable size and
/// a check of each against the gradient's norm tests all of them.
pub fn unit_scaled(ds: &Dataset) -> Dataset {
    let n = ds.configs.iter().map(|c| c.n).fold(0.0, f64::max);
    let d = ds.tokens.iter().copied().fold(0.0, f64::max);
    let mut out = ds.clone();
    for c in &mut out.configs {
        c.n /= n;
    }
    for t in &mut out.tokens {
        *t /= d;
    }
    out
}

/// `k` looplm parameter vectors, in `law.params` order, around a plausible
/// fit of a simulated sweep in [`unit_scaled`] units (exponents and E
/// varying with the start). Far enough from the truth that residuals are
/// not mere noise, so an objective's relative error is not inflated by
/// cancellation.
pub fn scaled_starts(law: &CompiledLaw, k: usize) -> Vec<Vec<f64>> {
    (0..k)
        .map(|i| {
            let s = i as f64 / k.max(1) as f64;
            params_of(
                law,
                &[
                    ("E", 1.6 + 0.2 * s),
                    ("A", 0.6),
                    ("alpha", 0.35 + 0.1 * s),
                    ("t1", 0.02),
                    ("B", 1.1),
                    ("beta", 0.4 - 0.1 * s),
                    ("t2", 3e-3),
                    ("C", 0.5),
                    ("gamma", 0.9 + s),
                    ("t3", 0.7),
                ],
            )
        })
        .collect()
}

/// Where parameter `name` sits in `law.params`.
pub fn param_index(law: &CompiledLaw, name: &str) -> usize {
    law.params
        .iter()
        .position(|p| p == name)
        .unwrap_or_else(|| panic!("the law has no parameter {name}"))
}

/// Raw parameter vectors away from the optimum, with large gradients; the
/// last two put the prediction near zero at large tokens.
pub const FAR: [[(&str, f64); 10]; 4] = [
    [
        ("E", 1.6),
        ("A", 943.8),
        ("alpha", 0.35),
        ("t1", 2.72e7),
        ("B", 1.451e4),
        ("beta", 0.4),
        ("t2", 6e7),
        ("C", 0.5),
        ("gamma", 0.9),
        ("t3", 0.7),
    ],
    [
        ("E", 1.2),
        ("A", 1.106e4),
        ("alpha", 0.5),
        ("t1", 1.36e8),
        ("B", 1108.0),
        ("beta", 0.3),
        ("t2", 2e8),
        ("C", 0.2),
        ("gamma", 1.5),
        ("t3", 0.1),
    ],
    [
        ("E", 2.5),
        ("A", 1.237e5),
        ("alpha", 0.7),
        ("t1", 4.08e8),
        ("B", 9.19e11),
        ("beta", 1.2),
        ("t2", 1e9),
        ("C", 0.0),
        ("gamma", 1.0),
        ("t3", 0.0),
    ],
    [
        ("E", 0.4),
        ("A", 93.94),
        ("alpha", 0.2),
        ("t1", 1.36e6),
        ("B", 752.1),
        ("beta", 0.25),
        ("t2", 2e6),
        ("C", -0.1),
        ("gamma", 0.6),
        ("t3", 2.0),
    ],
];

/// The looplm20 simulation's truth, which the test losses are drawn from.
pub const TRUTH: [(&str, f64); 10] = [
    ("E", 1.8),
    ("A", 268.0),
    ("alpha", 0.30),
    ("t1", 1e7),
    ("B", 2018.0),
    ("beta", 0.35),
    ("t2", 1.06e7),
    ("C", 0.675),
    ("gamma", 1.0),
    ("t3", 0.5),
];
