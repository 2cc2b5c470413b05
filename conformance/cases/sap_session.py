"""SupportedAppProtocol (digest §2) and SessionSetup / SessionID handling (digest §6.4)."""

from __future__ import annotations

from conformance.cases._common import RC, expect, expect_refused, expect_session_over, m, reach, with_session, wrong_id
from conformance.catalogue import CaseContext, case
from iso15118.session.services import NAMESPACE, NS_AC, NS_DC

APR = m.AppProtocolResponseCode


def _proto(ns: str, sid: int, prio: int, major: int = 1, minor: int = 0) -> m.AppProtocol:
    return m.AppProtocol(protocol_namespace=ns, version_number_major=major, version_number_minor=minor, schema_id=sid, priority=prio)


async def _sap(ctx: CaseContext, protos: list[m.AppProtocol]):  # type: ignore[no-untyped-def]
    t = ctx.tester()
    await t.connect()
    rx = await t.exchange(m.SupportedAppProtocolReq(app_protocol=protos))
    return t, rx


def _ns(ctx: CaseContext) -> str:
    return NAMESPACE[ctx.service().family]  # type: ignore[index]


@case("TC_SECC_SAP_001", "SAP with the SUT's -20 namespace is accepted", group="SAP",
      purpose="The SECC negotiates ISO 15118-20 when the EV offers the namespace it supports.",
      requirement="digest §2 (SAP selection rules, [V2G20-167])",
      steps=("connect", "supportedAppProtocolReq with the -20 AC or DC namespace, major 1 minor 0, SchemaID 7",
             "expect OK_SuccessfulNegotiation with SchemaID 7 within 2 s"),
      tags=("sap", "handshake"))
async def sap_001(ctx: CaseContext) -> None:
    t, rx = await _sap(ctx, [_proto(_ns(ctx), 7, 1)])
    expect(ctx, rx, "supportedAppProtocolRes", APR.OK_SUCCESSFUL_NEGOTIATION.value, "digest §2: -20 namespace negotiated")
    ctx.check("X:SAP SchemaID echoes the selected entry", rx.answered and rx.msg.schema_id == 7,
              f"SchemaID {getattr(rx.msg, 'schema_id', None)}")


@case("TC_SECC_SAP_002", "SAP with only unknown namespaces fails", group="SAP",
      purpose="No common protocol: the SECC answers Failed_NoNegotiation and omits the SchemaID.",
      requirement="digest §2 (No match -> Failed_NoNegotiation; SchemaID omitted on failure)",
      steps=("supportedAppProtocolReq with urn:example:unknown:1", "expect Failed_NoNegotiation without SchemaID"),
      tags=("sap", "negative"))
async def sap_002(ctx: CaseContext) -> None:
    t, rx = await _sap(ctx, [_proto("urn:example:unknown:protocol", 1, 1)])
    expect(ctx, rx, "supportedAppProtocolRes", APR.FAILED_NO_NEGOTIATION.value, "digest §2: no match -> Failed_NoNegotiation")
    ctx.check("X:SAP SchemaID omitted on failure", rx.answered and rx.msg.schema_id is None,
              f"SchemaID {getattr(rx.msg, 'schema_id', None)}")


@case("TC_SECC_SAP_003", "SAP priority: the best supported entry wins", group="SAP",
      purpose="With several entries the SECC picks the supported one with the lowest Priority value.",
      requirement="digest §2 (Order: sort by Priority ascending, [V2G20-167])",
      steps=("offer unknown namespace (priority 1), the SUT's -20 namespace (2), the other -20 namespace (3)",
             "expect the SchemaID of the best supported entry"),
      tags=("sap",))
