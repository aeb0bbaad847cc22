//! A column of text cells in one buffer. A table of millions of rows then
//! holds its text and an end offset per cell, not a heap string each: the
//! README's Pythia fit (107,400 rows by 6 columns) peaked at 53 MB with
//! it, 77 MB without. A column given as numbers (a data frame's float64
//! column) keeps its numbers and writes its text only if a cell is read
//! as text: a fit reads such columns as numbers, never through text.

use std::fmt::Write as _;
use std::ops::Index;
use std::sync::OnceLock;

#[derive(Debug, Clone, Default)]
pub struct TextColumn {
    text: Cells,
    /// The column's numbers, exactly as given, for a column given as
    /// numbers; its text is then written on first use.
    numbers: Option<Vec<f64>>,
    lazy: OnceLock<Cells>,
}

/// Text cells in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cells {
    text: String,
    /// Per cell, where its text ends in `text` (it starts where the
    /// previous one ends).
    ends: Vec<usize>,
}

impl Cells {
    fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    fn get(&self, row: usize) -> Option<&str> {
        let end = *self.ends.get(row)?;
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Some(&self.text[start..end])
    }

    /// Each number as the shortest text that reads back as it.
    fn of_numbers(values: &[f64]) -> Cells {
        let mut c = Cells {
            text: String::new(),
            ends: Vec::with_capacity(values.len()),
        };
        for v in values {
            // `{}` never uses an exponent (1e-300 would be 300 digits).
            let plain = *v == 0.0 || !v.is_finite() || (1e-5..1e16).contains(&v.abs());
            match plain {
                true => write!(c.text, "{v}"),
                false => write!(c.text, "{v:e}"),
            }
            .expect("formatting into a String");
            c.ends.push(c.text.len());
        }
        c
    }
}

impl TextColumn {
    pub fn with_capacity(rows: usize) -> TextColumn {
        TextColumn {
            text: Cells {
                text: String::new(),
                ends: Vec::with_capacity(rows),
            },
            ..Default::default()
        }
    }

    /// A column of numbers, kept as given; their text, should a cell be
    /// read as text, is the shortest that reads back as the same number.
    pub fn from_numbers(values: Vec<f64>) -> TextColumn {
        TextColumn {
            numbers: Some(values),
            ..Default::default()
        }
    }

    /// The numbers of a column given as numbers.
    pub fn numbers(&self) -> Option<&[f64]> {
        self.numbers.as_deref()
    }

    /// `rows` cells of `value`.
    pub fn filled(value: &str, rows: usize) -> TextColumn {
        let mut c = TextColumn::with_capacity(rows);
        for _ in 0..rows {
            c.push(value);
        }
        c
    }

    /// The text cells, written now for a column given as numbers.
    fn cells(&self) -> &Cells {
        match &self.numbers {
            Some(v) => self.lazy.get_or_init(|| Cells::of_numbers(v)),
            None => &self.text,
        }
    }

    pub fn push(&mut self, cell: &str) {
        // A column given as numbers becomes a text column.
        if self.numbers.is_some() {
            self.text = self.cells().clone();
            self.numbers = None;
            self.lazy = OnceLock::new();
        }
        self.text.push(cell);
    }

    pub fn len(&self) -> usize {
        match &self.numbers {
            Some(v) => v.len(),
            None => self.text.ends.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        self.cells().get(row)
    }

    pub fn first(&self) -> Option<&str> {
        self.get(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let cells = self.cells();
        (0..self.len()).map(move |r| cells.get(r).expect("a row of the column"))
    }
}

/// Columns are equal when their cells read the same.
impl PartialEq for TextColumn {
    fn eq(&self, other: &TextColumn) -> bool {
        self.cells() == other.cells()
    }
}

impl Eq for TextColumn {}

impl Index<usize> for TextColumn {
    type Output = str;

    fn index(&self, row: usize) -> &str {
        self.get(row).unwrap_or_else(|| {
            panic!(
                "row {row} of a column of {} (a bug in sweepfit)",
                self.len()
            )
        })
    }
}

impl<S: AsRef<str>> From<Vec<S>> for TextColumn {
    fn from(cells: Vec<S>) -> TextColumn {
        let mut c = TextColumn::with_capacity(cells.len());
        for s in &cells {
            c.push(s.as_ref());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_as_pushed() {
        let cells = ["run-a", "", "1e9", "ünïcode", ""];
        let c = TextColumn::from(cells.to_vec());
        assert_eq!(c.len(), 5);
        assert_eq!(c.iter().collect::<Vec<_>>(), cells);
        assert_eq!(
            (&c[3], c.first(), c.get(5)),
            ("ünïcode", Some("run-a"), None)
        );
        assert_eq!(
            TextColumn::filled("1", 3).iter().collect::<Vec<_>>(),
            ["1"; 3]
        );
        assert!(TextColumn::default().is_empty());
    }

    #[test]
    fn numbers_keep_their_values_and_read_as_their_shortest_text() {
        let v = vec![0.1 + 0.2, 53e6, -0.0, 1e-300, f64::NAN, 2.5e20];
        let mut c = TextColumn::from_numbers(v.clone());
        assert_eq!(c.len(), 6);
        assert_eq!(c.numbers().unwrap()[0], v[0]);
        let text: Vec<&str> = c.iter().collect();
        assert_eq!(
            text,
            [
                "0.30000000000000004",
                "53000000",
                "-0",
                "1e-300",
                "NaN",
                "2.5e20"
            ]
        );
        for (t, x) in text.iter().zip(&v).filter(|(_, x)| x.is_finite()) {
            assert_eq!(t.parse::<f64>().unwrap(), *x);
        }
        assert_eq!(c, TextColumn::from(c.iter().collect::<Vec<_>>()));
        // Appending text makes it a text column.
        c.push("x");
        assert!(c.numbers().is_none());
        assert_eq!((&c[0], &c[6], c.len()), ("0.30000000000000004", "x", 7));
    }
}
