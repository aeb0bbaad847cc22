//! Profile intervals against an exact referee. The referee holds a
//! parameter at a value and fits the others from a full set of starts (an
//! ordinary `fit --fix`), which is the profile at that value by
//! definition; an end the profile reports as found must then sit between
//! values 1e-4 (relative) inside and outside it where the referee's
//! statistic is below and above the threshold. Ends reported open must be
//! open for the referee too.

mod common;

use std::path::Path;

use common::ok;
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn fit(dir: &Path, data: &str, out: &str, extra: &[&str]) -> Value {
    let out = dir.join(out);
    let mut args = vec![
        "fit",
        data,
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--backend",
        "cpu",
    ];
    args.extend(extra);
    ok(dir, &args);
    read_json(&out.join("fit.json"))
}

/// The referee: the likelihood-ratio statistic of holding `name` at `v`,
/// from a fit of the rest with `starts` starts, against the full fit's
/// objective `f0` over `dof` degrees of freedom.
#[allow(clippy::too_many_arguments)]
fn referee(
    dir: &Path,
    data: &str,
    extra: &[&str],
    name: &str,
    v: f64,
    f0: f64,
    dof: f64,
    starts: &str,
) -> f64 {
    let fix = format!("{name}={v:e}");
    let mut args = extra.to_vec();
    args.extend(["--fix", &fix, "--starts", starts]);
    let r = fit(dir, data, "referee", &args);
    let f = r["objective"]["value"].as_f64().unwrap();
    (f - f0) * dof / f0
}

/// Every found end of `names` lies within 1e-4 (relative) of the
/// referee's crossing of the threshold.
fn check_found_ends(
    dir: &Path,
    data: &str,
    extra: &[&str],
    r: &Value,
    names: &[&str],
    starts: &str,
) -> usize {
    let p = &r["profile"];
    let threshold = p["threshold"].as_f64().unwrap();
    let f0 = r["objective"]["value"].as_f64().unwrap();
    let rows = r["metrics"]["points"].as_f64().unwrap();
    let free =
        (r["params"].as_object().unwrap().len() - r["fixed"].as_array().unwrap().len()) as f64;
    let dof = rows - free;
    let mut checked = 0;
    for n in names {
        let iv = &p["params"][n];
        let value = r["params"][n].as_f64().unwrap();
        for (end, kind, dir_out) in [("lo", "lo_end", -1.0), ("hi", "hi_end", 1.0)] {
            if iv[kind] != "found" {
                continue;
            }
            let e = iv[end].as_f64().unwrap();
            let stat_at = iv[format!("{end}_statistic")].as_f64().unwrap();
            assert!(
                (stat_at - threshold).abs() < 1e-4 * threshold,
                "{n} {end}: the statistic reached is {stat_at}, not {threshold}"
            );
            // 1e-4 of the end, or of the distance from the value where
            // the end is near 0.
            let step = 1e-4 * e.abs().max((e - value).abs());
            let inside = referee(dir, data, extra, n, e - dir_out * step, f0, dof, starts);
            let outside = referee(dir, data, extra, n, e + dir_out * step, f0, dof, starts);
            assert!(
                inside < threshold && outside > threshold,
                "{n} {end} = {e}: the referee's statistic is {inside} inside and {outside} \
                 outside (threshold {threshold})"
            );
            checked += 1;
        }
    }
    checked
}

/// The LoopLM sweep the demo simulates (seed 1), whose weak T term bends
/// the profiles of C, gamma and t3: every parameter's ends.
#[test]
fn looplm_profile_ends_match_the_referee() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = d.join("sweep.csv");
    ok(
        d,
        &["simulate", "--out", csv.to_str().unwrap(), "--seed", "1"],
    );
    let data = csv.to_str().unwrap();
    let r = fit(d, data, "fit", &["--profile"]);
    assert_eq!(r["polish"]["converged"], true, "{}", r["polish"]);
    let names = [
        "E", "A", "t1", "alpha", "B", "t2", "beta", "C", "t3", "gamma",
    ];
    let checked = check_found_ends(d, data, &[], &r, &names, "64");
    assert_eq!(checked, 20, "every end found and checked");
}

