"""A law of the whole training curve from Python: the multi-power law on
runs given as a DataFrame, with the schedules from a file, equals the
command line's fit of the same rows."""

import json

import pandas as pd

import sweepfit
from test_fit import close

RUNS = ["cosine_24000", "constant_24000", "wsdcon_9"]


def test_the_multi_power_law_from_a_data_frame(shared, run_cli, tmp_path):
    root = shared / "multipower"
    frames = []
    for run in RUNS:
        df = pd.read_csv(root / "25" / f"{run}.csv")
        df = df[df["step"] != 24000]
        df.insert(0, "run", run)
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    schedules = tmp_path / "schedules.csv"
    schedules.write_text("run,file\n" + "".join(
        f"{run},{root / 'schedules' / (run + '.csv')}\n" for run in RUNS))
    path = tmp_path / "runs.csv"
    data.to_csv(path, index=False)
    opts = ["--law", "multi-power", "--schedule", schedules, "--loss", "huber",
            "--space", "log", "--starts", "2", "--max-iter", "30"]
    out = tmp_path / "cli"
    run_cli("fit", path, "--backend", "cpu", "--out", out, *opts)
    ref = json.loads((out / "fit.json").read_text())
    fit = sweepfit.fit(data, law="multi-power", schedule=schedules, loss="huber",
                       space="log", starts=2, max_iter=30, backend="cpu", progress=False)
    assert fit.params.keys() == ref["params"].keys()
    for name, v in ref["params"].items():
        assert close(fit.params[name], v), (name, fit.params[name], v)
    assert close(fit.objective, ref["objective"]["value"])
    # The schedule is each run's: the binding says where it came from.
    assert "schedule" in ref["variables"]
    # Its picture draws each run's learning rate under its curve, from the
    # schedule file it was fitted with: that run's, from step 0.
    import matplotlib

    matplotlib.use("Agg")
    fig = fit.plot()
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "LR"]
    assert len(lines) == len(RUNS)
    lr = {run: pd.read_csv(root / "schedules" / f"{run}.csv") for run in RUNS}
    for ln in lines:
        x, y = ln.get_data()
        assert x[0] == 0
        run = next(r for r in RUNS if len(lr[r]) > x[-1] and list(lr[r]["lr"][: len(y)]) == list(y))
        assert run in RUNS
    # Its rows, as pred.csv has them: without the schedule handles.
    assert "schedule" not in fit.data.columns
