//! GPU backend: objective and gradient for batches of parameter vectors,
//! evaluated by WGSL compute kernels generated from a compiled law
//! (`codegen`, on the templates shaders/law_*.wgsl), reduced by
//! shaders/reduce.wgsl, through wgpu.
//!
//! - `device`: finding and describing adapters;
//! - `context`: an opened device, with the layouts and pipelines every
//!   evaluator on it shares;
//! - `law`: a law's plan bound to a sweep on the device ([`GpuLaw`]), the
//!   GPU twin of the CPU's `CpuLaw`;
//! - `steps`: sums along a run's steps (the twin of `law::steps`) and the
//!   schedule tables they read.

mod codegen;
mod context;
mod device;
mod law;
mod steps;

pub use codegen::{gauss_newton_kernel, generate, kernel, validate, CodegenError, Kernel, Layout};
pub use context::GpuDevice;
pub use device::{
    all_adapters, check_env, instance, quiet_device_select_layer, select_adapter, AdapterFilter,
    AdapterSummary,
};
pub use law::{evaluate_all, GpuLaw, GpuLimits, Job};
