//! sweepfit: fit neural scaling laws to whole sweeps of training curves.
//!
//! Data flow: [`data`] reads curves into a [`data::Dataset`]; [`law`] and
//! [`objective`] define what is fitted; a [`backend::Backend`] evaluates the
//! objective and its gradient for a batch of parameter vectors; [`optim`]
//! runs batched L-BFGS on the host; [`fit`] drives multi-start fits, [`bootstrap`]
//! and [`eval`] batch many weighted refits, and [`report`] writes the
//! results.

pub mod backend;
pub mod bench;
pub mod bootstrap;
pub mod data;
pub mod eval;
pub mod finish;
pub mod fit;
pub mod format;
pub mod identify;
pub mod law;
pub mod lawfit;
pub mod memory;
pub mod objective;
pub mod optim;
pub mod output;
pub mod polish;
pub mod predict;
pub mod profile;
pub mod report;
pub mod simulate;
pub mod stats;
