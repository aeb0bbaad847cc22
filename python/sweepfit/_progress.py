"""Progress of long work in a terminal or a notebook: one line on stderr,
rewritten in place, shown once the work has run half a second."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, Union

from . import _core

Callback = Callable[[str, int, int, float], None]


class _Line:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, stage: str, iteration: int, active: int, best: float) -> None:
        if time.monotonic() - self.started < 0.5:
            return
        elapsed = time.monotonic() - self.started
        text = _core.progress_text(stage, iteration, active, best)
        sys.stderr.write(f"\r{elapsed:5.1f}s {text}\033[K")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class reporter:
    """``with reporter(progress) as cb:`` gives the callback to hand to the
    core: ``progress`` True (a line on stderr), False (none), None (a line
    where someone watches: a terminal or a notebook) or a callable
    ``(stage, iteration, active, best)``."""

    def __init__(self, progress: Union[bool, None, Callback]) -> None:
        self.line: Optional[_Line] = None
        if callable(progress):
            self.callback: Optional[Callback] = progress
        elif progress or (progress is None and _interactive()):
            self.line = _Line()
            self.callback = self.line
        else:
            self.callback = None

    def __enter__(self) -> Optional[Callback]:
        return self.callback

    def __exit__(self, *exc: object) -> None:
        if self.line is not None:
            self.line.close()
