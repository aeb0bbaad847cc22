#!/usr/bin/env python3
"""Reference scipy fitter for three SLDBench tasks (moe, vocab, rectified).

Reproduces the protocol of ../shared/data/sldbench/README.md (relative to
the repository root): fit the task's law on the train rows (split ==
"train"; for rectified separately per run, column `run`), predict the test
rows and score R^2 = 1 - SSE/SST pooled over all test rows (SST around the
pooled test mean). The laws, with the README's parameter constraints:

  moe        L = exp(a ln N + b ln Eh + c ln N ln Eh + d),
             1/Eh = 1/(E - 1 + (1/E_start - 1/E_max)) + 1/E_max,
             E_start = 1.1 + exp(u), E_max = E_start + 1 + exp(v)
  vocab      Lu = -E + A1/Nnv^alpha1 + A2/Nv^alpha2 + B/D^beta, Nv = V d,
             all 7 positive: fitted as their logarithms
  rectified  L(D) = B/(D_l + D^beta) + E, all 4 positive (logarithms),
             one fit per run

Objective: sum of squared residuals pred - loss on the loss as given (MSE up
to a constant). Starts: K scrambled-Sobol points (scipy.stats.qmc.Sobol,
seeded with --seed) in a fixed box: for moe the fitted variables themselves;
for vocab and rectified the logarithms of E, of each exponent, and of each
power term's value at the geometric mean of its variable (and, for
rectified, of D_l relative to D^beta there), mapped to the fitted log
parameters per fit; for rectified the same K points serve every run. Each
start runs scipy.optimize.least_squares(method="trf", xtol=ftol=gtol=1e-12,
max_nfev=10000) with an analytic Jacobian; the fit keeps the start with the
lowest train SSE. A start whose residuals or Jacobian are not finite where
TRF needs them counts as failed (failed_starts).

Output: one JSON object on stdout with task, train_sse (summed over runs for
rectified), test_sse, test_r2, test_rmse, starts_at_best (starts within 1e-6
relative of the best SSE; for rectified the minimum over runs), params (for
rectified: per run, with their medians), seconds (wall time of reading and
fitting, imports excluded) and the counts behind them. A parameter driven to
infinity (moe's E_max can be) is written as null.

Data: --data CSV, else $SLDBENCH_DIR/TASK.csv, where SLDBENCH_DIR defaults
to ../shared/data/sldbench beside the repository root.
"""

import argparse
import csv
import json
import math
import os
import sys
import time
import warnings

# Small dense problems: BLAS threads only add overhead (see peer_scipy.py).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402
from scipy.special import expit  # noqa: E402
from scipy.stats import qmc  # noqa: E402

AT_BEST_RTOL = 1e-6
TOL = 1e-12
# scipy's default budget (100 evaluations per parameter) stops some starts
# that creep towards a parameter at 0 or infinity (E -> 0 in rectified) a
# few 1e-5 above their limit; run them to the tolerances instead.
MAX_NFEV = 10000
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "..", "shared", "data", "sldbench")


# ---------------------------------------------------------------- laws
#
# Each law: NAMES (raw parameters), BOX (lo, hi of the Sobol box in the
# fitted space), columns(rows) -> dict of arrays, resid_jac(theta, X) ->
# (pred, d pred / d theta), raw(theta) -> dict of raw parameters.

