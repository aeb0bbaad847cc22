//! `sweepfit bench`: how fast the backends evaluate the objective and its
//! gradient as the work grows, their fixed cost per call, and how long
//! whole fits take on each.
//!
//! A point-evaluation is one point for one parameter vector (value and full
//! gradient). Throughput cells run on simulated looplm20 sweeps; a cell is
//! skipped, not run, when smaller cells say one evaluation would take longer
//! than the budget, so the full grid finishes on slow machines too.
//!
//! With a law ([`run_law`], `sweepfit bench --law`), the cells time that
//! law's evaluators instead, the CPU's [`CpuLaw`] and the GPU's
//! [`GpuLaw`], on synthetic sweeps of its variables ([`BenchLaw::sweep`]),
//! and no fits run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use rayon::prelude::*;

use crate::backend::gpu::{self, AdapterFilter, AdapterSummary, GpuDevice, GpuLaw};
use crate::backend::{CpuLaw, CpuLayout, Evaluator};
use crate::bootstrap::{BootstrapOptions, Resample};
use crate::data::{self, Dataset, Filter, ReadOptions, Table};
use crate::law::plan::{Plan, Sweep};
use crate::law::{builtin_law, builtin_names, CompiledLaw, LawFile};
use crate::lawfit::{self, LawFitOptions};
use crate::objective::Objective;
use crate::report::format_count;
use crate::simulate::{self, SimOptions, LOOPLM20_N, LOOPLM20_T};

/// Curves of the looplm20 sweep: points per curve = points / this.
const CURVES: usize = LOOPLM20_N.len() * LOOPLM20_T.len();
/// Relative size of the per-start parameter perturbations.
const PERTURBATION: f64 = 0.02;
/// Points per curve of a law's benchmark sweeps (fewer points: one curve).
pub const LAW_CURVE_POINTS: usize = 500;
/// Every parameter of a benched law, before the per-start perturbations.
pub const LAW_PARAM: f64 = 0.6;
/// A law's benchmark sweeps draw every variable from [1, this].
const LAW_VAR_MAX: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Sweep sizes of the throughput grid, in points.
    pub points: Vec<usize>,
    /// Parameter vectors per evaluation of the throughput grid.
    pub starts: Vec<usize>,
    /// Timed evaluations of a cell repeat until this much time has passed.
    pub seconds_per_cell: f64,
    /// Skip cells estimated to take longer than this per evaluation.
    pub max_eval_seconds: f64,
    /// Sweep size of the per-dispatch overhead measurement (1 start).
    pub overhead_points: usize,
    /// Run the end-to-end fits.
    pub fits: bool,
    /// Bench the GPU when there is an adapter.
    pub gpu: bool,
    /// Manifest of the Pythia sweep (its logs live in ../shared/data).
    pub pythia_manifest: PathBuf,
    /// Draw a progress bar on stderr (hidden when it is not a terminal).
    pub progress: bool,
}

impl BenchOptions {
    pub fn full() -> BenchOptions {
        BenchOptions {
            points: vec![10_000, 100_000, 1_000_000, 10_000_000],
            starts: vec![1, 16, 128, 1024, 4096],
            seconds_per_cell: 0.5,
            max_eval_seconds: 2.0,
            overhead_points: 1000,
            fits: true,
            gpu: true,
            pythia_manifest: default_pythia_manifest(),
            progress: true,
        }
    }

    /// A small grid and short cells, for smoke tests.
    /// A smoke test that takes seconds: two sizes, two start counts, short
    /// cells and no end-to-end fits (on a software adapter those alone take
    /// minutes; they belong to the full run).
    pub fn quick() -> BenchOptions {
        BenchOptions {
            points: vec![10_000, 100_000],
            starts: vec![1, 128],
            seconds_per_cell: 0.2,
            fits: false,
            ..BenchOptions::full()
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.points.is_empty() || self.starts.is_empty() {
            bail!("--points and --starts need at least one value each");
        }
        if self.points.iter().chain(&self.starts).any(|&v| v == 0) {
            bail!("--points and --starts must be positive");
        }
        for (name, v) in [
            ("--seconds-per-cell", self.seconds_per_cell),
            ("--max-eval-seconds", self.max_eval_seconds),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("{name} must be a non-negative number, got {v}");
            }
        }
        Ok(())
    }
}

/// The repository's Pythia manifest: the benchmark is run from a checkout,
/// so the source location works from any directory.
pub fn default_pythia_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pythia_manifest.csv")
}

/// A count such as "1000", "1e6" or "2.5e4" (clap value parser).
pub fn parse_count(s: &str) -> Result<usize, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !(v >= 1.0 && v.fract() == 0.0 && v <= 1e15) {
        return Err(format!("'{s}' is not a positive whole number"));
    }
    Ok(v as usize)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}

/// One backend on one (points, starts) cell.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// "cpu" or "gpu".
    pub backend: String,
    pub device: String,
    pub points: usize,
    pub starts: usize,
    pub status: Status,
    /// Timed evaluations (after one warm-up).
    pub evaluations: usize,
    pub seconds_per_eval: Option<f64>,
    pub point_evals_per_second: Option<f64>,
    /// For skipped cells: the estimate that exceeded the budget.
    pub estimated_seconds_per_eval: Option<f64>,
    /// GPU rows: GPU point-evals/s divided by the CPU's on the same cell
    /// (above 1: the GPU is faster).
    pub gpu_speedup: Option<f64>,
    pub note: Option<String>,
}

/// One end-to-end fit on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct FitRun {
    pub sweep: String,
    pub backend: String,
    pub status: Status,
    pub points: Option<usize>,
    pub starts: Option<usize>,
    /// Building the backend (GPU: device, pipelines, upload).
    pub setup_seconds: Option<f64>,
    /// The fit's own seconds (lawfit::fit_table): evaluators, starts,
    /// optimisation, polish and reports.
    pub seconds: Option<f64>,
    pub best_objective: Option<f64>,
    pub at_best: Option<usize>,
    /// GPU rows: CPU seconds divided by GPU seconds (above 1: GPU faster).
    pub gpu_speedup: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuStatus {
    /// The adapter benched, as "name (type, API)"; None without one.
    pub device: Option<String>,
    /// Why there is no GPU column.
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub points: Vec<usize>,
    pub starts: Vec<usize>,
    pub seconds_per_cell: f64,
    pub max_eval_seconds: f64,
    pub overhead_points: usize,
    pub fits: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuStatus {
    /// Rayon threads the CPU backend uses.
    pub threads: usize,
}

/// Everything `sweepfit bench --json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// UTC, "YYYY-MM-DD HH:MM UTC".
    pub date: String,
    pub sweepfit_version: String,
    pub cpu: CpuStatus,
    pub gpu: GpuStatus,
    pub settings: Settings,
    /// One start on a tiny sweep: the fixed cost of one optimiser iteration.
    pub overhead: Vec<Measurement>,
    pub throughput: Vec<Measurement>,
    pub fits: Vec<FitRun>,
    /// The law benched (`--law`); absent for the default, the looplm law on
    /// the simulated looplm20 sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub law: Option<LawInfo>,
}

