//! `eval` for any law: refit on part of the rows and score the rest, every
//! fold (and the fit on all rows) one job of a single batch.
//! - sizes: train on every choice of `train_sizes` values of the law's
//!   variable N, predict the rows of the other values;
//! - tokens: train on the first fraction of every curve along the law's
//!   axis, predict the rest;
//! - leave one value of a per-curve variable (`--leave`, T by default) out;
//! - test-where: the rows `--test-where` selects held out.

use std::time::Instant;

use anyhow::bail;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{
    backend_report, by_groups, curves_of, fit_jobs, key_text, law_space, predict_into,
    read_columns, BoundLaw, Data, Group, JobFit, LawFitOptions,
};
use crate::data::Table;
use crate::law::space::LawSpace;
use crate::optim::Progress;
use crate::report::{format_count, EvalReport, FoldReport, ProtocolSummary};

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

/// Most folds one protocol may make (C(n, k) grows fast with many sizes).
pub const MAX_FOLDS: usize = 500;

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

#[derive(Debug, Clone)]
pub struct LawEvalOptions {
    /// Protocols asked for; `None`: every one that applies, with a note
    /// for those that do not.
    pub protocols: Option<Vec<Protocol>>,
    pub train_sizes: usize,
    pub fractions: Vec<f64>,
    /// The per-curve variable `leave-t` leaves out one value of at a time.
    pub leave: String,
    /// A protocol asked for that does not apply to the law (sizes for a
    /// law without N) is skipped with a note instead of refused: a
    /// comparison asks every law for the same protocols.
    pub lenient: bool,
}

/// What [`evaluate`] returns: the report, and per fold its rows held out
/// and its parameters (for pictures).
pub struct LawEvalOutput {
    pub report: EvalReport,
    pub held_out: Vec<Vec<bool>>,
    pub params: Vec<IndexMap<String, f64>>,
}

/// Name of a protocol in reports: leave-one-out carries its variable.
fn protocol_name(p: Protocol, leave: &str) -> String {
    match p {
        Protocol::LeaveT => format!("leave-{}", leave.to_lowercase()),
        other => other.name().to_string(),
    }
}

/// A fold and the name of its protocol.
type NamedFold = (String, Group);

/// The folds of the asked protocols on `table` (plus `--test-where`), and
/// notes on protocols that do not apply.
fn folds(
    b: &BoundLaw,
    table: &Table,
    vars: &[Vec<f64>],
    fit: &LawFitOptions,
    opts: &LawEvalOptions,
) -> anyhow::Result<(Vec<NamedFold>, Vec<String>)> {
    let rows = table.rows();
    let explicit = opts.protocols.is_some() && !opts.lenient;
    let protocols = opts
        .protocols
        .clone()
        .unwrap_or_else(|| vec![Protocol::Sizes, Protocol::Tokens, Protocol::LeaveT]);
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut skip = |why: String| -> anyhow::Result<()> {
        if explicit {
            bail!("{why}");
        }
        notes.push(format!("{why}: skipped"));
        Ok(())
    };
    let fold = |label: String, held: &dyn Fn(usize) -> bool| -> Group {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..rows).partition(|&r| held(r));
        Group {
            key: IndexMap::from([("fold".to_string(), label)]),
            train,
            test,
        }
    };
    let var = |name: &str| b.law.variables.iter().position(|v| v == name);
    let distinct = |v: usize| {
        let mut d = vars[v].clone();
        d.sort_by(f64::total_cmp);
        d.dedup();
        d
    };
    for p in protocols {
        let name = protocol_name(p, &opts.leave);
        match p {
            Protocol::Sizes => {
                let Some(v) = var("N") else {
                    skip("sizes: the law has no variable N".to_string())?;
                    continue;
                };
                let ns = distinct(v);
                let k = opts.train_sizes;
                if k == 0 {
                    bail!("--train-sizes must be at least 1");
                }
                if ns.len() <= k {
                    skip(format!(
                        "sizes: the data has {} values of N and each fold trains on {k} \
                         (set --train-sizes lower)",
                        ns.len()
                    ))?;
                    continue;
                }
                let subsets = combinations(ns.len(), k);
                if subsets.len() > MAX_FOLDS {
                    skip(format!(
                        "sizes: {} choose {k} is {} folds, more than {MAX_FOLDS} \
                         (set --train-sizes)",
                        ns.len(),
                        subsets.len()
                    ))?;
                    continue;
                }
                for s in subsets {
                    let chosen: Vec<f64> = s.iter().map(|&i| ns[i]).collect();
                    let names: Vec<String> = chosen.iter().map(|&n| format_count(n)).collect();
                    let label = format!("train N = {}", names.join(", "));
                    out.push((
                        name.clone(),
                        fold(label, &|r| !chosen.contains(&vars[v][r])),
                    ));
                }
            }
            Protocol::Tokens => {
                let Some(axis) = b.axis else {
                    skip("tokens: the law names no axis to cut its curves along".to_string())?;
                    continue;
                };
                let curves = curves_of(table, vars, axis, &b.split);
                for &f in &opts.fractions {
                    if !(f > 0.0 && f < 1.0) {
                        bail!("token fractions must lie in (0, 1), got {f}");
                    }
                    let mut held = vec![false; rows];
                    for c in &curves {
                        let last = c.last().map_or(0.0, |&r| vars[axis][r]);
                        for &r in c {
                            held[r] = vars[axis][r] > f * last;
                        }
                    }
                    let label = format!("first {}% of {}", 100.0 * f, b.law.variables[axis]);
                    out.push((name.clone(), fold(label, &|r| held[r])));
                }
            }
            Protocol::LeaveT => {
                let Some(v) = var(&opts.leave) else {
                    skip(format!(
                        "{name}: the law has no variable {} (set --leave to one of {})",
                        opts.leave,
                        b.law.variables.join(", ")
                    ))?;
                    continue;
                };
                let values = distinct(v);
                if values.len() < 3 {
                    skip(format!(
                        "{name}: the data has {} value(s) of {}; leaving one out needs at least \
                         3 so that the rest still determine its term",
                        values.len(),
                        opts.leave
                    ))?;
                    continue;
                }
                for &x in &values {
                    let label = format!("leave out {} = {}", opts.leave, format_count(x));
                    out.push((name.clone(), fold(label, &|r| vars[v][r] == x)));
                }
            }
            // Its fold is added below whenever --test-where is given.
            Protocol::TestWhere if fit.test_where.is_none() => {
                bail!("the test-where protocol needs --test-where COLUMN=VALUE")
            }
            Protocol::TestWhere => {}
        }
    }
    if let Some(s) = &fit.test_where {
        let held = s.rows(table)?;
        let label = format!("test where {}={}", s.column, s.value);
        out.push(("test-where".to_string(), fold(label, &|r| held[r])));
    }
    Ok(distinct_folds(out, notes))
}

