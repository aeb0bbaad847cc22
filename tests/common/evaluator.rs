//! What the evaluators' tests compare against: the looplm law compiled
//! from its formula, a sweep of a [`Dataset`] as the evaluators read it,
//! and the objective and gradient by a plain f64 loop over the points
//! (the law's own per-point value and gradient, one point at a time).

use sweepfit::backend::weights::Resolved;
use sweepfit::data::Dataset;
use sweepfit::law::plan::Sweep;
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
