//! Argument groups shared by several commands, and their conversion into
//! the library's options.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use std::sync::Arc;

use super::term::tell;
use sweepfit::backend::gpu::{self, GpuDevice};
use sweepfit::backend::BackendChoice;
use sweepfit::bootstrap::{BootstrapOptions, Resample};
use sweepfit::data::Selector;
use sweepfit::data::{self, Dataset, Filter, ReadOptions};
use sweepfit::law::LawFile;
use sweepfit::lawfit::{self, LawFitOptions};
use sweepfit::memory;
use sweepfit::objective::{LossKind, Objective, Space};
use sweepfit::optim;
use sweepfit::simulate::SimOptions;

#[derive(Args)]
pub(crate) struct BackendArgs {
    /// Where to evaluate the objective: auto uses a hardware GPU when there
    /// is one and the CPU otherwise; gpu accepts any adapter (software ones
    /// too) and fails without one; cpu uses all cores in f64. The adapter
    /// can be steered with WGPU_BACKEND, WGPU_ADAPTER_NAME and WGPU_POWER_PREF.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub(crate) backend: BackendChoice,
}

impl BackendArgs {
    /// Run `work` (a law fit or eval) with `opts.device` set as this
    /// choice says, telling what `auto` chose; under `auto`, a failure on
    /// the GPU is redone on the CPU with a warning naming `what` failed.
    pub(crate) fn run_law<T>(
        &self,
        opts: &mut LawFitOptions,
        what: &str,
        work: impl Fn(&LawFitOptions) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let (device, note) = self.law_device()?;
        if let Some(n) = note {
            tell!("note: {n}");
        }
        let auto_gpu = self.backend == BackendChoice::Auto && device.is_some();
        opts.device = device;
        match work(opts) {
            Err(e) if auto_gpu => {
                tell!("warning: the GPU {what} failed ({e:#}); redoing it on the CPU");
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
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.backend != BackendChoice::Cpu {
            sweepfit::backend::gpu::check_env()?;
        }
        Ok(())
    }
}

#[derive(Args)]
pub(crate) struct InputArgs {
    /// Long CSV: columns run (optional), N, T (optional), tokens (or D), loss, weight (optional).
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    input: Option<PathBuf>,
    /// Manifest CSV of per-run logs: file,N,T,tokens_per_step,step_col,loss_col,
    /// and optionally run (a label) and step_offset (added to a resumed log's
    /// steps); files are relative to the manifest's folder.
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

impl InputArgs {
    /// The input as a table for a law given with --law: a CSV as it is
    /// (every column kept), or a manifest's logs and the point filters
    /// through the sweep reader (columns run, N, T, tokens, loss, weight).
    pub(crate) fn table(&self, objective: &Objective) -> anyhow::Result<data::Table> {
        let f = &self.filter;
        let filtered = f.min_tokens.is_some() || f.max_tokens.is_some() || f.stride != 1;
        match (&self.input, &self.manifest) {
            (Some(p), None) if !filtered => Ok(data::Table::read(p)?),
            (Some(p), _) | (None, Some(p)) => {
                let ds = self.load(objective)?;
                Ok(data::Table::from_dataset(&ds, p))
            }
            (None, None) => bail!("give a CSV file or --manifest FILE"),
        }
    }

    /// Read the sweep and apply the filters.
    pub(crate) fn load(&self, objective: &Objective) -> anyhow::Result<Dataset> {
        let read = ReadOptions {
            positive_loss: objective.space == Space::Log,
        };
        let ds = match (&self.input, &self.manifest) {
            (Some(p), _) => data::read_long_csv(p, &read)?,
            (None, Some(m)) => data::read_manifest(m, &read)?,
            (None, None) => bail!("give a long CSV or --manifest FILE"),
        };
        let filter = Filter {
            min_tokens: self.filter.min_tokens,
            max_tokens: self.filter.max_tokens,
            stride: self.filter.stride as usize,
        };
        let ds = filter.apply(&ds);
        if ds.points() == 0 {
            bail!("no points left after --min-tokens/--max-tokens/--stride");
        }
        Ok(ds)
    }
}

#[derive(Args)]
struct FilterArgs {
    /// Drop points with fewer tokens.
    #[arg(long, value_parser = non_negative)]
    min_tokens: Option<f64>,
    /// Drop points with more tokens.
    #[arg(long, value_parser = non_negative)]
    max_tokens: Option<f64>,
    /// Keep every K-th point of each curve (starting with its first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    stride: u64,
}

#[derive(Args)]
pub(crate) struct FitFlags {
    /// The law: a built-in's name (`sweepfit laws` lists them) or a formula
    /// such as 'E + A/N^alpha + B/D^beta', whose names are variables where
    /// they name a column of the data and parameters otherwise. Every law
    /// is compiled and runs on the CPU or the GPU (--backend). A formula
    /// nests at most 256 levels (each operator, sign, call and parenthesis
    /// is one).
    #[arg(long, default_value = sweepfit::law::DEFAULT_LAW, conflicts_with = "law_file")]
    pub(crate) law: String,
    /// A law file (TOML) with declarations: `sweepfit laws looplm` prints one
    /// to start from.
    #[arg(long, value_name = "FILE")]
    pub(crate) law_file: Option<PathBuf>,
    /// Bind the law's variable NAME to the data column COLUMN, e.g.
    /// --var N=params (repeatable). Without it a variable reads the column
    /// of its own name, else the one its law file declares; in a bare
    /// formula, a name that finds no column is a parameter.
    #[arg(long = "var", value_name = "NAME=COLUMN", value_parser = parse_var)]
    pub(crate) vars: Vec<(String, String)>,
    /// The variable each curve runs along (e.g. D). A law file names its
    /// own; for a bare formula it is otherwise chosen as the variable whose
    /// values the curves share best, and the fit says which and why.
    #[arg(long, value_name = "VAR")]
    pub(crate) axis: Option<String>,
    /// Hold a parameter fixed, e.g. --fix t3=0 (repeatable, once per
    /// parameter; raw units, within the bounds the law declares).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_fix)]
    fix: Vec<(String, f64)>,
    /// Loss on residuals.
    #[arg(long, value_enum, default_value_t = LossKind::Mse)]
    loss: LossKind,
    /// Residuals of the loss (linear) or of its log (log).
    #[arg(long, value_enum, default_value_t = Space::Linear)]
    space: Space,
    /// Huber threshold, in the units of the residual.
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
    delta: f64,
    /// Draw K starts: the law's nonlinear parameters from their start
    /// ranges, the linear ones solved by least squares at each [default:
    /// 128].
    #[arg(long, value_name = "K")]
    starts: Option<usize>,
    /// Seed of the starts; in `fit`, also of the bootstrap's resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iteration limit of every start.
    #[arg(long, default_value_t = optim::Options::default().max_iter, value_parser = at_least_one)]
    max_iter: usize,
    /// Converged when a step lowers the objective by less than this, relative
    /// (three accepted steps in a row; for least-squares fits of other laws,
    /// Levenberg-Marquardt's stall rule).
    #[arg(long, default_value_t = optim::Options::default().ftol, value_parser = tolerance)]
    ftol: f64,
    /// Converged when the largest gradient entry is below this times the objective
    /// (L-BFGS; least-squares fits of other laws than looplm and chinchilla run
    /// Levenberg-Marquardt, which stops on its own tolerances).
    #[arg(long, default_value_t = optim::Options::default().gtol, value_parser = tolerance)]
    gtol: f64,
}

#[derive(Args)]
pub(crate) struct BootstrapArgs {
    /// Bootstrap with B replicates per resampling scheme, refitted in one
    /// batch from the best fit; fit.json and the table then give every
    /// free parameter's standard error and percentile interval, and
    /// `predict` adds bands.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(2..))]
    bootstrap: Option<u64>,
    /// What the bootstrap resamples: whole curves (with replacement),
    /// points (Poisson(1) counts), or both, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "curves,points"
    )]
    resample: Vec<Resample>,
    /// Coverage of the bootstrap's percentile intervals and of --profile's.
    #[arg(long, default_value_t = 0.95, value_parser = fraction)]
    level: f64,
}

impl BootstrapArgs {
    /// --level, which --profile's intervals share.
    pub(crate) fn level(&self) -> f64 {
        self.level
    }

