//! Classes of nonlinear least-squares problems on which fitters are
//! judged, each with data made here from a known model: peaks located on
//! the data's axis, sums of exponentials started where the user declares,
//! and periodic terms. The optimum's objective can be no higher than the
//! objective at the parameters the data were made from; a local minimum is
//! many times higher.

mod common;

use std::path::Path;

use common::ok;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::Value;

/// Write `x,loss` rows of `model` at `xs` plus normal noise of sd `sd`.
fn data(dir: &Path, xs: &[f64], model: &dyn Fn(f64) -> f64, sd: f64, seed: u64) -> (String, f64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0, sd.max(f64::MIN_POSITIVE)).unwrap();
    let mut text = String::from("x,loss\n");
    let mut f_truth = 0.0;
    for &x in xs {
        let e = if sd > 0.0 {
            noise.sample(&mut rng)
        } else {
            0.0
        };
        let y = model(x) + e;
        // Shortest round-trip text: the file holds y exactly.
        text.push_str(&format!("{x:?},{y:?}\n"));
        f_truth += 0.5 * e * e;
    }
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    (
        path.to_str().unwrap().to_string(),
        f_truth / xs.len() as f64,
    )
}

fn fit(dir: &Path, data: &str, law: &str, extra: &[&str]) -> Value {
    let file = dir.join("law.toml");
    std::fs::write(&file, law).unwrap();
    let out = dir.join("fit");
    let mut args = vec![
        "fit",
        data,
        "--law-file",
        file.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--force",
    ];
    args.extend(extra);
    ok(dir, &args);
    serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap()
}

fn param(r: &Value, name: &str) -> f64 {
    r["params"][name].as_f64().unwrap()
}

/// A decay and two Gaussian peaks over x = 1..250, with no start declared:
/// the peaks' centres start across the data's range and their widths at
/// its scale (from [-1, 1] they stopped 50 times above the optimum).
#[test]
fn peaks_start_from_the_range_of_the_data() {
    let dir = common::tempdir();
    let d = dir.path();
    let b = [98.78, 0.0105, 100.49, 67.48, 23.13, 71.99, 178.99, 18.39];
    let model = |x: f64| {
        b[0] * (-b[1] * x).exp()
            + b[2] * (-((x - b[3]) / b[4]).powi(2)).exp()
            + b[5] * (-((x - b[6]) / b[7]).powi(2)).exp()
    };
    let xs: Vec<f64> = (1..=250).map(f64::from).collect();
    let (csv, f_truth) = data(d, &xs, &model, 2.5, 0);
    let law = "name = \"peaks\"\ndescription = \"a decay and two peaks\"\n\
               formula = \"b1*exp(-b2*x) + b3*exp(-(x - b4)^2/b5^2) + b6*exp(-(x - b7)^2/b8^2)\"\n\
               [variables]\nx = \"x\"\n";
    let r = fit(d, &csv, law, &[]);
    let f = r["objective"]["value"].as_f64().unwrap();
    assert!(f <= f_truth, "objective {f}, at the truth {f_truth}");
    assert!((param(&r, "b4") - b[3]).abs() < 1.0, "{}", r["params"]);
    assert!((param(&r, "b7") - b[6]).abs() < 1.0, "{}", r["params"]);
    assert!(
        (param(&r, "b5").abs() - b[4]).abs() < 1.0,
        "{}",
        r["params"]
    );
}

