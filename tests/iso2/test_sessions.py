"""ISO 15118-2 sessions, our EVCC against our SECC, in memory on a fake clock.

Every run goes through the SupportedAppProtocol negotiation (``session/negotiation.py``) and the
simulators (truck, wall connector, dc-bidi): the whole -2 sequence AC and DC, renegotiation from
either side, pause and resume with the old SessionID, the SECC's refusals with their -2 codes,
the timers, and the fallback of a vehicle that offers -20 first to -2.
"""

from __future__ import annotations

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.facts.timing import TIMERS_ISO2, message_timing
from iso15118.messages import iso2 as m2
from iso15118.session.events import NotificationReceived, PowerChanged, SessionEnded
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig, Iso2SeccSession
from iso15118.session.iso2.rules import State
from iso15118.session.secc import SessionStore
from iso15118.sim import make_ev, make_evse
from tests.iso2.helpers import errors, feed, pair, received, run, secc_core

RC = m2.ResponseCode

DC_SEQUENCE = ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq",
               "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
               "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]
AC_SEQUENCE = ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq",
               "ChargeParameterDiscoveryReq", "PowerDeliveryReq", "ChargingStatusReq", "PowerDeliveryReq", "SessionStopReq"]


def _squash(names: list[str]) -> list[str]:
    """Repeated requests (loops) counted once, in order."""
    out: list[str] = []
    for n in names:
        if not out or out[-1] != n:
            out.append(n)
    return out


@pytest.mark.parametrize("family,sequence", [(Family.DC, DC_SEQUENCE), (Family.AC, AC_SEQUENCE)])
def test_whole_sequence_to_session_stop(family: Family, sequence: list[str]) -> None:
    tr, evcc, secc = run(family)
    assert evcc.protocol is AppProtocol.ISO2 and secc.protocol is AppProtocol.ISO2
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert evcc.end_reason == secc.end_reason == "SessionStop Terminate"
    assert not errors(tr, "evcc") and not errors(tr, "secc")
    assert _squash(tr.sent("evcc"))[1:] == sequence
    assert received(tr, "secc")[1:] == tr.sent("evcc")[1:]  # every request arrived and was answered
    assert secc.rx == secc.tx
    # energy flowed, within both sides' limits: 11.5 kW charger, the truck's 48 A / 30 A DC
    powers = [e.power_w for e in tr.of("secc", PowerChanged)]  # type: ignore[attr-defined]
    assert powers and all(0 < p_ <= 11520 for p_ in powers)
    assert evcc.core.loops >= 5 and evcc.core.authorization == "EIM"
    assert evcc.core.family is family and secc.core.family is family


def test_ac_energy_mode_and_schedule() -> None:
    tr, evcc, secc = run(Family.AC)
    # the EV picks its first preference among the offered modes; the SECC keeps the offered tuple
    assert evcc.core.energy_mode is m2.EnergyTransferMode.AC_SINGLE_PHASE_CORE
    assert secc.core.energy_mode is m2.EnergyTransferMode.AC_SINGLE_PHASE_CORE
    assert evcc.core.tuple_id == secc.core.tuple_id is not None
    assert evcc.core.pmax == 11520


def test_evcc_and_secc_walk_the_same_states() -> None:
    tr, evcc, secc = run(Family.DC)
    from iso15118.session.events import StateChanged

    walk = {side: [e.new for e in tr.of(side, StateChanged)] for side in ("evcc", "secc")}  # type: ignore[attr-defined]
    assert walk["evcc"] == walk["secc"]
    assert walk["evcc"][-1] is State.ENDED


@pytest.mark.parametrize("family", [Family.DC, Family.AC])
def test_ev_initiated_renegotiation(family: Family) -> None:
    ev = make_ev("cybertruck-awd", renegotiate_after=1.0, stop_after=3.0)
    tr, evcc, secc = run(family, ev=ev)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    names = tr.sent("evcc")
    i = names.index("PowerDeliveryReq", names.index("PowerDeliveryReq") + 1)
    pd = [e for e in tr.of("evcc") if getattr(e, "name", "") == "PowerDeliveryReq"]
    assert pd[1].message.charge_progress is m2.ChargeProgress.RENEGOTIATE  # type: ignore[attr-defined]
    assert names[i + 1] == "ChargeParameterDiscoveryReq"
    again = _squash(names[i + 1:])
    if family is Family.DC:  # decision D8: CableCheck and PreCharge again
        assert again[:5] == ["ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq",
                             "CurrentDemandReq"]
    else:
        assert again[:3] == ["ChargeParameterDiscoveryReq", "PowerDeliveryReq", "ChargingStatusReq"]
    assert evcc.core.renegotiations == 1


