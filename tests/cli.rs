//! End-to-end tests of the `sweepfit` binary: subcommands, outputs, refusals
//! and error messages, run as a user would run them.

use std::path::{Path, PathBuf};

mod common;
use common::{sweepfit as sweepfit_in, Run};
use serde_json::Value;

/// The looplm law's parameters, in the order its formula names them.
const PARAMS: [&str; 10] = [
    "E", "A", "t1", "alpha", "B", "t2", "beta", "C", "t3", "gamma",
];

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Simulate the looplm20 sweep (default noise 0.02) into `dir/name`.
fn simulate(dir: &Path, name: &str, seed: u64, points: usize) -> PathBuf {
    let path = dir.join(name);
    let (seed, points) = (seed.to_string(), points.to_string());
    sweepfit_in(
        dir,
        &[
            "simulate",
            "--out",
            s(&path),
            "--seed",
            &seed,
            "--points",
            &points,
        ],
    )
    .assert_ok("simulate");
    path
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn fixed_names(fit: &Value) -> Vec<String> {
    fit["fixed"]
        .as_array()
        .expect("fixed is an array")
        .iter()
        .map(|v| v.as_str().expect("fixed holds names").to_string())
        .collect()
}

/// Fit `args` (after `fit`) in `dir`; returns the run and fit.json.
fn fit_ok(dir: &Path, args: &[&str], out: &Path) -> (Run, Value) {
    let mut all = vec!["fit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", s(out)]);
    let run = sweepfit_in(dir, &all);
    run.assert_ok(&format!("sweepfit {all:?}"));
    let fit = read_json(&out.join("fit.json"));
    (run, fit)
}

// ---------------------------------------------------------------- demo, help

#[test]
fn demo_prints_fit_quality_and_parameter_table() {
    let dir = common::tempdir();
    let run = sweepfit_in(dir.path(), &["demo"]);
    run.assert_ok("demo");
    let out = &run.stdout;
    let fit_line = out
        .lines()
        .find(|l| l.starts_with("fit (") && l.contains("R²"))
        .unwrap_or_else(|| panic!("no R² line:\n{out}"));
    let field = |name: &str| -> f64 {
        fit_line
            .split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("cannot read {name} from {fit_line:?}"))
    };
    assert!(field("R²") > 0.99, "{fit_line}");
    // What the noise allows: 10,000 points of noise sd 0.02 have an RMSE
    // of 0.02 within 0.7% (one sd); a fit that misses the law by 0.005 RMS
    // leaves 3% more.
    let rmse = field("RMSE");
    assert!((rmse / 0.02 - 1.0).abs() < 0.02, "demo RMSE {rmse}:\n{out}");
    // The truth-vs-fit table: a header and one row per parameter.
    let header = out
        .lines()
        .position(|l| l.starts_with("param") && l.contains("true") && l.contains("fitted"))
        .unwrap_or_else(|| panic!("no parameter table:\n{out}"));
    let rows: Vec<&str> = out.lines().skip(header + 1).take(PARAMS.len()).collect();
    for (row, name) in rows.iter().zip(PARAMS) {
        assert_eq!(row.split_whitespace().next(), Some(name), "{row:?}");
        assert!(row.trim_end().ends_with('%'), "{row:?}");
    }
    assert_eq!(rows.len(), PARAMS.len());
}

#[test]
fn help_of_every_subcommand() {
    let dir = common::tempdir();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--help"], &["fit", "simulate", "demo"]),
        (
            &["fit", "--help"],
            &[
                "--manifest",
                "--out",
                "--force",
                "--law",
                "--fix",
                "--loss",
                "--space",
                "--delta",
                "--starts",
                "--seed",
                "--min-tokens",
                "--max-tokens",
                "--stride",
                "--max-iter",
            ],
        ),
        (
            &["simulate", "--help"],
            &["--out", "--seed", "--points", "--noise", "--force"],
        ),
        (
            &["demo", "--help"],
            &["--seed", "--points", "--noise", "--out"],
        ),
    ];
    for (args, wanted) in cases {
        let run = sweepfit_in(dir.path(), args);
        run.assert_ok(&format!("{args:?}"));
        for w in wanted {
            assert!(
                run.stdout.contains(w),
                "{args:?} lacks {w}:\n{}",
                run.stdout
            );
        }
    }
}

// ------------------------------------------------------------------ simulate

