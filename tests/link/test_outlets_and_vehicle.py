"""The vehicle's own outlets and the model fixes of issue 15.

* Bed outlets share 9.6 kW (AWD) / 2.4 kW (RWD); they are off while the truck exports (V2H
  through a real session) and whenever its port carries power; so a truck plugged into its own
  outlet's mobile connector never charges.
* The RWD trim never runs a BPT service, even when asked.
* In AC Scheduled mode the EVCC reports the power it really charges with as
  EVPresentActivePower, as in Dynamic mode.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from iso15118.session import ControlMode, EnergyService, EvccConfig
from iso15118.session.events import SendMessage
from iso15118.sim import make_ev
from iso15118.sim.basic import MobileConnector, run_basic_charging
from tests.session.helpers import pair, run


@pytest.mark.parametrize(("profile", "budget"), [("cybertruck-awd", 9600.0), ("cybertruck-rwd", 2400.0)])
def test_outlets_share_the_budget(profile: str, budget: float) -> None:
    t = make_ev(profile)
    assert t.outlet_draw(0.0, 20000.0) == budget
    assert t.outlet_draw(0.0, 1000.0) == 1000.0
    # several loads share the budget: a kettle, then a saw that gets what is left
    assert t.outlet_draw(1.0, 1800.0, "kettle") == min(1800.0, budget - 1000.0)
    left = budget - 1000.0 - min(1800.0, budget - 1000.0)
    assert t.outlet_draw(1.0, 5000.0, "saw") == min(5000.0, left)
    assert t.outlet_load_w == min(budget, 1000.0 + 1800.0 + 5000.0)
    t.port_open(2.0)  # the port carries power: every outlet load is cut
    assert t.outlet_draw(2.0, 100.0, "kettle") == 0.0 and t.outlet_load_w == 0.0


def test_the_truck_never_charges_itself() -> None:
    truck = make_ev("cybertruck-awd", soc=50)
    soc0 = truck.battery.soc
    r = run_basic_charging(MobileConnector(32.0, truck), truck, duration=30.0)
    assert r.energy_wh == 0.0 and r.peak_w == 0.0 and r.contactor_closed_at is None
    assert truck.battery.soc == soc0 and truck.energy_in_wh == 0.0
    assert truck.own_outlet_refused
    notes = [text for _t, text in r.log]
    assert "charge port in use: vehicle outlets off" in notes
    assert "charge port fed by our own outlets: charging refused" in notes
    # the same connector on another truck's outlet charges at once: the refusal is about the supply
    other = make_ev("cybertruck-awd", soc=80)
    r2 = run_basic_charging(MobileConnector(32.0, other), truck, duration=5.0)
    assert r2.peak_w == 7680.0 or truck.own_outlet_refused  # latched until unplugged ...
    truck.unplugged(5.0)
    r3 = run_basic_charging(MobileConnector(32.0, other), truck, duration=5.0)
    assert r3.peak_w == 7680.0 and truck.energy_in_wh > 0


def test_outlets_are_off_while_exporting_in_a_v2h_session() -> None:
    ev, charger, evcc, secc = pair("cybertruck-awd", "wall-connector", ev_kwargs={"soc": 80},
                                   evse_kwargs={"grid_outage": True},
                                   evcc_config=EvccConfig(service=EnergyService.AC_BPT, max_loops=6))
    seen: list[tuple[float, bool]] = []
    orig = ev.apply

    def spy(now, ctx, result):  # type: ignore[no-untyped-def]
        orig(now, ctx, result)
        seen.append((ev.power_w, ev.outlets_enabled))
        assert ev.outlet_draw(now, 1000.0) == (0.0 if not ev.outlets_enabled else 1000.0)

    ev.apply = spy  # type: ignore[method-assign]
    t = run(evcc, secc)
    assert t.ended("evcc") is not None and t.ended("evcc").ok  # type: ignore[union-attr]
    exporting = [on for p, on in seen if p < 0]
    assert exporting and not any(exporting), seen
    assert ev.outlets_enabled  # back on after the session


def test_rwd_never_runs_a_bpt_session() -> None:
    for svc in (EnergyService.AC_BPT, EnergyService.DC_BPT):
        ev, charger, evcc, secc = pair("cybertruck-rwd", "wall-connector" if svc is EnergyService.AC_BPT else "dc-bidi",
                                       evcc_config=EvccConfig(service=svc, max_loops=3))
        t = run(evcc, secc)
        end = t.ended("evcc")
        assert end is not None and not end.ok and "does not offer" in end.reason and svc.name in end.reason
        assert t.sent("evcc") == [], t.sent("evcc")  # refused before anything went out
    # unasked, it picks AC and never discharges
    ev, charger, evcc, secc = pair("cybertruck-rwd", "wall-connector", evcc_config=EvccConfig(max_loops=3))
    t = run(evcc, secc)
    assert evcc.service is EnergyService.AC and t.ended("evcc").ok  # type: ignore[union-attr]


def test_rwd_cli_refuses_with_a_clear_message() -> None:
    p = subprocess.run([sys.executable, "-m", "iso15118", "evcc", "--profile", "cybertruck-rwd", "--service", "AC_BPT",
                        "--no-tls", "--port", "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "cybertruck-rwd does not offer AC_BPT" in p.stderr and "refusing" in p.stderr


@pytest.mark.parametrize("mode", [ControlMode.SCHEDULED, ControlMode.DYNAMIC])
@pytest.mark.parametrize("service", [EnergyService.AC_BPT, EnergyService.AC])
def test_ac_present_active_power_is_what_flows(mode: ControlMode, service: EnergyService) -> None:
    """Every AC_ChargeLoopReq after the first carries the power the EV charged with in the
    previous loop (11.5 kW on the Wall Connector), in both control modes."""
    ev, charger, evcc, secc = pair("cybertruck-awd", "wall-connector", ev_kwargs={"soc": 40},
                                   evse_kwargs={"grid_outage": False},
                                   evcc_config=EvccConfig(service=service, control_mode=mode, max_loops=5))
    t = run(evcc, secc)
    assert t.ended("evcc").ok  # type: ignore[union-attr]
    reqs = [e.message for e in t.of("evcc", SendMessage) if e.name == "AC_ChargeLoopReq"]
    reported = [Decimal(r.control_mode.ev_present_active_power.value) * Decimal(10) ** r.control_mode.ev_present_active_power.exponent
                for r in reqs]
    assert len(reported) == 5 and all(p == Decimal(11500) for p in reported[1:]), reported
    assert ev.energy_in_wh > 0
