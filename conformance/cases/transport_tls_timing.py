"""V2GTP / TCP robustness (digest §1.2), TLS (digest §1.3, §8.2) and timing (digest §6)."""

from __future__ import annotations

import asyncio
import functools
import ssl
import tempfile
import time
from pathlib import Path

from conformance.cases._common import RC, expect, expect_refused, m, reach
from conformance.cases.sap_session import _ns, _proto
from conformance.catalogue import CaseContext, case
from conformance.tester import TesterEvcc
from iso15118.session import rules
from iso15118.transport.v2gtp import encode_header

APR = m.AppProtocolResponseCode


async def _after_sap(ctx: CaseContext) -> TesterEvcc:
    t: TesterEvcc = ctx.tester()
    await t.connect()
    rx = await t.exchange(m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)]))
    ctx.precondition(rx.answered and (rx.code or "").startswith("OK"), f"{rx.name} {rx.code}")
    return t


# --------------------------------------------------------------------------- V2GTP


@case("TC_SECC_V2GTP_001", "Malformed EXI is not accepted and does not break the SUT", group="V2GTP",
      purpose="Random bytes where SessionSetupReq belongs: no positive answer, and the SUT keeps serving new sessions.",
      requirement="digest §1.2 (payload type selects the grammar) / §3.3 (invalid input ends the session)",
      steps=("SAP", "frame 0x8002 with 24 bytes of non-EXI garbage", "expect no positive answer", "new session works"),
      tags=("transport", "v2gtp", "malformed", "negative", "robustness"))
async def v2gtp_001(ctx: CaseContext) -> None:
    t = await _after_sap(ctx)
    await t.send_frame(0x8002, bytes.fromhex("ffffffffdeadbeef0001020304050607a5a5a5a5c3c3c3c3"), name="garbage EXI")
    rx = await t.recv(2.5)
    await expect_refused(ctx, t, rx, "digest §1.2: undecodable EXI not processed")


@case("TC_SECC_V2GTP_002", "Wrong V2GTP protocol version is rejected", group="V2GTP",
      purpose="A header with version 0x02 / inverse 0xFD is invalid; the SUT must not process the message.",
      requirement="digest §1.2 (receivers reject version != 0x01 or inverse != 0xFE)",
      steps=("connect", "SAP request with header 02 FD", "expect no answer (or close)", "new session works"),
      tags=("transport", "v2gtp", "malformed", "negative", "robustness"))
async def v2gtp_002(ctx: CaseContext) -> None:
    t = ctx.tester()
    await t.connect()
    body = m.encode(m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)]))
    hdr = bytearray(encode_header(0x8001, len(body)))
    hdr[0], hdr[1] = 0x02, 0xFD
    await t.send_raw(bytes(hdr) + body, "SAP with V2GTP version 0x02")
    rx = await t.recv(2.5)
    await expect_refused(ctx, t, rx, "digest §1.2: invalid header rejected")


@case("TC_SECC_V2GTP_003", "Oversized V2GTP length is not buffered forever", group="V2GTP",
      purpose="A header announcing a ~2 GB payload must not be answered, and must not stop the SUT from serving others.",
      requirement="digest §1.2 (payload length 0..2^32-1; implementation limits 2048 B (L) / 7000 B (J))",
      steps=("SAP", "frame 0x8002 announcing 0x7FFFFFF0 bytes, then 2 kB", "expect no answer", "new session works"),
      tags=("transport", "v2gtp", "oversized", "negative", "robustness"))
async def v2gtp_003(ctx: CaseContext) -> None:
    t = await _after_sap(ctx)
    await t.send_raw(encode_header(0x8002, 0x7FFFFFF0) + bytes(2048), "oversized V2GTP frame (0x7FFFFFF0 announced)")
    rx = await t.recv(2.0)
    await expect_refused(ctx, t, rx, "digest §1.2: oversized frame not answered")


@case("TC_SECC_V2GTP_004", "A frame split over two TCP writes is reassembled", group="V2GTP",
      purpose="TCP is a byte stream: header and payload 50 ms apart must still form one message.",
      requirement="digest §1.2 (the header announces the payload length) / RFC 9293 stream semantics",
      steps=("connect", "write the SAP header, 50 ms later the payload", "expect a normal SAP answer"),
      tags=("transport", "v2gtp", "reassembly"))
async def v2gtp_004(ctx: CaseContext) -> None:
    t = ctx.tester()
    await t.connect()
    msg = m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)])
    body = m.encode(msg)
    await t.send_raw(encode_header(0x8001, len(body)), "SAP header only")
    await asyncio.sleep(0.05)
    await t.send_raw(body, "SAP payload (50 ms later)")
    t._sent_name = "supportedAppProtocolReq"
    t._sent_at = time.monotonic() - 0.05
    rx = await t.recv(2.5)
    expect(ctx, rx, "supportedAppProtocolRes", APR.OK_SUCCESSFUL_NEGOTIATION.value, "stream semantics: split frame reassembled")


