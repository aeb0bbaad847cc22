#!/usr/bin/env bash
# Every test of sweepfit: the crate's (cargo test), then the Python
# package's (pytest), the package installed with `pip install ./python`
# into a virtual environment under target/ (made on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

# Test binaries probe GPU adapters without the command line's start-up, and
# Mesa's device-select layer then prints "error: XDG_RUNTIME_DIR is invalid"
# on machines without a display server: noise in the log, not a failure.
# (The tests of that start-up remove the variable themselves.)
export NODEVICE_SELECT="${NODEVICE_SELECT-1}"

cargo test --release

venv=target/python-venv
if ! "$venv/bin/python" -c "" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "./python[test]"
# The command line the Python tests compare against: the one just tested.
SWEEPFIT_BIN="$(cargo metadata --format-version 1 --no-deps \
    | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/sweepfit"
export SWEEPFIT_BIN
"$venv/bin/python" -m pytest python/tests -q -p no:cacheprovider
