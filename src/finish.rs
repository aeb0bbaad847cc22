//! The hand-written LoopLM driver's optima, finished on the compiled law:
//! whatever backend searched (the GPU in f32 included), the best start of
//! every group of a batch (the fit, each bootstrap replicate, each eval
//! fold) is polished in f64 (see [`crate::polish`]), and the fit's own
//! best is then described (see [`crate::identify`], [`crate::profile`]).

use anyhow::Context;

use crate::backend::jacobian::{RowJacobian, Weights};
use crate::backend::weights::Resolved;
use crate::backend::Prepared;
use crate::fit::param_index;
use crate::identify::{self, Identifiability};
use crate::law::space::LawSpace;
use crate::law::{CompiledLaw, ParamSpec, NP};
use crate::polish::{self, Polished};
use crate::profile::{self, ProfileReport, ProfileRequest};
use crate::report::PolishReport;

/// The sweep of `prepared` as rows of the compiled LoopLM law, raw units.
pub struct CompiledSweep {
    law: CompiledLaw,
    /// Per compiled parameter, its index in the fit's order.
    order: Vec<usize>,
    /// vars[v][point], raw units.
    vars: Vec<Vec<f64>>,
    space: LawSpace,
    rows: RowJacobian,
    /// Per point, its curve and position there (for weightings).
    curve: Vec<(usize, usize)>,
}

impl CompiledSweep {
    /// `prepared`'s points and weights, with the parameters `spec` fixes
    /// held.
    pub fn new(prepared: &Prepared, spec: &ParamSpec) -> anyhow::Result<CompiledSweep> {
        let file = crate::law::builtin_law("looplm").expect("looplm is built in");
        let law = file.compile("looplm")?;
        let order: Vec<usize> = law
            .params
            .iter()
            .map(|n| param_index(n).expect("a LoopLM parameter"))
            .collect();
        let (scale, points) = (prepared.scale, prepared.points());
        let mut vars = vec![Vec::with_capacity(points); law.variables.len()];
        let mut curve = Vec::with_capacity(points);
        for (ci, c) in prepared.configs.iter().enumerate() {
            for pos in 0..c.len {
                let i = c.start + pos;
                curve.push((ci, pos));
                for (v, name) in law.variables.iter().enumerate() {
                    vars[v].push(match name.as_str() {
                        "N" => c.n * scale.n,
                        "T" => c.t,
                        _ => prepared.d[i] * scale.d,
                    });
                }
            }
        }
        let mut rules = crate::law::params::rules(&file, &law, &vars);
        for (k, &i) in order.iter().enumerate() {
            rules[k].fixed = spec.fixed[i];
        }
        let all: Vec<usize> = (0..points).collect();
        let reference = polish::reference(&vars, &prepared.w, &all);
        let space = LawSpace::new(&law, rules, reference);
        let rows = RowJacobian::new(
            &law,
            &vars,
            &prepared.y,
            &prepared.w,
            prepared.objective,
            space.free(),
        );
        Ok(CompiledSweep {
            law,
            order,
            vars,
            space,
            rows,
            curve,
        })
    }

    fn compiled(&self, raw: &[f64; NP]) -> Vec<f64> {
        self.order.iter().map(|&i| raw[i]).collect()
    }

    fn fit_order(&self, p: &[f64], like: &[f64; NP]) -> [f64; NP] {
        let mut out = *like;
        for (k, &i) in self.order.iter().enumerate() {
            out[i] = p[k];
        }
        out
    }

    /// Polish `starts` (raw, the fit's order), each under its weighting
    /// (`None`: the sweep's own weights).
    pub fn polish(
        &self,
        prepared: &Prepared,
        starts: &[([f64; NP], Option<&Resolved>)],
    ) -> anyhow::Result<Vec<End>> {
        let (w, curve) = (&prepared.w, &self.curve);
        let weights: Vec<Option<Box<Weights>>> = starts
            .iter()
            .map(|(_, r)| {
                r.map(|r| {
                    Box::new(move |i: usize| {
                        let (c, pos) = curve[i];
                        w[i] * r.factor(c, pos, i)
                    }) as Box<Weights>
                })
            })
            .collect();
        let weights: Vec<Option<&Weights>> = if weights.iter().all(Option::is_none) {
            Vec::new()
        } else {
            weights.iter().map(|w| w.as_deref()).collect()
        };
        let p0: Vec<(usize, Vec<f64>)> = starts
            .iter()
            .map(|(raw, _)| (0, self.compiled(raw)))
            .collect();
        let polished = polish::polish(
            &self.law,
            &self.space,
            std::slice::from_ref(&self.rows),
            &p0,
            &weights,
        )?;
        Ok(polished
            .into_iter()
            .zip(starts)
            .map(|(p, (start, _))| End {
                raw: self.fit_order(&p.params, start),
                f: p.f,
                polished: p,
            })
            .collect())
    }
}

/// A polished start: its raw parameters in the fit's order, objective,
/// and the polish's account.
pub struct End {
    pub raw: [f64; NP],
    pub f: f64,
    pub polished: Polished,
}

/// The fit's best start finished: its raw parameters and objective, how
/// far it converged, and what the data determine there.
pub struct Finished {
    pub raw: [f64; NP],
    pub f: f64,
    pub polish: PolishReport,
    pub identifiability: Identifiability,
    pub profile: Option<ProfileReport>,
}

/// Polish the best start `raw` (the fit's order) on `prepared`'s points
/// and weights, with the parameters `spec` fixes held; describe it, and
/// profile it when asked.
pub fn finish(
    prepared: &Prepared,
    spec: &ParamSpec,
    raw: &[f64; NP],
    profile: Option<&ProfileRequest>,
) -> anyhow::Result<Finished> {
    let sweep = CompiledSweep::new(prepared, spec)?;
    let End {
        raw,
        f,
        polished: p,
    } = sweep
        .polish(prepared, &[(*raw, None)])?
        .pop()
        .context("one start polished")?;
    let all: Vec<usize> = (0..prepared.points()).collect();
    let distinct = polish::distinct_values(&sweep.law.variables, &sweep.vars, &all);
    let c = polish::curvature(
        &sweep.law,
        &sweep.space,
        &sweep.rows,
        &p,
        prepared.objective,
        distinct,
    );
    let identifiability = identify::analyse(&c);
    let profile = match profile {
        Some(req) => Some(profile::profile(
            &sweep.law,
            &sweep.space,
            &|wanted| {
                RowJacobian::new(
                    &sweep.law,
                    &sweep.vars,
                    &prepared.y,
                    &prepared.w,
                    prepared.objective,
                    wanted,
                )
            },
            &p,
            sweep.rows.rows(),
            &identifiability,
            prepared.objective,
            &req.names,
            req.level,
        )?),
        None => None,
    };
    Ok(Finished {
        raw,
        f,
        polish: PolishReport {
            grad_norm: p.grad_norm,
            newton_steps: p.steps,
            converged: p.grad_norm <= polish::GRAD_TOL,
        },
        identifiability,
        profile,
    })
}