#[test]
fn simulate_writes_csv_and_truth_and_refuses_to_overwrite() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let truth_path = dir.path().join("sim.csv.truth.json");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("run,N,T,tokens,loss,weight"));
    assert_eq!(lines.count(), 20 * 50);
    let truth = read_json(&truth_path);
    assert_eq!(truth["preset"], "looplm20");
    for p in PARAMS {
        num(&truth["params"][p], p);
    }
    assert_eq!(truth["options"]["seed"], 1);
    assert_eq!(truth["options"]["points_per_curve"], 50);

    // Again with another seed: refused, nothing touched.
    let truth_text = std::fs::read_to_string(&truth_path).unwrap();
    let run = sweepfit_in(
        dir.path(),
        &[
            "simulate",
            "--out",
            s(&csv),
            "--seed",
            "2",
            "--points",
            "50",
        ],
    );
    run.assert_failed("simulate onto an existing file");
    assert!(run.stderr.contains("--force"), "{}", run.dump());
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&truth_path).unwrap(), truth_text);

    // With --force: replaced (another seed gives other losses).
    let run = sweepfit_in(
        dir.path(),
        &[
            "simulate",
            "--out",
            s(&csv),
            "--seed",
            "2",
            "--points",
            "50",
            "--force",
        ],
    );
    run.assert_ok("simulate --force");
    let replaced = std::fs::read_to_string(&csv).unwrap();
    assert_ne!(replaced, text);
    assert_eq!(replaced.lines().count(), 1 + 20 * 50);
    assert_eq!(read_json(&truth_path)["options"]["seed"], 2);
}

// ----------------------------------------------------------------------- fit

#[test]
fn fit_writes_complete_fit_json_and_pred_csv() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let out = dir.path().join("out");
    let (run, fit) = fit_ok(dir.path(), &[s(&csv), "--starts", "32"], &out);
    assert!(run.stdout.contains("R²"), "{}", run.dump());

    assert_eq!(fit["law"], "looplm");
    let params = fit["params"].as_object().expect("params is an object");
    assert_eq!(params.len(), PARAMS.len());
    for p in PARAMS {
        assert!(num(&params[p], p).is_finite(), "{p}");
    }
    assert!(fixed_names(&fit).is_empty(), "{}", fit["fixed"]);

    let o = &fit["objective"];
    assert_eq!(o["loss"], "mse");
    assert_eq!(o["space"], "linear");
    num(&o["delta"], "delta");
    assert!(num(&o["value"], "objective value") >= 0.0);

    let m = &fit["metrics"];
    for k in ["r2", "rmse", "mae", "mape"] {
        num(&m[k], k);
    }
    let r2 = num(&m["r2"], "r2");
    assert!(r2 > 0.99, "R2 {r2} on noise sd 0.02");
    // What the noise allows: the RMSE of 1000 points with noise sd 0.02 is
    // 0.02 within about 2% (one sd of the sample's RMSE), a little less
    // for ten fitted parameters; a fit that misses the law by 0.005 RMS
    // leaves 3% more. (The data are fixed by the seed.)
    let rmse = num(&m["rmse"], "rmse");
    assert!(
        (rmse / 0.02 - 1.0).abs() < 0.03,
        "RMSE {rmse} on noise sd 0.02"
    );
    // Parameters within their standard errors: every one the report does
    // not flag lies within 3.5 SE of the truth (for ten independent normal
    // estimates, any beyond happens with probability 0.5%), and the
    // optimum converged. (On this sweep t1 ends on its bound 0, which
    // leaves A flagged: 100 ± 40 against a true 268.)
    let truth = read_json(&dir.path().join("sim.csv.truth.json"));
    let id = &fit["identifiability"];
    let flagged: Vec<&str> = id["flagged"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["param"].as_str().unwrap())
        .collect();
    let ses = id["standard_errors"].as_object().expect("standard errors");
    let judged: Vec<_> = ses
        .iter()
        .filter(|(name, _)| !flagged.contains(&name.as_str()))
        .collect();
    assert!(judged.len() >= 5, "{ses:?} {flagged:?}");
    for (name, se) in judged {
        let se = num(se, name);
        let (got, want) = (num(&params[name], name), num(&truth["params"][name], name));
        assert!(
            (got - want).abs() <= 3.5 * se,
            "{name} = {got}, truth {want}, SE {se}"
        );
    }
    assert_eq!(fit["polish"]["converged"], true, "{}", fit["polish"]);
    let per = m["per_curve"].as_array().expect("per_curve is an array");
    assert_eq!(per.len(), 20);
    for c in per {
        assert!(c["labels"]["run"].is_string(), "{c}");
        for k in ["N", "T"] {
            num(&c["at"][k], k);
        }
        for k in ["r2", "rmse", "mape"] {
            num(&c[k], k);
        }
        assert_eq!(c["points"], 50, "{c}");
    }

    let st = &fit["starts"];
    assert_eq!(st["count"], 32);
    let at_best = st["at_best"].as_u64().expect("at_best");
    assert!((1..=32).contains(&at_best), "{st}");
    let counts = st["status_counts"].as_object().expect("status_counts");
    let total: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 32, "{st}");

    // The default backend is auto: whichever it chose, it said so, and
    // fit.json records that choice (a GPU where the host has a hardware one).
    let chose_gpu = run.stderr.contains("backend auto: using the GPU");
    assert!(
        chose_gpu || run.stderr.contains("backend auto: using the CPU"),
        "auto said nothing of its choice:\n{}",
        run.dump()
    );
    assert_eq!(
        fit["backend"]["kind"],
        if chose_gpu { "gpu" } else { "cpu" }
    );
    assert!(fit["backend"]["device"].is_string());
    assert!(num(&fit["seconds"], "seconds") >= 0.0);
    assert_eq!(fit["points"], 1000);

    // pred.csv: the input's columns, then pred, residual = pred - loss
    // and the row's set, one row per point.
    let pred = std::fs::read_to_string(out.join("pred.csv")).unwrap();
    let mut lines = pred.lines();
    assert_eq!(
        lines.next(),
        Some("run,N,T,tokens,loss,weight,pred,residual,set")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1000);
    for r in &rows {
        assert_eq!(r.len(), 9, "{r:?}");
        let v: Vec<f64> = r[1..8].iter().map(|x| x.parse().unwrap()).collect();
        let (loss, pred, residual) = (v[3], v[5], v[6]);
        assert!((residual - (pred - loss)).abs() <= 1e-12 * loss.abs().max(1.0));
        assert_eq!(r[8], "fit");
    }
}

