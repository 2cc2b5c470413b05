"""Strict mode (``tests/conftest.py``) does what it says: a skipped proof fails the run, a test marked
``optional`` may still skip, and the proof counts are printed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SAMPLE = '''
import pytest
from tests.proofs import record

@pytest.fixture
def tool():
    pytest.skip("the tool is not installed")

def test_proof_needing_a_tool(tool):
    pass

def test_proof_skipping_itself():
    pytest.skip("cannot run here")

@pytest.mark.skipif(True, reason="marker skip")
def test_marked_skip():
    pass

@pytest.mark.optional("not a proof")
def test_optional():
    pytest.skip("optional thing missing")

def test_runs():
    record("sample proofs", 3)
'''


def run_sample(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "ISO15118_STRICT"}
    env["PYTHONPATH"] = str(REPO)
    if strict:
        env["ISO15118_STRICT"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, str(tmp_path / "test_sample.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_strict_turns_skips_into_failures(tmp_path: Path) -> None:
    proc = run_sample(tmp_path, strict=True)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    # the skip in the test body fails it; the fixture's and the marker's skips (setup) become errors;
    # the optional test still skips
    assert "1 failed, 1 passed, 1 skipped, 2 errors" in out, out
    assert "Skip reason: the tool is not installed" in out and "Skip reason: cannot run here" in out
    assert "Skip reason: marker skip" in out
    assert "3  sample proofs" in out  # the proof counts at the end


def test_without_strict_skips_stay_skips(tmp_path: Path) -> None:
    proc = run_sample(tmp_path, strict=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 4 skipped" in proc.stdout, proc.stdout
