"""What the stack asks the EV and the EVSE: physics and decisions live behind these Protocols.

The cores (``evcc.py``, ``secc.py``) never hard-code limits, voltages, SOC, authorization or
notifications; they call a controller and put the answers on the wire.  Simulators in
:mod:`iso15118.sim` implement these Protocols; a real product would wrap its hardware.

Sign convention (decided from the XSDs, digest §4.3 UNVERIFIED): **positive = energy into the
EV battery, negative = energy out of it (discharge)** for every *present* or *target* power or
current (EVPresentActivePower, EVSETargetActivePower, EVSEPresentActivePower, EVTargetCurrent,
EVSEPresentCurrent, the Power of EVPowerProfile entries and of a DischargingSchedule).  This
matches Josev, which sets ``BPT_ChannelSelection=Discharge`` for a profile with negative power.
Every *limit* named ``...Discharge...`` (EV/EVSE Maximum/MinimumDischargePower/Current, in
ChargeParameterDiscovery and the charge loop) is a non-negative magnitude, as both public
implementations send them.

All quantities are :class:`~decimal.Decimal` in W, A, V, Wh, and ``now`` is the core's clock
(seconds, monotonic; a simulator may scale it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from iso15118.session.services import ControlMode, EnergyService, ServiceOffer

D0 = Decimal(0)


class AuthorizationDecision(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PENDING = "pending"


class EVAction(str, enum.Enum):
    """What the EV wants to do at the next step of the charge loop."""

    CONTINUE = "continue"
    STOP = "stop"  # PowerDelivery(Stop) -> SessionStop(Terminate)
    PAUSE = "pause"  # PowerDelivery(Stop) -> SessionStop(Pause)
    STANDBY = "standby"  # PowerDelivery(Standby)
    RESUME = "resume"  # PowerDelivery(Start) out of Standby
    RENEGOTIATE_SCHEDULE = "renegotiate_schedule"  # PowerDelivery(ScheduleRenegotiation)


@dataclass(frozen=True)
class EVLimits:
    """EV charge (and for BPT discharge) limits; discharge values are magnitudes."""

    max_charge_power: Decimal
    max_charge_current: Decimal
    max_voltage: Decimal
    min_voltage: Decimal
    min_charge_power: Decimal = D0
    min_charge_current: Decimal = D0
    max_discharge_power: Decimal = D0
    min_discharge_power: Decimal = D0
    max_discharge_current: Decimal = D0
    min_discharge_current: Decimal = D0
    target_soc: int | None = None


@dataclass(frozen=True)
class EVSELimits:
    """EVSE limits (ChargeParameterDiscoveryRes and dynamic charge-loop responses)."""

    max_charge_power: Decimal
    max_charge_current: Decimal
    max_voltage: Decimal
    min_voltage: Decimal = D0
    min_charge_power: Decimal = D0
    min_charge_current: Decimal = D0
    max_discharge_power: Decimal = D0
    min_discharge_power: Decimal = D0
    max_discharge_current: Decimal = D0
    min_discharge_current: Decimal = D0
    nominal_voltage: Decimal | None = None
    nominal_frequency: Decimal = Decimal(60)


@dataclass(frozen=True)
class EnergyRequest:
    """The EV's energy needs (ScheduleExchange, dynamic charge loop)."""

    target_wh: Decimal
    max_wh: Decimal
    min_wh: Decimal
    departure_time: int = 7200
    min_soc: int | None = None
    target_soc: int | None = None
    max_v2x_wh: Decimal | None = None
    min_v2x_wh: Decimal | None = None


@dataclass(frozen=True)
class EVLoopStatus:
    """What the EV reports in one ChargeLoopReq."""

    limits: EVLimits
    energy: EnergyRequest
    present_voltage: Decimal
    present_power: Decimal
    """AC: EVPresentActivePower (signed)."""
    target_power: Decimal | None = None
    """Scheduled mode: the power the EV intends (signed); DC uses it for EVTargetCurrent."""
    target_voltage: Decimal | None = None
    soc: int | None = None


