"""sweepfit: fit neural scaling laws to whole sweeps of training runs.

The Python face of the sweepfit command-line program, on the same Rust
core: DataFrames in, results and matplotlib figures out.

    >>> import sweepfit
    >>> df = sweepfit.simulate(seed=1)                  # the LoopLM demo sweep
    >>> fit = sweepfit.fit(df, backend="cpu")
    >>> fit.params["alpha"]
    >>> fig = fit.plot()

Every function's keyword arguments mirror the command line's options
(``sweepfit fit --help``); bad input raises :class:`SweepfitError`, a
``ValueError`` whose message is the one the command line prints.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

# Mesa's Vulkan layer VK_LAYER_MESA_device_select only reorders adapters
# (sweepfit picks its own), and on a machine without a display server it
# prints "error: XDG_RUNTIME_DIR is invalid or not set" while sweepfit
# probes them: a harmless message that reads as a failure. The layer's own
# switch turns it off unless the user set it, as the command line does.
os.environ.setdefault("NODEVICE_SELECT", "1")

from . import _core, _data, _ray  # noqa: E402
from ._core import SweepfitError, __version__
from ._fit import Fit
from ._progress import reporter

__all__ = [
    "Fit",
    "Law",
    "SweepfitError",
    "compare",
    "devices",
    "evaluate",
    "fit",
    "fit_many",
    "laws",
    "load",
    "simulate",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[bool, None, Callable[[str, int, int, float], None]]


def _pairs(mapping: Optional[Mapping[str, Any]], what: str) -> List[list]:
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(mapping).__name__}")
    return [[str(k), v] for k, v in mapping.items()]


def _selector(test_where: Optional[Mapping[str, Any]]) -> Optional[dict]:
    if test_where is None:
        return None
    if not isinstance(test_where, Mapping) or len(test_where) != 1:
        raise ValueError('test_where must be a dict of one column and value, e.g. {"split": "test"}')
    (column, value), = test_where.items()
    return {"column": str(column), "value": str(value)}


def _law_options(law: Optional[str], law_file: Optional[PathLike], vars: Optional[Mapping[str, str]],
                 axis: Optional[str], fix: Optional[Mapping[str, float]], loss: str, space: str,
                 delta: float, starts: Optional[int], seed: int, max_iter: Optional[int],
                 ftol: Optional[float], gtol: Optional[float]) -> Dict[str, Any]:
    if law is not None and law_file is not None:
        raise ValueError("give law or law_file, not both")
    opts: Dict[str, Any] = {
        "vars": [[k, str(v)] for k, v in _pairs(vars, "vars")],
        "axis": axis,
        "fix": [[k, float(v)] for k, v in _pairs(fix, "fix")],
        "loss": loss,
        "space": space,
        "delta": float(delta),
        "starts": starts,
        "seed": int(seed),
    }
    if law is not None:
        opts["law"] = law
    if law_file is not None:
        opts["law_file"] = os.fspath(law_file)
    for key, v in (("max_iter", max_iter), ("ftol", ftol), ("gtol", gtol)):
        if v is not None:
            opts[key] = v
    return opts


def _eval_options(protocol: Union[str, Sequence[str], None], leave: str,
                  test_where: Optional[Mapping[str, Any]], train_sizes: int,
                  fractions: Sequence[float], backend: str,
                  by: Union[str, Sequence[str], None]) -> Dict[str, Any]:
    """The hold-out protocols' options, as `sweepfit eval` takes them."""
    opts: Dict[str, Any] = dict(leave=leave, test_where=_selector(test_where),
                                train_sizes=int(train_sizes),
                                fractions=[float(f) for f in fractions], backend=backend,
                                by=[by] if isinstance(by, str) else list(by or []))
    if protocol is not None:
        opts["protocol"] = [protocol] if isinstance(protocol, str) else list(protocol)
    return opts


def _tell(messages: Iterable[str]) -> None:
    for m in messages:
        if m.startswith("warning: "):
            warnings.warn(m[len("warning: "):], stacklevel=3)


