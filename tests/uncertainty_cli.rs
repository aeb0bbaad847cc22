//! End-to-end: `fit --bootstrap`, `predict` bands from a bootstrapped fit,
//! and `eval`, run as a user would run them (CPU backend, so the numbers
//! do not depend on the machine's GPU).

mod common;
use common::{ok, sweepfit};

use std::path::Path;

use serde_json::Value;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn simulate(dir: &Path, points: &str) {
    ok(
        dir,
        &[
            "simulate",
            "--out",
            "sweep.csv",
            "--seed",
            "3",
            "--points",
            points,
        ],
    );
}

#[test]
fn fit_bootstrap_reports_intervals_and_predict_draws_bands() {
    let dir = common::tempdir();
    let d = dir.path();
    simulate(d, "40");
    let run = ok(
        d,
        &[
            "fit",
            "sweep.csv",
            "--backend",
            "cpu",
            "--bootstrap",
            "30",
            "--out",
            "out",
            "--plot",
        ],
    );
    // The table has both schemes' columns and the converged fractions.
    for text in [
        "SE (curves)",
        "95% interval (points)",
        "bootstrap (curves): 30 replicates",
        "bootstrap (points): 30 replicates",
    ] {
        assert!(
            run.stdout.contains(text),
            "missing '{text}':\n{}",
            run.stdout
        );
    }
    // The grid picture's legend names the curve-resampling band (and says
    // when it is too thin to see at that size).
    let svg = std::fs::read_to_string(d.join("out/grid.svg")).unwrap();
    assert_eq!(svg.matches(">\n95% band (curves)").count(), 1);
    let fit = json(&d.join("out/fit.json"));
    let boot = &fit["bootstrap"];
    assert_eq!(boot["level"], 0.95);
    let resamples = boot["resamples"].as_array().unwrap();
    assert_eq!(resamples.len(), 2);
    for rs in resamples {
        assert_eq!(rs["replicates"], 30);
        let used = rs["used"].as_u64().unwrap();
        assert!(used >= 27, "{rs}");
        assert_eq!(rs["samples"].as_array().unwrap().len() as u64, used);
        let frac = rs["converged_fraction"].as_f64().unwrap();
        assert_eq!(frac, rs["converged"].as_f64().unwrap() / 30.0);
        let params = rs["params"].as_object().unwrap();
        assert_eq!(params.len(), 10, "every parameter is free");
        for (name, iv) in params {
            let (se, lo, hi) = (
                iv["se"].as_f64().unwrap(),
                iv["lo"].as_f64().unwrap(),
                iv["hi"].as_f64().unwrap(),
            );
            let v = fit["params"][name].as_f64().unwrap();
            assert!(se > 0.0 && lo < hi, "{name}: {iv}");
            // Started from the best fit, replicates scatter around it.
            assert!(lo <= v && v <= hi, "{name} = {v} outside {iv}");
        }
    }

    let pred = ok(
        d,
        &[
            "predict",
            "--fit",
            "out/fit.json",
            "--N",
            "1e9",
            "--T",
            "2",
            "--tokens",
            "1e9,1e10",
        ],
    );
    let mut lines = pred.stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "N,T,tokens,pred,lo_curves,hi_curves,lo_points,hi_points"
    );
    for line in lines {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert!(v[4] < v[5] && v[6] < v[7], "{line}");
        assert!(
            v[4] <= v[3] && v[3] <= v[5],
            "pred inside the curve band: {line}"
        );
    }
}

#[test]
fn bootstrap_options_are_checked() {
    let dir = common::tempdir();
    let d = dir.path();
    simulate(d, "20");
    let r = sweepfit(d, &["fit", "sweep.csv", "--bootstrap", "1"]);
    assert!(!r.ok && r.stderr.contains("--bootstrap"), "{}", r.stderr);
    let r = sweepfit(
        d,
        &[
            "fit",
            "sweep.csv",
            "--backend",
            "cpu",
            "--bootstrap",
            "5",
            "--level",
            "1.5",
        ],
    );
    assert!(!r.ok && r.stderr.contains("level"), "{}", r.stderr);
    assert!(!d.join("sweepfit-out").exists(), "nothing written on error");
}

