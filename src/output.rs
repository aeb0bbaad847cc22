//! All-or-nothing outputs.
//!
//! Every file sweepfit writes is first written in full to a temporary file
//! and then renamed into place, so an interrupt, a crash or a full disk
//! leaves either the old file or the new one, never a truncated one. The
//! rename replaces a symlink at the target rather than writing through it,
//! so `--force` never writes outside the output directory.
//!
//! A set of outputs (an output directory, or `simulate`'s CSV and its
//! truth.json) is written into a hidden [`Staging`] directory beside where
//! it goes (inside an output directory that exists already) and put in
//! place by [`Staging::commit`] only once every file is written: a new
//! output directory is renamed into place whole. Without
//! `--force` the step that puts it in place is also the check that nothing
//! is there (a rename onto a non-empty directory, a hard link onto a name,
//! both fail if the target exists), so of several runs started at once
//! into the same new `--out` one wins and the others fail.
//!
//! Temporaries not yet in place are listed, and
//! [`remove_temporaries_on_signals`] removes them on SIGINT, SIGTERM and
//! SIGHUP. One left by a `kill -9` never blocks a later run: it has a name
//! of its own (`.sweepfit-tmp-PID-N...`), beside the output rather than in
//! it, and where it is inside an existing output directory the emptiness
//! check passes over it.
//!
//! Hand-written rather than `tempfile::NamedTempFile` because the result
//! must get ordinary permissions (the umask's, like `File::create`), the
//! temporary must keep the target's extension (the picture encoders choose
//! the format from it), and the signal handler must find every temporary.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{bail, Context};

/// Prefix of the temporary files and directories, so a leftover one (after
/// a kill -9) is recognisable.
pub const TEMP_PREFIX: &str = ".sweepfit-tmp-";

/// Whether a file name is one of sweepfit's temporaries (this process's,
/// another run's, or one left by a killed run).
pub fn is_temporary(name: &OsStr) -> bool {
    name.to_string_lossy().starts_with(TEMP_PREFIX)
}

/// This process's temporaries that are not (yet) in place. Whoever
/// creates, puts in place or removes one holds the lock meanwhile, so the
/// signal handler never removes half of a set being put in place, and
/// nothing is created after it ran.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic elsewhere while it was held leaves the list itself intact.
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget(pending: &mut Vec<PathBuf>, path: &Path) {
    pending.retain(|p| p != path);
}

/// Staging directories and where what they hold goes, so that errors name
/// the output rather than the temporary it is written to.
static STAGED: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

fn staged() -> MutexGuard<'static, Vec<(PathBuf, PathBuf)>> {
    STAGED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `path` as the user knows it: inside a staging directory, where it goes.
fn shown(path: &Path) -> PathBuf {
    for (dir, target) in staged().iter() {
        if let Ok(rest) = path.strip_prefix(dir) {
            return target.join(rest);
        }
    }
    path.to_path_buf()
}

/// `.sweepfit-tmp-PID-N`: unique within this process; creation is
/// exclusive, so a leftover of a dead process with the same id is skipped.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}", std::process::id())
}

