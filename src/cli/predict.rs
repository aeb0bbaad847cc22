//! `predict`: loss curves from a fit.json on a grid of N, T and tokens.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::term::tell;
use sweepfit::output;
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
    /// [default: the fit's N when it had a single one]
    #[arg(long = "N", value_name = "LIST", allow_hyphen_values = true)]
    n: Option<String>,
    /// Recurrent steps (> 0), same syntax as --N, e.g. 1:4:4 or 1,2,4,8
    /// [default: the fit's T when it had a single one, e.g. 1 for ordinary
    /// models].
    #[arg(long = "T", value_name = "LIST", allow_hyphen_values = true)]
    t: Option<String>,
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
    if let Some(p) = &a.out {
        if p.is_dir() {
            bail!("--out {}: is a directory", p.display());
        }
        if p.exists() && !a.force {
            bail!("--out {}: exists (use --force to replace it)", p.display());
        }
    }
    let report = report::read_fit_json(&a.fit)?;
    let n = or_single_value(
        a.n.as_deref(),
        "--N",
        report.metrics.per_config.iter().map(|c| c.n),
    )?;
    let t = or_single_value(
        a.t.as_deref(),
        "--T",
        report.metrics.per_config.iter().map(|c| c.t),
    )?;
    let grid = Grid::parse(&n, &t, &a.tokens)?;
    let predictor = Predictor::from_report(&report).with_context(|| a.fit.display().to_string())?;
    for w in predict::extrapolation_warnings(&report, &grid) {
        tell!("warning: {w}");
    }
    let written = match &a.out {
        Some(p) => {
            let mut written = None;
            output::create_parent(p)?;
            output::write_file(p, |w| {
                written = Some(predict::write_csv(w, &grid, &predictor)?);
                Ok(())
            })?;
            let written = written.expect("set by a successful write");
            let s = if written.rows == 1 { "" } else { "s" };
            tell!("wrote {} ({} row{s})", p.display(), written.rows);
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
        tell!(
            "warning: {} of {} predictions are not finite (e.g. tokens = 0 with t2 = 0)",
            written.non_finite,
            written.rows
        );
    }
    Ok(())
}

/// The user's list for a variable, or else the fit's only value of it: a
/// fit of ordinary models (T = 1 throughout) needs no --T.
fn or_single_value(
    given: Option<&str>,
    flag: &str,
    fitted: impl Iterator<Item = f64>,
) -> anyhow::Result<String> {
    if let Some(g) = given {
        return Ok(g.to_string());
    }
    let mut values: Vec<f64> = fitted.collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    match values.as_slice() {
        [v] => Ok(v.to_string()),
        [] => bail!("give {flag}: the fit records no curves to take it from"),
        _ => bail!(
            "give {flag}: the fit has {} values ({})",
            values.len(),
            values
                .iter()
                .take(8)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
                + if values.len() > 8 { ", ..." } else { "" }
        ),
    }
}
