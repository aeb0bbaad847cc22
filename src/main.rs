//! The sweepfit command line: parse, call the library, print.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use sweepfit::backend::gpu::{self, AdapterSummary};
use sweepfit::backend::{self, BackendChoice, Prepared};
use sweepfit::bootstrap::{self, BootstrapOptions, Resample};
use sweepfit::data::{self, Dataset, Filter, ReadOptions};
use sweepfit::eval::{self, EvalOptions, Protocol};
use sweepfit::fit::{self, FitOptions, FitOutput};
use sweepfit::law::{LawKind, PARAM_NAMES};
use sweepfit::objective::{LossKind, Objective, Space};
use sweepfit::optim::{self, Progress};
use sweepfit::report;
use sweepfit::simulate::{self, SimOptions};

/// Fit neural scaling laws to whole sweeps of training runs.
///
/// The law is L(N, D, T) = E + A/(N+t1)^alpha + B/(D+t2)^beta + C/(T+t3)^gamma
/// with N the model size, D the tokens seen and T the recurrent step; all
/// ten parameters are shared by every curve of the sweep.
#[derive(Parser)]
#[command(name = "sweepfit", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit the law to a long CSV or to per-run logs listed in a manifest.
    Fit(FitArgs),
    /// Write a simulated sweep (long CSV) and its true parameters (JSON).
    Simulate(SimulateArgs),
    /// Measure how well the law extrapolates: refit on part of the sweep and
    /// score the prediction of the rest (R2, RMSE, MAPE on held-out points).
    ///
    /// Protocols: sizes trains on every choice of --train-sizes model sizes
    /// and predicts the others (10 folds for 5 sizes); tokens trains on the
    /// first 25/50/75% of every curve's tokens and predicts the rest;
    /// leave-t leaves each recurrent step T out in turn. Every fold, and a
    /// fit on all points for comparison, runs as one batch with the full
    /// set of starts. Writes OUT/eval.json and OUT/eval.csv (one row per
    /// fold) and prints the table.
    ///
    /// Example: sweepfit eval sweep.csv --out eval-out --plot
    Eval(EvalArgs),
    /// Simulate the 20-curve LoopLM sweep in memory and fit it.
    Demo(DemoArgs),
    /// List the GPU adapters wgpu can see, with the limits that matter here.
    Devices(DevicesArgs),
    /// Time the backends: evaluation throughput, per-call overhead and
    /// end-to-end fits on the CPU and the GPU.
    Bench(BenchArgs),
    /// Predict loss curves from a fit.json on a grid of N, T and tokens (CSV).
    ///
    /// Writes the columns N,T,tokens,pred, one row per point of the Cartesian
    /// product of --N, --T and --tokens: N outermost, then T, then tokens,
    /// each in the order given. pred is the law at the fitted parameters.
    /// When the fit was bootstrapped (fit --bootstrap B), every resampling
    /// scheme adds two columns, lo_<kind> and hi_<kind> (e.g. lo_curves,
    /// hi_curves): the percentile band of the replicates' predictions at
    /// the fit's interval level. Warns on stderr when N or T lies outside
    /// the fitted configurations (fit.json does not record the token range).
    ///
    /// Example: sweepfit predict --fit sweepfit-out/fit.json --N 2.8e9 --T 1:4:4
    /// --tokens 1e9:40e9:100 --out pred.csv
    Predict(PredictArgs),
    /// Draw the Real-vs-Pred grid of a fit: one panel per curve, rows by T,
    /// columns by N, observed loss solid and the law dashed (PNG or SVG).
    ///
    /// Without --fit, --data must be a pred.csv (as `fit` writes) and its
    /// pred column is drawn. With --fit, the predictions are computed from
    /// that fit.json's parameters, so --data may be any long CSV (e.g. runs
    /// the fit did not see); --data then defaults to pred.csv beside the
    /// fit.json. The loss axis is shared and clipped to the 0.5th..99.5th
    /// percentile of all losses (plus 5%), so the first steps of each curve
    /// (loss ~11) run off the top rather than flatten the rest.
    ///
    /// Example: sweepfit plot --fit sweepfit-out/fit.json --out grid.svg
    Plot(PlotArgs),
}

