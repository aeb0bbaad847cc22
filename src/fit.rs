//! Multi-start fitting: resolve which parameters are free, build starts,
//! run every start as one problem of the batched optimiser on a backend,
//! and summarise the result.

use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;

use crate::backend::weights::{self, Resolved};
use crate::backend::{Backend, CpuBackend, Eval, Prepared, Weighting, UNWEIGHTED};
use crate::data::Dataset;
use crate::law::{
    predict_raw, FreeSpace, LawKind, ParamSpec, A, ALPHA, B, BETA, C, GAMMA, NP, PARAM_NAMES, T1,
    T2, T3,
};
use crate::objective::Objective;
use crate::optim::{self, BatchObjective, Outcome, Progress, Status};
use crate::profile::ProfileRequest;
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
    /// Profile-likelihood intervals to compute at the optimum.
    pub profile: Option<ProfileRequest>,
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
            profile: None,
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
    /// The free parameters and their transform the fit searched over.
    pub space: FreeSpace,
    /// The best start's final point in that space.
    pub best_theta: Vec<f64>,
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
        // The declarations `sweepfit laws NAME` prints, as for a law file.
        let decl = crate::law::builtin(law.name())
            .and_then(|text| crate::law::LawFile::parse(text, law.name()).ok())
            .and_then(|f| f.params.get(name.as_str()).cloned());
        if let Some(Err(why)) = decl.map(|d| d.allows(*v)) {
            bail!(
                "--fix {name}={v}: {why}, as the {} law declares {name} (`sweepfit laws {}`)",
                law.name(),
                law.name()
            );
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
    // Runs all read at one token count (final losses of runs trained to the
    // same budget): B/(D+t2)^beta is then one constant, inseparable from E.
    if let Some(&d) = ds.tokens.first() {
        if ds.tokens.iter().all(|&x| x == d) && !spec.is_fixed(B) {
            spec.fixed[B] = Some(0.0);
            notes.push(format!(
                "the data has a single token count (D = {d:e}), so the D term cannot be \
                 told apart from E: fixed B = 0, and E includes the D term's value there"
            ));
        }
    }
    if law == LawKind::Chinchilla && ds.distinct_t().len() > 1 {
        notes.push(format!(
            "the chinchilla law has no T term: the curves of the {} values of T are fitted \
             as one (N, D) law",
            ds.distinct_t().len()
        ));
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
    /// Registered weighting of every problem id; empty when every problem
    /// uses the dataset's own weights.
    which: &'a [u32],
    which_buf: Vec<u32>,
    params: Vec<[f64; NP]>,
    evals: Vec<Eval>,
}

impl<'a> LawProblem<'a> {
    fn new(space: &'a FreeSpace, backend: &'a mut dyn Backend, which: &'a [u32]) -> Self {
        LawProblem {
            space,
            backend,
            which,
            which_buf: Vec::new(),
            params: Vec::new(),
            evals: Vec::new(),
        }
    }
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
        if self.which.is_empty() {
            self.backend.evaluate(&self.params, &mut self.evals)?;
        } else {
            self.which_buf.clear();
            self.which_buf.extend(ids.iter().map(|&i| self.which[i]));
            self.backend
                .evaluate_weighted(&self.params, &self.which_buf, &mut self.evals)?;
        }
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

/// Problems of one batch that share a weighting: the starts of one fit.
#[derive(Debug, Clone)]
pub struct Group {
    /// Index into the batch's weightings, or [`UNWEIGHTED`].
    pub weighting: u32,
    /// Starting points in theta.
    pub starts: Vec<Vec<f64>>,
}

/// Which starts of each group a single-precision batch refines in f64 on
/// the CPU: always the best `always`, and up to `max` of those whose f32
/// objective is within `rtol` of the group's best (they would count as
/// having reached it with f64 accuracy).
#[derive(Debug, Clone, Copy)]
pub struct Polish {
    pub always: usize,
    pub max: usize,
    pub rtol: f64,
}

/// The main fit's refinement: enough starts that "reached the best" is
/// still meaningful after a single-precision search.
pub const POLISH_FIT: Polish = Polish {
    always: 4,
    max: 16,
    rtol: 1e-4,
};

/// What a batch of groups produced.
#[derive(Debug, Clone)]
pub struct GroupsOutput {
    /// Per group, its starts' outcomes in order.
    pub outcomes: Vec<Vec<Outcome>>,
    /// Batched objective calls, refinement included.
    pub calls: usize,
    /// Starts refined on the CPU in f64 (0 on an f64 backend).
    pub polished: usize,
    /// Per group, the Gauss-Newton steps its best start took.
    pub newton_steps: Vec<usize>,
}

/// Run every group's starts as problems of one lockstep batch on
/// `backend`, each weighed by its group's weighting. On a single-precision
/// backend the best starts of each group (see [`Polish`]) are then
/// refined on the CPU in f64 and every other start's final objective is
/// recomputed in f64, so objectives compare like with like. Every group's
/// best start finally finishes by Gauss-Newton in f64 on the compiled law
/// (see [`crate::finish`]).
#[allow(clippy::too_many_arguments)]
pub fn solve_groups(
    space: &FreeSpace,
    prepared: &Prepared,
    backend: &mut dyn Backend,
    weightings: &[Weighting],
    groups: &[Group],
    lbfgs: &optim::Options,
    polish: Polish,
    progress: impl FnMut(Progress),
) -> anyhow::Result<GroupsOutput> {
    let mut x0 = Vec::new();
    let mut which = Vec::new();
    for g in groups {
        if g.weighting != UNWEIGHTED && g.weighting as usize >= weightings.len() {
            bail!(
                "a group refers to weighting {} of {}",
                g.weighting,
                weightings.len()
            );
        }
        x0.extend(g.starts.iter().cloned());
        which.extend(std::iter::repeat_n(g.weighting, g.starts.len()));
    }
    let weighted = which.iter().any(|&w| w != UNWEIGHTED);
    if weighted {
        backend.set_weightings(weightings)?;
    } else {
        which.clear();
    }
    let single_precision = backend.single_precision();
    let mut problem = LawProblem::new(space, backend, &which);
    let (mut flat, mut calls) =
        optim::minimize_batch(&mut problem, &x0, lbfgs, progress).context("optimisation failed")?;
    let mut polished = 0;
    if single_precision {
        let mut cpu = CpuBackend::new(prepared.clone());
        if weighted {
            cpu.set_weightings(weightings)?;
        }
        let mut picks = Vec::new();
        let mut offset = 0;
        for g in groups {
            let range = offset..offset + g.starts.len();
            picks.extend(pick_polish(&flat, range, polish));
            offset += g.starts.len();
        }
        calls += refine(space, &mut cpu, &which, &picks, lbfgs, &mut flat)?;
        polished = picks.len();
    }
    // Every group's best start finishes in f64 on the compiled law.
    let resolved: Vec<Option<Resolved>> = groups
        .iter()
        .map(|g| {
            if g.weighting == UNWEIGHTED {
                Ok(None)
            } else {
                weights::resolve(&weightings[g.weighting as usize], prepared).map(Some)
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let mut bests = Vec::new();
    let mut newton_steps = vec![0; groups.len()];
    let mut offset = 0;
    for (gi, g) in groups.iter().enumerate() {
        let range = offset..offset + g.starts.len();
        offset += g.starts.len();
        if let Some(i) = range
            .filter(|&i| flat[i].f.is_finite())
            .min_by(|&a, &b| flat[a].f.total_cmp(&flat[b].f))
        {
            let raw = raw_params(space, &flat[i].x);
            if raw.iter().all(|v| v.is_finite()) {
                bests.push((i, gi, raw, resolved[gi].as_ref()));
            }
        }
    }
    if !bests.is_empty() {
        let sweep = crate::finish::CompiledSweep::new(prepared, &space.spec)?;
        let starts: Vec<_> = bests.iter().map(|&(_, _, raw, r)| (raw, r)).collect();
        for (&(i, gi, ..), end) in bests.iter().zip(sweep.polish(prepared, &starts)?) {
            if end.f.is_finite() && end.f <= flat[i].f * (1.0 + 1e-12) {
                flat[i].x = space.to_theta(&space.scale.to_internal(&end.raw));
                flat[i].f = end.f;
                newton_steps[gi] = end.polished.steps;
            }
        }
    }
    let mut outcomes = Vec::with_capacity(groups.len());
    let mut rest = flat.into_iter();
    for g in groups {
        outcomes.push(rest.by_ref().take(g.starts.len()).collect());
    }
    Ok(GroupsOutput {
        outcomes,
        calls,
        polished,
        newton_steps,
    })
}

/// The starts of `range` to refine under `policy`, best first.
fn pick_polish(outcomes: &[Outcome], range: std::ops::Range<usize>, policy: Polish) -> Vec<usize> {
    let mut order: Vec<usize> = range.filter(|&i| outcomes[i].f.is_finite()).collect();
    order.sort_by(|&a, &b| outcomes[a].f.total_cmp(&outcomes[b].f));
    let Some(&best) = order.first() else {
        return order;
    };
    let near = outcomes[best].f.abs() * (1.0 + policy.rtol);
    let keep = order.iter().take_while(|&&i| outcomes[i].f <= near).count();
    order.truncate(keep.clamp(policy.always, policy.max.max(policy.always)));
    order
}

/// Refine `picks` on the CPU in f64 and recompute every other finite
/// start's objective in f64. Returns the batched calls used.
fn refine(
    space: &FreeSpace,
    cpu: &mut CpuBackend,
    which: &[u32],
    picks: &[usize],
    lbfgs: &optim::Options,
    outcomes: &mut [Outcome],
) -> anyhow::Result<usize> {
    // Problem ids of the refinement batch are positions in `picks`, so
    // their weightings are looked up through it.
    let sub_which: Vec<u32> = if which.is_empty() {
        Vec::new()
    } else {
        picks.iter().map(|&i| which[i]).collect()
    };
    let mut problem = LawProblem::new(space, cpu, &sub_which);
    let x0: Vec<Vec<f64>> = picks.iter().map(|&i| outcomes[i].x.clone()).collect();
    let (refined, calls) = optim::minimize_batch(&mut problem, &x0, lbfgs, |_| {})
        .context("refining on the CPU failed")?;
    for (&i, r) in picks.iter().zip(refined) {
        let o = &mut outcomes[i];
        o.iterations += r.iterations;
        o.evaluations += r.evaluations;
        o.x = r.x;
        o.f = r.f;
        o.status = r.status;
    }
    let rest: Vec<usize> = (0..outcomes.len())
        .filter(|i| !picks.contains(i) && outcomes[*i].f.is_finite())
        .collect();
    if rest.is_empty() {
        return Ok(calls);
    }
    let dim = space.dim();
    let xs: Vec<f64> = rest
        .iter()
        .flat_map(|&i| outcomes[i].x.iter().copied())
        .collect();
    let mut f = vec![0.0; rest.len()];
    let mut g = vec![0.0; rest.len() * dim];
    let mut problem = LawProblem::new(space, problem.backend, which);
    problem.evaluate(&rest, &xs, &mut f, &mut g)?;
    for (&i, v) in rest.iter().zip(f) {
        outcomes[i].f = v;
    }
    Ok(calls + 1)
}

/// Index of the start with the lowest finite objective.
pub fn best_index(outcomes: &[Outcome]) -> Option<usize> {
    (0..outcomes.len())
        .filter(|&i| outcomes[i].f.is_finite())
        .min_by(|&a, &b| outcomes[a].f.total_cmp(&outcomes[b].f))
}

/// Starts within [`AT_BEST_RTOL`] of the best objective.
pub fn count_at_best(outcomes: &[Outcome]) -> usize {
    let Some(b) = best_index(outcomes) else {
        return 0;
    };
    let best = outcomes[b].f;
    outcomes
        .iter()
        .filter(|o| o.f.is_finite() && o.f - best <= AT_BEST_RTOL * best.abs())
        .count()
}

/// Raw-unit parameters (law order) of theta, fixed values exact.
pub fn raw_params(space: &FreeSpace, theta: &[f64]) -> [f64; NP] {
    let mut raw = space.scale.to_raw(&space.to_internal(theta));
    for (r, fixed) in raw.iter_mut().zip(&space.spec.fixed) {
        if let Some(v) = fixed {
            *r = *v;
        }
    }
    raw
}

/// The free parameters of a fit of `ds` and their transform, with notes
/// on parameters fixed automatically. Errors when the data cannot support
/// the fit at all.
pub fn search_space(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
) -> anyhow::Result<(FreeSpace, Vec<String>)> {
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
    Ok((space, notes))
}

/// A reported optimum must be usable: every raw parameter and every
/// prediction finite. The scaled internal parameters can be fine while the
/// raw ones overflow (with alpha fixed at 100, A multiplies (N + t1)^100).
pub fn check_finite(ds: &Dataset, raw: &[f64; NP]) -> anyhow::Result<()> {
    let bad: Vec<String> = (0..NP)
        .filter(|&i| !raw[i].is_finite())
        .map(|i| format!("{} = {}", PARAM_NAMES[i], raw[i]))
        .collect();
    if !bad.is_empty() {
        bail!(
            "the best fit has parameters that are not finite in raw units ({}): the law \
             overflows at these values; check the --fix values",
            bad.join(", ")
        );
    }
    for c in &ds.configs {
        for i in c.range() {
            let p = predict_raw(raw, c.n, ds.tokens[i], c.t);
            if !p.is_finite() {
                bail!(
                    "the best fit predicts {p} for run {} (N = {}, T = {}) at tokens = {}: \
                     the law overflows there; check the --fix values",
                    c.run,
                    c.n,
                    c.t,
                    ds.tokens[i]
                );
            }
        }
    }
    Ok(())
}

/// The starting points of a fit: the default grid, or `--starts` random
/// ones. `prepared`'s weights decide the linear parameters of each start.
pub fn initial_starts(
    space: &FreeSpace,
    prepared: &Prepared,
    opts: &FitOptions,
) -> anyhow::Result<Vec<Vec<f64>>> {
    Ok(match opts.starts {
        Some(0) => bail!("--starts must be at least 1"),
        Some(k) => optim::random_starts(space, prepared, k, opts.seed),
        None => optim::grid_starts(space, prepared),
    })
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
    let (space, notes) = search_space(ds, prepared, opts)?;
    let x0 = initial_starts(&space, prepared, opts)?;
    let info = backend.info();
    let single_precision = backend.single_precision();
    let group = Group {
        weighting: UNWEIGHTED,
        starts: x0.clone(),
    };
    let solved = solve_groups(
        &space,
        prepared,
        backend,
        &[],
        &[group],
        &opts.lbfgs,
        POLISH_FIT,
        progress,
    )?;
    let calls = solved.calls;
    let steps_before = solved.newton_steps.first().copied().unwrap_or(0);
    let outcomes = solved.outcomes.into_iter().next().unwrap_or_default();
    // Notes on the input (rows skipped, ...) come before those on the fit.
    let mut notes = [ds.notes.as_slice(), &notes].concat();
    if single_precision {
        notes.push(format!(
            "the best {} starts were refined on the CPU in f64; the others stopped at \
             single-precision accuracy, so fewer of them count as reaching the best (1e-6)",
            solved.polished
        ));
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut outcomes = outcomes;
    let best = best_index(&outcomes).context(
        "every start ended with a non-finite objective: check the data and the fixed values",
    )?;
    // Counted where the search ended: the polish finishes the best alone.
    let at_best = count_at_best(&outcomes);
    let found = raw_params(&space, &outcomes[best].x);
    // Parameters that overflow in raw units are an error to name, not a
    // point to polish from.
    if found.iter().any(|v| !v.is_finite()) {
        check_finite(ds, &found)?;
    }
    let mut finished = crate::finish::finish(prepared, &space.spec, &found, opts.profile.as_ref())?;
    // The batch polished the best already; finishing it checks and describes.
    finished.polish.newton_steps += steps_before;
    // The polish only takes steps that lower f; a non-finite end (the law
    // overflowing in raw units) keeps the search's optimum for the checks
    // below to name.
    let raw = if finished.f.is_finite() {
        outcomes[best].x = space.to_theta(&space.scale.to_internal(&finished.raw));
        outcomes[best].f = finished.f;
        finished.raw
    } else {
        found
    };
    if !finished.polish.converged {
        notes.push(format!(
            "the optimum did not converge to grad_norm 1e-6 (grad_norm {:.1e} after {} \
             Gauss-Newton steps): its last digits depend on where the search stopped",
            finished.polish.grad_norm, finished.polish.newton_steps
        ));
    }
    let mut metrics = compute_metrics(ds, &raw);
    if opts.objective.space == crate::objective::Space::Log {
        metrics.log = crate::report::log_metrics(ds, &raw);
    }
    // The metrics have predicted every point already: only a non-finite
    // result needs the pass that finds and names the culprit.
    if !metrics.rmse.is_finite() || raw.iter().any(|v| !v.is_finite()) {
        check_finite(ds, &raw)?;
    }
    let mut status_counts = IndexMap::new();
    for s in Status::ENDED {
        status_counts.insert(
            s.name().to_string(),
            outcomes.iter().filter(|o| o.status == s).count(),
        );
    }
    let looplm = crate::law::builtin_law("looplm").expect("looplm is built in");
    let report = FitReport {
        law: opts.law.name().to_string(),
        formula: looplm.formula,
        params: (0..NP)
            .map(|i| (PARAM_NAMES[i].to_string(), raw[i]))
            .collect(),
        fixed: (0..NP)
            .filter(|&i| space.spec.is_fixed(i))
            .map(|i| PARAM_NAMES[i].to_string())
            .collect(),
        objective: ObjectiveReport {
            loss: opts.objective.loss_name().into(),
            space: opts.objective.space_name().into(),
            delta: opts.objective.delta,
            value: outcomes[best].f,
        },
        metrics,
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
        polish: Some(finished.polish),
        identifiability: Some(finished.identifiability),
        profile: finished.profile,
        bootstrap: None,
    };
    let starts = x0
        .iter()
        .map(|x| space.scale.to_raw(&space.to_internal(x)))
        .collect();
    Ok(FitOutput {
        report,
        params: raw,
        best_theta: outcomes[best].x.clone(),
        outcomes,
        starts,
        space,
    })
}
