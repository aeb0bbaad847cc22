//! The CPU backend's analytic gradient against central finite differences,
//! for every parameter, in both spaces and with both losses.

use sweepfit::backend::{Backend, CpuBackend, Eval, Prepared};
use sweepfit::data::{Dataset, Row};
use sweepfit::law::{predict_raw, NP, PARAM_NAMES};
use sweepfit::objective::{LossKind, Objective, Space};

/// A small sweep: 3 sizes x 2 steps, 40 points each, with a deterministic
/// wiggle so residuals are neither zero nor all of one sign.
fn sweep() -> Dataset {
    let truth = [1.8, 268.0, 0.3, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];
    let mut rows = Vec::new();
    for (a, n) in [53e6, 374e6, 1.36e9].into_iter().enumerate() {
        for t in [1.0, 3.0] {
            for j in 0..40 {
                let d = 20e9 * j as f64 / 39.0;
                let wiggle = 0.03 * ((j * 7 + a * 3) as f64).sin();
                let loss = predict_raw(&truth, n, d, t) + wiggle;
                rows.push(Row {
                    run: format!("r{a}"),
                    n,
                    t,
                    tokens: d,
                    loss,
                    weight: 1.0 + (j % 3) as f64,
                });
            }
        }
    }
    Dataset::from_rows(rows)
}

fn eval(backend: &mut CpuBackend, p: &[f64; NP]) -> Eval {
    let mut out = [Eval::ZERO];
    backend.evaluate(&[*p], &mut out).unwrap();
    out[0]
}

fn check(objective: Objective) {
    let ds = sweep();
    let prepared = Prepared::new(&ds, objective);
    let mut backend = CpuBackend::new(prepared);
    // Internal (scaled) parameters away from the optimum, so every partial
    // derivative is far from zero.
    let p0 = [1.6, 0.6, 0.35, 0.02, 1.1, 0.4, 3e-3, 0.5, 0.9, 0.7];
    let base = eval(&mut backend, &p0);
    assert!(base.is_finite());
    let gnorm = base.g.iter().map(|g| g * g).sum::<f64>().sqrt();
    for i in 0..NP {
        let h = 1e-6 * p0[i].abs().max(1e-3);
        let (mut up, mut dn) = (p0, p0);
        up[i] += h;
        dn[i] -= h;
        let fd = (eval(&mut backend, &up).f - eval(&mut backend, &dn).f) / (2.0 * h);
        let err = (fd - base.g[i]).abs();
        assert!(
            err <= 1e-6 * gnorm.max(1e-12) + 1e-7 * fd.abs(),
            "{:?}: d/d{} analytic {} vs finite difference {} (|g| = {gnorm})",
            objective,
            PARAM_NAMES[i],
            base.g[i],
            fd
        );
    }
}

#[test]
fn gradient_matches_finite_differences_mse_linear() {
    check(Objective {
        loss: LossKind::Mse,
        space: Space::Linear,
        delta: 1e-3,
    });
}

#[test]
fn gradient_matches_finite_differences_mse_log() {
    check(Objective {
        loss: LossKind::Mse,
        space: Space::Log,
        delta: 1e-3,
    });
}

#[test]
fn gradient_matches_finite_differences_huber_linear() {
    check(Objective {
        loss: LossKind::Huber,
        space: Space::Linear,
        delta: 0.05,
    });
}

#[test]
fn gradient_matches_finite_differences_huber_log() {
    check(Objective {
        loss: LossKind::Huber,
        space: Space::Log,
        delta: 1e-3,
    });
}

#[test]
fn batch_evaluation_equals_one_by_one() {
    let ds = sweep();
    let mut backend = CpuBackend::new(Prepared::new(&ds, Objective::default()));
    let ps = [
        [1.6, 0.6, 0.35, 0.02, 1.1, 0.4, 3e-3, 0.5, 0.9, 0.7],
        [1.2, 0.3, 0.5, 0.1, 0.9, 0.3, 1e-2, 0.2, 1.5, 0.1],
    ];
    let mut out = [Eval::ZERO; 2];
    backend.evaluate(&ps, &mut out).unwrap();
    for k in 0..2 {
        let single = eval(&mut backend, &ps[k]);
        assert!((single.f - out[k].f).abs() <= 1e-14 * single.f);
    }
    assert_ne!(out[0].f, out[1].f);
}
