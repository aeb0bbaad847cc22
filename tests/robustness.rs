//! Robustness of the `sweepfit` binary: a closed or full terminal, absurd
//! sizes and labels, unusable fits and options, a bad wgpu environment,
//! degenerate sweeps and all-or-nothing output files. Each case is one the
//! binary once got wrong (a panic, a lost or truncated file, a silently
//! wrong fit); none of them may end in a panic.

mod common;
use common::Run;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Options that keep a CLI fit of the small simulated sweep fast.
const FAST: [&str; 6] = ["--starts", "4", "--max-iter", "30", "--backend", "cpu"];

/// The small sweep: 20 curves (5 sizes x 4 recurrent steps) of 20 points.
const SWEEP_POINTS: usize = 400;

const PARAMS: [&str; 10] = [
    "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
];

/// The exit status of a Rust panic.
const PANIC_EXIT: i32 = 101;

fn bin(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweepfit"));
    cmd.args(args).current_dir(cwd);
    cmd
}

/// A run must end with an exit code, not a signal or a panic.
fn assert_no_panic(run: &Run, what: &str) {
    assert!(
        run.code.is_some()
            && run.code != Some(PANIC_EXIT)
            && !run.stderr.contains("panicked")
            && !run.stdout.contains("panicked"),
        "{what} crashed:\n{}",
        run.dump()
    );
}

/// Wait for a spawned run and collect whatever of its output was piped.
fn finish(child: Child, what: &str) -> Run {
    let out = child.wait_with_output().expect("cannot wait for sweepfit");
    let run = Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_panic(&run, what);
    run
}

/// Run with piped output in `cwd`; no panic allowed.
fn run(cwd: &Path, args: &[&str]) -> Run {
    let run = common::sweepfit(cwd, args);
    assert_no_panic(&run, &format!("sweepfit {args:?}"));
    run
}

fn run_ok(cwd: &Path, args: &[&str]) -> Run {
    let r = run(cwd, args);
    r.assert_ok(&format!("sweepfit {args:?}"));
    r
}

/// Require exit status 1 and that one line of stderr holds every needle.
fn assert_error(run: &Run, what: &str, needles: &[&str]) {
    assert_exit(run, what, needles, 1);
}

/// Require exit status `code` and that one line of stderr holds every
/// needle.
fn assert_exit(run: &Run, what: &str, needles: &[&str], code: i32) {
    assert_eq!(
        run.code,
        Some(code),
        "{what} should exit {code}:\n{}",
        run.dump()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n))),
        "{what}: no stderr line holds all of {needles:?}:\n{}",
        run.dump()
    );
}

/// `sweepfit simulate` the small sweep into `dir/sweep.csv`.
fn simulate(dir: &Path) -> PathBuf {
    run_ok(
        dir,
        &[
            "simulate",
            "--out",
            "sweep.csv",
            "--seed",
            "1",
            "--points",
            "20",
        ],
    );
    dir.join("sweep.csv")
}

/// `fit DATA --out OUT` with the fast options and `extra`.
fn fit_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fit", data, "--out", out];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    args
}

fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn names(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("{what} holds {x}"))
                .to_string()
        })
        .collect()
}

/// A header and `rows` rows, each with as many fields as the header.
fn assert_csv_rows(path: &Path, rows: usize, header_fields: &[&str]) -> Vec<Vec<String>> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        text.ends_with('\n'),
        "{} lacks its last newline",
        path.display()
    );
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    for f in header_fields {
        assert!(header.contains(f), "{}: header {header:?}", path.display());
    }
    let body: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(body.len(), rows, "{} rows", path.display());
    for (i, r) in body.iter().enumerate() {
        assert_eq!(r.len(), header.len(), "{} row {i}: {r:?}", path.display());
    }
    body
}

/// fit.json parses, holds every parameter as a number, and pred.csv has a
/// row for each of the `points` points.
fn assert_fit_files(out: &Path, points: usize) {
    let fit = read_json(&out.join("fit.json"));
    for p in PARAMS {
        assert!(
            fit["params"][p].as_f64().is_some_and(f64::is_finite),
            "params.{p} = {}",
            fit["params"][p]
        );
    }
    let rows = assert_csv_rows(
        &out.join("pred.csv"),
        points,
        &["run", "N", "T", "tokens", "loss", "pred"],
    );
    // The numbers (the last column is the row's set, "fit").
    for r in &rows {
        for v in &r[1..r.len() - 1] {
            assert!(
                v.parse::<f64>().is_ok_and(f64::is_finite),
                "pred.csv row {r:?}"
            );
        }
    }
}

