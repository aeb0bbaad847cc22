//! `eval`: refit on part of the sweep and score the prediction of the rest.

use std::path::PathBuf;

use clap::Args;

use sweepfit::lawfit::Protocol;
use sweepfit::optim::Progress;
use sweepfit::output;
use sweepfit::report;

use super::args::{BackendArgs, FitFlags, InputArgs};
use super::term::{self, say};
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
    /// Protocols to run, comma-separated [default: those that apply to the
    /// data: sizes,tokens,leave-t for a LoopLM sweep]. A protocol
    /// asked for that cannot run is an error; one run by default is skipped
    /// with a note. test-where alone runs only the --test-where fold.
    #[arg(long, value_enum, value_delimiter = ',')]
    protocol: Option<Vec<Protocol>>,
    /// The per-curve variable leave-t leaves out one value of at a time
    /// (e.g. E, V for the moe and vocab laws).
    #[arg(long, value_name = "VAR", default_value = "T")]
    leave: String,
    /// Also hold out the rows whose COLUMN equals VALUE (e.g. split=test),
    /// as one more fold, protocol test-where.
    #[arg(long, value_name = "COLUMN=VALUE", value_parser = sweepfit::data::Selector::parse)]
    test_where: Option<sweepfit::data::Selector>,
    /// Model sizes each `sizes` fold trains on.
    #[arg(long, default_value_t = 3)]
    train_sizes: usize,
    /// Token fractions of the `tokens` protocol, comma-separated, each in (0, 1).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75", value_parser = super::args::fraction)]
    fractions: Vec<f64>,
    /// Also draw every fold's Real-vs-Pred grid, held-out points marked, to
    /// OUT/folds/*.png.
    #[arg(long)]
    plot: bool,
    /// The pictures' x axis: auto is log where the x values span two
    /// decades or more, else linear.
    #[arg(long, value_enum, default_value_t = report::XScale::Auto)]
    x_scale: report::XScale,
    #[command(flatten)]
    fit: FitFlags,
    #[command(flatten)]
    backend: BackendArgs,
}

/// `eval` of a law (looplm unless told) from a CSV or a manifest: every
/// fold a problem of one lockstep batch of the driver of every law, on
/// the compiled CPU evaluator or the law's generated GPU kernel.
pub(crate) fn cmd_eval(a: EvalArgs) -> anyhow::Result<()> {
    let mut fit = a.fit.law_fit_options(&[], a.test_where.clone())?;
    let (file, text, origin) = a.fit.law_source()?;
    for f in &a.fractions {
        if !(*f > 0.0 && *f < 1.0) {
            anyhow::bail!("--fractions: {f} is not strictly between 0 and 1");
        }
    }
    let out_dir = check_out_dir(&a.out, a.force)?;
    let mut table = a.input.table(&fit.objective)?;
    let bind = a.fit.bind_options(&[], a.test_where.as_ref());
    let bound = sweepfit::lawfit::bind(file, &text, &origin, &mut table, &bind)?;
    super::fit::tell_binding(&bound);
    let mut protocols = a.protocol.clone();
    if let Some(p) = &mut protocols {
        p.dedup();
    }
    let opts = sweepfit::lawfit::LawEvalOptions {
        protocols,
        train_sizes: a.train_sizes,
        fractions: a.fractions.clone(),
        leave: a.leave.clone(),
    };
    let out = a.backend.run_law(&mut fit, "evaluation", |fit| {
        let bar = spinner();
        let out = sweepfit::lawfit::evaluate(&bound, &table, fit, &opts, |p: Progress| {
            bar.set_message(format!(
                "iteration {} · {} starts active across all folds",
                p.iteration, p.active
            ));
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
