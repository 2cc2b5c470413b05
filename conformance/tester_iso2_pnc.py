"""The tester vehicle for ISO 15118-2 chargers over TLS 1.2 with Plug & Charge.

A -2 PnC session needs a TLS 1.2 connection, the charger's -2 lab PKI (``--pki``: the V2G root the
vehicle trusts, the contract and OEM provisioning credentials of that PKI) and XML signatures over
EXI; the tester drives our -2 EVCC core (``iso15118.session.iso2``) over a TLS connection it opens
itself and puts a *tap* between the two: every frame is recorded as evidence and decoded, and a
case may rewrite one request on its way out (a broken signature) or one answer on its way in
(another GenChallenge, which the vehicle then signs).  The case judges the charger from what the
tap saw, by its own checks (a signature verified here, a code read from the charger's answer),
never from our core's verdict.

Also here: :func:`start_local_iso2_pnc_secc`, our SECC as a -2 PnC charger over TLS 1.2 (the
campaigns and the mutation matrix use it), and :func:`iso2_lab_pki`, the lab PKI both share.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.catalogue import CaseContext
from iso15118 import messages as m
from iso15118.facts.namespaces import AppProtocol
from iso15118.facts.transport import carries
from iso15118.messages import iso2 as m2
from iso15118.session.events import Event
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, open_connection
from iso15118.transport.v2gtp import Frame

Rewrite = Callable[[m2.V2GMessage], m2.V2GMessage]
"""A case's change of one -2 message on the wire (return it unchanged when it does not apply)."""


def body(msg: Any) -> Any:
    """The body element of a -2 message (None for SupportedAppProtocol)."""
    return msg.body.body_element if isinstance(msg, m2.V2GMessage) else None


def rebuild(msg: m2.V2GMessage, new_body: Any = None, **header: Any) -> m2.V2GMessage:
    """``msg`` with another body element and / or header fields (e.g. ``signature=``)."""
    hdr = {"signature": msg.header.signature, **header}
    return m2.message(msg.header.session_id, new_body if new_body is not None else body(msg), **hdr)


def broken_signature(msg: m2.V2GMessage) -> m2.V2GMessage:
    """The same message, its SignatureValue's last byte flipped (no longer the signer's)."""
    sig = msg.header.signature
    if sig is None:
        return msg
    value = bytearray(sig.signature_value.value)
    value[-1] ^= 0x01
    return rebuild(msg, signature=dataclasses.replace(sig, signature_value=dataclasses.replace(
        sig.signature_value, value=bytes(value))))


@dataclass
class Seen:
    """One frame through the tap."""

    direction: str
    """``tx`` (tester -> charger) or ``rx``."""
    name: str
    msg: Any
    at: float


@dataclass
class PncRun:
    """What one tester session saw."""

    seen: list[Seen] = field(default_factory=list)
    tls_version: str | None = None
    closed_by_sut: bool = False
    ended: str = ""
    """Why the tester's session ended (its core's reason: a timeout, a FAILED code, a close)."""
    protocol: AppProtocol | None = None

    def got(self, name: str) -> list[Any]:
        """The charger's answers called ``name`` (typed -2 messages), in order."""
        return [s.msg for s in self.seen if s.direction == "rx" and s.name == name]

    def sent(self, name: str) -> list[Any]:
        return [s.msg for s in self.seen if s.direction == "tx" and s.name == name]

    def answer_to(self, req: str) -> Any | None:
        """The charger's answer to the first ``req`` the tester sent (None: none came)."""
        res = req[:-3] + "Res"
        after = False
        for s in self.seen:
            if s.direction == "tx" and s.name == req:
                after = True
            elif after and s.direction == "rx":
                return s.msg if s.name == res else None
        return None


def _decode(payload: bytes, negotiated: bool) -> tuple[str, Any]:
    try:
        if negotiated:
            msg: Any = m2.decode(payload)
            return type(body(msg)).__name__, msg
        msg = m.decode(payload, "sap")
        el = getattr(msg, "ELEMENT", None)
        return (str(el[1]) if el else type(msg).__name__), msg
    except Exception as exc:  # noqa: BLE001 - an undecodable frame is evidence, not a crash
        return f"undecodable ({type(exc).__name__})", None