fn assert_no_temporary_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with(".sweepfit-tmp-"),
            "{} left behind in {}",
            name.to_string_lossy(),
            dir.display()
        );
    }
}

/// A long CSV (run,N,T,tokens,loss) from rows of (run, N, T, tokens, loss).
fn write_long_csv(path: &Path, with_t: bool, rows: &[(String, f64, f64, f64, f64)]) {
    let mut text = String::from(if with_t {
        "run,N,T,tokens,loss\n"
    } else {
        "run,N,tokens,loss\n"
    });
    for (run, n, t, d, l) in rows {
        if with_t {
            text += &format!("{run},{n},{t},{d},{l}\n");
        } else {
            text += &format!("{run},{n},{d},{l}\n");
        }
    }
    fs::write(path, text).unwrap();
}

/// The rows of the simulated sweep.csv.
fn sweep_rows(path: &Path) -> Vec<(String, f64, f64, f64, f64)> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (r, n, t, d, l) = (col("run"), col("N"), col("T"), col("tokens"), col("loss"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let x = |i: usize| f[i].parse::<f64>().unwrap();
            (f[r].to_string(), x(n), x(t), x(d), x(l))
        })
        .collect()
}

// ------------------------------------------------------- 1. closed stdout

/// Spawn with stdout a pipe whose read end is dropped at once.
fn run_with_closed_stdout(dir: &Path, args: &[&str]) -> Run {
    let mut child = bin(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sweepfit");
    drop(child.stdout.take());
    finish(child, &format!("sweepfit {args:?} with stdout closed"))
}

#[test]
fn fit_with_stdout_closed_writes_its_files_and_exits_0() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let r = run_with_closed_stdout(dir, &fit_args("sweep.csv", "o", &[]));
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);
    assert_no_temporary_files(&dir.join("o"));
}

#[test]
fn eval_with_stdout_closed_writes_its_files_and_exits_0() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let mut args = vec![
        "eval",
        "sweep.csv",
        "--out",
        "e",
        "--protocol",
        "tokens",
        "--fractions",
        "0.5",
    ];
    args.extend_from_slice(&FAST);
    let r = run_with_closed_stdout(dir, &args);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let eval = read_json(&dir.join("e/eval.json"));
    assert!(eval.is_object(), "{eval}");
    // The fit on all points and the one token fold.
    assert_csv_rows(&dir.join("e/eval.csv"), 2, &["protocol", "fold", "r2"]);
}

// --------------------------------------------------------- 2. full stdout

#[cfg(target_os = "linux")]
fn dev_full() -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("Linux has /dev/full"),
    )
}

#[cfg(target_os = "linux")]
const STDOUT_ERROR: &str = "error: cannot write to standard output: ";

#[cfg(target_os = "linux")]
#[test]
fn fit_with_stdout_full_reports_it_after_writing_the_files() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let args = fit_args("sweep.csv", "o", &[]);
    let child = bin(dir, &args)
        .stdout(dev_full())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "fit > /dev/full");
    assert_error(&r, "fit > /dev/full", &[STDOUT_ERROR]);
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);
}

#[cfg(target_os = "linux")]
#[test]
fn fit_with_stderr_full_still_succeeds() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let args = fit_args("sweep.csv", "o", &[]);
    let child = bin(dir, &args)
        .stdout(Stdio::piped())
        .stderr(dev_full())
        .spawn()
        .unwrap();
    let r = finish(child, "fit 2> /dev/full");
    assert_eq!(r.code, Some(0), "{}", r.dump());
    // The report still reaches stdout.
    assert!(r.stdout.contains("parameters"), "{}", r.stdout);
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);

    // A run that has something to say on stderr: predicting beyond the
    // fitted sizes and tokens warns of extrapolation there.
    let child = bin(
        dir,
        &[
            "predict",
            "--fit",
            "o/fit.json",
            "--N",
            "2.8e9",
            "--T",
            "1",
            "--tokens",
            "1e9:40e9:10",
            "--out",
            "p.csv",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(dev_full())
    .spawn()
    .unwrap();
    let r = finish(child, "predict 2> /dev/full");
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_csv_rows(&dir.join("p.csv"), 10, &["N", "T", "tokens", "pred"]);
}

#[cfg(target_os = "linux")]
#[test]
fn simulate_with_stdout_full_writes_the_sweep_and_exits_1() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let child = bin(dir, &["simulate", "--out", "x.csv", "--seed", "1"])
        .stdout(dev_full())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "simulate > /dev/full");
    assert_error(&r, "simulate > /dev/full", &[STDOUT_ERROR]);
    // The default: 20 curves of 500 points.
    assert_csv_rows(
        &dir.join("x.csv"),
        20 * 500,
        &["run", "N", "T", "tokens", "loss"],
    );
    assert_no_temporary_files(dir);
}

