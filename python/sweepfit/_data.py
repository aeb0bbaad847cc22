"""Data from Python as the columns the Rust core reads.

Numeric columns are handed over as float64 NumPy arrays (float64 ones as
they are), which the core copies once as numbers; anything else (labels,
a ``split`` column) travels as text, the way a CSV's cells would. Rows are
named by their position, counting from 0.
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Tuple, Union

import numpy as np

Columns = List[Tuple[str, Union[np.ndarray, List[str]]]]
Source = Union[Columns, str]


def _text(values: Any) -> List[str]:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            out.append("")
        else:
            out.append(str(v))
    return out


def _column(values: Any) -> Union[np.ndarray, List[str]]:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, got shape {a.shape}")
    if a.dtype == np.float64:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "iuf" or a.dtype.kind == "b":
        return np.ascontiguousarray(a, dtype=np.float64)
    return _text(a.tolist())


def numeric(df: Any) -> Any:
    """A DataFrame from the core's text cells with its columns of numbers
    as numbers."""
    import pandas as pd

    for c in df.columns:
        try:
            df[c] = pd.to_numeric(df[c])
        except (ValueError, TypeError):
            pass
    return df


def columns(data: Any) -> Tuple[Source, str]:
    """The columns of ``data`` and the name messages give it.

    ``data`` is a pandas or polars DataFrame, a mapping of column names to
    arrays (or lists), or the path of a CSV file (read by sweepfit's own
    reader, as the command line reads it).
    """
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), os.fspath(data)
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        cols: Columns = []
        for name in data.columns:
            s = data[name]
            if s.dtype.kind in "iufb":
                cols.append((str(name), _column(s.to_numpy())))
            else:
                cols.append((str(name), _text(s.tolist())))
        return cols, "the data frame"
    if module == "polars" and hasattr(data, "get_column"):
        cols = []
        for name in data.columns:
            s = data.get_column(name)
            if s.dtype.is_numeric():
                cols.append((str(name), _column(s.cast(float).to_numpy())))
            else:
                cols.append((str(name), _text(s.to_list())))
        return cols, "the data frame"
    if isinstance(data, Mapping):
        return [(str(k), _column(v)) for k, v in data.items()], "the data"
    raise TypeError(
        "data must be a pandas or polars DataFrame, a dict of arrays, or the "
        f"path of a CSV file, not {type(data).__name__}"
    )


def schedule(schedules: Any) -> Union[Source, None]:
    """The runs' schedules as the core reads them: None, the path of a CSV
    (``run,step,lr`` or a manifest ``run,file``), or the columns of a
    DataFrame or dict of arrays ``run, step, lr``."""
    if schedules is None:
        return None
    try:
        return columns(schedules)[0]
    except TypeError:
        raise TypeError(
            "schedule must be a pandas or polars DataFrame, a dict of arrays, or the path "
            f"of a CSV file, not {type(schedules).__name__}"
        ) from None
