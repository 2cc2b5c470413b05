"""AC_BPT and DC_BPT charge loops (digest §3.2, §4.3, §6.1)."""

from __future__ import annotations

from typing import Any

from conformance.cases._common import RC, EVAction, expect, expect_power_off, full_session, m, stop_after, with_session, wrong_id
from conformance.cases._loop import check_limits, pairs
from conformance.catalogue import CaseContext, case
from conformance.tester_ev import TesterEV
from iso15118.session.services import ControlMode, EnergyService


def _evse(t: Any) -> tuple[float | None, float | None]:
    el = t.core.evse_limits
    return (float(el.max_charge_power), float(el.max_discharge_power) or None) if el is not None else (None, None)


def _loop_timing(ctx: CaseContext, t) -> None:  # type: ignore[no-untyped-def]
    rts = t.response_times.get(next((k for k in t.response_times if k.endswith("ChargeLoopRes")), ""), [])
    if rts:
        srt = sorted(rts)
        ctx.metric("loop_rt_median_ms", srt[len(srt) // 2] * 1000)
        ctx.metric("loop_rt_max_ms", srt[-1] * 1000)
    ctx.check("digest §6.1: every ChargeLoopRes within 0.5 s", bool(rts) and max(rts) <= 0.5,
              f"{len(rts)} responses, max {max(rts) * 1000:.0f} ms" if rts else "no loop responses")


def _meter_monotonic(ctx: CaseContext) -> None:
    ps = pairs(ctx)
    ch: list[Any] = [p.meter.get("charged_energy_reading_wh") for p in ps if p.meter]
    dis: list[Any] = [p.meter.get("bpt_discharged_energy_reading_wh") for p in ps if p.meter.get("bpt_discharged_energy_reading_wh") is not None]
    ok = bool(ch) and all(b >= a for a, b in zip(ch, ch[1:])) and all(b >= a for a, b in zip(dis, dis[1:]))
    ctx.check("digest §4.4: MeterInfo present when requested, readings never decrease", ok,
              f"{len(ch)} readings, charged {ch[:1]}..{ch[-1:]} Wh, discharged {dis[:1]}..{dis[-1:]} Wh")


def _dynamic_charge(family: str):  # type: ignore[no-untyped-def]
    async def run(ctx: CaseContext) -> None:
        svc = ctx.service(bpt=True, family=family)
        t = await full_session(ctx, service=svc, mode=ControlMode.DYNAMIC, loops=8)
        mx, _ = _evse(t)
        check_limits(ctx, pairs(ctx), evse_max=mx)
        _loop_timing(ctx, t)
        ps = pairs(ctx)
        ctx.check("digest §3.2: Dynamic mode -> SECC delivers power", any((p.power or 0) > 100 for p in ps),
                  f"max {max((p.power or 0) for p in ps):.0f} W" if ps else "no loop")
    return run


def _scheduled(family: str, export: bool):  # type: ignore[no-untyped-def]
    async def run(ctx: CaseContext) -> None:
        svc = ctx.service(bpt=True, family=family)
        ev = TesterEV(export=export, evcc_id=ctx.evcc_id())
        t = await full_session(ctx, service=svc, mode=ControlMode.SCHEDULED, loops=8, ev=ev)
        mx, mxd = _evse(t)
        ps = pairs(ctx)
        check_limits(ctx, ps, evse_max=mx, evse_max_discharge=mxd)
        _loop_timing(ctx, t)
        if export:
            ctx.check("digest §4.3: export follows the DischargingSchedule (negative power)",
                      any((p.power or 0) < -100 for p in ps), f"min {min((p.power or 0) for p in ps):.0f} W" if ps else "none")
            _meter_monotonic(ctx)
    return run


for fam in ("AC", "DC"):
    case(f"TC_SECC_{fam}_BPT_ChargeLoop_001", f"{fam}_BPT dynamic charging within the EV limits", group="ChargeLoop",
         purpose="Dynamic mode: the SECC decides the power but never beyond the EV's (and its own) limits; answers in time.",
         requirement="digest §3.2 (Dynamic: SECC decides within limits) / §6.1 (ChargeLoop 0.5 s)",
         steps=(f"select {fam}_BPT, Dynamic", "8 charge loops", "check every response against the request's EV limits and 0.5 s"),
         tags=("loop", "bpt", f"{fam.lower()}_bpt", "dynamic", "limits"), needs=(fam, "BPT"))(_dynamic_charge(fam))
    case(f"TC_SECC_{fam}_BPT_ChargeLoop_002", f"{fam}_BPT scheduled charging", group="ChargeLoop",
         purpose="Scheduled mode: charging along the selected ScheduleTuple within all limits.",
         requirement="digest §3.2 (Scheduled: EV follows the selected ScheduleTuple) / §6.1",
         steps=(f"select {fam}_BPT, Scheduled", "8 charge loops", "check limits and timing"),
         tags=("loop", "bpt", f"{fam.lower()}_bpt", "scheduled", "limits"), needs=(fam, "BPT"))(_scheduled(fam, False))
    case(f"TC_SECC_{fam}_BPT_ChargeLoop_003", f"{fam}_BPT scheduled discharging (export)", group="ChargeLoop",
         purpose="Scheduled mode with a DischargingSchedule: the EV exports, within the EV and EVSE discharge limits; the meter counts it.",
         requirement="digest §4.3 (BPT additions, sign convention) / §3.2 ScheduleTuple.DischargingSchedule / §4.4 MeterInfo",
         steps=(f"select {fam}_BPT, Scheduled", "EV asks for export", "8 loops", "check negative power, limits, meter readings"),
         tags=("loop", "bpt", f"{fam.lower()}_bpt", "scheduled", "discharge", "limits"), needs=(fam, "BPT"))(_scheduled(fam, True))


@case("TC_SECC_ChargeLoop_004", "Non-BPT loop element on a BPT service -> FAILED", group="ChargeLoop",
      purpose="The charge-loop control-mode element must match the selected service.",
      requirement="digest §4.3 (BPT element signals BPT) / §5.1 ChargeLoopRes (FAILED on service mismatch)",
      steps=("BPT service, Dynamic, 2 loops", "send a non-BPT Dynamic ChargeLoopReq", "expect FAILED*; output off"),
      tags=("loop", "bpt", "negative", "abort"), needs=("BPT",))
async def cl_004(ctx: CaseContext) -> None:
    svc = ctx.service(bpt=True)
    t = ctx.tester(service=svc)
    stop_after(t, 99)
    held = await t.run(lambda n, msg: n.endswith("ChargeLoopReq") and t.loop_responses >= 2)
    msg = held.message
    cm = msg.control_mode
    base = {k: getattr(cm, k) for k in ("departure_time", "ev_target_energy_request", "ev_maximum_energy_request",
                                         "ev_minimum_energy_request", "ev_maximum_charge_power", "ev_minimum_charge_power")}
    import dataclasses

    new: Any
    if svc.ac_dc.value == "AC":
        new = m.DynamicACCLReqControlMode(**base, ev_present_active_power=cm.ev_present_active_power,
                                          ev_present_reactive_power=cm.ev_present_reactive_power)
    else:
        new = m.DynamicDCCLReqControlMode(**base, ev_maximum_charge_current=cm.ev_maximum_charge_current,
                                          ev_maximum_voltage=cm.ev_maximum_voltage, ev_minimum_voltage=cm.ev_minimum_voltage)
    rx = await t.exchange(dataclasses.replace(msg, header=t.header(), control_mode=new))
    from conformance.cases._common import expect_refused

    await expect_refused(ctx, t, rx, "digest §5.1: loop element / service mismatch refused")
    await expect_power_off(ctx, t, 2.0, "digest §5.1: FAILED ends the session -> output off", required=False)


@case("TC_SECC_ChargeLoop_005", "MeterInfo in the charge loop", group="ChargeLoop",
      purpose="MeterInfoRequested=true is answered with MeterInfo whose readings never decrease.",
      requirement="digest §4.4 (ChargeLoopReq MeterInfoRequested, Res MeterInfo?) / §7.1 MeterInfo",
      steps=("charge 6 loops with MeterInfoRequested", "check MeterInfo and monotonic readings"),
      tags=("loop", "meter"))
async def cl_005(ctx: CaseContext) -> None:
    await full_session(ctx, loops=6)
    _meter_monotonic(ctx)


@case("TC_SECC_ChargeLoop_006", "Wrong SessionID in the charge loop -> FAILED_UnknownSession, output off", group="ChargeLoop",
      purpose="A wrong SessionID mid-transfer ends the session and the output must be switched off.",
      requirement="digest §6.4 (FAILED_UnknownSession) / §5.1 (FAILED ends the session)",
      steps=("charge 3 loops", "send the next ChargeLoopReq with a wrong SessionID", "expect FAILED_UnknownSession",
             "probe: output off within 2 s"),
      tags=("loop", "session_id", "negative", "abort"))
async def cl_006(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 99)
    held = await t.run(lambda n, msg: n.endswith("ChargeLoopReq") and t.loop_responses >= 3)
    rx = await t.exchange(with_session(held.message, wrong_id(t.session_id)))
    expect(ctx, rx, held.message.ELEMENT[1][:-3] + "Res", RC.FAILED_UNKNOWN_SESSION.value, "digest §6.4: wrong SessionID in the loop")
    await expect_power_off(ctx, t, 2.0, "digest §5.1: session ended -> output off", required=False)


@case("TC_SECC_ChargeLoop_007", "Charge-loop response time over 20 cycles", group="ChargeLoop",
      purpose="Every ChargeLoopRes within V2G_EVCC_Msg_Timeout (0.5 s); median and maximum reported.",
      requirement="digest §6.1 (AC_ChargeLoop, DC_ChargeLoop 0.5 s)",
      steps=("charge 20 loops", "check every response time"),
      tags=("loop", "timing"))
async def cl_007(ctx: CaseContext) -> None:
    t = await full_session(ctx, loops=20)
    _loop_timing(ctx, t)
    _ = EVAction, EnergyService


@case("TC_SECC_ChargeLoop_008", "The vehicle vanishes mid-loop (TCP reset): output off, ready for the next vehicle",
      group="ChargeLoop",
      purpose="A vehicle that disappears mid-loop without a FIN (RST) must not leave the output on, and the charger must serve "
              "the next vehicle: a new session completes SAP and SessionSetup within the close delay (5 s) + 2 s.",
      requirement="digest §6.3 (connection loss -> stop) / §5.1 safe state / §6.2 close delay 5 s",
      steps=("charge 3 loops", "TCP RST", "probe (if any): output off within 2 s", "a new session within 7 s of the reset"),
      tags=("loop", "abort", "transport", "safe_state"))
async def cl_008(ctx: CaseContext) -> None:
    import time

    from conformance.cases._common import expect_power_off
    from conformance.runner import reach_sut

    t = ctx.tester()
    stop_after(t, 99)
    held = await t.run(lambda n, msg: n.endswith("ChargeLoopReq") and t.loop_responses >= 3)
    ctx.precondition(held is not None and t.loop_responses >= 3, f"{t.loop_responses} loop responses",
                     "precondition: the SUT charges for 3 loops")
    ctx.evidence.mark("vehicle vanished (RST)")
    t.reset()
    t0 = time.monotonic()
    await expect_power_off(ctx, t, 2.0, "safe state: output off after the vehicle vanished", required=False)
    why = await reach_sut(ctx.sut, ctx.evidence)
    took = time.monotonic() - t0
    if why is not None:
        ctx.liveness_failure = why
    ctx.check("digest §6.2/§6.3: the next vehicle gets a session within 5 s + 2 s of the reset", why is None and took <= 7.0,
              why or f"new session after {took:.2f} s")
    ctx.metric("next_vehicle_s", took)
