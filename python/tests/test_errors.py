"""Bad input raises a ValueError with the command line's message."""

import pandas as pd
import pytest

import sweepfit


@pytest.fixture(scope="module")
def df(sweep_csv):
    return pd.read_csv(sweep_csv)


def test_a_bad_cell_names_its_row_and_column(df):
    bad = df.copy()
    bad["loss"] = bad["loss"].astype(object)
    bad.loc[7, "loss"] = "n/a"
    with pytest.raises(sweepfit.SweepfitError, match=r"row 7: column 'loss': 'n/a' is not a number"):
        sweepfit.fit(bad, backend="cpu", progress=False)


def test_errors_are_value_errors_with_the_cli_message(df):
    assert issubclass(sweepfit.SweepfitError, ValueError)
    cases = [
        (dict(law="no-such-law"), "no built-in law has this name"),
        (dict(starts=0), "--starts must be at least 1"),
        (dict(level=1.5), "--level must lie strictly between 0 and 1"),
        (dict(fix={"nope": 1.0}), "nope"),
        (dict(law="E + A/N^alpha", by="nope"), "nope"),
        (dict(test_where={"split": "test"}), "split"),
        (dict(loss="l1"), "l1"),
        (dict(backend="tpu"), "tpu"),
    ]
    for kwargs, says in cases:
        with pytest.raises(ValueError, match=says):
            sweepfit.fit(df, progress=False, **{"backend": "cpu", **kwargs})


def test_data_of_the_wrong_shape(df):
    with pytest.raises(TypeError, match="DataFrame"):
        sweepfit.fit([1, 2, 3])
    with pytest.raises(ValueError, match="has 2 values"):
        sweepfit.fit({"N": [1.0, 2.0, 3.0], "D": [1.0, 2.0], "loss": [1.0, 2.0, 3.0]},
                     law="E + A/N^alpha", backend="cpu")
    with pytest.raises(ValueError, match="cannot|No such file|not found"):
        sweepfit.fit("no/such/file.csv", backend="cpu")
    with pytest.raises(ValueError, match="not finite|not a finite number"):
        sweepfit.fit(df.assign(loss=float("nan")), backend="cpu", progress=False)