#[derive(Args)]
struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BackendArgs {
    /// Where to evaluate the objective: auto uses a hardware GPU when there
    /// is one and the CPU otherwise; gpu accepts any adapter (software ones
    /// too) and fails without one; cpu uses all cores in f64. The adapter
    /// can be steered with WGPU_BACKEND, WGPU_ADAPTER_NAME and WGPU_POWER_PREF.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
}

#[derive(Args)]
struct InputArgs {
    /// Long CSV: columns run (optional), N, T (optional), tokens (or D), loss, weight (optional).
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    input: Option<PathBuf>,
    /// Manifest CSV of per-run logs: file,N,T,tokens_per_step,step_col,loss_col.
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

impl InputArgs {
    /// Read the sweep and apply the filters.
    fn load(&self, objective: &Objective) -> anyhow::Result<Dataset> {
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
struct FitArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output directory for fit.json and pred.csv.
    #[arg(long, default_value = "sweepfit-out")]
    out: PathBuf,
    /// Write into a non-empty output directory (replacing fit.json and pred.csv).
    #[arg(long)]
    force: bool,
    /// Also write every start (raw units, one row per start) to OUT/starts.csv,
    /// e.g. to run another optimiser from the same starts.
    #[arg(long)]
    save_starts: bool,
    /// Also draw the Real-vs-Pred grid to OUT/grid.png and OUT/grid.svg.
    #[arg(long)]
    plot: bool,
    #[command(flatten)]
    fit: FitFlags,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Args)]
struct BootstrapArgs {
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
    /// Coverage of the percentile intervals.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
}

impl BootstrapArgs {
    fn options(&self, fit: &FitOptions) -> Option<BootstrapOptions> {
        let mut resamples: Vec<Resample> = Vec::new();
        for r in &self.resample {
            if !resamples.contains(r) {
                resamples.push(*r);
            }
        }
        self.bootstrap.map(|b| BootstrapOptions {
            replicates: b as usize,
            resamples,
            // Separate from the starts' seed use by construction (the
            // resampling streams are keyed by kind).
            seed: fit.seed,
            level: self.level,
            lbfgs: fit.lbfgs,
        })
    }
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output directory for eval.json and eval.csv.
    #[arg(long, default_value = "sweepfit-eval")]
    out: PathBuf,
    /// Write into a non-empty output directory (replacing what eval writes).
    #[arg(long)]
    force: bool,
    /// Protocols to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sizes,tokens,leave-t"
    )]
    protocol: Vec<Protocol>,
    /// Model sizes each `sizes` fold trains on.
    #[arg(long, default_value_t = 3)]
    train_sizes: usize,
    /// Token fractions of the `tokens` protocol, comma-separated, each in (0, 1).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75")]
    fractions: Vec<f64>,
    /// Also draw every fold's Real-vs-Pred grid, held-out points marked, to
    /// OUT/folds/*.png.
    #[arg(long)]
    plot: bool,
    #[command(flatten)]
    fit: FitFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Args)]
struct FilterArgs {
    /// Drop points with fewer tokens.
    #[arg(long)]
    min_tokens: Option<f64>,
    /// Drop points with more tokens.
    #[arg(long)]
    max_tokens: Option<f64>,
    /// Keep every K-th point of each curve (starting with its first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    stride: u64,
}

