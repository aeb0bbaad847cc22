//! Per-run logs read as trackers write them, and run labels that are not
//! UTF-8.

use std::path::{Path, PathBuf};
use sweepfit::data::{read_long_csv, read_manifest, Dataset, ReadOptions};
use tempfile::TempDir;

mod common;

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

// ---- run labels and invalid UTF-8 ----

#[test]
fn long_csv_run_labels_must_be_utf8() {
    let dir = TempDir::new().unwrap();
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
    let dir = TempDir::new().unwrap();
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
    let dir = TempDir::new().unwrap();
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
    assert!(run.stderr.contains("invalid UTF-8"), "{}", run.dump());
}
