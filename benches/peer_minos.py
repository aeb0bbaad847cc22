"""sweepfit's profile intervals against MINOS (iminuit) on the LoopLM sweep.

Fits the looplm law to the sweep with `sweepfit fit --profile`, then runs
MIGRAD and MINOS (iminuit) from sweepfit's optimum on the same objective:
the sum of squared residuals divided by the best fit's residual variance
SSE/(n - k), with errordef the chi-squared(1) quantile of the level, so
MINOS's ends are where sweepfit's likelihood-ratio statistic
(SSE(v) - SSE) / (SSE / (n - k)) crosses its threshold. Prints both
intervals of every parameter and their relative differences.

    pip install iminuit numpy pandas
    python benches/peer_minos.py --bin target/release/sweepfit [--seed 1]
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from iminuit import Minuit
from scipy.stats import chi2

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--bin", required=True, help="the sweepfit binary")
p.add_argument("--seed", type=int, default=1, help="seed of the simulated sweep")
p.add_argument("--level", type=float, default=0.95)
a = p.parse_args()

NAMES = ["E", "A", "t1", "alpha", "B", "t2", "beta", "C", "t3", "gamma"]
# laws/looplm.toml: amplitudes and offsets positive, exponents in [1e-4, 8].
LIMITS = {n: (0.0, None) for n in NAMES}
LIMITS.update(alpha=(1e-4, 8.0), beta=(1e-4, 8.0), gamma=(1e-4, 8.0))

with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
    sweep = Path(tmp) / "sweep.csv"
    subprocess.run([a.bin, "simulate", "--seed", str(a.seed), "--out", sweep], check=True,
                   capture_output=True)
    out = Path(tmp) / "fit"
    t = time.perf_counter()
    subprocess.run([a.bin, "fit", sweep, "--profile", "--level", str(a.level), "--backend", "cpu",
                    "--out", out], check=True, capture_output=True)
    t_sweepfit = time.perf_counter() - t
    fit = json.loads((out / "fit.json").read_text())
    df = pd.read_csv(sweep)

N, D, T, y = (df[c].to_numpy(float) for c in ("N", "tokens", "T", "loss"))
n, k = len(y), len(NAMES)


def sse(E, A, t1, alpha, B, t2, beta, C, t3, gamma):
    pred = E + A / (N + t1) ** alpha + B / (D + t2) ** beta + C / (T + t3) ** gamma
    r = pred - y
    return float(r @ r)


best = fit["params"]
sigma2 = sse(**best) / (n - k)


def cost(*theta):
    return sse(*theta) / sigma2


m = Minuit(cost, *[best[n_] for n_ in NAMES], name=NAMES)
m.errordef = chi2.ppf(a.level, 1)
m.strategy = 2
m.tol = 1e-6
for n_ in NAMES:
    m.limits[n_] = LIMITS[n_]
    m.errors[n_] = max(fit["identifiability"]["standard_errors"][n_], 1e-12 * abs(best[n_]))
t = time.perf_counter()
m.migrad()
m.minos(ncall=200_000)
t_minos = time.perf_counter() - t

prof = fit["profile"]["params"]
print(f"LoopLM sweep (simulate --seed {a.seed}), {n} rows; level {a.level}")
print(f"MIGRAD moved the optimum by at most "
      f"{max(abs(m.values[n_] - best[n_]) / abs(best[n_]) for n_ in NAMES):.1e} (relative); "
      f"cost {m.fval:.10g} vs sweepfit {sse(**best) / sigma2:.10g}")
print(f"{'param':6} {'sweepfit lo':>14} {'MINOS lo':>14} {'rel':>8}   {'sweepfit hi':>14} "
      f"{'MINOS hi':>14} {'rel':>8}")


def why(me, side):
    """MINOS's verdict on one side."""
    return "valid" if getattr(me, f"{side}_valid") else "not valid"


worst = 0.0
for n_ in NAMES:
    me = m.merrors[n_]
    lo_m, hi_m = m.values[n_] + me.lower, m.values[n_] + me.upper
    s = prof[n_]
    rels = []
    for ours, theirs, side in ((s["lo"], lo_m, "lower"), (s["hi"], hi_m, "upper")):
        if ours is None:
            rels.append(float("nan"))
            continue
        r = abs(ours - theirs) / abs(theirs)
        rels.append(r)
        if getattr(me, f"{side}_valid"):
            worst = max(worst, r)
    f = lambda v: "open" if v is None else f"{v:.8g}"  # noqa: E731
    print(f"{n_:6} {f(s['lo']):>14} {lo_m:>14.8g} {rels[0]:8.1e}   {f(s['hi']):>14} {hi_m:>14.8g} "
          f"{rels[1]:8.1e}   MINOS: {why(me, 'lower')} / {why(me, 'upper')}")
print(f"largest relative difference where MINOS is valid: {worst:.1e}")
print(f"time: sweepfit fit --profile (whole command) {t_sweepfit:.2f} s; MIGRAD + MINOS {t_minos:.2f} s")
