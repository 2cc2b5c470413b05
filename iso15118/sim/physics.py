"""Small physical models shared by the simulators: battery, adapter temperature, energy meter.

Time handling: models integrate over *physics* time, which is the protocol clock multiplied
by ``speed`` (``speed=60``: one protocol second moves energy, SOC and temperatures by one
simulated minute).  Protocol timing (timeouts, loop cadence, the V2H switch-over) is always
measured on the protocol clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from iso15118.session.controller import EnergyRequest


@dataclass
class Battery:
    """A traction battery with an energy content and an open-circuit voltage curve."""

    capacity_wh: float
    soc: float  # percent
    nominal_voltage: float = 800.0

    @property
    def energy_wh(self) -> float:
        return self.capacity_wh * self.soc / 100.0

    def voltage(self) -> float:
        """Open-circuit voltage: 88 % of nominal when empty, 102 % when full."""
        return self.nominal_voltage * (0.88 + 0.14 * self.soc / 100.0)

    def add_energy(self, wh: float) -> None:
        """Positive: charge; negative: discharge (clamped to 0..100 %)."""
        self.soc = min(100.0, max(0.0, self.soc + 100.0 * wh / self.capacity_wh))


@dataclass
class AdapterThermal:
    """First-order thermal model of a charge adapter: T -> ambient + k * I^2 (time constant tau).

    Above ``derate_at`` the EV lowers its current limit to ``derate_factor`` of nominal; it
    restores it below ``derate_at - hysteresis``.  Above ``abort_at`` the EV stops power and
    ends the session.
    """

    ambient_c: float = 25.0
    heat_coeff: float = 0.015  # K per A^2 at steady state
    tau_s: float = 120.0
    derate_at: float = 70.0
    abort_at: float = 90.0
    derate_factor: float = 0.5
    hysteresis: float = 5.0
    temperature_c: float = field(default=-1000.0)
    derated: bool = False
    tripped: bool = False

    def __post_init__(self) -> None:
        if self.temperature_c < -273:
            self.temperature_c = self.ambient_c

    def advance(self, current_a: float, dt_s: float) -> None:
        if dt_s <= 0:
            return
        steady = self.ambient_c + self.heat_coeff * current_a * current_a
        self.temperature_c += (steady - self.temperature_c) * (1.0 - math.exp(-dt_s / self.tau_s))
        if self.temperature_c >= self.abort_at:
            self.tripped = True
        if self.temperature_c >= self.derate_at:
            self.derated = True
        elif self.temperature_c < self.derate_at - self.hysteresis:
            self.derated = False

    def current_factor(self) -> float:
        if self.tripped:
            return 0.0
        return self.derate_factor if self.derated else 1.0


@dataclass
class Meter:
    """Import/export energy meter at the EVSE (Wh, from the EVSE's point of view:
    ``charged`` = delivered to the EV, ``discharged`` = received from the EV)."""

    charged_wh: float = 0.0
    discharged_wh: float = 0.0

    def add(self, power_w: float, dt_s: float) -> None:
        wh = power_w * dt_s / 3600.0
        if wh >= 0:
            self.charged_wh += wh
        else:
            self.discharged_wh -= wh


def dec(x: float, places: int = 0) -> Decimal:
    """Float -> Decimal rounded to ``places`` decimals (stays inside a RationalNumber)."""
    return Decimal(str(round(x, places))) if places else Decimal(int(round(x)))


def energy_request(capacity_wh: float, soc: float, target_soc: int, min_soc_reserve: int) -> EnergyRequest:
    """The EV's energy needs from its state of charge: Target = to the target SOC, Maximum =
    to 100 %, Minimum = up to the reserve SOC (0 above it); V2X Maximum = Maximum, V2X Minimum =
    minus the energy above the reserve (what it may export)."""
    to_target = max(0.0, (target_soc - soc) * capacity_wh / 100.0)
    to_full = max(0.0, (100.0 - soc) * capacity_wh / 100.0)
    to_reserve = max(0.0, (min_soc_reserve - soc) * capacity_wh / 100.0)
    above_reserve = max(0.0, (soc - min_soc_reserve) * capacity_wh / 100.0)
    return EnergyRequest(
        target_wh=dec(to_target),
        max_wh=dec(to_full),
        min_wh=dec(to_reserve),
        departure_time=7200,
        min_soc=min_soc_reserve,
        target_soc=target_soc,
        max_v2x_wh=dec(to_full),
        min_v2x_wh=-dec(above_reserve),
    )
