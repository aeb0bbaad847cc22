"""Evaluation, simulation, the built-in laws, a law on its own, devices."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sweepfit


def test_simulate_the_reference_sweep():
    df = sweepfit.simulate(seed=1, points=50)
    assert list(df.columns) == ["run", "N", "T", "tokens", "loss", "weight"]
    assert len(df) == 20 * 50 and df["run"].nunique() == 5
    assert df.attrs["truth"]["alpha"] == 0.3
    # Noise-free, the law's own values.
    clean = sweepfit.simulate(seed=1, points=50, noise=0.0)
    law = sweepfit.Law("looplm")
    np.testing.assert_allclose(law(clean, clean.attrs["truth"]), clean["loss"], rtol=1e-12)


def test_simulate_a_law_and_fit_it_back():
    truth = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
    df = sweepfit.simulate("chinchilla", params=truth,
                           at={"N": np.geomspace(1e7, 1e10, 8), "D": np.geomspace(1e8, 1e12, 30)},
                           noise=0.0, seed=3)
    assert len(df) == 240 and df.attrs["truth"]["params"] == truth
    fit = sweepfit.fit(df, law="chinchilla", backend="cpu", progress=False)
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k


def test_laws_and_a_law_on_its_own():
    table = sweepfit.laws()
    assert {"looplm", "chinchilla", "rectified"} <= set(table.index)
    law = sweepfit.Law("chinchilla")
    assert law.parameters == ["E", "A", "alpha", "B", "beta"]
    assert law.formula == table.loc["chinchilla", "formula"]
    p = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
    got = law({"N": [1e9], "tokens": [2e10]}, p)
    want = 1.8 + 400 / 1e9 ** 0.34 + 410 / 2e10 ** 0.28
    assert got[0] == pytest.approx(want, rel=1e-14)
    f = sweepfit.Law("E + A/x^a")
    assert f.parameters is None and f.variables == {}
    np.testing.assert_allclose(f({"x": [1.0, 2.0]}, {"E": 1, "A": 2, "a": 1}), [3.0, 2.0])
    with pytest.raises(ValueError, match="no value for the parameter a"):
        f({"x": [1.0]}, {"E": 1, "A": 2})


def test_evaluate_runs_the_hold_out_protocols(shared, run_cli, tmp_path):
    path = shared / "sldbench" / "moe.csv"
    ev = sweepfit.evaluate(pd.read_csv(path), law="moe", leave="E", backend="cpu",
                           progress=False)
    folds = ev["folds"]
    assert isinstance(folds, pd.DataFrame)
    assert set(folds["protocol"]) == {"sizes", "tokens", "leave-e"}
    run_cli("eval", path, "--law", "moe", "--leave", "E", "--backend", "cpu",
            "--out", tmp_path / "ev")
    cli = pd.read_json(tmp_path / "ev" / "eval.json", typ="series")
    want = [f["r2"] for f in cli["folds"]]
    np.testing.assert_allclose(folds["r2"].to_numpy(), want, rtol=1e-12)
    assert folds.loc[0, "E_start"] == cli["folds"][0]["params"]["E_start"]
    one = sweepfit.evaluate(pd.read_csv(path), law="moe", protocol="test-where",
                            test_where={"split": "test"}, backend="cpu", progress=False)
    assert list(one["folds"]["protocol"]) == ["test-where"]


def test_devices_is_a_list():
    d = sweepfit.devices()
    assert isinstance(d, list)
    for a in d:
        assert {"name", "backend", "device_type"} <= set(a)


def test_looking_for_devices_without_a_display_server_says_nothing():
    # Mesa's device-select layer complains on stderr where no display
    # server runs; the package turns it off, as the command line does.
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "NODEVICE_SELECT")}
    p = subprocess.run([sys.executable, "-c", "import sweepfit; sweepfit.devices()"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "XDG_RUNTIME_DIR" not in p.stderr, p.stderr


def test_compare_ranks_the_law_the_data_came_from_first():
    truth = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
    df = sweepfit.simulate("chinchilla", params=truth,
                           at={"N": np.geomspace(1e7, 1e10, 6), "D": np.geomspace(1e8, 1e11, 30)},
                           noise=0.01, seed=1)
    r = sweepfit.compare(df, ["E + A/N^alpha + B/tokens", "chinchilla", "kaplan"],
                         protocol=["sizes", "tokens"], backend="cpu", progress=False)
    assert list(r.columns[:4]) == ["law", "protocol", "rank", "folds"]
    for protocol in ("sizes", "tokens"):
        ranked = r[r["protocol"] == protocol].sort_values("rank")
        assert list(ranked["law"])[0] == "chinchilla"
        assert list(ranked["rank"]) == [1, 2, 3]
    full = r[r["protocol"] == "all"].set_index("law")
    assert full["aic"].idxmin() == "chinchilla"
    assert len(r.attrs["report"]["laws"]) == 3
    with pytest.raises(ValueError, match="give at least one law"):
        sweepfit.compare(df, [], backend="cpu", progress=False)


def test_evaluate_by_run_fits_every_run_apart_in_every_fold(shared):
    df = pd.read_csv(shared / "sldbench" / "rectified.csv")
    r = sweepfit.evaluate(df, law="rectified", by="run", protocol="test-where",
                          test_where={"split": "test"}, starts=8, backend="cpu", progress=False)
    fit = sweepfit.fit(df, law="rectified", by="run", test_where={"split": "test"}, starts=8,
                       backend="cpu", progress=False)
    assert r["by"] == ["run"]
    fold = r["folds"].iloc[0]
    assert fold["protocol"] == "test-where"
    assert fold["r2"] == pytest.approx(fit.test["r2"], rel=1e-8)
    assert len(r["full"]["groups"]) == len(fit.groups) == 42
