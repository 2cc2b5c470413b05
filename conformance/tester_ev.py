"""The tester's own EV: an :class:`~iso15118.session.controller.EVController` whose limits,
SOC and wishes a test case can change between two charge-loop exchanges.

Unlike the vehicle simulators in :mod:`iso15118.sim` it has no hidden behaviour: limits are
what the case sets (times ``derate``), SOC moves with the power the SUT reports (on a small
virtual capacity, so a reserve is reached within seconds), and the next action is whatever
the case put in ``action``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from iso15118.session.controller import (
    EnergyRequest,
    EVAction,
    EVLimits,
    EVLoopStatus,
    EVSELoopResult,
    LoopContext,
)
from iso15118.session.services import ControlMode, EnergyService
from iso15118.sim.physics import dec, energy_request

D = Decimal


@dataclass
class TesterEV:
    """A deterministic EV for conformance cases."""

    evcc_id: str = "WMIV1234567890TESTR"
    services: tuple[EnergyService, ...] = (EnergyService.AC_BPT, EnergyService.AC, EnergyService.DC_BPT, EnergyService.DC)
    control_mode: ControlMode = ControlMode.DYNAMIC
    ac_max_power: float = 11520.0
    ac_max_discharge: float = 11520.0
    ac_voltage: float = 240.0
    dc_voltage: float = 800.0
    dc_max_current: float = 30.0
    dc_max_power: float = 11500.0
    dc_max_discharge: float = 11500.0
    dc_max_discharge_current: float = 30.0
    soc: float = 50.0
    target_soc: int = 90
    min_soc_reserve: int = 20
    capacity_wh: float = 123000.0
    """Virtual capacity for SOC bookkeeping (cases use a tiny one to reach the reserve fast)."""
    export: bool = False
    """Scheduled mode: ask to discharge (negative target) while above the reserve."""
    charge_factor: float = 1.0
    discharge_factor: float = 1.0
    action: EVAction = EVAction.CONTINUE
    power_w: float = 0.0
    log: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.service: EnergyService | None = None
        self._t: float | None = None
        self.discharged_wh = 0.0
        self.charged_wh = 0.0
        self.reserve_reached = False
        self.started = False
        self.ended: tuple[str, bool] | None = None

    # -- case controls

    def derate(self, charge: float, discharge: float | None = None) -> None:
        """Lower (or restore, with 1.0) the limits, as an EV does when its adapter heats up."""
        self.charge_factor = charge
        self.discharge_factor = charge if discharge is None else discharge

    def is_dc(self) -> bool:
        return self.service is not None and self.service.family is not None and self.service.family.value == "DC"

    def export_allowed(self) -> bool:
        return self.soc > self.min_soc_reserve

    def current_limits(self) -> EVLimits:
        assert self.service is not None
        return self.limits(0.0, self.service)

    # -- EVController

    def preferred_services(self) -> list[EnergyService]:
        return list(self.services)

    def preferred_control_mode(self) -> ControlMode:
        return self.control_mode

    def limits(self, now: float, service: EnergyService) -> EVLimits:
        self.service = service
        full = self.soc >= 100.0
        export = service.bpt and self.export_allowed()
        if self.is_dc():
            v = self.dc_voltage
            max_i = self.dc_max_current * self.charge_factor
            dis_i = self.dc_max_discharge_current * self.discharge_factor if export else 0.0
            return EVLimits(
                max_charge_power=dec(0.0 if full else min(self.dc_max_power * self.charge_factor, max_i * v)),
                max_charge_current=dec(max_i, 1),
                max_voltage=dec(v * 1.1),
                min_voltage=dec(v * 0.6),
                max_discharge_power=dec(min(self.dc_max_discharge * self.discharge_factor, dis_i * v) if export else 0.0),
                max_discharge_current=dec(dis_i, 1),
                target_soc=self.target_soc,
            )
        max_p = 0.0 if full else self.ac_max_power * self.charge_factor
        return EVLimits(
            max_charge_power=dec(max_p),
            max_charge_current=dec(max_p / self.ac_voltage, 1),
            max_voltage=dec(self.ac_voltage * 1.1),
            min_voltage=dec(self.ac_voltage * 0.9),
            max_discharge_power=dec(self.ac_max_discharge * self.discharge_factor if export else 0.0),
            target_soc=self.target_soc,
        )

    def energy_request(self, now: float) -> EnergyRequest:
        return energy_request(self.capacity_wh, self.soc, self.target_soc, self.min_soc_reserve)

    def present_voltage(self, now: float) -> Decimal:
        if self.service is not None and not self.is_dc():
            return dec(self.ac_voltage)
        return dec(self.dc_voltage)

    def wanted_power(self, ctx: LoopContext) -> Decimal:
        """Scheduled mode: the power this EV asks for (negative = export)."""
        lim = self.limits(0.0, ctx.service)
        sched = ctx.schedule
        if ctx.standby:
            return D(0)
        if self.export and ctx.service.bpt:
            cap = sched.discharge_power if sched is not None and sched.discharge_power else lim.max_discharge_power
            return -min(cap, lim.max_discharge_power)
        if self.soc >= self.target_soc:
            return D(0)
        cap = sched.charge_power if sched is not None and sched.charge_power > 0 else lim.max_charge_power
        return min(cap, lim.max_charge_power)

    def loop_status(self, now: float, ctx: LoopContext) -> EVLoopStatus:
        lim = self.limits(now, ctx.service)
        target = self.wanted_power(ctx) if ctx.control_mode is ControlMode.SCHEDULED else None
        if target is not None and not self.is_dc():
            # AC, scheduled: the on-board charger draws (or feeds) what the EV planned
            self._advance(now)
            self.power_w = float(target)
        return EVLoopStatus(
            limits=lim,
            energy=self.energy_request(now),
            present_voltage=self.present_voltage(now),
            present_power=dec(self.power_w),
            target_power=target,
            target_voltage=self.present_voltage(now),
            soc=int(self.soc),
        )

    def _advance(self, now: float) -> None:
        if self._t is not None and now > self._t:
            wh = self.power_w * (now - self._t) / 3600.0
            self.soc = min(100.0, max(0.0, self.soc + 100.0 * wh / self.capacity_wh))
            if wh >= 0:
                self.charged_wh += wh
            else:
                self.discharged_wh -= wh
        self._t = now

    def apply(self, now: float, ctx: LoopContext, result: EVSELoopResult) -> None:
        """Take the power the SUT reports (the tester does not clip it: the checks judge it)."""
        self._advance(now)
        if ctx.control_mode is ControlMode.DYNAMIC or self.is_dc():
            self.power_w = float(result.target_power)
        if not self.export_allowed() and not self.reserve_reached and ctx.service.bpt:
            self.reserve_reached = True
            self.log.append((now, f"SOC {self.soc:.1f} % at reserve {self.min_soc_reserve} %"))

    def next_action(self, now: float, ctx: LoopContext) -> EVAction:
        return self.action

    def power_started(self, now: float, discharge: bool) -> None:
        self._advance(now)
        self.started = True

    def power_stopped(self, now: float) -> None:
        self._advance(now)
        self.power_w = 0.0

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self._advance(now)
        self.power_w = 0.0
        self.ended = (reason, ok)