/// The directory `path` goes into.
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Remove a temporary file or directory, whichever it is (a symlink is
/// removed, not followed).
fn remove_temporary(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            // When the signal handler's thread removes it, the writing
            // thread may add a file meanwhile; once the directory itself is
            // gone nothing more can be added to it.
            for _ in 0..100 {
                match std::fs::remove_dir_all(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => continue,
                    _ => break,
                }
            }
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// A temporary path beside `target`, keeping its extension, created
/// exclusively (no other process or earlier run owns it).
fn create_temp(target: &Path) -> io::Result<(PathBuf, File)> {
    let dir = parent_of(target);
    let ext = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut pending = pending();
    loop {
        let path = dir.join(format!("{}{ext}", unique_name()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => {
                pending.push(path.clone());
                return Ok((path, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A temporary directory in `within`, named after `target` for whoever
/// finds it, created exclusively.
fn create_temp_dir(within: &Path, target: &Path) -> io::Result<PathBuf> {
    let hint: String = target
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(64).collect())
        .unwrap_or_default();
    let mut pending = pending();
    loop {
        let path = within.join(format!("{}-{hint}", unique_name()));
        match std::fs::create_dir(&path) {
            Ok(()) => {
                pending.push(path.clone());
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes the temporary file unless it was put in place.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    /// Rename the temporary over `path`.
    fn put_in_place(&mut self, path: &Path) -> io::Result<()> {
        let Some(tmp) = self.0.clone() else {
            return Ok(());
        };
        let mut pending = pending();
        // On failure the lock is released first, then drop removes it.
        std::fs::rename(&tmp, path)?;
        forget(&mut pending, &tmp);
        self.0 = None;
        Ok(())
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let mut pending = pending();
            let _ = std::fs::remove_file(&p);
            forget(&mut pending, &p);
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
    let shown = shown(path);
    let (tmp, file) =
        create_temp(path).with_context(|| format!("cannot write {}", shown.display()))?;
    let mut guard = TempGuard(Some(tmp));
    let mut w = BufWriter::with_capacity(1 << 16, file);
    write(&mut w).with_context(|| format!("writing {}", shown.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", shown.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", shown.display()))?;
    drop(file);
    guard
        .put_in_place(path)
        .with_context(|| format!("cannot write {}", shown.display()))
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
    let shown = shown(path);
    let (tmp, file) =
        create_temp(path).with_context(|| format!("cannot write {}", shown.display()))?;
    drop(file);
    let mut guard = TempGuard(Some(tmp.clone()));
    write(&tmp).with_context(|| format!("writing {}", shown.display()))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", shown.display()))?;
    guard
        .put_in_place(path)
        .with_context(|| format!("cannot write {}", shown.display()))
}

/// Write the single file `path` all-or-nothing and, unless `force`, only
/// where nothing is: the check is the step that puts it in place, so of
/// several runs writing `path` at once one wins and the others fail.
pub fn write_new_file<F>(path: &Path, force: bool, write: F) -> anyhow::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
{
    let staging = Staging::files(path, force)?;
    write_file(&staging.path_for(path), write)?;
    staging.commit()
}

/// A set of outputs written into a hidden directory and put in place
/// together by [`Staging::commit`]; dropped uncommitted (an error on the
/// way), it is removed with everything in it.
#[derive(Debug)]
pub struct Staging {
    /// The hidden directory the outputs are written into.
    dir: PathBuf,
    /// Where they go: the new output directory itself (`whole`), or the
    /// existing directory they go into name by name.
    target: PathBuf,
    /// A new output directory, renamed into place whole.
    whole: bool,
    /// Replace what is there (`--force`).
    force: bool,
}

impl Staging {
    /// Stage the output directory `out`. A new one is staged beside it and
    /// renamed into place whole. An existing one (empty, or with `--force`)
    /// is staged inside it, so on its file system even when it is a mount
    /// point or a symlink, and its files are moved in name by name.
    pub fn dir(out: &Path, force: bool) -> anyhow::Result<Staging> {
        let whole = std::fs::symlink_metadata(out).is_err();
        let within = if whole {
            parent_of(out)
        } else {
            out.to_path_buf()
        };
        create_dir(&within)?;
        let dir = create_temp_dir(&within, out)
            .with_context(|| format!("cannot write in {}", within.display()))?;
        staged().push((dir.clone(), out.to_path_buf()));
        Ok(Staging {
            dir,
            target: out.to_path_buf(),
            whole,
            force,
        })
    }

    /// Stage files that go into the folder of `file` (created when
    /// missing); each is put in place by its name.
    pub fn files(file: &Path, force: bool) -> anyhow::Result<Staging> {
        let target = parent_of(file);
        create_dir(&target)?;
        let dir = create_temp_dir(&target, file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        let shown_as = file.parent().unwrap_or(Path::new(""));
        staged().push((dir.clone(), shown_as.to_path_buf()));
        Ok(Staging {
            dir,
            target,
            whole: false,
            force,
        })
    }

    /// Where to write the output `name` (of [`Staging::dir`]) until the
    /// commit.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// Where to write the file that goes to `file` (of [`Staging::files`],
    /// in the same folder) until the commit.
    pub fn path_for(&self, file: &Path) -> PathBuf {
        debug_assert_eq!(parent_of(file), self.target);
        self.dir
            .join(file.file_name().unwrap_or(OsStr::new("output")))
    }

    /// Put everything written into place. Without `force` nothing is
    /// replaced: if a name is taken by then (another run got there first),
    /// nothing is put in place and the error names it.
    pub fn commit(self) -> anyhow::Result<()> {
        // The lock keeps a signal's removal from cutting the set in two; it
        // is released before `self` is dropped (which takes it again).
        let r = {
            let mut pending = pending();
            self.put_in_place(&mut pending)
        };
        drop(self);
        r
    }

    fn put_in_place(&self, pending: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        if self.whole {
            match std::fs::rename(&self.dir, &self.target) {
                Ok(()) => return Ok(()),
                // Created meanwhile, by another run or by hand.
                Err(_) if std::fs::symlink_metadata(&self.target).is_ok() => {
                    if !self.force || !self.target.is_dir() {
                        bail!(
                            "{}: appeared while sweepfit was writing (another run?); nothing was written there (use --force to write into it)",
                            self.target.display()
                        );
                    }
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create {}", self.target.display()))
                }
            }
        }
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let e = e?;
            names.push((e.file_name(), e.file_type()?.is_dir()));
        }
        // One order in every run: of two runs writing the same names, the
        // one that places the first wins.
        names.sort();
        // Checked before anything moves: without --force nothing may be
        // there, and a file never replaces a directory.
        for (name, is_dir) in &names {
            let dst = self.target.join(name);
            match std::fs::symlink_metadata(&dst) {
                Err(_) => {}
                Ok(_) if !self.force => bail!(taken(&shown(&self.dir.join(name)))),
                Ok(m) if m.is_dir() && !is_dir => bail!(
                    "{}: is a directory; nothing was written",
                    shown(&self.dir.join(name)).display()
                ),
                Ok(_) => {}
            }
        }
        // What this run added without --force, taken back on a failure
        // (with --force the checks above leave next to nothing to fail).
        let mut added: Vec<(PathBuf, bool)> = Vec::new();
        for (name, is_dir) in &names {
            let (src, dst) = (self.dir.join(name), self.target.join(name));
            let r = if self.force {
                replace(&src, &dst, *is_dir, &self.target, pending)
            } else {
                place_new(&src, &dst, *is_dir)
            }
            .map_err(|e| match e {
                Placing::Taken => anyhow::anyhow!(taken(&shown(&src))),
                Placing::Io(e) => {
                    anyhow::Error::new(e).context(format!("cannot write {}", shown(&src).display()))
                }
            });
            if let Err(e) = r {
                for (dst, is_dir) in added {
                    if is_dir {
                        let _ = std::fs::remove_dir_all(&dst);
                    } else {
                        let _ = std::fs::remove_file(&dst);
                    }
                }
                return Err(e);
            }
            if !self.force {
                added.push((dst, *is_dir));
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let mut pending = pending();
        remove_temporary(&self.dir);
        forget(&mut pending, &self.dir);
        drop(pending);
        staged().retain(|(dir, _)| *dir != self.dir);
    }
}

fn taken(path: &Path) -> String {
    format!(
        "{}: exists (another run may have written it meanwhile); nothing was written (use --force to replace it)",
        path.display()
    )
}

/// Why a file could not be put in place.
enum Placing {
    /// Something is there, and nothing may be replaced.
    Taken,
    Io(io::Error),
}

impl From<io::Error> for Placing {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Placing::Taken
        } else {
            Placing::Io(e)
        }
    }
}

/// Put `src` at `dst` only where nothing is; the check and the placing
/// are one step.
fn place_new(src: &Path, dst: &Path, is_dir: bool) -> Result<(), Placing> {
    if is_dir {
        // A rename onto an empty directory would replace it: claim the
        // name first (create_dir fails if anything is there).
        std::fs::create_dir(dst)?;
        return Ok(std::fs::rename(src, dst).inspect_err(|_| {
            let _ = std::fs::remove_dir(dst);
        })?);
    }
    match std::fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Placing::Taken),
        // A file system without hard links: claim the name with an empty
        // file, then rename over it.
        Err(_) => {
            OpenOptions::new().write(true).create_new(true).open(dst)?;
            Ok(std::fs::rename(src, dst).inspect_err(|_| {
                let _ = std::fs::remove_file(dst);
            })?)
        }
    }
}

/// Put `src` at `dst`, replacing what is there (`--force`).
fn replace(
    src: &Path,
    dst: &Path,
    is_dir: bool,
    within: &Path,
    pending: &mut Vec<PathBuf>,
) -> Result<(), Placing> {
    if !is_dir || std::fs::symlink_metadata(dst).is_err() {
        return std::fs::rename(src, dst).map_err(Placing::Io);
    }
    // A directory is not renamed over a non-empty one: the old one is moved
    // aside first, and removed once the new one is in place.
    let old = within.join(unique_name());
    pending.push(old.clone());
    let r = std::fs::rename(dst, &old).and_then(|()| {
        std::fs::rename(src, dst).inspect_err(|_| {
            let _ = std::fs::rename(&old, dst);
        })
    });
    remove_temporary(&old);
    forget(pending, &old);
    r.map_err(Placing::Io)
}

/// Remove this process's temporaries on SIGINT, SIGTERM or SIGHUP, then
/// exit with 128 + the signal's number (130, 143, 129), the status a shell
/// gives a command stopped that way.
///
/// With signal-hook: std cannot catch a signal, and a signal handler may
/// do next to nothing, so the crate's thread receives it and removes them.
#[cfg(unix)]
pub fn remove_temporaries_on_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until the exit: nothing is made or put in place
                // after these are removed.
                let mut pending = pending();
                for path in pending.drain(..) {
                    remove_temporary(&path);
                }
                // _exit: no exit hooks, which (a GPU driver's) might wait
                // on a lock the interrupted thread holds.
                signal_hook::low_level::exit(128 + signal);
            }
        })?;
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
    // A file where a folder of the path should be: named, since the
    // system's "File exists" names neither it nor the folder wanted.
    if let Some(file) = dir.ancestors().find(|a| a.is_file()) {
        anyhow::bail!(
            "cannot create the folder {}: {} is a file",
            shown(dir).display(),
            shown(file).display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", shown(dir).display()))
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
