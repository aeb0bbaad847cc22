//! Bootstrap and hold-out folds on the GPU against the CPU. Both backends
//! run the same weighted problems from the same starts; the GPU's results
//! are refined in f64 on the CPU (as every GPU fit is), so they must match
//! the CPU's within the whole-fit parity tolerance: 1e-3 relative on
//! parameters (interval ends and standard errors included) and 1e-6
//! relative on objectives.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, which runs them on Mesa's software Vulkan driver) and otherwise skip
//! with a printed reason.

mod common;
use common::adapter;

use sweepfit::backend::{CpuBackend, GpuBackend, Prepared};
use sweepfit::bootstrap::{self, BootstrapOptions, Resample};
use sweepfit::eval::{self, EvalOptions};
use sweepfit::fit::{self, FitOptions};
use sweepfit::simulate::{simulate_looplm20, SimOptions};

/// A sweep and options whose optimum is well determined, in every fold
/// too: gamma fixed, since with T = 1..4 the pair (gamma, t3) is nearly
/// degenerate, and t1 fixed, since a fold with three model sizes has
/// exactly three values for the N term's three parameters. Otherwise a flat
/// valley, not the backend, would decide where a fit stops, and two fits
/// with equal training objectives could extrapolate differently.
fn setup() -> (sweepfit::data::Dataset, FitOptions) {
    let ds = simulate_looplm20(&SimOptions {
        points_per_curve: 60,
        seed: 11,
        noise: 0.005,
        ..SimOptions::default()
    });
    let mut opts = FitOptions {
        starts: Some(16),
        seed: 3,
        fix: vec![("gamma".into(), 1.0), ("t1".into(), 1e7)],
        ..FitOptions::default()
    };
    opts.lbfgs.ftol = 1e-13;
    (ds, opts)
}

fn close(a: f64, b: f64, rtol: f64, what: &str) {
    assert!(
        (a - b).abs() <= rtol * a.abs().max(b.abs()),
        "{what}: cpu {a} gpu {b}"
    );
}

#[test]
fn bootstrap_agrees_with_the_cpu() {
    let Some(adapter) = adapter() else { return };
    let (ds, opts) = setup();
    let prepared = Prepared::new(&ds, opts.objective);
    let mut cpu = CpuBackend::new(prepared.clone());
    let mut gpu = GpuBackend::on_adapter(&adapter, &prepared, None).expect("GPU backend");
    // One best fit for both, so the replicates start from the same point.
    let fit = fit::fit(&ds, &prepared, &opts, &mut cpu, |_| {}).unwrap();
    let bo = BootstrapOptions {
        replicates: 12,
        resamples: vec![Resample::Curves, Resample::Points],
        seed: 5,
        level: 0.9,
        lbfgs: opts.lbfgs,
    };
    let c = bootstrap::bootstrap(&prepared, &fit, &bo, &mut cpu, |_| {}).unwrap();
    let g = bootstrap::bootstrap(&prepared, &fit, &bo, &mut gpu, |_| {}).unwrap();
    for (rc, rg) in c.resamples.iter().zip(&g.resamples) {
        assert_eq!(rc.kind, rg.kind);
        assert_eq!(rc.used, rg.used, "{}", rc.kind);
        for (k, (sc, sg)) in rc.samples.iter().zip(&rg.samples).enumerate() {
            for (i, (a, b)) in sc.iter().zip(sg).enumerate() {
                // E compared on the loss scale, as in the fit parity test.
                let tol = if i == 0 { 1e-6 } else { 0.0 };
                assert!(
                    (a - b).abs() <= 1e-3 * a.abs().max(b.abs()) + tol,
                    "{} replicate {k} parameter {i}: cpu {a} gpu {b}",
                    rc.kind
                );
            }
        }
        for (name, ic) in &rc.params {
            let ig = rg.params[name];
            // Standard errors are differences of nearly equal replicates:
            // compared on the scale of the parameter's interval.
            let width = ic.hi - ic.lo;
            let what = format!("{} {name}", rc.kind);
            assert!(
                (ic.se - ig.se).abs() <= 1e-2 * ic.se,
                "{what} se {ic:?} {ig:?}"
            );
            assert!(
                (ic.lo - ig.lo).abs() <= 1e-2 * width,
                "{what} lo {ic:?} {ig:?}"
            );
            assert!(
                (ic.hi - ig.hi).abs() <= 1e-2 * width,
                "{what} hi {ic:?} {ig:?}"
            );
        }
    }
}

#[test]
fn folds_agree_with_the_cpu() {
    let Some(adapter) = adapter() else { return };
    let (ds, opts) = setup();
    let prepared = Prepared::new(&ds, opts.objective);
    let mut cpu = CpuBackend::new(prepared.clone());
    let mut gpu = GpuBackend::on_adapter(&adapter, &prepared, None).expect("GPU backend");
    let eo = EvalOptions::default();
    let c = eval::evaluate(&ds, &prepared, &opts, &eo, &mut cpu, |_| {}).unwrap();
    let g = eval::evaluate(&ds, &prepared, &opts, &eo, &mut gpu, |_| {}).unwrap();
    assert_eq!(g.report.backend.kind, "gpu");
    assert_eq!(c.report.folds.len(), 17);
    for (fc, fg) in std::iter::once(&c.report.full)
        .chain(&c.report.folds)
        .zip(std::iter::once(&g.report.full).chain(&g.report.folds))
    {
        assert_eq!(fc.fold, fg.fold);
        assert_eq!(fc.held_out_points, fg.held_out_points);
        close(
            fc.objective,
            fg.objective,
            1e-6,
            &format!("{} objective", fc.fold),
        );
        close(fc.rmse, fg.rmse, 1e-3, &format!("{} RMSE", fc.fold));
        close(fc.mape, fg.mape, 1e-3, &format!("{} MAPE", fc.fold));
        close(
            1.0 - fc.r2,
            1.0 - fg.r2,
            2e-3,
            &format!("{} 1 - R2", fc.fold),
        );
    }
}
