//! `simulate`: write a simulated sweep and its true parameters.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use sweepfit::data;
use sweepfit::output::Staging;
use sweepfit::simulate;

use super::args::{sim_options, SimFlags};
use super::term::say;

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// Sweep shape: looplm20 is T = 1..4 for N = 53M..1.36B over 0..20B tokens.
    #[arg(long, default_value = "looplm20", value_parser = ["looplm20"])]
    preset: String,
    /// Simulate this law instead of the preset: a built-in's name or a
    /// formula (its names given values with --at are its variables).
    #[arg(long, conflicts_with = "law_file", allow_hyphen_values = true)]
    law: Option<String>,
    /// Simulate the law of this law file.
    #[arg(long, value_name = "FILE")]
    law_file: Option<PathBuf>,
    /// With --law: a parameter's value, NAME=VALUE (one per parameter).
    #[arg(long, value_name = "NAME=VALUE", allow_hyphen_values = true)]
    param: Vec<String>,
    /// With --law: a variable's values, VAR=LIST as for `predict --N`; the
    /// rows are every combination.
    #[arg(long, value_name = "VAR=LIST", allow_hyphen_values = true)]
    at: Vec<String>,
    /// With --law: write variable NAME's values to column COLUMN, e.g.
    /// --var N=params (repeatable); otherwise a variable's column is the
    /// one its law file names, or its own name.
    #[arg(long = "var", value_name = "NAME=COLUMN", value_parser = super::args::parse_var)]
    vars: Vec<(String, String)>,
    /// With --law, for a law that sums along the steps (multi-power,
    /// lr-annealing): the runs' learning rate at every step, as `fit
    /// --schedule` reads it; one curve per run, at the --at steps.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
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
    let truth_path = PathBuf::from(format!("{}.truth.json", a.out.display()));
    for p in [&a.out, &truth_path] {
        if p.exists() && !a.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    if a.law.is_some() || a.law_file.is_some() {
        return simulate_law(&a, &truth_path);
    }
    if !a.param.is_empty() || !a.at.is_empty() || a.schedule.is_some() {
        bail!("--param, --at and --schedule go with --law or --law-file");
    }
    let o = sim_options(a.seed, &a.sim)?;
    let ds = simulate::simulate_looplm20_checked(&o)?;
    // Both files or neither.
    let staging = Staging::files(&a.out, a.force)?;
    data::write_long_csv(&staging.path_for(&a.out), &ds)?;
    simulate::write_truth_json(&staging.path_for(&truth_path), &o)?;
    staging.commit()?;
    say!(
        "wrote {} ({} curves, {} points) and {}",
        a.out.display(),
        ds.configs.len(),
        ds.points(),
        truth_path.display()
    );
    Ok(())
}

/// `simulate --law`: the law at every combination of the --at values.
fn simulate_law(a: &SimulateArgs, truth_path: &std::path::Path) -> anyhow::Result<()> {
    let noise = a.sim.law_noise()?;
    let (mut file, text, origin) =
        super::args::law_source(a.law.as_deref(), a.law_file.as_deref())?;
    let pairs = |items: &[String], what: &str| -> anyhow::Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for s in items {
            let Some((k, v)) = s.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
                bail!("{what} '{s}': expected NAME=VALUE");
            };
            let k = k.trim();
            // A later value would silently win (or be dropped): refuse.
            if out.iter().any(|(n, _)| n == k) {
                bail!("{what} {k} is given twice: give each name once");
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    };
    let mut params = Vec::new();
    for (k, v) in pairs(&a.param, "--param")? {
        let x: f64 = v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--param {k}: '{v}' is not a number"))?;
        params.push((k, x));
    }
    let mut at = Vec::new();
    for (k, v) in pairs(&a.at, "--at")? {
        let values = sweepfit::values::parse_list(&v, |x| {
            (!x.is_finite()).then(|| format!("{x} is not finite"))
        })
        .map_err(|(it, why)| anyhow::anyhow!("--at {k} '{it}': {why}"))?;
        at.push((k, values));
    }
    sweepfit::lawfit::bind_columns(&mut file, &at, &a.vars)?;
    let schedules = match &a.schedule {
        Some(p) => Some(data::Schedules::read(p)?),
        None => None,
    };
    let sim = sweepfit::lawfit::LawSimulation {
        params,
        at,
        noise,
        seed: a.seed,
        schedules,
    };
    let out = sweepfit::lawfit::simulate(file, &text, &origin, &sim)?;
    let staging = Staging::files(&a.out, a.force)?;
    sweepfit::output::write_file(&staging.path_for(&a.out), |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(&out.header)?;
        for r in &out.rows {
            c.write_record(r)?;
        }
        c.flush()?;
        Ok(())
    })?;
    sweepfit::report::write_pretty(&staging.path_for(truth_path), &out.truth)?;
    staging.commit()?;
    say!(
        "wrote {} ({} rows of law {}) and {}",
        a.out.display(),
        out.rows.len(),
        out.truth.law,
        truth_path.display()
    );
    Ok(())
}
