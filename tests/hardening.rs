//! Hostile input: every case ends in a clear error naming what is wrong
//! (and where), or in a correct result; never in a panic, a stack overflow
//! or a silently wrong answer.

mod common;

use std::path::{Path, PathBuf};

use common::{chinchilla_csv, ok, sweepfit, Run};
use sweepfit::backend::gpu::{self, Layout};
use sweepfit::backend::CpuLaw;
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
                if let Ok(grid) = CpuLaw::new(plan.clone(), &s, obj) {
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

// ---- Degenerate curvature: a Huber delta below every residual ----

#[test]
fn a_tiny_huber_delta_or_a_single_free_parameter_is_reported_not_a_panic() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 8, 0.002);
    let csv = csv.to_str().unwrap();
    let cases: [&[&str]; 4] = [
        &["--law", "chinchilla", "--delta", "1e-300"],
        &["--delta", "1e-300", "--bootstrap", "4"],
        &[
            "--law",
            "E + A/N^alpha + B/D^beta",
            "--delta",
            "1e-30",
            "--bootstrap",
            "4",
        ],
        &["--law", "chinchilla", "--delta", "1e-30", "--by", "run"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let out = format!("d{i}");
        let mut args = vec![
            "fit",
            csv,
            "--loss",
            "huber",
            "--backend",
            "cpu",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        let run = ok(dir.path(), &args);
        // Every residual beyond delta: the fit does not depend on any
        // parameter's small changes, and says so (per group with --by).
        assert!(
            run.stdout
                .contains("the fit does not depend on it at the optimum")
                || run.stdout.contains("E,B,beta"),
            "{extra:?}:\n{}",
            run.dump()
        );
    }
    // Profiling the only free parameter: nothing is left to refit.
    let fix = [
        "--fix",
        "E=1.8",
        "--fix",
        "A=400",
        "--fix",
        "alpha=0.34",
        "--fix",
        "B=900",
    ];
    for law in ["chinchilla", "E + A/N^alpha + B/D^beta"] {
        let mut args = vec![
            "fit",
            csv,
            "--law",
            law,
            "--profile",
            "beta",
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(&fix);
        args.extend_from_slice(&["--out", if law == "chinchilla" { "p0" } else { "p1" }]);
        let run = ok(dir.path(), &args);
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("beta"));
        assert!(
            line.is_some_and(|l| l.contains('[')),
            "no interval for beta:\n{}",
            run.dump()
        );
    }
}

// ---- fit.json of a formula law, edited by hand ----

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_tampered_law_fit_json_is_refused_naming_the_field() {
    use serde_json::{json, Value};
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 8, 0.002);
    let csv = csv.to_str().unwrap();
    let law = "E + A/N^alpha + B/D^beta";
    let common = ["--backend", "cpu", "--starts", "16", "--bootstrap", "4"];
    let mut args = vec!["fit", csv, "--law", law, "--out", "one"];
    args.extend_from_slice(&common);
    ok(dir.path(), &args);
    let mut args = vec!["fit", csv, "--law", law, "--by", "run", "--out", "by"];
    args.extend_from_slice(&common);
    ok(dir.path(), &args);
    let one = read_json(&dir.path().join("one/fit.json"));
    let by = read_json(&dir.path().join("by/fit.json"));
    let at = ["--at", "N=1e9", "--at", "D=1e10"];
    // The untouched files predict, with bands.
    for f in ["one/fit.json", "by/fit.json"] {
        let mut args = vec!["predict", "--fit", f];
        args.extend_from_slice(&at);
        let run = ok(dir.path(), &args);
        assert!(run.stdout.contains("lo_points"), "{}", run.dump());
    }
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, bool, Edit, &[&str])> = vec![
        (
            "sample one value short",
            false,
            |v| {
                v["bootstrap"]["resamples"][0]["samples"][0]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            &["bootstrap.resamples[0].samples[0]", "4 values, not 5"],
        ),
        (
            "sample one value long",
            false,
            |v| {
                v["bootstrap"]["resamples"][0]["samples"][1]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(1.0));
            },
            &["bootstrap.resamples[0].samples[1]", "6 values, not 5"],
        ),
        (
            "no samples",
            false,
            |v| {
                v["bootstrap"]["resamples"][1]["samples"] = json!([]);
            },
            &["bootstrap.resamples[1]", "0 samples for 4 used"],
        ),
        (
            "null samples",
            false,
            |v| {
                v["bootstrap"]["resamples"][0]["samples"] = Value::Null;
            },
            &["null, expected a sequence"],
        ),
        (
            "a null in a sample",
            false,
            |v| {
                v["bootstrap"]["resamples"][0]["samples"][2][1] = Value::Null;
            },
            &["bootstrap.resamples[0].samples[2]", "not finite"],
        ),
        (
            "level 1.5",
            false,
            |v| v["bootstrap"]["level"] = json!(1.5),
            &["bootstrap.level is 1.5"],
        ),
        (
            "level -3",
            false,
            |v| v["bootstrap"]["level"] = json!(-3),
            &["bootstrap.level is -3"],
        ),
        (
            "level null",
            false,
            |v| v["bootstrap"]["level"] = Value::Null,
            &["bootstrap.level"],
        ),
        (
            "unknown scheme",
            false,
            |v| {
                v["bootstrap"]["resamples"][0]["kind"] = json!("blocks");
            },
            &["bootstrap.resamples[0].kind is 'blocks'"],
        ),
        (
            "one scheme twice",
            false,
            |v| {
                v["bootstrap"]["resamples"][1]["kind"] = json!("curves");
            },
            &["bootstrap.resamples[1].kind 'curves' appears twice"],
        ),
        (
            "another formula in law_file",
            false,
            |v| {
                v["law_file"] = json!("name = \"custom\"\nformula = \"E + A/N^alpha\"\n");
            },
            &["law_file", "E + A/N^alpha", "formula"],
        ),
        (
            "an unknown parameter",
            false,
            |v| v["params"]["Z"] = json!(1.0),
            &["params.Z"],
        ),
        (
            "a parameter missing",
            false,
            |v| {
                v["params"].as_object_mut().unwrap().remove("beta");
            },
            &["params.beta is missing"],
        ),
        (
            "two groups with one key",
            true,
            |v| {
                let g = v["groups"][0].clone();
                v["groups"][1] = g;
            },
            &["groups[1].key", "groups[0]"],
        ),
        (
            "a group key of another column",
            true,
            |v| {
                v["groups"][2]["key"] = json!({"model": "x"});
            },
            &["groups[2].key", "by"],
        ),
        (
            "a group's sample short",
            true,
            |v| {
                v["groups"][3]["bootstrap"]["resamples"][0]["samples"][0]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            &[
                "groups[3].bootstrap.resamples[0].samples[0]",
                "4 values, not 5",
            ],
        ),
    ];
    for (what, grouped, edit, want) in cases {
        let mut v = if grouped { by.clone() } else { one.clone() };
        edit(&mut v);
        let path = dir.path().join("t.json");
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        for cmd in [
            &["predict", "--fit", "t.json"][..],
            &["plot", "--fit", "t.json"][..],
        ] {
            let mut args = cmd.to_vec();
            if cmd[0] == "predict" {
                args.extend_from_slice(&at);
            } else {
                let data = if grouped {
                    "by/pred.csv"
                } else {
                    "one/pred.csv"
                };
                args.extend_from_slice(&["--data", data, "--out", "t.png"]);
            }
            let run = sweepfit(dir.path(), &args);
            run.assert_failed(what);
            for w in std::iter::once(&"t.json").chain(want) {
                assert!(
                    run.stderr.contains(w),
                    "{what}: expected {w:?} in:\n{}",
                    run.dump()
                );
            }
        }
    }
}