def test_evse_initiated_renegotiation_notification() -> None:
    e, s = pair(Family.DC, ev=make_ev("cybertruck-awd", stop_after=4.0))
    from iso15118.session.memory import run_pair

    tr = run_pair(e, s, hooks=[(2.0, lambda t: s.notify("ScheduleRenegotiation"))])
    assert e.ok and s.ok, (e.end_reason, s.end_reason)
    notes = tr.of("evcc", NotificationReceived)
    assert [n.notification for n in notes] == ["ReNegotiation"]  # type: ignore[attr-defined]
    assert s.core.renegotiations == 1 and e.core.renegotiations == 1
    progress = [ev.message.charge_progress for ev in tr.of("evcc") if getattr(ev, "name", "") == "PowerDeliveryReq"]  # type: ignore[attr-defined]
    assert progress == [m2.ChargeProgress.START, m2.ChargeProgress.RENEGOTIATE, m2.ChargeProgress.START,
                        m2.ChargeProgress.STOP]


@pytest.mark.parametrize("kind", ["Terminate", "Pause"])
def test_stop_charging_notification_ends_the_session(kind: str) -> None:
    e, s = pair(Family.AC, ev=make_ev("cybertruck-awd"))
    from iso15118.session.memory import run_pair

    tr = run_pair(e, s, hooks=[(2.0, lambda t: s.notify(kind))], max_time=600)
    assert e.ok and s.ok, (e.end_reason, s.end_reason)
    assert [n.notification for n in tr.of("evcc", NotificationReceived)] == ["StopCharging"]  # type: ignore[attr-defined]
    assert e.end_reason == "SessionStop Terminate"  # -2 has no EVSE-initiated pause (digest §3.9)
    assert tr.end_time < 4.0


def test_pause_and_resume_with_the_old_session_id() -> None:
    store = SessionStore()
    evse = make_evse("dc-bidi")
    ev = make_ev("cybertruck-awd", pause_after=1.0)
    tr1, e1, s1 = run(Family.DC, ev=ev, evse=evse, secc=Iso2SeccConfig(store=store))
    assert e1.ok and s1.ok and e1.end_reason == s1.end_reason == "SessionStop Pause"
    paused = e1.paused_session_id
    assert paused is not None and paused == s1.core.session_id and len(store) == 1
    ends = tr1.of("secc", SessionEnded)
    assert ends[0].paused_session_id == paused  # type: ignore[attr-defined]
    stop = [ev_.message for ev_ in tr1.of("evcc") if getattr(ev_, "name", "") == "SessionStopReq"][0]  # type: ignore[attr-defined]
    assert stop.charging_session is m2.ChargingSession.PAUSE

    # a new connection: SessionSetupReq with the old SessionID -> OK_OldSessionJoined, same ID,
    # then the whole sequence again (the previous payment option and energy mode only)
    ev.pause_after = None
    ev.stop_after = 2.0
    tr2, e2, s2 = run(Family.DC, ev=ev, evse=evse, secc=Iso2SeccConfig(store=store),
                      evcc=Iso2EvccConfig(family=Family.DC, resume_session_id=paused), start=100.0)
    assert e2.ok and s2.ok, (e2.end_reason, s2.end_reason)
    assert e2.core.resumed and s2.core.resumed
    assert s2.core.session_id == e2.core.session_id == paused
    setup = [ev_.message for ev_ in tr2.of("secc") if getattr(ev_, "name", "") == "SessionSetupRes"][0]  # type: ignore[attr-defined]
    assert setup.response_code is RC.OK_OLD_SESSION_JOINED
    sd = [ev_.message for ev_ in tr2.of("secc") if getattr(ev_, "name", "") == "ServiceDiscoveryRes"][0]  # type: ignore[attr-defined]
    assert sd.payment_option_list.payment_option == [m2.PaymentOption.EXTERNAL_PAYMENT]
    assert sd.charge_service.supported_energy_transfer_mode.energy_transfer_mode == [e1.core.energy_mode]
    assert len(store) == 0  # taken


def test_unknown_old_session_id_gets_a_new_session() -> None:
    tr, e, s = run(Family.AC, evcc=Iso2EvccConfig(family=Family.AC, resume_session_id=bytes.fromhex("0102030405060708")))
    assert e.ok and s.ok
    assert not s.core.resumed and s.core.session_id != bytes.fromhex("0102030405060708")


