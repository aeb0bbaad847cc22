//! Per-run logs read as trackers write them: step offsets of resumed runs,
//! empty and non-finite loss cells, re-logged steps, the notes that report
//! them (down to fit.json), and run labels that are not UTF-8.

use std::path::{Path, PathBuf};
use sweepfit::data::{read_long_csv, read_manifest, Dataset, Filter, ReadOptions};

mod common;
use common::shared_data;

const LOG: ReadOptions = ReadOptions {
    positive_loss: true,
};

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read(manifest: &Path) -> Dataset {
    read_manifest(manifest, &LOG).unwrap_or_else(|e| panic!("{e}"))
}

fn manifest_err(manifest: &Path) -> String {
    match read_manifest(manifest, &LOG) {
        Ok(ds) => panic!("expected an error, read {} points", ds.points()),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} lacks {p:?}");
    }
}

/// The tokens and losses of curve `c`.
fn curve(ds: &Dataset, c: usize) -> (Vec<f64>, Vec<f64>) {
    let r = ds.configs[c].range();
    (ds.tokens[r.clone()].to_vec(), ds.loss[r].to_vec())
}

// ---- step_offset ----

#[test]
fn step_offset_shifts_steps_per_row() {
    let dir = common::tempdir();
    let d = dir.path();
    write(d, "a.csv", "step,loss\n0,3.0\n1,2.5\n2,2.0\n");
    write(d, "b.csv", "step,loss\n0,4.0\n5,3.5\n");
    // The same log read twice with different offsets; a blank offset is 0.
    let m = write(
        d,
        "m.csv",
        "run,file,N,tokens_per_step,step_col,loss_col,Step_Offset\n\
         resumed,a.csv,1e6,4,step,loss,10\n\
         plain,a.csv,2e6,4,step,loss,\n\
         ,b.csv,3e6,2,step,loss,0\n",
    );
    let ds = read(&m);
    assert_eq!(curve(&ds, 0), (vec![40.0, 44.0, 48.0], vec![3.0, 2.5, 2.0]));
    assert_eq!(curve(&ds, 1), (vec![0.0, 4.0, 8.0], vec![3.0, 2.5, 2.0]));
    assert_eq!(curve(&ds, 2), (vec![0.0, 10.0], vec![4.0, 3.5]));
    assert_eq!(ds.configs[2].run, "b");
}

#[test]
fn step_offset_bad_values_name_manifest_line_and_column() {
    let dir = common::tempdir();
    let d = dir.path();
    write(d, "a.csv", "step,loss\n3,3.0\n4,2.5\n");
    let head = "file,N,tokens_per_step,step_col,loss_col,step_offset\n";
    let ok = "a.csv,1e6,4,step,loss,0\n";
    for (cell, problem) in [
        ("x1", "expected a number, found \"x1\""),
        ("nan", "NaN is not allowed"),
        ("inf", "infinite values are not allowed"),
        ("-Infinity", "infinite values are not allowed"),
    ] {
        let m = write(
            d,
            "m.csv",
            format!("{head}{ok}a.csv,2e6,4,step,loss,{cell}\n"),
        );
        let msg = manifest_err(&m);
        assert_has(&msg, &["m.csv:3: column 'step_offset' (6): ", problem]);
    }

    // -3 takes the first step (3) to 0: allowed. -3.5 makes it negative.
    let m = write(d, "m.csv", format!("{head}a.csv,1e6,4,step,loss,-3\n"));
    assert_eq!(read(&m).tokens, vec![0.0, 4.0]);
    let m = write(
        d,
        "m.csv",
        format!("{head}{ok}a.csv,2e6,4,step,loss,-3.5\n"),
    );
    let msg = manifest_err(&m);
    let log = d.join("a.csv");
    assert_eq!(
        msg,
        format!(
            "{}:3: column 'step_offset' (6): step 3 at {}:2 plus step_offset -3.5 is negative (-0.5)",
            m.display(),
            log.display()
        )
    );
}

