"""``iso15118 secc`` / ``iso15118 evcc --protocol din``: the commands run a DIN session over TCP
(dc-bidi and the truck), and refuse DIN over TLS before connecting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]


def test_cli_din_session() -> None:
    # no TLS, so no PKI: the shared grammar cache stays (a cold one costs seconds per process),
    # and the EV's timeouts are relaxed (this proves the commands' plumbing, not timing)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    secc = subprocess.Popen([*CMD, "secc", "--profile", "dc-bidi", "--port", "0", "--no-tls", "--once"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY none"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        ev = subprocess.run([*CMD, "evcc", "--profile", "cybertruck-rwd", "--protocol", "din", "--no-tls", "--port", port,
                             "--loops", "2", "--timeout-scale", "5"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        assert ev.returncode == 0 and ev.stdout.startswith("PASS") and "protocol=din" in ev.stdout, ev.stdout + ev.stderr
        assert "loops=2" in ev.stdout
        line = secc.stdout.readline().strip()
        assert line.startswith("SESSION 1 PASS") and "protocol=din" in line and "auth=EIM" in line, line
    finally:
        secc.kill()
        secc.wait(10)


def test_cli_refuses_din_over_tls(tmp_path: Path) -> None:
    import argparse

    from iso15118.sim.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for role in ("evcc", "secc"):
        args = parser.parse_args([role, "--protocol", "din", "--pki", str(tmp_path / "pki")])  # TLS: the default
        with pytest.raises(SystemExit, match="--no-tls"):
            args.func(args)
    assert not (tmp_path / "pki").exists()  # refused before anything was made
    args = parser.parse_args(["evcc", "--protocol", "din,iso20"])  # DIN is then only left out of the TLS offer
    from iso15118.sim.cli import _protocol_configs, _protocols

    assert [p.value for p in _protocols(args)] == ["din", "-20"] and _protocol_configs(args, "evcc")
