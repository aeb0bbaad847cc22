"""The Python package's overhead over the command line on the demo sweep.

Alternates, back to back, `sweepfit fit SWEEP.csv` (the whole command:
start, read the CSV, fit, write fit.json and pred.csv) with
`sweepfit.fit(df)` in this process (the DataFrame already read, as in a
notebook) and with `sweepfit.fit(path)`, and prints the median wall times
and their ratios.

    python benches/python_overhead.py --bin target/release/sweepfit [--runs 15]
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import sweepfit

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--bin", required=True, help="the sweepfit binary")
p.add_argument("--runs", type=int, default=15)
p.add_argument("--backend", default="cpu")
a = p.parse_args()

with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
    sweep = Path(tmp) / "sweep.csv"
    subprocess.run([a.bin, "simulate", "--seed", "1", "--out", sweep], check=True,
                   capture_output=True)
    df = pd.read_csv(sweep)
    cli, frame, path, core_cli, core_py = [], [], [], [], []
    for i in range(a.runs + 1):
        out = Path(tmp) / f"out{i}"
        t = time.perf_counter()
        subprocess.run([a.bin, "fit", sweep, "--backend", a.backend, "--out", out], check=True,
                       capture_output=True)
        t_cli = time.perf_counter() - t
        t = time.perf_counter()
        f = sweepfit.fit(df, backend=a.backend, progress=False)
        t_frame = time.perf_counter() - t
        t = time.perf_counter()
        sweepfit.fit(sweep, backend=a.backend, progress=False)
        t_path = time.perf_counter() - t
        if i == 0:
            continue  # warm-up
        cli.append(t_cli)
        frame.append(t_frame)
        path.append(t_path)
        core_cli.append(pd.read_json(out / "fit.json", typ="series")["seconds"])
        core_py.append(f.report["seconds"])

m = statistics.median
print(f"{a.runs} runs each, back to back, backend {a.backend}")
print(f"  sweepfit fit sweep.csv (whole command)   {m(cli) * 1e3:8.1f} ms")
print(f"  sweepfit.fit(DataFrame)                  {m(frame) * 1e3:8.1f} ms   ratio {m(frame) / m(cli):.3f}")
print(f"  sweepfit.fit('sweep.csv')                {m(path) * 1e3:8.1f} ms   ratio {m(path) / m(cli):.3f}")
print(f"  fit time inside (fit.json seconds): command {m(core_cli) * 1e3:.1f} ms, "
      f"Python {m(core_py) * 1e3:.1f} ms, ratio {m(core_py) / m(core_cli):.3f}")
