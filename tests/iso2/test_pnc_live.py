"""ISO 15118-2 over TLS 1.2 on real sockets, with Plug & Charge: ours with ours, and with Josev.

* Our EVCC against our SECC (the runner, ``tls.ISO2`` contexts from a ``pki create --profile
  iso2`` PKI) on loopback: the EV finds the charger by SDP asking for TLS and gets the TLS port;
  AC with its contract, DC after CertificateInstallation, each PnC to SessionStop on both sides;
  an SECC that does not trust the contract's MO root refuses it with FAILED_CertChainError on the
  wire.
* Josev's EVCC (``--tls tls12 --protocol iso2``, its own PKI) against our SECC presenting Josev's
  CPO chain under the -2 profile and trusting Josev's MO root: DC PnC, AC PnC after
  CertificateInstallation (Josev checks our CPS signature over the four delivered elements and
  decrypts the contract key, then signs its MeteringReceipt).
* Our EVCC (Josev's contract, Josev's V2G root as anchor) against Josev's SECC (``--tls tls12
  --protocols ISO_15118_2``): DC PnC with the contract, AC PnC after CertificateInstallation from
  Josev's SECC (we check its CPS chain and signature and decrypt the key with the OEM key).
* The command line: ``iso15118 secc --pnc`` / ``evcc --install-contract`` with an iso2 PKI over TLS.

PnC with a contract over TLS 1.2 in AC with Josev, both ways, is ``test_josev.py``'s.

Every session must end with SessionStop answered OK on both sides.  The Josev processes of one
test run in parallel; our side relaxes its message timeouts for Josev's slow SECC as
``test_josev.py`` explains.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.security.pki import PkiProfile, create_pki
from iso15118.session.evcc import EvccConfig
from iso15118.session.events import MessageReceived, ProtocolError
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig
from iso15118.session.iso2.lab import credentials_from_pki, secc_pnc2_from_pki
from iso15118.session.runner import SessionResult, run_evcc, run_secc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse
from iso15118.transport.sdp import Security
from iso15118.transport.sdp_asyncio import discover
from tests.peer import josev
from tests.proofs import PEER_SESSIONS, record

pytestmark = [pytest.mark.timeout(300)]

ISO2 = (AppProtocol.ISO2,)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET6, kind) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pki2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_pki(tmp_path_factory.mktemp("pki2-live"), profile=PkiProfile.ISO2, password=b"pw").root


def _names(r: SessionResult) -> list[str]:
    return [e.name for _, e in r.events if isinstance(e, MessageReceived)]


# --------------------------------------------------------------------------- ours with ours


def test_our_evcc_and_secc_pnc_over_tls12_with_sdp(pki2: Path) -> None:
    async def scenario() -> None:
        results: list[SessionResult] = []
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sdp_port = _free_port(socket.SOCK_DGRAM)
        server = asyncio.create_task(run_secc(
            lambda: make_evse("wall-connector"), "::1", 0, secc_context(pki2), sdp=True, sdp_port=sdp_port,
            ready=started.set_result, on_result=results.append, record_events=True, protocols=ISO2,
            configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(pki2))}))
        dc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, secc_context(pki2), record_events=True,
                              protocols=ISO2, configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(pki2))})
        try:
            secc = await asyncio.wait_for(started, 30)
            # SDP: asked for TLS, the charger answers with its TLS server
            resp = await discover(Security.TLS, address="::1", port=sdp_port)
            assert resp.security is Security.TLS and resp.port == secc.port, resp
            contract, prov = credentials_from_pki(pki2)
            ac, dcr = await asyncio.gather(
                run_evcc(make_ev("cybertruck-awd", stop_after=2.0, contract=contract), None, None, evcc_context(pki2),
                         discover=True, sdp_address="::1", sdp_port=sdp_port, protocols=ISO2, record_events=True,
                         configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC, max_loops=4)}),
                run_evcc(make_ev("cybertruck-awd", stop_after=2.0, provisioning=prov), "::1", dc.port, evcc_context(pki2),
                         protocols=ISO2, record_events=True,
                         configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=4)}),
            )
            for r in (ac, dcr):
                print(f"our EVCC: ok={r.ok} {r.reason!r} tls={r.tls_version} auth={r.authorization} emaid={r.emaid}")
                assert r.ok and r.reason == "SessionStop Terminate", r.reason
                assert r.tls_version == "TLSv1.2" and r.protocol is AppProtocol.ISO2
                assert r.authorization == "PnC" and r.emaid == contract.emaid
            s_ac = (await _wait(results, 1))[0]
            (s_dc,) = await dc.wait_sessions(1, 20)
            for s, first in ((s_ac, "PaymentDetailsReq"), (s_dc, "CertificateInstallationReq")):
                names = _names(s)
                assert s.ok and s.authorization == "PnC" and s.tls_version == "TLSv1.2", s.reason
                assert names[4] == first and "AuthorizationReq" in names and names.count("MeteringReceiptReq") == 1, names
                assert names[-1] == "SessionStopReq"
        finally:
            server.cancel()
            dc.close()
            await asyncio.gather(server, return_exceptions=True)

    asyncio.run(scenario())


async def _wait(results: list[SessionResult], n: int) -> list[SessionResult]:
    for _ in range(200):
        if len(results) >= n:
            return results
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(results)} of {n} SECC sessions ended")


def test_an_untrusted_contract_is_refused_on_the_wire(pki2: Path, tmp_path: Path) -> None:
    other = create_pki(tmp_path / "other", profile=PkiProfile.ISO2, password=b"pw").root
    pnc = secc_pnc2_from_pki(other)  # trusts another MO root

    async def scenario() -> None:
        server = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, secc_context(pki2), record_events=True,
                                  protocols=ISO2, configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=pnc)})
        try:
            contract, _ = credentials_from_pki(pki2)
            r = await run_evcc(make_ev("cybertruck-awd", contract=contract), "::1", server.port, evcc_context(pki2),
                               protocols=ISO2, configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC)})
            (s,) = await server.wait_sessions(1, 20)
        finally:
            server.close()
        assert not r.ok and "FAILED_CertChainError" in r.reason, r.reason
        assert not s.ok and [e.code for _, e in s.events if isinstance(e, ProtocolError)] == ["FAILED_CertChainError"]
        assert _names(s)[-1] == "PaymentDetailsReq"

    asyncio.run(scenario())


# --------------------------------------------------------------------------- Josev's EVCC -> our SECC


async def _josev_evcc(env: dict[str, str], port: int, service: str, *extra: str) -> tuple[int, str, str, list[str]]:
    cwd = tempfile.mkdtemp(prefix="josev-evcc-")
    trace = Path(cwd) / "trace.jsonl"
    proc = await asyncio.create_subprocess_exec(
        *josev("evcc"), "--port", str(port), "--service", service, "--protocol", "iso2", "--tls", "tls12",
        "--loops", "3", "--no-linger", "--timeout", "150", "--trace", str(trace), *extra,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 200)
    sent = [json.loads(line)["name"] for line in trace.read_text().splitlines() if json.loads(line)["dir"] == "tx"] \
        if trace.exists() else []
    shutil.rmtree(cwd, ignore_errors=True)
    return proc.returncode or 0, out.decode(), err.decode()[-3000:], sent


@pytest.mark.peer
def test_josev_evcc_against_our_secc_iso2_tls12(peer_env: dict[str, str], josev_pki: Path) -> None:
    """Josev's EVCC -> our SECC over TLS 1.2: DC PnC, AC PnC after CertificateInstallation."""

    async def scenario() -> None:
        pnc = {AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(josev_pki))}
        # Josev's EVCC ignores ReceiptRequired in DC (it goes on with CurrentDemandReq), which our SECC
        # refuses: the DC charger asks for no receipt; the AC one does, and Josev signs it
        no_receipt = {AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(josev_pki, receipt_after_loops=None))}
        ctx = secc_context(josev_pki, iso2=True)
        dc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, ctx, record_events=True, protocols=ISO2,
                              configs=no_receipt, linger=1.0)
        ac = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, ctx, record_events=True, protocols=ISO2,
                              configs=pnc, linger=1.0)
        try:
            # one after the other: Josev's EVCC gives PreCharge 7 s in all, which a loaded 2-core
            # machine running several of its JVM codecs at once does not always leave it
            runs = [await _josev_evcc(peer_env, dc.port, "DC"),
                    await _josev_evcc(peer_env, ac.port, "AC", "--cert-install")]
            for (rc, out, err, sent), server in zip(runs, (dc, ac)):
                print(f"josev-evcc: {out.strip()}")
                assert rc == 0 and out.startswith("PASS"), out + err
                assert "tls=TLSv1.2" in out and "auth=PNC_V2" in out and "final=SessionStopRes" in out, out
                (r,) = await server.wait_sessions(1, 30)
                print(f"our SECC: ok={r.ok} {r.reason!r} auth={r.authorization} tls={r.tls_version} rx={r.rx} tx={r.tx}")
                assert r.ok and r.reason == "SessionStop Terminate" and r.tls_version == "TLSv1.2", r.reason
                assert r.authorization == "PnC" and r.rx == r.tx
                assert _names(r) == sent  # every request Josev sent, we received and answered
            (_, _, _, sent_dc), (_, _, _, sent_ac) = runs
            assert {"PaymentDetailsReq", "AuthorizationReq"} <= set(sent_dc)
            assert sent_ac[3:6] == ["PaymentServiceSelectionReq", "CertificateInstallationReq", "PaymentDetailsReq"]
            assert "MeteringReceiptReq" in sent_ac
            record(PEER_SESSIONS, 2)
        finally:
            for s in (dc, ac):
                s.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- our EVCC -> Josev's SECC


