//! The step-wise loss law of looped language models:
//! L(N, D, T) = E + A/(N+t1)^alpha + B/(D+t2)^beta + C/(T+t3)^gamma.

use serde::{Deserialize, Serialize};

/// Number of law parameters.
pub const NP: usize = 10;
pub const E: usize = 0;
pub const A: usize = 1;
pub const ALPHA: usize = 2;
pub const T1: usize = 3;
pub const B: usize = 4;
pub const BETA: usize = 5;
pub const T2: usize = 6;
pub const C: usize = 7;
pub const GAMMA: usize = 8;
pub const T3: usize = 9;

pub const PARAM_NAMES: [&str; NP] = [
    "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
];

/// Which form of the law is fitted. Every form is the same ten-parameter
/// expression with some parameters held fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LawKind {
    /// E + A/(N+t1)^alpha + B/(D+t2)^beta + C/(T+t3)^gamma
    Looplm,
    /// E + A/N^alpha + B/D^beta (t1 = t2 = 0, no T term)
    Chinchilla,
}

impl LawKind {
    pub fn name(self) -> &'static str {
        match self {
            LawKind::Looplm => "looplm",
            LawKind::Chinchilla => "chinchilla",
        }
    }

    /// Parameters the form holds fixed, with their values (raw units).
    pub fn preset_fixed(self) -> Vec<(usize, f64)> {
        match self {
            LawKind::Looplm => vec![],
            LawKind::Chinchilla => vec![(T1, 0.0), (T2, 0.0), (C, 0.0)],
        }
    }
}

/// Evaluate the law at raw (N, D, T) with raw-unit parameters.
pub fn predict_raw(p: &[f64; NP], n: f64, d: f64, t: f64) -> f64 {
    p[E] + p[A] * (n + p[T1]).powf(-p[ALPHA])
        + p[B] * (d + p[T2]).powf(-p[BETA])
        + p[C] * (t + p[T3]).powf(-p[GAMMA])
}

/// Units used inside the fit: N and D are divided by `n` and `d` so that the
/// scaled values are O(1). Reported parameters are always raw; this is only
/// for conditioning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub n: f64,
    pub d: f64,
}

impl Scale {
    pub const UNIT: Scale = Scale { n: 1.0, d: 1.0 };

    /// Raw parameters -> internal (scaled) parameters.
    pub fn to_internal(&self, raw: &[f64; NP]) -> [f64; NP] {
        let mut p = *raw;
        p[A] = raw[A] * self.n.powf(-raw[ALPHA]);
        p[T1] = raw[T1] / self.n;
        p[B] = raw[B] * self.d.powf(-raw[BETA]);
        p[T2] = raw[T2] / self.d;
        p
    }

    /// Internal (scaled) parameters -> raw parameters.
    pub fn to_raw(&self, p: &[f64; NP]) -> [f64; NP] {
        let mut raw = *p;
        raw[A] = p[A] * self.n.powf(p[ALPHA]);
        raw[T1] = p[T1] * self.n;
        raw[B] = p[B] * self.d.powf(p[BETA]);
        raw[T2] = p[T2] * self.d;
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_round_trips_and_preserves_predictions() {
        let raw = [1.7, 480.0, 0.34, 2.0e6, 410.0, 0.28, 5.0e7, 0.9, 1.3, 0.2];
        let s = Scale {
            n: 1.36e9,
            d: 2.0e10,
        };
        let p = s.to_internal(&raw);
        let back = s.to_raw(&p);
        for i in 0..NP {
            assert!(
                (back[i] - raw[i]).abs() <= 1e-12 * raw[i].abs().max(1.0),
                "{i}"
            );
        }
        let (n, d, t) = (3.74e8, 7.5e9, 3.0);
        let direct = predict_raw(&raw, n, d, t);
        let scaled = predict_raw(&p, n / s.n, d / s.d, t);
        assert!((direct - scaled).abs() < 1e-12 * direct);
    }
}