@dataclass(frozen=True)
class EVSELoopResult:
    """What the EVSE decides and measures in one ChargeLoopRes."""

    target_power: Decimal
    """Signed power the EVSE delivers (+) or absorbs (-) now."""
    present_voltage: Decimal
    present_current: Decimal
    power_limit_achieved: bool = False
    current_limit_achieved: bool = False
    voltage_limit_achieved: bool = False
    charged_wh: Decimal = D0
    discharged_wh: Decimal = D0


@dataclass(frozen=True)
class Notification:
    """An EVSENotification the SECC wants to send (value of ``EVSENotification``)."""

    kind: str  # "Pause", "Terminate", "ExitStandby", "ScheduleRenegotiation", "ServiceRenegotiation"
    max_delay: int = 0


@dataclass
class ScheduleOffer:
    """Scheduled mode: one power level for charging and (BPT) discharging, per tuple."""

    tuple_id: int = 1
    charge_power: Decimal = D0
    discharge_power: Decimal = D0
    duration: int = 86400


@dataclass(frozen=True)
class LoopContext:
    """Session facts the controllers may need in the charge loop."""

    service: EnergyService
    control_mode: ControlMode
    schedule: ScheduleOffer | None = None
    standby: bool = False


@runtime_checkable
class EVController(Protocol):
    """The EV side: battery, limits, user wishes."""

    evcc_id: str

    def preferred_services(self) -> list[EnergyService]:
        """Services the EV can use, most preferred first."""

    def preferred_control_mode(self) -> ControlMode: ...

    def limits(self, now: float, service: EnergyService) -> EVLimits:
        """Present limits (may be derated mid-session, e.g. by adapter temperature)."""

    def energy_request(self, now: float) -> EnergyRequest: ...

    def present_voltage(self, now: float) -> Decimal:
        """DC battery voltage (AC: nominal)."""

    def loop_status(self, now: float, ctx: LoopContext) -> EVLoopStatus: ...

    def apply(self, now: float, ctx: LoopContext, result: EVSELoopResult) -> None:
        """The EVSE's answer to one loop: update the physics (power, SOC, temperatures)."""

    def next_action(self, now: float, ctx: LoopContext) -> EVAction: ...

    def power_started(self, now: float, discharge: bool) -> None: ...

    def power_stopped(self, now: float) -> None: ...

    def session_ended(self, now: float, reason: str, ok: bool) -> None: ...


@runtime_checkable
class EVSEController(Protocol):
    """The EVSE side: supply, meter, authorization, grid events."""

    evse_id: str

    def energy_services(self) -> list[ServiceOffer]: ...

    def authorize(self, now: float) -> AuthorizationDecision: ...

    def limits(self, now: float, service: EnergyService) -> EVSELimits: ...

    def schedule(self, now: float, service: EnergyService) -> ScheduleOffer | None:
        """Scheduled mode offer, or None while still computing (ScheduleExchange Ongoing)."""

    def cable_check(self, now: float) -> bool:
        """True once the isolation check is finished (DC)."""

    def pre_charge(self, now: float, target_voltage: Decimal) -> Decimal:
        """Drive the output towards ``target_voltage``; returns the present voltage."""

    def present_voltage(self, now: float) -> Decimal: ...

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        """Close (Start) or open (Stop/Standby) the contactors; False = contactor error."""

    def charge_loop(self, now: float, ctx: LoopContext, status: EVLoopStatus) -> EVSELoopResult: ...

    def pending_notification(self, now: float) -> Notification | None:
        """A notification to put into the next PowerDeliveryRes/ChargeLoopRes, if any."""

    def session_ended(self, now: float, reason: str, ok: bool) -> None: ...


@dataclass
class SessionRecord:
    """What the SECC keeps of a paused session (resumption with the old SessionID)."""

    session_id: bytes
    evcc_id: str
    service: EnergyService
    parameter_set: int
    control_mode: ControlMode
    paused_at: float
    extra: dict[str, object] = field(default_factory=dict)
