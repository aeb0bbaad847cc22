//! One lockstep batch of jobs (groups, folds, replicates): evaluators,
//! starts, the optimiser each runs, and every job's best polished.

use super::starts::{draw, solve_linear, LinearRows};
use super::*;

/// Jobs whose evaluators are made at once for the polish of an L-BFGS
/// batch.
pub(super) const POLISH_JOBS: usize = 64;

/// The law and the data a batch fits.
#[derive(Clone, Copy)]
pub(super) struct Data<'a> {
    pub(super) b: &'a BoundLaw,
    pub(super) table: &'a Table,
    pub(super) cols: &'a Columns,
}

/// What a batch of jobs found.
pub(super) struct Batch {
    /// Per job, its best.
    pub(super) fits: Vec<JobFit>,
    /// Every start's outcome, job by job.
    pub(super) outcomes: Vec<Outcome>,
    /// Batched objective calls.
    pub(super) calls: usize,
    /// Every start, in theta, job by job.
    pub(super) starts: Vec<Vec<f64>>,
    /// Each job's row Jacobian, as the polish used it, for the reports;
    /// empty when the jobs were polished a few at a time (a large batch).
    pub(super) rows: Vec<RowJacobian>,
}

/// What one job of a batch found: its best start, polished.
#[derive(Debug, Clone)]
pub(super) struct JobFit {
    pub(super) params: Vec<f64>,
    pub(super) objective: f64,
    pub(super) at_best: usize,
    pub(super) polished: Polished,
}

/// Fit every job (group, fold, replicate) to its training rows as problems
/// of one lockstep batch: `opts.starts` starts each from the same draws, or
/// each from its own `given` theta (bootstrap replicates). Returns
/// each job's best, every start's outcome and the batched calls.
pub(super) fn fit_jobs(
    data: Data,
    space: &LawSpace,
    jobs: &[Group],
    opts: &LawFitOptions,
    given: Option<&[Vec<f64>]>,
    progress: impl FnMut(Progress),
) -> anyhow::Result<Batch> {
    let (method, sweeps) = method(data, jobs, opts);
    fit_jobs_by(data, space, jobs, opts, given, progress, method, sweeps)
}

/// Most rows a start's linear parameters are solved on.
const START_ROWS: usize = 8192;

/// The optimiser of a batch. Least squares (mse) on the CPU runs
/// Levenberg-Marquardt, which takes a few times fewer evaluations than
/// L-BFGS: on a shared axis grid with the grid evaluator's Gauss-Newton
/// moments when the law is separable along the axis, else on per-row
/// Jacobians. A grid whose law is not separable runs L-BFGS: the grid
/// evaluator forms the gradient per cell while the Gauss-Newton sums
/// would be formed per row, and its evaluations are so much cheaper that
/// it wins overall (measured on the README's Pythia fit, 107,400 rows on
/// a grid of 4 curves by 28,600 token values, with per-row Jacobians:
/// 3.5 s against 6.5 s). Every job's rows decide (the folds of `eval`
/// may fill a grid that the whole table fills); the jobs' sweeps, when
/// they were made to decide, are returned for the evaluators to reuse.
pub(super) fn method(data: Data, jobs: &[Group], opts: &LawFitOptions) -> (Method, Vec<Sweep>) {
    if steps_on_rows(data.b, opts) {
        return (Method::LeastSquares, Vec::new());
    }
    // A search from far starts on the GPU runs L-BFGS, whatever the law:
    // on the GPU's moments, summed in f32, Levenberg-Marquardt took a few
    // starts of the demo sweep to its 1000-iteration limit (their f32
    // J^T W J too coarse for small damping), and the batch with them;
    // L-BFGS ended them all within 650 evaluations. From near the optimum
    // (a bootstrap's replicates, see `method_for`) it is the other way
    // round.
    if opts.objective.loss != LossKind::Mse || opts.device.is_some() {
        return (Method::Lbfgs, Vec::new());
    }
    let sweeps: Vec<Sweep> = jobs
        .iter()
        .map(|g| sweep_of(data.b, data.cols, data.table, &g.train, &opts.objective))
        .collect();
    match method_for_all(data.b, opts, &sweeps) {
        Method::LeastSquares => (Method::LeastSquares, Vec::new()),
        m => (m, sweeps),
    }
}