    /// The bootstrap asked for, checked before any work starts.
    pub(crate) fn options(
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

#[derive(Args)]
pub(crate) struct SimFlags {
    /// Points per curve.
    #[arg(long, default_value_t = 500)]
    points: usize,
    /// Standard deviation of the per-point noise, in loss units.
    #[arg(long, default_value_t = 0.02, value_parser = non_negative)]
    noise: f64,
    /// Amplitude of an early warm-up transient above the law (0 = none).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    warmup: f64,
    /// Late rise of the shallow steps of the two smallest models (0 = none).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    late_rise: f64,
}

impl SimFlags {
    /// The noise of a simulation of a law given with --law, which takes
    /// its rows from --at: the looplm20 sweep's shape options do not apply.
    pub(crate) fn law_noise(&self) -> anyhow::Result<f64> {
        if self.points != 500 || self.warmup != 0.0 || self.late_rise != 0.0 {
            bail!("--points, --warmup and --late-rise shape the looplm20 preset; with --law the rows come from --at");
        }
        Ok(self.noise)
    }
}

/// `NAME=COLUMN` of --var; both sides checked against the law and the
/// data once they are known.
pub(crate) fn parse_var(s: &str) -> Result<(String, String), String> {
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

pub(crate) fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 0.0, "a finite number >= 0")
}

pub(crate) fn positive(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0, "a finite number > 0")
}

/// Strictly between 0 and 1: a coverage level or a fraction.
pub(crate) fn fraction(s: &str) -> Result<f64, String> {
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
    /// The law file asked for, its text, and where it came from (for
    /// error messages): a file, a built-in, or a bare formula.
    pub(crate) fn law_source(&self) -> anyhow::Result<(LawFile, String, String)> {
        law_source(Some(&self.law), self.law_file.as_deref())
    }
    /// How the law's names bind to the data: --var, and the columns
    /// `used` otherwise (--by, --test-where).
    pub(crate) fn bind_options(
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
        }
    }

    /// Options of a fit of any law from a table, checked before any work
    /// starts.
    pub(crate) fn law_fit_options(
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
pub(crate) fn law_source(
    law: Option<&str>,
    law_file: Option<&std::path::Path>,
) -> anyhow::Result<(LawFile, String, String)> {
    if let Some(path) = law_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the law file: {e}", path.display()))?;
        let origin = path.display().to_string();
        return Ok((LawFile::parse(&text, &origin)?, text, origin));
    }
    let name = law.unwrap_or(sweepfit::law::DEFAULT_LAW).trim();
    if let Some(text) = sweepfit::law::builtin(name) {
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
            sweepfit::law::builtin_names().join(", ")
        );
    }
    let file = LawFile::from_formula(name)?;
    let text = format!("name = \"custom\"\nformula = {name:?}\n");
    Ok((file, text, "--law".to_string()))
}

pub(crate) fn sim_options(seed: u64, s: &SimFlags) -> anyhow::Result<SimOptions> {
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
