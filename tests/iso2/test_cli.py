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
def test_cli_truck_falls_back_to_iso2(profile: str, family: str) -> None:
    # no TLS, so no PKI: the shared grammar cache stays (a cold one costs seconds per process), and
    # the EV's timeouts are relaxed: this proves the commands' plumbing, not timing
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    secc = subprocess.Popen([*CMD, "secc", "--profile", profile, "--port", "0", "--no-tls", "--protocol", "iso2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY none"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        base = [*CMD, "evcc", "--profile", "cybertruck-awd", "--port", port, "--no-tls", "--loops", "3",
                "--timeout-scale", "5"]
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


def test_cli_iso2_pnc_over_tls12(tmp_path: Path) -> None:
    """A -2 lab PKI makes the commands speak -2 over TLS 1.2 (where -20 cannot run); ``--pnc``: Plug & Charge."""
    from iso15118.security.pki import PkiProfile, create_pki

    pki = tmp_path / "pki2"
    create_pki(pki, "secp256r1", profile=PkiProfile.ISO2)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    secc = subprocess.Popen([*CMD, "secc", "--profile", "wall-connector", "--port", "0", "--pki", str(pki), "--pnc"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        ev = subprocess.run([*CMD, "evcc", "--profile", "cybertruck-awd", "--port", port, "--pki", str(pki), "--pnc",
                             "--loops", "3", "--timeout-scale", "5"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        print(ev.stdout)
        assert ev.returncode == 0 and "PASS" in ev.stdout, ev.stdout + ev.stderr
        assert "protocol=iso2" in ev.stdout and "tls=TLSv1.2" in ev.stdout and "auth=PnC" in ev.stdout
        line = secc.stdout.readline().strip()
        assert line.startswith("SESSION") and " PASS " in line and "auth=PnC" in line and "protocol=iso2" in line, line
    finally:
        secc.kill()
        secc.wait(10)
