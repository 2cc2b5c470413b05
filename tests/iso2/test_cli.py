"""``iso15118 secc --protocol iso2`` and ``iso15118 evcc``: the simulators speak -2 from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]


@pytest.mark.parametrize("profile,family", [("dc-bidi", "DC")])
def test_cli_truck_falls_back_to_iso2(tmp_path: Path, profile: str, family: str) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    secc = subprocess.Popen([*CMD, "secc", "--profile", profile, "--port", "0", "--no-tls", "--protocol", "iso2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY none"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        base = [*CMD, "evcc", "--profile", "cybertruck-awd", "--port", port, "--no-tls", "--loops", "3"]
        ok = subprocess.run(base, capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        print(ok.stdout)
        assert ok.returncode == 0 and "PASS" in ok.stdout and "protocol=iso2" in ok.stdout and "loops=3" in ok.stdout, \
            ok.stdout + ok.stderr
        line = secc.stdout.readline().strip()
        assert line.startswith("SESSION") and " PASS " in line and "protocol=iso2" in line, line
        # an EV that offers only -20 gets Failed_NoNegotiation from a -2-only charger
        only20 = subprocess.run([*base, "--protocol", "iso20"], capture_output=True, text=True, env=env, cwd=REPO,
                                timeout=90)
        assert only20.returncode != 0 and "FAIL" in only20.stdout and "Failed_NoNegotiation" in only20.stdout, \
            only20.stdout + only20.stderr
    finally:
        secc.kill()
        secc.wait(10)
