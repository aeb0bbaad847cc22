//! Which names of a law read which columns: every fit says so, `--var`
//! binds a name to a column, a name two columns could answer or a
//! variable left unbound is an error, and the target and weight columns
//! are never a law's names. Also: default rules give way to declarations
//! (a sigmoid fitted as written), and `--by` and `--test-where` agree on
//! equal values.

mod common;

use std::path::{Path, PathBuf};

use common::{chinchilla_csv, ok, sweepfit};
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

/// The Chinchilla sweep with its header replaced.
fn sweep_with_header(dir: &Path, header: &str) -> PathBuf {
    let csv = chinchilla_csv(dir, 20, 0.002);
    let text = std::fs::read_to_string(&csv).unwrap();
    let body = text.split_once('\n').unwrap().1;
    // Columns beyond the four of the sweep repeat its N.
    let extra = header.split(',').count() - 4;
    let mut out = format!("{header}\n");
    for line in body.lines() {
        out.push_str(line);
        let n = line.split(',').nth(1).unwrap();
        for _ in 0..extra {
            out.push(',');
            out.push_str(n);
        }
        out.push('\n');
    }
    let path = dir.join("data.csv");
    std::fs::write(&path, out).unwrap();
    path
}

fn notes(fit: &Value) -> Vec<String> {
    fit["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("no notes: {fit}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

const FORMULA: &str = "E + A/N^alpha + B/D^beta";

#[test]
fn an_unbound_variable_is_refused_and_var_binds_it() {
    let dir = tempdir();
    let d = dir.path();
    sweep_with_header(d, "run,params,tokens,loss");
    let run = sweepfit(
        d,
        &["fit", "data.csv", "--law", FORMULA, "--backend", "cpu"],
    );
    run.assert_failed("a formula whose N is the params column");
    for want in ["'params'", "E, A, N, alpha, B, beta", "--var N=params"] {
        assert!(run.stderr.contains(want), "{want}:\n{}", run.dump());
    }
    assert!(!d.join("sweepfit-out").exists());

    let args = [
        "fit",
        "data.csv",
        "--law",
        FORMULA,
        "--var",
        "N=params",
        "--backend",
        "cpu",
        "--starts",
        "32",
        "--out",
        "o",
    ];
    let run = ok(d, &args);
    let said =
        "note: variables: N = column 'params' (--var), D = column 'tokens' (D reads tokens); \
                parameters: E, A, alpha, B, beta";
    assert!(run.stderr.contains(said), "{}", run.dump());
    let fit = read_json(&d.join("o/fit.json"));
    assert_eq!(fit["variables"]["N"], "params");
    assert_eq!(fit["variables"]["D"], "tokens");
    // fit.json keeps the same line (which goes on to name the axis).
    let line = said.trim_start_matches("note: ");
    assert!(notes(&fit).iter().any(|n| n.starts_with(line)), "{fit}");
    let p = &fit["params"];
    assert!((num(p, "alpha") - 0.34).abs() < 0.02, "{p}");
    assert!((num(p, "beta") - 0.29).abs() < 0.02, "{p}");
    assert!(num(&fit["metrics"], "r2") > 0.999, "{}", fit["metrics"]);

    // eval binds the same way.
    let run = ok(
        d,
        &[
            "eval",
            "data.csv",
            "--law",
            FORMULA,
            "--var",
            "N=params",
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--protocol",
            "tokens",
            "--out",
            "e",
        ],
    );
    assert!(run.stderr.contains(said), "{}", run.dump());
}

#[test]
fn a_name_two_columns_could_answer_is_an_error() {
    let dir = tempdir();
    let d = dir.path();
    sweep_with_header(d, "run,nv,tokens,loss,NV");
    let formula = "E + A/Nv^alpha + B/D^beta";
    let run = sweepfit(
        d,
        &["fit", "data.csv", "--law", formula, "--backend", "cpu"],
    );
    run.assert_failed("Nv with columns nv and NV");
    assert!(
        run.stderr.contains("'nv' (2) and 'NV' (5)"),
        "{}",
        run.dump()
    );
    // The exact spelling, or --var, settles it.
    let run = ok(
        d,
        &[
            "fit",
            "data.csv",
            "--law",
            formula,
            "--var",
            "Nv=NV",
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "o",
        ],
    );
    assert!(
        run.stderr.contains("Nv = column 'NV' (--var)"),
        "{}",
        run.dump()
    );

    // Two columns of one name, for a formula and for a built-in on either
    // driver.
    sweep_with_header(d, "run,N,tokens,loss,N");
    for args in [
        &["--law", FORMULA][..],
        &["--law", "chinchilla"],
        &["--law", "chinchilla", "--by", "run"],
    ] {
        let mut all = vec!["fit", "data.csv", "--backend", "cpu", "--out", "p"];
        all.extend(args);
        let run = sweepfit(d, &all);
        run.assert_failed("two columns N");
        assert!(run.stderr.contains("'N' (2)"), "{args:?}: {}", run.dump());
    }
}

#[test]
fn the_target_and_weight_are_never_a_laws_names() {
    let dir = tempdir();
    let d = dir.path();
    sweep_with_header(d, "run,N,tokens,loss,weight");
    let fit = |args: &[&str]| {
        let mut all = vec!["fit", "data.csv", "--backend", "cpu", "--out", "o"];
        all.extend(args);
        let run = sweepfit(d, &all);
        run.assert_failed(&format!("{args:?}"));
        assert!(!d.join("o").exists());
        run.stderr
    };
    let e = fit(&["--law", "E + A/N^alpha + B/D^beta + c*loss"]);
    assert!(e.contains("name loss is the target column 'loss'"), "{e}");
    let e = fit(&["--law", "E + A/N^alpha + B/D^beta + c*WEIGHT"]);
    assert!(e.contains("the weight column 'weight'"), "{e}");
    let e = fit(&["--law", "chinchilla", "--var", "N=loss"]);
    assert!(e.contains("'loss' is the target column"), "{e}");
    // A law file that binds a variable to the target.
    let law = "name = \"self\"\nformula = \"E + A*X\"\n[variables]\nX = \"loss\"\n";
    std::fs::write(d.join("self.toml"), law).unwrap();
    let e = fit(&["--law-file", "self.toml"]);
    assert!(e.contains("'loss', the target column"), "{e}");
    // --var names a name of the law, once, and a column that exists.
    let e = fit(&["--law", "chinchilla", "--var", "M=N"]);
    assert!(e.contains("the law has no name M (its names: N, D)"), "{e}");
    let e = fit(&["--law", "chinchilla", "--var", "N=params"]);
    assert!(e.contains("no column 'params'"), "{e}");
    let e = fit(&["--law", "chinchilla", "--var", "N=N", "--var", "N=tokens"]);
    assert!(e.contains("--var N is given twice"), "{e}");
    let e = fit(&["--law", "chinchilla", "--var", "N=tokens"]);
    assert!(e.contains("N and D both read column 'tokens'"), "{e}");
    let e = fit(&["--law", "chinchilla", "--var", "N"]);
    assert!(e.contains("expected NAME=COLUMN"), "{e}");
}

/// Muennighoff et al.'s law on columns named as in the paper, N, U and D,
/// and on the declared names; --var overrides both.
#[test]
fn a_variable_finds_its_own_column_then_its_declared_one() {
    let dir = tempdir();
    let d = dir.path();
    let mut rows = Vec::new();
    for n in [1e8f64, 3e8, 1e9] {
        for u in [1e9f64, 4e9] {
            for k in 1..=10 {
                let dd = u * k as f64 * 0.5;
                let un = n.min(0.051 * u);
                let np = un + un * 5.3 * (1.0 - (-(n / un - 1.0) / 5.3).exp());
                let ud = dd.min(u);
                let dp = ud + ud * 15.4 * (1.0 - (-(dd / ud - 1.0) / 15.4).exp());
                rows.push((
                    n,
                    u,
                    dd,
                    1.7 + 400.0 / np.powf(0.34) + 410.0 / dp.powf(0.28),
                ));
            }
        }
    }
    let write = |name: &str, header: &str| {
        let mut text = format!("{header}\n");
        for (n, u, dd, l) in &rows {
            text.push_str(&format!("{n},{u},{dd},{l},{dd}\n"));
        }
        std::fs::write(d.join(name), text).unwrap();
    };
    write("paper.csv", "N,U,D,loss,seen");
    write("long.csv", "N,unique_tokens,tokens,loss,seen");
    for (file, extra, d_col, u_col) in [
        ("paper.csv", None, "D", "U"),
        ("long.csv", None, "tokens", "unique_tokens"),
        ("paper.csv", Some("D=seen"), "seen", "U"),
    ] {
        let out = format!("o-{file}-{}", extra.is_some());
        let mut args = vec![
            "fit",
            file,
            "--law",
            "data-constrained",
            "--backend",
            "cpu",
            "--starts",
            "32",
            "--out",
            &out,
        ];
        if let Some(v) = extra {
            args.extend(["--var", v]);
        }
        let run = ok(d, &args);
        let fit = read_json(&d.join(&out).join("fit.json"));
        assert_eq!(fit["variables"]["D"], d_col, "{}", run.dump());
        assert_eq!(fit["variables"]["U"], u_col, "{}", run.dump());
        assert!(num(&fit["metrics"], "r2") > 0.9999, "{}", run.dump());
        assert!(
            (num(&fit["params"], "E") - 1.7).abs() < 1e-3,
            "{}",
            fit["params"]
        );
    }
}

/// A built-in law says which columns it read too, on stderr and in
/// fit.json.
#[test]
fn the_sweep_reader_states_its_binding() {
    let dir = tempdir();
    let d = dir.path();
    chinchilla_csv(d, 10, 0.002);
    let args = [
        "fit",
        "sweep.csv",
        "--law",
        "chinchilla",
        "--backend",
        "cpu",
        "--starts",
        "8",
        "--out",
        "o",
    ];
    let run = ok(d, &args);
    let said = "variables: N = column 'N' (own name), D = column 'tokens' (declared)";
    assert!(
        run.stderr.contains(&format!("note: {said}")),
        "{}",
        run.dump()
    );
    let fit = read_json(&d.join("o/fit.json"));
    assert!(notes(&fit).iter().any(|n| n.starts_with(said)), "{fit}");
}

/// The OLMo ladder's accuracy sigmoid as its paper writes it: a is negative
/// there (accuracy error falls as x grows), though a divides something.
fn sigmoid_csv(dir: &Path) {
    let (a, k, x0, b) = (-0.6, 1.2, 4.0, 0.9);
    let mut text = String::from("x,loss\n");
    for i in 0..=40 {
        let x = 10.0 * i as f64 / 40.0;
        let y = a / (1.0 + f64::exp(-k * (x - x0))) + b + 0.002 * (i as f64 * 1.7).sin();
        text.push_str(&format!("{x},{y}\n"));
    }
    std::fs::write(dir.join("sig.csv"), text).unwrap();
}

#[test]
fn a_sigmoid_is_recovered_as_written_with_and_without_declarations() {
    let dir = tempdir();
    let d = dir.path();
    sigmoid_csv(d);
    let formula = "a/(1 + exp(-k*(x - x0))) + b";
    let declared = |decl: &str| format!("name = \"sig\"\nformula = \"{formula}\"\n{decl}");
    let laws = [
        ("plain.toml", declared("")),
        (
            "a.toml",
            declared("[params.a]\nlower = -1.0\nupper = 0.0\n"),
        ),
        ("k.toml", declared("[params.k]\nlower = 0.0\n")),
        (
            "both.toml",
            declared("[params.a]\nlower = -1.0\nupper = 0.0\n[params.k]\nlower = 0.0\n"),
        ),
    ];
    for (name, text) in &laws {
        std::fs::write(d.join(name), text).unwrap();
    }
    let mut cases = vec![vec!["--law", formula]];
    for (name, _) in &laws {
        cases.push(vec!["--law-file", name]);
    }
    for (i, case) in cases.iter().enumerate() {
        let out = format!("o{i}");
        let mut args = vec![
            "fit",
            "sig.csv",
            "--backend",
            "cpu",
            "--save-starts",
            "--out",
            &out,
        ];
        args.extend(case);
        let run = ok(d, &args);
        let fit = read_json(&d.join(&out).join("fit.json"));
        let p = &fit["params"];
        // Undeclared, the formula is symmetric: a/(1 + exp(-k u)) + b is
        // also -a/(1 + exp(k u)) + (a + b), so its mirror (0.6, -1.2, 4,
        // 0.3) is the same curve and as good an optimum. What must hold is
        // that a's sign is the data's: starts on both sides of 0.
        let undeclared = i <= 1;
        let mirrored = undeclared && num(p, "a") > 0.0;
        if undeclared {
            let starts = std::fs::read_to_string(d.join(&out).join("starts.csv")).unwrap();
            let a: Vec<f64> = starts
                .lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse().unwrap())
                .collect();
            assert!(
                a.iter().any(|&v| v < 0.0) && a.iter().any(|&v| v > 0.0),
                "a's starts {a:?}"
            );
        }
        let truth = if mirrored {
            [0.6, -1.2, 4.0, 0.3]
        } else {
            [-0.6, 1.2, 4.0, 0.9]
        };
        for ((name, tol), want) in [("a", 0.01), ("k", 0.02), ("x0", 0.02), ("b", 0.01)]
            .into_iter()
            .zip(truth)
        {
            let got = num(p, name);
            assert!(
                (got - want).abs() < tol,
                "{case:?}: {name} = {got}\n{}",
                run.dump()
            );
        }
        assert!(
            num(&fit["metrics"], "r2") > 0.999,
            "{case:?}: {}",
            run.dump()
        );
    }
}

/// 1e3 and 1000 are one value for --by and for --test-where alike.
#[test]
fn by_and_test_where_agree_on_equal_numbers() {
    let dir = tempdir();
    let d = dir.path();
    let mut text = String::from("k,D,loss,split\n");
    for (i, k) in ["1e3", "1000", "2000", "2e3", "1000.0"].iter().enumerate() {
        let scale: f64 = k.parse().unwrap();
        for j in 1..=8 {
            let dd = 1e3 * j as f64;
            let l = 1.0 + scale / 1e3 * 50.0 / dd.powf(0.5) + 1e-3 * ((i * 8 + j) as f64).sin();
            let split = if j == 8 { "test" } else { "train" };
            text.push_str(&format!("{k},{dd},{l},{split}\n"));
        }
    }
    std::fs::write(d.join("k.csv"), text).unwrap();
    let law = "E + B/D^beta";
    let run = ok(
        d,
        &[
            "fit",
            "k.csv",
            "--law",
            law,
            "--by",
            "k",
            "--test-where",
            "split=test",
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "by",
        ],
    );
    let fit = read_json(&d.join("by/fit.json"));
    let keys: Vec<String> = fit["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"]["k"].as_str().unwrap().to_string())
        .collect();
    // Labelled by each group's first row.
    assert_eq!(keys, ["1e3", "2000"], "{}", run.dump());
    // --test-where k=1000 holds out the same rows --by puts in that group.
    let run = sweepfit(
        d,
        &[
            "fit",
            "k.csv",
            "--law",
            law,
            "--by",
            "k",
            "--test-where",
            "k=1000",
            "--backend",
            "cpu",
            "--out",
            "tw",
        ],
    );
    run.assert_failed("every row of a group held out");
    assert!(
        run.stderr
            .contains("every row of group k=1e3 is selected by --test-where"),
        "{}",
        run.dump()
    );
    let run = ok(
        d,
        &[
            "fit",
            "k.csv",
            "--law",
            law,
            "--test-where",
            "k=1000",
            "--backend",
            "cpu",
            "--starts",
            "8",
            "--out",
            "held",
        ],
    );
    let fit = read_json(&d.join("held/fit.json"));
    assert_eq!(num(&fit, "points") as usize, 16, "{}", run.dump());
}

