//! Hostile input: every case ends in a clear error naming what is wrong
//! (and where), or in a correct result; never in a panic, a stack overflow
//! or a silently wrong answer.

mod common;

use std::path::{Path, PathBuf};

use common::{chinchilla_csv, ok, sweepfit, Run};
use sweepfit::backend::gpu::{self, Layout};
use sweepfit::backend::CompiledGrid;
use sweepfit::law::parse::MAX_DEPTH;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::{CompiledLaw, Source};
use sweepfit::objective::Objective;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// The run failed with an error whose text contains every one of `want`.
fn fails_with(run: &Run, want: &[&str]) {
    run.assert_failed("the case");
    for w in want {
        assert!(run.stderr.contains(w), "expected {w:?} in:\n{}", run.dump());
    }
}

// ---- Formulas nested or long enough to exhaust a stack ----

/// Formulas over N and D with parameters, `d` levels deep, one per way of
/// nesting.
fn nested(d: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "parentheses",
            format!("{}a*N + b*D{}", "(".repeat(d - 3), ")".repeat(d - 3)),
        ),
        ("minus signs", format!("{}a*N + b*D", "-".repeat(d - 3))),
        (
            "a sum",
            (0..d - 1)
                .map(|i| format!("p{i}*{}", if i % 2 == 0 { "N" } else { "D" }))
                .collect::<Vec<_>>()
                .join(" + "),
        ),
        ("a product", format!("a*D{}", "*N".repeat(d - 2))),
        (
            "calls",
            format!(
                "{}a*N + b*D{}",
                "exp(-".repeat((d - 3) / 2),
                ")".repeat((d - 3) / 2)
            ),
        ),
        ("powers", format!("a*D + {}b", "N^".repeat(d - 2))),
    ]
}

/// A small sweep over (N, D): 3 curves of N along D.
fn small_sweep() -> Sweep {
    let (mut vars, mut y, mut curves) = (Vec::new(), Vec::new(), Vec::new());
    for n in [0.5, 1.0, 2.0] {
        let s = y.len();
        for k in 1..=8 {
            vars.extend([n, 0.1 * k as f64]);
            y.push(1.0 + 0.1 * k as f64);
        }
        curves.push(s..y.len());
    }
    let w = vec![1.0 / y.len() as f64; y.len()];
    Sweep::new(2, curves, vars, y, w, Some(1))
}