@case("TC_SECC_V2GTP_005", "SAP request under the wrong payload type is not negotiated", group="V2GTP",
      purpose="supportedAppProtocolReq must come with 0x8001; with 0x8002 it is a different grammar.",
      requirement="digest §1.2 (0x8001 SAP, 0x8002 CommonMessages)",
      steps=("connect", "SAP request with payload type 0x8002", "expect no positive answer"),
      tags=("transport", "v2gtp", "negative"))
async def v2gtp_005(ctx: CaseContext) -> None:
    t = ctx.tester()
    await t.connect()
    rx = await t.exchange(m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)]), payload_type=0x8002, timeout=2.5)
    await expect_refused(ctx, t, rx, "digest §1.2: wrong payload type for SAP")


@case("TC_SECC_V2GTP_006", "Empty payload is refused", group="V2GTP",
      purpose="A 0x8002 frame with length 0 carries no message.",
      requirement="digest §1.2 (payload = EXI message)",
      steps=("SAP", "frame 0x8002 length 0", "expect no positive answer", "new session works"),
      tags=("transport", "v2gtp", "malformed", "negative", "robustness"))
async def v2gtp_006(ctx: CaseContext) -> None:
    t = await _after_sap(ctx)
    await t.send_frame(0x8002, b"", name="empty payload")
    rx = await t.recv(2.5)
    await expect_refused(ctx, t, rx, "digest §1.2: empty payload not processed")


# --------------------------------------------------------------------------- timing


@case("TC_SECC_Timing_001", "Every response within V2G_EVCC_Msg_Timeout", group="Timing",
      purpose="A complete session where each response is checked against the EVCC timeout of its request.",
      requirement="digest §6.1 (2 s; ServiceDetail 5 s; charge loop 0.5 s)",
      steps=("complete session with 5 loops", "check every response time (also checked in every case)"),
      tags=("timing", "loop"))
async def timing_001(ctx: CaseContext) -> None:
    from conformance.cases._common import full_session

    t = await full_session(ctx, loops=5)
    worst = []
    for name, vals in sorted(t.response_times.items()):
        spec = rules.spec_for_response(name)
        lim = spec.evcc_timeout if spec else 2.0
        worst.append(f"{name} {max(vals) * 1000:.0f}/{lim * 1000:.0f} ms")
        ctx.metric(f"max_ms_{name}", max(vals) * 1000)
    ctx.check("digest §6.1: all responses in time", not t.late, "; ".join(worst))


@case("TC_SECC_Timing_002", "Idle connection is closed (first-message timeout)", group="Timing",
      purpose="A connection on which no supportedAppProtocolReq arrives is closed after the first-message wait.",
      requirement="digest §6.2 (SECC first-message wait 20 s (J); L: none) / §6.3 (stop: close TCP at 5 s)",
      steps=("connect", "send nothing", "expect the SUT to close within 20 s + 5 s close delay + 2 s"),
      tags=("timing", "long"), timeout=40.0)
async def timing_002(ctx: CaseContext) -> None:
    t = ctx.tester()
    await t.connect()
    t0 = ctx.evidence.now()
    closed = await t.wait_closed(27.0)
    ctx.check("digest §6.2/§6.3: idle connection closed within 20 + 5 + 2 s", closed is not None,
              f"closed after {closed - t0:.1f} s" if closed is not None else "still open after 27 s")
    if closed is not None:
        ctx.metric("first_message_close_s", closed - t0)


@case("TC_SECC_Timing_003", "SAP and SessionSetup answered in time on a cold connection", group="Timing",
      purpose="The first exchanges (often the slowest) meet their 2 s limits.",
      requirement="digest §6.1 (supportedAppProtocolReq 2 s, SessionSetup 2 s) / §6.2 CommunicationSetup 20 s",
      steps=("connect", "SAP, SessionSetup", "check both response times and the setup total"),
      tags=("timing", "handshake"))
async def timing_003(ctx: CaseContext) -> None:
    t0 = time.monotonic()
    t, held = await reach(ctx, "AuthorizationSetupReq")
    sap = max(t.response_times.get("supportedAppProtocolRes", [99]))
    ss = max(t.response_times.get("SessionSetupRes", [99]))
    ctx.metric("sap_ms", sap * 1000)
    ctx.metric("session_setup_ms", ss * 1000)
    ctx.check("digest §6.1: SAP within 2 s", sap <= 2.0, f"{sap * 1000:.0f} ms")
    ctx.check("digest §6.1: SessionSetup within 2 s", ss <= 2.0, f"{ss * 1000:.0f} ms")
    ctx.check("digest §6.2: V2G_EVCC_CommunicationSetup_Timeout 20 s", time.monotonic() - t0 <= 20.0,
              f"{time.monotonic() - t0:.2f} s to SessionSetupRes")


