//! Bootstrap of a law fit: every replicate is a weighting of the fitted
//! rows, refitted from the best fit, all replicates one batch on one
//! evaluator per fit (no copy of the rows per replicate):
//! - curves: whole curves drawn with replacement (rows, for data without
//!   curves), a curve drawn k times weighing k;
//! - points: every row counted a Poisson(1) number of times, drawn by a
//!   counter-based hash where it is used (see `backend::weights`), so no
//!   replicate stores per-row weights.
//!
//! A replicate holds a multiplier per curve of its fit's sweep; its memory
//! grows with the curves, not the rows (a table, each row its own curve,
//! is the exception, and is checked up front).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use anyhow::{bail, Context};
use rayon::prelude::*;

use super::batch::{
    evaluator, lm_options, lm_options_for, method_for_all, GridLeastSquares, Method,
};
use super::{
    curves_in, law_space, read_columns, row_jacobian, sweep_from, sweep_order, BoundLaw, Columns,
    LawFitOptions, Problems,
};
use crate::backend::jacobian::{RowJacobian, Weights};
use crate::backend::weights::{resolve_curves, Resolved, Weighting, ALL_POINTS};
use crate::bootstrap::{draw, resample_report, schemes, BootstrapOptions, Resample};
use crate::data::Table;
use crate::law::plan::Sweep;
use crate::law::space::LawSpace;
use crate::optim::{self, Outcome, Progress, Status};
use crate::polish;
use crate::report::BootstrapReport;

/// One fit to bootstrap: its rows and its best parameters.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub rows: Vec<usize>,
    pub best: Vec<f64>,
}

/// Weighted points above which a Poisson resample is taken to keep at
/// least as many points as there are parameters without counting them:
/// each point is kept with probability 1 - 1/e, so fewer than `dim` of
/// `16 dim + 64` is vanishingly rare.
fn surely_enough(points: usize, dim: usize) -> bool {
    points >= 16 * dim + 64
}

/// One fit's share of the batch: its sweep, where each of its rows sits
/// in the sweep, and its replicates' weightings.
struct Part {
    sweep: Sweep,
    /// Per row of `rows`: its curve in the sweep, position in the curve and
    /// point index.
    loc: Vec<(usize, usize, usize)>,
    kinds: Vec<Resample>,
    notes: Vec<String>,
    /// Per kind then replicate: whether it keeps enough points to fit.
    usable: Vec<bool>,
    /// The usable replicates' weightings, resolved against `sweep`.
    resolved: Vec<Resolved>,
}

