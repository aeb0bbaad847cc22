//! Data ingest: long CSV and manifest readers, their error messages, the
//! long CSV writer and point filters.

use std::path::{Path, PathBuf};
use sweepfit::data::{
    read_long_csv, read_manifest, write_long_csv, DataError, Dataset, Filter, ReadOptions, Row,
};
use tempfile::TempDir;

mod common;
use common::shared_data;

const LOG: ReadOptions = ReadOptions {
    positive_loss: true,
};
const RAW: ReadOptions = ReadOptions {
    positive_loss: false,
};

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The error message of reading `text` as `data.csv`.
fn long_err(text: &str, opts: &ReadOptions) -> String {
    let dir = common::tempdir();
    let path = write(&dir, "data.csv", text);
    match read_long_csv(&path, opts) {
        Ok(ds) => panic!("expected an error, read {} points", ds.points()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("data.csv"), "message names no file: {msg}");
            msg
        }
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} lacks {p:?}");
    }
}

const HEAD: &str = "run,N,T,tokens,loss,weight\n";

fn with_rows(rows: &[&str]) -> String {
    let mut s = HEAD.to_string();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

const GOOD: &str = "a,1e6,1,100,3.5,1";

// ---- long CSV errors ----

#[test]
fn missing_file() {
    let dir = common::tempdir();
    let err = read_long_csv(&dir.path().join("nope.csv"), &LOG).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert_has(&err.to_string(), &["nope.csv", "cannot open"]);
}

#[test]
fn empty_and_header_only() {
    assert_has(&long_err("", &LOG), &["empty file"]);
    assert_has(&long_err(HEAD, &LOG), &["no data rows"]);
}

#[test]
fn missing_required_columns() {
    let msg = long_err("run,tokens,loss\na,1,2\n", &LOG);
    assert_has(
        &msg,
        &[
            "data.csv:1:",
            "'N'",
            "columns found: 'run', 'tokens', 'loss'",
        ],
    );
    let msg = long_err("N,loss\n1,2\n", &LOG);
    assert_has(&msg, &["'tokens' (or 'D')", "'N', 'loss'"]);
    assert_has(&long_err("N,D\n1,2\n", &LOG), &["'loss'"]);
}

#[test]
fn duplicate_columns() {
    let msg = long_err("N,tokens,loss,D\n1,2,3,4\n", &LOG);
    assert_has(&msg, &["data.csv:1:", "'tokens' (2)", "'D' (4)"]);
    assert_has(
        &long_err("N,n,tokens,loss\n1,1,2,3\n", &LOG),
        &["'N' (1)", "'n' (2)"],
    );
}

#[test]
fn text_where_a_number_belongs() {
    let msg = long_err(&with_rows(&[GOOD, "a,1e6,1,200,abc,1"]), &LOG);
    assert_eq!(
        msg.rsplit('/').next().unwrap(),
        "data.csv:3: column 'loss' (5): expected a number, found \"abc\""
    );
    assert_has(
        &long_err(&with_rows(&["a,1_000,1,200,3,1"]), &LOG),
        &["data.csv:2:", "column 'N' (2)", "\"1_000\""],
    );
    assert_has(
        &long_err(&with_rows(&["a,1,1,,3,1"]), &LOG),
        &["data.csv:2:", "column 'tokens' (4)", "empty field"],
    );
}

#[test]
fn nan_and_infinity_rejected() {
    for (row, col, what) in [
        ("a,1,1,nan,3,1", "column 'tokens' (4)", "NaN"),
        ("a,1,1,1,NaN,1", "column 'loss' (5)", "NaN"),
        ("a,inf,1,1,3,1", "column 'N' (2)", "infinite"),
        ("a,1,1,1,3,-infinity", "column 'weight' (6)", "infinite"),
    ] {
        let msg = long_err(&with_rows(&[GOOD, row]), &RAW);
        assert_has(&msg, &["data.csv:3:", col, what]);
    }
}

#[test]
fn out_of_range_values() {
    for (row, col, what) in [
        ("a,0,1,1,3,1", "column 'N' (2)", "must be > 0, found 0"),
        ("a,-5,1,1,3,1", "column 'N' (2)", "must be > 0, found -5"),
        ("a,1,0,1,3,1", "column 'T' (3)", "must be > 0, found 0"),
        (
            "a,1,1,-1,3,1",
            "column 'tokens' (4)",
            "must be >= 0, found -1",
        ),
        (
            "a,1,1,1,3,-0.5",
            "column 'weight' (6)",
            "must be >= 0, found -0.5",
        ),
    ] {
        let msg = long_err(&with_rows(&[GOOD, GOOD, row]), &RAW);
        assert_has(&msg, &["data.csv:4:", col, what]);
    }
}

#[test]
fn nonpositive_loss_only_rejected_in_log_space() {
    let text = with_rows(&[GOOD, "a,1e6,1,200,0,1"]);
    let msg = long_err(&text, &LOG);
    assert_has(&msg, &["data.csv:3:", "column 'loss' (5)", "log space"]);

    let dir = common::tempdir();
    let ds = read_long_csv(&write(&dir, "d.csv", &text), &RAW).unwrap();
    assert_eq!(ds.loss, vec![3.5, 0.0]);
}

#[test]
fn all_weights_zero() {
    let msg = long_err(&with_rows(&["a,1,1,1,3,0", "a,1,1,2,3,0"]), &LOG);
    assert_has(&msg, &["all weights are zero"]);
}

#[test]
fn ragged_rows() {
    let msg = long_err(&with_rows(&[GOOD, GOOD, "a,1,1,1,3"]), &LOG);
    assert_has(&msg, &["data.csv:4:", "expected 6 fields", "found 5"]);
    let msg = long_err(&with_rows(&[GOOD, "a,1,1,1,3,1,9"]), &LOG);
    assert_has(&msg, &["data.csv:3:", "found 7"]);
}

// ---- long CSV reading ----

#[test]
fn flexible_header_defaults_and_grouping() {
    let dir = common::tempdir();
    // BOM, mixed case, alias D, extra column, no run/T/weight, spaces.
    let text = "\u{feff}n , d ,note, LOSS\n\
                2e6, 300, x, 2.5\n\
                1e6, 100, y, 3.0\n\
                2e6, 100, z, 2.9\n\
                1e6, 1.5e2, w, 2.8\n\
                2e6, 100, v, 2.7\n";
    let ds = read_long_csv(&write(&dir, "d.csv", text), &LOG).unwrap();
    // Curves in order of first appearance; sorted by tokens; the duplicate
    // point (2e6, 100) is kept in file order.
    assert_eq!(ds.configs.len(), 2);
    assert_eq!((ds.configs[0].n, ds.configs[0].t), (2e6, 1.0));
    assert_eq!(ds.configs[0].run, "");
    assert_eq!(ds.configs[1].n, 1e6);
    assert_eq!(ds.tokens, vec![100.0, 100.0, 300.0, 100.0, 150.0]);
    assert_eq!(ds.loss, vec![2.9, 2.7, 2.5, 3.0, 2.8]);
    assert_eq!(ds.weight, vec![1.0; 5]);
}

#[test]
fn curves_keyed_by_run_n_and_t() {
    let dir = common::tempdir();
    let text = with_rows(&["a,1,1,1,3,1", "b,1,1,1,3,1", "a,1,2,1,3,1", "a,1,1,2,3,0"]);
    let ds = read_long_csv(&write(&dir, "d.csv", &text), &LOG).unwrap();
    let keys: Vec<_> = ds
        .configs
        .iter()
        .map(|c| (c.run.as_str(), c.t, c.len))
        .collect();
    assert_eq!(keys, vec![("a", 1.0, 2), ("b", 1.0, 1), ("a", 2.0, 1)]);
    assert_eq!(ds.weight, vec![1.0, 0.0, 1.0, 1.0]);
}

#[test]
fn long_csv_round_trip() {
    let row = |run: &str, n: f64, t: f64, tokens: f64, loss: f64, weight: f64| Row {
        run: run.into(),
        n,
        t,
        tokens,
        loss,
        weight,
    };
    let ds = Dataset::from_rows(vec![
        row("plain", 1.4067712e7, 1.0, 2097152.0 * 3.0, 0.1 + 0.2, 1.0),
        row("has, \"quotes\"", 1e-300, 0.5, 1.36e9, 1.0 / 3.0, 0.25),
        row("plain", 1.4067712e7, 1.0, 0.0, 11.013898849487305, 0.0),
        row("", 123456789.0, 4.0, 1e20, f64::MIN_POSITIVE, 2.0),
        row("plain", 1.4067712e7, 1.0, 0.0, 7.0, 1.0),
    ]);
    let dir = common::tempdir();
    let path = dir.path().join("round.csv");
    write_long_csv(&path, &ds).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("run,N,T,tokens,loss,weight\n"));
    let back = read_long_csv(&path, &LOG).unwrap();
    assert_eq!(back, ds);
    // Bit-exact, not just equal.
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.loss), bits(&ds.loss));
}

