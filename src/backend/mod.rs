//! Backends evaluate the objective and its gradient for a batch of K
//! parameter vectors over the whole dataset in one call. The optimiser,
//! tests and benchmarks only see the [`Backend`] trait.

mod cpu;
pub(crate) mod fastmath;
pub mod gpu;
mod looplm;
mod prepared;
pub(crate) mod vector;
pub mod weights;

pub use cpu::CpuBackend;
pub use cpu::{jacobian, CompiledGrid, CpuLayout};
pub use gpu::GpuBackend;
pub use looplm::looplm_sweep;
pub use prepared::Prepared;
pub use weights::{Weighting, UNWEIGHTED};

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

    /// Whether values are computed in single precision (f32): a fit on
    /// such a backend polishes its best starts on the CPU in f64.
    fn single_precision(&self) -> bool {
        false
    }

    /// For each internal parameter vector in `params`, the weighted-mean
    /// objective and its gradient. `out.len() == params.len()`.
    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()>;

    /// Register the weightings that [`Backend::evaluate_weighted`] refers
    /// to by index, replacing any earlier ones. Errors when one is invalid
    /// for the data (see [`weights::resolve`]).
    fn set_weightings(&mut self, weightings: &[Weighting]) -> anyhow::Result<()>;

    /// Like [`Backend::evaluate`], with `params[k]` weighed by the
    /// registered weighting `which[k]`, or by the dataset's own weights
    /// when `which[k] == UNWEIGHTED`. Each problem's objective is a
    /// weighted mean under its own weights.
    fn evaluate_weighted(
        &mut self,
        params: &[[f64; NP]],
        which: &[u32],
        out: &mut [Eval],
    ) -> anyhow::Result<()>;
}

/// Which backend to fit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU.
    Auto,
    /// Any GPU adapter, software ones included; an error when there is none.
    Gpu,
    /// The CPU backend (f64, all cores).
    Cpu,
}

/// Build the backend for `choice` on `data`. The note says what `auto`
/// chose and why.
pub fn create(
    choice: BackendChoice,
    data: &Prepared,
) -> anyhow::Result<(Box<dyn Backend>, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((Box::new(CpuBackend::new(data.clone())), None)),
        BackendChoice::Gpu => Ok((
            Box::new(GpuBackend::new(data, gpu::AdapterFilter::Any)?),
            None,
        )),
        BackendChoice::Auto => {
            // A mistyped WGPU_BACKEND is the user's error, not a missing GPU.
            gpu::check_env()?;
            match GpuBackend::new(data, gpu::AdapterFilter::Hardware) {
                Ok(g) => {
                    let note = format!("backend auto: using the GPU {}", g.adapter().short());
                    Ok((Box::new(g), Some(note)))
                }
                Err(e) => {
                    let note = format!("backend auto: using the CPU ({e:#})");
                    Ok((Box::new(CpuBackend::new(data.clone())), Some(note)))
                }
            }
        }
    }
}
