//! Terminal output that never panics.
//!
//! `println!` panics when stdout is closed (`sweepfit fit ... | head -1`) or
//! full (`> /dev/full`), and `eprintln!` likewise on stderr. Commands write
//! their files first and print afterwards; printing goes through here, so a
//! failed write to stdout is remembered instead of panicking: a closed pipe
//! then ends the program quietly, as Unix tools do, and any other failure
//! (a full disk) becomes a clear error once the work is done. Messages to
//! stderr are best effort: where stderr itself is broken there is nobody
//! left to tell.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// Write to stdout, remembering the first failure (and skipping every write
/// after it).
pub(crate) fn out(args: fmt::Arguments) {
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_some() {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        *failed = Some(e);
    }
}

/// Write to stderr, ignoring failure.
pub(crate) fn err(args: fmt::Arguments) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.flush());
}

/// How stdout fared: `None` when every write succeeded or the reader went
/// away (a closed pipe is the reader's choice, not an error), else the
/// first failure.
pub(crate) fn stdout_failure() -> Option<io::Error> {
    let failed = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    failed.filter(|e| e.kind() != io::ErrorKind::BrokenPipe)
}

/// `println!` to stdout through [`out`].
macro_rules! say {
    () => { $crate::cli::term::out(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::term::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` to stderr through [`err`].
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::cli::term::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use say;
pub(crate) use tell;