#[derive(Args)]
struct FitFlags {
    /// Form of the law; chinchilla fixes t1 = t2 = 0 and C = 0.
    #[arg(long, value_enum, default_value_t = LawKind::Looplm)]
    law: LawKind,
    /// Hold a parameter fixed, e.g. --fix t3=0 (repeatable; raw units).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_fix)]
    fix: Vec<(String, f64)>,
    /// Loss on residuals.
    #[arg(long, value_enum, default_value_t = LossKind::Mse)]
    loss: LossKind,
    /// Residuals of the loss (linear) or of its log (log).
    #[arg(long, value_enum, default_value_t = Space::Linear)]
    space: Space,
    /// Huber threshold, in the units of the residual.
    #[arg(long, default_value_t = 1e-3)]
    delta: f64,
    /// Use K random starts instead of the default grid (at least 256 starts).
    #[arg(long, value_name = "K")]
    starts: Option<usize>,
    /// Seed of the random starts and of the bootstrap's resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iteration limit of every start.
    #[arg(long, default_value_t = optim::Options::default().max_iter)]
    max_iter: usize,
    /// Converged when a step lowers the objective by less than this, relative.
    #[arg(long, default_value_t = optim::Options::default().ftol)]
    ftol: f64,
    /// Converged when the largest gradient entry is below this times the objective.
    #[arg(long, default_value_t = optim::Options::default().gtol)]
    gtol: f64,
}

#[derive(Args)]
struct SimulateArgs {
    /// Sweep shape: looplm20 is T = 1..4 for N = 53M..1.36B over 0..20B tokens.
    #[arg(long, default_value = "looplm20", value_parser = ["looplm20"])]
    preset: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Long CSV to write; the true parameters go next to it as FILE.truth.json.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sim: SimFlags,
}

#[derive(Args)]
struct SimFlags {
    /// Points per curve.
    #[arg(long, default_value_t = 500)]
    points: usize,
    /// Standard deviation of the per-point noise, in loss units.
    #[arg(long, default_value_t = 0.02)]
    noise: f64,
    /// Amplitude of an early warm-up transient above the law (0 = none).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Late rise of the shallow steps of the two smallest models (0 = none).
    #[arg(long, default_value_t = 0.0)]
    late_rise: f64,
}

#[derive(Args)]
struct DemoArgs {
    /// Seed of the simulated noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write fit.json and pred.csv here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sim: SimFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

fn parse_fix(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))?;
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    let i = fit::param_index(name.trim()).map_err(|e| e.to_string())?;
    Ok((PARAM_NAMES[i].to_string(), v))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fit(a) => cmd_fit(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Simulate(a) => cmd_simulate(a),
        Command::Demo(a) => cmd_demo(a),
        Command::Devices(a) => cmd_devices(a),
        Command::Bench(a) => cmd_bench(a),
        Command::Predict(a) => cmd_predict(a),
        Command::Plot(a) => cmd_plot(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn fit_options(f: &FitFlags) -> anyhow::Result<FitOptions> {
    if !(f.delta > 0.0 && f.delta.is_finite()) {
        bail!("--delta must be a positive number, got {}", f.delta);
    }
    Ok(FitOptions {
        law: f.law,
        objective: Objective {
            loss: f.loss,
            space: f.space,
            delta: f.delta,
        },
        fix: f.fix.clone(),
        starts: f.starts,
        seed: f.seed,
        lbfgs: optim::Options {
            max_iter: f.max_iter,
            ftol: f.ftol,
            gtol: f.gtol,
            ..Default::default()
        },
    })
}

fn sim_options(seed: u64, s: &SimFlags) -> anyhow::Result<SimOptions> {
    if s.points < 2 {
        bail!("--points must be at least 2");
    }
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

/// Refuse to write into a non-empty directory unless forced. Checked
/// before any work; the directory is only created once there is something
/// to write, so a failed run leaves nothing behind.
fn check_out_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("--out {}: exists and is not a directory", dir.display());
        }
        let non_empty = std::fs::read_dir(dir)?.next().is_some();
        if non_empty && !force {
            bail!("--out {}: directory is not empty (use --force to replace fit.json and pred.csv there)", dir.display());
        }
    }
    Ok(())
}

