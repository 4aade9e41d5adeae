"""The whole tree passes the linter: ruff with ruff.toml (pyflakes, pycodestyle at 120 columns, a
docstring on every module), as `make test` runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tree_is_lint_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert "No module named ruff" not in res.stderr, "ruff is not installed: run make setup"
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
