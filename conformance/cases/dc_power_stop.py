"""DC cable check / pre-charge / welding detection (digest §3.1 rows 9-10, 14; §5.4; §6.2),
PowerDelivery (§5.3), SessionStop (§5.3, §6.2 close delay) and pause / resume (§6.4)."""

from __future__ import annotations

import time

from conformance.cases._common import (
    RC,
    EVAction,
    dec,
    expect,
    expect_power_off,
    expect_refused,
    expect_session_over,
    full_session,
    m,
    reach,
    stop_after,
)
from conformance.catalogue import CaseContext, case
from iso15118.session.services import ControlMode, EnergyService, rn


def _dc(ctx: CaseContext) -> EnergyService:
    return ctx.service(family="DC")


# --------------------------------------------------------------------------- DC cable check / pre-charge


@case("TC_SECC_DC_CableCheck_001", "Cable check finishes within V2G_EVCC_CableCheck_Timeout", group="CableCheck",
      purpose="DC_CableCheckReq is repeated while Ongoing and finishes within 40 s.",
      requirement="digest §5.4 (DC_CableCheck loop) / §6.2 V2G_EVCC_CableCheck_Timeout 40 s",
      steps=("reach DC_PreChargeReq (the core repeats DC_CableCheckReq)", "check Finished and the loop duration"),
      tags=("dc", "cablecheck"), needs=("DC",))
async def cc_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_PreChargeReq", service=_dc(ctx))
    res = ctx.evidence.messages("rx", "DC_CableCheckRes")
    first = next((e.t for e in ctx.evidence.messages("tx", "DC_CableCheckReq")), 0.0)
    dur = (res[-1].t - first) if res else 0.0
    ctx.check("digest §5.4: DC_CableCheck Finished", bool(res) and (res[-1].decoded or {}).get("evse_processing") == "Finished",
              f"{len(res)} DC_CableCheckRes")
    ctx.check("digest §6.2: within V2G_EVCC_CableCheck_Timeout (40 s)", dur <= 40.0, f"{dur:.2f} s")
    ctx.metric("cable_check_s", dur)


@case("TC_SECC_DC_CableCheck_002", "Cable check before ScheduleExchange -> FAILED_SequenceError", group="CableCheck",
      purpose="The isolation check belongs after ScheduleExchange.",
      requirement="digest §3.3 (CPD Res: only ScheduleExchangeReq or Stop)",
      steps=("reach ScheduleExchangeReq", "send DC_CableCheckReq instead", "expect FAILED_SequenceError"),
      tags=("dc", "cablecheck", "sequence", "negative"), needs=("DC",))
async def cc_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ScheduleExchangeReq", service=_dc(ctx))
    rx = await t.exchange(m.DCCableCheckReq(header=t.header()))
    expect(ctx, rx, "DC_CableCheckRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: CableCheck out of sequence")


@case("TC_SECC_DC_CableCheck_003", "DC request in the AC payload type is refused", group="CableCheck",
      purpose="The payload type selects the grammar; a DC message in 0x8003 must not be processed as valid.",
      requirement="digest §1.2 (payload type selects the EXI grammar, 0x8004 for DC)",
      steps=("reach DC_CableCheckReq", "send it with payload type 0x8003", "expect no positive answer"),
      tags=("dc", "cablecheck", "transport", "negative"), needs=("DC",))
async def cc_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_CableCheckReq", service=_dc(ctx))
    rx = await t.exchange(held.message, payload_type=0x8003, timeout=2.5)
    await expect_refused(ctx, t, rx, "digest §1.2: wrong payload type refused")


@case("TC_SECC_DC_PreCharge_001", "Pre-charge reaches the EV target voltage", group="PreCharge",
      purpose="EVSEPresentVoltage converges to EVTargetVoltage (within 20 V) inside V2G_EVCC_PreCharge_Timeout.",
      requirement="digest §5.4 (DC_PreCharge loop) / §6.2 V2G_EVCC_PreCharge_Timeout 10 s",
      steps=("run to the first PowerDeliveryReq", "check the last DC_PreChargeRes voltage and the loop duration"),
      tags=("dc", "precharge"), needs=("DC",))