// ---- Numeric option values ----

#[test]
fn numeric_options_out_of_range_are_refused_naming_the_option() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    let law_file = dir.path().join("ch.toml");
    let text = ok(dir.path(), &["laws", "chinchilla"]).stdout;
    std::fs::write(&law_file, text).unwrap();
    let lf = law_file.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--ftol", "nan"], &["--ftol", "NaN"]),
        (&["--ftol=-1"], &["--ftol", "-1"]),
        (&["--gtol", "nan"], &["--gtol", "NaN"]),
        (&["--gtol", "inf"], &["--gtol", "inf"]),
        (&["--max-iter", "0"], &["--max-iter"]),
        (&["--delta=-1"], &["--delta"]),
        (&["--level", "1.5"], &["--level"]),
        (&["--min-tokens", "nan"], &["--min-tokens"]),
        (&["--max-tokens=-inf"], &["--max-tokens"]),
        // --fix outside the bounds the law declares, as a `fixed` value
        // there would be.
        (
            &["--fix", "alpha=100"],
            &["--fix alpha=100", "outside the bounds [0.0001, 8]"],
        ),
        (
            &["--law", "chinchilla", "--fix", "alpha=100"],
            &["--fix alpha=100", "chinchilla"],
        ),
        (
            &["--law-file", lf, "--fix", "alpha=100"],
            &["--fix alpha=100", "[0.0001, 8]"],
        ),
        (
            &["--law-file", lf, "--fix", "B=-2"],
            &["--fix B=-2", "positive"],
        ),
        (
            &["--law", "E + A/N^alpha", "--fix", "alpha=nan"],
            &["--fix alpha=NaN", "finite"],
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["fit", csv, "--backend", "cpu", "--out", "o"];
        args.extend_from_slice(extra);
        let run = sweepfit(dir.path(), &args);
        fails_with(&run, want);
        assert!(!dir.path().join("o").exists(), "{extra:?} wrote output");
    }
    let run = sweepfit(
        dir.path(),
        &["eval", csv, "--fractions", "0.5,2", "--out", "e"],
    );
    fails_with(&run, &["--fractions", "2"]);
    let run = sweepfit(
        dir.path(),
        &["simulate", "--noise", "nan", "--out", "s.csv"],
    );
    fails_with(&run, &["--noise"]);
    let run = sweepfit(
        dir.path(),
        &["bench", "--seconds-per-cell", "inf", "--quick"],
    );
    fails_with(&run, &["--seconds-per-cell"]);
    // Inside the bounds, a fix is used as it stands.
    ok(
        dir.path(),
        &[
            "fit",
            csv,
            "--law-file",
            lf,
            "--fix",
            "alpha=0.34",
            "--out",
            "o2",
            "--backend",
            "cpu",
        ],
    );
}

#[test]
fn a_law_file_axis_that_is_not_a_variable_is_refused() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    for (axis, file) in [("alpha", "a.toml"), ("Q", "q.toml")] {
        let text =
            format!("name = \"x\"\nformula = \"E + A/N^alpha + B/D^beta\"\naxis = \"{axis}\"\n");
        std::fs::write(dir.path().join(file), text).unwrap();
        law_file_refused(
            dir.path(),
            csv,
            file,
            &[file, &format!("axis: {axis} is not a variable")],
        );
    }
}

/// `fit` and `eval` of `csv` with the law file `file` both fail, their
/// errors containing every one of `want`.
fn law_file_refused(dir: &Path, csv: &str, file: &str, want: &[&str]) {
    for cmd in ["fit", "eval"] {
        let run = sweepfit(
            dir,
            &[
                cmd,
                csv,
                "--law-file",
                file,
                "--backend",
                "cpu",
                "--out",
                "o",
            ],
        );
        fails_with(&run, want);
    }
}

