//! `sweepfit bench --law`: a built-in law and a formula are benched on the
//! CPU with the documented JSON (the grid asked for, positive throughputs,
//! the law described, no fits), and a law that is neither is refused with
//! an error naming it.

mod common;

use std::path::Path;

use common::{ok, sweepfit};
use serde_json::Value;

/// `bench --law LAW [extra..]` on the CPU over points 1e4 x starts 1, 16,
/// with a generous per-evaluation budget so that no cell is skipped on a
/// busy machine. Returns the JSON and the table.
fn bench_law(dir: &Path, law: &str, extra: &[&str]) -> (Value, String) {
    bench_json(dir, &["--law", law], extra)
}

/// `bench WHICH [extra..]` as [`bench_law`] runs it, for any way of naming
/// the law.
fn bench_json(dir: &Path, which: &[&str], extra: &[&str]) -> (Value, String) {
    let mut args = vec!["bench"];
    args.extend(which);
    args.extend([
        "--quick",
        "--no-gpu",
        "--points",
        "1e4",
        "--starts",
        "1,16",
        "--seconds-per-cell",
        "0.05",
        "--max-eval-seconds",
        "600",
        "--json",
        "out.json",
        // Several benches of one test write the same file.
        "--force",
    ]);
    args.extend(extra);
    let run = ok(dir, &args);
    let text = std::fs::read_to_string(dir.join("out.json")).expect("bench wrote out.json");
    let v: Value = serde_json::from_str(&text).expect("out.json is JSON");
    (v, run.stdout)
}

fn rows<'a>(v: &'a Value, section: &str) -> &'a [Value] {
    v[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section} array: {v}"))
}

fn positive(r: &Value, key: &str) -> bool {
    r[key].as_f64().is_some_and(|x| x > 0.0 && x.is_finite())
}

/// CPU cells only, for exactly the grid asked for, each measured with a
/// positive rate consistent with its time per evaluation; one CPU overhead
/// row; no fits.
fn check_cpu_cells(v: &Value) {
    let cells = rows(v, "throughput");
    assert!(cells.iter().all(|r| r["backend"] == "cpu"), "{v}");
    let grid: Vec<(u64, u64)> = cells
        .iter()
        .map(|r| (r["points"].as_u64().unwrap(), r["starts"].as_u64().unwrap()))
        .collect();
    assert_eq!(grid, [(10_000, 1), (10_000, 16)], "{v}");
    for r in cells {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["evaluations"].as_u64().unwrap() >= 1, "{r}");
        assert!(
            positive(r, "seconds_per_eval") && positive(r, "point_evals_per_second"),
            "{r}"
        );
        let t = r["seconds_per_eval"].as_f64().unwrap();
        let rate = r["point_evals_per_second"].as_f64().unwrap();
        let work = (r["points"].as_u64().unwrap() * r["starts"].as_u64().unwrap()) as f64;
        assert!((rate * t / work - 1.0).abs() < 1e-9, "{r}");
    }
    let overhead = rows(v, "overhead");
    assert_eq!(overhead.len(), 1, "{v}");
    assert_eq!(overhead[0]["backend"], "cpu");
    assert_eq!(overhead[0]["starts"], 1);
    assert!(
        positive(&overhead[0], "seconds_per_eval"),
        "{}",
        overhead[0]
    );
    assert_eq!(v["settings"]["fits"], false, "{v}");
    assert!(rows(v, "fits").is_empty(), "{v}");
    assert_eq!(v["gpu"]["device"], Value::Null, "{v}");
}

#[test]
fn a_builtin_law_is_benched_on_the_cpu() {
    let dir = common::tempdir();
    let (v, table) = bench_law(dir.path(), "chinchilla", &[]);
    check_cpu_cells(&v);
    let law = &v["law"];
    assert_eq!(law["name"], "chinchilla", "{v}");
    assert_eq!(law["formula"], "E + A/N^alpha + B/D^beta");
    assert_eq!(law["variables"], serde_json::json!(["N", "D"]));
    assert_eq!(law["axis"], "D");
    assert_eq!(law["params"].as_array().unwrap().len(), 5);
    // The CPU runs its grid layout on these sweeps: 20 curves of 500.
    let device = rows(&v, "throughput")[0]["device"].as_str().unwrap();
    assert!(device.contains("20 curves x 500"), "{device}");
    for want in [
        "law: chinchilla: E + A/N^alpha + B/D^beta",
        "curves of 500 points along D",
        "evaluation throughput",
        "not run with --law",
    ] {
        assert!(table.contains(want), "missing '{want}':\n{table}");
    }
    assert!(!table.contains("pythia"), "{table}");
}

#[test]
fn a_formula_is_benched_over_its_vars() {
    let dir = common::tempdir();
    let (v, table) = bench_law(dir.path(), "E + A/N^alpha", &["--vars", "N"]);
    check_cpu_cells(&v);
    let law = &v["law"];
    assert_eq!(law["name"], "E + A/N^alpha", "{v}");
    assert_eq!(law["variables"], serde_json::json!(["N"]));
    assert_eq!(law["axis"], "N");
    assert_eq!(law["params"], serde_json::json!(["E", "A", "alpha"]));
    assert!(table.contains("law: formula E + A/N^alpha"), "{table}");

    // Two variables, the curves along the last.
    let (v, _) = bench_law(dir.path(), "E + A/N^alpha + B/D^beta", &["--vars", "D,N"]);
    check_cpu_cells(&v);
    assert_eq!(v["law"]["axis"], "N", "{v}");
}

#[test]
fn a_bad_law_is_refused_by_name() {
    let dir = common::tempdir();
    let run = sweepfit(dir.path(), &["bench", "--law", "nosuchlaw+(", "--no-gpu"]);
    run.assert_failed("--law nosuchlaw+(");
    assert!(run.stderr.contains("nosuchlaw+("), "{}", run.dump());
    assert!(run.stderr.contains("built-in law"), "{}", run.dump());

    // The default variables are N and D: a formula without D is refused.
    let run = sweepfit(dir.path(), &["bench", "--law", "E + A/N^alpha", "--no-gpu"]);
    run.assert_failed("a formula without its variable D");
    assert!(run.stderr.contains("variable D"), "{}", run.dump());

    // A built-in law names its own variables.
    let run = sweepfit(
        dir.path(),
        &["bench", "--law", "vocab", "--vars", "N", "--no-gpu"],
    );
    run.assert_failed("--vars with a built-in law");
    assert!(run.stderr.contains("vocab"), "{}", run.dump());
}

#[test]
fn a_law_file_is_benched_under_its_own_name() {
    let dir = common::tempdir();
    let text = sweepfit::law::builtin("chinchilla")
        .unwrap()
        .replace("name = \"chinchilla\"", "name = \"my-law\"");
    std::fs::write(dir.path().join("my-law.toml"), text).unwrap();
    let (v, _) = bench_json(dir.path(), &["--law-file", "my-law.toml"], &[]);
    check_cpu_cells(&v);
    assert_eq!(v["law"]["name"], "my-law", "{v}");
    assert_eq!(v["law"]["axis"], "D");
    // A file without [variables] cannot say what to sweep.
    std::fs::write(
        dir.path().join("bare.toml"),
        "name = \"bare\"\nformula = \"E + A/N^alpha\"\n",
    )
    .unwrap();
    let run = sweepfit(
        dir.path(),
        &["bench", "--law-file", "bare.toml", "--no-gpu"],
    );
    run.assert_failed("bare law file");
    assert!(
        run.stderr.contains("bare.toml") && run.stderr.contains("[variables]"),
        "{}",
        run.dump()
    );
}
