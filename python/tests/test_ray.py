"""Work spread over Ray (executor="ray") on a local Ray instance the tests
start with two CPUs: a comparison of eight laws over 23 folds, a
bootstrap of 2,000 replicates per scheme and a list of fits give exactly
what the same calls give locally. Only what says when and where the work
ran (``seconds``, ``device``) may differ."""

import sys

import numpy as np
import pytest
import ray  # a test dependency: its absence fails these tests

import sweepfit


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _numbers(x):
    """``x`` without what says when and where it ran."""
    if isinstance(x, dict):
        return {k: _numbers(v) for k, v in x.items() if k not in ("seconds", "device")}
    if isinstance(x, list):
        return [_numbers(v) for v in x]
    return x


@pytest.fixture(scope="module")
def sweep():
    truth = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
    return sweepfit.simulate("chinchilla", params=truth,
                             at={"N": np.geomspace(1e7, 1e10, 6),
                                 "D": np.geomspace(1e8, 1e11, 30)},
                             noise=0.01, seed=1)


LAWS = [
    "chinchilla",
    "kaplan",
    "E + A/N^alpha + B/tokens",
    "E + A/N^alpha + B/tokens^beta",
    "E + A/(N + t1)^alpha + B/tokens^beta",
    "A/N^alpha + B/tokens^beta",
    "E + A/N^alpha",
    "E + B/tokens^beta",
]


def test_a_comparison_on_ray_is_the_local_one(local_ray, sweep):
    kw = dict(protocol=["sizes", "tokens"], starts=16, backend="cpu", progress=False)
    here = sweepfit.compare(sweep, LAWS, **kw)
    there = sweepfit.compare(sweep, LAWS, executor="ray", **kw)
    report = here.attrs["report"]
    assert len(report["laws"]) == 8
    folds = sum(p["folds"] for p in report["laws"][0]["protocols"])
    assert folds >= 5, folds
    assert _numbers(there.attrs["report"]) == _numbers(report)
    assert there.equals(here)


def test_a_bootstrap_on_ray_is_the_local_one(local_ray, sweep):
    kw = dict(law="chinchilla", starts=16, bootstrap=2000, backend="cpu", progress=False)
    here = sweepfit.fit(sweep, **kw)
    there = sweepfit.fit(sweep, executor="ray", shards=3, **kw)
    b = here.report["bootstrap"]
    assert [r["replicates"] for r in b["resamples"]] == [2000, 2000]
    assert _numbers(there.report) == _numbers(here.report)
    assert there.bootstrap.equals(here.bootstrap)


def test_many_fits_on_ray_are_the_local_ones(local_ray, sweep):
    jobs = [dict(data=sweep, law=law, starts=8, backend="cpu") for law in LAWS[:3]]
    here = sweepfit.fit_many(jobs, progress=False)
    heard = []
    there = sweepfit.fit_many(jobs, executor="ray",
                              progress=lambda *a: heard.append(a[:3]))
    assert [_numbers(f.report) for f in there] == [_numbers(f.report) for f in here]
    # Progress counts the tasks as they finish.
    assert heard == [("tasks", 1, 2), ("tasks", 2, 1), ("tasks", 3, 0)]
    assert sweepfit._core.progress_text("tasks", 1, 2, float("nan")) == "1 of 3 tasks done"


def test_a_reason_in_the_data_fails_the_call_with_it(local_ray, sweep):
    with pytest.raises(sweepfit.SweepfitError, match="split"):
        sweepfit.compare(sweep, LAWS[:2], test_where={"split": "test"}, backend="cpu",
                         progress=False, executor="ray")
    with pytest.raises(sweepfit.SweepfitError, match="split"):
        sweepfit.fit_many([dict(data=sweep, law="chinchilla", test_where={"split": "test"})],
                          executor="ray")


def test_without_ray_the_call_says_how_to_install_it(monkeypatch, sweep):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install '\./python\[ray\]'"):
        sweepfit.compare(sweep, LAWS[:2], backend="cpu", progress=False, executor="ray")
    with pytest.raises(ValueError, match="executor must be"):
        sweepfit.compare(sweep, LAWS[:2], backend="cpu", progress=False, executor="dask")


def test_a_lost_worker_is_retried_and_the_result_is_unchanged(local_ray, sweep, tmp_path):
    import json
    import os

    from sweepfit import _core, _data, _ray

    marker = str(tmp_path / "lost")

    def lost_once(*args):
        # The first attempt's worker dies mid-task, as on a lost node.
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return _core.compare_law(*args)

    cols, origin = _data.columns(sweep)
    request = json.dumps({"protocol": ["sizes"], "starts": 8, "backend": "cpu"})
    law = ("law", "chinchilla", "")
    [(got, _)] = _ray.run([(lost_once, (law, request))], shared=(cols, origin), backend="cpu")
    want, _ = _core.compare_law(cols, origin, law, request)
    assert os.path.exists(marker)
    assert _numbers(json.loads(got)) == _numbers(json.loads(want))
