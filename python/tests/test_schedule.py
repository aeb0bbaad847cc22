"""A law of the whole training curve from Python: the multi-power law on
runs given as a DataFrame, with the schedules from a file or a DataFrame,
equals the command line's fit of the same rows, and predicts runs it never
saw from their schedules as the command line does."""

import json

import numpy as np
import pandas as pd
import pytest

import sweepfit
from test_fit import close

RUNS = ["cosine_24000", "constant_24000", "wsdcon_9"]


def _runs(root, runs):
    frames = []
    for run in runs:
        df = pd.read_csv(root / "25" / f"{run}.csv")
        df = df[df["step"] != 24000]
        df.insert(0, "run", run)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _schedules(root, runs):
    frames = []
    for run in runs:
        df = pd.read_csv(root / "schedules" / f"{run}.csv")
        df.insert(0, "run", run)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def test_the_multi_power_law_from_a_data_frame(shared, run_cli, tmp_path):
    root = shared / "multipower"
    data = _runs(root, RUNS)
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


def test_schedules_as_a_data_frame_predict_runs_never_trained(shared, run_cli, tmp_path):
    root = shared / "multipower"
    data = _runs(root, RUNS)
    frame = _schedules(root, RUNS)
    path = tmp_path / "schedules.csv"
    frame.to_csv(path, index=False)
    opts = dict(law="multi-power", loss="huber", space="log", starts=2, max_iter=30,
                backend="cpu", progress=False)
    # The schedules as a data frame fit as the same schedules from a file.
    from_frame = sweepfit.fit(data, schedule=frame, **opts)
    from_file = sweepfit.fit(data, schedule=path, **opts)
    assert from_frame.params == from_file.params
    assert from_frame.objective == from_file.objective

    # Runs it never saw, predicted row by row from their schedules as the
    # command line predicts them at the same steps.
    new = ["wsd_20000_24000", "wsdcon_3"]
    rows = _runs(root, new)
    pred = from_frame.predict(rows, schedule=_schedules(root, new))
    fit_json = tmp_path / "fit.json"
    from_frame.to_json(fit_json)
    for run in new:
        mine = rows["run"] == run
        steps = ",".join(str(s) for s in rows.loc[mine, "step"])
        out = run_cli("predict", "--fit", fit_json, "--schedule",
                      root / "schedules" / f"{run}.csv", "--at", f"step={steps}")
        want = [float(line.split(",")[-1]) for line in out.stdout.splitlines()[1:]]
        assert len(want) == mine.sum()
        for got, w in zip(pred[mine.to_numpy()], want):
            assert close(got, w), (run, got, w)
    # The fit's own rows default to the schedules it was fitted with; new
    # runs without theirs are refused, naming the run.
    assert list(from_frame.predict(data)) == list(from_frame.data["pred"])
    with pytest.raises(sweepfit.SweepfitError, match="wsd_20000_24000"):
        from_frame.predict(rows)
    # A loaded fit has no schedules until given them.
    loaded = sweepfit.load(fit_json)
    with pytest.raises(sweepfit.SweepfitError, match="schedules"):
        loaded.predict(rows)
    assert list(loaded.predict(rows, schedule=_schedules(root, new))) == list(pred)

    # On a grid of steps, every run of the schedules given, named.
    grid = from_frame.predict_at(step=[4000, 15999], schedule=_schedules(root, new))
    assert list(grid["run"]) == ["wsd_20000_24000"] * 2 + ["wsdcon_3"] * 2
    with pytest.raises(sweepfit.SweepfitError, match="15999") as e:
        from_frame.predict_at(step=[16000], schedule=_schedules(root, ["wsdcon_3"]))
    # Named as the keyword was given, not as the command line's option.
    assert str(e.value).startswith("step: step 16000") and "--at" not in str(e.value)
    with pytest.raises(TypeError, match="schedule must be"):
        from_frame.predict(rows, schedule=3)


def test_a_law_of_the_steps_is_simulated_from_schedules(shared, run_cli, tmp_path):
    """``simulate(law, schedule=...)`` gives the rows ``sweepfit simulate
    --schedule`` writes, from a DataFrame or a file alike."""
    root = shared / "multipower"
    runs = ["wsdcon_18", "constant_24000"]
    frame = _schedules(root, runs)
    path = tmp_path / "lr.csv"
    frame.to_csv(path, index=False)
    params = dict(L0=3.04, A=0.525, alpha=0.508, B=363.8, C=2.07, beta=0.583, gamma=0.641)
    opts = dict(params=params, at={"step": list(range(2000, 24001, 2000))}, noise=0.0)
    from_frame = sweepfit.simulate("multi-power", schedule=frame, **opts)
    from_file = sweepfit.simulate("multi-power", schedule=path, **opts)
    pd.testing.assert_frame_equal(from_frame, from_file)
    # wsdcon_18 ends at step 15999: 7 of the 12 steps.
    assert from_frame.groupby("run").size().to_dict() == {"constant_24000": 11, "wsdcon_18": 7}
    cli = tmp_path / "cli.csv"
    args = ["simulate", "--law", "multi-power", "--schedule", path, "--noise", "0",
            "--at", "step=2000:24000:12", "--out", cli]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    run_cli(*args)
    want = pd.read_csv(cli)
    assert list(want.columns) == ["run", "step", "loss"]
    assert np.array_equal(from_frame["loss"].to_numpy(), want["loss"].to_numpy())
    assert list(from_frame["run"]) == list(want["run"])
    with pytest.raises(ValueError, match="schedule go with law"):
        sweepfit.simulate(schedule=path)
