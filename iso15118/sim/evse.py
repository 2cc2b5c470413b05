"""Simulated chargers implementing :class:`iso15118.session.controller.EVSEController`.

* ``wall-connector``: AC_BPT (+AC) wall box, 240 V split phase, 48 A each way (11.5 kW charge,
  11.5 kW export to the home).  ``grid_outage = True`` (or :meth:`set_grid_outage`) islands
  the home: from the next charge-loop exchange the vehicle supplies the home load (V2H).
* ``dc-bidi``: DC_BPT (+DC) charger, 800 V class, 11.5 kW charge and export.
* ``v2v``: a vehicle's AC outlet acting as supply for another vehicle, AC only, 32 A /
  7.7 kW from its own battery down to a reserve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from iso15118.session.controller import (
    AuthorizationDecision,
    EVLoopStatus,
    EVSELimits,
    EVSELoopResult,
    LoopContext,
    Notification,
    ScheduleOffer,
)
from iso15118.session.services import ControlMode, EnergyService, ServiceOffer, default_parameter_sets
from iso15118.sim.physics import Battery, Meter, dec


@dataclass
class EVSESpec:
    name: str
    evse_id: str
    services: tuple[EnergyService, ...]
    dc: bool
    max_charge_power: float
    max_discharge_power: float
    max_current: float
    max_discharge_current: float
    max_voltage: float
    min_voltage: float
    nominal_voltage: float = 240.0
    source_capacity_wh: float | None = None
    """V2V: the supplying vehicle's battery."""


WALL_CONNECTOR = EVSESpec(
    "wall-connector", "US*TSL*E0001*1", (EnergyService.AC_BPT, EnergyService.AC), False,
    11520.0, 11520.0, 48.0, 48.0, 264.0, 211.0,
)
DC_BIDI = EVSESpec(
    "dc-bidi", "US*TSL*E0002*1", (EnergyService.DC_BPT, EnergyService.DC), True,
    11500.0, 11500.0, 30.0, 30.0, 920.0, 200.0, 800.0,
)
V2V = EVSESpec(
    "v2v", "US*TSL*E0003*1", (EnergyService.AC,), False,
    7680.0, 0.0, 32.0, 0.0, 264.0, 211.0, source_capacity_wh=123000.0,
)


