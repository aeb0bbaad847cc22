//! What a user asks of a fit, an evaluation or a simulation: the option
//! groups, their defaults, their checks and their conversion into the
//! library's options. One definition serves both front ends: the command
//! line parses them with clap (the doc comments are its `--help`), the
//! Python package fills them from keyword arguments through serde, and
//! both get the same defaults (`Default` parses an empty command line) and
//! the same checks, with the command line's messages.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser};
use serde::Deserialize;

use std::sync::Arc;

use crate::backend::gpu::{self, GpuDevice};
use crate::backend::BackendChoice;
use crate::bootstrap::{BootstrapOptions, Resample};
use crate::data::Selector;
use crate::law::LawFile;
use crate::lawfit::{self, LawFitOptions};
use crate::lawfit::{LawEvalOptions, Protocol};
use crate::memory;
use crate::objective::{LossKind, Objective, Space};
use crate::optim;
use crate::profile::ProfileRequest;
use crate::simulate::SimOptions;

#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BackendArgs {
    /// Where to evaluate the objective: auto uses a hardware GPU when there
    /// is one and the CPU otherwise; gpu accepts any adapter (software ones
    /// too) and fails without one; cpu uses all cores in f64. The adapter
    /// can be steered with WGPU_BACKEND, WGPU_ADAPTER_NAME and WGPU_POWER_PREF.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

impl BackendArgs {
    /// Run `work` (a law fit or eval) with `opts.device` set as this
    /// choice says, telling `say` what `auto` chose ("note: ..."); under
    /// `auto`, a failure on the GPU is redone on the CPU with a warning
    /// naming `what` failed. An interruption is not a failure to redo.
    pub fn run_law<T>(
        &self,
        opts: &mut LawFitOptions,
        what: &str,
        say: &mut dyn FnMut(String),
        mut work: impl FnMut(&LawFitOptions) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let (device, note) = self.law_device()?;
        if let Some(n) = note {
            say(format!("note: {n}"));
        }
        let auto_gpu = self.backend == BackendChoice::Auto && device.is_some();
        opts.device = device;
        match work(opts) {
            Err(e) if auto_gpu && !crate::interrupt::is_interrupt(&e) => {
                say(format!(
                    "warning: the GPU {what} failed ({e:#}); redoing it on the CPU"
                ));
                opts.device = None;
                work(opts)
            }
            other => other,
        }
    }

    /// The GPU a law fit evaluates on (None: the CPU), and for `auto` a
    /// note saying what it chose and why.
    fn law_device(&self) -> anyhow::Result<(Option<Arc<GpuDevice>>, Option<String>)> {
        let open = |filter| -> anyhow::Result<Arc<GpuDevice>> {
            let inst = gpu::instance()?;
            GpuDevice::open(&gpu::select_adapter(&inst, filter)?)
        };
        match self.backend {
            BackendChoice::Cpu => Ok((None, None)),
            BackendChoice::Gpu => Ok((Some(open(gpu::AdapterFilter::Any)?), None)),
            BackendChoice::Auto => {
                gpu::check_env()?;
                Ok(match open(gpu::AdapterFilter::Hardware) {
                    Ok(d) => {
                        let note = format!("backend auto: using the GPU {}", d.summary().short());
                        (Some(d), Some(note))
                    }
                    Err(e) => (None, Some(format!("backend auto: using the CPU ({e:#})"))),
                })
            }
        }
    }

    /// Check the wgpu environment variables up front, when a GPU may be used.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.backend != BackendChoice::Cpu {
            crate::backend::gpu::check_env()?;
        }
        Ok(())
    }
}

