//! `fit` and `demo`, and the fitting both share: progress, the GPU-to-CPU
//! fallback, the bootstrap and the output files.

use std::path::{Path, PathBuf};

use clap::Args;

use sweepfit::bootstrap::BootstrapOptions;
use sweepfit::data::Table;
use sweepfit::lawfit::{self, LawFitOptions};
use sweepfit::output;
use sweepfit::profile::ProfileReport;
use sweepfit::report;
use sweepfit::simulate;

use super::args::{self, sim_options, BackendArgs, FitRequest, InputArgs, SimFlags};
use super::term::{say, tell};
use super::{check_out_dir, progress_message, with_spinner, OutDir};

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
    request: FitRequest,
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
    // Every option is checked before any work starts.
    let (mut opts, boot) = a.request.options()?;
    let (file, text, origin) = a.request.law.law_source()?;
    let out_dir = check_out_dir(&a.out, a.force)?;
    let mut table = a.input.table(&opts.objective)?;
    let bind = a.request.bind_options();
    let bound = lawfit::bind(file, &text, &origin, &mut table, &bind)?;
    tell_binding(&bound);
    let out = fit_law(&a.request.backend, &bound, &table, &mut opts, boot.as_ref())?;
    let pictures = a.plot.then_some(a.x_scale);
    let written = write_outputs(&out_dir, &bound, &table, &out, a.save_starts, pictures)?;
    say!("{}", report::law_summary(&out.report));
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
    let ds = simulate::simulate_looplm20_to_fit(&o)?;
    let mut table = Table::from_dataset(&ds, Path::new("the simulated sweep"));
    let (file, text, origin) = args::law_source(None, None)?;
    let bound = lawfit::bind(
        file,
        &text,
        &origin,
        &mut table,
        &lawfit::BindOptions::default(),
    )?;
    let mut opts = LawFitOptions::default();
    let out = fit_law(&a.backend, &bound, &table, &mut opts, None)?;
    let mut wrote = None;
    if let Some(dir) = &out_dir {
        let written = write_outputs(dir, &bound, &table, &out, false, None)?;
        wrote = Some(list_written(dir, &written));
    }
    say!(
        "demo: simulated the looplm20 sweep ({} curves, {} points, noise sd {}) and fitted it from {} starts",
        ds.configs.len(),
        ds.points(),
        o.noise,
        out.report.starts.count
    );
    say!("{}", report::law_summary(&out.report));
    say!(
        "{:<8} {:>14} {:>14} {:>10}",
        "param",
        "true",
        "fitted",
        "rel. err"
    );
    for (name, truth) in simulate::looplm20_truth_by_name() {
        let fitted = out.report.params.get(name).copied().unwrap_or(f64::NAN);
        let rel = (fitted - truth).abs() / truth.abs().max(1e-300);
        say!(
            "{:<8} {:>14.6e} {:>14.6e} {:>9.2}%",
            name,
            truth,
            fitted,
            100.0 * rel
        );
    }
    if let Some(w) = wrote {
        say!("wrote {w}");
    }
    Ok(())
}

/// Fit `bound` to `table` (and bootstrap it when asked) with progress on
/// the terminal, on the device the backend choice names.
fn fit_law(
    backend: &BackendArgs,
    bound: &lawfit::BoundLaw,
    table: &Table,
    opts: &mut LawFitOptions,
    boot: Option<&BootstrapOptions>,
) -> anyhow::Result<lawfit::LawFitOutput> {
    backend.run_law(opts, "fit", &mut |m| tell!("{m}"), |opts| {
        with_spinner(progress_message, |tick| {
            lawfit::fit_and_bootstrap(bound, table, opts, boot, tick)
        })
    })
}

/// fit.json and pred.csv in `out_dir`, with every start in starts.csv and
/// the pictures (each run's learning rate under its curve, for a law that
/// sums along the steps) when asked; each file written whole or not at
/// all.
fn write_outputs(
    out_dir: &OutDir,
    bound: &lawfit::BoundLaw,
    table: &Table,
    out: &lawfit::LawFitOutput,
    save_starts: bool,
    pictures: Option<report::XScale>,
) -> anyhow::Result<Vec<&'static str>> {
    out_dir.create()?;
    report::write_pretty(&out_dir.join("fit.json"), &out.report)?;
    report::write_table_pred_csv(
        &out_dir.join("pred.csv"),
        table,
        &out.loss,
        &out.pred,
        &out.held_out,
        bound.handle_column(table),
    )?;
    let mut written = vec!["fit.json", "pred.csv"];
    if save_starts {
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
    if let Some(x_scale) = pictures {
        let (panels, mut opts) = lawfit::panels(
            &bound.law,
            bound.file.axis.as_deref(),
            &out.report,
            table,
            bound.schedules.as_ref(),
        )?;
        opts.x_scale = x_scale;
        // Rows held out by --test-where are marked, as in eval's pictures.
        let profile = out.report.profile.as_ref();
        written.extend(draw_pictures(out_dir, &panels, &opts, profile)?);
    }
    out_dir.commit()?;
    out_dir.warn_stale(&written);
    Ok(written)
}

/// Say on stderr, before the work, which names of the law read which
/// columns and which are parameters (and any doubt about it).
pub(crate) fn tell_binding(b: &lawfit::BoundLaw) {
    for m in b.messages() {
        tell!("{m}");
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