// ------------------------------------------------------ 3. a huge run label

#[test]
fn a_70000_character_run_label_is_clipped_in_the_table_only() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let sweep = simulate(dir);
    let label = "r".repeat(70_000);
    // One curve (the smallest model at T = 1) gets the long label.
    let mut rows = sweep_rows(&sweep);
    let mut renamed = 0;
    for row in &mut rows {
        if row.1 == 53e6 && row.2 == 1.0 {
            row.0 = label.clone();
            renamed += 1;
        }
    }
    assert_eq!(renamed, 20);
    write_long_csv(&dir.join("long.csv"), true, &rows);

    let r = run_ok(dir, &fit_args("long.csv", "o", &[]));
    let cell = r
        .stdout
        .lines()
        .flat_map(str::split_whitespace)
        .find(|w| w.starts_with("rrrr"))
        .unwrap_or_else(|| panic!("the label is not in the table:\n{}", r.stdout));
    assert!(cell.ends_with('…'), "not clipped: {cell:?}");
    assert!(
        cell.chars().count() <= 48,
        "{} characters: {cell}",
        cell.chars().count()
    );
    assert!(
        r.stdout.lines().all(|l| l.chars().count() < 200),
        "an overlong line in the report"
    );

    let rows = assert_csv_rows(&dir.join("o/pred.csv"), SWEEP_POINTS, &["run"]);
    let whole = rows.iter().filter(|r| r[0] == label).count();
    assert_eq!(whole, 20, "pred.csv does not keep the whole label");
}

// --------------------------------------------------------- 4. absurd sizes

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &[
                "fit",
                "sweep.csv",
                "--out",
                "b1",
                "--backend",
                "cpu",
                "--bootstrap",
                "18446744073709551615",
            ],
            "--bootstrap",
            "b1",
        ),
        (
            &[
                "fit",
                "sweep.csv",
                "--out",
                "b2",
                "--backend",
                "cpu",
                "--starts",
                // Petabytes of start states: more than any host has.
                "1000000000000000",
            ],
            "--starts",
            "b2",
        ),
        (
            &[
                "simulate",
                "--out",
                "big.csv",
                "--points",
                "18446744073709551615",
            ],
            "--points",
            "big.csv",
        ),
    ];
    for (args, option, output) in cases {
        let r = run(dir, args);
        assert_error(
            &r,
            &format!("{args:?}"),
            &[option, "would need about", "of memory"],
        );
        assert!(
            !dir.join(output).exists(),
            "{args:?} created {output}:\n{}",
            r.dump()
        );
    }
    assert!(!dir.join("big.csv.truth.json").exists());
    assert_no_temporary_files(dir);
}

// ------------------------------------------------- 5. a --fix that overflows

#[test]
fn a_fixed_value_that_makes_the_law_overflow_is_an_error() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let r = run(dir, &fit_args("sweep.csv", "o", &["--fix", "alpha=100"]));
    // Outside the law's declared bounds: refused before any fit, naming
    // the parameter and the bounds.
    assert_error(
        &r,
        "--fix alpha=100",
        &["--fix alpha=100", "outside the bounds [0.0001, 8]"],
    );
    assert!(!dir.join("o").exists(), "an output directory was created");
}

// ---------------------------------------------- 6. a single token count

