"""Predictions, bands, and fit.json round trips with the command line."""

import numpy as np
import pandas as pd
import pytest

import sweepfit


@pytest.fixture(scope="module")
def boot_fit(sweep_csv):
    df = pd.read_csv(sweep_csv)
    return sweepfit.fit(df, starts=32, bootstrap=40, backend="cpu", progress=False)


def test_predictions_are_the_fitted_rows(boot_fit, sweep_csv):
    df = pd.read_csv(sweep_csv)
    pred = boot_fit.predict(df)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(df),)
    np.testing.assert_allclose(pred, boot_fit.data["pred"].to_numpy(), rtol=1e-14)


def test_bands_hold_the_prediction(boot_fit):
    new = pd.DataFrame({"N": [2.8e9, 2.8e9], "T": [2, 4], "tokens": [4e10, 8e10]})
    b = boot_fit.predict(new, bands=True)
    assert list(b.columns) == ["pred", "lo_curves", "hi_curves", "lo_points", "hi_points"]
    for k in ("curves", "points"):
        assert (b[f"lo_{k}"] < b["pred"]).all() and (b["pred"] < b[f"hi_{k}"]).all()
    unbooted = sweepfit.fit(boot_fit.data[["N", "T", "tokens", "loss"]], starts=8,
                            backend="cpu", progress=False)
    with pytest.raises(ValueError, match="no bootstrap"):
        unbooted.predict(new, bands=True)


def test_a_written_fit_predicts_as_the_command_line(boot_fit, run_cli, tmp_path):
    path = tmp_path / "fit.json"
    boot_fit.to_json(path)
    with pytest.raises(ValueError, match="exists"):
        boot_fit.to_json(path)
    out = tmp_path / "pred.csv"
    run_cli("predict", "--fit", path, "--at", "N=1e9,2.8e9", "--at", "T=1:4:4",
            "--at", "tokens=1e9:1e11:7:log", "--out", out)
    cli = pd.read_csv(out)
    loaded = sweepfit.load(path)
    assert loaded.params == boot_fit.params
    got = loaded.predict(cli[["N", "T", "tokens"]], bands=True)
    for c in ["pred", "lo_curves", "hi_curves", "lo_points", "hi_points"]:
        np.testing.assert_allclose(got[c].to_numpy(), cli[c].to_numpy(), rtol=1e-14, err_msg=c)
    # The product grid as `predict --at` writes it.
    grid = loaded.predict_at(N=[1e9, 2.8e9], T=[1, 2, 3, 4], D=np.geomspace(1e9, 1e11, 7))
    np.testing.assert_allclose(grid["pred"].to_numpy(), cli["pred"].to_numpy(), rtol=1e-14)
    # The command line reads what the package wrote, and the package what it wrote.
    assert sweepfit.load(path).report == loaded.report
    # Values outside the law's declared domain are refused, as on the command line.
    with pytest.raises(ValueError, match=r"N: 0 is outside the law's domain \(N > 0\)"):
        loaded.predict_at(N=[0.0, 1e9], T=[1], D=[1e9])
    with pytest.raises(ValueError, match="'N'.*must be > 0"):
        loaded.predict(pd.DataFrame({"N": [-1.0], "T": [1], "tokens": [1e9]}))


def test_predict_names_a_missing_column(boot_fit):
    with pytest.raises(ValueError, match="'tokens'"):
        boot_fit.predict(pd.DataFrame({"N": [1e9], "T": [1]}))