/// Bootstrap every fit of `fits` (the plain fit, or each `--by` group's)
/// to the rows of `table` not held out: all replicates of all of them one
/// batch, each started from its fit's best. One report per fit.
pub fn bootstrap(
    b: &BoundLaw,
    table: &Table,
    fit: &LawFitOptions,
    held: &[bool],
    fits: &[Fitted],
    opts: &BootstrapOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<Vec<BootstrapReport>> {
    bootstrap_shard(
        b,
        table,
        fit,
        held,
        fits,
        opts,
        0..opts.replicates,
        progress,
    )
}

/// [`bootstrap`]'s replicates `shard` (of each scheme) alone: the same
/// draws, each replicate refitted as the whole bootstrap refits it, so
/// that shards run anywhere and joined in order by [`join_shards`] report
/// exactly what one run does. A shard's reports hold its replicates'
/// samples and convergence; their intervals are over those alone.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap_shard(
    b: &BoundLaw,
    table: &Table,
    fit: &LawFitOptions,
    held: &[bool],
    fits: &[Fitted],
    opts: &BootstrapOptions,
    shard: Range<usize>,
    progress: impl FnMut(Progress),
) -> anyhow::Result<Vec<BootstrapReport>> {
    if opts.replicates < 2 {
        bail!("--bootstrap needs at least 2 replicates");
    }
    if !(opts.level > 0.0 && opts.level < 1.0) {
        bail!("the interval level must lie in (0, 1), got {}", opts.level);
    }
    let started = Instant::now();
    let cols = read_columns(b, table, &fit.objective)?;
    // The fit's space: linear parameters measured at the middle of every
    // fitted row, as the fit measured them.
    let train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    let group_of = super::rows::by_groups(table, &fit.by)?.1;
    let (space, _) = law_space(b, &cols, &train, &group_of, &fit.fix)?;
    if space.dim() == 0 {
        bail!("every parameter is fixed (--fix): there is nothing to bootstrap");
    }
    let mut parts = Vec::with_capacity(fits.len());
    let mut rows = Vec::with_capacity(fits.len());
    for f in fits {
        let (p, r) = part(b, table, &cols, fit, f, opts, &space, &shard)?;
        parts.push(p);
        rows.push(r);
    }
    // The optimiser the fit runs: Levenberg-Marquardt on the row
    // Jacobians or on the grid's moments, or L-BFGS on one evaluator per
    // fit.
    let method = method_for_all(b, fit, parts.iter().map(|p| &p.sweep));
    // Replicates that weigh a fit's rows alike (curves drawn as the same
    // multiset, common when there are few curves) are refitted once: a
    // problem's path does not depend on the others in its batch.
    let mut group_of = Vec::new();
    let mut which = Vec::new();
    let mut x0 = Vec::new();
    let mut copy_of = Vec::new();
    let mut seen: HashMap<(usize, Vec<u64>), usize> = HashMap::new();
    for (gi, (p, f)) in parts.iter().zip(fits).enumerate() {
        let theta = space.to_theta(&f.best);
        for (k, r) in p.resolved.iter().enumerate() {
            let next = group_of.len();
            let u = *seen.entry((gi, weighting_key(r))).or_insert(next);
            if u == next {
                group_of.push(gi);
                which.push(k as u32);
                x0.push(theta.clone());
            }
            copy_of.push(u);
        }
    }
    // Per problem, its rows' weights, for the row Jacobians.
    let boxed: Vec<Box<Weights>> = group_of
        .iter()
        .zip(&which)
        .map(|(&gi, &k)| {
            let p = &parts[gi];
            let (r, w, loc) = (&p.resolved[k as usize], &p.sweep.w, &p.loc);
            Box::new(move |j: usize| {
                let (c, pos, i) = loc[j];
                w[i] * r.factor(c, pos, i)
            }) as Box<Weights>
        })
        .collect();
    let weights: Vec<Option<&Weights>> = boxed.iter().map(|w| Some(w.as_ref())).collect();
    let (outcomes, _) = if method == Method::LeastSquares {
        let lm = lm_options(&opts.lbfgs);
        polish::search(&space, &rows, &group_of, &weights, &x0, &lm, progress)
    } else {
        let mut grids = Vec::with_capacity(parts.len());
        for p in &parts {
            let mut e = evaluator(b, &p.sweep, fit, method)?;
            e.twin().set_weightings(&p.resolved)?;
            grids.push(e);
        }
        if method == Method::GridLeastSquares {
            let lm = lm_options_for(&opts.lbfgs, fit.device.is_some());
            let mut problems = GridLeastSquares {
                space: &space,
                grids: &mut grids,
                group_of: &group_of,
                weighted: Some(&which),
            };
            optim::least_squares_batch(&mut problems, &x0, &lm, progress)
        } else {
            let mut problems = Problems {
                space: &space,
                grids: &mut grids,
                group_of: &group_of,
                weighted: Some(&which),
            };
            optim::minimize_batch(&mut problems, &x0, &opts.lbfgs, progress)
        }
    }
    .context("bootstrap replicates")?;
    // Every replicate finishes by Gauss-Newton in f64 under its weights,
    // as a fit's best does.
    let starts: Vec<(usize, Vec<f64>)> = outcomes
        .iter()
        .zip(&group_of)
        .map(|(o, &gi)| (gi, space.to_params(&o.x)))
        .collect();
    let polished = polish::polish(&b.law, &space, &rows, &starts, &weights)?;
    // The weights borrow the parts, which the reports take apart.
    drop(weights);
    drop(boxed);
    let outcomes: Vec<Outcome> = copy_of.iter().map(|&u| outcomes[u].clone()).collect();
    let polished: Vec<_> = copy_of.iter().map(|&u| polished[u].clone()).collect();
    let seconds = started.elapsed().as_secs_f64();
    let names: Vec<(usize, String)> = space
        .free()
        .iter()
        .map(|&i| (i, space.rules[i].name.clone()))
        .collect();
    let mut next = 0;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let mut reports = Vec::new();
        for (ki, &kind) in p.kinds.iter().enumerate() {
            let usable = &p.usable[ki * opts.replicates..(ki + 1) * opts.replicates];
            let n = usable.iter().filter(|&&u| u).count();
            let done: &[Outcome] = &outcomes[next..next + n];
            let ends = &polished[next..next + n];
            next += n;
            let converged = done
                .iter()
                .filter(|o| o.status == Status::Converged)
                .count();
            let samples: Vec<Vec<f64>> = ends
                .iter()
                .filter(|e| e.f.is_finite())
                .map(|e| e.params.clone())
                .collect();
            reports.push(resample_report(kind, opts, &names, converged, samples));
        }
        out.push(BootstrapReport {
            seed: opts.seed,
            level: opts.level,
            seconds,
            resamples: reports,
            notes: p.notes,
        });
    }
    Ok(out)
}

