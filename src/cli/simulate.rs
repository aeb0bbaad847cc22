//! `simulate`: write a simulated sweep and its true parameters.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use sweepfit::data;
use sweepfit::simulate;

use super::args::{sim_options, SimFlags};
use super::term::say;

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// Sweep shape: looplm20 is T = 1..4 for N = 53M..1.36B over 0..20B tokens.
    #[arg(long, default_value = "looplm20", value_parser = ["looplm20"])]
    preset: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Long CSV to write; the true parameters go next to it as FILE.truth.json.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sim: SimFlags,
}

pub(crate) fn cmd_simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let o = sim_options(a.seed, &a.sim)?;
    let truth_path = PathBuf::from(format!("{}.truth.json", a.out.display()));
    for p in [&a.out, &truth_path] {
        if p.exists() && !a.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    let ds = simulate::simulate_looplm20(&o);
    sweepfit::output::create_parent(&a.out)?;
    data::write_long_csv(&a.out, &ds)?;
    simulate::write_truth_json(&truth_path, &o)?;
    say!(
        "wrote {} ({} curves, {} points) and {}",
        a.out.display(),
        ds.configs.len(),
        ds.points(),
        truth_path.display()
    );
    Ok(())
}