/// The law of a fit or an evaluation.
#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LawArgs {
    /// The law: a built-in's name (`sweepfit laws` lists them), a formula
    /// such as 'E + A/N^alpha + B/D^beta', whose names are variables where
    /// they name a column of the data and parameters otherwise, or a law
    /// file's path ending in .toml (as --law-file). Every law
    /// is compiled and runs on the CPU or the GPU (--backend). A formula
    /// nests at most 256 levels (each operator, sign, call and parenthesis
    /// is one).
    #[arg(
        long,
        default_value = crate::law::DEFAULT_LAW,
        conflicts_with = "law_file",
        allow_hyphen_values = true
    )]
    pub law: String,
    /// A law file (TOML) with declarations: `sweepfit laws looplm` prints one
    /// to start from.
    #[arg(long, value_name = "FILE")]
    pub law_file: Option<PathBuf>,
}

impl LawArgs {
    /// The law file asked for, its text, and where it came from (for
    /// error messages): a file, a built-in, or a bare formula.
    pub fn law_source(&self) -> anyhow::Result<(LawFile, String, String)> {
        law_source(Some(&self.law), self.law_file.as_deref())
    }
}

/// How a law binds to the data, the objective and the optimiser's
/// settings: what every fit of a law shares (a fit, an evaluation's folds,
/// a comparison's laws).
#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct FitFlags {
    /// Bind the law's variable NAME to the data column COLUMN, e.g.
    /// --var N=params (repeatable). Without it a variable reads the column
    /// of its own name, else the one its law file declares; in a bare
    /// formula, a name that finds no column is a parameter.
    #[arg(long = "var", value_name = "NAME=COLUMN", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The runs' learning rate at every optimiser step, for laws that sum
    /// along the steps (multi-power, lr-annealing): a CSV run,step,lr with
    /// one row per step of every run from 0 (without run: one schedule for
    /// every run), or a manifest run,file of step,lr CSVs. Each row of the
    /// data meets its run's schedule at its step.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// The variable each curve runs along (e.g. D). A law file names its
    /// own; for a bare formula it is otherwise chosen as the variable whose
    /// values the curves share best, and the fit says which and why.
    #[arg(long, value_name = "VAR")]
    pub axis: Option<String>,
    /// Hold a parameter fixed, e.g. --fix t3=0 (repeatable, once per
    /// parameter; raw units, within the bounds the law declares).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_fix)]
    pub fix: Vec<(String, f64)>,
    /// Loss on residuals.
    #[arg(long, value_enum, default_value_t = LossKind::Mse)]
    pub loss: LossKind,
    /// Residuals of the loss (linear) or of its log (log).
    #[arg(long, value_enum, default_value_t = Space::Linear)]
    pub space: Space,
    /// Huber threshold, in the units of the residual.
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
    pub delta: f64,
    /// Draw K starts: the law's nonlinear parameters from their start
    /// ranges, the linear ones solved by least squares at each [default:
    /// 128]. Without it, a law that sums along the steps (each start costs
    /// O(rows x steps)) fitted on the CPU runs up to 128 in waves of 8 and stops once they
    /// find no new minimum (Boender and Rinnooy Kan's rule); the fit's
    /// notes say how many ran.
    #[arg(long, value_name = "K")]
    pub starts: Option<usize>,
    /// Seed of the starts; in `fit`, also of the bootstrap's resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Iteration limit of every start.
    #[arg(long, default_value_t = optim::Options::default().max_iter, value_parser = at_least_one)]
    pub max_iter: usize,
    /// Converged when a step lowers the objective by less than this, relative
    /// (three accepted steps in a row; for least-squares fits of other laws,
    /// Levenberg-Marquardt's stall rule).
    #[arg(long, default_value_t = optim::Options::default().ftol, value_parser = tolerance)]
    pub ftol: f64,
    /// Converged when the largest gradient entry is below this times the objective
    /// (L-BFGS; least-squares fits of other laws than looplm and chinchilla run
    /// Levenberg-Marquardt, which stops on its own tolerances).
    #[arg(long, default_value_t = optim::Options::default().gtol, value_parser = tolerance)]
    pub gtol: f64,
}

