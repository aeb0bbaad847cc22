//! End-to-end tests of `sweepfit predict`: simulate a small sweep, fit it,
//! predict from the fit and compare with the law evaluated in the library.

mod common;
use common::{ok, sweepfit};

use std::path::Path;

use sweepfit::lawfit::{read_law_fit, LawFit};

/// Simulate a 50-point-per-curve sweep and fit it from 8 starts on the CPU.
fn fitted(dir: &Path) -> LawFit {
    ok(dir, &["simulate", "--out", "sweep.csv", "--points", "50"]);
    ok(
        dir,
        &[
            "fit",
            "sweep.csv",
            "--starts",
            "8",
            "--backend",
            "cpu",
            "--out",
            "fit",
        ],
    );
    let fit = read_law_fit(&dir.join("fit/fit.json")).unwrap();
    assert_eq!(fit.law.variables, ["N", "D", "T"]);
    for (name, v) in &fit.report.params {
        assert!(v.is_finite(), "{name} = {v}");
    }
    fit
}

/// The fitted law at (N, tokens, T), evaluated in the library.
fn law_at(fit: &LawFit, n: f64, d: f64, t: f64) -> f64 {
    let p: Vec<f64> = fit
        .law
        .params
        .iter()
        .map(|k| fit.report.params[k])
        .collect();
    fit.law.eval(&[n, d, t], &p)
}

fn parse_csv(text: &str) -> (String, Vec<[f64; 4]>) {
    let mut lines = text.lines();
    let header = lines.next().expect("a header").to_string();
    let rows = lines
        .map(|l| {
            let v: Vec<f64> = l
                .split(',')
                .map(|x| x.parse().unwrap_or_else(|_| panic!("bad row {l:?}")))
                .collect();
            assert_eq!(v.len(), 4, "{l:?}");
            [v[0], v[1], v[2], v[3]]
        })
        .collect();
    (header, rows)
}

#[test]
fn predict_matches_the_law_and_refuses_to_overwrite() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let p = fitted(dir);
    let base = ["predict", "--fit", "fit/fit.json"];

    // To stdout: N 2.8e9 and 1e8 (in that order), T 1..4, 100 token values.
    let mut args = base.to_vec();
    args.extend([
        "--N",
        "2.8e9,1e8",
        "--T",
        "1:4:4",
        "--tokens",
        "1e9:40e9:100",
    ]);
    let run = ok(dir, &args);
    let (header, rows) = parse_csv(&run.stdout);
    assert_eq!(header, "N,T,tokens,pred");
    assert_eq!(rows.len(), 2 * 4 * 100);
    // 2.8e9 is beyond the fitted sizes (53M..1.36B) and 40B beyond the
    // fitted tokens (0..20B): warnings, not errors.
    assert!(
        run.stderr
            .contains("warning: 1 of the 2 values of N lie outside the fitted range")
            && run.stderr.contains("extrapolates"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("of the 100 values of D lie outside the fitted range [0, 2.000e10]"),
        "{}",
        run.stderr
    );
    let step = (40e9 - 1e9) / 99.0;
    for (i, r) in rows.iter().enumerate() {
        let (ni, ti, di) = (i / 400, (i / 100) % 4, i % 100);
        assert_eq!(r[0], [2.8e9, 1e8][ni], "row {i}");
        assert_eq!(r[1], (ti + 1) as f64, "row {i}");
        let want_d = 1e9 + step * di as f64;
        assert!((r[2] - want_d).abs() <= 1e-6 * step, "row {i}: {}", r[2]);
        let want = law_at(&p, r[0], r[2], r[1]);
        assert!(
            (r[3] - want).abs() <= 1e-12 * want.abs(),
            "row {i}: {} vs {want}",
            r[3]
        );
    }
    assert_eq!((rows[0][2], rows[99][2]), (1e9, 40e9));

    // To a file, log-spaced tokens; then the same --out again is refused.
    let mut args = base.to_vec();
    args.extend([
        "--N",
        "5.3e7",
        "--T",
        "2",
        "--tokens",
        "1e8:1e10:5:log",
        "--out",
        "pred.csv",
    ]);
    let run = ok(dir, &args);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let text = std::fs::read_to_string(dir.join("pred.csv")).unwrap();
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, "N,T,tokens,pred");
    assert_eq!(rows.len(), 5);
    for (r, d) in rows.iter().zip([1e8, 1e8_f64.sqrt() * 1e9_f64.sqrt(), 1e9]) {
        assert!((r[2] - d).abs() <= 1e-9 * d, "{} vs {d}", r[2]);
    }
    assert_eq!(rows[4][2], 1e10);
    for r in &rows {
        let want = law_at(&p, r[0], r[2], r[1]);
        assert!((r[3] - want).abs() <= 1e-12 * want.abs());
    }

    std::fs::write(dir.join("pred.csv"), "keep me\n").unwrap();
    let refused = sweepfit(dir, &args);
    assert!(!refused.ok, "overwrote pred.csv:\n{}", refused.stderr);
    assert!(
        refused.stderr.contains("pred.csv") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("pred.csv")).unwrap(),
        "keep me\n"
    );
    args.push("--force");
    ok(dir, &args);
    assert_eq!(std::fs::read_to_string(dir.join("pred.csv")).unwrap(), text);

    // Bad range text: the error names the option and the text; nothing written.
    for (opt, bad, needle) in [
        ("--tokens", "1e9:40e9:x", "COUNT"),
        ("--N", "1_000", "not a number"),
        ("--T", "inf", "not a finite number"),
        ("--tokens", "1:2:1", "START == STOP"),
    ] {
        let mut args = base.to_vec();
        args.extend([
            "--N", "1e9", "--T", "1", "--tokens", "1e9", "--out", "bad.csv",
        ]);
        let i = args.iter().position(|a| *a == opt).unwrap();
        args[i + 1] = bad;
        let run = sweepfit(dir, &args);
        assert!(!run.ok, "{opt} {bad} was accepted");
        assert!(
            run.stderr.contains(opt) && run.stderr.contains(bad) && run.stderr.contains(needle),
            "{opt} {bad}: {}",
            run.stderr
        );
        assert!(!dir.join("bad.csv").exists());
    }
}

