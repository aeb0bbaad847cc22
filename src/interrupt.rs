//! Stopping long work from outside. A front end that cannot simply end
//! the process on Ctrl-C (the Python package: the interpreter must go on)
//! sets a check on the thread that runs the work; the optimisers ask it
//! between batched evaluations, and a check that says stop ends the work
//! with an [`Interrupted`] error, which the front end turns into its own
//! (a `KeyboardInterrupt`). The command line sets none: a signal ends it.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The error of work stopped by its check.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Whether `e` is (or wraps) an interruption.
pub fn is_interrupt(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Interrupted>())
}

/// How often the check runs at most: it may take a lock (Python's), and
/// an evaluation can take microseconds.
const EVERY: Duration = Duration::from_millis(50);

struct Check {
    stop: Box<dyn FnMut() -> bool>,
    last: Instant,
}

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Run `work` on this thread with `stop` asked (at most every 50 ms)
/// whether to stop it.
pub fn with_check<T>(stop: impl FnMut() -> bool + 'static, work: impl FnOnce() -> T) -> T {
    struct Reset(Option<Check>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let before = self.0.take();
            CHECK.with(|c| *c.borrow_mut() = before);
        }
    }
    let before = CHECK.with(|c| {
        c.borrow_mut().replace(Check {
            stop: Box::new(stop),
            last: Instant::now(),
        })
    });
    let _reset = Reset(before);
    work()
}

/// `Err(Interrupted)` when this thread's check says stop.
pub fn check() -> Result<(), Interrupted> {
    CHECK.with(|c| {
        let mut c = c.borrow_mut();
        let Some(check) = c.as_mut() else {
            return Ok(());
        };
        if check.last.elapsed() < EVERY {
            return Ok(());
        }
        check.last = Instant::now();
        match (check.stop)() {
            true => Err(Interrupted),
            false => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_stops_work_on_its_thread_only_while_set() {
        assert!(check().is_ok());
        let out = with_check(
            || true,
            || {
                std::thread::sleep(EVERY);
                let here = check();
                let there = std::thread::spawn(check).join().unwrap();
                (here.is_err(), there.is_ok())
            },
        );
        assert_eq!(out, (true, true));
        std::thread::sleep(EVERY);
        assert!(check().is_ok());
        let e = anyhow::Error::new(Interrupted).context("fit");
        assert!(is_interrupt(&e));
    }
}
