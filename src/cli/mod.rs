//! The commands of the `sweepfit` binary, one module each, with the
//! argument groups they share (`args`) and the helpers below.

pub mod args;
pub mod bench;
pub mod devices;
pub mod eval;
pub mod fit;
pub mod laws;
pub mod plot;
pub mod predict;
pub mod simulate;
pub mod term;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use term::tell;

/// An output directory checked before any work: empty, new, or `--force`d.
/// It is only created once there is something to write, so a failed run
/// leaves nothing behind.
pub(crate) struct OutDir {
    pub(crate) dir: PathBuf,
    /// What it held before this run (top-level names).
    before: Vec<OsString>,
}

/// Refuse to write into a non-empty directory unless forced.
pub(crate) fn check_out_dir(dir: &Path, force: bool) -> anyhow::Result<OutDir> {
    let mut before = Vec::new();
    if dir.exists() {
        if !dir.is_dir() {
            bail!("--out {}: exists and is not a directory", dir.display());
        }
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("--out {}: cannot list it", dir.display()))?;
        for e in entries {
            before.push(e?.file_name());
        }
        if !before.is_empty() && !force {
            bail!(
                "--out {}: directory is not empty (use --force to replace the files sweepfit writes there)",
                dir.display()
            );
        }
    }
    before.sort();
    Ok(OutDir {
        dir: dir.to_path_buf(),
        before,
    })
}

impl OutDir {
    pub(crate) fn create(&self) -> anyhow::Result<()> {
        sweepfit::output::create_dir(&self.dir)
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Say which files of an earlier run this one left as they were, so
    /// that an old grid.png is not taken for this fit's.
    pub(crate) fn warn_stale(&self, written: &[&str]) {
        let stale: Vec<String> = self
            .before
            .iter()
            .filter(|n| !written.iter().any(|w| OsStr::new(w) == n.as_os_str()))
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        if !stale.is_empty() {
            tell!(
                "note: {} also holds {} from before this run (not rewritten)",
                self.dir.display(),
                stale.join(", ")
            );
        }
    }
}

/// Run `work` under a spinner that shows `message` of its progress.
pub(crate) fn with_spinner<T>(
    message: impl Fn(sweepfit::optim::Progress) -> String,
    work: impl FnOnce(&mut dyn FnMut(sweepfit::optim::Progress)) -> T,
) -> T {
    let bar = spinner();
    let out = work(&mut |p| {
        bar.set_message(message(p));
        bar.tick();
    });
    bar.finish_and_clear();
    out
}

/// The spinner line of a fit's starts.
pub(crate) fn fit_message(p: sweepfit::optim::Progress) -> String {
    format!(
        "iteration {} · {} starts active · best objective {:.6e}",
        p.iteration, p.active, p.best
    )
}

/// The spinner line of a bootstrap's replicates.
pub(crate) fn bootstrap_message(p: sweepfit::optim::Progress) -> String {
    format!(
        "bootstrap: iteration {} · {} replicates active",
        p.iteration, p.active
    )
}

pub(crate) fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
    );
    bar
}
