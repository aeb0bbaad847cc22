//! Fitting any compiled law to a table: bind the law's variables to
//! columns, split off the `--test-where` rows, group by `--by`, draw the
//! starts (non-linear parameters drawn, linear ones solved by least
//! squares), run every group's starts as problems of one lockstep batch,
//! and score the result.
//!
//! On the CPU, least squares (mse) runs Levenberg-Marquardt on the row
//! Jacobian, except on curves sharing an axis grid, where it runs L-BFGS
//! on the grid evaluator as other losses do (see `batch::method`). Given a
//! GPU ([`LawFitOptions::device`]), every loss runs L-BFGS on the law's
//! generated kernel, all starts of a group per dispatch; either way each
//! group's best start is then polished in f64 on the CPU.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::backend::gpu::{evaluate_all, GpuDevice, GpuLaw, Job};
use crate::backend::jacobian::{RowJacobian, Workspace};
use crate::backend::{CpuLaw, CpuLayout, Evaluator};
use crate::data::{Check, Schedules, Selector, Table};
use crate::law::dag::{Node, NodeId};
use crate::law::params::{rules, ParamRule, Transform};
use crate::law::plan::{Plan, Sweep};
use crate::law::space::LawSpace;
use crate::law::{CompiledLaw, LawFile};
use crate::objective::{LossKind, Objective, Space};
use crate::optim::{self, BatchObjective, Outcome, Progress, Status};
use crate::polish::{self, Polished};
use crate::profile::ProfileRequest;
mod batch;
mod binding;
mod bootstrap;
mod compare;
mod eval;
mod plot;
mod predict;
mod report;
mod rows;
mod schedule;
mod simulate;
mod space;
mod starts;

use batch::{fit_jobs, Batch, Data, JobFit, Problems};
pub use binding::{BindOptions, Binding, ScheduleSource};
pub use bootstrap::{bootstrap, bootstrap_shard, join_shards, Fitted};
pub use compare::{compare, compare_law, merge_laws, LawResult, LawSource};
pub use eval::{combinations, evaluate, LawEvalOptions, LawEvalOutput, Protocol, MAX_FOLDS};
pub use plot::{fold_panels, panels};
pub use predict::{
    extrapolation_warnings, law_fit, predict_rows, predict_table, read_law_fit, LawFit,
    RowPredictions,
};
use report::*;
pub use rows::table_sweep;
use rows::*;
pub use schedule::schedule_handles;
pub use simulate::{bind_columns, simulate, LawSimulation, Simulated, Truth};
use space::law_space;

use crate::identify::{self, Identifiability};
use crate::report::{
    BackendReport, CurveMetrics, GroupReport, LawFitReport, ObjectiveReport, PolishReport,
    SetMetrics, StartsReport, TestReport,
};

/// Starts per fit when `--starts` is not given.
pub const DEFAULT_STARTS: usize = 128;

/// A start reached the best objective when within this of it (relative).
pub const AT_BEST_RTOL: f64 = 1e-6;

#[derive(Debug, Clone)]
pub struct LawFitOptions {
    pub objective: Objective,
    /// User-fixed parameters: (name, value).
    pub fix: Vec<(String, f64)>,
    pub starts: usize,
    /// `starts` is a most, not a count: the fit of a law whose starts are
    /// costly runs them in waves and stops once they find no new minimum
    /// (a law that sums along the steps). Set when `--starts` is not given.
    pub early_stop: bool,
    pub seed: u64,
    pub lbfgs: optim::Options,
    /// Fit every group of rows with equal values in these columns on its own.
    pub by: Vec<String>,
    /// Rows held out of the fit and scored.
    pub test_where: Option<Selector>,
    /// Profile-likelihood intervals to compute at the optimum.
    pub profile: Option<ProfileRequest>,
    /// Evaluate on this GPU (None: the CPU).
    pub device: Option<Arc<GpuDevice>>,
}

