"""Simulator scenarios over the in-memory pair: V2H, minimum-SOC reserve, adapter thermals."""

from __future__ import annotations

import pytest

from iso15118.session import ControlMode, EnergyService, EvccConfig, PowerChanged, State
from iso15118.sim.physics import AdapterThermal
from tests.session.helpers import pair, run


def test_wall_connector_charges_at_48_amps_and_exports_on_grid_outage() -> None:
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        ev_kwargs={"soc": 70},
        evse_kwargs={"home_load_w": 11520.0},
        evcc_config=EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=40),
    )
    tr = run(evcc, secc, hooks=[(4.0, lambda t: charger.set_grid_outage(t))])
    assert evcc.ok and secc.ok
    p = tr.of("secc", PowerChanged)
    assert max(e.power_w for e in p) == 11500  # EV limit 11.5 kW (48 A at 240 V)
    assert float(max(e.current_a for e in p)) == pytest.approx(47.9, abs=0.1)
    assert min(e.power_w for e in p) == -11500
    # the home moved onto the vehicle within one second of the outage
    assert charger.v2h_switch_time is not None and charger.v2h_switch_time < 1.0
    assert charger.meter.discharged_wh > 0 and ev.energy_out_wh > 0
    # the truck disabled its own outlets while exporting and re-enabled them after
    notes = [text for _, text in ev.log]
    assert "exporting: vehicle outlets disabled" in notes
    assert ev.outlets_enabled


def test_dc_bidi_exports_11_5_kw() -> None:
    ev, charger, evcc, secc = pair(
        evse_profile="dc-bidi",
        evse_kwargs={"home_load_w": 20000.0},
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=20),
    )
    tr = run(evcc, secc, hooks=[(3.0, lambda t: charger.set_grid_outage(t))])
    assert evcc.ok and secc.ok
    p = tr.of("secc", PowerChanged)
    assert min(e.power_w for e in p) == -11500
    assert min(e.current_a for e in p) < 0  # discharge current is negative (sign convention)
    assert 700 < max(e.voltage_v for e in p) < 920


@pytest.mark.parametrize("policy", ["continue", "stop"])
def test_minimum_soc_reserve_stops_export(policy: str) -> None:
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        ev_kwargs={"soc": 21.0, "min_soc_reserve": 20, "on_reserve": policy, "speed": 60.0},
        evse_kwargs={"speed": 60.0},
        evcc_config=EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=200),
    )
    tr = run(evcc, secc, hooks=[(1.0, lambda t: charger.set_grid_outage(t))])
    # never strands the vehicle: a clean end either way
    assert evcc.ok and secc.ok and evcc.state is State.ENDED
    assert ev.battery.soc >= 19.999
    assert ev.has_exported
    # exported no more than what was above the reserve (1 % of 123 kWh plus what was charged
    # before the outage), by the EV's account and by the charger's meter
    available = 1230.0 + ev.energy_in_wh
    assert ev.energy_out_wh <= available + 1.0
    assert charger.meter.discharged_wh <= available * 1.02
    powers = [e.power_w for e in tr.of("evcc", PowerChanged)]
    i_last_export = max(i for i, p in enumerate(powers) if p < 0)
    if policy == "continue":
        assert evcc.loops == 200  # the session went on without export
        assert all(p == 0 for p in powers[i_last_export + 1 :])
        assert any("export refused" in text for _, text in ev.log)
    else:
        assert evcc.loops < 200  # the EV ended the session itself at the reserve
        assert any("ending session" in text for _, text in ev.log)


def test_adapter_derates_then_recovers() -> None:
    thermal = AdapterThermal(ambient_c=40.0, heat_coeff=0.02, tau_s=60.0)  # steady 86 C at 48 A
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        ev_kwargs={"thermal": thermal, "speed": 60.0},
        evcc_config=EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=80),
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    powers = [e.power_w for e in tr.of("secc", PowerChanged)]
    assert max(powers) == 11500
    assert 5750 in powers  # derated to half current mid-session
    assert any("derating" in text for _, text in ev.log)
    assert not thermal.tripped


def test_adapter_over_temperature_stops_power_safely() -> None:
    thermal = AdapterThermal(ambient_c=60.0, heat_coeff=0.05, tau_s=30.0, derate_factor=0.9)  # runs away
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        ev_kwargs={"thermal": thermal, "speed": 60.0},
        evse_kwargs={"speed": 60.0},
        evcc_config=EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=400),
    )
    tr = run(evcc, secc)
    assert thermal.tripped and ev.aborted
    # power stopped by PowerDelivery(Stop), then a clean SessionStop: no FAILED anywhere
    assert evcc.ok and secc.ok
    assert tr.sent("evcc")[-2:] == ["PowerDeliveryReq", "SessionStopReq"]
    assert evcc.loops < 400
    assert not charger.contactors_closed and ev.power_w == 0
    # energy accounted on both sides
    assert ev.energy_in_wh > 0
    assert charger.meter.charged_wh == pytest.approx(ev.energy_in_wh, rel=0.05)


def test_v2v_stops_at_the_source_reserve() -> None:
    ev, charger, evcc, secc = pair(
        "cybertruck-rwd",
        "v2v",
        ev_kwargs={"speed": 600.0},
        evse_kwargs={"speed": 600.0, "source_soc": 21.0, "source_reserve": 20.0},
        evcc_config=EvccConfig(control_mode=ControlMode.DYNAMIC, max_loops=60),
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    powers = [e.power_w for e in tr.of("secc", PowerChanged)]
    assert powers[0] == 7680 and powers[-1] == 0
    assert charger.source is not None and charger.source.soc >= 19.5


def test_cybertruck_with_and_without_a_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same profile authorizes with PnC when it holds a contract, else with EIM; V2H
    export works either way (the SECC side is a TLS session here, emulated in memory)."""
    from iso15118.security.pki import create_pki, load_pki
    from iso15118.session import EvccSession, SeccConfig, SeccSession
    from iso15118.session.pnc import contract_from_pki, secc_pnc_from_pki
    from iso15118.sim import make_ev, make_evse
    from tests.session.helpers import clock

    pki = load_pki(create_pki(tmp_path / "pki", "ed448").root)
    for contract, expected in ((contract_from_pki(pki), "PnC"), (None, "EIM")):
        ev = make_ev("cybertruck-awd", soc=70, contract=contract)
        charger = make_evse("wall-connector", grid_outage=True)
        cfg = EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=8)
        evcc = EvccSession(ev, cfg, clock=clock, tls=True)
        scfg = SeccConfig(authorization_services=("PnC", "EIM"), pnc=secc_pnc_from_pki(pki))
        secc = SeccSession(charger, scfg, clock=clock, tls=True)
        run(evcc, secc)
        assert evcc.ok and secc.ok and evcc.authorization == secc.authorization == expected
        assert charger.meter.discharged_wh > 0
        assert "contract=" not in repr(ev) and "key" not in repr(ev).lower()