#[test]
fn bench_pythia_manifest_puts_the_resumed_410m_run_at_its_true_steps() {
    shared_data();
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pythia_manifest.csv");
    let ds = read(&m);
    const TPS: f64 = 2097152.0;
    let runs: Vec<&str> = ds.configs.iter().map(|c| c.run.as_str()).collect();
    assert_eq!(
        runs,
        [
            "pythia-14m-1",
            "pythia-70m-0",
            "pythia-160m-0",
            "pythia-410m-0"
        ]
    );
    // Every run ends at step 142,999; only the 410m log starts late, at
    // step 35,000 (its row 0, loss 2.287).
    for (c, first_step) in ds.configs.iter().zip([0.0, 0.0, 0.0, 35000.0]) {
        let tokens = &ds.tokens[c.range()];
        assert_eq!(tokens[0], first_step * TPS, "{}", c.run);
        assert_eq!(*tokens.last().unwrap(), 142999.0 * TPS, "{}", c.run);
        assert_eq!(tokens.len() as f64, 143000.0 - first_step, "{}", c.run);
    }
    assert_eq!(ds.loss[ds.configs[3].start], 2.2874419689178467);
    assert!(ds.notes.is_empty(), "{:?}", ds.notes);
}

// ---- empty and non-finite loss cells ----

#[test]
fn non_finite_and_empty_losses_in_logs_are_skipped_with_one_note() {
    let dir = common::tempdir();
    let d = dir.path();
    let log = write(
        d,
        "logs/x.csv",
        "step,train/lm_loss\n\
         0,4.0\n\
         1,nan\n\
         2,3.0\n\
         3,\n\
         4,NaN\n\
         5,inf\n\
         6,-inf\n\
         7,Infinity\n\
         8,-Infinity\n\
         9,+inf\n\
         10,2.0\n",
    );
    let m = write(
        d,
        "m.csv",
        "file,N,tokens_per_step,step_col,loss_col\nlogs/x.csv,1e6,1,step,train/lm_loss\n",
    );
    let ds = read(&m);
    assert_eq!(ds.tokens, vec![0.0, 2.0, 10.0]);
    assert_eq!(ds.loss, vec![4.0, 3.0, 2.0]);
    assert_eq!(
        ds.notes,
        vec![format!(
            "{}: skipped 8 rows whose train/lm_loss is empty or not finite (first at line 3)",
            log.display()
        )]
    );
}

#[test]
fn one_skipped_row_and_notes_per_log_and_loss_column() {
    let dir = common::tempdir();
    let d = dir.path();
    let a = write(d, "a.csv", "step,train,val\n0,3,\n1,2,2.5\n2,nan,\n");
    let b = write(d, "b.csv", "step,loss\n0,3\n1,2\n");
    let m = write(
        d,
        "m.csv",
        "run,file,N,tokens_per_step,step_col,loss_col\n\
         t,a.csv,1,1,step,train\n\
         v,a.csv,1,1,step,val\n\
         clean,b.csv,1,1,step,loss\n\
         t2,a.csv,2,1,step,train\n",
    );
    let ds = read(&m);
    assert_eq!(
        ds.notes,
        vec![
            format!(
                "{}: skipped 1 row whose train is empty or not finite (first at line 4)",
                a.display()
            ),
            format!(
                "{}: skipped 2 rows whose val is empty or not finite (first at line 2)",
                a.display()
            ),
        ]
    );
    assert!(!ds.notes.iter().any(|n| n.contains(&*b.to_string_lossy())));
    assert_eq!(curve(&ds, 1), (vec![1.0], vec![2.5]));
}

#[test]
fn bad_cells_in_logs_stay_errors() {
    let dir = common::tempdir();
    let d = dir.path();
    let head = "file,N,tokens_per_step,step_col,loss_col\n";
    for (log, parts) in [
        // A step that is empty or not a number, where the loss is fine.
        (
            "step,loss\n0,3\n,2\n",
            &["x.csv:3: column 'step' (1)", "empty field"][..],
        ),
        (
            "step,loss\n0,3\nten,2\n",
            &["x.csv:3: column 'step' (1)", "found \"ten\""],
        ),
        (
            "step,loss\n0,3\nnan,2\n",
            &["x.csv:3: column 'step' (1)", "NaN is not allowed"],
        ),
        (
            "step,loss\n0,3\n1,NA\n",
            &["x.csv:3: column 'loss' (2)", "found \"NA\""],
        ),
        // Non-finite values are skipped before the log-space check.
        (
            "step,loss\n0,3\n1,-2\n",
            &["x.csv:3: column 'loss' (2)", "log space"],
        ),
        (
            "step,loss\n0,nan\n1,\n2,-inf\n",
            &["x.csv: column 'loss' (2) has no values (every cell is empty or not finite)"],
        ),
    ] {
        write(d, "x.csv", log);
        let m = write(d, "m.csv", format!("{head}x.csv,1,1,step,loss\n"));
        assert_has(&manifest_err(&m), parts);
    }
}