class _Tap:
    """Between our EVCC core (via ``drive``) and the charger: records, decodes, rewrites."""

    def __init__(self, conn: V2GTPConnection, ctx: CaseContext, run: PncRun, out: Rewrite | None,
                 into: Rewrite | None) -> None:
        self.conn, self.ctx, self.run, self.out, self.into = conn, ctx, run, out, into
        self.negotiated_tx = False
        self.negotiated_rx = False

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def _pass(self, direction: str, pt: int, payload: bytes, rewrite: Rewrite | None, negotiated: bool) -> bytes:
        name, msg = _decode(payload, negotiated)
        detail = ""
        if rewrite is not None and isinstance(msg, m2.V2GMessage):
            changed = rewrite(msg)
            if changed is not msg:
                payload, msg, detail = m2.encode(changed), changed, "rewritten by the case"
        self.run.seen.append(Seen(direction, name, msg, time.monotonic()))
        self.ctx.evidence.frame(direction, pt, payload, None, name=name, detail=detail)
        return payload

    async def send(self, payload_type: int, payload: bytes) -> None:
        payload = self._pass("tx", payload_type, payload, self.out, self.negotiated_tx)
        self.negotiated_tx = True
        await self.conn.send(payload_type, payload)

    async def recv(self, timeout: float | None = None) -> Frame:
        try:
            frame = await self.conn.recv(timeout=timeout)
        except (ConnectionClosed, ConnectionError, asyncio.IncompleteReadError):
            self.run.closed_by_sut = True
            self.ctx.evidence.note("the charger closed the connection")
            raise
        payload = self._pass("rx", frame.payload_type, frame.payload, self.into, self.negotiated_rx)
        self.negotiated_rx = True
        return Frame(frame.payload_type, payload)


def pki_of(ctx: CaseContext) -> Path:
    """The charger's -2 lab PKI (``--pki``); not applicable without one."""
    if ctx.sut.pki_dir is None:
        ctx.not_applicable("-2 Plug & Charge needs the charger's -2 lab PKI (--pki DIR)")
    assert ctx.sut.pki_dir is not None
    return Path(ctx.sut.pki_dir)


async def connect_tls12(ctx: CaseContext, tls: ssl.SSLContext | None = None) -> V2GTPConnection:
    """A TLS connection to the charger (default: the -2 profile, TLS 1.2 only).  A refused
    connection or handshake raises: an unreachable SUT is an error, never a verdict."""
    from iso15118.session.tlsconf import evcc_context

    ctx.testers.append(_Closer())
    conn = await open_connection(ctx.sut.host, ctx.sut.port, tls or evcc_context(pki_of(ctx), iso2=True),
                                 timeout=ctx.sut.connect_timeout)
    ctx.testers[-1].conn = conn
    return conn


class _Closer:
    """What the runner closes after a case (``ctx.testers``)."""

    connected = True
    connect_error = ""
    response_times: dict[str, list[float]] = {}
    values = None

    def __init__(self) -> None:
        self.conn: V2GTPConnection | None = None

    async def close(self) -> None:
        if self.conn is not None:
            await _aclose(self.conn)


async def _aclose(conn: V2GTPConnection) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection
        await asyncio.wait_for(conn.aclose(), 2.0)


async def pnc_session(ctx: CaseContext, *, install: bool = False, out: Rewrite | None = None,
                      into: Rewrite | None = None, loops: int = 2) -> PncRun:
    """One -2 PnC session of the tester vehicle over TLS 1.2, to its end (SessionStop, a FAILED
    answer, a close or a timeout); ``install``: without a contract, CertificateInstallation first."""
    from iso15118.session.iso2 import Iso2EvccConfig
    from iso15118.session.iso2.lab import credentials_from_pki
    from iso15118.session.negotiation import EvccNegotiator
    from iso15118.session.runner import drive
    from iso15118.sim import make_ev

    ctx.feature("iso2")
    pki = pki_of(ctx)
    contract, provisioning = credentials_from_pki(pki)
    ev = make_ev("cybertruck-awd", **({"provisioning": provisioning} if install else {"contract": contract}))
    conn = await connect_tls12(ctx)
    run = PncRun(tls_version=conn.ssl_object.version() if conn.ssl_object is not None else None)
    ctx.evidence.note(f"TLS handshake completed: {run.tls_version}")
    core = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), clock=time.time, tls_version=run.tls_version,
                          configs={AppProtocol.ISO2: Iso2EvccConfig(max_loops=loops)})
    tap = _Tap(conn, ctx, run, out, into)
    record: list[tuple[float, Event]] = []
    await drive(core, tap, side="tester", initial=core.start(time.monotonic()), record=record)  # type: ignore[arg-type]
    run.ended, run.protocol = core.end_reason, core.protocol
    ctx.evidence.note(f"tester session ended: {run.ended}")
    return run


