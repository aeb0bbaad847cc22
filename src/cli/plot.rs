//! `plot`: the Real-vs-Pred grid of a fit, or its residuals.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::term::say;
use sweepfit::report;

#[derive(Args)]
pub(crate) struct PlotArgs {
    /// fit.json of a fit; the predictions are computed from its parameters.
    #[arg(long, value_name = "FILE", required_unless_present = "data")]
    fit: Option<PathBuf>,
    /// Curves to draw: a pred.csv (run,N,T,tokens,loss,pred, or a law
    /// fit's, drawn with the fit.json beside it), or with --fit any long
    /// CSV [default: pred.csv beside --fit].
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Picture to write, PNG or SVG by its extension [default: grid.png
    /// beside --data, or residuals.png with --residuals].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Draw the residuals (pred − loss) instead of Real vs Pred: the same
    /// panels around a zero line, on one y range symmetric about zero
    /// (1.1 x the 99th percentile of |pred − loss| over all curves).
    #[arg(long)]
    residuals: bool,
    /// The runs' learning rate at every step (the fit's --schedule file),
    /// drawn in a strip under each curve of a law that sums along the
    /// steps.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    force: bool,
    /// The x axis: auto is log where the x values span two decades or
    /// more (points at x <= 0 are then left out, and the axis says how
    /// many), else linear.
    #[arg(long, value_enum, default_value_t = report::XScale::Auto)]
    x_scale: report::XScale,
}

pub(crate) fn cmd_plot(a: PlotArgs) -> anyhow::Result<()> {
    let data = match (&a.data, &a.fit) {
        (Some(d), _) => d.clone(),
        (None, Some(f)) => f.with_file_name("pred.csv"),
        (None, None) => bail!("give --data FILE, --fit FILE or both"),
    };
    let default_name = if a.residuals {
        "residuals.png"
    } else {
        "grid.png"
    };
    let out = a.out.unwrap_or_else(|| data.with_file_name(default_name));
    let draw = |panels: &[report::Panel], opts: &report::PlotOptions| {
        let opts = &report::PlotOptions {
            x_scale: a.x_scale,
            ..opts.clone()
        };
        let staging = sweepfit::output::Staging::files(&out, a.force)?;
        let path = staging.path_for(&out);
        if a.residuals {
            report::draw_residuals(&path, panels, opts)?;
        } else {
            report::draw_grid(&path, panels, opts)?;
        }
        staging.commit()
    };
    report::PlotFormat::from_path(&out)?;
    if out.exists() && !a.force {
        bail!("{} exists (use --force to replace it)", out.display());
    }
    // With a fit (given, or the fit.json beside the data) the law draws
    // the curves; a pred.csv alone is drawn from its columns.
    let beside = data.with_file_name("fit.json");
    let fit = a
        .fit
        .clone()
        .or_else(|| (a.data.is_some() && beside.is_file()).then_some(beside));
    let (panels, opts) = match &fit {
        Some(f) => {
            let fit = sweepfit::lawfit::read_law_fit(f)?;
            let mut table = sweepfit::data::Table::read(&data)?;
            fit.fill_defaults(&mut table)?;
            let schedules = match &a.schedule {
                Some(p) => Some(sweepfit::data::Schedules::read(p)?),
                None => None,
            };
            sweepfit::lawfit::panels(
                &fit.law,
                fit.axis.as_deref(),
                &fit.report,
                &table,
                schedules.as_ref(),
            )?
        }
        None if a.schedule.is_some() => bail!(
            "--schedule draws learning rates under a law fit's curves: give --fit FILE (or \
             a --data file with its fit.json beside it)"
        ),
        None => (
            report::read_pred_csv(&data)?,
            report::PlotOptions::default(),
        ),
    };
    draw(&panels, &opts)?;
    say!("wrote {}", out.display());
    Ok(())
}
