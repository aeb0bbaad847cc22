"""Ctrl-C stops a running fit promptly and leaves the interpreter usable."""

import signal
import threading
import time

import pandas as pd
import pytest

import sweepfit


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX timers")
def test_keyboard_interrupt_stops_a_long_fit(sweep_csv):
    df = pd.read_csv(sweep_csv)
    fired = {}

    def handler(signum, frame):
        fired["at"] = time.monotonic()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            # Far more work than 0.3 s: 20,000 starts with a 2,000-replicate bootstrap.
            sweepfit.fit(df, starts=20000, bootstrap=2000, backend="cpu", progress=False)
        stopped = time.monotonic()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert "at" in fired, "the alarm never fired"
    assert stopped - fired["at"] < 1.0, f"stopped {stopped - fired['at']:.2f} s after the signal"
    assert stopped - start < 5.0
    # The interpreter goes on: a fit right after works.
    fit = sweepfit.fit(df, starts=8, backend="cpu", progress=False)
    assert fit.metrics["r2"] > 0.99


def test_a_fit_releases_the_interpreter_lock(sweep_csv):
    df = pd.read_csv(sweep_csv)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    t.start()
    try:
        start = time.monotonic()
        sweepfit.fit(df, starts=512, backend="cpu", progress=False)
        end = time.monotonic()
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if start < x < end]
    # A thread that held no lock ticks every 5 ms; one starved by the fit would not.
    assert len(during) >= max(5, 0.1 * (end - start) / 0.005), (len(during), end - start)


def test_progress_reaches_a_callback(sweep_csv):
    df = pd.read_csv(sweep_csv)
    seen = []
    sweepfit.fit(df, starts=2048, backend="cpu", progress=lambda *a: seen.append(a))
    assert seen, "no progress was reported"
    stage, iteration, active, best = seen[-1]
    assert stage == "fit" and iteration >= 1 and active >= 0 and best > 0