/// The law of a `--law` benchmark and the sweeps its cells ran on.
#[derive(Debug, Clone, Serialize)]
pub struct LawInfo {
    /// The built-in law's name, or the formula as given.
    pub name: String,
    pub formula: String,
    pub variables: Vec<String>,
    /// The variable the curves run along.
    pub axis: String,
    pub params: Vec<String>,
    /// How the sweeps and parameter vectors are made, in words.
    pub sweep: String,
}

/// A law to bench: compiled, with the variable its sweeps' curves run
/// along.
#[derive(Debug, Clone)]
pub struct BenchLaw {
    /// The built-in law's name, or the formula as given.
    pub name: String,
    pub formula: String,
    pub law: CompiledLaw,
    /// The axis variable, an index into `law.variables`.
    pub axis: usize,
    /// Sweeps are the simulated looplm20 sweep (the LoopLM paper's 20
    /// curves) at the simulation's parameters, not synthetic ones.
    pub looplm20: bool,
}

impl BenchLaw {
    /// `file` compiled (`origin` starts its errors), its curves along its
    /// axis or, when it names none, along its last variable. Errors when
    /// the law has no variable or no parameter, or is not finite on the
    /// benchmark's sweep.
    pub fn new(file: &LawFile, name: &str, origin: &str) -> anyhow::Result<BenchLaw> {
        let law = file.compile(origin)?;
        if law.variables.is_empty() {
            bail!("{origin}: the law has no variables, so there is no sweep to evaluate it on");
        }
        if law.params.is_empty() {
            bail!("{origin}: the law has no parameters, so there is no gradient to evaluate");
        }
        // A variable the value does not depend on would make the sweep's
        // shape (and its axis) a pretence.
        let used = law.graph.var_masks()[law.value as usize];
        if let Some(v) = (0..law.variables.len()).find(|&v| used & (1 << v) == 0) {
            bail!(
                "{origin}: the law does not depend on its variable {}",
                law.variables[v]
            );
        }
        let axis = match &file.axis {
            None => law.variables.len() - 1,
            Some(a) => law.variables.iter().position(|v| v == a).ok_or_else(|| {
                anyhow!(
                    "{origin}: the axis {a} is not a variable (the variables are {})",
                    law.variables.join(", ")
                )
            })?,
        };
        let bench = BenchLaw {
            name: name.to_string(),
            formula: file.formula.clone(),
            law,
            axis,
            looplm20: false,
        };
        // The targets are the law itself: where it is undefined, every
        // cell would time NaNs.
        let sweep = bench.sweep(2 * LAW_CURVE_POINTS, 0);
        if let Some(i) = sweep.y.iter().position(|y| !y.is_finite()) {
            let nv = sweep.n_vars;
            let at: Vec<String> = bench
                .law
                .variables
                .iter()
                .zip(&sweep.vars[i * nv..][..nv])
                .map(|(n, v)| format!("{n} = {v:.3}"))
                .collect();
            bail!(
                "{origin}: the law is not finite at {} with every parameter {LAW_PARAM}; \
                 the benchmark takes every variable in [1, {LAW_VAR_MAX}]",
                at.join(", ")
            );
        }
        Ok(bench)
    }

    /// A built-in law by name.
    pub fn builtin(name: &str) -> anyhow::Result<BenchLaw> {
        let file = builtin_law(name).ok_or_else(|| {
            anyhow!(
                "no built-in law is named {name} (they are {})",
                builtin_names().join(", ")
            )
        })?;
        BenchLaw::new(&file, name, &format!("laws/{name}.toml (built in)"))
    }

    /// The looplm law on the simulated looplm20 sweeps: what `sweepfit
    /// bench` times without `--law`.
    pub fn looplm20() -> anyhow::Result<BenchLaw> {
        Ok(BenchLaw {
            looplm20: true,
            ..BenchLaw::builtin("looplm")?
        })
    }

    /// Points of the sweep [`BenchLaw::sweep`] builds for `requested`.
    pub fn points_for(&self, requested: usize) -> usize {
        if self.looplm20 {
            (requested / CURVES).max(1) * CURVES
        } else {
            BenchLaw::points(requested)
        }
    }

    /// Points of a synthetic sweep built for `requested`: whole curves of
    /// [`LAW_CURVE_POINTS`], or one shorter curve.
    pub fn points(requested: usize) -> usize {
        if requested < LAW_CURVE_POINTS {
            requested.max(1)
        } else {
            requested / LAW_CURVE_POINTS * LAW_CURVE_POINTS
        }
    }

    /// A sweep of about `points` points (see [`BenchLaw::points`]): curves
    /// of [`LAW_CURVE_POINTS`] points along the axis, all on one grid of
    /// values from 1 to 10 (evenly spaced in log), every other variable
    /// constant along a curve and drawn for it from [1, 10]. Targets are
    /// the law at every parameter [`LAW_PARAM`], with 1% noise; the weights
    /// are equal. So the CPU runs its grid layout (axis nodes once per
    /// grid value) and the GPU hoists curve nodes, as on real sweeps.
    pub fn sweep(&self, points: usize, seed: u64) -> Sweep {
        if self.looplm20 {
            return looplm20_sweep(points, seed);
        }
        let points = BenchLaw::points(points);
        let per = points.min(LAW_CURVE_POINTS);
        let n_curves = points / per;
        let nv = self.law.variables.len();
        let grid: Vec<f64> = (0..per)
            .map(|i| LAW_VAR_MAX.powf(i as f64 / (per - 1).max(1) as f64))
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut vars = Vec::with_capacity(points * nv);
        for _ in 0..n_curves {
            let mut x: Vec<f64> = (0..nv)
                .map(|_| rng.random_range(1.0..LAW_VAR_MAX))
                .collect();
            for &a in &grid {
                x[self.axis] = a;
                vars.extend_from_slice(&x);
            }
        }
        let truth = vec![LAW_PARAM; self.law.params.len()];
        let mut y: Vec<f64> = vars
            .par_chunks(nv)
            .map(|x| self.law.eval(x, &truth))
            .collect();
        for v in &mut y {
            *v *= 1.0 + 0.01 * rng.random_range(-1.0..=1.0);
        }
        let curves = (0..n_curves).map(|c| c * per..(c + 1) * per).collect();
        let w = vec![1.0 / points as f64; points];
        Sweep::new(nv, curves, vars, y, w, Some(self.axis as u16))
    }

    /// `k` parameter vectors, flat in the law's parameter order: the first
    /// all [`LAW_PARAM`], the others differ by up to 2% in every entry.
    pub fn params(&self, k: usize, seed: u64) -> Vec<f64> {
        let np = self.law.params.len();
        // The looplm20 sweeps' own parameters, in the law's order.
        let truth: Vec<f64> = if self.looplm20 {
            let by_name: Vec<(&str, f64)> = simulate::looplm20_truth_by_name().collect();
            self.law
                .params
                .iter()
                .map(|p| {
                    by_name
                        .iter()
                        .find(|(n, _)| n == p)
                        .map_or(LAW_PARAM, |t| t.1)
                })
                .collect()
        } else {
            vec![LAW_PARAM; np]
        };
        let mut rng = StdRng::seed_from_u64(seed);
        (0..k * np)
            .map(|i| {
                let d = if i < np {
                    0.0
                } else {
                    PERTURBATION * rng.random_range(-1.0..=1.0)
                };
                truth[i % np] * (1.0 + d)
            })
            .collect()
    }

