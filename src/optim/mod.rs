//! Batched L-BFGS on the host. Every problem (a start, later a bootstrap
//! replicate) has its own history, line search and status; all active
//! problems advance in lockstep so that each step is one batched call of the
//! objective.

mod lbfgs;
mod starts;

pub use lbfgs::{
    minimize_batch, problem_bytes, BatchObjective, Options, Outcome, Progress, Status,
};
pub use starts::{grid_starts, random_starts, solve_small, MIN_GRID};
