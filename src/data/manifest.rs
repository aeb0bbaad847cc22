//! Manifest: for sweeps logged as one CSV file per run.
//!
//! The manifest is a CSV with the columns (case-insensitive)
//! `file,N,T,tokens_per_step,step_col,loss_col` and optionally `run` and
//! `step_offset`; `T` defaults to 1, other columns are ignored. Each row is
//! one curve: the points are (`(step + step_offset) * tokens_per_step`,
//! loss) read from the columns `step_col` and `loss_col` of the log `file`,
//! a CSV with a header (column names matched exactly first, then
//! case-insensitively). `file` is relative to the manifest's folder unless
//! absolute. The run label is `run`, or the log's file stem where there is
//! no `run` column or its cell is blank; labels must be valid UTF-8.
//! `step_offset` (any finite number, 0 where absent or blank) is for logs
//! that number their rows from 0, as tracker exports of a resumed run do;
//! a step that it makes negative is an error. Rows may share a log (e.g. to
//! read several loss columns); each log is parsed once. Two rows with the
//! same (run, N, T) are an error.
//!
//! Real logs are read as they are: log rows whose loss cell is empty or not
//! finite (`nan`, `inf`, `-Infinity`, ...) are skipped, as metric exports
//! hold rows for steps where a metric was not logged or diverged; a step
//! logged more than once (a restart re-logging steps) keeps its last value.
//! Both are counted in the dataset's notes, one per log and loss column.
//! Points are sorted by step within each curve; all other values are
//! checked as for the long CSV, and a bad step is an error.

use super::long_csv::{log_loss, number, text, value_error, Check, Column, CsvFile};
use super::{Config, DataError, Dataset, ReadOptions};
use csv::ByteRecord;
use indexmap::IndexMap;
use rayon::prelude::*;
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
    let mut ds = Dataset::default();
    let mut series: Vec<Option<Series>> = (0..entries.len()).map(|_| None).collect();
    // Logs parsed side by side (a sweep's logs are large and many); the
    // results are taken in manifest order, so the first error reported is
    // the first in the manifest whatever the thread count.
    let logs: Vec<&Vec<usize>> = by_log.values().collect();
    let read: Vec<_> = logs
        .par_iter()
        .map(|users| {
            let group: Vec<&Entry> = users.iter().map(|&i| &entries[i]).collect();
            read_log(path, &group, opts)
        })
        .collect();
    for (users, r) in logs.into_iter().zip(read) {
        let (read, notes) = r?;
        for (&i, s) in users.iter().zip(read) {
            series[i] = Some(s);
        }
        ds.notes.extend(notes);
    }

    for (e, s) in entries.into_iter().zip(series) {
        let s = s.expect("every entry's log was read");
        // Series are sorted by step, so the first is the smallest.
        if let Some(col) = &e.offset_col {
            let first = s.steps[0] + e.step_offset;
            if first < 0.0 {
                return Err(value_error(
                    path,
                    e.line,
                    col,
                    format!(
                        "step {} at {}:{} plus step_offset {} is negative ({first})",
                        s.steps[0],
                        e.log.display(),
                        s.lines[0],
                        e.step_offset
                    ),
                ));
            }
        }
        let start = ds.tokens.len();
        ds.tokens.extend(
            s.steps
                .iter()
                .map(|&step| (step + e.step_offset) * e.tokens_per_step),
        );
        ds.loss.extend_from_slice(&s.loss);
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
    step_offset: f64,
    /// The manifest's `step_offset` column, for errors; `None` without one.
    offset_col: Option<Column>,
    step_col: String,
    loss_col: String,
}