/// A law file that binds some variables and leaves a name of the data's
/// out of both [variables] and [params] would fit that column's name as a
/// number (R² 0.62 on a chinchilla sweep, exit 0): refused, naming the
/// law, the name and the column, and how to bind it. Declared as a
/// parameter, it is one.
#[test]
fn a_law_files_undeclared_name_that_is_a_column_is_refused() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    let head = "name = \"my-law\"\nformula = \"E + A/N^alpha + B/D^beta\"\n";
    std::fs::write(
        dir.path().join("loose.toml"),
        format!("{head}[variables]\nD = \"tokens\"\n"),
    )
    .unwrap();
    law_file_refused(
        dir.path(),
        csv,
        "loose.toml",
        &[
            "law my-law",
            "N is neither one of its variables (D)",
            "column 'N'",
            "N = \"N\"",
        ],
    );
    std::fs::write(
        dir.path().join("declared.toml"),
        format!("{head}[variables]\nD = \"tokens\"\n\n[params.N]\npositive = true\n"),
    )
    .unwrap();
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            csv,
            "--law-file",
            "declared.toml",
            "--backend",
            "cpu",
            "--starts",
            "4",
            "--out",
            "d",
        ],
    );
    run.assert_ok("N declared as a parameter");
    assert!(
        run.stderr.contains("parameters: E, A, N, alpha, B, beta"),
        "{}",
        run.dump()
    );
}

/// Data a fit would run on and report as converged, or exact, having
/// fitted nothing: losses so small that their squared residuals underflow
/// in linear space, and weights whose range f64 cannot add (the light
/// rows vanish beside a heavy one) or whose sum overflows. Each is
/// refused, naming the rows; weights a factor 1e12 apart fit.
#[test]
fn data_whose_objective_f64_cannot_hold_is_refused() {
    let dir = tempdir();
    let tiny = "tokens,loss\n1e9,1e-310\n2e9,1e-300\n3e9,1e-305\n4e9,1e-302\n5e9,1e-303\n";
    std::fs::write(dir.path().join("tiny.csv"), tiny).unwrap();
    let fit = |file: &str, extra: &[&str]| {
        let mut args = vec![
            "fit",
            file,
            "--law",
            "E + B/tokens^beta",
            "--backend",
            "cpu",
            "--starts",
            "4",
            "--out",
        ];
        let out = format!("o-{file}-{}", extra.len());
        args.push(&out);
        args.extend(extra);
        sweepfit(dir.path(), &args)
    };
    fails_with(
        &fit("tiny.csv", &[]),
        &[
            "every loss of tiny.csv is below 1e-150",
            "(the largest is 1e-300)",
            "--space log",
        ],
    );

    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let weighted = |name: &str, weight: &dyn Fn(usize) -> &'static str| {
        let mut text = format!("{},weight\n", rows[0]);
        for (i, r) in rows[1..].iter().enumerate() {
            text.push_str(&format!("{r},{}\n", weight(i)));
        }
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    weighted("heavy.csv", &|i| if i == 2 { "1e200" } else { "1" });
    weighted("huge.csv", &|_| "1e308");
    weighted("wide.csv", &|i| if i == 2 { "1e12" } else { "1" });
    let chin = |file: &str| {
        sweepfit(
            dir.path(),
            &[
                "fit",
                file,
                "--law",
                "chinchilla",
                "--backend",
                "cpu",
                "--starts",
                "4",
                "--out",
                &format!("c-{file}"),
            ],
        )
    };
    fails_with(
        &chin("heavy.csv"),
        &[
            "the weights span a ratio of 1.0e200",
            "heavy.csv line 4 has weight 1e200",
            "weight 0",
        ],
    );
    fails_with(
        &chin("huge.csv"),
        &["the weights add up past f64's range", "huge.csv line"],
    );
    chin("wide.csv").assert_ok("weights within 1e15 of each other");
}

/// Options that named a column twice or the wrong column ran and wrote
/// wrong output: `--by N,N` shifted the table's columns by one, `--by
/// loss` "fitted" a group per row exactly; simulate wrote a formula's
/// `loss` as a second loss column fit cannot read, and a column for a
/// name the formula does not have. Each is refused, naming it.
#[test]
fn columns_named_twice_or_in_the_wrong_role_are_refused() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    for (by, want) in [
        ("N,N", "--by names column 'N' twice"),
        ("loss", "--by loss: that is the loss column"),
    ] {
        for cmd in ["fit", "eval"] {
            let run = sweepfit(
                dir.path(),
                &[
                    cmd,
                    csv,
                    "--law",
                    "chinchilla",
                    "--backend",
                    "cpu",
                    "--by",
                    by,
                    "--out",
                    "o",
                ],
            );
            fails_with(&run, &[want]);
        }
    }
    let simulate = |law: &str, at: &[&str]| {
        let mut args = vec!["simulate", "--out", "s.csv", "--law", law];
        args.extend(["--param", "a=1", "--param", "b=2"]);
        for a in at {
            args.extend(["--at", a]);
        }
        sweepfit(dir.path(), &args)
    };
    fails_with(
        &simulate("a*loss + b", &["loss=1:10:10"]),
        &["--at loss: 'loss' is a column of the simulated CSV"],
    );
    fails_with(
        &simulate("a*x + b", &["x=1:10:10", "y=1"]),
        &["--at y: the formula has no name y"],
    );
    assert!(!dir.path().join("s.csv").exists());
    simulate("a*x + b", &["x=1:10:10"]).assert_ok("a formula's own names");
}

// ---- Repeated options ----