#[test]
fn fit_refuses_non_empty_out_dir_without_force() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("fit.json"), "old fit").unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();

    let run = sweepfit_in(
        dir.path(),
        &["fit", s(&csv), "--out", s(&out), "--starts", "4"],
    );
    run.assert_failed("fit into a non-empty --out");
    assert!(run.stderr.contains("--force"), "{}", run.dump());
    assert_eq!(
        std::fs::read_to_string(out.join("fit.json")).unwrap(),
        "old fit"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(!out.join("pred.csv").exists());

    // --force replaces fit.json and adds pred.csv, leaving other files.
    let (_, fit) = fit_ok(dir.path(), &[s(&csv), "--starts", "4", "--force"], &out);
    assert_eq!(fit["starts"]["count"], 4);
    assert!(out.join("pred.csv").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn chinchilla_law_fits_its_own_five_parameters() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let out = dir.path().join("out");
    let (_, fit) = fit_ok(
        dir.path(),
        &[
            s(&csv),
            "--law",
            "chinchilla",
            "--min-tokens",
            "1e8",
            "--starts",
            "32",
        ],
        &out,
    );
    assert_eq!(fit["law"], "chinchilla");
    // Chinchilla's own five parameters: no offsets, no T term.
    let names: Vec<&String> = fit["params"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["A", "B", "E", "alpha", "beta"]);
    for p in names {
        assert!(num(&fit["params"][p], p) > 0.0, "{p}");
    }
    assert!(fixed_names(&fit).is_empty(), "{}", fit["fixed"]);
    // The D = 0 point of every curve is gone.
    assert_eq!(fit["points"], 20 * 49);
    let pred = std::fs::read_to_string(out.join("pred.csv")).unwrap();
    for line in pred.lines().skip(1) {
        let tokens: f64 = line.split(',').nth(3).unwrap().parse().unwrap();
        assert!(tokens >= 1e8, "{line}");
    }
}

#[test]
fn fix_holds_a_parameter_and_unknown_names_are_refused() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let out = dir.path().join("out");
    let (_, fit) = fit_ok(
        dir.path(),
        &[s(&csv), "--fix", "t3=0.5", "--starts", "32"],
        &out,
    );
    assert_eq!(num(&fit["params"]["t3"], "t3"), 0.5);
    assert_eq!(fixed_names(&fit), ["t3"]);

    let run = sweepfit_in(
        dir.path(),
        &[
            "fit",
            s(&csv),
            "--out",
            s(&dir.path().join("out2")),
            "--fix",
            "foo=1",
        ],
    );
    run.assert_failed("--fix foo=1");
    assert!(run.stderr.contains("foo"), "{}", run.dump());
    for p in PARAMS {
        assert!(run.stderr.contains(p), "{p} not listed:\n{}", run.dump());
    }
}

