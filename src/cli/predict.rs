//! `predict`: a fitted law on the product of values of its variables.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::term::tell;
use sweepfit::output;

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
    /// For a law that sums along the steps: the schedules to predict the
    /// loss under (a CSV run,step,lr, or step,lr for one run, or a
    /// manifest run,file), every step from 0: runs that were never
    /// trained included. Each run's curve at the steps --at step=LIST
    /// gives; the output's run column names the run.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// CSV file to write [default: stdout].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    force: bool,
}

pub(crate) fn cmd_predict(a: PredictArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.out {
        if p.is_dir() {
            bail!("--out {}: is a directory", p.display());
        }
        if p.exists() && !a.force {
            bail!("--out {}: exists (use --force to replace it)", p.display());
        }
    }
    predict_law(&a)
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

/// The law's variables from `--at` (and from --N, --T, --tokens, where the
/// law has those variables), predicted from the fit.
fn predict_law(a: &PredictArgs) -> anyhow::Result<()> {
    let fit = sweepfit::lawfit::read_law_fit(&a.fit)?;
    let (report, law, axis, file) = (fit.report, fit.law, fit.axis, fit.file);
    // (variable, list, the option as the user spelled it): `--at` takes a
    // variable or the data column it was fitted from (tokens for D).
    let mut items = Vec::new();
    for (name, list) in at_items(&a.at)? {
        let var = match report.variables.contains_key(&name) {
            true => name.clone(),
            false => report
                .variables
                .iter()
                .find(|(_, col)| **col == name)
                .map_or(name.clone(), |(v, _)| v.clone()),
        };
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
        let domain = file.domain_of(&name);
        let values = sweepfit::values::parse_list(&list, |v| match v.is_finite() {
            false => Some(format!("{v} is not finite")),
            true => domain.and_then(|d| d.problem(&name, v)),
        })
        .map_err(|(it, why)| anyhow::anyhow!("{flag} '{it}': {why}"))?;
        at.push((name, values));
    }
    let reads = report
        .variables
        .contains_key(sweepfit::law::parse::SCHEDULE);
    let schedules = match &a.schedule {
        Some(_) if !reads => {
            bail!("--schedule: the law sums along no steps, so it reads no schedule")
        }
        Some(path) => Some(sweepfit::data::Schedules::read(path)?),
        None if reads => bail!(
            "the law sums along its runs' steps: give the schedules to predict under with \
             --schedule FILE"
        ),
        None => None,
    };
    let (header, rows) =
        sweepfit::lawfit::predict_rows(&report, &law, axis.as_deref(), &at, schedules.as_ref())?;
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
