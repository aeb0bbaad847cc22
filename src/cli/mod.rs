//! The commands of the `sweepfit` binary, one module each, with the
//! argument groups they share (`args`) and the helpers below.

pub mod args;
pub mod bench;
pub mod compare;
pub mod devices;
pub mod eval;
pub mod fit;
pub mod laws;
pub mod plot;
pub mod predict;
pub mod simulate;
pub mod term;

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sweepfit::output::{self, Staging};

use term::tell;

/// An output directory checked before any work: empty, new, or `--force`d.
/// Its files are written into a hidden staging directory once there is
/// something to write and put in place together by `commit`, so a failed
/// or interrupted run leaves nothing behind, and of several runs into the
/// same new directory one wins.
pub(crate) struct OutDir {
    pub(crate) dir: PathBuf,
    /// What it held before this run (top-level names).
    before: Vec<OsString>,
    force: bool,
    /// Between `create` and `commit`.
    staging: RefCell<Option<Staging>>,
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
        // Another run's staging, or one a killed run left, is no output
        // (putting the files in place still refuses to replace any).
        if before.iter().any(|n| !output::is_temporary(n)) && !force {
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
        force,
        staging: RefCell::new(None),
    })
}

impl OutDir {
    /// Start writing (once there is something to write).
    pub(crate) fn create(&self) -> anyhow::Result<()> {
        let mut staging = self.staging.borrow_mut();
        if staging.is_none() {
            *staging = Some(Staging::dir(&self.dir, self.force)?);
        }
        Ok(())
    }

    /// Put everything written in place.
    pub(crate) fn commit(&self) -> anyhow::Result<()> {
        match self.staging.borrow_mut().take() {
            Some(s) => s.commit(),
            None => Ok(()),
        }
    }

    /// Where `name` is written: in the staging directory until the commit,
    /// in the output directory after.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        match &*self.staging.borrow() {
            Some(s) => s.join(name),
            None => self.dir.join(name),
        }
    }

    /// Say which files of an earlier run this one left as they were, so
    /// that an old grid.png is not taken for this fit's.
    pub(crate) fn warn_stale(&self, written: &[&str]) {
        let stale: Vec<String> = self
            .before
            .iter()
            .filter(|n| !written.iter().any(|w| OsStr::new(w) == n.as_os_str()))
            .filter(|n| !output::is_temporary(n))
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        if !stale.is_empty() {
            tell!(
                "note: {} also holds {} from before this run (not rewritten)",
                self.dir.display(),
                stale.join(", ")
            );
        }
        let temps: Vec<String> = self
            .before
            .iter()
            .filter(|n| output::is_temporary(n))
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        if !temps.is_empty() {
            tell!(
                "note: {} holds {}, left by an interrupted or still running sweepfit (remove it once none runs)",
                self.dir.display(),
                temps.join(", ")
            );
        }
    }
}

/// Run `work` under a spinner that shows `message` of its progress.
pub(crate) fn with_spinner<P, T>(
    message: impl Fn(P) -> String,
    work: impl FnOnce(&mut dyn FnMut(P)) -> T,
) -> T {
    let bar = spinner();
    let out = work(&mut |p| {
        bar.set_message(message(p));
        bar.tick();
    });
    bar.finish_and_clear();
    out
}

/// The spinner line of a fit's starts or of its bootstrap's replicates.
pub(crate) fn progress_message(
    (stage, p): (sweepfit::lawfit::Stage, sweepfit::optim::Progress),
) -> String {
    stage.message(p)
}

pub(crate) fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
    );
    bar
}
