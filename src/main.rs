//! The sweepfit command line: parse, call the library, print.

mod cli;

use clap::{Parser, Subcommand};

use cli::term::tell;

use cli::bench::{self, BenchArgs};
use cli::compare::{self, CompareArgs};
use cli::devices::{self, DevicesArgs};
use cli::eval::{self, EvalArgs};
use cli::fit::{self, DemoArgs, FitArgs};
use cli::laws::{self, LawsArgs};
use cli::plot::{self, PlotArgs};
use cli::predict::{self, PredictArgs};
use cli::simulate::{self, SimulateArgs};

/// Fit neural scaling laws to whole sweeps of training runs.
///
/// One law is fitted to every curve of a sweep at once, its parameters
/// shared by all of them (or per group with `fit --by`). The default law is
/// LoopLM's L(N, D, T) = E + A/(N+t1)^alpha + B/(D+t2)^beta + C/(T+t3)^gamma
/// (N the model size, D the tokens seen, T the recurrent step); `--law`
/// takes a built-in's name (`sweepfit laws` lists them) or a formula of
/// your own, `--law-file` a law file.
#[derive(Parser)]
#[command(name = "sweepfit", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit the law to a long CSV or to per-run logs listed in a manifest.
    Fit(FitArgs),
    /// Write a simulated sweep (long CSV) and its true parameters (JSON).
    Simulate(SimulateArgs),
    /// Measure how well the law extrapolates: refit on part of the sweep and
    /// score the prediction of the rest (R2, RMSE, MAPE on held-out points).
    ///
    /// Protocols: sizes trains on every choice of --train-sizes model sizes
    /// and predicts the others (10 folds for 5 sizes); tokens trains on the
    /// first 25/50/75% of every curve's tokens and predicts the rest;
    /// leave-t leaves each recurrent step T out in turn. Every fold, and a
    /// fit on all points for comparison, runs as one batch with the full
    /// set of starts. Writes OUT/eval.json and OUT/eval.csv (one row per
    /// fold) and prints the table.
    ///
    /// Example: sweepfit eval sweep.csv --out eval-out --plot
    Eval(EvalArgs),
    /// Which law? Evaluate several laws on the same data under the same
    /// hold-out protocols (as `eval` does for one) and rank them by
    /// held-out error per protocol, with AIC and BIC of their fits on all
    /// rows (mse). Writes OUT/compare.json (every law's evaluation, the
    /// rankings) and OUT/compare.csv (one row per law and protocol).
    ///
    /// Example: sweepfit compare sweep.csv --law chinchilla --law looplm --protocol sizes
    Compare(CompareArgs),
    /// Simulate the 20-curve LoopLM sweep in memory and fit it.
    Demo(DemoArgs),
    /// List the GPU adapters wgpu can see, with the limits that matter here.
    Devices(DevicesArgs),
    /// Time the backends: evaluation throughput, per-call overhead and
    /// end-to-end fits on the CPU and the GPU (any law's with --law).
    Bench(BenchArgs),
    /// Predict loss curves from a fit.json on a grid of the law's variables (CSV).
    ///
    /// For the looplm and chinchilla laws: the columns N,T,tokens,pred, one
    /// row per point of the Cartesian product of --N, --T and --tokens: N
    /// outermost, then T, then tokens, each in the order given. For any
    /// other law: one column per variable given with --at (VAR=LIST), then
    /// pred, every combination, per group of a --by fit. pred is the law at
    /// the fitted parameters.
    /// When the fit was bootstrapped (fit --bootstrap B), every resampling
    /// scheme adds two columns, lo_<kind> and hi_<kind> (e.g. lo_curves,
    /// hi_curves): the percentile band of the replicates' predictions at
    /// the fit's interval level. Warns on stderr when N, T or tokens lie
    /// outside the fitted configurations' range.
    ///
    /// Example: sweepfit predict --fit sweepfit-out/fit.json --N 2.8e9 --T 1:4:4
    /// --tokens 1e9:40e9:100 --out pred.csv
    Predict(PredictArgs),
    /// Draw the Real-vs-Pred grid of a fit, or its residuals: one panel per
    /// curve (LoopLM: rows by T, columns by N; other laws: by their
    /// per-curve variables, or wrapped into a near-square grid), observed
    /// loss solid and the law dashed on top (PNG or SVG).
    ///
    /// Without --fit, --data must be a pred.csv (as `fit` writes) and its
    /// pred column is drawn; a law fit's pred.csv is drawn with the
    /// fit.json beside it. With --fit, the predictions are computed from
    /// that fit.json's parameters, so --data may be any long CSV (e.g. runs
    /// the fit did not see); --data then defaults to pred.csv beside the
    /// fit.json. The loss axis is shared and clipped to the 0.5th..99.5th
    /// percentile of all losses (plus 5%), so the first steps of each curve
    /// (loss ~11) run off the top rather than flatten the rest. A
    /// bootstrapped fit.json also shades the replicates' prediction band.
    ///
    /// With --residuals it draws the residuals (pred − loss) of the same
    /// panels instead, around a zero line, on one y range symmetric about
    /// zero: 1.1 x the 99th percentile of |pred − loss| over all curves, so
    /// a few large misses at the first steps run off the panel.
    ///
    /// Example: sweepfit plot --fit sweepfit-out/fit.json --out grid.svg
    ///
    /// Example: sweepfit plot --fit sweepfit-out/fit.json --residuals
    Plot(PlotArgs),
    /// List the built-in laws, or print one as a law file to start your own
    /// from.
    ///
    /// Without NAME: every built-in law with its formula, the named
    /// sub-expressions it uses and a description. With NAME: that law's file
    /// (TOML) exactly as it is built in: its formula, the data columns its
    /// variables are bound to, and its parameters' bounds, positivity and
    /// start ranges, each explained by a comment.
    ///
    /// Example: sweepfit laws moe > my-law.toml
    Laws(LawsArgs),
}

fn main() {
    // Before any thread starts (it writes the environment).
    sweepfit::backend::gpu::quiet_device_select_layer();
    // An interrupted write leaves no temporary behind.
    #[cfg(unix)]
    if let Err(e) = sweepfit::output::remove_temporaries_on_signals() {
        tell!("warning: cannot watch for SIGINT and SIGTERM ({e}); an interrupt may leave .sweepfit-tmp-* files");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fit(a) => fit::cmd_fit(a),
        Command::Eval(a) => eval::cmd_eval(a),
        Command::Compare(a) => compare::cmd_compare(a),
        Command::Simulate(a) => simulate::cmd_simulate(a),
        Command::Demo(a) => fit::cmd_demo(a),
        Command::Devices(a) => devices::cmd_devices(a),
        Command::Bench(a) => bench::cmd_bench(a),
        Command::Predict(a) => predict::cmd_predict(a),
        Command::Plot(a) => plot::cmd_plot(a),
        Command::Laws(a) => laws::cmd_laws(a),
    };
    if let Err(e) = result {
        tell!("error: {e:#}");
        std::process::exit(1);
    }
    // Results are written before anything is printed; a closed pipe is
    // quietly accepted, any other failure to print is an error.
    if let Some(e) = cli::term::stdout_failure() {
        tell!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