impl Default for LawFitOptions {
    /// A plain fit: mse in linear space from the default starts, on the CPU.
    fn default() -> Self {
        LawFitOptions {
            objective: Objective::default(),
            fix: Vec::new(),
            starts: DEFAULT_STARTS,
            early_stop: false,
            seed: 0,
            lbfgs: optim::Options::default(),
            by: Vec::new(),
            test_where: None,
            profile: None,
            device: None,
        }
    }
}

/// A law bound to the columns of a table.
#[derive(Debug, Clone)]
pub struct BoundLaw {
    pub file: LawFile,
    /// The law file's text as given (for a bare formula, a minimal file).
    pub text: String,
    pub law: CompiledLaw,
    /// Table column of every variable.
    pub columns: Vec<usize>,
    /// The variable curves run along, when the law names one.
    pub axis: Option<usize>,
    /// Other columns that split curves (see [`split_columns`]).
    pub split: Vec<usize>,
    /// Which names read which columns, and which are parameters.
    pub binding: Binding,
    /// Something about the binding the user should hear.
    pub warning: Option<String>,
    /// The runs' schedules (`--schedule`), for a law that sums along the
    /// steps.
    pub schedules: Option<Schedules>,
}

impl BoundLaw {
    /// The column `--schedule` added to `table`: each row's schedule as a
    /// handle of this process, which means nothing outside it (pred.csv
    /// leaves it out).
    pub fn handle_column(&self, table: &Table) -> Option<usize> {
        self.schedules
            .as_ref()
            .and_then(|_| table.find(crate::law::parse::SCHEDULE))
    }

    /// The values variable `v` (by its index in the law) may take in the
    /// data: its declared domain, else any finite number.
    pub fn check(&self, v: usize) -> Check {
        check_of(&self.file, &self.law.variables[v])
    }

    /// What to say before the work: which names read which columns and
    /// which are parameters ("note: ..."), and any doubt ("warning: ...").
    pub fn messages(&self) -> Vec<String> {
        let mut m = vec![format!("note: {}", self.binding.describe())];
        m.extend(self.warning.iter().map(|w| format!("warning: {w}")));
        m
    }
}

/// The values variable `v` of `file` may take in the data: its declared
/// domain, else any finite number.
pub(crate) fn check_of(file: &LawFile, v: &str) -> Check {
    use crate::law::file::Domain;
    match file.domain_of(v) {
        Some(Domain::Positive) => Check::Domain { strict: true },
        Some(Domain::NonNegative) => Check::Domain { strict: false },
        None => Check::Finite,
    }
}

