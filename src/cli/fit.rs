//! `fit` and `demo`, and the fitting both share: progress, the GPU-to-CPU
//! fallback, the bootstrap and the output files.

use std::path::PathBuf;

use clap::Args;

use sweepfit::backend::{self, BackendChoice, Prepared};
use sweepfit::bootstrap::{self, BootstrapOptions};
use sweepfit::data::{Dataset, Selector};
use sweepfit::fit::{self, FitOptions, FitOutput};
use sweepfit::law::PARAM_NAMES;
use sweepfit::lawfit;
use sweepfit::output;
use sweepfit::profile::{ProfileReport, ProfileRequest};
use sweepfit::report;
use sweepfit::simulate;

use super::args::{
    fit_options, sim_options, BackendArgs, BootstrapArgs, FitFlags, InputArgs, SimFlags,
};
use super::term::{say, tell};
use super::{bootstrap_message, check_out_dir, fit_message, with_spinner, OutDir};

#[derive(Args)]
pub(crate) struct FitArgs {
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
    /// Also draw the Real-vs-Pred grid to OUT/grid.png and OUT/grid.svg,
    /// and the residuals (pred − loss) to OUT/residuals.png and
    /// OUT/residuals.svg; with --profile, each parameter's profile curve,
    /// its threshold and its interval to OUT/profile.png and
    /// OUT/profile.svg.
    #[arg(long)]
    plot: bool,
    /// The pictures' x axis: auto is log where the x values span two
    /// decades or more, else linear.
    #[arg(long, value_enum, default_value_t = report::XScale::Auto)]
    x_scale: report::XScale,
    #[command(flatten)]
    fit: FitFlags,
    /// Fit the law separately to every group of rows with equal values in
    /// these columns (e.g. --by run), all groups in one batch.
    #[arg(long, value_name = "COLUMN[,COLUMN]", value_delimiter = ',')]
    by: Vec<String>,
    /// Hold out the rows whose COLUMN equals VALUE (e.g. split=test): fit
    /// the others, and score these in fit.json's `test`.
    #[arg(long, value_name = "COLUMN=VALUE", value_parser = Selector::parse)]
    test_where: Option<Selector>,
    /// Profile-likelihood intervals at --level: for the parameters named
    /// (e.g. --profile gamma,t3), or every free one when given alone. Each
    /// parameter is held at 22 values around the optimum and the others
    /// refitted; fit.json's `profile` has the intervals and the curves.
    /// mse fits without --by only.
    #[arg(
        long,
        value_name = "NAME[,NAME]",
        num_args = 0..=1,
        value_delimiter = ',',
        default_missing_value = ""
    )]
    profile: Option<Vec<String>>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

