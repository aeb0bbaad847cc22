//! A CSV read as a table of named columns, for laws over any variables:
//! which columns a law reads is decided by the law, not by this reader.
//! Cells stay text until a column is asked for as numbers, so that an
//! error names the file, line and column of the cell at fault, and text
//! columns (run labels, a `split` column) can select and group rows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::long_csv::CsvFile;
use super::{DataError, TextColumn};

/// Every cell of a CSV file, column by column.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    /// Header names as written.
    pub headers: Vec<String>,
    /// `columns[c][row]`, trimmed.
    pub columns: Vec<TextColumn>,
    /// Per row, its line in the file (blank lines, CRLF line ends and
    /// quoted fields over several lines counted); empty for a table made
    /// from another reader's points or from columns in memory.
    pub lines: Vec<u64>,
    /// Made from columns in memory (a data frame): rows are named by
    /// their position, from 0.
    pub in_memory: bool,
    /// Columns not read from the data but filled with a law's default for
    /// a variable the data has no column for.
    pub filled: Vec<usize>,
    /// What the reader skipped or changed, for the fit's notes.
    pub notes: Vec<String>,
}

impl Table {
    /// Read `path`. Every row must have as many fields as the header, and
    /// every cell must be valid UTF-8.
    pub fn read(path: &Path) -> Result<Table, DataError> {
        let mut f = CsvFile::open(path)?;
        let mut columns = vec![TextColumn::default(); f.headers.len()];
        let mut rec = ByteRecord::new();
        let mut lines = Vec::new();
        while let Some(line) = f.next_record(&mut rec)? {
            lines.push(line);
            for (c, field) in rec.iter().enumerate() {
                let text = std::str::from_utf8(field).map_err(|_| DataError::Value {
                    path: path.into(),
                    line,
                    column: f.headers[c].clone(),
                    index: c + 1,
                    problem: "not valid UTF-8".into(),
                })?;
                columns[c].push(text);
            }
        }
        Ok(Table {
            path: path.into(),
            headers: f.headers,
            columns,
            lines,
            in_memory: false,
            filled: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// A table of columns given in memory (a data frame's), each as many
    /// cells as the first; `origin` names it in messages ("the data
    /// frame"), and its rows are named by position, from 0.
    pub fn from_columns(
        origin: &str,
        columns: Vec<(String, TextColumn)>,
    ) -> Result<Table, DataError> {
        let rows = columns.first().map_or(0, |(_, c)| c.len());
        if let Some((name, c)) = columns.iter().find(|(_, c)| c.len() != rows) {
            return Err(DataError::Message(format!(
                "{origin}: column '{name}' has {} values, the first column {rows}",
                c.len()
            )));
        }
        let (headers, columns) = columns.into_iter().unzip();
        Ok(Table {
            path: origin.into(),
            headers,
            columns,
            lines: Vec::new(),
            in_memory: true,
            filled: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// A dataset read by another reader (a manifest of logs, filtered) as
    /// a table with the long CSV's columns: run, N, T, tokens, loss, weight.
    /// `path` names it in messages.
    pub fn from_dataset(ds: &super::Dataset, path: &Path) -> Table {
        let headers: Vec<String> = ["run", "N", "T", "tokens", "loss", "weight"]
            .map(String::from)
            .to_vec();
        let mut columns = vec![TextColumn::with_capacity(ds.points()); headers.len()];
        // A curve's own cells formatted once, and the points' into one
        // reused buffer: formatting is most of the conversion's time.
        let mut cell = String::new();
        for c in &ds.configs {
            let (n, t) = (c.n.to_string(), c.t.to_string());
            for i in c.range() {
                columns[0].push(&c.run);
                columns[1].push(&n);
                columns[2].push(&t);
                for (col, v) in
                    columns[3..]
                        .iter_mut()
                        .zip([ds.tokens[i], ds.loss[i], ds.weight[i]])
                {
                    cell.clear();
                    write!(cell, "{v}").expect("formatting into a String");
                    col.push(&cell);
                }
            }
        }
        Table {
            path: path.into(),
            headers,
            columns,
            lines: Vec::new(),
            in_memory: false,
            filled: Vec::new(),
            notes: ds.notes.clone(),
        }
    }

    /// Where row `r` is, for messages: "FILE line K", or "FILE, point K"
    /// for a table made from another reader's points.
    pub fn place(&self, r: usize) -> String {
        if let Some(line) = self.lines.get(r) {
            format!("{} line {line}", self.path.display())
        } else if self.in_memory {
            format!("{}, row {r}", self.path.display())
        } else {
            format!(
                "{}, point {} (run {})",
                self.path.display(),
                r + 1,
                &self.columns[0][r]
            )
        }
    }

    /// The table of rows `rows` (in that order), every column kept.
    pub fn select(&self, rows: &[usize]) -> Table {
        let columns = self
            .columns
            .iter()
            .map(|col| {
                let mut out = TextColumn::with_capacity(rows.len());
                for &r in rows {
                    out.push(col.get(r).unwrap_or(""));
                }
                out
            })
            .collect();
        Table {
            path: self.path.clone(),
            headers: self.headers.clone(),
            columns,
            lines: match self.lines.is_empty() {
                true => Vec::new(),
                false => rows.iter().map(|&r| self.lines[r]).collect(),
            },
            in_memory: self.in_memory,
            filled: self.filled.clone(),
            notes: self.notes.clone(),
        }
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, TextColumn::len)
    }

    /// The header names, quoted, for error messages.
    pub fn found(&self) -> String {
        // Not those filled with a law's default: the data has no such column.
        let names: Vec<String> = (0..self.headers.len())
            .filter(|c| !self.filled.contains(c))
            .map(|c| format!("'{}'", self.headers[c]))
            .collect();
        names.join(", ")
    }

    /// The column named `name`: the exact spelling if there is one, else
    /// the one column that matches ignoring case (`n` for `N`). Two columns
    /// that differ only in case (`d` and `D`) are told apart by spelling.
    pub fn find(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.headers.iter().position(|h| h == name) {
            return Some(i);
        }
        let mut hits =
            (0..self.headers.len()).filter(|&i| self.headers[i].eq_ignore_ascii_case(name));
        match (hits.next(), hits.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    }

    /// The column named `name` as [`Table::find`] picks it, but an error
    /// where that pick would be a guess: two columns spelt `name`, or none
    /// spelt so and several that match ignoring case (`nv` and `NV` for
    /// `Nv`).
    pub fn lookup(&self, name: &str) -> Result<Option<usize>, DataError> {
        let exact: Vec<usize> = (0..self.headers.len())
            .filter(|&i| self.headers[i] == name)
            .collect();
        let hits = if exact.is_empty() {
            (0..self.headers.len())
                .filter(|&i| self.headers[i].eq_ignore_ascii_case(name))
                .collect()
        } else {
            exact
        };
        match hits[..] {
            [] => Ok(None),
            [i] => Ok(Some(i)),
            [first, second, ..] => Err(DataError::DuplicateColumn {
                path: self.path.clone(),
                what: format!("'{name}'"),
                first: self.headers[first].clone(),
                first_index: first + 1,
                second: self.headers[second].clone(),
                second_index: second + 1,
            }),
        }
    }

    /// Like [`Table::lookup`], with an error listing the columns found.
    pub fn require(&self, name: &str, role: &str) -> Result<usize, DataError> {
        self.lookup(name)?.ok_or_else(|| DataError::MissingColumn {
            path: self.path.clone(),
            wanted: format!("'{name}' ({role})"),
            found: self.found(),
        })
    }

    /// Whether every cell of column `c` is a finite number (and there is
    /// at least one row).
    pub fn is_numeric(&self, c: usize) -> bool {
        let cells = &self.columns[c];
        if let Some(v) = cells.numbers() {
            return !v.is_empty() && v.iter().all(|x| x.is_finite());
        }
        !cells.is_empty()
            && cells
                .iter()
                .all(|s| s.parse::<f64>().is_ok_and(f64::is_finite))
    }

    /// Column `c` as numbers; `check` says which values are valid.
    pub fn numbers(&self, c: usize, check: Check) -> Result<Vec<f64>, DataError> {
        // A table without lines (a simulated sweep's) names rows by place.
        let bad = |row: usize, problem: String| match self.in_memory || self.lines.is_empty() {
            true => DataError::Cell {
                place: self.place(row),
                column: self.headers[c].clone(),
                problem,
            },
            false => DataError::Value {
                path: self.path.clone(),
                line: self.lines.get(row).copied().unwrap_or(0),
                column: self.headers[c].clone(),
                index: c + 1,
                problem,
            },
        };
        let valid = |row: usize, v: f64, text: &dyn Fn() -> String| {
            if !v.is_finite() {
                return Err(bad(row, format!("{} is not a finite number", text())));
            }
            match check {
                Check::NonNegative if v < 0.0 => Err(bad(row, format!("{v} is negative"))),
                Check::Loss if v.abs() > super::long_csv::MAX_LINEAR_LOSS => {
                    Err(bad(row, super::long_csv::too_large_loss(v)))
                }
                Check::Positive if v <= 0.0 => Err(bad(
                    row,
                    format!("{v} must be positive (the fit is in log space)"),
                )),
                Check::Domain { strict } if v < 0.0 || (strict && v == 0.0) => Err(bad(
                    row,
                    format!(
                        "must be {} 0 (the law's domain), found {v}",
                        if strict { ">" } else { ">=" }
                    ),
                )),
                _ => Ok(v),
            }
        };
        // A column given as numbers is read as they are.
        if let Some(values) = self.columns[c].numbers() {
            for (row, &v) in values.iter().enumerate() {
                valid(row, v, &|| v.to_string())?;
            }
            return Ok(values.to_vec());
        }
        let mut out = Vec::with_capacity(self.rows());
        for (row, text) in self.columns[c].iter().enumerate() {
            let v: f64 = text
                .parse()
                .map_err(|_| bad(row, format!("'{}' is not a number", text.escape_debug())))?;
            out.push(valid(row, v, &|| text.to_string())?);
        }
        Ok(out)
    }
}

/// Which numbers a column accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Finite,
    NonNegative,
    Positive,
    /// A loss fitted in linear space: finite, and small enough to square.
    Loss,
    /// A variable's values as its law declares them: > 0 when `strict`,
    /// else >= 0.
    Domain {
        strict: bool,
    },
}

/// What a cell is as a value to select or group rows by: a number by its
/// value (`1e3`, `1000` and `1000.0` are one value; `-0` is `0`), anything
/// else by its text. `--by` and `--test-where` both compare through it, so
/// that they agree on which cells are equal.
pub fn cell_key(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) if !v.is_nan() => format!("{:e}", v + 0.0),
        _ => cell.to_string(),
    }
}

/// `COLUMN=VALUE`: rows whose cell in COLUMN equals VALUE (as text, or as
/// numbers when both parse: `1e3` selects `1000`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Selector {
    pub column: String,
    pub value: String,
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let (c, v) = s
            .split_once('=')
            .ok_or_else(|| format!("expected COLUMN=VALUE, got '{s}'"))?;
        let (c, v) = (c.trim(), v.trim());
        if c.is_empty() {
            return Err(format!("expected COLUMN=VALUE, got '{s}': no column"));
        }
        Ok(Selector {
            column: c.to_string(),
            value: v.to_string(),
        })
    }

    /// Which rows of `t` match; an error when the column is missing or no
    /// row matches (a mistyped value would otherwise test on nothing).
    pub fn rows(&self, t: &Table) -> Result<Vec<bool>, DataError> {
        let c = t
            .lookup(&self.column)?
            .ok_or_else(|| DataError::MissingColumn {
                path: t.path.clone(),
                wanted: format!("'{}' (of --test-where)", self.column),
                found: t.found(),
            })?;
        let want = cell_key(&self.value);
        let hits: Vec<bool> = t.columns[c]
            .iter()
            .map(|cell| cell_key(cell) == want)
            .collect();
        if !hits.contains(&true) {
            let mut seen: Vec<&str> = t.columns[c].iter().collect();
            seen.sort();
            seen.dedup();
            let shown: Vec<String> = seen.iter().take(8).map(|s| format!("'{s}'")).collect();
            return Err(DataError::Other(format!(
                "{}: no row has {} = '{}' (values found: {}{})",
                t.path.display(),
                t.headers[c],
                self.value,
                shown.join(", "),
                if seen.len() > 8 { ", ..." } else { "" }
            )));
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_spelling_wins_over_case() {
        let t = Table {
            path: "x.csv".into(),
            headers: vec!["d".into(), "D".into(), "Loss".into()],
            columns: vec![TextColumn::default(); 3],
            lines: vec![],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        };
        assert_eq!(t.find("d"), Some(0));
        assert_eq!(t.find("D"), Some(1));
        assert_eq!(t.find("loss"), Some(2));
        assert_eq!(t.find("LOSS"), Some(2));
        // Ambiguous ignoring case, and neither spelled so.
        let u = Table {
            headers: vec!["nv".into(), "NV".into()],
            columns: vec![TextColumn::default(); 2],
            ..t
        };
        assert_eq!(u.find("Nv"), None);
    }

    #[test]
    fn lookup_refuses_a_guess() {
        let t = |headers: &[&str]| Table {
            path: "x.csv".into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            columns: vec![TextColumn::default(); headers.len()],
            lines: vec![],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        };
        // Two columns matching ignoring case, neither spelt so.
        let err = t(&["nv", "NV"]).lookup("Nv").unwrap_err().to_string();
        assert!(err.contains("'nv' (1) and 'NV' (2)"), "{err}");
        // The exact spelling still picks one of them.
        assert_eq!(t(&["nv", "NV"]).lookup("NV").unwrap(), Some(1));
        // Two columns of one name.
        let err = t(&["N", "tokens", "N"])
            .lookup("N")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'N' (1) and 'N' (3)"), "{err}");
        assert!(t(&["N", "N", "loss"]).require("loss", "the loss").is_ok());
        assert!(t(&["loss", "Loss", "LOSS"])
            .require("LoSS", "the loss")
            .is_err());
        assert_eq!(t(&["N"]).lookup("D").unwrap(), None);
    }

    #[test]
    fn cells_are_equal_as_numbers_or_as_text() {
        assert_eq!(cell_key("1e3"), cell_key("1000"));
        assert_eq!(cell_key("1000.0"), cell_key("1000"));
        assert_eq!(cell_key("-0"), cell_key("0"));
        assert_ne!(cell_key("1000"), cell_key("1001"));
        assert_ne!(cell_key("a"), cell_key("A"));
        assert_eq!(cell_key("m1"), "m1");
    }

    #[test]
    fn selector_matches_text_or_number() {
        let t = Table {
            path: "x.csv".into(),
            headers: vec!["split".into(), "D".into()],
            columns: vec![
                vec!["train", "test", "train"].into(),
                vec!["1000", "1e3", "10"].into(),
            ],
            lines: vec![2, 3, 4],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        };
        let s = Selector::parse("split=test").unwrap();
        assert_eq!(s.rows(&t).unwrap(), vec![false, true, false]);
        let s = Selector::parse("D=1000").unwrap();
        assert_eq!(s.rows(&t).unwrap(), vec![true, true, false]);
        let err = Selector::parse("split=tset").unwrap().rows(&t).unwrap_err();
        assert!(err.to_string().contains("'test', 'train'"), "{err}");
        assert!(Selector::parse("split").is_err());
    }
}
