"""A comparison of 32 laws spread over Ray tasks, on a local Ray instance
of 1 worker CPU and then of 2, timed back to back (each in its own
process, so each Ray starts fresh), with the local executor as the
baseline; the rankings must be the same. With --gpu, the local executor
also runs the comparison on the GPU (the laws side by side on one device)
and the ratio to the CPU's local run is printed.

    python benches/compare_ray.py            # needs pip install './python[ray]'
    python benches/compare_ray.py --gpu      # and a GPU
"""

import json
import subprocess
import sys
import time

LAWS = [
    f"E + A/N^alpha + B/tokens^{beta}" for beta in (0.2, 0.25, 0.3, 0.35)
] + [
    f"E + A/N^{alpha} + B/tokens^beta" for alpha in (0.25, 0.3, 0.35, 0.4)
] + [
    "chinchilla", "kaplan", "E + A/N^alpha + B/tokens", "E + A/N^alpha + B/tokens^beta",
    "E + A/(N + t1)^alpha + B/tokens^beta", "A/N^alpha + B/tokens^beta", "E + A/N^alpha",
    "E + B/tokens^beta", "E + A/N^alpha + B/(tokens + t2)^beta",
    "E + A/(N + t1)^alpha + B/(tokens + t2)^beta", "E + (A/N^alpha + B/tokens^beta)^g",
    "E + A/(N^alpha * tokens^beta)", "E + A/N^alpha + B/tokens^beta + C/(N*tokens)^g",
    "E + A/N^alpha + B*N^a2/tokens^beta", "E + A/N^alpha + B/tokens^alpha",
    "E + A*(1/N^alpha + 1/tokens^alpha)", "E + A/N^0.34 + B/tokens^0.28",
    "E + A/N^alpha + B*exp(-tokens/D0)", "E + A/N^alpha + B/log(tokens)^beta",
    "E + A/N^alpha + B/tokens^beta + C/N", "E + A/N^alpha + B/tokens^beta + C/tokens",
    "E + A/(N + t1)^alpha + B/tokens^beta + C/tokens", "E + A/log(N)^alpha + B/tokens^beta",
    "E + A/N^alpha + B/(tokens/N)^beta",
]

CHILD = """
import json, sys, time
import numpy as np
import sweepfit
laws, executor, cpus, backend = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
if executor == "ray":
    import ray
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
truth = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
df = sweepfit.simulate("chinchilla", params=truth,
                       at={"N": np.geomspace(1e7, 1e10, 6), "D": np.geomspace(1e8, 1e11, 30)},
                       noise=0.01, seed=1)
t = time.perf_counter()
r = sweepfit.compare(df, laws, protocol=["sizes", "tokens"], starts=32, backend=backend,
                     progress=False, executor=executor)
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "ranking": r.attrs["report"]["ranking"],
                  "device": r.attrs["report"]["laws"][0]["eval"]["backend"]["device"]}))
"""


def run(executor: str, cpus: int, backend: str = "cpu") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(LAWS), executor, str(cpus), backend],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    assert len(LAWS) == 32
    local = run("local", 0)
    one = run("ray", 1)
    two = run("ray", 2)
    assert one["ranking"] == two["ranking"] == local["ranking"], "rankings differ"
    print("32 laws x 23 folds + all rows, 32 starts each, CPU backend")
    print(f"local executor      {local['seconds']:7.2f} s")
    print(f"ray, 1 worker CPU   {one['seconds']:7.2f} s")
    print(f"ray, 2 worker CPUs  {two['seconds']:7.2f} s   ({one['seconds'] / two['seconds']:.2f}x the 1-CPU run)")
    if "--gpu" in sys.argv[1:]:
        gpu = run("local", 0, "gpu")
        same = "the same ranking" if gpu["ranking"] == local["ranking"] else "a different ranking"
        print(f"local, GPU          {gpu['seconds']:7.2f} s   ({local['seconds'] / gpu['seconds']:.2f}x the local CPU run, {same}; {gpu['device']})")


if __name__ == "__main__":
    main()
