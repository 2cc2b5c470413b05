"""Control pilot and proximity pilot (IEC 61851-1): tables, both state machines, and basic
charging -- the V2V charge through a mobile connector on the truck's 240 V bed outlet."""

from __future__ import annotations

import pytest

from iso15118.link.pilot import (
    ActionKind,
    CpState,
    DutyKind,
    EvPilot,
    EvsePilot,
    PilotError,
    SimulatedPilotLine,
    cable_rating,
    cp_state_from_voltage,
    duty_for_current,
    read_duty,
)
from iso15118.link.timers import C_SEQU_RETRY, PilotTimers
from iso15118.sim import make_ev
from iso15118.sim.basic import MobileConnector, run_basic_charging


@pytest.mark.parametrize(("amps", "duty"), [(6, 10.0), (16, 26.7), (32, 53.3), (48, 80.0), (51, 85.0), (63, 89.2), (80, 96.0)])
def test_duty_for_current_and_back(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == duty
    r = read_duty(duty)
    assert r.kind is DutyKind.CURRENT and abs(r.amps - amps) < 0.1


def test_duty_edges() -> None:
    assert duty_for_current(52.0) == duty_for_current(51.0)  # the gap in the table clamps to 51 A
    assert duty_for_current(100) == 96.0
    with pytest.raises(PilotError):
        duty_for_current(5.9)
    assert read_duty(5.0).kind is DutyKind.HLC
    assert read_duty(3.0).kind is DutyKind.HLC and read_duty(7.0).kind is DutyKind.HLC  # our decoding window
    assert read_duty(2.9).kind is DutyKind.ERROR and read_duty(7.5).kind is DutyKind.ERROR
    assert read_duty(9.0).amps == 6.0
    assert read_duty(None).kind is DutyKind.NO_CHARGING and read_duty(100.0).kind is DutyKind.NO_CHARGING
    assert read_duty(98.0).kind is DutyKind.ERROR


@pytest.mark.parametrize(("volts", "state"), [(12, CpState.A), (9, CpState.B), (6, CpState.C), (3, CpState.D),
                                              (0, CpState.E), (-12, CpState.F), (10.0, CpState.B), (4.8, CpState.C)])
def test_cp_levels(volts: float, state: CpState) -> None:
    assert cp_state_from_voltage(volts) is state


@pytest.mark.parametrize(("ohms", "amps"), [(1500, 13), (680, 20), (220, 32), (100, 63), (1000, 13), (350, 20),
                                            (150, 32), (4000, 13), (70, 63)])
def test_proximity_pilot(ohms: float, amps: int) -> None:
    assert cable_rating(ohms) == amps


@pytest.mark.parametrize("ohms", [59, 4501])
def test_proximity_pilot_out_of_range(ohms: float) -> None:
    with pytest.raises(PilotError):
        cable_rating(ohms)


def test_cable_limits_the_offer() -> None:
    evse = EvsePilot(hlc=False, max_current=48.0)
    evse.start(0)
    acts = evse.measure(CpState.B, 1.0, pp_ohms=680)  # 20 A cable
    assert evse.cable_amps == 20 and evse.duty == duty_for_current(20)
    assert any(a.kind is ActionKind.SET_DUTY and a.duty == 33.3 for a in acts)


def _pair(hlc: bool) -> tuple[SimulatedPilotLine, EvsePilot, EvPilot]:
    line, evse, ev = SimulatedPilotLine(), EvsePilot(hlc=hlc, max_current=32.0), EvPilot(hlc=hlc)
    line.apply_evse(evse.start(0.0))
    return line, evse, ev


def _step(line: SimulatedPilotLine, evse: EvsePilot, ev: EvPilot, t: float) -> list[ActionKind]:
    a = evse.measure(line.cp_state(), t) + evse.handle_timer(t)
    line.apply_evse(a)
    c, d, lvl = line.ev_view()
    b = ev.measure(c, d, t, level=lvl if lvl in (CpState.E, CpState.F) else None)
    line.apply_ev(b)
    a2 = evse.measure(line.cp_state(), t)
    line.apply_evse(a2)
    return [x.kind for x in a + b + a2]


def test_hlc_plug_in_flow() -> None:
    """B -> 5 % -> (SLAC, session) -> C only when the session starts power -> B -> A."""
    line, evse, ev = _pair(hlc=True)
    line.plugged = True
    kinds = _step(line, evse, ev, 1.0)
    assert evse.duty == 5.0 and ActionKind.START_SLAC in kinds and ev.slac_started
    assert not line.ev_s2 and not evse.contactor  # 5 % alone never allows power
    evse.slac_result(True, 2.0)
    line.apply_ev(ev.power_ready(True, 3.0))  # PowerDelivery Start on the EV side
    line.apply_evse(evse.power_allowed(True, 3.0))
    _step(line, evse, ev, 3.0)
    assert line.cp_state() is CpState.C and evse.contactor
    line.apply_ev(ev.power_ready(False, 4.0))  # stop: S2 open -> B -> contactor opens at once
    _step(line, evse, ev, 4.0)
    assert line.cp_state() is CpState.B and not evse.contactor
    line.plugged = False
    kinds = _step(line, evse, ev, 5.0)
    assert ActionKind.UNPLUGGED in kinds and evse.duty is None and evse.phase.value == "idle"


def test_slac_failure_e_f_retry_then_x1() -> None:
    timers = PilotTimers()
    line, evse, ev = _pair(hlc=True)
    line.plugged = True
    _step(line, evse, ev, 0.0)
    t = 0.0
    for i in range(C_SEQU_RETRY):
        acts = evse.slac_result(False, t)
        line.apply_evse(acts)
        assert line.cp_state() is CpState.F and evse.next_deadline() == t + timers.t_step_ef
        t += timers.t_step_ef
        line.apply_evse(evse.handle_timer(t))
        assert evse.duty == 5.0, i
    line.apply_evse(evse.slac_result(False, t))
    assert evse.duty is None and evse.phase.value == "unavailable"


def test_ev_restarts_slac_after_the_evse_e_f_step() -> None:
    ev = EvPilot(hlc=True)
    kinds = [a.kind for a in ev.measure(True, 5.0, 0.0)]
    assert ActionKind.START_SLAC in kinds
    kinds = [a.kind for a in ev.measure(True, None, 1.0, level=CpState.F)]
    assert ActionKind.STOP_SLAC in kinds and not ev.s2
    kinds = [a.kind for a in ev.measure(True, 5.0, 5.0)]
    assert ActionKind.START_SLAC in kinds


def test_pwm_off_while_in_c_opens_after_6_s() -> None:
    line, evse, ev = _pair(hlc=False)
    line.plugged = True
    _step(line, evse, ev, 0.0)
    assert evse.contactor
    ev.wants_energy = True
    line.apply_evse(evse.stop_pwm(10.0))
    line.ev_s2 = True  # a misbehaving EV that stays in C
    evse.measure(CpState.C, 10.0)
    assert evse.contactor and evse.next_deadline() == 16.0
    evse.handle_timer(15.9)
    assert evse.contactor
    evse.handle_timer(16.0)
    assert not evse.contactor


def test_basic_v2v_32_amps_from_the_awd_bed_outlet() -> None:
    """J1772 basic charging at 32 A (duty 53.3 %), 7.68 kW, fed by the AWD truck's outlets."""
    donor, receiver = make_ev("cybertruck-awd", soc=80), make_ev("cybertruck-awd", soc=30)
    r = run_basic_charging(MobileConnector(32.0, donor), receiver, duration=60.0)
    assert r.duty == 53.3 and r.amps == 32.0
    assert r.peak_w == 7680.0
    assert r.contactor_closed_at is not None and r.contactor_closed_at < 3.0  # within Table A.6's 3 s
    assert abs(r.energy_wh - 7680.0 * 60 / 3600) < 7680.0 * 0.1 / 3600 + 1e-6
    assert abs(receiver.energy_in_wh - donor.energy_out_wh) < 1e-6 and donor.energy_out_wh > 0
    assert donor.outlets_enabled and not receiver.outlets_enabled  # the receiver's port is in use


def test_basic_v2v_from_the_rwd_outlets_is_limited_to_2_4_kw() -> None:
    donor, receiver = make_ev("cybertruck-rwd", soc=80), make_ev("cybertruck-awd", soc=30)
    r = run_basic_charging(MobileConnector(32.0, donor), receiver, duration=10.0)
    assert r.duty == duty_for_current(10.0) == 16.7 and r.peak_w == 2400.0


def test_duty_change_mid_session_is_followed() -> None:
    donor, receiver = make_ev("cybertruck-awd", soc=80), make_ev("cybertruck-awd", soc=30)
    r = run_basic_charging(MobileConnector(32.0, donor), receiver, duration=20.0, change_current_at=(10.0, 16.0))
    before = [w for t, w in r.power_samples if 1.0 < t < 10.0]
    after = [w for t, w in r.power_samples if t > 10.0 + PilotTimers().t_ev_duty_follow]
    assert set(before) == {7680.0} and set(after) == {16 * 240.0} and r.duty == 26.7


def test_scaling_touches_only_waiting_windows() -> None:
    from dataclasses import asdict

    from iso15118.link.timers import SlacTimers

    base, fast = asdict(SlacTimers()), asdict(SlacTimers().scaled(0.1))
    changed = {k for k in base if base[k] != fast[k]}
    assert changed == {"tt_evse_slac_init", "tt_evse_match_session", "tt_match_join"}
    assert SlacTimers().time_out_field == 6
    pbase, pfast = asdict(PilotTimers()), asdict(PilotTimers().scaled(0.5))
    assert {k for k in pbase if pbase[k] != pfast[k]} == {"t_step_ef", "t_step_x1"}


def test_state_d_needs_ventilation() -> None:
    for vent in (False, True):
        evse = EvsePilot(hlc=False, max_current=32.0, ventilation=vent)
        evse.start(0.0)
        evse.measure(CpState.B, 1.0)
        evse.measure(CpState.D, 2.0)
        assert evse.contactor is vent