class Moe:
    NAMES = ["a", "b", "c", "d", "E_start", "E_max"]
    # theta = (a, b, c, d, u, v): E_start = 1.1 + e^u, E_max = E_start + 1 + e^v;
    # the starts are drawn in theta itself
    BOX = [(-0.3, 0.1), (-0.5, 0.2), (-0.02, 0.02), (0.0, 6.0), (-6.0, 2.0), (0.0, 12.0)]
    COLUMNS = ["N", "E"]

    @staticmethod
    def from_box(z, X):
        return np.array(z, dtype=float)

    @staticmethod
    def columns(cols):
        return {"lnN": np.log(cols["N"]), "E": cols["E"]}

    @staticmethod
    def _experts(theta):
        es = 1.1 + np.exp(theta[4])
        em = es + 1.0 + np.exp(theta[5])
        return es, em

    @classmethod
    def pred_jac(cls, theta, X, jac=True):
        a, b, c, d, u, v = theta
        es, em = cls._experts(theta)
        lnN = X["lnN"]
        q = X["E"] - 1.0 + (1.0 / es - 1.0 / em)
        inv = 1.0 / q + 1.0 / em
        lnEh = -np.log(inv)
        pred = np.exp(a * lnN + b * lnEh + c * lnN * lnEh + d)
        if not jac:
            return pred, None
        J = np.empty((len(lnN), 6))
        J[:, 0] = pred * lnN
        J[:, 1] = pred * lnEh
        J[:, 2] = pred * lnN * lnEh
        J[:, 3] = pred
        dpred_dinv = -pred * (b + c * lnN) / inv
        q2 = q * q
        dinv_des = 1.0 / (q2 * es * es)                 # E_max held
        dinv_dem = -1.0 / (q2 * em * em) - 1.0 / (em * em)
        J[:, 4] = dpred_dinv * (dinv_des + dinv_dem) * np.exp(u)  # E_max moves with E_start
        J[:, 5] = dpred_dinv * dinv_dem * np.exp(v)
        return pred, J

    @classmethod
    def raw(cls, theta):
        es, em = cls._experts(theta)
        return dict(zip(cls.NAMES, [float(t) for t in theta[:4]] + [float(es), float(em)]))


class Vocab:
    NAMES = ["E", "A1", "alpha1", "A2", "alpha2", "B", "beta"]
    # theta = ln of each. The starts are drawn for ln E, and for each power
    # term ln alpha and the ln of the term's value at the geometric mean of
    # its variable over the train rows (c = A / x_ref^alpha): a box in raw
    # ln A would mostly start with terms of 1e-10 or 1e10.
    BOX = [(math.log(0.5), math.log(20.0)),
           (math.log(0.01), math.log(10.0)), (math.log(0.1), math.log(1.5)),
           (math.log(0.01), math.log(10.0)), (math.log(0.1), math.log(1.5)),
           (math.log(0.01), math.log(10.0)), (math.log(0.1), math.log(1.5))]
    COLUMNS = ["Nnv", "V", "d", "D"]

    @staticmethod
    def from_box(z, X):
        th = np.array(z, dtype=float)
        for i, col in ((1, "lnNnv"), (3, "lnNv"), (5, "lnD")):
            th[i] = z[i] + np.exp(z[i + 1]) * X[col].mean()
        return th

    @staticmethod
    def columns(cols):
        return {"lnNnv": np.log(cols["Nnv"]), "lnNv": np.log(cols["V"] * cols["d"]),
                "lnD": np.log(cols["D"])}

    @staticmethod
    def pred_jac(theta, X, jac=True):
        lE, lA1, la1, lA2, la2, lB, lb = theta
        a1, a2, b = np.exp(la1), np.exp(la2), np.exp(lb)
        e = np.exp(lE)
        t1 = np.exp(lA1 - a1 * X["lnNnv"])
        t2 = np.exp(lA2 - a2 * X["lnNv"])
        t3 = np.exp(lB - b * X["lnD"])
        pred = -e + t1 + t2 + t3
        if not jac:
            return pred, None
        J = np.empty((len(pred), 7))
        J[:, 0] = -e
        J[:, 1] = t1
        # d t / d ln alpha = -t alpha ln x, formed in the log domain so that
        # an extreme alpha gives 0 rather than 0 * inf
        J[:, 2] = -np.exp(lA1 + la1 - a1 * X["lnNnv"]) * X["lnNnv"]
        J[:, 3] = t2
        J[:, 4] = -np.exp(lA2 + la2 - a2 * X["lnNv"]) * X["lnNv"]
        J[:, 5] = t3
        J[:, 6] = -np.exp(lB + lb - b * X["lnD"]) * X["lnD"]
        return pred, J

    @classmethod
    def raw(cls, theta):
        return dict(zip(cls.NAMES, [float(np.exp(t)) for t in theta]))


