//! Loss curves of a sweep: ingest (long CSV, per-run manifests), validation,
//! filters, and the structure-of-arrays `Dataset` every backend consumes.

mod column;
mod error;
mod filter;
mod long_csv;
mod manifest;
mod schedule;
mod table;

pub use column::TextColumn;
pub use error::DataError;
pub use filter::Filter;
pub(crate) use long_csv::MAX_LINEAR_LOSS;
pub use long_csv::{read_long_csv, write_long_csv};
pub use manifest::read_manifest;
pub use schedule::{Schedule, Schedules};
pub use table::{cell_key, Check, Selector, Table};

/// Checks that depend on how the data will be fitted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReadOptions {
    /// Reject loss <= 0 (needed when fitting in log space).
    pub positive_loss: bool,
}

/// One curve of the sweep: a distinct (run, N, T).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Run label ("" when the input has no `run` column).
    pub run: String,
    /// Model size in parameters.
    pub n: f64,
    /// Recurrent step at which the loss is read (1 for ordinary models).
    pub t: f64,
    /// Index of this curve's first point in the point arrays.
    pub start: usize,
    /// Number of points of this curve.
    pub len: usize,
}

impl Config {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }
}

/// Points grouped by configuration, structure-of-arrays, sorted by tokens
/// within each configuration. Ready to upload as-is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub configs: Vec<Config>,
    /// Training tokens seen (D), raw units.
    pub tokens: Vec<f64>,
    pub loss: Vec<f64>,
    pub weight: Vec<f64>,
    /// What the user should know about the input, e.g. rows a reader
    /// skipped; reported with the fit.
    pub notes: Vec<String>,
}

impl Dataset {
    pub fn points(&self) -> usize {
        self.tokens.len()
    }

    /// Distinct values of N, sorted ascending.
    pub fn distinct_n(&self) -> Vec<f64> {
        distinct(self.configs.iter().map(|c| c.n))
    }

    /// Distinct values of T, sorted ascending.
    pub fn distinct_t(&self) -> Vec<f64> {
        distinct(self.configs.iter().map(|c| c.t))
    }

    /// Build a dataset from unordered rows. Rows are grouped by (run, N, T)
    /// in order of first appearance, sorted by tokens within each group, and
    /// points with the same tokens in the same group are kept (they are
    /// independent observations and simply both enter the objective).
    pub fn from_rows(rows: Vec<Row>) -> Dataset {
        // (run, N, T, points as (tokens, loss, weight))
        type Group = (String, f64, f64, Vec<(f64, f64, f64)>);
        let mut groups: Vec<Group> = Vec::new();
        let mut index: std::collections::HashMap<(String, u64, u64), usize> =
            std::collections::HashMap::new();
        for r in rows {
            let key = (r.run.clone(), r.n.to_bits(), r.t.to_bits());
            let gi = *index.entry(key).or_insert_with(|| {
                groups.push((r.run.clone(), r.n, r.t, Vec::new()));
                groups.len() - 1
            });
            groups[gi].3.push((r.tokens, r.loss, r.weight));
        }
        let mut ds = Dataset::default();
        for (run, n, t, mut pts) in groups {
            // Stable sort keeps file order among equal token counts.
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let start = ds.tokens.len();
            for (d, l, w) in &pts {
                ds.tokens.push(*d);
                ds.loss.push(*l);
                ds.weight.push(*w);
            }
            ds.configs.push(Config {
                run,
                n,
                t,
                start,
                len: pts.len(),
            });
        }
        ds
    }
}

/// One observation before grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub run: String,
    pub n: f64,
    pub t: f64,
    pub tokens: f64,
    pub loss: f64,
    pub weight: f64,
}

fn distinct(it: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = it.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}
