//! fit.json files written before every law had one fit driver: fits of the
//! looplm and chinchilla laws without a law file (`law_file`), their
//! metrics per configuration (`per_config`). They are read into the report
//! of every fit, with the looplm law file: the old chinchilla was looplm
//! with t1 = t2 = C = 0, so its ten parameters predict the same there.

use anyhow::{bail, Context};
use indexmap::IndexMap;
use serde::Deserialize;

use super::{
    BackendReport, BootstrapReport, CurveMetrics, LawFitReport, LogMetrics, ObjectiveReport,
    PolishReport, SetMetrics, StartsReport,
};
use crate::identify::Identifiability;
use crate::profile::ProfileReport;

/// The parameters of those files, in their order (the order of their
/// bootstrap samples).
const PARAMS: [&str; 10] = [
    "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
];

#[derive(Deserialize)]
struct Fit {
    law: String,
    params: IndexMap<String, f64>,
    fixed: Vec<String>,
    objective: ObjectiveReport,
    metrics: Metrics,
    starts: StartsReport,
    backend: BackendReport,
    seconds: f64,
    points: usize,
    notes: Vec<String>,
    #[serde(default)]
    polish: Option<PolishReport>,
    #[serde(default)]
    identifiability: Option<Identifiability>,
    #[serde(default)]
    profile: Option<ProfileReport>,
    #[serde(default)]
    bootstrap: Option<BootstrapReport>,
}

#[derive(Deserialize)]
struct Metrics {
    r2: f64,
    rmse: f64,
    mae: f64,
    #[serde(default = "nan")]
    mape: f64,
    #[serde(default)]
    log: Option<LogMetrics>,
    per_config: Vec<Config>,
}

