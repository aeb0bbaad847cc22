#!/usr/bin/env python3
"""A JAX + optax peer of `sweepfit fit` for the LoopLM law, as a JAX user
would write it: the objective in jax.numpy (float64), its gradient by
jax.value_and_grad, optax's L-BFGS (zoom line search) in a jitted
lax.while_loop, one start after the other.

It is given what sweepfit has: the same points (sweepfit's pred.csv), the
same starts (its starts.csv), the same transforms and free vector as
peer_scipy.py (whose reader, fixed-parameter rules and transforms it
reuses), and the curves' shared token grid: the D term is computed once
per distinct token value, not per point. optax's L-BFGS has no bounds;
theta is projected onto the transforms' box after each step. It stops by
sweepfit's relative rules: an accepted step that lowers f by less than
ftol |f|, or a largest gradient entry below gtol |f|.

    python benches/peer_jax.py target/compare_scipy/sweepfit/pred.csv \\
        --starts target/compare_scipy/sweepfit/starts.csv \\
        --fixed-from target/compare_scipy/sweepfit/fit.json

(`bash benches/compare_scipy.sh` writes those files). Needs
`pip install jax optax`. Prints the fitting time (compilation apart), the
best objective and how many starts ended at it.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_scipy as ps  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


def build(prob, max_iter, ftol, gtol):
    """The jitted solve of one start: theta0 -> (theta, f, iterations)."""
    # The shared token grid: each point reads its token value's D term.
    du, didx = np.unique(prob.d, return_inverse=True)
    du, didx = jnp.asarray(du), jnp.asarray(didx)
    n, t, cidx = jnp.asarray(prob.n), jnp.asarray(prob.t), jnp.asarray(prob.cidx)
    y, w = jnp.asarray(prob.y), jnp.asarray(prob.w)
    free = np.array(prob.free)
    is_exp = jnp.asarray(prob.is_exp)
    lo, hi = (jnp.asarray(b) for b in zip(*prob.bounds))
    # A fixed raw A, B, t1 or t2 moves in internal units (see peer_scipy).
    if any(prob.fixed.get(i, 0.0) != 0.0 for i in (ps.A, ps.B, ps.T1, ps.T2)):
        sys.exit("error: a fixed A, B, t1 or t2 other than 0 is not supported by this peer")
    base_p = np.zeros(10)
    for i, v in prob.fixed.items():
        base_p[i] = v
    base_p = jnp.asarray(base_p)

    def objective(theta):
        pf = jnp.where(is_exp, theta, jnp.exp(theta))
        p = base_p.at[free].set(pf)
        per_curve = (p[ps.E] + p[ps.A] * (n + p[ps.T1]) ** -p[ps.ALPHA]
                     + p[ps.C] * (t + p[ps.T3]) ** -p[ps.GAMMA])
        dterm = p[ps.B] * (du + p[ps.T2]) ** -p[ps.BETA]
        pred = per_curve[cidx] + dterm[didx]
        r = (jnp.log(pred) if prob.log_space else pred) - y
        if prob.huber:
            a = jnp.abs(r)
            rho = jnp.where(a <= prob.delta, 0.5 * r * r, prob.delta * (a - 0.5 * prob.delta))
        else:
            rho = 0.5 * r * r
        return jnp.dot(w, rho)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def solve(theta0):
        def cond(c):
            return (c[3] < max_iter) & ~c[4]

        def body(c):
            theta, state, f_prev, k, _ = c
            f, g = value_and_grad(theta, state=state)
            small_g = jnp.max(jnp.abs(g)) <= gtol * jnp.abs(f)
            small_step = (k > 0) & (f_prev - f <= ftol * jnp.abs(f))
            updates, state = opt.update(g, state, theta, value=f, grad=g, value_fn=objective)
            theta = jnp.clip(optax.apply_updates(theta, updates), lo, hi)
            return theta, state, f, k + 1, small_g | small_step

        c = (theta0, opt.init(theta0), jnp.inf, 0, False)
        theta, _, _, k, _ = jax.lax.while_loop(cond, body, c)
        return theta, objective(theta), k

    return jax.jit(solve)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a long CSV (sweepfit's pred.csv)")
    ap.add_argument("--starts", required=True, help="starts.csv of sweepfit fit --save-starts")
    ap.add_argument("--fixed-from", help="sweepfit's fit.json: fix what it fixed")
    ap.add_argument("--loss", choices=["mse", "huber"], default="mse")
    ap.add_argument("--space", choices=["linear", "log"], default="linear")
    ap.add_argument("--delta", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--ftol", type=float, default=ps.SWEEPFIT_FTOL)
    ap.add_argument("--gtol", type=float, default=ps.SWEEPFIT_GTOL)
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args(argv)

    data = ps.read_long_csv(a.data, positive_loss=a.space == "log")
    starts = ps.read_starts(a.starts)
    fixed, _ = ps.resolve_fixed(data, starts, [], a.fixed_from)
    prob = ps.Problem(data, fixed, loss=a.loss, space=a.space, delta=a.delta)
    solve = build(prob, a.max_iter, a.ftol, a.gtol)
    thetas = [jnp.asarray(prob.raw_to_theta(s)) for s in starts]

    t0 = time.perf_counter()
    jax.block_until_ready(solve(thetas[0]))
    compile_s = time.perf_counter() - t0
    # One start after the other: solving them all at once (jax.vmap of the
    # solve) evaluates every start at each iteration until the last one
    # stops, and ran past 15 minutes here.
    t0 = time.perf_counter()
    ends = [jax.block_until_ready(solve(th)) for th in thetas]
    seconds = time.perf_counter() - t0

    fs = np.array([float(f) for _, f, _ in ends])
    fs[~np.isfinite(fs)] = np.inf
    best = int(np.argmin(fs))
    at_best = int(np.sum(fs - fs[best] <= ps.AT_BEST_RTOL * abs(fs[best])))
    raw = prob.internal_to_raw(np.asarray(prob.theta_to_internal(np.asarray(ends[best][0]))))
    iters = int(sum(int(k) for _, _, k in ends))
    print(f"jax {jax.__version__}, optax {optax.__version__}, float64, "
          f"{len(prob.d)} points on {len(np.unique(prob.d))} token values")
    print(f"compile: {compile_s:.3f} s")
    print(f"fit: {seconds:.3f} s ({len(thetas)} starts, one after the other)")
    print(f"best objective: {fs[best]:.10e}")
    print(f"starts within {ps.AT_BEST_RTOL:g} of it: {at_best}/{len(thetas)}")
    print(f"iterations: {iters}")
    print("best: " + ", ".join(f"{n} {v:.6g}" for n, v in zip(ps.NAMES, raw)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seconds": seconds, "compile_seconds": compile_s,
                       "best_objective": float(fs[best]), "at_best": at_best,
                       "starts": len(thetas), "iterations": iters,
                       "params": dict(zip(ps.NAMES, map(float, raw)))}, f, indent=2)


if __name__ == "__main__":
    main()