/// [`method_for`] for a batch of fits on `sweeps`: the method they agree
/// on, else Levenberg-Marquardt on row Jacobians, which every layout has.
pub(super) fn method_for_all<'a>(
    b: &BoundLaw,
    opts: &LawFitOptions,
    sweeps: impl IntoIterator<Item = &'a Sweep>,
) -> Method {
    let mut methods = sweeps.into_iter().map(|s| method_for(b, opts, s));
    let Some(first) = methods.next() else {
        return Method::LeastSquares;
    };
    if methods.all(|m| m == first) {
        first
    } else {
        Method::LeastSquares
    }
}

/// [`method`] for a batch of fits on `sweep`.
pub(super) fn method_for(b: &BoundLaw, opts: &LawFitOptions, sweep: &Sweep) -> Method {
    if steps_on_rows(b, opts) {
        Method::LeastSquares
    } else if opts.objective.loss != LossKind::Mse {
        Method::Lbfgs
    } else if opts.device.is_some() {
        // The GPU twin of the grid's moments where the law and the sweep
        // take it, else L-BFGS on the law's kernel: the GPU has no row
        // Jacobians.
        match GpuLaw::gauss_newton_on(&Plan::for_sweep(&b.law, sweep), sweep) {
            true => Method::GridLeastSquares,
            false => Method::Lbfgs,
        }
    } else if CpuLayout::of(sweep) != CpuLayout::Grid {
        Method::LeastSquares
    } else if CpuLaw::gauss_newton_on(&Plan::for_sweep(&b.law, sweep), sweep, opts.objective) {
        Method::GridLeastSquares
    } else {
        Method::Lbfgs
    }
}

/// A law that sums along the steps runs Levenberg-Marquardt on per-row
/// Jacobians for either loss (Huber as reweighted least squares): a row's
/// sums cost the same with its derivatives as without, so a Jacobian costs
/// one evaluation, and on the multi-power law's 25M curves LM took 8
/// starts to the optimum in a few dozen iterations where L-BFGS ran to
/// its 1000-iteration limit (83 s against a few seconds).
fn steps_on_rows(b: &BoundLaw, opts: &LawFitOptions) -> bool {
    opts.device.is_none() && b.law.sums_steps()
}

/// Starts per wave of a fit that stops early (`early_stop`).
pub(super) const WAVE: usize = 8;

/// Levenberg-Marquardt on `x0` (each of the jobs' `per` starts, job by
/// job) in waves of [`WAVE`] starts per job, until every job's starts say
/// that more would find no new minimum: Boender and Rinnooy Kan's
/// Bayesian stopping rule (Math. Programming 37, 1987), which estimates
/// from w distinct minima found by n starts that there are
/// w (n - 1) / (n - w - 2) in all, and stops when that is below w + 1/2.
/// Every start that ran ended where it would have in one batch, and the
/// starts are the first of the same draws, so a fit that stops after n
/// starts is the fit of `--starts n`. A law that sums along the steps
/// pays O(rows x steps) per start and evaluation, and its starts mostly
/// end at one minimum (62 of 64 on each of the multi-power law's 100M
/// and 400M runs, 124 of 128 at 25M): its first wave usually settles it.
/// Returns the outcomes job by job, the batched calls, and the starts
/// each job ran.
fn search_in_waves(
    space: &LawSpace,
    rows: &[RowJacobian],
    per: usize,
    x0: &[Vec<f64>],
    lm: &optim::LmOptions,
    progress: &mut impl FnMut(Progress),
) -> anyhow::Result<(Vec<Outcome>, usize, usize)> {
    let jobs = rows.len();
    let mut done: Vec<Vec<Outcome>> = vec![Vec::new(); jobs];
    let (mut calls, mut ran) = (0, 0);
    while ran < per {
        let next = (ran + WAVE).min(per);
        let (x, job_of): (Vec<Vec<f64>>, Vec<usize>) = (0..jobs)
            .flat_map(|gi| (ran..next).map(move |k| (gi, k)))
            .map(|(gi, k)| (x0[gi * per + k].clone(), gi))
            .unzip();
        let (outs, c) = polish::search(space, rows, &job_of, &[], &x, lm, &mut *progress)?;
        calls += c;
        for (o, gi) in outs.into_iter().zip(job_of) {
            done[gi].push(o);
        }
        ran = next;
        if done.iter().all(|d| settled(d)) {
            break;
        }
    }
    Ok((done.into_iter().flatten().collect(), calls, ran))
}

