//! Independent pieces of work side by side (the laws of a comparison), as
//! many at once as the thread pool has threads, with the caller's thread
//! kept as their front end: it hears their progress and asks its own
//! interrupt check ([`crate::interrupt`]), as it would for one piece run
//! on it. Each piece is deterministic on its own, so the results are those
//! of running the pieces one after another, bit for bit, only sooner:
//! small problems leave most of a machine's cores idle between batched
//! evaluations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::interrupt;

/// How often the caller's thread looks at its interrupt check while it
/// waits for progress.
const WAKE: Duration = Duration::from_millis(50);

/// What the caller hears while the pieces run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<P> {
    /// Piece `i` reports `P`.
    Progress(usize, P),
    /// One more piece has finished: this many so far, in all.
    Done(usize),
}

/// Run `work(i, tell)` for every `i` in `0..n`, side by side, and return
/// the results in order of `i`. `tell` sends piece `i`'s progress
/// to `hear`, which runs on the caller's thread only.
///
/// Errors are those of the pieces run in order: when piece `i` fails, the
/// pieces after it are stopped (their results would not be reported) and
/// those before it run on, so the error returned is the first piece's
/// that fails, whatever the timing. An interruption of the caller's
/// thread stops every piece and returns it.
pub fn run_all<T: Send, P: Send>(
    n: usize,
    work: impl Fn(usize, &mut dyn FnMut(P)) -> anyhow::Result<T> + Sync,
    mut hear: impl FnMut(Event<P>),
) -> anyhow::Result<Vec<T>> {
    let failed = Arc::new(AtomicUsize::new(usize::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let slots: Vec<Mutex<Option<anyhow::Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let (tx, rx) = mpsc::channel::<Event<P>>();
    let mut interrupted = None;
    // As many pieces at once as the pool has threads, each on a thread of
    // its own whose parallel work goes to the pool: the pool's threads
    // stay busy, and the pieces in memory at once stay bounded (pieces
    // handed to the pool itself would be taken up by any of its threads
    // waiting inside another piece, all of them at once).
    let lanes = rayon::current_num_threads().clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 0..lanes {
            let tx = tx.clone();
            let (failed, stop, next, done, slots, work) =
                (&failed, &stop, &next, &done, &slots, &work);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let out = if stop.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) < i {
                    // Not started: its result would not be reported.
                    Err(interrupt::Interrupted.into())
                } else {
                    let (before, stop) = (failed.clone(), stop.clone());
                    interrupt::with_check(
                        move || stop.load(Ordering::Relaxed) || before.load(Ordering::Relaxed) < i,
                        || work(i, &mut |p| drop(tx.send(Event::Progress(i, p)))),
                    )
                };
                if out.is_err() {
                    failed.fetch_min(i, Ordering::Relaxed);
                }
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                let _ = tx.send(Event::Done(done));
            });
        }
        drop(tx);
        loop {
            match rx.recv_timeout(WAKE) {
                Ok(e) => hear(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if interrupted.is_none() {
                if let Err(e) = interrupt::check() {
                    interrupted = Some(e);
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    if let Some(e) = interrupted {
        return Err(e.into());
    }
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every piece ran")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_and_every_piece_reports() {
        let mut heard = vec![0; 20];
        let mut finished = 0;
        let out = run_all(
            20,
            |i, tell| {
                for k in 0..=i {
                    tell(k);
                }
                Ok(i * i)
            },
            |e| match e {
                Event::Progress(i, _) => heard[i] += 1,
                Event::Done(done) => finished = finished.max(done),
            },
        )
        .unwrap();
        assert_eq!(out, (0..20).map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(heard, (1..=20).collect::<Vec<_>>());
        assert_eq!(finished, 20);
    }

    #[test]
    fn the_first_failing_piece_in_order_is_the_error() {
        // Piece 7 fails at once; piece 3 fails only after a while, and
        // must still be the error reported. Pieces after 7 are stopped
        // (their check says so) or never started: none runs to its end.
        let later_finished = AtomicUsize::new(0);
        let e = run_all(
            12,
            |i, _tell: &mut dyn FnMut(())| {
                if i == 7 {
                    anyhow::bail!("piece 7");
                }
                if i == 3 {
                    std::thread::sleep(Duration::from_millis(200));
                    anyhow::bail!("piece 3");
                }
                if i > 7 {
                    for _ in 0..100 {
                        std::thread::sleep(Duration::from_millis(20));
                        interrupt::check()?;
                    }
                    later_finished.fetch_add(1, Ordering::Relaxed);
                }
                Ok(i)
            },
            |_| {},
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "piece 3");
        assert_eq!(later_finished.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_interrupt_of_the_caller_stops_every_piece() {
        let out = interrupt::with_check(
            || true,
            || {
                run_all(
                    4,
                    |_, _tell: &mut dyn FnMut(())| loop {
                        std::thread::sleep(Duration::from_millis(10));
                        interrupt::check()?;
                    },
                    |_| {},
                )
            },
        );
        let e: anyhow::Result<Vec<()>> = out;
        assert!(interrupt::is_interrupt(&e.unwrap_err()));
    }
}