def test_pause_is_refused_before_power_delivery_stop() -> None:
    core = secc_core()
    res, _ = feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    sid = core.session_id
    res, _ = feed(core, sid, m2.SessionStopReq(charging_session=m2.ChargingSession.PAUSE))
    assert res.response_code is RC.FAILED_SEQUENCE_ERROR and core.ended and not core.ok


def test_early_terminate_is_accepted() -> None:
    """Decision D7: SessionStop(Terminate) in any state after SessionSetup (real EVs do it)."""
    core = secc_core()
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    feed(core, core.session_id, m2.ServiceDiscoveryReq())
    res, _ = feed(core, core.session_id, m2.SessionStopReq(charging_session=m2.ChargingSession.TERMINATE))
    assert res.response_code is RC.OK and core.ended and core.ok


# ------------------------------------------------------------------ the SECC's refusals


def _to_authorized(core: Iso2SeccSession) -> bytes:
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    sid = core.session_id
    feed(core, sid, m2.ServiceDiscoveryReq())
    res, _ = feed(core, sid, m2.PaymentServiceSelectionReq(
        selected_payment_option=m2.PaymentOption.EXTERNAL_PAYMENT,
        selected_service_list=m2.SelectedServiceList(selected_service=[m2.SelectedService(service_id=1)])))
    assert res.response_code is RC.OK
    res, _ = feed(core, sid, m2.AuthorizationReq())
    assert res.evse_processing is m2.EVSEProcessing.FINISHED
    return sid


def _dc_cpd(mode: m2.EnergyTransferMode = m2.EnergyTransferMode.DC_EXTENDED) -> m2.ChargeParameterDiscoveryReq:
    from iso15118.session.iso2.parts import dc_ev_status, pv

    return m2.ChargeParameterDiscoveryReq(requested_energy_transfer_mode=mode, ev_charge_parameter=m2.DCEVChargeParameter(
        dc_ev_status=dc_ev_status(50), ev_maximum_current_limit=pv(30, "A"), ev_maximum_voltage_limit=pv(840, "V")))


def test_out_of_sequence_request_gets_failed_sequence_error() -> None:
    core = secc_core()
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    res, events = feed(core, core.session_id, _dc_cpd())
    assert isinstance(res, m2.ChargeParameterDiscoveryRes) and res.response_code is RC.FAILED_SEQUENCE_ERROR
    assert core.ended and not core.ok and any(isinstance(e, SessionEnded) for e in events)


def test_wrong_session_id_gets_failed_unknown_session() -> None:
    core = secc_core()
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    res, _ = feed(core, bytes(8), m2.ServiceDiscoveryReq())
    assert res.response_code is RC.FAILED_UNKNOWN_SESSION and core.ended


@pytest.mark.parametrize("option,services,code", [
    (m2.PaymentOption.CONTRACT, [1], RC.FAILED_PAYMENT_SELECTION_INVALID),  # PnC is not offered
    (m2.PaymentOption.EXTERNAL_PAYMENT, [1, 3], RC.FAILED_SERVICE_SELECTION_INVALID),
])
def test_payment_service_selection_refusals(option: m2.PaymentOption, services: list[int], code: RC) -> None:
    core = secc_core()
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)))
    feed(core, core.session_id, m2.ServiceDiscoveryReq())
    res, _ = feed(core, core.session_id, m2.PaymentServiceSelectionReq(
        selected_payment_option=option,
        selected_service_list=m2.SelectedServiceList(selected_service=[m2.SelectedService(service_id=i) for i in services])))
    assert res.response_code is code and core.ended


def test_ac_mode_at_a_dc_charger_is_refused() -> None:
    core = secc_core()
    sid = _to_authorized(core)
    res, _ = feed(core, sid, _dc_cpd(m2.EnergyTransferMode.AC_THREE_PHASE_CORE))
    assert res.response_code is RC.FAILED_WRONG_ENERGY_TRANSFER_MODE


def test_dc_mode_with_ac_parameters_is_refused() -> None:
    from iso15118.session.iso2.parts import pv

    core = secc_core(make_evse("dc-bidi"))
    sid = _to_authorized(core)
    res, _ = feed(core, sid, m2.ChargeParameterDiscoveryReq(
        requested_energy_transfer_mode=m2.EnergyTransferMode.DC_EXTENDED,
        ev_charge_parameter=m2.ACEVChargeParameter(e_amount=pv(1000, "Wh"), ev_max_voltage=pv(240, "V"),
                                                   ev_max_current=pv(32, "A"), ev_min_current=pv(6, "A"))))
    assert res.response_code is RC.FAILED_WRONG_CHARGE_PARAMETER