// ---- filters ----

fn sweep() -> Dataset {
    let rows = (0..3)
        .flat_map(|c| {
            (0..10).map(move |i| Row {
                run: format!("r{c}"),
                n: 1e6 * (c + 1) as f64,
                t: 1.0,
                tokens: (c * 100 + i * 10) as f64,
                loss: 5.0 - i as f64 * 0.1,
                weight: 1.0,
            })
        })
        .collect();
    Dataset::from_rows(rows)
}

#[test]
fn filters_keep_expected_points() {
    let ds = sweep();
    assert_eq!(Filter::default().apply(&ds), ds);

    let stride = Filter {
        stride: 4,
        ..Filter::default()
    }
    .apply(&ds);
    assert_eq!(stride.configs.len(), 3);
    assert_eq!(&stride.tokens[..3], &[0.0, 40.0, 80.0]);
    assert_eq!(stride.points(), 9);
    assert_eq!(stride.configs[1].start, 3);

    // Inclusive bounds; curve r0 (tokens 0..90) keeps nothing and is
    // dropped, r2 keeps only its first point 200.
    let bounds = Filter {
        min_tokens: Some(100.0),
        max_tokens: Some(200.0),
        stride: 1,
    }
    .apply(&ds);
    let runs: Vec<_> = bounds.configs.iter().map(|c| c.run.as_str()).collect();
    assert_eq!(runs, vec!["r1", "r2"]);
    assert_eq!(bounds.tokens.len(), 11);
    assert_eq!(bounds.tokens[0], 100.0);
    assert_eq!(bounds.tokens[10], 200.0);

    let both = Filter {
        min_tokens: Some(115.0),
        max_tokens: None,
        stride: 3,
    }
    .apply(&ds);
    assert_eq!(&both.tokens[..3], &[120.0, 150.0, 180.0]);
    assert_eq!(&both.tokens[3..], &[200.0, 230.0, 260.0, 290.0]);
    assert_eq!(both.loss[0], ds.loss[12]);

    assert_eq!(
        Filter {
            min_tokens: Some(1e9),
            ..Filter::default()
        }
        .apply(&ds),
        Dataset::default()
    );
}