async def pc_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "PowerDeliveryReq", service=_dc(ctx))
    res = ctx.evidence.messages("rx", "DC_PreChargeRes")
    req = ctx.evidence.messages("tx", "DC_PreChargeReq")
    if not res:
        ctx.check("digest §3.1 row 10: DC_PreChargeRes", False, "none received")
        return
    v = (res[-1].decoded or {}).get("evse_present_voltage", 0.0)
    target = (req[-1].decoded or {}).get("ev_target_voltage", 0.0)
    ctx.check("digest §5.4: EVSEPresentVoltage within 20 V of EVTargetVoltage", abs(v - target) <= 20, f"{v} V vs {target} V")
    dur = res[-1].t - req[0].t
    ctx.check("digest §6.2: within V2G_EVCC_PreCharge_Timeout (10 s)", dur <= 10.0, f"{dur:.2f} s, {len(res)} rounds")
    ctx.metric("pre_charge_s", dur)


@case("TC_SECC_DC_PreCharge_002", "Pre-charge before cable check -> FAILED_SequenceError", group="PreCharge",
      purpose="Pre-charge needs a finished cable check.",
      requirement="digest §3.3 (ScheduleExchangeRes Finished -> DC_CableCheckReq)",
      steps=("reach DC_CableCheckReq", "send DC_PreChargeReq instead", "expect FAILED_SequenceError"),
      tags=("dc", "precharge", "sequence", "negative"), needs=("DC",))
async def pc_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_CableCheckReq", service=_dc(ctx))
    req = m.DCPreChargeReq(header=t.header(), ev_processing=m.Processing.ONGOING, ev_present_voltage=rn(800), ev_target_voltage=rn(800))
    rx = await t.exchange(req)
    expect(ctx, rx, "DC_PreChargeRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: PreCharge out of sequence")


@case("TC_SECC_DC_PreCharge_003", "Pre-charge never exceeds the EVSE maximum voltage", group="PreCharge",
      purpose="An EV target above the EVSE's EVSEMaximumVoltage must not be followed beyond that maximum.",
      requirement="digest §4.3/§4.4 (DC_CPD Res EVSEMaximumVoltage; DC_PreChargeRes EVSEPresentVoltage)",
      steps=("reach DC_PreChargeReq", "request EVTargetVoltage = EVSEMaximumVoltage + 200 V three times",
             "expect EVSEPresentVoltage <= EVSEMaximumVoltage (or a FAILED answer)"),
      tags=("dc", "precharge", "negative", "limits"), needs=("DC",))
async def pc_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_PreChargeReq", service=_dc(ctx))
    vmax = float(t.core.evse_limits.max_voltage) if t.core.evse_limits else 1000.0
    worst = 0.0
    for _ in range(3):
        req = m.DCPreChargeReq(header=t.header(), ev_processing=m.Processing.ONGOING,
                               ev_present_voltage=rn(int(vmax) + 200), ev_target_voltage=rn(int(vmax) + 200))
        rx = await t.exchange(req)
        if not rx.answered or (rx.code or "").startswith("FAILED"):
            await expect_refused(ctx, t, rx, "digest §4.4: target above EVSEMaximumVoltage refused")
            return
        worst = max(worst, float(dec(rx.msg.evse_present_voltage)))
    ctx.check("digest §4.4: EVSEPresentVoltage <= EVSEMaximumVoltage", worst <= vmax + 1, f"max {worst} V (EVSE max {vmax} V)")


@case("TC_SECC_DC_WeldingDetection_001", "Output voltage drops after PowerDelivery(Stop)", group="WeldingDetection",
      purpose="After Stop the DC output is discharged: EVSEPresentVoltage < 60 V during welding detection.",
      requirement="digest §3.1 row 14 / §5.3 (Stop: SECC opens contactors) / §6.2 welding loop 60 s",
      steps=("charge 3 loops", "PowerDelivery(Stop)", "DC_WeldingDetectionReq until done", "check the last voltage < 60 V"),
      tags=("dc", "welding", "loop"), needs=("DC",))