def _to_pre_charge(core: Iso2SeccSession) -> bytes:
    from iso15118.session.iso2.parts import dc_ev_status, pv

    sid = _to_authorized(core)
    res, _ = feed(core, sid, _dc_cpd())
    assert res.response_code is RC.OK and res.sa_schedules is not None
    for t in range(10):
        res, _ = feed(core, sid, m2.CableCheckReq(dc_ev_status=dc_ev_status(50)), now=2.0 + t)
        if res.evse_processing is m2.EVSEProcessing.FINISHED:
            break
    res, _ = feed(core, sid, m2.PreChargeReq(dc_ev_status=dc_ev_status(50), ev_target_voltage=pv(400, "V"),
                                             ev_target_current=pv(2, "A")), now=20.0)
    assert res.response_code is RC.OK
    return sid


def test_unknown_schedule_tuple_is_refused() -> None:
    core = secc_core()
    sid = _to_pre_charge(core)
    res, _ = feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START,
                                                 sa_schedule_tuple_id=(core.tuple_id or 0) + 1), now=21.0)
    assert res.response_code is RC.FAILED_TARIFF_SELECTION_INVALID and core.ended


def test_charging_profile_above_pmax_is_refused() -> None:
    from iso15118.session.iso2.parts import pv

    core = secc_core()
    sid = _to_pre_charge(core)
    profile = m2.ChargingProfile(profile_entry=[m2.ProfileEntry(charging_profile_entry_start=0,
                                                                charging_profile_entry_max_power=pv(50000, "W"))])
    res, _ = feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START,
                                                 sa_schedule_tuple_id=core.tuple_id or 1, charging_profile=profile), now=21.0)
    assert res.response_code is RC.FAILED_CHARGING_PROFILE_INVALID


def test_contactor_fault_is_failed_contactor_error() -> None:
    core = secc_core(make_evse("dc-bidi", contactor_fault=True))
    sid = _to_pre_charge(core)
    res, _ = feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START,
                                                 sa_schedule_tuple_id=core.tuple_id or 1), now=21.0)
    assert res.response_code is RC.FAILED_CONTACTOR_ERROR


def test_eim_pending_then_accepted_and_rejected() -> None:
    tr, e, s = run(Family.AC, evse=make_evse("wall-connector", authorization_delay=1.0))
    assert e.ok and s.ok
    auth = [ev.message.evse_processing for ev in tr.of("secc") if getattr(ev, "name", "") == "AuthorizationRes"]  # type: ignore[attr-defined]
    assert auth[0] is m2.EVSEProcessing.ONGOING_WAITING_FOR_CUSTOMER_INTERACTION and auth[-1] is m2.EVSEProcessing.FINISHED
    assert len(auth) > 3
    tr, e, s = run(Family.AC, evse=make_evse("wall-connector", authorize_ok=False))
    assert not e.ok and not s.ok
    assert [x.code for x in errors(tr, "evcc")] == ["FAILED"]


# ------------------------------------------------------------------ timers


def test_secc_sequence_timeout() -> None:
    core = secc_core()
    feed(core, bytes(1), m2.SessionSetupReq(evcc_id=bytes(6)), now=1.0)
    assert core.next_deadline() == 1.0 + TIMERS_ISO2.secc_sequence == 61.0
    assert core.handle_timer(60.9) == []
    core.handle_timer(61.0)
    assert core.ended and not core.ok and "timeout" in core.end_reason


def test_evcc_current_demand_timeout_is_the_2_value() -> None:
    """Drop every CurrentDemandRes: the EV gives up after V2G_EVCC_Msg_Timeout(CurrentDemand) = 0.25 s."""
    from iso15118.session.memory import run_pair

    assert message_timing("iso2", "CurrentDemandReq").evcc_timeout == 0.25
    e, s = pair(Family.DC)
    tr = run_pair(e, s, drop=lambda side, msg: side == "secc" and msg.name == "CurrentDemandRes", close_when_evcc_ends=True)
    assert not e.ok and e.end_reason == "Timeout: no CurrentDemandRes within 0.25 s"
    sent = [t for t, side, ev in tr.entries if side == "evcc" and getattr(ev, "name", "") == "CurrentDemandReq"]
    ended = [t for t, side, ev in tr.entries if side == "evcc" and isinstance(ev, SessionEnded)]
    assert ended[0] - sent[-1] == pytest.approx(0.25)


def test_pre_charge_loop_is_bounded_by_7_s() -> None:
    """A charger that never reaches the target voltage: the EV stops pre-charging after 7 s (-2)."""
    class Stuck:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def pre_charge(self, now: float, target: object) -> object:
            from decimal import Decimal

            return Decimal(1)

    tr, e, s = run(Family.DC, evse=Stuck(make_evse("dc-bidi")))
    assert not e.ok and e.end_reason == "Timeout: PreChargeReq loop exceeded 7 s"