/// A fit's sweep and replicates (those of `shard` to refit), and the row
/// Jacobian of its rows (in their order) for the polish.
#[allow(clippy::too_many_arguments)]
fn part(
    b: &BoundLaw,
    table: &Table,
    cols: &Columns,
    fit: &LawFitOptions,
    f: &Fitted,
    opts: &BootstrapOptions,
    space: &LawSpace,
    shard: &Range<usize>,
) -> anyhow::Result<(Part, RowJacobian)> {
    let dim = space.dim();
    let (order, ranges, axis) = sweep_order(b, cols, table, &f.rows);
    // The curves resampled, and each row's among them.
    let curves: Vec<Vec<usize>> = match b.axis {
        Some(a) => curves_in(table, &cols.vars, a, &f.rows, &b.split),
        None => f.rows.iter().map(|&r| vec![r]).collect(),
    };
    // Maps over the fit's rows, not the table's: a `--by` fit has many.
    let mut curve_of: HashMap<usize, usize> = HashMap::with_capacity(f.rows.len());
    for (c, rs) in curves.iter().enumerate() {
        for &r in rs {
            curve_of.insert(r, c);
        }
    }
    // A sweep curve lies in one resampled curve: its rows share every
    // variable but the axis, or it is one row.
    let drawn_of: Vec<usize> = ranges.iter().map(|s| curve_of[&order[s.start]]).collect();
    let sweep = sweep_from(b, cols, &order, ranges, axis, &fit.objective, &f.rows);
    let index_of: HashMap<usize, usize> = order.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    let mut curve_at = vec![(0, 0); order.len()];
    for (c, s) in sweep.curves.iter().enumerate() {
        for i in s.clone() {
            curve_at[i] = (c, i - s.start);
        }
    }
    let loc = f
        .rows
        .iter()
        .map(|&r| {
            let i = index_of[&r];
            (curve_at[i].0, curve_at[i].1, i)
        })
        .collect();
    crate::memory::ensure_fits(
        &format!("--bootstrap {}", opts.replicates),
        (opts.resamples.len() * opts.replicates * sweep.curves.len()) as f64 * 12.0,
    )?;
    let curve_weight: Vec<f64> = curves
        .iter()
        .map(|rs| rs.iter().map(|&r| cols.weight[r]).sum())
        .collect();
    let weighted_rows: Vec<usize> = curves
        .iter()
        .map(|rs| rs.iter().filter(|&&r| cols.weight[r] > 0.0).count())
        .collect();
    let weighted: usize = weighted_rows.iter().sum();
    // A drawn weighting (per resampled curve) as one of the sweep's curves.
    let on_sweep = |w: &Weighting| Weighting {
        config: drawn_of.iter().map(|&c| w.config[c]).collect(),
        first: vec![ALL_POINTS; drawn_of.len()],
        poisson: w.poisson,
    };
    let (kinds, notes) = schemes(&opts.resamples, curves.len(), opts.replicates)?;
    let mut usable = Vec::new();
    let mut resolved = Vec::new();
    for &kind in &kinds {
        let drawn = draw(kind, opts.replicates, &curve_weight, opts.seed, |w| {
            weighted >= 64 || resolve_curves(&on_sweep(w), &sweep.curves, &sweep.w).is_ok()
        })?;
        // Every replicate is drawn, so that a shard's are the whole
        // bootstrap's; only the shard's are resolved and refitted.
        let made: Vec<Option<Resolved>> = drawn
            .par_iter()
            .enumerate()
            .map(|(j, w)| {
                if !shard.contains(&j) {
                    return None;
                }
                let Ok(r) = resolve_curves(&on_sweep(w), &sweep.curves, &sweep.w) else {
                    return None;
                };
                // Too few points to determine the parameters: left out of
                // the statistics, as one with a non-finite objective is.
                let kept = match r.poisson {
                    None => (0..curves.len())
                        .filter(|&c| w.config[c] > 0.0)
                        .map(|c| weighted_rows[c])
                        .sum::<usize>(),
                    Some(_) if surely_enough(weighted, dim) => weighted,
                    Some(_) => kept_points(&r, &sweep),
                };
                (kept >= dim).then_some(r)
            })
            .collect();
        for r in made {
            usable.push(r.is_some());
            resolved.extend(r);
        }
    }
    let rows = row_jacobian(b, cols, &f.rows, &fit.objective, space);
    let part = Part {
        sweep,
        loc,
        kinds,
        notes,
        usable,
        resolved,
    };
    Ok((part, rows))
}

