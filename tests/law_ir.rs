//! What a law compiles to, as `sweepfit laws NAME --plan` and `--wgsl`
//! show it: the plan puts each term where its variables put it, and the
//! generated kernels of every built-in law are kept as snapshots in
//! `tests/snapshots`, so that any change to the code generator shows as a
//! diff there. After a deliberate change, rewrite them with
//! `SWEEPFIT_UPDATE_SNAPSHOTS=1 cargo test --release --test law_ir` and
//! review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::ok;

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// The lines of `section` (a "per ..." heading of the listing) up to the
/// next heading.
fn section<'a>(listing: &'a str, heading: &str) -> Vec<&'a str> {
    listing
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect()
}

#[test]
fn the_looplm_plan_puts_each_term_where_its_variables_put_it() {
    let dir = common::tempdir();
    let run = ok(dir.path(), &["laws", "looplm", "--plan"]);
    let out = &run.stdout;
    assert!(out.contains("plan for curves along D"), "{out}");
    let curve = section(out, "per curve").join("\n");
    let axis = section(out, "per distinct axis value").join("\n");
    let point = section(out, "per point");
    // N's and T's terms per curve, D's per token value, and only their
    // sum per point.
    for want in ["(N + t1)", "(T + t3)", "A*", "C*"] {
        assert!(curve.contains(want), "{want} per curve:\n{out}");
    }
    assert!(axis.contains("(D + t2)") && axis.contains("B*"), "{out}");
    assert!(!curve.contains('D') && !axis.contains('N'), "{out}");
    assert_eq!(point.len(), 1, "{out}");
    assert!(point[0].ends_with("<- prediction"), "{out}");
}

#[test]
fn a_law_file_path_is_compiled_too_and_an_unknown_name_is_an_error() {
    let dir = common::tempdir();
    std::fs::write(
        dir.path().join("mine.toml"),
        "name = \"mine\"\nformula = \"E + A/N^alpha\"\n",
    )
    .unwrap();
    let run = ok(dir.path(), &["laws", "mine.toml", "--plan"]);
    assert!(
        run.stdout.contains("law mine: E + A/N^alpha"),
        "{}",
        run.dump()
    );
    let run = common::sweepfit(dir.path(), &["laws", "nonesuch", "--wgsl"]);
    run.assert_failed("an unknown law");
    assert!(
        run.stderr
            .contains("no built-in law or law file is called \"nonesuch\""),
        "{}",
        run.dump()
    );
    // A name that reads as a path is named as a missing file, a
    // directory as one.
    std::fs::create_dir(dir.path().join("laws")).unwrap();
    for (name, want) in [
        ("laws/gone.toml", "law file laws/gone.toml not found"),
        ("gone.toml", "law file gone.toml not found"),
        ("laws", "laws is a directory, not a law file"),
    ] {
        for extra in [&[][..], &["--plan"][..]] {
            let mut args = vec!["laws", name];
            args.extend(extra);
            let run = common::sweepfit(dir.path(), &args);
            run.assert_failed("a law file that is not there");
            assert!(run.stderr.contains(want), "{}", run.dump());
        }
    }
}

/// Every built-in law's kernels, as generated, against the snapshot.
#[test]
fn generated_kernels_match_their_snapshots() {
    let dir = common::tempdir();
    let update = std::env::var_os("SWEEPFIT_UPDATE_SNAPSHOTS").is_some();
    let laws = sweepfit::law::builtin_names();
    assert!(laws.len() >= 8, "{laws:?}");
    let mut stale = Vec::new();
    for &law in laws {
        let got = ok(dir.path(), &["laws", law, "--wgsl"]).stdout;
        assert!(got.contains("@compute"), "{law}: {got}");
        let path = snapshots().join(format!("{law}.wgsl"));
        if update {
            std::fs::create_dir_all(snapshots()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write it with SWEEPFIT_UPDATE_SNAPSHOTS=1",
                path.display()
            )
        });
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            stale.push(format!("{law} (first difference at line {})", line + 1));
        }
    }
    assert!(
        stale.is_empty(),
        "generated kernels differ from tests/snapshots: {}; if the change is meant, \
         rewrite them with SWEEPFIT_UPDATE_SNAPSHOTS=1 and review the diff",
        stale.join(", ")
    );
}