/// Whether starts that ended at `outcomes` have likely found every
/// minimum (see [`search_in_waves`]). Two ends, in order of objective,
/// are one minimum when their objectives agree to [`AT_BEST_RTOL`] or
/// their (searched) parameters to 1e-4: an exact fit's starts end at one
/// point with objectives at rounding level, which differ relatively.
fn settled(outcomes: &[Outcome]) -> bool {
    let mut ends: Vec<&Outcome> = outcomes.iter().filter(|o| o.f.is_finite()).collect();
    ends.sort_by(|a, b| a.f.total_cmp(&b.f));
    let same = |a: &Outcome, b: &Outcome| {
        (b.f - a.f).abs() <= AT_BEST_RTOL * a.f.abs().max(b.f.abs())
            || a.x
                .iter()
                .zip(&b.x)
                .all(|(u, v)| (u - v).abs() <= 1e-4 * (1.0 + u.abs()))
    };
    let n = ends.len() as f64;
    let w = 1.0 + ends.windows(2).filter(|p| !same(p[0], p[1])).count() as f64;
    n > w + 2.0 && w * (n - 1.0) / (n - w - 2.0) < w + 0.5
}

/// Levenberg-Marquardt's stopping rules from the L-BFGS options the user
/// set (`--max-iter`, `--ftol`).
pub(super) fn lm_options(lbfgs: &optim::Options) -> optim::LmOptions {
    optim::LmOptions {
        max_iter: lbfgs.max_iter,
        stall: lbfgs.ftol,
        ..Default::default()
    }
}

/// Relative changes of f that single precision resolves, about: the GPU
/// twin sums its moments in f32.
const F32_FTOL: f64 = 1e-6;
/// The Newton decrement (relative, see `LmOptions::decrement`) at which
/// one more Gauss-Newton step would lower f by about F32_FTOL of it.
const F32_DECREMENT: f64 = 1e-3;

/// [`lm_options`] for a search on the GPU's moments, summed in f32: it
/// stops where single precision does, since every start's best finishes
/// in f64 on the CPU (see `polish`), rather than run on the rounding of
/// f to the iteration limit, where a batch waits on its slowest start.
pub(super) fn lm_options_for(lbfgs: &optim::Options, device: bool) -> optim::LmOptions {
    let mut o = lm_options(lbfgs);
    if device {
        o.ftol = o.ftol.max(F32_FTOL);
        o.stall = o.stall.max(F32_FTOL);
        o.decrement = F32_DECREMENT;
    }
    o
}

