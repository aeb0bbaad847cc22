//! Scaling laws: parameter names, raw-unit evaluation, the internal scaling
//! used for conditioning, and the transforms to an unconstrained vector.

pub mod compile;
pub mod dag;
pub mod diff;
mod looplm;
pub mod parse;
pub mod plan;
mod transform;

pub use compile::{CompiledLaw, Source};
pub use looplm::{
    predict_raw, LawKind, Scale, A, ALPHA, B, BETA, C, E, GAMMA, NP, PARAM_NAMES, T1, T2, T3,
};
pub use parse::FormulaError;
pub use transform::{FreeSpace, ParamSpec, Reference, EXPONENT_BOUNDS};
