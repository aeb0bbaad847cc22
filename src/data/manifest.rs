//! Manifest: for sweeps logged as one CSV file per run.
//!
//! The manifest is a CSV with the columns (case-insensitive)
//! `file,N,T,tokens_per_step,step_col,loss_col` and optionally `run`;
//! `T` defaults to 1, other columns are ignored. Each row is one curve:
//! the points are (`step * tokens_per_step`, loss) read from the columns
//! `step_col` and `loss_col` of the log `file`, a CSV with a header (column
//! names matched exactly first, then case-insensitively). `file` is relative
//! to the manifest's folder unless absolute. The run label is `run`, or
//! the log's file stem where there is no `run` column or its cell is blank;
//! labels must be valid UTF-8.
//! Rows may share a log (e.g. to read several loss columns); each log is
//! parsed once. Two rows with the same (run, N, T) are an error.
//!
//! Log rows whose loss cell is blank are skipped, as in metric exports
//! that log some metrics only every few steps. Points are sorted by step
//! within each curve; all values are checked as for the long CSV.

use super::long_csv::{number, text, value_error, Check, Column, CsvFile};
use super::{Config, DataError, Dataset, ReadOptions};
use csv::ByteRecord;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Read the curves a manifest points to; see the module documentation.
pub fn read_manifest(path: &Path, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let entries = read_entries(path)?;

    // Parse each log once, for all the entries that read it.
    let mut by_log: IndexMap<PathBuf, Vec<usize>> = IndexMap::new();
    for (i, e) in entries.iter().enumerate() {
        let key = std::fs::canonicalize(&e.log).unwrap_or_else(|_| e.log.clone());
        by_log.entry(key).or_default().push(i);
    }
    let mut series: Vec<Option<Series>> = (0..entries.len()).map(|_| None).collect();
    for users in by_log.values() {
        let group: Vec<&Entry> = users.iter().map(|&i| &entries[i]).collect();
        for (&i, s) in users.iter().zip(read_log(path, &group, opts)?) {
            series[i] = Some(s);
        }
    }

    let mut ds = Dataset::default();
    for (e, s) in entries.into_iter().zip(series) {
        let s = s.expect("every entry's log was read");
        let start = ds.tokens.len();
        let mut push = |i: usize| {
            ds.tokens.push(s.steps[i] * e.tokens_per_step);
            ds.loss.push(s.loss[i]);
        };
        if s.steps.is_sorted() {
            (0..s.steps.len()).for_each(&mut push);
        } else {
            let mut order: Vec<usize> = (0..s.steps.len()).collect();
            // Stable, so repeated steps keep file order.
            order.sort_by(|&a, &b| s.steps[a].total_cmp(&s.steps[b]));
            order.into_iter().for_each(&mut push);
        }
        ds.weight.resize(ds.tokens.len(), 1.0);
        ds.configs.push(Config {
            run: e.run,
            n: e.n,
            t: e.t,
            start,
            len: s.steps.len(),
        });
    }
    Ok(ds)
}

/// One manifest row.
struct Entry {
    line: u64,
    log: PathBuf,
    run: String,
    n: f64,
    t: f64,
    tokens_per_step: f64,
    step_col: String,
    loss_col: String,
}