/// The folds that hold out something new: a fold that trains or scores on
/// no rows is dropped, and so is one that holds out the same rows as an
/// earlier fold of its protocol (cuts at 50% and 75% of a variable with
/// few values can coincide), each with a note. Folds of different
/// protocols are kept: each protocol's scores are over all of its folds
/// (the --test-where rows may be a tokens cut's too).
fn distinct_folds(folds: Vec<NamedFold>, mut notes: Vec<String>) -> (Vec<NamedFold>, Vec<String>) {
    let mut kept: Vec<NamedFold> = Vec::new();
    let label = |g: &Group| g.key.get("fold").cloned().unwrap_or_default();
    for (name, g) in folds {
        if g.train.is_empty() || g.test.is_empty() {
            let what = if g.train.is_empty() {
                "trains on"
            } else {
                "holds out"
            };
            notes.push(format!(
                "{name} fold '{}' {what} no rows: skipped",
                label(&g)
            ));
            continue;
        }
        if let Some((first, same)) = kept.iter().find(|(p, k)| *p == name && k.test == g.test) {
            notes.push(format!(
                "{name} fold '{}' holds out the same rows as {first} fold '{}': skipped",
                label(&g),
                label(same)
            ));
            continue;
        }
        kept.push((name, g));
    }
    (kept, notes)
}