/// The evaluator of `sweep` for `method`: the law's generated kernel on
/// `opts.device` (its Gauss-Newton kernel for [`Method::GridLeastSquares`]),
/// else the compiled law on the CPU.
pub(super) fn evaluator(
    b: &BoundLaw,
    sweep: &Sweep,
    opts: &LawFitOptions,
    method: Method,
) -> anyhow::Result<JobEvaluator> {
    let plan = Plan::for_sweep(&b.law, sweep);
    Ok(match &opts.device {
        Some(dev) if method == Method::GridLeastSquares => JobEvaluator::Gpu(Box::new(
            GpuLaw::gauss_newton(dev, &plan, sweep, opts.objective, None)
                .with_context(|| format!("law {} on the GPU", b.file.name))?
                .with_context(|| {
                    format!(
                        "law {}: the GPU's Gauss-Newton kernel does not take this sweep",
                        b.file.name
                    )
                })?,
        )),
        Some(dev) => JobEvaluator::Gpu(Box::new(
            GpuLaw::new(dev, &plan, sweep, opts.objective, None)
                .with_context(|| format!("law {} on the GPU", b.file.name))?,
        )),
        None => JobEvaluator::Cpu(Box::new(
            CpuLaw::new(plan, sweep, opts.objective)
                .map_err(|e| anyhow::anyhow!("cannot lay out the data for the evaluator: {e}"))?,
        )),
    })
}

/// How a batch is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// Levenberg-Marquardt on per-row Jacobians (mse only).
    LeastSquares,
    /// Levenberg-Marquardt on the grid evaluator's Gauss-Newton moments
    /// (mse, a law separable along its axis, on the CPU or the GPU).
    GridLeastSquares,
    /// L-BFGS on the compiled evaluator (any loss).
    Lbfgs,
}

