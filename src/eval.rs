//! How well the law extrapolates (`sweepfit eval`): refit on part of the
//! sweep and score the prediction of the rest. Three protocols, after the
//! LoopLM paper:
//! - sizes: train on every choice of `train_sizes` model sizes, predict
//!   the other sizes;
//! - tokens: train on the first fraction of every curve's tokens, predict
//!   the rest of each curve;
//! - leave-t: leave one recurrent step T out, predict it.
//!
//! Every fold is a weighting of the same data (held-out curves get
//! multiplier 0, held-out tails are cut by a per-curve point limit), so all
//! folds and a fit on all points run as one batch, each fold with the full
//! set of starts.

use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::backend::{weights, Backend, Prepared, Weighting, UNWEIGHTED};
use crate::data::Dataset;
use crate::fit::{
    self, best_index, count_at_best, initial_starts, raw_params, search_space, FitOptions, Group,
    Polish,
};
use crate::law::PARAM_NAMES;
use crate::optim::Progress;
use crate::report::{
    format_count, subset_metrics, BackendReport, EvalReport, FoldReport, ProtocolSummary,
};

/// A way of holding data out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Train on some model sizes, predict the others.
    Sizes,
    /// Train on the first part of every curve, predict the rest.
    Tokens,
    /// Leave one recurrent step T out and predict it.
    LeaveT,
    /// Hold out the rows `--test-where` selects (and nothing else).
    TestWhere,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sizes => "sizes",
            Protocol::Tokens => "tokens",
            Protocol::LeaveT => "leave-t",
            Protocol::TestWhere => "test-where",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub protocols: Vec<Protocol>,
    /// Model sizes each `sizes` fold trains on.
    pub train_sizes: usize,
    /// Token fractions of the `tokens` protocol, each in (0, 1).
    pub fractions: Vec<f64>,
    /// Whether the user named the protocols: a protocol asked for that
    /// cannot run is an error, one run by default is skipped with a note.
    pub asked: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            protocols: vec![Protocol::Sizes, Protocol::Tokens, Protocol::LeaveT],
            asked: false,
            train_sizes: 3,
            fractions: vec![0.25, 0.5, 0.75],
        }
    }
}

/// One train/held-out split.
#[derive(Debug, Clone)]
pub struct Fold {
    pub protocol: Protocol,
    /// What the fold trains on or leaves out, for people.
    pub label: String,
    /// Weighting of the training points; every other point is held out.
    pub train: Weighting,
}

impl Fold {
    /// Indices of the points the fold holds out.
    pub fn held_out(&self, ds: &Dataset) -> Vec<usize> {
        let mut out = Vec::new();
        for (ci, c) in ds.configs.iter().enumerate() {
            for pos in 0..c.len {
                if !self.train.keeps(ci, pos) {
                    out.push(c.start + pos);
                }
            }
        }
        out
    }

    /// Points the fold trains on.
    pub fn train_points(&self, ds: &Dataset) -> usize {
        ds.points() - self.held_out(ds).len()
    }
}

/// Most folds one protocol may make (C(n, k) grows fast with many sizes).
pub const MAX_FOLDS: usize = 500;