async def wd_001(ctx: CaseContext) -> None:
    await full_session(ctx, service=_dc(ctx), loops=3)
    res = ctx.evidence.messages("rx", "DC_WeldingDetectionRes")
    v = (res[-1].decoded or {}).get("evse_present_voltage", 999.0) if res else None
    ctx.check("digest §5.3: output discharged below 60 V after Stop", v is not None and v < 60, f"{len(res)} rounds, last {v} V")


@case("TC_SECC_DC_WeldingDetection_002", "Welding detection during the charge loop -> FAILED_SequenceError", group="WeldingDetection",
      purpose="Welding detection only after PowerDelivery(Stop).",
      requirement="digest §3.3 (ChargeLoopRes: ChargeLoopReq or PowerDeliveryReq only)",
      steps=("charge 2 loops", "send DC_WeldingDetectionReq", "expect FAILED_SequenceError", "power must stop"),
      tags=("dc", "welding", "sequence", "negative", "loop", "abort"), needs=("DC",))
async def wd_002(ctx: CaseContext) -> None:
    svc = _dc(ctx)
    t = ctx.tester(service=svc)
    stop_after(t, 2)
    held = await t.run(lambda n, msg: n == "PowerDeliveryReq" and t.loop_responses >= 2)
    rx = await t.exchange(m.DCWeldingDetectionReq(header=t.header(), ev_processing=m.Processing.ONGOING))
    expect(ctx, rx, "DC_WeldingDetectionRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: welding detection in the loop")
    await expect_power_off(ctx, t, 2.0, "digest §5.1: FAILED ends the session -> output off", required=False)
    _ = held


# --------------------------------------------------------------------------- PowerDelivery


@case("TC_SECC_PowerDelivery_001", "PowerDelivery(Start) enters the charge loop", group="PowerDelivery",
      purpose="Start is answered OK and charge-loop requests are then accepted.",
      requirement="digest §5.3 (Start: HLC-C begins once PowerDeliveryRes OK)",
      steps=("run a session with 2 loops", "check PowerDeliveryRes(Start) OK and ChargeLoopRes OK"),
      tags=("powerdelivery", "loop"))
async def pd_001(ctx: CaseContext) -> None:
    await full_session(ctx, loops=2)
    pds = ctx.evidence.messages("rx", "PowerDeliveryRes")
    ctx.check("digest §5.3: PowerDeliveryRes OK", bool(pds) and all((e.response_code or "").startswith("OK") for e in pds),
              f"{[e.response_code for e in pds]}")
    loops = [e for e in ctx.evidence.messages("rx") if e.name.endswith("ChargeLoopRes")]
    ctx.check("digest §3.1 row 12: charge loop answered", len(loops) >= 2, f"{len(loops)} ChargeLoopRes")


@case("TC_SECC_PowerDelivery_002", "Unknown ScheduleTupleID -> FAILED_ScheduleSelectionInvalid", group="PowerDelivery",
      purpose="Scheduled mode: the EV must select an offered ScheduleTuple.",
      requirement="digest §3.2 (PowerDeliveryReq EVPowerProfile: ID must be offered else FAILED_ScheduleSelectionInvalid)",
      steps=("select a Scheduled set", "reach PowerDeliveryReq(Start)", "send it with SelectedScheduleTupleID 250",
             "expect FAILED_ScheduleSelectionInvalid"),
      tags=("powerdelivery", "scheduled", "negative"))
async def pd_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "PowerDeliveryReq", mode=ControlMode.SCHEDULED)
    import dataclasses

    msg = held.message
    prof = dataclasses.replace(msg.ev_power_profile, control_mode=m.ScheduledEVPPTControlMode(selected_schedule_tuple_id=250))
    rx = await t.exchange(dataclasses.replace(msg, ev_power_profile=prof))
    expect(ctx, rx, "PowerDeliveryRes", RC.FAILED_SCHEDULE_SELECTION_INVALID.value, "digest §3.2: tuple not offered")


