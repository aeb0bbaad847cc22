//! The compiled looplm law's analytic gradient on the CPU against central
//! finite differences, for every parameter, in both spaces and with both
//! losses.

use std::path::Path;

use sweepfit::backend::CpuLaw;
use sweepfit::data::{Dataset, Row, Table};
use sweepfit::law::plan::Plan;
use sweepfit::law::{builtin, CompiledLaw, LawFile};
use sweepfit::lawfit::{self, BindOptions};
use sweepfit::objective::{LossKind, Objective, Space};

/// LoopLM's law at (E, A, alpha, t1, B, beta, t2, C, gamma, t3).
fn looplm(p: &[f64; 10], n: f64, d: f64, t: f64) -> f64 {
    p[0] + p[1] / (n + p[3]).powf(p[2])
        + p[4] / (d + p[6]).powf(p[5])
        + p[7] / (t + p[9]).powf(p[8])
}

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
                rows.push(Row {
                    run: format!("r{a}"),
                    n,
                    t,
                    tokens: d,
                    loss: looplm(&truth, n, d, t) + wiggle,
                    weight: 1.0 + (j % 3) as f64,
                });
            }
        }
    }
    Dataset::from_rows(rows)
}

/// The looplm law's CPU evaluator of `sweep()` for `objective`.
fn evaluator(objective: Objective) -> (CompiledLaw, CpuLaw) {
    let text = builtin("looplm").unwrap();
    let mut table = Table::from_dataset(&sweep(), Path::new("sweep"));
    let file = LawFile::parse(text, "looplm").unwrap();
    let b = lawfit::bind(file, text, "looplm", &mut table, &BindOptions::default()).unwrap();
    let sw = lawfit::table_sweep(&b, &table, &objective).unwrap();
    let grid = CpuLaw::new(Plan::for_sweep(&b.law, &sw), &sw, objective).unwrap();
    (b.law, grid)
}

/// Raw parameters away from the optimum, so every partial derivative is
/// far from zero, in the law's order.
fn start(law: &CompiledLaw) -> Vec<f64> {
    law.params
        .iter()
        .map(|p| match p.as_str() {
            "E" => 1.6,
            "A" => 300.0,
            "alpha" => 0.35,
            "t1" => 2e7,
            "B" => 2500.0,
            "beta" => 0.4,
            "t2" => 6e7,
            "C" => 0.5,
            "gamma" => 0.9,
            "t3" => 0.7,
            other => panic!("looplm has no parameter {other}"),
        })
        .collect()
}

fn eval(grid: &CpuLaw, p: &[f64]) -> (f64, Vec<f64>) {
    let (mut f, mut g) = ([0.0], vec![0.0; p.len()]);
    grid.evaluate(p, &mut f, &mut g);
    (f[0], g)
}

fn check(objective: Objective) {
    let (law, grid) = evaluator(objective);
    let p0 = start(&law);
    let (f0, g0) = eval(&grid, &p0);
    assert!(f0.is_finite() && g0.iter().all(|v| v.is_finite()));
    // Compared as derivatives by relative changes of the parameters
    // (g_i |p_i|): raw-unit gradients span many decades.
    let scaled: Vec<f64> = g0.iter().zip(&p0).map(|(g, p)| g * p.abs()).collect();
    let norm = scaled.iter().map(|v| v * v).sum::<f64>().sqrt();
    for i in 0..p0.len() {
        let h = 1e-6 * p0[i].abs();
        let (mut up, mut dn) = (p0.clone(), p0.clone());
        up[i] += h;
        dn[i] -= h;
        let fd = (eval(&grid, &up).0 - eval(&grid, &dn).0) / (2.0 * h) * p0[i].abs();
        let err = (fd - scaled[i]).abs();
        assert!(
            err <= 1e-6 * norm.max(1e-12) + 1e-7 * fd.abs(),
            "{objective:?}: d/d{} (relative) analytic {} vs finite difference {fd} (norm {norm})",
            law.params[i],
            scaled[i]
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
    let (law, grid) = evaluator(Objective::default());
    let a = start(&law);
    let b: Vec<f64> = a.iter().map(|v| v * 1.3).collect();
    let both: Vec<f64> = a.iter().chain(&b).copied().collect();
    let (mut f, mut g) = ([0.0; 2], vec![0.0; both.len()]);
    grid.evaluate(&both, &mut f, &mut g);
    for (k, p) in [&a, &b].into_iter().enumerate() {
        let (single, gs) = eval(&grid, p);
        assert!((single - f[k]).abs() <= 1e-14 * single, "{single} {}", f[k]);
        for (x, y) in gs.iter().zip(&g[k * a.len()..]) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-300), "{x} {y}");
        }
    }
    assert_ne!(f[0], f[1]);
}
