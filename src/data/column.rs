//! A column of text cells in one buffer. A table of millions of rows then
//! holds its text and an end offset per cell, not a heap string each: the
//! README's Pythia fit (107,400 rows by 6 columns) peaked at 53 MB with
//! it, 77 MB without.

use std::ops::Index;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    text: String,
    /// Per cell, where its text ends in `text` (it starts where the
    /// previous one ends).
    ends: Vec<usize>,
}

impl TextColumn {
    pub fn with_capacity(rows: usize) -> TextColumn {
        TextColumn {
            text: String::new(),
            ends: Vec::with_capacity(rows),
        }
    }

    /// `rows` cells of `value`.
    pub fn filled(value: &str, rows: usize) -> TextColumn {
        let mut c = TextColumn::with_capacity(rows);
        for _ in 0..rows {
            c.push(value);
        }
        c
    }

    pub fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        let end = *self.ends.get(row)?;
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Some(&self.text[start..end])
    }

    pub fn first(&self) -> Option<&str> {
        self.get(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|r| &self[r])
    }
}

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
}
