"""Interoperability with Josev (PyPI ``iso15118`` 0.31.2) through the shared peer scripts.

Josev runs in its own venv (``../shared/peer/setup``), never in ours.  Two tests of two
sessions each (ours against Josev's SECC in parallel) to stay under two minutes:

* Josev's EVCC against our SECC: DC_BPT (dynamic, TLS 1.3) and AC_BPT (scheduled, TCP).
* Our EVCC against Josev's SECC: DC_BPT (dynamic, TLS 1.3) and AC_BPT (scheduled, TCP).

Each must reach SessionStop with no error on either side.  Josev's own SECC answers slowly
on a loaded 2-core machine (median 0.6 to 1.5 s per message seen here, a cold JVM codec), so
our EVCC runs (message timeouts and loop timers) with ``timeout_scale=5`` against it; every other setting is the standard one.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from iso15118.security.tls import JOSEV_COMPAT, client_context, profile_of, server_context
from iso15118.session import ControlMode, EnergyService, EvccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.sim import make_ev, make_evse

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ISO15118_SHARED") or REPO.parent / "shared")
PEER = SHARED / "peer"


def _setup_peer() -> tuple[Path | None, str]:
    """The peer venv, running ``setup`` (from a neutral directory) when needed."""
    if not (PEER / "setup").exists():
        return None, f"no peer scripts at {PEER}"
    if shutil.which("java") is None and os.geteuid() != 0:
        return None, "java is not installed and cannot be installed without root"
    venv = os.environ.get("ISO15118_PEER_VENV", "").strip()
    if venv and (Path(venv) / "bin" / "python").exists():
        return Path(venv), ""
    # setup imports ``iso15118`` with the working directory on sys.path: run it elsewhere so
    # it cannot pick up this project's package of the same name.
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [str(PEER / "setup")], cwd=cwd, capture_output=True, text=True, timeout=600
        )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None, f"peer setup failed ({proc.returncode}): {proc.stderr.strip()[-400:]}"
    return Path(lines[-1]), ""


@pytest.fixture(scope="module")
def peer_env() -> dict[str, str]:
    venv, reason = _setup_peer()
    if venv is None:
        print(f"interop skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    if shutil.which("java") is None:
        pytest.skip("java not on PATH after peer setup")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    home = os.environ.get("ISO15118_PEER_HOME") or str(Path.home() / ".cache" / "iso15118-peer")
    env["ISO15118_PEER_HOME"] = home
    return env


@pytest.fixture(scope="module")
def josev_pki(peer_env: dict[str, str]) -> Path:
    pki = Path(peer_env["ISO15118_PEER_HOME"]) / "pki" / "iso15118_2"
    if not (pki / "certs" / "cpoCertChain.pem").exists():
        pytest.skip(f"Josev test PKI missing under {pki}")
    return pki


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def _josev_evcc(env: dict[str, str], port: int, service: str, control: str, tls: str) -> tuple[int, str, str]:
    cwd = tempfile.mkdtemp(prefix="josev-evcc-")
    proc = await asyncio.create_subprocess_exec(
        str(PEER / "josev-evcc"),
        "--port", str(port), "--service", service, "--control", control, "--tls", tls,
        "--loops", "3", "--no-linger", "--timeout", "100",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    shutil.rmtree(cwd, ignore_errors=True)
    return proc.returncode or 0, out.decode(), err.decode()[-3000:]


def test_josev_evcc_against_our_secc(peer_env: dict[str, str], josev_pki: Path) -> None:
    """Josev EVCC -> our SECC: DC_BPT dynamic over TLS 1.3, AC_BPT scheduled over TCP."""
    certs, keys = josev_pki / "certs", josev_pki / "private_keys"
    tls = server_context(
        certs / "cpoCertChain.pem",
        keys / "seccLeaf.key",
        keys / "seccLeafPassword.txt",
        trust_anchors=[certs / "oemRootCACert.pem"],
        profile=JOSEV_COMPAT,
    )
    print(f"TLS profile of our SECC: {profile_of(tls)} (compatibility: Josev's P-256 PKI)")
    assert profile_of(tls) == "josev-compat"

    async def scenario() -> None:
        dc = await start_secc(lambda: make_evse("dc-bidi"), "::1", _free_port(), tls, linger=1.0)
        ac = await start_secc(lambda: make_evse("wall-connector"), "::1", _free_port(), None, linger=1.0)
        t0 = time.monotonic()
        # one after the other: Josev's EVCC enforces its 0.5 s charge-loop timeout on its own
        # round trip (its JVM codec included), which two JVMs on two cores can exceed
        rc_dc, out_dc, err_dc = await _josev_evcc(peer_env, dc.port, "DC_BPT", "dynamic", "tls13")
        rc_ac, out_ac, err_ac = await _josev_evcc(peer_env, ac.port, "AC_BPT", "scheduled", "none")
        print(f"josev-evcc DC_BPT: {out_dc.strip()}")
        print(f"josev-evcc AC_BPT: {out_ac.strip()}")
        assert rc_dc == 0 and out_dc.startswith("PASS"), out_dc + err_dc
        assert rc_ac == 0 and out_ac.startswith("PASS"), out_ac + err_ac
        assert "tls=TLSv1.3" in out_dc and "service=DC_BPT" in out_dc and "control=dynamic" in out_dc
        assert "service=AC_BPT" in out_ac and "control=scheduled" in out_ac
        r_dc = (await dc.wait_sessions(1, 20))[0]
        r_ac = (await ac.wait_sessions(1, 20))[0]
        for r in (r_dc, r_ac):
            print(f"our SECC: ok={r.ok} reason={r.reason!r} rx={r.rx} tx={r.tx} tls={r.tls_version} {r.duration:.1f}s")
            assert r.ok, r.reason
            assert r.rx == r.tx
        assert r_dc.tls_version == "TLSv1.3"
        m = re.search(r"messages=(\d+)", out_dc)
        assert m and int(m.group(1)) == r_dc.rx + r_dc.tx
        print(f"both sessions in {time.monotonic() - t0:.1f}s")
        dc.close()
        ac.close()

    asyncio.run(scenario())


async def _josev_secc(env: dict[str, str], port: int, services: str, tls: str) -> asyncio.subprocess.Process:
    cwd = tempfile.mkdtemp(prefix="josev-secc-")
    proc = await asyncio.create_subprocess_exec(
        str(PEER / "josev-secc"),
        "--port", str(port), "--services", services, "--auth", "EIM", "--tls", tls, "--once",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    assert line.startswith("READY"), line
    return proc


def test_our_evcc_against_josev_secc(peer_env: dict[str, str], josev_pki: Path) -> None:
    """Our EVCC -> Josev SECC: DC_BPT dynamic over TLS 1.3, AC_BPT scheduled over TCP."""
    certs, keys = josev_pki / "certs", josev_pki / "private_keys"
    tls = client_context(
        [certs / "v2gRootCACert.pem"],
        certs / "oemCertChain.pem",
        keys / "oemLeaf.key",
        keys / "oemLeafPassword.txt",
        profile=JOSEV_COMPAT,
    )
    print(f"TLS profile of our EVCC: {profile_of(tls)} (compatibility: Josev's P-256 PKI)")
    assert profile_of(tls) == "josev-compat"

    def config(service: EnergyService, mode: ControlMode) -> EvccConfig:
        return EvccConfig(
            service=service, control_mode=mode, max_loops=3, pre_charge_give_up=5, timeout_scale=5.0
        )

    async def scenario() -> None:
        p_dc, p_ac = _free_port(), _free_port()
        dc_proc, ac_proc = await asyncio.gather(
            _josev_secc(peer_env, p_dc, "DC_BPT", "tls13"), _josev_secc(peer_env, p_ac, "AC_BPT", "none")
        )
        try:
            t0 = time.monotonic()
            r_dc, r_ac = await asyncio.gather(
                run_evcc(make_ev("cybertruck-awd"), "::1", p_dc, tls, config=config(EnergyService.DC_BPT, ControlMode.DYNAMIC)),
                run_evcc(make_ev("cybertruck-awd"), "::1", p_ac, None, config=config(EnergyService.AC_BPT, ControlMode.SCHEDULED)),
            )
            for r in (r_dc, r_ac):
                print(f"our EVCC: ok={r.ok} reason={r.reason!r} rx={r.rx} tx={r.tx} tls={r.tls_version} {r.duration:.1f}s loops={r.loops}")
            assert r_dc.ok, r_dc.reason
            assert r_ac.ok, r_ac.reason
            assert r_dc.tls_version == "TLSv1.3"
            assert r_dc.loops == 3 and r_ac.loops == 3
            verdicts = []
            for proc in (dc_proc, ac_proc):
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
                verdicts.append(line)
                print(f"josev-secc: {line}")
            assert " PASS " in verdicts[0] and "service=DC_BPT" in verdicts[0] and "control=dynamic" in verdicts[0], verdicts[0]
            assert " PASS " in verdicts[1] and "service=AC_BPT" in verdicts[1] and "control=scheduled" in verdicts[1], verdicts[1]
            print(f"both sessions in {time.monotonic() - t0:.1f}s")
        finally:
            for proc in (dc_proc, ac_proc):
                if proc.returncode is None:
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()

    asyncio.run(scenario())
