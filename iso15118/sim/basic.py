"""Basic charging (IEC 61851-1 / SAE J1772, no high-level communication), simulated in
virtual time: an EVSE and a vehicle joined by a :class:`~iso15118.link.pilot.SimulatedPilotLine`.

The seed's vehicle-to-vehicle charge: a **mobile connector** plugged into the supplying
truck's 240 V bed outlet is a J1772 EVSE; it offers min(its rating, the outlet budget) -- 32 A
(duty 53.3 %, 7.68 kW) from an AWD truck (9.6 kW outlets), 10 A from an RWD truck (2.4 kW).
It has power only while the supplying truck's outlets are on.

The receiving vehicle closes S2 when the duty allows current; its charge port then carries
power, so *its* outlets switch off (:meth:`~iso15118.sim.ev.SimEV.port_open`).  Plugged into
its own outlet's mobile connector, that removes the connector's supply (pilot 0 V, state E):
the truck sees its port supply vanish as its outlets went off, concludes it is feeding itself
and refuses that supply (:meth:`~iso15118.sim.ev.SimEV.port_supply_lost`): charging never
starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iso15118.link.pilot import ActionKind, CpState, EvPilot, EvsePilot, PilotAction, SimulatedPilotLine, duty_for_current
from iso15118.sim.ev import SimEV

__all__ = ["BasicChargeResult", "MobileConnector", "run_basic_charging"]

VOLTS = 240.0


@dataclass
class MobileConnector:
    """A portable J1772 EVSE on a 240 V outlet (of ``supply``, a truck; None = the grid)."""

    rating_a: float = 32.0
    supply: SimEV | None = None

    def offered_amps(self) -> float:
        if self.supply is None:
            return self.rating_a
        return min(self.rating_a, self.supply.spec.outlet_budget_w / VOLTS)

    def powered(self) -> bool:
        return self.supply is None or self.supply.outlets_enabled


@dataclass
class BasicChargeResult:
    energy_wh: float = 0.0
    peak_w: float = 0.0
    duty: float | None = None
    amps: float = 0.0
    log: list[tuple[float, str]] = field(default_factory=list)
    contactor_closed_at: float | None = None
    power_samples: list[tuple[float, float]] = field(default_factory=list)


def run_basic_charging(
    connector: MobileConnector,
    ev: SimEV,
    *,
    duration: float = 60.0,
    step: float = 0.05,
    change_current_at: tuple[float, float] | None = None,
) -> BasicChargeResult:
    """Plug ``ev`` into ``connector`` at t = 0 and run ``duration`` seconds (virtual time).

    ``change_current_at = (t, amps)``: the EVSE lowers / raises its offer mid-session."""
    res = BasicChargeResult()
    line = SimulatedPilotLine(plugged=False, evse_powered=connector.powered())
    evse = EvsePilot(hlc=False, max_current=connector.offered_amps())
    car = EvPilot(hlc=False, max_current=ev.spec.ac_max_power / VOLTS)
    line.apply_evse(evse.start(0.0))
    line.plugged = True
    t = 0.0
    self_check_until: float | None = None

    def note(text: str) -> None:
        res.log.append((t, text))

    def ev_actions(actions: list[PilotAction]) -> None:
        nonlocal self_check_until
        line.apply_ev(actions)
        for a in actions:
            if a.kind is ActionKind.S2 and a.on:
                ev.port_open(t)  # the port is about to carry power: outlets off
                self_check_until = t + 0.2
            elif a.kind is ActionKind.S2:
                ev.port_closed(t)

    while t <= duration:
        if change_current_at is not None and t >= change_current_at[0] and evse.max_current != change_current_at[1]:
            line.apply_evse(evse.set_max_current(change_current_at[1], t))
            note(f"EVSE offers {change_current_at[1]:g} A")
        line.evse_powered = connector.powered()
        line.apply_evse(evse.measure(line.cp_state(), t) + evse.handle_timer(t))
        connected, duty, level = line.ev_view()
        if ev.own_outlet_refused:
            actions = car.measure(connected, None, t)  # treats the supply as "no charging"
        else:
            actions = car.measure(connected, duty, t, level=level if level in (CpState.E, CpState.F) else None)
        ev_actions(actions)
        if self_check_until is not None and not line.evse_powered and line.ev_s2 is False and t <= self_check_until:
            ev.port_supply_lost(t)
        line.evse_powered = connector.powered()
        line.apply_evse(evse.measure(line.cp_state(), t))
        flowing = evse.contactor and line.evse_powered and line.ev_s2
        amps = min(car.allowed, evse.offered_current()) if flowing else 0.0
        watts = amps * VOLTS
        if flowing and res.contactor_closed_at is None:
            res.contactor_closed_at = t
        if connector.supply is not None and watts > 0:
            watts = connector.supply.outlet_draw(t, watts)
            connector.supply.outlet_energy(watts * step / 3600.0)
        if watts > 0:
            ev.battery.add_energy(watts * step / 3600.0)
            ev.energy_in_wh += watts * step / 3600.0
        res.energy_wh += watts * step / 3600.0
        res.peak_w = max(res.peak_w, watts)
        res.power_samples.append((t, watts))
        t = round(t + step, 6)
    res.duty = evse.duty
    res.amps = car.allowed
    res.log += evse.log + car.log + ev.log
    res.log.sort(key=lambda x: x[0])
    return res


__all__ += ["duty_for_current"]
