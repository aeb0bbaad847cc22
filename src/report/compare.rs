//! compare.json, compare.csv and the terminal table of `sweepfit compare`:
//! several laws evaluated on the same data under the same protocols,
//! ranked by held-out error and by information criteria.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::eval::{EvalReport, ProtocolSummary};
use crate::format::format_value;

/// Every law's evaluation, and the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub loss: String,
    pub space: String,
    pub points: usize,
    pub laws: Vec<LawEntry>,
    /// Per protocol, the laws from the lowest held-out RMSE up.
    pub ranking: Vec<ProtocolRanking>,
    /// What AIC and BIC mean here, or why there are none.
    pub criteria: String,
    pub seconds: f64,
    pub notes: Vec<String>,
}

/// One law: its fit on all rows, its information criteria and its
/// held-out scores per protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawEntry {
    /// The law's name (a formula's text for a bare formula).
    pub law: String,
    pub formula: String,
    /// Free parameters of the fit on all rows.
    pub free_params: usize,
    /// The training objective of the fit on all rows, the starts drawn and
    /// how many reached its best.
    pub objective: f64,
    pub starts: usize,
    pub at_best: usize,
    /// Akaike's and Bayes' criteria of the fit on all rows (mse only).
    pub aic: Option<f64>,
    pub bic: Option<f64>,
    /// R² and RMSE of the fit on all rows, scored on them.
    pub r2: f64,
    pub rmse: f64,
    pub protocols: Vec<ProtocolSummary>,
    /// The law's whole evaluation, as `sweepfit eval` reports it.
    pub eval: EvalReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolRanking {
    pub protocol: String,
    /// Law names, best first.
    pub laws: Vec<String>,
}

/// Rank `laws` per protocol by mean held-out RMSE (a law without the
/// protocol, or with no finite score, last).
pub fn rank(laws: &[LawEntry]) -> Vec<ProtocolRanking> {
    let mut protocols: Vec<String> = Vec::new();
    for l in laws {
        for p in &l.protocols {
            if !protocols.contains(&p.protocol) {
                protocols.push(p.protocol.clone());
            }
        }
    }
    protocols
        .into_iter()
        .map(|protocol| {
            let score = |l: &LawEntry| {
                l.protocols
                    .iter()
                    .find(|p| p.protocol == protocol)
                    .map(|p| p.rmse)
                    .filter(|v| v.is_finite())
                    .unwrap_or(f64::INFINITY)
            };
            let mut order: Vec<&LawEntry> = laws.iter().collect();
            order.sort_by(|a, b| score(a).total_cmp(&score(b)));
            ProtocolRanking {
                protocol,
                laws: order.into_iter().map(|l| l.law.clone()).collect(),
            }
        })
        .collect()
}

/// Write compare.json.
pub fn write_compare_json(path: &Path, r: &CompareReport) -> anyhow::Result<()> {
    super::json::write_pretty(path, r)
}

/// One row per law and protocol (the fit on all rows as protocol `all`),
/// for scripts.
pub fn write_compare_csv(path: &Path, r: &CompareReport) -> anyhow::Result<()> {
    crate::output::write_file(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "law",
            "protocol",
            "rank",
            "folds",
            "r2",
            "rmse",
            "mape",
            "free_params",
            "objective",
            "aic",
            "bic",
        ])?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for l in &r.laws {
            w.write_record([
                l.law.clone(),
                "all".into(),
                String::new(),
                "1".into(),
                l.r2.to_string(),
                l.rmse.to_string(),
                String::new(),
                l.free_params.to_string(),
                l.objective.to_string(),
                opt(l.aic),
                opt(l.bic),
            ])?;
            for p in &l.protocols {
                let rank = r
                    .ranking
                    .iter()
                    .find(|x| x.protocol == p.protocol)
                    .and_then(|x| x.laws.iter().position(|n| *n == l.law))
                    .filter(|_| p.rmse.is_finite())
                    .map_or(String::new(), |i| (i + 1).to_string());
                w.write_record([
                    l.law.clone(),
                    p.protocol.clone(),
                    rank,
                    p.folds.to_string(),
                    p.r2.to_string(),
                    p.rmse.to_string(),
                    p.mape.to_string(),
                    l.free_params.to_string(),
                    l.objective.to_string(),
                    opt(l.aic),
                    opt(l.bic),
                ])?;
            }
        }
        w.flush()?;
        Ok(())
    })
}

/// The terminal table: the fits on all rows with their criteria, then
/// each protocol's ranking.
pub fn compare_summary(r: &CompareReport) -> String {
    let mut s = String::new();
    let width = r
        .laws
        .iter()
        .map(|l| l.law.len())
        .max()
        .unwrap_or(3)
        .clamp(3, 40);
    let _ = writeln!(
        s,
        "{} laws on {} points, {} loss in {} space\n",
        r.laws.len(),
        r.points,
        r.loss,
        r.space
    );
    let _ = writeln!(
        s,
        "{:<width$} {:>6} {:>12} {:>9} {:>8} {:>11} {:>11} {:>11}",
        "law", "params", "objective", "at best", "R2", "RMSE", "AIC", "BIC"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for l in &r.laws {
        let _ = writeln!(
            s,
            "{:<width$} {:>6} {:>12.6e} {:>9} {:>8.4} {:>11} {:>11} {:>11}",
            clip(&l.law, width),
            l.free_params,
            l.objective,
            format!("{}/{}", l.at_best, l.starts),
            l.r2,
            format_value(l.rmse),
            opt(l.aic),
            opt(l.bic)
        );
    }
    for p in &r.ranking {
        let _ = writeln!(
            s,
            "\nheld out, {} (best first by mean RMSE)\n{:<4} {:<width$} {:>6} {:>8} {:>11} {:>9}",
            p.protocol, "rank", "law", "folds", "R2", "RMSE", "MAPE"
        );
        for (i, name) in p.laws.iter().enumerate() {
            let l = r
                .laws
                .iter()
                .find(|l| &l.law == name)
                .expect("ranked laws are listed");
            match l.protocols.iter().find(|x| x.protocol == p.protocol) {
                Some(x) if !x.rmse.is_finite() => {
                    let _ = writeln!(
                        s,
                        "{:<4} {:<width$} (no held-out row scored: not ranked)",
                        "-",
                        clip(name, width)
                    );
                }
                Some(x) => {
                    let _ = writeln!(
                        s,
                        "{:<4} {:<width$} {:>6} {:>8.4} {:>11} {:>8.3}%",
                        i + 1,
                        clip(name, width),
                        x.folds,
                        x.r2,
                        format_value(x.rmse),
                        x.mape
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "{:<4} {:<width$} (protocol does not apply)",
                        "-",
                        clip(name, width)
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "\n{}", r.criteria);
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = write!(s, "time: {:.2} s", r.seconds);
    s
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}
