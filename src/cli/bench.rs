//! `bench`: time the backends.

use std::path::PathBuf;

use super::term;
use clap::Args;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Small grid for a smoke test: points 1e4,1e5, starts 1,128, 0.2 s cells.
    #[arg(long)]
    quick: bool,
    /// Sweep sizes in points, comma-separated [default: 1e4,1e5,1e6,1e7].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    points: Option<Vec<usize>>,
    /// Parameter vectors per evaluation, comma-separated [default: 1,16,128,1024,4096].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    starts: Option<Vec<usize>>,
    /// Time each cell for about this long after one warm-up [default: 0.5, --quick 0.2].
    #[arg(long, value_name = "S")]
    seconds_per_cell: Option<f64>,
    /// Skip cells that smaller cells say would take longer per evaluation.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    max_eval_seconds: f64,
    /// Skip the end-to-end fits (demo sweep, Pythia sweep).
    #[arg(long)]
    no_fits: bool,
    /// Bench the CPU only.
    #[arg(long)]
    no_gpu: bool,
    /// Also write the results as JSON to FILE; with '-', the JSON goes to
    /// stdout and the table to stderr.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub(crate) fn cmd_bench(a: BenchArgs) -> anyhow::Result<()> {
    use sweepfit::bench;
    let mut o = if a.quick {
        bench::BenchOptions::quick()
    } else {
        bench::BenchOptions::full()
    };
    o.points = a.points.unwrap_or(o.points);
    o.starts = a.starts.unwrap_or(o.starts);
    o.seconds_per_cell = a.seconds_per_cell.unwrap_or(o.seconds_per_cell);
    o.max_eval_seconds = a.max_eval_seconds;
    o.fits = !a.no_fits;
    o.gpu = !a.no_gpu;
    let report = bench::run(&o)?;
    let table = bench::render(&report);
    match &a.json {
        Some(p) if p.as_os_str() == "-" => term::err(format_args!("{table}")),
        _ => term::out(format_args!("{table}")),
    }
    match &a.json {
        Some(p) if p.as_os_str() == "-" => {
            term::out(format_args!("{}", sweepfit::report::pretty_json(&report)?))
        }
        Some(p) => sweepfit::report::write_pretty(p, &report)?,
        None => {}
    }
    Ok(())
}
