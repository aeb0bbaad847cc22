//! `sweepfit bench` as a smoke test: a small grid runs, and its JSON has
//! the documented shape with positive throughputs. With
//! SWEEPFIT_REQUIRE_GPU=1 (CI, where lavapipe is installed) the GPU rows
//! must be there too.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn small_bench_writes_json() {
    let dir = common::tempdir();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sweepfit"))
        // A small grid with a generous per-evaluation budget: on a busy
        // machine with a software GPU a budget-skipped cell would make the
        // test depend on load, not on the code.
        .args([
            "bench",
            "--no-fits",
            "--points",
            "1e4,2e4",
            "--starts",
            "1,16",
            "--seconds-per-cell",
            "0.05",
            "--max-eval-seconds",
            "600",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("cannot start the sweepfit binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("evaluation throughput"), "{stdout}");

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "date",
        "sweepfit_version",
        "cpu",
        "gpu",
        "settings",
        "overhead",
        "throughput",
        "fits",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert!(v["cpu"]["threads"].as_u64().unwrap() >= 1);
    assert_eq!(v["settings"]["fits"], false);
    assert!(v["fits"].as_array().unwrap().is_empty());

    let rows = |section: &str, backend: &str| -> Vec<Value> {
        v[section]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["backend"] == backend)
            .cloned()
            .collect()
    };
    let positive = |r: &Value, key: &str| r[key].as_f64().is_some_and(|x| x > 0.0 && x.is_finite());
    let check = |backend: &str| {
        let cells = rows("throughput", backend);
        // The grid asked for: points 1e4, 2e4 x starts 1, 16.
        assert_eq!(cells.len(), 4, "{backend}: {cells:?}");
        for r in &cells {
            assert_eq!(r["status"], "ok", "{r}");
            assert!(r["evaluations"].as_u64().unwrap() >= 1, "{r}");
            assert!(
                positive(r, "seconds_per_eval") && positive(r, "point_evals_per_second"),
                "{r}"
            );
        }
        let overhead = rows("overhead", backend);
        assert_eq!(overhead.len(), 1, "{overhead:?}");
        assert!(
            positive(&overhead[0], "seconds_per_eval"),
            "{}",
            overhead[0]
        );
        cells
    };
    let cpu = check("cpu");
    let pairs: Vec<(u64, u64)> = cpu
        .iter()
        .map(|r| (r["points"].as_u64().unwrap(), r["starts"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [(10_000, 1), (10_000, 16), (20_000, 1), (20_000, 16)]
    );

    if std::env::var("SWEEPFIT_REQUIRE_GPU").as_deref() == Ok("1") {
        assert!(v["gpu"]["device"].is_string(), "no GPU: {}", v["gpu"]);
        for r in check("gpu") {
            assert!(positive(&r, "gpu_speedup"), "{r}");
        }
    }
}

/// An existing --json file is refused before any benchmarking, and left as
/// it was; --force replaces it.
#[test]
fn an_existing_json_file_is_kept_unless_forced() {
    let dir = common::tempdir();
    let json = dir.path().join("bench.json");
    std::fs::write(&json, "mine\n").unwrap();
    let run = |force: bool| {
        let mut args = vec![
            "bench",
            "--no-fits",
            "--no-gpu",
            "--points",
            "1e3",
            "--starts",
            "1",
            "--seconds-per-cell",
            "0.01",
            "--json",
        ];
        let path = json.to_str().unwrap();
        args.push(path);
        if force {
            args.push("--force");
        }
        common::sweepfit(dir.path(), &args)
    };
    let refused = run(false);
    refused.assert_failed("bench onto an existing --json file");
    assert!(
        refused
            .stderr
            .contains("exists (use --force to replace it)")
            && !refused.stdout.contains("evaluation throughput"),
        "{}",
        refused.dump()
    );
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "mine\n");
    run(true).assert_ok("bench --force");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v.get("throughput").is_some(), "{v}");
}

/// What bench cannot do is refused before any cell runs: a --json that is
/// a directory (even with --force) and cells larger than memory holds
/// (10^9 starts aborted on their allocation before; these ask for hundreds of terabytes).
#[test]
fn a_json_directory_and_cells_past_memory_are_refused_before_benchmarking() {
    let dir = common::tempdir();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let base = [
        "bench",
        "--no-fits",
        "--no-gpu",
        "--seconds-per-cell",
        "0.01",
    ];
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--points", "1e3", "--starts", "1", "--json", "out", "--force",
            ],
            "--json out: is a directory",
        ),
        (&["--points", "1e3", "--starts", "1e12"], "of memory"),
        (&["--points", "1e13", "--starts", "1"], "of memory"),
    ];
    for (extra, want) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let run = common::sweepfit(dir.path(), &args);
        run.assert_failed("the case");
        assert!(
            run.stderr.contains(want) && !run.stdout.contains("evaluation throughput"),
            "{}",
            run.dump()
        );
    }
    assert!(dir.path().join("out").is_dir());
}
