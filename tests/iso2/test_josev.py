"""ISO 15118-2 with Josev (PyPI ``iso15118`` 0.31.2, its own venv, ``tools/peer/josev``), over TCP.

* Josev's EVCC (``--protocol iso2``) against our SECC serving every registered protocol: DC
  (dc-bidi) and AC (wall connector), one after the other.
* Our EVCC (the truck, offering -20 first, then -2) against Josev's SECC serving only -2 (so the
  truck falls back to -2 over the wire): DC and AC, in parallel.

Each session must reach SessionStop(Terminate) answered OK on both sides, with the same number of
messages seen by both.  Josev's SECC answers slowly on a loaded 2-core machine (hundreds of ms per
message, a JVM codec): our EVCC's message timeouts are relaxed with ``timeout_scale=8`` (the
0.25 s CurrentDemand timeout becomes 2 s, what Josev's own EVCC waits); every other setting is the
standard one.  ``pre_charge_give_up``: Josev's simulated DC EVSE does not reach our battery voltage.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
import time

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.session.evcc import EvccConfig
from iso15118.session.events import MessageReceived, SendMessage
from iso15118.session.iso2 import Iso2EvccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.sim import make_ev, make_evse
from tests.peer import josev
from tests.proofs import PEER_SESSIONS, record

pytestmark = [pytest.mark.timeout(240), pytest.mark.peer]


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def _josev_evcc(env: dict[str, str], port: int, service: str) -> tuple[int, str, str]:
    cwd = tempfile.mkdtemp(prefix="josev-evcc-")
    proc = await asyncio.create_subprocess_exec(
        *josev("evcc"), "--port", str(port), "--service", service, "--protocol", "iso2", "--tls", "none",
        "--loops", "3", "--no-linger", "--timeout", "100",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    shutil.rmtree(cwd, ignore_errors=True)
    return proc.returncode or 0, out.decode(), err.decode()[-3000:]


def test_josev_evcc_against_our_secc_iso2(peer_env: dict[str, str]) -> None:
    """Josev EVCC -> our SECC, -2 DC and -2 AC over TCP, to SessionStop on both sides."""

    async def scenario() -> None:
        dc = await start_secc(lambda: make_evse("dc-bidi"), "::1", _free_port(), None, linger=1.0, record_events=True)
        ac = await start_secc(lambda: make_evse("wall-connector"), "::1", _free_port(), None, linger=1.0,
                              record_events=True)
        try:
            for server, service in ((dc, "DC"), (ac, "AC")):
                rc, out, err = await _josev_evcc(peer_env, server.port, service)
                print(f"josev-evcc -2 {service}: {out.strip()}")
                assert rc == 0 and out.startswith("PASS"), out + err
                assert "protocol=ISO_15118_2" in out and "final=SessionStopRes" in out and "auth=EIM_V2" in out
                r = (await server.wait_sessions(1, 20))[0]
                print(f"our SECC: ok={r.ok} reason={r.reason!r} protocol={r.protocol} rx={r.rx} tx={r.tx} {r.duration:.1f}s")
                assert r.ok and r.reason == "SessionStop Terminate", r.reason
                assert r.protocol is AppProtocol.ISO2 and r.rx == r.tx
                m = re.search(r"messages=(\d+)", out)
                assert m and int(m.group(1)) == r.rx + r.tx
                names = [e.name for _, e in r.events if isinstance(e, MessageReceived)]
                loop = "CurrentDemandReq" if service == "DC" else "ChargingStatusReq"
                assert names.count(loop) >= 3 and names[-1] == "SessionStopReq"
                if service == "DC":
                    assert {"CableCheckReq", "PreChargeReq", "WeldingDetectionReq"} <= set(names)
            record(PEER_SESSIONS, 2)
        finally:
            dc.close()
            ac.close()

    asyncio.run(scenario())


async def _josev_secc(env: dict[str, str], port: int, service: str) -> asyncio.subprocess.Process:
    cwd = tempfile.mkdtemp(prefix="josev-secc-")
    proc = await asyncio.create_subprocess_exec(
        *josev("secc"), "--port", str(port), "--services", service, "--auth", "EIM", "--tls", "none",
        "--protocols", "ISO_15118_2", "--once",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    assert line.startswith("READY"), line
    return proc


def test_our_evcc_against_josev_secc_iso2(peer_env: dict[str, str]) -> None:
    """Our EVCC -> Josev SECC (-2 only), DC and AC over TCP, to SessionStop on both sides."""

    def configs(family: Family) -> dict[AppProtocol, object]:
        return {AppProtocol.ISO2: Iso2EvccConfig(family=family, max_loops=3, pre_charge_give_up=5, timeout_scale=8.0)}

    async def scenario() -> None:
        p_dc, p_ac = _free_port(), _free_port()
        procs = await asyncio.gather(_josev_secc(peer_env, p_dc, "DC"), _josev_secc(peer_env, p_ac, "AC"))
        try:
            t0 = time.monotonic()
            results = await asyncio.gather(
                run_evcc(make_ev("cybertruck-awd"), "::1", p_dc, None, config=EvccConfig(timeout_scale=5.0),
                         configs=configs(Family.DC), record_events=True),  # type: ignore[arg-type]
                run_evcc(make_ev("cybertruck-awd"), "::1", p_ac, None, config=EvccConfig(timeout_scale=5.0),
                         configs=configs(Family.AC), record_events=True),  # type: ignore[arg-type]
            )
            for r, family in zip(results, (Family.DC, Family.AC)):
                print(f"our EVCC -2 {family.value}: ok={r.ok} reason={r.reason!r} protocol={r.protocol} rx={r.rx} "
                      f"tx={r.tx} loops={r.loops} {r.duration:.1f}s")
                assert r.ok and r.reason == "SessionStop Terminate", r.reason
                assert r.protocol is AppProtocol.ISO2 and r.rx == r.tx and r.loops == 3
                sent = [e.name for _, e in r.events if isinstance(e, SendMessage)]
                assert sent[0] == "supportedAppProtocolReq" and sent[-1] == "SessionStopReq"
            for proc, family in zip(procs, (Family.DC, Family.AC)):
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
                print(f"josev-secc -2 {family.value}: {line}")
                assert line.startswith("SESSION") and " PASS " in line and "protocol=ISO_15118_2" in line, line
                assert "last_rx=SessionStopReq" in line
                rx = re.search(r" rx=(\d+)", line)
                r = results[0 if family is Family.DC else 1]
                assert rx and int(rx.group(1)) == r.tx  # Josev received every request we sent
                assert await asyncio.wait_for(proc.wait(), 30) == 0
            record(PEER_SESSIONS, 2)
            print(f"both sessions in {time.monotonic() - t0:.1f}s")
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    asyncio.run(scenario())
