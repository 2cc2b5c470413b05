"""The board loop (PilotHardware <-> EvsePilot) on a simulated line, in real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from iso15118.link.hardware import LineHardware, run_evse_pilot
from iso15118.link.pilot import ActionKind, EvsePilot, PilotAction, SimulatedPilotLine


async def _until(cond: Callable[[], bool]) -> None:
    """Wait (generously: the machine may be busy) until the loop has reacted."""
    async with asyncio.timeout(10.0):
        while not cond():
            await asyncio.sleep(0.005)


def test_board_loop_plug_in_charge_unplug() -> None:
    async def main() -> list[tuple[float, PilotAction]]:
        line = SimulatedPilotLine(pp_ohms=680.0)  # a 20 A cable
        hw = LineHardware(line)
        seen: list[tuple[float, PilotAction]] = []
        stop = asyncio.Event()
        task = asyncio.create_task(run_evse_pilot(hw, EvsePilot(hlc=False, max_current=32.0), stop=stop,
                                                  on_action=lambda t, a: seen.append((t, a))))
        await asyncio.sleep(0.02)
        assert line.evse_duty is None  # X1 while nobody is there
        line.plugged = True
        await _until(lambda: line.evse_duty is not None)
        assert line.evse_duty == 33.3  # min(32 A, the cable's 20 A)
        assert not hw.relay  # B: nothing requested yet
        line.ev_s2 = True
        await _until(lambda: hw.relay)
        line.ev_s2 = False
        await _until(lambda: not hw.relay)
        line.plugged = False
        await _until(lambda: line.evse_duty is None)
        stop.set()
        await task
        return seen

    seen = asyncio.run(main())
    kinds = [a.kind for _t, a in seen]
    assert kinds.count(ActionKind.CONTACTOR) == 2 and ActionKind.PLUGGED in kinds and ActionKind.UNPLUGGED in kinds
    closed = next(t for t, a in seen if a.kind is ActionKind.CONTACTOR and a.on)
    opened = next(t for t, a in seen if a.kind is ActionKind.CONTACTOR and not a.on)
    assert opened > closed
