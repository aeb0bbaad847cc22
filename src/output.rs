//! All-or-nothing output files.
//!
//! Every file sweepfit writes is first written in full to a temporary file
//! in the target's own directory and then renamed over the target, so an
//! interrupt, a crash or a full disk leaves either the old file or the new
//! one, never a truncated one. The rename replaces a symlink at the target
//! rather than writing through it, so `--force` never writes outside the
//! output directory.
//!
//! Hand-written rather than `tempfile::NamedTempFile` because the result
//! must get ordinary permissions (the umask's, like `File::create`), and the
//! temporary must keep the target's extension: the picture encoders choose
//! the format from it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Prefix of the temporary files, so a leftover one (after a kill -9) is
/// recognisable.
pub const TEMP_PREFIX: &str = ".sweepfit-tmp-";

/// A temporary path beside `target`, keeping its extension, created
/// exclusively (no other process or earlier run owns it).
fn create_temp(target: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ext = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{n}{ext}", std::process::id());
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes the temporary file unless the write was committed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Write `path` all-or-nothing: `write` fills a buffered temporary file,
/// which is flushed, synced and renamed over `path` only if `write`
/// succeeded. Errors name `path`.
pub fn write_file<F>(path: &Path, write: F) -> anyhow::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
{
    let (tmp, file) =
        create_temp(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut w = BufWriter::with_capacity(1 << 16, file);
    write(&mut w).with_context(|| format!("writing {}", path.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    guard.0 = None;
    Ok(())
}

/// Write `bytes` to `path` all-or-nothing.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, |w| Ok(w.write_all(bytes)?))
}

/// For writers that insist on opening a path themselves (the picture
/// encoders): `write` is given a temporary path with the target's
/// extension, and the result is renamed over `path` only if it succeeded.
pub fn write_via_path<F>(path: &Path, write: F) -> anyhow::Result<()>
where
    F: FnOnce(&Path) -> anyhow::Result<()>,
{
    let (tmp, file) =
        create_temp(path).with_context(|| format!("cannot write {}", path.display()))?;
    drop(file);
    let mut guard = TempGuard(Some(tmp.clone()));
    write(&tmp).with_context(|| format!("writing {}", path.display()))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    guard.0 = None;
    Ok(())
}

/// Create the folder `path` goes into (and its parents) when missing, so
/// `--out results/sweep.csv` works in a fresh checkout.
pub fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => create_dir(d),
        _ => Ok(()),
    }
}

/// Create the output directory `dir` (and its parents) when missing.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.json");
        std::fs::write(&path, "old").unwrap();
        let r = write_file(&path, |w| {
            w.write_all(b"half of the new")?;
            anyhow::bail!("interrupted")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_successful_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.csv");
        std::fs::write(&path, "old").unwrap();
        write_bytes(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("precious.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let path = dir.path().join("fit.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_bytes(&path, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    }

    #[test]
    fn a_path_writer_sees_the_extension_and_failure_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        write_via_path(&path, |p| {
            assert_eq!(p.extension().unwrap(), "png");
            std::fs::write(p, "png bytes")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "png bytes");
        let other = dir.path().join("grid.svg");
        let r = write_via_path(&other, |p| {
            std::fs::write(p, "<svg")?;
            anyhow::bail!("encoder failed")
        });
        assert!(r.is_err());
        assert!(!other.exists());
        assert!(temp_files(dir.path()).is_empty());
    }
}
