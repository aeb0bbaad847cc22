//! Scaling laws: the law language (parse, DAG, derivatives, evaluation
//! plan), law files and the built-in laws; and the hand-written LoopLM law
//! the fits run today: parameter names, raw-unit evaluation, the internal
//! scaling used for conditioning, and the transforms to an unconstrained
//! vector.

pub mod builtin;
pub mod compile;
pub mod dag;
pub mod diff;
pub mod file;
mod looplm;
pub mod params;
pub mod parse;
pub mod plan;
pub mod space;
mod transform;

pub use builtin::{builtin, builtin_law, builtin_names, DEFAULT_LAW};
pub use compile::{CompiledLaw, Source};
pub use file::{LawFile, ParamDecl};
pub use looplm::{
    predict_raw, LawKind, Scale, A, ALPHA, B, BETA, C, E, GAMMA, NP, PARAM_NAMES, T1, T2, T3,
};
pub use parse::FormulaError;
pub use transform::{Reference, EXPONENT_BOUNDS};
