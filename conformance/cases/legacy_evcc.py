"""DIN SPEC 70121 and ISO 15118-2 vehicles under test, in the style of DIN 70122 and ISO 15118-4.

The tester is a DIN / -2 charger at message level (:mod:`conformance.charger_legacy`) that picks
the protocol under test in SupportedAppProtocol and answers normally unless the case deviates:
Ongoing loops, a slow pre-charge, a StopCharging notification, FAILED codes, a wrong SessionID,
garbage, silence.  Each case is registered for both protocols (``TC_EVCC_DIN_...`` /
``TC_EVCC_ISO2_...``) where both have the behaviour; requirements name the DIN/-2 digest section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from conformance import legacy as L
from conformance.cases._common import CLOSE_DELAY, CLOSE_MARGIN
from conformance.catalogue import CaseContext, case
from conformance.charger_legacy import Act, LegacyCharger, run_ev

Run = Callable[[CaseContext], Awaitable[None]]
SEQ_DC = ("SessionSetupReq", "ServiceDiscoveryReq", "{sel}Req", "{auth}Req", "ChargeParameterDiscoveryReq", "CableCheckReq",
          "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq")


def both_ev(group: str, num: int, title: str, *, purpose: str, requirement: str, steps: tuple[str, ...], tags: tuple[str, ...] = (),
            protos: tuple[L.Proto, ...] = L.PROTOS, needs: tuple[str, ...] = (), timeout: float = 60.0
            ) -> Callable[[Callable[[CaseContext, L.Proto], Awaitable[None]]], None]:
    def deco(fn: Callable[[CaseContext, L.Proto], Awaitable[None]]) -> None:
        for p in protos:
            def make(pp: L.Proto) -> Run:
                async def run(ctx: CaseContext) -> None:
                    ctx.protocol = pp
                    await fn(ctx, pp)

                return run

            case(f"TC_EVCC_{p.label}_{group}_{num:03d}", f"{p.title}: {title}", group=group, purpose=purpose.replace("{P}", p.title),
                 requirement=requirement, steps=steps, tags=(*tags, p.key, "legacy"), needs=(*needs, p.key), timeout=timeout)(make(p))

    return deco


def _reqs(ch: LegacyCharger) -> list[str]:
    return [r.name for r in ch.requests if r.name not in ("supportedAppProtocolReq",)]


async def stops(ctx: CaseContext, p: L.Proto, ch: LegacyCharger, since: float | None, why: str, *, wait: float = 0.0,
                allow: tuple[str, ...] = ("SessionStopReq",)) -> None:
    """After the charger's deviation (at ``since``): the EV sends nothing but ``allow`` and closes
    the connection within its timeout ``wait`` + the 5 s close delay + 1.5 s."""
    req = f"{p.ref('§5.5')}: after {why} the EV stops the session"
    if since is None:
        ctx.require(req, False, "the deviation never happened: the EV did not get that far")
        return
    later = [r.name for r in ch.after(since)]
    bad = [n for n in later if n not in allow]
    ctx.check(req + " (no further request)", not bad, f"requests after it: {later or 'none'}")
    limit = wait + CLOSE_DELAY + CLOSE_MARGIN
    took = ch.closed_by_ev_at - since if ch.closed_by_ev_at is not None else None
    ctx.check(f"{p.ref('§5.5')}: the EV closes TCP (within {limit:g} s)", took is not None and took <= limit,
              f"closed {took:.2f} s after it" if took is not None else "the EV never closed the connection")


def _at(ch: LegacyCharger) -> float:
    return ch.evidence.now()


# =============================================================================== SAP / SessionSetup


@both_ev("SAP", 1, "The EV offers the protocol correctly in SupportedAppProtocol",
         purpose="The EV's list offers {P} with major version 2, 1..20 entries, distinct SchemaIDs and Priorities 1..20.",
         requirement="DIN/-2 digest §1.1, §1.2, §1.4 (namespace, major 2, SchemaID unique, Priority 1..20)",
         steps=("accept the connection", "read supportedAppProtocolReq", "check the entries"), tags=("sap",))
async def ev_sap_1(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p, lambda c, r, n: Act(close=True) if r.name == "SessionSetupReq" else None, timeout=20)
    e = ch.sap_entries
    ours = [a for a in e if a.protocol_namespace == p.ns]
    ctx.check(f"{p.ref('§1.2')}: {p.title} offered as major 2", bool(ours) and all(a.version_number_major == 2 for a in ours),
              f"{[(a.protocol_namespace, a.version_number_major, a.version_number_minor) for a in e]}")
    ctx.check(f"{p.ref('§1.1')}: 1..20 entries, distinct SchemaIDs, distinct Priorities 1..20",
              1 <= len(e) <= 20 and len({a.schema_id for a in e}) == len(e) and len({a.priority for a in e}) == len(e)
              and all(1 <= a.priority <= 20 for a in e), f"{[(a.schema_id, a.priority) for a in e]}")


@both_ev("SAP", 2, "Failed_NoNegotiation ends the session",
         purpose="When the charger answers Failed_NoNegotiation the EV sends no SessionSetupReq and closes.",
         requirement="DIN/-2 digest §1.4 (negative Res -> terminate) / §5.5",
         steps=("answer Failed_NoNegotiation", "expect no further request and a close"), tags=("sap", "negative"))
async def ev_sap_2(ctx: CaseContext, p: L.Proto) -> None:
    from iso15118 import messages as m

    t0: dict[str, float] = {}

    def fail(req: Any) -> Any:
        t0["t"] = ctx.evidence.now()
        return m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)

    ch = await run_ev(ctx, p, sap_answer=fail, timeout=20)
    await stops(ctx, p, ch, t0.get("t"), "Failed_NoNegotiation", allow=())


@both_ev("SessionSetup", 1, "SessionSetupReq with SessionID 0; later requests echo the assigned SessionID",
         purpose="The EV starts with SessionID 0 and its EVCCID, then echoes the charger's SessionID exactly (here 4 bytes, as a Tesla SC V3 assigns).",
         requirement="DIN/-2 digest §1.4, §5.2 (SessionID 0 for a new session; echo the received bytes exactly), §6 quirk 1-2",
         steps=("SessionSetupRes with a 4-byte SessionID", "complete the session", "check every request's SessionID"),
         tags=("session", "session_id"))
async def ev_ss_1(ctx: CaseContext, p: L.Proto) -> None:
    sid = bytes.fromhex("c0ffee42")
    ch = await run_ev(ctx, p, session_id=sid)
    msgs = [r.msg for r in ch.requests if r.msg is not None]
    ctx.require(f"{p.ref('§2.2')}: the EV sent SessionSetupReq", bool(msgs) and msgs[0].name == "SessionSetupReq", f"{_reqs(ch)[:3]}")
    first = msgs[0]
    evcc = first.text("EVCCID") or b""
    ctx.check(f"{p.ref('§5.2')}: SessionSetupReq carries SessionID 0 and an EVCCID (<= {8 if p.din else 6} bytes)",
              not any(first.session_id) and 0 < len(evcc) <= (8 if p.din else 6), f"SessionID {first.session_id.hex()}, EVCCID {bytes(evcc).hex()}")
    later = msgs[1:]
    wrong = [(x.name, x.session_id.hex()) for x in later if x.session_id != sid]
    ctx.check(f"{p.ref('§5.2')}: every later request echoes the 4-byte SessionID exactly", bool(later) and not wrong,
              f"{len(later)} requests; wrong: {wrong[:3]}")


@both_ev("SessionSetup", 2, "An answer with another SessionID ends the session",
         purpose="ServiceDiscoveryRes carries a SessionID other than the assigned one: the EV stops and closes.",
         requirement="DIN/-2 digest §5.2 (EVCC checks every response's SessionID and terminates on mismatch) / §5.5",
         steps=("answer ServiceDiscoveryReq with a different SessionID", "expect no further request and a close"),
         tags=("session", "session_id", "negative"))
async def ev_ss_2(ctx: CaseContext, p: L.Proto) -> None:
    t0: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "ServiceDiscoveryReq":
            t0["t"] = _at(ch)
            return Act(body=normal, session_id=bytes(b ^ 0x5A for b in ch.session_id))
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, t0.get("t"), "an answer with a foreign SessionID")


# =============================================================================== services, authorization, CPD


@both_ev("ServiceDiscovery", 1, "The EV selects ExternalPayment and the offered charge service",
         purpose="With EIM offered, the EV selects ExternalPayment and exactly the offered ServiceID (here 7).",
         requirement="DIN/-2 digest §2.7 (ExternalPayment, one service: the charge service), §3.1 row 4",
         steps=("offer ServiceID 7 and ExternalPayment", "read the selection"), tags=("services",))
async def ev_sd_1(ctx: CaseContext, p: L.Proto) -> None:
    evse = L.EvseState(service_id=7)
    ch = await run_ev(ctx, p, lambda c, r, n: Act(close=True) if r.name == f"{p.authorization}Req" else None, evse=evse, timeout=20)
    sel = next((r.msg for r in ch.requests if r.name == f"{p.payment_selection}Req"), None)
    ctx.require(f"{p.ref('§2.2')}: the EV sent {p.payment_selection}Req", sel is not None, f"{_reqs(ch)}")
    assert sel is not None
    ids = [int(s.find("ServiceID").value) for s in sel.all("SelectedServiceList/SelectedService") if s.find("ServiceID") is not None]  # type: ignore[union-attr]
    ctx.check(f"{p.ref('§2.7')}: ExternalPayment selected", sel.text("SelectedPaymentOption") == "ExternalPayment",
              f"{sel.text('SelectedPaymentOption')}")
    ctx.check(f"{p.ref('§2.7')}: the offered ServiceID 7 selected", ids == [7], f"selected {ids}")


def _ongoing(name: str, times: int, mark: dict[str, float]) -> Any:
    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == name:
            if ch.counts[name] <= times:
                normal.find("EVSEProcessing").value = "Ongoing"
            elif "t" not in mark:
                mark["t"] = _at(ch)
        return None

    return script


async def _ongoing_case(ctx: CaseContext, p: L.Proto, name: str, nxt: str, times: int, req_section: str) -> None:
    mark: dict[str, float] = {}
    ch = await run_ev(ctx, p, _ongoing(name, times, mark))
    names = _reqs(ch)
    n = names.count(name)
    ctx.metric("polls", n)
    ctx.check(f"{p.ref(req_section)}: the EV repeats {name} while Ongoing", n >= times + 1, f"{n} {name} for {times} Ongoing answers")
    i = names.index(name) if name in names else -1
    block = names[i:i + times + 1] if i >= 0 else []
    ctx.check(f"{p.ref(req_section)}: nothing else before Finished", len(block) == times + 1 and set(block) == {name}, f"{block}")
    after = names[i + n:i + n + 1] if i >= 0 else []
    ctx.check(f"{p.ref(req_section)}: then {nxt}", after == [nxt], f"next request {after}")


@both_ev("Authorization", 1, "The EV polls while authorization is Ongoing",
         purpose="The charger answers EVSEProcessing=Ongoing three times: the EV repeats the poll, then goes on to ChargeParameterDiscovery.",
         requirement="DIN/-2 digest §2.6 / §2.7 (ContractAuthentication / Authorization: repeat while Ongoing), §4.3 (60 s)",
         steps=("answer Ongoing 3 times", "then Finished", "expect 4 polls, then ChargeParameterDiscoveryReq"),
         tags=("authorization", "loop"))
async def ev_auth_1(ctx: CaseContext, p: L.Proto) -> None:
    await _ongoing_case(ctx, p, f"{p.authorization}Req", "ChargeParameterDiscoveryReq", 3, "§2.6")


@both_ev("ChargeParameterDiscovery", 1, "The EV repeats ChargeParameterDiscovery while Ongoing",
         purpose="Two Ongoing answers: the EV repeats the request, then goes on to CableCheck.",
         requirement="DIN/-2 digest §2.6 (ChargeParameterDiscovery: repeat while Ongoing), §3.1 row 7",
         steps=("answer Ongoing twice", "then Finished", "expect 3 requests, then CableCheckReq"), tags=("cpd", "loop"))
async def ev_cpd_1(ctx: CaseContext, p: L.Proto) -> None:
    await _ongoing_case(ctx, p, "ChargeParameterDiscoveryReq", "CableCheckReq", 2, "§2.6")


@both_ev("ChargeParameterDiscovery", 2, "The EV's charge parameters are plausible",
         purpose="ChargeParameterDiscoveryReq: a DC mode the charger offered, EVMaximumVoltageLimit in (0, 1500] V, current limit > 0, SOC 0..100.",
         requirement="DIN/-2 digest §2.1 (DC_core / DC_extended), §7.3 (PhysicalValue, percentValueType)",
         steps=("read ChargeParameterDiscoveryReq", "check the values"), tags=("cpd",))
async def ev_cpd_2(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p, lambda c, r, n: Act(close=True) if r.name == "CableCheckReq" else None, timeout=25)
    cpd = next((r.msg for r in ch.requests if r.name == "ChargeParameterDiscoveryReq"), None)
    ctx.require(f"{p.ref('§2.2')}: the EV sent ChargeParameterDiscoveryReq", cpd is not None, f"{_reqs(ch)}")
    assert cpd is not None
    mode = cpd.text("EVRequestedEnergyTransferType" if p.din else "RequestedEnergyTransferMode")
    ctx.check(f"{p.ref('§2.1')}: an offered DC mode requested", mode in (("DC_extended",) if p.din else ("DC_extended", "DC_core")), f"{mode}")
    dc = "DC_EVChargeParameter"
    v, i = cpd.phys(f"{dc}/EVMaximumVoltageLimit"), cpd.phys(f"{dc}/EVMaximumCurrentLimit")
    soc = cpd.text(f"{dc}/DC_EVStatus/EVRESSSOC")
    ctx.check(f"{p.ref('§7.3')}: EVMaximumVoltageLimit in (0, 1500] V, EVMaximumCurrentLimit > 0, SOC 0..100",
              v is not None and 0 < v <= 1500 and i is not None and i > 0 and soc is not None and 0 <= int(soc) <= 100,
              f"{v} V, {i} A, SOC {soc}")


# =============================================================================== CableCheck / PreCharge / PowerDelivery


@both_ev("CableCheck", 1, "The EV waits for the isolation test",
         purpose="CableCheck Ongoing three times: the EV repeats CableCheckReq and sends PreChargeReq only after Finished.",
         requirement="DIN/-2 digest §2.6 (CableCheck: repeat identical request while Ongoing, [V2G-DC-418]; <= 40 s)",
         steps=("answer CableCheck Ongoing 3 times", "then Finished", "expect 4 CableCheckReq, then PreChargeReq"),
         tags=("cable_check", "dc", "loop"))
async def ev_cc_1(ctx: CaseContext, p: L.Proto) -> None:
    await _ongoing_case(ctx, p, "CableCheckReq", "PreChargeReq", 3, "§2.6")


@both_ev("PreCharge", 1, "The EV waits until the pre-charge voltage is reached",
         purpose="The charger raises its voltage in 4 steps: the EV sends PowerDeliveryReq only after EVSEPresentVoltage is within 20 V of its target.",
         requirement="DIN/-2 digest §2.6 (PreCharge: repeat until the present voltage is close enough, then PowerDelivery(true); <= 7 s)",
         steps=("answer PreCharge with 25/50/75/100 % of the target", "expect PowerDeliveryReq only after the target is reached"),
         tags=("pre_charge", "dc"))
async def ev_pc_1(ctx: CaseContext, p: L.Proto) -> None:
    seen: list[tuple[float, Decimal, Decimal]] = []

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "PreChargeReq":
            target = req.phys("EVTargetVoltage") or Decimal(0)
            v = target * min(Decimal(ch.counts["PreChargeReq"]) / 4, Decimal(1))
            ch.evse.present_voltage = v
            normal = L.res_pre_charge(p, ch.evse)
            seen.append((_at(ch), v, target))
            return Act(body=normal)
        return None

    ch = await run_ev(ctx, p, script)
    pd = next((r.t for r in ch.requests if r.name == "PowerDeliveryReq"), None)
    ctx.require(f"{p.ref('§2.6')}: the EV went on to PowerDeliveryReq", pd is not None and bool(seen), f"{_reqs(ch)}")
    before = [x for x in seen if x[0] < (pd or 0)]
    last = before[-1] if before else None
    ctx.check(f"{p.ref('§2.6')}: PowerDelivery only after the present voltage is within 20 V of the target",
              last is not None and abs(last[1] - last[2]) <= 20, f"{len(before)} PreChargeRes; last {last[1] if last else None} V for target {last[2] if last else None} V")


@both_ev("PreCharge", 2, "A pre-charge that never converges: the EV gives up",
         purpose="The charger's voltage stays at 0 V: the EV stops pre-charging after V2G_EVCC_PreCharge_Timeout (7 s), sends no PowerDeliveryReq and closes.",
         requirement="DIN/-2 digest §4.3 (V2G_EVCC_PreCharge_Timeout 7 s), §2.6 (PreCharge loop), §5.5",
         steps=("answer every PreChargeReq with EVSEPresentVoltage 0 V", "expect no PowerDeliveryReq, the loop to end within 7 s (+1 s), a close"),
         tags=("pre_charge", "dc", "timeout", "negative"))
async def ev_pc_2(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "PreChargeReq":
            mark.setdefault("t", _at(ch))
            ch.evse.present_voltage = Decimal(0)
            return Act(body=L.res_pre_charge(p, ch.evse), delay=0.05)
        return None

    ch = await run_ev(ctx, p, script)
    ctx.require(f"{p.ref('§2.6')}: the EV reached PreCharge", "t" in mark, f"{_reqs(ch)[:8]}")
    pcs = [r.t for r in ch.requests if r.name == "PreChargeReq"]
    span = pcs[-1] - mark["t"]
    ctx.metric("precharge_loop_s", span)
    ctx.check(f"{p.ref('§4.3')}: the pre-charge loop ends within 7 s (+1 s)", span <= L.PRECHARGE_TIMEOUT + 1.0,
              f"{len(pcs)} PreChargeReq over {span:.1f} s")
    await stops(ctx, p, ch, pcs[-1], "the pre-charge timeout", allow=("SessionStopReq",))


@both_ev("PowerDelivery", 1, "PowerDelivery Start uses the offered schedule", protos=(L.ISO2,),
         purpose="The charger offers SAScheduleTupleID 17: PowerDeliveryReq(Start) names tuple 17.",
         requirement="DIN/-2 digest §3.1 row 10 (SAScheduleTupleID of an offered tuple), §2.4 (FAILED_TariffSelectionInvalid otherwise)",
         steps=("offer tuple 17", "read PowerDeliveryReq Start"), tags=("power_delivery", "schedule"))
async def ev_pd_1(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p, lambda c, r, n: Act(close=True) if r.name in ("CurrentDemandReq", "ChargingStatusReq") else None, timeout=30)
    pd = next((r.msg for r in ch.requests if r.name == "PowerDeliveryReq"), None)
    ctx.require(f"{p.ref('§3.1')}: the EV sent PowerDeliveryReq", pd is not None, f"{_reqs(ch)}")
    assert pd is not None
    ctx.check(f"{p.ref('§3.1')}: Start with the offered SAScheduleTupleID 17",
              pd.text("ChargeProgress") == "Start" and pd.text("SAScheduleTupleID") == 17,
              f"ChargeProgress {pd.text('ChargeProgress')}, SAScheduleTupleID {pd.text('SAScheduleTupleID')}")


@both_ev("PowerDelivery", 2, "PowerDelivery ReadyToChargeState=true starts DIN charging", protos=(L.DIN,),
         purpose="DIN's PowerDeliveryReq after PreCharge says ReadyToChargeState=true (a boolean, not -2's ChargeProgress).",
         requirement="DIN/-2 digest §2.2 row 8, §6 quirk 4 (ReadyToChargeState is a boolean)",
         steps=("complete PreCharge", "read PowerDeliveryReq"), tags=("power_delivery",))
async def ev_pd_2(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p, lambda c, r, n: Act(close=True) if r.name == "CurrentDemandReq" else None, timeout=30)
    pd = next((r.msg for r in ch.requests if r.name == "PowerDeliveryReq"), None)
    ctx.require(f"{p.ref('§2.2')}: the EV sent PowerDeliveryReq", pd is not None, f"{_reqs(ch)}")
    assert pd is not None
    ctx.check(f"{p.ref('§2.2')}: ReadyToChargeState=true", pd.text("ReadyToChargeState") is True, f"{pd.text('ReadyToChargeState')}")


# =============================================================================== the loop and the end


@both_ev("CurrentDemand", 1, "The EV's targets stay within the EVSE limits",
         purpose="The charger offers 40 A and 920 V: every CurrentDemandReq asks for at most 40 A and 920 V, at least 3 cycles.",
         requirement="DIN/-2 digest §2.6 (CurrentDemand), §7.3 (EVSEMaximumCurrentLimit / VoltageLimit)",
         steps=("offer EVSEMaximumCurrentLimit 40 A", "read the loop", "check every target"), tags=("loop", "limits"))
async def ev_cd_1(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p)
    loop = [r.msg for r in ch.requests if r.name == "CurrentDemandReq" and r.msg is not None]
    ctx.require(f"{p.ref('§2.6')}: at least 3 CurrentDemandReq", len(loop) >= 3, f"{len(loop)} in {_reqs(ch)[:12]}")
    cur = [x.phys("EVTargetCurrent") or Decimal(0) for x in loop]
    vol = [x.phys("EVTargetVoltage") or Decimal(0) for x in loop]
    ctx.check(f"{p.ref('§7.3')}: EVTargetCurrent <= 40 A and EVTargetVoltage <= 920 V", max(cur) <= 40 and max(vol) <= 920,
              f"max {max(cur)} A, {max(vol)} V over {len(loop)} cycles")


@both_ev("StopCharging", 1, "The EV stops when the charger asks",
         purpose="From the third CurrentDemandRes on the charger says StopCharging (DIN also EVSE_Shutdown): the EV sends PowerDelivery Stop within 3 cycles and ends the session.",
         requirement="DIN/-2 digest §2.5 (EVSE_Shutdown / StopCharging: the EV ends charging; J: DIN on the status code, -2 on the notification), §2.8",
         steps=("answer the 3rd CurrentDemandReq with StopCharging", "expect PowerDelivery Stop within 3 more requests, then SessionStop"),
         tags=("loop", "notification"))
async def ev_stop_1(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "CurrentDemandReq" and ch.counts["CurrentDemandReq"] >= 3:
            ch.evse.notification = "StopCharging"
            if p.din:
                ch.evse.status_code = "EVSE_Shutdown"
            mark.setdefault("t", _at(ch))
            return Act(body=L.res_current_demand(p, ch.evse))
        return None

    ch = await run_ev(ctx, p, script)
    ctx.require(f"{p.ref('§2.5')}: the loop reached the notification", "t" in mark, f"{_reqs(ch)[:14]}")
    later = [r.name for r in ch.after(mark["t"])]
    k = later.index("PowerDeliveryReq") if "PowerDeliveryReq" in later else None
    ctx.check(f"{p.ref('§2.5')}: PowerDelivery Stop within 3 requests after StopCharging", k is not None and k <= 3, f"after it: {later[:6]}")
    ctx.check(f"{p.ref('§2.8')}: the session ends with SessionStopReq", "SessionStopReq" in later, f"{later}")


@both_ev("Failed", 1, "A FAILED answer ends the session",
         purpose="ChargeParameterDiscoveryRes FAILED: the EV sends nothing more (SessionStopReq at most) and closes.",
         requirement="DIN/-2 digest §5.5 (a FAILED code: stop, close TCP), §5.4",
         steps=("answer ChargeParameterDiscoveryReq with FAILED", "expect no further request and a close"), tags=("negative", "failed"))
async def ev_failed_1(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "ChargeParameterDiscoveryReq":
            normal.find("ResponseCode").value = "FAILED"
            mark["t"] = _at(ch)
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "ChargeParameterDiscoveryRes FAILED")


@both_ev("Failed", 2, "FAILED_SequenceError ends the session",
         purpose="The charger answers the first CurrentDemandReq with FAILED_SequenceError: the EV stops and closes.",
         requirement="DIN/-2 digest §5.1 (FAILED_SequenceError), §5.5",
         steps=("answer CurrentDemandReq with FAILED_SequenceError", "expect no further request (SessionStopReq at most) and a close"),
         tags=("negative", "failed", "sequence"))
async def ev_failed_2(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "CurrentDemandReq":
            normal.find("ResponseCode").value = "FAILED_SequenceError"
            mark["t"] = _at(ch)
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "CurrentDemandRes FAILED_SequenceError", allow=("SessionStopReq", "PowerDeliveryReq"))


@both_ev("Timeout", 1, "No answer in the charge loop: the EV gives up",
         purpose="The charger does not answer the third CurrentDemandReq: the EV stops after V2G_EVCC_Msg_Timeout (0.25 s) and closes.",
         requirement="DIN/-2 digest §4.1 (CurrentDemandReq 0.25 s), §5.5 (message timeout: stop, close TCP)",
         steps=("stay silent on the 3rd CurrentDemandReq", "expect no further request and a close within 0.25 s + 5 s + 1.5 s"),
         tags=("timing", "timeout", "negative"))
async def ev_to_1(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "CurrentDemandReq" and ch.counts["CurrentDemandReq"] >= 3:
            mark.setdefault("t", _at(ch))
            return Act(silent=True)
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "no CurrentDemandRes", wait=p.timeout("CurrentDemandReq"), allow=())


@both_ev("Timeout", 2, "No answer to SessionSetup: the EV gives up",
         purpose="The charger does not answer SessionSetupReq: the EV gives up after 2 s and closes.",
         requirement="DIN/-2 digest §4.1 (SessionSetupReq 2 s), §1.4 (SessionSetupReq timeout), §5.5",
         steps=("stay silent on SessionSetupReq", "expect no further request and a close within 2 s + 5 s + 1.5 s"),
         tags=("timing", "timeout", "negative"))
async def ev_to_2(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "SessionSetupReq":
            mark.setdefault("t", _at(ch))
            return Act(silent=True)
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "no SessionSetupRes", wait=p.timeout("SessionSetupReq"), allow=())


@both_ev("Malformed", 1, "Undecodable EXI in an answer ends the session",
         purpose="ServiceDiscoveryRes replaced by 24 bytes of garbage: the EV stops and closes.",
         requirement="DIN/-2 digest §5.3 (undecodable input), §5.5",
         steps=("answer ServiceDiscoveryReq with garbage EXI", "expect no further request and a close"),
         tags=("malformed", "negative"))
async def ev_mal_1(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == "ServiceDiscoveryReq":
            mark["t"] = _at(ch)
            return Act(raw=bytes.fromhex("80ffffffdeadbeef0001020304050607a5a5a5a5c3c3c3c3"))
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "an undecodable answer", wait=p.timeout("ServiceDiscoveryReq"), allow=())


@both_ev("Malformed", 2, "A wrong response type ends the session",
         purpose="The payment selection is answered with a ChargeParameterDiscoveryRes: the EV stops and closes.",
         requirement="DIN/-2 digest §5.5 (wrong response type: stop), §5.1",
         steps=("answer the payment selection with ChargeParameterDiscoveryRes", "expect no further request and a close"),
         tags=("malformed", "negative"))
async def ev_mal_2(ctx: CaseContext, p: L.Proto) -> None:
    mark: dict[str, float] = {}

    def script(ch: LegacyCharger, req: L.Msg, normal: Any) -> Act | None:
        if req.name == f"{p.payment_selection}Req":
            mark["t"] = _at(ch)
            return Act(body=L.res_charge_parameter(p, ch.evse))
        return None

    ch = await run_ev(ctx, p, script)
    await stops(ctx, p, ch, mark.get("t"), "a wrong response type", wait=p.timeout(f"{p.payment_selection}Req"), allow=())


@both_ev("SessionStop", 1, "A complete session in the right order",
         purpose="The whole {P} DC session: every request in the order of the sequence, ending PowerDelivery Stop -> (WeldingDetection) -> SessionStop, then the EV closes.",
         requirement="DIN/-2 digest §2.2 / §3.1 (sequence), §2.8 (normal end), §3.1 row 14 (SessionStopReq Terminate)",
         steps=("answer normally", "check the order of the requests and the end"), tags=("session_stop", "happy_path"))
async def ev_stop_2(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p)
    names = _reqs(ch)
    seq = [s.format(sel=p.payment_selection, auth=p.authorization) for s in SEQ_DC]
    firsts = [n for i, n in enumerate(names) if n not in names[:i]]
    order = [n for n in firsts if n in seq]
    ctx.check(f"{p.ref('§2.2')}: the requests follow the sequence", order == seq, f"first occurrences {firsts}")
    tail = [n for n in names if n != "WeldingDetectionReq"][-2:]
    ctx.check(f"{p.ref('§2.8')}: PowerDelivery Stop, then SessionStop last", tail == ["PowerDeliveryReq", "SessionStopReq"], f"end {names[-4:]}")
    stop = next((r.msg for r in reversed(ch.requests) if r.name == "SessionStopReq"), None)
    if not p.din and stop is not None:
        ctx.check(f"{p.ref('§3.1')}: SessionStopReq Terminate", stop.text("ChargingSession") == "Terminate", f"{stop.text('ChargingSession')}")
    last = ch.requests[-1].t if ch.requests else 0.0
    took = ch.closed_by_ev_at - last if ch.closed_by_ev_at is not None else None
    ctx.check(f"{p.ref('§2.8')}: the EV closes TCP after SessionStopRes (within {CLOSE_DELAY + CLOSE_MARGIN:g} s)",
              took is not None and took <= CLOSE_DELAY + CLOSE_MARGIN, f"{took:.2f} s" if took is not None else "never closed")


@both_ev("ChargingStatus", 1, "An AC session: ChargingStatus loop", protos=(L.ISO2,), needs=("AC",),
         purpose="Against an AC charger the EV requests an offered AC mode with plausible AC_EVChargeParameter, loops ChargingStatus and stops.",
         requirement="DIN/-2 digest §3.1 rows 7, 10-12 (AC_EVChargeParameter, PowerDelivery, ChargingStatus loop), §7.3",
         steps=("offer AC modes", "answer normally", "check CPD values, the loop and the end"), tags=("loop", "ac"))
async def ev_cs_1(ctx: CaseContext, p: L.Proto) -> None:
    ch = await run_ev(ctx, p, ac=True)
    names = _reqs(ch)
    cpd = next((r.msg for r in ch.requests if r.name == "ChargeParameterDiscoveryReq"), None)
    ctx.require(f"{p.ref('§3.1')}: the EV sent ChargeParameterDiscoveryReq", cpd is not None, f"{names}")
    assert cpd is not None
    mode = cpd.text("RequestedEnergyTransferMode")
    vmax = cpd.phys("AC_EVChargeParameter/EVMaxVoltage")
    imax, imin = cpd.phys("AC_EVChargeParameter/EVMaxCurrent"), cpd.phys("AC_EVChargeParameter/EVMinCurrent")
    ctx.check(f"{p.ref('§7.3')}: an offered AC mode, EVMaxVoltage > 0, 0 <= EVMinCurrent <= EVMaxCurrent",
              mode in ("AC_single_phase_core", "AC_three_phase_core") and vmax is not None and vmax > 0 and imax is not None
              and imin is not None and 0 <= imin <= imax, f"{mode}, {vmax} V, {imin}..{imax} A")
    ctx.check(f"{p.ref('§3.1')}: at least 3 ChargingStatusReq, then PowerDelivery Stop and SessionStop",
              names.count("ChargingStatusReq") >= 3 and names[-2:] == ["PowerDeliveryReq", "SessionStopReq"], f"{names[-6:]}")