/// Evaluate `b` on `table`: every fold and the fit on all rows in one
/// batch, each fold scored on its held-out rows.
pub fn evaluate(
    b: &BoundLaw,
    table: &Table,
    fit: &LawFitOptions,
    opts: &LawEvalOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<LawEvalOutput> {
    let started = Instant::now();
    if fit.starts == 0 {
        bail!("--starts must be at least 1");
    }
    let cols = read_columns(b, table, &fit.objective)?;
    let (folds, mut notes) = folds(b, table, &cols.vars, fit, opts)?;
    // In a comparison, a law no protocol applies to still has its fit on
    // all rows.
    if folds.is_empty() && !opts.lenient {
        bail!("no protocol applies to this data: {}", notes.join("; "));
    }
    let all: Vec<usize> = (0..table.rows()).collect();
    let (keys, group_of) = by_groups(table, &fit.by)?;
    let (space, _) = law_space(b, &cols, &all, &group_of, &fit.fix)?;
    let mut jobs = vec![Group {
        key: IndexMap::new(),
        train: all.clone(),
        test: Vec::new(),
    }];
    jobs.extend(folds.iter().map(|(_, g)| g.clone()));
    // With --by, every fold (and the fit on all rows) fits each group of
    // rows apart, all of them one batch; a fold is scored on the held-out
    // rows of every group it could fit. Per unit of the batch, its job
    // and its group.
    let mut unit_of: Vec<(usize, usize)> = Vec::new();
    let mut batch: Vec<Group> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        if fit.by.is_empty() {
            unit_of.push((j, 0));
            batch.push(job.clone());
            continue;
        }
        for (g, key) in keys.iter().enumerate() {
            let part = |rows: &[usize]| -> Vec<usize> {
                rows.iter().copied().filter(|&r| group_of[r] == g).collect()
            };
            let (train, test) = (part(&job.train), part(&job.test));
            if train.is_empty() && test.is_empty() {
                continue;
            }
            let mut k = job.key.clone();
            k.extend(key.iter().map(|(c, v)| (c.clone(), v.clone())));
            let unit = Group {
                key: k,
                train,
                test,
            };
            if j > 0 && unit.train.len() < space.dim() {
                notes.push(format!(
                    "{} fold '{}': group {} has {} rows to fit, fewer than the law's {} free \
                     parameters; its {} held-out rows are not scored",
                    folds[j - 1].0,
                    job.key.get("fold").cloned().unwrap_or_default(),
                    key_text(key),
                    unit.train.len(),
                    space.dim(),
                    unit.test.len()
                ));
                continue;
            }
            unit_of.push((j, g));
            batch.push(unit);
        }
    }
    crate::memory::ensure_fits(
        &format!("{} folds of {} starts each", batch.len(), fit.starts),
        (batch.len() * fit.starts) as f64
            * crate::optim::problem_bytes(space.dim(), fit.lbfgs.memory),
    )?;
    // A fold's training rows may hold a term's variables at one value
    // each where the whole table does not (one size to train on): that
    // term's coefficient is then fixed at 0 for the fold, as `fit` on
    // those rows fixes it, rather than left free to run away and
    // extrapolate wildly. Units are fitted in one batch per set of
    // fixed parameters.
    let fixed_of = |s: &LawSpace| -> Vec<Option<u64>> {
        s.rules.iter().map(|r| r.fixed.map(f64::to_bits)).collect()
    };
    let mut spaces: Vec<(LawSpace, Vec<usize>)> = vec![(space.clone(), Vec::new())];
    for (u, unit) in batch.iter().enumerate() {
        let (j, _) = unit_of[u];
        // The fit on all rows is the whole table's space.
        if j == 0 {
            spaces[0].1.push(u);
            continue;
        }
        let (own, own_notes) = law_space(b, &cols, &unit.train, &group_of, &fit.fix)?;
        let key = fixed_of(&own);
        match spaces.iter().position(|(s, _)| fixed_of(s) == key) {
            Some(i) => spaces[i].1.push(u),
            None => spaces.push((own, vec![u])),
        }
        if key != fixed_of(&space) {
            for n in own_notes {
                notes.push(format!(
                    "{} fold '{}'{}: {n}",
                    folds[j - 1].0,
                    jobs[j].key.get("fold").cloned().unwrap_or_default(),
                    match unit.key.len() > jobs[j].key.len() {
                        true => format!(" ({})", key_text(&unit.key)),
                        false => String::new(),
                    }
                ));
            }
        }
    }
    let mut fits: Vec<Option<JobFit>> = vec![None; batch.len()];
    let (mut calls, mut ran) = (0, fit.starts);
    let mut progress = progress;
    for (own, units) in &spaces {
        if units.is_empty() {
            continue;
        }
        let part: Vec<Group> = units.iter().map(|&u| batch[u].clone()).collect();
        let done = fit_jobs(
            Data {
                b,
                table,
                cols: &cols,
            },
            own,
            &part,
            fit,
            None,
            &mut progress,
        )?;
        calls += done.calls;
        // Starts each fit ran: fewer than asked when they stopped early.
        ran = ran.min(done.outcomes.len() / part.len());
        for (&u, f) in units.iter().zip(done.fits) {
            fits[u] = Some(f);
        }
    }
    let fits: Vec<JobFit> = fits.into_iter().flatten().collect();
    debug_assert_eq!(fits.len(), batch.len());
    if ran < fit.starts && space.dim() > 0 {
        notes.push(super::early_stop_note(ran, fit.starts));
    }
    let named = |p: &[f64]| -> IndexMap<String, f64> {
        b.law
            .params
            .iter()
            .cloned()
            .zip(p.iter().copied())
            .collect()
    };
    let mut pred = vec![f64::NAN; table.rows()];
    let mut reports = Vec::with_capacity(jobs.len());
    let mut held_out = Vec::new();
    let mut params = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let mine: Vec<(usize, &Group, &JobFit)> = unit_of
            .iter()
            .zip(batch.iter().zip(&fits))
            .filter(|((j, _), _)| *j == i)
            .map(|(&(_, g), (unit, f))| (g, unit, f))
            .collect();
        let mut scored = Vec::new();
        for (_, unit, f) in &mine {
            let rows = if i == 0 { &unit.train } else { &unit.test };
            predict_into(b, &cols, &f.params, rows, &mut pred);
            scored.extend_from_slice(rows);
        }
        scored.sort_unstable();
        let loss: Vec<f64> = scored.iter().map(|&r| cols.loss[r]).collect();
        let pr: Vec<f64> = scored.iter().map(|&r| pred[r]).collect();
        let m = crate::report::SetMetrics::new(&loss, &pr);
        // Nothing scored (every group too small to fit): no score.
        let mape = match loss.len() {
            0 => f64::NAN,
            n => {
                100.0
                    * loss
                        .iter()
                        .zip(&pr)
                        .map(|(y, p)| (p - y).abs() / y.abs())
                        .sum::<f64>()
                    / n as f64
            }
        };
        // One fit: its parameters; with --by, each group's, and the
        // objective the mean over groups weighted by their rows (as a
        // fit with --by reports it).
        let (fold_params, groups) = match mine.as_slice() {
            [(_, _, f)] if fit.by.is_empty() => (named(&f.params), IndexMap::new()),
            _ => (
                IndexMap::new(),
                mine.iter()
                    .map(|(g, _, f)| (key_text(&keys[*g]), named(&f.params)))
                    .collect(),
            ),
        };
        let fitted: usize = mine.iter().map(|(_, unit, _)| unit.train.len()).sum();
        let objective = mine
            .iter()
            .map(|(_, unit, f)| f.objective * unit.train.len() as f64)
            .sum::<f64>()
            / fitted.max(1) as f64;
        reports.push(FoldReport {
            protocol: if i == 0 {
                "all".into()
            } else {
                folds[i - 1].0.clone()
            },
            fold: job
                .key
                .get("fold")
                .cloned()
                .unwrap_or_else(|| "all points".into()),
            train_points: job.train.len(),
            held_out_points: job.test.len(),
            scored_points: scored.len(),
            objective,
            // Every group's starts, so that at_best counts against them.
            starts: ran * mine.len(),
            at_best: mine.iter().map(|(_, _, f)| f.at_best).sum(),
            params: fold_params.clone(),
            groups,
            r2: m.r2,
            rmse: m.rmse,
            mape,
        });
        if i > 0 {
            let mut h = vec![false; table.rows()];
            for &r in &job.test {
                h[r] = true;
            }
            held_out.push(h);
            params.push(fold_params);
        }
    }
    let full = reports.remove(0);
    let mut names: Vec<String> = Vec::new();
    for (n, _) in &folds {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let summary = names
        .iter()
        .map(|p| {
            let rs: Vec<&FoldReport> = reports.iter().filter(|r| &r.protocol == p).collect();
            let mean =
                |f: fn(&FoldReport) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64;
            ProtocolSummary {
                protocol: p.clone(),
                folds: rs.len(),
                r2: mean(|r| r.r2),
                rmse: mean(|r| r.rmse),
                mape: mean(|r| r.mape),
            }
        })
        .collect();
    let report = EvalReport {
        law: b.file.name.clone(),
        loss: fit.objective.loss_name().to_string(),
        space: fit.objective.space_name().to_string(),
        fixed: space
            .rules
            .iter()
            .filter(|r| r.fixed.is_some())
            .map(|r| r.name.clone())
            .collect(),
        points: table.rows(),
        configs: b.axis.map_or(table.rows(), |a| {
            curves_of(table, &cols.vars, a, &b.split).len()
        }),
        full,
        folds: reports,
        summary,
        backend: backend_report(fit),
        batched_evaluations: calls,
        seconds: started.elapsed().as_secs_f64(),
        by: fit.by.clone(),
        // eval.json says how the law was read, as stderr did.
        notes: std::iter::once(b.binding.describe())
            .chain(b.warning.clone())
            .chain(notes)
            .collect(),
    };
    Ok(LawEvalOutput {
        report,
        held_out,
        params,
    })
}