@case("TC_SECC_PowerDelivery_003", "PowerDelivery(Start) before the schedule -> FAILED_SequenceError", group="PowerDelivery",
      purpose="No energy transfer before ScheduleExchange (and, for DC, pre-charge).",
      requirement="digest §3.3 (CPD Res: only ScheduleExchangeReq or Stop)",
      steps=("reach ScheduleExchangeReq", "send PowerDeliveryReq(Start)", "expect FAILED_SequenceError", "session over"),
      tags=("powerdelivery", "sequence", "negative"))
async def pd_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ScheduleExchangeReq")
    req = m.PowerDeliveryReq(header=t.header(), ev_processing=m.Processing.FINISHED, charge_progress=m.ChargeProgress.START,
                             ev_power_profile=m.EVPowerProfile(time_anchor=0, control_mode=m.DynamicEVPPTControlMode(),
                             ev_power_profile_entries=m.EVPowerProfileEntryList(ev_power_profile_entry=[m.PowerScheduleEntry(duration=3600, power=rn(1000))])))
    rx = await t.exchange(req)
    expect(ctx, rx, "PowerDeliveryRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: Start before the schedule")
    await expect_session_over(ctx, t)


@case("TC_SECC_PowerDelivery_004", "Discharge channel on a non-BPT service is refused", group="PowerDelivery",
      purpose="BPT_ChannelSelection=Discharge makes no sense for AC/DC without BPT.",
      requirement="digest §4.3 (PowerDeliveryReq BPT_ChannelSelection is a BPT addition) / §5.1 PowerDeliveryRes FAILED*",
      steps=("select a non-BPT service", "PowerDeliveryReq(Start) with BPT_ChannelSelection=Discharge", "expect a FAILED code"),
      tags=("powerdelivery", "bpt", "negative"))
async def pd_004(ctx: CaseContext) -> None:
    svc = ctx.service(bpt=False)
    t, held = await reach(ctx, "PowerDeliveryReq", service=svc)
    import dataclasses

    rx = await t.exchange(dataclasses.replace(held.message, bpt_channel_selection=m.ChannelSelection.DISCHARGE))
    await expect_refused(ctx, t, rx, "digest §4.3: Discharge on a non-BPT service refused")


@case("TC_SECC_PowerDelivery_005", "Charge loop after PowerDelivery(Stop) -> FAILED_SequenceError", group="PowerDelivery",
      purpose="After Stop no more charge-loop requests are accepted (power stays off).",
      requirement="digest §3.3 (PowerDeliveryRes(Stop): WeldingDetection or SessionStop only)",
      steps=("charge 2 loops", "PowerDelivery(Stop)", "send a ChargeLoopReq", "expect FAILED_SequenceError"),
      tags=("powerdelivery", "sequence", "negative", "loop"))