    /// The report's description of the law and its sweeps.
    pub fn info(&self) -> LawInfo {
        if self.looplm20 {
            return LawInfo {
                name: self.name.clone(),
                formula: self.formula.clone(),
                variables: self.law.variables.clone(),
                axis: self.law.variables[self.axis].clone(),
                params: self.law.params.clone(),
                sweep: format!(
                    "the simulated looplm20 sweep (20 curves, T = 1..4 for 5 sizes, shared \
                     token grid) at its parameters, up to {}% off per start; MSE, linear space",
                    PERTURBATION * 100.0
                ),
            };
        }
        let vars = &self.law.variables;
        let axis = vars[self.axis].clone();
        let others: Vec<&str> = vars
            .iter()
            .filter(|v| **v != axis)
            .map(String::as_str)
            .collect();
        let per_curve = if others.is_empty() {
            String::new()
        } else {
            format!(
                ", {} drawn per curve from [1, {LAW_VAR_MAX}]",
                others.join(", ")
            )
        };
        LawInfo {
            name: self.name.clone(),
            formula: self.formula.clone(),
            variables: vars.clone(),
            axis: axis.clone(),
            params: self.law.params.clone(),
            sweep: format!(
                "curves of {LAW_CURVE_POINTS} points along {axis} on one shared grid \
                 (1 to {LAW_VAR_MAX}, log-spaced){per_curve}; every parameter {LAW_PARAM}, \
                 up to {}% off per start; MSE, linear space",
                PERTURBATION * 100.0
            ),
        }
    }
}

/// The simulated looplm20 sweep with about `points` points (a multiple of
/// 20, noise from `seed`), laid out for the looplm law as a fit lays it
/// out.
pub fn looplm20_sweep(points: usize, seed: u64) -> Sweep {
    let ds = simulate::simulate_looplm20(&SimOptions {
        points_per_curve: (points / CURVES).max(1),
        seed,
        ..SimOptions::default()
    });
    let table = Table::from_dataset(&ds, Path::new("the simulated looplm20 sweep"));
    let (bound, table) = looplm(&table).expect("the looplm law binds its own sweep");
    lawfit::table_sweep(&bound, &table, &Objective::default())
        .expect("the simulated sweep is finite")
}

/// One warm-up evaluation (sizes GPU buffers, warms caches), checked for
/// non-finite values, then timed repeats until `seconds` have passed, at
/// least one. `eval(check)` evaluates once, and with `check` fails on a
/// non-finite objective or gradient. Returns the number of timed
/// evaluations and the mean seconds per evaluation.
fn time_evaluations(
    seconds: f64,
    mut eval: impl FnMut(bool) -> anyhow::Result<()>,
) -> anyhow::Result<(usize, f64)> {
    eval(true)?;
    let t0 = Instant::now();
    let mut n = 0;
    loop {
        eval(false)?;
        n += 1;
        if t0.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    Ok((n, t0.elapsed().as_secs_f64() / n as f64))
}

/// One backend's evaluator of one sweep, as the overhead and throughput
/// cells time it.
struct Timed<'a> {
    /// What the measurement names as the device (the CPU's layout, the
    /// GPU adapter).
    device: String,
    /// Evaluate the first `starts` parameter vectors of the sweep's batch;
    /// with `check`, fail on a non-finite objective or gradient.
    eval: Box<dyn FnMut(usize, bool) -> anyhow::Result<()> + 'a>,
}

/// The CPU's and (with an adapter) the GPU's evaluators of one sweep;
/// None where none was asked for.
struct Evaluators<'a> {
    cpu: Option<anyhow::Result<Timed<'a>>>,
    gpu: Option<anyhow::Result<Timed<'a>>>,
}

/// What the overhead and throughput sections evaluate: sweeps of a
/// requested size, and the backends' evaluators of them.
trait Workload {
    /// Points of the sweep built for `requested` points.
    fn points(&self, requested: usize) -> usize;

    /// Evaluators of the `points`-point sweep (as [`Workload::points`]
    /// gives) for up to `starts` parameter vectors: the CPU's when `cpu`,
    /// the GPU's when `gpu` (there is an adapter).
    fn evaluators(
        &self,
        points: usize,
        starts: usize,
        cpu: bool,
        gpu: bool,
        devices: &Devices,
        bar: &ProgressBar,
    ) -> Evaluators<'_>;
}

/// Cells measured so far on one backend, to decide whether a larger one
/// fits the budget.
#[derive(Default)]
struct History {
    /// (points, starts, seconds per evaluation)
    measured: Vec<(usize, usize, f64)>,
    /// The backend's per-dispatch overhead (seconds per evaluation of the
    /// overhead cell): a fixed cost, not scaled with the work.
    overhead: f64,
}

impl History {
    /// None: run the cell. Some(estimate, reason): skip it. Time per
    /// evaluation grows with points and starts, so a smaller cell over the
    /// budget rules a larger one out. Otherwise the time is scaled linearly
    /// from the largest smaller cells only (none of them dominated by
    /// another): small cells that fit in cache run faster per
    /// point-evaluation and would underestimate; of those, the lowest.
    /// Only the time above the per-dispatch overhead is scaled: a GPU's
    /// overhead cell is nearly all fixed cost, and scaled as work it ruled
    /// out every large cell asked for without smaller ones.
    fn over_budget(
        &self,
        points: usize,
        starts: usize,
        budget: f64,
    ) -> Option<(Option<f64>, String)> {
        let smaller = || {
            self.measured
                .iter()
                .filter(move |(p, s, _)| *p <= points && *s <= starts)
        };
        if let Some((p, s, t)) = smaller().find(|(_, _, t)| *t > budget) {
            return Some((
                None,
                format!(
                    "the smaller cell {} x {} already took {} per evaluation",
                    format_count(*p as f64),
                    s,
                    fmt_time(*t)
                ),
            ));
        }
        let dominated = |a: &(usize, usize, f64)| {
            smaller().any(|b| b.0 >= a.0 && b.1 >= a.1 && (b.0, b.1) != (a.0, a.1))
        };
        let est = smaller()
            .filter(|a| !dominated(a))
            .map(|(p, s, t)| {
                let scale = (points as f64 / *p as f64) * (starts as f64 / *s as f64);
                let fixed = self.overhead.min(*t);
                fixed + (t - fixed) * scale
            })
            .fold(f64::INFINITY, f64::min);
        (est.is_finite() && est > budget).then(|| {
            (
                Some(est),
                format!(
                    "estimated {} per evaluation > budget {}",
                    fmt_time(est),
                    fmt_time(budget)
                ),
            )
        })
    }
}

fn row(backend: &str, device: &str, points: usize, starts: usize, status: Status) -> Measurement {
    Measurement {
        backend: backend.into(),
        device: device.into(),
        points,
        starts,
        status,
        evaluations: 0,
        seconds_per_eval: None,
        point_evals_per_second: None,
        estimated_seconds_per_eval: None,
        gpu_speedup: None,
        note: None,
    }
}

/// A law's evaluators, CPU and GPU, on its benchmark sweeps.
struct LawWork<'a> {
    law: &'a BenchLaw,
    /// The GPU, opened once for every sweep and fit (with an adapter).
    device: &'a GpuOpened,
}