/// Three exponentials on noise-free data, from each of two declared start
/// vectors (every parameter's `start = [v, v]`, the amplitudes included):
/// the fit recovers the parameters to 9 digits.
#[test]
fn exponentials_from_declared_start_vectors() {
    let dir = common::tempdir();
    let d = dir.path();
    let b = [0.0951, 1.0, 0.8607, 3.0, 1.5576, 5.0];
    let model =
        |x: f64| b[0] * (-b[1] * x).exp() + b[2] * (-b[3] * x).exp() + b[4] * (-b[5] * x).exp();
    let xs: Vec<f64> = (0..24).map(|i| 0.05 * i as f64).collect();
    let (csv, _) = data(d, &xs, &model, 0.0, 0);
    for start in [
        [1.2, 0.3, 5.6, 5.5, 6.5, 7.6],
        [0.5, 0.7, 3.6, 4.2, 4.0, 6.3],
    ] {
        let mut law = String::from(
            "name = \"exps\"\ndescription = \"three exponentials\"\n\
             formula = \"b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)\"\n[variables]\nx = \"x\"\n",
        );
        for (k, v) in start.iter().enumerate() {
            law.push_str(&format!("[params.b{}]\nstart = [{v}, {v}]\n", k + 1));
        }
        let r = fit(d, &csv, &law, &[]);
        for (k, t) in b.iter().enumerate() {
            let got = param(&r, &format!("b{}", k + 1));
            assert!(
                (got - t).abs() <= 1e-9 * t.abs(),
                "from {start:?}: b{} = {got}, truth {t}",
                k + 1
            );
        }
        assert_eq!(r["polish"]["converged"], true, "{}", r["polish"]);
    }
}

/// An annual cycle and two more periods (`pi` is the constant), the
/// periods started where the user declares: the fit reaches the optimum
/// around the true periods.
#[test]
fn periodic_terms_with_declared_periods() {
    let dir = common::tempdir();
    let d = dir.path();
    let tau = 2.0 * std::f64::consts::PI;
    let model = |x: f64| {
        10.5 + 3.08 * (tau * x / 12.0).cos()
            + 0.53 * (tau * x / 12.0).sin()
            + 1.06 * (tau * x / 44.3).cos()
            - 0.18 * (tau * x / 44.3).sin()
            + 0.9 * (tau * x / 26.9).cos()
            + 1.3 * (tau * x / 26.9).sin()
    };
    let xs: Vec<f64> = (1..=168).map(f64::from).collect();
    let (csv, f_truth) = data(d, &xs, &model, 0.5, 1);
    let law = "name = \"cycles\"\ndescription = \"three periods\"\n\
               formula = \"b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4) + \
               b6*sin(2*pi*x/b4) + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)\"\n\
               [variables]\nx = \"x\"\n[params.b4]\nstart = [44, 44]\n[params.b7]\nstart = [26.8, 26.8]\n";
    let r = fit(d, &csv, law, &[]);
    assert!(
        r["params"].get("pi").is_none(),
        "pi is a constant: {}",
        r["params"]
    );
    let f = r["objective"]["value"].as_f64().unwrap();
    assert!(f <= f_truth, "objective {f}, at the truth {f_truth}");
    assert!((param(&r, "b4") - 44.3).abs() < 2.0, "{}", r["params"]);
    assert!((param(&r, "b7") - 26.9).abs() < 1.0, "{}", r["params"]);
}

