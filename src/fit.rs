//! Multi-start fitting: resolve which parameters are free, build starts,
//! run every start as one problem of the batched optimiser on a backend,
//! and summarise the result.

use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;

use crate::backend::{Backend, CpuBackend, Eval, Prepared};
use crate::data::Dataset;
use crate::law::{
    FreeSpace, LawKind, ParamSpec, A, ALPHA, B, BETA, C, GAMMA, NP, PARAM_NAMES, T1, T2, T3,
};
use crate::objective::Objective;
use crate::optim::{self, BatchObjective, Outcome, Progress, Status};
use crate::report::{compute_metrics, BackendReport, FitReport, ObjectiveReport, StartsReport};

/// Relative distance to the best objective within which a start counts as
/// having reached it.
pub const AT_BEST_RTOL: f64 = 1e-6;

#[derive(Debug, Clone)]
pub struct FitOptions {
    pub law: LawKind,
    pub objective: Objective,
    /// User-fixed parameters: (name, raw value).
    pub fix: Vec<(String, f64)>,
    /// Random starts instead of the default grid.
    pub starts: Option<usize>,
    pub seed: u64,
    pub lbfgs: optim::Options,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            law: LawKind::Looplm,
            objective: Objective::default(),
            fix: vec![],
            starts: None,
            seed: 0,
            lbfgs: optim::Options::default(),
        }
    }
}

/// A finished fit: the report plus every start's outcome.
#[derive(Debug, Clone)]
pub struct FitOutput {
    pub report: FitReport,
    /// Best parameters, raw units, law order.
    pub params: [f64; NP],
    pub outcomes: Vec<Outcome>,
    /// Every start in raw units, law order (fixed parameters included).
    pub starts: Vec<[f64; NP]>,
}

/// Look up a parameter by name (case-sensitive names like "alpha", with
/// case-insensitive fallback for unambiguous ones).
pub fn param_index(name: &str) -> anyhow::Result<usize> {
    if let Some(i) = PARAM_NAMES.iter().position(|&n| n == name) {
        return Ok(i);
    }
    let lower: Vec<usize> = (0..NP)
        .filter(|&i| PARAM_NAMES[i].eq_ignore_ascii_case(name))
        .collect();
    match lower.as_slice() {
        [i] => Ok(*i),
        _ => bail!(
            "unknown parameter '{name}'; the parameters are {}",
            PARAM_NAMES.join(", ")
        ),
    }
}

/// Which parameters are fixed: the law's preset, the user's `--fix`, and
/// those the data cannot identify. Returns the spec and notes for the user.
pub fn resolve_spec(
    ds: &Dataset,
    law: LawKind,
    fix: &[(String, f64)],
) -> anyhow::Result<(ParamSpec, Vec<String>)> {
    let mut spec = ParamSpec::all_free();
    let mut notes = Vec::new();
    for (i, v) in law.preset_fixed() {
        spec.fixed[i] = Some(v);
    }
    for (name, v) in fix {
        let i = param_index(name)?;
        if !v.is_finite() {
            bail!("--fix {name}={v}: the value must be a finite number");
        }
        spec.fixed[i] = Some(*v);
    }
    let user_fixed = |i: usize| fix.iter().any(|(n, _)| param_index(n).ok() == Some(i));
    if ds.distinct_t().len() == 1 && !spec.is_fixed(C) {
        spec.fixed[C] = Some(0.0);
        notes.push(
            "the data has a single T, so the T term cannot be identified: fixed C = 0".to_string(),
        );
    }
    if ds.distinct_n().len() == 1 && !spec.is_fixed(A) {
        spec.fixed[A] = Some(0.0);
        notes.push(
            "the data has a single N, so the N term cannot be identified: fixed A = 0".to_string(),
        );
    }
    // A term with a zero coefficient leaves its exponent and offset without
    // any effect on the fit; fix them so they are not reported as fitted.
    for (coef, expo, off) in [(A, ALPHA, T1), (B, BETA, T2), (C, GAMMA, T3)] {
        if spec.fixed[coef] == Some(0.0) {
            let mut held = Vec::new();
            for (i, v) in [(expo, 1.0), (off, 0.0)] {
                if !spec.is_fixed(i) {
                    spec.fixed[i] = Some(v);
                    held.push(PARAM_NAMES[i]);
                }
            }
            if !held.is_empty() && user_fixed(coef) {
                notes.push(format!(
                    "{} = 0 leaves {} without effect: held fixed",
                    PARAM_NAMES[coef],
                    held.join(" and ")
                ));
            }
        }
    }
    Ok((spec, notes))
}