/// Fit (and bootstrap, when asked) with progress on the terminal. With
/// `auto`, a GPU that fails mid-fit (device lost, out of memory) hands the
/// work to the CPU.
fn run_fit(
    ds: &Dataset,
    opts: &FitOptions,
    boot: Option<&BootstrapOptions>,
    choice: BackendChoice,
) -> anyhow::Result<FitOutput> {
    let prepared = Prepared::new(ds, opts.objective);
    let (mut backend, note) = backend::create(choice, &prepared)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let result = fit_and_bootstrap(ds, &prepared, opts, boot, backend.as_mut());
    match result {
        Err(e) if choice == BackendChoice::Auto && backend.info().kind == "gpu" => {
            eprintln!("warning: the GPU fit failed ({e:#}); fitting on the CPU instead");
            let mut cpu = backend::CpuBackend::new(prepared.clone());
            fit_and_bootstrap(ds, &prepared, opts, boot, &mut cpu)
        }
        other => other,
    }
}

fn fit_and_bootstrap(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    boot: Option<&BootstrapOptions>,
    backend: &mut dyn backend::Backend,
) -> anyhow::Result<FitOutput> {
    let mut out = fit_with_bar(ds, prepared, opts, backend)?;
    if let Some(b) = boot {
        let bar = spinner();
        let report = bootstrap::bootstrap(prepared, &out, b, backend, |p: Progress| {
            bar.set_message(format!(
                "bootstrap: iteration {} · {} replicates active",
                p.iteration, p.active
            ));
            bar.tick();
        });
        bar.finish_and_clear();
        out.report.bootstrap = Some(report?);
    }
    Ok(out)
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
    );
    bar
}

