"""DIN SPEC 70121 and ISO 15118-2 chargers under test, in the style of DIN 70122 and ISO 15118-4.

The tester is a DIN / -2 vehicle at message level (:mod:`conformance.tester_legacy`); each
case is written once and registered for both protocols where both have the behaviour
(``TC_SECC_DIN_<group>_<n>`` and ``TC_SECC_ISO2_<group>_<n>``), for one where only it has it
(-2 AC, renegotiation and pause; DIN's restrictions).  The requirement each case checks is
named by the section of the DIN SPEC 70121 / ISO 15118-2 text and the requirement ID the
public implementations quote there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, cast

from conformance import legacy as L
from conformance.cases._common import CLOSE_DELAY, CLOSE_MARGIN, expect
from conformance.cases._common import expect_refused as _expect_refused
from conformance.catalogue import CaseContext, case
from conformance.tester_legacy import LegacyTester, LRx, StepFailed
from iso15118 import messages as m
from iso15118.transport.v2gtp import encode_header

APR = m.AppProtocolResponseCode
Run = Callable[[CaseContext], Awaitable[None]]


def _ev(ctx: CaseContext, ac: bool) -> L.EvState:
    import zlib

    return L.EvState(ac=ac, evcc_id=(zlib.crc32(ctx.case.id.encode()) & 0xFFFFFFFF).to_bytes(4, "big") + bytes([0x02, len(ctx.testers)]))


def tester(ctx: CaseContext, p: L.Proto, *, ac: bool = False, loops: int = 3) -> LegacyTester:
    ctx.protocol = p
    ctx.feature(p.key)
    t = LegacyTester(ctx.sut, ctx.evidence, ctx.checks, p, ev=_ev(ctx, ac), loops=loops)
    ctx.testers.append(t)
    return t


async def upto(ctx: CaseContext, p: L.Proto, step: str, *, ac: bool = False, loops: int = 3) -> LegacyTester:
    """A tester at the point where it would start ``step`` of the normal session: every step before
    it must succeed (a SUT that does not get there has failed)."""
    t = tester(ctx, p, ac=ac, loops=loops)
    try:
        await t.run_to(step)
    except StepFailed as exc:
        ctx.require(f"precondition: the SUT completes the {p.title} steps up to {step}", False, str(exc))
    return t


async def expect_refused(ctx: CaseContext, t: LegacyTester, rx: LRx, requirement: str) -> bool:
    """The -20 rule (a FAILED code, or a close within 5 s + 1.5 s; silence is a fail) for a DIN / -2 tester."""
    return await _expect_refused(ctx, cast(Any, t), rx, requirement)


def ok(rx: LRx) -> bool:
    return rx.answered and (rx.code or "").startswith("OK")


async def refused(ctx: CaseContext, t: LegacyTester, rx: LRx, requirement: str, code: str | None = None) -> None:
    """A refusal with positive evidence; with ``code`` the answer, if any, must carry it."""
    if code is not None and rx.answered:
        expect(ctx, rx, rx.name, code, requirement)
        return
    await expect_refused(ctx, t, rx, requirement)


async def session_over(ctx: CaseContext, t: LegacyTester, p: L.Proto) -> None:
    """After a FAILED answer the session is over: the SUT closes, or refuses a further request."""
    req = f"{p.ref('§5.4')}: a FAILED response ends the session"
    if t.closed_by_sut:
        ctx.check(req, True, "the SUT closed the connection")
        return
    try:
        rx = await t.exchange(L.req_service_discovery(p, t.ev), timeout=1.5)
    except Exception as exc:  # noqa: BLE001 - closed meanwhile
        ctx.check(req, True, f"connection unusable: {exc}")
        return
    ctx.check(req, not ok(rx), f"ServiceDiscoveryReq after the FAILED response: {rx.name or 'no answer'} {rx.code or rx.error}")


REGISTERED: list[str] = []


def both(group: str, num: int, title: str, *, purpose: str, requirement: str, steps: tuple[str, ...], tags: tuple[str, ...] = (),
         needs: tuple[str, ...] = ("DC",), protos: tuple[L.Proto, ...] = L.PROTOS, timeout: float = 60.0
         ) -> Callable[[Callable[[CaseContext, L.Proto], Awaitable[None]]], None]:
    """Register ``fn(ctx, proto)`` as one case per protocol (DIN cases need a DC charger: DIN is DC only)."""

    def deco(fn: Callable[[CaseContext, L.Proto], Awaitable[None]]) -> None:
        for p in protos:
            cid = f"TC_SECC_{p.label}_{group}_{num:03d}"

            def make(pp: L.Proto) -> Run:
                async def run(ctx: CaseContext) -> None:
                    await fn(ctx, pp)

                return run

            case(cid, f"{p.title}: {title}", group=group, purpose=purpose.replace("{P}", p.title),
                 requirement=requirement.replace("{P}", p.title), steps=steps,
                 tags=(*tags, p.key, "legacy"), needs=(*needs, p.key, "notls", *(("DC",) if p.din else ())),
                 timeout=timeout)(make(p))
            REGISTERED.append(cid)

    return deco


# =============================================================================== SAP


def _other(p: L.Proto) -> L.Proto:
    return L.ISO2 if p.din else L.DIN


@both("SAP", 1, "SAP with the protocol's namespace is negotiated", needs=(),
      purpose="The SECC negotiates {P} when the EV offers its namespace with major version 2 and echoes the SchemaID.",
      requirement="DIN/-2 digest §1.1-§1.3 (namespace + major version; SchemaID of the chosen entry)",
      steps=("connect", "supportedAppProtocolReq with the {P} namespace 2.0, SchemaID 5", "expect OK_SuccessfulNegotiation, SchemaID 5"),
      tags=("sap", "handshake"))
async def sap_1(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    rx = await t.sap([t.app_protocol(schema_id=5)])
    expect(ctx, rx, "supportedAppProtocolRes", APR.OK_SUCCESSFUL_NEGOTIATION.value, f"{p.ref('§1.3')}: {p.title} 2.0 negotiated")
    ctx.check(f"{p.ref('§1.1')}: the SchemaID of the chosen entry", rx.answered and rx.msg.schema_id == 5,
              f"SchemaID {getattr(rx.msg, 'schema_id', None)} (expected 5)")


@both("SAP", 2, "SAP priority: the supported entry with the lowest Priority value wins", needs=(),
      purpose="Among several entries the SECC picks the supported one with the best (lowest) Priority.",
      requirement="DIN/-2 digest §1.1 (Priority 1 = most preferred) / §1.3 (sort by Priority, first supported entry)",
      steps=("offer an unknown namespace (Priority 1), {P} (Priority 2, SchemaID 7) and the other legacy protocol (Priority 3)",
             "expect SchemaID 7"), tags=("sap",))
async def sap_2(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    rx = await t.sap([t.app_protocol(ns="urn:example:unknown:protocol", schema_id=3, priority=1),
                      t.app_protocol(schema_id=7, priority=2), t.app_protocol(_other(p), schema_id=9, priority=3)])
    ctx.check(f"{p.ref('§1.3')}: the lowest Priority among the supported entries", ok(rx) and rx.msg.schema_id == 7,
              f"{rx.name} {rx.code} SchemaID {getattr(rx.msg, 'schema_id', None)} (expected 7)")


@both("SAP", 3, "SAP priority beats list order", needs=(),
      purpose="Priority, not the position in the list, decides: {P} listed last with Priority 1 is chosen.",
      requirement="DIN/-2 digest §1.3 (ordering by Priority; DISAGREE D1: list order is the OpenV2G example's defect)",
      steps=("offer the other legacy protocol (Priority 2, SchemaID 9) first, then {P} (Priority 1, SchemaID 4)",
             "expect SchemaID 4"), tags=("sap",))
async def sap_3(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    rx = await t.sap([t.app_protocol(_other(p), schema_id=9, priority=2), t.app_protocol(schema_id=4, priority=1)])
    ctx.check(f"{p.ref('§1.3')}: Priority decides, not the list order", ok(rx) and rx.msg.schema_id == 4,
              f"{rx.name} {rx.code} SchemaID {getattr(rx.msg, 'schema_id', None)} (expected 4)")


@both("SAP", 4, "SAP with an unsupported major version: Failed_NoNegotiation", needs=(),
      purpose="{P} with major version 3 matches nothing: Failed_NoNegotiation without a SchemaID.",
      requirement="DIN/-2 digest §1.3 (namespace and major version must match; no match -> Failed_NoNegotiation, [V2G2-172])",
      steps=("supportedAppProtocolReq {P} namespace, major 3", "expect Failed_NoNegotiation, no SchemaID"), tags=("sap", "negative"))
async def sap_4(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    rx = await t.sap([t.app_protocol(major=3, schema_id=2)])
    expect(ctx, rx, "supportedAppProtocolRes", APR.FAILED_NO_NEGOTIATION.value, f"{p.ref('§1.3')}: major 3 not negotiated")
    ctx.check(f"{p.ref('§1.1')}: SchemaID omitted on failure", rx.answered and rx.msg.schema_id is None,
              f"SchemaID {getattr(rx.msg, 'schema_id', None)}")


@both("SAP", 5, "SAP minor version deviation is negotiated", needs=(),
      purpose="{P} 2.7 (another minor version) is still negotiated, with the SchemaID of the entry.",
      requirement="DIN/-2 digest §1.3 (minor differs -> OK_SuccessfulNegotiationWithMinorDeviation in J, E and R)",
      steps=("supportedAppProtocolReq {P} 2.7, SchemaID 6", "expect an OK code and SchemaID 6"), tags=("sap",))
async def sap_5(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    rx = await t.sap([t.app_protocol(minor=7, schema_id=6)])
    expect(ctx, rx, "supportedAppProtocolRes",
           (APR.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION.value, APR.OK_SUCCESSFUL_NEGOTIATION.value),
           f"{p.ref('§1.3')}: minor deviation negotiated")
    ctx.check(f"{p.ref('§1.1')}: the SchemaID of the chosen entry", rx.answered and rx.msg.schema_id == 6,
              f"SchemaID {getattr(rx.msg, 'schema_id', None)}")


# =============================================================================== SessionSetup


@both("SessionSetup", 1, "A new session gets a fresh SessionID and the EVSEID", needs=(),
      purpose="SessionSetupReq with SessionID 0 opens a new session: OK_NewSessionEstablished, a non-zero ID of 1..8 bytes, EVSEID.",
      requirement="DIN/-2 digest §2.2 / §3.1 row 1, §5.2 (SessionID 0 -> new random ID; hexBinary <= 8 bytes)",
      steps=("SAP", "SessionSetupReq SessionID 00..00", "expect OK_NewSessionEstablished, new ID, EVSEID"), tags=("session",))
async def ss_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    rx = await t.step("SessionSetup")
    expect(ctx, rx, "SessionSetupRes", "OK_NewSessionEstablished", f"{p.ref('§5.2')}: new session established")
    if rx.answered:
        sid = rx.msg.session_id
        ctx.check(f"{p.ref('§5.2')}: SessionID 1..8 bytes, not all zero", 1 <= len(sid) <= 8 and any(sid), f"SessionID {sid.hex()}")
        evse = rx.msg.text("EVSEID")
        ctx.check(f"{p.ref('§7.2')}: SessionSetupRes carries the EVSEID", evse not in (None, "", b""), f"EVSEID {evse!r}")


@both("SessionSetup", 2, "An unknown old SessionID opens a new session", needs=(),
      purpose="A SessionSetupReq with a non-zero ID the SECC does not know must not join anything: a new ID, OK_NewSessionEstablished.",
      requirement="DIN/-2 digest §5.2 (unknown non-zero ID -> new ID and OK_NewSessionEstablished, never FAILED, [V2G2-756])",
      steps=("SAP", "SessionSetupReq with SessionID 1122334455667788", "expect OK_NewSessionEstablished and another ID"),
      tags=("session", "resume"))
async def ss_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    bogus = bytes.fromhex("1122334455667788")
    rx = await t.exchange(L.req_session_setup(p, t.ev), session_id=bogus)
    expect(ctx, rx, "SessionSetupRes", "OK_NewSessionEstablished", f"{p.ref('§5.2')}: unknown ID -> new session")
    if rx.answered:
        ctx.check(f"{p.ref('§5.2')}: the unknown ID is not adopted", rx.msg.session_id != bogus, f"SessionID {rx.msg.session_id.hex()}")


@both("SessionSetup", 3, "A wrong SessionID after setup: FAILED_UnknownSession", needs=(),
      purpose="Every request after SessionSetup carries the assigned SessionID; another one is refused and ends the session.",
      requirement="DIN/-2 digest §5.2 (different SessionID -> FAILED_UnknownSession, [V2G2-460], [V2G-DC-391]) / §5.4",
      steps=("reach ServiceDiscovery", "ServiceDiscoveryReq with every SessionID byte flipped", "expect FAILED_UnknownSession",
             "the session is over"), tags=("session", "session_id", "negative"))
async def ss_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ServiceDiscovery")
    wrong = bytes(b ^ 0x5A for b in t.session_id)
    rx = await t.exchange(L.req_service_discovery(p, t.ev), session_id=wrong)
    await refused(ctx, t, rx, f"{p.ref('§5.2')}: wrong SessionID refused", "FAILED_UnknownSession")
    if rx.answered:
        await session_over(ctx, t, p)


@both("SessionSetup", 4, "A second SessionSetupReq: FAILED_SequenceError", needs=(),
      purpose="SessionSetup happens once per connection; repeating it after ServiceDiscovery is out of sequence.",
      requirement="DIN/-2 digest §2.3 / §3.2 (requests not in the state table -> FAILED_SequenceError, [V2G2-538], [V2G-DC-390])",
      steps=("reach PaymentSelection", "SessionSetupReq again with the assigned ID", "expect FAILED_SequenceError"),
      tags=("session", "sequence", "negative"))
async def ss_4(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PaymentSelection")
    rx = await t.exchange(L.req_session_setup(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: SessionSetupReq out of sequence", "FAILED_SequenceError")


# =============================================================================== services and payment


@both("ServiceDiscovery", 1, "ServiceDiscovery offers a charge service and ExternalPayment",
      purpose="The SECC offers its charge service (ServiceID, DC energy transfer) and EIM (ExternalPayment).",
      requirement="DIN/-2 digest §2.2 row 2, §2.7 / §3.1 row 2, §7.2 (PaymentOptions, ChargeService)",
      steps=("reach ServiceDiscovery", "ServiceDiscoveryReq", "expect OK, ExternalPayment, a ServiceID, a DC transfer mode"),
      tags=("services",))
async def sd_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ServiceDiscovery")
    rx = await t.step("ServiceDiscovery")
    expect(ctx, rx, "ServiceDiscoveryRes", "OK", f"{p.ref('§2.2')}: ServiceDiscoveryRes OK")
    ctx.check(f"{p.ref('§2.7')}: ExternalPayment (EIM) offered", "ExternalPayment" in t.payment_options, f"payment options {t.payment_options}")
    ctx.check(f"{p.ref('§7.2')}: the charge service has a ServiceID", t.service_id > 0, f"ServiceID {t.service_id}")
    ctx.check(f"{p.ref('§2.1')}: a DC energy transfer mode offered", any(str(x).startswith("DC") for x in t.energy_modes),
              f"modes {t.energy_modes}")


@both("PaymentSelection", 1, "Selecting a service that was not offered: FAILED_ServiceSelectionInvalid",
      purpose="The SelectedServiceList must hold the offered charge service; ServiceID 77 is refused.",
      requirement="DIN/-2 digest §2.4 (FAILED_ServiceSelectionInvalid, [V2G-DC-396], [V2G-DC-635]) / §3.2",
      steps=("reach PaymentSelection", "selection with ServiceID 77", "expect FAILED_ServiceSelectionInvalid"),
      tags=("services", "negative"))
async def ps_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PaymentSelection")
    rx = await t.exchange(L.req_payment_selection(p, t.ev, 77 if t.service_id != 77 else 78))
    await refused(ctx, t, rx, f"{p.ref('§2.4')}: unoffered service refused", "FAILED_ServiceSelectionInvalid")


@both("PaymentSelection", 2, "Selecting a payment option that was not offered: FAILED_PaymentSelectionInvalid",
      purpose="DIN allows ExternalPayment only; -2 refuses an option the SECC did not offer (Contract over plain TCP).",
      requirement="DIN/-2 digest §2.1, §2.4 (Contract -> FAILED_PaymentSelectionInvalid, [V2G-DC-395]) / §3.2",
      steps=("reach PaymentSelection", "SelectedPaymentOption Contract", "expect FAILED_PaymentSelectionInvalid"),
      tags=("services", "negative"))
async def ps_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PaymentSelection")
    if not p.din and "Contract" in t.payment_options:
        ctx.not_applicable("the SECC offers Contract (PnC): selecting it is legal")
    rx = await t.exchange(L.req_payment_selection(p, t.ev, t.service_id, option="Contract"))
    await refused(ctx, t, rx, f"{p.ref('§2.4')}: unoffered payment option refused", "FAILED_PaymentSelectionInvalid")


# =============================================================================== authorization


@both("Authorization", 1, "EIM authorization: the Ongoing loop ends Finished",
      purpose="The EV polls while the SECC answers Ongoing; EIM ends with Finished within V2G_EVCC_Ongoing_Timeout, every answer OK and in time.",
      requirement="DIN/-2 digest §2.6 / §2.7 / §3.1 row 6 (EVSEProcessing Ongoing -> repeat; Finished; 60 s Ongoing timeout, §4.3)",
      steps=("reach Authorization", "poll until EVSEProcessing=Finished", "count the rounds"), tags=("authorization", "loop"))
async def auth_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "Authorization")
    rx = await t.step("Authorization")
    rounds = sum(1 for e in ctx.evidence.entries if e.direction == "rx" and e.name == f"{p.authorization}Res")
    ctx.metric("authorization_rounds", rounds)
    expect(ctx, rx, f"{p.authorization}Res", "OK", f"{p.ref('§2.6')}: every round answered OK")
    ctx.check(f"{p.ref('§4.3')}: Finished within the Ongoing timeout", ok(rx) and rx.msg.text("EVSEProcessing") == "Finished",
              f"EVSEProcessing {rx.msg.text('EVSEProcessing') if rx.answered else None} after {rounds} round(s) {rx.error}")


@both("Authorization", 2, "Authorization before the payment selection: FAILED_SequenceError",
      purpose="The authorization poll is only accepted after the service and payment selection.",
      requirement="DIN/-2 digest §2.3 / §3.2 (state table; FAILED_SequenceError, [V2G-DC-390], [V2G2-538])",
      steps=("reach PaymentSelection", "send the authorization request instead", "expect FAILED_SequenceError"),
      tags=("authorization", "sequence", "negative"))
async def auth_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PaymentSelection")
    rx = await t.exchange(L.req_authorization(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: authorization out of sequence", "FAILED_SequenceError")


# =============================================================================== charge parameters


@both("ChargeParameterDiscovery", 1, "DC charge parameters are plausible",
      purpose="ChargeParameterDiscoveryRes Finished carries DC_EVSEChargeParameter: max voltage in (0, 1500] V, max current > 0, min <= max.",
      requirement="DIN/-2 digest §2.2 row 5 / §3.1 row 7, §7.3 (DC_EVSEChargeParameter, PhysicalValue)",
      steps=("reach ChargeParameterDiscovery", "DC_EVChargeParameter", "expect Finished and plausible EVSE limits"), tags=("cpd",))
async def cpd_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery")
    rx = await t.step("ChargeParameterDiscovery")
    expect(ctx, rx, "ChargeParameterDiscoveryRes", "OK", f"{p.ref('§2.2')}: CPD answered OK")
    if not rx.answered:
        return
    dc = "DC_EVSEChargeParameter"
    vmax, vmin = rx.msg.phys(f"{dc}/EVSEMaximumVoltageLimit"), rx.msg.phys(f"{dc}/EVSEMinimumVoltageLimit")
    imax, imin = rx.msg.phys(f"{dc}/EVSEMaximumCurrentLimit"), rx.msg.phys(f"{dc}/EVSEMinimumCurrentLimit")
    ctx.check(f"{p.ref('§2.6')}: EVSEProcessing Finished", rx.msg.text("EVSEProcessing") == "Finished", f"{rx.msg.text('EVSEProcessing')}")
    ctx.check(f"{p.ref('§7.3')}: EVSEMaximumVoltageLimit in (0, 1500] V", vmax is not None and 0 < vmax <= 1500, f"{vmax} V")
    ctx.check(f"{p.ref('§7.3')}: EVSEMaximumCurrentLimit > 0", imax is not None and imax > 0, f"{imax} A")
    ctx.check(f"{p.ref('§7.3')}: minimum limits not above the maximum ones",
              vmin is not None and imin is not None and vmax is not None and imax is not None and vmin <= vmax and imin <= imax,
              f"V {vmin}..{vmax}, A {imin}..{imax}")


def _schedule_checks(ctx: CaseContext, p: L.Proto, rx: LRx) -> None:
    tuples = rx.msg.all("SAScheduleList/SAScheduleTuple")
    ctx.check(f"{p.ref('§2.6')} / §7.3: SAScheduleList with at least one SAScheduleTuple when Finished", bool(tuples),
              f"{len(tuples)} tuple(s)")
    if not p.din:
        ctx.check(f"{p.ref('§7.3')}: at most MaxEntriesSAScheduleTuple (3) tuples", len(tuples) <= 3, f"{len(tuples)} tuple(s)")
    ids = []
    for tup in tuples:
        tid = tup.find("SAScheduleTupleID")
        ids.append(int(tid.value) if tid is not None else None)
        sched = tup.find("PMaxSchedule")
        entries = sched.findall("PMaxScheduleEntry") if sched is not None else []
        first = entries[0] if entries else None
        start = None
        if first is not None:
            iv = first.find("RelativeTimeInterval") or first.find("TimeInterval")
            st = iv.find("start") if iv is not None else None
            start = int(st.value) if st is not None else None
        pmax = first.find("PMax") if first is not None else None
        pval = (pmax.value if p.din else L.pv_value(pmax)) if pmax is not None else None
        ctx.check(f"{p.ref('§7.3')}: tuple {ids[-1]}: PMaxSchedule starts at 0 with PMax > 0",
                  start == 0 and pval is not None and Decimal(pval) > 0, f"{len(entries)} entries, first start {start}, PMax {pval}")
    ctx.check(f"{p.ref('§7.3')}: SAScheduleTupleIDs present and distinct ({'short' if p.din else '1..255'})",
              bool(ids) and None not in ids and len(set(ids)) == len(ids) and all(p.din or 1 <= (i or 0) <= 255 for i in ids), f"{ids}")


@both("ChargeParameterDiscovery", 2, "The SAScheduleList is well-formed",
      purpose="With Finished the SECC sends SAScheduleTuples with distinct IDs, each PMaxSchedule starting at 0 with PMax > 0.",
      requirement="DIN/-2 digest §2.6 (SASchedules mandatory in DIN), §3.1 row 7, §7.3 (SAScheduleTuple <= 3, SAIDType)",
      steps=("reach ChargeParameterDiscovery", "expect SAScheduleList with valid tuples"), tags=("cpd", "schedule"))
async def cpd_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery")
    rx = await t.step("ChargeParameterDiscovery")
    ctx.precondition(ok(rx), f"{rx.name} {rx.code or rx.error}")
    _schedule_checks(ctx, p, rx)


@both("ChargeParameterDiscovery", 3, "A requested energy transfer mode not offered is refused",
      purpose="DIN is DC only: AC_three_phase_core is refused; -2: a mode outside SupportedEnergyTransferMode is refused.",
      requirement="DIN/-2 digest §2.1, §2.4 (FAILED_WrongEnergyTransferType [V2G-DC-397] / FAILED_WrongChargeParameter [V2G-DC-398]) / §3.14",
      steps=("reach ChargeParameterDiscovery", "request a mode that was not offered", "expect the wrong-mode code"),
      tags=("cpd", "negative"))
async def cpd_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery")
    modes = ["AC_three_phase_core", "AC_single_phase_core", "DC_core", "DC_extended", "DC_combo_core", "DC_unique"]
    want = next((x for x in modes if x not in t.energy_modes), None)
    if want is None:
        ctx.not_applicable("the SECC offers every energy transfer mode")
    rx = await t.exchange(L.req_charge_parameter(p, t.ev, mode=want))
    codes = (p.wrong_mode_code, "FAILED_WrongChargeParameter")
    if rx.answered:
        expect(ctx, rx, "ChargeParameterDiscoveryRes", codes, f"{p.ref('§2.4')}: {want} refused (offered {t.energy_modes})")
    else:
        await expect_refused(ctx, t, rx, f"{p.ref('§2.4')}: {want} refused")


@both("ChargeParameterDiscovery", 4, "ChargeParameterDiscovery before authorization: FAILED_SequenceError",
      purpose="Skipping the authorization poll is out of sequence (seen in the field: Alpitronic).",
      requirement="DIN/-2 digest §2.3, §2.7 (the poll is not optional) / §3.2 (FAILED_SequenceError)",
      steps=("reach Authorization", "send ChargeParameterDiscoveryReq instead", "expect FAILED_SequenceError"),
      tags=("cpd", "sequence", "negative"))
async def cpd_4(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "Authorization")
    rx = await t.exchange(L.req_charge_parameter(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: CPD out of sequence", "FAILED_SequenceError")


@both("ChargeParameterDiscovery", 5, "AC charge parameters and SAScheduleList", needs=("AC",), protos=(L.ISO2,),
      purpose="An AC SECC answers AC_EVChargeParameter with AC_EVSEChargeParameter (nominal voltage, max current) and schedules.",
      requirement="DIN/-2 digest §3.1 row 7, §7.3 (AC_EVSEChargeParameter: EVSENominalVoltage, EVSEMaxCurrent)",
      steps=("reach ChargeParameterDiscovery (AC)", "AC_EVChargeParameter", "expect plausible AC limits and SAScheduleList"),
      tags=("cpd", "ac"))
async def cpd_5(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery", ac=True)
    rx = await t.step("ChargeParameterDiscovery")
    expect(ctx, rx, "ChargeParameterDiscoveryRes", "OK", f"{p.ref('§3.1')}: AC CPD answered OK")
    if not rx.answered:
        return
    ac = "AC_EVSEChargeParameter"
    vnom, imax = rx.msg.phys(f"{ac}/EVSENominalVoltage"), rx.msg.phys(f"{ac}/EVSEMaxCurrent")
    ctx.check(f"{p.ref('§7.3')}: EVSENominalVoltage 100..480 V", vnom is not None and 100 <= vnom <= 480, f"{vnom} V")
    ctx.check(f"{p.ref('§7.3')}: EVSEMaxCurrent in (0, 500] A", imax is not None and 0 < imax <= 500, f"{imax} A")
    _schedule_checks(ctx, p, rx)


# =============================================================================== CableCheck / PreCharge


@both("CableCheck", 1, "CableCheck ends Finished with EVSE_Ready and a valid isolation",
      purpose="The isolation test loop ends with Finished, EVSE_Ready and EVSEIsolationStatus Valid or Warning within 40 s.",
      requirement="DIN/-2 digest §2.6 (CableCheck: Finished needs EVSE_Ready + isolation Valid/Warning; V2G_EVCC_CableCheck_Timeout 40 s)",
      steps=("reach CableCheck", "repeat CableCheckReq while Ongoing", "expect Finished, EVSE_Ready, Valid/Warning"),
      tags=("cable_check", "dc"))
async def cc_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "CableCheck")
    rx = await t.step("CableCheck")
    expect(ctx, rx, "CableCheckRes", "OK", f"{p.ref('§2.6')}: CableCheck answered OK")
    if rx.answered:
        st = "DC_EVSEStatus"
        ctx.check(f"{p.ref('§2.6')}: Finished within 40 s", rx.msg.text("EVSEProcessing") == "Finished", f"{rx.msg.text('EVSEProcessing')} {rx.error}")
        ctx.check(f"{p.ref('§2.5')}: EVSE_Ready at the end of CableCheck", rx.msg.text(f"{st}/EVSEStatusCode") == "EVSE_Ready",
                  f"{rx.msg.text(f'{st}/EVSEStatusCode')}")
        iso = rx.msg.text(f"{st}/EVSEIsolationStatus")
        ctx.check(f"{p.ref('§2.6')}: isolation Valid or Warning", iso in ("Valid", "Warning"), f"EVSEIsolationStatus {iso}")


@both("CableCheck", 2, "CableCheck before ChargeParameterDiscovery: FAILED_SequenceError",
      purpose="The isolation test comes after the charge parameters.",
      requirement="DIN/-2 digest §2.3 / §3.2 (CableCheckReq accepted after ChargeParameterDiscoveryRes Finished, [V2G-582])",
      steps=("reach ChargeParameterDiscovery", "send CableCheckReq instead", "expect FAILED_SequenceError"),
      tags=("cable_check", "dc", "sequence", "negative"))
async def cc_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery")
    rx = await t.exchange(L.req_cable_check(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: CableCheck out of sequence", "FAILED_SequenceError")


@both("PreCharge", 1, "PreCharge reaches the EV target voltage within 7 s",
      purpose="The SECC drives its output to EVTargetVoltage: within 20 V inside V2G_EVCC_PreCharge_Timeout, never above its maximum.",
      requirement="DIN/-2 digest §2.6 (PreCharge: drive to EVTargetVoltage; within 20 V), §4.3 (V2G_EVCC_PreCharge_Timeout 7 s)",
      steps=("reach PreCharge", "repeat PreChargeReq", "expect EVSEPresentVoltage within 20 V of the target in 7 s"),
      tags=("pre_charge", "dc"))
async def pc_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PreCharge")
    rx = await t.step("PreCharge")
    v = rx.msg.phys("EVSEPresentVoltage") if rx.answered else None
    ctx.check(f"{p.ref('§2.6')}: EVSEPresentVoltage within 20 V of {t.ev.target_voltage} V in 7 s",
              ok(rx) and not rx.error and v is not None, f"{rx.name} {rx.code} {v} V {rx.error}")
    seen = [L.pv_value(L.Msg(x.msg.root).el("EVSEPresentVoltage")) for x in t.answers if isinstance(x.msg, L.Msg) and x.name == "PreChargeRes"]
    top = max((x for x in seen if x is not None), default=None)
    ctx.check(f"{p.ref('§2.6')}: never above EVSEMaximumVoltageLimit", top is None or t.evse_max_voltage is None or top <= t.evse_max_voltage,
              f"max present {top} V, EVSE max {t.evse_max_voltage} V")


@both("PreCharge", 2, "PreCharge before CableCheck: FAILED_SequenceError",
      purpose="Pre-charge is only allowed after a finished isolation test.",
      requirement="DIN/-2 digest §2.3 (PreChargeReq after CableCheckRes Finished, [V2G-DC-499]) / §3.2",
      steps=("reach CableCheck", "send PreChargeReq instead", "expect FAILED_SequenceError"),
      tags=("pre_charge", "dc", "sequence", "negative"))
async def pc_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "CableCheck")
    rx = await t.exchange(L.req_pre_charge(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: PreCharge out of sequence", "FAILED_SequenceError")


@both("PreCharge", 3, "A pre-charge target above the EVSE maximum is not followed",
      purpose="EVTargetVoltage 200 V above EVSEMaximumVoltageLimit: the output never exceeds the EVSE maximum (or the SECC refuses).",
      requirement="DIN/-2 digest §2.6 (PreCharge; re-apply the target each cycle), §7.3 (EVSEMaximumVoltageLimit)",
      steps=("reach PreCharge", "3 PreChargeReq with target = EVSE max + 200 V", "expect present voltage <= EVSE max"),
      tags=("pre_charge", "dc", "limits"))
async def pc_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PreCharge")
    ctx.precondition(t.evse_max_voltage is not None, "no EVSEMaximumVoltageLimit in ChargeParameterDiscoveryRes")
    assert t.evse_max_voltage is not None
    target = t.evse_max_voltage + 200
    seen: list[Decimal] = []
    for _ in range(3):
        rx = await t.exchange(L.req_pre_charge(p, t.ev, float(target)))
        if not ok(rx):
            await refused(ctx, t, rx, f"{p.ref('§2.6')}: target above the maximum refused")
            return
        v = rx.msg.phys("EVSEPresentVoltage")
        if v is not None:
            seen.append(v)
    ctx.check(f"{p.ref('§7.3')}: present voltage never above EVSEMaximumVoltageLimit {t.evse_max_voltage} V",
              bool(seen) and max(seen) <= t.evse_max_voltage, f"present {[str(v) for v in seen]} V for target {target} V")


# =============================================================================== PowerDelivery and the loop


def _loop_req(p: L.Proto, t: LegacyTester) -> Any:
    return L.req_charging_status(p, t.ev) if t.ev.ac else L.req_current_demand(p, t.ev)


@both("PowerDelivery", 1, "PowerDelivery Start opens the charge loop",
      purpose="PowerDelivery(Start / ReadyToChargeState=true) is answered OK and the first loop request is accepted.",
      requirement="DIN/-2 digest §2.2 rows 8-9 / §3.1 rows 10-11 (PowerDeliveryRes, then CurrentDemand only, [V2G-DC-462])",
      steps=("reach PowerDeliveryStart", "PowerDeliveryReq Start", "expect OK", "one CurrentDemandReq, expect OK"),
      tags=("power_delivery",))
async def pd_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PowerDeliveryStart")
    rx = await t.step("PowerDeliveryStart")
    expect(ctx, rx, "PowerDeliveryRes", "OK", f"{p.ref('§2.2')}: PowerDelivery Start accepted")
    rx = await t.exchange(_loop_req(p, t))
    expect(ctx, rx, "CurrentDemandRes", "OK", f"{p.ref('§2.3')}: the charge loop follows PowerDelivery Start")


@both("PowerDelivery", 2, "PowerDelivery with an SAScheduleTupleID not offered: FAILED_TariffSelectionInvalid", protos=(L.ISO2,),
      purpose="The SAScheduleTupleID of PowerDeliveryReq must be one of the offered tuples.",
      requirement="DIN/-2 digest §3.1 row 10, §2.4 (FAILED_TariffSelectionInvalid, [V2G-DC-400])",
      steps=("reach PowerDeliveryStart", "PowerDeliveryReq Start with SAScheduleTupleID 200", "expect FAILED_TariffSelectionInvalid"),
      tags=("power_delivery", "schedule", "negative"))
async def pd_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PowerDeliveryStart")
    bad = next(i for i in (200, 201, 202, 203) if i not in t.tuple_ids)
    rx = await t.exchange(L.req_power_delivery(p, t.ev, "Start", bad))
    await refused(ctx, t, rx, f"{p.ref('§2.4')}: SAScheduleTupleID {bad} not offered ({t.tuple_ids})", "FAILED_TariffSelectionInvalid")


@both("PowerDelivery", 3, "PowerDelivery Start before PreCharge: FAILED_SequenceError", protos=(L.DIN,),
      purpose="DIN: PowerDelivery follows PreCharge; right after CableCheck it is out of sequence.",
      requirement="DIN/-2 digest §2.3 (PowerDeliveryReq after PreChargeRes, [V2G-DC-499]) / §5.1",
      steps=("reach PreCharge", "PowerDeliveryReq ReadyToChargeState=true instead", "expect FAILED_SequenceError"),
      tags=("power_delivery", "sequence", "negative"))
async def pd_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PreCharge")
    rx = await t.exchange(L.req_power_delivery(p, t.ev, "Start"))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: PowerDelivery out of sequence", "FAILED_SequenceError")


@both("PowerDelivery", 4, "PowerDelivery Stop ends the loop; WeldingDetection and SessionStop follow",
      purpose="After the charge loop, PowerDelivery(Stop / ReadyToChargeState=false) is OK and the session ends normally.",
      requirement="DIN/-2 digest §2.2 rows 10-12, §2.8 / §3.1 rows 12-14 (PowerDelivery Stop -> WeldingDetection -> SessionStop)",
      steps=("charge 3 loops", "PowerDeliveryReq Stop", "WeldingDetectionReq", "SessionStopReq", "expect OK for each"),
      tags=("power_delivery", "session_stop"))
async def pd_4(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PowerDeliveryStop")
    rx = await t.step("PowerDeliveryStop")
    expect(ctx, rx, "PowerDeliveryRes", "OK", f"{p.ref('§2.8')}: PowerDelivery Stop accepted")
    rx = await t.step("WeldingDetection")
    expect(ctx, rx, "WeldingDetectionRes", "OK", f"{p.ref('§2.8')}: WeldingDetection after Stop")
    rx = await t.step("SessionStop")
    expect(ctx, rx, "SessionStopRes", "OK", f"{p.ref('§2.8')}: SessionStop")


@both("PowerDelivery", 5, "Renegotiation: PowerDelivery Renegotiate, then ChargeParameterDiscovery again", protos=(L.ISO2,),
      purpose="During the loop the EV renegotiates: PowerDelivery(Renegotiate) OK, a new ChargeParameterDiscovery is accepted.",
      requirement="DIN/-2 digest §3.1 row 11b (PowerDeliveryReq(Renegotiate) -> ChargeParameterDiscoveryReq), §3.2",
      steps=("charge 3 loops", "PowerDeliveryReq Renegotiate", "ChargeParameterDiscoveryReq", "expect OK and Finished"),
      tags=("power_delivery", "renegotiation"))
async def pd_5(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PowerDeliveryStop")
    rx = await t.exchange(L.req_power_delivery(p, t.ev, "Renegotiate", t.tuple_id()))
    expect(ctx, rx, "PowerDeliveryRes", "OK", f"{p.ref('§3.1')}: PowerDelivery Renegotiate accepted")
    rx = await t.step("ChargeParameterDiscovery")
    expect(ctx, rx, "ChargeParameterDiscoveryRes", "OK", f"{p.ref('§3.2')}: ChargeParameterDiscovery after Renegotiate")


@both("CurrentDemand", 1, "The CurrentDemand loop is answered within 250 ms",
      purpose="Five CurrentDemandReq are each answered OK within V2G_EVCC_Msg_Timeout(CurrentDemand) = 0.25 s.",
      requirement="DIN/-2 digest §4.1 (CurrentDemandReq 0.25 s) / §2.6 (CurrentDemand loop)",
      steps=("reach the loop", "5 CurrentDemandReq, 50 ms apart", "expect OK, each in 250 ms"), tags=("loop", "timing"))
async def cd_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeLoop", loops=5)
    t.loops = 5
    rx = await t.step("ChargeLoop")
    expect(ctx, rx, "CurrentDemandRes", "OK", f"{p.ref('§2.6')}: 5 loops answered OK")
    rts = t.response_times.get("CurrentDemandRes", [])
    ctx.metric("loop_rt_max_ms", max(rts, default=0.0) * 1000)
    ctx.check(f"{p.ref('§4.1')}: every CurrentDemandRes within 250 ms", len(rts) >= 5 and max(rts) <= p.timeout("CurrentDemandReq"),
              f"{len(rts)} answers, max {max(rts, default=0.0) * 1000:.0f} ms")


@both("CurrentDemand", 2, "The loop values stay within the limits",
      purpose="EVSEPresentCurrent never above EVSEMaximumCurrentLimit nor the EV target, EVSEPresentVoltage never above the EVSE maximum; -2 also EVSEID and SAScheduleTupleID.",
      requirement="DIN/-2 digest §2.6 (CurrentDemand: follow the EV target), §7.2 (-2 CurrentDemandRes adds EVSEID, SAScheduleTupleID)",
      steps=("reach the loop", "5 CurrentDemandReq with target 50 A", "check every answer"), tags=("loop", "limits"))
async def cd_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeLoop", loops=5)
    t.loops = 5
    rx = await t.step("ChargeLoop")
    ctx.precondition(ok(rx), f"{rx.name} {rx.code or rx.error}")
    _loop_value_checks(ctx, p, t, Decimal(t.ev.target_current))


def _loop_value_checks(ctx: CaseContext, p: L.Proto, t: LegacyTester, target: Decimal) -> None:
    res = [x.msg for x in t.answers if isinstance(x.msg, L.Msg) and x.name == "CurrentDemandRes" and ok(x)]
    cur = [r.phys("EVSEPresentCurrent") or Decimal(0) for r in res]
    vol = [r.phys("EVSEPresentVoltage") or Decimal(0) for r in res]
    imax = t.evse_max_current
    tol = Decimal("1.02")
    ctx.check(f"{p.ref('§2.6')}: EVSEPresentCurrent <= min(EV target, EVSEMaximumCurrentLimit)", bool(cur) and max(cur) <= tol * min(target, imax or target) + 1,
              f"present {[str(c) for c in cur]} A, EV target {target} A, EVSE max {imax} A")
    vmax = t.evse_max_voltage
    ctx.check(f"{p.ref('§7.3')}: EVSEPresentVoltage <= EVSEMaximumVoltageLimit", bool(vol) and (vmax is None or max(vol) <= vmax),
              f"present {[str(v) for v in vol]} V, EVSE max {vmax} V")
    if not p.din and res:
        ctx.check(f"{p.ref('§7.2')}: CurrentDemandRes carries EVSEID and an offered SAScheduleTupleID",
                  all(r.text("EVSEID") and (not t.tuple_ids or int(r.text("SAScheduleTupleID") or -1) in t.tuple_ids) for r in res),
                  f"EVSEID {res[-1].text('EVSEID')!r}, SAScheduleTupleID {res[-1].text('SAScheduleTupleID')} (offered {t.tuple_ids})")


@both("CurrentDemand", 3, "CurrentDemand before PowerDelivery: FAILED_SequenceError",
      purpose="The charge loop only starts after PowerDelivery Start.",
      requirement="DIN/-2 digest §2.3 (CurrentDemandReq only after PowerDeliveryRes(true), [V2G-DC-462]) / §3.2",
      steps=("reach PowerDeliveryStart", "send CurrentDemandReq instead", "expect FAILED_SequenceError"),
      tags=("loop", "sequence", "negative"))
async def cd_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PowerDeliveryStart")
    rx = await t.exchange(L.req_current_demand(p, t.ev))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: CurrentDemand out of sequence", "FAILED_SequenceError")


@both("CurrentDemand", 4, "An EV target current above the EVSE maximum is limited",
      purpose="EVTargetCurrent 10x EVSEMaximumCurrentLimit: the present current stays at or below the EVSE maximum.",
      requirement="DIN/-2 digest §2.6 (follow EVTargetVoltage/Current, report limit-achieved), §7.3 (EVSEMaximumCurrentLimit)",
      steps=("reach the loop", "3 CurrentDemandReq with EVTargetCurrent = 10 x EVSE max", "expect present current <= EVSE max"),
      tags=("loop", "limits"))
async def cd_4(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeLoop", loops=1)
    imax = t.evse_max_current
    ctx.precondition(imax is not None, "no EVSEMaximumCurrentLimit in ChargeParameterDiscoveryRes")
    assert imax is not None
    big = min(imax * 10, Decimal(3000))
    t.ev.max_current = int(big)
    for _ in range(3):
        rx = await t.exchange(L.req_current_demand(p, t.ev, current=float(big)))
        ctx.precondition(ok(rx), f"{rx.name} {rx.code or rx.error}")
    res = [x.msg for x in t.answers if isinstance(x.msg, L.Msg) and x.name == "CurrentDemandRes"]
    cur = [r.phys("EVSEPresentCurrent") or Decimal(0) for r in res]
    ctx.check(f"{p.ref('§7.3')}: present current <= EVSEMaximumCurrentLimit {imax} A", bool(cur) and max(cur) <= imax * Decimal("1.02") + 1,
              f"present {[str(c) for c in cur]} A for target {big} A")


@both("ChargingStatus", 1, "The AC charge loop: ChargingStatus", needs=("AC",), protos=(L.ISO2,),
      purpose="An AC SECC answers ChargingStatusReq OK with EVSEID, an offered SAScheduleTupleID and AC_EVSEStatus.",
      requirement="DIN/-2 digest §3.1 row 11 (ChargingStatusReq, AC loop), §7.2 (ChargingStatusRes)",
      steps=("reach the AC loop", "3 ChargingStatusReq", "expect OK, EVSEID, SAScheduleTupleID offered, AC_EVSEStatus"),
      tags=("loop", "ac"))
async def cs_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeLoop", ac=True)
    rx = await t.step("ChargeLoop")
    expect(ctx, rx, "ChargingStatusRes", "OK", f"{p.ref('§3.1')}: ChargingStatus answered OK")
    if rx.answered:
        tid = rx.msg.text("SAScheduleTupleID")
        ctx.check(f"{p.ref('§7.2')}: EVSEID, an offered SAScheduleTupleID and AC_EVSEStatus",
                  bool(rx.msg.text("EVSEID")) and tid is not None and (not t.tuple_ids or int(tid) in t.tuple_ids)
                  and rx.msg.el("AC_EVSEStatus") is not None, f"EVSEID {rx.msg.text('EVSEID')!r}, tuple {tid} (offered {t.tuple_ids})")


@both("ChargingStatus", 2, "An AC loop request in a DIN (DC-only) session is refused", protos=(L.DIN,),
      purpose="DIN is DC only: ChargingStatusReq in the CurrentDemand loop is not part of the protocol.",
      requirement="DIN/-2 digest §2.1 (no ChargingStatus in DIN), §5.3 (request type unknown to the protocol -> FAILED_SequenceError)",
      steps=("reach the loop", "ChargingStatusReq", "expect FAILED_SequenceError or a close"), tags=("loop", "sequence", "negative"))
async def cs_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeLoop", loops=1)
    rx = await t.exchange(L.X("ChargingStatusReq"))
    await refused(ctx, t, rx, f"{p.ref('§5.3')}: ChargingStatusReq is not accepted in DIN")


# =============================================================================== WeldingDetection / SessionStop


@both("WeldingDetection", 1, "WeldingDetection reports the present voltage",
      purpose="After PowerDelivery Stop, WeldingDetectionReq is answered OK with DC_EVSEStatus and EVSEPresentVoltage, repeatedly.",
      requirement="DIN/-2 digest §2.2 row 11, §2.6 (WeldingDetection: report EVSEPresentVoltage; repeatable, [V2G-DC-469])",
      steps=("reach WeldingDetection", "3 WeldingDetectionReq", "expect OK and EVSEPresentVoltage each time"), tags=("welding", "dc"))
async def wd_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "WeldingDetection")
    vs = []
    for _ in range(3):
        rx = await t.step("WeldingDetection")
        expect(ctx, rx, "WeldingDetectionRes", "OK", f"{p.ref('§2.6')}: WeldingDetection answered OK")
        if not ok(rx):
            return
        vs.append(rx.msg.phys("EVSEPresentVoltage"))
    ctx.check(f"{p.ref('§7.2')}: EVSEPresentVoltage in every answer", None not in vs, f"{[str(v) for v in vs]} V")


@both("SessionStop", 1, "SessionStop terminates and the SECC closes TCP",
      purpose="SessionStopReq (Terminate) is answered OK and the SECC closes the connection within 5 s (+1.5 s).",
      requirement="DIN/-2 digest §2.8 (SessionStopRes -> SECC closes TCP) / §4.5 (close after 2 s + 3 s)",
      steps=("a complete session", "SessionStopReq", "expect OK", "expect the SECC to close TCP within 6.5 s"),
      tags=("session_stop",))
async def stop_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionStop")
    rx = await t.step("SessionStop")
    expect(ctx, rx, "SessionStopRes", "OK", f"{p.ref('§2.8')}: SessionStop answered OK")
    sent = ctx.evidence.now()
    await t.wait_closed(CLOSE_DELAY + CLOSE_MARGIN)
    took = (t.closed_at - sent) if t.closed_at is not None else None
    ctx.check(f"{p.ref('§2.8')}: the SECC closes TCP after SessionStopRes",
              took is not None and took <= CLOSE_DELAY + CLOSE_MARGIN,
              f"closed {took:.2f} s after SessionStopRes" if took is not None else "still open 6.5 s after SessionStopRes")


@both("SessionStop", 2, "Pause and resume with the old SessionID", protos=(L.ISO2,), needs=("DC",),
      purpose="-2 SessionStop(Pause) is OK; a new connection with the paused SessionID joins it (OK_OldSessionJoined).",
      requirement="DIN/-2 digest §3.1 row 14 (SessionStopReq Pause), §3.1 row 1 (stored ID to resume, OK_OldSessionJoined)",
      steps=("session to PowerDelivery Stop", "SessionStopReq Pause", "reconnect: SAP, SessionSetupReq with the old ID",
             "expect OK_OldSessionJoined and the same ID"), tags=("session_stop", "pause_resume"))
async def stop_2(ctx: CaseContext, p: L.Proto) -> None:
    ctx.feature("pause_resume")
    t = await upto(ctx, p, "WeldingDetection")
    rx = await t.exchange(L.req_session_stop(p, t.ev, pause=True))
    expect(ctx, rx, "SessionStopRes", "OK", f"{p.ref('§3.1')}: SessionStop Pause accepted")
    old = t.session_id
    await t.close()
    if ctx.sut.before_case is not None:
        await ctx.sut.before_case()
    t2 = tester(ctx, p)
    t2.ev = t.ev
    await t2.sap()
    ctx.precondition(t2.negotiated, "SAP on the new connection failed")
    rx = await t2.exchange(L.req_session_setup(p, t2.ev), session_id=old)
    expect(ctx, rx, "SessionSetupRes", "OK_OldSessionJoined", f"{p.ref('§3.1')}: the paused session is joined")
    ctx.check(f"{p.ref('§5.2')}: the paused SessionID is kept", rx.answered and rx.msg.session_id == old,
              f"{rx.msg.session_id.hex() if rx.answered else None} (paused {old.hex()})")


@both("SessionStop", 3, "Nothing is accepted after SessionStopRes", protos=(L.DIN,),
      purpose="After SessionStopRes the session is over: a further request on the connection gets no positive answer.",
      requirement="DIN/-2 digest §2.3 (after SessionStopRes: nothing; close) / §2.8",
      steps=("complete session with SessionStop", "ServiceDiscoveryReq", "expect no positive answer"), tags=("session_stop", "negative"))
async def stop_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionStop")
    rx = await t.step("SessionStop")
    ctx.precondition(ok(rx), f"{rx.name} {rx.code or rx.error}")
    try:
        rx = await t.exchange(L.req_service_discovery(p, t.ev), timeout=2.5)
    except (ConnectionError, OSError) as exc:
        ctx.check(f"{p.ref('§2.3')}: no request accepted after SessionStopRes", True, f"connection closed: {exc}")
        return
    await expect_refused(ctx, t, rx, f"{p.ref('§2.3')}: no request accepted after SessionStopRes")


# =============================================================================== sequence, malformed, range, timing


@both("Sequence", 1, "A request before SessionSetup is refused", needs=(),
      purpose="After SAP the first request must be SessionSetupReq; ServiceDiscoveryReq first is refused.",
      requirement="DIN/-2 digest §2.3 / §3.2 (after SAP Res: SessionSetupReq only, [V2G-DC-437]) / §5.1",
      steps=("SAP", "ServiceDiscoveryReq with SessionID 0", "expect a FAILED code or a close"), tags=("sequence", "negative"))
async def seq_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    rx = await t.exchange(L.req_service_discovery(p, t.ev), session_id=bytes(8))
    await refused(ctx, t, rx, f"{p.ref('§5.1')}: no request before SessionSetup")


@both("Malformed", 1, "Undecodable EXI is not accepted", needs=(),
      purpose="Random bytes in a 0x8001 frame where SessionSetupReq belongs: no positive answer; the SECC keeps serving.",
      requirement="DIN/-2 digest §5.3 (EXI does not decode: no response, close (J) or ignore (E); never a positive answer)",
      steps=("SAP", "0x8001 frame with 24 bytes of garbage", "expect a refusal (FAILED or close)", "a new session works"),
      tags=("malformed", "negative", "robustness"))
async def mal_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    rx = await t.exchange_frame(L.PT_EXI, bytes.fromhex("ffffffffdeadbeef0001020304050607a5a5a5a5c3c3c3c3"), "garbage EXI")
    await expect_refused(ctx, t, rx, f"{p.ref('§5.3')}: undecodable EXI not accepted")


@both("Malformed", 2, "A message of the other protocol is not accepted", needs=(),
      purpose="After negotiating {P}, a SessionSetupReq encoded with the other legacy schema must not be taken for a request.",
      requirement="DIN/-2 digest §1.1 / §7.1 (the SchemaID selects the grammar; different namespaces and enum orders, §3.14)",
      steps=("SAP {P}", "SessionSetupReq encoded with the other protocol's schema", "expect a refusal"),
      tags=("malformed", "negative", "robustness"))
async def mal_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    rx = await t.exchange(L.req_charge_parameter(_other(p), t.ev), session_id=bytes(8), proto=_other(p), timeout=2.5)
    await expect_refused(ctx, t, rx, f"{p.ref('§7.1')}: a foreign-schema message is not accepted")


@both("Malformed", 3, "A -20 payload type after a {P} negotiation is not accepted", needs=(),
      purpose="DIN / -2 carry every message as 0x8001; a 0x8002 (-20 CommonMessages) frame is not part of the session.",
      requirement="DIN/-2 digest §1.1 (0x8001 for SAP and every later message) / §5.3",
      steps=("SAP {P}", "a -20 SessionSetupReq under payload type 0x8002", "expect a refusal"),
      tags=("malformed", "v2gtp", "negative", "robustness"))
async def mal_3(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "SessionSetup")
    req = m.SessionSetupReq(header=m.MessageHeader(session_id=bytes(8), time_stamp=L.now_s()), evcc_id="WMIV1234567890ABC")
    rx = await t.exchange_frame(0x8002, m.encode(req), "-20 SessionSetupReq (0x8002)")
    await expect_refused(ctx, t, rx, f"{p.ref('§1.1')}: a 0x8002 frame is not accepted in {p.title}")


@both("Malformed", 4, "A V2GTP header with a wrong version is rejected", needs=(),
      purpose="Version 0x02 / inverse 0xFD is an invalid header: the SECC must not process the SAP request behind it.",
      requirement="DIN/-2 digest §5.3 (bad V2GTP header, wrong version: no response, close) / -20 digest §1.2",
      steps=("connect", "a {P} SAP request with header 02 FD", "expect no answer or a close"),
      tags=("malformed", "v2gtp", "negative", "robustness"))
async def mal_4(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    await t.connect()
    body = m.encode(m.SupportedAppProtocolReq(app_protocol=[t.app_protocol()]))
    hdr = bytearray(encode_header(L.PT_EXI, len(body)))
    hdr[0], hdr[1] = 0x02, 0xFD
    await t.send_raw(bytes(hdr) + body, "SAP with V2GTP version 0x02")
    rx = await t.recv(2.5)
    await expect_refused(ctx, t, rx, f"{p.ref('§5.3')}: invalid V2GTP header rejected")


@both("Range", 1, "A state of charge above 100 % is refused",
      purpose="EVRESSSOC 127 in ChargeParameterDiscoveryReq is outside percentValueType (0..100): no positive answer.",
      requirement="DIN/-2 digest §5.3 (semantically bad values: rejected (J) or FAILED (E)), §7.3 (percentValueType 0..100)",
      steps=("reach ChargeParameterDiscovery", "DC_EVStatus.EVRESSSOC = 127 (encoded without the facet check)", "expect a refusal"),
      tags=("range", "negative"))
async def range_1(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ChargeParameterDiscovery")
    body = L.req_charge_parameter(p, t.ev)
    leaf = body.find("DC_EVChargeParameter").find("DC_EVStatus").find("EVRESSSOC")  # type: ignore[union-attr]
    assert leaf is not None
    payload = L.encode_out_of_range(p, body, t.session_id, leaf, 127, 0, 7)
    rx = await t.exchange_frame(L.PT_EXI, payload, "ChargeParameterDiscoveryReq", timeout=p.timeout("ChargeParameterDiscoveryReq") + 1,
                                detail="DC_EVStatus.EVRESSSOC = 127")
    await expect_refused(ctx, t, rx, f"{p.ref('§5.3')}: EVRESSSOC 127 refused")


@both("Range", 2, "A PhysicalValue multiplier outside -3..3 is refused",
      purpose="EVTargetVoltage with Multiplier 4 (4 GV) in PreChargeReq is outside the XSD range: no positive answer, no voltage.",
      requirement="DIN/-2 digest §5.3, §7.3 (PhysicalValueType: Multiplier -3..3)",
      steps=("reach PreCharge", "PreChargeReq with EVTargetVoltage Multiplier 4", "expect a refusal"), tags=("range", "negative", "dc"))
async def range_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "PreCharge")
    body = L.req_pre_charge(p, t.ev)
    tv = body.find("EVTargetVoltage")
    assert tv is not None
    payload = L.encode_out_of_range(p, body, t.session_id, tv.find("Multiplier"), 4, -3, 3)  # type: ignore[arg-type]
    rx = await t.exchange_frame(L.PT_EXI, payload, "PreChargeReq", timeout=p.timeout("PreChargeReq") + 1,
                                detail="EVTargetVoltage.Multiplier = 4")
    await expect_refused(ctx, t, rx, f"{p.ref('§7.3')}: Multiplier 4 refused")


@both("Timing", 1, "A complete session, every answer in time", needs=("DC",),
      purpose="The whole {P} DC sequence to SessionStop; every answer OK and within V2G_EVCC_Msg_Timeout of its request.",
      requirement="DIN/-2 digest §2.2 / §3.1 (sequence), §4.1 (EVCC message timeouts)",
      steps=("SAP ... SessionStop with 3 loops", "check every response time"), tags=("timing", "happy_path"))
async def tim_1(ctx: CaseContext, p: L.Proto) -> None:
    t = tester(ctx, p)
    try:
        await t.run_to("end")
        ended = True
        why = "SessionStopRes OK"
    except StepFailed as exc:
        ended, why = False, str(exc)
    ctx.check(f"{p.ref('§2.2')}: a complete session to SessionStopRes", ended, why)
    worst = [f"{n} {max(v) * 1000:.0f} ms" for n, v in sorted(t.response_times.items())]
    ctx.check(f"{p.ref('§4.1')}: every answer within its V2G_EVCC_Msg_Timeout", not t.late and bool(worst), "; ".join(worst))


@both("Timing", 2, "SECC sequence timeout: a silent EV is dropped", needs=(),
      purpose="After SessionSetupRes the EV sends nothing: the SECC closes the connection after V2G_SECC_Sequence_Timeout (60 s).",
      requirement="DIN/-2 digest §4.3 (V2G_SECC_Sequence_Timeout 60 s, [V2G2-443], [V2G-DC-432]), §4.5 (close delay)",
      steps=("SAP, SessionSetup", "send nothing", "expect the SECC to close within 60 s + 5 s + 2 s, not before 60 s"),
      tags=("timing", "timeout", "long"), timeout=90.0)
async def tim_2(ctx: CaseContext, p: L.Proto) -> None:
    t = await upto(ctx, p, "ServiceDiscovery")
    start = ctx.evidence.now()
    limit = (L.SEQUENCE_TIMEOUT + CLOSE_DELAY + 2.0) * ctx.sut.time_scale
    await t.wait_closed(limit)
    took = t.closed_at - start if t.closed_at is not None else None
    if took is not None:
        ctx.metric("sequence_timeout_close_s", took)
    ctx.check(f"{p.ref('§4.3')}: the SECC closes after the sequence timeout",
              took is not None and L.SEQUENCE_TIMEOUT * ctx.sut.time_scale - 0.5 <= took <= limit,
              f"closed {took:.1f} s after SessionSetupRes" if took is not None else f"still open after {limit:.0f} s")
