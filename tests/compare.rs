//! `sweepfit compare`: several laws under the same protocols, ranked.

mod common;

use std::path::Path;

use common::{ok, sweepfit};
use serde_json::Value;

/// A chinchilla sweep with noise (6 sizes x 30 token counts).
fn chinchilla_csv(d: &Path) -> String {
    let path = d.join("ch.csv");
    let p = path.to_str().unwrap();
    ok(
        d,
        &[
            "simulate",
            "--law",
            "chinchilla",
            "--param",
            "E=1.8",
            "--param",
            "A=400",
            "--param",
            "alpha=0.34",
            "--param",
            "B=410",
            "--param",
            "beta=0.28",
            "--at",
            "N=1e7:1e10:6:log",
            "--at",
            "D=1e8:1e11:30:log",
            "--noise",
            "0.01",
            "--seed",
            "1",
            "--out",
            p,
        ],
    );
    p.to_string()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_law_the_data_came_from_ranks_first() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d);
    let out = d.join("cmp");
    let run = ok(
        d,
        &[
            "compare",
            &csv,
            "--law",
            "E + A/N^alpha + B/tokens",
            "--law",
            "chinchilla",
            "--law",
            "E + B/tokens^beta",
            "--law",
            "kaplan",
            "--protocol",
            "sizes,tokens",
            "--backend",
            "cpu",
            "--plot",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // The picture: one panel per protocol, a row per law.
    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(out.join("compare.png")).unwrap(),
    ));
    let info = png.read_info().unwrap();
    let (w, h) = (info.info().width, info.info().height);
    assert_eq!(w, 900);
    assert!(h > 2 * 4 * 34, "{h}");
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(svg.contains("sizes: mean held-out RMSE") && svg.contains("(does not apply)"));
    let r = read(&out.join("compare.json"));
    let laws = r["laws"].as_array().unwrap();
    assert_eq!(laws.len(), 4);
    for p in r["ranking"].as_array().unwrap() {
        assert_eq!(p["laws"][0], "chinchilla", "{p}");
    }
    // The law without N has no sizes folds, and says so.
    let no_n = laws
        .iter()
        .find(|l| l["law"] == "E + B/tokens^beta")
        .unwrap();
    let protocols: Vec<&str> = no_n["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["tokens"]);
    assert!(
        run.stdout.contains("(protocol does not apply)"),
        "{}",
        run.stdout
    );
    // The true law has the lowest AIC and BIC, each from its own fit.
    let best = |key: &str| {
        laws.iter()
            .min_by(|a, b| {
                a[key]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b[key].as_f64().unwrap())
            })
            .unwrap()["law"]
            .clone()
    };
    assert_eq!(
        (best("aic"), best("bic")),
        ("chinchilla".into(), "chinchilla".into())
    );
    let ch = laws.iter().find(|l| l["law"] == "chinchilla").unwrap();
    let (n, f, k) = (180.0, ch["objective"].as_f64().unwrap(), 6.0);
    let aic = 2.0 * k + n * ((2.0 * std::f64::consts::PI * 2.0 * f).ln() + 1.0);
    assert!(
        (ch["aic"].as_f64().unwrap() - aic).abs() < 1e-9 * aic.abs(),
        "{ch}"
    );
    assert_eq!(ch["free_params"], 5);
    // compare.csv: per law its fit on all rows and each protocol it ran.
    let text = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    assert_eq!(text.lines().count(), 1 + 4 + 2 + 2 + 1 + 2);
    assert!(
        text.lines().any(|l| l.starts_with("chinchilla,sizes,1,")),
        "{text}"
    );
    // The laws ran side by side; each reports exactly what it does alone.
    let alone = d.join("alone");
    ok(
        d,
        &[
            "compare",
            &csv,
            "--law",
            "chinchilla",
            "--protocol",
            "sizes,tokens",
            "--backend",
            "cpu",
            "--out",
            alone.to_str().unwrap(),
        ],
    );
    let mut by_itself = read(&alone.join("compare.json"))["laws"][0].clone();
    let mut among = ch.clone();
    for v in [&mut by_itself, &mut among] {
        common::drop_seconds(v);
    }
    assert!(by_itself == among, "{by_itself}\n{among}");
}