/// Bind `file` to `table` (see [`binding`] for the rule): every variable
/// to a column, every other name a parameter. A bare formula whose
/// parameters look like an unbound variable while the table has numeric
/// columns it does not read is refused. A variable the table has no
/// column for but the file gives a default is added to the table as a
/// column of that value.
pub fn bind(
    file: LawFile,
    text: &str,
    origin: &str,
    table: &mut Table,
    opts: &BindOptions,
) -> anyhow::Result<BoundLaw> {
    let bare = file.variables.is_empty();
    binding::fill_defaults(&file, table, opts)?;
    let schedules = match &opts.schedule {
        Some(source) => {
            let s = source.load()?;
            // A law without sums along the steps reads no schedule: said
            // before any row is matched to a run of the file.
            let sums = match bare {
                true => file.compile(origin).map_or(true, |l| {
                    l.variables.iter().any(|v| v == crate::law::parse::SCHEDULE)
                }),
                false => file.variables.contains_key(crate::law::parse::SCHEDULE),
            };
            if !sums {
                bail!(
                    "{}: the law sums along no steps, so it reads no schedule (leave out \
                     --schedule)",
                    s.path.display()
                );
            }
            schedule::attach(table, &s)?;
            Some(s)
        }
        None => None,
    };
    let table = &*table;
    let (mut file, mut binding) = binding::resolve(file, origin, table, opts)?;
    binding.axis = if let Some(a) = &opts.axis {
        if !file.variables.contains_key(a) {
            bail!(
                "--axis {a}: not a variable of the law (its variables: {})",
                file.variables
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        file.axis = Some(a.clone());
        Some((a.clone(), "--axis".to_string()))
    } else if let Some(a) = &file.axis {
        Some((a.clone(), "the law's axis".to_string()))
    } else if bare {
        let guess = guess_axis(&file, table);
        file.axis = guess.as_ref().map(|(a, _)| a.clone());
        guess.map(|(a, density)| {
            let why = format!(
                "chosen: the variable whose values the curves share best, their grid {:.0}% \
                 full; --axis VAR chooses another",
                100.0 * density
            );
            (a, why)
        })
    } else {
        None
    };
    let mut columns = Vec::new();
    for col in file.variables.values() {
        columns.push(table.find(col).expect("a column the binding found"));
    }
    let law = file.compile(origin)?;
    binding.params = law.params.clone();
    if let Some(s) = &schedules {
        schedule::check_steps(s, &law, &columns, table)?;
        for (v, _, why) in &mut binding.variables {
            if v == crate::law::parse::SCHEDULE {
                *why = format!("each row's run in {}", s.path.display());
            }
        }
    }
    let warning = if bare {
        binding::check_unbound(&law, &file, table, opts)?
    } else {
        binding::check_undeclared(&law, &file, table)?;
        None
    };
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a));
    let split = match axis {
        Some(a) => {
            let vars = columns
                .iter()
                .map(|&c| table.numbers(c, Check::Finite))
                .collect::<Result<Vec<_>, _>>();
            // Unreadable values are reported when the columns are read.
            vars.map_or(Vec::new(), |v| split_columns(table, &v, &columns, a))
        }
        None => Vec::new(),
    };
    binding.split = split.iter().map(|&c| table.headers[c].clone()).collect();
    Ok(BoundLaw {
        file,
        text: text.to_string(),
        law,
        columns,
        axis,
        split,
        binding,
        warning,
        schedules,
    })
}