#[test]
fn long_csv_still_rejects_empty_and_non_finite_losses() {
    let dir = common::tempdir();
    for (cell, problem) in [
        ("nan", "NaN is not allowed"),
        ("Infinity", "infinite values are not allowed"),
        ("-inf", "infinite values are not allowed"),
        ("", "empty field"),
    ] {
        let path = write(
            dir.path(),
            "data.csv",
            format!("run,N,tokens,loss\na,1,1,3\na,1,2,{cell}\n"),
        );
        let msg = read_long_csv(&path, &LOG).unwrap_err().to_string();
        assert_has(&msg, &["data.csv:3: column 'loss' (4)", problem]);
    }
}

// ---- re-logged steps ----

#[test]
fn relogged_steps_keep_the_last_value() {
    let dir = common::tempdir();
    let d = dir.path();
    // A restart from step 1 re-logs steps 1 and 2; step 4 is logged three
    // times out of order.
    let log = write(
        d,
        "r.csv",
        "step,loss\n0,5\n1,4\n2,3\n3,2.9\n1,4.1\n2,3.1\n4,2\n4,2.2\n4,2.1\n",
    );
    let m = write(
        d,
        "m.csv",
        "file,N,tokens_per_step,step_col,loss_col\nr.csv,1,10,step,loss\n",
    );
    let ds = read(&m);
    assert_eq!(ds.tokens, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
    assert_eq!(ds.loss, vec![5.0, 4.1, 3.1, 2.9, 2.1]);
    assert_eq!(ds.configs[0].len, 5);
    assert_eq!(
        ds.notes,
        vec![format!(
            "{}: replaced 4 values of loss by a later row with the same step (first at line 6, step 1)",
            log.display()
        )]
    );

    // A single re-logged step, after a skipped row.
    write(d, "r.csv", "step,loss\n0,5\n1,\n2,3\n2,2.5\n");
    let ds = read(&m);
    assert_eq!(
        (ds.tokens.clone(), ds.loss.clone()),
        (vec![0.0, 20.0], vec![5.0, 2.5])
    );
    assert_eq!(ds.notes.len(), 2);
    assert!(ds.notes[1].ends_with(
        "r.csv: replaced 1 value of loss by a later row with the same step (first at line 5, step 2)"
    ));
}

// ---- notes ----

#[test]
fn filters_keep_the_notes() {
    let dir = common::tempdir();
    let d = dir.path();
    write(d, "x.csv", "step,loss\n0,4\n1,nan\n2,3\n3,2\n");
    let m = write(
        d,
        "m.csv",
        "file,N,tokens_per_step,step_col,loss_col\nx.csv,1,1,step,loss\n",
    );
    let ds = read(&m);
    assert_eq!(ds.notes.len(), 1);
    let thinned = Filter {
        min_tokens: Some(1.0),
        max_tokens: None,
        stride: 2,
    }
    .apply(&ds);
    assert_eq!(thinned.tokens, vec![2.0]);
    assert_eq!(thinned.notes, ds.notes);
}

/// A manifest of three runs whose logs hold a NaN row in the first.
fn sweep_with_a_nan_row(d: &Path) -> PathBuf {
    let mut manifest = String::from("file,N,tokens_per_step,step_col,loss_col\n");
    for (k, n) in [1e7, 3e7, 1e8].into_iter().enumerate() {
        let mut log = String::from("step,loss\n");
        for step in 1..=30 {
            let dd = step as f64 * 1e6;
            let loss = 2.0 + 400.0 / f64::powf(n, 0.3) + 300.0 / dd.powf(0.3);
            if k == 0 && step == 9 {
                log.push_str("9,nan\n");
            } else {
                log.push_str(&format!("{step},{loss}\n"));
            }
        }
        write(d, &format!("logs/run{k}.csv"), log);
        manifest.push_str(&format!("logs/run{k}.csv,{n},1e6,step,loss\n"));
    }
    write(d, "m.csv", manifest)
}

#[test]
fn fit_json_reports_the_input_notes_first() {
    let dir = common::tempdir();
    let d = dir.path();
    sweep_with_a_nan_row(d);
    let out = d.join("out");
    let run = common::ok(
        d,
        &[
            "fit",
            "--manifest",
            "m.csv",
            "--starts",
            "4",
            "--max-iter",
            "5",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(out.join("fit.json")).unwrap();
    let fit: serde_json::Value = serde_json::from_str(&text).unwrap();
    let notes: Vec<&str> = fit["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("no notes in fit.json:\n{text}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The log path as the manifest gives it, joined to the manifest's folder.
    assert_eq!(
        notes[0],
        "logs/run0.csv: skipped 1 row whose loss is empty or not finite (first at line 10)",
        "all notes: {notes:?}\n{}",
        run.dump()
    );
    assert_eq!(
        notes.iter().filter(|n| n.contains("skipped")).count(),
        1,
        "{notes:?}"
    );
    assert_eq!(fit["points"], 89);
}

// ---- run labels and invalid UTF-8 ----

#[test]
fn long_csv_run_labels_must_be_utf8() {
    let dir = common::tempdir();
    // Two labels that a lossy conversion would both read as "r\u{fffd}".
    let mut text = b"run,N,tokens,loss\n".to_vec();
    text.extend_from_slice(b"r\xff,1,1,3\n");
    text.extend_from_slice(b"r\xfe,1,2,3\n");
    let path = write(dir.path(), "data.csv", &text);
    let msg = read_long_csv(&path, &LOG).unwrap_err().to_string();
    assert_has(
        &msg,
        &[
            "data.csv:2: column 'run' (1): ",
            "run is not valid UTF-8",
            "r\\xff",
        ],
    );
}

#[test]
fn manifest_run_labels_must_be_utf8() {
    let dir = common::tempdir();
    let d = dir.path();
    write(d, "x.csv", "step,loss\n0,4\n1,3\n");
    let mut text = b"file,N,tokens_per_step,step_col,loss_col,run\n".to_vec();
    text.extend_from_slice(b"x.csv,1,1,step,loss,ok\n");
    text.extend_from_slice(b"x.csv,2,1,step,loss,b\xe9ta\n");
    let m = write(d, "m.csv", &text);
    assert_has(
        &manifest_err(&m),
        &["m.csv:3: column 'run' (6): ", "run is not valid UTF-8"],
    );
}

#[test]
fn invalid_utf8_anywhere_is_an_error_or_ignored_never_a_panic() {
    let dir = common::tempdir();
    let d = dir.path();

    // Long CSV: in a number, an error with line and column; in an ignored
    // column or its header name, no matter.
    let path = write(d, "data.csv", b"N,tokens,loss\n1,1,3\n1,2,2.\xff5\n");
    let msg = read_long_csv(&path, &LOG).unwrap_err().to_string();
    assert_has(
        &msg,
        &[
            "data.csv:3: column 'loss' (3): ",
            "expected a number, found invalid UTF-8 \"2.\\xff5\"",
        ],
    );
    let path = write(d, "ok.csv", b"N,tokens,loss,n\xf6te\n1,1,3,\xff\n");
    assert_eq!(read_long_csv(&path, &LOG).unwrap().loss, vec![3.0]);

    // Logs: in the loss and the step column, errors; elsewhere ignored.
    let head = "file,N,tokens_per_step,step_col,loss_col\nx.csv,1,1,step,loss\n";
    let m = write(d, "m.csv", head);
    for (log, parts) in [
        (
            &b"step,loss\n0,3\n1,\xc3\n"[..],
            &["x.csv:3: column 'loss' (2)", "invalid UTF-8 \"\\xc3\""][..],
        ),
        (
            b"step,loss\n0,3\n\xff1,2\n",
            &["x.csv:3: column 'step' (1)", "invalid UTF-8"],
        ),
    ] {
        write(d, "x.csv", log);
        assert_has(&manifest_err(&m), parts);
    }
    write(d, "x.csv", b"step,loss,t\xe4g\n0,3,\xff\n1,2,\xfe\n");
    assert_eq!(read(&m).loss, vec![3.0, 2.0]);

    // The binary reports it as an error too.
    let run = common::sweepfit(d, &["fit", "data.csv", "--backend", "cpu"]);
    run.assert_failed("fit of a long CSV with invalid UTF-8");
    assert!(
        run.stderr
            .contains("data.csv:3: column 'loss' (3): not valid UTF-8"),
        "{}",
        run.dump()
    );
}