impl Workload for LawWork<'_> {
    fn points(&self, requested: usize) -> usize {
        self.law.points_for(requested)
    }

    fn evaluators(
        &self,
        points: usize,
        starts: usize,
        cpu: bool,
        gpu: bool,
        devices: &Devices,
        bar: &ProgressBar,
    ) -> Evaluators<'_> {
        let label = format_count(points as f64);
        bar.set_message(format!("building a {label}-point sweep"));
        let sweep = self.law.sweep(points, 0);
        let params = self.law.params(starts, 0);
        let np = self.law.law.params.len();
        let plan = Plan::for_sweep(&self.law.law, &sweep);
        let objective = Objective::default();
        let gpu = gpu.then(|| {
            bar.set_message(format!("uploading the {label}-point sweep to the GPU"));
            let dev = match &self.device {
                Some((Ok(d), _)) => d,
                Some((Err(e), _)) => bail!("cannot open the GPU: {e:#}"),
                None => bail!("no GPU device"),
            };
            let g = GpuLaw::new(dev, &plan, &sweep, objective, None)?;
            let device = format!("{}, {}", devices.name("gpu"), g.describe_layout());
            Ok(timed(device, np, params.clone(), Box::new(g)))
        });
        let cpu = cpu.then(|| {
            let grid = CpuLaw::new(plan, &sweep, objective)
                .map_err(|e| anyhow!("the CPU evaluator refuses the sweep: {e}"))?;
            let device = format!(
                "{} threads, f64, {}",
                rayon::current_num_threads(),
                match grid.layout() {
                    CpuLayout::Grid => format!(
                        "shared {} grid ({} curves x {} values)",
                        self.law.law.variables[self.law.axis],
                        sweep.curves.len(),
                        sweep.axis_values.len()
                    ),
                    CpuLayout::Points => format!("point layout ({} points)", sweep.points()),
                    CpuLayout::Table => format!("table layout ({} rows)", sweep.points()),
                }
            );
            Ok(timed(device, np, params, Box::new(grid)))
        });
        Evaluators { cpu, gpu }
    }
}

/// A twin (through the evaluator interface) timed on `params` (flat,
/// `np` per vector; a prefix of them per cell).
fn timed<'a>(
    device: String,
    np: usize,
    params: Vec<f64>,
    mut ev: Box<dyn Evaluator + 'a>,
) -> Timed<'a> {
    let k = params.len() / np;
    let (mut f, mut g) = (vec![0.0; k], vec![0.0; k * np]);
    Timed {
        device,
        eval: Box::new(move |starts, check| {
            let (f, g) = (&mut f[..starts], &mut g[..starts * np]);
            ev.evaluate(&params[..starts * np], f, g)?;
            let finite =
                |i: usize| f[i].is_finite() && g[i * np..][..np].iter().all(|v| v.is_finite());
            if let Some(i) = (0..starts).find(|&i| check && !finite(i)) {
                bail!("start {i}: non-finite objective or gradient at the benchmark's parameters");
            }
            Ok(())
        }),
    }
}

/// Time `e` on its first `starts` parameter vectors of a `points`-point
/// sweep, as backend `kind`.
fn measure(
    kind: &str,
    e: &mut Timed,
    points: usize,
    starts: usize,
    seconds: f64,
    history: &mut History,
) -> Measurement {
    match time_evaluations(seconds, |check| (e.eval)(starts, check)) {
        Ok((n, t)) => {
            history.measured.push((points, starts, t));
            Measurement {
                evaluations: n,
                seconds_per_eval: Some(t),
                point_evals_per_second: Some(points as f64 * starts as f64 / t),
                ..row(kind, &e.device, points, starts, Status::Ok)
            }
        }
        Err(err) => failed(kind, &e.device, points, starts, &err),
    }
}

/// The backends of one benchmark run: the CPU always, the GPU adapter
/// when there is one.
struct Devices {
    adapter: Option<wgpu::Adapter>,
    gpu_name: Option<String>,
}

impl Devices {
    /// The GPU device, opened once, and the seconds that took; None
    /// without an adapter.
    fn device(&self) -> GpuOpened {
        self.adapter.as_ref().map(|a| {
            let t0 = Instant::now();
            let d = GpuDevice::open(a);
            (d, t0.elapsed().as_secs_f64())
        })
    }

    /// What a row of backend `kind` names as its device before there is
    /// an evaluator to ask: the GPU adapter, nothing for the CPU.
    fn name(&self, kind: &str) -> String {
        match kind {
            "gpu" => self.gpu_name.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Backend kinds benched: "cpu", then "gpu" with an adapter.
    fn kinds(&self) -> &'static [&'static str] {
        if self.adapter.is_some() {
            &["cpu", "gpu"]
        } else {
            &["cpu"]
        }
    }
}

/// Run the benchmark. Messages for the user (no GPU) go to stderr.
pub fn run(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    run_on(opts, None)
}

/// Run the benchmark of `law`'s evaluators: the overhead and throughput
/// sections on its sweeps ([`BenchLaw::sweep`]), no fits.
pub fn run_law(opts: &BenchOptions, law: &BenchLaw) -> anyhow::Result<BenchReport> {
    run_on(opts, Some(law))
}

fn run_on(opts: &BenchOptions, law: Option<&BenchLaw>) -> anyhow::Result<BenchReport> {
    opts.validate()?;
    // The fits are of the LoopLM law, so a law's benchmark runs none.
    let run_fits = opts.fits && law.is_none();
    let mut points = opts.points.clone();
    let mut starts = opts.starts.clone();
    // Ascending, so that smaller cells run first and bound the larger.
    points.sort_unstable();
    points.dedup();
    starts.sort_unstable();
    starts.dedup();
    // Refused before any cell runs, as fit refuses what memory cannot
    // hold: the largest sweep (variables, targets, weights, and the
    // evaluators' copies, about four in all) and the largest batch
    // (parameters, objectives and gradients, about four copies too).
    let (nv, np) = law.map_or((3, 10), |l| (l.law.variables.len(), l.law.params.len()));
    let (pmax, kmax) = (
        *points.last().expect("validated non-empty") as f64,
        *starts.last().expect("validated non-empty") as f64,
    );
    crate::memory::ensure_fits(
        &format!("bench's largest cell ({pmax:.0} points, {kmax:.0} starts)"),
        4.0 * 8.0 * (pmax * (nv + 2) as f64 + kmax * (2 * np + 1) as f64),
    )?;

    // Any adapter, software ones included, as `--backend gpu` accepts.
    let (adapter, unavailable) = if opts.gpu {
        match gpu::instance().and_then(|i| gpu::select_adapter(&i, AdapterFilter::Any)) {
            Ok(a) => (Some(a), None),
            Err(e) => {
                let why = format!("{e:#}");
                // Best effort: a broken stderr must not stop the benchmark.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("note: no GPU to bench ({why}); benching the CPU only\n").as_bytes(),
                );
                (None, Some(why))
            }
        }
    } else {
        (None, Some("disabled with --no-gpu".to_string()))
    };
    let gpu_name = adapter.as_ref().map(|a| AdapterSummary::of(a).short());
    let devices = Devices { adapter, gpu_name };
    let n_backends = devices.kinds().len() as u64;