/// The law's objective over theta for the optimiser, evaluated on a backend.
struct LawProblem<'a> {
    space: &'a FreeSpace,
    backend: &'a mut dyn Backend,
    params: Vec<[f64; NP]>,
    evals: Vec<Eval>,
}

impl BatchObjective for LawProblem<'_> {
    fn dim(&self) -> usize {
        self.space.dim()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.space.bounds()
    }

    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        let m = self.space.dim();
        self.params.clear();
        for k in 0..ids.len() {
            self.params
                .push(self.space.to_internal(&xs[k * m..(k + 1) * m]));
        }
        self.evals.resize(ids.len(), Eval::ZERO);
        self.backend.evaluate(&self.params, &mut self.evals)?;
        for k in 0..ids.len() {
            f[k] = self.evals[k].f;
            self.space.grad_to_theta(
                &self.params[k],
                &self.evals[k].g,
                &mut g[k * m..(k + 1) * m],
            );
        }
        Ok(())
    }
}

/// Starts refined in f64 after a single-precision fit: always the best
/// few, and up to a cap those whose f32 objective is close to the best
/// (they would count as having reached it with f64 accuracy).
const POLISH_ALWAYS: usize = 4;
const POLISH_MAX: usize = 16;
const POLISH_RTOL: f64 = 1e-4;

/// Refine the best starts of a single-precision fit on the CPU in f64:
/// f32 objectives stop resolving progress near 1e-7 relative, while the
/// reported optimum should be as exact as a CPU fit's. Returns how many
/// were refined and the batched calls used.
fn polish(
    space: &FreeSpace,
    prepared: &Prepared,
    lbfgs: &optim::Options,
    outcomes: &mut [Outcome],
) -> anyhow::Result<(usize, usize)> {
    let mut order: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].f.is_finite())
        .collect();
    order.sort_by(|&a, &b| outcomes[a].f.total_cmp(&outcomes[b].f));
    let Some(&best) = order.first() else {
        return Ok((0, 0));
    };
    let near = outcomes[best].f.abs() * (1.0 + POLISH_RTOL);
    let keep = order.iter().take_while(|&&i| outcomes[i].f <= near).count();
    order.truncate(keep.clamp(POLISH_ALWAYS, POLISH_MAX));
    let mut cpu = CpuBackend::new(prepared.clone());
    let mut problem = LawProblem {
        space,
        backend: &mut cpu,
        params: Vec::new(),
        evals: Vec::new(),
    };
    let x0: Vec<Vec<f64>> = order.iter().map(|&i| outcomes[i].x.clone()).collect();
    let (refined, calls) = optim::minimize_batch(&mut problem, &x0, lbfgs, |_| {})
        .context("refining on the CPU failed")?;
    for (&i, r) in order.iter().zip(refined) {
        let o = &mut outcomes[i];
        o.iterations += r.iterations;
        o.evaluations += r.evaluations;
        o.x = r.x;
        o.f = r.f;
        o.status = r.status;
    }
    // Every other start's final objective in f64 too, so that counting
    // the starts at the best compares like with like.
    let rest: Vec<usize> = (0..outcomes.len()).filter(|i| !order.contains(i)).collect();
    if !rest.is_empty() {
        let dim = space.dim();
        let xs: Vec<f64> = rest
            .iter()
            .flat_map(|&i| outcomes[i].x.iter().copied())
            .collect();
        let mut f = vec![0.0; rest.len()];
        let mut g = vec![0.0; rest.len() * dim];
        problem.evaluate(&rest, &xs, &mut f, &mut g)?;
        for (&i, v) in rest.iter().zip(f) {
            outcomes[i].f = v;
        }
    }
    Ok((order.len(), calls + 1))
}

