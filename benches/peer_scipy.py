#!/usr/bin/env python3
"""Peer implementation of `sweepfit fit` in Python with numpy + scipy.

Fits the LoopLM law

    L(N, D, T) = E + A/(N+t1)^alpha + B/(D+t2)^beta + C/(T+t3)^gamma

to a long CSV (columns run, N, T, tokens, loss, weight; run, T and weight
optional; `D` is accepted for `tokens`) with
scipy.optimize.minimize(method="L-BFGS-B", jac=True), one start after the
other, from the starts that `sweepfit fit ... --save-starts` wrote to
OUT/starts.csv. The formulation is sweepfit's, so objective values are
directly comparable with fit.json's objective.value:

* objective = sum_i w_i rho(r_i), weights normalised to sum 1;
  rho(r) = r^2/2 (mse) or Huber(delta); r = pred - loss (linear space) or
  ln pred - ln loss (log space);
* internal scaling: sN = max N, sD = max tokens, n = N/sN, d = D/sD,
  A' = A sN^-alpha, t1' = t1/sN, B' = B sD^-beta, t2' = t2/sD;
* free vector theta: ln of the internal E, A, t1, B, t2, C, t3 (bounded to
  [-60, 40]) and alpha, beta, gamma themselves (bounded to [1e-4, 8]);
  fixed parameters are left out of theta and held at their raw values;
* analytic gradient by the chain rule. The law is separable: per point one
  log and one exp for (d+t2)^-beta (plus one log in log space); the N and T
  terms are per-configuration and reduced with np.add.reduceat. No Python
  loop runs over points.

Fixed parameters: `--fix NAME` holds NAME at its value in starts.csv (the
column must be the same in every row); `--fix NAME=VALUE` holds it at VALUE.
`--fixed-from FIT_JSON` fixes every parameter fit.json lists as fixed. As in
sweepfit, a sweep with a single T gets C = 0, gamma = 1, t3 = 0 and one with
a single N gets A = 0, alpha = 1, t1 = 0 unless the user fixed them; a
coefficient fixed at 0 also fixes its exponent (1) and offset (0).

Timing: `seconds` is the whole loop over starts (every minimize call plus
picking the best); reading and preparing the data is reported separately
as `read_seconds`.
"""

import argparse
import csv
import json
import math
import os
import sys
import time

# The work is element-wise numpy plus a few dot products of length
# `points`, which are memory-bound: BLAS threads buy nothing there, and on a
# small or busy machine OpenBLAS's threaded ddot was measured ~40x slower
# than single-threaded. Set the variables yourself to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

NAMES = ["E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3"]
E, A, ALPHA, T1, B, BETA, T2, C, GAMMA, T3 = range(10)
EXPONENTS = (ALPHA, BETA, GAMMA)
EXPONENT_BOUNDS = (1e-4, 8.0)
LOG_BOUNDS = (-60.0, 40.0)
AT_BEST_RTOL = 1e-6
# sweepfit's default relative stopping tests (src/optim/lbfgs.rs Options).
SWEEPFIT_FTOL = 1e-12
SWEEPFIT_GTOL = 1e-8


# ---------------------------------------------------------------- data

def _column(header, names, required, path):
    lower = [h.strip().lstrip("\ufeff").lower() for h in header]
    hits = [i for i, h in enumerate(lower) if h in [n.lower() for n in names]]
    if len(hits) > 1:
        sys.exit(f"error: {path}: several columns match {names[0]!r}")
    if not hits:
        if required:
            sys.exit(f"error: {path}: no column {names[0]!r} (found {header})")
        return None
    return hits[0]