/// [`fit_jobs`] with the optimiser chosen; `sweeps`, the jobs' sweeps if
/// they are made already (else empty).
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_jobs_by(
    data: Data,
    space: &LawSpace,
    jobs: &[Group],
    opts: &LawFitOptions,
    given: Option<&[Vec<f64>]>,
    progress: impl FnMut(Progress),
    method: Method,
    sweeps: Vec<Sweep>,
) -> anyhow::Result<Batch> {
    let Data { b, table, cols } = data;
    let law = &b.law;
    if space.dim() == 0 {
        return fixed(data, space, jobs, opts);
    }
    for g in jobs {
        if g.train.len() < space.dim() {
            bail!(
                "{} has {} rows to fit but the law has {} free parameters: a fit needs at \
                 least as many rows as free parameters",
                g.name("the data"),
                g.train.len(),
                space.dim()
            );
        }
        if g.train.iter().all(|&r| cols.weight[r] == 0.0) {
            bail!(
                "{} has only rows of weight zero to fit: nothing to fit",
                g.name("the data")
            );
        }
    }
    // Least squares (mse) on the CPU runs Levenberg-Marquardt, which needs
    // J^T J, on per-row Jacobians: it takes far fewer evaluations than
    // L-BFGS. Otherwise L-BFGS runs on the compiled evaluator or the GPU
    // kernel. One evaluator per job, and every job's starts.
    let least_squares = method == Method::LeastSquares;
    let mut grids = Vec::new();
    let mut rows = Vec::new();
    let mut made = sweeps.into_iter();
    for g in jobs {
        if least_squares {
            rows.push(row_jacobian(b, cols, &g.train, &opts.objective, space));
            continue;
        }
        let sweep = match made.next() {
            Some(sweep) => sweep,
            None => sweep_of(b, cols, table, &g.train, &opts.objective),
        };
        grids.push(evaluator(b, &sweep, opts, method)?);
    }
    let mut per = if given.is_some() { 1 } else { opts.starts };
    let draws = draw(
        space,
        if given.is_some() { 0 } else { opts.starts },
        opts.seed,
    );
    let mut x0 = Vec::with_capacity(jobs.len() * per);
    let mut job_of = Vec::with_capacity(x0.capacity());
    let base: Vec<f64> = space.to_params(&vec![0.0; space.dim()]);
    for (gi, g) in jobs.iter().enumerate() {
        if let Some(thetas) = given {
            x0.push(thetas[gi].clone());
            job_of.push(gi);
            continue;
        }
        // A start needs to be good, not exact: on a large job its linear
        // parameters are solved on every k-th row (each curve keeps rows
        // along all of its axis), which costs a fraction of the search.
        let stride = g.train.len().div_ceil(START_ROWS).max(1);
        let start_rows: Vec<usize> = g.train.iter().copied().step_by(stride).collect();
        let fast = LinearRows::new(b, cols, &start_rows, space);
        let starts: Vec<Vec<f64>> = draws
            .par_iter()
            .enumerate()
            .map_init(Workspace::default, |ws, (k, d)| {
                let mut p = base.clone();
                for &(i, v) in d {
                    p[i] = v;
                }
                if let Some(fast) = &fast {
                    solve_linear(law, space, cols, &start_rows, fast, ws, &mut p);
                }
                // Every other start keeps the drawn values of linear
                // parameters with a declared range (the user's starts);
                // the others take the least-squares values.
                if k % 2 == 1 {
                    for &(i, v) in d.iter().filter(|(i, _)| space.rules[*i].linear) {
                        p[i] = v;
                    }
                }
                space.to_theta(&p)
            })
            .collect();
        x0.extend(starts);
        job_of.extend(std::iter::repeat_n(gi, per));
    }
    let mut progress = progress;
    let waves = least_squares && given.is_none() && opts.early_stop && law.sums_steps();
    let (outcomes, calls) = if waves && per > WAVE {
        let lm = lm_options(&opts.lbfgs);
        let (outcomes, calls, ran) = search_in_waves(space, &rows, per, &x0, &lm, &mut progress)
            .context("optimisation failed")?;
        x0 = (0..jobs.len())
            .flat_map(|gi| x0[gi * per..gi * per + ran].to_vec())
            .collect();
        per = ran;
        (outcomes, calls)
    } else if least_squares {
        let lm = lm_options(&opts.lbfgs);
        polish::search(space, &rows, &job_of, &[], &x0, &lm, progress)
            .context("optimisation failed")?
    } else if method == Method::GridLeastSquares {
        let lm = lm_options_for(&opts.lbfgs, opts.device.is_some());
        let mut problems = GridLeastSquares {
            space,
            grids: &mut grids,
            group_of: &job_of,
            weighted: None,
        };
        optim::least_squares_batch(&mut problems, &x0, &lm, progress)
            .context("optimisation failed")?
    } else {
        let mut problems = Problems {
            space,
            grids: &mut grids,
            group_of: &job_of,
            weighted: None,
        };
        optim::minimize_batch(&mut problems, &x0, &opts.lbfgs, progress)
            .context("optimisation failed")?
    };
    let mut bests = Vec::with_capacity(jobs.len());
    for (gi, g) in jobs.iter().enumerate() {
        let mine = &outcomes[gi * per..(gi + 1) * per];
        let best = (0..mine.len())
            .filter(|&i| mine[i].f.is_finite())
            .min_by(|&x, &y| mine[x].f.total_cmp(&mine[y].f));
        let Some(best) = best else {
            let p = space.to_params(&x0[gi * per]);
            let site = non_finite_site(b, cols, &g.train, &p, table)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            let which = match g.name("") {
                n if n.is_empty() => n,
                n => format!(" ({n})"),
            };
            bail!(
                "the law is not finite at any start{which}{site}; check the law's domain \
                 (logs and powers of values that can reach 0 or below) and the start ranges"
            );
        };
        bests.push(mine[best].x.clone());
    }
    // Every job's best finishes by Gauss-Newton in f64 (see `polish`), on
    // the least-squares evaluators when they exist, or on ones made for
    // it, a few jobs at a time (a bootstrap has thousands).
    let mut polished = Vec::with_capacity(jobs.len());
    if least_squares {
        let starts: Vec<(usize, Vec<f64>)> = bests
            .iter()
            .enumerate()
            .map(|(gi, x)| (gi, space.to_params(x)))
            .collect();
        polished = polish::polish(&b.law, space, &rows, &starts, &[])?;
    } else {
        // A law that sums along the steps, searched on the GPU by L-BFGS
        // in f32, can stop anywhere along its narrow valleys (the
        // multi-power law's B and beta, an eigenvalue of 5e-6 of the scaled
        // Gauss-Newton matrix at 25M), which f32 does not resolve and
        // where the polish's Gauss-Newton steps crawl. Its best starts
        // finish by Levenberg-Marquardt on the rows in f64 first, as the
        // CPU's own search would.
        let refine = opts.device.is_some() && law.sums_steps();
        for (c, chunk) in jobs.chunks(POLISH_JOBS).enumerate() {
            let made: Vec<RowJacobian> = chunk
                .par_iter()
                .map(|g| row_jacobian(b, cols, &g.train, &opts.objective, space))
                .collect();
            let mine = &mut bests[c * POLISH_JOBS..][..chunk.len()];
            if refine {
                let job_of: Vec<usize> = (0..chunk.len()).collect();
                let (done, _) = polish::search(
                    space,
                    &made,
                    &job_of,
                    &[],
                    mine,
                    &lm_options(&opts.lbfgs),
                    |_| {},
                )
                .context("optimisation failed")?;
                for (x, o) in mine.iter_mut().zip(done) {
                    if o.f.is_finite() {
                        *x = o.x;
                    }
                }
            }
            let starts: Vec<(usize, Vec<f64>)> = (0..chunk.len())
                .map(|k| (k, space.to_params(&mine[k])))
                .collect();
            polished.extend(polish::polish(&b.law, space, &made, &starts, &[])?);
            if jobs.len() <= POLISH_JOBS {
                rows = made;
            }
        }
    }
    let mut fits = Vec::with_capacity(jobs.len());
    for (gi, p) in polished.into_iter().enumerate() {
        let mine = &outcomes[gi * per..(gi + 1) * per];
        // Counted where the search ended: the polish finishes the best
        // start alone, and on exact data it may lower the objective by
        // orders of magnitude, past every start.
        let searched = mine
            .iter()
            .map(|o| o.f)
            .filter(|f| f.is_finite())
            .fold(f64::INFINITY, f64::min);
        fits.push(JobFit {
            params: p.params.clone(),
            objective: p.f,
            at_best: mine
                .iter()
                .filter(|o| o.f.is_finite() && o.f - searched <= AT_BEST_RTOL * searched.abs())
                .count(),
            polished: p,
        });
    }
    Ok(Batch {
        fits,
        outcomes,
        calls,
        starts: x0,
        rows,
    })
}