/// One prediction interface for every fit: `--at` works on a looplm or
/// chinchilla fit (the same rows as --N/--T/--tokens), a chinchilla fit
/// needs no T, and a formula's fit takes --N and --tokens as spellings of
/// its --at N= and D=.
#[test]
fn predict_takes_at_and_the_named_spellings_for_every_fit() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    fitted(dir);
    let by_flags = ok(
        dir,
        &[
            "predict",
            "--fit",
            "fit/fit.json",
            "--N",
            "1e9",
            "--T",
            "2",
            "--tokens",
            "1e9:4e9:4",
        ],
    );
    let by_at = ok(
        dir,
        &[
            "predict",
            "--fit",
            "fit/fit.json",
            "--at",
            "N=1e9",
            "--at",
            "T=2",
            "--at",
            "D=1e9:4e9:4",
        ],
    );
    assert_eq!(by_flags.stdout, by_at.stdout);
    assert_eq!(by_at.stdout.lines().count(), 5);
    let twice = sweepfit(
        dir,
        &[
            "predict",
            "--fit",
            "fit/fit.json",
            "--N",
            "1e9",
            "--at",
            "N=2e9",
            "--T",
            "1",
            "--tokens",
            "1e9",
        ],
    );
    twice.assert_failed("N given twice");
    assert!(twice.stderr.contains("given twice"), "{}", twice.dump());
    let unknown = sweepfit(
        dir,
        &[
            "predict",
            "--fit",
            "fit/fit.json",
            "--at",
            "V=3",
            "--tokens",
            "1e9",
        ],
    );
    unknown.assert_failed("a variable the law does not have");
    assert!(
        unknown.stderr.contains("no variable V"),
        "{}",
        unknown.dump()
    );

    // chinchilla on a sweep with four values of T: no --T needed.
    ok(
        dir,
        &[
            "fit",
            "sweep.csv",
            "--law",
            "chinchilla",
            "--min-tokens",
            "1e8",
            "--starts",
            "8",
            "--backend",
            "cpu",
            "--out",
            "chin",
        ],
    );
    let run = ok(
        dir,
        &[
            "predict",
            "--fit",
            "chin/fit.json",
            "--at",
            "N=1e9",
            "--at",
            "tokens=1e9,2e9",
        ],
    );
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.dump());

    // A formula's fit: --N and --tokens are its N and D.
    ok(
        dir,
        &[
            "fit",
            "sweep.csv",
            "--law",
            "E + A/N^alpha + B/(D + t2)^beta",
            "--starts",
            "8",
            "--backend",
            "cpu",
            "--out",
            "formula",
        ],
    );
    let flags = ok(
        dir,
        &[
            "predict",
            "--fit",
            "formula/fit.json",
            "--N",
            "1e9",
            "--tokens",
            "1e9,2e9",
        ],
    );
    let at = ok(
        dir,
        &[
            "predict",
            "--fit",
            "formula/fit.json",
            "--at",
            "N=1e9",
            "--at",
            "D=1e9,2e9",
        ],
    );
    assert_eq!(flags.stdout, at.stdout);
    let no_t = sweepfit(
        dir,
        &[
            "predict",
            "--fit",
            "formula/fit.json",
            "--T",
            "1",
            "--at",
            "N=1e9",
            "--at",
            "D=1e9",
        ],
    );
    no_t.assert_failed("--T on a law without T");
    assert!(no_t.stderr.contains("no variable T"), "{}", no_t.dump());
}

