"""The example scripts run as written."""

import subprocess
import sys


def test_quickstart_runs(repo, tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, str(repo / "examples" / "quickstart.py"), "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "R² 0.99" in p.stdout
    for name in ("grid.png", "residuals.png", "fit.json"):
        assert (out / name).stat().st_size > 1000, name