#[test]
fn a_name_given_twice_is_refused_not_dropped() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    let law = "E + A/N^alpha + B/D^beta";
    ok(
        dir.path(),
        &[
            "fit",
            csv,
            "--law",
            law,
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "f",
        ],
    );
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "predict",
                "--fit",
                "f/fit.json",
                "--at",
                "D=1e9",
                "--at",
                "D=1e10",
                "--at",
                "N=1e9",
            ],
            &["--at D is given twice"],
        ),
        (
            &[
                "simulate", "--law", law, "--param", "E=1", "--param", "E=2", "--out", "s.csv",
            ],
            &["--param E is given twice"],
        ),
        (
            &[
                "simulate", "--law", law, "--at", "N=1e8", "--at", "N=1e9", "--out", "s.csv",
            ],
            &["--at N is given twice"],
        ),
        (
            &[
                "fit",
                csv,
                "--fix",
                "alpha=0.3",
                "--fix",
                "alpha=0.4",
                "--out",
                "o",
            ],
            &["--fix alpha is given twice (0.3 and 0.4)"],
        ),
        (
            &[
                "fit",
                csv,
                "--law",
                law,
                "--fix",
                "alpha=0.3",
                "--fix",
                "alpha=0.4",
                "--out",
                "o",
            ],
            &["--fix alpha is given twice"],
        ),
        (
            &[
                "eval", csv, "--law", law, "--fix", "beta=0.3", "--fix", "beta=0.3", "--out", "o",
            ],
            &["--fix beta is given twice"],
        ),
        (
            &[
                "predict",
                "--fit",
                "f/fit.json",
                "--at",
                "D=1e9",
                "--at",
                "N=1e9",
                "--at",
                "N=1e9",
            ],
            &["--at N is given twice"],
        ),
    ];
    for (args, want) in cases {
        let run = sweepfit(dir.path(), args);
        fails_with(&run, want);
    }
    assert!(!dir.path().join("o").exists());
    // One list per variable is the way to ask for several values.
    let run = ok(
        dir.path(),
        &[
            "predict",
            "--fit",
            "f/fit.json",
            "--at",
            "D=1e9,1e10",
            "--at",
            "N=1e9",
        ],
    );
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.dump());
}

// ---- Line numbers: CRLF, blank lines, quoted fields over several lines ----

/// `lines` joined with CRLF, a blank line after the header and after the
/// second line, and the first data row's label quoted over two lines: the
/// line of `lines[k]` (0-based, k >= 2) in the file is k + 3.
fn awkward(lines: &[String]) -> String {
    let mut out = String::new();
    for (k, l) in lines.iter().enumerate() {
        out.push_str(l);
        out.push_str("\r\n");
        if k == 0 || k == 1 {
            out.push_str("\r\n");
        }
    }
    out
}

#[test]
fn errors_name_the_line_an_editor_shows() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // A label over two lines, then a bad loss on lines[6]: line 6 + 3 + 1.
    let first: Vec<&str> = lines[1].splitn(2, ',').collect();
    lines[1] = format!("\"m0\r\nsecond line\",{}", first[1]);
    let mut cells: Vec<String> = lines[6].split(',').map(String::from).collect();
    cells[3] = "abc".into();
    lines[6] = cells.join(",");
    std::fs::write(dir.path().join("bad.csv"), awkward(&lines)).unwrap();
    let at = "bad.csv:10: column 'loss' (4)";
    for law in [
        &[][..],
        &["--law", "chinchilla"],
        &["--law", "E + A/N^alpha + B/D^beta"],
    ] {
        let mut args = vec!["fit", "bad.csv", "--backend", "cpu", "--out", "o"];
        args.extend_from_slice(law);
        fails_with(&sweepfit(dir.path(), &args), &[at]);
    }
    // A ragged row.
    let mut ragged = lines.clone();
    cells[3] = "2.5".into();
    ragged[6] = cells.join(",") + ",extra";
    std::fs::write(dir.path().join("ragged.csv"), awkward(&ragged)).unwrap();
    let run = sweepfit(
        dir.path(),
        &["fit", "ragged.csv", "--backend", "cpu", "--out", "o"],
    );
    fails_with(&run, &["ragged.csv:10: expected 4 fields"]);

    // A manifest, and a log it lists, written the same way.
    let log: Vec<String> = [
        "step,loss",
        "0,4.0",
        "1,3.5",
        "2,3.2",
        "3,3.0",
        "-4,2.9",
        "5,2.8",
    ]
    .map(String::from)
    .to_vec();
    std::fs::write(dir.path().join("log.csv"), awkward(&log)).unwrap();
    let manifest: Vec<String> = [
        "run,file,N,tokens_per_step,step_col,loss_col",
        "\"a\r\nb\",log.csv,1e6,4,step,loss",
        "c,log.csv,2e6,4,step,loss",
        "d,log.csv,3e6,4,step,loss",
        "e,log.csv,x,4,step,loss",
    ]
    .map(String::from)
    .to_vec();
    std::fs::write(dir.path().join("m.csv"), awkward(&manifest)).unwrap();
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            "--manifest",
            "m.csv",
            "--backend",
            "cpu",
            "--out",
            "o",
        ],
    );
    fails_with(&run, &["m.csv:8: column 'N' (3)"]);
    let fixed: Vec<String> = manifest.iter().map(|l| l.replace(",x,", ",4e6,")).collect();
    std::fs::write(dir.path().join("m.csv"), awkward(&fixed)).unwrap();
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            "--manifest",
            "m.csv",
            "--backend",
            "cpu",
            "--out",
            "o",
        ],
    );
    fails_with(&run, &["log.csv:8: column 'step' (1)"]);
    assert!(!dir.path().join("o").exists());
}

// ---- Errors that point to the right place ----