async def pd_005(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 2)
    held = await t.run(lambda n, msg: n in ("DC_WeldingDetectionReq", "SessionStopReq"))
    if held is None:
        ctx.precondition(False, f"the session ended before PowerDelivery(Stop): {t.ended.reason if t.ended else '?'}")
    req = t.core._build_charge_loop(time.monotonic())  # a well-formed loop request, now out of sequence
    rx = await t.exchange(req)
    expect(ctx, rx, req.ELEMENT[1][:-3] + "Res", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: loop after Stop")


@case("TC_SECC_PowerDelivery_006", "Standby is accepted or refused with WARNING_StandbyNotAllowed", group="PowerDelivery",
      purpose="PowerDelivery(Standby) either holds the session at zero power or is refused with the warning.",
      requirement="digest §5.3 (Standby; WARNING_StandbyNotAllowed, DISAGREE #8)",
      steps=("charge 2 loops", "PowerDelivery(Standby)", "if OK: 2 loops at ~0 W", "stop"),
      tags=("powerdelivery", "standby", "loop"))
async def pd_006(ctx: CaseContext) -> None:
    t = ctx.tester()
    phase = {"standby_at": None}

    def hook(n: int, msg: object) -> None:
        if n == 2:
            t.ev.action = EVAction.STANDBY
        elif n > 2 and t.ev.action is EVAction.STANDBY:
            t.ev.action = EVAction.CONTINUE
        if n >= 5:
            t.ev.action = EVAction.STOP

    stop_after(t, 99, hook)
    await t.run(max_time=30)
    pds = [e for e in ctx.evidence.messages("rx", "PowerDeliveryRes")]
    sb = [e for e in pds if e.response_code in ("OK", "WARNING_StandbyNotAllowed")]
    ctx.check("digest §5.3: Standby answered OK or WARNING_StandbyNotAllowed", len(pds) >= 2 and pds[1].response_code in
              ("OK", "WARNING_StandbyNotAllowed"), f"{[e.response_code for e in pds]}")
    if len(pds) >= 2 and pds[1].response_code == "OK":
        after = [s.power_w for s in ctx.evidence.samples if s.t > pds[1].t]
        ctx.check("digest §5.3: zero power in Standby", bool(after) and all(abs(p or 0) < 100 for p in after[:2]),
                  f"power after Standby {after[:3]}")
    _ = (sb, phase)


# --------------------------------------------------------------------------- SessionStop / pause


@case("TC_SECC_SessionStop_001", "SessionStop(Terminate) and TCP close delay", group="SessionStop",
      purpose="SessionStopRes OK, then the SECC closes TCP after at most the 5 s close delay.",
      requirement="digest §5.3 (Terminate) / §6.2 close delay 5 s ([V2G20-1643])",
      steps=("full session with 2 loops", "after SessionStopRes keep TCP open", "expect the SUT to close within 5 s + 1.5 s"),
      tags=("sessionstop", "timing", "loop"))
async def stop_001(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 2)
    await t.run(max_time=30)
    res = ctx.evidence.messages("rx", "SessionStopRes")
    ctx.check("digest §5.3: SessionStopRes OK", bool(res) and res[-1].response_code == "OK", f"{[e.response_code for e in res]}")
    if not res:
        return
    closed = await t.wait_closed(6.5)
    delay = (closed - res[-1].t) if closed is not None else None
    ctx.check("digest §6.2: SECC closes TCP within the 5 s close delay (+1.5 s)", delay is not None and delay <= 6.5,
              f"closed {delay:.2f} s after SessionStopRes" if delay is not None else "still open after 6.5 s")
    if delay is not None:
        ctx.metric("close_delay_s", delay)


@case("TC_SECC_SessionStop_002", "SessionStop right after SessionSetup", group="SessionStop",
      purpose="The EV may end the session before authorization.",
      requirement="digest §3.3 (SessionSetupRes: AuthorizationSetupReq or Stop)",
      steps=("reach AuthorizationSetupReq", "send SessionStopReq(Terminate)", "expect OK"),
      tags=("sessionstop",))
async def stop_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE))
    expect(ctx, rx, "SessionStopRes", RC.OK.value, "digest §3.3: Stop after SessionSetup")


@case("TC_SECC_SessionStop_003", "SessionStop in the charge loop without PowerDelivery(Stop) is refused", group="SessionStop",
      purpose="Energy transfer must be stopped before the session (DC: always; AC: Josev accepts, DISAGREE).",
      requirement="digest §3.3 (ChargeLoopRes: ChargeLoopReq or PowerDeliveryReq; 'J AC also accepts Stop')",
      steps=("charge 2 loops", "send SessionStopReq(Terminate)", "expect FAILED_SequenceError; output off"),
      tags=("sessionstop", "sequence", "negative", "loop", "abort"))
async def stop_003(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 2)
    await t.run(lambda n, msg: n == "PowerDeliveryReq" and t.loop_responses >= 2)
    rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE))
    expect(ctx, rx, "SessionStopRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: Stop inside the loop")
    await expect_power_off(ctx, t, 2.0, "digest §5.1: session ended -> output off", required=False)