#[test]
fn final_losses_at_one_token_count_fold_the_d_term_into_e() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let (e, a, alpha, t1) = (1.8, 268.0, 0.30, 1e7);
    let (b, beta, t2) = (2018.0, 0.35, 1.06e7);
    let (c, gamma, t3) = (0.675, 1.0, 0.5);
    let d = 2e10;
    let mut rows = Vec::new();
    for n in [53e6, 134e6, 374e6, 778e6, 1.36e9] {
        for t in [1.0, 2.0, 3.0, 4.0] {
            let loss = e
                + a / f64::powf(n + t1, alpha)
                + b / f64::powf(d + t2, beta)
                + c / f64::powf(t + t3, gamma);
            rows.push((format!("m{n}-T{t}"), n, t, d, loss));
        }
    }
    write_long_csv(&dir.join("final.csv"), true, &rows);

    run_ok(
        dir,
        &[
            "fit",
            "final.csv",
            "--out",
            "o",
            "--backend",
            "cpu",
            "--starts",
            "32",
            "--max-iter",
            "500",
        ],
    );
    let fit = read_json(&dir.join("o/fit.json"));
    let fixed = names(&fit["fixed"], "fixed");
    for p in ["B", "beta", "t2"] {
        assert!(fixed.iter().any(|f| f == p), "{p} not fixed: {fixed:?}");
    }
    assert_eq!(fit["params"]["B"].as_f64(), Some(0.0), "{}", fit["params"]);
    let notes = names(&fit["notes"], "notes");
    assert!(
        notes.iter().any(|n| n.contains("D takes one value")),
        "{notes:?}"
    );
    // The floor absorbs the D term at the one token count.
    let want_e = e + b / f64::powf(d + t2, beta);
    let got_e = fit["params"]["E"].as_f64().unwrap();
    assert!(
        (got_e - want_e).abs() <= 1e-3 * want_e,
        "E = {got_e}, want {want_e}"
    );
}

// ---------------------------------------------- 7. chinchilla on many T

#[test]
fn chinchilla_on_a_multi_t_sweep_notes_the_missing_t_term() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    // The chinchilla law has t2 = 0, so it is infinite at tokens = 0.
    run_ok(
        dir,
        &fit_args(
            "sweep.csv",
            "o",
            &["--law", "chinchilla", "--min-tokens", "1"],
        ),
    );
    let fit = read_json(&dir.join("o/fit.json"));
    // The law has no T: the binding says the curves are told apart by it.
    let notes = names(&fit["notes"], "notes");
    assert!(
        notes.iter().any(|n| n.contains("split by column T")),
        "{notes:?}"
    );
}

// ----------------------------------------------- 8. unusable fit.json files

#[test]
fn plot_refuses_a_fit_with_a_null_parameter() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    run_ok(dir, &fit_args("sweep.csv", "o", &[]));
    let mut fit = read_json(&dir.join("o/fit.json"));
    fit["params"]["A"] = Value::Null;
    fs::write(dir.join("f.json"), serde_json::to_string(&fit).unwrap()).unwrap();

    let r = run(
        dir,
        &[
            "plot",
            "--fit",
            "f.json",
            "--data",
            "sweep.csv",
            "--out",
            "g.png",
        ],
    );
    assert_error(
        &r,
        "plot of a fit with A = null",
        &["f.json", "not a usable fit", "params.A is not finite"],
    );
    assert!(!dir.join("g.png").exists());
}

#[test]
fn predict_refuses_a_bootstrap_level_outside_0_1() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    run_ok(
        dir,
        &fit_args(
            "sweep.csv",
            "o",
            &["--bootstrap", "2", "--resample", "points"],
        ),
    );
    let mut fit = read_json(&dir.join("o/fit.json"));
    assert!(
        fit["bootstrap"]["level"].is_number(),
        "{}",
        fit["bootstrap"]
    );
    let args = [
        "predict", "--fit", "f.json", "--N", "1e9", "--T", "1", "--tokens", "1e9",
    ];
    // The untouched fit predicts.
    fs::write(dir.join("f.json"), serde_json::to_string(&fit).unwrap()).unwrap();
    run_ok(dir, &args);

    fit["bootstrap"]["level"] = Value::from(1.5);
    fs::write(dir.join("f.json"), serde_json::to_string(&fit).unwrap()).unwrap();
    let r = run(dir, &args);
    assert_error(
        &r,
        "predict with bootstrap.level 1.5",
        &["f.json", "bootstrap.level"],
    );
    assert!(r.stdout.is_empty(), "predicted anyway:\n{}", r.stdout);
}

// ------------------------------------------------ 9. the wgpu environment

#[test]
fn an_unknown_wgpu_backend_is_an_error_for_the_default_backend() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let args = [
        "fit",
        "sweep.csv",
        "--out",
        "o",
        "--starts",
        "4",
        "--max-iter",
        "30",
    ];
    let child = bin(dir, &args)
        .env("WGPU_BACKEND", "garbage")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "WGPU_BACKEND=garbage fit");
    assert_error(
        &r,
        "WGPU_BACKEND=garbage fit",
        &["WGPU_BACKEND=garbage", "vulkan"],
    );
}

