//! Long CSV: one row per observed point.
//!
//! Header names are matched case-insensitively:
//!
//! | column   | required | default | meaning                              |
//! |----------|----------|---------|--------------------------------------|
//! | `run`    | no       | `""`    | run label                            |
//! | `N`      | yes      |         | model size, > 0                      |
//! | `T`      | no       | 1       | recurrent step, > 0                  |
//! | `tokens` | yes      |         | tokens seen, >= 0 (alias `D`)        |
//! | `loss`   | yes      |         | loss (> 0 when fitting in log space) |
//! | `weight` | no       | 1       | point weight, >= 0, not all zero     |
//!
//! Other columns are ignored and whitespace around fields is trimmed.
//! Numbers use standard float syntax (`1.36e9`, `0.5`); NaN, infinities
//! and empty cells are rejected (a long CSV is written on purpose, unlike
//! the tracker exports a manifest reads, where such loss rows are skipped).
//! Run labels must be valid UTF-8, so that labels differing only in
//! invalid bytes are not merged into one curve.
//!
//! Rows are grouped into curves by (run, N, T) in order of first
//! appearance, so rows need not be sorted: each curve is sorted by tokens
//! (stably, so equal token counts keep file order). Duplicate points (same
//! curve and tokens) are all kept and each counts in the objective as an
//! independent observation.
//!
//! [`write_long_csv`] writes the same format with every f64 in shortest
//! round-trip form, so writing and reading back gives the same dataset
//! (except that run labels lose surrounding whitespace).

use super::{DataError, Dataset, ReadOptions, Row};
use csv::{ByteRecord, Reader, ReaderBuilder, Trim};
use std::cell::RefCell;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Read a long CSV into a dataset; see the module documentation.
pub fn read_long_csv(path: &Path, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let mut f = CsvFile::open(path)?;
    let run = f.find("run", &["run"])?;
    let n = f.require("N", &["N"])?;
    let t = f.find("T", &["T"])?;
    let tokens = f.require("tokens", &["tokens", "D"])?;
    let loss = f.require("loss", &["loss"])?;
    let weight = f.find("weight", &["weight"])?;

    let mut rows = Vec::new();
    let mut rec = ByteRecord::new();
    while let Some(line) = f.next_record(&mut rec)? {
        let cell = |col: &Column, check: Check| number(path, line, col, &rec, check, opts);
        rows.push(Row {
            run: match &run {
                Some(c) => text(path, line, c, &rec, "run")?,
                None => String::new(),
            },
            n: cell(&n, Check::Positive)?,
            t: t.as_ref().map_or(Ok(1.0), |c| cell(c, Check::Positive))?,
            tokens: cell(&tokens, Check::NonNegative)?,
            loss: cell(&loss, Check::Loss)?,
            weight: weight
                .as_ref()
                .map_or(Ok(1.0), |c| cell(c, Check::NonNegative))?,
        });
    }
    if rows.is_empty() {
        return Err(DataError::NoRows { path: path.into() });
    }
    if rows.iter().all(|r| r.weight == 0.0) {
        return Err(DataError::AllWeightsZero { path: path.into() });
    }
    Ok(Dataset::from_rows(rows))
}

/// Write `ds` as a long CSV (`run,N,T,tokens,loss,weight`), one row per
/// point, numbers in Rust's shortest round-trip `{}` form.
pub fn write_long_csv(path: &Path, ds: &Dataset) -> anyhow::Result<()> {
    // All or nothing: a temporary file renamed into place.
    crate::output::write_file(path, |out| {
        let mut w = csv::WriterBuilder::new().from_writer(out);
        w.write_record(["run", "N", "T", "tokens", "loss", "weight"])?;
        for c in &ds.configs {
            let (n, t) = (c.n.to_string(), c.t.to_string());
            for i in c.range() {
                let (d, l, wt) = (ds.tokens[i], ds.loss[i], ds.weight[i]);
                w.write_record([
                    c.run.as_str(),
                    &n,
                    &t,
                    &d.to_string(),
                    &l.to_string(),
                    &wt.to_string(),
                ])?;
            }
        }
        w.flush()?;
        Ok(())
    })
}

