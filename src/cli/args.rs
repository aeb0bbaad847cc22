//! The input options of the commands that read a sweep (a CSV or a
//! manifest of logs, and the point filters); the other option groups are
//! the library's (`sweepfit::options`), shared with the Python package.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use sweepfit::data::{self, Dataset, Filter, ReadOptions};
use sweepfit::objective::{Objective, Space};
pub(crate) use sweepfit::options::{
    law_source, non_negative, parse_var, positive, sim_options, BackendArgs, EvalSettings,
    FitFlags, FitRequest, LawArgs, SimFlags,
};

#[derive(Args)]
pub(crate) struct InputArgs {
    /// Long CSV: columns run (optional), N, T (optional), tokens (or D), loss, weight (optional).
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    input: Option<PathBuf>,
    /// Manifest CSV of per-run logs: file,N,T,tokens_per_step,step_col,loss_col,
    /// and optionally run (a label) and step_offset (added to a resumed log's
    /// steps); files are relative to the manifest's folder.
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

impl InputArgs {
    /// The input as a table for a law given with --law: a CSV as it is
    /// (every column kept), or a manifest's logs and the point filters
    /// through the sweep reader (columns run, N, T, tokens, loss, weight).
    pub(crate) fn table(&self, objective: &Objective) -> anyhow::Result<data::Table> {
        let f = &self.filter;
        let filtered = f.min_tokens.is_some() || f.max_tokens.is_some() || f.stride != 1;
        match (&self.input, &self.manifest) {
            (Some(p), None) if !filtered => Ok(data::Table::read(p)?),
            (Some(p), None) => Ok(self.filter().apply_table(&data::Table::read(p)?)?),
            (Some(p), _) | (None, Some(p)) => {
                let ds = self.load(objective)?;
                Ok(data::Table::from_dataset(&ds, p))
            }
            (None, None) => bail!("give a CSV file or --manifest FILE"),
        }
    }

    fn filter(&self) -> Filter {
        Filter {
            min_tokens: self.filter.min_tokens,
            max_tokens: self.filter.max_tokens,
            stride: self.filter.stride as usize,
        }
    }

    /// Read the sweep and apply the filters.
    pub(crate) fn load(&self, objective: &Objective) -> anyhow::Result<Dataset> {
        let read = ReadOptions {
            positive_loss: objective.space == Space::Log,
        };
        let ds = match (&self.input, &self.manifest) {
            (Some(p), _) => data::read_long_csv(p, &read)?,
            (None, Some(m)) => data::read_manifest(m, &read)?,
            (None, None) => bail!("give a long CSV or --manifest FILE"),
        };
        let ds = self.filter().apply(&ds);
        if ds.points() == 0 {
            bail!("no points left after --min-tokens/--max-tokens/--stride");
        }
        Ok(ds)
    }
}

#[derive(Args)]
struct FilterArgs {
    /// Drop points with fewer tokens.
    #[arg(long, value_parser = non_negative)]
    min_tokens: Option<f64>,
    /// Drop points with more tokens.
    #[arg(long, value_parser = non_negative)]
    max_tokens: Option<f64>,
    /// Keep every K-th point of each curve (starting with its first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    stride: u64,
}