/// The points of one (step column, loss column) pair of a log: sorted by
/// step, one per step, with the log line each came from.
#[derive(Clone, Default)]
struct Series {
    steps: Vec<f64>,
    loss: Vec<f64>,
    lines: Vec<u64>,
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, DataError> {
    let mut f = CsvFile::open(path)?;
    let file = f.require("file", &["file"])?;
    let run = f.find("run", &["run"])?;
    let n = f.require("N", &["N"])?;
    let t = f.find("T", &["T"])?;
    let tps = f.require("tokens_per_step", &["tokens_per_step"])?;
    let offset_col = f.find("step_offset", &["step_offset"])?;
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
        if log.is_dir() {
            return Err(DataError::Message(format!(
                "{}:{line}: {} is a directory, not a log file",
                path.display(),
                log.display()
            )));
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
        // Blank means no offset, so that only resumed runs need a value.
        let step_offset = match &offset_col {
            Some(c) if !rec[c.index].is_empty() => {
                number(path, line, c, &rec, Check::Finite, &opts)?
            }
            _ => 0.0,
        };
        entries.push(Entry {
            line,
            run,
            n,
            t,
            tokens_per_step: number(path, line, &tps, &rec, Check::Positive, &opts)?,
            step_offset,
            offset_col: offset_col.clone(),
            step_col: required(&step_col, "column name")?,
            loss_col: required(&loss_col, "column name")?,
            log,
        });
    }
    Ok(entries)
}

/// Rows of one (step, loss) pair skipped for an empty or non-finite loss.
#[derive(Clone, Copy, Default)]
struct Skipped {
    rows: usize,
    first_line: u64,
}

/// Read one log and return the series of each of `entries`, in order, and
/// the notes on what was skipped or replaced.
fn read_log(
    manifest: &Path,
    entries: &[&Entry],
    opts: &ReadOptions,
) -> Result<(Vec<Series>, Vec<String>), DataError> {
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
    let mut skipped = vec![Skipped::default(); pairs.len()];
    let mut rec = ByteRecord::new();
    while let Some(line) = f.next_record(&mut rec)? {
        for (((step, loss), s), skip) in pairs.iter().zip(&mut out).zip(&mut skipped) {
            // The step of a skipped row is not read: with several step
            // columns, a metric's step may be blank where it was not logged.
            let Some(l) = log_loss(log, line, loss, &rec, opts)? else {
                if skip.rows == 0 {
                    skip.first_line = line;
                }
                skip.rows += 1;
                continue;
            };
            s.steps
                .push(number(log, line, step, &rec, Check::NonNegative, opts)?);
            s.loss.push(l);
            s.lines.push(line);
        }
    }
    let mut notes = Vec::new();
    let mut noted: Vec<usize> = Vec::new();
    for ((_, loss), skip) in pairs.iter().zip(&skipped) {
        // Pairs that share the loss column skip the same rows.
        if skip.rows > 0 && !noted.contains(&loss.index) {
            noted.push(loss.index);
            notes.push(format!(
                "{}: skipped {} {} whose {} is empty or not finite (first at line {})",
                log.display(),
                skip.rows,
                plural(skip.rows, "row", "rows"),
                loss.name,
                skip.first_line
            ));
        }
    }
    for ((_, loss), s) in pairs.iter().zip(&mut out) {
        if s.steps.is_empty() {
            return Err(DataError::EmptyColumn {
                path: log.clone(),
                column: loss.name.clone(),
                index: loss.index + 1,
            });
        }
        if let Some(r) = sort_keep_last(s) {
            notes.push(format!(
                "{}: replaced {} {} of {} by a later row with the same step \
                 (first at line {}, step {})",
                log.display(),
                r.rows,
                plural(r.rows, "value", "values"),
                loss.name,
                r.first_line,
                r.first_step
            ));
        }
    }
    // Move each series to its last user; copy only for shared pairs.
    let mut users = vec![0usize; out.len()];
    slot_of.iter().for_each(|&i| users[i] += 1);
    let series = slot_of
        .into_iter()
        .map(|i| {
            users[i] -= 1;
            if users[i] == 0 {
                std::mem::take(&mut out[i])
            } else {
                out[i].clone()
            }
        })
        .collect();
    Ok((series, notes))
}

/// Rows that replaced an earlier row with the same step.
struct Replaced {
    rows: usize,
    /// The first of them in file order, and its step.
    first_line: u64,
    first_step: f64,
}

/// Sort `s` by step and keep the last row (in file order) of each step: a
/// restarted run re-logs the steps since its checkpoint, and the later
/// values are those of the run that went on.
fn sort_keep_last(s: &mut Series) -> Option<Replaced> {
    if s.steps.windows(2).all(|w| w[0] < w[1]) {
        return None;
    }
    let mut order: Vec<usize> = (0..s.steps.len()).collect();
    // Stable, so equal steps stay in file order and the last one wins.
    order.sort_by(|&a, &b| s.steps[a].total_cmp(&s.steps[b]));
    let mut kept = Series::default();
    let mut replaced: Option<Replaced> = None;
    for i in order {
        let (step, loss, line) = (s.steps[i], s.loss[i], s.lines[i]);
        if kept.steps.last() == Some(&step) {
            *kept.loss.last_mut().expect("same length") = loss;
            *kept.lines.last_mut().expect("same length") = line;
            let r = replaced.get_or_insert(Replaced {
                rows: 0,
                first_line: line,
                first_step: step,
            });
            r.rows += 1;
            if line < r.first_line {
                (r.first_line, r.first_step) = (line, step);
            }
        } else {
            kept.steps.push(step);
            kept.loss.push(loss);
            kept.lines.push(line);
        }
    }
    *s = kept;
    replaced
}

fn plural<'a>(k: usize, one: &'a str, many: &'a str) -> &'a str {
    if k == 1 {
        one
    } else {
        many
    }
}