# --------------------------------------------------------------------------- TLS


def _profile(ctx: CaseContext):  # type: ignore[no-untyped-def]
    from iso15118.security import tls as T

    return T.JOSEV_COMPAT if ctx.sut._josev_layout() else T.ISO20


@functools.lru_cache(maxsize=4)
def _rogue_pki(algorithm: str) -> Path:
    """A complete PKI under a root the SUT does not trust."""
    from iso15118.security.pki import create_pki

    d = Path(tempfile.mkdtemp(prefix="conformance-rogue-pki-"))
    return create_pki(d, algorithm).root


def _sut_algorithm(ctx: CaseContext) -> str:
    if ctx.sut._josev_layout():
        return "secp256r1"
    from iso15118.security.pki import load_pki

    return load_pki(ctx.sut.pki_dir).algorithm.value  # type: ignore[arg-type]


async def _tls_attempt(ctx: CaseContext, context: ssl.SSLContext, label: str) -> tuple[bool, str]:
    """Connect with ``context`` and try SAP; (accepted, detail)."""
    t = ctx.tester(ssl_context=context)
    try:
        await t.connect()
    except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
        ctx.evidence.note(f"{label}: handshake failed: {exc}")
        return False, f"handshake refused: {type(exc).__name__}: {exc}"
    rx = await t.exchange(m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)]), timeout=3.0)
    if rx.answered:
        return True, f"handshake completed ({t.tls_version}) and SAP answered {rx.code}"
    return False, f"handshake completed ({t.tls_version}) but the SUT dropped the connection: {rx.error}"


@case("TC_SECC_TLS_001", "TLS 1.3 with mutual authentication and a -20 cipher suite", group="TLS",
      purpose="The SUT negotiates TLS 1.3 with TLS_AES_256_GCM_SHA384 or TLS_CHACHA20_POLY1305_SHA256, presents a chain to the V2G root, and runs a session.",
      requirement="digest §1.3 (-20 TLS version 1.3, cipher suites [V2G20-1856], mutual authentication)",
      preconditions=("TLS endpoint; --pki with the V2G root and a vehicle (or OEM) client chain",),
      steps=("TLS handshake presenting the vehicle chain", "check version and cipher", "SAP and SessionSetup"),
      tags=("tls", "security"), needs=("tls",))
async def tls_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    obj = t._writer.get_extra_info("ssl_object") if t._writer else None
    ver = obj.version() if obj else None
    cipher = obj.cipher()[0] if obj else None
    josev = ctx.sut._josev_layout()
    ctx.check("digest §1.3: TLS 1.3", ver == "TLSv1.3", f"{ver}")
    ctx.check("digest §1.3: -20 cipher suite", cipher in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
              or (josev and cipher is not None), f"{cipher}")
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    ctx.check("digest §1.3: the SUT's chain verifies against the V2G root", der is not None,
              "verified by the tester's context (CERT_REQUIRED)")
    if der is not None and not josev:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        from iso15118.security.algorithms import algorithm_of_key

        leaf = x509.load_der_x509_certificate(der)
        dc = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
        alg = algorithm_of_key(leaf.public_key())
        ctx.check("digest §8.2: SECC leaf DomainComponent CPO, key secp521r1 or Ed448", dc == ["CPO"] and alg in ("secp521r1", "ed448"),
                  f"DC {dc}, key {alg}")


@case("TC_SECC_TLS_002", "A TLS 1.2-only ClientHello is refused", group="TLS",
      purpose="-20 uses TLS 1.3 only.",
      requirement="digest §1.3 (-20 TLS version: TLS 1.3; ADVANTICS min = max = 1.3)",
      steps=("ClientHello offering TLS 1.2 only (with the vehicle chain)", "expect the handshake to fail"),
      tags=("tls", "security", "negative"), needs=("tls",))
async def tls_002(ctx: CaseContext) -> None:
    ctxt = ctx.sut.client_context(profile=_profile(ctx))
    ctxt.maximum_version = ssl.TLSVersion.TLSv1_2
    ctxt.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctxt.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
    except ssl.SSLError:
        pass
    accepted, detail = await _tls_attempt(ctx, ctxt, "TLS 1.2")
    ctx.check("digest §1.3: TLS 1.2 refused for -20", not accepted, detail)


@case("TC_SECC_TLS_003", "No client certificate is refused", group="TLS",
      purpose="TLS 1.3 in -20 requires mutual authentication.",
      requirement="digest §1.3 (Mutual authentication required with TLS 1.3)",
      steps=("TLS 1.3 handshake without a client certificate", "expect failure or the connection dropped before SAP"),
      tags=("tls", "security", "negative"), needs=("tls",))