impl FitArgs {
    /// What --profile asks for, at the bootstrap's --level.
    fn profile(&self) -> Option<ProfileRequest> {
        self.profile.as_ref().map(|names| ProfileRequest {
            names: names.iter().filter(|n| !n.is_empty()).cloned().collect(),
            level: self.bootstrap.level(),
        })
    }
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Seed of the simulated noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write fit.json and pred.csv here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write into a non-empty --out directory (replacing fit.json and pred.csv).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sim: SimFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

pub(crate) fn cmd_fit(a: FitArgs) -> anyhow::Result<()> {
    if a.fit.hand_written().is_none() || !a.by.is_empty() || a.test_where.is_some() {
        return cmd_fit_law(a);
    }
    // Every option is checked before any work starts.
    let mut opts = fit_options(&a.fit)?;
    opts.profile = a.profile();
    let boot = a.bootstrap.options(&opts)?;
    a.backend.check()?;
    let out_dir = check_out_dir(&a.out, a.force)?;
    let binding = a.input.sweep_binding(opts.law);
    tell!("note: {binding}");
    let ds = a.input.load(&opts.objective)?;
    let mut out = run_fit(&ds, &opts, boot.as_ref(), a.backend.backend)?;
    let params: Vec<&str> = out.report.params.keys().map(String::as_str).collect();
    let binding = format!("{binding}; parameters: {}", params.join(", "));
    // After the input's notes, which come first.
    out.report.notes.push(binding);
    // Files first: a closed or full stdout must not lose the fit.
    let mut written = write_outputs(&out_dir, &ds, &out)?;
    if a.plot {
        written.extend(write_fit_pictures(&out_dir, &ds, &out, a.x_scale)?);
    }
    if a.save_starts {
        let path = out_dir.join("starts.csv");
        output::write_file(&path, |f| {
            let mut w = csv::Writer::from_writer(f);
            w.write_record(PARAM_NAMES)?;
            for s in &out.starts {
                w.write_record(s.iter().map(|v| v.to_string()))?;
            }
            w.flush()?;
            Ok(())
        })?;
        written.push("starts.csv");
    }
    out_dir.commit()?;
    out_dir.warn_stale(&written);
    say!("{}", report::summary(&out.report));
    say!("wrote {}", list_written(&out_dir, &written));
    Ok(())
}

pub(crate) fn cmd_demo(a: DemoArgs) -> anyhow::Result<()> {
    let o = sim_options(a.seed, &a.sim)?;
    a.backend.check()?;
    let out_dir = match &a.out {
        Some(dir) => Some(check_out_dir(dir, a.force)?),
        None => None,
    };
    let ds = simulate::simulate_looplm20(&o);
    let opts = FitOptions::default();
    let out = run_fit(&ds, &opts, None, a.backend.backend)?;
    let mut wrote = None;
    if let Some(dir) = &out_dir {
        let written = write_outputs(dir, &ds, &out)?;
        dir.commit()?;
        dir.warn_stale(&written);
        wrote = Some(list_written(dir, &written));
    }
    say!(
        "demo: simulated the looplm20 sweep ({} curves, {} points, noise sd {}) and fitted it from the default grid of {} starts",
        ds.configs.len(),
        ds.points(),
        o.noise,
        out.report.starts.count
    );
    say!("{}", report::summary(&out.report));
    let truth = simulate::looplm20_truth();
    say!(
        "{:<8} {:>14} {:>14} {:>10}",
        "param",
        "true",
        "fitted",
        "rel. err"
    );
    for i in 0..PARAM_NAMES.len() {
        let rel = (out.params[i] - truth[i]).abs() / truth[i].abs().max(1e-300);
        say!(
            "{:<8} {:>14.6e} {:>14.6e} {:>9.2}%",
            PARAM_NAMES[i],
            truth[i],
            out.params[i],
            100.0 * rel
        );
    }
    if let Some(w) = wrote {
        say!("wrote {w}");
    }
    Ok(())
}

/// `fit` of a law from a table (any law, `--by`, `--test-where`), on the
/// compiled CPU evaluator or the law's generated GPU kernel.
fn cmd_fit_law(a: FitArgs) -> anyhow::Result<()> {
    let mut opts = a.fit.law_fit_options(&a.by, a.test_where.clone())?;
    opts.profile = a.profile();
    let (file, text, origin) = a.fit.law_source()?;
    let boot = a.bootstrap.options(&FitOptions {
        seed: opts.seed,
        lbfgs: opts.lbfgs,
        ..FitOptions::default()
    })?;
    let out_dir = check_out_dir(&a.out, a.force)?;
    let table = a.input.table(&opts.objective)?;
    let bind = a.fit.bind_options(&a.by, a.test_where.as_ref());
    let bound = lawfit::bind(file, &text, &origin, &table, &bind)?;
    tell_binding(&bound);
    let out = a.backend.run_law(&mut opts, "fit", |opts| {
        let mut out = with_spinner(fit_message, |tick| {
            lawfit::fit_table(&bound, &table, opts, tick)
        })?;
        if let Some(bo) = &boot {
            let reports = with_spinner(bootstrap_message, |tick| {
                lawfit::bootstrap(&bound, &table, opts, &out.held_out, &out.fits, bo, tick)
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
    })?;
    out_dir.create()?;
    report::write_pretty(&out_dir.join("fit.json"), &out.report)?;
    report::write_table_pred_csv(
        &out_dir.join("pred.csv"),
        &table,
        &out.loss,
        &out.pred,
        &out.held_out,
    )?;
    let mut written = vec!["fit.json", "pred.csv"];
    if a.save_starts {
        // One row per start: the group's key (with --by), then the law's
        // parameters; the starts of each group in turn.
        let path = out_dir.join("starts.csv");
        let per = (out.starts.len() / out.fits.len().max(1)).max(1);
        output::write_file(&path, |f| {
            let mut w = csv::Writer::from_writer(f);
            let mut header = out.report.by.clone();
            header.extend(bound.law.params.iter().cloned());
            w.write_record(&header)?;
            for (k, s) in out.starts.iter().enumerate() {
                let mut row: Vec<String> = match out.report.groups.get(k / per) {
                    Some(g) => g.key.values().cloned().collect(),
                    None => Vec::new(),
                };
                row.extend(s.iter().map(|v| v.to_string()));
                w.write_record(&row)?;
            }
            w.flush()?;
            Ok(())
        })?;
        written.push("starts.csv");
    }
    if a.plot {
        let (panels, mut opts) =
            lawfit::panels(&bound.law, bound.file.axis.as_deref(), &out.report, &table)?;
        opts.x_scale = a.x_scale;
        // Rows held out by --test-where are marked, as in eval's pictures.
        let profile = out.report.profile.as_ref();
        written.extend(draw_pictures(&out_dir, &panels, &opts, profile)?);
    }
    out_dir.commit()?;
    out_dir.warn_stale(&written);
    say!("{}", report::law_summary(&out.report));
    say!("wrote {}", list_written(&out_dir, &written));
    Ok(())
}

/// Say on stderr, before the work, which names of the law read which
/// columns and which are parameters (and any doubt about it).
pub(crate) fn tell_binding(b: &lawfit::BoundLaw) {
    tell!("note: {}", b.binding.describe());
    if let Some(w) = &b.warning {
        tell!("warning: {w}");
    }
}

/// "DIR/fit.json, DIR/pred.csv and DIR/grid.png".
fn list_written(dir: &OutDir, names: &[&str]) -> String {
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).display().to_string())
        .collect();
    match paths.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
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
        tell!("note: {n}");
    }
    let result = fit_and_bootstrap(ds, &prepared, opts, boot, backend.as_mut());
    match result {
        Err(e) if choice == BackendChoice::Auto && backend.info().kind == "gpu" => {
            tell!("warning: the GPU fit failed ({e:#}); fitting on the CPU instead");
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
        let report = with_spinner(bootstrap_message, |tick| {
            bootstrap::bootstrap(prepared, &out, b, backend, tick)
        });
        out.report.bootstrap = Some(report?);
    }
    Ok(out)
}

fn fit_with_bar(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    backend: &mut dyn backend::Backend,
) -> anyhow::Result<FitOutput> {
    with_spinner(fit_message, |tick| {
        fit::fit(ds, prepared, opts, backend, tick)
    })
}

fn write_outputs(dir: &OutDir, ds: &Dataset, out: &FitOutput) -> anyhow::Result<Vec<&'static str>> {
    dir.create()?;
    report::write_fit_json(&dir.join("fit.json"), &out.report)?;
    report::write_pred_csv(&dir.join("pred.csv"), ds, &out.params)?;
    Ok(vec!["fit.json", "pred.csv"])
}

/// `fit --plot`: the grid, the residuals and any profiles next to
/// fit.json, as PNG and SVG.
fn write_fit_pictures(
    dir: &OutDir,
    ds: &Dataset,
    out: &FitOutput,
    x_scale: report::XScale,
) -> anyhow::Result<Vec<&'static str>> {
    let mut panels = report::panels_from_dataset(ds, &out.params, None)?;
    let mut opts = report::PlotOptions {
        title: Some(report::fit_title(&out.report)),
        x_scale,
        ..Default::default()
    };
    // A bootstrapped fit draws its prediction band too.
    report::add_fit_bands(&mut panels, &out.report, &mut opts);
    draw_pictures(dir, &panels, &opts, out.report.profile.as_ref())
}

/// The pictures of `fit --plot`, each file written all-or-nothing: the
/// Real-vs-Pred grid and the residual grid, and with a profile its curves,
/// as PNG and SVG.
fn draw_pictures(
    dir: &OutDir,
    panels: &[report::Panel],
    opts: &report::PlotOptions,
    profile: Option<&ProfileReport>,
) -> anyhow::Result<Vec<&'static str>> {
    let mut names = Vec::new();
    for name in ["grid.png", "grid.svg"] {
        report::draw_grid(&dir.join(name), panels, opts)?;
        names.push(name);
    }
    for name in ["residuals.png", "residuals.svg"] {
        report::draw_residuals(&dir.join(name), panels, opts)?;
        names.push(name);
    }
    if let Some(profile) = profile.filter(|p| !p.params.is_empty()) {
        let title = report::profile_title(opts);
        for name in ["profile.png", "profile.svg"] {
            report::draw_profiles(&dir.join(name), profile, &title)?;
            names.push(name);
        }
    }
    Ok(names)
}
