//! The README's examples run, in order, as written: the `sh` block under
//! "## Examples" is run by bash with `sweepfit` bound to the binary under
//! test instead of `cargo run`, in a fresh folder.

use std::path::Path;
use std::process::Command;

/// The first ```sh block after the "## Examples" heading.
fn examples_block(readme: &str) -> String {
    let start = readme
        .find("\n## Examples")
        .expect("README has ## Examples");
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("an sh block under ## Examples") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the sh block ends");
    rest[open..open + close].to_string()
}

#[test]
fn readme_examples_run_in_order_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = examples_block(&readme);
    let cargo_line = "sweepfit() { cargo run --release --quiet -- \"$@\"; }";
    assert!(
        block.starts_with(cargo_line),
        "the block defines sweepfit first:\n{block}"
    );
    // Run the built binary (cargo has just built it) rather than cargo.
    let script = block.replacen(cargo_line, "sweepfit() { \"$SWEEPFIT\" \"$@\"; }", 1);

    // A fresh folder standing in for the repository root: the manifest's
    // log paths are relative to its own folder, so it is copied with them
    // made absolute.
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(root.join("benches/pythia_manifest.csv")).unwrap();
    let mut lines = manifest.lines();
    let mut fixed = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let (file, rest) = line.split_once(',').unwrap();
        let abs = root.join("benches").join(file);
        fixed.push_str(&format!("{},{rest}\n", abs.display()));
    }
    std::fs::create_dir(dir.path().join("benches")).unwrap();
    std::fs::write(dir.path().join("benches/pythia_manifest.csv"), fixed).unwrap();

    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir.path())
        .env("SWEEPFIT", env!("CARGO_BIN_EXE_sweepfit"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "README examples failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Each example left what it says it writes.
    let ex = dir.path().join("examples-out");
    for f in [
        "sweep.csv",
        "fit/fit.json",
        "fit/pred.csv",
        "pythia/fit.json",
        "chinchilla/fit.json",
        "huber/fit.json",
        "fixed/fit.json",
        "boot/fit.json",
        "boot/grid.png",
        "boot/grid.svg",
        "boot/residuals.png",
        "boot/residuals.svg",
        "eval/eval.json",
        "eval/eval.csv",
        "pred-2.8B.csv",
        "grid.svg",
        "residuals.svg",
    ] {
        assert!(ex.join(f).is_file(), "missing examples-out/{f}");
    }
}