def fit(
    data: Any,
    law: Optional[str] = None,
    *,
    law_file: Optional[PathLike] = None,
    vars: Optional[Mapping[str, str]] = None,
    axis: Optional[str] = None,
    schedule: Any = None,
    by: Union[str, Sequence[str], None] = None,
    test_where: Optional[Mapping[str, Any]] = None,
    fix: Optional[Mapping[str, float]] = None,
    loss: str = "mse",
    delta: float = 1e-3,
    space: str = "linear",
    starts: Optional[int] = None,
    seed: int = 0,
    max_iter: Optional[int] = None,
    ftol: Optional[float] = None,
    gtol: Optional[float] = None,
    bootstrap: Optional[int] = None,
    resample: Union[str, Sequence[str]] = ("curves", "points"),
    level: float = 0.95,
    profile: Union[bool, str, Sequence[str]] = False,
    backend: str = "auto",
    progress: Progress = None,
    executor: str = "local",
    num_cpus: float = 1,
    num_gpus: Optional[float] = None,
    shards: Optional[int] = None,
) -> Fit:
    """Fit a scaling law to every row of ``data`` at once.

    Parameters
    ----------
    data
        A pandas or polars DataFrame, a dict of arrays, or a CSV path: one row
        per logged point, with the law's variables, ``loss`` and optionally
        ``weight``, ``run``.
    law
        A built-in law's name (:func:`laws`) or a formula such as
        ``"E + A/N^alpha + B/D^beta"``, whose names are variables where they
        name a column and parameters otherwise. Default: ``looplm``.
    law_file
        A law file (TOML) with declarations, instead of ``law``.
    vars
        Bind a variable to a column, e.g. ``{"N": "params"}``.
    axis
        The variable each curve runs along.
    schedule
        For laws that sum along the steps (``multi-power``,
        ``lr-annealing``): the runs' learning rate at every step from 0, as
        a DataFrame or dict of arrays ``run, step, lr`` (``step, lr``: one
        schedule for every run), or the path of such a CSV or of a manifest
        ``run,file`` (see ``--schedule``). The fit keeps them for its
        predictions and its picture.
    by
        Fit separately to every group of rows with equal values in these
        columns (e.g. ``"run"``), all groups in one batch.
    test_where
        Hold out the rows where a column has a value, e.g. ``{"split": "test"}``,
        and score them (:attr:`Fit.test`).
    fix
        Hold parameters fixed, e.g. ``{"t3": 0}``.
    loss, delta, space
        ``"mse"`` or ``"huber"`` (threshold ``delta``) on residuals of the loss
        (``space="linear"``) or of its log (``"log"``).
    starts, seed, max_iter, ftol, gtol
        Number of starts (default 128; a law that sums along the steps fitted
        on the CPU runs up to 128 in waves of 8 and stops once they find no new
        minimum), their seed, and the optimiser's limits.
    bootstrap, resample, level
        Refit ``bootstrap`` replicates per resampling scheme (``"curves"``,
        ``"points"``) for standard errors, percentile intervals at ``level``
        and prediction bands.
    profile
        Profile-likelihood intervals at ``level``: True for every free
        parameter, or the names of some.
    backend
        ``"auto"`` (a hardware GPU if there is one), ``"gpu"`` or ``"cpu"``.
    progress
        Show progress on stderr: None (where someone watches), True, False,
        or a callable ``(stage, iteration, active, best)``.
    executor, num_cpus, num_gpus, shards
        ``"ray"``: the bootstrap's replicates refitted as ``shards`` Ray
        tasks (default: one per ``num_cpus`` of the cluster's CPUs), each
        with ``num_cpus`` and ``num_gpus`` (default: one GPU where the
        cluster has GPUs); the fit itself runs here. The replicates are
        drawn by their index, so the result is the local one, bit for bit.

    Returns
    -------
    Fit
        Everything fit.json holds; ``fit.params``, ``fit.table``, ``fit.plot()``.

    Raises
    ------
    SweepfitError
        (a ``ValueError``) for bad data or options, with the command line's message.
    KeyboardInterrupt
        On Ctrl-C, within a fraction of a second; the interpreter goes on.
    """
    opts = _law_options(law, law_file, vars, axis, fix, loss, space, delta, starts, seed,
                        max_iter, ftol, gtol)
    opts["by"] = [by] if isinstance(by, str) else list(by or [])
    opts["test_where"] = _selector(test_where)
    if profile is True:
        opts["profile"] = []
    elif isinstance(profile, str):
        opts["profile"] = [profile]
    elif profile:
        opts["profile"] = list(profile)
    if bootstrap is not None:
        opts["bootstrap"] = int(bootstrap)
    opts["resample"] = [resample] if isinstance(resample, str) else list(resample)
    opts["level"] = float(level)
    opts["backend"] = backend
    cols, origin = _data.columns(data)
    sched = _data.schedule(schedule)
    request = json.dumps(opts)
    spread = _ray.check(executor) and bootstrap is not None
    with reporter(progress) as cb:
        # Spread over Ray, the fit runs here without its bootstrap, whose
        # shards then start from its best.
        alone = {k: v for k, v in opts.items() if k != "bootstrap"} if spread else opts
        core = _core.fit(cols, origin, json.dumps(alone), cb, sched)
        if spread:
            started = time.monotonic()
            b = int(bootstrap)
            n = max(1, min(b, shards if shards is not None else _ray.workers(num_cpus)))
            cuts = [b * i // n for i in range(n + 1)]
            parts = _ray.run([("bootstrap_shard", (request, core.report_json(), lo, hi, sched))
                              for lo, hi in zip(cuts, cuts[1:])],
                             shared=(cols, origin), num_cpus=num_cpus, num_gpus=num_gpus,
                             backend=backend, progress=cb)
            core = core.with_bootstrap(parts, request, time.monotonic() - started)
    result = Fit(core)
    _tell(result.messages)
    return result


def _fit_job(job: Mapping[str, Any]) -> tuple:
    f = fit(**{**job, "progress": False})
    return f._core.report_json(), f.messages


def fit_many(
    jobs: Sequence[Mapping[str, Any]],
    *,
    executor: str = "local",
    num_cpus: float = 1,
    num_gpus: Optional[float] = None,
    progress: Progress = None,
) -> List[Fit]:
    """Run many fits, each ``jobs[i]`` the keyword arguments of :func:`fit`
    (``data`` among them), and return them in order.

    ``executor="ray"`` runs each as a Ray task (``num_cpus`` and ``num_gpus``
    each; by default one GPU where the cluster has GPUs): the fits are the
    local ones, bit for bit. A fit made by a task holds its report, not its
    rows: give ``data`` to its ``plot`` and ``predict``. A job that fails
    fails the call with its reason. ``progress`` is each local fit's (where
    its job does not set one), or the count of Ray tasks done.
    """
    jobs = [dict(j) for j in jobs]
    for j in jobs:
        if "data" not in j:
            raise SweepfitError("every job of fit_many needs its data (data=...)")
    if not _ray.check(executor):
        return [fit(**{"progress": progress, **j}) for j in jobs]
    backend = "cpu" if all(j.get("backend") == "cpu" for j in jobs) else "auto"
    with reporter(progress) as cb:
        done = _ray.run([(_fit_job, (j,)) for j in jobs], num_cpus=num_cpus,
                        num_gpus=num_gpus, backend=backend, progress=cb)
    fits = [Fit(_core.loads(text, messages)) for text, messages in done]
    for f in fits:
        _tell(f.messages)
    return fits


def load(path: PathLike) -> Fit:
    """Read a fit.json written by ``sweepfit fit`` or :meth:`Fit.to_json`."""
    return Fit(_core.load(os.fspath(path)))


def evaluate(
    data: Any,
    law: Optional[str] = None,
    *,
    law_file: Optional[PathLike] = None,
    protocol: Union[str, Sequence[str], None] = None,
    leave: str = "T",
    test_where: Optional[Mapping[str, Any]] = None,
    by: Union[str, Sequence[str], None] = None,
    train_sizes: int = 3,
    fractions: Sequence[float] = (0.25, 0.5, 0.75),
    vars: Optional[Mapping[str, str]] = None,
    axis: Optional[str] = None,
    schedule: Any = None,
    fix: Optional[Mapping[str, float]] = None,
    loss: str = "mse",
    delta: float = 1e-3,
    space: str = "linear",
    starts: Optional[int] = None,
    seed: int = 0,
    max_iter: Optional[int] = None,
    ftol: Optional[float] = None,
    gtol: Optional[float] = None,
    backend: str = "auto",
    progress: Progress = None,
) -> Dict[str, Any]:
    """Refit on part of the data and score the prediction of the rest, under
    the hold-out protocols (``sizes``, ``tokens``, ``leave-t``, ``test-where``;
    default: those that apply), as ``sweepfit eval`` does. With ``by``
    (e.g. ``"run"``) every fold fits each group of rows apart, and scores
    the held-out rows of all groups together.

    Returns eval.json as a dict, with ``"folds"`` (one row per fold: its
    protocol, what it held out, its held-out R², RMSE and MAPE, and its
    parameters) and ``"summary"`` (the scores per protocol) as DataFrames.
    """
    opts = _law_options(law, law_file, vars, axis, fix, loss, space, delta, starts, seed,
                        max_iter, ftol, gtol)
    opts.update(_eval_options(protocol, leave, test_where, train_sizes, fractions, backend, by))
    cols, origin = _data.columns(data)
    with reporter(progress) as cb:
        text, messages = _core.evaluate(cols, origin, json.dumps(opts), cb,
                                        _data.schedule(schedule))
    _tell(messages)
    report = json.loads(text)
    folds = []
    for f in report.get("folds", []):
        row = {k: v for k, v in f.items() if not isinstance(v, (dict, list))}
        row.update(f.get("params") or {})
        folds.append(row)
    report["folds"] = pd.DataFrame(folds)
    if isinstance(report.get("summary"), list):
        report["summary"] = pd.DataFrame(report["summary"])
    return report


def compare(
    data: Any,
    laws: Sequence[str] = (),
    *,
    law_files: Sequence[PathLike] = (),
    protocol: Union[str, Sequence[str], None] = None,
    leave: str = "T",
    test_where: Optional[Mapping[str, Any]] = None,
    by: Union[str, Sequence[str], None] = None,
    train_sizes: int = 3,
    fractions: Sequence[float] = (0.25, 0.5, 0.75),
    vars: Optional[Mapping[str, str]] = None,
    axis: Optional[str] = None,
    schedule: Any = None,
    fix: Optional[Mapping[str, float]] = None,
    loss: str = "mse",
    delta: float = 1e-3,
    space: str = "linear",
    starts: Optional[int] = None,
    seed: int = 0,
    max_iter: Optional[int] = None,
    ftol: Optional[float] = None,
    gtol: Optional[float] = None,
    backend: str = "auto",
    progress: Progress = None,
    executor: str = "local",
    num_cpus: float = 1,
    num_gpus: Optional[float] = None,
) -> pd.DataFrame:
    """Which law? Evaluate several laws on the same data under the same
    hold-out protocols (as :func:`evaluate` does for one) and rank them, as
    ``sweepfit compare`` does.

    ``laws`` are built-ins' names or formulas, ``law_files`` law files; the
    other options are :func:`evaluate`'s, shared by every law.

    ``executor="ray"`` evaluates each law as a Ray task (``num_cpus`` and
    ``num_gpus`` each; by default one GPU per task where the cluster has
    GPUs), on the Ray this program has initialised or a local one; the
    ranking and every number are the ones a local call gives. A path in
    the options (``data``, ``schedule``) must name a file every worker can
    read; law files are read here and sent with the tasks.

    Returns the ranking as a DataFrame: one row per law and protocol
    (``all`` for the fit on every row) with its rank by mean held-out RMSE,
    folds, R², RMSE, MAPE, free parameters, objective, and AIC and BIC (mse
    only). ``df.attrs["report"]`` holds compare.json as a dict (every law's
    whole evaluation).
    """
    if isinstance(laws, str):
        laws = [laws]
    opts = _law_options(None, None, vars, axis, fix, loss, space, delta, starts, seed,
                        max_iter, ftol, gtol)
    opts.update(_eval_options(protocol, leave, test_where, train_sizes, fractions, backend, by))
    cols, origin = _data.columns(data)
    sched = _data.schedule(schedule)
    laws = [str(x) for x in laws]
    law_files = [os.fspath(f) for f in law_files]
    request = json.dumps(opts)
    if _ray.check(executor):
        started = time.monotonic()
        sources = _core.compare_sources(laws, law_files, request)
        with reporter(progress) as cb:
            parts = _ray.run([("compare_law", (law, request, sched)) for law in sources],
                             shared=(cols, origin), num_cpus=num_cpus, num_gpus=num_gpus,
                             backend=backend, progress=cb)
        messages = list(dict.fromkeys(m for _, said in parts for m in said))
        text = _core.compare_merge([part for part, _ in parts], request,
                                   time.monotonic() - started)
    else:
        with reporter(progress) as cb:
            text, messages = _core.compare(cols, origin, laws, law_files, request, cb, sched)
    _tell(messages)
    report = json.loads(text)
    ranks = {r["protocol"]: r["laws"] for r in report["ranking"]}
    rows = []
    for law in report["laws"]:
        base = {"law": law["law"], "free_params": law["free_params"],
                "objective": law["objective"], "aic": law["aic"], "bic": law["bic"]}
        rows.append({**base, "protocol": "all", "rank": None, "folds": 1, "r2": law["r2"],
                     "rmse": law["rmse"], "mape": None})
        for p in law["protocols"]:
            order = ranks.get(p["protocol"], [])
            rank = order.index(law["law"]) + 1 if law["law"] in order else None
            rows.append({**base, "protocol": p["protocol"], "rank": rank, "folds": p["folds"],
                         "r2": p["r2"], "rmse": p["rmse"], "mape": p["mape"]})
    cols_order = ["law", "protocol", "rank", "folds", "r2", "rmse", "mape", "free_params",
                  "objective", "aic", "bic"]
    df = pd.DataFrame(rows, columns=cols_order)
    df = df.sort_values(["protocol", "rank"], kind="stable", na_position="first").reset_index(drop=True)
    df.attrs["report"] = report
    return df


def simulate(
    law: Optional[str] = None,
    *,
    params: Optional[Mapping[str, float]] = None,
    at: Optional[Mapping[str, Any]] = None,
    law_file: Optional[PathLike] = None,
    vars: Optional[Mapping[str, str]] = None,
    noise: float = 0.02,
    seed: int = 0,
    points: int = 500,
    warmup: float = 0.0,
    late_rise: float = 0.0,
    schedule: Any = None,
) -> pd.DataFrame:
    """A simulated sweep, as ``sweepfit simulate`` writes it.

    Without ``law``: the LoopLM reference sweep (T = 1..4 for N = 53M..1.36B
    over 0..20B tokens, ``points`` per curve) with Gaussian noise. With
    ``law``: the law at every combination of the ``at`` values
    (``{"N": [...], "D": [...]}``) with ``params``; a law that sums along the
    steps (``multi-power``) takes its runs' learning rates from ``schedule``
    (as ``fit`` takes it: a DataFrame ``run, step, lr`` or a CSV's path), one
    curve per run at the ``at`` steps within its schedule. The true
    parameters are in
    ``df.attrs["truth"]``.
    """
    if law is None and law_file is None:
        if params or at or schedule is not None:
            raise ValueError("params, at and schedule go with law or law_file")
        opts = {"points": int(points), "noise": float(noise), "warmup": float(warmup),
                "late_rise": float(late_rise)}
        run, cols, truth = _core.simulate_preset(json.dumps(opts), int(seed))
        df = pd.DataFrame({"run": run, **{k: v for k, v in cols}})
        df.attrs["truth"] = json.loads(truth)
        return df
    if points != 500 or warmup or late_rise:
        raise ValueError("points, warmup and late_rise shape the looplm20 preset; with law the rows come from at")
    header, rows, truth = _core.simulate_law(
        law, os.fspath(law_file) if law_file is not None else None,
        [(k, float(v)) for k, v in (params or {}).items()],
        [(k, [float(x) for x in np.atleast_1d(v)]) for k, v in (at or {}).items()],
        [(k, str(v)) for k, v in (vars or {}).items()],
        float(noise), int(seed), _data.schedule(schedule))
    df = _data.numeric(pd.DataFrame(rows, columns=header))
    df.attrs["truth"] = json.loads(truth)
    return df


def laws() -> pd.DataFrame:
    """The built-in laws: name, description and formula."""
    return pd.DataFrame(_core.laws(), columns=["name", "description", "formula"]).set_index("name")


def devices() -> List[Dict[str, Any]]:
    """The GPU adapters sweepfit can use (the CPU is always available)."""
    return json.loads(_core.devices())


class Law:
    """A law on its own: a built-in's name, a formula, or ``law_file=``.

    >>> law = sweepfit.Law("chinchilla")
    >>> law.parameters
    >>> law({"N": [1e9], "D": [2e10]}, {"E": 1.8, "A": 400, "alpha": 0.34, "B": 410, "beta": 0.28})
    """

    def __init__(self, law: Optional[str] = None, *, law_file: Optional[PathLike] = None) -> None:
        if law is None and law_file is None:
            raise ValueError("give a law (a built-in's name or a formula) or law_file")
        self._core = _core.Law(law, os.fspath(law_file) if law_file is not None else None)

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def description(self) -> str:
        return self._core.description

    @property
    def formula(self) -> str:
        return self._core.formula

    @property
    def text(self) -> str:
        """The law file (TOML)."""
        return self._core.text

    @property
    def variables(self) -> Dict[str, str]:
        """Declared variables and the columns they read; empty for a formula,
        whose variables are the names that name a column of the data."""
        return dict(self._core.variables)

    @property
    def parameters(self) -> Optional[List[str]]:
        """The parameters in the law's order; None for a formula (its names
        that are not columns of the data become parameters)."""
        return self._core.parameters

    def __call__(self, data: Any, params: Mapping[str, float], *,
                 vars: Optional[Mapping[str, str]] = None, schedule: Any = None) -> np.ndarray:
        """The law at every row of ``data`` with ``params`` (every parameter, by
        name); a law that sums along the steps reads the runs' ``schedule``
        (as :func:`fit` takes it)."""
        cols, origin = _data.columns(data)
        return self._core.evaluate(cols, origin, [(k, float(v)) for k, v in params.items()],
                                   [(k, str(v)) for k, v in (vars or {}).items()],
                                   _data.schedule(schedule))

    def __repr__(self) -> str:
        return f"sweepfit.Law({self.name!r}: {self.formula})"