// ---- helpers shared with the manifest reader ----

/// A header column: its name as written and its 0-based index.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    pub index: usize,
}

/// An open CSV file whose header has been read.
pub(super) struct CsvFile {
    pub path: PathBuf,
    reader: Reader<LineBreaks<File>>,
    /// Byte offsets of the line breaks read and not yet passed.
    breaks: Rc<RefCell<Vec<u64>>>,
    /// Line breaks before the last record read.
    passed: u64,
    pub headers: Vec<String>,
    rows: usize,
}

/// A reader that notes where each line break is (`\n`, `\r\n` or a lone
/// `\r`), so that a record's byte offset gives its line. The csv crate's
/// own line count is one short after every CRLF, and errors must name the
/// line an editor shows.
struct LineBreaks<R> {
    inner: R,
    at: u64,
    after_cr: bool,
    breaks: Rc<RefCell<Vec<u64>>>,
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\r' || (b == b'\n' && !self.after_cr) {
                breaks.push(self.at + i as u64);
            }
            self.after_cr = b == b'\r';
        }
        self.at += n as u64;
        Ok(n)
    }
}

impl CsvFile {
    pub fn open(path: &Path) -> Result<CsvFile, DataError> {
        let file = File::open(path).map_err(|cause| DataError::Io {
            path: path.into(),
            action: "open",
            cause,
        })?;
        let breaks = Rc::new(RefCell::new(Vec::new()));
        let file = LineBreaks {
            inner: file,
            at: 0,
            after_cr: false,
            breaks: breaks.clone(),
        };
        let mut reader = ReaderBuilder::new()
            .trim(Trim::All)
            // Ragged rows are reported by `next_record`, with their line.
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(file);
        let header = reader.byte_headers().map_err(|cause| DataError::Csv {
            path: path.into(),
            cause,
        })?;
        if header.is_empty() {
            return Err(DataError::Empty { path: path.into() });
        }
        // UTF-16 (a spreadsheet's "Unicode text") reads as one garbled
        // column of NUL bytes: say so rather than count its fields.
        let first = header.get(0).unwrap_or_default();
        if first.starts_with(&[0xFF, 0xFE])
            || first.starts_with(&[0xFE, 0xFF])
            || header.iter().any(|h| h.contains(&0))
        {
            return Err(DataError::Message(format!(
                "{}: the file is UTF-16 text, not UTF-8; save it as CSV in UTF-8",
                path.display()
            )));
        }
        let mut headers: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .collect();
        // Spreadsheet exports often start with a UTF-8 byte order mark.
        if let Some(stripped) = headers[0].strip_prefix('\u{feff}') {
            headers[0] = stripped.trim().to_string();
        }
        Ok(CsvFile {
            path: path.into(),
            reader,
            breaks,
            passed: 0,
            headers,
            rows: 0,
        })
    }

    /// The header columns, quoted, for error messages.
    pub fn found(&self) -> String {
        let names: Vec<String> = self.headers.iter().map(|h| format!("'{h}'")).collect();
        names.join(", ")
    }

    /// The column whose name matches one of `names` case-insensitively;
    /// `what` names the quantity in the error when several match.
    pub fn find(&self, what: &str, names: &[&str]) -> Result<Option<Column>, DataError> {
        let mut hits = self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
        let Some((index, name)) = hits.next() else {
            return Ok(None);
        };
        if let Some((second_index, second)) = hits.next() {
            return Err(DataError::DuplicateColumn {
                path: self.path.clone(),
                what: format!("'{what}'"),
                first: name.clone(),
                first_index: index + 1,
                second: second.clone(),
                second_index: second_index + 1,
            });
        }
        Ok(Some(Column {
            name: name.clone(),
            index,
        }))
    }

    pub fn require(&self, what: &str, names: &[&str]) -> Result<Column, DataError> {
        self.find(what, names)?.ok_or_else(|| {
            let mut wanted = format!("'{}'", names[0]);
            for alias in &names[1..] {
                wanted.push_str(&format!(" (or '{alias}')"));
            }
            DataError::MissingColumn {
                path: self.path.clone(),
                wanted,
                found: self.found(),
            }
        })
    }

