"""Figures: the Real-vs-Pred grid and its residuals, one axes per curve."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sweepfit  # noqa: E402


@pytest.fixture(scope="module")
def fit(sweep_csv):
    return sweepfit.fit(pd.read_csv(sweep_csv), starts=16, backend="cpu", progress=False)


def test_the_grid_has_one_axes_per_curve(fit, tmp_path):
    fig = fit.plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 20
    titles = {ax.get_title() for ax in fig.axes}
    assert "T = 1, N = 53M" in titles and "T = 4, N = 1.36B" in titles
    assert fig.axes[0].get_xscale() == "log"
    # Every axes draws the real points and the prediction of its curve.
    assert all(len(ax.lines) >= 2 for ax in fig.axes)
    fig.savefig(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 10_000


def test_residuals(fit):
    fig = fit.plot(residuals=True)
    assert len(fig.axes) == 20
    ys = fig.axes[0].lines[1].get_ydata()
    d = fit.data
    first = d[(d["N"] == 53e6) & (d["T"] == 1)]
    assert sorted(ys) == pytest.approx(sorted(first["residual"]), rel=1e-12)


def test_a_loaded_fit_draws_the_data_it_is_given(fit, tmp_path, sweep_csv):
    fit.to_json(tmp_path / "fit.json")
    loaded = sweepfit.load(tmp_path / "fit.json")
    with pytest.raises(ValueError, match="pass the data"):
        loaded.plot()
    df = pd.read_csv(sweep_csv)
    fig = loaded.plot(df[df["T"] == 1])
    assert len(fig.axes) == 5


def test_held_out_rows_are_marked(shared):
    df = pd.read_csv(shared / "sldbench" / "rectified.csv")
    r = sweepfit.fit(df, law="rectified", by="run", test_where={"split": "test"},
                     starts=16, backend="cpu", progress=False)
    fig = r.plot()
    assert len(fig.axes) == 42
    labels = {l for ax in fig.axes for l in ax.get_legend_handles_labels()[1]}
    assert "Real (held out)" in labels