#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BootstrapArgs {
    /// Bootstrap with B replicates per resampling scheme, refitted in one
    /// batch from the best fit; fit.json and the table then give every
    /// free parameter's standard error and percentile interval, and
    /// `predict` adds bands.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(2..))]
    pub bootstrap: Option<u64>,
    /// What the bootstrap resamples: whole curves (with replacement),
    /// points (Poisson(1) counts), or both, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "curves,points"
    )]
    pub resample: Vec<Resample>,
    /// Coverage of the bootstrap's percentile intervals and of --profile's.
    #[arg(long, default_value_t = 0.95, value_parser = fraction)]
    pub level: f64,
}

impl BootstrapArgs {
    /// --level, which --profile's intervals share.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// The bootstrap asked for, checked before any work starts.
    pub fn options(
        &self,
        seed: u64,
        lbfgs: &optim::Options,
    ) -> anyhow::Result<Option<BootstrapOptions>> {
        if !(self.level > 0.0 && self.level < 1.0) {
            bail!(
                "--level must lie strictly between 0 and 1, got {}",
                self.level
            );
        }
        let Some(b) = self.bootstrap else {
            return Ok(None);
        };
        if b < 2 {
            bail!("--bootstrap must be at least 2 replicates, got {b}");
        }
        if self.resample.is_empty() {
            bail!("--resample needs at least one scheme (curves, points)");
        }
        let mut resamples: Vec<Resample> = Vec::new();
        for r in &self.resample {
            if !resamples.contains(r) {
                resamples.push(*r);
            }
        }
        // Every replicate is one more optimiser problem, and its parameters
        // are kept for the report (counted for a law of 16 parameters).
        const P: usize = 16;
        let per_replicate = optim::problem_bytes(P, lbfgs.memory) + 2.0 * (P * 8) as f64;
        memory::ensure_fits(
            &format!("--bootstrap {b} ({} resampling schemes)", resamples.len()),
            b as f64 * resamples.len() as f64 * per_replicate,
        )?;
        Ok(Some(BootstrapOptions {
            replicates: b as usize,
            resamples,
            // Separate from the starts' seed use by construction (the
            // resampling streams are keyed by kind).
            seed,
            level: self.level,
            lbfgs: *lbfgs,
        }))
    }
}

#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SimFlags {
    /// Points per curve.
    #[arg(long, default_value_t = 500)]
    pub points: usize,
    /// Standard deviation of the per-point noise, in loss units.
    #[arg(long, default_value_t = 0.02, value_parser = non_negative)]
    pub noise: f64,
    /// Amplitude of an early warm-up transient above the law (0 = none).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub warmup: f64,
    /// Late rise of the shallow steps of the two smallest models (0 = none).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub late_rise: f64,
}

impl SimFlags {
    /// The noise of a simulation of a law given with --law, which takes
    /// its rows from --at: the looplm20 sweep's shape options do not apply.
    pub fn law_noise(&self) -> anyhow::Result<f64> {
        if self.points != 500 || self.warmup != 0.0 || self.late_rise != 0.0 {
            bail!("--points, --warmup and --late-rise shape the looplm20 preset; with --law the rows come from --at");
        }
        Ok(self.noise)
    }
}

/// `NAME=COLUMN` of --var; both sides checked against the law and the
/// data once they are known.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, c)) if !n.trim().is_empty() && !c.trim().is_empty() => {
            Ok((n.trim().to_string(), c.trim().to_string()))
        }
        _ => Err(format!("expected NAME=COLUMN, got '{s}'")),
    }
}

/// A number option's value, refused (clap names the option) unless it is
/// finite and `ok`, which `range` states.
fn number(s: &str, ok: impl Fn(f64) -> bool, range: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || !ok(v) {
        return Err(format!("{v} is not {range}"));
    }
    Ok(v)
}

pub fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 0.0, "a finite number >= 0")
}

pub fn positive(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0, "a finite number > 0")
}

/// Strictly between 0 and 1: a coverage level or a fraction.
pub fn fraction(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0 && v < 1.0, "strictly between 0 and 1")
}

/// A relative convergence tolerance: 0 (never converged on it) up to 1.
fn tolerance(s: &str) -> Result<f64, String> {
    number(s, |v| (0.0..1.0).contains(&v), "a tolerance in [0, 1)")
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number >= 1")),
    }
}