#[test]
fn single_t_data_fixes_c_with_a_note() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    // Keep the T = 1 rows only.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let t_col = header.split(',').position(|c| c == "T").unwrap();
    let mut single = format!("{header}\n");
    for line in lines {
        let t: f64 = line.split(',').nth(t_col).unwrap().parse().unwrap();
        if t == 1.0 {
            single.push_str(line);
            single.push('\n');
        }
    }
    let t1 = dir.path().join("t1.csv");
    std::fs::write(&t1, single).unwrap();

    let out = dir.path().join("out");
    let (run, fit) = fit_ok(dir.path(), &[s(&t1), "--starts", "32"], &out);
    let note = run
        .stdout
        .lines()
        .find(|l| l.contains("T takes one value"))
        .unwrap_or_else(|| panic!("no note about the single T:\n{}", run.dump()));
    assert!(note.contains("C = 0"), "{note}");
    assert_eq!(num(&fit["params"]["C"], "C"), 0.0);
    assert!(fixed_names(&fit).iter().any(|f| f == "C"));
    assert_eq!(fit["metrics"]["per_curve"].as_array().unwrap().len(), 5);
    assert_eq!(fit["points"], 5 * 50);
    let notes = fit["notes"].as_array().expect("notes");
    assert!(notes
        .iter()
        .any(|n| n.as_str().unwrap().contains("T takes one value")));
}

#[test]
fn huber_loss_in_log_space() {
    let dir = common::tempdir();
    let csv = simulate(dir.path(), "sim.csv", 1, 50);
    let out = dir.path().join("out");
    let (_, fit) = fit_ok(
        dir.path(),
        &[
            s(&csv),
            "--space",
            "log",
            "--loss",
            "huber",
            "--delta",
            "1e-3",
            "--starts",
            "32",
        ],
        &out,
    );
    let o = &fit["objective"];
    assert_eq!(o["loss"], "huber");
    assert_eq!(o["space"], "log");
    assert_eq!(num(&o["delta"], "delta"), 1e-3);
    // 1,000 points of noise sd 0.02: an RMSE of 0.02 within 2.2% (one sd);
    // Huber on the log weighs the points a little differently, so 3 sd.
    let rmse = num(&fit["metrics"]["rmse"], "rmse");
    assert!(
        (rmse / 0.02 - 1.0).abs() < 0.066,
        "RMSE {rmse} on noise sd 0.02"
    );
}

// --------------------------------------------------------------- bad input

