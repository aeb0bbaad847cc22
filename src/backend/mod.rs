//! The evaluators: a compiled law's objective and gradient for a batch of
//! parameter vectors over a whole sweep in one call, as twins on the CPU
//! ([`CompiledGrid`], f64, all cores) and the GPU ([`gpu::GpuLaw`], f32,
//! WGSL kernels generated from the law), each under per-problem
//! weightings ([`weights`]) for bootstrap replicates and folds. The row
//! Jacobian ([`jacobian`]) beside the CPU evaluator gives least squares
//! its J^T J.

mod cpu;
pub(crate) mod fastmath;
pub mod gpu;
pub(crate) mod vector;
pub mod weights;

pub use cpu::{jacobian, CompiledGrid, CpuLayout};
pub use weights::{Weighting, UNWEIGHTED};

/// Which device a fit runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU.
    Auto,
    /// Any GPU adapter, software ones included; an error when there is none.
    Gpu,
    /// The CPU (f64, all cores).
    Cpu,
}
