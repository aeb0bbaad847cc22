#!/usr/bin/env python3
"""Turn a sweepfit manifest of per-run logs into a long CSV, as sweepfit
reads it: columns run,N,T,tokens,loss,weight, with tokens = (step +
step_offset) * tokens_per_step, log rows with an empty or non-finite loss
skipped, a step logged twice keeping its last value, points sorted by step
within each run, then every K-th point kept (--stride K, starting with the
first), like `sweepfit fit --manifest M --stride K`.

Manifest columns (case-insensitive): file,N,T,tokens_per_step,step_col,
loss_col and optionally run and step_offset; `file` is relative to the manifest's folder
unless absolute; the run label is `run`, or the log's file stem.

    python3 benches/manifest_to_long.py benches/pythia_manifest.csv --stride 5 --out pythia_s5.csv
"""

import argparse
import csv
import math
import os
import sys


def pick(header, name):
    """Index of column `name`: exact match first, then case-insensitive."""
    if name in header:
        return header.index(name)
    hits = [i for i, h in enumerate(header) if h.lower() == name.lower()]
    if len(hits) != 1:
        sys.exit(f"error: no unique column {name!r} in {header}")
    return hits[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.stride < 1:
        sys.exit("error: --stride must be at least 1")
    base = os.path.dirname(os.path.abspath(a.manifest))
    with open(a.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    points = 0
    with open(a.out, "w", newline="") as fo:
        w = csv.writer(fo, lineterminator="\n")
        w.writerow(["run", "N", "T", "tokens", "loss", "weight"])
        for r in rows:
            r = {k.strip().lower(): (v or "").strip() for k, v in r.items()}
            log = r["file"] if os.path.isabs(r["file"]) else os.path.join(base, r["file"])
            run = r.get("run") or os.path.splitext(os.path.basename(log))[0]
            n, t = float(r["n"]), float(r.get("t") or 1.0)
            tps = float(r["tokens_per_step"])
            with open(log, newline="") as fl:
                reader = csv.reader(fl)
                header = [h.strip() for h in next(reader)]
                i_s, i_l = pick(header, r["step_col"]), pick(header, r["loss_col"])
                last = {}  # step -> loss; a later row of the same step wins
                for x in reader:
                    if not x or len(x) <= max(i_s, i_l) or not x[i_l].strip():
                        continue
                    loss = float(x[i_l])
                    if math.isfinite(loss):
                        last[float(x[i_s])] = loss
            offset = float(r.get("step_offset") or 0.0)
            pts = sorted(last.items())
            for step, loss in pts[:: a.stride]:
                w.writerow([run, repr(n), repr(t), repr((step + offset) * tps), repr(loss), "1"])
                points += 1
    print(f"wrote {a.out} ({len(rows)} curves, {points} points)")


if __name__ == "__main__":
    main()