class Rectified:
    NAMES = ["B", "D_l", "beta", "E"]
    # theta = ln of each. The starts are drawn for ln c, ln r, ln beta, ln E,
    # with D_ref^beta the geometric mean of D^beta over the run's train rows,
    # D_l = r D_ref^beta and c = B/(D_l + D_ref^beta) the power term at D_ref:
    # a box in raw ln B, ln D_l mostly starts on a flat plateau (the term
    # constant or vanishing) where TRF stops.
    BOX = [(math.log(0.05), math.log(5.0)), (math.log(1e-3), math.log(1e2)),
           (math.log(0.05), math.log(1.0)), (math.log(0.01), math.log(3.0))]
    COLUMNS = ["D"]

    @staticmethod
    def from_box(z, X):
        beta = np.exp(z[2])
        lp = beta * X["lnD"].mean()                       # ln D_ref^beta
        ldl = z[1] + lp
        lb = z[0] + np.logaddexp(ldl, lp)                 # ln(c (D_l + D_ref^beta))
        return np.array([lb, ldl, z[2], z[3]])

    @staticmethod
    def columns(cols):
        return {"lnD": np.log(cols["D"])}

    @staticmethod
    def pred_jac(theta, X, jac=True):
        lB, lDl, lb, lE = theta
        B, Dl, beta, E = np.exp(lB), np.exp(lDl), np.exp(lb), np.exp(lE)
        p = np.exp(beta * X["lnD"])                       # D^beta
        t = B / (Dl + p)
        pred = t + E
        if not jac:
            return pred, None
        J = np.empty((len(pred), 4))
        J[:, 0] = t
        wl = expit(lDl - beta * X["lnD"])                 # D_l/(D_l + D^beta), no inf/inf
        J[:, 1] = -t * wl
        J[:, 2] = -t * (1.0 - wl) * X["lnD"] * beta
        J[:, 3] = E
        return pred, J

    @classmethod
    def raw(cls, theta):
        return dict(zip(cls.NAMES, [float(np.exp(t)) for t in theta]))


LAWS = {"moe": Moe, "vocab": Vocab, "rectified": Rectified}


# ---------------------------------------------------------------- data