    let steps = n_backends * (1 + (points.len() * starts.len()) as u64)
        + if run_fits { 3 * n_backends } else { 0 };
    let bar = if opts.progress {
        ProgressBar::new(steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));

    // Without a law: the looplm law on the simulated looplm20 sweeps.
    let looplm20 = match law {
        None => Some(BenchLaw::looplm20()?),
        Some(_) => None,
    };
    let benched = law.or(looplm20.as_ref()).expect("a law or looplm20");
    if devices.adapter.is_some() {
        bar.set_message("opening the GPU");
    }
    let device = devices.device();
    let work: Box<dyn Workload> = Box::new(LawWork {
        law: benched,
        device: &device,
    });
    let mut histories = [History::default(), History::default()];
    let overhead = bench_overhead(opts, work.as_ref(), &devices, &mut histories, &bar);
    let throughput = bench_throughput(
        opts,
        work.as_ref(),
        &points,
        &starts,
        &devices,
        &mut histories,
        &bar,
    );
    let fits = if run_fits {
        bench_fits(opts, &device, &bar)
    } else {
        vec![]
    };
    bar.finish_and_clear();

    Ok(BenchReport {
        date: utc_now(),
        sweepfit_version: env!("CARGO_PKG_VERSION").to_string(),
        cpu: CpuStatus {
            threads: rayon::current_num_threads(),
        },
        gpu: GpuStatus {
            device: devices.gpu_name.clone(),
            unavailable,
        },
        settings: Settings {
            points,
            starts,
            seconds_per_cell: opts.seconds_per_cell,
            max_eval_seconds: opts.max_eval_seconds,
            overhead_points: opts.overhead_points,
            fits: run_fits,
        },
        overhead,
        throughput,
        fits,
        law: law.map(BenchLaw::info),
    })
}

fn bench_overhead(
    opts: &BenchOptions,
    work: &dyn Workload,
    devices: &Devices,
    histories: &mut [History; 2],
    bar: &ProgressBar,
) -> Vec<Measurement> {
    let points = work.points(opts.overhead_points);
    bar.set_message(format!("per-dispatch overhead ({points} points, 1 start)"));
    let evs = work.evaluators(points, 1, true, devices.adapter.is_some(), devices, bar);
    let mut rows = Vec::new();
    for ((kind, ev), history) in devices
        .kinds()
        .iter()
        .zip([evs.cpu, evs.gpu])
        .zip(histories)
    {
        bar.set_message(format!(
            "per-dispatch overhead ({points} points, 1 start) on the {}",
            kind.to_uppercase()
        ));
        rows.push(match ev {
            Some(Ok(mut e)) => {
                let m = measure(kind, &mut e, points, 1, opts.seconds_per_cell, history);
                history.overhead = m.seconds_per_eval.unwrap_or(0.0);
                m
            }
            Some(Err(e)) => failed(kind, &devices.name(kind), points, 1, &e),
            None => unreachable!("every backend benched has an evaluator"),
        });
        bar.inc(1);
    }
    rows
}

fn failed(
    backend: &str,
    device: &str,
    points: usize,
    starts: usize,
    e: &anyhow::Error,
) -> Measurement {
    Measurement {
        note: Some(format!("{e:#}")),
        ..row(backend, device, points, starts, Status::Failed)
    }
}

fn bench_throughput(
    opts: &BenchOptions,
    work: &dyn Workload,
    points: &[usize],
    starts: &[usize],
    devices: &Devices,
    histories: &mut [History; 2],
    bar: &ProgressBar,
) -> Vec<Measurement> {
    let budget = opts.max_eval_seconds;
    let kmax = *starts.last().expect("validated non-empty");
    let kinds = devices.kinds();
    let mut rows = Vec::new();
    for &p_req in points {
        let p = work.points(p_req);
        let label = format_count(p as f64);
        let wanted = |h: &History| {
            starts
                .iter()
                .any(|&s| h.over_budget(p, s, budget).is_none())
        };
        let want_cpu = wanted(&histories[0]);
        let want_gpu = devices.adapter.is_some() && wanted(&histories[1]);

        // Build only what some cell will use: a 1e7-point sweep costs
        // seconds and about a gigabyte.
        let evs = if want_cpu || want_gpu {
            work.evaluators(p, kmax, want_cpu, want_gpu, devices, bar)
        } else {
            Evaluators {
                cpu: None,
                gpu: None,
            }
        };
        let mut evs = [evs.cpu, evs.gpu];
        let device = |i: usize, ev: &Option<anyhow::Result<Timed>>| match (i, ev) {
            (0, Some(Ok(e))) => e.device.clone(),
            _ => devices.name(kinds[i]),
        };
        let names: Vec<String> = (0..kinds.len()).map(|i| device(i, &evs[i])).collect();

        for &s in starts {
            let mut cpu_rate = None;
            for (i, kind) in kinds.iter().enumerate() {
                bar.set_message(format!(
                    "{label} points x {s} starts on the {}",
                    kind.to_uppercase()
                ));
                let history = &mut histories[i];
                let mut m = match (&mut evs[i], history.over_budget(p, s, budget)) {
                    (_, Some((est, why))) => skipped(kind, &names[i], p, s, est, why),
                    (Some(Ok(e)), None) => measure(kind, e, p, s, opts.seconds_per_cell, history),
                    (Some(Err(e)), None) => failed(kind, &names[i], p, s, e),
                    (None, None) => unreachable!("the backend exists when a cell fits"),
                };
                if *kind == "gpu" && m.status == Status::Failed && matches!(evs[i], Some(Ok(_))) {
                    // A failed evaluation may have lost the device: stop using it.
                    let e = anyhow::anyhow!("an earlier cell failed on this sweep");
                    evs[i] = Some(Err(e));
                }
                if i == 0 {
                    cpu_rate = m.point_evals_per_second;
                } else {
                    m.gpu_speedup = m.point_evals_per_second.zip(cpu_rate).map(|(g, c)| g / c);
                }
                bar.inc(1);
                rows.push(m);
            }
        }
    }
    rows
}

fn skipped(
    backend: &str,
    device: &str,
    points: usize,
    starts: usize,
    est: Option<f64>,
    why: String,
) -> Measurement {
    Measurement {
        estimated_seconds_per_eval: est,
        note: Some(why),
        ..row(backend, device, points, starts, Status::Skipped)
    }
}

fn bench_fits(opts: &BenchOptions, device: &GpuOpened, bar: &ProgressBar) -> Vec<FitRun> {
    let mut rows = Vec::new();
    let demo = simulate::simulate_looplm20(&SimOptions::default());
    let demo = Table::from_dataset(&demo, Path::new("the simulated looplm20 sweep"));
    rows.extend(bench_fit(
        "demo",
        &demo,
        &LawFitOptions::default(),
        device,
        bar,
    ));

    rows.extend(bench_bootstrap(&demo, BOOTSTRAP_REPLICATES, device, bar));

    match read_pythia(&opts.pythia_manifest) {
        Ok(ds) => {
            let table = Table::from_dataset(&ds, &opts.pythia_manifest);
            let opts = LawFitOptions::default();
            rows.extend(bench_fit("pythia", &table, &opts, device, bar))
        }
        Err(e) => {
            let why = format!("cannot read the Pythia sweep (it needs ../shared/data): {e:#}");
            let backends: &[&str] = if device.is_some() {
                &["cpu", "gpu"]
            } else {
                &["cpu"]
            };
            for b in backends {
                rows.push(FitRun {
                    note: Some(why.clone()),
                    ..fit_row("pythia", b, Status::Skipped)
                });
                bar.inc(1);
            }
        }
    }
    rows
}