/// Every parameter fixed (`--fix` for each): nothing to search, each
/// job's objective at the given parameters, reported as a fit so that its
/// metrics and held-out scores are those of known parameters.
fn fixed(
    data: Data,
    space: &LawSpace,
    jobs: &[Group],
    opts: &LawFitOptions,
) -> anyhow::Result<Batch> {
    let Data { b, cols, .. } = data;
    let params = space.to_params(&[]);
    let (mut fits, mut outcomes, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for g in jobs {
        let rj = row_jacobian(b, cols, &g.train, &opts.objective, space);
        let f = rj.evaluate(&params, &mut Workspace::default(), &mut [], &mut []);
        if !f.is_finite() {
            bail!(
                "{}: the law is not finite at the fixed parameters",
                g.name("the data")
            );
        }
        outcomes.push(Outcome {
            x: Vec::new(),
            f,
            status: Status::Converged,
            iterations: 0,
            evaluations: 1,
        });
        fits.push(JobFit {
            params: params.clone(),
            objective: f,
            at_best: 1,
            polished: Polished {
                params: params.clone(),
                theta: Vec::new(),
                f,
                grad_norm: 0.0,
                steps: 0,
                at_bound: Vec::new(),
                status: Status::Converged,
                exact: false,
            },
        });
        rows.push(rj);
    }
    Ok(Batch {
        fits,
        outcomes,
        calls: 1,
        starts: vec![Vec::new(); jobs.len()],
        rows,
    })
}

/// One job's objective: the compiled law on the CPU, or its generated
/// kernel on the GPU. Kept apart (not one boxed [`Evaluator`]) because the
/// GPU's jobs of a batch go to the device in one submission.
pub(super) enum JobEvaluator {
    Cpu(Box<CpuLaw>),
    Gpu(Box<GpuLaw>),
}

impl JobEvaluator {
    /// The twin behind it, through the evaluator interface.
    pub(super) fn twin(&mut self) -> &mut dyn Evaluator {
        match self {
            JobEvaluator::Cpu(grid) => grid.as_mut(),
            JobEvaluator::Gpu(law) => law.as_mut(),
        }
    }
}

/// Per problem, which group's evaluator runs it.
pub(super) struct Problems<'a> {
    pub(super) space: &'a LawSpace,
    pub(super) grids: &'a mut [JobEvaluator],
    pub(super) group_of: &'a [usize],
    /// Per problem, the index of the weighting registered on its evaluator
    /// that weighs it (bootstrap replicates); `None` when all keep their
    /// sweep's own weights.
    pub(super) weighted: Option<&'a [u32]>,
}