#[derive(Deserialize)]
struct Config {
    run: String,
    #[serde(rename = "N")]
    n: f64,
    #[serde(rename = "T")]
    t: f64,
    points: usize,
    #[serde(default = "nan")]
    tokens_min: f64,
    #[serde(default = "nan")]
    tokens_max: f64,
    r2: f64,
    rmse: f64,
    mape: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// Whether `value` (a parsed fit.json) is one of these older files.
pub fn is_legacy(value: &serde_json::Value) -> bool {
    value.get("law_file").is_none()
        && value
            .get("metrics")
            .is_some_and(|m| m.get("per_config").is_some())
}

/// An older fit.json's text as the report of a fit of the looplm law
/// file. Errors name the field at fault.
pub fn upgrade(text: &str) -> anyhow::Result<LawFitReport> {
    let old: Fit = super::parse_json(text).context("not a fit.json sweepfit wrote")?;
    if !["looplm", "chinchilla"].contains(&old.law.as_str()) {
        bail!("unknown law '{}' (known: looplm, chinchilla)", old.law);
    }
    for name in PARAMS {
        if !old.params.contains_key(name) {
            bail!("params.{name} is missing");
        }
    }
    if let Some(extra) = old.params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        bail!(
            "unknown parameter {extra} (the {} law has {})",
            old.law,
            PARAMS.join(", ")
        );
    }
    let law_file = crate::law::builtin("looplm").expect("looplm is built in");
    let file = crate::law::LawFile::parse(law_file, "looplm")?;
    let law = file.compile("looplm")?;
    // Bootstrap samples in the law's parameter order.
    let order: Vec<usize> = law
        .params
        .iter()
        .map(|p| {
            PARAMS
                .iter()
                .position(|q| q == p)
                .expect("the same ten names")
        })
        .collect();
    let mut bootstrap = old.bootstrap;
    for rs in bootstrap.iter_mut().flat_map(|b| b.resamples.iter_mut()) {
        for s in &mut rs.samples {
            if s.len() == PARAMS.len() {
                *s = order.iter().map(|&i| s[i]).collect();
            }
        }
    }
    let per = &old.metrics.per_config;
    let range = |v: &dyn Fn(&Config) -> [f64; 2]| {
        per.iter()
            .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], c| {
                let [a, b] = v(c);
                [lo.min(a), hi.max(b)]
            })
    };
    let mut ranges = IndexMap::new();
    if !per.is_empty() {
        ranges.insert("N".to_string(), range(&|c| [c.n, c.n]));
        if per.iter().all(|c| c.tokens_min.is_finite()) {
            ranges.insert("D".to_string(), range(&|c| [c.tokens_min, c.tokens_max]));
        }
        ranges.insert("T".to_string(), range(&|c| [c.t, c.t]));
    }
    let m = &old.metrics;
    Ok(LawFitReport {
        law: old.law,
        law_file: law_file.to_string(),
        formula: file.formula.clone(),
        variables: file.variables.clone(),
        ranges,
        params: old.params,
        fixed: old.fixed,
        objective: old.objective,
        metrics: SetMetrics {
            points: old.points,
            r2: m.r2,
            rmse: m.rmse,
            mae: m.mae,
            // Not recorded: the residuals' sum of squares, from the RMSE.
            sse: m.rmse * m.rmse * old.points as f64,
            mape: m.mape,
            log: m.log,
            per_curve: per
                .iter()
                .map(|c| CurveMetrics {
                    labels: IndexMap::from([("run".to_string(), c.run.clone())]),
                    at: IndexMap::from([("N".to_string(), c.n), ("T".to_string(), c.t)]),
                    points: c.points,
                    axis: [c.tokens_min, c.tokens_max],
                    r2: c.r2,
                    rmse: c.rmse,
                    mape: c.mape,
                    mae: f64::NAN,
                    worst_pct: f64::NAN,
                })
                .collect(),
        },
        test: None,
        by: Vec::new(),
        groups: Vec::new(),
        starts: old.starts,
        backend: old.backend,
        seconds: old.seconds,
        points: old.points,
        notes: old.notes,
        polish: old.polish,
        identifiability: old.identifiability,
        profile: old.profile,
        bootstrap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// An older looplm fit.json: two configurations and a bootstrap of
    /// two replicates, samples in the old parameter order.
    fn old() -> Value {
        let params: serde_json::Map<String, Value> = PARAMS
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), json!(1.0 + i as f64)))
            .collect();
        let sample: Vec<f64> = (0..10).map(|i| 1.0 + i as f64).collect();
        json!({
            "law": "looplm",
            "formula": "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma",
            "params": params,
            "fixed": [],
            "objective": {"loss": "mse", "space": "linear", "delta": 1e-3, "value": 2e-4},
            "metrics": {"r2": 0.99, "rmse": 0.02, "mae": 0.016, "mape": 0.45, "per_config": [
                {"run": "a", "N": 5.3e7, "T": 1.0, "points": 3, "tokens_min": 0.0,
                 "tokens_max": 2e10, "r2": 0.9, "rmse": 0.02, "mape": 0.4},
                {"run": "b", "N": 1.36e9, "T": 4.0, "points": 2, "tokens_min": 1e9,
                 "tokens_max": 1e10, "r2": 0.8, "rmse": 0.03, "mape": 0.5}]},
            "starts": {"count": 324, "at_best": 4, "status_counts": {"converged": 324},
                       "iterations": 100, "evaluations": 120, "start_evaluations": 9000},
            "backend": {"kind": "cpu", "device": "2 threads"},
            "seconds": 1.5,
            "points": 5,
            "configs": 2,
            "notes": [],
            "bootstrap": {"seed": 0, "level": 0.95, "seconds": 0.5, "resamples": [
                {"kind": "points", "replicates": 2, "converged": 2, "converged_fraction": 1.0,
                 "used": 2, "params": {}, "samples": [sample.clone(), sample]}]}
        })
    }

    #[test]
    fn an_older_fit_reads_as_a_fit_of_the_looplm_law_file() {
        let r = upgrade(&old().to_string()).unwrap();
        assert_eq!(r.law, "looplm");
        assert_eq!(r.law_file, crate::law::builtin("looplm").unwrap());
        assert_eq!(r.variables["D"], "tokens");
        assert_eq!(r.ranges["N"], [5.3e7, 1.36e9]);
        assert_eq!(r.ranges["D"], [0.0, 2e10]);
        assert_eq!(r.ranges["T"], [1.0, 4.0]);
        assert_eq!(r.params["alpha"], 3.0);
        let c = &r.metrics.per_curve[1];
        assert_eq!(
            (c.labels["run"].as_str(), c.at["N"], c.at["T"]),
            ("b", 1.36e9, 4.0)
        );
        assert_eq!((c.points, c.axis), (2, [1e9, 1e10]));
        // Samples follow the law's parameter order: alpha after t1.
        let law = crate::law::builtin_law("looplm")
            .unwrap()
            .compile("looplm")
            .unwrap();
        let s = &r.bootstrap.unwrap().resamples[0].samples[0];
        for (p, v) in law.params.iter().zip(s) {
            assert_eq!(*v, r.params[p], "{p}");
        }
    }

    #[test]
    fn an_older_fit_must_be_of_a_known_law_with_its_ten_parameters() {
        let mut v = old();
        v["law"] = json!("kaplan");
        let e = upgrade(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("unknown law 'kaplan'"), "{e}");
        let mut v = old();
        v["params"].as_object_mut().unwrap().remove("beta");
        let e = upgrade(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("params.beta is missing"), "{e}");
        let mut v = old();
        v["params"]["zeta"] = json!(1.0);
        let e = upgrade(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("unknown parameter zeta"), "{e}");
        assert!(is_legacy(&old()));
        let mut v = old();
        v["law_file"] = json!("name = \"x\"");
        assert!(!is_legacy(&v));
    }
}