async def sap_003(ctx: CaseContext) -> None:
    mine = _ns(ctx)
    other = NS_DC if mine == NS_AC else NS_AC
    t, rx = await _sap(ctx, [_proto("urn:example:unknown:protocol", 1, 1), _proto(other, 3, 3), _proto(mine, 2, 2)])
    # the SUT's family (priority 2) beats the other -20 family (3), supported or not
    ok = rx.answered and rx.msg.schema_id == 2 and rx.code and rx.code.startswith("OK")
    ctx.check("digest §2: lowest Priority among supported namespaces", bool(ok),
              f"{rx.name} {rx.code} SchemaID {getattr(rx.msg, 'schema_id', None)} (expected 2)")


@case("TC_SECC_SAP_004", "SAP minor version deviation is accepted", group="SAP",
      purpose="A higher minor version of -20 is still negotiated (with or without the minor-deviation code).",
      requirement="digest §2 (Version check; DISAGREE #7: OK or OK_SuccessfulNegotiationWithMinorDeviation)",
      steps=("supportedAppProtocolReq -20 namespace major 1 minor 3", "expect an OK* code and the SchemaID"),
      tags=("sap",))
async def sap_004(ctx: CaseContext) -> None:
    t, rx = await _sap(ctx, [_proto(_ns(ctx), 4, 1, minor=3)])
    expect(ctx, rx, "supportedAppProtocolRes",
           (APR.OK_SUCCESSFUL_NEGOTIATION.value, APR.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION.value),
           "digest §2: minor deviation negotiated")


@case("TC_SECC_SAP_005", "SAP with an unsupported major version fails", group="SAP",
      purpose="-20 requires major version 1; major 2 of the -20 namespace must not be negotiated.",
      requirement="digest §2 (Version check: -20 requires major 1)",
      steps=("supportedAppProtocolReq -20 namespace major 2", "expect Failed_NoNegotiation"),
      tags=("sap", "negative"))
async def sap_005(ctx: CaseContext) -> None:
    t, rx = await _sap(ctx, [_proto(_ns(ctx), 1, 1, major=2)])
    expect(ctx, rx, "supportedAppProtocolRes", APR.FAILED_NO_NEGOTIATION.value, "digest §2: major 2 not negotiated")


@case("TC_SECC_SAP_006", "SessionSetupReq before SAP is refused", group="SAP",
      purpose="The first message must be supportedAppProtocolReq; anything else ends the session.",
      requirement="digest §2 (Wrong first message: terminate) / §3.3 start state",
      steps=("connect", "send SessionSetupReq first", "expect no positive answer (FAILED, no response or closed)"),
      tags=("sap", "negative", "sequence"))
async def sap_006(ctx: CaseContext) -> None:
    t = ctx.tester()
    await t.connect()
    rx = await t.exchange(m.SessionSetupReq(header=t.header(bytes(8)), evcc_id=t.ev.evcc_id), timeout=2.5)
    await expect_refused(ctx, t, rx, "digest §2: wrong first message is not accepted")


# --------------------------------------------------------------------------- SessionSetup


@case("TC_SECC_SessionSetup_001", "New session gets an 8-byte SessionID", group="SessionSetup",
      purpose="SessionSetupReq with SessionID 0 opens a new session with a fresh 8-byte ID and an EVSEID.",
      requirement="digest §6.4 (SECC assigns 8 random bytes -> OK_NewSessionEstablished)",
      steps=("SAP", "SessionSetupReq SessionID=00..00", "expect OK_NewSessionEstablished, 8-byte non-zero ID, EVSEID"),
      tags=("session", "session_id"))
async def ss_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "SessionSetupReq")
    rx = await t.exchange(held.message)
    expect(ctx, rx, "SessionSetupRes", RC.OK_NEW_SESSION_ESTABLISHED.value, "digest §6.4: new session established")
    if rx.answered:
        sid = rx.msg.header.session_id
        ctx.check("X:CT sessionIDType: 8 bytes, not all zero", len(sid) == 8 and sid != bytes(8), f"SessionID {sid.hex()}")
        ctx.check("X:CM SessionSetupRes EVSEID present", bool(rx.msg.evse_id), f"EVSEID {rx.msg.evse_id!r}")


