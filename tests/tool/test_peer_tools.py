"""The peer's launcher and driver fail like tools too: not set up -> 3, a bad option -> 2, one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.peer import JOSEV


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(JOSEV), *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_not_set_up(tmp_path: Path) -> None:
    env = dict(os.environ, ISO15118_PEER_HOME=str(tmp_path / "nothing-here"))
    proc = run(["secc", "--port", "1"], env, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"josev: the peer is not set up in {tmp_path / 'nothing-here'} (run tools/peer/setup)"


def test_bad_options(tmp_path: Path, peer_env: dict[str, str]) -> None:
    proc = run(["secc", "--services", "DC,WARP"], peer_env, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("josev: --services: unknown WARP")
    proc = run(["evcc", "--service", "AC_BPT", "--protocol", "din", "--port", "1"], peer_env, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "josev: BPT services exist only in ISO 15118-20 (--protocol iso20)"
