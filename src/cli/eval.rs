//! `eval`: refit on part of the sweep and score the prediction of the rest.

use std::path::PathBuf;

use clap::Args;

use sweepfit::optim::Progress;
use sweepfit::output;
use sweepfit::report;

use super::args::{BackendArgs, EvalSettings, FitFlags, InputArgs, LawArgs};
use super::term::{self, say, tell};
use super::{check_out_dir, spinner, OutDir};

#[derive(Args)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output directory for eval.json and eval.csv.
    #[arg(long, default_value = "sweepfit-eval")]
    out: PathBuf,
    /// Write into a non-empty output directory (replacing what eval writes).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    eval: EvalSettings,
    /// Also draw every fold's Real-vs-Pred grid, held-out points marked, to
    /// OUT/folds/*.png.
    #[arg(long)]
    plot: bool,
    /// The pictures' x axis: auto is log where the x values span two
    /// decades or more, else linear.
    #[arg(long, value_enum, default_value_t = report::XScale::Auto)]
    x_scale: report::XScale,
    #[command(flatten)]
    law: LawArgs,
    #[command(flatten)]
    fit: FitFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

/// `eval` of a law (looplm unless told) from a CSV or a manifest: every
/// fold a problem of one lockstep batch of the driver of every law, on
/// the compiled CPU evaluator or the law's generated GPU kernel.
pub(crate) fn cmd_eval(a: EvalArgs) -> anyhow::Result<()> {
    if a.plot && !a.eval.by.is_empty() {
        anyhow::bail!(
            "--plot draws one fit per fold, and with --by a fold has a fit per group: leave \
             out --plot (eval.json holds every group's parameters)"
        );
    }
    let mut fit = a
        .fit
        .law_fit_options(&a.eval.by, a.eval.test_where.clone())?;
    let (file, text, origin) = a.law.law_source()?;
    let opts = a.eval.options()?;
    let out_dir = check_out_dir(&a.out, a.force)?;
    let mut table = a.input.table(&fit.objective)?;
    let bind = a.fit.bind_options(&a.eval.by, a.eval.test_where.as_ref());
    let bound = sweepfit::lawfit::bind(file, &text, &origin, &mut table, &bind)?;
    super::fit::tell_binding(&bound);
    let out = a
        .backend
        .run_law(&mut fit, "evaluation", &mut |m| tell!("{m}"), |fit| {
            let bar = spinner();
            let out = sweepfit::lawfit::evaluate(&bound, &table, fit, &opts, |p: Progress| {
                bar.set_message(sweepfit::lawfit::Stage::Folds.message(p));
                bar.tick();
            });
            bar.finish_and_clear();
            out
        })?;
    out_dir.create()?;
    report::write_eval_json(&out_dir.join("eval.json"), &out.report)?;
    report::write_eval_csv(&out_dir.join("eval.csv"), &out.report)?;
    let mut written = vec!["eval.json", "eval.csv"];
    let mut pictures = 0;
    if a.plot {
        let dir = out_dir.join("folds");
        output::create_dir(&dir)?;
        for (i, (fr, (held, params))) in out
            .report
            .folds
            .iter()
            .zip(out.held_out.iter().zip(&out.params))
            .enumerate()
        {
            let (panels, mut opts) = sweepfit::lawfit::fold_panels(&bound, &table, params, held)?;
            opts.title = Some(report::fold_title(i + 1, fr));
            opts.x_scale = a.x_scale;
            let path = dir.join(format!("{:02}-{}.png", i + 1, slug(&fr.fold)));
            report::draw_grid(&path, &panels, &opts)?;
            pictures += 1;
        }
        written.push("folds");
    }
    out_dir.commit()?;
    finish(&out_dir, &written, &out.report, a.plot.then_some(pictures));
    Ok(())
}

/// After the files: the stale-file note, the table, and what was written.
fn finish(out_dir: &OutDir, written: &[&str], r: &report::EvalReport, pictures: Option<usize>) {
    out_dir.warn_stale(written);
    term::out(format_args!("{}", report::eval_summary(r)));
    say!(
        "wrote {} and {}",
        out_dir.join("eval.json").display(),
        out_dir.join("eval.csv").display()
    );
    if let Some(n) = pictures {
        say!(
            "wrote {n} fold pictures to {}",
            out_dir.join("folds").display()
        );
    }
}

/// A file-name-safe form of a fold label: "train N = 53M, 134M" ->
/// "train-N-53M-134M".
fn slug(label: &str) -> String {
    let mut s = String::new();
    for ch in label.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            s.push(ch);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}