/// Every pass a law goes through before a fit (compile with its gradient,
/// the hoisted plan and its reference evaluation, the CPU evaluator, the
/// GPU kernels of both layouts with their validation) on a thread with a
/// 2 MiB stack, the test harness's default: formulas at the depth limit
/// pass, one level more is refused with the limit named, and formulas far
/// beyond it are refused without exhausting the stack.
#[test]
fn formulas_at_the_depth_limit_go_through_every_pass_on_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let s = small_sweep();
            let obj = Objective::default();
            for (what, formula) in nested(MAX_DEPTH) {
                let law = CompiledLaw::from_formula(&formula, &["N", "D"])
                    .unwrap_or_else(|e| panic!("{what} at the limit: {e}"));
                let plan = Plan::for_sweep(&law, &s);
                let p = vec![0.5; law.params.len()];
                plan.evaluate(&s, &p, &obj, None);
                if let Ok(grid) = CompiledGrid::new(plan.clone(), &s, obj) {
                    let (mut f, mut g) = (vec![0.0; 1], vec![0.0; p.len()]);
                    grid.evaluate(&p, &mut f, &mut g);
                }
                for layout in [Layout::Points, Layout::Grid] {
                    if let Ok(k) = gpu::generate(&plan, layout) {
                        gpu::validate(&k.source)
                            .unwrap_or_else(|e| panic!("{what}, {layout:?}: {e}"));
                    }
                }
            }
            for d in [MAX_DEPTH + 1, 30_000] {
                for (what, formula) in nested(d) {
                    let e = CompiledLaw::from_formula(&formula, &["N", "D"]).unwrap_err();
                    assert!(
                        e.to_string().contains("more than 256 levels deep"),
                        "{what} at depth {d}: {e}"
                    );
                }
            }
            // Defs are expanded where they are used: each within the
            // limit, their expansion beyond it.
            let defs: Vec<(String, String)> = (0..40)
                .map(|i| {
                    let prev = if i == 0 {
                        "N".to_string()
                    } else {
                        format!("d{}", i - 1)
                    };
                    (format!("d{i}"), format!("{prev}{}", " + N".repeat(10)))
                })
                .collect();
            let e = CompiledLaw::compile(&Source {
                formula: "E + A*d39^alpha".into(),
                defs,
                variables: vec!["N".into()],
                origin: "law.toml".into(),
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("with its defs expanded"), "{e}");
            assert!(e.contains("more than 256 levels deep"), "{e}");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A law file holding `formula`, in `dir`.
fn law_file(dir: &Path, name: &str, formula: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "name = \"deep\"\nformula = \"{formula}\"\n[variables]\nN = \"N\"\nD = \"tokens\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn deep_formulas_are_refused_through_every_door_and_the_limit_fits() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 8, 0.002);
    let csv = csv.to_str().unwrap();
    let law = "E + A/N^alpha + B/D^beta";
    let deep = [
        format!(
            "E + A/N^alpha + B/{}D{}^beta",
            "(".repeat(10_000),
            ")".repeat(10_000)
        ),
        format!("{law} + {}c", "-".repeat(100_000)),
        format!("{law}{}", " + c*N".repeat(20_000)),
        format!("{law}{}", " * N".repeat(30_000)),
        format!("{law} + {}c{}", "exp(".repeat(20_000), ")".repeat(20_000)),
    ];
    for (i, f) in deep.iter().enumerate() {
        let out = format!("o{i}");
        let run = sweepfit(
            dir.path(),
            &[
                "fit",
                csv,
                "--law",
                f,
                "--backend",
                "cpu",
                "--starts",
                "4",
                "--out",
                &out,
            ],
        );
        fails_with(&run, &["--law", "more than 256 levels deep"]);
        assert!(
            run.stderr.len() < 2000,
            "the error repeats the formula:\n{}",
            run.dump()
        );
        assert!(!dir.path().join(&out).exists());
        let run = sweepfit(dir.path(), &["bench", "--law", f, "--quick", "--no-gpu"]);
        fails_with(&run, &["more than 256 levels deep"]);
        assert!(
            run.stderr.len() < 2000,
            "the error repeats the formula:\n{}",
            run.dump()
        );
    }
    // A 1 MB formula, too long for a command line, through a law file.
    let big = format!("{law}{}", " + c".repeat(250_000));
    let file = law_file(dir.path(), "big.toml", &big);
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            csv,
            "--law-file",
            file.to_str().unwrap(),
            "--backend",
            "cpu",
            "--out",
            "big",
        ],
    );
    fails_with(&run, &["big.toml", "more than 256 levels deep"]);
    let run = sweepfit(
        dir.path(),
        &["bench", "--law-file", file.to_str().unwrap(), "--quick"],
    );
    fails_with(&run, &["big.toml", "more than 256 levels deep"]);

    // At the limit, on the main thread and the fit's worker threads: the
    // chinchilla law with its D in 252 parentheses is 256 levels deep.
    let at_limit = format!(
        "E + A/N^alpha + B/{}D{}^beta",
        "(".repeat(252),
        ")".repeat(252)
    );
    let file = law_file(dir.path(), "limit.toml", &at_limit);
    let run = ok(
        dir.path(),
        &[
            "fit",
            csv,
            "--law-file",
            file.to_str().unwrap(),
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "limit",
        ],
    );
    assert!(
        dir.path().join("limit/fit.json").is_file(),
        "{}",
        run.dump()
    );
    let one_more = format!(
        "E + A/N^alpha + B/{}D{}^beta",
        "(".repeat(253),
        ")".repeat(253)
    );
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            csv,
            "--law",
            &one_more,
            "--backend",
            "cpu",
            "--out",
            "more",
        ],
    );
    fails_with(&run, &["column 15", "more than 256 levels deep"]);
}