fn parse_fix(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))?;
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    // Names are checked against the law when it is known: a law given
    // with --law has parameters of its own.
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("expected NAME=VALUE, got '{s}'"));
    }
    Ok((name.to_string(), v))
}

impl FitFlags {
    /// How the law's names bind to the data: --var, and the columns
    /// `used` otherwise (--by, --test-where).
    pub fn bind_options(
        &self,
        by: &[String],
        test_where: Option<&Selector>,
    ) -> lawfit::BindOptions {
        let mut used = by.to_vec();
        used.extend(test_where.map(|s| s.column.clone()));
        lawfit::BindOptions {
            vars: self.vars.clone(),
            axis: self.axis.clone(),
            used,
            schedule: self.schedule.clone().map(lawfit::ScheduleSource::File),
        }
    }

    /// Options of a fit of any law from a table, checked before any work
    /// starts.
    pub fn law_fit_options(
        &self,
        by: &[String],
        test_where: Option<Selector>,
    ) -> anyhow::Result<LawFitOptions> {
        for (i, (name, v)) in self.fix.iter().enumerate() {
            if let Some((_, w)) = self.fix[..i].iter().find(|(n, _)| n == name) {
                bail!("--fix {name} is given twice ({w} and {v}): give each parameter once");
            }
        }
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            bail!("--delta must be a positive number, got {}", self.delta);
        }
        // What clap's value parsers check on the command line, checked
        // here for options given otherwise (the Python package).
        if self.max_iter == 0 {
            bail!("--max-iter must be at least 1");
        }
        for (name, v) in [("--ftol", self.ftol), ("--gtol", self.gtol)] {
            if !(0.0..1.0).contains(&v) {
                bail!("{name} must be a tolerance in [0, 1), got {v}");
            }
        }
        let starts = self.starts.unwrap_or(lawfit::DEFAULT_STARTS);
        if starts == 0 {
            bail!("--starts must be at least 1");
        }
        // Counted for a law of 16 parameters: the law is not read yet.
        memory::ensure_fits(
            &format!("--starts {starts}"),
            starts as f64 * optim::problem_bytes(16, optim::Options::default().memory),
        )?;
        Ok(LawFitOptions {
            objective: Objective {
                loss: self.loss,
                space: self.space,
                delta: self.delta,
            },
            fix: self.fix.clone(),
            starts,
            early_stop: self.starts.is_none(),
            seed: self.seed,
            lbfgs: optim::Options {
                max_iter: self.max_iter,
                ftol: self.ftol,
                gtol: self.gtol,
                ..Default::default()
            },
            by: by.to_vec(),
            test_where,
            device: None,
            profile: None,
        })
    }
}

/// The law named by `--law` (a built-in or a formula) or `--law-file`, its
/// text, and where it came from (for error messages).
pub fn law_source(
    law: Option<&str>,
    law_file: Option<&std::path::Path>,
) -> anyhow::Result<(LawFile, String, String)> {
    if let Some(path) = law_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the law file: {e}", path.display()))?;
        let origin = path.display().to_string();
        return Ok((LawFile::parse(&text, &origin)?, text, origin));
    }
    let name = law.unwrap_or(crate::law::DEFAULT_LAW).trim();
    // No formula holds ".toml" (a '.' follows only digits), so a name
    // ending in it is a law file's path.
    if name.ends_with(".toml") && crate::law::builtin(name).is_none() {
        let path = std::path::Path::new(name);
        if !path.is_file() {
            bail!("--law {name}: no law file is there (a law is a built-in's name, a formula or a law file's path)");
        }
        return law_source(None, Some(path));
    }
    if let Some(text) = crate::law::builtin(name) {
        let origin = format!("laws/{name}.toml (built in)");
        return Ok((LawFile::parse(text, &origin)?, text.to_string(), origin));
    }
    let bare_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare_name {
        bail!(
            "--law {name}: no built-in law has this name (they are {}), and a formula needs \
             an operator, e.g. 'E + A/N^alpha'",
            crate::law::builtin_names().join(", ")
        );
    }
    let file = LawFile::from_formula(name)?;
    let text = format!("name = \"custom\"\nformula = {name:?}\n");
    Ok((file, text, "--law".to_string()))
}