/// The points of one (step column, loss column) pair of a log.
#[derive(Clone, Default)]
struct Series {
    steps: Vec<f64>,
    loss: Vec<f64>,
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, DataError> {
    let mut f = CsvFile::open(path)?;
    let file = f.require("file", &["file"])?;
    let run = f.find("run", &["run"])?;
    let n = f.require("N", &["N"])?;
    let t = f.find("T", &["T"])?;
    let tps = f.require("tokens_per_step", &["tokens_per_step"])?;
    let step_col = f.require("step_col", &["step_col"])?;
    let loss_col = f.require("loss_col", &["loss_col"])?;

    let dir = path.parent().unwrap_or(Path::new(""));
    let opts = ReadOptions::default();
    let mut entries = Vec::new();
    let mut seen: HashMap<(String, u64, u64), u64> = HashMap::new();
    let mut rec = ByteRecord::new();
    while let Some(line) = f.next_record(&mut rec)? {
        let required = |col: &Column, what: &str| {
            let s = text(path, line, col, &rec, what)?;
            if s.is_empty() {
                Err(value_error(path, line, col, format!("empty {what}")))
            } else {
                Ok(s)
            }
        };
        let log = dir.join(required(&file, "file name")?);
        if !log.exists() {
            return Err(DataError::MissingLog {
                manifest: path.into(),
                line,
                log,
            });
        }
        let run = match &run {
            Some(c) if !rec[c.index].is_empty() => text(path, line, c, &rec, "run")?,
            _ => log
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let n = number(path, line, &n, &rec, Check::Positive, &opts)?;
        let t = t.as_ref().map_or(Ok(1.0), |c| {
            number(path, line, c, &rec, Check::Positive, &opts)
        })?;
        if let Some(first_line) = seen.insert((run.clone(), n.to_bits(), t.to_bits()), line) {
            return Err(DataError::DuplicateConfig {
                manifest: path.into(),
                line,
                first_line,
            });
        }
        entries.push(Entry {
            line,
            run,
            n,
            t,
            tokens_per_step: number(path, line, &tps, &rec, Check::Positive, &opts)?,
            step_col: required(&step_col, "column name")?,
            loss_col: required(&loss_col, "column name")?,
            log,
        });
    }
    Ok(entries)
}

/// Read one log and return the series of each of `entries`, in order.
fn read_log(
    manifest: &Path,
    entries: &[&Entry],
    opts: &ReadOptions,
) -> Result<Vec<Series>, DataError> {
    let log = &entries[0].log;
    let mut f = CsvFile::open(log)?;
    let resolve = |e: &Entry, role: &'static str, name: &str| {
        f.find_exact_or_nocase(name)
            .ok_or_else(|| DataError::LogColumn {
                manifest: manifest.into(),
                line: e.line,
                role,
                name: name.into(),
                log: log.clone(),
                found: f.found(),
            })
    };
    // Distinct (step, loss) column pairs, and each entry's pair.
    let mut pairs: Vec<(Column, Column)> = Vec::new();
    let mut slot_of = Vec::with_capacity(entries.len());
    for e in entries {
        let step = resolve(e, "step_col", &e.step_col)?;
        let loss = resolve(e, "loss_col", &e.loss_col)?;
        let slot = pairs
            .iter()
            .position(|(s, l)| s.index == step.index && l.index == loss.index)
            .unwrap_or_else(|| {
                pairs.push((step, loss));
                pairs.len() - 1
            });
        slot_of.push(slot);
    }

    let mut out = vec![Series::default(); pairs.len()];
    let mut rec = ByteRecord::new();
    while let Some(line) = f.next_record(&mut rec)? {
        for ((step, loss), s) in pairs.iter().zip(&mut out) {
            if rec[loss.index].is_empty() {
                continue;
            }
            s.steps
                .push(number(log, line, step, &rec, Check::NonNegative, opts)?);
            s.loss
                .push(number(log, line, loss, &rec, Check::Loss, opts)?);
        }
    }
    for ((_, loss), s) in pairs.iter().zip(&out) {
        if s.steps.is_empty() {
            return Err(DataError::EmptyColumn {
                path: log.clone(),
                column: loss.name.clone(),
                index: loss.index + 1,
            });
        }
    }
    // Move each series to its last user; copy only for shared pairs.
    let mut users = vec![0usize; out.len()];
    slot_of.iter().for_each(|&i| users[i] += 1);
    Ok(slot_of
        .into_iter()
        .map(|i| {
            users[i] -= 1;
            if users[i] == 0 {
                std::mem::take(&mut out[i])
            } else {
                out[i].clone()
            }
        })
        .collect())
}