/// On an ill-conditioned fit (two exponentials with rates 1 and 1.25, the
/// scaled Hessian's condition number above 1e9), the standard errors are
/// formed from J's singular values, not J^T J's eigenvalues (which keep
/// about eight digits there): they match an SVD of J formed here, at the
/// fitted parameters, to 10 digits.
#[test]
fn standard_errors_of_an_ill_conditioned_fit_come_from_j() {
    let dir = common::tempdir();
    let d = dir.path();
    let model = |x: f64| (-x).exp() + 0.8 * (-1.25 * x).exp() + 0.3 * (-3.0 * x).exp();
    let xs: Vec<f64> = (0..200).map(|i| 4.0 * i as f64 / 199.0).collect();
    let (csv, _) = data(d, &xs, &model, 1e-6, 2);
    let law = "name = \"exps\"\ndescription = \"three exponentials\"\n\
               formula = \"b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)\"\n[variables]\nx = \"x\"\n\
               [params.b2]\nstart = [1, 1]\n[params.b4]\nstart = [1.25, 1.25]\n\
               [params.b6]\nstart = [3, 3]\n";
    let r = fit(d, &csv, law, &[]);
    let b: Vec<f64> = (1..=6).map(|i| param(&r, &format!("b{i}"))).collect();
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let (x, y) = l.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let n = rows.len();
    let mut j = nalgebra::DMatrix::zeros(n, 6);
    let mut sse = 0.0;
    for (i, &(x, y)) in rows.iter().enumerate() {
        let e = [(-b[1] * x).exp(), (-b[3] * x).exp(), (-b[5] * x).exp()];
        let pred = b[0] * e[0] + b[2] * e[1] + b[4] * e[2];
        sse += (y - pred) * (y - pred);
        for t in 0..3 {
            j[(i, 2 * t)] = e[t];
            j[(i, 2 * t + 1)] = -b[2 * t] * x * e[t];
        }
    }
    let svd = j.svd(false, true);
    let v_t = svd.v_t.unwrap();
    let s2 = sse / (n - 6) as f64;
    for k in 0..6 {
        let var: f64 = (0..6)
            .map(|e| v_t[(e, k)] * v_t[(e, k)] / (svd.singular_values[e] * svd.singular_values[e]))
            .sum();
        let want = (var * s2).sqrt();
        let got = r["identifiability"]["standard_errors"][format!("b{}", k + 1)]
            .as_f64()
            .unwrap();
        assert!(
            (got - want).abs() <= 1e-10 * want,
            "b{}: SE {got}, SVD of J {want}",
            k + 1
        );
    }
}

/// Two exponentials merged at one rate: started exactly at the best
/// single exponential (split in two equal halves), the optimiser stays on
/// that stationary point, where the gradient vanishes, yet splitting the
/// rates lowers the objective. The fit must say it stopped at a saddle,
/// not call it converged; from ordinary starts it finds the exact fit.
#[test]
fn a_saddle_where_two_terms_merge_is_not_converged() {
    let dir = common::tempdir();
    let d = dir.path();
    let model = |x: f64| 2.0 * (-x).exp() + (-3.0 * x).exp();
    let xs: Vec<f64> = (0..60).map(|i| 4.0 * i as f64 / 59.0).collect();
    let (csv, _) = data(d, &xs, &model, 0.0, 0);
    let one = fit(d, &csv, "name = \"one\"\nformula = \"a*exp(-r*x)\"\n", &[]);
    let (a, r) = (param(&one, "a"), param(&one, "r"));
    let two = |starts: &str| {
        format!("name = \"two\"\nformula = \"b1*exp(-b2*x) + b3*exp(-b4*x)\"\n{starts}")
    };
    let merged = two(&format!(
        "[params.b1]\nstart = [{h:?}, {h:?}]\n[params.b3]\nstart = [{h:?}, {h:?}]\n\
         [params.b2]\nstart = [{r:?}, {r:?}]\n[params.b4]\nstart = [{r:?}, {r:?}]\n",
        h = a / 2.0
    ));
    let s = fit(d, &csv, &merged, &["--starts", "1"]);
    // Where it stopped: the merged point, with a vanishing gradient.
    assert!((param(&s, "b2") - param(&s, "b4")).abs() < 1e-6 * r, "{s}");
    assert!(s["polish"]["grad_norm"].as_f64().unwrap() < 1e-6, "{s}");
    assert_eq!(s["polish"]["converged"], false, "{s}");
    let why = s["polish"]["saddle"]
        .as_str()
        .expect("the saddle is described");
    assert!(why.contains("b2") && why.contains("b4"), "{why}");
    // From the declared-free starts the fit is exact, and no saddle.
    let e = fit(d, &csv, &two(""), &[]);
    assert_eq!(e["polish"]["converged"], true, "{e}");
    assert!(e["polish"].get("saddle").is_none(), "{e}");
    let rates = [param(&e, "b2"), param(&e, "b4")];
    let (lo, hi) = (rates[0].min(rates[1]), rates[0].max(rates[1]));
    assert!(
        (lo - 1.0).abs() < 1e-8 && (hi - 3.0).abs() < 1e-8,
        "{rates:?}"
    );
}
