"""sweepfit from Python, start to finish: a sweep in a DataFrame, a fit
with intervals, predictions with bands, the Real-vs-Pred figure, and a
fit.json the command line reads.

    pip install ./python
    python examples/quickstart.py            # writes examples-out/python/
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, no window: runs anywhere

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import sweepfit  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("examples-out/python"))
out = parser.parse_args().out
out.mkdir(parents=True, exist_ok=True)
pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 12)

# 1. A sweep as a DataFrame: the LoopLM reference sweep (T = 1..4 recurrent
#    steps for five model sizes 53M..1.36B over 20B tokens), simulated with
#    noise. Your own runs come the same way, e.g. from pd.read_csv or wandb:
#    one row per logged point with columns N, T, tokens, loss.
df = sweepfit.simulate(seed=1)
print(df.head(), f"\n{len(df)} rows, {df['run'].nunique()} runs\n")

# 2. Fit the step-wise loss law to all 20 curves at once, with a bootstrap
#    over whole curves and points for intervals and prediction bands.
fit = sweepfit.fit(df, law="looplm", bootstrap=200, backend="cpu")
print(fit.table[["value", "se", "lo", "hi", "flag"]], "\n")
print(f"R² {fit.metrics['r2']:.4f}, alpha = {fit.params['alpha']:.4f}\n")

# 3. Predict a larger model, with the bootstrap's 95% bands.
big = pd.DataFrame({"N": 2.8e9, "T": [1, 2, 4], "tokens": 4e10})
print(pd.concat([big, fit.predict(big, bands=True)], axis=1), "\n")

# 4. The Real-vs-Pred grid (4 x 5 panels) and its residuals.
fit.plot().savefig(out / "grid.png", dpi=80)
fit.plot(residuals=True).savefig(out / "residuals.png", dpi=80)

# 5. fit.json for the command line (`sweepfit predict --fit ...`), read back.
fit.to_json(out / "fit.json", overwrite=True)
again = sweepfit.load(out / "fit.json")
assert np.allclose(again.predict(big), fit.predict(big), rtol=1e-14)
print(f"wrote {out / 'grid.png'}, {out / 'residuals.png'} and {out / 'fit.json'}")
