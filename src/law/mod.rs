//! Scaling laws as data: the law language (parse, DAG, derivatives,
//! evaluation plan), law files, the built-in laws, and the space a fit
//! searches (transforms of each parameter to an unconstrained vector).

pub mod builtin;
pub mod compile;
pub mod dag;
pub mod diff;
pub mod file;
pub mod ops;
pub mod params;
pub mod parse;
pub mod plan;
pub mod space;
pub mod steps;
pub(crate) mod vector;

pub use builtin::{builtin, builtin_law, builtin_names, DEFAULT_LAW};
pub use compile::{CompiledLaw, Source};
pub use file::{LawFile, ParamDecl};
pub use parse::FormulaError;