async def tls_003(ctx: CaseContext) -> None:
    accepted, detail = await _tls_attempt(ctx, ctx.sut.client_context(identity=None, profile=_profile(ctx)), "no client cert")
    ctx.check("digest §1.3: no client certificate -> refused", not accepted, detail)


@case("TC_SECC_TLS_004", "A client certificate from an untrusted CA is refused", group="TLS",
      purpose="The SECC verifies the EV chain against its trust anchor (V2G root; Josev: OEM root).",
      requirement="digest §1.3 (SECC verifies the EV client chain) / §8.2 PKI roles",
      steps=("generate a rogue PKI", "TLS handshake presenting the rogue vehicle chain", "expect failure"),
      tags=("tls", "security", "negative", "pki"), needs=("tls",))
async def tls_004(ctx: CaseContext) -> None:
    from iso15118.security import tls as T
    from iso15118.security.pki import load_pki

    rogue = load_pki(await asyncio.to_thread(_rogue_pki, _sut_algorithm(ctx))).paths
    anchor = ctx.sut.trust_anchor()
    assert anchor is not None  # the case needs --pki (a TLS endpoint's trust anchor)
    ident = "oem" if ctx.sut._josev_layout() else "vehicle"
    chain, leaf = {"vehicle": ("vehicleCertChain", "vehicleLeaf"), "oem": ("oemCertChain", "oemLeaf")}[ident]
    c = T.client_context([anchor], rogue.chain(chain), rogue.key(leaf), rogue.password_file(leaf), profile=_profile(ctx))
    accepted, detail = await _tls_attempt(ctx, c, "rogue CA")
    ctx.check("digest §1.3: untrusted client chain refused", not accepted, detail)


@case("TC_SECC_TLS_005", "Plain TCP on the TLS endpoint is refused", group="TLS",
      purpose="With TLS enforced the SECC does not speak plain V2GTP.",
      requirement="digest §1.1 SDP Security byte / §1.3 (TLS as the -20 default)",
      steps=("plain TCP connect to the TLS port", "send a SAP request", "expect no SAP answer"),
      tags=("tls", "security", "negative"), needs=("tls",))
async def tls_005(ctx: CaseContext) -> None:
    reader, writer = await asyncio.open_connection(ctx.sut.host, ctx.sut.port)
    body = m.encode(m.SupportedAppProtocolReq(app_protocol=[_proto(_ns(ctx), 1, 1)]))
    writer.write(encode_header(0x8001, len(body)) + body)
    ctx.evidence.frame("tx", 0x8001, body, None, name="supportedAppProtocolReq (plain TCP)")
    try:
        data = await asyncio.wait_for(reader.read(64), 3.0)
    except (TimeoutError, ConnectionError):
        data = b""
    writer.close()
    answered = data[:2] == b"\x01\xfe"
    ctx.check("digest §1.3: no plain V2GTP on the TLS endpoint", not answered,
              f"got {len(data)} bytes" + (" (a V2GTP answer)" if answered else " (no V2GTP answer)"))
    _ = RC


@case("TC_SECC_Timing_004", "A late (but legal) charge-loop request keeps the session", group="Timing",
      purpose="The EV may pause 3 s between two charge-loop requests; the SECC must not end the session before V2G_SECC_Sequence_Timeout.",
      requirement="digest §6.2 (V2G_SECC_Sequence_Timeout 60 s; the 0.5 s loop value is defined but unused, UNVERIFIED)",
      steps=("charge 3 loops", "wait 3 s before the next ChargeLoopReq", "expect a normal answer and a clean end"),
      tags=("timing", "loop", "late"))
async def timing_004(ctx: CaseContext) -> None:
    from conformance.cases._common import stop_after

    t = ctx.tester()
    stop_after(t, 6)
    held = await t.run(lambda n, msg: n.endswith("ChargeLoopReq") and t.loop_responses == 3)
    ctx.precondition(held is not None, "reached the charge loop")
    ctx.evidence.mark("EV silent for 3 s")
    await asyncio.sleep(3.0)
    # refresh the held request's TimeStamp: it is sent 3 s later than built
    import dataclasses

    from iso15118.session.events import SendMessage

    msg = dataclasses.replace(held.message, header=t.header())
    t.held = SendMessage(held.payload_type, m.encode(msg), msg)
    await t.release(max_time=30)
    late = next((e for e in ctx.evidence.messages("rx") if e.name.endswith("ChargeLoopRes") and e.t > ctx.evidence.markers[-1][0]), None)
    ctx.check("digest §6.2: the late request is answered OK", late is not None and late.response_code == "OK",
              f"{late.name} {late.response_code}" if late else "no answer")
    ctx.check("digest §6.2: the session ends normally", t.ended is not None and t.ended.ok, t.ended.reason if t.ended else "")
