//! The commands of the `sweepfit` binary, one module each, with the
//! argument groups they share (`args`) and the helpers below.

pub mod args;
pub mod bench;
pub mod devices;
pub mod eval;
pub mod fit;
pub mod plot;
pub mod predict;
pub mod simulate;

use std::path::Path;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

/// Refuse to write into a non-empty directory unless forced. Checked
/// before any work; the directory is only created once there is something
/// to write, so a failed run leaves nothing behind.
pub(crate) fn check_out_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("--out {}: exists and is not a directory", dir.display());
        }
        let non_empty = std::fs::read_dir(dir)?.next().is_some();
        if non_empty && !force {
            bail!(
                "--out {}: directory is not empty (use --force to replace the files sweepfit writes there)",
                dir.display()
            );
        }
    }
    Ok(())
}

pub(crate) fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
    );
    bar
}