#[test]
fn an_unknown_wgpu_power_preference_is_an_error() {
    let tmp = common::tempdir();
    let child = bin(tmp.path(), &["devices"])
        .env("WGPU_POWER_PREF", "fast")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "WGPU_POWER_PREF=fast devices");
    assert_error(
        &r,
        "WGPU_POWER_PREF=fast devices",
        &["WGPU_POWER_PREF", "fast", "low, high"],
    );
}

#[test]
fn the_cpu_backend_ignores_the_wgpu_environment() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let args = fit_args("sweep.csv", "o", &[]);
    let child = bin(dir, &args)
        .env("WGPU_BACKEND", "garbage")
        .env("WGPU_POWER_PREF", "fast")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "WGPU_BACKEND=garbage fit --backend cpu");
    r.assert_ok("WGPU_BACKEND=garbage fit --backend cpu");
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);
}

// ------------------------------------------ 10. options checked before work

#[test]
fn options_are_checked_before_the_data_is_read() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    // A value the option's parser refuses is a usage error (exit 2, as
    // for any command line that does not parse); one checked against the
    // others, an error of the command (exit 1).
    let cases: [(&[&str], &[&str], i32); 2] = [
        (
            &["--bootstrap", "10", "--level", "1.5"],
            &["--level", "1.5"],
            2,
        ),
        (&["--starts", "0"], &["--starts", "at least 1"], 1),
    ];
    for (extra, needles, code) in cases {
        let mut args = vec!["fit", "does-not-exist.csv", "--out", "o"];
        args.extend_from_slice(extra);
        let r = run(dir, &args);
        assert_exit(&r, &format!("{args:?}"), needles, code);
        assert!(
            !r.stderr.contains("does-not-exist.csv"),
            "{args:?} read the data before checking the options:\n{}",
            r.stderr
        );
        assert!(!dir.join("o").exists());
    }
    // The missing file alone is reported as such.
    let r = run(dir, &["fit", "does-not-exist.csv", "--out", "o"]);
    assert_error(&r, "fit of a missing file", &["does-not-exist.csv"]);
}

// -------------------------------------------- 11. all-or-nothing outputs

#[cfg(unix)]
#[test]
fn force_replaces_a_symlinked_fit_json_without_following_it() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    let outside = dir.join("outside.txt");
    fs::write(&outside, "not yours\n").unwrap();
    fs::create_dir(dir.join("o")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("o/fit.json")).unwrap();

    run_ok(dir, &fit_args("sweep.csv", "o", &["--force"]));
    assert_eq!(fs::read_to_string(&outside).unwrap(), "not yours\n");
    let meta = fs::symlink_metadata(dir.join("o/fit.json")).unwrap();
    assert!(
        meta.file_type().is_file(),
        "fit.json is not a regular file: {:?}",
        meta.file_type()
    );
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);
    assert_no_temporary_files(&dir.join("o"));
}

#[test]
fn force_notes_pictures_left_from_an_earlier_plot_run() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    simulate(dir);
    run_ok(dir, &fit_args("sweep.csv", "o", &["--plot"]));
    let grid = dir.join("o/grid.png");
    assert!(grid.is_file(), "--plot wrote no grid.png");
    let before = fs::read(&grid).unwrap();
    assert_no_temporary_files(&dir.join("o"));

    let r = run_ok(dir, &fit_args("sweep.csv", "o", &["--force"]));
    assert!(
        r.stderr.lines().any(|l| l.starts_with("note: ")
            && l.contains("also holds")
            && l.contains("grid.png")
            && l.contains("(not rewritten)")),
        "no note about the stale grid.png:\n{}",
        r.stderr
    );
    assert_eq!(fs::read(&grid).unwrap(), before, "grid.png was touched");
    assert_fit_files(&dir.join("o"), SWEEP_POINTS);
    assert_no_temporary_files(&dir.join("o"));
}