    /// Exact name first, then case-insensitive: log headers such as
    /// `train/lm_loss` are matched as written when possible.
    pub fn find_exact_or_nocase(&self, name: &str) -> Option<Column> {
        let index = self.headers.iter().position(|h| h == name).or_else(|| {
            self.headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
        })?;
        Some(Column {
            name: self.headers[index].clone(),
            index,
        })
    }

    /// Read the next data row into `rec` and return its line number, or
    /// `None` at the end. A file with a header but no rows is an error.
    pub fn next_record(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>, DataError> {
        let more = self
            .reader
            .read_byte_record(rec)
            .map_err(|cause| DataError::Csv {
                path: self.path.clone(),
                cause,
            })?;
        if !more {
            if self.rows == 0 {
                return Err(DataError::NoRows {
                    path: self.path.clone(),
                });
            }
            return Ok(None);
        }
        self.rows += 1;
        // 1 + the line breaks before the record's first byte; those are
        // dropped as they are passed, records coming in file order.
        if let Some(p) = rec.position() {
            let mut breaks = self.breaks.borrow_mut();
            let k = breaks.partition_point(|&b| b < p.byte());
            breaks.drain(..k);
            self.passed += k as u64;
        }
        let line = 1 + self.passed;
        if rec.len() != self.headers.len() {
            return Err(DataError::Ragged {
                path: self.path.clone(),
                line,
                expected: self.headers.len(),
                found: rec.len(),
            });
        }
        Ok(Some(line))
    }
}

/// Largest loss magnitude a fit in linear space takes: beyond it a squared
/// residual overflows, and every start would fail without naming the row.
pub(crate) const MAX_LINEAR_LOSS: f64 = 1e150;

pub(crate) fn too_large_loss(v: f64) -> String {
    format!(
        "{v:e} is too large to fit in linear space (beyond ±{MAX_LINEAR_LOSS:e} its squared \
         residual overflows); fit its log with --space log"
    )
}

/// What a numeric field must satisfy beyond being finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Check {
    Positive,
    NonNegative,
    /// Any finite value.
    Finite,
    /// Positive when `ReadOptions::positive_loss` is set, else any value.
    Loss,
}

impl Check {
    fn problem(self, v: f64, opts: &ReadOptions) -> Option<String> {
        match self {
            Check::Positive if v <= 0.0 => Some(format!("must be > 0, found {v}")),
            Check::NonNegative if v < 0.0 => Some(format!("must be >= 0, found {v}")),
            Check::Loss if opts.positive_loss && v <= 0.0 => {
                Some(format!("must be > 0 to fit in log space, found {v}"))
            }
            Check::Loss if !opts.positive_loss && v.abs() > MAX_LINEAR_LOSS => {
                Some(too_large_loss(v))
            }
            _ => None,
        }
    }
}

/// Parse a float in standard syntax, NaN and infinities included; the
/// error is the problem text.
fn parse_number(field: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(field).map_err(|_| {
        format!(
            "expected a number, found invalid UTF-8 \"{}\"",
            field.escape_ascii()
        )
    })?;
    if s.is_empty() {
        return Err("expected a number, found an empty field".into());
    }
    s.parse()
        .map_err(|_| format!("expected a number, found {s:?}"))
}

/// Parse a finite float in standard syntax; the error is the problem text.
pub(super) fn parse_f64(field: &[u8]) -> Result<f64, String> {
    let v = parse_number(field)?;
    if v.is_finite() {
        return Ok(v);
    }
    // `parse` accepts "nan" and "inf"; neither can be fitted.
    let s = String::from_utf8_lossy(field);
    Err(if v.is_nan() {
        format!("NaN is not allowed, found {s:?}")
    } else {
        format!("infinite values are not allowed, found {s:?}")
    })
}

