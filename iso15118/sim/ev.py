"""Simulated vehicles implementing :class:`iso15118.session.controller.EVController`.

``cybertruck-awd``: ~123 kWh, AC_BPT (48 A / 11.5 kW each way) and DC_BPT (11.5 kW export),
a user minimum-SOC reserve below which it never exports, outlets disabled while exporting,
and a charge-adapter thermal model (derate, then safe stop).  ``cybertruck-rwd``: no BPT.

Bed outlets (V2L): 240 V, sharing 9.6 kW (AWD) or 2.4 kW (RWD) among every load plugged in
(:meth:`SimEV.outlet_draw`).  They are off whenever the truck exports (V2H, or V2V through
its port) -- and, our reading that makes "the truck can never charge itself" hold, whenever
its charge port carries power at all: port and outlets are interlocked
(:attr:`SimEV.port_in_use`).  A truck whose port supply disappears the moment it switches its
outlets off has been plugged into its own outlet: it refuses to charge from that supply
(:meth:`SimEV.port_supply_lost`).

Energy semantics (decided from the XSD names, see controller.py for signs):
``EVTargetEnergyRequest`` = energy to reach the target SOC, ``EVMaximumEnergyRequest`` = to
100 %, ``EVMinimumEnergyRequest`` = to the reserve SOC (0 when above it);
``EVMaximumV2XEnergyRequest`` = maximum energy request, ``EVMinimumV2XEnergyRequest`` =
minus the energy available above the reserve (negative: may be discharged).
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
from iso15118.session.pnc import ContractCredentials, ProvisioningCredentials
from iso15118.session.services import ControlMode, EnergyService
from iso15118.sim.physics import AdapterThermal, Battery, dec, energy_request


@dataclass
class EVSpec:
    name: str
    evcc_id: str
    capacity_wh: float
    services: tuple[EnergyService, ...]
    ac_max_power: float = 11500.0
    ac_max_discharge: float = 11500.0
    dc_max_power: float = 250000.0
    dc_max_current: float = 500.0
    dc_max_discharge: float = 11500.0
    dc_max_discharge_current: float = 30.0
    nominal_voltage: float = 800.0
    ac_voltage: float = 240.0
    outlet_budget_w: float = 9600.0
    """Bed outlets (V2L): the power all outlets share."""


CYBERTRUCK_AWD = EVSpec(
    "cybertruck-awd",
    "WMIV1234567890ABCDEX",
    123000.0,
    (EnergyService.AC_BPT, EnergyService.DC_BPT, EnergyService.AC, EnergyService.DC),
)
CYBERTRUCK_RWD = EVSpec(
    "cybertruck-rwd",
    "WMIV1234567890RWDEX1",
    98000.0,
    (EnergyService.AC, EnergyService.DC),
    ac_max_discharge=0.0,
    dc_max_discharge=0.0,
    dc_max_discharge_current=0.0,
    outlet_budget_w=2400.0,
)


@dataclass
class SimEV:
    """A vehicle: battery + limits + user settings + adapter thermal model."""

    spec: EVSpec
    soc: float = 50.0
    target_soc: int = 90
    min_soc_reserve: int = 20
    """User reserve: no export at or below this SOC."""
    on_reserve: str = "continue"
    """"continue": keep the session without export; "stop": end it cleanly."""
    control_mode: ControlMode = ControlMode.DYNAMIC
    export_requested: bool = False
    """Scheduled mode: the user wants to export (uses the DischargingSchedule)."""
    thermal: AdapterThermal | None = field(default_factory=AdapterThermal)
    speed: float = 1.0
    stop_after: float | None = None
    """Protocol seconds after power start at which the user ends the session."""
    pause_after: float | None = None
    standby_between: tuple[float, float] | None = None
    renegotiate_after: float | None = None
    power_w: float = 0.0
    outlets_enabled: bool = True
    log: list[tuple[float, str]] = field(default_factory=list)
    contract: ContractCredentials | None = field(default=None, repr=False)
    """Plug & Charge contract (chain + key); None: EIM, or install one with ``provisioning``."""
    provisioning: ProvisioningCredentials | None = field(default=None, repr=False)
    """OEM provisioning certificate + key and trusted roots (CertificateInstallation)."""

    def __post_init__(self) -> None:
        self.battery = Battery(self.spec.capacity_wh, self.soc, self.spec.nominal_voltage)
        self.evcc_id = self.spec.evcc_id
        self._t: float | None = None
        self._started_at: float | None = None
        self._renegotiated = False
        self._in_standby = False
        self.energy_in_wh = 0.0
        self.energy_out_wh = 0.0
        self.aborted = False
        self.has_exported = False
        self._power_on = False
        self._loop_dt = 0.25
        self._last_apply: float | None = None
        self.reserve_reached = False
        self.ended: tuple[str, bool] | None = None
        self.service: EnergyService | None = None
        self.port_in_use = False
        """The charge port carries power (either direction): the outlets are off."""
        self.outlet_load_w = 0.0
        self.outlet_loads: dict[str, float] = {}
        """What each load on the bed outlets draws now (W)."""
        self.own_outlet_refused = False
        """Latched when the truck found its port fed by its own outlets."""
        self._exporting = False

    # -- helpers

    def _advance(self, now: float) -> None:
        if self._t is None:
            self._t = now
            return
        dt = (now - self._t) * self.speed
        self._t = now
        if dt <= 0:
            return
        wh = self.power_w * dt / 3600.0
        self.battery.add_energy(wh)
        if wh >= 0:
            self.energy_in_wh += wh
        else:
            self.energy_out_wh -= wh
        if self.has_exported and not self.reserve_reached and self._above_reserve_wh() < 1.0:
            self.reserve_reached = True
            self._note(now, f"SOC {self.battery.soc:.1f} % at reserve {self.min_soc_reserve} %: export refused")
        if self.thermal is not None:
            was_derated, was_tripped = self.thermal.derated, self.thermal.tripped
            self.thermal.advance(abs(self.current_a()), dt)
            if self.thermal.derated and not was_derated:
                self._note(now, f"adapter {self.thermal.temperature_c:.0f} C: derating to {self.thermal.derate_factor:.0%}")
            if self.thermal.tripped and not was_tripped:
                self._note(now, f"adapter {self.thermal.temperature_c:.0f} C: over limit, stopping power")
                self.aborted = True
                self.power_w = 0.0

    def _note(self, now: float, text: str) -> None:
        self.log.append((now, text))

    def current_a(self) -> float:
        if self.service is not None and self.service.family is not None and self.service.family.value == "DC":
            return self.power_w / self.battery.voltage()
        return self.power_w / self.spec.ac_voltage

    @property
    def soc_now(self) -> float:
        return self.battery.soc

    @property
    def soc_percent(self) -> int:
        return int(self.battery.soc)

    def reserve_power_cap(self) -> float:
        """The discharge power (W) that would just reach the reserve within one loop interval
        (the last observed one, at least 0.25 s), in physics time."""
        above_wh = self._above_reserve_wh()
        if above_wh <= 0:
            return 0.0
        interval = max(self._loop_dt, 0.25) * self.speed
        return above_wh * 3600.0 / interval

    def _above_reserve_wh(self) -> float:
        return (self.battery.soc - self.min_soc_reserve) * self.spec.capacity_wh / 100.0

    def _export_allowed(self) -> bool:
        # 1 Wh of margin: the reserve counts as reached once less than that is left above it
        return self._above_reserve_wh() >= 1.0 and not self.aborted

    # -- EVController

    def preferred_services(self) -> list[EnergyService]:
        return list(self.spec.services)

    def preferred_control_mode(self) -> ControlMode:
        return self.control_mode

    def limits(self, now: float, service: EnergyService) -> EVLimits:
        self.service = service
        factor = self.thermal.current_factor() if self.thermal is not None else 1.0
        if self.aborted:
            factor = 0.0
        full = self.battery.soc >= 100.0
        dc = service.family is not None and service.family.value == "DC"
        bpt = service.bpt and service in self.spec.services
        export = bpt and self._export_allowed()
        # never discharge below the reserve: over the next loop interval (physics time) at
        # most the energy still above the reserve may leave the battery
        reserve_cap = self.reserve_power_cap()
        if dc:
            v = self.battery.voltage()
            max_i = self.spec.dc_max_current * factor
            max_p = 0.0 if full else min(self.spec.dc_max_power, max_i * v)
            dis_i = self.spec.dc_max_discharge_current * factor if export else 0.0
            dis_p = min(self.spec.dc_max_discharge, dis_i * v, reserve_cap) if export else 0.0
            dis_i = min(dis_i, dis_p / v) if export else 0.0
            return EVLimits(
                max_charge_power=dec(max_p),
                max_charge_current=dec(max_i, 1),
                max_voltage=dec(self.spec.nominal_voltage * 1.05),
                min_voltage=dec(self.spec.nominal_voltage * 0.6),
                max_discharge_power=dec(dis_p),
                max_discharge_current=dec(dis_i, 1),
                target_soc=self.target_soc,
            )
        max_p = 0.0 if full else self.spec.ac_max_power * factor
        dis_p = min(self.spec.ac_max_discharge * factor, reserve_cap) if export else 0.0
        return EVLimits(
            max_charge_power=dec(max_p),
            max_charge_current=dec(max_p / self.spec.ac_voltage, 1),
            max_voltage=dec(self.spec.ac_voltage * 1.1),
            min_voltage=dec(self.spec.ac_voltage * 0.9),
            max_discharge_power=dec(dis_p),
            target_soc=self.target_soc,
        )

    def energy_request(self, now: float) -> EnergyRequest:
        return energy_request(self.spec.capacity_wh, self.battery.soc, self.target_soc, self.min_soc_reserve)

    def present_voltage(self, now: float) -> Decimal:
        return dec(self.battery.voltage())

    def loop_status(self, now: float, ctx: LoopContext) -> EVLoopStatus:
        self._advance(now)
        lim = self.limits(now, ctx.service)
        target: Decimal | None = None
        if ctx.control_mode is ControlMode.SCHEDULED and not ctx.standby:
            sched = ctx.schedule
            charge_cap = sched.charge_power if sched is not None else lim.max_charge_power
            discharge_cap = sched.discharge_power if sched is not None else Decimal(0)
            wants_export = ctx.service.bpt and (self.export_requested or (sched is not None and sched.charge_power <= 0))
            if wants_export and lim.max_discharge_power > 0 and discharge_cap > 0:
                target = -min(discharge_cap, lim.max_discharge_power)
            elif self.battery.soc < self.target_soc:
                target = min(charge_cap, lim.max_charge_power)
            else:
                target = Decimal(0)
        elif ctx.standby:
            target = Decimal(0)
        if (
            target is not None
            and self._power_on
            and ctx.service.family is not None
            and ctx.service.family.value == "AC"
        ):
            # AC scheduled: the on-board charger itself follows the plan; the EVSE measures
            self.power_w = float(target)
        return EVLoopStatus(
            limits=lim,
            energy=self.energy_request(now),
            present_voltage=self.present_voltage(now),
            present_power=dec(self.power_w),
            target_power=target,
            target_voltage=self.present_voltage(now),
            soc=int(self.battery.soc),
        )

    def apply(self, now: float, ctx: LoopContext, result: EVSELoopResult) -> None:
        """Follow the EVSE, never beyond our own (possibly derated / reserve) limits."""
        if self._last_apply is not None:
            self._loop_dt = max(self._loop_dt * 0.5, now - self._last_apply)
        self._last_apply = now
        self._advance(now)
        lim = self.limits(now, ctx.service)
        p = float(result.target_power)
        if p >= 0:
            p = min(p, float(lim.max_charge_power))
        else:
            p = max(p, -float(lim.max_discharge_power))
        if self.aborted or ctx.standby:
            p = 0.0
        exporting = p < 0
        if exporting:
            self.has_exported = True
        if exporting and not self._exporting:
            self._exporting = True
            self._outlets(now, False, "exporting: vehicle outlets disabled")
        elif not exporting and self._exporting:
            self._exporting = False
            if not self.port_in_use:
                self._outlets(now, True, "export ended: vehicle outlets enabled")
        self.power_w = p

    def next_action(self, now: float, ctx: LoopContext) -> EVAction:
        self._advance(now)
        if self.aborted:
            return EVAction.STOP
        started = self._started_at if self._started_at is not None else now
        if self.pause_after is not None and now - started >= self.pause_after:
            return EVAction.PAUSE
        if self.stop_after is not None and now - started >= self.stop_after:
            return EVAction.STOP
        if self.standby_between is not None:
            a, b = self.standby_between
            if a <= now - started < b and not ctx.standby:
                return EVAction.STANDBY
            if now - started >= b and ctx.standby:
                return EVAction.RESUME
        if self.renegotiate_after is not None and not self._renegotiated and now - started >= self.renegotiate_after:
            self._renegotiated = True
            return EVAction.RENEGOTIATE_SCHEDULE
        if self.on_reserve == "stop" and self.has_exported and not self._export_allowed():
            self._note(now, f"SOC {self.battery.soc:.1f} % at reserve {self.min_soc_reserve} %: ending session")
            return EVAction.STOP
        return EVAction.CONTINUE

    def power_started(self, now: float, discharge: bool) -> None:
        self._advance(now)
        if self._started_at is None:
            self._started_at = now
        self._power_on = True
        self.port_open(now)
        self._note(now, "power delivery started" + (" (discharge)" if discharge else ""))

    def power_stopped(self, now: float) -> None:
        self._advance(now)
        self.power_w = 0.0
        self._power_on = False
        self._exporting = False
        self.port_closed(now)
        self._note(now, "power delivery stopped")

    # -- charge port / outlet interlock (V2L)

    def _outlets(self, now: float, on: bool, why: str) -> None:
        if on != self.outlets_enabled:
            self.outlets_enabled = on
            if not on:
                self.outlet_load_w = 0.0
                self.outlet_loads.clear()
        self._note(now, why)

    def port_open(self, now: float) -> None:
        """The charge port starts carrying power (S2 closed / power delivery): outlets off."""
        if not self.port_in_use:
            self.port_in_use = True
            if self.outlets_enabled:
                self._outlets(now, False, "charge port in use: vehicle outlets off")

    def port_closed(self, now: float) -> None:
        """The charge port carries no power any more: outlets back on."""
        if self.port_in_use or not self.outlets_enabled:
            self.port_in_use = False
            self._outlets(now, True, "charge port idle: vehicle outlets enabled")

    def port_supply_lost(self, now: float) -> None:
        """The supply at the port vanished right when the outlets went off: the port is fed by
        this truck's own outlets.  Never charge from it (latched until unplugged)."""
        if not self.own_outlet_refused:
            self.own_outlet_refused = True
            self._note(now, "charge port fed by our own outlets: charging refused")

    def unplugged(self, now: float) -> None:
        self.own_outlet_refused = False
        self.port_closed(now)

    def outlet_draw(self, now: float, watts: float, load: str = "outlet") -> float:
        """The load ``load`` on the bed outlets asks for ``watts``: what it gets -- 0 while they
        are off, else at most what the shared budget leaves after the other loads."""
        self._advance(now)
        others = sum(w for name, w in self.outlet_loads.items() if name != load)
        if not self.outlets_enabled or self.aborted:
            granted = 0.0
        else:
            granted = max(0.0, min(watts, self.spec.outlet_budget_w - others))
        self.outlet_loads[load] = granted
        self.outlet_load_w = sum(self.outlet_loads.values())
        return granted

    def outlet_energy(self, wh: float) -> None:
        """Energy that left through the outlets (the caller integrates over time)."""
        self.battery.add_energy(-wh)
        self.energy_out_wh += wh

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self._advance(now)
        self.power_w = 0.0
        self.ended = (reason, ok)

    def contract_installed(self, now: float, contract: ContractCredentials) -> None:
        """CertificateInstallation delivered a contract: keep it for this and later sessions."""
        self.contract = contract
        self._note(now, "contract certificate installed")


def make_ev(name: str, **kwargs: object) -> SimEV:
    """A simulated EV by profile name (``cybertruck-awd``, ``cybertruck-rwd``).

    Plug & Charge: pass ``contract=`` (:func:`iso15118.session.pnc.contract_from_pki`) and/or
    ``provisioning=`` (:func:`iso15118.session.pnc.provisioning_from_pki`); without them the
    EV authorizes with EIM."""
    specs = {"cybertruck-awd": CYBERTRUCK_AWD, "cybertruck-rwd": CYBERTRUCK_RWD}
    if name not in specs:
        raise KeyError(f"unknown EV profile {name!r}; known: {', '.join(specs)}")
    return SimEV(specs[name], **kwargs)  # type: ignore[arg-type]
