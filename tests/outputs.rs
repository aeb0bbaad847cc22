//! Output sets are all-or-nothing: a write that fails (a full disk), a run
//! stopped by SIGINT or SIGTERM, and several runs into the same --out at
//! once leave either the complete new set or what was there before, never
//! part of one, and no temporary that blocks the next run.
//!
//! A full disk is stood in for by a file size limit (`ulimit -f`, with
//! SIGXFSZ ignored, so a write past it fails with EFBIG as a write to a
//! full disk fails with ENOSPC); it holds for root too.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Run;
use serde_json::Value;
use tempfile::TempDir;

/// Options that keep a fit of the small simulated sweep fast (and 4
/// starts unless `extra` says).
const FAST: [&str; 4] = ["--max-iter", "30", "--backend", "cpu"];

const TEMP_PREFIX: &str = ".sweepfit-tmp-";

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn bin(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweepfit"));
    cmd.args(args).current_dir(cwd);
    cmd
}

fn spawn(cwd: &Path, args: &[&str]) -> Child {
    bin(cwd, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sweepfit")
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().expect("cannot wait for sweepfit");
    let run = Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    run
}

/// The small simulated sweep, `dir/sweep.csv`.
fn simulate(dir: &Path) {
    common::ok(
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
}

fn fit_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fit", "sweep.csv", "--out", out];
    args.extend_from_slice(&FAST);
    if !extra.contains(&"--starts") {
        args.extend_from_slice(&["--starts", "4"]);
    }
    args.extend_from_slice(extra);
    args
}

/// Every sweepfit temporary under `dir` (at any depth) with the bytes it
/// holds. Entries vanish while a run works, so errors are skipped.
fn temporaries(dir: &Path) -> Vec<(PathBuf, u64)> {
    fn size(p: &Path) -> u64 {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => fs::read_dir(p)
                .map(|es| es.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            found.push((path.clone(), size(&path)));
        } else if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temporaries(&path));
        }
    }
    found
}

fn assert_no_temporaries(dir: &Path) {
    let left = temporaries(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Poll `done` until it holds; panics after a generous deadline, or when
/// `child` ends first.
#[cfg(unix)]
fn wait_for(what: &str, child: &mut Child, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sweepfit ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(unix)]
fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -{signal} failed");
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// fit.json parses and pred.csv has its header and a row per point.
fn assert_fit_set(out: &Path) {
    let fit = read_json(&out.join("fit.json"));
    assert!(fit["params"]["E"].as_f64().is_some(), "{fit}");
    let pred = fs::read_to_string(out.join("pred.csv")).unwrap();
    assert!(pred.ends_with('\n'));
    assert_eq!(pred.lines().count(), 401, "pred.csv rows");
}

/// Run with a file size limit of `bytes` (see the top of this file).
#[cfg(unix)]
fn run_limited(cwd: &Path, bytes: u64, args: &[&str]) -> Run {
    // dash and bash (as sh) count 512-byte blocks.
    let script = format!(
        "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
        bytes / 512
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_sweepfit"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sh");
    finish(child)
}

#[cfg(unix)]
fn file_sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut sizes: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let len = e.metadata().unwrap().len();
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    sizes.sort_by_key(|s| s.1);
    sizes
}

/// A limit that fit.json fits under and the largest picture does not, by
/// a factor of 2 either way (in case sh counts 1024-byte blocks).
#[cfg(unix)]
fn limit_between_fit_json_and_pictures(dir: &Path) -> u64 {
    common::ok(dir, &fit_args("sizes", &["--plot"]));
    let sizes = file_sizes(&dir.join("sizes"));
    let fit = sizes.iter().find(|s| s.0 == "fit.json").unwrap().1;
    let largest = sizes.last().unwrap().1;
    let limit = largest / 3;
    assert!(fit * 2 < limit, "no room for a limit: {sizes:?}");
    fs::remove_dir_all(dir.join("sizes")).unwrap();
    limit
}

// ------------------------------------------------------------ a full disk

#[cfg(unix)]
#[test]
fn a_fit_whose_disk_fills_leaves_no_output_directory() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    let limit = limit_between_fit_json_and_pictures(dir);

    let r = run_limited(dir, limit, &fit_args("o", &["--plot"]));
    assert_eq!(r.code, Some(1), "{}", r.dump());
    // The error names the output, not the temporary it was written to.
    assert!(
        r.stderr.contains("o/") && r.stderr.contains(".png") && !r.stderr.contains(TEMP_PREFIX),
        "{}",
        r.dump()
    );
    assert!(!dir.join("o").exists(), "a failed fit created o");
    assert_no_temporaries(dir);

    // Into an existing empty directory too: it stays empty.
    fs::create_dir(dir.join("empty")).unwrap();
    let r = run_limited(dir, limit, &fit_args("empty", &["--plot"]));
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert_eq!(fs::read_dir(dir.join("empty")).unwrap().count(), 0);

    // Nothing is in the way of the same command with room to write.
    common::ok(dir, &fit_args("o", &["--plot"]));
    assert_fit_set(&dir.join("o"));
    assert_no_temporaries(dir);
}

