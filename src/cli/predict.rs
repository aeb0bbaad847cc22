//! `predict`: loss curves from a fit.json on a grid of N, T and tokens.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use sweepfit::report;

#[derive(Args)]
pub(crate) struct PredictArgs {
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

pub(crate) fn cmd_predict(a: PredictArgs) -> anyhow::Result<()> {
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