#[test]
fn errors_point_at_the_formula_or_row_at_fault() {
    let dir = tempdir();
    let csv = chinchilla_csv(dir.path(), 4, 0.002);
    let csv = csv.to_str().unwrap();
    let law = "E + A/N^alpha + B/D^beta";
    // A constant that is not finite: the formula's column, not a data row.
    for (extra, col, what) in [
        (" + 1/0", 28, "1/0 is inf"),
        (" + C*log(0)", 30, "log(0) is -inf"),
        (" + C*sqrt(-1)", 30, "sqrt(-1) is NaN"),
        (" + 1e400*C", 28, "1e400 is inf"),
    ] {
        let f = format!("{law}{extra}");
        let run = sweepfit(
            dir.path(),
            &["fit", csv, "--law", &f, "--backend", "cpu", "--out", "o"],
        );
        fails_with(&run, &[&format!("--law, column {col}: {what}")]);
        assert!(!run.stderr.contains("line 2"), "{}", run.dump());
    }
    // A syntax error in a def is the def's, at its line in the file.
    let defs =
        "name = \"x\"\nformula = \"E + A/N^alpha + B/Dp^beta\"\n\n[defs]\nDp = \"D * (1 + \"\n";
    std::fs::write(dir.path().join("defs.toml"), defs).unwrap();
    let run = sweepfit(
        dir.path(),
        &[
            "fit",
            csv,
            "--law-file",
            "defs.toml",
            "--backend",
            "cpu",
            "--out",
            "o",
        ],
    );
    fails_with(&run, &["defs.toml:5:6: defs.Dp, column 10"]);
    // A loss whose square overflows: its row, not line 2 or every start.
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[6].split(',').map(String::from).collect();
    cells[3] = "1e308".into();
    lines[6] = cells.join(",");
    std::fs::write(dir.path().join("big.csv"), lines.join("\n") + "\n").unwrap();
    for extra in [&[][..], &["--law", "chinchilla"], &["--law", law]] {
        let mut args = vec!["fit", "big.csv", "--backend", "cpu", "--out", "o"];
        args.extend_from_slice(extra);
        let run = sweepfit(dir.path(), &args);
        fails_with(
            &run,
            &[
                "big.csv:7: column 'loss' (4): 1e308 is too large",
                "--space log",
            ],
        );
    }
    // In log space the same loss is fine.
    ok(
        dir.path(),
        &[
            "fit",
            "big.csv",
            "--law",
            law,
            "--space",
            "log",
            "--backend",
            "cpu",
            "--out",
            "log",
        ],
    );
    // A count written as 1e1 is a whole number.
    ok(
        dir.path(),
        &[
            "fit",
            csv,
            "--law",
            law,
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "f",
        ],
    );
    let run = ok(
        dir.path(),
        &[
            "predict",
            "--fit",
            "f/fit.json",
            "--at",
            "N=1e9",
            "--at",
            "D=1e9:1e10:1e1",
        ],
    );
    assert_eq!(run.stdout.lines().count(), 11, "{}", run.dump());
    assert!(!dir.path().join("o").exists());
}

// ---- inputs that once panicked, hung or fitted silently wrong ----

/// A looplm sweep whose curves were logged at partly different token
/// values: the whole table fills a shared grid, a fold's rows do not.
const PARTLY_SHARED: &str = "run,N,tokens,loss
r0,1e+08,5e+08,5.1846
r0,1e+08,1e+09,4.8034
r0,1e+08,2e+09,4.5014
r0,1e+08,4e+09,4.2633
r0,1e+08,8e+09,4.0760
r1,2e+08,0,10.1897
r1,2e+08,5e+08,4.8856
r2,1e+08,0,10.4887
r2,1e+08,2e+08,5.8373
r2,1e+08,5e+08,5.1846
r2,1e+08,1e+09,4.8034
r2,1e+08,2e+09,4.5014
r2,1e+08,4e+09,4.2633
r2,1e+08,8e+09,4.0760
";

#[test]
fn folds_that_fill_less_of_the_grid_than_the_table_are_fitted_not_a_panic() {
    let dir = tempdir();
    std::fs::write(dir.path().join("s.csv"), PARTLY_SHARED).unwrap();
    let cpu = ["--starts", "4", "--backend", "cpu"];
    for (i, extra) in [
        &["--protocol", "tokens"][..],
        &["--protocol", "test-where", "--test-where", "run=r0"],
        &[
            "--law",
            "chinchilla",
            "--protocol",
            "tokens",
            "--min-tokens",
            "1",
        ],
    ]
    .iter()
    .enumerate()
    {
        let out = format!("e{i}");
        let mut args = vec!["eval", "s.csv", "--out", &out];
        args.extend_from_slice(&cpu);
        args.extend_from_slice(extra);
        ok(dir.path(), &args);
        let json = read_json(&dir.path().join(&out).join("eval.json"));
        let folds = json["folds"].as_array().unwrap();
        assert!(!folds.is_empty(), "{extra:?}: no fold");
        for f in folds {
            assert!(
                f["rmse"].as_f64().is_some_and(f64::is_finite),
                "{extra:?}: {f}"
            );
        }
    }
    let mut args = vec![
        "compare",
        "s.csv",
        "--law=looplm",
        "--law=E + A/N^alpha + B/(tokens + k)^beta",
        "--protocol",
        "test-where",
        "--test-where",
        "run=r0",
        "--out",
        "c",
    ];
    args.extend_from_slice(&cpu);
    ok(dir.path(), &args);
}

