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
    /// The values of one of the law's variables, VAR=LIST with LIST as for
    /// --N, e.g. --at D=1e4:1e6:20:log; one --at per variable, and the rows
    /// are every combination (for each group of a --by fit). Works for
    /// every fit; --N, --T and --tokens are spellings of --at N=, T= and
    /// the variable read from the tokens column (D) where the law has them.
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
    let report = report::read_fit_json(&a.fit)?;
    // --at N=, T=, tokens= (or D=) are the same as --N, --T, --tokens here.
    let (mut n, mut t, mut tokens) = (a.n.clone(), a.t.clone(), a.tokens.clone());
    for (name, list) in at_items(&a.at)? {
        let (slot, flag) = match name.as_str() {
            "N" => (&mut n, "--N"),
            "T" => (&mut t, "--T"),
            "tokens" | "D" => (&mut tokens, "--tokens"),
            _ => bail!(
                "--at {name}: the {} law has no variable {name} (its variables: N, T, D = tokens)",
                report.law
            ),
        };
        if slot.is_some() {
            bail!("--at {name}: its values are given twice (--at {name}= and {flag}, or two --at {name}=)");
        }
        *slot = Some(list);
    }
    let Some(tokens) = tokens.as_deref() else {
        bail!("give --tokens (or --at D=LIST), e.g. --tokens 1e9:40e9:100");
    };
    let n = or_single_value(
        n.as_deref(),
        "--N",
        report.metrics.per_config.iter().map(|c| c.n),
    )?;
    // Chinchilla has no T term: any T predicts the same.
    let t = match (&t, report.law.as_str()) {
        (None, "chinchilla") => "1".to_string(),
        _ => or_single_value(
            t.as_deref(),
            "--T",
            report.metrics.per_config.iter().map(|c| c.t),
        )?,
    };
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

/// The `--at VAR=LIST` items as (VAR, LIST).
fn at_items(at: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    at.iter()
        .map(|item| match item.split_once('=') {
            Some((name, list)) => Ok((name.trim().to_string(), list.to_string())),
            None => bail!("--at '{item}': expected VAR=LIST, e.g. D=1e4:1e6:20:log"),
        })
        .collect()
}

/// `predict` for a fit of any law: the law's variables from `--at` (and
/// from --N, --T, --tokens, where the law has those variables).
fn predict_law(a: &PredictArgs) -> anyhow::Result<()> {
    let fit = sweepfit::lawfit::read_law_fit(&a.fit)?;
    let (report, law, axis) = (fit.report, fit.law, fit.axis);
    // (variable, list, the option as the user spelled it): `--at` takes a
    // variable or the data column it was fitted from (tokens for D).
    let mut items = Vec::new();
    for (name, list) in at_items(&a.at)? {
        let var = report
            .variables
            .iter()
            .find(|(v, col)| **v != name && **col == name && !report.variables.contains_key(&name))
            .map_or(name.clone(), |(v, _)| v.clone());
        items.push((var, list, format!("--at {name}")));
    }
    // The variable read from the tokens column (D in most laws).
    let tokens_var = report
        .variables
        .iter()
        .find(|(_, col)| col.as_str() == "tokens")
        .map(|(v, _)| v.clone())
        .unwrap_or_else(|| "D".to_string());
    for (flag, name, given) in [
        ("--N", "N".to_string(), &a.n),
        ("--T", "T".to_string(), &a.t),
        ("--tokens", tokens_var, &a.tokens),
    ] {
        let Some(list) = given else { continue };
        if !report.variables.contains_key(&name) {
            bail!(
                "{flag}: the law has no variable {name} (its variables: {}); give them with --at VAR=LIST",
                report.variables.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        items.push((name, list.clone(), flag.to_string()));
    }
    let mut at = Vec::new();
    for (name, list, flag) in items {
        let values = sweepfit::predict::parse_list(&list, |v| {
            (!v.is_finite()).then(|| format!("{v} is not finite"))
        })
        .map_err(|(it, why)| anyhow::anyhow!("{flag} '{it}': {why}"))?;
        at.push((name, values));
    }
    let (header, rows) = sweepfit::lawfit::predict_rows(&report, &law, axis.as_deref(), &at)?;
    for w in sweepfit::lawfit::extrapolation_warnings(&report, &at) {
        tell!("warning: {w}");
    }
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
