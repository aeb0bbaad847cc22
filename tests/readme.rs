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

    // A fresh clone with `shared` beside it, as a new user has it: the
    // repository's entries linked into `clone/` and `shared` linked beside
    // it, in a folder under the build's own scratch space. Nothing is
    // rewritten, so the examples' relative paths (`../shared/...`,
    // `benches/...`) resolve exactly as they do for the user, and nothing
    // depends on where the clone or the system's temporary folder lives.
    let dir = tempfile::Builder::new()
        .prefix("readme-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let clone = dir.path().join("clone");
    std::fs::create_dir(&clone).unwrap();
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".git", "target", "examples-out"].contains(&name.to_str().unwrap_or("")) {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), clone.join(&name)).unwrap();
    }
    let shared = root.join("../shared");
    assert!(
        shared.join("data").is_dir(),
        "{} is missing: the README's examples read ../shared/data",
        shared.display()
    );
    std::os::unix::fs::symlink(shared.canonicalize().unwrap(), dir.path().join("shared")).unwrap();

    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(&clone)
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
    let ex = clone.join("examples-out");
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
        "compare/compare.json",
        "compare/compare.csv",
        "compare/compare.png",
        "pred-2.8B.csv",
        "grid.svg",
        "residuals.svg",
        "formula/fit.json",
        "formula/pred.csv",
        "rectified.toml",
        "rectified/fit.json",
        "rectified/pred.csv",
        "rectified-pred.csv",
        "moe-eval/eval.json",
        "profile/fit.json",
        "multipower/fit.json",
        "multipower-wsd.csv",
        "multipower.svg",
    ] {
        assert!(ex.join(f).is_file(), "missing examples-out/{f}");
    }

    // The numbers the README quotes for the SLDBench example, to the digits
    // it prints them with: "R² 0.9929 RMSE 0.03278".
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(ex.join(f)).unwrap()).unwrap()
    };
    let rect = json("rectified/fit.json");
    let r2 = rect["test"]["r2"].as_f64().expect("rectified test.r2");
    let rmse = rect["test"]["rmse"].as_f64().expect("rectified test.rmse");
    assert!(
        (r2 - 0.9929).abs() < 5e-5,
        "rectified test R² {r2}, README says 0.9929"
    );
    assert!(
        (rmse - 0.03278).abs() < 5e-6,
        "rectified test RMSE {rmse}, README says 0.03278"
    );
    // Every profile the example asks for is there, with an interval.
    let prof = json("profile/fit.json");
    for name in ["C", "gamma", "t3"] {
        assert!(
            prof["profile"].to_string().contains(&format!("\"{name}\"")),
            "profile/fit.json has no profile of {name}: {}",
            prof["profile"]
        );
    }
    // The multi-power fit reaches the optimum of the objective it is given:
    // at least as low as L-BFGS-B started at the authors' published 25M
    // parameters (a sum of 1.393e-4 over the 437 rows; sweepfit reports
    // the mean), and it names the B-beta trade.
    let mp = json("multipower/fit.json");
    let f = mp["objective"]["value"].as_f64().unwrap() * 437.0;
    assert!(
        f <= 1.3935e-4,
        "multi-power objective {f:.5e} over 437 rows"
    );
    assert_eq!(mp["points"].as_u64(), Some(437));
    let weakest = mp["identifiability"]["weak"][0]["text"].to_string();
    assert!(
        weakest.contains("beta") && weakest.contains('B'),
        "the weakest direction is {weakest}"
    );
    // The WSD curve the multi-power law predicts from its schedule: the
    // README quotes 3.2721 at step 23904.
    let wsd = std::fs::read_to_string(ex.join("multipower-wsd.csv")).unwrap();
    let last = wsd.lines().last().unwrap().to_string();
    let pred: f64 = last.rsplit(',').next().unwrap().parse().unwrap();
    assert!(
        last.contains(",23904,") && (pred - 3.2721).abs() < 5e-5,
        "multipower-wsd.csv ends with {last}, README says 3.2721 at step 23904"
    );
    // The prediction covers the five points asked for (D = 1e3..1e7, log).
    let pred = std::fs::read_to_string(ex.join("rectified-pred.csv")).unwrap();
    assert!(pred.lines().count() > 5, "{pred}");
}