/// A law fit's prediction says where it extrapolates: values of a variable
/// outside its fitted range get a warning naming the range; values inside
/// get none.
#[test]
fn predict_of_a_law_fit_warns_outside_the_fitted_range() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let csv = common::chinchilla_csv(dir, 10, 0.002);
    ok(
        dir,
        &[
            "fit",
            csv.to_str().unwrap(),
            "--law",
            "E + A/N^alpha + B/D^beta",
            "--starts",
            "8",
            "--backend",
            "cpu",
            "--out",
            "f",
        ],
    );
    let inside = ok(
        dir,
        &[
            "predict",
            "--fit",
            "f/fit.json",
            "--at",
            "N=1e8,1e9",
            "--at",
            "D=1e9",
        ],
    );
    assert!(!inside.stderr.contains("warning"), "{}", inside.dump());
    let outside = ok(
        dir,
        &[
            "predict",
            "--fit",
            "f/fit.json",
            "--at",
            "N=7e9,1e9",
            "--at",
            "D=1e9",
        ],
    );
    assert!(
        outside
            .stderr
            .contains("1 of the 2 values of N lie outside the fitted range [5.000e7, 1.600e9]"),
        "{}",
        outside.dump()
    );
    assert!(
        !outside.stderr.contains("values of D"),
        "{}",
        outside.dump()
    );
}

/// A fit.json written before every law had one driver (no law_file; its
/// curves as `per_config`) still predicts and plots: as the looplm law at
/// its ten parameters, with bands from its bootstrap samples (written in
/// its own parameter order).
#[test]
fn an_older_fit_json_still_predicts_and_plots() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let names = [
        "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
    ];
    let p = [1.8, 268.0, 0.3, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];
    let params: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(p)
        .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
        .collect();
    // Two replicates: the fit, and the fit with E 0.1 higher.
    let mut high = p.to_vec();
    high[0] += 0.1;
    let per_config: Vec<serde_json::Value> = [(53e6, 1.0), (1.36e9, 4.0)]
        .iter()
        .map(|&(n, t)| {
            serde_json::json!({"run": format!("r{n}"), "N": n, "T": t, "points": 50,
                "tokens_min": 0.0, "tokens_max": 2e10, "r2": 0.99, "rmse": 0.02, "mape": 0.4})
        })
        .collect();
    let old = serde_json::json!({
        "law": "looplm",
        "formula": "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma",
        "params": params,
        "fixed": [],
        "objective": {"loss": "mse", "space": "linear", "delta": 1e-3, "value": 2e-4},
        "metrics": {"r2": 0.99, "rmse": 0.02, "mae": 0.016, "mape": 0.45,
                    "per_config": per_config},
        "starts": {"count": 324, "at_best": 4, "status_counts": {"converged": 324},
                   "iterations": 100, "evaluations": 120, "start_evaluations": 9000},
        "backend": {"kind": "cpu", "device": "2 threads"},
        "seconds": 1.5, "points": 100, "configs": 2, "notes": [],
        "bootstrap": {"seed": 0, "level": 0.9, "seconds": 0.5, "resamples": [
            {"kind": "curves", "replicates": 2, "converged": 2, "converged_fraction": 1.0,
             "used": 2, "params": {}, "samples": [p.to_vec(), high]}]}
    });
    std::fs::write(dir.join("old.json"), old.to_string()).unwrap();
    let run = ok(
        dir,
        &[
            "predict", "--fit", "old.json", "--N", "1e9", "--T", "2", "--tokens", "1e9,2e9",
        ],
    );
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("N,T,tokens,pred,lo_curves,hi_curves"),
        "{}",
        run.dump()
    );
    let law = |e: f64, n: f64, t: f64, d: f64| {
        e + p[1] / (n + p[3]).powf(p[2])
            + p[4] / (d + p[6]).powf(p[5])
            + p[7] / (t + p[9]).powf(p[8])
    };
    for (line, d) in lines.zip([1e9, 2e9]) {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(&v[..3], [1e9, 2.0, d]);
        let want = law(p[0], 1e9, 2.0, d);
        assert!((v[3] - want).abs() <= 1e-12 * want, "{line}");
        // The band spans the two replicates (percentiles 5% and 95%).
        let (lo, hi) = (want + 0.005, want + 0.095);
        assert!(
            (v[4] - lo).abs() < 1e-9 && (v[5] - hi).abs() < 1e-9,
            "{line}"
        );
    }
    // Its pictures, from data of its variables.
    ok(dir, &["simulate", "--out", "sweep.csv", "--points", "20"]);
    ok(
        dir,
        &[
            "plot",
            "--fit",
            "old.json",
            "--data",
            "sweep.csv",
            "--out",
            "old.svg",
        ],
    );
    let svg = std::fs::read_to_string(dir.join("old.svg")).unwrap();
    assert!(svg.contains("looplm law") && svg.contains("T = 4, N = 1.36B"));
}