/// The folds of `opts.protocols` on `ds`, and notes on protocols that do
/// not apply to this sweep (too few sizes or steps).
pub fn folds(ds: &Dataset, opts: &EvalOptions) -> anyhow::Result<(Vec<Fold>, Vec<String>)> {
    let nc = ds.configs.len();
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for &p in &opts.protocols {
        match p {
            Protocol::Sizes => {
                let ns = ds.distinct_n();
                let k = opts.train_sizes;
                if k == 0 {
                    bail!("--train-sizes must be at least 1");
                }
                if ns.len() <= k {
                    notes.push(format!(
                        "sizes: skipped, the sweep has {} model sizes and each fold trains on {k} \
                         (set --train-sizes lower)",
                        ns.len()
                    ));
                    continue;
                }
                let subsets = combinations(ns.len(), k);
                if subsets.len() > MAX_FOLDS {
                    let why = format!(
                        "sizes: {} choose {k} is {} folds, more than {MAX_FOLDS}; set --train-sizes",
                        ns.len(),
                        subsets.len()
                    );
                    if opts.asked {
                        bail!("{why}");
                    }
                    notes.push(format!("{why}: skipped"));
                    continue;
                }
                for s in subsets {
                    let chosen: Vec<f64> = s.iter().map(|&i| ns[i]).collect();
                    let mut w = Weighting::uniform(nc);
                    for (ci, c) in ds.configs.iter().enumerate() {
                        if !chosen.contains(&c.n) {
                            w.config[ci] = 0.0;
                        }
                    }
                    let names: Vec<String> = chosen.iter().map(|&n| format_count(n)).collect();
                    out.push(Fold {
                        protocol: p,
                        label: format!("train N = {}", names.join(", ")),
                        train: w,
                    });
                }
            }
            Protocol::Tokens => {
                for &f in &opts.fractions {
                    if !(f > 0.0 && f < 1.0) {
                        bail!("token fractions must lie in (0, 1), got {f}");
                    }
                    let mut w = Weighting::uniform(nc);
                    for (ci, c) in ds.configs.iter().enumerate() {
                        // Points are sorted by tokens within a curve.
                        let tok = &ds.tokens[c.range()];
                        let last = tok.last().copied().unwrap_or(0.0);
                        w.first[ci] = tok.partition_point(|&d| d <= f * last) as u32;
                    }
                    out.push(Fold {
                        protocol: p,
                        label: format!("first {}% of tokens", 100.0 * f),
                        train: w,
                    });
                }
            }
            Protocol::LeaveT => {
                let ts = ds.distinct_t();
                if ts.len() < 3 {
                    notes.push(format!(
                        "leave-t: skipped, the sweep has {} recurrent step(s); leaving one out \
                         needs at least 3 so that the rest still determine the T term",
                        ts.len()
                    ));
                    continue;
                }
                for &t in &ts {
                    let mut w = Weighting::uniform(nc);
                    for (ci, c) in ds.configs.iter().enumerate() {
                        if c.t == t {
                            w.config[ci] = 0.0;
                        }
                    }
                    out.push(Fold {
                        protocol: p,
                        label: format!("leave out T = {t}"),
                        train: w,
                    });
                }
            }
            Protocol::TestWhere => bail!("the test-where protocol needs --test-where COLUMN=VALUE"),
        }
    }
    Ok((out, notes))
}

/// Every k-element subset of 0..n, in lexicographic order.
pub fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<usize> = (0..k).collect();
    if k > n {
        return out;
    }
    loop {
        out.push(cur.clone());
        // Advance the rightmost index that can still move.
        let Some(i) = (0..k).rev().find(|&i| cur[i] < n - k + i) else {
            return out;
        };
        cur[i] += 1;
        for j in i + 1..k {
            cur[j] = cur[j - 1] + 1;
        }
    }
}

/// A fold's best starts are refined in f64 after a single-precision batch.
const POLISH_FOLD: Polish = Polish {
    always: 2,
    max: 4,
    rtol: 1e-4,
};

/// What [`evaluate`] returns: the report, and per fold its best
/// parameters (raw units) and held-out points, for pictures.
pub struct EvalOutput {
    pub report: EvalReport,
    pub folds: Vec<Fold>,
    pub params: Vec<[f64; crate::law::NP]>,
}

