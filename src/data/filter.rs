//! Point filters applied to each curve before fitting.

use std::collections::HashMap;

use super::{cell_key, Check, Config, DataError, Dataset, Table};

/// Keep points with `min_tokens <= tokens <= max_tokens`, then thin each
/// curve to every `stride`-th of those points, starting with its first.
/// Curves left without points are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub min_tokens: Option<f64>,
    pub max_tokens: Option<f64>,
    /// 0 and 1 both keep every point.
    pub stride: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            min_tokens: None,
            max_tokens: None,
            stride: 1,
        }
    }
}

impl Filter {
    pub fn apply(&self, ds: &Dataset) -> Dataset {
        let in_bounds = |d: f64| {
            self.min_tokens.is_none_or(|lo| d >= lo) && self.max_tokens.is_none_or(|hi| d <= hi)
        };
        let mut out = Dataset {
            notes: ds.notes.clone(),
            ..Dataset::default()
        };
        for c in &ds.configs {
            let start = out.tokens.len();
            for i in c
                .range()
                .filter(|&i| in_bounds(ds.tokens[i]))
                .step_by(self.stride.max(1))
            {
                out.tokens.push(ds.tokens[i]);
                out.loss.push(ds.loss[i]);
                out.weight.push(ds.weight[i]);
            }
            let len = out.tokens.len() - start;
            if len > 0 {
                out.configs.push(Config {
                    start,
                    len,
                    ..c.clone()
                });
            }
        }
        out
    }

    /// The filter on a table read as it is, every column kept (those
    /// `--test-where` and `--by` read too): its `tokens` column (else `D`)
    /// bounds the points, and each curve (rows with equal `run`, `N` and
    /// `T`, of the three the table has) is thinned in order of tokens, as
    /// [`Filter::apply`] does. Rows keep their order and their lines.
    pub fn apply_table(&self, t: &Table) -> Result<Table, DataError> {
        let tc = match t.lookup("tokens")? {
            Some(c) => c,
            None => t.lookup("D")?.ok_or_else(|| {
                DataError::Message(format!(
                    "{}: --min-tokens, --max-tokens and --stride read the tokens column \
                     ('tokens' or 'D'), and there is none; columns found: {}",
                    t.path.display(),
                    t.found()
                ))
            })?,
        };
        let tokens = t.numbers(tc, Check::Finite)?;
        let mut keys = Vec::new();
        for name in ["run", "N", "T"] {
            keys.extend(t.lookup(name)?);
        }
        // Curves in order of their first row, each its rows in file order.
        let mut curve_of: HashMap<Vec<String>, usize> = HashMap::new();
        let mut curves: Vec<Vec<usize>> = Vec::new();
        for r in 0..t.rows() {
            let key: Vec<String> = keys
                .iter()
                .map(|&c| cell_key(t.columns[c].get(r).unwrap_or("")))
                .collect();
            let next = curves.len();
            let i = *curve_of.entry(key).or_insert(next);
            if i == next {
                curves.push(Vec::new());
            }
            curves[i].push(r);
        }
        let in_bounds = |d: f64| {
            self.min_tokens.is_none_or(|lo| d >= lo) && self.max_tokens.is_none_or(|hi| d <= hi)
        };
        let mut kept = Vec::new();
        for mut rows in curves {
            rows.sort_by(|&a, &b| tokens[a].total_cmp(&tokens[b]));
            kept.extend(
                rows.into_iter()
                    .filter(|&r| in_bounds(tokens[r]))
                    .step_by(self.stride.max(1)),
            );
        }
        if kept.is_empty() {
            return Err(DataError::Message(format!(
                "{}: no rows left after --min-tokens/--max-tokens/--stride",
                t.path.display()
            )));
        }
        kept.sort_unstable();
        Ok(t.select(&kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Row;

    fn ds() -> Dataset {
        let row = |run: &str, d: f64| Row {
            run: run.into(),
            n: 1.0,
            t: 1.0,
            tokens: d,
            loss: d + 1.0,
            weight: 1.0,
        };
        Dataset {
            notes: vec!["a note on the input".into()],
            ..Dataset::from_rows(
                (0..10)
                    .map(|i| row("a", i as f64))
                    .chain([row("b", 100.0)])
                    .collect(),
            )
        }
    }

    #[test]
    fn default_keeps_everything() {
        assert_eq!(Filter::default().apply(&ds()), ds());
        let zero = Filter {
            stride: 0,
            ..Filter::default()
        };
        assert_eq!(zero.apply(&ds()), ds());
    }

    #[test]
    fn bounds_then_stride_and_empty_curves_dropped() {
        let f = Filter {
            min_tokens: Some(2.0),
            max_tokens: Some(8.0),
            stride: 3,
        };
        let out = f.apply(&ds());
        assert_eq!(out.tokens, vec![2.0, 5.0, 8.0]);
        assert_eq!(out.loss, vec![3.0, 6.0, 9.0]);
        assert_eq!(out.configs.len(), 1);
        assert_eq!((out.configs[0].start, out.configs[0].len), (0, 3));
        assert_eq!(out.notes, ds().notes);
    }
}