#[test]
fn single_curve_sweeps_bootstrap_points_only_with_a_note() {
    let dir = common::tempdir();
    let d = dir.path();
    let mut csv = String::from("N,tokens,loss\n");
    for k in 1..=200 {
        let tokens = k as f64 * 5e7;
        // A law plus a deterministic wiggle standing in for noise.
        let loss = 2.0 + 400.0 * (tokens + 1e7f64).powf(-0.3) + 0.01 * (k as f64 * 1.7).sin();
        csv.push_str(&format!("1e8,{tokens},{loss}\n"));
    }
    std::fs::write(d.join("one.csv"), csv).unwrap();
    let run = ok(
        d,
        &[
            "fit",
            "one.csv",
            "--backend",
            "cpu",
            "--bootstrap",
            "20",
            "--out",
            "o",
        ],
    );
    assert!(
        run.stdout
            .contains("curves: skipped, the data has a single curve"),
        "{}",
        run.stdout
    );
    let fit = json(&d.join("o/fit.json"));
    let rs = fit["bootstrap"]["resamples"].as_array().unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["kind"], "points");
    let r = sweepfit(
        d,
        &[
            "fit",
            "one.csv",
            "--backend",
            "cpu",
            "--bootstrap",
            "20",
            "--resample",
            "curves",
            "--out",
            "o2",
        ],
    );
    assert!(
        !r.ok && r.stderr.contains("nothing to bootstrap"),
        "{}",
        r.stderr
    );
}

#[test]
fn eval_runs_every_protocol_and_writes_json_csv_and_pictures() {
    let dir = common::tempdir();
    let d = dir.path();
    simulate(d, "40");
    let run = ok(
        d,
        &[
            "eval",
            "sweep.csv",
            "--backend",
            "cpu",
            "--out",
            "ev",
            "--starts",
            "32",
            "--plot",
        ],
    );
    let r = json(&d.join("ev/eval.json"));
    let folds = r["folds"].as_array().unwrap();
    let count = |p: &str| folds.iter().filter(|f| f["protocol"] == p).count();
    assert_eq!(count("sizes"), 10);
    assert_eq!(count("tokens"), 3);
    assert_eq!(count("leave-t"), 4);
    for f in folds {
        let held = f["held_out_points"].as_u64().unwrap();
        assert_eq!(f["train_points"].as_u64().unwrap() + held, 800, "{f}");
        assert_eq!(f["scored_points"].as_u64().unwrap(), held);
        // The simulated sweep follows the law, so every fold predicts its
        // held-out points well.
        let r2 = f["r2"].as_f64().unwrap();
        assert!(r2 > 0.9, "{}: R2 {r2}", f["fold"]);
    }
    assert_eq!(r["full"]["protocol"], "all");
    let summary = r["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 3);
    let sizes_mean = folds
        .iter()
        .filter(|f| f["protocol"] == "sizes")
        .map(|f| f["r2"].as_f64().unwrap())
        .sum::<f64>()
        / 10.0;
    assert!((summary[0]["r2"].as_f64().unwrap() - sizes_mean).abs() < 1e-12);
    assert!(run.stdout.contains("mean R2"), "{}", run.stdout);

    let csv = std::fs::read_to_string(d.join("ev/eval.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 1 + 17);
    assert!(csv.starts_with("protocol,fold,train_points,held_out_points,r2,rmse,mape"));
    let pictures = std::fs::read_dir(d.join("ev/folds")).unwrap().count();
    assert_eq!(pictures, 17);

    // The output directory is not overwritten without --force.
    let again = sweepfit(d, &["eval", "sweep.csv", "--backend", "cpu", "--out", "ev"]);
    assert!(
        !again.ok && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
}
