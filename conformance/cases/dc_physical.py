"""The DC charger stays physical: never reports (or applies) a voltage above its own
EVSEMaximumVoltage or below 0 V, nor a current beyond its limits, whatever the EV claims or
asks (digest §4.3/§4.4: EVSEMaximumVoltage / EVSEMaximumChargeCurrent bound the output;
DC_PreChargeRes / DC_ChargeLoopRes report EVSEPresentVoltage / EVSEPresentCurrent).

Seeded fault proving the cases can fail: :class:`conformance.faults_dc.EchoEVVoltage`.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from conformance.cases._common import dec, expect_refused, m, reach
from conformance.catalogue import CaseContext, case
from iso15118.session.services import EnergyService

CLAIMED_V = Decimal("1234.5")
NEGATIVE_V = Decimal("-150")


def _dc(ctx: CaseContext) -> EnergyService:
    return ctx.service(family="DC")


def _f(x: object) -> float:
    """A number from a RationalNumber or a plain number."""
    if isinstance(x, (int, float, Decimal)):
        return float(x)
    return float(dec(x))


def _limits(t: object) -> tuple[float, float, float]:
    lim = getattr(getattr(t, "core", None), "evse_limits", None)
    if lim is None:
        return 1000.0, 1000.0, 1000.0
    vmax = _f(lim.max_voltage)
    imax = _f(getattr(lim, "max_charge_current", None) or 1000)
    idis = _f(getattr(lim, "max_discharge_current", None) or 0)
    return vmax, imax, idis


@case("TC_SECC_DC_Physical_001", "Charge loop: an EV voltage above EVSEMaximumVoltage is not echoed", group="PreCharge",
      purpose="The EV claims EVPresentVoltage 1234.5 V in DC_ChargeLoopReq; the charger reports a present voltage "
              "within 0 V .. EVSEMaximumVoltage and a present current within its current limits (or refuses).",
      requirement="digest §4.3/§4.4 (EVSEMaximumVoltage, EVSEMaximumChargeCurrent bound EVSEPresentVoltage/Current)",
      steps=("reach DC_ChargeLoopReq", "send it three times with EVPresentVoltage = 1234.5 V",
             "expect 0 <= EVSEPresentVoltage <= EVSEMaximumVoltage and |EVSEPresentCurrent| within the limits"),
      tags=("dc", "loop", "negative", "limits"), needs=("DC",))
async def phys_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_ChargeLoopReq", service=_dc(ctx))
    vmax, imax, idis = _limits(t)
    seen: list[tuple[float, float]] = []
    for _ in range(3):
        req = dataclasses.replace(held.message, header=t.header(),
                                  ev_present_voltage=m.RationalNumber.from_decimal(CLAIMED_V))
        rx = await t.exchange(req)
        if not rx.answered or (rx.code or "").startswith("FAILED"):
            await expect_refused(ctx, t, rx, "digest §4.4: an impossible EV voltage refused")
            return
        seen.append((_f(rx.msg.evse_present_voltage), _f(rx.msg.evse_present_current)))
    worst_v = max(v for v, _ in seen)
    low_v = min(v for v, _ in seen)
    ctx.check("digest §4.4: EVSEPresentVoltage <= EVSEMaximumVoltage", worst_v <= vmax + 0.5,
              f"reported {[v for v, _ in seen]} V for an EV claim of {CLAIMED_V} V (EVSE max {vmax} V)")
    ctx.check("digest §4.4: EVSEPresentVoltage >= 0 V", low_v >= 0, f"lowest {low_v} V")
    currents = [i for _, i in seen]
    ctx.check("digest §4.3: EVSEPresentCurrent within EVSEMaximumCharge/DischargeCurrent",
              all(-idis - 0.5 <= i <= imax + 0.5 for i in currents), f"{currents} A (limits -{idis} .. {imax} A)")


@case("TC_SECC_DC_Physical_002", "Pre-charge: a negative EV target voltage is not followed", group="PreCharge",
      purpose="DC_PreChargeReq with EVTargetVoltage -150 V: the charger refuses or stays at or above 0 V.",
      requirement="digest §4.4 (DC_PreChargeRes EVSEPresentVoltage; the output cannot be negative)",
      steps=("reach DC_PreChargeReq", "send EVTargetVoltage = -150 V three times",
             "expect EVSEPresentVoltage >= 0 V (or a FAILED answer)"),
      tags=("dc", "precharge", "negative", "limits"), needs=("DC",))
async def phys_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_PreChargeReq", service=_dc(ctx))
    vmax, _, _ = _limits(t)
    seen: list[float] = []
    for _ in range(3):
        req = m.DCPreChargeReq(header=t.header(), ev_processing=m.Processing.ONGOING,
                               ev_present_voltage=m.RationalNumber.from_decimal(Decimal(0)),
                               ev_target_voltage=m.RationalNumber.from_decimal(NEGATIVE_V))
        rx = await t.exchange(req)
        if not rx.answered or (rx.code or "").startswith("FAILED"):
            await expect_refused(ctx, t, rx, "digest §4.4: a negative target voltage refused")
            return
        seen.append(_f(rx.msg.evse_present_voltage))
    ctx.check("digest §4.4: EVSEPresentVoltage >= 0 V for a negative target", min(seen) >= 0,
              f"reported {seen} V for a target of {NEGATIVE_V} V")
    ctx.check("digest §4.4: EVSEPresentVoltage <= EVSEMaximumVoltage", max(seen) <= vmax + 0.5, f"max {max(seen)} V")
