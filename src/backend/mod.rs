//! The evaluators: a compiled law's objective and gradient for a batch of
//! parameter vectors over a whole sweep in one call, as twins on the CPU
//! ([`CpuLaw`], f64, all cores) and the GPU ([`gpu::GpuLaw`], f32,
//! WGSL kernels generated from the law), each under per-problem
//! weightings ([`weights`]) for bootstrap replicates and folds. The row
//! Jacobian ([`jacobian`]) beside the CPU evaluator gives least squares
//! its J^T J.

pub(crate) mod cpu;
pub mod gauss_newton;
pub mod gpu;
pub mod weights;

pub use cpu::{jacobian, CpuLaw, CpuLayout};
pub use weights::{Resolved, Weighting, UNWEIGHTED};

/// What the twins do, on the CPU ([`CpuLaw`]) and the GPU
/// ([`gpu::GpuLaw`]): evaluate a batch of parameter vectors (the law's
/// raw parameters in its order, one after another) over the whole sweep,
/// objective and gradient each, under the sweep's own weights or a
/// registered weighting per vector. The fit's L-BFGS, the bootstrap and
/// `bench` run through it.
pub trait Evaluator {
    /// Parameters per vector.
    fn n_params(&self) -> usize;

    /// The device and layout, as reports name them.
    fn describe(&self) -> String;

    /// Objective and gradient of every vector of `params` into `f` and
    /// `g` (row-major). f is NaN where the law is undefined at a point
    /// that counts.
    fn evaluate(&mut self, params: &[f64], f: &mut [f64], g: &mut [f64]) -> anyhow::Result<()>;

    /// Register the weightings [`Evaluator::evaluate_weighted`] refers to
    /// by index (resolved against this sweep's curves, see
    /// [`weights::resolve_curves`]), replacing any earlier ones. Errors,
    /// keeping the earlier ones, when one is for another number of curves.
    fn set_weightings(&mut self, weightings: &[Resolved]) -> anyhow::Result<()>;

    /// [`Evaluator::evaluate`] with vector k weighed by registered
    /// weighting `which[k]`, or by the sweep's own weights where it is
    /// [`UNWEIGHTED`]; every vector's objective stays a weighted mean.
    fn evaluate_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()>;
}

/// Which device a fit runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU.
    Auto,
    /// Any GPU adapter, software ones included; an error when there is none.
    Gpu,
    /// The CPU (f64, all cores).
    Cpu,
}