/// Parse and check field `col` of `rec`, read from `path` at `line`.
pub(super) fn number(
    path: &Path,
    line: u64,
    col: &Column,
    rec: &ByteRecord,
    check: Check,
    opts: &ReadOptions,
) -> Result<f64, DataError> {
    parse_f64(&rec[col.index])
        .and_then(|v| check.problem(v, opts).map_or(Ok(v), Err))
        .map_err(|problem| value_error(path, line, col, problem))
}

/// The loss cell `col` of a per-run log's row: `None` where it is empty or
/// not finite, as tracker exports write steps whose loss was not logged or
/// diverged; the caller skips and counts those rows.
pub(super) fn log_loss(
    path: &Path,
    line: u64,
    col: &Column,
    rec: &ByteRecord,
    opts: &ReadOptions,
) -> Result<Option<f64>, DataError> {
    let field = &rec[col.index];
    if field.is_empty() {
        return Ok(None);
    }
    let v = parse_number(field).map_err(|problem| value_error(path, line, col, problem))?;
    if !v.is_finite() {
        return Ok(None);
    }
    match Check::Loss.problem(v, opts) {
        Some(problem) => Err(value_error(path, line, col, problem)),
        None => Ok(Some(v)),
    }
}

/// Field `col` of `rec` as text; `what` names it in the error when it is
/// not UTF-8 (a lossy conversion would merge labels that differ only there).
pub(super) fn text(
    path: &Path,
    line: u64,
    col: &Column,
    rec: &ByteRecord,
    what: &str,
) -> Result<String, DataError> {
    let field = &rec[col.index];
    match std::str::from_utf8(field) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(value_error(
            path,
            line,
            col,
            format!(
                "{what} is not valid UTF-8, found \"{}\"",
                field.escape_ascii()
            ),
        )),
    }
}

pub(super) fn value_error(path: &Path, line: u64, col: &Column, problem: String) -> DataError {
    DataError::Value {
        path: path.into(),
        line,
        column: col.name.clone(),
        index: col.index + 1,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standard_floats_only() {
        assert_eq!(parse_f64(b"1.36e9"), Ok(1.36e9));
        assert_eq!(parse_f64(b"-0.5"), Ok(-0.5));
        assert!(parse_f64(b"1_000").unwrap_err().contains("\"1_000\""));
        assert!(parse_f64(b"").unwrap_err().contains("empty"));
        assert!(parse_f64(b"nan").unwrap_err().contains("NaN"));
        assert!(parse_f64(b"-inf").unwrap_err().contains("infinite"));
        assert!(parse_f64(b"Infinity").unwrap_err().contains("infinite"));
        assert_eq!(
            parse_f64(b"1\xff").unwrap_err(),
            "expected a number, found invalid UTF-8 \"1\\xff\""
        );
    }

    #[test]
    fn log_loss_skips_only_empty_and_non_finite() {
        let col = Column {
            name: "loss".into(),
            index: 0,
        };
        let on = ReadOptions {
            positive_loss: true,
        };
        let cell = |field: &[u8]| {
            let rec = ByteRecord::from(vec![field]);
            log_loss(Path::new("x.csv"), 2, &col, &rec, &on).map_err(|e| e.to_string())
        };
        for skipped in [&b""[..], b"nan", b"-NaN", b"inf", b"-Infinity", b"+INF"] {
            assert_eq!(cell(skipped), Ok(None), "{}", skipped.escape_ascii());
        }
        assert_eq!(cell(b"2.5"), Ok(Some(2.5)));
        assert!(cell(b"-1").unwrap_err().contains("log space"));
        assert!(cell(b"null").unwrap_err().contains("\"null\""));
    }

    #[test]
    fn checks() {
        let on = ReadOptions {
            positive_loss: true,
        };
        let off = ReadOptions::default();
        assert!(Check::Positive.problem(0.0, &off).is_some());
        assert!(Check::NonNegative.problem(0.0, &off).is_none());
        assert!(Check::Loss.problem(-1.0, &off).is_none());
        assert!(Check::Loss.problem(0.0, &on).unwrap().contains("log space"));
    }
}