@case("TC_SECC_SessionSetup_002", "Two sessions get different SessionIDs", group="SessionSetup",
      purpose="SessionIDs are random per session, never reused for a new session.",
      requirement="digest §6.4 (8 random bytes per new session)",
      steps=("session 1 to SessionSetupRes, SessionStop", "session 2 to SessionSetupRes", "compare the IDs"),
      tags=("session", "session_id"))
async def ss_002(ctx: CaseContext) -> None:
    ids = []
    for _ in range(2):
        t, held = await reach(ctx, "AuthorizationSetupReq")
        ids.append(t.session_id)
        await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE))
        await t.close()
        if ctx.sut.before_case is not None:
            await ctx.sut.before_case()
    ctx.check("digest §6.4: a new SessionID per session", ids[0] != ids[1], f"{ids[0].hex()} vs {ids[1].hex()}")


@case("TC_SECC_SessionSetup_003", "Unknown old SessionID opens a new session", group="SessionSetup",
      purpose="A SessionSetupReq with a non-zero ID the SECC never paused must not join anything.",
      requirement="digest §6.4 (known paused ID -> OK_OldSessionJoined, otherwise new session)",
      steps=("SAP", "SessionSetupReq with SessionID 0x1122334455667788", "expect OK_NewSessionEstablished and another ID"),
      tags=("session", "session_id", "resume"))
async def ss_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "SessionSetupReq")
    bogus = bytes.fromhex("1122334455667788")
    rx = await t.exchange(with_session(held.message, bogus))
    expect(ctx, rx, "SessionSetupRes", RC.OK_NEW_SESSION_ESTABLISHED.value, "digest §6.4: unknown ID -> new session")
    if rx.answered:
        ctx.check("digest §6.4: the unknown ID is not adopted", rx.msg.header.session_id != bogus,
                  f"SessionID {rx.msg.header.session_id.hex()}")


@case("TC_SECC_SessionSetup_004", "Wrong SessionID after setup -> FAILED_UnknownSession", group="SessionSetup",
      purpose="Every request after SessionSetup must carry the assigned SessionID.",
      requirement="digest §3.3 last paragraph / §6.4 (mismatch -> FAILED_UnknownSession)",
      steps=("reach AuthorizationSetupReq", "send it with a different SessionID", "expect FAILED_UnknownSession",
             "expect the session to be over"),
      tags=("session", "session_id", "negative"))
async def ss_004(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(with_session(held.message, wrong_id(t.session_id)))
    expect(ctx, rx, "AuthorizationSetupRes", RC.FAILED_UNKNOWN_SESSION.value, "digest §6.4: wrong SessionID refused")
    await expect_session_over(ctx, t)


@case("TC_SECC_SessionSetup_005", "Zero SessionID after setup -> FAILED_UnknownSession", group="SessionSetup",
      purpose="Falling back to the all-zero ID after setup is a wrong SessionID too.",
      requirement="digest §6.4 (every later message carries the assigned ID)",
      steps=("reach ServiceDiscoveryReq", "send it with SessionID 00..00", "expect FAILED_UnknownSession"),
      tags=("session", "session_id", "negative"))
async def ss_005(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDiscoveryReq")
    rx = await t.exchange(with_session(held.message, bytes(8)))
    expect(ctx, rx, "ServiceDiscoveryRes", RC.FAILED_UNKNOWN_SESSION.value, "digest §6.4: zero SessionID refused")


@case("TC_SECC_SessionSetup_006", "Repeated SessionSetupReq -> FAILED_SequenceError", group="SessionSetup",
      purpose="SessionSetup happens once per connection.",
      requirement="digest §3.3 (any other request -> FAILED_SequenceError)",
      steps=("reach AuthorizationSetupReq", "send SessionSetupReq again (with the assigned ID)", "expect FAILED_SequenceError"),
      tags=("session", "sequence", "negative"))
async def ss_006(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(m.SessionSetupReq(header=t.header(), evcc_id=t.ev.evcc_id))
    expect(ctx, rx, "SessionSetupRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: SessionSetupReq out of sequence")