impl BatchObjective for Problems<'_> {
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
        let (m, np) = (self.space.dim(), self.space.n_params());
        let params: Vec<Vec<f64>> = (0..ids.len())
            .into_par_iter()
            .map(|k| self.space.to_params(&xs[k * m..(k + 1) * m]))
            .collect();
        let mut gp = vec![0.0; ids.len() * np];
        // Problems of one group go to its evaluator in one call; the GPU
        // groups all in one submission.
        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); self.grids.len()];
        for (k, &id) in ids.iter().enumerate() {
            by_group[self.group_of[id]].push(k);
        }
        let flats: Vec<Vec<f64>> = by_group
            .iter()
            .map(|ks| ks.iter().flat_map(|&k| params[k].iter().copied()).collect())
            .collect();
        let mut fo: Vec<Vec<f64>> = by_group.iter().map(|ks| vec![0.0; ks.len()]).collect();
        let mut go: Vec<Vec<f64>> = by_group.iter().map(|ks| vec![0.0; ks.len() * np]).collect();
        let mut gpu_jobs = Vec::new();
        for (gi, (((grid, flat), fo), go)) in self
            .grids
            .iter_mut()
            .zip(&flats)
            .zip(&mut fo)
            .zip(&mut go)
            .enumerate()
        {
            if flat.is_empty() {
                continue;
            }
            if let Some(weighting) = self.weighted {
                // Weighted problems run evaluator by evaluator (a bootstrap
                // has one per fit, mostly one).
                let which: Vec<u32> = by_group[gi].iter().map(|&k| weighting[ids[k]]).collect();
                grid.twin().evaluate_weighted(flat, &which, fo, go)?;
                continue;
            }
            match grid {
                JobEvaluator::Cpu(grid) => grid.evaluate(flat, fo, go),
                JobEvaluator::Gpu(law) => gpu_jobs.push(Job {
                    law,
                    params: flat,
                    f: fo,
                    g: go,
                }),
            }
        }
        evaluate_all(&mut gpu_jobs)?;
        drop(gpu_jobs);
        for (gi, ks) in by_group.iter().enumerate() {
            for (j, &k) in ks.iter().enumerate() {
                f[k] = fo[gi][j];
                gp[k * np..(k + 1) * np].copy_from_slice(&go[gi][j * np..(j + 1) * np]);
            }
        }
        g.par_chunks_mut(m).enumerate().for_each(|(k, gk)| {
            self.space
                .grad_to_theta(&params[k], &gp[k * np..(k + 1) * np], gk)
        });
        Ok(())
    }
}

/// Least-squares problems on the grid evaluators' Gauss-Newton moments
/// (see `CpuLaw::evaluate_gn`): problem `k` runs on `grids[group_of[k]]`.
pub(super) struct GridLeastSquares<'a> {
    pub(super) space: &'a LawSpace,
    pub(super) grids: &'a mut [JobEvaluator],
    pub(super) group_of: &'a [usize],
    /// Per problem, the index of the weighting registered on its evaluator
    /// that weighs it (bootstrap replicates); `None` when all keep their
    /// sweep's own weights.
    pub(super) weighted: Option<&'a [u32]>,
}

