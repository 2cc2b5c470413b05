"""A deliberate DC defect (fault seeding) for the physical-limits cases
(``conformance/cases/dc_physical.py``), kept apart from :mod:`conformance.faults`.

* :class:`EchoEVVoltage` -- a DC charger that is not physical (the simulator before its clamp):
  it echoes the EV's claimed present voltage in the charge loop (1234.5 V against a 920 V
  maximum) and follows a negative pre-charge target.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class EchoEVVoltage:
    """Wraps a simulated DC charger (delegates everything else to it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def pre_charge(self, now: float, target_voltage: Any) -> Any:
        self.inner.output_voltage = float(target_voltage)
        return target_voltage

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        r = self.inner.charge_loop(now, ctx, status)
        return dataclasses.replace(r, present_voltage=status.present_voltage)
