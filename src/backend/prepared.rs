//! The dataset as a backend consumes it: scaled units, targets in the
//! fitted space, weights normalised to sum to one.

use super::weights::Resolved;
use crate::data::Dataset;
use crate::law::{Reference, Scale};
use crate::objective::{Objective, Space};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreparedConfig {
    /// Scaled model size N / scale.n.
    pub n: f64,
    pub t: f64,
    pub start: usize,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub struct Prepared {
    pub objective: Objective,
    pub scale: Scale,
    pub configs: Vec<PreparedConfig>,
    /// Scaled tokens D / scale.d.
    pub d: Vec<f64>,
    /// Target: loss (linear space) or ln loss (log space).
    pub y: Vec<f64>,
    /// Weights normalised to sum to one, so the objective is a weighted mean.
    pub w: Vec<f64>,
}

impl Prepared {
    /// Scales are the largest N and D of the sweep, so scaled values lie in
    /// (0, 1] and the start grid means the same thing for every sweep.
    pub fn scale_for(ds: &Dataset) -> Scale {
        let n = ds.configs.iter().map(|c| c.n).fold(0.0, f64::max);
        let d = ds.tokens.iter().copied().fold(0.0, f64::max);
        Scale {
            n: if n > 0.0 { n } else { 1.0 },
            d: if d > 0.0 { d } else { 1.0 },
        }
    }

    pub fn new(ds: &Dataset, objective: Objective) -> Prepared {
        let scale = Self::scale_for(ds);
        let total: f64 = ds.weight.iter().sum();
        let y = match objective.space {
            Space::Linear => ds.loss.clone(),
            Space::Log => ds.loss.iter().map(|l| l.ln()).collect(),
        };
        Prepared {
            objective,
            scale,
            configs: ds
                .configs
                .iter()
                .map(|c| PreparedConfig {
                    n: c.n / scale.n,
                    t: c.t,
                    start: c.start,
                    len: c.len,
                })
                .collect(),
            d: ds.tokens.iter().map(|d| d / scale.d).collect(),
            y,
            w: ds.weight.iter().map(|w| w / total).collect(),
        }
    }

    /// Centre of the data for each term (N, D, T in internal units), where
    /// the free amplitudes are measured: the weighted geometric mean of N
    /// and the weighted means of D and T.
    pub fn reference(&self) -> Reference {
        let (mut ln_n, mut d, mut t) = (0.0, 0.0, 0.0);
        for c in &self.configs {
            let w: f64 = self.w[c.start..c.start + c.len].iter().sum();
            ln_n += w * c.n.ln();
            t += w * c.t;
            d += self.d[c.start..c.start + c.len]
                .iter()
                .zip(&self.w[c.start..c.start + c.len])
                .map(|(d, w)| d * w)
                .sum::<f64>();
        }
        [ln_n.exp(), d.max(1e-9), t]
    }

    /// A copy whose weights are the effective weights of `w` (normalised):
    /// what a fold's start grid is solved against, so held-out points do
    /// not steer where its starts begin.
    pub fn reweighted(&self, w: &Resolved) -> Prepared {
        let mut out = self.clone();
        for (ci, c) in self.configs.iter().enumerate() {
            for pos in 0..c.len {
                let i = c.start + pos;
                out.w[i] = self.w[i] * w.factor(ci, pos, i);
            }
        }
        out
    }

    pub fn points(&self) -> usize {
        self.d.len()
    }
}