async def _josev_secc(env: dict[str, str], port: int, service: str, auth: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *josev("secc"), "--port", str(port), "--services", service, "--auth", auth, "--tls", "tls12",
        "--protocols", "ISO_15118_2", "--once",
        cwd=tempfile.mkdtemp(prefix="josev-secc-"), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
    assert line.startswith("READY tls12"), line
    return proc


@pytest.mark.peer
def test_our_evcc_against_josev_secc_iso2_tls12(peer_env: dict[str, str], josev_pki: Path) -> None:
    """Our EVCC -> Josev's SECC over TLS 1.2: DC PnC (Josev's contract), AC PnC after CertificateInstallation."""

    async def scenario() -> None:
        p_pnc, p_inst = _free_port(), _free_port()
        procs = list(await asyncio.gather(_josev_secc(peer_env, p_pnc, "DC", "PNC,EIM"),
                                          _josev_secc(peer_env, p_inst, "AC", "PNC,EIM")))
        contract, prov = credentials_from_pki(josev_pki)
        ctx = evcc_context(josev_pki, iso2=True)
        try:
            results = list(await asyncio.gather(
                run_evcc(make_ev("cybertruck-awd", contract=contract), "::1", p_pnc, ctx, protocols=ISO2,
                         config=EvccConfig(timeout_scale=5.0), record_events=True,
                         configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=3, pre_charge_give_up=5,
                                                                   timeout_scale=10.0)}),
                run_evcc(make_ev("cybertruck-awd", provisioning=prov), "::1", p_inst, ctx, protocols=ISO2,
                         config=EvccConfig(timeout_scale=5.0), record_events=True,
                         configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC, max_loops=3, timeout_scale=10.0)}),
            ))
            for r, auth in zip(results, ("PnC", "PnC")):
                print(f"our EVCC -> Josev SECC: ok={r.ok} {r.reason!r} tls={r.tls_version} auth={r.authorization} "
                      f"rx={r.rx} tx={r.tx} {r.duration:.1f}s")
                assert r.ok and r.reason == "SessionStop Terminate", r.reason
                assert r.tls_version == "TLSv1.2" and r.authorization == auth and r.rx == r.tx
            assert "PaymentDetailsRes" in _names(results[0]) and results[0].emaid == contract.emaid
            assert _names(results[1])[4:7] == ["CertificateInstallationRes", "PaymentDetailsRes", "AuthorizationRes"]
            for proc, r, auth in zip(procs, results, ("PNC_V2", "PNC_V2")):
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
                print(f"josev-secc: {line}")
                assert line.startswith("SESSION") and " PASS " in line and "protocol=ISO_15118_2" in line, line
                assert "tls=TLSv1.2" in line and f"auth={auth}" in line and "last_rx=SessionStopReq" in line, line
                rx = re.search(r" rx=(\d+)", line)
                assert rx and int(rx.group(1)) == r.tx
                assert await asyncio.wait_for(proc.wait(), 30) == 0
            record(PEER_SESSIONS, 2)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- the command line


def test_cli_iso2_pnc_over_tls12(pki2: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "iso15118"]
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    common = ["--protocol", "iso2", "--tls", "--pki", str(pki2)]
    secc = subprocess.Popen([*cmd, "secc", "--profile", "wall-connector", "--port", "0", "--pnc", *common],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + (secc.stderr.read() if secc.stderr and secc.poll() is not None else "")
        port = ready.rsplit(":", 1)[1].strip()
        for how in ("--install-contract",):  # (--pnc with a contract: test_cli.py)
            out = subprocess.run([*cmd, "evcc", "--profile", "cybertruck-awd", "--service", "AC", "--port", port,
                                  "--loops", "3", how, *common], capture_output=True, text=True, env=env, timeout=90)
            print(out.stdout.strip())
            assert out.returncode == 0 and "PASS" in out.stdout, out.stdout + out.stderr
            assert "protocol=iso2 tls=TLSv1.2 auth=PnC" in out.stdout and "emaid=" in out.stdout, out.stdout
            line = secc.stdout.readline().strip()
            assert line.startswith("SESSION") and " PASS auth=PnC protocol=iso2" in line, line
    finally:
        secc.kill()
        secc.wait(10)