@dataclass
class SimEVSE:
    """A charger: supply limits, meter, authorization, grid and notifications."""

    spec: EVSESpec
    speed: float = 1.0
    control_modes: tuple[ControlMode, ...] = (ControlMode.SCHEDULED, ControlMode.DYNAMIC)
    grid_outage: bool = False
    home_load_w: float = 7200.0
    authorization_delay: float = 0.0
    """Protocol seconds the EIM authorization stays pending."""
    authorize_ok: bool = True
    pnc_authorization_delay: float = 0.0
    """Protocol seconds "the backend" takes to accept a verified PnC contract (Ongoing meanwhile)."""
    refused_emaids: tuple[str, ...] = ()
    """Contracts the backend refuses (WARNING_GeneralPnCAuthorizationError)."""
    cable_check_duration: float = 0.3
    schedule_delay: float = 0.0
    contactor_fault: bool = False
    source_soc: float = 80.0
    source_reserve: float = 20.0
    log: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.evse_id = self.spec.evse_id
        self.meter = Meter()
        self.power_w = 0.0
        self.output_voltage = 0.0
        self.contactors_closed = False
        self._t: float | None = None
        self._auth_since: float | None = None
        self._pnc_since: float | None = None
        self._cable_since: float | None = None
        self._schedule_since: float | None = None
        self._notifications: list[Notification] = []
        self._tuple_id = 0
        self.outage_at: float | None = None
        self.v2h_at: float | None = None
        self.source = (
            Battery(self.spec.source_capacity_wh, self.source_soc, 400.0) if self.spec.source_capacity_wh else None
        )
        self.sessions_ended: list[tuple[str, bool]] = []

    # -- scenario controls

    def set_grid_outage(self, now: float, outage: bool = True) -> None:
        """Grid lost (or restored): the home moves onto the vehicle (or back to the grid)."""
        self._advance(now)
        self.grid_outage = outage
        self.outage_at = now if outage else None
        self.v2h_at = None
        self.log.append((now, "grid outage: home load moves to the vehicle" if outage else "grid restored"))

    def notify(self, kind: str, max_delay: int = 0) -> None:
        self._notifications.append(Notification(kind, max_delay))

    @property
    def v2h_switch_time(self) -> float | None:
        """Protocol seconds from the grid outage to the first exchange that exported to the home."""
        if self.outage_at is None or self.v2h_at is None:
            return None
        return self.v2h_at - self.outage_at

    def _advance(self, now: float) -> None:
        if self._t is None:
            self._t = now
            return
        dt = (now - self._t) * self.speed
        self._t = now
        if dt > 0:
            self.meter.add(self.power_w, dt)
            if self.source is not None:
                self.source.add_energy(-self.power_w * dt / 3600.0 / 0.95)

    # -- EVSEController

    def energy_services(self) -> list[ServiceOffer]:
        return [
            ServiceOffer(
                svc,
                default_parameter_sets(svc, nominal_voltage=int(self.spec.nominal_voltage), modes=self.control_modes),
            )
            for svc in self.spec.services
        ]

    def authorize(self, now: float) -> AuthorizationDecision:
        if self._auth_since is None:
            self._auth_since = now
        if now - self._auth_since < self.authorization_delay:
            return AuthorizationDecision.PENDING
        self._auth_since = None
        return AuthorizationDecision.ACCEPTED if self.authorize_ok else AuthorizationDecision.REJECTED

    def authorize_contract(self, now: float, emaid: str | None, certificate: object) -> AuthorizationDecision:
        """The backend's word on a contract whose signature and chain the SECC verified."""
        if self._pnc_since is None:
            self._pnc_since = now
        if now - self._pnc_since < self.pnc_authorization_delay:
            return AuthorizationDecision.PENDING
        self._pnc_since = None
        if emaid in self.refused_emaids:
            self.log.append((now, f"backend refused contract {emaid}"))
            return AuthorizationDecision.REJECTED
        return AuthorizationDecision.ACCEPTED

    def limits(self, now: float, service: EnergyService) -> EVSELimits:
        bpt = service.bpt
        source_ok = self.source is None or self.source.soc > self.source_reserve
        max_p = self.spec.max_charge_power if source_ok else 0.0
        return EVSELimits(
            max_charge_power=dec(max_p),
            max_charge_current=dec(self.spec.max_current, 1),
            max_voltage=dec(self.spec.max_voltage),
            min_voltage=dec(self.spec.min_voltage),
            max_discharge_power=dec(self.spec.max_discharge_power if bpt else 0),
            max_discharge_current=dec(self.spec.max_discharge_current if bpt else 0, 1),
            nominal_voltage=dec(self.spec.nominal_voltage),
            nominal_frequency=Decimal(60),
        )

    def schedule(self, now: float, service: EnergyService) -> ScheduleOffer | None:
        if self._schedule_since is None:
            self._schedule_since = now
        if now - self._schedule_since < self.schedule_delay:
            return None
        self._schedule_since = None
        self._tuple_id = self._tuple_id % 255 + 1
        if self.grid_outage and service.bpt:
            return ScheduleOffer(self._tuple_id, Decimal(0), dec(min(self.home_load_w, self.spec.max_discharge_power)))
        return ScheduleOffer(
            self._tuple_id, dec(self.spec.max_charge_power), dec(self.spec.max_discharge_power if service.bpt else 0)
        )

    def cable_check(self, now: float) -> bool:
        if self._cable_since is None:
            self._cable_since = now
        done = now - self._cable_since >= self.cable_check_duration
        if done:
            self._cable_since = None
        return done

    def physical_voltage(self, volts: float) -> float:
        """What the DC output can be: 0 V .. EVSEMaximumVoltage, whatever was asked or claimed."""
        if volts != volts:  # NaN
            return 0.0
        return min(max(volts, 0.0), float(self.spec.max_voltage))

    def pre_charge(self, now: float, target_voltage: Decimal) -> Decimal:
        # a fast converter: half way per request, then settled; never above its own maximum
        # and never below 0 V (a negative target is not followed)
        t = self.physical_voltage(float(target_voltage))
        self.output_voltage = t if abs(t - self.output_voltage) < 40 else (self.output_voltage + t) / 2
        return dec(self.output_voltage, 1)

    def present_voltage(self, now: float) -> Decimal:
        if not self.spec.dc:
            return dec(self.spec.nominal_voltage)
        return dec(self.output_voltage, 1)

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        self._advance(now)
        if progress == "Start":
            if self.contactor_fault:
                return False
            self.contactors_closed = True
            self.log.append((now, "contactors closed"))
            return True
        self.power_w = 0.0
        if progress == "Stop":
            self.contactors_closed = False
            self.output_voltage = 0.0  # discharged for welding detection
            self.log.append((now, "contactors open"))
        return True

    def charge_loop(self, now: float, ctx: LoopContext, status: EVLoopStatus) -> EVSELoopResult:
        self._advance(now)
        lim = self.limits(now, ctx.service)
        ev = status.limits
        bpt = ctx.service.bpt
        if ctx.standby or not self.contactors_closed:
            target = 0.0
        elif ctx.control_mode is ControlMode.DYNAMIC:
            if self.grid_outage and bpt:
                target = -min(self.home_load_w, float(lim.max_discharge_power), float(ev.max_discharge_power))
            elif self.grid_outage:
                target = 0.0  # no grid, no BPT: nothing to charge from
            elif status.energy.target_wh > 0 or status.energy.max_wh > 0 and status.energy.target_wh > 0:
                target = min(float(lim.max_charge_power), float(ev.max_charge_power))
            else:
                target = 0.0
        else:
            wanted = float(status.target_power or 0)
            if wanted >= 0:
                target = min(wanted, float(lim.max_charge_power), float(ev.max_charge_power) or wanted)
            else:
                target = -min(-wanted, float(lim.max_discharge_power))
            if self.grid_outage and target > 0:
                target = 0.0
        if self.spec.dc:
            # the output follows the battery, within what the charger can physically be: the EV's
            # claim (e.g. 1234.5 V against a 920 V maximum, or a negative value) is not echoed
            voltage = self.physical_voltage(float(status.present_voltage)) or self.output_voltage
            self.output_voltage = voltage
            current = target / voltage if voltage > 0 else 0.0
            max_i = float(lim.max_charge_current) if current >= 0 else float(lim.max_discharge_current)
            if abs(current) > max_i:
                current = max_i if current >= 0 else -max_i
            target = current * voltage
        else:
            voltage = self.spec.nominal_voltage
            current = target / voltage
        if target < 0 and self.grid_outage and self.v2h_at is None:
            self.v2h_at = now
            self.log.append((now, f"V2H: home supplied by the vehicle, {-target / 1000:.1f} kW"))
        self.power_w = target
        return EVSELoopResult(
            target_power=dec(target),
            present_voltage=dec(voltage, 1),
            present_current=dec(current, 1),
            power_limit_achieved=abs(target) >= float(lim.max_charge_power) - 1,
            charged_wh=dec(self.meter.charged_wh),
            discharged_wh=dec(self.meter.discharged_wh),
        )

    def pending_notification(self, now: float) -> Notification | None:
        if self._notifications:
            return self._notifications.pop(0)
        return None

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self._advance(now)
        self.power_w = 0.0
        self.contactors_closed = False
        self.sessions_ended.append((reason, ok))


def make_evse(name: str, **kwargs: object) -> SimEVSE:
    """A simulated charger by profile name (``wall-connector``, ``dc-bidi``, ``v2v``)."""
    specs = {"wall-connector": WALL_CONNECTOR, "dc-bidi": DC_BIDI, "v2v": V2V}
    if name not in specs:
        raise KeyError(f"unknown EVSE profile {name!r}; known: {', '.join(specs)}")
    return SimEVSE(specs[name], **kwargs)  # type: ignore[arg-type]
