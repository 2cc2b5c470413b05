"""Values as well as codes: every answer of a SECC under test is judged for plausibility and for
consistency within its session, whatever the case is about.

* the answer is the response to the request just sent, and after SessionSetup it carries the
  session's SessionID;
* ChargeParameterDiscovery limits are plausible (min <= max, magnitudes >= 0, AC nominal
  frequency 50 or 60 Hz, DC voltages below 1500 V);
* every charge-loop answer stays within the ChargeParameterDiscovery limits (power and current,
  charge and discharge) and within the EV limits of the request it answers; no export on a
  non-BPT service; DC Dynamic limits in the loop never above the CPD limits; the AC target
  frequency matches the declared grid; in DC Scheduled mode the present current follows the EV
  target once the SUT had one cycle; meter readings never decrease;
* DC pre-charge never above EVSEMaximumVoltage.

Only violations become checks (failed ones): a case is never passed by these checks alone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from conformance.evidence import Check, Evidence
from iso15118.session import rules
from iso15118.session.services import to_decimal

TOL = 0.01
TOL_W = 50.0
TOL_A = 0.5


def _f(x: Any) -> float | None:
    if x is None:
        return None
    try:
        return float(to_decimal(x))
    except Exception:  # noqa: BLE001
        return None


def over(value: float, limit: float, absolute: float = TOL_W) -> bool:
    return value > limit * (1 + TOL) + absolute


class ValueChecks:
    """Per tester connection: the session's declared limits and the answers seen so far."""

    def __init__(self, checks: list[Check], evidence: Evidence, session_id: Any) -> None:
        self.checks = checks
        self.evidence = evidence
        self._sid = session_id
        self.cpd: dict[str, float | None] = {}
        self.bpt: bool | None = None
        self.nominal_voltage: float | None = None
        self.frequency: float | None = None
        self.meter: dict[str, float] = {}
        self.loop_answers = 0
        self.prev_target: float | None = None
        self.failed: dict[str, int] = {}
        self.evaluated = 0

    # ------------------------------------------------------------------ bookkeeping

    def bad(self, requirement: str, detail: str) -> None:
        n = self.failed.get(requirement, 0)
        self.failed[requirement] = n + 1
        if n == 0:
            self.checks.append(Check(requirement, False, detail))
            self.evidence.note(f"FAIL {requirement}: {detail}", "error")

    def finish(self) -> None:
        for req, n in self.failed.items():
            if n > 1:
                self.evidence.note(f"value check '{req}' failed {n} times in this connection", "error")

    # ------------------------------------------------------------------ the answer

    def on_response(self, name: str, msg: Any, req: Any) -> None:
        self.evaluated += 1
        req_name = req.ELEMENT[1] if req is not None and getattr(req, "ELEMENT", None) else None
        if req_name is not None:
            spec = rules.spec_for_request(req_name)
            if spec is not None and spec.response != name:
                self.bad("digest §3.3: the answer is the response to the request", f"{name} answered {req_name}")
                return
        code = getattr(getattr(msg, "response_code", None), "value", "")
        if code.startswith("FAILED"):
            return
        sid = self._sid()
        hdr = getattr(msg, "header", None)
        if (hdr is not None and name not in ("SessionSetupRes", "supportedAppProtocolRes") and sid and sid != bytes(8)
                and hdr.session_id != sid):
            self.bad("digest §6.4: every response carries the session's SessionID",
                     f"{name} with SessionID {hdr.session_id.hex()} (session {sid.hex()})")
        handler = getattr(self, "_" + name, None)
        if handler is not None:
            handler(msg, req)

    def _SessionSetupRes(self, msg: Any, req: Any) -> None:
        sid = msg.header.session_id
        if len(sid) != 8 or sid == bytes(8):
            self.bad("digest §6.4: the SECC assigns a non-zero 8-byte SessionID", f"SessionID {sid.hex()}")
        if not msg.evse_id:
            self.bad("X:CM SessionSetupRes: EVSEID present", "empty EVSEID")

    def _ServiceDiscoveryRes(self, msg: Any, req: Any) -> None:
        svcs = [s.service_id for s in msg.energy_transfer_service_list.service]
        if not svcs:
            self.bad("digest §4.1: at least one energy transfer service offered", "none")

    def _ServiceDetailRes(self, msg: Any, req: Any) -> None:
        for ps in msg.service_parameter_list.parameter_set:
            for p in ps.parameter:
                if p.name == "EVSENominalVoltage":
                    v = p.int_value if p.int_value is not None else _f(p.rational_number)
                    if v is not None:
                        if not 100 <= float(v) <= 1000:
                            self.bad("plausibility: EVSENominalVoltage of an AC grid 100..1000 V", f"{v} V")
                        self.nominal_voltage = float(v)

    def _cpd(self, mode: Any) -> None:
        d = {k: _f(getattr(mode, k, None)) for k in (
            "evse_maximum_charge_power", "evse_minimum_charge_power", "evse_maximum_discharge_power",
            "evse_minimum_discharge_power", "evse_maximum_charge_current", "evse_minimum_charge_current",
            "evse_maximum_discharge_current", "evse_minimum_discharge_current", "evse_maximum_voltage",
            "evse_minimum_voltage", "evse_nominal_frequency")}
        self.cpd = d
        self.bpt = "BPT" in type(mode).__name__
        for mx, mn, unit in (("evse_maximum_charge_power", "evse_minimum_charge_power", "W"),
                             ("evse_maximum_discharge_power", "evse_minimum_discharge_power", "W"),
                             ("evse_maximum_charge_current", "evse_minimum_charge_current", "A"),
                             ("evse_maximum_discharge_current", "evse_minimum_discharge_current", "A"),
                             ("evse_maximum_voltage", "evse_minimum_voltage", "V")):
            a, b = d.get(mx), d.get(mn)
            if a is not None and b is not None and not (0 <= b <= a):
                self.bad("plausibility: CPD limits 0 <= minimum <= maximum", f"{mn} {b} {unit}, {mx} {a} {unit}")
        p = d.get("evse_maximum_charge_power")
        if p is not None and p > 1_000_000:
            self.bad("plausibility: EVSEMaximumChargePower below 1 MW", f"{p} W")
        v = d.get("evse_maximum_voltage")
        if v is not None and v > 1500:
            self.bad("plausibility: EVSEMaximumVoltage within DC ratings (<= 1500 V)", f"{v} V")

    def _AC_ChargeParameterDiscoveryRes(self, msg: Any, req: Any) -> None:
        self._cpd(msg.energy_transfer_mode)
        f = self.cpd.get("evse_nominal_frequency")
        self.frequency = f
        if f not in (50.0, 60.0):
            self.bad("digest §4.4: EVSENominalFrequency of the declared grid is 50 or 60 Hz", f"{f} Hz")

    def _DC_ChargeParameterDiscoveryRes(self, msg: Any, req: Any) -> None:
        self._cpd(msg.energy_transfer_mode)

    def _DC_PreChargeRes(self, msg: Any, req: Any) -> None:
        v = _f(msg.evse_present_voltage)
        vmax = self.cpd.get("evse_maximum_voltage")
        if v is not None and vmax is not None and over(v, vmax, 1.0):
            self.bad("digest §4.4: EVSEPresentVoltage never above EVSEMaximumVoltage", f"{v} V > {vmax} V")

    def _meter(self, msg: Any) -> None:
        mi = getattr(msg, "meter_info", None)
        if mi is None:
            return
        for k in ("charged_energy_reading_wh", "bpt_discharged_energy_reading_wh"):
            v = getattr(mi, k, None)
            if v is None:
                continue
            prev = self.meter.get(k)
            if prev is not None and float(v) < prev:
                self.bad("digest §4.4: meter readings never decrease within a session", f"{k} {prev} -> {v} Wh")
            self.meter[k] = float(v)

    def _loop_limits(self, p: float | None, i: float | None, req: Any) -> None:
        c = self.cpd
        rcm = getattr(req, "control_mode", None)
        ev_max_c = _f(getattr(rcm, "ev_maximum_charge_power", None))
        ev_max_d = _f(getattr(rcm, "ev_maximum_discharge_power", None))
        ev_max_i = _f(getattr(rcm, "ev_maximum_charge_current", None))
        if p is not None and p > 0:
            mx = c.get("evse_maximum_charge_power")
            if mx is not None and over(p, mx):
                self.bad("consistency: charge-loop power within the CPD EVSEMaximumChargePower", f"{p:.0f} W > {mx:.0f} W")
            if ev_max_c is not None and over(p, ev_max_c):
                self.bad("digest §3.2: charge-loop power within the EV's EVMaximumChargePower of the request",
                         f"{p:.0f} W > {ev_max_c:.0f} W")
        if p is not None and p < 0:
            if self.bpt is False or (rcm is not None and "BPT" not in type(rcm).__name__):
                self.bad("digest §4.3: no export on a non-BPT service", f"{p:.0f} W")
            mx = c.get("evse_maximum_discharge_power")
            if mx is not None and over(-p, mx):
                self.bad("consistency: export within the CPD EVSEMaximumDischargePower", f"{-p:.0f} W > {mx:.0f} W")
            if ev_max_d is not None and over(-p, ev_max_d):
                self.bad("digest §4.3: export within the EV's EVMaximumDischargePower of the request",
                         f"{-p:.0f} W > {ev_max_d:.0f} W")
        if i is not None and i > 0:
            mx = c.get("evse_maximum_charge_current")
            if mx is not None and over(i, mx, TOL_A):
                self.bad("consistency: DC present current within the CPD EVSEMaximumChargeCurrent", f"{i:.1f} A > {mx:.1f} A")
            if ev_max_i is not None and over(i, ev_max_i, TOL_A):
                self.bad("digest §3.2: DC present current within the EV's EVMaximumChargeCurrent", f"{i:.1f} A > {ev_max_i:.1f} A")
        if i is not None and i < 0:
            mx = c.get("evse_maximum_discharge_current")
            if mx is not None and over(-i, mx, TOL_A):
                self.bad("consistency: DC discharge current within the CPD EVSEMaximumDischargeCurrent",
                         f"{-i:.1f} A > {mx:.1f} A")

    def _AC_ChargeLoopRes(self, msg: Any, req: Any) -> None:
        self.loop_answers += 1
        self._meter(msg)
        cm = msg.control_mode
        p = _f(getattr(cm, "evse_target_active_power", None))
        if p is None:
            p = _f(getattr(cm, "evse_present_active_power", None))
        if "Dynamic" in type(cm).__name__ and p is None:
            self.bad("X:AC Dynamic AC_ChargeLoopRes: EVSETargetActivePower present", "missing")
        self._loop_limits(p, None, req)
        f = _f(msg.evse_target_frequency)
        if f is not None and self.frequency is not None and abs(f - self.frequency) > 0.02 * self.frequency:
            self.bad("consistency: EVSETargetFrequency matches the declared grid frequency", f"{f} Hz vs {self.frequency} Hz")

    def _DC_ChargeLoopRes(self, msg: Any, req: Any) -> None:
        self.loop_answers += 1
        self._meter(msg)
        v, i = _f(msg.evse_present_voltage), _f(msg.evse_present_current)
        p = v * i if v is not None and i is not None else None
        vmax = self.cpd.get("evse_maximum_voltage")
        if v is not None and vmax is not None and over(v, vmax, 1.0):
            self.bad("consistency: DC present voltage within the CPD EVSEMaximumVoltage", f"{v} V > {vmax} V")
        self._loop_limits(p, i, req)
        cm = msg.control_mode
        for k, ck in (("evse_maximum_charge_power", "evse_maximum_charge_power"),
                      ("evse_maximum_charge_current", "evse_maximum_charge_current"),
                      ("evse_maximum_discharge_power", "evse_maximum_discharge_power")):
            lv, cv = _f(getattr(cm, k, None)), self.cpd.get(ck)
            if lv is not None and cv is not None and over(lv, cv, 1.0):
                self.bad("consistency: charge-loop EVSE limits never above the CPD answer", f"{k} {lv} > {cv}")
        rcm = getattr(req, "control_mode", None)
        target = _f(getattr(rcm, "ev_target_current", None))
        prev, self.prev_target = self.prev_target, target
        if target is not None and i is not None and self.loop_answers > 1:
            allowed = max(abs(target), abs(prev)) if prev is not None else abs(target)
            if over(abs(i), allowed, TOL_A):
                self.bad("digest §3.2: DC Scheduled: present current follows EVTargetCurrent after one cycle",
                         f"{i:.1f} A vs target {target:.1f} A")


_ = Decimal
