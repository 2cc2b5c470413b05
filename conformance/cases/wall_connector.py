"""The Wall Connector campaign: AC_BPT V2H at 48 A / 11.5 kW (digest §4.3; controller.py sign
convention), minimum-SOC reserve, adapter thermal derate and recovery, and abort cases that
must leave the SUT in a safe state (power off, session ended or resumable, energy accounted).

Allowed time to follow a lowered EV limit: the digest gives no figure, so the harness uses the
tightest protocol bound there is -- the SECC's answer to the first ChargeLoopReq carrying the
new limit (at most V2G_EVCC_Msg_Timeout = 0.5 s after it, digest §6.1) must already comply.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conformance.cases._common import (
    RC,
    EVAction,
    expect,
    expect_power_off,
    m,
    reach,
    stop_after,
    with_session,
    wrong_id,
)
from conformance.cases._loop import LoopPair, check_limits, follow_time, over, pairs
from conformance.catalogue import CaseContext, Inconclusive, case
from conformance.tester import TesterEvcc
from conformance.tester_ev import TesterEV
from iso15118.session.services import ControlMode, EnergyService

RATED_W = 11520.0
RATED_A = 48.0
FOLLOW_S = 0.5


async def _trigger(ctx: CaseContext, t: TesterEvcc, event: str) -> None:
    if ctx.sut.control is None:
        raise Inconclusive(f"needs the lab control interface (--control) to cause '{event}' at the SUT")
    ok = await ctx.sut.control.trigger(t.ev.evcc_id, event)
    if not ok:
        raise Inconclusive(f"the SUT's lab control could not do '{event}'")
    ctx.evidence.mark(event)


def _ac_current(p: LoopPair, volts: float = 240.0) -> float | None:
    return abs(p.power) / volts if p.power is not None else None


async def _export_tester(ctx: CaseContext, ev: TesterEV | None = None, *, at: int = 1) -> TesterEvcc:
    """A tester whose session will be exporting from loop ``at`` on: V2H (grid outage, Dynamic)
    when the lab control is there, else a Scheduled export."""
    svc = ctx.service(bpt=True)
    ev = ev or TesterEV(evcc_id=ctx.evcc_id())
    t: TesterEvcc
    if ctx.sut.control is not None:
        t = ctx.tester(service=svc, mode=ControlMode.DYNAMIC, ev=ev)
        t.extra_trigger = at  # type: ignore[attr-defined]
    else:
        ev.export = True
        t = ctx.tester(service=svc, mode=ControlMode.SCHEDULED, ev=ev)
        t.extra_trigger = None  # type: ignore[attr-defined]
    return t


async def _run_export(ctx: CaseContext, t: TesterEvcc, hook: Any = None, *, stop: int = 99,
                      hold: Any = None, max_time: float = 40.0) -> Any:
    pending: list[str] = []

    def h(n: int, msg: Any) -> None:
        if getattr(t, "extra_trigger", None) == n:
            pending.append("grid_outage")
        if hook is not None:
            hook(n, msg)

    stop_after(t, stop, h)
    # triggers are async: run them between exchanges through the hold hook
    async def go() -> Any:
        while True:
            held = await t.run(lambda name, msg: bool(pending) or (hold is not None and hold(name, msg)), max_time=max_time)
            if held is None:
                return None
            if pending:
                await _trigger(ctx, t, pending.pop())
                if hold is not None and hold(held.name, held.message):
                    return held
                continue
            return held

    return await go()


def _v2h_or_export_check(ctx: CaseContext, ps: list[LoopPair]) -> None:
    ctx.check("digest §4.3: energy flows out of the EV (negative power) in this case",
              any((p.power or 0) < -100 for p in ps), f"min power {min((p.power or 0) for p in ps):.0f} W" if ps else "no loop")


# --------------------------------------------------------------------------- rating and V2H


@case("TC_SECC_WC_Power_001", "Charging at the 48 A / 11.5 kW rating, never above", group="WallConnector",
      purpose="With generous EV limits the Wall Connector delivers its rating and never exceeds 11.52 kW / 48 A.",
      requirement="Wall Connector rating (48 A at 240 V) / digest §3.2 Dynamic: SECC decides within limits",
      steps=("AC_BPT Dynamic, EV limits 11.52 kW", "10 loops", "check reaching >= 95 % and never > rating"),
      tags=("wallconnector", "loop", "ac_bpt", "limits"), needs=("AC", "BPT"))
async def wc_power_001(ctx: CaseContext) -> None:
    t = ctx.tester(service=EnergyService.AC_BPT)
    stop_after(t, 10)
    await t.run(max_time=30)
    ps = pairs(ctx)
    check_limits(ctx, ps, evse_max=RATED_W, max_current=None)
    peak = max((p.power or 0) for p in ps) if ps else 0.0
    ctx.metric("peak_power_w", peak)
    ctx.check("rating: reaches >= 95 % of 11.52 kW", peak >= 0.95 * RATED_W, f"peak {peak:.0f} W")
    cur = max((_ac_current(p) or 0) for p in ps) if ps else 0.0
    ctx.check("rating: current <= 48 A at 240 V", cur <= RATED_A + 0.5, f"max {cur:.1f} A")


@case("TC_SECC_WC_V2H_001", "V2H export at 48 A / 11.5 kW after a grid outage", group="WallConnector",
      purpose="On a grid outage the Wall Connector takes the home load from the vehicle, within the EV's discharge limit and its rating.",
      requirement="digest §4.3 (BPT, discharge limits as magnitudes) / Wall Connector V2H rating",
      steps=("AC_BPT Dynamic", "grid outage at loop 1 (lab control)", "12 loops", "check export, limits, switch-over time"),
      preconditions=("lab control interface (grid outage)",),
      tags=("wallconnector", "v2h", "loop", "ac_bpt", "discharge", "limits"), needs=("AC", "BPT", "control"))
async def wc_v2h_001(ctx: CaseContext) -> None:
    t = await _export_tester(ctx)
    await _run_export(ctx, t, stop=12)
    ps = pairs(ctx)
    check_limits(ctx, ps, evse_max=RATED_W, evse_max_discharge=RATED_W)
    _v2h_or_export_check(ctx, ps)
    out = [p for p in ps if (p.power or 0) < -100]
    mark = next((tm for tm, lbl in ctx.evidence.markers if lbl == "grid_outage"), None)
    if out and mark is not None:
        ctx.metric("v2h_switch_s", out[0].t - mark)
        ctx.check("V2H switch-over within 2 s of the outage", out[0].t - mark <= 2.0, f"{out[0].t - mark:.3f} s")
    cur = max((_ac_current(p) or 0) for p in ps) if ps else 0.0
    ctx.check("rating: export current <= 48 A", cur <= RATED_A + 0.5, f"max {cur:.1f} A")


# --------------------------------------------------------------------------- minimum SOC reserve


@case("TC_SECC_WC_Reserve_001", "Export stops at the EV's minimum-SOC reserve", group="WallConnector",
      purpose="When the EV reaches its reserve it withdraws its discharge limit; the SUT must stop exporting at once and the SOC must not fall below the reserve.",
      requirement="digest §4.3 (EVMaximumDischargePower, EVMinimumV2XEnergyRequest) / §3.2 Dynamic: within limits",
      steps=("EV at 23 % SOC, reserve 20 %, 150 Wh virtual capacity", "export (V2H or scheduled)",
             "EV sets max discharge 0 at the reserve", "check: no export after that, SOC >= reserve - 1 %, energy accounted"),
      tags=("wallconnector", "reserve", "loop", "bpt", "discharge", "limits"), needs=("BPT",))
async def wc_reserve_001(ctx: CaseContext) -> None:
    ev = TesterEV(evcc_id=ctx.evcc_id(), soc=23.0, min_soc_reserve=20, capacity_wh=150.0)
    t = await _export_tester(ctx, ev)
    state: dict[str, Any] = {"reserve_t": None, "after": 0}

    def hook(n: int, msg: Any) -> None:
        if ev.reserve_reached and state["reserve_t"] is None:
            state["reserve_t"] = ctx.evidence.now()
            ctx.evidence.mark("EV at reserve: max discharge 0")
        if state["reserve_t"] is not None:
            state["after"] += 1
            if state["after"] >= 5:
                t.ev.action = EVAction.STOP

    start_above = (ev.soc - ev.min_soc_reserve) * ev.capacity_wh / 100.0
    await _run_export(ctx, t, hook, stop=200, max_time=45)
    ps = pairs(ctx)
    check_limits(ctx, ps)
    _v2h_or_export_check(ctx, ps)
    rt = state["reserve_t"]
    ctx.precondition(rt is not None, f"SOC {ev.soc:.2f} %")
    assert rt is not None
    late = [p for p in ps if p.req.t > rt and (p.power or 0) < -TOL_EXPORT]
    ctx.check("digest §4.3: no export once the EV's discharge limit is 0", not late,
              f"{len(late)} exporting responses after the reserve" + (f", first {late[0].power:.0f} W" if late else ""))
    # The EV notices its reserve one loop late (it measures between loops), so it may overshoot by
    # at most one loop interval at the last export power; everything beyond is the SUT's.
    reqs = [p.req.t for p in ps]
    gap = max((b - a for a, b in zip(reqs, reqs[1:])), default=0.0)
    peak = max((-(p.power or 0) for p in ps), default=0.0)
    slack_wh = peak * gap / 3600.0 + 0.5
    slack_pct = 100.0 * slack_wh / ev.capacity_wh
    ctx.metric("reserve_slack_wh", slack_wh)
    ctx.check("reserve: SOC not below the reserve beyond one loop of lag", ev.soc >= ev.min_soc_reserve - slack_pct,
              f"final SOC {ev.soc:.2f} % (reserve {ev.min_soc_reserve} %, one-loop slack {slack_pct:.2f} %)")
    available = start_above + ev.charged_wh  # charging before the outage raised the SOC
    ctx.check("reserve: exported energy <= energy above the reserve + one loop of lag", ev.discharged_wh <= available + slack_wh,
              f"{ev.discharged_wh:.2f} Wh exported, {available:.2f} Wh available ({ev.charged_wh:.2f} Wh charged first), "
              f"slack {slack_wh:.2f} Wh (longest loop interval {gap * 1000:.0f} ms)")
    _energy_accounted(ctx, ev)


TOL_EXPORT = 50.0


def _energy_accounted(ctx: CaseContext, ev: TesterEV) -> None:
    ps = [p for p in pairs(ctx) if p.meter.get("bpt_discharged_energy_reading_wh") is not None]
    if len(ps) < 2:
        ctx.check("digest §4.4: MeterInfo with BPT_DischargedEnergyReadingWh", False, f"{len(ps)} readings")
        return
    meter = float(ps[-1].meter["bpt_discharged_energy_reading_wh"]) - float(ps[0].meter["bpt_discharged_energy_reading_wh"])
    ev_wh = ev.discharged_wh
    ok = abs(meter - ev_wh) <= max(2.0, 0.3 * ev_wh)
    ctx.metric("meter_discharged_wh", meter)
    ctx.metric("ev_discharged_wh", ev_wh)
    ctx.check("no energy unaccounted: meter export matches the EV's own count (2 Wh or 30 %)", ok,
              f"meter {meter:.2f} Wh (integer Wh readings) vs EV {ev_wh:.2f} Wh")


@case("TC_SECC_WC_Reserve_002", "No export when the EV is below its reserve", group="WallConnector",
      purpose="An EV below its reserve declares no discharge capability (and a minimum energy need); the SUT must never export, even in a grid outage.",
      requirement="digest §4.3 (EVMaximumDischargePower 0) / §3.2 Dynamic: within limits",
      steps=("EV at 19 %, reserve 20 %", "grid outage (lab control) or export schedule", "8 loops", "check power >= 0 throughout"),
      tags=("wallconnector", "reserve", "loop", "bpt", "limits"), needs=("BPT",))
async def wc_reserve_002(ctx: CaseContext) -> None:
    ev = TesterEV(evcc_id=ctx.evcc_id(), soc=19.0, min_soc_reserve=20)
    t = await _export_tester(ctx, ev)
    await _run_export(ctx, t, stop=8)
    ps = pairs(ctx)
    check_limits(ctx, ps)
    neg = [p for p in ps if (p.power or 0) < -TOL_EXPORT]
    ctx.check("reserve: the SUT never exports from an EV at its reserve", bool(ps) and not neg,
              f"{len(ps)} loops, {len(neg)} exporting" + (f" (first {neg[0].power:.0f} W)" if neg else ""))


# --------------------------------------------------------------------------- thermal derate


def _derate_case(direction: str, factor: float, recover: bool):  # type: ignore[no-untyped-def]
    async def run(ctx: CaseContext) -> None:
        at, rec, stop = 4, 12, 18
        if direction == "charge":
            t = ctx.tester(service=ctx.service(bpt=True), mode=ControlMode.DYNAMIC)
        else:
            t = await _export_tester(ctx)
            if getattr(t, "extra_trigger", None) is None:
                raise Inconclusive("discharge derate needs the SUT to decide the export power (Dynamic V2H via --control)")
        marks: dict[str, float] = {}

        def hook(n: int, msg: Any) -> None:
            if n == at:
                if direction == "charge":
                    t.ev.derate(factor, 1.0)
                else:
                    t.ev.derate(1.0, factor)
                marks["derate"] = ctx.evidence.now()
                ctx.evidence.mark(f"adapter hot: EV {direction} limit x{factor:g}")
            if recover and n == rec:
                t.ev.derate(1.0, 1.0)
                marks["recover"] = ctx.evidence.now()
                ctx.evidence.mark("adapter cooled: limits restored")

        if direction == "charge":
            stop_after(t, stop, hook)
            await t.run(max_time=40)
        else:
            await _run_export(ctx, t, hook, stop=stop)
        ps = pairs(ctx)
        check_limits(ctx, ps)
        ctx.precondition("derate" in marks, f"{len(ps)} loops")
        key = "ev_maximum_charge_power" if direction == "charge" else "ev_maximum_discharge_power"
        sign = 1 if direction == "charge" else -1
        d0 = marks["derate"]
        pre = [sign * (p.power or 0) for p in ps if p.req.t < d0]
        new_lim = next((p.ev(key) or 0.0 for p in ps if p.req.t >= d0), 0.0)
        if not (bool(pre) and over(max(pre), new_lim)):
            ctx.inconclusive(f"following the derate is not observable: the SUT delivered at most {max(pre, default=0):.0f} W "
                             f"before it, not more than the derated limit {new_lim:.0f} W")
        first = next((p for p in ps if p.req.t >= d0), None)
        if first is not None:
            lim = first.ev(key) or 0.0
            ok = not over(sign * (first.power or 0), lim)
            ctx.check(f"derate: the first response to the lowered limit complies (allowed time {FOLLOW_S:g} s)",
                      ok and first.t - first.req.t <= FOLLOW_S,
                      f"{abs(first.power or 0):.0f} W vs limit {lim:.0f} W, {1000 * (first.t - first.req.t):.0f} ms after the request")
            ft = follow_time(ps, d0, lambda p: not over(sign * (p.power or 0), p.ev(key) or 0.0))
            if ft is not None:
                ctx.metric("derate_follow_s", ft)
        window = [p for p in ps if p.req.t >= d0 and ("recover" not in marks or p.req.t < marks["recover"])]
        viol = [p for p in window if over(sign * (p.power or 0), p.ev(key) or 0.0)]
        ctx.check("derate: never above the new limit while derated", bool(window) and not viol,
                  f"{len(window)} derated loops, {len(viol)} above the limit")
        if recover:
            r0 = marks.get("recover")
            ctx.precondition(r0 is not None, "no recovery marker")
            assert r0 is not None
            before = [sign * (p.power or 0) for p in ps if p.req.t < d0 and sign * (p.power or 0) > 0]
            target = 0.9 * max(before) if before else 0.0
            back = next((p for p in ps if p.req.t >= r0 and sign * (p.power or 0) >= target), None)
            ctx.check("recovery: power back to >= 90 % of the pre-derate level within 2 s",
                      back is not None and back.t - r0 <= 2.0,
                      f"{(back.t - r0):.3f} s" if back else f"not back (target {target:.0f} W)")
            if back is not None:
                ctx.metric("recovery_s", back.t - r0)
    return run


case("TC_SECC_WC_Derate_001", "Adapter derate while charging: follow at once, never exceed, then recover", group="WallConnector",
     purpose="The EV halves its charge limit mid-loop (adapter temperature); the SUT must follow in its next answer, stay below, and return to full power after recovery.",
     requirement="digest §3.2 (Dynamic: SECC decides within the EV limits) / §6.1 (0.5 s)",
     steps=("AC_BPT (or DC_BPT) Dynamic, full power", "loop 4: EV max charge x0.5", "loop 12: limits restored", "stop at 18"),
     tags=("wallconnector", "derate", "thermal", "loop", "bpt", "limits"), needs=("BPT",))(_derate_case("charge", 0.5, True))
case("TC_SECC_WC_Derate_002", "Adapter derate while exporting (V2H)", group="WallConnector",
     purpose="The EV halves its discharge limit during V2H; the SUT must reduce the export at once and recover later.",
     requirement="digest §4.3 (EVMaximumDischargePower) / §3.2 Dynamic",
     steps=("AC_BPT Dynamic, grid outage", "loop 4: EV max discharge x0.5", "loop 12: restored", "stop at 18"),
     preconditions=("lab control interface (grid outage)",),
     tags=("wallconnector", "derate", "thermal", "v2h", "loop", "bpt", "discharge", "limits"),
     needs=("AC", "BPT", "control"))(_derate_case("discharge", 0.5, True))
case("TC_SECC_WC_Derate_003", "Adapter over-temperature: EV limit 0 W", group="WallConnector",
     purpose="The EV drops its charge limit to zero (adapter at its abort temperature); the SUT must deliver no power from its next answer.",
     requirement="digest §3.2 (Dynamic: within the EV limits)",
     steps=("Dynamic charging", "loop 4: EV max charge 0 W", "stop at loop 18"),
     tags=("wallconnector", "derate", "thermal", "loop", "bpt", "limits"), needs=("BPT",))(_derate_case("charge", 0.0, False))


# --------------------------------------------------------------------------- aborts


async def _export_until(ctx: CaseContext, loops: int = 3, ev: TesterEV | None = None) -> tuple[TesterEvcc, Any]:
    t = await _export_tester(ctx, ev)
    held = await _run_export(ctx, t, hold=lambda name, msg: name.endswith("ChargeLoopReq") and t.loop_responses >= loops
                             and (t.last_power() or 0) < -100 or t.loop_responses >= loops + 6)
    if held is None:
        raise Inconclusive(f"precondition: session ended before loop {loops}: {t.ended.reason if t.ended else '?'}")
    ctx.precondition((t.last_power() or 0) < -100, f"power {t.last_power()} W")
    return t, held


async def _new_session_ok(ctx: CaseContext, label: str) -> None:
    if ctx.sut.before_case is not None:
        await ctx.sut.before_case()
    t2, held = await reach(ctx, "AuthorizationSetupReq")
    ok = t2.core.resumed is False and t2.session_id != bytes(8)
    ctx.check(f"{label}: the SUT accepts a new session afterwards", ok, f"SessionID {t2.session_id.hex()}")
    await t2.exchange(m.SessionStopReq(header=t2.header(), charging_session=m.ChargingSession.TERMINATE))


@case("TC_SECC_WC_Abort_001", "EV emergency stop during export", group="WallConnector",
      purpose="The EV stops energy transfer at once (PowerDelivery Stop) while exporting; the SUT confirms and switches off.",
      requirement="digest §5.3 (Stop: SECC stops and opens contactors) / §6.1 PowerDelivery 2 s",
      steps=("export for 3 loops", "PowerDeliveryReq(Stop) instead of the next loop", "expect OK within 2 s",
             "probe: output off within 1 s", "SessionStop"),
      tags=("wallconnector", "abort", "loop", "bpt", "discharge"), needs=("BPT", "probe"))
async def wc_abort_001(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    ctx.evidence.mark("EV emergency stop")
    t.ev.action = EVAction.STOP
    ev = t.core._build_power_delivery(time.monotonic(), "Stop")
    rx = await t.exchange(ev)
    expect(ctx, rx, "PowerDeliveryRes", RC.OK.value, "digest §5.3: Stop confirmed")
    await expect_power_off(ctx, t, 1.0, "digest §5.3: output off after Stop")


@case("TC_SECC_WC_Abort_002", "EVSE Terminate notification ends the session safely", group="WallConnector",
      purpose="The charger announces Terminate (EVSEStatus); the EV stops; the session ends cleanly with the output off.",
      requirement="digest §5.2 (EVSENotification Terminate, NotificationMaxDelay) / §5.3",
      steps=("export / charge", "lab control: EVSE Terminate", "expect EVSEStatus Terminate in a ChargeLoopRes",
             "tester stops (PowerDelivery Stop, SessionStop)", "probe: output off"),
      preconditions=("lab control interface (EVSE notification)",),
      tags=("wallconnector", "abort", "notification", "loop", "bpt"), needs=("BPT", "control", "probe"))
async def wc_abort_002(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    await _trigger(ctx, t, "notify:Terminate")
    await t.release(max_time=20)
    ctx.check("digest §5.2: EVSEStatus Terminate sent", any(n.notification == "Terminate" for n in t.notifications),
              f"notifications {[n.notification for n in t.notifications]}")
    ctx.check("digest §5.3: session ended with SessionStop", t.ended is not None and t.ended.ok, t.ended.reason if t.ended else "")
    await expect_power_off(ctx, t, 1.0, "digest §5.3: output off after the notified stop")


@case("TC_SECC_WC_Abort_003", "TCP reset during export", group="WallConnector",
      purpose="The connection dies mid-loop (RST); the SUT must switch off, end the session and accept a new one.",
      requirement="digest §6.3 (connection loss -> stop) / §5.1 safe state",
      steps=("export for 3 loops", "TCP RST", "probe: output off within 2 s", "a new session is accepted"),
      tags=("wallconnector", "abort", "transport", "loop", "bpt"), needs=("BPT", "probe"))
async def wc_abort_003(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    ctx.evidence.mark("TCP reset")
    t.reset()
    await expect_power_off(ctx, t, 2.0, "safe state: output off after the connection died")
    await _new_session_ok(ctx, "safe state")


@case("TC_SECC_WC_Abort_004", "TLS alert during export", group="WallConnector",
      purpose="A fatal TLS alert record mid-session breaks the secure channel; the SUT must switch off and end the session.",
      requirement="digest §1.3 (TLS) / §6.3 / §5.1 safe state",
      steps=("TLS session, export for 3 loops", "inject a fatal TLS alert record", "probe: output off within 2 s",
             "a new session is accepted"),
      tags=("wallconnector", "abort", "tls", "loop", "bpt"), needs=("BPT", "tls", "probe"))
async def wc_abort_004(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    ctx.evidence.mark("TLS alert")
    t.inject_tls_alert()
    closed = await t.wait_closed(3.0)
    ctx.check("TLS: the SUT drops the broken channel", closed is not None, f"closed at {closed}" if closed else "still open")
    await expect_power_off(ctx, t, 2.0, "safe state: output off after the TLS alert")
    await _new_session_ok(ctx, "safe state")


@case("TC_SECC_WC_Abort_005", "Sequence timeout in the charge loop (60 s)", group="WallConnector",
      purpose="The EV goes silent mid-loop without closing TCP; the SUT must end the session by V2G_SECC_Sequence_Timeout and switch off.",
      requirement="digest §6.2 V2G_SECC_Sequence_Timeout 60 s / §6.3 (SECC reaction) / close delay 5 s",
      steps=("export for 3 loops", "send nothing (TCP stays open)", "expect the SUT to close within 60 + 5 + 2 s",
             "probe: output off"),
      tags=("wallconnector", "abort", "timing", "loop", "bpt", "long"), needs=("BPT", "probe"), timeout=95.0)
async def wc_abort_005(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    ctx.evidence.mark("EV silent")
    t0 = ctx.evidence.now()
    st_early = None
    closed = await t.wait_closed(50.0)
    if closed is None and ctx.sut.probe is not None:
        st_early = await ctx.sut.probe.state(t.ev.evcc_id)
    if closed is None:
        closed = await t.wait_closed(60.0 + 5.0 + 2.0 - 50.0)
    ctx.check("digest §6.2: session ended within V2G_SECC_Sequence_Timeout + close delay (67 s)",
              closed is not None, f"closed {closed - t0:.1f} s after the last response" if closed else "still open after 67 s")
    if closed is not None:
        ctx.metric("sequence_timeout_close_s", closed - t0)
    if st_early is not None:
        ctx.evidence.note(f"probe at 50 s (before the timeout): {st_early}")
    await expect_power_off(ctx, t, 1.0, "safe state: output off after the sequence timeout")


@case("TC_SECC_WC_Abort_006", "EV gives up after a performance timeout (TCP FIN mid-loop)", group="WallConnector",
      purpose="An EV whose V2G_EVCC_Msg_Timeout expired closes the connection; the SUT must switch off and end the session.",
      requirement="digest §6.3 (EVCC timeout -> stop, close TCP) / §5.1 safe state",
      steps=("export for 3 loops", "close TCP (FIN) instead of the next request", "probe: output off within 2 s",
             "a new session is accepted"),
      tags=("wallconnector", "abort", "timing", "loop", "bpt"), needs=("BPT", "probe"))
async def wc_abort_006(ctx: CaseContext) -> None:
    t, held = await _export_until(ctx)
    ctx.evidence.mark("EV closes TCP")
    await t.close()
    await expect_power_off(ctx, t, 2.0, "safe state: output off after the EV left")
    await _new_session_ok(ctx, "safe state")


@case("TC_SECC_WC_Abort_007", "PowerDelivery(Stop) during discharge: clean stop, energy accounted", group="WallConnector",
      purpose="The regular stop while exporting: OK, output off, session ends, and the meter's export matches the EV's count.",
      requirement="digest §5.3 (Stop) / §4.4 MeterInfo BPT_DischargedEnergyReadingWh",
      steps=("export for 8 loops", "PowerDelivery(Stop), [welding detection], SessionStop", "probe: output off",
             "compare meter export with the EV's own count"),
      tags=("wallconnector", "abort", "loop", "bpt", "discharge", "meter"), needs=("BPT",))
async def wc_abort_007(ctx: CaseContext) -> None:
    t = await _export_tester(ctx)
    await _run_export(ctx, t, stop=10)
    _v2h_or_export_check(ctx, pairs(ctx))
    ctx.check("digest §5.3: session ended with SessionStop", t.ended is not None and t.ended.ok, t.ended.reason if t.ended else "")
    _energy_accounted(ctx, t.ev)
    await expect_power_off(ctx, t, 1.0, "digest §5.3: output off after Stop", required=False)


@case("TC_SECC_WC_Abort_008", "After a TCP reset the session is ended, not silently resumable", group="WallConnector",
      purpose="A session that died without Pause must not be joined with its old SessionID.",
      requirement="digest §6.4 (only a paused ID -> OK_OldSessionJoined)",
      steps=("charge 3 loops", "TCP RST", "reconnect with the old SessionID", "expect OK_NewSessionEstablished and a new ID"),
      tags=("wallconnector", "abort", "session_id", "resume", "loop"))
async def wc_abort_008(ctx: CaseContext) -> None:
    t = ctx.tester()
    stop_after(t, 99)
    await t.run(lambda n, msg: n.endswith("ChargeLoopReq") and t.loop_responses >= 3)
    old = t.session_id
    t.reset()
    await asyncio.sleep(0.3)
    if ctx.sut.before_case is not None:
        await ctx.sut.before_case()
    t2 = ctx.tester(ev=TesterEV(evcc_id=t.ev.evcc_id))
    held = await t2.run_to("SessionSetupReq")
    rx = await t2.exchange(with_session(held.message, old))
    ok = rx.answered and rx.code == "OK_NewSessionEstablished" and rx.msg.header.session_id != old
    ctx.check("digest §6.4: the aborted session is not joined", bool(ok), f"{rx.code} {rx.msg.header.session_id.hex() if rx.answered else ''}")
    _ = wrong_id


@case("TC_SECC_DC_BPT_Derate_001", "DC_BPT derate: current follows the EV's lowered limits", group="ChargeLoop",
      purpose="DC Dynamic mode: the EV halves its current and power limits; the SUT's current and power must follow at once.",
      requirement="digest §3.2 / §4.3 (DC_ChargeLoop EVMaximumChargeCurrent/Power)",
      steps=("DC_BPT Dynamic", "loop 4: limits x0.5", "loop 12: restored", "stop at 18"),
      tags=("loop", "dc_bpt", "derate", "limits", "bpt"), needs=("DC", "BPT"))
async def dc_derate_001(ctx: CaseContext) -> None:
    await _derate_case("charge", 0.5, True)(ctx)