pub fn sim_options(seed: u64, s: &SimFlags) -> anyhow::Result<SimOptions> {
    if s.points < 2 {
        bail!("--points must be at least 2");
    }
    // Tokens, loss and weight per point, and the CSV row written from them.
    memory::ensure_fits(
        &format!("--points {} (for each of 20 curves)", s.points),
        20.0 * s.points as f64 * 96.0,
    )?;
    for (name, v) in [
        ("--noise", s.noise),
        ("--warmup", s.warmup),
        ("--late-rise", s.late_rise),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            bail!("{name} must be a non-negative number, got {v}");
        }
    }
    Ok(SimOptions {
        seed,
        points_per_curve: s.points,
        noise: s.noise,
        warmup: s.warmup,
        late_rise: s.late_rise,
    })
}

/// `Default` for an option group: its values when no option is given,
/// read from the clap attributes, so the two front ends cannot disagree.
macro_rules! default_from_clap {
    ($($group:ty),*) => {$(
        impl Default for $group {
            fn default() -> Self {
                #[derive(Parser)]
                struct Empty {
                    #[command(flatten)]
                    group: $group,
                }
                // Every option of these groups has a default or is optional.
                Empty::try_parse_from(["sweepfit"])
                    .expect("the option groups parse from no options")
                    .group
            }
        }
    )*};
}

default_from_clap!(
    BackendArgs,
    LawArgs,
    FitFlags,
    BootstrapArgs,
    SimFlags,
    FitRequest,
    EvalSettings
);

/// Everything `fit` asks of the library beyond the data: the law, how it
/// binds, the optimiser, groups and held-out rows, profiles, the bootstrap
/// and the device.
#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct FitRequest {
    #[command(flatten)]
    #[serde(flatten)]
    pub law: LawArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub fit: FitFlags,
    /// Fit the law separately to every group of rows with equal values in
    /// these columns (e.g. --by run), all groups in one batch.
    #[arg(long, value_name = "COLUMN[,COLUMN]", value_delimiter = ',')]
    pub by: Vec<String>,
    /// Hold out the rows whose COLUMN equals VALUE (e.g. split=test): fit
    /// the others, and score these in fit.json's `test`.
    #[arg(long, value_name = "COLUMN=VALUE", value_parser = Selector::parse)]
    pub test_where: Option<Selector>,
    /// Profile-likelihood intervals at --level: for the parameters named
    /// (e.g. --profile gamma,t3), or every free one when given alone. Each
    /// parameter is held at 22 values around the optimum and the others
    /// refitted; fit.json's `profile` has the intervals and the curves.
    /// Fits without --by only.
    #[arg(
        long,
        value_name = "NAME[,NAME]",
        num_args = 0..=1,
        value_delimiter = ',',
        default_missing_value = ""
    )]
    pub profile: Option<Vec<String>>,
    #[command(flatten)]
    #[serde(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub backend: BackendArgs,
}

impl FitRequest {
    /// The fit's options and its bootstrap's, every option checked before
    /// any work starts.
    pub fn options(&self) -> anyhow::Result<(LawFitOptions, Option<BootstrapOptions>)> {
        let mut opts = self
            .fit
            .law_fit_options(&self.by, self.test_where.clone())?;
        opts.profile = self.profile.as_ref().map(|names| ProfileRequest {
            names: names.iter().filter(|n| !n.is_empty()).cloned().collect(),
            level: self.bootstrap.level(),
        });
        let boot = self.bootstrap.options(opts.seed, &opts.lbfgs)?;
        self.backend.check()?;
        Ok((opts, boot))
    }

    /// How the law's names bind to the data.
    pub fn bind_options(&self) -> lawfit::BindOptions {
        self.fit.bind_options(&self.by, self.test_where.as_ref())
    }
}

