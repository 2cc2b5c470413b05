"""DIN SPEC 70121 DC against Josev (PyPI ``iso15118`` 0.31.2, its own venv, ``tools/peer/josev``),
over TCP (DIN has no TLS), both ways, each to a clean SessionStop on both sides:

* Josev's EVCC (``--protocol din --service DC``) against our SECC (dc-bidi, every protocol
  served: the negotiation must pick DIN from Josev's offer);
* our EVCC (cybertruck-awd, default offer: -20 DC, -20 AC, DIN) against Josev's SECC serving
  DIN only: the negotiation must land on DIN.

Josev's simulated SECC never raises its DC output voltage, so our EVCC accepts pre-charge after
5 requests against it (``pre_charge_give_up``, a lab switch; a real EV keeps the default, never),
and relaxes its timeouts by 5 (Josev's SECC answers slowly on a loaded machine), as the -20
interop tests do.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile

import pytest

from iso15118.facts.namespaces import AppProtocol
from iso15118.session import EvccConfig
from iso15118.session.din import DinEvccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.sim import make_ev, make_evse
from tests.peer import josev
from tests.proofs import PEER_SESSIONS, record

pytestmark = [pytest.mark.timeout(240), pytest.mark.peer]


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def test_josev_evcc_din_against_our_secc(peer_env: dict[str, str]) -> None:
    async def scenario() -> None:
        secc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, None, linger=1.0)
        cwd = tempfile.mkdtemp(prefix="josev-evcc-din-")
        try:
            proc = await asyncio.create_subprocess_exec(
                *josev("evcc"), "--port", str(secc.port), "--service", "DC", "--protocol", "din", "--tls", "none",
                "--loops", "3", "--no-linger", "--timeout", "100",
                cwd=cwd, env=peer_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out_b, err_b = await asyncio.wait_for(proc.communicate(), 150)
            out, err = out_b.decode(), err_b.decode()[-3000:]
            print(f"josev-evcc DIN: {out.strip()}")
            assert proc.returncode == 0 and out.startswith("PASS"), out + err
            assert "protocol=DIN_SPEC_70121" in out and "final=SessionStopRes" in out, out
            r = (await secc.wait_sessions(1, 20))[0]
            print(f"our SECC: ok={r.ok} reason={r.reason!r} rx={r.rx} tx={r.tx} protocol={r.protocol}")
            assert r.ok and r.reason == "SessionStop", r.reason
            assert r.protocol is AppProtocol.DIN and r.rx == r.tx
            m = re.search(r"messages=(\d+)", out)
            assert m and int(m.group(1)) == r.rx + r.tx
            record(PEER_SESSIONS, 1)
        finally:
            await secc.aclose()
            shutil.rmtree(cwd, ignore_errors=True)

    asyncio.run(scenario())


def test_our_evcc_din_against_josev_secc(peer_env: dict[str, str]) -> None:
    async def scenario() -> None:
        port = _free_port()
        cwd = tempfile.mkdtemp(prefix="josev-secc-din-")
        proc = await asyncio.create_subprocess_exec(
            *josev("secc"), "--port", str(port), "--services", "DC", "--protocols", "DIN_SPEC_70121",
            "--auth", "EIM", "--tls", "none", "--once",
            cwd=cwd, env=peer_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert ready.startswith("READY"), ready
            r = await run_evcc(
                make_ev("cybertruck-awd"), "::1", port, None,
                config=EvccConfig(timeout_scale=5.0),
                configs={AppProtocol.DIN: DinEvccConfig(max_loops=3, timeout_scale=5.0, pre_charge_give_up=5)},
            )
            print(f"our EVCC: ok={r.ok} reason={r.reason!r} rx={r.rx} tx={r.tx} loops={r.loops} protocol={r.protocol}")
            assert r.ok and r.reason == "SessionStop", r.reason
            assert r.protocol is AppProtocol.DIN and r.loops == 3
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
            print(f"josev-secc: {line}")
            assert " PASS " in line and "protocol=DIN_SPEC_70121" in line and "last_rx=SessionStopReq" in line, line
            assert f"rx={r.tx} tx={r.rx}" in line, line
            record(PEER_SESSIONS, 1)
        finally:
            if proc.returncode is None:
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
            shutil.rmtree(cwd, ignore_errors=True)

    asyncio.run(scenario())
