//! An optimum you can trust: two start sets and two backends reach the
//! same parameters wherever the identifiability report says the data
//! determine them, and the reported standard errors are as large as the
//! scatter of fits to repeated simulated sweeps.

mod common;

use std::path::Path;

use common::ok;
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The LoopLM preset sweep: 20 curves (5 sizes x 4 values of T), 100
/// points each, noise sd 0.02 (about 1% of the loss).
fn looplm_sweep(dir: &Path) -> String {
    let csv = dir.join("sweep.csv");
    ok(
        dir,
        &[
            "simulate",
            "--out",
            csv.to_str().unwrap(),
            "--points",
            "100",
            "--seed",
            "5",
        ],
    );
    csv.to_str().unwrap().to_string()
}

fn fit(dir: &Path, csv: &str, out: &str, extra: &[&str]) -> Value {
    let out = dir.join(out);
    let mut args = vec!["fit", csv, "--out", out.to_str().unwrap(), "--force"];
    args.extend(extra);
    ok(dir, &args);
    read_json(&out.join("fit.json"))
}

/// Parameters the report of `r` calls identified: free, and not flagged.
fn identified(r: &Value) -> Vec<String> {
    let id = &r["identifiability"];
    let flagged: Vec<&str> = id["flagged"]
        .as_array()
        .expect("a flagged list")
        .iter()
        .map(|f| f["param"].as_str().unwrap())
        .collect();
    id["standard_errors"]
        .as_object()
        .expect("standard errors")
        .keys()
        .filter(|k| !flagged.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Every identified parameter of `a` equal in `b` to 1e-6 (relative).
fn assert_same_identified(a: &Value, b: &Value, what: &str) {
    let names = identified(a);
    assert!(names.len() >= 5, "{what}: only {names:?} identified");
    for n in &names {
        let (x, y) = (
            a["params"][n].as_f64().unwrap(),
            b["params"][n].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() <= 1e-6 * x.abs(),
            "{what}: {n} = {x} against {y} ({:.1e} relative)",
            (x - y).abs() / x.abs()
        );
    }
}

fn assert_converged(r: &Value, what: &str) {
    let g = r["polish"]["grad_norm"].as_f64().unwrap();
    assert!(g <= 1e-6, "{what}: grad_norm {g}");
    assert_eq!(r["polish"]["converged"], true, "{what}");
}

/// Two start sets (seeds) on the CPU, and the GPU against the CPU from
/// the same starts, agree to 1e-6 on every identified parameter. Without
/// the polish the search stops where its rules say, and parameters along
/// the weak directions differ by percents.
#[test]
fn start_sets_and_backends_agree_on_what_the_data_determine() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = looplm_sweep(d);
    let starts = ["--starts", "64"];
    let cpu0 = fit(
        d,
        &csv,
        "cpu0",
        &[&starts[..], &["--seed", "0", "--backend", "cpu"]].concat(),
    );
    let cpu1 = fit(
        d,
        &csv,
        "cpu1",
        &[&starts[..], &["--seed", "1", "--backend", "cpu"]].concat(),
    );
    assert_converged(&cpu0, "cpu seed 0");
    assert_converged(&cpu1, "cpu seed 1");
    assert_same_identified(&cpu0, &cpu1, "seed 0 vs seed 1");
    if common::adapter().is_none() {
        assert!(
            std::env::var("SWEEPFIT_REQUIRE_GPU").as_deref() != Ok("1"),
            "SWEEPFIT_REQUIRE_GPU=1 but no GPU adapter"
        );
        eprintln!("no GPU adapter: the GPU half of the check is skipped");
        return;
    }
    let gpu0 = fit(
        d,
        &csv,
        "gpu0",
        &[&starts[..], &["--seed", "0", "--backend", "gpu"]].concat(),
    );
    assert_eq!(gpu0["backend"]["kind"], "gpu");
    assert_converged(&gpu0, "gpu seed 0");
    assert_same_identified(&cpu0, &gpu0, "cpu vs gpu");
}

/// A normal quantile's worth of checks on the standard errors: over
/// repeated sweeps simulated from one law with independent noise, each
/// parameter's estimates scatter as its reported standard error says.
/// - The z-scores (estimate - truth) / SE must cover the truth at 95% in
///   at least 85% of 40 sweeps (a binomial(40, 0.95) count falls below 34
///   with probability under 2%), per parameter: errors too small by a
///   factor 1.5 cover about 80% and fail.
/// - Their spread must be 1 within [0.7, 1.4]: errors too large by 1.5
///   give a spread of 0.67 and fail.
#[test]
fn standard_errors_match_the_scatter_of_repeated_fits() {
    let dir = common::tempdir();
    let d = dir.path();
    let law = "E + A/N^alpha + B/D^beta";
    let truth = [
        ("E", 1.8),
        ("A", 400.0),
        ("alpha", 0.34),
        ("B", 900.0),
        ("beta", 0.29),
    ];
    let sweeps = 40;
    let mut z: Vec<Vec<f64>> = vec![Vec::new(); truth.len()];
    for seed in 0..sweeps {
        let csv = d.join(format!("s{seed}.csv"));
        let mut args: Vec<String> = ["simulate", "--law", law, "--noise", "0.02", "--seed"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(seed.to_string());
        args.extend([
            "--out".into(),
            csv.to_str().unwrap().into(),
            "--force".into(),
        ]);
        for (n, v) in truth {
            args.extend(["--param".into(), format!("{n}={v}")]);
        }
        args.extend(["--at", "N=5e7:2e9:6:log", "--at", "D=1e8:2e10:30:log"].map(String::from));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(d, &argv);
        let r = fit(
            d,
            csv.to_str().unwrap(),
            "fit",
            &["--law", law, "--starts", "16", "--backend", "cpu"],
        );
        assert_converged(&r, &format!("sweep {seed}"));
        for (k, (n, v)) in truth.iter().enumerate() {
            let est = r["params"][n].as_f64().unwrap();
            let se = r["identifiability"]["standard_errors"][n].as_f64().unwrap();
            assert!(
                se.is_finite() && se > 0.0,
                "sweep {seed}: SE of {n} is {se}"
            );
            z[k].push((est - v) / se);
        }
    }
    for (k, (n, _)) in truth.iter().enumerate() {
        let covered = z[k].iter().filter(|x| x.abs() <= 1.96).count();
        let mean = z[k].iter().sum::<f64>() / sweeps as f64;
        let sd =
            (z[k].iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (sweeps - 1) as f64).sqrt();
        assert!(
            covered >= 34,
            "{n}: the 95% interval covered the truth in {covered} of {sweeps} sweeps (z = {:?})",
            z[k]
        );
        assert!(
            (0.7..=1.4).contains(&sd),
            "{n}: the z-scores' spread is {sd:.2}, not 1 (z = {:?})",
            z[k]
        );
    }
}

/// The profile intervals of the weak T term cover at the nominal rate.
/// Over 30 sweeps simulated at the demo's noise (sd 0.02; 100 points per
/// curve), the 95% profile intervals of C, gamma and t3 must each cover
/// the truth in at least 25 (a true 95% coverage falls below 25 of 30
/// with probability 1.6%). An open end counts as covering that side, so
/// the intervals of gamma and t3 must also be closed at both ends in at
/// least 25 sweeps: an interval that is always open would cover
/// trivially. (On these sweeps the asymptotic ± 1.96 SE intervals cover C
/// in 23 of 30, and the README's bootstrap about 70%.)
#[test]
fn profile_intervals_of_the_weak_term_cover_the_truth() {
    let dir = common::tempdir();
    let d = dir.path();
    let names = ["C", "gamma", "t3"];
    let sweeps = 30;
    let (mut covered, mut closed) = ([0; 3], [0; 3]);
    for seed in 100..100 + sweeps {
        let csv = d.join(format!("s{seed}.csv"));
        let seed_text = seed.to_string();
        ok(
            d,
            &[
                "simulate",
                "--out",
                csv.to_str().unwrap(),
                "--points",
                "100",
                "--seed",
                &seed_text,
                "--force",
            ],
        );
        let truth = read_json(&d.join(format!("s{seed}.csv.truth.json")));
        let r = fit(
            d,
            csv.to_str().unwrap(),
            "fit",
            &[
                "--starts",
                "32",
                "--seed",
                "0",
                "--backend",
                "cpu",
                "--profile",
                "C,gamma,t3",
            ],
        );
        let p = &r["profile"];
        assert_eq!(p["level"], 0.95);
        for (k, n) in names.iter().enumerate() {
            let t = truth["params"][n].as_f64().unwrap();
            let i = &p["params"][n];
            let (lo, hi) = (i["lo"].as_f64(), i["hi"].as_f64());
            if lo.is_none_or(|lo| lo <= t) && hi.is_none_or(|hi| t <= hi) {
                covered[k] += 1;
            }
            if lo.is_some() && hi.is_some() {
                closed[k] += 1;
            }
        }
    }
    for (k, n) in names.iter().enumerate() {
        assert!(
            covered[k] >= 25,
            "{n}: the 95% profile interval covered the truth in {} of {sweeps} sweeps",
            covered[k]
        );
    }
    for k in [1, 2] {
        assert!(
            closed[k] >= 25,
            "{}: the profile interval was closed in only {} of {sweeps} sweeps",
            names[k],
            closed[k]
        );
    }
}

/// For a law linear in its parameters the objective is exactly quadratic,
/// so the profile interval is the asymptotic one, estimate ± z SE, to
/// rounding: a check of the statistic, its threshold and the grid's
/// interpolation against the closed form. And what --profile refuses.
#[test]
fn a_linear_law_profiles_to_its_asymptotic_interval() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = d.join("line.csv");
    ok(
        d,
        &[
            "simulate",
            "--law",
            "a + b*x",
            "--param",
            "a=2",
            "--param",
            "b=0.5",
            "--at",
            "x=1:20:40",
            "--noise",
            "0.1",
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    let csv = csv.to_str().unwrap();
    let r = fit(
        d,
        csv,
        "fit",
        &["--law", "a + b*x", "--profile", "--level", "0.9"],
    );
    let z = 1.644_853_626_951_472_2; // the 0.95 normal quantile: 90% two-sided
    for n in ["a", "b"] {
        let v = r["params"][n].as_f64().unwrap();
        let se = r["identifiability"]["standard_errors"][n].as_f64().unwrap();
        let i = &r["profile"]["params"][n];
        let (lo, hi) = (i["lo"].as_f64().unwrap(), i["hi"].as_f64().unwrap());
        for (got, want) in [(lo, v - z * se), (hi, v + z * se)] {
            assert!(
                (got - want).abs() <= 1e-6 * se,
                "{n}: profile end {got}, asymptotic {want} (SE {se})"
            );
        }
    }
    for (extra, needle) in [
        (vec!["--profile", "c"], "the law has no parameter c"),
        (vec!["--profile", "--by", "x"], "not with --by"),
    ] {
        let out = d.join("bad");
        let mut args = vec![
            "fit",
            csv,
            "--law",
            "a + b*x",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let run = common::sweepfit(d, &args);
        run.assert_failed(needle);
        assert!(run.stderr.contains(needle), "{}", run.dump());
    }
}

/// Every bootstrap replicate finishes like the fit: the GPU (an f32
/// search) and the CPU reach the same replicate optima, to 1e-6 on every
/// parameter the fit's report calls identified.
#[test]
fn bootstrap_replicates_agree_across_backends() {
    if common::adapter().is_none() {
        assert!(
            std::env::var("SWEEPFIT_REQUIRE_GPU").as_deref() != Ok("1"),
            "SWEEPFIT_REQUIRE_GPU=1 but no GPU adapter"
        );
        eprintln!("no GPU adapter: skipped");
        return;
    }
    let dir = common::tempdir();
    let d = dir.path();
    let csv = looplm_sweep(d);
    let args = |backend| {
        vec![
            "--starts",
            "64",
            "--seed",
            "0",
            "--bootstrap",
            "8",
            "--resample",
            "points",
            "--backend",
            backend,
        ]
    };
    let cpu = fit(d, &csv, "cpu", &args("cpu"));
    let gpu = fit(d, &csv, "gpu", &args("gpu"));
    let names: Vec<&str> = cpu["params"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let identified = identified(&cpu);
    let samples = |r: &Value| {
        r["bootstrap"]["resamples"][0]["samples"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (a, b) = (samples(&cpu), samples(&gpu));
    assert_eq!(a.len(), 8);
    assert_eq!(b.len(), 8);
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        for (j, n) in names.iter().enumerate() {
            if !identified.iter().any(|i| i == n) {
                continue;
            }
            let (x, y) = (x[j].as_f64().unwrap(), y[j].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-6 * x.abs(),
                "replicate {k}: {n} = {x} on the CPU, {y} on the GPU"
            );
        }
    }
}

/// The LoopLM law at raw parameters `p` (E, A, alpha, t1, B, beta, t2, C,
/// gamma, t3), written out here rather than taken from sweepfit.
fn looplm(p: &[f64; 10], n: f64, t: f64, d: f64) -> f64 {
    p[0] + p[1] / (n + p[3]).powf(p[2])
        + p[4] / (d + p[6]).powf(p[5])
        + p[7] / (t + p[9]).powf(p[8])
}

/// The MSE objective (weighted mean of r²/2) over the CSV's rows.
fn mse(p: &[f64; 10], rows: &[[f64; 5]]) -> f64 {
    let (mut s, mut w) = (0.0, 0.0);
    for r in rows {
        let res = looplm(p, r[0], r[1], r[2]) - r[3];
        s += r[4] * res * res / 2.0;
        w += r[4];
    }
    s / w
}

/// The reported optimum is stationary by a gradient computed here, by
/// central differences (Richardson-extrapolated: the law's third
/// derivatives along alpha and beta are large) of an objective written out
/// in this test: every free parameter off its bounds has |θ ∂f/∂θ| below
/// 1e-8 f. The same
/// measure a tenth of a standard error away is far above that, so the
/// check can tell.
#[test]
fn the_polished_optimum_is_stationary_by_an_independent_gradient() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let csv = looplm_sweep(dir);
    let r = fit(dir, &csv, "o", &["--backend", "cpu"]);
    let names = [
        "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
    ];
    let mut p = [0.0; 10];
    for (i, n) in names.iter().enumerate() {
        p[i] = r["params"][n].as_f64().unwrap();
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("run,N,T,tokens,loss,weight"));
    let rows: Vec<[f64; 5]> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3], v[4]]
        })
        .collect();
    let f = mse(&p, &rows);
    let reported = r["objective"]["value"].as_f64().unwrap();
    assert!(
        (f - reported).abs() <= 1e-12 * f,
        "objective here {f}, reported {reported}"
    );
    // θ_i ∂f/∂θ_i / f by central differences with relative steps 1e-4 and
    // 5e-5, extrapolated to step 0 (Richardson), which removes the h²
    // term.
    let scaled_gradient = |p: &[f64; 10], i: usize| -> f64 {
        let central = |rel: f64| {
            let h = rel * p[i].abs();
            let (mut up, mut down) = (*p, *p);
            up[i] += h;
            down[i] -= h;
            (mse(&up, &rows) - mse(&down, &rows)) / (2.0 * h)
        };
        (4.0 * central(5e-5) - central(1e-4)) / 3.0 * p[i].abs() / mse(p, &rows)
    };
    let mut checked = 0;
    for (i, n) in names.iter().enumerate() {
        if p[i] == 0.0 {
            continue; // on its bound: the gradient may point out of it
        }
        let g = scaled_gradient(&p, i);
        assert!(g.abs() < 1e-8, "{n}: θ ∂f/∂θ / f = {g:e} at the optimum");
        checked += 1;
        let se = r["identifiability"]["standard_errors"][n].as_f64().unwrap();
        let mut off = p;
        off[i] += 0.1 * se;
        let g_off = scaled_gradient(&off, i);
        assert!(
            g_off.abs() > 1e-6,
            "{n}: only {g_off:e} a tenth of an SE away: the check cannot tell"
        );
    }
    assert!(checked >= 9, "{checked} parameters checked");
}

/// An eval fold is the fit of its training rows: leaving T = 4 out gives
/// the objective, and the parameters the data determine, that a fresh `fit`
/// of the other rows gives, and its held-out RMSE is the one its parameters
/// make on the T = 4 rows, computed here. (The weak T term's flagged
/// parameters may differ between the two at the same objective, and with
/// them the extrapolation to T = 4.)
#[test]
fn an_eval_fold_is_a_fresh_fit_of_its_training_rows() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let csv = looplm_sweep(dir);
    let ev = dir.join("ev");
    ok(
        dir,
        &[
            "eval",
            &csv,
            "--protocol",
            "leave-t",
            "--backend",
            "cpu",
            "--out",
            ev.to_str().unwrap(),
        ],
    );
    let e = read_json(&ev.join("eval.json"));
    let fold = e["folds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fold"] == "leave out T = 4")
        .expect("a fold leaving T = 4 out")
        .clone();

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let t_of = |l: &str| l.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    let (train, held): (Vec<&str>, Vec<&str>) = lines.partition(|l| t_of(l) != 4.0);
    let train_csv = dir.join("train.csv");
    std::fs::write(&train_csv, format!("{header}\n{}\n", train.join("\n"))).unwrap();
    let r = fit(dir, train_csv.to_str().unwrap(), "o", &["--backend", "cpu"]);

    let (fo, ro) = (
        fold["objective"].as_f64().unwrap(),
        r["objective"]["value"].as_f64().unwrap(),
    );
    assert!((fo - ro).abs() <= 1e-9 * ro, "fold {fo}, fresh fit {ro}");
    assert_eq!(fold["train_points"], train.len());
    for name in identified(&r) {
        let (a, b) = (
            fold["params"][&name].as_f64().unwrap(),
            r["params"][&name].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-6 * b.abs(),
            "{name}: fold {a}, fresh fit {b}"
        );
    }
    let names = [
        "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
    ];
    let mut p = [0.0; 10];
    for (i, n) in names.iter().enumerate() {
        p[i] = fold["params"][n].as_f64().unwrap();
    }
    let sq: f64 = held
        .iter()
        .map(|l| {
            let v: Vec<f64> = l.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
            (looplm(&p, v[0], v[1], v[2]) - v[3]).powi(2)
        })
        .sum();
    let rmse = (sq / held.len() as f64).sqrt();
    let fold_rmse = fold["rmse"].as_f64().unwrap();
    assert!(
        (rmse - fold_rmse).abs() <= 1e-6 * rmse,
        "held-out RMSE {fold_rmse}, from the fold's parameters {rmse}"
    );
}