// ---- manifests ----

/// Write a manifest through the csv writer, so that any path is quoted.
fn write_manifest(dir: &TempDir, header: &[&str], rows: &[Vec<String>]) -> PathBuf {
    let path = dir.path().join("manifest.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    path
}

fn manifest_err(dir: &TempDir, header: &[&str], rows: &[Vec<String>]) -> String {
    let path = write_manifest(dir, header, rows);
    read_manifest(&path, &LOG).unwrap_err().to_string()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const MHEAD: &[&str] = &["file", "N", "T", "tokens_per_step", "step_col", "loss_col"];

fn abs(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn manifest_over_pythia() {
    let data = shared_data();
    let files = [
        ("pythia-14m-1.csv", 14067712.0, 143000),
        ("pythia-70m-0.csv", 70426624.0, 143000),
        ("pythia-160m-0.csv", 162322944.0, 143000),
        ("pythia-410m-0.csv", 405334016.0, 108000),
    ];
    let dir = common::tempdir();
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|(f, n, _)| {
            vec![
                abs(&data.join("pythia").join(f)),
                n.to_string(),
                "1".into(),
                "2097152".into(),
                "step".into(),
                "train/lm_loss".into(),
            ]
        })
        .collect();
    let path = write_manifest(&dir, MHEAD, &rows);
    let start = std::time::Instant::now();
    let ds = read_manifest(&path, &LOG).unwrap();
    eprintln!("read 4 pythia logs in {:?}", start.elapsed());

    assert_eq!(ds.configs.len(), 4);
    assert_eq!(ds.points(), 143000 * 3 + 108000);
    for (c, (f, n, len)) in ds.configs.iter().zip(files) {
        assert_eq!(c.run, f.trim_end_matches(".csv"));
        assert_eq!((c.n, c.t, c.len), (n, 1.0, len));
        let tokens = &ds.tokens[c.range()];
        for (step, d) in tokens.iter().enumerate() {
            assert_eq!(*d, step as f64 * 2097152.0);
        }
    }
    assert_eq!(ds.loss[0], 11.013898849487305);
    assert!(ds.weight.iter().all(|&w| w == 1.0));
}

#[test]
fn manifest_over_multipower() {
    let data = shared_data();
    let dir = common::tempdir();
    let rows: Vec<Vec<String>> = [("25", 25e6), ("100", 100e6), ("400", 400e6)]
        .iter()
        .map(|(size, n)| {
            let file = data
                .join("multipower")
                .join(size)
                .join("constant_24000.csv");
            vec![
                format!("{size}M"),
                abs(&file),
                n.to_string(),
                "1".into(),
                "STEP".into(),
                "loss".into(),
            ]
        })
        .collect();
    let header = [
        "run",
        "file",
        "N",
        "tokens_per_step",
        "step_col",
        "loss_col",
    ];
    let ds = read_manifest(&write_manifest(&dir, &header, &rows), &LOG).unwrap();
    assert_eq!(ds.distinct_n(), vec![25e6, 100e6, 400e6]);
    let runs: Vec<_> = ds.configs.iter().map(|c| c.run.as_str()).collect();
    assert_eq!(runs, vec!["25M", "100M", "400M"]);
    for c in &ds.configs {
        assert!(c.len > 100);
        assert_eq!(ds.tokens[c.start], 2176.0);
        assert!(ds.tokens[c.range()].windows(2).all(|w| w[0] < w[1]));
    }
    assert_eq!(ds.loss[0], 4.101);
}

#[test]
fn manifest_relative_paths_shared_logs_and_sorting() {
    let dir = common::tempdir();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    // Unsorted steps, a blank loss cell and two loss columns in one log.
    write(
        &dir,
        "logs/run1.csv",
        "Step,train_loss,val_loss\n20,2.0,2.5\n10,3.0,\n30,1.5,1.9\n",
    );
    let rows = vec![
        strs(&["logs/run1.csv", "100", "10", "step", "train_loss"]),
        strs(&["logs/run1.csv", "100", "10", "Step", "VAL_LOSS", "val"]),
        strs(&["logs/run1.csv", "200", "5", "step", "train_loss", ""]),
    ];
    let mut rows = rows;
    rows[0].push("train".into());
    let header = [
        "file",
        "n",
        "Tokens_Per_Step",
        "Step_Col",
        "Loss_Col",
        "run",
    ];
    let ds = read_manifest(&write_manifest(&dir, &header, &rows), &LOG).unwrap();
    let runs: Vec<_> = ds.configs.iter().map(|c| c.run.as_str()).collect();
    assert_eq!(runs, vec!["train", "val", "run1"]);
    assert_eq!(
        ds.tokens,
        vec![100.0, 200.0, 300.0, 200.0, 300.0, 50.0, 100.0, 150.0]
    );
    assert_eq!(ds.loss, vec![3.0, 2.0, 1.5, 2.5, 1.9, 3.0, 2.0, 1.5]);
    assert_eq!(ds.configs[1].start, 3);
}

#[test]
fn manifest_default_run_is_file_stem() {
    let dir = common::tempdir();
    write(&dir, "my-run.csv", "step,loss\n1,2\n");
    let rows = vec![strs(&["my-run.csv", "1e6", "2", "4", "step", "loss"])];
    let ds = read_manifest(&write_manifest(&dir, MHEAD, &rows), &LOG).unwrap();
    assert_eq!(ds.configs[0].run, "my-run");
    assert_eq!((ds.configs[0].t, ds.tokens[0]), (2.0, 4.0));
}

#[test]
fn manifest_errors() {
    let dir = common::tempdir();
    write(&dir, "ok.csv", "step,loss\n1,2\n2,1.5\n");
    write(&dir, "bad.csv", "step,loss\n1,2\n2,oops\n");
    write(&dir, "neg.csv", "step,loss\n1,2\n2,-1\n");
    write(&dir, "blank.csv", "step,loss\n1,\n2,\n");
    let ok = |more: &[&str]| {
        let mut r = strs(&["ok.csv", "1e6", "1", "8", "step", "loss"]);
        for (i, v) in more.iter().enumerate() {
            if !v.is_empty() {
                r[i] = v.to_string();
            }
        }
        r
    };

    let msg = manifest_err(&dir, MHEAD, &[ok(&[]), ok(&["gone.csv"])]);
    assert_has(&msg, &["manifest.csv:3:", "log file not found", "gone.csv"]);
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let msg = manifest_err(&dir, MHEAD, &[ok(&[]), ok(&["logs", "2e6"])]);
    assert_has(
        &msg,
        &["manifest.csv:3:", "logs is a directory, not a log file"],
    );

    let msg = manifest_err(&dir, MHEAD, &[ok(&["", "", "", "", "", "lss"])]);
    assert_has(
        &msg,
        &[
            "manifest.csv:2:",
            "loss_col 'lss'",
            "ok.csv",
            "'step', 'loss'",
        ],
    );
    let msg = manifest_err(&dir, MHEAD, &[ok(&["", "", "", "", "iter"])]);
    assert_has(&msg, &["step_col 'iter'", "ok.csv"]);

    let msg = manifest_err(&dir, MHEAD, &[ok(&["bad.csv"])]);
    assert_has(
        &msg,
        &[
            "bad.csv:3:",
            "column 'loss' (2)",
            "expected a number, found \"oops\"",
        ],
    );
    assert!(!msg.contains("manifest.csv"), "{msg}");

    let msg = manifest_err(&dir, MHEAD, &[ok(&["neg.csv"])]);
    assert_has(&msg, &["neg.csv:3:", "column 'loss' (2)", "log space"]);

    let msg = manifest_err(&dir, MHEAD, &[ok(&["blank.csv"])]);
    assert_has(&msg, &["blank.csv", "column 'loss' (2) has no values"]);

    let msg = manifest_err(&dir, MHEAD, &[ok(&["", "0"])]);
    assert_has(&msg, &["manifest.csv:2:", "column 'N' (2)", "must be > 0"]);
    let msg = manifest_err(&dir, MHEAD, &[ok(&["", "", "nan"])]);
    assert_has(&msg, &["manifest.csv:2:", "column 'T' (3)", "NaN"]);
    let msg = manifest_err(&dir, MHEAD, &[ok(&["", "", "", "-8"])]);
    assert_has(&msg, &["column 'tokens_per_step' (4)", "must be > 0"]);

    let msg = manifest_err(&dir, MHEAD, &[ok(&[]), ok(&["", "", "", "4"])]);
    assert_has(&msg, &["manifest.csv:3:", "same run, N and T as line 2"]);

    let msg = manifest_err(&dir, &MHEAD[1..], &[ok(&[])[1..].to_vec()]);
    assert_has(&msg, &["manifest.csv:1:", "missing required column 'file'"]);

    let path = write(&dir, "m2.csv", "file,N,tokens_per_step,step_col,loss_col\n");
    let msg = read_manifest(&path, &LOG).unwrap_err().to_string();
    assert_has(&msg, &["m2.csv", "no data rows"]);

    write(&dir, "short.csv", "step,loss\n1,2\n2\n");
    let msg = manifest_err(&dir, MHEAD, &[ok(&["short.csv"])]);
    assert_has(&msg, &["short.csv:3:", "expected 2 fields"]);
}

#[test]
fn other_error_is_plain() {
    let e = DataError::Other("no points left after filters".into());
    assert_eq!(e.to_string(), "no points left after filters");
}