fn fit_with_bar(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    backend: &mut dyn backend::Backend,
) -> anyhow::Result<FitOutput> {
    let bar = spinner();
    let out = fit::fit(ds, prepared, opts, backend, |p: Progress| {
        bar.set_message(format!(
            "iteration {} · {} starts active · best objective {:.6e}",
            p.iteration, p.active, p.best
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    out
}

fn cmd_devices(a: DevicesArgs) -> anyhow::Result<()> {
    let inst = gpu::instance();
    let adapters: Vec<AdapterSummary> = gpu::all_adapters(&inst)
        .iter()
        .map(AdapterSummary::of)
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    if adapters.is_empty() {
        println!("no GPU adapters found (the CPU backend is always available)");
        return Ok(());
    }
    for (i, ad) in adapters.iter().enumerate() {
        println!("[{i}] {}", ad.name);
        println!(
            "    backend {}, {}, driver {} {}",
            ad.backend, ad.device_type, ad.driver, ad.driver_info
        );
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, max workgroups per dimension {}, workgroup storage {} KiB, invocations per workgroup {}",
            ad.max_storage_buffer_binding_size >> 20,
            ad.max_buffer_size >> 20,
            ad.max_compute_workgroups_per_dimension,
            ad.max_compute_workgroup_storage_size >> 10,
            ad.max_compute_invocations_per_workgroup
        );
    }
    Ok(())
}

fn write_outputs(dir: &Path, ds: &Dataset, out: &FitOutput) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    report::write_fit_json(&dir.join("fit.json"), &out.report)?;
    report::write_pred_csv(&dir.join("pred.csv"), ds, &out.params)?;
    println!(
        "wrote {} and {}",
        dir.join("fit.json").display(),
        dir.join("pred.csv").display()
    );
    Ok(())
}

fn cmd_fit(a: FitArgs) -> anyhow::Result<()> {
    let opts = fit_options(&a.fit)?;
    check_out_dir(&a.out, a.force)?;
    let ds = a.input.load(&opts.objective)?;
    let boot = a.bootstrap.options(&opts);
    let out = run_fit(&ds, &opts, boot.as_ref(), a.backend.backend)?;
    println!("{}", report::summary(&out.report));
    write_outputs(&a.out, &ds, &out)?;
    if a.plot {
        write_grid_pictures(&a.out, &ds, &out.params)?;
    }
    if a.save_starts {
        let path = a.out.join("starts.csv");
        let mut w = csv::Writer::from_path(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(PARAM_NAMES)?;
        for s in &out.starts {
            w.write_record(s.iter().map(|v| v.to_string()))?;
        }
        w.flush()?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> anyhow::Result<()> {
    let opts = fit_options(&a.fit)?;
    check_out_dir(&a.out, a.force)?;
    let ds = a.input.load(&opts.objective)?;
    let mut protocols = Vec::new();
    for p in &a.protocol {
        if !protocols.contains(p) {
            protocols.push(*p);
        }
    }
    let eval_opts = EvalOptions {
        protocols,
        train_sizes: a.train_sizes,
        fractions: a.fractions.clone(),
    };
    let prepared = Prepared::new(&ds, opts.objective);
    let (mut backend, note) = backend::create(a.backend.backend, &prepared)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let run = |b: &mut dyn backend::Backend| {
        let bar = spinner();
        let out = eval::evaluate(&ds, &prepared, &opts, &eval_opts, b, |p: Progress| {
            bar.set_message(format!(
                "iteration {} · {} starts active across all folds",
                p.iteration, p.active
            ));
            bar.tick();
        });
        bar.finish_and_clear();
        out
    };
    let out = match run(backend.as_mut()) {
        Err(e) if a.backend.backend == BackendChoice::Auto && backend.info().kind == "gpu" => {
            eprintln!("warning: the GPU evaluation failed ({e:#}); running on the CPU instead");
            run(&mut backend::CpuBackend::new(prepared.clone()))?
        }
        other => other?,
    };
    print!("{}", report::eval_summary(&out.report));
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let (json, csv) = (a.out.join("eval.json"), a.out.join("eval.csv"));
    report::write_eval_json(&json, &out.report)?;
    report::write_eval_csv(&csv, &out.report)?;
    println!("wrote {} and {}", json.display(), csv.display());
    if a.plot {
        let dir = a.out.join("folds");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, (fold, params)) in out.folds.iter().zip(&out.params).enumerate() {
            let mut held = vec![false; ds.points()];
            for j in fold.held_out(&ds) {
                held[j] = true;
            }
            let panels = report::panels_from_dataset(&ds, params, Some(&held))?;
            let path = dir.join(format!("{:02}-{}.png", i + 1, slug(&fold.label)));
            report::draw_grid(&path, &panels, &report::PlotOptions::default())?;
        }
        println!(
            "wrote {} fold pictures to {}",
            out.folds.len(),
            dir.display()
        );
    }
    Ok(())
}

/// A file-name-safe form of a fold label: "train N = 53M, 134M" ->
/// "train-N-53M-134M".
fn slug(label: &str) -> String {
    let mut s = String::new();
    for ch in label.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            s.push(ch);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

fn cmd_simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let o = sim_options(a.seed, &a.sim)?;
    let truth_path = PathBuf::from(format!("{}.truth.json", a.out.display()));
    for p in [&a.out, &truth_path] {
        if p.exists() && !a.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    let ds = simulate::simulate_looplm20(&o);
    data::write_long_csv(&a.out, &ds)?;
    simulate::write_truth_json(&truth_path, &o)?;
    println!(
        "wrote {} ({} curves, {} points) and {}",
        a.out.display(),
        ds.configs.len(),
        ds.points(),
        truth_path.display()
    );
    Ok(())
}

fn cmd_demo(a: DemoArgs) -> anyhow::Result<()> {
    let o = sim_options(a.seed, &a.sim)?;
    if let Some(dir) = &a.out {
        check_out_dir(dir, a.force)?;
    }
    let ds = simulate::simulate_looplm20(&o);
    println!(
        "demo: simulated the looplm20 sweep ({} curves, {} points, noise sd {}), fitting it with the default {}-start grid",
        ds.configs.len(),
        ds.points(),
        o.noise,
        optim::MIN_GRID
    );
    let out = run_fit(&ds, &FitOptions::default(), None, a.backend.backend)?;
    println!("{}", report::summary(&out.report));
    let truth = simulate::looplm20_truth();
    println!(
        "{:<8} {:>14} {:>14} {:>10}",
        "param", "true", "fitted", "rel. err"
    );
    for i in 0..PARAM_NAMES.len() {
        let rel = (out.params[i] - truth[i]).abs() / truth[i].abs().max(1e-300);
        println!(
            "{:<8} {:>14.6e} {:>14.6e} {:>9.2}%",
            PARAM_NAMES[i],
            truth[i],
            out.params[i],
            100.0 * rel
        );
    }
    if let Some(dir) = &a.out {
        write_outputs(dir, &ds, &out)?;
    }
    Ok(())
}

#[derive(Args)]
struct BenchArgs {
    /// Small grid for a smoke test: points 1e4,1e5, starts 1,128, 0.2 s cells.
    #[arg(long)]
    quick: bool,
    /// Sweep sizes in points, comma-separated [default: 1e4,1e5,1e6,1e7].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    points: Option<Vec<usize>>,
    /// Parameter vectors per evaluation, comma-separated [default: 1,16,128,1024,4096].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    starts: Option<Vec<usize>>,
    /// Time each cell for about this long after one warm-up [default: 0.5, --quick 0.2].
    #[arg(long, value_name = "S")]
    seconds_per_cell: Option<f64>,
    /// Skip cells that smaller cells say would take longer per evaluation.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    max_eval_seconds: f64,
    /// Skip the end-to-end fits (demo sweep, Pythia sweep).
    #[arg(long)]
    no_fits: bool,
    /// Bench the CPU only.
    #[arg(long)]
    no_gpu: bool,
    /// Also write the results as JSON to FILE; with '-', the JSON goes to
    /// stdout and the table to stderr.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn cmd_bench(a: BenchArgs) -> anyhow::Result<()> {
    use sweepfit::bench;
    let mut o = if a.quick {
        bench::BenchOptions::quick()
    } else {
        bench::BenchOptions::full()
    };
    o.points = a.points.unwrap_or(o.points);
    o.starts = a.starts.unwrap_or(o.starts);
    o.seconds_per_cell = a.seconds_per_cell.unwrap_or(o.seconds_per_cell);
    o.max_eval_seconds = a.max_eval_seconds;
    o.fits = !a.no_fits;
    o.gpu = !a.no_gpu;
    let report = bench::run(&o)?;
    let table = bench::render(&report);
    match &a.json {
        Some(p) if p.as_os_str() == "-" => eprint!("{table}"),
        _ => print!("{table}"),
    }
    if let Some(p) = &a.json {
        bench::write_json(p, &report)?;
    }
    Ok(())
}

#[derive(Args)]
struct PredictArgs {
    /// fit.json written by `sweepfit fit` (or `demo --out`).
    #[arg(long, value_name = "FILE")]
    fit: PathBuf,
    /// Model sizes (> 0). A comma list of numbers and ranges
    /// START:STOP:COUNT[:lin|:log]: COUNT evenly spaced values including
    /// both ends, linearly (default) or logarithmically spaced; COUNT 1
    /// needs START == STOP. Standard float syntax (2.8e9, not 2_800_000_000).
    /// Examples: 2.8e9 | 1e8,1e9 | 1e8:1e10:9:log
    #[arg(long = "N", value_name = "LIST", allow_hyphen_values = true)]
    n: String,
    /// Recurrent steps (> 0), same syntax as --N, e.g. 1:4:4 or 1,2,4,8.
    #[arg(long = "T", value_name = "LIST", allow_hyphen_values = true)]
    t: String,
    /// Tokens seen (>= 0), same syntax as --N, e.g. 1e9:40e9:100.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    tokens: String,
    /// CSV file to write [default: stdout].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    force: bool,
}

fn cmd_predict(a: PredictArgs) -> anyhow::Result<()> {
    use sweepfit::predict::{self, Grid, Predictor};
    let grid = Grid::parse(&a.n, &a.t, &a.tokens)?;
    if let Some(p) = &a.out {
        if p.is_dir() {
            bail!("--out {}: is a directory", p.display());
        }
        if p.exists() && !a.force {
            bail!("--out {}: exists (use --force to replace it)", p.display());
        }
    }
    let report = report::read_fit_json(&a.fit)?;
    let predictor = Predictor::from_report(&report).with_context(|| a.fit.display().to_string())?;
    for w in predict::extrapolation_warnings(&report, &grid) {
        eprintln!("warning: {w}");
    }
    let written = match &a.out {
        Some(p) => {
            let file = std::fs::File::create(p)
                .with_context(|| format!("cannot write {}", p.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let written = predict::write_csv(&mut w, &grid, &predictor)
                .with_context(|| format!("writing {}", p.display()))?;
            let s = if written.rows == 1 { "" } else { "s" };
            eprintln!("wrote {} ({} row{s})", p.display(), written.rows);
            written
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            match predict::write_csv(&mut w, &grid, &predictor) {
                Ok(written) => written,
                // A closed pipe (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout")),
            }
        }
    };
    if written.non_finite > 0 {
        eprintln!(
            "warning: {} of {} predictions are not finite (e.g. tokens = 0 with t2 = 0)",
            written.non_finite, written.rows
        );
    }
    Ok(())
}

#[derive(Args)]
struct PlotArgs {
    /// fit.json of a fit; the predictions are computed from its parameters.
    #[arg(long, value_name = "FILE", required_unless_present = "data")]
    fit: Option<PathBuf>,
    /// Curves to draw: a pred.csv (run,N,T,tokens,loss,pred), or with --fit
    /// any long CSV [default: pred.csv beside --fit].
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Picture to write, PNG or SVG by its extension [default: grid.png
    /// beside --data].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    force: bool,
}

fn cmd_plot(a: PlotArgs) -> anyhow::Result<()> {
    let data = match (&a.data, &a.fit) {
        (Some(d), _) => d.clone(),
        (None, Some(f)) => f.with_file_name("pred.csv"),
        (None, None) => bail!("give --data FILE, --fit FILE or both"),
    };
    let out = a.out.unwrap_or_else(|| data.with_file_name("grid.png"));
    report::PlotFormat::from_path(&out)?;
    if out.exists() && !a.force {
        bail!("{} exists (use --force to replace it)", out.display());
    }
    let panels = match &a.fit {
        Some(f) => {
            let params = report::fit_params(&report::read_fit_json(f)?)
                .with_context(|| f.display().to_string())?;
            let ds = data::read_long_csv(&data, &ReadOptions::default())?;
            report::panels_from_dataset(&ds, &params, None)?
        }
        None => report::read_pred_csv(&data)?,
    };
    report::draw_grid(&out, &panels, &report::PlotOptions::default())?;
    println!("wrote {}", out.display());
    Ok(())
}

/// `fit --plot`: the grid next to fit.json, as PNG and SVG.
fn write_grid_pictures(
    dir: &Path,
    ds: &Dataset,
    params: &[f64; sweepfit::law::NP],
) -> anyhow::Result<()> {
    let panels = report::panels_from_dataset(ds, params, None)?;
    for name in ["grid.png", "grid.svg"] {
        let path = dir.join(name);
        report::draw_grid(&path, &panels, &report::PlotOptions::default())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
