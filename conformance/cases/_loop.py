"""Charge-loop analysis over the evidence: request/response pairs, the power the SUT set, the
limits the tester EV declared in the request it answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.cases._common import TOL_W, TOL_W_ABS
from conformance.catalogue import CaseContext
from conformance.evidence import LogEntry


@dataclass
class LoopPair:
    req: LogEntry
    res: LogEntry

    @property
    def t(self) -> float:
        return self.res.t

    def _cm(self, e: LogEntry) -> dict[str, Any]:
        return (e.decoded or {}).get("control_mode") or {}

    @property
    def power(self) -> float | None:
        d = self.res.decoded or {}
        if "evse_present_current" in d:
            return float(d["evse_present_voltage"]) * float(d["evse_present_current"])
        cm = self._cm(self.res)
        for k in ("evse_target_active_power", "evse_present_active_power"):
            if k in cm:
                return float(cm[k])
        return None

    @property
    def current(self) -> float | None:
        d = self.res.decoded or {}
        return float(d["evse_present_current"]) if "evse_present_current" in d else None

    def ev(self, key: str) -> float | None:
        v = self._cm(self.req).get(key)
        return float(v) if v is not None else None

    @property
    def meter(self) -> dict[str, Any]:
        return (self.res.decoded or {}).get("meter_info") or {}


def pairs(ctx: CaseContext) -> list[LoopPair]:
    out: list[LoopPair] = []
    pending: LogEntry | None = None
    for e in ctx.evidence.entries:
        if e.direction == "tx":
            pending = e if e.name.endswith("ChargeLoopReq") else None
        elif e.direction == "rx" and e.name.endswith("ChargeLoopRes") and pending is not None and e.response_code == "OK":
            out.append(LoopPair(pending, e))
            pending = None
    return out


def over(p: float, limit: float) -> bool:
    return p > limit * (1 + TOL_W) + TOL_W_ABS


def check_limits(ctx: CaseContext, ps: list[LoopPair], *, label: str = "", evse_max: float | None = None,
                 evse_max_discharge: float | None = None, max_current: float | None = None) -> list[LoopPair]:
    """Every response within the EV limits of the request it answers (and the EVSE's own).
    Returns the violating pairs."""
    bad = []
    for p in ps:
        pw = p.power
        if pw is None:
            continue
        lim_c = p.ev("ev_maximum_charge_power")
        lim_d = p.ev("ev_maximum_discharge_power")
        why = []
        if pw > 0 and lim_c is not None and over(pw, lim_c):
            why.append(f"{pw:.0f} W > EV max charge {lim_c:.0f} W")
        if pw < 0 and lim_d is not None and over(-pw, lim_d):
            why.append(f"{-pw:.0f} W export > EV max discharge {lim_d:.0f} W")
        if pw < 0 and lim_d is None and p.ev("ev_maximum_charge_power") is not None and "BPT" not in str(p.req.decoded):
            why.append(f"export {-pw:.0f} W on a non-BPT loop")
        if pw > 0 and evse_max is not None and over(pw, evse_max):
            why.append(f"{pw:.0f} W > EVSE max {evse_max:.0f} W")
        if pw < 0 and evse_max_discharge is not None and over(-pw, evse_max_discharge):
            why.append(f"{-pw:.0f} W > EVSE max discharge {evse_max_discharge:.0f} W")
        cur = p.current
        lim_i = p.ev("ev_maximum_charge_current")
        if cur is not None and cur > 0 and lim_i is not None and cur > lim_i * (1 + TOL_W) + 0.2:
            why.append(f"{cur:.1f} A > EV max current {lim_i:.1f} A")
        if cur is not None and max_current is not None and abs(cur) > max_current + 0.2:
            why.append(f"|{cur:.1f}| A > {max_current:.1f} A")
        if why:
            bad.append(p)
            if len(bad) <= 3:
                ctx.evidence.note(f"limit violation at t={p.t:.3f}: {'; '.join(why)}", "error")
    ctx.check(f"digest §3.2/§4.3: SUT power within the EV limits of each request{label}", not bad and bool(ps),
              f"{len(ps)} loop responses, {len(bad)} violations" + (f"; first at t={bad[0].t:.3f} s: {bad[0].power:.0f} W"
                                                                    if bad else ""))
    return bad


def follow_time(ps: list[LoopPair], since: float, ok: Any) -> float | None:
    """Seconds from ``since`` to the first response from which ``ok(pair)`` holds for good."""
    first = None
    for p in ps:
        if p.req.t < since:
            continue
        if ok(p):
            if first is None:
                first = p.t
        else:
            first = None
    return None if first is None else first - since