fn read_pythia(manifest: &Path) -> anyhow::Result<Dataset> {
    // The error names the file that is missing.
    let ds = data::read_manifest(manifest, &ReadOptions::default())?;
    Ok(Filter {
        stride: 5,
        ..Filter::default()
    }
    .apply(&ds))
}

fn fit_row(sweep: &str, backend: &str, status: Status) -> FitRun {
    FitRun {
        sweep: sweep.into(),
        backend: backend.into(),
        status,
        points: None,
        starts: None,
        setup_seconds: None,
        seconds: None,
        best_objective: None,
        at_best: None,
        gpu_speedup: None,
        note: None,
    }
}

/// The looplm law bound to `table` (a simulated or Pythia sweep).
fn looplm(table: &Table) -> anyhow::Result<(lawfit::BoundLaw, Table)> {
    let text = crate::law::builtin("looplm").expect("looplm is built in");
    let origin = "laws/looplm.toml (built in)";
    let file = LawFile::parse(text, origin)?;
    let mut table = table.clone();
    let opts = lawfit::BindOptions::default();
    Ok((lawfit::bind(file, text, origin, &mut table, &opts)?, table))
}

/// The GPU device of a run (with an adapter) and the seconds opening it
/// took.
type GpuOpened = Option<(anyhow::Result<Arc<GpuDevice>>, f64)>;

/// A backend of the fits: its kind, its device (None: the CPU) and the
/// seconds opening it took.
type FitBackend = (&'static str, anyhow::Result<Option<Arc<GpuDevice>>>, f64);

/// The backends a fit runs on: the CPU, then the GPU when there is one
/// (opened once, with the seconds it took).
fn backends(device: &GpuOpened) -> Vec<FitBackend> {
    let mut out = vec![("cpu", Ok(None), 0.0)];
    if let Some((d, setup)) = device {
        let d = match d {
            Ok(d) => Ok(Some(d.clone())),
            Err(e) => Err(anyhow!("cannot open the GPU: {e:#}")),
        };
        out.push(("gpu", d, *setup));
    }
    out
}

/// Fit the looplm law to `table` on the CPU, then on the GPU when there
/// is one.
fn bench_fit(
    name: &str,
    table: &Table,
    opts: &LawFitOptions,
    device: &GpuOpened,
    bar: &ProgressBar,
) -> Vec<FitRun> {
    let mut rows = Vec::new();
    // Bound once: both backends fit the same rows.
    let bound = looplm(table);
    for (kind, dev, setup) in backends(device) {
        bar.set_message(format!(
            "fitting {name} ({} points) on the {}",
            table.rows(),
            kind.to_uppercase()
        ));
        let result = dev.and_then(|dev| {
            let (bound, table) = bound.as_ref().map_err(|e| anyhow!("{e:#}"))?;
            let opts = LawFitOptions {
                device: dev,
                ..opts.clone()
            };
            lawfit::fit_table(bound, table, &opts, |_| {})
        });
        bar.inc(1);
        rows.push(match result {
            Ok(out) => FitRun {
                points: Some(out.report.points),
                starts: Some(out.report.starts.count),
                setup_seconds: Some(setup),
                seconds: Some(out.report.seconds),
                best_objective: Some(out.report.objective.value),
                at_best: Some(out.report.starts.at_best),
                ..fit_row(name, kind, Status::Ok)
            },
            Err(e) => FitRun {
                note: Some(format!("{e:#}")),
                ..fit_row(name, kind, Status::Failed)
            },
        });
    }
    if let [c, g] = rows.as_mut_slice() {
        g.gpu_speedup = c.seconds.zip(g.seconds).map(|(c, g)| c / g);
    }
    rows
}

/// Replicates per resampling scheme of the bootstrap workload.
const BOOTSTRAP_REPLICATES: usize = 256;

/// Bootstrap the looplm fit of `table` (curves and points, `replicates`
/// each) on the CPU, then on the GPU, from one CPU fit's best point so
/// both do the same work.
fn bench_bootstrap(
    table: &Table,
    replicates: usize,
    device: &GpuOpened,
    bar: &ProgressBar,
) -> Vec<FitRun> {
    let name = "demo-boot";
    let opts = LawFitOptions::default();
    bar.set_message(format!("fitting {name} before the bootstrap"));
    let fitted = looplm(table).and_then(|(bound, table)| {
        let out = lawfit::fit_table(&bound, &table, &opts, |_| {})?;
        Ok((bound, table, out))
    });
    let (bound, table, fit) = match fitted {
        Ok(f) => f,
        Err(e) => {
            bar.inc(1 + device.is_some() as u64);
            return vec![FitRun {
                note: Some(format!("the fit before the bootstrap failed: {e:#}")),
                ..fit_row(name, "cpu", Status::Failed)
            }];
        }
    };
    let boot = BootstrapOptions {
        replicates,
        resamples: vec![Resample::Curves, Resample::Points],
        seed: 0,
        level: 0.95,
        lbfgs: opts.lbfgs,
    };
    let mut rows = Vec::new();
    for (kind, dev, setup) in backends(device) {
        bar.set_message(format!(
            "bootstrapping {name} ({} replicates) on the {}",
            2 * replicates,
            kind.to_uppercase()
        ));
        let result = dev.and_then(|dev| {
            let opts = LawFitOptions {
                device: dev,
                ..opts.clone()
            };
            let held = &fit.held_out;
            lawfit::bootstrap(&bound, &table, &opts, held, &fit.fits, &boot, |_| {})
        });
        bar.inc(1);
        rows.push(match result.map(|mut r| r.remove(0)) {
            Ok(r) => {
                let converged: usize = r.resamples.iter().map(|x| x.converged).sum();
                FitRun {
                    points: Some(table.rows()),
                    starts: Some(2 * replicates),
                    setup_seconds: Some(setup),
                    seconds: Some(r.seconds),
                    note: Some(format!(
                        "{converged} of {} replicates converged",
                        2 * replicates
                    )),
                    ..fit_row(name, kind, Status::Ok)
                }
            }
            Err(e) => FitRun {
                note: Some(format!("{e:#}")),
                ..fit_row(name, kind, Status::Failed)
            },
        });
    }
    if let [c, g] = rows.as_mut_slice() {
        g.gpu_speedup = c.seconds.zip(g.seconds).map(|(c, g)| c / g);
    }
    rows
}

/// "YYYY-MM-DD HH:MM UTC" from the system clock (civil-from-days, so no
/// date crate is needed).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// 3 significant digits (no exponent; small ratios keep their digits).
fn sig3(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return format!("{v}");
    }
    // Decimals so that 3 digits show: 123 -> 0, 12.3 -> 1, 0.00123 -> 5.
    let d = (2 - (v * (1.0 + 5e-4)).log10().floor() as i32).clamp(0, 12) as usize;
    format!("{v:.d$}")
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{} µs", sig3(s * 1e6))
    } else if s < 1.0 {
        format!("{} ms", sig3(s * 1e3))
    } else {
        format!("{} s", sig3(s))
    }
}