/// `sweepfit args` in `cwd`, killed after `secs` seconds: Some(run) if
/// it ended by itself.
fn within(cwd: &Path, args: &[&str], secs: u64) -> Option<Run> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sweepfit"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > end {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Some(Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn pictures_of_values_no_figure_can_show_are_refused_not_drawn_forever() {
    let dir = tempdir();
    let d = dir.path();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    write(
        "nan.csv",
        "run,N,T,tokens,loss,pred\na,NaN,1,1e9,3.5,3.4\na,NaN,1,2e9,3.3,3.3\n",
    );
    write(
        "huge.csv",
        "run,N,T,tokens,loss,pred\n,1e8,1,1e9,1.7e308,3.5\n,1e8,1,2e9,1.0,3.5\n",
    );
    write(
        "wide.csv",
        "run,N,T,tokens,loss,pred\n,1e8,1,1e9,1e308,-1e308\n,1e8,1,2e9,1.0,3.5\n",
    );
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["plot", "--data", "nan.csv", "--out", "a.svg"],
            &["nan.csv:2", "'N'", "NaN"],
        ),
        (
            &["plot", "--data", "huge.csv", "--out", "b.svg"],
            &["y axis", "beyond"],
        ),
        (
            &["plot", "--data", "wide.csv", "--out", "c.svg"],
            &["y axis", "beyond"],
        ),
    ];
    for (args, want) in cases {
        let run = within(d, args, 60).unwrap_or_else(|| panic!("{args:?} ran past a minute"));
        assert!(
            !run.stderr.contains("panicked"),
            "{args:?}:\n{}",
            run.dump()
        );
        fails_with(&run, want);
        assert!(
            !d.join(args[args.len() - 1]).exists(),
            "{args:?} left a picture"
        );
    }
    // Residuals of -inf are left out of the picture of the rest.
    let args = [
        "plot",
        "--data",
        "wide.csv",
        "--residuals",
        "--out",
        "d.svg",
    ];
    let run = within(d, &args, 60).expect("the residuals ran past a minute");
    assert!(run.ok && d.join("d.svg").exists(), "{}", run.dump());
}

/// base.csv of `chinchilla_csv` with row `line` (1 = the first data row)
/// edited by `f`, and a `split` column (every third row `test`).
fn edited(dir: &Path, line: usize, f: impl Fn(&mut Vec<String>)) -> String {
    let text = std::fs::read_to_string(chinchilla_csv(dir, 8, 0.002)).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let mut cells: Vec<String> = l.split(',').map(String::from).collect();
        if i == line {
            f(&mut cells);
        }
        cells.push(match i {
            0 => "split".into(),
            i if i % 3 == 0 => "test".into(),
            _ => "train".into(),
        });
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[test]
fn a_laws_domain_is_checked_and_filters_keep_every_column() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("neg.csv"), edited(d, 5, |c| c[1] = "-1".into())).unwrap();
    std::fs::write(d.join("split.csv"), edited(d, 0, |_| {})).unwrap();
    let cpu = ["--starts", "2", "--backend", "cpu"];
    // N = -1 is outside looplm's and chinchilla's declared domain, with or
    // without a filter (which once read the file through another reader).
    for (i, extra) in [
        &[][..],
        &["--stride", "2"],
        &["--law", "chinchilla"],
        &["--law", "chinchilla", "--min-tokens", "0"],
    ]
    .iter()
    .enumerate()
    {
        let out = format!("n{i}");
        let mut args = vec!["fit", "neg.csv", "--out", &out];
        args.extend_from_slice(&cpu);
        args.extend_from_slice(extra);
        fails_with(
            &sweepfit(d, &args),
            &["neg.csv:6", "'N'", "must be > 0", "found -1"],
        );
    }
    // A bare formula declares no domain: the same row is data.
    ok(
        d,
        &[
            "fit",
            "neg.csv",
            "--law",
            "E + A/(N + 2)^alpha + B/tokens^beta",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "f",
        ],
    );
    // Filters keep the columns --test-where reads, and thin each curve to
    // every other row of its own in token order.
    let mut args = vec![
        "fit",
        "split.csv",
        "--law",
        "chinchilla",
        "--stride",
        "2",
        "--min-tokens",
        "1e9",
        "--test-where",
        "split=test",
        "--out",
        "s",
    ];
    args.extend_from_slice(&cpu);
    ok(d, &args);
    let pred = std::fs::read_to_string(d.join("s/pred.csv")).unwrap();
    let mut kept: Vec<(String, f64)> = pred
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[2].parse().unwrap())
        })
        .collect();
    kept.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // chinchilla_csv: six runs, tokens 5e8 * (1..=8); from 1e9 on, every
    // other point: 1e9, 2e9, 3e9, 4e9.
    let mut want = Vec::new();
    for n in [5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9] {
        for i in [2.0, 4.0, 6.0, 8.0] {
            want.push((format!("m{n}"), 5e8 * i));
        }
    }
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(kept, want);
    assert!(pred.lines().skip(1).any(|l| l.ends_with(",test")));
}

