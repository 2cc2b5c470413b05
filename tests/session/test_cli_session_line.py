"""``iso15118 secc`` prints one SESSION line per session with that session's own authorization,
also when sessions overlap (an EIM and a PnC session at the same time)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]


def test_overlapping_sessions_report_their_own_authorization(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    pki = str(tmp_path / "pki")
    secc = subprocess.Popen([*CMD, "secc", "--profile", "wall-connector", "--port", "0", "--pnc", "--pki", pki],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        base = [*CMD, "evcc", "--service", "AC_BPT", "--port", port, "--pki", pki]
        # the PnC session is long (6 loops), the EIM one starts while it runs and ends first
        pnc = subprocess.Popen([*base, "--pnc", "--loops", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=REPO)
        eim = subprocess.run([*base, "--loops", "1"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        pnc_out, pnc_err = pnc.communicate(timeout=120)
        assert eim.returncode == 0 and "auth=EIM" in eim.stdout, eim.stdout + eim.stderr
        assert pnc.returncode == 0 and "auth=PnC" in pnc_out, pnc_out + pnc_err
        lines = [secc.stdout.readline().strip(), secc.stdout.readline().strip()]
        print(lines)
        assert all(ln.startswith("SESSION") and " PASS " in ln for ln in lines), lines
        assert sorted(ln.split(" auth=")[1].split()[0] for ln in lines) == ["EIM", "PnC"], lines
    finally:
        secc.kill()
        secc.wait(10)
