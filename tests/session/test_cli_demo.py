"""The secc / evcc sub-commands as processes, SDP discovery, and the V2H demo."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from iso15118.session import EnergyService, EvccConfig
from iso15118.session.runner import run_evcc, run_secc
from iso15118.sim import make_ev, make_evse
from iso15118.sim.demo import run_demo

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]


def _free(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET6, kind) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def test_secc_and_evcc_commands(tmp_path: Path) -> None:
    port = _free()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "iso15118"]
    secc = subprocess.Popen(
        [*cmd, "secc", "--profile", "dc-bidi", "--port", str(port), "--once", "--pki", str(tmp_path / "pki")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        evcc = subprocess.run(
            [*cmd, "evcc", "--profile", "cybertruck-awd", "--service", "DC_BPT", "--port", str(port), "--loops", "3",
             "--pki", str(tmp_path / "pki")],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
        assert evcc.returncode == 0, evcc.stdout + evcc.stderr
        assert evcc.stdout.startswith("PASS") and "tls=TLSv1.3" in evcc.stdout and "loops=3" in evcc.stdout
        line = secc.stdout.readline()
        assert line.startswith("SESSION 1 PASS"), line
        assert secc.wait(20) == 0
    finally:
        if secc.poll() is None:
            secc.kill()


def test_evcc_discovers_the_secc_with_sdp() -> None:
    sdp_port = _free(socket.SOCK_DGRAM)
    tcp_port = _free()

    async def main() -> object:
        task = asyncio.create_task(
            run_secc(lambda: make_evse("wall-connector"), "::1", tcp_port, None, sdp=True, sdp_port=sdp_port, linger=0.1)
        )
        await asyncio.sleep(0.3)
        try:
            return await run_evcc(
                make_ev("cybertruck-awd"),
                None,
                None,
                None,
                config=EvccConfig(service=EnergyService.AC_BPT, max_loops=2, loop_interval=0.05),
                discover=True,
                sdp_address="::1",
                sdp_port=sdp_port,
            )
        finally:
            task.cancel()

    r = asyncio.run(main())
    assert r.ok and r.peer == ("::1", tcp_port)  # type: ignore[attr-defined]


def test_v2h_demo_over_tls13() -> None:
    out = io.StringIO()
    res = asyncio.run(
        run_demo(speed=120.0, outage_at=1.5, duration=4.0, console=Console(file=out, width=140), live=False)
    )
    text = out.getvalue()
    assert res.ok, res.reason
    assert res.tls == "TLSv1.3"
    assert res.v2h_switch_s is not None and res.v2h_switch_s < 1.0
    assert res.exported_kwh > 0 and res.charged_kwh > 0
    assert "grid outage" in text and "exported to home" in text and "outlets disabled" in text


def test_secc_and_evcc_commands_with_pnc_and_contract_installation(tmp_path: Path) -> None:
    port = _free()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "iso15118"]
    pki = str(tmp_path / "pki")
    secc = subprocess.Popen(
        [*cmd, "secc", "--profile", "wall-connector", "--port", str(port), "--once", "--pnc", "--pki", pki,
         "--metering-confirmation", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + (secc.stderr.read() if secc.poll() is not None else "")
        evcc = subprocess.run(
            [*cmd, "evcc", "--service", "AC_BPT", "--port", str(port), "--loops", "4", "--install-contract",
             "--pki", pki],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
        assert evcc.returncode == 0, evcc.stdout + evcc.stderr
        assert evcc.stdout.startswith("PASS") and "auth=PnC" in evcc.stdout and "emaid=DEPNXC123456789" in evcc.stdout
        line = secc.stdout.readline()
        assert line.startswith("SESSION 1 PASS auth=PnC"), line
        assert secc.wait(20) == 0
    finally:
        if secc.poll() is None:
            secc.kill()


@pytest.mark.parametrize("install", [False, True], ids=["contract", "install-contract"])
def test_v2h_demo_with_pnc(install: bool) -> None:
    out = io.StringIO()
    res = asyncio.run(
        run_demo(speed=120.0, outage_at=1.5, duration=4.0, console=Console(file=out, width=200), live=False,
                 pnc=True, install_contract=install)
    )
    text = out.getvalue()
    assert res.ok, res.reason
    assert res.authorization == "PnC" and res.emaid == "DEPNXC123456789"
    assert res.contract_installed is install and res.metering_confirmations == 1
    assert "Plug & Charge (PnC)" in text and "MeteringConfirmationReq" in text
    assert ("CertificateInstallationReq" in text) is install
    assert res.exported_kwh > 0


def test_v2h_demo_says_eim() -> None:
    out = io.StringIO()
    res = asyncio.run(run_demo(speed=120.0, outage_at=1.0, duration=3.0, console=Console(file=out, width=200), live=False))
    assert res.ok and res.authorization == "EIM" and "EIM (external identification means)" in out.getvalue()