# ------------------------------------------------------------------ fallback from -20


@pytest.mark.parametrize("profile,family", [("wall-connector", Family.AC), ("dc-bidi", Family.DC)])
def test_truck_falls_back_to_iso2_when_the_charger_has_no_iso20(profile: str, family: Family) -> None:
    """The truck offers -20 first, then -2, then DIN; a charger serving only -2 gets -2."""
    from iso15118.session.negotiation import ALL_PROTOCOLS

    tr, e, s = run(family, evse=make_evse(profile), ev_protocols=ALL_PROTOCOLS, evcc=Iso2EvccConfig())
    assert e.protocol is AppProtocol.ISO2 and e.ok and s.ok, (e.end_reason, s.end_reason)
    assert e.core.family is family


def test_iso20_is_chosen_when_both_serve_it() -> None:
    from iso15118.session.negotiation import ALL_PROTOCOLS

    e, s = pair(Family.AC, ev_protocols=ALL_PROTOCOLS, secc_protocols=ALL_PROTOCOLS)
    from iso15118.session.memory import run_pair

    run_pair(e, s, max_time=5.0)
    assert e.protocol is AppProtocol.ISO20 and s.protocol is AppProtocol.ISO20


def test_no_discharge_in_iso2_during_a_grid_outage() -> None:
    """V2H stays -20 only: in a -2 session the wall connector's outage stops charging, never exports."""
    evse = make_evse("wall-connector")
    tr, e, s = run(Family.AC, evse=evse, ev=make_ev("cybertruck-awd", stop_after=4.0),
                   hooks=[(1.5, lambda t: evse.set_grid_outage(t))])
    assert e.ok and s.ok
    powers = [p_.power_w for p_ in tr.of("secc", PowerChanged)]  # type: ignore[attr-defined]
    assert powers[0] > 0 and powers[-1] == 0 and min(powers) == 0
    assert evse.v2h_switch_time is None


class _Calls:
    """The dc-bidi simulator, recording the SECC's power_delivery / session_ended calls in order."""

    def __init__(self) -> None:
        self.inner = make_evse("dc-bidi")
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        self.calls.append(progress)
        return bool(self.inner.power_delivery(now, progress, discharge))

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self.calls.append("ended")
        self.inner.session_ended(now, reason, ok)


def test_early_terminate_while_charging_opens_the_contactors() -> None:
    evse = _Calls()
    core = secc_core(evse)
    sid = _to_pre_charge(core)
    res, _ = feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START,
                                                 sa_schedule_tuple_id=core.tuple_id or 1), now=21.0)
    assert res.response_code is RC.OK and core.power_on
    res, _ = feed(core, sid, m2.SessionStopReq(charging_session=m2.ChargingSession.TERMINATE), now=22.0)
    assert res.response_code is RC.OK and core.ok
    assert evse.calls == ["Start", "Stop", "ended"]


def test_aborted_session_during_renegotiation_opens_the_contactors() -> None:
    evse = _Calls()
    core = secc_core(evse)
    sid = _to_pre_charge(core)
    feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START, sa_schedule_tuple_id=core.tuple_id or 1),
         now=21.0)
    res, _ = feed(core, sid, m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.RENEGOTIATE,
                                                 sa_schedule_tuple_id=core.tuple_id or 1), now=22.0)
    assert res.response_code is RC.OK and core.state is State.RENEGOTIATING
    core.handle_timer(22.0 + TIMERS_ISO2.secc_sequence)  # the EV went silent
    assert core.ended and not core.ok
    assert evse.calls == ["Start", "Stop", "ended"]


def test_an_ev_asked_for_v2h_does_not_offer_iso2() -> None:
    """V2H stays -20 only: a truck asked for AC_BPT offers no -2, so a -2-only charger has nothing in common."""
    from iso15118.session.negotiation import ALL_PROTOCOLS
    from iso15118.session.services import EnergyService

    tr, e, s = run(Family.AC, ev_protocols=ALL_PROTOCOLS, evcc=Iso2EvccConfig(service=EnergyService.AC_BPT))
    assert not e.ok and not s.ok and e.protocol is None
    assert "Failed_NoNegotiation" in s.end_reason or "Failed_NoNegotiation" in e.end_reason
    tr, e, s = run(Family.AC, ev_protocols=ALL_PROTOCOLS, evcc=Iso2EvccConfig(service=EnergyService.AC))
    assert e.ok and e.protocol is AppProtocol.ISO2