/// For a bare formula: the variable its curves run along. Each candidate
/// makes curves of the rows with equal run and equal other variables; the
/// one whose curves share their values best (the densest grid of curves x
/// distinct values, as tokens logged at the same steps) is the axis, if
/// that grid is at least a quarter full. Otherwise there is none, and every
/// row is evaluated on its own.
fn guess_axis(file: &LawFile, table: &Table) -> Option<(String, f64)> {
    let mut vars = Vec::new();
    let mut var_cols = Vec::new();
    for col in file.variables.values() {
        let c = table.find(col)?;
        vars.push(table.numbers(c, Check::Finite).ok()?);
        var_cols.push(c);
    }
    let rows: Vec<usize> = (0..table.rows()).collect();
    let mut best: Option<(f64, usize)> = None;
    for v in 0..vars.len() {
        let split = split_columns(table, &vars, &var_cols, v);
        let curves = curves_in(table, &vars, v, &rows, &split);
        // A variable constant along every curve runs along nothing.
        if curves.iter().all(|c| c.len() == 1) {
            continue;
        }
        let mut distinct: Vec<u64> = vars[v].iter().map(|x| x.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // Repeated values within a curve (duplicates) do not fill it more.
        let density = (rows.len() as f64 / (curves.len() * distinct.len()) as f64).min(1.0);
        if density >= 0.25 && best.is_none_or(|(d, _)| density > d) {
            best = Some((density, v));
        }
    }
    best.map(|(density, v)| {
        let name = file.variables.keys().nth(v).expect("an index of variables");
        (name.clone(), density)
    })
}

/// A finished fit: the report and every row's prediction.
#[derive(Debug, Clone)]
pub struct LawFitOutput {
    pub report: LawFitReport,
    /// Per table row: prediction, and whether it was held out.
    pub pred: Vec<f64>,
    pub held_out: Vec<bool>,
    /// Per table row: the loss read.
    pub loss: Vec<f64>,
    /// Per fit (the plain fit, or each group in `report.groups` order): the
    /// rows it was fitted to and its best parameters.
    pub fits: Vec<Fitted>,
    /// Every start's parameters (the law's order), fit by fit, `starts` of
    /// each.
    pub starts: Vec<Vec<f64>>,
}

/// What a fit's progress is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The starts of the fit (of every group).
    Fit,
    /// The bootstrap's replicates.
    Bootstrap,
    /// The starts of every fold of an evaluation (or a comparison).
    Folds,
    /// Tasks handed out to other processes (a Ray cluster): `iteration`
    /// counts those done, `active` those still to come.
    Tasks,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Fit, Stage::Bootstrap, Stage::Folds, Stage::Tasks];

    /// Its name, as a progress callback in Python receives it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Fit => "fit",
            Stage::Bootstrap => "bootstrap",
            Stage::Folds => "eval",
            Stage::Tasks => "tasks",
        }
    }

    /// The line that shows progress `p` of this stage: the command line's
    /// spinner and the Python package's progress line.
    pub fn message(self, p: Progress) -> String {
        match self {
            Stage::Fit => format!(
                "iteration {} · {} starts active · best objective {:.6e}",
                p.iteration, p.active, p.best
            ),
            Stage::Bootstrap => format!(
                "bootstrap: iteration {} · {} replicates active",
                p.iteration, p.active
            ),
            Stage::Folds => format!(
                "iteration {} · {} starts active across all folds",
                p.iteration, p.active
            ),
            Stage::Tasks => format!("{} of {} tasks done", p.iteration, p.iteration + p.active),
        }
    }
}

/// Fit `b` to `table` and, when `boot` asks, bootstrap the fit: the
/// report then holds the bootstrap (each group's, with `by`).
pub fn fit_and_bootstrap(
    b: &BoundLaw,
    table: &Table,
    opts: &LawFitOptions,
    boot: Option<&crate::bootstrap::BootstrapOptions>,
    mut progress: impl FnMut((Stage, Progress)),
) -> anyhow::Result<LawFitOutput> {
    let mut out = fit_table(b, table, opts, |p| progress((Stage::Fit, p)))?;
    if let Some(bo) = boot {
        let reports = bootstrap(b, table, opts, &out.held_out, &out.fits, bo, |p| {
            progress((Stage::Bootstrap, p))
        })?;
        if out.report.groups.is_empty() {
            out.report.bootstrap = reports.into_iter().next();
        } else {
            for (g, r) in out.report.groups.iter_mut().zip(reports) {
                g.bootstrap = Some(r);
            }
        }
    }
    Ok(out)
}

/// The fits `report` holds (a fit of `b` to `table` with `opts`), to
/// bootstrap apart from the fit ([`bootstrap_shard`]): per fit (the plain
/// fit, or each `--by` group's) its training rows and best parameters, as
/// [`LawFitOutput::fits`] has them, and which rows were held out.
pub fn fits_in(
    b: &BoundLaw,
    table: &Table,
    opts: &LawFitOptions,
    report: &LawFitReport,
) -> anyhow::Result<(Vec<Fitted>, Vec<bool>)> {
    let (groups, held) = groups(table, opts)?;
    let best = |params: &IndexMap<String, f64>| -> anyhow::Result<Vec<f64>> {
        b.law
            .params
            .iter()
            .map(|n| {
                params.get(n).copied().ok_or_else(|| {
                    anyhow::anyhow!("the fit has no value of the law's parameter {n}")
                })
            })
            .collect()
    };
    let bests = if report.groups.is_empty() {
        vec![best(&report.params)?]
    } else {
        report
            .groups
            .iter()
            .map(|g| best(&g.params))
            .collect::<anyhow::Result<_>>()?
    };
    if bests.len() != groups.len() {
        bail!(
            "the fit has {} fits but these data and options make {}",
            bests.len(),
            groups.len()
        );
    }
    let fits = groups
        .iter()
        .zip(bests)
        .map(|(g, best)| Fitted {
            rows: g.train.clone(),
            best,
        })
        .collect();
    Ok((fits, held))
}

