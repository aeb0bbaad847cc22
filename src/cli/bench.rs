//! `bench`: time the backends.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::term;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Time a law's evaluation instead of the looplm law's on the
    /// simulated looplm20 sweeps: the CPU's compiled evaluator and the GPU
    /// kernel generated from the law, on synthetic sweeps of 500-point
    /// curves (--points rounds to whole curves); no fits. A built-in law's name (see `sweepfit laws`) or a
    /// formula over --vars.
    #[arg(
        long,
        value_name = "NAME|FORMULA",
        conflicts_with = "law_file",
        allow_hyphen_values = true
    )]
    law: Option<String>,
    /// Time the law of this law file (see `sweepfit laws NAME` for the
    /// format), as --law does; it names its own variables and axis.
    #[arg(long, value_name = "FILE")]
    law_file: Option<PathBuf>,
    /// The variables of a --law formula, comma-separated; the curves run
    /// along the last [default: N,D]. A built-in law names its own.
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "law")]
    vars: Option<Vec<String>>,
    /// A smoke test in seconds: points 1e4,1e5, starts 1,128, 0.2 s cells,
    /// and no end-to-end fits (the full run has them).
    #[arg(long)]
    quick: bool,
    /// Sweep sizes in points, comma-separated [default: 1e4,1e5,1e6,1e7].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    points: Option<Vec<usize>>,
    /// Parameter vectors per evaluation, comma-separated [default: 1,16,128,1024,4096].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = sweepfit::bench::parse_count)]
    starts: Option<Vec<usize>>,
    /// Time each cell for about this long after one warm-up [default: 0.5, --quick 0.2].
    #[arg(long, value_name = "S", value_parser = super::args::positive)]
    seconds_per_cell: Option<f64>,
    /// Skip cells that smaller cells say would take longer per evaluation.
    #[arg(long, value_name = "S", default_value_t = 2.0, value_parser = super::args::positive)]
    max_eval_seconds: f64,
    /// Skip the end-to-end fits (demo sweep, Pythia sweep); --law and
    /// --law-file run none.
    #[arg(long)]
    no_fits: bool,
    /// Bench the CPU only.
    #[arg(long)]
    no_gpu: bool,
    /// Also write the results as JSON to FILE; with '-', the JSON goes to
    /// stdout and the table to stderr. An existing FILE is an error
    /// (checked before benchmarking) unless --force.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Replace an existing --json FILE.
    #[arg(long)]
    force: bool,
}

pub(crate) fn cmd_bench(a: BenchArgs) -> anyhow::Result<()> {
    use sweepfit::bench;
    // Refused before minutes of benchmarking, not after: an existing
    // file without --force, a directory, a folder that cannot be written.
    // The staged file is put in place at the end, all or nothing.
    let staged = match a.json.as_ref().filter(|p| p.as_os_str() != "-") {
        Some(p) => {
            if p.is_dir() {
                bail!("--json {}: is a directory", p.display());
            }
            if p.exists() && !a.force {
                bail!("--json {}: exists (use --force to replace it)", p.display());
            }
            let staging = sweepfit::output::Staging::files(p, a.force)
                .with_context(|| format!("--json {}", p.display()))?;
            Some((p, staging))
        }
        None => None,
    };
    let mut o = if a.quick {
        bench::BenchOptions::quick()
    } else {
        bench::BenchOptions::full()
    };
    o.points = a.points.unwrap_or(o.points);
    o.starts = a.starts.unwrap_or(o.starts);
    o.seconds_per_cell = a.seconds_per_cell.unwrap_or(o.seconds_per_cell);
    o.max_eval_seconds = a.max_eval_seconds;
    o.fits = o.fits && !a.no_fits && a.law.is_none() && a.law_file.is_none();
    o.gpu = !a.no_gpu;
    let report = match (&a.law, &a.law_file) {
        (Some(text), _) => bench::run_law(&o, &bench_law(text, a.vars.as_deref())?)?,
        (None, Some(path)) => {
            let (file, _, origin) = super::args::law_source(None, Some(path))?;
            if file.variables.is_empty() {
                bail!("{origin}: bench needs a law file that declares its [variables]");
            }
            let law = bench::BenchLaw::new(&file, &file.name, &origin)?;
            bench::run_law(&o, &law)?
        }
        (None, None) => bench::run(&o)?,
    };
    let table = bench::render(&report);
    match &a.json {
        Some(p) if p.as_os_str() == "-" => term::err(format_args!("{table}")),
        _ => term::out(format_args!("{table}")),
    }
    match &a.json {
        Some(p) if p.as_os_str() == "-" => {
            term::out(format_args!("{}", sweepfit::report::pretty_json(&report)?))
        }
        _ => {}
    }
    if let Some((p, staging)) = staged {
        let text = sweepfit::report::pretty_json(&report)?;
        sweepfit::output::write_file(&staging.path_for(p), |w| {
            w.write_all(text.as_bytes())?;
            Ok(())
        })?;
        staging.commit()?;
    }
    Ok(())
}

/// The law of `--law`: a built-in law, or a formula over `vars` (default
/// N, D) whose curves run along the last.
fn bench_law(text: &str, vars: Option<&[String]>) -> anyhow::Result<sweepfit::bench::BenchLaw> {
    use sweepfit::bench::BenchLaw;
    let name = text.trim();
    let (mut file, _, origin) = super::args::law_source(Some(name), None)?;
    if sweepfit::law::builtin(name).is_some() {
        if let Some(v) = vars {
            let own: Vec<&str> = file.variables.keys().map(String::as_str).collect();
            bail!(
                "--vars {}: the built-in law {name} names its own variables ({})",
                v.join(","),
                own.join(", ")
            );
        }
        return BenchLaw::new(&file, name, &origin);
    }
    let vars: Vec<String> = match vars {
        Some(v) => v.iter().map(|s| s.trim().to_string()).collect(),
        None => vec!["N".into(), "D".into()],
    };
    let list = vars.join(",");
    for (i, v) in vars.iter().enumerate() {
        if v.is_empty() {
            bail!("--vars {list}: a variable name is empty");
        }
        if vars[..i].contains(v) {
            bail!("--vars {list}: {v} is listed twice");
        }
    }
    file.variables = vars.iter().map(|v| (v.clone(), v.clone())).collect();
    file.axis = vars.last().cloned();
    file.validate().with_context(|| format!("--vars {list}"))?;
    BenchLaw::new(&file, name, &origin).with_context(|| {
        // The formula error below shows the formula; a long one only once.
        let shown = if name.chars().count() > 60 {
            String::new()
        } else {
            format!(" '{name}'")
        };
        format!(
            "--law{shown}: not a built-in law (see `sweepfit laws`), so a formula of {} (--vars)",
            vars.join(", ")
        )
    })
}
