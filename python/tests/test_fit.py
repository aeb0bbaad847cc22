"""Fits from Python against the command line's fit.json on the same data."""

import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sweepfit

REL = 1e-12


def close(a, b, rel=REL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def cli_fit(run_cli, tmp_path, data, *args):
    out = tmp_path / "cli"
    run_cli("fit", data, "--backend", "cpu", "--out", out, *args)
    return json.loads((out / "fit.json").read_text())


@pytest.mark.parametrize("reader", ["pandas", "polars", "dict", "path"])
def test_a_fit_equals_the_command_lines(reader, run_cli, tmp_path, sweep_csv):
    ref = cli_fit(run_cli, tmp_path, sweep_csv)
    if reader == "pandas":
        data = pd.read_csv(sweep_csv)
    elif reader == "polars":
        data = pl.read_csv(sweep_csv)
    elif reader == "dict":
        df = pd.read_csv(sweep_csv)
        data = {c: df[c].to_numpy() for c in df.columns}
    else:
        data = sweep_csv
    fit = sweepfit.fit(data, backend="cpu", progress=False)
    assert fit.params.keys() == ref["params"].keys()
    for name, v in ref["params"].items():
        assert close(fit.params[name], v), (name, fit.params[name], v)
    assert close(fit.objective, ref["objective"]["value"])
    assert fit.report["starts"]["at_best"] == ref["starts"]["at_best"]
    se = fit.identifiability["standard_errors"]
    for name, v in ref["identifiability"]["standard_errors"].items():
        assert close(se[name], v, 1e-9), name


def test_the_readme_formula_fit(run_cli, tmp_path, sweep_csv):
    law = "E + A/N^alpha + B/(D + t2)^beta"
    ref = cli_fit(run_cli, tmp_path, sweep_csv, "--law", law)
    df = pd.read_csv(sweep_csv)
    fit = sweepfit.fit(df, law=law, backend="cpu", progress=False)
    # D reads the tokens column: the formula's own name finds no column.
    assert set(fit.params) == {"E", "A", "alpha", "B", "t2", "beta"}
    for name, v in ref["params"].items():
        assert close(fit.params[name], v), name
    assert fit.law == "custom" and fit.formula == law


def test_huber_in_log_space_takes_its_options(sweep_csv):
    df = pd.read_csv(sweep_csv)
    df = df[df["tokens"] > 0]
    fit = sweepfit.fit(df, law="chinchilla", loss="huber", delta=1e-3, space="log",
                       starts=16, backend="cpu", progress=False)
    assert fit.report["objective"]["loss"] == "huber"
    assert fit.report["objective"]["space"] == "log"
    assert fit.report["starts"]["count"] == 16
    assert 0 < fit.params["alpha"] < 2


def test_groups_and_held_out_rows_of_the_rectified_task(shared):
    df = pd.read_csv(shared / "sldbench" / "rectified.csv")
    r = sweepfit.fit(df, law="rectified", by="run", test_where={"split": "test"},
                     starts=64, backend="cpu", progress=False)
    assert len(r.groups) == 42
    assert list(r.groups.columns[:1]) == ["run"]
    assert r.test["points"] == 42
    assert round(r.test["r2"], 4) == 0.9929
    with pytest.raises(ValueError, match="per group"):
        r.params
    assert {"B", "D_l", "beta", "E", "test_r2"} <= set(r.groups.columns)
    # Each group's rows are predicted by its own fit.
    test = df[df["split"] == "test"]
    pred = r.predict(test)
    want = r.data.loc[test.index, "pred"].to_numpy()
    np.testing.assert_allclose(pred, want, rtol=1e-12)


def test_fix_and_profile(sweep_csv):
    df = pd.read_csv(sweep_csv)
    fit = sweepfit.fit(df, fix={"t3": 0.5}, profile=["gamma"], starts=32, backend="cpu",
                       progress=False)
    assert fit.params["t3"] == 0.5
    assert fit.report["fixed"] == ["t3"]
    p = fit.profile
    assert list(p.index) == ["gamma"]
    lo, hi = p.loc["gamma", "lo"], p.loc["gamma", "hi"]
    assert lo < fit.params["gamma"] < hi
    t = fit.table
    assert t.loc["gamma", "interval"] == "profile"
    assert (t.loc["gamma", "lo"], t.loc["gamma", "hi"]) == (lo, hi)
    assert t.loc["t3", "flag"] == "fixed"


def test_the_table_and_the_notebook_view(sweep_csv):
    fit = sweepfit.fit(pd.read_csv(sweep_csv), starts=32, backend="cpu", progress=False)
    t = fit.table
    assert list(t.index) == list(fit.params)
    assert (t["lo"] < t["value"]).all() and (t["value"] < t["hi"]).all()
    assert (t["interval"] == "asymptotic").all()
    # ±z·SE at the 95% level.
    e = t.loc["E"]
    assert math.isclose(e["hi"] - e["value"], 1.959963984540054 * e["se"], rel_tol=1e-12)
    html = fit._repr_html_()
    assert "<table" in html and "alpha" in html and "R²" in html
    assert "R² 0.99" in str(fit) or "R² 0.99" in fit._core.summary()