/// What a fit that stopped after `ran` of up to `most` starts says.
pub(crate) fn early_stop_note(ran: usize, most: usize) -> String {
    format!(
        "ran {ran} of up to {most} starts: a law that sums along the steps runs its starts in \
         waves of {} and stops once they find no new minimum (Boender and Rinnooy Kan's rule); \
         --starts {most} runs them all",
        batch::WAVE
    )
}

/// Fit `b` to `table`.
pub fn fit_table(
    b: &BoundLaw,
    table: &Table,
    opts: &LawFitOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<LawFitOutput> {
    let started = Instant::now();
    if opts.starts == 0 {
        bail!("--starts must be at least 1");
    }
    if opts.profile.is_some() && !opts.by.is_empty() {
        bail!("--profile works on one fit at a time, not with --by");
    }
    let cols = read_columns(b, table, &opts.objective)?;
    let (groups, held) = groups(table, opts)?;
    let law = &b.law;
    // fit.json says what the reader skipped, then how the law was read,
    // as stderr did.
    let mut notes = table.notes.clone();
    notes.push(b.binding.describe());
    notes.extend(b.warning.clone());
    let all_train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    // Each row's --by group, as `groups` made them.
    let mut group_of = vec![0; table.rows()];
    for (i, g) in groups.iter().enumerate() {
        for &r in g.train.iter().chain(&g.test) {
            group_of[r] = i;
        }
    }
    let (space, constants) = law_space(b, &cols, &all_train, &group_of, &opts.fix)?;
    if space.dim() == 0 && opts.profile.is_some() {
        bail!("every parameter is fixed (--fix): there is nothing to profile");
    }
    notes.extend(constants);
    let Batch {
        fits,
        outcomes,
        calls,
        starts,
        rows,
    } = fit_jobs(
        Data {
            b,
            table,
            cols: &cols,
        },
        &space,
        &groups,
        opts,
        None,
        progress,
    )?;

    let mut pred = vec![f64::NAN; table.rows()];
    let mut reports = Vec::new();
    let mut objective_sum = 0.0;
    let data = Data {
        b,
        table,
        cols: &cols,
    };
    for (gi, (g, fit)) in groups.iter().zip(&fits).enumerate() {
        let (polish, identifiability) =
            optimum_reports(data, &space, g, fit, &opts.objective, rows.get(gi));
        predict_into(b, &cols, &fit.params, &g.train, &mut pred);
        predict_into(b, &cols, &fit.params, &g.test, &mut pred);
        if let Some(&r) = g.train.iter().find(|&&r| !pred[r].is_finite()) {
            bail!(
                "the best fit predicts {} at {}: the law overflows there",
                pred[r],
                table.place(r)
            );
        }
        objective_sum += fit.objective * g.train.len() as f64;
        reports.push(GroupReport {
            key: g.key.clone(),
            params: law
                .params
                .iter()
                .cloned()
                .zip(fit.params.iter().copied())
                .collect(),
            objective: fit.objective,
            at_best: fit.at_best,
            metrics: fit_metrics(b, table, &cols, &pred, &g.train, opts.objective.space),
            test: (!g.test.is_empty())
                .then(|| set_metrics(&cols, &pred, &g.test, opts.objective.space)),
            polish: Some(polish),
            identifiability: Some(identifiability),
            bootstrap: None,
        });
    }
    let rows_of =
        |test: bool| -> Vec<usize> { (0..table.rows()).filter(|&r| held[r] == test).collect() };
    let train_rows = rows_of(false);
    let test = opts.test_where.as_ref().map(|s| TestReport {
        protocol: "test-where".into(),
        selector: format!("{}={}", s.column, s.value),
        // Per curve too: papers of laws of whole curves score the mean over
        // held-out curves.
        metrics: fit_metrics(b, table, &cols, &pred, &rows_of(true), opts.objective.space),
    });
    // Held-out rows where the fitted law is not finite score as such
    // (RMSE inf): say where, as `predict` does.
    let off: Vec<usize> = rows_of(true)
        .into_iter()
        .filter(|&r| !pred[r].is_finite())
        .collect();
    if let Some(&first) = off.first() {
        notes.push(format!(
            "the fitted law is not finite at {} held-out row(s) (first at {}, where it is {}): \
             their errors are infinite, and so are the test scores",
            off.len(),
            table.place(first),
            pred[first]
        ));
    }
    let grouped = !opts.by.is_empty();
    // Summed over groups: each group's starts at its own best.
    let at_best = reports.iter().map(|g| g.at_best).sum();
    let ran = outcomes.len() / groups.len().max(1);
    if grouped {
        notes.push(format!(
            "fitted {} groups of --by {} separately, {ran} starts each, in one batch",
            groups.len(),
            opts.by.join(","),
        ));
    }
    if ran < opts.starts && space.dim() > 0 {
        notes.push(early_stop_note(ran, opts.starts));
    }
    // A plain fit's reports are the fit's own; groups keep theirs.
    let (polish, identifiability) = if grouped {
        (None, None)
    } else {
        (reports[0].polish.take(), reports[0].identifiability.take())
    };
    let profile = match (&opts.profile, &identifiability) {
        (Some(req), Some(ident)) => {
            let rows = &groups[0].train;
            Some(crate::profile::profile(
                law,
                &space,
                &|wanted| row_jacobian_of(b, &cols, rows, &opts.objective, wanted),
                &fits[0].polished,
                &outcomes[..opts.starts.min(outcomes.len())]
                    .iter()
                    .map(|o| (o.f, space.to_params(&o.x)))
                    .collect::<Vec<_>>(),
                huber_calibration(&cols, rows, &pred, &opts.objective),
                // The rows the statistic sums over: those of nonzero weight.
                rows.iter().filter(|&&r| cols.weight[r] != 0.0).count(),
                ident,
                opts.objective,
                &req.names,
                req.level,
            )?)
        }
        _ => None,
    };
    // A profile can show what the standard errors do not: a parameter
    // already flagged keeps its flag, others gain the profile's.
    let mut identifiability = identifiability;
    if let (Some(p), Some(ident)) = (&profile, identifiability.as_mut()) {
        let value = |name: &str| {
            let i = law.params.iter().position(|p| p == name);
            i.map_or(f64::NAN, |i| fits[0].polished.params[i])
        };
        for f in crate::profile::flags(p, &value) {
            let open = f.reason.contains("open") || f.reason.contains("unreliable");
            if open || !ident.flagged.iter().any(|g| g.param == f.param) {
                ident.flagged.push(f);
            }
        }
    }
    if grouped {
        notes.extend(unconverged(&reports));
    }
    if opts.device.is_some() {
        notes.push(
            "the starts ran in single precision on the GPU; the best of each fit was refined \
             on the CPU in f64, so fewer starts may count as reaching the best (1e-6)"
                .into(),
        );
    }
    let report = LawFitReport {
        law: b.file.name.clone(),
        law_file: b.text.clone(),
        formula: b.file.formula.clone(),
        variables: b.file.variables.clone(),
        ranges: b
            .law
            .variables
            .iter()
            .zip(&cols.vars)
            .map(|(name, col)| {
                let range = train_rows
                    .iter()
                    .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], &r| {
                        [lo.min(col[r]), hi.max(col[r])]
                    });
                (name.clone(), range)
            })
            .collect(),
        params: if grouped {
            IndexMap::new()
        } else {
            reports[0].params.clone()
        },
        fixed: space
            .rules
            .iter()
            .filter(|r| r.fixed.is_some())
            .map(|r| r.name.clone())
            .collect(),
        objective: ObjectiveReport {
            loss: opts.objective.loss_name().into(),
            space: opts.objective.space_name().into(),
            delta: opts.objective.delta,
            value: objective_sum / train_rows.len().max(1) as f64,
        },
        metrics: fit_metrics(b, table, &cols, &pred, &train_rows, opts.objective.space),
        test,
        by: opts.by.clone(),
        groups: if grouped { reports } else { Vec::new() },
        starts: StartsReport {
            count: outcomes.len(),
            at_best,
            status_counts: status_counts(&outcomes),
            iterations: outcomes.iter().map(|o| o.iterations).max().unwrap_or(0),
            evaluations: calls,
            start_evaluations: outcomes.iter().map(|o| o.evaluations).sum(),
        },
        backend: backend_report(opts),
        seconds: started.elapsed().as_secs_f64(),
        points: train_rows.len(),
        notes,
        polish,
        identifiability,
        profile,
        bootstrap: None,
    };
    Ok(LawFitOutput {
        report,
        pred,
        held_out: held,
        loss: cols.loss,
        starts: starts.iter().map(|x| space.to_params(x)).collect(),
        fits: groups
            .iter()
            .zip(fits)
            .map(|(g, f)| Fitted {
                rows: g.train.clone(),
                best: f.params,
            })
            .collect(),
    })
}

