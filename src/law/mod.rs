//! Scaling laws: parameter names, raw-unit evaluation, the internal scaling
//! used for conditioning, and the transforms to an unconstrained vector;
//! law files and the built-in laws.

pub mod builtin;
pub mod file;
mod looplm;
mod transform;

pub use builtin::{builtin, builtin_law, builtin_names, DEFAULT_LAW};
pub use file::{LawFile, ParamDecl};

pub use looplm::{
    predict_raw, LawKind, Scale, A, ALPHA, B, BETA, C, E, GAMMA, NP, PARAM_NAMES, T1, T2, T3,
};
pub use transform::{FreeSpace, ParamSpec, Reference, EXPONENT_BOUNDS};