#[test]
fn scores_that_do_not_exist_are_not_printed_as_numbers() {
    let dir = tempdir();
    let d = dir.path();
    // A constant target: R² is undefined, not 1 - SSE/(rounding).
    std::fs::write(
        d.join("const.csv"),
        "run,N,tokens,loss\na,1e8,1e9,0.1\na,1e8,2e9,0.1\na,1e8,3e9,0.1\n",
    )
    .unwrap();
    let fixed = [
        "--fix",
        "E=0.2",
        "--fix",
        "A=1",
        "--fix",
        "alpha=1",
        "--backend",
        "cpu",
    ];
    let mut args = vec![
        "fit",
        "const.csv",
        "--law",
        "E + A/tokens^alpha",
        "--out",
        "c",
    ];
    args.extend_from_slice(&fixed);
    let run = ok(d, &args);
    assert!(run.stdout.contains("R² -"), "{}", run.dump());
    assert!(!run.stdout.contains("ran 1 of up to"), "{}", run.dump());
    let json = read_json(&d.join("c/fit.json"));
    assert!(json["metrics"]["r2"].is_null(), "{}", json["metrics"]);
    // Held-out rows where the fitted law is infinite are named.
    std::fs::write(
        d.join("inf.csv"),
        "run,N,tokens,loss,split\na,1e8,10,5,train\na,1e8,100,4,train\n\
         a,1e8,1000,3.6,train\na,1e8,10000,3.4,train\na,1e8,1,9,test\n",
    )
    .unwrap();
    let run = ok(
        d,
        &[
            "fit",
            "inf.csv",
            "--law",
            "E + A/log(tokens)",
            "--test-where",
            "split=test",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "i",
        ],
    );
    assert!(
        run.stdout
            .contains("not finite at 1 held-out row(s) (first at inf.csv line 6"),
        "{}",
        run.dump()
    );
    // Folds that score nothing are neither numbers nor ranked.
    let csv = chinchilla_csv(d, 8, 0.002);
    let csv = csv.to_str().unwrap();
    let run = ok(
        d,
        &[
            "eval",
            csv,
            "--law",
            "chinchilla",
            "--by",
            "run",
            "--protocol",
            "sizes",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "e",
        ],
    );
    let json = read_json(&d.join("e/eval.json"));
    for f in json["folds"].as_array().unwrap() {
        assert_eq!(f["scored_points"], 0, "{f}");
        assert!(f["mape"].is_null() && f["rmse"].is_null(), "{f}");
    }
    assert!(
        !run.stdout.contains("NaN") && !run.stdout.contains(" 0%"),
        "{}",
        run.dump()
    );
    let run = ok(
        d,
        &[
            "compare",
            csv,
            "--law=chinchilla",
            "--law=E + A/N^alpha + B/(tokens + k)^beta",
            "--by",
            "run",
            "--protocol",
            "sizes",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "k",
        ],
    );
    assert!(run.stdout.contains("not ranked"), "{}", run.dump());
    let table = std::fs::read_to_string(d.join("k/compare.csv")).unwrap();
    for l in table.lines().filter(|l| l.contains(",sizes,")) {
        assert_eq!(l.split(',').nth(2), Some(""), "ranked: {l}");
    }
}

#[test]
fn outputs_never_hold_two_columns_of_one_name() {
    let dir = tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d, 8, 0.002);
    let csv = csv.to_str().unwrap();
    let header = |path: &str| -> Vec<String> {
        let text = std::fs::read_to_string(d.join(path)).unwrap();
        text.lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect()
    };
    let unique = |h: &[String]| {
        let mut s = h.to_vec();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), h.len(), "{h:?}");
    };
    ok(
        d,
        &[
            "fit",
            csv,
            "--law",
            "chinchilla",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "a",
        ],
    );
    // A pred.csv fitted again, by groups of N: its pred is the new fit's.
    ok(
        d,
        &[
            "fit",
            "a/pred.csv",
            "--law",
            "chinchilla",
            "--by",
            "N",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "b",
        ],
    );
    let h = header("b/pred.csv");
    unique(&h);
    let json = read_json(&d.join("b/fit.json"));
    let pred = std::fs::read_to_string(d.join("b/pred.csv")).unwrap();
    let row: Vec<f64> = pred
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .skip(1)
        .map(|c| c.parse().unwrap_or(f64::NAN))
        .collect();
    let at = |name: &str| row[h.iter().position(|c| c == name).unwrap() - 1];
    let g = &json["groups"][0]["params"];
    let p = |name: &str| g[name].as_f64().unwrap();
    let want = p("E") + p("A") / at("N").powf(p("alpha")) + p("B") / at("tokens").powf(p("beta"));
    assert!(
        (at("pred") - want).abs() <= 1e-9 * want,
        "{} against {want}",
        at("pred")
    );
    // --by N, predicted at another N: the group's N stands apart.
    ok(
        d,
        &[
            "predict",
            "--fit",
            "b/fit.json",
            "--at",
            "N=1e9",
            "--at",
            "tokens=1e9,2e9",
            "--out",
            "p.csv",
        ],
    );
    let h = header("p.csv");
    unique(&h);
    assert!(
        h.contains(&"by_N".to_string()) && h.contains(&"N".to_string()),
        "{h:?}"
    );
}

#[test]
fn a_term_constant_within_every_group_is_fixed_as_without_groups() {
    let dir = tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d, 8, 0.002);
    let run = ok(
        d,
        &[
            "fit",
            csv.to_str().unwrap(),
            "--law",
            "chinchilla",
            "--by",
            "run",
            "--starts",
            "4",
            "--backend",
            "cpu",
            "--out",
            "g",
        ],
    );
    assert!(
        run.stdout
            .contains("N takes one value in each --by group's rows"),
        "{}",
        run.dump()
    );
    let json = read_json(&d.join("g/fit.json"));
    for g in json["groups"].as_array().unwrap() {
        assert_eq!(g["params"]["A"], 0.0, "{g}");
    }
}

#[test]
fn a_formula_may_start_with_a_sign_and_a_file_in_the_way_of_out_is_named() {
    let dir = tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d, 8, 0.002);
    let csv = csv.to_str().unwrap();
    let run = ok(
        d,
        &[
            "fit",
            csv,
            "--law",
            "-E + A/N^alpha + B/tokens^beta",
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            "a",
        ],
    );
    assert!(
        run.stdout.contains("law: custom = -E + A/N^alpha"),
        "{}",
        run.dump()
    );
    let run = sweepfit(
        d,
        &["fit", csv, "--law", "chinchilla", "--out", "a/fit.json/b"],
    );
    fails_with(&run, &["cannot create the folder", "fit.json is a file"]);
}

