"""ISO 15118-2 sessions over TLS 1.2 with our own -2 lab PKI (``iso15118 pki create --profile iso2``).

The profile itself (TLS 1.2 only, ECDHE-ECDSA-AES128-SHA256 on P-256, the chain rules) is
``tests/security/test_tls_iso2.py``'s; Josev over TLS 1.2 is in ``tests/iso2/test_josev.py``.
Here: a whole -2 DC session of our EVCC against our SECC through the runner, over that profile,
and the rule that the TLS version decides the protocol (``iso15118.facts.transport``).
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from iso15118 import messages as m
from iso15118.facts.namespaces import NS_DC, NS_DIN, NS_ISO2, AppProtocol, Family
from iso15118.facts.payload import PayloadType
from iso15118.facts.transport import carries
from iso15118.security.tls import ISO2, client_context, server_context
from iso15118.session.iso2 import Iso2EvccConfig
from iso15118.session.negotiation import EvccNegotiator
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, is_iso2_pki, secc_context
from iso15118.sim import make_ev, make_evse
from iso15118.transport.tcp import V2GTPConnection, open_connection
from iso15118.transport.tcp import start_server as start_tcp_server

ISO2_ONLY = (AppProtocol.ISO2,)


@pytest.fixture(scope="module")
def iso2_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki") / "iso2"
    proc = subprocess.run([sys.executable, "-m", "iso15118", "pki", "create", str(d), "--profile", "iso2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert is_iso2_pki(d)
    return d


def test_our_evcc_and_secc_over_tls12(iso2_pki: Path) -> None:
    async def scenario() -> None:
        srv = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, secc_context(iso2_pki), linger=0.2,
                               protocols=ISO2_ONLY)
        try:
            r = await run_evcc(make_ev("cybertruck-awd"), "::1", srv.port, evcc_context(iso2_pki),
                               protocols=ISO2_ONLY, configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=3)})
            s = (await srv.wait_sessions(1, 20))[0]
        finally:
            srv.close()
        assert r.ok and s.ok, (r.reason, s.reason)
        assert r.reason == s.reason == "SessionStop Terminate"
        assert r.tls_version == s.tls_version == "TLSv1.2"
        assert r.protocol is s.protocol is AppProtocol.ISO2 and r.loops == 3

    asyncio.run(scenario())


# ---------------------------------------------------------------- the protocol follows the TLS version
# (iso15118.facts.transport): over TLS 1.2 no side negotiates -20 (nor DIN), over TLS 1.3 no side
# negotiates -2; nobody passes ``protocols``.

def _both_versions(pki: Path) -> ssl.SSLContext:
    """A charger that accepts TLS 1.2 and 1.3 on one port (the -2 chain), as a -2/-20 charger does."""
    certs, keys = pki / "certs", pki / "private_keys"
    pw = keys / "seccLeafPassword.txt"
    return server_context(certs / "cpoCertChain.pem", keys / "seccLeaf.key", pw if pw.exists() else None,
                          profile=replace(ISO2, maximum_version=ssl.TLSVersion.TLSv1_3))


def _tls13_client(pki: Path) -> ssl.SSLContext:
    return client_context([pki / "certs" / "v2gRootCACert.pem"],
                          profile=replace(ISO2, minimum_version=ssl.TLSVersion.TLSv1_3, maximum_version=ssl.TLSVersion.TLSv1_3))


def test_tls_version_decides_the_protocol_end_to_end(iso2_pki: Path) -> None:
    """Our EVCC with a TLS 1.2 context against our SECC serving every protocol on TLS 1.2 and
    1.3: -2, without ``protocols``; the same pair over TLS 1.3 agrees -20; a -2-only EV over
    TLS 1.3 offers nothing (-2 is TLS 1.2 only)."""
    async def scenario() -> None:
        srv = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, _both_versions(iso2_pki), linger=0.2)
        try:
            # stop_after: without the rule this would be a -20 session, ended at once
            r12 = await run_evcc(make_ev("cybertruck-awd", stop_after=0.0), "::1", srv.port, evcc_context(iso2_pki),
                                 configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=1)})
            r13 = await run_evcc(make_ev("cybertruck-awd", stop_after=0.0), "::1", srv.port, _tls13_client(iso2_pki))
            r2_13 = await run_evcc(make_ev("cybertruck-awd"), "::1", srv.port, _tls13_client(iso2_pki), protocols=ISO2_ONLY)
            s12, s13, _ = await srv.wait_sessions(3, 30)
        finally:
            await srv.aclose()
        assert r12.tls_version == s12.tls_version == "TLSv1.2"
        assert r12.protocol is s12.protocol is AppProtocol.ISO2, (r12.reason, s12.reason)
        assert r12.ok and s12.ok, (r12.reason, s12.reason)
        assert r13.tls_version == s13.tls_version == "TLSv1.3"
        assert r13.protocol is s13.protocol is AppProtocol.ISO20, (r13.reason, s13.reason)
        assert r2_13.protocol is None and not r2_13.ok and "NoProtocol" in r2_13.reason, r2_13.reason

    asyncio.run(scenario())


def test_secc_serves_what_the_tls_version_carries(iso2_pki: Path) -> None:
    """The SECC rule alone: a raw client on TLS 1.2 offers -20 (first), DIN, -2: the SECC picks
    -2; offering only -20 and DIN gets Failed_NoNegotiation."""
    entries = [(NS_DC, 1, 1), (NS_DIN, 2, 2), (NS_ISO2, 2, 3)]

    async def ask(port: int, offer: list[tuple[str, int, int]]) -> m.SupportedAppProtocolRes:
        conn = await open_connection("::1", port, evcc_context(iso2_pki), timeout=10)
        try:
            assert conn.ssl_object is not None and conn.ssl_object.version() == "TLSv1.2"
            req = m.SupportedAppProtocolReq(app_protocol=[
                m.AppProtocol(protocol_namespace=ns, version_number_major=major, version_number_minor=0,
                              schema_id=i, priority=i) for ns, major, i in offer])
            await conn.send(int(PayloadType.SAP), m.encode(req))
            res = m.decode((await conn.recv(timeout=10)).payload, "sap")
        finally:
            await conn.aclose()
        assert isinstance(res, m.SupportedAppProtocolRes)
        return res

    async def scenario() -> None:
        srv = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, _both_versions(iso2_pki), linger=0.1)
        try:
            chosen = await ask(srv.port, entries)
            refused = await ask(srv.port, entries[:2])
        finally:
            await srv.aclose()
        assert chosen.response_code is m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION and chosen.schema_id == 3
        assert refused.response_code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION and refused.schema_id is None

    asyncio.run(scenario())


def test_evcc_offers_what_the_tls_version_carries(iso2_pki: Path) -> None:
    """The EVCC rule alone: a raw TLS 1.2 server records our EVCC's supportedAppProtocolReq: -2
    only (no -20, no DIN), though the EV would offer all three over TCP."""
    seen: list[m.SupportedAppProtocolReq] = []

    async def handler(conn: V2GTPConnection) -> None:
        req = m.decode((await conn.recv(timeout=10)).payload, "sap")
        assert isinstance(req, m.SupportedAppProtocolReq)
        seen.append(req)
        await conn.send(int(PayloadType.SAP), m.encode(
            m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)))

    async def scenario() -> None:
        server = await start_tcp_server(handler, "::1", 0, secc_context(iso2_pki))
        port = int(server.sockets[0].getsockname()[1])
        try:
            r = await run_evcc(make_ev("cybertruck-awd"), "::1", port, evcc_context(iso2_pki))
            tcp = EvccNegotiator(make_ev("cybertruck-awd"), clock=time.time).offers()
        finally:
            server.close()
        assert r.tls_version == "TLSv1.2" and not r.ok
        assert [e.protocol_namespace for e in seen[0].app_protocol] == [NS_ISO2]
        assert {o.protocol for o in tcp} == {AppProtocol.ISO20, AppProtocol.ISO2, AppProtocol.DIN}  # the control

    asyncio.run(scenario())


def test_the_transport_table() -> None:
    """The rule itself (facts.transport), which the negotiators read."""
    assert [p for p in AppProtocol if carries(p, True, "TLSv1.2")] == [AppProtocol.ISO2]
    assert [p for p in AppProtocol if carries(p, True, "TLSv1.3")] == [AppProtocol.ISO20]
    assert set(AppProtocol) == {p for p in AppProtocol if carries(p, False)}
    assert not any(carries(p, True, "TLSv1.1") for p in AppProtocol)
    assert [p for p in AppProtocol if carries(p, True)] == [AppProtocol.ISO2, AppProtocol.ISO20]