# ---------------------------------------------------------------------------- the local -2 PnC charger

_PKI: dict[str, Path] = {}


def iso2_lab_pki() -> Path:
    """A -2 lab PKI (``pki create --profile iso2`` layout), made once per process."""
    if "dir" not in _PKI:
        from iso15118.security.pki import create_pki

        _PKI["dir"] = create_pki(Path(tempfile.mkdtemp(prefix="iso2-pnc-pki-")) / "pki", profile="iso2").root
    return _PKI["dir"]


async def start_local_iso2_pnc_secc(profile: str = "wall-connector", pki: Path | None = None) -> Any:
    """Our SECC as a -2 Plug & Charge charger over TLS 1.2 (``LocalSecc``; its endpoint needs ``pki_dir``)."""
    from conformance.local import start_local_secc
    from iso15118.session.iso2 import Iso2SeccConfig
    from iso15118.session.iso2.lab import secc_pnc2_from_pki
    from iso15118.session.tlsconf import secc_context

    d = pki or iso2_lab_pki()
    return await start_local_secc(profile, tls=secc_context(d, iso2=True),
                                  configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(d))})


async def reach_iso2_tls(sut: Any, evidence: Any = None) -> str | None:
    """The gate for a -2 charger on TLS 1.2: the -2 handshake, -2 negotiated, SessionSetup OK.
    None when it is reachable, else why not."""
    from iso15118.facts.namespaces import NS_ISO2
    from iso15118.facts.payload import PayloadType
    from iso15118.session.tlsconf import evcc_context

    if sut.pki_dir is None:
        return "-2 over TLS needs the charger's -2 lab PKI (--pki DIR)"
    if sut.before_case is not None:
        await sut.before_case()
    try:
        conn = await open_connection(sut.host, sut.port, evcc_context(sut.pki_dir, iso2=True), timeout=sut.connect_timeout)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return f"TLS 1.2 connect: {type(exc).__name__}: {exc}"
    try:
        req = m.SupportedAppProtocolReq(app_protocol=[m.AppProtocol(
            protocol_namespace=NS_ISO2, version_number_major=2, version_number_minor=0, schema_id=1, priority=1)])
        await conn.send(int(PayloadType.SAP), m.encode(req))
        res = m.decode((await conn.recv(timeout=4.0)).payload, "sap")
        if not (isinstance(res, m.SupportedAppProtocolRes) and res.response_code.value.startswith("OK")):
            return f"-2 SupportedAppProtocol failed: {getattr(getattr(res, 'response_code', None), 'value', res)}"
        setup = m2.message(bytes(8), m2.SessionSetupReq(evcc_id=bytes.fromhex("0200000000aa")))
        await conn.send(int(PayloadType.EXI_ENCODED), m2.encode(setup))
        ans = body(m2.decode((await conn.recv(timeout=4.0)).payload))
        code = str(getattr(getattr(ans, "response_code", None), "value", ""))
        if not (isinstance(ans, m2.SessionSetupRes) and code.startswith("OK")):
            return f"-2 SessionSetup failed: {type(ans).__name__} {code}"
        if evidence is not None:
            evidence.note("the -2 charger is reachable over TLS 1.2 (SAP, SessionSetup)")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure of the gate is the reason
        return f"{type(exc).__name__}: {exc}"
    finally:
        await _aclose(conn)


def iso2_pnc_endpoint(loc: Any, pki: Path | None = None, jobs: int = 3) -> Any:
    """The SUT endpoint of :func:`start_local_iso2_pnc_secc`: TLS 1.2 carries no -20 (``facts.transport``)."""
    sut = loc.endpoint(pki_dir=pki or iso2_lab_pki(), jobs=jobs, probe=False)
    sut.info.features["iso20"] = carries(AppProtocol.ISO20, True, "TLSv1.2")  # False
    return sut


# ---------------------------------------------------------------------------- the tester charger (vehicle under test)