def read_long_csv(path, stride=1, positive_loss=False):
    """Read a long CSV into sweepfit's layout: points grouped by (run, N, T)
    in order of first appearance, sorted stably by tokens within a group.
    `stride` keeps every k-th point of each group, starting with its first."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r]
    if not rows:
        sys.exit(f"error: {path}: no rows")
    i_run = _column(header, ["run"], False, path)
    i_n = _column(header, ["N"], True, path)
    i_t = _column(header, ["T"], False, path)
    i_d = _column(header, ["tokens", "D"], True, path)
    i_l = _column(header, ["loss"], True, path)
    i_w = _column(header, ["weight"], False, path)
    cols = list(zip(*rows))

    def num(i, default):
        if i is None:
            return np.full(len(rows), default)
        return np.array([float(v) for v in cols[i]])

    run = [v.strip() for v in cols[i_run]] if i_run is not None else [""] * len(rows)
    n, t, d, loss, w = num(i_n, 1.0), num(i_t, 1.0), num(i_d, 0.0), num(i_l, 0.0), num(i_w, 1.0)
    for name, v in [("N", n), ("T", t), ("tokens", d), ("loss", loss), ("weight", w)]:
        if not np.all(np.isfinite(v)):
            sys.exit(f"error: {path}: non-finite {name}")
    if np.any(n <= 0) or np.any(t <= 0) or np.any(d < 0) or np.any(w < 0):
        sys.exit(f"error: {path}: N and T must be > 0, tokens and weight >= 0")
    if positive_loss and np.any(loss <= 0):
        sys.exit(f"error: {path}: log space needs loss > 0")

    keys = {}
    gid = np.fromiter(
        (keys.setdefault((r, a, b), len(keys)) for r, a, b in zip(run, n.tolist(), t.tolist())),
        dtype=np.int64, count=len(rows))
    order = np.lexsort((d, gid))  # stable: by group, then tokens, then file order
    gid, n, t, d, loss, w = gid[order], n[order], t[order], d[order], loss[order], w[order]
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    if stride > 1:
        rank = np.arange(len(gid)) - np.repeat(starts, np.diff(np.r_[starts, len(gid)]))
        keep = rank % stride == 0
        gid, n, t, d, loss, w = gid[keep], n[keep], t[keep], d[keep], loss[keep], w[keep]
        starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    if w.sum() <= 0:
        sys.exit(f"error: {path}: every weight is zero")
    return {
        "cfg_n": n[starts], "cfg_t": t[starts], "starts": starts,
        "cidx": np.searchsorted(starts, np.arange(len(gid)), side="right") - 1,
        "tokens": d, "loss": loss, "weight": w,
    }


def read_starts(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = [[float(v) for v in r] for r in reader if r]
    # The ten parameters in any order (the law file's order: E,A,t1,alpha,...).
    if sorted(header) != sorted(NAMES):
        sys.exit(f"error: {path}: expected the columns {','.join(NAMES)}, got {','.join(header)}")
    if not rows:
        sys.exit(f"error: {path}: no starts")
    order = [header.index(n) for n in NAMES]
    return np.array(rows)[:, order]


# ---------------------------------------------------------------- law

class Problem:
    """Objective and gradient over theta for one dataset and spec."""

    def __init__(self, data, fixed, loss="mse", space="linear", delta=1e-3):
        self.sn = float(data["cfg_n"].max())
        self.sd = float(data["tokens"].max()) or 1.0
        self.n = data["cfg_n"] / self.sn
        self.t = data["cfg_t"].astype(float)
        self.starts = data["starts"]
        self.cidx = data["cidx"]
        self.d = data["tokens"] / self.sd
        self.log_space = space == "log"
        self.huber = loss == "huber"
        self.delta = delta
        self.y = np.log(data["loss"]) if self.log_space else data["loss"].astype(float)
        self.w = data["weight"] / data["weight"].sum()
        self.fixed = dict(fixed)  # index -> raw value
        self.free = [i for i in range(10) if i not in self.fixed]
        self.is_exp = np.array([i in EXPONENTS for i in self.free])
        self.bounds = [EXPONENT_BOUNDS if i in EXPONENTS else LOG_BOUNDS for i in self.free]
        self.nfev_nonfinite = 0
        m = len(self.d)
        self._x = np.empty(m)
        self._lx = np.empty(m)
        self._v = np.empty(m)
        self._r = np.empty(m)
        self._g = np.empty(m)
        self._tmp = np.empty(m)

    # raw <-> internal <-> theta, as sweepfit's Scale and FreeSpace
    def raw_to_internal(self, raw):
        p = np.array(raw, dtype=float)
        p[A] = raw[A] * self.sn ** -raw[ALPHA]
        p[T1] = raw[T1] / self.sn
        p[B] = raw[B] * self.sd ** -raw[BETA]
        p[T2] = raw[T2] / self.sd
        return p

    def internal_to_raw(self, p):
        raw = np.array(p, dtype=float)
        raw[A] = p[A] * self.sn ** p[ALPHA]
        raw[T1] = p[T1] * self.sn
        raw[B] = p[B] * self.sd ** p[BETA]
        raw[T2] = p[T2] * self.sd
        for i, v in self.fixed.items():
            raw[i] = v
        return raw

    def theta_to_internal(self, theta):
        p = np.zeros(10)
        for k, i in enumerate(self.free):
            p[i] = theta[k] if i in EXPONENTS else math.exp(theta[k])
        for i in (ALPHA, BETA, GAMMA, E, T1, T2, C, T3, A, B):
            if i in self.fixed:
                v = self.fixed[i]
                p[i] = {A: v * self.sn ** -p[ALPHA], B: v * self.sd ** -p[BETA],
                        T1: v / self.sn, T2: v / self.sd}.get(i, v)
        return p

    def raw_to_theta(self, raw):
        p = self.raw_to_internal(raw)
        th = [p[i] if i in EXPONENTS else math.log(max(p[i], 1e-300)) for i in self.free]
        lo, hi = zip(*self.bounds)
        return np.clip(th, lo, hi)

    def internal_value_grad(self, p):
        """Objective and its gradient with respect to the internal parameters."""
        xn = self.n + p[T1]
        ln_n = np.log(xn)
        un = np.exp(-p[ALPHA] * ln_n)
        xt = self.t + p[T3]
        ln_t = np.log(xt)
        ut = np.exp(-p[GAMMA] * ln_t)
        base = p[E] + p[A] * un + p[C] * ut           # per configuration
        b, beta = p[B], p[BETA]
        x, lx, v, r, g, tmp = self._x, self._lx, self._v, self._r, self._g, self._tmp
        np.add(self.d, p[T2], out=x)
        np.log(x, out=lx)
        np.multiply(lx, -beta, out=v)
        np.exp(v, out=v)                               # v = (d+t2)^-beta
        np.multiply(v, b, out=r)
        r += base[self.cidx]                           # r = pred
        if self.log_space:
            np.reciprocal(r, out=tmp)                  # d r / d pred = 1/pred
            np.log(r, out=r)
        r -= self.y
        if self.huber:
            np.abs(r, out=g)
            inside = g <= self.delta
            rho = np.where(inside, 0.5 * r * r, self.delta * (g - 0.5 * self.delta))
            f = float(np.dot(self.w, rho))
            np.clip(r, -self.delta, self.delta, out=g)  # rho'(r)
            g *= self.w
        else:
            np.multiply(self.w, r, out=g)              # w rho'(r)
            f = 0.5 * float(np.dot(g, r))
        if self.log_space:
            g *= tmp                                   # g = w rho'(r) dr/dpred
        s0 = np.add.reduceat(g, self.starts)          # per configuration
        np.multiply(g, v, out=g)                       # g v
        sv = float(g.sum())
        sl = float(np.dot(g, lx))
        np.divide(g, x, out=g)
        sq = float(g.sum())
        gp = np.empty(10)
        gp[E] = s0.sum()
        gp[A] = np.dot(s0, un)
        gp[ALPHA] = -p[A] * np.dot(s0, un * ln_n)
        gp[T1] = -p[ALPHA] * p[A] * np.dot(s0, un / xn)
        gp[B] = sv
        gp[BETA] = -b * sl
        gp[T2] = -beta * b * sq
        gp[C] = np.dot(s0, ut)
        gp[GAMMA] = -p[C] * np.dot(s0, ut * ln_t)
        gp[T3] = -p[GAMMA] * p[C] * np.dot(s0, ut / xt)
        return f, gp

    def __call__(self, theta):
        p = self.theta_to_internal(theta)
        with np.errstate(all="ignore"):
            f, gp = self.internal_value_grad(p)
        pf = p[self.free]
        gt = np.where(self.is_exp, gp[self.free], gp[self.free] * pf)
        # A fixed raw A (or B) moves in internal units with its exponent.
        if A in self.fixed and ALPHA not in self.fixed:
            gt[self.free.index(ALPHA)] -= gp[A] * p[A] * math.log(self.sn)
        if B in self.fixed and BETA not in self.fixed:
            gt[self.free.index(BETA)] -= gp[B] * p[B] * math.log(self.sd)
        if not (math.isfinite(f) and np.all(np.isfinite(gt))):
            # Overflow (e.g. tiny t2 with a large beta at d = 0): report
            # +inf so the line search backtracks, as sweepfit does.
            self.nfev_nonfinite += 1
            return math.inf, np.zeros_like(gt)
        return f, gt


# ---------------------------------------------------------------- spec

def resolve_fixed(data, starts, fix_args, fixed_from):
    """Which parameters are held fixed, and at which raw values."""
    fixed, notes = {}, []
    requested = []  # (index, value or None)
    for a in fix_args:
        name, _, value = a.partition("=")
        name = name.strip()
        idx = [i for i, nm in enumerate(NAMES) if nm == name] or \
              [i for i, nm in enumerate(NAMES) if nm.lower() == name.lower()]
        if len(idx) != 1:
            sys.exit(f"error: --fix {a}: unknown parameter; the parameters are {', '.join(NAMES)}")
        requested.append((idx[0], float(value) if value.strip() else None))
    if fixed_from:
        with open(fixed_from) as f:
            for name in json.load(f).get("fixed", []):
                requested.append((NAMES.index(name), None))
    for i, value in requested:
        if value is None:
            col = starts[:, i]
            if not np.allclose(col, col[0], rtol=1e-9, atol=0.0):
                sys.exit(f"error: --fix {NAMES[i]}: the column {NAMES[i]} of the starts "
                         "differs between rows; give --fix NAME=VALUE")
            value = float(col[0])
        fixed[i] = value
    user = set(fixed)
    if len(np.unique(data["cfg_t"])) == 1 and C not in fixed:
        fixed[C] = 0.0
        notes.append("the data has a single T: fixed C = 0")
    if len(np.unique(data["cfg_n"])) == 1 and A not in fixed:
        fixed[A] = 0.0
        notes.append("the data has a single N: fixed A = 0")
    for coef, expo, off in [(A, ALPHA, T1), (B, BETA, T2), (C, GAMMA, T3)]:
        if fixed.get(coef) == 0.0:
            held = []
            for i, v in [(expo, 1.0), (off, 0.0)]:
                if i not in fixed:
                    fixed[i] = v
                    held.append(NAMES[i])
            if held and coef in user:
                notes.append(f"{NAMES[coef]} = 0 leaves {' and '.join(held)} without effect: held fixed")
    return fixed, notes


# ---------------------------------------------------------------- main

def check_gradient(prob, theta, h=1e-6):
    f0, g = prob(theta)
    fd = np.empty_like(g)
    for k in range(len(theta)):
        e = np.zeros_like(theta)
        e[k] = h
        fd[k] = (prob(theta + e)[0] - prob(theta - e)[0]) / (2 * h)
    scale = max(np.abs(g).max(), np.abs(fd).max(), 1e-300)
    return float(np.abs(g - fd).max() / scale)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="long CSV (run,N,T,tokens,loss,weight), e.g. sweepfit's pred.csv")
    ap.add_argument("--starts", required=True, help="starts.csv from `sweepfit fit --save-starts`")
    ap.add_argument("--stride", type=int, default=1,
                    help="keep every K-th point of each curve (as sweepfit's --stride); "
                         "leave at 1 for pred.csv, which is already thinned")
    ap.add_argument("--loss", choices=["mse", "huber"], default="mse")
    ap.add_argument("--space", choices=["linear", "log"], default="linear")
    ap.add_argument("--delta", type=float, default=1e-3, help="Huber threshold (default 1e-3)")
    ap.add_argument("--fix", action="append", default=[], metavar="NAME[=VALUE]",
                    help="hold NAME fixed at its (constant) starts.csv value, or at VALUE; repeatable")
    ap.add_argument("--fixed-from", metavar="FIT_JSON",
                    help="also fix every parameter listed under \"fixed\" in sweepfit's fit.json")
    ap.add_argument("--max-iter", type=int, default=1000, help="L-BFGS-B maxiter (default 1000)")
    ap.add_argument("--ftol", type=float, default=1e-12,
                    help="L-BFGS-B ftol: stop when (f_k - f_k+1)/max(|f_k|,|f_k+1|,1) <= ftol "
                         "(default 1e-12; scipy's own default is 2.2e-9)")
    ap.add_argument("--gtol", type=float, default=1e-10,
                    help="L-BFGS-B gtol: stop when max |projected gradient| <= gtol "
                         "(default 1e-10; scipy's own default is 1e-5)")
    ap.add_argument("--match-sweepfit", type=float, metavar="F_REF",
                    help="replace --ftol/--gtol by sweepfit's default relative tests (an accepted "
                         "step lowers f by < 1e-12 |f|, or max |projected gradient| < 1e-8 |f|) "
                         "evaluated at objective value F_REF, e.g. fit.json's objective.value: "
                         "ftol = 1e-12 F_REF / max(F_REF, 1), gtol = 1e-8 F_REF")
    ap.add_argument("--maxcor", type=int, default=10, help="L-BFGS memory (default 10, as sweepfit)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first K starts")
    ap.add_argument("--check-grad", action="store_true",
                    help="compare the analytic gradient with central differences at the first start")
    ap.add_argument("--json", metavar="FILE", help="write a JSON summary here")
    ap.add_argument("--quiet", action="store_true", help="no per-start progress on stderr")
    a = ap.parse_args(argv)
    if a.delta <= 0 or not math.isfinite(a.delta):
        sys.exit("error: --delta must be a positive number")

    t0 = time.perf_counter()
    data = read_long_csv(a.input, stride=a.stride, positive_loss=a.space == "log")
    starts = read_starts(a.starts)
    if a.limit:
        starts = starts[: a.limit]
    fixed, notes = resolve_fixed(data, starts, a.fix, a.fixed_from)
    prob = Problem(data, fixed, loss=a.loss, space=a.space, delta=a.delta)
    x0s = [prob.raw_to_theta(s) for s in starts]
    read_seconds = time.perf_counter() - t0
    if not prob.free:
        sys.exit("error: every parameter is fixed: nothing to fit")

    print(f"data: {len(prob.d)} points, {len(prob.n)} curves; {len(x0s)} starts; "
          f"{len(prob.free)} free parameters; fixed: "
          + (", ".join(f"{NAMES[i]}={v:g}" for i, v in sorted(fixed.items())) or "none"))
    for note in notes:
        print(f"note: {note}")
    if a.check_grad:
        print(f"gradient check at start 0: max relative error {check_gradient(prob, x0s[0]):.2e}")

    ftol, gtol = a.ftol, a.gtol
    if a.match_sweepfit is not None:
        ref = abs(a.match_sweepfit)
        if not (ref > 0 and math.isfinite(ref)):
            sys.exit("error: --match-sweepfit needs a positive objective value")
        ftol, gtol = SWEEPFIT_FTOL * ref / max(ref, 1.0), SWEEPFIT_GTOL * ref
        print(f"tolerances matched to sweepfit's at objective {ref:.6e}: ftol {ftol:.3e}, gtol {gtol:.3e}")
    opts = {"maxiter": a.max_iter, "ftol": ftol, "gtol": gtol, "maxcor": a.maxcor}
    results = []
    t1 = time.perf_counter()
    for k, x0 in enumerate(x0s):
        res = minimize(prob, x0, method="L-BFGS-B", jac=True, bounds=prob.bounds, options=opts)
        results.append(res)
        if not a.quiet:
            print(f"start {k + 1}/{len(x0s)}: f = {res.fun:.10e}, nit {res.nit}, "
                  f"nfev {res.nfev}, {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    fs = np.array([r.fun if math.isfinite(r.fun) else math.inf for r in results])
    kbest = int(np.argmin(fs))
    best = float(fs[kbest])
    seconds = time.perf_counter() - t1

    if not math.isfinite(best):
        sys.exit("error: every start ended with a non-finite objective")
    at_best = int(np.sum(fs - best <= AT_BEST_RTOL * abs(best)))
    raw = prob.internal_to_raw(prob.theta_to_internal(results[kbest].x))
    params = {NAMES[i]: float(raw[i]) for i in range(10)}
    nit = int(sum(r.nit for r in results))
    nfev = int(sum(r.nfev for r in results))
    messages = {}
    for r in results:
        m = r.message if isinstance(r.message, str) else r.message.decode()
        messages[m] = messages.get(m, 0) + 1

    print(f"read + prepare: {read_seconds:.3f} s")
    print(f"fit (all starts, sequential): {seconds:.3f} s")
    print(f"best objective ({a.loss}, {a.space}): {best:.12e}")
    print(f"starts within {AT_BEST_RTOL:g} (relative) of best: {at_best} / {len(results)}")
    print(f"iterations {nit}, evaluations {nfev} in total; non-finite evaluations {prob.nfev_nonfinite}")
    for m, c in messages.items():
        print(f"  {c:5d} x {m}")
    for i in range(10):
        print(f"  {NAMES[i]:<6} {raw[i]: .9e}{'  (fixed)' if i in fixed else ''}")

    if a.json:
        summary = {
            "seconds": seconds,
            "best_objective": best,
            "at_best": at_best,
            "starts": len(results),
            "params": params,
            "nit_total": nit,
            "nfev_total": nfev,
            "read_seconds": read_seconds,
            "fixed": [NAMES[i] for i in sorted(fixed)],
            "points": int(len(prob.d)),
            "configs": int(len(prob.n)),
            "objective": {"loss": a.loss, "space": a.space, "delta": a.delta},
            "options": opts,
            "messages": messages,
            "nonfinite_evaluations": prob.nfev_nonfinite,
            "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                         "scipy": __import__("scipy").__version__},
        }
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
