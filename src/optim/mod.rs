//! Batched optimisers on the host: L-BFGS for any smooth objective, and
//! Levenberg-Marquardt for least squares. Every problem (a start, a
//! bootstrap replicate) has its own state and status; all active problems
//! advance in lockstep so that each step is one batched call of the
//! objective.

mod lbfgs;
mod lm;

pub use lbfgs::{
    minimize_batch, problem_bytes, BatchObjective, Options, Outcome, Progress, Status,
};
pub use lm::{blocked, least_squares_batch, relative_decrement, BatchLeastSquares, LmOptions};
