"""Shared fixtures: the repository, its shared data and the command line
built from the same sources, to compare the package against."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real data beside the clone; the tests that read it fail without it."""
    data = ROOT.parent / "shared" / "data"
    if not data.is_dir():
        pytest.fail(f"the shared data folder is missing: expected {data} beside the clone")
    return data


@pytest.fixture(scope="session")
def cli() -> Path:
    """The sweepfit binary: $SWEEPFIT_BIN, else built with cargo here."""
    given = os.environ.get("SWEEPFIT_BIN")
    if given:
        return Path(given)
    out = subprocess.run(
        ["cargo", "build", "--release", "--bin", "sweepfit", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            return Path(msg["executable"])
    pytest.fail("cargo built no sweepfit binary")


@pytest.fixture
def run_cli(cli):
    def run(*args, check=True):
        p = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"sweepfit {' '.join(map(str, args))} failed:\n{p.stderr}")
        return p
    return run


@pytest.fixture(scope="session")
def sweep_csv(tmp_path_factory, cli) -> Path:
    """The demo sweep (looplm20, seed 1) as the command line writes it."""
    path = tmp_path_factory.mktemp("sweep") / "sweep.csv"
    subprocess.run([str(cli), "simulate", "--seed", "1", "--out", str(path)], check=True,
                   capture_output=True)
    return path
