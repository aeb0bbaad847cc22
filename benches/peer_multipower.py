#!/usr/bin/env python3
"""A peer for sweepfit's multi-power law fit: numpy + scipy, the authors'
formulation (Luo et al. 2025), timed back to back with sweepfit.

The multi-power law L(t) = L0 + A S1(t)^-alpha - B LD(t) is evaluated as the
authors' code does, dense over (logged row, earlier step) per run: S1 is the
prefix sum of the schedule from step 0, LD(t) = sum over k = 1..t of
(lr[k-1] - lr[k]) (1 - (C lr[k]^-gamma S_k(t) + 1)^-beta), S_k(t) the sum of
lr over k..t (steps where the LR does not change are dropped, as sweepfit
drops them). The objective is sweepfit's: the mean over rows of Huber
(delta 1e-3) of log(loss) - log(pred). Gradients are analytic (numpy), and
scipy's L-BFGS-B runs from every start sweepfit used (its starts.csv), with
the law file's bounds.

    python benches/peer_multipower.py --bin target/release/sweepfit

runs `sweepfit fit` on the README's example (25M: cosine_24000,
constant_24000, wsdcon_9) with --save-starts, then the peer from the same
starts, and prints both times and objectives.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.optimize import minimize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "multipower")
RUNS = ["cosine_24000", "constant_24000", "wsdcon_9"]
PARAMS = ["L0", "A", "alpha", "B", "C", "gamma", "beta"]
DELTA = 1e-3
# The law file's bounds (positive: above 0).
BOUNDS = {
    "L0": (1e-12, None),
    "A": (1e-12, None),
    "alpha": (1e-3, 3.0),
    "B": (1e-12, None),
    "C": (1e-12, None),
    "gamma": (0.0, 2.0),
    "beta": (1e-4, 4.0),
}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


class Run:
    """One run's logged rows and the dense (row, active step) arrays."""

    def __init__(self, size, name):
        lr = np.array([float(r["lr"]) for r in read_csv(os.path.join(DATA, "schedules", f"{name}.csv"))])
        rows = [r for r in read_csv(os.path.join(DATA, size, f"{name}.csv")) if int(r["step"]) != 24000]
        t = np.array([int(r["step"]) for r in rows])
        self.y = np.log(np.array([float(r["loss"]) for r in rows]))
        prefix = np.cumsum(lr)
        self.s1 = prefix[t]
        k = np.arange(1, len(lr))
        d = lr[k - 1] - lr[k]
        keep = d != 0.0
        k, d = k[keep], d[keep]
        # S_k(t) = prefix[t] - prefix[k-1], masked to k <= t.
        self.mask = k[None, :] <= t[:, None]
        self.s = np.where(self.mask, prefix[t][:, None] - prefix[k - 1][None, :], 0.0)
        self.d = d
        self.lnlr = np.log(lr[k])


def objective(p, runs, n):
    l0, a, alpha, b, c, gamma, beta = p
    f = 0.0
    g = np.zeros(7)
    for r in runs:
        e = np.exp(-gamma * r.lnlr)  # lr^-gamma per step
        x = 1.0 + c * e[None, :] * r.s
        lnx = np.log(x)
        xb = np.exp(-beta * lnx)  # x^-beta
        w = r.d[None, :] * r.mask
        ld = np.sum(w * (1.0 - xb), axis=1)
        # d LD / d C, gamma, beta.
        common = w * beta * xb / x * r.s
        dc = np.sum(common * e[None, :], axis=1)
        dgamma = np.sum(common * (c * e * -r.lnlr)[None, :], axis=1)
        dbeta = np.sum(w * xb * lnx, axis=1)
        s1a = np.exp(-alpha * np.log(r.s1))
        pred = l0 + a * s1a - b * ld
        res = r.y - np.log(pred)
        inside = np.abs(res) <= DELTA
        f += np.sum(np.where(inside, 0.5 * res * res, DELTA * (np.abs(res) - 0.5 * DELTA)))
        psi = np.clip(res, -DELTA, DELTA)
        dpred = -psi / pred  # d rho / d pred
        g += [
            np.sum(dpred),
            np.sum(dpred * s1a),
            np.sum(dpred * -a * s1a * np.log(r.s1)),
            np.sum(dpred * -ld),
            np.sum(dpred * -b * dc),
            np.sum(dpred * -b * dgamma),
            np.sum(dpred * -b * dbeta),
        ]
    return f / n, g / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "sweepfit"))
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--size", default="25")
    args = ap.parse_args()
    if not os.path.isdir(DATA):
        sys.exit(f"{DATA} is missing: the peer reads the shared multi-power data")

    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "target")) as tmp:
        manifest = os.path.join(tmp, "train.csv")
        with open(manifest, "w") as f:
            f.write("run,file,N,T,tokens_per_step,step_col,loss_col\n")
            for r in RUNS:
                f.write(f"{r},{os.path.join(DATA, args.size, r + '.csv')},1,1,1,step,loss\n")
        schedules = os.path.join(tmp, "schedules.csv")
        with open(schedules, "w") as f:
            f.write("run,file\n")
            for r in RUNS:
                f.write(f"{r},{os.path.join(DATA, 'schedules', r + '.csv')}\n")
        out = os.path.join(tmp, "fit")
        cmd = [args.bin, "fit", "--manifest", manifest, "--max-tokens", "23999", "--var", "step=tokens",
               "--law", "multi-power", "--schedule", schedules, "--loss", "huber", "--delta", "1e-3",
               "--space", "log", "--starts", str(args.starts), "--backend", "cpu", "--save-starts",
               "--out", out]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        t_ours = time.perf_counter() - t0
        fit = json.load(open(os.path.join(out, "fit.json")))
        starts = [[float(r[p]) for p in PARAMS] for r in read_csv(os.path.join(out, "starts.csv"))]

    t0 = time.perf_counter()
    runs = [Run(args.size, r) for r in RUNS]
    n = sum(len(r.y) for r in runs)
    best = None
    for x0 in starts:
        res = minimize(objective, np.array(x0), args=(runs, n), jac=True, method="L-BFGS-B",
                       bounds=[BOUNDS[p] for p in PARAMS], options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    t_peer = time.perf_counter() - t0

    ours = fit["objective"]["value"]
    print(f"rows {n}, {len(starts)} starts (sweepfit's)")
    print(f"sweepfit (whole command): {t_ours:.2f} s, objective {ours:.6e} (sum {ours * n:.5e})")
    print(f"numpy + scipy L-BFGS-B:   {t_peer:.2f} s, objective {best.fun:.6e} (sum {best.fun * n:.5e})")
    print(f"ratio: {t_peer / t_ours:.1f}x")
    print("peer's best: " + ", ".join(f"{p} {v:.6g}" for p, v in zip(PARAMS, best.x)))


if __name__ == "__main__":
    main()