#[test]
fn a_killed_predict_leaves_no_truncated_file() {
    let tmp = tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dir = tmp.path();
    simulate(dir);
    run_ok(dir, &fit_args("sweep.csv", "o", &[]));
    let predict = |tokens: &'static str| {
        [
            "predict",
            "--fit",
            "o/fit.json",
            "--N",
            "1e9",
            "--T",
            "1",
            "--tokens",
            tokens,
            "--out",
            "big.csv",
        ]
    };
    let mut child = bin(dir, &predict("0:1e10:5000000"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed mid-write: once its temporary holds a megabyte (of about 150).
    let written = || -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".sweepfit-tmp-")
            })
            .map(|e| {
                let p = e.path();
                match fs::read_dir(&p) {
                    Ok(inner) => inner
                        .flatten()
                        .filter_map(|f| f.metadata().ok())
                        .map(|m| m.len())
                        .sum(),
                    Err(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                }
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while written() < 1 << 20 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "predict ended before its temporary held 1 MB"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "predict wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.join("big.csv").exists(),
        "a killed predict left big.csv"
    );

    // What the kill -9 left does not block the same command.
    run_ok(dir, &predict("0:1e10:100"));
    let text = fs::read_to_string(dir.join("big.csv")).unwrap();
    assert_eq!(text.lines().count(), 101);
}

// ------------------------------------------------ 12. predict and --T

#[test]
fn predict_takes_t_from_a_single_t_fit_and_asks_for_it_otherwise() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let sweep = simulate(dir);
    let rows = sweep_rows(&sweep);
    let single: Vec<_> = rows.iter().filter(|r| r.2 == 1.0).cloned().collect();
    assert_eq!(single.len(), 100);
    // T all 1, and no T column at all.
    write_long_csv(&dir.join("t1.csv"), true, &single);
    write_long_csv(&dir.join("no_t.csv"), false, &single);
    for (data, out) in [("t1.csv", "t1"), ("no_t.csv", "no_t")] {
        let fit = run_ok(dir, &fit_args(data, out, &[]));
        // Without a T column, looplm's T takes its declared default.
        let said = "T = 1 (the law's default: no column 'T')";
        assert_eq!(
            fit.stderr.contains(said),
            data == "no_t.csv",
            "{}",
            fit.stderr
        );
        let fit = format!("{out}/fit.json");
        let r = run_ok(
            dir,
            &[
                "predict", "--fit", &fit, "--N", "1e9", "--tokens", "1e9,2e9",
            ],
        );
        let mut lines = r.stdout.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        let t = header.iter().position(|h| *h == "T").expect("a T column");
        let values: Vec<&str> = lines.map(|l| l.split(',').nth(t).unwrap()).collect();
        assert_eq!(values.len(), 2, "{data}: {}", r.stdout);
        for v in values {
            assert_eq!(v.parse::<f64>().ok(), Some(1.0), "{data}: {}", r.stdout);
        }
    }

    run_ok(dir, &fit_args("sweep.csv", "multi", &[]));
    let r = run(
        dir,
        &[
            "predict",
            "--fit",
            "multi/fit.json",
            "--N",
            "1e9",
            "--tokens",
            "1e9",
        ],
    );
    assert_error(
        &r,
        "predict from a multi-T fit without --T",
        &["give --at T=LIST"],
    );
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("give --at T"))
        .unwrap();
    let listed: Vec<&str> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .collect();
    for t in ["1", "2", "3", "4"] {
        assert!(listed.contains(&t), "T = {t} not listed: {line}");
    }
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

// ---------------------------------- 13. Mesa's device-select layer is quiet

#[test]
fn devices_without_xdg_runtime_dir_prints_no_layer_noise() {
    let tmp = common::tempdir();
    let child = bin(tmp.path(), &["devices"])
        .env_remove("XDG_RUNTIME_DIR")
        // The layer's own switch, which sweepfit sets unless the user did.
        .env_remove("NODEVICE_SELECT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "devices without XDG_RUNTIME_DIR");
    // Without a GPU, devices says so and succeeds too.
    r.assert_ok("devices without XDG_RUNTIME_DIR");
    assert!(
        !r.stderr.contains("XDG_RUNTIME_DIR"),
        "the device-select layer spoke:\n{}",
        r.stderr
    );
}

/// Opening the GPU instance writes no environment variable: a write while
/// another thread reads the environment (to spawn a process, as the tests
/// beside this one do) is undefined behaviour, so only the program's
/// main() writes, before any thread starts.
#[test]
fn opening_the_gpu_instance_leaves_the_environment_alone() {
    let before: Vec<_> = std::env::vars_os().collect();
    // Without an adapter the instance still opens.
    sweepfit::backend::gpu::instance().unwrap();
    let after: Vec<_> = std::env::vars_os().collect();
    assert_eq!(before, after);
}
