"""Type stubs of the extension module (the Rust core). The public API is
the ``sweepfit`` package; these are its building blocks."""

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class SweepfitError(ValueError):
    """Bad input or a fit that cannot be done: the command line's message."""

Column = Union[npt.NDArray[np.float64], List[str]]
Source = Union[Sequence[Tuple[str, Column]], str]
ProgressCallback = Callable[[str, int, int, float], None]

class Fit:
    def report_json(self) -> str: ...
    def summary(self) -> str: ...
    def messages(self) -> List[str]: ...
    def param_names(self) -> List[str]: ...
    def has_data(self) -> bool: ...
    def rows(
        self,
    ) -> Tuple[
        List[Tuple[str, List[str]]],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
    ]: ...
    def predict(
        self, columns: Source, origin: str, schedule: Optional[Source] = None
    ) -> Tuple[
        npt.NDArray[np.float64],
        List[Tuple[str, npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    ]: ...
    def predict_at(
        self, at: Sequence[Tuple[str, Sequence[float]]], schedule: Optional[Source] = None
    ) -> Tuple[List[str], List[List[str]], List[str]]: ...
    def panels(
        self, columns: Optional[Source] = None, origin: str = "the data",
        schedule: Optional[Source] = None,
    ) -> str: ...
    def write_json(self, path: str, overwrite: bool) -> None: ...
    def with_bootstrap(self, shards: Sequence[str], request: str, seconds: float) -> Fit: ...

class Law:
    def __init__(self, law: Optional[str] = None, law_file: Optional[str] = None) -> None: ...
    name: str
    description: str
    formula: str
    text: str
    variables: List[Tuple[str, str]]
    parameters: Optional[List[str]]
    def evaluate(
        self,
        columns: Source,
        origin: str,
        params: Sequence[Tuple[str, float]],
        vars: Sequence[Tuple[str, str]],
        schedule: Optional[Source] = None,
    ) -> npt.NDArray[np.float64]: ...

def fit(
    columns: Source,
    origin: str,
    request: str,
    progress: Optional[ProgressCallback] = None,
    schedule: Optional[Source] = None,
) -> Fit: ...
def load(path: str) -> Fit: ...
def loads(text: str, messages: Sequence[str]) -> Fit: ...
def bootstrap_shard(
    columns: Source,
    origin: str,
    request: str,
    fit_json: str,
    start: int,
    end: int,
    schedule: Optional[Source] = None,
) -> str: ...
def evaluate(
    columns: Source,
    origin: str,
    request: str,
    progress: Optional[ProgressCallback] = None,
    schedule: Optional[Source] = None,
) -> Tuple[str, List[str]]: ...
def compare(
    columns: Source,
    origin: str,
    laws: Sequence[str],
    law_files: Sequence[str],
    request: str,
    progress: Optional[ProgressCallback] = None,
    schedule: Optional[Source] = None,
) -> Tuple[str, List[str]]: ...
def compare_sources(
    laws: Sequence[str], law_files: Sequence[str], request: str
) -> List[Tuple[str, str, str]]: ...
def compare_law(
    columns: Source,
    origin: str,
    law: Tuple[str, str, str],
    request: str,
    schedule: Optional[Source] = None,
) -> Tuple[str, List[str]]: ...
def compare_merge(parts: Sequence[str], request: str, seconds: float) -> str: ...
def simulate_preset(
    options: str, seed: int
) -> Tuple[List[str], List[Tuple[str, npt.NDArray[np.float64]]], str]: ...
def simulate_law(
    law: Optional[str],
    law_file: Optional[str],
    params: Sequence[Tuple[str, float]],
    at: Sequence[Tuple[str, Sequence[float]]],
    vars: Sequence[Tuple[str, str]],
    noise: float,
    seed: int,
) -> Tuple[List[str], List[List[str]], str]: ...
def laws() -> List[Tuple[str, str, str]]: ...
def devices() -> str: ...
def progress_text(stage: str, iteration: int, active: int, best: float) -> str: ...
