//! Bootstrap of a law fit: every replicate is a resample of the fitted
//! rows, refitted from the best fit, all replicates one batch.
//! - curves: whole curves drawn with replacement (rows, for data without
//!   curves);
//! - points: every row counted a Poisson(1) number of times.
//!
//! A replicate is a job whose rows repeat as drawn, so it needs memory for
//! its rows: fine for tables of thousands of rows, and checked up front.

use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};

use super::{curves_in, fit_jobs, law_space, read_columns, BoundLaw, Data, Group, LawFitOptions};
use crate::bootstrap::{interval, schemes, BootstrapOptions, Resample};
use crate::data::Table;
use crate::optim::{Progress, Status};
use crate::report::{BootstrapReport, ResampleReport};

/// Resampled row lists of one kind, reproducible from `seed` (the same
/// streams as the hand-written law's bootstrap, keyed by kind).
fn resamples(kind: Resample, n: usize, curves: &[Vec<usize>], seed: u64) -> Vec<Vec<usize>> {
    let stream = match kind {
        Resample::Curves => 0x6375_7276_6573,
        Resample::Points => 0x706f_696e_7473,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ stream);
    let poisson = Poisson::new(1.0).expect("rate 1 is valid");
    (0..n)
        .map(|_| match kind {
            Resample::Curves => (0..curves.len())
                .flat_map(|_| curves[rng.random_range(0..curves.len())].iter().copied())
                .collect(),
            Resample::Points => curves
                .iter()
                .flatten()
                .flat_map(|&r| {
                    let k: f64 = poisson.sample(&mut rng);
                    std::iter::repeat_n(r, k as usize)
                })
                .collect(),
        })
        .collect()
}

/// One fit to bootstrap: its rows and its best parameters.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub rows: Vec<usize>,
    pub best: Vec<f64>,
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
    if opts.replicates < 2 {
        bail!("--bootstrap needs at least 2 replicates");
    }
    let started = Instant::now();
    let cols = read_columns(b, table, &fit.objective)?;
    // The fit's space: linear parameters measured at the middle of every
    // fitted row, as the fit measured them.
    let train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    let (space, _) = law_space(b, &cols, &train, &fit.fix)?;
    let total_rows: usize = fits.iter().map(|f| f.rows.len()).sum();
    // Each replicate holds about as many rows as its fit, with their
    // variables, target and weight.
    crate::memory::ensure_fits(
        &format!("--bootstrap {} of a law fit", opts.replicates),
        (opts.resamples.len() * opts.replicates * total_rows) as f64
            * (cols.vars.len() + 4) as f64
            * 16.0,
    )?;
    // Per fit: its schemes and notes; jobs fit-major, then scheme, then
    // replicate. A replicate too small to determine the parameters is
    // left out of the statistics, as one with a non-finite objective is.
    let dim = space.dim();
    let mut plans = Vec::with_capacity(fits.len());
    let mut jobs = Vec::new();
    let mut thetas = Vec::new();
    for f in fits {
        let curves: Vec<Vec<usize>> = match b.axis {
            Some(axis) => curves_in(table, &cols.vars, axis, &f.rows, &b.split),
            None => f.rows.iter().map(|&r| vec![r]).collect(),
        };
        let (kinds, notes) = schemes(&opts.resamples, curves.len())?;
        let theta = space.to_theta(&f.best);
        let mut usable = Vec::new();
        for &kind in &kinds {
            for rows in resamples(kind, opts.replicates, &curves, opts.seed) {
                let ok = rows.len() >= dim;
                usable.push(ok);
                if ok {
                    jobs.push(Group {
                        key: IndexMap::from([("replicate".to_string(), kind.name().to_string())]),
                        train: rows,
                        test: Vec::new(),
                    });
                    thetas.push(theta.clone());
                }
            }
        }
        plans.push((kinds, notes, usable));
    }
    let lbfgs_fit = LawFitOptions {
        lbfgs: opts.lbfgs,
        ..fit.clone()
    };
    let super::Batch {
        fits: results,
        outcomes,
        ..
    } = fit_jobs(
        Data {
            b,
            table,
            cols: &cols,
        },
        &space,
        &jobs,
        &lbfgs_fit,
        Some(&thetas),
        progress,
    )
    .context("bootstrap replicates")?;
    let seconds = started.elapsed().as_secs_f64();
    let mut k = 0;
    let mut out = Vec::with_capacity(fits.len());
    for (kinds, notes, usable) in plans {
        let mut reports = Vec::new();
        for (ki, &kind) in kinds.iter().enumerate() {
            let mut samples = Vec::new();
            let mut converged = 0;
            for &u in &usable[ki * opts.replicates..(ki + 1) * opts.replicates] {
                if !u {
                    continue;
                }
                if outcomes[k].status == Status::Converged {
                    converged += 1;
                }
                if results[k].objective.is_finite() {
                    samples.push(results[k].params.clone());
                }
                k += 1;
            }
            let params = space
                .free()
                .iter()
                .map(|&i| {
                    let v: Vec<f64> = samples.iter().map(|s| s[i]).collect();
                    (space.rules[i].name.clone(), interval(&v, opts.level))
                })
                .collect::<IndexMap<_, _>>();
            reports.push(ResampleReport {
                kind: kind.name().to_string(),
                replicates: opts.replicates,
                converged,
                converged_fraction: converged as f64 / opts.replicates as f64,
                used: samples.len(),
                params,
                samples,
            });
        }
        out.push(BootstrapReport {
            seed: opts.seed,
            level: opts.level,
            seconds,
            resamples: reports,
            notes,
        });
    }
    Ok(out)
}
