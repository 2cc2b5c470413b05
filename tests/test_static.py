"""Typed for real: strict mypy (configured in pyproject.toml: ``iso15118/`` and
``conformance/``, generated message modules included) and ruff over the whole tree run with
the suite, and any finding fails it.  Neither tool missing is a skip: it is a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=1200)


def test_mypy_strict_is_clean() -> None:
    proc = _run("mypy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, "mypy (strict, pyproject.toml) found problems:\n" + out[-8000:]
    assert "Success: no issues found" in out


def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", ".")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, "ruff found problems:\n" + out[-8000:]