/// SLDBench's vocabulary law on its training rows: the optimum switches
/// the vocabulary term off (A2 on its bound 0), and the profiles must
/// follow the valleys that leaves. A2 is open above (the term can be
/// switched off by its exponent instead), alpha1 reaches its bound, A1 is
/// open above, and E's ends are found where the referee puts them.
#[test]
fn a_switched_off_term_gives_open_ends_not_wrong_ones() {
    let dir = common::tempdir();
    let d = dir.path();
    let data = common::shared_data().join("sldbench/vocab.csv");
    let data = data.to_str().unwrap();
    let extra = ["--law", "vocab", "--test-where", "split=test"];
    let mut args = extra.to_vec();
    // Few starts, so none ends in the other valley by chance: the profile
    // must find it itself.
    args.extend(["--profile", "--starts", "32"]);
    let r = fit(d, data, "fit", &args);
    assert_eq!(r["polish"]["converged"], true, "{}", r["polish"]);
    let p = &r["profile"]["params"];
    let threshold = r["profile"]["threshold"].as_f64().unwrap();
    assert_eq!(p["A2"]["hi_end"], "open", "{}", p["A2"]);
    assert_eq!(p["A1"]["hi_end"], "open", "{}", p["A1"]);
    assert!(
        p["alpha1"]["hi_end"] == "bound" || p["alpha1"]["hi_end"] == "open",
        "{}",
        p["alpha1"]
    );
    for n in ["A1", "A2", "alpha1", "alpha2", "E", "B", "beta"] {
        for kind in ["lo_end", "hi_end"] {
            assert_ne!(p[n][kind], "unreliable", "{n}: {}", p[n]);
        }
    }
    // The referee agrees that A2 is open: far above its last profiled
    // value, holding it costs nothing.
    let f0 = r["objective"]["value"].as_f64().unwrap();
    let dof = 1000.0 - 7.0;
    let far = referee(d, data, &extra, "A2", 1e3, f0, dof, "128");
    assert!(
        far < threshold,
        "A2 = 1000: the referee's statistic is {far}"
    );
    let checked = check_found_ends(d, data, &extra, &r, &["E", "alpha1", "B", "beta"], "128");
    assert!(checked >= 6, "only {checked} ends checked");
}

/// Noise-free data: the fit recovers the truth, the optimum reads
/// converged (its residuals are rounding, so the Newton decrement measures
/// nothing), and the profile says why it gives no intervals instead of
/// warning that the optimum is not the global one.
#[test]
fn noise_free_data_converge_and_give_no_profile() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = d.join("exact.csv");
    ok(
        d,
        &[
            "simulate",
            "--out",
            csv.to_str().unwrap(),
            "--seed",
            "3",
            "--noise",
            "0",
            "--points",
            "200",
        ],
    );
    let truth = read_json(&d.join("exact.csv.truth.json"));
    let r = fit(d, csv.to_str().unwrap(), "fit", &["--profile"]);
    for (n, t) in truth["params"].as_object().unwrap() {
        let (got, t) = (r["params"][n].as_f64().unwrap(), t.as_f64().unwrap());
        assert!((got - t).abs() <= 1e-9 * t.abs(), "{n}: {got} against {t}");
    }
    assert_eq!(r["polish"]["converged"], true, "{}", r["polish"]);
    assert_eq!(r["polish"]["exact"], true, "{}", r["polish"]);
    let p = &r["profile"];
    assert!(p["params"].as_object().unwrap().is_empty(), "{p}");
    let notes = p["notes"].to_string();
    assert!(notes.contains("reproduces the data to rounding"), "{notes}");
    assert!(!notes.contains("not the global one"), "{notes}");
}

/// A Huber profile is calibrated by sum w psi' / sum w psi^2: with a delta
/// no residual reaches, the loss is mse's and so is every interval; with a
/// delta at the noise's scale the intervals are still closed around the
/// fit.
#[test]
fn huber_profiles_are_calibrated_like_mse() {
    let dir = common::tempdir();
    let d = dir.path();
    let csv = d.join("sweep.csv");
    ok(
        d,
        &[
            "simulate",
            "--out",
            csv.to_str().unwrap(),
            "--seed",
            "1",
            "--points",
            "100",
        ],
    );
    let data = csv.to_str().unwrap();
    let names = ["alpha", "beta", "gamma"];
    let spec = names.join(",");
    let mse = fit(d, data, "mse", &["--profile", &spec]);
    let wide = fit(
        d,
        data,
        "wide",
        &["--profile", &spec, "--loss", "huber", "--delta", "1000"],
    );
    let tight = fit(
        d,
        data,
        "tight",
        &["--profile", &spec, "--loss", "huber", "--delta", "0.02"],
    );
    for n in names {
        for end in ["lo", "hi"] {
            let (a, b) = (
                mse["profile"]["params"][n][end].as_f64().unwrap(),
                wide["profile"]["params"][n][end].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-6 * a.abs(),
                "{n} {end}: mse {a}, huber {b}"
            );
            let t = &tight["profile"]["params"][n];
            assert_eq!(t[format!("{end}_end")], "found", "{n}: {t}");
            let v = tight["params"][n].as_f64().unwrap();
            let e = t[end].as_f64().unwrap();
            assert!(
                (e - v).abs() < 3.0 * (a - mse["params"][n].as_f64().unwrap()).abs(),
                "{n} {end}: huber end {e} against the value {v}; mse end {a}"
            );
        }
    }
}
