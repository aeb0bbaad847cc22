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
    tokens: Option<String>,
    /// For a fit of any other law (`fit --law`): the values of one of its
    /// variables, VAR=LIST with LIST as for --N, e.g. --at D=1e4:1e6:20:log;
    /// one --at per variable, and the rows are every combination (for each
    /// group of a --by fit).
    #[arg(long, value_name = "VAR=LIST", allow_hyphen_values = true)]
    at: Vec<String>,
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
    if is_law_fit(&a.fit) {
        return predict_law(&a);
    }
    if !a.at.is_empty() {
        bail!("--at is for fits of laws given with --law; this fit takes --N, --T and --tokens");
    }
    let Some(tokens) = a.tokens.as_deref() else {
        bail!("give --tokens, e.g. --tokens 1e9:40e9:100");
    };
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
    let grid = Grid::parse(&n, &t, tokens)?;
    let predictor = Predictor::from_report(&report).with_context(|| a.fit.display().to_string())?;
    for w in predict::extrapolation_warnings(&report, &grid) {
        tell!("warning: {w}");
    }
    let written = match &a.out {
        Some(p) => {
            let mut written = None;
            output::write_new_file(p, a.force, |w| {
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

/// Whether `path` is the fit.json of a law fit (it records its law file).
pub(crate) fn is_law_fit(path: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|v| v.get("law_file").is_some())
        .unwrap_or(false)
}

/// `predict` for a fit of any law: the law's variables from `--at`.
fn predict_law(a: &PredictArgs) -> anyhow::Result<()> {
    if a.n.is_some() || a.t.is_some() || a.tokens.is_some() {
        bail!("this fit is of a law given with --law: give its variables with --at VAR=LIST");
    }
    let fit = sweepfit::lawfit::read_law_fit(&a.fit)?;
    let (report, law) = (fit.report, fit.law);
    let mut at = Vec::new();
    for item in &a.at {
        let Some((name, list)) = item.split_once('=') else {
            bail!("--at '{item}': expected VAR=LIST, e.g. D=1e4:1e6:20:log");
        };
        let values = sweepfit::predict::parse_list(list, |v| {
            (!v.is_finite()).then(|| format!("{v} is not finite"))
        })
        .map_err(|(it, why)| anyhow::anyhow!("--at {name} '{it}': {why}"))?;
        at.push((name.trim().to_string(), values));
    }
    let (header, rows) = sweepfit::lawfit::predict_rows(&report, &law, &at)?;
    let write = |w: &mut dyn std::io::Write| -> anyhow::Result<usize> {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(&header)?;
        let mut bad = 0;
        for r in &rows {
            bad += usize::from(
                r.last()
                    .is_some_and(|p| p.parse::<f64>().map_or(true, |v| !v.is_finite())),
            );
            c.write_record(r)?;
        }
        c.flush()?;
        Ok(bad)
    };
    let bad = match &a.out {
        Some(p) => {
            let mut bad = 0;
            output::write_new_file(p, a.force, |w| {
                bad = write(w)?;
                Ok(())
            })?;
            let s = if rows.len() == 1 { "" } else { "s" };
            tell!("wrote {} ({} row{s})", p.display(), rows.len());
            bad
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match write(&mut out) {
                Ok(bad) => bad,
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
                        || e.downcast_ref::<csv::Error>().is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e.context("writing to stdout")),
            }
        }
    };
    if bad > 0 {
        tell!(
            "warning: {bad} of {} predictions are not finite (outside the law's domain)",
            rows.len()
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