#[cfg(unix)]
#[test]
fn a_forced_fit_whose_disk_fills_keeps_every_old_file() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    let limit = limit_between_fit_json_and_pictures(dir);
    common::ok(dir, &fit_args("o", &["--plot"]));
    let before: Vec<(String, Vec<u8>)> = file_sizes(&dir.join("o"))
        .into_iter()
        .map(|(name, _)| {
            let bytes = fs::read(dir.join("o").join(&name)).unwrap();
            (name, bytes)
        })
        .collect();

    // Another start count: a fit.json that differs from the old one.
    let r = run_limited(
        dir,
        limit,
        &fit_args("o", &["--plot", "--force", "--starts", "5"]),
    );
    assert_eq!(r.code, Some(1), "{}", r.dump());
    for (name, bytes) in &before {
        assert!(
            fs::read(dir.join("o").join(name)).unwrap() == *bytes,
            "{name} was changed by a fit that failed"
        );
    }
    assert_no_temporaries(dir);
}

#[test]
fn a_forced_fit_that_cannot_put_pred_csv_in_place_keeps_fit_json() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    let out = dir.join("o");
    fs::create_dir_all(out.join("pred.csv")).unwrap();
    fs::write(out.join("fit.json"), "old fit").unwrap();

    let r = common::sweepfit(dir, &fit_args("o", &["--force"]));
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert!(r.stderr.contains("pred.csv"), "{}", r.dump());
    assert_eq!(fs::read_to_string(out.join("fit.json")).unwrap(), "old fit");
    assert!(out.join("pred.csv").is_dir());
    assert_no_temporaries(dir);
}

#[cfg(unix)]
#[test]
fn single_files_whose_disk_fills_are_not_written() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    common::ok(dir, &fit_args("o", &[]));
    let predict = |extra: &[&'static str]| {
        let mut args = vec![
            "predict",
            "--fit",
            "o/fit.json",
            "--N",
            "1e9",
            "--T",
            "1",
            "--tokens",
            "0:1e10:100000",
            "--out",
            "p.csv",
        ];
        args.extend_from_slice(extra);
        args
    };
    // 100,000 rows are megabytes; the limit is 64 KiB.
    let r = run_limited(dir, 64 << 10, &predict(&[]));
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert!(r.stderr.contains("p.csv"), "{}", r.dump());
    assert!(!dir.join("p.csv").exists());
    assert_no_temporaries(dir);

    fs::write(dir.join("p.csv"), "old").unwrap();
    let r = run_limited(dir, 64 << 10, &predict(&["--force"]));
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert_eq!(fs::read_to_string(dir.join("p.csv")).unwrap(), "old");
    assert_no_temporaries(dir);

    // simulate writes a CSV and its truth.json: neither, when one fails.
    let r = run_limited(
        dir,
        64 << 10,
        &["simulate", "--out", "s.csv", "--points", "200"],
    );
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert!(!dir.join("s.csv").exists());
    assert!(!dir.join("s.csv.truth.json").exists());
    assert_no_temporaries(dir);
}

// ---------------------------------------------------------------- signals

/// predict of 5,000,000 rows (over 100 MB) into `out`.
#[cfg(unix)]
fn big_predict(out: &str) -> Vec<&str> {
    vec![
        "predict",
        "--fit",
        "o/fit.json",
        "--N",
        "1e9",
        "--T",
        "1",
        "--tokens",
        "0:1e10:5000000",
        "--out",
        out,
    ]
}

#[cfg(unix)]
#[test]
fn sigint_or_sigterm_during_a_predict_leaves_nothing() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    common::ok(dir, &fit_args("o", &[]));
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut child = spawn(dir, &big_predict("big.csv"));
        // Mid-write: its temporary holds a megabyte.
        wait_for("a temporary of 1 MB", &mut child, || {
            temporaries(dir).iter().map(|t| t.1).sum::<u64>() >= 1 << 20
        });
        kill(&child, signal);
        let r = finish(child);
        assert_eq!(r.code, Some(code), "SIG{signal}: {}", r.dump());
        assert!(!dir.join("big.csv").exists(), "SIG{signal}: big.csv");
        assert_no_temporaries(dir);
    }
    let mut small = big_predict("big.csv");
    small[8] = "0:1e10:100";
    common::ok(dir, &small);
    assert_eq!(
        fs::read_to_string(dir.join("big.csv"))
            .unwrap()
            .lines()
            .count(),
        101
    );
}

