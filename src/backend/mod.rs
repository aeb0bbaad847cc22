//! Backends evaluate the objective and its gradient for a batch of K
//! parameter vectors over the whole dataset in one call. The optimiser,
//! tests and benchmarks only see the [`Backend`] trait.

mod cpu;
mod fastmath;
mod prepared;

pub use cpu::CpuBackend;
pub use prepared::Prepared;

use crate::law::NP;

/// Objective value and gradient with respect to the internal (scaled) law
/// parameters, for one parameter vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub f: f64,
    pub g: [f64; NP],
}

impl Eval {
    pub const ZERO: Eval = Eval {
        f: 0.0,
        g: [0.0; NP],
    };

    pub fn is_finite(&self) -> bool {
        self.f.is_finite() && self.g.iter().all(|v| v.is_finite())
    }
}

/// What ran a fit, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// "cpu" or "gpu".
    pub kind: String,
    /// Human-readable device description.
    pub device: String,
}

pub trait Backend {
    fn info(&self) -> BackendInfo;

    /// For each internal parameter vector in `params`, the weighted-mean
    /// objective and its gradient. `out.len() == params.len()`.
    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()>;
}