impl optim::BatchLeastSquares for GridLeastSquares<'_> {
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
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let (m, np) = (self.space.dim(), self.space.n_params());
        let free = self.space.free();

        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); self.grids.len()];
        for (k, &id) in ids.iter().enumerate() {
            by_group[self.group_of[id]].push(k);
        }
        for (grid, ks) in self.grids.iter_mut().zip(&by_group) {
            if ks.is_empty() {
                continue;
            }
            let params: Vec<Vec<f64>> = ks
                .iter()
                .map(|&k| self.space.to_params(&xs[k * m..(k + 1) * m]))
                .collect();
            let flat: Vec<f64> = params.iter().flatten().copied().collect();
            let (mut fo, mut go, mut ho) = (
                vec![0.0; ks.len()],
                vec![0.0; ks.len() * np],
                vec![0.0; ks.len() * np * np],
            );
            let which: Option<Vec<u32>> = self
                .weighted
                .map(|weighting| ks.iter().map(|&k| weighting[ids[k]]).collect());
            match (grid, which) {
                (JobEvaluator::Cpu(grid), Some(which)) => {
                    grid.evaluate_gn_weighted(&flat, &which, &mut fo, &mut go, &mut ho)?
                }
                (JobEvaluator::Cpu(grid), None) => {
                    grid.evaluate_gn(&flat, &mut fo, &mut go, &mut ho)
                }
                (JobEvaluator::Gpu(law), Some(which)) => {
                    law.evaluate_gn_weighted(&flat, &which, &mut fo, &mut go, &mut ho)?
                }
                (JobEvaluator::Gpu(law), None) => {
                    law.evaluate_gn(&flat, &mut fo, &mut go, &mut ho)?
                }
            }
            let (mut graw, mut hraw, mut t) = (vec![0.0; m], vec![0.0; m * m], vec![0.0; m * m]);
            for (j, &k) in ks.iter().enumerate() {
                f[k] = fo[j];
                for (a, &fa) in free.iter().enumerate() {
                    graw[a] = go[j * np + fa];
                    for (b, &fb) in free.iter().enumerate() {
                        hraw[a * m + b] = ho[j * np * np + fa * np + fb];
                    }
                }
                polish::moments_to_theta(
                    self.space,
                    &params[j],
                    &graw,
                    &hraw,
                    &mut t,
                    &mut g[k * m..(k + 1) * m],
                    &mut h[k * m * m..(k + 1) * m * m],
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Status;

    fn end(f: f64, x: f64) -> Outcome {
        Outcome {
            x: vec![x, 1.0],
            f,
            status: Status::Converged,
            iterations: 10,
            evaluations: 11,
        }
    }

    #[test]
    fn waves_stop_once_the_starts_find_no_new_minimum() {
        // One minimum from 8 starts: 1 x 7 / 5 = 1.4 minima estimated.
        let one: Vec<Outcome> = (0..8)
            .map(|k| end(2.0 + 1e-9 * k as f64, k as f64))
            .collect();
        assert!(settled(&one));
        // Two from 8: 2 x 7 / 4 = 3.5, go on; from 24, 2 x 23 / 20 = 2.3.
        let mut two = one.clone();
        two[3] = end(5.0, 3.0);
        assert!(!settled(&two));
        let more: Vec<Outcome> = (0..24)
            .map(|k| if k == 3 { end(5.0, 3.0) } else { end(2.0, 0.0) })
            .collect();
        assert!(!settled(&more[..16]));
        assert!(settled(&more));
        // An exact fit: objectives at rounding level differ relatively,
        // the parameters agree; a failed start does not count.
        let mut exact: Vec<Outcome> = (0..9).map(|k| end(1e-30 * (k + 1) as f64, 0.5)).collect();
        exact[8].f = f64::NAN;
        assert!(!settled(&exact[..7]));
        assert!(!settled(&exact[..4]));
        assert!(settled(&exact));
    }
}