@case("TC_SECC_SessionStop_004", "SessionStop(ServiceRenegotiation) returns to ServiceDiscovery", group="SessionStop",
      purpose="If ServiceRenegotiationSupported, the EV can go back to ServiceDiscovery; otherwise the SUT refuses.",
      requirement="digest §5.3 (ServiceRenegotiation) / §3.3 last row / [V2G20-1477]",
      steps=("charge 2 loops, PowerDelivery(Stop)", "SessionStopReq(ServiceRenegotiation)",
             "if supported: expect OK and a ServiceDiscoveryRes OK; else FAILED_NoServiceRenegotiationSupported"),
      tags=("sessionstop", "renegotiation", "loop"))
async def stop_004(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 2)
    await t.run(lambda n, msg: n in ("DC_WeldingDetectionReq", "SessionStopReq"))
    rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.SERVICE_RENEGOTIATION))
    if t.core.renegotiation_supported:
        expect(ctx, rx, "SessionStopRes", RC.OK.value, "digest §5.3: ServiceRenegotiation accepted")
        rx2 = await t.exchange(m.ServiceDiscoveryReq(header=t.header()))
        expect(ctx, rx2, "ServiceDiscoveryRes", RC.OK.value, "digest §3.3: ServiceDiscovery after renegotiation")
    else:
        expect(ctx, rx, "SessionStopRes", RC.FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED.value,
               "digest §5.1: renegotiation not supported")


@case("TC_SECC_SessionStop_005", "No answers after SessionStopRes", group="SessionStop",
      purpose="After the session ended, a further request is not processed.",
      requirement="digest §3.3 (SessionStopRes: end) / §6.3",
      steps=("reach AuthorizationSetupReq", "SessionStop(Terminate)", "send ServiceDiscoveryReq", "expect no OK answer"),
      tags=("sessionstop", "negative"))
async def stop_005(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE))
    expect(ctx, rx, "SessionStopRes", RC.OK.value, "digest §5.3: SessionStop OK")
    rx2 = await t.exchange(m.ServiceDiscoveryReq(header=t.header()), timeout=1.5)
    await expect_refused(ctx, t, rx2, "digest §3.3: no processing after the session ended")


@case("TC_SECC_PauseResume_001", "Pause and resume with the old SessionID", group="PauseResume",
      purpose="SessionStop(Pause) keeps the session; SessionSetupReq with its ID joins it and charging resumes.",
      requirement="digest §6.4 (known paused ID -> OK_OldSessionJoined) / §5.3 Pause",
      steps=("charge 2 loops, PowerDelivery(Stop), SessionStop(Pause)", "reconnect with the paused SessionID",
             "expect OK_OldSessionJoined with the same ID", "charge 2 loops again and stop"),
      tags=("pause", "resume", "session_id", "loop"), needs=("pause_resume",))
async def pause_001(ctx: CaseContext) -> None:
    svc = ctx.service()
    t = ctx.tester(service=svc)
    stop_after(t, 2)
    t.on_response, orig = None, t.on_response

    def pause_hook(name: str, msg: object) -> None:
        orig(name, msg)  # type: ignore[misc]
        if t.ev.action is EVAction.STOP:
            t.ev.action = EVAction.PAUSE

    t.on_response = pause_hook
    await t.run(max_time=30)
    paused = t.core.paused_session_id
    ctx.require("digest §5.3: SessionStop(Pause) accepted", paused is not None, f"paused ID {paused.hex() if paused else None}")
    await t.close()
    if ctx.sut.before_case is not None:
        await ctx.sut.before_case()
    t2 = ctx.tester(service=svc, resume_session_id=paused, ev=type(t.ev)(evcc_id=t.ev.evcc_id))
    stop_after(t2, 2)
    await t2.run(max_time=30)
    setups = [e for e in ctx.evidence.messages("rx", "SessionSetupRes")]
    last = setups[-1] if setups else None
    ctx.check("digest §6.4: OK_OldSessionJoined", last is not None and last.response_code == "OK_OldSessionJoined",
              (last.response_code or "") if last else "no SessionSetupRes")
    ctx.check("digest §6.4: same SessionID after resume", t2.session_id == paused, f"{t2.session_id.hex()} vs {paused.hex()}")
    ctx.check("digest §5.3: charging resumed and ended cleanly", t2.ended is not None and t2.ended.ok and t2.loop_responses >= 2,
              t2.ended.reason if t2.ended else "no end")