def read_task(path, law, by_run):
    """Rows of the CSV as arrays, split into train and test by `split`."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"error: {path}: {e.strerror}")
    need = law.COLUMNS + ["loss", "split"] + (["run"] if by_run else [])
    if not rows or any(c not in rows[0] for c in need):
        sys.exit(f"error: {path}: needs columns {', '.join(need)}")
    split = np.array([r["split"].strip() for r in rows])
    if not np.all(np.isin(split, ["train", "test"])):
        sys.exit(f"error: {path}: split must be train or test")
    cols = {c: np.array([float(r[c]) for r in rows]) for c in law.COLUMNS + ["loss"]}
    X = law.columns(cols)
    run = np.array([r["run"] for r in rows]) if by_run else np.full(len(rows), "")
    groups = []  # (run, X_train, y_train, X_test, y_test), runs in order of first appearance
    for name in dict.fromkeys(run.tolist()):
        m = run == name
        tr, te = m & (split == "train"), m & (split == "test")
        if not tr.any():
            sys.exit(f"error: {path}: run {name!r} has no train rows")
        groups.append((name, {k: v[tr] for k, v in X.items()}, cols["loss"][tr],
                       {k: v[te] for k, v in X.items()}, cols["loss"][te]))
    return groups


# ---------------------------------------------------------------- fit

def sobol_starts(law, k, seed):
    lo, hi = np.array(law.BOX).T
    try:
        engine = qmc.Sobol(len(lo), scramble=True, rng=seed)
    except TypeError:  # scipy < 1.15
        engine = qmc.Sobol(len(lo), scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance warning when k is not a power of 2
        u = engine.random(k)
    return qmc.scale(u, lo, hi)


def fit_one(law, X, y, starts):
    """Best of least_squares(trf) from each start:
    (theta, sse, starts at best, evaluations, failed starts)."""
    def fun(th):
        return law.pred_jac(th, X, jac=False)[0] - y

    def jac(th):
        return law.pred_jac(th, X)[1]

    sses, thetas, nfev, failed = [], [], 0, 0
    for x0 in starts:
        with np.errstate(all="ignore"):
            try:
                res = least_squares(fun, x0, jac=jac, method="trf",
                                    xtol=TOL, ftol=TOL, gtol=TOL, max_nfev=MAX_NFEV)
            except ValueError:  # non-finite residuals at the start, or Jacobian
                failed += 1
                sses.append(math.inf)
                thetas.append(x0)
                continue
        nfev += res.nfev
        sse = float(np.sum(res.fun ** 2))
        sses.append(sse if math.isfinite(sse) else math.inf)
        thetas.append(res.x)
    sses = np.array(sses)
    k = int(np.argmin(sses))
    best = float(sses[k])
    if not math.isfinite(best):
        sys.exit("error: every start ended with a non-finite SSE")
    at_best = int(np.sum(sses - best <= AT_BEST_RTOL * abs(best)))
    return thetas[k], best, at_best, nfev, failed


def finite_or_null(v):
    """JSON has no inf/nan: a parameter driven to infinity is written as null."""
    if isinstance(v, dict):
        return {k: finite_or_null(x) for k, x in v.items()}
    if isinstance(v, float) or isinstance(v, np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(
        usage="%(prog)s TASK [--starts K] [--seed S] [--data CSV]",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(LAWS), help="which law and data set")
    ap.add_argument("--starts", type=int, default=None, metavar="K",
                    help="Sobol starts per fit (default 128; 64 per run for rectified)")
    ap.add_argument("--seed", type=int, default=0, metavar="S", help="Sobol seed (default 0)")
    ap.add_argument("--data", metavar="CSV",
                    help="data file (default $SLDBENCH_DIR/TASK.csv, "
                         "SLDBENCH_DIR defaulting to ../shared/data/sldbench beside the repository)")
    a = ap.parse_args(argv)
    law = LAWS[a.task]
    by_run = a.task == "rectified"
    k = a.starts if a.starts is not None else (64 if by_run else 128)
    if k < 1:
        ap.error("--starts must be at least 1")
    path = a.data or os.path.join(os.environ.get("SLDBENCH_DIR", DEFAULT_DIR), a.task + ".csv")

    t0 = time.perf_counter()
    groups = read_task(path, law, by_run)
    starts = sobol_starts(law, k, a.seed)
    train_sse, at_best, nfev, failed, params = 0.0, None, 0, 0, {}
    test_y, test_pred = [], []
    for name, Xtr, ytr, Xte, yte in groups:
        x0s = [law.from_box(z, Xtr) for z in starts]
        theta, sse, n_best, n_ev, n_failed = fit_one(law, Xtr, ytr, x0s)
        failed += n_failed
        train_sse += sse
        at_best = n_best if at_best is None else min(at_best, n_best)
        nfev += n_ev
        params[name] = law.raw(theta)
        if len(yte):
            test_y.append(yte)
            test_pred.append(law.pred_jac(theta, Xte, jac=False)[0])
    seconds = time.perf_counter() - t0

    out = {"task": a.task, "starts": k, "seed": a.seed,
           "train_points": int(sum(len(g[2]) for g in groups)),
           "train_sse": train_sse}
    if test_y:
        y, p = np.concatenate(test_y), np.concatenate(test_pred)
        sse_te = float(np.sum((p - y) ** 2))
        out.update({"test_points": int(len(y)), "test_sse": sse_te,
                    "test_r2": 1.0 - sse_te / float(np.sum((y - y.mean()) ** 2)),
                    "test_rmse": math.sqrt(sse_te / len(y))})
    else:
        out.update({"test_points": 0, "test_sse": None, "test_r2": None, "test_rmse": None})
    out["starts_at_best"] = at_best
    if by_run:
        out["runs"] = len(groups)
        out["params"] = params
        out["param_medians"] = {n: float(np.median([p[n] for p in params.values()]))
                                for n in law.NAMES}
    else:
        out["params"] = params[""]
    out.update({"seconds": seconds, "nfev_total": nfev, "failed_starts": failed,
                "method": "least_squares trf, analytic Jacobian, xtol=ftol=gtol=1e-12, max_nfev=10000",
                "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                             "scipy": scipy.__version__}})
    json.dump(finite_or_null(out), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