/// Fit the law to `ds` on `backend`, which must have been built from
/// `Prepared::new(ds, opts.objective)`.
pub fn fit(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    backend: &mut dyn Backend,
    progress: impl FnMut(Progress),
) -> anyhow::Result<FitOutput> {
    let started = Instant::now();
    if ds.points() == 0 {
        bail!("no data points to fit");
    }
    let (spec, notes) = resolve_spec(ds, opts.law, &opts.fix)?;
    let space = FreeSpace::new(spec.clone(), prepared.scale, prepared.reference());
    if spec.fixed[T2] == Some(0.0) && spec.fixed[B] != Some(0.0) && ds.tokens.contains(&0.0) {
        bail!(
            "with t2 = 0 the law is infinite at tokens = 0, and the data has such points: \
             drop them with --min-tokens (e.g. --min-tokens 1) or let t2 be fitted"
        );
    }
    if space.dim() == 0 {
        bail!("every parameter is fixed: nothing to fit");
    }
    if ds.points() < space.dim() {
        bail!(
            "{} data points but {} free parameters: a fit needs at least as many points as free parameters",
            ds.points(),
            space.dim()
        );
    }
    let x0 = match opts.starts {
        Some(0) => bail!("--starts must be at least 1"),
        Some(k) => optim::random_starts(&space, prepared, k, opts.seed),
        None => optim::grid_starts(&space, prepared),
    };
    let info = backend.info();
    let single_precision = backend.single_precision();
    let mut problem = LawProblem {
        space: &space,
        backend,
        params: Vec::new(),
        evals: Vec::new(),
    };
    let (mut outcomes, mut calls) = optim::minimize_batch(&mut problem, &x0, &opts.lbfgs, progress)
        .context("optimisation failed")?;
    let mut notes = notes;
    if single_precision {
        let (m, polish_calls) = polish(&space, prepared, &opts.lbfgs, &mut outcomes)?;
        calls += polish_calls;
        notes.push(format!(
            "the best {m} starts were refined on the CPU in f64; the others stopped at \
             single-precision accuracy, so fewer of them count as reaching the best (1e-6)"
        ));
    }
    let seconds = started.elapsed().as_secs_f64();

    let best = outcomes
        .iter()
        .filter(|o| o.f.is_finite())
        .min_by(|a, b| a.f.total_cmp(&b.f))
        .context(
            "every start ended with a non-finite objective: check the data and the fixed values",
        )?;
    let at_best = outcomes
        .iter()
        .filter(|o| o.f.is_finite() && o.f - best.f <= AT_BEST_RTOL * best.f.abs())
        .count();
    let mut raw = space.scale.to_raw(&space.to_internal(&best.x));
    for (r, fixed) in raw.iter_mut().zip(&spec.fixed) {
        if let Some(v) = fixed {
            *r = *v;
        }
    }
    let mut status_counts = IndexMap::new();
    for s in Status::ENDED {
        status_counts.insert(
            s.name().to_string(),
            outcomes.iter().filter(|o| o.status == s).count(),
        );
    }
    let report = FitReport {
        law: opts.law.name().to_string(),
        params: (0..NP)
            .map(|i| (PARAM_NAMES[i].to_string(), raw[i]))
            .collect(),
        fixed: (0..NP)
            .filter(|&i| spec.is_fixed(i))
            .map(|i| PARAM_NAMES[i].to_string())
            .collect(),
        objective: ObjectiveReport {
            loss: opts.objective.loss_name().into(),
            space: opts.objective.space_name().into(),
            delta: opts.objective.delta,
            value: best.f,
        },
        metrics: compute_metrics(ds, &raw),
        starts: StartsReport {
            count: outcomes.len(),
            at_best,
            status_counts,
            iterations: outcomes.iter().map(|o| o.iterations).max().unwrap_or(0),
            evaluations: calls,
            start_evaluations: outcomes.iter().map(|o| o.evaluations).sum(),
        },
        backend: BackendReport {
            kind: info.kind,
            device: info.device,
        },
        seconds,
        points: ds.points(),
        configs: ds.configs.len(),
        notes,
    };
    let starts = x0
        .iter()
        .map(|x| space.scale.to_raw(&space.to_internal(x)))
        .collect();
    Ok(FitOutput {
        report,
        params: raw,
        outcomes,
        starts,
    })
}