#[cfg(unix)]
#[test]
fn sigint_while_a_fit_writes_leaves_nothing_and_the_rerun_works() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    // The pictures take a while to draw, but a run may still be past its
    // writing before the poll sees its temporaries: then try again.
    let mut caught = false;
    for attempt in 0..5 {
        let out = format!("o{attempt}");
        let mut child = spawn(dir, &fit_args(&out, &["--plot"]));
        let seen = loop {
            if !temporaries(dir).is_empty() {
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if seen {
            kill(&child, "INT");
        }
        let r = finish(child);
        assert_no_temporaries(dir);
        if !seen || r.code == Some(0) {
            continue;
        }
        assert_eq!(r.code, Some(130), "{}", r.dump());
        if dir.join(&out).exists() {
            // The signal came after the files were in place: all of them.
            assert_fit_set(&dir.join(&out));
            continue;
        }
        caught = true;
        // The same command again: no "directory is not empty".
        common::ok(dir, &fit_args(&out, &["--plot"]));
        assert_fit_set(&dir.join(&out));
        assert_no_temporaries(dir);
        break;
    }
    assert!(caught, "no attempt was interrupted while writing");
}

#[test]
fn a_temporary_left_by_a_killed_run_does_not_block_the_next() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    // What a kill -9 leaves of a run into an existing directory.
    let left = dir.join("o/.sweepfit-tmp-999999-0-o");
    fs::create_dir_all(&left).unwrap();
    fs::write(left.join("fit.json"), "half").unwrap();

    let r = common::ok(dir, &fit_args("o", &[]));
    assert_fit_set(&dir.join("o"));
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("note: ") && l.contains(".sweepfit-tmp-999999-0-o")),
        "the leftover is not named:\n{}",
        r.dump()
    );
}

// ------------------------------------------------------ runs at the same time

/// Exactly one of `runs` succeeded; the others failed naming `path` and
/// --force. Returns the index of the winner.
fn one_winner(runs: &[Run], path: &str) -> usize {
    let won: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].ok).collect();
    let dump: Vec<String> = runs.iter().map(Run::dump).collect();
    assert_eq!(won.len(), 1, "winners {won:?}:\n{}", dump.join("\n"));
    for (i, r) in runs.iter().enumerate() {
        if i != won[0] {
            assert_eq!(r.code, Some(1), "{}", r.dump());
            let named =
                |l: &str| l.contains(&format!("{path}:")) || l.contains(&format!("{path}/"));
            assert!(
                r.stderr
                    .lines()
                    .any(|l| l.starts_with("error:") && named(l) && l.contains("--force")),
                "{}",
                r.dump()
            );
        }
    }
    won[0]
}

#[test]
fn of_three_fits_into_one_new_out_one_wins() {
    for existing in [false, true] {
        let tmp = tempdir();
        let dir = tmp.path();
        simulate(dir);
        if existing {
            fs::create_dir(dir.join("c")).unwrap();
        }
        let starts = ["4", "5", "6"];
        let children: Vec<Child> = starts
            .iter()
            .map(|s| spawn(dir, &fit_args("c", &["--plot", "--starts", s])))
            .collect();
        let runs: Vec<Run> = children.into_iter().map(finish).collect();
        let w = one_winner(&runs, "c");
        assert_fit_set(&dir.join("c"));
        let fit = read_json(&dir.join("c/fit.json"));
        assert_eq!(
            fit["starts"]["count"].to_string(),
            starts[w],
            "fit.json is not the winner's"
        );
        assert_no_temporaries(dir);
    }
}

#[test]
fn of_three_predicts_into_one_file_one_wins() {
    let tmp = tempdir();
    let dir = tmp.path();
    simulate(dir);
    common::ok(dir, &fit_args("o", &[]));
    let sizes = ["1e9", "2e9", "3e9"];
    let children: Vec<Child> = sizes
        .iter()
        .map(|n| {
            spawn(
                dir,
                &[
                    "predict",
                    "--fit",
                    "o/fit.json",
                    "--N",
                    n,
                    "--T",
                    "1",
                    "--tokens",
                    "0:1e10:200000",
                    "--out",
                    "p.csv",
                ],
            )
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    let w = one_winner(&runs, "p.csv");
    let text = fs::read_to_string(dir.join("p.csv")).unwrap();
    let want: f64 = sizes[w].parse().unwrap();
    let mut rows = 0;
    for line in text.lines().skip(1) {
        let n: f64 = line.split(',').next().unwrap().parse().unwrap();
        assert_eq!(n, want, "a row of another run: {line}");
        rows += 1;
    }
    assert_eq!(rows, 200_000);
    assert_no_temporaries(dir);
}
