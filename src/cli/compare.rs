//! `compare`: several laws on the same data, under the same hold-out
//! protocols, ranked.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use sweepfit::concurrent::Event;
use sweepfit::lawfit::{self, LawSource};
use sweepfit::report::compare as report;

use super::args::{law_source, BackendArgs, EvalSettings, FitFlags, InputArgs};
use super::term::{self, say, tell};
use super::{check_out_dir, spinner};

#[derive(Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    input: InputArgs,
    /// A law to compare: a built-in's name or a formula (repeatable), e.g.
    /// --law chinchilla --law 'E + A/N^alpha + B/(D + t2)^beta'.
    #[arg(long = "law", value_name = "LAW", allow_hyphen_values = true)]
    laws: Vec<String>,
    /// A law file to compare (repeatable).
    #[arg(long = "law-file", value_name = "FILE")]
    law_files: Vec<PathBuf>,
    /// Compare every law file (*.toml) in this folder too.
    #[arg(long, value_name = "DIR")]
    laws_dir: Option<PathBuf>,
    /// Output directory for compare.json and compare.csv.
    #[arg(long, default_value = "sweepfit-compare")]
    out: PathBuf,
    /// Write into a non-empty output directory (replacing what compare writes).
    #[arg(long)]
    force: bool,
    /// Also draw each protocol's held-out RMSE per law, best first, to
    /// OUT/compare.png and OUT/compare.svg.
    #[arg(long)]
    plot: bool,
    #[command(flatten)]
    eval: EvalSettings,
    #[command(flatten)]
    fit: FitFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The laws asked for, in the order given: --law, --law-file, then the
/// folder's files by name.
fn laws(a: &CompareArgs) -> anyhow::Result<Vec<LawSource>> {
    let mut out = Vec::new();
    for l in &a.laws {
        out.push(law_source(Some(l), None)?);
    }
    for f in &a.law_files {
        out.push(law_source(None, Some(f))?);
    }
    if let Some(dir) = &a.laws_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--laws-dir {}: cannot list it", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("--laws-dir {}: no law files (*.toml) there", dir.display());
        }
        for f in files {
            out.push(law_source(None, Some(&f))?);
        }
    }
    if out.is_empty() {
        bail!("give the laws to compare: --law NAME_OR_FORMULA, --law-file FILE or --laws-dir DIR (each repeatable)");
    }
    Ok(out)
}

pub(crate) fn cmd_compare(a: CompareArgs) -> anyhow::Result<()> {
    let mut fit = a
        .fit
        .law_fit_options(&a.eval.by, a.eval.test_where.clone())?;
    let opts = a.eval.options()?;
    let laws = laws(&a)?;
    a.backend.check()?;
    let out_dir = check_out_dir(&a.out, a.force)?;
    let table = a.input.table(&fit.objective)?;
    let binding = a.fit.bind_options(&a.eval.by, a.eval.test_where.as_ref());
    let names: Vec<String> = laws.iter().map(|(f, _, _)| f.name.clone()).collect();
    let r = a
        .backend
        .run_law(&mut fit, "comparison", &mut |m| tell!("{m}"), |fit| {
            let bar = spinner();
            let mut done = 0;
            let out = lawfit::compare(&laws, &table, &binding, fit, &opts, |e| {
                let (i, p) = match e {
                    Event::Progress(i, p) => (i, p),
                    Event::Done(d) => {
                        done = d;
                        return;
                    }
                };
                bar.set_message(format!(
                    "{done} of {} laws done; law {} ({}): {}",
                    names.len(),
                    i + 1,
                    names[i],
                    lawfit::Stage::Folds.message(p)
                ));
                bar.tick();
            });
            bar.finish_and_clear();
            out
        })?;
    out_dir.create()?;
    report::write_compare_json(&out_dir.join("compare.json"), &r)?;
    report::write_compare_csv(&out_dir.join("compare.csv"), &r)?;
    let mut written = vec!["compare.json", "compare.csv"];
    if a.plot && !r.ranking.is_empty() {
        for name in ["compare.png", "compare.svg"] {
            sweepfit::report::draw_compare(&out_dir.join(name), &r)?;
            written.push(name);
        }
    }
    out_dir.commit()?;
    out_dir.warn_stale(&written);
    term::out(format_args!("{}\n", report::compare_summary(&r)));
    let paths: Vec<String> = written
        .iter()
        .map(|n| out_dir.join(n).display().to_string())
        .collect();
    say!("wrote {}", paths.join(", "));
    Ok(())
}
