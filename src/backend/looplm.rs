//! The LoopLM law as both backends run it: compiled from its formula like
//! any other law, on the sweep of a [`Prepared`] dataset, with the fit's
//! ten parameters in their fixed order ([`PARAM_NAMES`]) mapped to the
//! compiled law's and back.

use std::sync::OnceLock;

use super::{Eval, Prepared};
use crate::law::plan::{Plan, Sweep};
use crate::law::{CompiledLaw, NP, PARAM_NAMES};

/// The LoopLM formula: variables N, D, T.
const LOOPLM: &str = "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma";

/// The compiled LoopLM law and, per compiled parameter, its index in the
/// fit's order. Compiled once per process.
fn looplm() -> &'static (CompiledLaw, [usize; NP]) {
    static LAW: OnceLock<(CompiledLaw, [usize; NP])> = OnceLock::new();
    LAW.get_or_init(|| {
        let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"])
            .expect("the LoopLM formula compiles");
        let mut order = [0; NP];
        for (o, name) in order.iter_mut().zip(&law.params) {
            *o = PARAM_NAMES
                .iter()
                .position(|p| p == name)
                .expect("a LoopLM parameter name");
        }
        (law, order)
    })
}

/// The LoopLM sweep of `data` (internal units) as a plan reads it, with
/// variables N, D, T and D the axis: how today's data meets a compiled law.
pub fn looplm_sweep(data: &Prepared) -> Sweep {
    // By storage index: configurations need not be in storage order.
    let mut vars = vec![0.0; 3 * data.points()];
    let mut curves = Vec::with_capacity(data.configs.len());
    for c in &data.configs {
        for i in c.start..c.start + c.len {
            vars[3 * i..3 * i + 3].copy_from_slice(&[c.n, data.d[i], c.t]);
        }
        curves.push(c.start..c.start + c.len);
    }
    Sweep::new(3, curves, vars, data.y.clone(), data.w.clone(), Some(1))
}

/// The plan of the LoopLM law on `sweep`.
pub(crate) fn looplm_plan(sweep: &Sweep) -> Plan {
    Plan::for_sweep(&looplm().0, sweep)
}

/// `params` in the compiled law's order, flat.
pub(crate) fn flat(params: &[[f64; NP]]) -> Vec<f64> {
    let order = &looplm().1;
    params
        .iter()
        .flat_map(|p| order.iter().map(move |&i| p[i]))
        .collect()
}

/// Objectives and gradients from the compiled order back into `out`.
pub(crate) fn unflat(f: &[f64], g: &[f64], out: &mut [Eval]) {
    let order = &looplm().1;
    for ((o, &f), g) in out.iter_mut().zip(f).zip(g.chunks(NP)) {
        o.f = f;
        for (&i, &v) in order.iter().zip(g) {
            o.g[i] = v;
        }
    }
}