/// What `eval` asks beyond a fit's options: the protocols and their
/// settings.
#[derive(Args, Clone, Debug, Deserialize)]
#[serde(default)]
pub struct EvalSettings {
    /// Protocols to run, comma-separated [default: those that apply to the
    /// data: sizes,tokens,leave-t for a LoopLM sweep]. A protocol
    /// asked for that cannot run is an error; one run by default is skipped
    /// with a note. test-where alone runs only the --test-where fold.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub protocol: Option<Vec<Protocol>>,
    /// The per-curve variable leave-t leaves out one value of at a time
    /// (e.g. E, V for the moe and vocab laws).
    #[arg(long, value_name = "VAR", default_value = "T")]
    pub leave: String,
    /// Also hold out the rows whose COLUMN equals VALUE (e.g. split=test),
    /// as one more fold, protocol test-where.
    #[arg(long, value_name = "COLUMN=VALUE", value_parser = Selector::parse)]
    pub test_where: Option<Selector>,
    /// Fit separately to every group of rows with equal values in these
    /// columns (e.g. --by run), in every fold and in the fit on all rows;
    /// a fold's scores pool the held-out rows of all its groups.
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Model sizes each `sizes` fold trains on.
    #[arg(long, default_value_t = 3)]
    pub train_sizes: usize,
    /// Token fractions of the `tokens` protocol, comma-separated, each in (0, 1).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75", value_parser = fraction)]
    pub fractions: Vec<f64>,
}

impl EvalSettings {
    /// The evaluation's options, checked.
    pub fn options(&self) -> anyhow::Result<LawEvalOptions> {
        for f in &self.fractions {
            if !(*f > 0.0 && *f < 1.0) {
                bail!("--fractions: {f} is not strictly between 0 and 1");
            }
        }
        let mut protocols = self.protocol.clone();
        if let Some(p) = &mut protocols {
            p.dedup();
        }
        Ok(LawEvalOptions {
            protocols,
            train_sizes: self.train_sizes,
            fractions: self.fractions.clone(),
            leave: self.leave.clone(),
            lenient: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_command_lines() {
        let r = FitRequest::default();
        assert_eq!(r.law.law, crate::law::DEFAULT_LAW);
        assert_eq!(r.fit.delta, 1e-3);
        assert_eq!(r.bootstrap.level, 0.95);
        assert_eq!(r.bootstrap.resample, [Resample::Curves, Resample::Points]);
        assert_eq!(r.backend.backend, BackendChoice::Auto);
        assert!(r.profile.is_none() && r.by.is_empty());
        let e = EvalSettings::default();
        assert_eq!((e.leave.as_str(), e.train_sizes), ("T", 3));
        assert_eq!(e.fractions, [0.25, 0.5, 0.75]);
    }

    #[test]
    fn keyword_options_are_read_and_checked() {
        let r: FitRequest = serde_json::from_str(
            r#"{"law": "E + A/N^alpha", "starts": 16, "loss": "huber", "by": ["run"],
                "test_where": {"column": "split", "value": "test"}, "fix": [["E", 1.5]],
                "bootstrap": 50, "resample": ["points"], "backend": "cpu"}"#,
        )
        .unwrap();
        assert_eq!(r.fit.starts, Some(16));
        assert_eq!(r.fit.loss, LossKind::Huber);
        assert_eq!(r.bootstrap.resample, [Resample::Points]);
        assert_eq!(r.fit.max_iter, optim::Options::default().max_iter);
        let (opts, boot) = r.options().unwrap();
        assert_eq!(opts.fix, [("E".to_string(), 1.5)]);
        assert_eq!(boot.unwrap().replicates, 50);
        for (bad, says) in [
            (r#"{"ftol": 2}"#, "--ftol"),
            (r#"{"max_iter": 0}"#, "--max-iter"),
            (r#"{"bootstrap": 1}"#, "--bootstrap"),
            (r#"{"level": 1.5}"#, "--level"),
            (r#"{"delta": -1}"#, "--delta"),
        ] {
            let r: FitRequest = serde_json::from_str(bad).unwrap();
            let e = r.options().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