#[test]
fn law_files_from_a_folder_and_a_robust_loss() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d);
    let laws = d.join("laws");
    std::fs::create_dir(&laws).unwrap();
    std::fs::write(
        laws.join("a.toml"),
        "name = \"plain\"\nformula = \"E + A/N^alpha + B/D^beta\"\naxis = \"D\"\n\
         [variables]\nN = \"N\"\nD = \"tokens\"\n",
    )
    .unwrap();
    std::fs::write(laws.join("notes.txt"), "not a law").unwrap();
    let out = d.join("cmp");
    let run = ok(
        d,
        &[
            "compare",
            &csv,
            "--laws-dir",
            laws.to_str().unwrap(),
            "--law",
            "kaplan",
            "--loss",
            "huber",
            "--protocol",
            "tokens",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let r = read(&out.join("compare.json"));
    let names: Vec<&str> = r["laws"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["law"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kaplan", "plain"]);
    assert!(r["laws"][0]["aic"].is_null());
    assert!(run.stdout.contains("No AIC or BIC"), "{}", run.stdout);
    assert_eq!(r["ranking"][0]["laws"][0], "plain");
    // A law no protocol applies to keeps its fit on all rows.
    let no_axis = d.join("no-axis.toml");
    std::fs::write(
        &no_axis,
        "name = \"no-axis\"\nformula = \"E + A/N^alpha + B/D^beta\"\n\
         [variables]\nN = \"N\"\nD = \"tokens\"\n",
    )
    .unwrap();
    let out = d.join("cmp2");
    let run = ok(
        d,
        &[
            "compare",
            &csv,
            "--law-file",
            no_axis.to_str().unwrap(),
            "--law",
            "chinchilla",
            "--protocol",
            "tokens",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let r = read(&out.join("compare.json"));
    assert_eq!(r["laws"][1]["law"], "no-axis");
    assert_eq!(r["laws"][1]["protocols"].as_array().unwrap().len(), 0);
    assert!(r["laws"][1]["r2"].as_f64().unwrap() > 0.99);
    assert_eq!(r["ranking"][0]["laws"][0], "chinchilla");
    assert!(
        run.stdout.contains("(protocol does not apply)"),
        "{}",
        run.stdout
    );
}

#[test]
fn without_laws_or_with_a_bad_one_it_says_what_is_wrong() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = chinchilla_csv(d);
    let run = sweepfit(d, &["compare", &csv, "--backend", "cpu"]);
    run.assert_failed("no laws");
    assert!(
        run.stderr.contains("give the laws to compare"),
        "{}",
        run.stderr
    );
    let run = sweepfit(d, &["compare", &csv, "--law", "nope", "--backend", "cpu"]);
    run.assert_failed("an unknown law");
    assert!(run.stderr.contains("no built-in law"), "{}", run.stderr);
    let run = sweepfit(
        d,
        &[
            "compare",
            &csv,
            "--law",
            "chinchilla",
            "--law",
            "E + A/Q^a",
            "--backend",
            "cpu",
        ],
    );
    run.assert_failed("a law over a missing column");
    assert!(run.stderr.contains("law E + A/Q^a"), "{}", run.stderr);
    assert!(!d.join("sweepfit-compare").exists());
}

/// With `--by run`, every fold fits each run apart: on SLDBench's
/// fine-tuning task, the test-where fold's parameters per run and its
/// pooled held-out scores are those of `fit --by run --test-where` (the
/// same fits to 1e-6); a comparison counts each run's parameters, and
/// each run's starts, and keeps the test-where fold where a tokens fold
/// holds out the same rows.
#[test]
fn by_fits_every_group_of_every_fold_apart() {
    let d = common::tempdir();
    let data = common::shared_data().join("sldbench/rectified.csv");
    let data = data.to_str().unwrap();
    let common_args = [
        "--by",
        "run",
        "--test-where",
        "split=test",
        "--starts",
        "8",
        "--backend",
        "cpu",
    ];
    let mut fit = vec!["fit", data, "--law", "rectified", "--out", "fit"];
    fit.extend(common_args);
    ok(d.path(), &fit);
    let mut cmp = vec![
        "compare",
        data,
        "--law",
        "rectified",
        "--law",
        "E + B/D^beta",
        "--protocol",
        "tokens,test-where",
        "--out",
        "cmp",
    ];
    cmp.extend(common_args);
    ok(d.path(), &cmp);
    let fit = read(&d.path().join("fit/fit.json"));
    let cmp = read(&d.path().join("cmp/compare.json"));
    let law = &cmp["laws"][0];
    assert_eq!(law["law"], "rectified");
    let eval = &law["eval"];
    assert_eq!(eval["by"], serde_json::json!(["run"]));
    // The test-where rows are those the tokens cut at 50% holds out too:
    // each protocol keeps its fold.
    let folds = eval["folds"].as_array().unwrap();
    let fold = folds
        .iter()
        .find(|f| f["protocol"] == "test-where")
        .unwrap();
    let twin = folds
        .iter()
        .find(|f| f["fold"] == "first 50% of D")
        .unwrap();
    assert_eq!(twin["scored_points"], fold["scored_points"]);
    let groups = fit["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 42);
    assert_eq!(fold["groups"].as_object().unwrap().len(), groups.len());
    // The same optimum: the evaluation conditions the search over all
    // rows, the fit over its training rows, so the last digits differ.
    let close = |a: &Value, b: &Value, tol: f64, what: &str| {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= tol * b.abs(), "{what}: {a} against {b}");
    };
    for g in groups {
        let key = format!("run={}", g["key"]["run"].as_str().unwrap());
        for (name, v) in g["params"].as_object().unwrap() {
            close(
                &fold["groups"][&key][name],
                v,
                1e-6,
                &format!("{key} {name}"),
            );
        }
    }
    for m in ["r2", "rmse"] {
        close(&fold[m], &fit["test"][m], 1e-8, m);
    }
    assert_eq!(fold["scored_points"], fit["test"]["points"]);
    assert_eq!(law["free_params"], 4 * 42);
    assert_eq!(law["starts"], 8 * 42);
    // Plotting folds with --by is refused before any work, saying why.
    let r = sweepfit(
        d.path(),
        &[
            "eval",
            data,
            "--law",
            "rectified",
            "--by",
            "run",
            "--plot",
            "--out",
            "e",
        ],
    );
    assert!(
        !r.ok && r.stderr.contains("--plot draws one fit per fold"),
        "{}",
        r.stderr
    );
}