/// simulate --var writes a variable to the column named; a fit reads it
/// back only when told the same binding.
#[test]
fn simulate_writes_the_columns_var_names() {
    let dir = tempdir();
    let d = dir.path();
    let sim = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--law",
            FORMULA,
            "--param",
            "E=1.8",
            "--param",
            "A=400",
            "--param",
            "alpha=0.34",
            "--param",
            "B=900",
            "--param",
            "beta=0.29",
            "--at",
            "N=5e7,1e8,2e8,4e8,8e8",
            "--at",
            "D=1e9:1e10:12:log",
            "--noise",
            "0",
            "--out",
            "sim.csv",
            "--force",
        ];
        args.extend(extra);
        sweepfit(d, &args)
    };
    sim(&["--var", "N=params"]).assert_ok("simulate --var N=params");
    let text = std::fs::read_to_string(d.join("sim.csv")).unwrap();
    assert!(text.starts_with("run,params,D,loss\n"), "{text}");
    let fit = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "sim.csv",
            "--law",
            FORMULA,
            "--backend",
            "cpu",
            "--out",
            "o",
        ];
        args.extend(extra);
        sweepfit(d, &args)
    };
    fit(&[]).assert_failed("N left unbound");
    fit(&["--var", "N=params", "--starts", "16"]).assert_ok("fit --var N=params");
    let p = &read_json(&d.join("o/fit.json"))["params"];
    assert!((num(p, "alpha") - 0.34).abs() < 1e-6, "{p}");
    for (extra, want) in [
        (
            &["--var", "D=loss"][..],
            "'loss' column is not a variable's",
        ),
        (
            &["--var", "Q=x"],
            "the law has no variable Q (its variables: N, D)",
        ),
        (
            &["--var", "N=D"],
            "two variables would be written to column 'D'",
        ),
    ] {
        let run = sim(extra);
        run.assert_failed(&format!("{extra:?}"));
        assert!(run.stderr.contains(want), "{extra:?}: {}", run.dump());
    }
}