@case("TC_SECC_PauseResume_002", "A paused session cannot be joined by another EV", group="PauseResume",
      purpose="Resumption is bound to the EV that paused (EVCCID here; TLS certificate with libiso).",
      requirement="digest §6.4 (resume binding, libiso SHA-512 of the vehicle certificate)",
      steps=("pause a session", "reconnect with its SessionID but another EVCCID", "expect OK_NewSessionEstablished with a new ID"),
      tags=("pause", "resume", "session_id", "loop", "negative"), needs=("pause_resume",))
async def pause_002(ctx: CaseContext) -> None:
    svc = ctx.service()
    t = ctx.tester(service=svc)
    t.ev.action = EVAction.CONTINUE
    stop_after(t, 1)
    orig = t.on_response

    def pause_hook(name: str, msg: object) -> None:
        orig(name, msg)  # type: ignore[misc]
        if t.ev.action is EVAction.STOP:
            t.ev.action = EVAction.PAUSE

    t.on_response = pause_hook
    await t.run(max_time=30)
    paused = t.core.paused_session_id
    ctx.require("digest §5.3: SessionStop(Pause) accepted", paused is not None, "paused")
    await t.close()
    if ctx.sut.before_case is not None:
        await ctx.sut.before_case()
    other = type(t.ev)(evcc_id="WMIOTHEREV0000000009")
    t2 = ctx.tester(service=svc, ev=other)
    held = await t2.run_to("SessionSetupReq")
    from conformance.cases._common import with_session

    rx = await t2.exchange(with_session(held.message, paused))
    ok = rx.answered and rx.code == "OK_NewSessionEstablished" and rx.msg.header.session_id != paused
    ctx.check("digest §6.4: no resume by another EV", bool(ok),
              f"{rx.code} ID {rx.msg.header.session_id.hex() if rx.answered else None}")


@case("TC_SECC_PauseResume_003", "A paused SessionID can be resumed only once", group="PauseResume",
      purpose="After a successful resume the old ID is consumed.",
      requirement="digest §6.4 (paused session store)",
      steps=("pause, resume (OldSessionJoined), stop with Terminate", "try to resume the same ID again",
             "expect OK_NewSessionEstablished"),
      tags=("pause", "resume", "session_id"), needs=("pause_resume",))
async def pause_003(ctx: CaseContext) -> None:
    svc = ctx.service()
    t, held = await reach(ctx, "ServiceDiscoveryReq", service=svc)
    # pause needs a selected service in most SECCs: go through selection first
    await t.release(hold=lambda n, msg: n.endswith("ChargeParameterDiscoveryReq"))
    rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.PAUSE))
    if not rx.answered or rx.code != "OK":
        ctx.inconclusive(f"precondition: the SUT did not pause before charging ({rx.code or rx.error})")
    paused = t.session_id
    await t.close()
    for attempt in range(2):
        if ctx.sut.before_case is not None:
            await ctx.sut.before_case()
        t2 = ctx.tester(service=svc, ev=type(t.ev)(evcc_id=t.ev.evcc_id))
        h = await t2.run_to("SessionSetupReq")
        from conformance.cases._common import with_session

        rx = await t2.exchange(with_session(h.message, paused))
        want = "OK_OldSessionJoined" if attempt == 0 else "OK_NewSessionEstablished"
        ctx.check(f"digest §6.4: resume attempt {attempt + 1} -> {want}", rx.code == want, f"{rx.code}")
        if rx.answered:
            await t2.exchange(m.SessionStopReq(header=t2.header(rx.msg.header.session_id), charging_session=m.ChargingSession.TERMINATE))
        await t2.close()