/// What identifies a weighting: equal keys weigh every point alike.
fn weighting_key(r: &Resolved) -> Vec<u64> {
    let poisson = r.poisson.map_or(u64::MAX, u64::from);
    std::iter::once(poisson)
        .chain(r.mult.iter().map(|m| m.to_bits()))
        .chain(r.first.iter().map(|&f| u64::from(f)))
        .collect()
}

/// Points of `sweep` that weigh more than 0 under `r`.
fn kept_points(r: &Resolved, sweep: &Sweep) -> usize {
    sweep
        .curves
        .iter()
        .enumerate()
        .map(|(c, s)| {
            s.clone()
                .filter(|&i| sweep.w[i] * r.factor(c, i - s.start, i) > 0.0)
                .count()
        })
        .sum()
}

/// The bootstrap of [`bootstrap_shard`]'s shards, given in the order of
/// their replicates and covering them all: per fit and scheme, the
/// samples joined in order and the converged replicates summed, the
/// intervals over them all. `params` names the law's parameters in order
/// (the samples' coordinates); `seconds` is the wall time it took.
pub fn join_shards(
    shards: Vec<Vec<BootstrapReport>>,
    opts: &BootstrapOptions,
    params: &[String],
    seconds: f64,
) -> anyhow::Result<Vec<BootstrapReport>> {
    let mut shards = shards.into_iter();
    let Some(mut out) = shards.next() else {
        bail!("no bootstrap shards to join");
    };
    for shard in shards {
        if shard.len() != out.len() {
            bail!("bootstrap shards of different fits cannot be joined");
        }
        for (fit, part) in out.iter_mut().zip(shard) {
            for (r, p) in fit.resamples.iter_mut().zip(part.resamples) {
                if r.kind != p.kind {
                    bail!("bootstrap shards of different schemes cannot be joined");
                }
                r.converged += p.converged;
                r.samples.extend(p.samples);
            }
        }
    }
    for fit in &mut out {
        fit.seconds = seconds;
        for r in &mut fit.resamples {
            let kind = match r.kind.as_str() {
                "curves" => Resample::Curves,
                "points" => Resample::Points,
                other => bail!("no bootstrap scheme is called {other:?}"),
            };
            let names = r
                .params
                .keys()
                .map(|n| match params.iter().position(|p| p == n) {
                    Some(i) => Ok((i, n.clone())),
                    None => Err(anyhow::anyhow!("the law has no parameter {n}")),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let samples = std::mem::take(&mut r.samples);
            *r = resample_report(kind, opts, &names, r.converged, samples);
        }
    }
    Ok(out)
}