#[test]
fn a_simulation_whose_losses_overflow_is_refused_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let run = sweepfit(d, &["simulate", "--out", "s.csv", "--noise", "1e308"]);
    fails_with(&run, &["a simulated loss is inf", "--noise 1e308"]);
    assert!(!d.join("s.csv").exists() && !d.join("s.csv.truth.json").exists());
}

#[test]
fn a_fit_edited_past_its_laws_declarations_and_schedules_it_never_read_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d, 8, 0.002);
    let csv = csv.to_str().unwrap();
    ok(
        d,
        &[
            "fit",
            csv,
            "--law",
            "chinchilla",
            "--starts",
            "4",
            "--backend",
            "cpu",
            "--out",
            "a",
        ],
    );
    let mut json = read_json(&d.join("a/fit.json"));
    // Rounding past a bound is not an edit: the untouched file reads.
    let at = ["--at", "N=1e9", "--at", "tokens=1e10"];
    let mut args = vec!["predict", "--fit", "a/fit.json"];
    args.extend_from_slice(&at);
    ok(d, &args);
    json["params"]["E"] = serde_json::json!(-5.0);
    std::fs::write(d.join("a/edited.json"), json.to_string()).unwrap();
    let mut args = vec!["predict", "--fit", "a/edited.json"];
    args.extend_from_slice(&at);
    fails_with(
        &sweepfit(d, &args),
        &[
            "a/edited.json",
            "params.E = -5",
            "positive = true",
            "edited",
        ],
    );
    std::fs::write(d.join("lr.csv"), "run,step,lr\nm5e7,0,1\nm5e7,1,1\n").unwrap();
    let run = sweepfit(
        d,
        &[
            "plot",
            "--fit",
            "a/fit.json",
            "--schedule",
            "lr.csv",
            "--out",
            "p.svg",
        ],
    );
    fails_with(&run, &["lr.csv", "sums along no steps"]);
    assert!(!d.join("p.svg").exists());
}

/// `--law my-law.toml` reads the law file (as --law-file would) rather
/// than failing as a formula at its '.', a missing one is named, and
/// `laws my-law.toml` checks a file: a declaration of a parameter the
/// formula lacks is refused at its line and column.
#[test]
fn a_law_files_path_given_as_the_law_is_read_and_checked() {
    let dir = tempdir();
    let d = dir.path();
    chinchilla_csv(d, 8, 0.002);
    let text = sweepfit(d, &["laws", "chinchilla"]).stdout;
    std::fs::write(d.join("mine.toml"), &text).unwrap();
    let args = |law: &'static str, out: &'static str| {
        vec![
            "fit",
            "sweep.csv",
            "--law",
            law,
            "--starts",
            "2",
            "--backend",
            "cpu",
            "--out",
            out,
        ]
    };
    ok(d, &args("mine.toml", "a"));
    let fit = read_json(&d.join("a/fit.json"));
    assert_eq!(fit["law"], "chinchilla", "{fit}");
    fails_with(
        &sweepfit(d, &args("gone.toml", "b")),
        &["--law gone.toml", "no law file"],
    );
    // [params.alpha] misspelt: its line is where the header is.
    let line = text
        .lines()
        .position(|l| l.trim() == "[params.alpha]")
        .unwrap()
        + 1;
    std::fs::write(
        d.join("typo.toml"),
        text.replace("[params.alpha]", "[params.alhpa]"),
    )
    .unwrap();
    let at = format!(
        "typo.toml:{line}:9: params.alhpa is declared but the formula has no parameter alhpa"
    );
    fails_with(&sweepfit(d, &["laws", "typo.toml"]), &[&at]);
    fails_with(&sweepfit(d, &args("typo.toml", "c")), &[&at]);
    assert!(!d.join("c").exists());
    // A sound file is printed as it is.
    assert_eq!(ok(d, &["laws", "mine.toml"]).stdout, text);
}

/// A CSV saved as UTF-16 is named as such (it once read as one column of
/// NUL bytes, "expected 5 fields ..., found 1"), a control byte in a cell
/// is shown escaped, and a demo whose simulated losses overflow a linear
/// fit names its options (it once named "the simulated sweep:0" and told
/// of a --space that demo does not take).
#[test]
fn encodings_and_control_bytes_are_named() {
    let dir = tempdir();
    let d = dir.path();
    let text = "run,N,T,tokens,loss\na,1e8,1,1e9,3.0\n";
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    std::fs::write(d.join("u16.csv"), le).unwrap();
    fails_with(
        &sweepfit(d, &["fit", "u16.csv", "--backend", "cpu"]),
        &["u16.csv: the file is UTF-16 text, not UTF-8"],
    );
    std::fs::write(
        d.join("nul.csv"),
        "run,N,T,tokens,loss\na,1e8,1,1e9,3.0\0\n",
    )
    .unwrap();
    fails_with(
        &sweepfit(d, &["fit", "nul.csv", "--backend", "cpu"]),
        &["nul.csv:2: column 'loss' (5): '3.0\\0' is not a number"],
    );
    // A pred.csv drawn on its own is read as every other input: its
    // lines and columns counted from 1, not as the CSV library's record
    // and field numbers from 0.
    std::fs::write(
        d.join("pred.csv"),
        "run,N,T,tokens,loss,pred\na,1e8,1,1e9,3.0,3.1\na,abc,1,2e9,2.9,3.0\n",
    )
    .unwrap();
    fails_with(
        &sweepfit(d, &["plot", "--data", "pred.csv", "--out", "p.svg"]),
        &["pred.csv:3: column 'N' (2): 'abc' is not a number"],
    );
    let run = sweepfit(d, &["demo", "--warmup", "1e308", "--backend", "cpu"]);
    fails_with(
        &run,
        &[
            "a simulated loss is 1e308",
            "--warmup 1e308",
            "is too large",
        ],
    );
    assert!(!run.stderr.contains("--space"), "{}", run.stderr);
}