/// Fit every fold of `eval` and the whole sweep in one batch on `backend`
/// (built from `prepared = Prepared::new(ds, opts.objective)`), and score
/// each fold on its held-out points.
pub fn evaluate(
    ds: &Dataset,
    prepared: &Prepared,
    opts: &FitOptions,
    eval: &EvalOptions,
    backend: &mut dyn Backend,
    progress: impl FnMut(Progress),
) -> anyhow::Result<EvalOutput> {
    let started = Instant::now();
    if ds.points() == 0 {
        bail!("no data points to evaluate on");
    }
    let (space, space_notes) = search_space(ds, prepared, opts)?;
    // What the input needed (skipped rows of logs) comes first, as in fit.json.
    let mut notes = [ds.notes.as_slice(), &space_notes].concat();
    let (folds, fold_notes) = folds(ds, eval)?;
    notes.extend(fold_notes);
    if folds.is_empty() {
        bail!("no protocol applies to this sweep: {}", notes.join("; "));
    }
    let full_starts = initial_starts(&space, prepared, opts)?;
    // Every fold is a full set of starts in one batch: many sizes make
    // many folds (30 sizes, 3 per fold: 4060), so refuse what cannot fit.
    crate::memory::ensure_fits(
        &format!(
            "{} folds of {} starts each",
            folds.len() + 1,
            full_starts.len()
        ),
        (folds.len() + 1) as f64
            * full_starts.len() as f64
            * crate::optim::problem_bytes(space.dim(), opts.lbfgs.memory),
    )?;
    let mut weightings = Vec::with_capacity(folds.len());
    let mut groups = vec![Group {
        weighting: UNWEIGHTED,
        starts: full_starts,
    }];
    for (i, f) in folds.iter().enumerate() {
        let train = f.train_points(ds);
        if train < space.dim() {
            bail!(
                "{} fold '{}' trains on {train} points, fewer than the {} free parameters",
                f.protocol.name(),
                f.label,
                space.dim()
            );
        }
        let resolved = weights::resolve(&f.train, prepared)
            .with_context(|| format!("{} fold '{}'", f.protocol.name(), f.label))?;
        groups.push(Group {
            weighting: i as u32,
            starts: initial_starts(&space, &prepared.reweighted(&resolved), opts)?,
        });
        weightings.push(f.train.clone());
    }
    let info = backend.info();
    let solved = fit::solve_groups(
        &space,
        prepared,
        backend,
        &weightings,
        &groups,
        &opts.lbfgs,
        POLISH_FOLD,
        progress,
    )?;
    let mut params = Vec::with_capacity(folds.len());
    let mut reports = Vec::with_capacity(folds.len() + 1);
    let all: Vec<usize> = (0..ds.points()).collect();
    for (gi, outcomes) in solved.outcomes.iter().enumerate() {
        let fold = gi.checked_sub(1).map(|i| &folds[i]);
        let best = best_index(outcomes).with_context(|| {
            format!(
                "every start of {} ended with a non-finite objective",
                fold.map_or("the fit on all points".to_string(), |f| format!(
                    "fold '{}'",
                    f.label
                ))
            )
        })?;
        let raw = raw_params(&space, &outcomes[best].x);
        let held = fold.map_or_else(|| all.clone(), |f| f.held_out(ds));
        let (r2, rmse, mape) = subset_metrics(ds, &raw, &held);
        reports.push(FoldReport {
            protocol: fold.map_or("all", |f| f.protocol.name()).to_string(),
            fold: fold.map_or("all points".to_string(), |f| f.label.clone()),
            train_points: ds.points() - if fold.is_some() { held.len() } else { 0 },
            held_out_points: if fold.is_some() { held.len() } else { 0 },
            scored_points: held.len(),
            objective: outcomes[best].f,
            starts: outcomes.len(),
            at_best: count_at_best(outcomes),
            params: (0..PARAM_NAMES.len())
                .map(|i| (PARAM_NAMES[i].to_string(), raw[i]))
                .collect(),
            r2,
            rmse,
            mape,
        });
        if fold.is_some() {
            params.push(raw);
        }
    }
    let full = reports.remove(0);
    let summary = eval
        .protocols
        .iter()
        .filter_map(|&p| {
            let rs: Vec<&FoldReport> = reports.iter().filter(|r| r.protocol == p.name()).collect();
            if rs.is_empty() {
                return None;
            }
            let mean =
                |f: fn(&FoldReport) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64;
            Some(ProtocolSummary {
                protocol: p.name().to_string(),
                folds: rs.len(),
                r2: mean(|r| r.r2),
                rmse: mean(|r| r.rmse),
                mape: mean(|r| r.mape),
            })
        })
        .collect();
    let report = EvalReport {
        law: opts.law.name().to_string(),
        loss: opts.objective.loss_name().to_string(),
        space: opts.objective.space_name().to_string(),
        fixed: (0..PARAM_NAMES.len())
            .filter(|&i| space.spec.is_fixed(i))
            .map(|i| PARAM_NAMES[i].to_string())
            .collect(),
        points: ds.points(),
        configs: ds.configs.len(),
        full,
        folds: reports,
        summary,
        backend: BackendReport {
            kind: info.kind,
            device: info.device,
        },
        batched_evaluations: solved.calls,
        seconds: started.elapsed().as_secs_f64(),
        notes,
    };
    Ok(EvalOutput {
        report,
        folds,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_every_subset_once() {
        let c = combinations(5, 3);
        assert_eq!(c.len(), 10);
        assert_eq!(c[0], vec![0, 1, 2]);
        assert_eq!(c[9], vec![2, 3, 4]);
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        assert!(c.iter().all(|s| s.windows(2).all(|w| w[0] < w[1])));
        assert_eq!(combinations(4, 4), vec![vec![0, 1, 2, 3]]);
        assert!(combinations(2, 3).is_empty());
    }
}