#[test]
fn bad_input_errors_name_file_line_and_column() {
    let dir = common::tempdir();

    let text_loss = dir.path().join("textloss.csv");
    std::fs::write(
        &text_loss,
        "run,N,T,tokens,loss\na,1e8,1,1e9,3.5\na,1e8,1,2e9,abc\n",
    )
    .unwrap();
    let run = sweepfit_in(
        dir.path(),
        &["fit", s(&text_loss), "--out", s(&dir.path().join("o1"))],
    );
    run.assert_failed("text in the loss column");
    let msg = &run.stderr;
    for part in ["textloss.csv", ":3:", "'loss'", "(5)", "abc"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }

    let no_tokens = dir.path().join("notokens.csv");
    std::fs::write(&no_tokens, "run,N,T,steps,loss\na,1e8,1,1e9,3.5\n").unwrap();
    let run = sweepfit_in(
        dir.path(),
        &["fit", s(&no_tokens), "--out", s(&dir.path().join("o2"))],
    );
    run.assert_failed("missing tokens column");
    let msg = &run.stderr;
    for part in ["notokens.csv", ":1:", "tokens", "steps", "loss"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    assert!(msg.contains("columns found"), "{msg}");
}

// -------------------------------------------------------- real Pythia logs

#[test]
fn manifest_fit_of_pythia_logs() {
    let data = common::shared_data();
    let pythia = data.join("pythia").canonicalize().unwrap();
    let dir = common::tempdir();
    // The 410m log is a resumed run whose rows count from 0: its first row
    // is step 35,000.
    let mut manifest = String::from("file,N,T,tokens_per_step,step_col,loss_col,step_offset\n");
    for (file, n, offset) in [
        ("pythia-14m-1.csv", 14067712u64, 0),
        ("pythia-70m-0.csv", 70426624, 0),
        ("pythia-160m-0.csv", 162322944, 0),
        ("pythia-410m-0.csv", 405334016, 35000),
    ] {
        let path = pythia.join(file);
        manifest.push_str(&format!(
            "{},{n},1,2097152,step,train/lm_loss,{offset}\n",
            s(&path)
        ));
    }
    let mpath = dir.path().join("manifest.csv");
    std::fs::write(&mpath, manifest).unwrap();

    let out = dir.path().join("out");
    let (run, fit) = fit_ok(
        dir.path(),
        &["--manifest", s(&mpath), "--stride", "50"],
        &out,
    );
    let r2 = num(&fit["metrics"]["r2"], "r2");
    assert!(r2 >= 0.90, "Pythia R2 {r2}:\n{}", run.dump());
    let per = fit["metrics"]["per_curve"].as_array().unwrap();
    assert_eq!(per.len(), 4);
    assert_eq!(num(&fit["params"]["C"], "C"), 0.0);
    assert!(fixed_names(&fit).iter().any(|f| f == "C"));
    let runs: Vec<&str> = per
        .iter()
        .map(|c| c["labels"]["run"].as_str().unwrap())
        .collect();
    assert_eq!(
        runs,
        [
            "pythia-14m-1",
            "pythia-70m-0",
            "pythia-160m-0",
            "pythia-410m-0"
        ]
    );
    // Every curve is fitted, the resumed one at its true tokens: read from
    // row 0 it sat 35,000 steps early and the law missed it badly.
    for c in per {
        let rmse = num(&c["rmse"], "rmse");
        assert!(rmse < 0.1, "{}: RMSE {rmse}", c["labels"]["run"]);
    }
    assert_eq!(num(&per[3]["axis"][0], "axis start"), 35000.0 * 2097152.0);
}

/// The README's Pythia fit reaches the optimum the scipy L-BFGS-B peer
/// found from the same starts (BENCHMARKS.md: 1.8046948745e-3, both tools
/// agreeing to 1.2e-16).
#[test]
fn the_readme_pythia_fit_reaches_the_scipy_peers_optimum() {
    common::shared_data();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::tempdir();
    let out = dir.path().join("out");
    let manifest = root.join("benches/pythia_manifest.csv");
    let (run, fit) = fit_ok(
        dir.path(),
        &[
            "--manifest",
            s(&manifest),
            "--stride",
            "5",
            "--starts",
            "128",
            "--seed",
            "0",
            "--backend",
            "cpu",
        ],
        &out,
    );
    let f = num(&fit["objective"]["value"], "objective");
    let peer = 1.8046948745e-3;
    assert!(
        (f - peer).abs() <= 1e-9 * peer,
        "best objective {f}, the scipy peer's {peer}:\n{}",
        run.dump()
    );
    assert_eq!(fit["points"], 107_400);
}

#[test]
fn a_missing_file_is_named_with_its_cause_once() {
    let dir = common::tempdir();
    let run = sweepfit_in(dir.path(), &["fit", "nope.csv"]);
    run.assert_failed("fit of a missing file");
    assert!(
        run.stderr.contains("nope.csv: cannot open"),
        "{}",
        run.dump()
    );
    assert_eq!(
        run.stderr.matches("No such file").count(),
        1,
        "the cause is said once:\n{}",
        run.dump()
    );
}

#[test]
fn starts_and_seed_reproduce_a_fit_and_another_seed_draws_other_starts() {
    let dir = common::tempdir();
    let data = simulate(dir.path(), "sweep.csv", 2, 60);
    let fit = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let args = [
            s(&data),
            "--starts",
            "24",
            "--seed",
            seed,
            "--backend",
            "cpu",
            "--save-starts",
        ];
        let (_, fit) = fit_ok(dir.path(), &args, &out);
        let starts = std::fs::read_to_string(out.join("starts.csv")).unwrap();
        (fit, starts)
    };
    let (a, starts_a) = fit("3", "a");
    let (b, starts_b) = fit("3", "b");
    let (_, starts_c) = fit("4", "c");
    // The same starts and the same parameters, to the last bit.
    assert_eq!(starts_a, starts_b);
    assert_eq!(starts_a.lines().count(), 25, "a header and 24 starts");
    for p in PARAMS {
        assert_eq!(
            num(&a["params"][p], p).to_bits(),
            num(&b["params"][p], p).to_bits(),
            "{p}"
        );
    }
    assert_eq!(a["objective"]["value"], b["objective"]["value"]);
    // Another seed, other starts.
    assert_ne!(starts_a, starts_c);
}
