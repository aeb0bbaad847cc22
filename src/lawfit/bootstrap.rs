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

/// Bootstrap the fit of `b` to the rows of `table` not held out, whose
/// best parameters are `best`.
pub fn bootstrap(
    b: &BoundLaw,
    table: &Table,
    fit: &LawFitOptions,
    held: &[bool],
    best: &[f64],
    opts: &BootstrapOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<BootstrapReport> {
    if opts.replicates < 2 {
        bail!("--bootstrap needs at least 2 replicates");
    }
    let started = Instant::now();
    let cols = read_columns(b, table, &fit.objective)?;
    let train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    let space = law_space(b, &cols, &train, &fit.fix)?;
    let curves: Vec<Vec<usize>> = match b.axis {
        Some(axis) => curves_in(table, &cols.vars, axis, &train),
        None => train.iter().map(|&r| vec![r]).collect(),
    };
    let (kinds, notes) = schemes(&opts.resamples, curves.len())?;
    // Each replicate holds about as many rows as the fit, with its
    // variables, target and weight.
    crate::memory::ensure_fits(
        &format!("--bootstrap {} of a law fit", opts.replicates),
        (kinds.len() * opts.replicates * train.len()) as f64
            * (cols.vars.len() + 4) as f64
            * 8.0
            * 2.0,
    )?;
    let mut jobs = Vec::new();
    for &kind in &kinds {
        for rows in resamples(kind, opts.replicates, &curves, opts.seed) {
            jobs.push(Group {
                key: IndexMap::from([("replicate".to_string(), kind.name().to_string())]),
                train: rows,
                test: Vec::new(),
            });
        }
    }
    // A replicate too small to determine the parameters is dropped from
    // the statistics, as one with a non-finite objective is.
    let dim = space.dim();
    let usable: Vec<bool> = jobs.iter().map(|j| j.train.len() >= dim).collect();
    let kept: Vec<Group> = jobs
        .iter()
        .zip(&usable)
        .filter(|(_, &u)| u)
        .map(|(j, _)| j.clone())
        .collect();
    let lbfgs_fit = LawFitOptions {
        lbfgs: opts.lbfgs,
        ..fit.clone()
    };
    let theta = space.to_theta(best);
    let (fits, outcomes, _) = fit_jobs(
        Data {
            b,
            table,
            cols: &cols,
        },
        &space,
        &kept,
        &lbfgs_fit,
        Some(&theta),
        progress,
    )
    .context("bootstrap replicates")?;
    let mut reports = Vec::new();
    let mut k = 0;
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
            if fits[k].objective.is_finite() {
                samples.push(fits[k].params.clone());
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
    Ok(BootstrapReport {
        seed: opts.seed,
        level: opts.level,
        seconds: started.elapsed().as_secs_f64(),
        resamples: reports,
        notes,
    })
}