/// For a Huber fit, sum w psi'(r) / sum w psi(r)^2 over `rows` at the
/// predictions `pred`: what scales a profile's drop in fit into a
/// chi-squared statistic (`None` for mse).
fn huber_calibration(cols: &Columns, rows: &[usize], pred: &[f64], o: &Objective) -> Option<f64> {
    if o.loss != LossKind::Huber {
        return None;
    }
    let (mut slope, mut square) = (0.0, 0.0);
    for &r in rows {
        let w = cols.weight[r];
        let res = match o.space {
            Space::Linear => cols.loss[r] - pred[r],
            Space::Log => cols.loss[r].ln() - pred[r].ln(),
        };
        if w == 0.0 || !res.is_finite() {
            continue;
        }
        let (_, psi) = o.rho(res);
        slope += if res.abs() <= o.delta { w } else { 0.0 };
        square += w * psi * psi;
    }
    (square > 0.0)
        .then_some(slope / square)
        .or(Some(f64::INFINITY))
}

#[cfg(test)]
mod tests {
    use super::batch::{fit_jobs_by, Method};
    use super::*;
    use crate::law::builtin_law;

    /// A plain CPU fit's options: `starts` starts from `seed`.
    fn options(objective: Objective, starts: usize, seed: u64) -> LawFitOptions {
        LawFitOptions {
            objective,
            fix: Vec::new(),
            starts,
            early_stop: false,
            seed,
            lbfgs: optim::Options::default(),
            by: Vec::new(),
            test_where: None,
            profile: None,
            device: None,
        }
    }

