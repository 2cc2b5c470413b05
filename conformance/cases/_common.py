"""Building blocks shared by the case modules: reach a step, check a response, run a loop."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from conformance.catalogue import CaseContext, Inconclusive
from conformance.runner import alive as alive  # the liveness check lives with reach_sut (no import circle)
from conformance.tester import Rx, TesterEvcc, loop_power
from iso15118 import messages as m
from iso15118.session.controller import EVAction
from iso15118.session.services import ControlMode, EnergyService, to_decimal

RC = m.ResponseCode
TOL_W = 0.01
"""Relative tolerance on power limits (1 %), plus :data:`TOL_W_ABS` watts."""
TOL_W_ABS = 50.0


def with_session(msg: Any, session_id: bytes) -> Any:
    """``msg`` with another SessionID in its header."""
    return dataclasses.replace(msg, header=dataclasses.replace(msg.header, session_id=session_id))


def wrong_id(sid: bytes) -> bytes:
    """A SessionID that differs from ``sid`` in every byte."""
    return bytes((b ^ 0x5A) for b in sid) if sid != bytes(8) else bytes.fromhex("0badc0de0badc0de")


async def reach(ctx: CaseContext, request: str, *, service: EnergyService | None = None,
                mode: ControlMode = ControlMode.DYNAMIC, **kw: Any) -> tuple[TesterEvcc, Any]:
    """A tester at the point where it would send ``request`` (held, not sent).

    A SUT that does not get there (refuses, answers wrongly, stays silent, closes) has
    **failed**: the steps before ``request`` are part of what it must do."""
    if mode is ControlMode.SCHEDULED:
        ctx.feature("scheduled")
    t = ctx.tester(service=service, mode=mode, **kw)
    try:
        held = await t.run_to(request)
    except Inconclusive:
        raise
    except Exception as exc:
        if ctx.checks and not all(c.ok for c in ctx.checks):
            raise
        why = t.connect_error or (t.ended.reason if t.ended else f"{type(exc).__name__}: {exc}")
        ctx.require(f"precondition: the SUT completes the steps up to {request}", False, why)
        raise
    return t, held


def expect(ctx: CaseContext, rx: Rx, response: str, codes: tuple[str, ...] | str, requirement: str) -> bool:
    """The SUT answered with ``response`` carrying one of ``codes``."""
    if isinstance(codes, str):
        codes = (codes,)
    if not rx.answered:
        return ctx.check(requirement, False, f"expected {response} with {'/'.join(codes)}; got none ({rx.error})")
    ok = rx.name == response and rx.code in codes
    return ctx.check(requirement, ok, f"{rx.name} {rx.code} (expected {response} {'/'.join(codes)})")


CLOSE_DELAY = 5.0
"""digest §6.2: the SECC closes TCP at most 5 s after the session ended ([V2G20-1643])."""
CLOSE_MARGIN = 1.5


async def expect_refused(ctx: CaseContext, t: TesterEvcc, rx: Rx, requirement: str, *, silence_ok: bool = False) -> bool:
    """The SUT refused, with positive evidence: a FAILED* response code, or the connection
    closed within the close delay (5 s + 1.5 s after the offending frame).  Silence with the
    connection left open is a **fail** -- unless ``silence_ok`` (the requirement says silence
    is right).  (The runner then checks liveness: a fresh session still works.)"""
    if rx.answered:
        code = rx.code or ""
        ok = code.startswith("FAILED") or code == "Failed_NoNegotiation"
        return ctx.check(requirement, ok, f"answered {rx.name} {code or '(no code)'}"
                         + ("" if ok else " -- a positive answer, not a refusal"))
    if rx.raw is not None or (rx.error and not rx.closed and "no response" not in rx.error):
        return ctx.check(requirement, False, f"an unusable answer is not a refusal: {rx.error}")
    sent = next((e.t for e in reversed(ctx.evidence.entries) if e.direction == "tx"), ctx.evidence.now())
    limit = CLOSE_DELAY + CLOSE_MARGIN
    if not rx.closed:
        await t.wait_closed(max(0.0, sent + limit - ctx.evidence.now()))
    if t.closed_by_sut and t.closed_at is not None:
        took = t.closed_at - sent
        return ctx.check(requirement, took <= limit,
                         f"no answer; the SUT closed the connection {took:.2f} s after the offending frame (limit {limit:g} s)")
    if silence_ok:
        return ctx.check(requirement, True, f"no answer ({rx.error}); silence is what the requirement asks")
    return ctx.check(requirement, False, f"silence is not a refusal: no answer and the connection still open "
                                         f"{ctx.evidence.now() - sent:.1f} s after the offending frame")


async def expect_session_over(ctx: CaseContext, t: TesterEvcc, requirement: str = "digest §5.1: every FAILED* code ends the session") -> None:
    """After a FAILED response: a further legal-looking request is not answered positively."""
    if t.closed_by_sut:
        ctx.check(requirement, True, "SUT closed the connection")
        return
    try:
        rx = await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE), timeout=1.5)
    except Exception as exc:  # the SUT closed meanwhile
        ctx.check(requirement, True, f"connection unusable: {exc}")
        return
    ctx.check(requirement, not rx.answered or (rx.code or "").startswith("FAILED"),
              f"SessionStopReq after the FAILED response: {rx.name or 'no answer'} {rx.code or rx.error}")


async def probe_power(ctx: CaseContext, t: TesterEvcc) -> Any:
    if ctx.sut.probe is None:
        return None
    return await ctx.sut.probe.state(t.ev.evcc_id)


async def expect_power_off(ctx: CaseContext, t: TesterEvcc, within: float, requirement: str, *, required: bool = True) -> None:
    """The power probe sees the output off (power ~0, contactors open) within ``within`` s."""
    if ctx.sut.probe is None:
        if required:
            raise Inconclusive("not applicable: the physical output state is not observable without a power probe (--probe); "
                               "protocol-level checks above: " + "; ".join(c.detail for c in ctx.checks[-3:]))
        return
    t0 = time.monotonic()
    st = None
    while time.monotonic() - t0 <= within:
        st = await ctx.sut.probe.state(t.ev.evcc_id)
        if st is not None and abs(st.power_w) < 1.0 and not st.contactors_closed:
            break
        await asyncio.sleep(0.05)
    took = time.monotonic() - t0
    ctx.evidence.note(f"probe: {st}")
    if st is None:
        ctx.check(requirement, False, "probe found no session for this EVCCID")
        return
    ok = abs(st.power_w) < 1.0 and not st.contactors_closed
    ctx.check(requirement, ok, f"after {took:.2f} s: power {st.power_w:.0f} W, contactors {'closed' if st.contactors_closed else 'open'}")
    ctx.metric("power_off_s", took)


def stop_after(t: TesterEvcc, loops: int, hook: Callable[[int, Any], None] | None = None) -> None:
    """Make the tester EV stop (PowerDelivery Stop -> SessionStop) after ``loops`` loop responses;
    ``hook(n, res)`` runs after each loop response (derates, exports ...)."""

    def on_response(name: str, msg: Any) -> None:
        if not name.endswith("ChargeLoopRes"):
            return
        if hook is not None:
            hook(t.loop_responses, msg)
        if t.loop_responses >= loops:
            t.ev.action = EVAction.STOP

    t.on_response = on_response


def loop_responses(t: TesterEvcc) -> list[Any]:
    return [e for e in t.evidence.entries if e.direction == "rx" and e.name.endswith("ChargeLoopRes")]


def dec(x: Any) -> Decimal:
    return to_decimal(x)


def within_limit(power: float, limit: float) -> bool:
    return power <= limit * (1 + TOL_W) + TOL_W_ABS


async def full_session(ctx: CaseContext, *, service: EnergyService | None = None, mode: ControlMode = ControlMode.DYNAMIC,
                       loops: int = 5, hook: Callable[[int, Any], None] | None = None, **kw: Any) -> TesterEvcc:
    """A complete session with ``loops`` charge-loop cycles; checks it ended with SessionStop."""
    t: TesterEvcc = ctx.tester(service=service, mode=mode, **kw)
    stop_after(t, loops, hook)
    await t.run(max_time=40)
    ended_ok = t.ended is not None and t.ended.ok
    ctx.check("digest §3.1: complete session to SessionStopRes", ended_ok,
              t.ended.reason if t.ended else "session did not end")
    return t


__all__ = [
    "RC", "Rx", "reach", "expect", "expect_refused", "alive", "expect_session_over", "expect_power_off", "probe_power",
    "stop_after", "loop_responses", "loop_power", "with_session", "wrong_id", "within_limit", "full_session", "dec", "m",
    "ControlMode", "EnergyService", "EVAction", "Inconclusive",
]
