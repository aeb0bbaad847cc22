//! sweepfit: fit neural scaling laws to whole sweeps of training curves.
//!
//! Data flow: [`data`] reads curves into a [`data::Table`]; [`law`]
//! compiles a law's text and [`objective`] says what is minimised; the
//! compiled law's evaluators in [`backend`] (CPU and GPU twins) give the
//! objective and its gradient for a batch of parameter vectors; [`optim`]
//! runs batched L-BFGS and Levenberg-Marquardt on the host; [`lawfit`]
//! drives multi-start fits, bootstraps and hold-out folds as batches of
//! weighted problems, [`polish`], [`identify`] and [`profile`] finish and
//! describe an optimum, and [`report`] writes the results.

pub mod backend;
pub mod bench;
pub mod bootstrap;
pub mod concurrent;
pub mod data;
pub mod fastmath;
pub mod format;
pub mod identify;
pub mod interrupt;
pub mod law;
pub mod lawfit;
pub mod memory;
pub mod objective;
pub mod optim;
pub mod options;
pub mod output;
pub mod polish;
pub mod profile;
pub mod report;
pub mod simulate;
pub mod stats;
pub mod values;
