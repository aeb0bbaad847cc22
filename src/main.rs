//! The sweepfit command line: parse, call the library, print.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use sweepfit::backend::gpu::{self, AdapterSummary};
use sweepfit::backend::{self, BackendChoice, Prepared};
use sweepfit::data::{self, Dataset, Filter, ReadOptions};
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
    /// Simulate the 20-curve LoopLM sweep in memory and fit it.
    Demo(DemoArgs),
    /// List the GPU adapters wgpu can see, with the limits that matter here.
    Devices(DevicesArgs),
    /// Time the backends: evaluation throughput, per-call overhead and
    /// end-to-end fits on the CPU and the GPU.
    Bench(BenchArgs),
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
struct FitArgs {
    /// Long CSV: columns run (optional), N, T (optional), tokens (or D), loss, weight (optional).
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    input: Option<PathBuf>,
    /// Manifest CSV of per-run logs: file,N,T,tokens_per_step,step_col,loss_col.
    #[arg(long)]
    manifest: Option<PathBuf>,
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
    #[command(flatten)]
    filter: FilterArgs,
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
    /// Seed of the random starts.
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
        Command::Simulate(a) => cmd_simulate(a),
        Command::Demo(a) => cmd_demo(a),
        Command::Devices(a) => cmd_devices(a),
        Command::Bench(a) => cmd_bench(a),
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

/// Fit with a progress bar on the terminal. With `auto`, a GPU that fails
/// mid-fit (device lost, out of memory) hands the fit to the CPU.
fn run_fit(ds: &Dataset, opts: &FitOptions, choice: BackendChoice) -> anyhow::Result<FitOutput> {
    let prepared = Prepared::new(ds, opts.objective);
    let (mut backend, note) = backend::create(choice, &prepared)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let result = fit_with_bar(ds, &prepared, opts, backend.as_mut());
    match result {
        Err(e) if choice == BackendChoice::Auto && backend.info().kind == "gpu" => {
            eprintln!("warning: the GPU fit failed ({e:#}); fitting on the CPU instead");
            let mut cpu = backend::CpuBackend::new(prepared.clone());
            fit_with_bar(ds, &prepared, opts, &mut cpu)
        }
        other => other,
    }
}

fn fit_with_bar(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    backend: &mut dyn backend::Backend,
) -> anyhow::Result<FitOutput> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
    );
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
    let read = ReadOptions {
        positive_loss: opts.objective.space == Space::Log,
    };
    let ds = match (&a.input, &a.manifest) {
        (Some(p), _) => data::read_long_csv(p, &read)?,
        (None, Some(m)) => data::read_manifest(m, &read)?,
        (None, None) => bail!("give a long CSV or --manifest FILE"),
    };
    let filter = Filter {
        min_tokens: a.filter.min_tokens,
        max_tokens: a.filter.max_tokens,
        stride: a.filter.stride as usize,
    };
    let ds = filter.apply(&ds);
    if ds.points() == 0 {
        bail!("no points left after --min-tokens/--max-tokens/--stride");
    }
    let out = run_fit(&ds, &opts, a.backend.backend)?;
    println!("{}", report::summary(&out.report));
    write_outputs(&a.out, &ds, &out)?;
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
    let out = run_fit(&ds, &FitOptions::default(), a.backend.backend)?;
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
