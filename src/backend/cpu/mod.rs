//! The CPU evaluators, f64 on all cores: the compiled plan of a law on a
//! sweep in one of its layouts ([`CpuLayout`]), evaluated with its
//! gradient by a reverse pass ([`compiled`]):
//! - grid: most sweeps log every curve on one step grid, so the axis terms
//!   are computed once per distinct axis value and reused by every curve;
//! - points: each curve along its own points, the axis terms per point;
//! - table: one point per curve, every node vectorised over the curves.
//!
//! [`jacobian`] evaluates the same law forward over rows for least
//! squares (J^T J), sharing the per-node kernels of [`node`].

pub mod compiled;
pub mod jacobian;

pub use compiled::{CpuLaw, CpuLayout};