async def run_iso2_pnc_ev(ctx: CaseContext, *, out: Rewrite | None = None, into: Rewrite | None = None,
                          receipt_after_loops: int | None = None, timeout: float = 30.0) -> PncRun:
    """A tester -2 PnC charger on TLS 1.2 (our -2 SECC core behind the tap, with the vehicle's lab
    PKI ``evcc_pki``: the charger chain it trusts, the MO root and CPS of its contracts); the
    vehicle under test is launched against it (``evcc_tls_launcher``).  Returns when the session
    is over or after ``timeout`` seconds (``ended``: ``still open``)."""
    from iso15118.session.iso2 import Iso2SeccConfig
    from iso15118.session.iso2.lab import secc_pnc2_from_pki
    from iso15118.session.negotiation import SeccNegotiator
    from iso15118.session.runner import drive
    from iso15118.session.tlsconf import secc_context
    from iso15118.sim import make_evse
    from iso15118.transport.tcp import start_server

    sut = ctx.sut
    if sut.evcc_tls_launcher is None or sut.evcc_pki is None:
        ctx.not_applicable("-2 over TLS needs a TLS launch of the EVCC under test and its -2 lab PKI (--evcc-pki)")
    ctx.feature("iso2")
    assert sut.evcc_pki is not None
    pki = Path(sut.evcc_pki)
    pnc = secc_pnc2_from_pki(pki, receipt_after_loops=receipt_after_loops)
    run = PncRun()
    finished = asyncio.Event()

    async def handler(conn: V2GTPConnection) -> None:
        if run.tls_version is not None:  # one session per case: a second connection is not served
            return
        run.tls_version = conn.ssl_object.version() if conn.ssl_object is not None else "none"
        core = SeccNegotiator(make_evse("wall-connector"), protocols=(AppProtocol.ISO2,), now=time.monotonic(),
                              clock=time.time, tls_version=conn.ssl_object.version() if conn.ssl_object else None,
                              configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=pnc)})
        try:
            await drive(core, _Tap(conn, ctx, run, out, into), side="tester")  # type: ignore[arg-type]
        finally:
            run.ended, run.protocol = core.end_reason, core.protocol
            finished.set()

    server = await start_server(handler, "::1", 0, secc_context(pki, iso2=True))
    port = int(server.sockets[0].getsockname()[1])
    ctx.evidence.note(f"tester -2 PnC charger on TLS 1.2 listening on [::1]:{port}")
    launch: asyncio.Future[Any] = asyncio.ensure_future(sut.evcc_tls_launcher("::1", port, pki / "certs" / "v2gRootCACert.pem"))
    try:
        try:
            async with asyncio.timeout(timeout * sut.time_scale):
                await finished.wait()
        except TimeoutError:
            run.ended = run.ended or "still open"
            ctx.evidence.note(f"the session was not over after {timeout:g} s", "error")
        try:
            done = await asyncio.wait_for(launch, 10.0)
            ctx.evidence.note(f"EVCC under test finished: {str(done)[:300]}")
        except Exception as exc:  # noqa: BLE001 - the EVCC's own ending is evidence
            ctx.evidence.note(f"EVCC under test ended with {type(exc).__name__}: {exc}", "warning")
    finally:
        launch.cancel()
        server.close()
    if run.tls_version is None:
        ctx.require("precondition: the EVCC under test connects to the tester charger over TLS", False, "it never connected")
    return run


def local_iso2_pnc_evcc_launcher(pki: Path | None = None, loops: int = 4) -> Callable[[str, int, Any], Any]:
    """Our EVCC as a -2 Plug & Charge vehicle on TLS 1.2 under test: it holds the PKI's OEM
    provisioning certificate and no contract, so each session installs one (CertificateInstallation),
    then authorizes with it.  No ``protocols``: the TLS 1.2 connection makes it -2."""
    from iso15118.session.evcc import EvccConfig
    from iso15118.session.iso2 import Iso2EvccConfig
    from iso15118.session.iso2.lab import credentials_from_pki
    from iso15118.session.runner import run_evcc
    from iso15118.session.tlsconf import evcc_context
    from iso15118.sim import make_ev

    async def launch(host: str, port: int, trust: Any = None) -> Any:
        d = pki or iso2_lab_pki()
        _contract, provisioning = credentials_from_pki(d)
        return await run_evcc(make_ev("cybertruck-awd", provisioning=provisioning), host, port, evcc_context(d, iso2=True),
                              config=EvccConfig(max_loops=loops), configs={AppProtocol.ISO2: Iso2EvccConfig(max_loops=loops)})

    return launch
