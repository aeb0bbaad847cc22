//! Bootstrap and hold-out folds of the looplm law on the GPU against the
//! CPU. Both backends run the same weighted problems from the same starts;
//! the GPU's results are refined in f64 on the CPU (as every GPU fit is),
//! so they must match the CPU's: 1e-2 of an interval's width on its ends
//! and 1e-2 relative on standard errors (differences of nearly equal
//! replicates), 1e-6 relative on objectives, 1e-3 on held-out scores.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, which runs them on Mesa's software Vulkan driver) and otherwise skip
//! with a printed reason.

mod common;
use common::{adapter, ok};

use std::path::Path;

use serde_json::Value;

/// A sweep whose optimum is well determined, in every fold too: 60 points
/// per curve at noise 0.005, gamma fixed (with T = 1..4 the pair (gamma,
/// t3) is nearly degenerate) and t1 fixed (a fold with three model sizes
/// has exactly three values for the N term's three parameters). Otherwise
/// a flat valley, not the backend, would decide where a fit stops.
fn sweep(dir: &Path) {
    ok(
        dir,
        &[
            "simulate",
            "--out",
            "sweep.csv",
            "--points",
            "60",
            "--seed",
            "11",
            "--noise",
            "0.005",
        ],
    );
}

const OPTS: [&str; 10] = [
    "--starts", "16", "--seed", "3", "--fix", "gamma=1", "--fix", "t1=1e7", "--ftol", "1e-13",
];

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64, rtol: f64, what: &str) {
    assert!(
        (a - b).abs() <= rtol * a.abs().max(b.abs()),
        "{what}: cpu {a} gpu {b}"
    );
}

#[test]
fn bootstrap_agrees_with_the_cpu() {
    if adapter().is_none() {
        return;
    }
    let tmp = common::tempdir();
    let dir = tmp.path();
    sweep(dir);
    let run = |backend: &str| -> Value {
        let mut args = vec!["fit", "sweep.csv"];
        args.extend(OPTS);
        args.extend([
            "--bootstrap",
            "12",
            "--level",
            "0.9",
            "--backend",
            backend,
            "--out",
            backend,
        ]);
        ok(dir, &args);
        read(&dir.join(backend).join("fit.json"))
    };
    let (c, g) = (run("cpu"), run("gpu"));
    assert_eq!(g["backend"]["kind"], "gpu");
    close(
        num(&c["objective"]["value"]),
        num(&g["objective"]["value"]),
        1e-6,
        "objective",
    );
    let (rc, rg) = (
        c["bootstrap"]["resamples"].as_array().unwrap(),
        g["bootstrap"]["resamples"].as_array().unwrap(),
    );
    assert_eq!(rc.len(), 2);
    for (rc, rg) in rc.iter().zip(rg) {
        assert_eq!(rc["kind"], rg["kind"]);
        assert_eq!(rc["used"], rg["used"], "{}", rc["kind"]);
        for (name, ic) in rc["params"].as_object().unwrap() {
            let ig = &rg["params"][name];
            let width = num(&ic["hi"]) - num(&ic["lo"]);
            let what = format!("{} {name}", rc["kind"]);
            close(num(&ic["se"]), num(&ig["se"]), 1e-2, &format!("{what} se"));
            for end in ["lo", "hi"] {
                assert!(
                    (num(&ic[end]) - num(&ig[end])).abs() <= 1e-2 * width,
                    "{what} {end}: cpu {ic} gpu {ig}"
                );
            }
        }
    }
}

#[test]
fn folds_agree_with_the_cpu() {
    if adapter().is_none() {
        return;
    }
    let tmp = common::tempdir();
    let dir = tmp.path();
    sweep(dir);
    let run = |backend: &str| -> Value {
        let out = format!("eval-{backend}");
        let mut args = vec!["eval", "sweep.csv"];
        args.extend(OPTS);
        args.extend(["--backend", backend, "--out", &out]);
        ok(dir, &args);
        read(&dir.join(&out).join("eval.json"))
    };
    let (c, g) = (run("cpu"), run("gpu"));
    assert_eq!(g["backend"]["kind"], "gpu");
    let (fc, fg) = (
        c["folds"].as_array().unwrap(),
        g["folds"].as_array().unwrap(),
    );
    // sizes (10), tokens (3), leave-t (4).
    assert_eq!(fc.len(), 17);
    for (fc, fg) in std::iter::once(&c["full"])
        .chain(fc)
        .zip(std::iter::once(&g["full"]).chain(fg))
    {
        let fold = fc["fold"].as_str().unwrap();
        assert_eq!(fc["fold"], fg["fold"]);
        assert_eq!(fc["held_out_points"], fg["held_out_points"], "{fold}");
        let f = |v: &Value, k: &str| num(&v[k]);
        close(f(fc, "objective"), f(fg, "objective"), 1e-6, fold);
        close(f(fc, "rmse"), f(fg, "rmse"), 1e-3, &format!("{fold} RMSE"));
        close(f(fc, "mape"), f(fg, "mape"), 1e-3, &format!("{fold} MAPE"));
        close(
            1.0 - f(fc, "r2"),
            1.0 - f(fg, "r2"),
            2e-3,
            &format!("{fold} 1 - R2"),
        );
    }
}
