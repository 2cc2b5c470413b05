"""Running the EVSE pilot on a board: an asyncio loop between a :class:`PilotHardware` (what a
firmware team implements: read the pilot, set the duty, drive F, close the relay, read PP) and
the sans-IO :class:`~iso15118.link.pilot.EvsePilot`.

:class:`LineHardware` implements the same interface on a
:class:`~iso15118.link.pilot.SimulatedPilotLine`, so the loop that drives a board is the loop
the simulators and tests run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from iso15118.link.pilot import (
    NOMINAL_LEVEL,
    ActionKind,
    EvsePilot,
    PilotAction,
    PilotHardware,
    SimulatedPilotLine,
    cp_state_from_voltage,
)

__all__ = ["LineHardware", "apply_to_hardware", "run_evse_pilot"]


class LineHardware:
    """:class:`PilotHardware` on a simulated line (the EVSE's view of it)."""

    def __init__(self, line: SimulatedPilotLine) -> None:
        self.line = line
        self.relay = False

    def read_cp_high(self) -> float:
        return NOMINAL_LEVEL[self.line.cp_state()]

    def set_duty(self, duty: float | None) -> None:
        self.line.evse_duty, self.line.evse_f = duty, False

    def set_state_f(self) -> None:
        self.line.evse_f, self.line.evse_duty = True, None

    def set_relay(self, closed: bool) -> None:
        self.relay = closed

    def read_pp_ohms(self) -> float | None:
        return self.line.pp_ohms if self.line.plugged else None


def apply_to_hardware(hw: PilotHardware, actions: list[PilotAction]) -> None:
    for a in actions:
        if a.kind is ActionKind.SET_DUTY:
            hw.set_duty(a.duty)
        elif a.kind is ActionKind.SET_STATE_F:
            hw.set_state_f()
        elif a.kind is ActionKind.CONTACTOR:
            hw.set_relay(a.on)


async def run_evse_pilot(
    hw: PilotHardware,
    pilot: EvsePilot,
    *,
    period: float = 0.01,
    on_action: Callable[[float, PilotAction], None] | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Sample the pilot every ``period`` seconds (10 ms: well inside the 100 ms the EVSE has to
    open on C -> B) and apply what the pilot logic decides, until ``stop`` is set."""
    stop = stop or asyncio.Event()
    apply_to_hardware(hw, pilot.start(clock()))
    while not stop.is_set():
        now = clock()
        state = cp_state_from_voltage(hw.read_cp_high())
        actions = pilot.measure(state, now, hw.read_pp_ohms()) + pilot.handle_timer(now)
        apply_to_hardware(hw, actions)
        if on_action is not None:
            for a in actions:
                on_action(now, a)
        try:
            async with asyncio.timeout(period):
                await stop.wait()
        except TimeoutError:
            pass
