"""The result of a fit: everything fit.json holds, as Python values and
DataFrames, with predictions and figures."""

from __future__ import annotations

import html
import json
import os
import warnings
from statistics import NormalDist
from typing import Any, Dict, List, Optional, Union

import numpy as np
import pandas as pd

from . import _core, _data, _plot
from ._data import numeric as _numeric


class Fit:
    """A fitted law: returned by :func:`sweepfit.fit` and :func:`sweepfit.load`.

    Attributes hold what fit.json holds: :attr:`params`, :attr:`report` (the
    whole fit.json as a dict), :attr:`table` (value, standard error,
    interval and flag per parameter), :attr:`identifiability`,
    :attr:`bootstrap`, :attr:`profile`, :attr:`metrics`, :attr:`test` and,
    for fits with ``by``, :attr:`groups`. In a notebook a fit shows as its
    parameter table.
    """

    def __init__(self, core: "_core.Fit") -> None:
        self._core = core
        self.report: Dict[str, Any] = json.loads(core.report_json())
        #: What the fit said about how the law was read, as notes and warnings.
        self.messages: List[str] = list(core.messages())

    # What fit.json holds.

    @property
    def law(self) -> str:
        """The law's name (``custom`` for a formula)."""
        return self.report["law"]

    @property
    def formula(self) -> str:
        return self.report["formula"]

    @property
    def params(self) -> Dict[str, float]:
        """The best parameters by name (raw units). A fit with ``by`` has
        one set per group: see :attr:`groups`."""
        if self.report.get("groups"):
            raise ValueError("a fit with by= has parameters per group: see fit.groups")
        return dict(self.report["params"])

    @property
    def objective(self) -> float:
        return self.report["objective"]["value"]

    @property
    def metrics(self) -> Dict[str, Any]:
        """R², RMSE, MAE, SSE, MAPE of the fitted rows (and per curve)."""
        return dict(self.report["metrics"])

    @property
    def test(self) -> Optional[Dict[str, Any]]:
        """Scores of the rows held out by ``test_where`` (pooled over groups),
        e.g. ``fit.test["r2"]``; None without ``test_where``."""
        return self.report.get("test")

    @property
    def identifiability(self) -> Optional[Dict[str, Any]]:
        """Standard errors, correlations, eigenvalues and flags at the optimum."""
        return self.report.get("identifiability")

    @property
    def profile(self) -> Optional[pd.DataFrame]:
        """Profile-likelihood intervals (``profile=...``): per parameter its
        ends, what each end is (found, bound, open, unreliable) and the curve
        (``values``, ``statistic``)."""
        p = self.report.get("profile")
        if not p:
            return None
        df = pd.DataFrame.from_dict(p["params"], orient="index")
        df.index.name = "param"
        return df

    @property
    def bootstrap(self) -> Optional[pd.DataFrame]:
        """Per resampling scheme and parameter: the bootstrap's standard error
        and percentile interval (``bootstrap=B``); the replicates themselves
        are in :meth:`bootstrap_samples`."""
        b = self.report.get("bootstrap")
        if not b:
            return None
        rows = []
        for rs in b["resamples"]:
            for name, s in rs["params"].items():
                rows.append({"resample": rs["kind"], "param": name, **s,
                             "replicates": rs["replicates"], "converged": rs["converged"]})
        return pd.DataFrame(rows).set_index(["resample", "param"])

    def bootstrap_samples(self, resample: str = "curves") -> pd.DataFrame:
        """The replicates' parameters of one resampling scheme, one row each."""
        b = self.report.get("bootstrap") or {}
        for rs in b.get("resamples", []):
            if rs["kind"] == resample:
                return pd.DataFrame(rs["samples"], columns=self._core.param_names())
        raise ValueError(f"the fit has no bootstrap replicates of kind {resample!r}")

    @property
    def groups(self) -> Optional[pd.DataFrame]:
        """For a fit with ``by``: one row per group, its key, parameters,
        objective and scores (``test_r2`` and friends with ``test_where``)."""
        gs = self.report.get("groups")
        if not gs:
            return None
        rows = []
        for g in gs:
            row: Dict[str, Any] = dict(g["key"])
            row.update(g["params"])
            row["objective"] = g["objective"]
            for k in ("points", "r2", "rmse", "mae", "mape"):
                row[k] = g["metrics"].get(k)
            for k, v in (g.get("test") or {}).items():
                # One held-out row has no R² (null): kept as NaN.
                if v is None or isinstance(v, (int, float)):
                    row[f"test_{k}"] = np.nan if v is None else v
            rows.append(row)
        return _numeric(pd.DataFrame(rows))

    @property
    def level(self) -> float:
        """Coverage of the intervals in :attr:`table`."""
        for key in ("profile", "bootstrap"):
            if self.report.get(key):
                return float(self.report[key]["level"])
        return 0.95

    @property
    def table(self) -> pd.DataFrame:
        """The parameter table: value, standard error, interval (profile where
        asked, else the first bootstrap scheme's percentiles, else value ±
        z·SE) and the identifiability flag, one row per parameter."""
        if self.report.get("groups"):
            return self.groups
        ident = self.identifiability or {}
        se = ident.get("standard_errors", {})
        flags = {f["param"]: f["reason"] for f in ident.get("flagged", [])}
        prof = (self.report.get("profile") or {}).get("params", {})
        boot = (self.report.get("bootstrap") or {}).get("resamples", [])
        fixed = set(self.report.get("fixed", []))
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        rows = []
        for name, value in self.report["params"].items():
            s = se.get(name)
            row = {"param": name, "value": value, "se": s, "lo": None, "hi": None,
                   "interval": None, "flag": flags.get(name, "fixed" if name in fixed else "")}
            if name in prof:
                row.update(lo=prof[name].get("lo"), hi=prof[name].get("hi"), interval="profile")
            elif boot and name in boot[0]["params"]:
                b = boot[0]["params"][name]
                row.update(lo=b["lo"], hi=b["hi"], interval=f"bootstrap ({boot[0]['kind']})")
            elif s is not None and name not in fixed:
                row.update(lo=value - z * s, hi=value + z * s, interval="asymptotic")
            rows.append(row)
        return pd.DataFrame(rows).set_index("param")

    # Data, predictions, figures.

    @property
    def data(self) -> pd.DataFrame:
        """The fitted rows with ``pred``, ``residual`` (pred − loss) and ``set``
        (fit or test): what pred.csv holds. Fits made here only."""
        cols, loss, pred, held = self._core.rows()
        df = _numeric(pd.DataFrame({name: values for name, values in cols}))
        df["pred"] = pred
        df["residual"] = pred - loss
        df["set"] = np.where(held, "test", "fit")
        return df

    def predict(self, data: Any, *, bands: bool = False,
                schedule: Any = None) -> Union[np.ndarray, pd.DataFrame]:
        """The law's prediction at every row of ``data`` (a DataFrame, a dict
        of arrays or a CSV path with the columns the fit read; with ``by``,
        the group columns pick each row's fit). A law that sums along the
        steps reads each row's run's ``schedule`` (as :func:`sweepfit.fit`
        takes it; default: the schedules it was fitted with), so a run that
        was never trained is predicted from its schedule alone.

        Returns a NumPy array; with ``bands=True`` a DataFrame of ``pred`` and
        each bootstrap scheme's ``lo_<scheme>``/``hi_<scheme>`` (the fit
        needs ``bootstrap=B``)."""
        cols, origin = _data.columns(data)
        pred, band_list = self._core.predict(cols, origin, _data.schedule(schedule))
        if not bands:
            return pred
        if not band_list:
            raise ValueError("the fit has no bootstrap: fit with bootstrap=B for bands")
        out = {"pred": pred}
        for kind, lo, hi in band_list:
            out[f"lo_{kind}"] = lo
            out[f"hi_{kind}"] = hi
        return pd.DataFrame(out)

    def predict_at(self, *, schedule: Any = None, **at: Any) -> pd.DataFrame:
        """Predictions on every combination of the values given per variable,
        e.g. ``fit.predict_at(N=[1e9, 1e10], D=np.geomspace(1e9, 1e11, 20))``,
        as ``sweepfit predict --at`` writes them (bands included). A law that
        sums along the steps predicts every run of ``schedule`` (default: the
        schedules it was fitted with), e.g. ``fit.predict_at(step=[8000,
        24000], schedule=wsd)``, with a column ``run``."""
        pairs = [(k, [float(x) for x in np.atleast_1d(v)]) for k, v in at.items()]
        header, rows, said = self._core.predict_at(pairs, _data.schedule(schedule))
        for msg in said:
            warnings.warn(msg, stacklevel=2)
        df = pd.DataFrame(rows, columns=header)
        return _numeric(df.replace("", np.nan))

    def plot(self, data: Any = None, *, residuals: bool = False, figsize: Optional[tuple] = None,
             schedule: Any = None):
        """The Real-vs-Pred grid as a matplotlib Figure, one axes per curve
        (``residuals=True``: pred − loss). A loaded fit draws ``data``. For a
        law that sums along the steps, each run's learning rate is drawn
        under its curve, from ``schedule`` (as :func:`sweepfit.fit` takes
        it) or the schedules it was fitted with."""
        schedule = _data.schedule(schedule)
        if data is None:
            layout = self._core.panels(schedule=schedule)
        else:
            cols, origin = _data.columns(data)
            layout = self._core.panels(cols, origin, schedule)
        return _plot.draw(json.loads(layout), residuals=residuals, figsize=figsize)

    # Output.

    def summary(self) -> None:
        """Print the command line's table of the fit."""
        print(self._core.summary())

    def to_json(self, path: Union[str, "os.PathLike[str]"], *, overwrite: bool = False) -> None:
        """Write fit.json (which ``sweepfit predict --fit`` and :func:`load`
        read); an existing file only with ``overwrite=True``."""
        self._core.write_json(os.fspath(path), overwrite)

    def __str__(self) -> str:
        return self._core.summary()

    def __repr__(self) -> str:
        m = self.report["metrics"]
        return (f"<sweepfit.Fit law={self.law!r} points={m['points']} "
                f"R²={m['r2']:.4f} objective={self.objective:.6g}>")

    def _repr_html_(self) -> str:
        m = self.report["metrics"]
        head = (f"<p><b>sweepfit</b> · law <code>{html.escape(self.law)}</code>: "
                f"<code>{html.escape(self.formula)}</code><br>"
                f"{m['points']} points · R² {m['r2']:.4f} · RMSE {m['rmse']:.4g}")
        if self.test:
            head += f" · test R² {self.test['r2']:.4f}"
        head += "</p>"
        return head + self.table.to_html(float_format=lambda v: f"{v:.6g}", na_rep="")