    /// Levenberg-Marquardt (on per-row Jacobians and on the grid's
    /// Gauss-Newton moments) and L-BFGS from the same starts on a
    /// built-in law reach the same best objective, in linear and in log
    /// space; on this shared grid the fit picks the grid's moments.
    #[test]
    fn least_squares_and_lbfgs_agree_on_a_builtin_law() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        let mut text = String::from("run,N,tokens,loss\n");
        let mut k = 0u64;
        for n in [5e7f64, 1e8, 2e8, 4e8, 8e8] {
            for i in 1..=30 {
                let d = 5e8 * i as f64;
                k += 1;
                let wobble = 1.0 + 0.003 * (k as f64 * 0.7).sin();
                let l = (1.8 + 400.0 / n.powf(0.34) + 900.0 / d.powf(0.29)) * wobble;
                text.push_str(&format!("m{n},{n},{d},{l}\n"));
            }
        }
        std::fs::write(&path, text).unwrap();
        let mut table = Table::read(&path).unwrap();
        let file = builtin_law("chinchilla").unwrap();
        let b = bind(file, "", "chinchilla", &mut table, &BindOptions::default()).unwrap();
        for space in [Space::Linear, Space::Log] {
            let opts = options(
                Objective {
                    space,
                    ..Objective::default()
                },
                16,
                3,
            );
            let cols = read_columns(&b, &table, &opts.objective).unwrap();
            let (jobs, _) = groups(&table, &opts).unwrap();
            let space_ = law_space(&b, &cols, &jobs[0].train, &vec![0; table.rows()], &[])
                .unwrap()
                .0;
            let data = Data {
                b: &b,
                table: &table,
                cols: &cols,
            };
            let best = |method| {
                fit_jobs_by(
                    data,
                    &space_,
                    &jobs,
                    &opts,
                    None,
                    |_| {},
                    method,
                    Vec::new(),
                )
                .unwrap()
                .fits[0]
                    .objective
            };
            assert_eq!(
                super::batch::method(data, &jobs, &opts).0,
                Method::GridLeastSquares
            );
            let lbfgs = best(Method::Lbfgs);
            for method in [Method::LeastSquares, Method::GridLeastSquares] {
                let lm = best(method);
                assert!(
                    (lm - lbfgs).abs() <= 1e-9 * lbfgs,
                    "{space:?}: {method:?} {lm:e}, L-BFGS {lbfgs:e}"
                );
            }
        }
    }

    /// A linear parameter's declared start range is honoured: every other
    /// start takes A from it (here one value), the others solve for it.
    #[test]
    fn declared_starts_of_linear_parameters_are_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        let mut text = String::from("run,N,tokens,loss\n");
        for n in [5e7f64, 1e8, 2e8] {
            for i in 1..=10 {
                let d = 5e8 * i as f64;
                let l = 1.8 + 400.0 / n.powf(0.34) + 900.0 / d.powf(0.29);
                text.push_str(&format!("m{n},{n},{d},{l}\n"));
            }
        }
        std::fs::write(&path, text).unwrap();
        let mut table = Table::read(&path).unwrap();
        let law = "name = \"t\"\ndescription = \"t\"\nformula = \"E + A/N^alpha + B/D^beta\"\n\
                   [variables]\nN = \"N\"\nD = \"tokens\"\n[params.A]\nstart = [7, 7]\n";
        let file = LawFile::parse(law, "t.toml").unwrap();
        let b = bind(file, law, "t.toml", &mut table, &BindOptions::default()).unwrap();
        let opts = options(Objective::default(), 8, 1);
        let cols = read_columns(&b, &table, &opts.objective).unwrap();
        let (jobs, _) = groups(&table, &opts).unwrap();
        let space = law_space(&b, &cols, &jobs[0].train, &vec![0; table.rows()], &[])
            .unwrap()
            .0;
        let data = Data {
            b: &b,
            table: &table,
            cols: &cols,
        };
        let batch = fit_jobs_by(
            data,
            &space,
            &jobs,
            &opts,
            None,
            |_| {},
            Method::LeastSquares,
            Vec::new(),
        )
        .unwrap();
        let a = b.law.params.iter().position(|p| p == "A").unwrap();
        for (k, x) in batch.starts.iter().enumerate() {
            let got = space.to_params(x)[a];
            if k % 2 == 1 {
                assert!((got - 7.0).abs() < 1e-9, "start {k}: A = {got}");
            } else {
                assert!((got - 7.0).abs() > 1e-3, "start {k}: A = {got}, not solved");
            }
        }
    }
}
