"""Work spread over Ray tasks (``executor="ray"``): on the Ray a program has
initialised (a laptop's, a cluster's), or on a local one Ray starts on
first use. Each task calls the same Rust core a local call does, on its
own part of the work; results come back in a fixed order and are merged by
the core, so they are the numbers a local call gives, bit for bit.

Ray retries a task whose worker was lost (``max_retries``); a task that
fails for a reason in the data fails the whole call with that reason.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

EXECUTORS = ("local", "ray")

#: How often Ray reruns a task whose worker or node was lost.
MAX_RETRIES = 3


def check(executor: str) -> bool:
    """Whether ``executor`` asks for Ray; a name that is neither is an error."""
    if executor not in EXECUTORS:
        from ._core import SweepfitError

        raise SweepfitError(f"executor must be 'local' or 'ray', got {executor!r}")
    return executor == "ray"


def _ready():
    """Ray, initialised: the program's own, or a local one started here."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            "executor='ray' needs Ray: pip install './python[ray]' (or pip install 'ray>=2.9')"
        ) from None
    if not ray.is_initialized():
        ray.init()
    return ray


def _threads(num_cpus: float) -> None:
    # A task's fit uses as many threads as its share of the node's cores,
    # not all of them: the node runs other tasks beside it. Read by the
    # core's thread pool when the worker first uses it.
    os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, int(num_cpus))))


def _task(num_cpus: float, fn: Union[str, Callable[..., Any]], *args: Any) -> Any:
    _threads(num_cpus)
    if callable(fn):
        return fn(*args)
    from . import _core

    return getattr(_core, fn)(*args)


def workers(num_cpus: float) -> int:
    """How many tasks of ``num_cpus`` each the Ray cluster runs at once."""
    ray = _ready()
    return max(1, int(ray.cluster_resources().get("CPU", 1) // max(num_cpus, 1e-9)))


def run(
    calls: Sequence[Tuple[Union[str, Callable[..., Any]], tuple]],
    *,
    shared: Sequence[Any] = (),
    num_cpus: float = 1,
    num_gpus: Optional[float] = None,
    backend: str = "auto",
    progress: Optional[Callable[[str, int, int, float], None]] = None,
) -> List[Any]:
    """Run every ``(function, args)`` of ``calls`` (a function of the core
    by name, or a module-level function) as one Ray task, and return their
    results in order.

    The first ``len(shared)`` arguments of every call are ``shared``, put in
    Ray's object store once rather than sent with every task. ``num_gpus``
    per task defaults to one where the cluster has GPUs and ``backend`` is
    not ``"cpu"``, else none. ``progress`` (a progress callback) hears as
    ``("tasks", done, to_go, nan)`` how many tasks have finished.
    """
    ray = _ready()
    if num_gpus is None:
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        num_gpus = 1 if has_gpus and backend != "cpu" else 0
    task = ray.remote(_task).options(
        num_cpus=num_cpus, num_gpus=num_gpus, max_retries=MAX_RETRIES, retry_exceptions=False
    )
    refs = [ray.put(x) for x in shared]
    pending = [task.remote(num_cpus, fn, *refs, *args) for fn, args in calls]
    try:
        waiting = list(pending)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            ray.get(ready)  # a task that failed fails the call now
            if progress is not None:
                progress("tasks", len(pending) - len(waiting), len(waiting), float("nan"))
        return ray.get(pending)
    except ray.exceptions.RayTaskError as e:
        # The reason, as a local call raises it (a SweepfitError for bad
        # data), without Ray's wrapping.
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
