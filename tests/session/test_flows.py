"""Complete sessions: the sans-IO EVCC against the sans-IO SECC in memory, fake clock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from iso15118.session import (
    ControlMode,
    EnergyService,
    EvccConfig,
    EvccSession,
    NotificationReceived,
    PowerChanged,
    SeccConfig,
    SeccSession,
    State,
)
from iso15118.session.events import SessionEnded
from tests.session.helpers import clock, pair, run

CASES = [
    (EnergyService.AC, "wall-connector"),
    (EnergyService.DC, "dc-bidi"),
    (EnergyService.AC_BPT, "wall-connector"),
    (EnergyService.DC_BPT, "dc-bidi"),
]


@pytest.mark.parametrize("mode", [ControlMode.SCHEDULED, ControlMode.DYNAMIC], ids=lambda m: m.name)
@pytest.mark.parametrize(("service", "evse"), CASES, ids=[c[0].name for c in CASES])
def test_every_service_and_control_mode(service: EnergyService, evse: str, mode: ControlMode) -> None:
    ev, charger, evcc, secc = pair(evse_profile=evse, evcc_config=EvccConfig(service=service, control_mode=mode, max_loops=4))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert evcc.state is State.ENDED and secc.state is State.ENDED
    assert secc.service is service and secc.control_mode is mode
    sent = tr.sent("evcc")
    assert sent[0] == "supportedAppProtocolReq" and sent[-1] == "SessionStopReq"
    family = "DC" if service in (EnergyService.DC, EnergyService.DC_BPT) else "AC"
    assert sent.count(f"{family}_ChargeLoopReq") == 4
    assert sent.count(f"{family}_ChargeParameterDiscoveryReq") == 1
    if family == "DC":
        assert "DC_CableCheckReq" in sent and "DC_PreChargeReq" in sent and "DC_WeldingDetectionReq" in sent
    else:
        assert not any(s.startswith("DC_") for s in sent)
    assert tr.sent("secc") == [s[:-3] + "Res" for s in sent]
    # power flowed into the EV and both sides metered it
    powers = [e.power_w for e in tr.of("secc", PowerChanged)]
    assert powers and max(powers) > 0
    assert ev.energy_in_wh > 0 and charger.meter.charged_wh > 0
    assert charger.meter.discharged_wh == 0


def test_rwd_against_wall_connector_selects_ac_and_never_discharges() -> None:
    ev, charger, evcc, secc = pair(
        "cybertruck-rwd", "wall-connector", evse_kwargs={"grid_outage": False}, evcc_config=EvccConfig(max_loops=3)
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    assert evcc.service is EnergyService.AC and secc.service is EnergyService.AC
    # grid outage: a non-BPT session gets no V2H
    ev, charger, evcc, secc = pair("cybertruck-rwd", "wall-connector", evcc_config=EvccConfig(max_loops=8))
    tr = run(evcc, secc, hooks=[(8.0, lambda t: charger.set_grid_outage(t))])
    assert evcc.ok and secc.ok
    assert all(e.power_w >= 0 for e in tr.of("secc", PowerChanged))
    assert charger.meter.discharged_wh == 0 and charger.v2h_at is None


def test_v2v_profile_supplies_32_amps() -> None:
    ev, charger, evcc, secc = pair("cybertruck-rwd", "v2v", evcc_config=EvccConfig(max_loops=3, control_mode=ControlMode.DYNAMIC))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok and secc.service is EnergyService.AC
    p = [e for e in tr.of("secc", PowerChanged)]
    assert max(e.power_w for e in p) == Decimal(7680)
    assert max(e.current_a for e in p) == Decimal(32)


def test_pause_and_resume_with_the_old_session_id() -> None:
    config = SeccConfig()
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        ev_kwargs={"pause_after": 1.0},
        evcc_config=EvccConfig(service=EnergyService.AC_BPT),
        secc_config=config,
    )
    tr = run(evcc, secc)
    assert evcc.state is State.PAUSED and secc.state is State.PAUSED
    assert evcc.ok and secc.ok
    old_id = evcc.paused_session_id
    assert old_id == secc.session_id and len(config.store) == 1
    assert tr.ended("evcc").paused_session_id == old_id
    assert "PowerDeliveryReq" in tr.sent("evcc")[-3:]
    # resume: a new connection, same SECC store
    ev.pause_after = None
    evcc2 = EvccSession(ev, EvccConfig(service=EnergyService.AC_BPT, resume_session_id=old_id, max_loops=2), clock=clock)
    secc2 = SeccSession(charger, config, now=100.0, clock=clock)
    run(evcc2, secc2, start=100.0)
    assert evcc2.resumed and evcc2.session_id == old_id and secc2.session_id == old_id
    assert evcc2.ok and secc2.ok and len(config.store) == 0


def test_resume_straight_to_charge_parameter_discovery() -> None:
    config = SeccConfig()
    ev, charger, evcc, secc = pair(ev_kwargs={"pause_after": 0.5}, evcc_config=EvccConfig(service=EnergyService.DC_BPT), secc_config=config)
    run(evcc, secc)
    old = evcc.paused_session_id
    assert old is not None
    ev.pause_after = None
    cfg = EvccConfig(service=EnergyService.DC_BPT, resume_session_id=old, resume_via_cpd=True, max_loops=2)
    evcc2 = EvccSession(ev, cfg, clock=clock)
    evcc2.service = EnergyService.DC_BPT
    evcc2.parameter_set = evcc.parameter_set
    secc2 = SeccSession(charger, config, now=50.0, clock=clock)
    tr = run(evcc2, secc2, start=50.0)
    assert evcc2.ok and secc2.ok
    assert tr.sent("evcc")[2] == "DC_ChargeParameterDiscoveryReq"


def test_unknown_paused_id_gets_a_new_session() -> None:
    ev, charger, evcc, secc = pair(evcc_config=EvccConfig(resume_session_id=b"\x01" * 8, max_loops=1))
    run(evcc, secc)
    assert not evcc.resumed and evcc.session_id != b"\x01" * 8 and evcc.ok


def test_ev_schedule_renegotiation() -> None:
    ev, charger, evcc, secc = pair(
        ev_kwargs={"renegotiate_after": 1.0},
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, control_mode=ControlMode.SCHEDULED, max_loops=10),
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    sent = tr.sent("evcc")
    assert sent.count("ScheduleExchangeReq") == 2
    i = sent.index("ScheduleExchangeReq", sent.index("DC_ChargeLoopReq"))
    assert sent[i - 1] == "PowerDeliveryReq" and sent[i + 1] == "PowerDeliveryReq"
    assert evcc.schedule is not None and evcc.schedule.tuple_id == 2


def test_evse_schedule_renegotiation_on_grid_outage_scheduled_mode() -> None:
    ev, charger, evcc, secc = pair(
        evse_profile="wall-connector",
        evcc_config=EvccConfig(service=EnergyService.AC_BPT, control_mode=ControlMode.SCHEDULED, max_loops=20),
    )

    def outage(t: float) -> None:
        charger.set_grid_outage(t)
        charger.notify("ScheduleRenegotiation")

    tr = run(evcc, secc, hooks=[(2.0, outage)])
    assert evcc.ok and secc.ok
    assert [n.notification for n in tr.of("evcc", NotificationReceived)] == ["ScheduleRenegotiation"]
    assert charger.meter.discharged_wh > 0
    assert min(e.power_w for e in tr.of("secc", PowerChanged)) < 0


def test_service_renegotiation() -> None:
    ev, charger, evcc, secc = pair(evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=12))
    tr = run(evcc, secc, hooks=[(2.0, lambda t: secc.notify("ServiceRenegotiation"))])
    assert evcc.ok and secc.ok
    sent = tr.sent("evcc")
    assert sent.count("ServiceDiscoveryReq") == 2 and sent.count("SessionStopReq") == 2
    first_stop = sent.index("SessionStopReq")
    assert sent[first_stop + 1] == "ServiceDiscoveryReq"
    assert tr.sent("secc")[first_stop] == "SessionStopRes"


def test_service_renegotiation_refused_by_secc() -> None:
    ev, charger, evcc, secc = pair(evcc_config=EvccConfig(max_loops=20), secc_config=SeccConfig(service_renegotiation_supported=False))
    tr = run(evcc, secc, hooks=[(2.0, lambda t: secc.notify("ServiceRenegotiation"))])
    # a SECC without renegotiation support never sends the notification
    assert evcc.ok and secc.ok and not tr.of("evcc", NotificationReceived)


@pytest.mark.parametrize("kind", ["Terminate", "Pause"])
def test_evse_notification_is_honoured(kind: str) -> None:
    ev, charger, evcc, secc = pair(evse_profile="wall-connector", evcc_config=EvccConfig(service=EnergyService.AC_BPT))
    tr = run(evcc, secc, hooks=[(5.0, lambda t: charger.notify(kind, 0))])
    assert evcc.ok and secc.ok
    assert [n.notification for n in tr.of("evcc", NotificationReceived)] == [kind]
    assert evcc.state is (State.PAUSED if kind == "Pause" else State.ENDED)
    assert tr.sent("evcc")[-2:] == ["PowerDeliveryReq", "SessionStopReq"]
    assert tr.end_time < 10


def test_standby_and_exit_standby() -> None:
    ev, charger, evcc, secc = pair(
        ev_kwargs={"standby_between": (1.0, 3.0)},
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=20),
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    states = [e.new for e in tr.of("evcc") if type(e).__name__ == "StateChanged"]
    assert State.STANDBY in states
    i = states.index(State.STANDBY)
    assert State.CHARGING in states[i:]
    standby_powers = [e.power_w for t, s, e in tr.entries if s == "secc" and isinstance(e, PowerChanged)]
    assert 0 in standby_powers


def test_standby_refused_keeps_charging() -> None:
    ev, charger, evcc, secc = pair(
        ev_kwargs={"standby_between": (1.0, 3.0)},
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=10),
        secc_config=SeccConfig(standby_allowed=False),
    )
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    assert State.STANDBY not in [e.new for e in tr.of("evcc") if type(e).__name__ == "StateChanged"]


def test_authorization_ongoing_then_finished() -> None:
    ev, charger, evcc, secc = pair(evse_kwargs={"authorization_delay": 3.0}, evcc_config=EvccConfig(max_loops=1))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok
    assert tr.sent("evcc").count("AuthorizationReq") > 10


def test_eim_rejected_ends_cleanly() -> None:
    ev, charger, evcc, secc = pair(evse_kwargs={"authorize_ok": False})
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok  # a clean SessionStop, no FAILED code
    assert tr.sent("evcc")[-1] == "SessionStopReq" and "ServiceDiscoveryReq" not in tr.sent("evcc")
    assert "authorization refused" in (evcc._stop_explanation or "")


def test_schedule_exchange_ongoing() -> None:
    ev, charger, evcc, secc = pair(evse_kwargs={"schedule_delay": 1.0}, evcc_config=EvccConfig(max_loops=1, control_mode=ControlMode.SCHEDULED))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok and tr.sent("evcc").count("ScheduleExchangeReq") > 3


def test_many_loops_session_ended_events_once() -> None:
    ev, charger, evcc, secc = pair(evcc_config=EvccConfig(max_loops=40))
    tr = run(evcc, secc)
    assert len(tr.of("evcc", SessionEnded)) == 1 and len(tr.of("secc", SessionEnded)) == 1
    assert evcc.loops == 40


def test_exit_standby_notification() -> None:
    ev, charger, evcc, secc = pair(
        ev_kwargs={"standby_between": (0.5, 1000.0)},
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=30),
    )
    tr = run(evcc, secc, hooks=[(3.0, lambda t: secc.notify("ExitStandby"))])
    assert evcc.ok and secc.ok
    notes = [n.notification for n in tr.of("evcc", NotificationReceived)]
    assert notes == ["ExitStandby"]
    # the EV answered with PowerDelivery(Start)
    i = next(i for i, (t, s, e) in enumerate(tr.entries) if s == "evcc" and isinstance(e, NotificationReceived))
    nxt = next(e for t, s, e in tr.entries[i:] if s == "evcc" and type(e).__name__ == "SendMessage")
    assert nxt.name == "PowerDeliveryReq" and nxt.message.charge_progress.value == "Start"


@pytest.mark.parametrize("voltage_falls", [True, False])
def test_welding_detection_ends_when_the_output_falls_or_after_its_limit(voltage_falls: bool) -> None:
    """DC welding detection repeats until the charger reports under 60 V; against a charger whose
    output never falls the vehicle stops asking after ``welding_max_requests`` and still ends
    the session (it once asked 5,000 times, forever, of a charger holding 600 V)."""
    _, evse, evcc, secc = pair(
        evcc_config=EvccConfig(service=EnergyService.DC_BPT, control_mode=ControlMode.DYNAMIC, max_loops=2)
    )
    if not voltage_falls:
        evse.output_voltage = 600.0
        evse.present_voltage = lambda now: Decimal(600)  # type: ignore[method-assign]
    t = run(evcc, secc)
    welding = t.sent("evcc").count("DC_WeldingDetectionReq")
    assert t.sent("evcc")[-1] == "SessionStopReq"
    assert evcc.ok and secc.ok
    if voltage_falls:
        assert welding == 1
    else:
        assert welding == evcc.config.welding_max_requests == 10