/// Rate with an SI prefix: "123M", "4.56G".
fn fmt_rate(r: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in UNITS {
        if r >= scale * 0.9995 {
            return format!("{}{unit}", sig3(r / scale));
        }
    }
    sig3(r)
}

fn fmt_speedup(x: Option<f64>) -> String {
    x.map(|x| format!("{}x", sig3(x))).unwrap_or_default()
}

/// Time and rate columns of one measurement ("skipped"/"failed" otherwise).
fn cells(m: Option<&Measurement>) -> (String, String) {
    match m {
        None => ("-".into(), "-".into()),
        Some(m) => match (m.status, m.seconds_per_eval, m.point_evals_per_second) {
            (Status::Ok, Some(t), Some(r)) => (fmt_time(t), fmt_rate(r)),
            (Status::Skipped, ..) => ("skipped".into(), "-".into()),
            _ => ("failed".into(), "-".into()),
        },
    }
}

/// The report as the terminal table.
pub fn render(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let has_gpu = r.gpu.device.is_some();
    let _ = writeln!(
        s,
        "sweepfit bench · {} · sweepfit {}",
        r.date, r.sweepfit_version
    );
    if let Some(law) = &r.law {
        let what = if law.name == law.formula {
            format!("formula {}", law.formula)
        } else {
            format!("{}: {}", law.name, law.formula)
        };
        let _ = writeln!(
            s,
            "law: {what} (variables {}; {} parameters)",
            law.variables.join(", "),
            law.params.len()
        );
    }
    let _ = writeln!(s, "CPU: {} threads, f64", r.cpu.threads);
    match (&r.gpu.device, &r.gpu.unavailable) {
        (Some(d), _) => {
            let _ = writeln!(s, "GPU: {d}, f32");
        }
        (None, why) => {
            let _ = writeln!(s, "GPU: none ({})", why.as_deref().unwrap_or("unknown"));
        }
    }
    let _ = writeln!(
        s,
        "cells: one warm-up, then repeated for {} s (at least once); skipped when estimated over {} s per evaluation",
        r.settings.seconds_per_cell, r.settings.max_eval_seconds
    );

    let _ = writeln!(
        s,
        "\nper-{} overhead (one evaluation, 1 start, {} points)",
        if r.law.is_some() {
            "evaluation"
        } else {
            "dispatch"
        },
        r.settings.overhead_points
    );
    for m in &r.overhead {
        let (t, _) = cells(Some(m));
        let note = m
            .note
            .as_deref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        let _ = writeln!(s, "  {:<4} {:>10}{note}", m.backend.to_uppercase(), t);
    }

    let _ = writeln!(
        s,
        "\nevaluation throughput (point-evaluations/s: value + full gradient, one point for one parameter vector)"
    );
    if let Some(law) = &r.law {
        let _ = writeln!(s, "  sweeps: {}", law.sweep);
    }
    let mut header = format!(
        "  {:>6} {:>6} | {:>10} {:>8}",
        "points", "starts", "CPU/eval", "CPU pe/s"
    );
    if has_gpu {
        header += &format!(" | {:>10} {:>8} | {:>7}", "GPU/eval", "GPU pe/s", "GPU/CPU");
    }
    let _ = writeln!(s, "{header}");
    let _ = writeln!(s, "  {}", "-".repeat(header.len() - 2));
    let find = |b: &str, p: usize, k: usize| {
        r.throughput
            .iter()
            .find(|m| m.backend == b && m.points == p && m.starts == k)
    };
    let mut keys: Vec<(usize, usize)> = Vec::new();
    for m in &r.throughput {
        if !keys.contains(&(m.points, m.starts)) {
            keys.push((m.points, m.starts));
        }
    }
    for &(p, k) in &keys {
        let (ct, cr) = cells(find("cpu", p, k));
        let mut line = format!(
            "  {:>6} {:>6} | {:>10} {:>8}",
            format_count(p as f64),
            k,
            ct,
            cr
        );
        if has_gpu {
            let g = find("gpu", p, k);
            let (gt, gr) = cells(g);
            let speed = fmt_speedup(g.and_then(|g| g.gpu_speedup));
            line += &format!(" | {gt:>10} {gr:>8} | {speed:>7}");
        }
        let _ = writeln!(s, "{line}");
    }
    if has_gpu {
        let _ = writeln!(
            s,
            "  GPU/CPU: GPU point-evals/s over the CPU's on the same cell (above 1: GPU faster)"
        );
    }
    // Each backend's layout decides its speed on these sweeps; name it
    // once per backend and size.
    let mut seen = Vec::new();
    for m in r.throughput.iter().filter(|m| !m.device.is_empty()) {
        if !seen.contains(&(&m.backend, m.points)) {
            seen.push((&m.backend, m.points));
            let _ = writeln!(
                s,
                "  {} at {} points: {}",
                m.backend.to_uppercase(),
                format_count(m.points as f64),
                m.device
            );
        }
    }
    for m in r.throughput.iter().filter(|m| m.status == Status::Failed) {
        let _ = writeln!(
            s,
            "  {} {} x {} failed: {}",
            m.backend.to_uppercase(),
            format_count(m.points as f64),
            m.starts,
            m.note.as_deref().unwrap_or("")
        );
    }
    let skips: Vec<&Measurement> = r
        .throughput
        .iter()
        .filter(|m| m.status == Status::Skipped)
        .collect();
    if let Some(m) = skips.first() {
        let _ = writeln!(
            s,
            "  {} cells skipped; the first, {} {} x {}: {}",
            skips.len(),
            m.backend.to_uppercase(),
            format_count(m.points as f64),
            m.starts,
            m.note.as_deref().unwrap_or("")
        );
    }

    if r.law.is_some() {
        let _ = writeln!(
            s,
            "\nend-to-end fits: not run with --law (they fit the looplm20 and Pythia sweeps)"
        );
    } else if !r.settings.fits {
        let _ = writeln!(
            s,
            "\nend-to-end fits: not run (--quick or --no-fits; the full run has them)"
        );
    }
    if r.settings.fits {
        let _ = writeln!(
            s,
            "\nend-to-end fits of the looplm law (seconds of the fit; setup = opening the GPU device)"
        );
        let header = format!(
            "  {:<9} {:<4} {:>7} {:>6} {:>8} {:>9} {:>15} {:>9} {:>8}",
            "sweep",
            "on",
            "points",
            "starts",
            "setup",
            "seconds",
            "best objective",
            "at best",
            "GPU/CPU"
        );
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s, "  {}", "-".repeat(header.len() - 2));
        for f in &r.fits {
            let head = format!("  {:<9} {:<4}", f.sweep, f.backend.to_uppercase());
            match (f.status, f.seconds) {
                (Status::Ok, Some(sec)) => {
                    // Bootstrap rows have no best objective or starts at best.
                    let best = f
                        .best_objective
                        .map_or_else(|| "-".to_string(), |v| format!("{v:.9e}"));
                    let at_best = f.at_best.map_or_else(
                        || "-".to_string(),
                        |a| format!("{a}/{}", f.starts.unwrap_or(0)),
                    );
                    let _ = writeln!(
                        s,
                        "{head} {:>7} {:>6} {:>8} {:>9} {:>15} {:>9} {:>8}",
                        f.points.unwrap_or(0),
                        f.starts.unwrap_or(0),
                        f.setup_seconds.map(fmt_time).unwrap_or_default(),
                        format!("{sec:.2}"),
                        best,
                        at_best,
                        fmt_speedup(f.gpu_speedup)
                    );
                }
                (status, _) => {
                    let what = if status == Status::Skipped {
                        "skipped"
                    } else {
                        "failed"
                    };
                    let _ = writeln!(s, "{head} {what}: {}", f.note.as_deref().unwrap_or(""));
                }
            }
        }
        let _ = writeln!(s, "  demo: looplm20 simulated, default options (128 starts, seed 0); demo-boot: its bootstrap, {BOOTSTRAP_REPLICATES} curve and {BOOTSTRAP_REPLICATES} point replicates from the best fit (starts = replicates); pythia: benches/pythia_manifest.csv, stride 5, 128 random starts, seed 0");
        if has_gpu {
            let _ = writeln!(
                s,
                "  GPU/CPU: CPU seconds over GPU seconds (above 1: GPU faster)"
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_in_scientific_notation() {
        assert_eq!(parse_count("1e4"), Ok(10_000));
        assert_eq!(parse_count("128"), Ok(128));
        assert!(parse_count("0").is_err());
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn larger_cells_are_skipped_from_smaller_ones() {
        let h = History {
            measured: vec![(1000, 1, 1e-2), (10_000, 16, 0.5)],
            overhead: 0.0,
        };
        assert!(h.over_budget(1000, 1, 2.0).is_none());
        // From (10K, 16): 0.5 s x 10 = 5 s; from (1K, 1): 10 ms x 100 x 16.
        let (est, _) = h.over_budget(100_000, 16, 2.0).unwrap();
        assert!((est.unwrap() - 5.0).abs() < 1e-9);
        // Only the largest smaller cells count: (1K, 1) alone would say
        // 10 ms x 1e3 x 16 = 160 s for (1M, 16); (10K, 16) says 50 s.
        let (est, _) = h.over_budget(1_000_000, 16, 2.0).unwrap();
        assert!((est.unwrap() - 50.0).abs() < 1e-9);
        let fast_small = History {
            measured: vec![(1000, 1, 1e-6), (10_000, 16, 0.5)],
            overhead: 0.0,
        };
        assert!(fast_small.over_budget(100_000, 16, 2.0).is_some());
        // Cells no measured cell bounds are run.
        assert!(h.over_budget(500, 4096, 2.0).is_none());
        let over = History {
            measured: vec![(1000, 1, 3.0)],
            overhead: 0.0,
        };
        assert!(over.over_budget(1000, 2, 2.0).unwrap().0.is_none());
    }

    #[test]
    fn the_overhead_is_not_scaled_as_work() {
        // A GPU's overhead cell: 100 us, nearly all of it fixed cost.
        let mut h = History {
            measured: vec![(1000, 1, 1e-4)],
            overhead: 1e-4,
        };
        // Scaled as work it would say 100 us x 1e3 x 1024 = 102 s.
        assert!(h.over_budget(1_000_000, 1024, 2.0).is_none());
        // A measured cell scales by its time above the overhead only:
        // 0.1 ms + 0.9 ms x 10 x 4 = 36.1 ms for (1M, 4096), and
        // 0.1 ms + 0.9 ms x 1000 x 4 = 3.6 s for (100M, 4096).
        h.measured.push((100_000, 1024, 1e-3));
        assert!(h.over_budget(1_000_000, 4096, 2.0).is_none());
        let (est, _) = h.over_budget(100_000_000, 4096, 2.0).unwrap();
        assert!((est.unwrap() - (1e-4 + 9e-4 * 4000.0)).abs() < 1e-9);
    }

    #[test]
    fn looplm20_starts_differ_and_stay_finite() {
        let law = BenchLaw::looplm20().unwrap();
        assert_eq!(law.points_for(1010), 1000);
        let sw = law.sweep(1000, 0);
        assert_eq!((sw.points(), sw.curves.len()), (1000, 20));
        let p = law.params(3, 0);
        let np = law.law.params.len();
        assert_ne!(p[np..2 * np], p[2 * np..]);
        // The first start is the simulation's own parameters.
        let alpha = law.law.params.iter().position(|n| n == "alpha").unwrap();
        assert_eq!(p[alpha], 0.3);
        let plan = Plan::for_sweep(&law.law, &sw);
        let grid = CpuLaw::new(plan, &sw, Objective::default()).unwrap();
        assert_eq!(grid.layout(), CpuLayout::Grid);
        let (mut f, mut g) = (vec![0.0; 3], vec![0.0; 3 * np]);
        grid.evaluate(&p, &mut f, &mut g);
        assert!(f.iter().chain(&g).all(|v| v.is_finite()), "{f:?}");
        // At the truth the objective is the noise's: sd 0.02, mse 2e-4.
        assert!((f[0] / 2e-4 - 1.0).abs() < 0.2, "{}", f[0]);
    }

    #[test]
    fn law_sweeps_are_whole_curves_on_one_grid() {
        assert_eq!(BenchLaw::points(10_000), 10_000);
        assert_eq!(BenchLaw::points(1_234), 1_000);
        assert_eq!(BenchLaw::points(100), 100);
        let law = BenchLaw::builtin("vocab").unwrap();
        let sw = law.sweep(1_234, 0);
        assert_eq!((sw.points(), sw.curves.len()), (1_000, 2));
        assert_eq!(sw.axis_values.len(), LAW_CURVE_POINTS);
        // Nnv, V and d per curve, D along it.
        assert_eq!((sw.axis, sw.curve_vars), (Some(3), 0b0111));
        let plan = Plan::for_sweep(&law.law, &sw);
        let grid = CpuLaw::new(plan, &sw, Objective::default()).unwrap();
        assert_eq!(grid.layout(), CpuLayout::Grid);
        let p = law.params(3, 0);
        assert_eq!(p.len(), 3 * 7);
        assert!(p[..7].iter().all(|&v| v == LAW_PARAM));
        assert_ne!(p[7..14], p[14..]);
        let (mut f, mut g) = (vec![0.0; 3], vec![0.0; 21]);
        grid.evaluate(&p, &mut f, &mut g);
        assert!(f.iter().chain(&g).all(|v| v.is_finite()), "{f:?} {g:?}");
        assert!(BenchLaw::builtin("no-such-law").is_err());
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(123.4), "123");
        assert_eq!(sig3(12.34), "12.3");
        assert_eq!(sig3(9.999), "10.0");
        assert_eq!(sig3(0.001234), "0.00123");
        assert_eq!(fmt_rate(1.234e9), "1.23G");
        assert_eq!(fmt_time(2.5e-6), "2.50 µs");
    }

    #[test]
    fn date_format() {
        let d = utc_now();
        assert_eq!(d.len(), "2025-01-01 00:00 UTC".len());
        assert!(d.starts_with("20"));
    }
}
