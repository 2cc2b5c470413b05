"""Error paths: response codes, sequence and session-ID checks, timeouts on the fake clock."""

from __future__ import annotations

import pytest

from iso15118 import messages as m
from iso15118.session import (
    EnergyService,
    EvccConfig,
    EvccSession,
    ProtocolError,
    SeccConfig,
    SeccSession,
    SessionEnded,
    State,
)
from iso15118.session.events import SendMessage
from iso15118.session.secc import minimal_response
from iso15118.sim import make_ev, make_evse
from tests.session.helpers import NS_AC, NS_DC, Script, clock, pair, run

RC = m.ResponseCode


def secc(profile: str = "dc-bidi", **kw: object) -> SeccSession:
    return SeccSession(make_evse(profile, **kw), SeccConfig(), clock=clock)


def test_out_of_sequence_request_gets_failed_sequence_error() -> None:
    s = Script(secc())
    assert s.setup().response_code is RC.OK_NEW_SESSION_ESTABLISHED
    res = s.send(
        m.PowerDeliveryReq(header=s.header(), ev_processing=m.Processing.FINISHED, charge_progress=m.ChargeProgress.START)
    )
    assert isinstance(res, m.PowerDeliveryRes) and res.response_code is RC.FAILED_SEQUENCE_ERROR
    assert s.secc.ended and not s.secc.ok
    assert any(isinstance(e, ProtocolError) and e.code == "FAILED_SequenceError" for e in s.events)
    assert s.secc.next_deadline() is None


def test_charge_loop_before_power_delivery_is_a_sequence_error() -> None:
    s = Script(secc())
    s.setup()
    s.authorize()
    s.select(int(EnergyService.DC_BPT))
    res = s.send(
        m.DCChargeLoopReq(
            header=s.header(),
            meter_info_requested=False,
            ev_present_voltage=m.RationalNumber(value=400, exponent=0),
            control_mode=m.ScheduledDCCLReqControlMode(
                ev_target_current=m.RationalNumber(value=10, exponent=0),
                ev_target_voltage=m.RationalNumber(value=400, exponent=0),
            ),
        )
    )
    assert isinstance(res, m.DCChargeLoopRes) and res.response_code is RC.FAILED_SEQUENCE_ERROR


def test_wrong_session_id_gets_failed_unknown_session() -> None:
    s = Script(secc())
    s.setup()
    res = s.send(m.AuthorizationSetupReq(header=s.header(session_id=b"\xde\xad\xbe\xef" * 2)))
    assert isinstance(res, m.AuthorizationSetupRes)
    assert res.response_code is RC.FAILED_UNKNOWN_SESSION
    assert s.secc.ended and not s.secc.ok


def test_app_protocol_without_a_common_namespace() -> None:
    s = Script(secc("wall-connector"))
    res = s.sap(NS_DC)
    assert res.response_code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION and res.schema_id is None
    assert s.secc.ended and not s.secc.ok


def test_ev_and_evse_without_common_family() -> None:
    ev = make_ev("cybertruck-awd")
    evcc = EvccSession(ev, EvccConfig(service=EnergyService.DC_BPT), clock=clock)
    s = SeccSession(make_evse("wall-connector"), SeccConfig(), clock=clock)
    tr = run(evcc, s)
    assert not evcc.ok and not s.ok
    assert tr.ended("evcc").reason.startswith("Failed_NoNegotiation") or "SchemaID" in tr.ended("evcc").reason


def test_service_detail_for_a_service_not_offered() -> None:
    s = Script(secc())
    s.setup()
    s.authorize()
    s.send(m.ServiceDiscoveryReq(header=s.header()))
    res = s.send(m.ServiceDetailReq(header=s.header(), service_id=int(EnergyService.AC)))
    assert res.response_code is RC.FAILED_SERVICE_ID_INVALID


@pytest.mark.parametrize(
    ("service", "pset", "code"),
    [(9, 1, RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED), (6, 77, RC.FAILED_SERVICE_SELECTION_INVALID)],
)
def test_service_selection_errors(service: int, pset: int, code: RC) -> None:
    s = Script(secc())
    s.setup()
    s.authorize()
    s.send(m.ServiceDiscoveryReq(header=s.header()))
    s.send(m.ServiceDetailReq(header=s.header(), service_id=6))
    res = s.send(
        m.ServiceSelectionReq(
            header=s.header(),
            selected_energy_transfer_service=m.SelectedService(service_id=service, parameter_set_id=pset),
        )
    )
    assert res.response_code is code


def test_non_bpt_charge_parameters_for_a_bpt_service() -> None:
    s = Script(secc())
    s.setup()
    s.authorize()
    assert s.select(int(EnergyService.DC_BPT)).response_code is RC.OK
    r = lambda v: m.RationalNumber(value=v, exponent=0)  # noqa: E731
    res = s.send(
        m.DCChargeParameterDiscoveryReq(
            header=s.header(),
            energy_transfer_mode=m.DCCPDReqEnergyTransferMode(
                ev_maximum_charge_power=r(10000),
                ev_minimum_charge_power=r(0),
                ev_maximum_charge_current=r(30),
                ev_minimum_charge_current=r(0),
                ev_maximum_voltage=r(900),
                ev_minimum_voltage=r(300),
            ),
        )
    )
    assert res.response_code is RC.FAILED_WRONG_CHARGE_PARAMETER


def test_pnc_selection_is_answered_with_a_warning() -> None:
    s = Script(secc())
    s.setup()
    s.send(m.AuthorizationSetupReq(header=s.header()))
    res = s.send(
        m.AuthorizationReq(
            header=s.header(),
            selected_authorization_service=m.Authorization.PNC,
            authorization_mode=m.PnCAReqAuthorizationMode(
                id="id1",
                gen_challenge=bytes(16),
                contract_certificate_chain=m.ContractCertificateChain(
                    certificate=b"\x30\x00", sub_certificates=m.SubCertificates(certificate=[b"\x30\x00"])
                ),
            ),
        )
    )
    assert res.response_code is RC.WARNING_AUTHORIZATION_SELECTION_INVALID
    assert not s.secc.ended


def test_contactor_error_ends_both_sides() -> None:
    ev, charger, evcc, s = pair(
        evse_profile="wall-connector", evse_kwargs={"contactor_fault": True}, evcc_config=EvccConfig(max_loops=3)
    )
    tr = run(evcc, s)
    assert not evcc.ok and not s.ok
    assert any(e.code == "FAILED_ContactorError" for e in tr.of("evcc", ProtocolError))
    assert tr.sent("evcc")[-1] == "PowerDeliveryReq"


def test_undecodable_payload_and_wrong_payload_type() -> None:
    s = secc()
    events = s.receive(0x8001, b"\xff\xff\xff", 0.1)
    assert any(isinstance(e, ProtocolError) for e in events) and s.ended
    assert not any(isinstance(e, SendMessage) for e in events)
    s = Script(secc())
    s.sap()
    res = s.send(m.SessionSetupReq(header=s.header(), evcc_id="X"), payload_type=0x8004)
    assert res is None and s.secc.ended


def test_secc_sequence_timeout() -> None:
    ev, charger, evcc, s = pair(evcc_config=EvccConfig(max_loops=50))
    # the EV goes silent after its 12th request: its frames are dropped from then on
    sent = {"n": 0}

    def drop(side: str, ev_: SendMessage) -> bool:
        if side != "evcc":
            return False
        sent["n"] += 1
        return sent["n"] > 12

    tr = run(evcc, s, drop=drop, close_when_evcc_ends=False)
    assert not s.ok and "timeout" in s.end_reason
    end = tr.ended("secc")
    assert end is not None and end.close_after == 5.0
    # the EVCC timed out first, waiting for the response to its dropped request
    assert not evcc.ok and evcc.end_reason.startswith("Timeout")


def test_secc_first_message_timeout() -> None:
    s = secc()
    assert s.next_deadline() == 20.0
    assert s.handle_timer(19.9) == []
    events = s.handle_timer(20.0)
    assert isinstance(events[-1], SessionEnded) and not events[-1].ok


@pytest.mark.parametrize("drop_name", ["SessionSetupRes", "ServiceDetailRes", "DC_ChargeLoopRes"])
def test_evcc_message_timeout(drop_name: str) -> None:
    ev, charger, evcc, s = pair(evcc_config=EvccConfig(service=EnergyService.DC_BPT, max_loops=5))
    tr = run(evcc, s, drop=lambda side, e: side == "secc" and e.name == drop_name)
    assert not evcc.ok
    expected = {"SessionSetupRes": 2.0, "ServiceDetailRes": 5.0, "DC_ChargeLoopRes": 0.5}[drop_name]
    assert evcc.end_reason == f"Timeout: no {drop_name} within {expected:g} s"
    # the timeout fired exactly at request time + message timeout on the fake clock
    req_name = drop_name[:-3] + "Req"
    req_times = [t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SendMessage) and e.name == req_name]
    end_time = [t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SessionEnded)][0]
    assert end_time == pytest.approx(req_times[-1] + expected)


def test_evcc_cable_check_loop_limit() -> None:
    ev, charger, evcc, s = pair(evse_kwargs={"cable_check_duration": 1000.0}, evcc_config=EvccConfig(max_loops=3))
    run(evcc, s)
    assert not evcc.ok and "DC_CableCheckReq loop exceeded 40" in evcc.end_reason


def test_evcc_communication_setup_timeout() -> None:
    ev = make_ev("cybertruck-awd")
    evcc = EvccSession(ev, EvccConfig(), clock=clock)
    evcc.start(0.0)
    # answer nothing at all: the message timeout (2 s) fires before the 20 s setup timer
    events = evcc.handle_timer(2.0)
    assert isinstance(events[-1], SessionEnded) and "supportedAppProtocolRes" in events[-1].reason


def test_evcc_unexpected_response_is_a_protocol_error() -> None:
    ev = make_ev("cybertruck-awd")
    evcc = EvccSession(ev, EvccConfig(), clock=clock)
    evcc.start(0.0)
    hdr = m.MessageHeader(session_id=bytes(8), time_stamp=0)
    wrong = m.SessionStopRes(header=hdr, response_code=RC.OK)
    events = evcc.receive(0x8002, m.encode(wrong), 0.1)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert errors and errors[0].code == "UnexpectedResponse"
    assert evcc.ended and not evcc.ok


def test_evcc_rejects_a_response_with_another_session_id() -> None:
    ev, charger, evcc, s = pair(evcc_config=EvccConfig(max_loops=3))
    # let the session run into the cable check, then corrupt the SECC's SessionID
    def corrupt(t: float) -> None:
        s.session_id = b"\x00\x11\x22\x33\x44\x55\x66\x77"

    tr = run(evcc, s, hooks=[(0.2, corrupt)])
    assert not evcc.ok
    assert any(e.code in ("UnknownSession", "FAILED_UnknownSession") for e in tr.of("evcc", ProtocolError))


def test_evcc_ends_on_any_failed_code() -> None:
    ev = make_ev("cybertruck-awd")
    evcc = EvccSession(ev, EvccConfig(), clock=clock)
    evcc.start(0.0)
    sap = m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION, schema_id=1)
    evcc.receive(0x8001, m.encode(sap), 0.1)
    assert evcc.state is State.APP_PROTOCOL
    res = minimal_response("SessionSetupReq", m.MessageHeader(session_id=bytes(8), time_stamp=0), RC.FAILED)
    events = evcc.receive(0x8002, m.encode(res), 0.2)
    assert [e.code for e in events if isinstance(e, ProtocolError)] == ["FAILED"]
    assert evcc.ended and not evcc.ok


@pytest.mark.parametrize(
    "name",
    [
        "SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq", "ServiceDiscoveryReq", "ServiceDetailReq",
        "ServiceSelectionReq", "AC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq",
        "ScheduleExchangeReq", "DC_CableCheckReq", "DC_PreChargeReq", "PowerDeliveryReq", "AC_ChargeLoopReq",
        "DC_ChargeLoopReq", "DC_WeldingDetectionReq", "SessionStopReq",
    ],
)
def test_minimal_failed_responses_encode_and_decode(name: str) -> None:
    res = minimal_response(name, m.MessageHeader(session_id=bytes(8), time_stamp=1), RC.FAILED_SEQUENCE_ERROR)
    key = {"AC_": "ac", "DC_": "dc"}.get(name[:3], "common")
    assert m.decode(m.encode(res), key) == res


def _ac_scheduled_until_schedule(s: Script) -> None:
    r = lambda v: m.RationalNumber(value=v, exponent=0)  # noqa: E731
    s.setup(NS_AC)
    s.authorize()
    assert s.select(int(EnergyService.AC_BPT), 1).response_code is RC.OK
    cpd = s.send(
        m.ACChargeParameterDiscoveryReq(
            header=s.header(),
            energy_transfer_mode=m.BPTACCPDReqEnergyTransferMode(
                ev_maximum_charge_power=r(11000),
                ev_minimum_charge_power=r(0),
                ev_maximum_discharge_power=r(11000),
                ev_minimum_discharge_power=r(0),
            ),
        )
    )
    assert cpd.response_code is RC.OK
    se = s.send(
        m.ScheduleExchangeReq(header=s.header(), maximum_supporting_points=1024, control_mode=m.ScheduledSEReqControlMode())
    )
    assert se.response_code is RC.OK and se.evse_processing is m.Processing.FINISHED
    tup = se.control_mode.schedule_tuple[0]
    assert tup.discharging_schedule is not None
    # discharge power in a DischargingSchedule is negative (sign convention)
    power = tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry[0].power
    assert power.value < 0


def _power_delivery(s: Script, control_mode: object, progress: str = "Start") -> object:
    return s.send(
        m.PowerDeliveryReq(
            header=s.header(),
            ev_processing=m.Processing.FINISHED,
            charge_progress=progress,
            ev_power_profile=m.EVPowerProfile(
                time_anchor=0,
                control_mode=control_mode,
                ev_power_profile_entries=m.EVPowerProfileEntryList(
                    ev_power_profile_entry=[m.PowerScheduleEntry(duration=60, power=m.RationalNumber(value=1000, exponent=0))]
                ),
            ),
        )
    )


def test_schedule_tuple_not_offered() -> None:
    s = Script(secc("wall-connector"))
    _ac_scheduled_until_schedule(s)
    res = _power_delivery(s, m.ScheduledEVPPTControlMode(selected_schedule_tuple_id=99))
    assert res.response_code is RC.FAILED_SCHEDULE_SELECTION_INVALID


def test_dynamic_power_profile_in_scheduled_mode() -> None:
    s = Script(secc("wall-connector"))
    _ac_scheduled_until_schedule(s)
    res = _power_delivery(s, m.DynamicEVPPTControlMode())
    assert res.response_code is RC.FAILED_EV_POWER_PROFILE_INVALID


def test_charge_loop_control_mode_mismatch() -> None:
    s = Script(secc("wall-connector"))
    _ac_scheduled_until_schedule(s)
    assert _power_delivery(s, m.ScheduledEVPPTControlMode(selected_schedule_tuple_id=1)).response_code is RC.OK
    r = lambda v: m.RationalNumber(value=v, exponent=0)  # noqa: E731
    res = s.send(
        m.ACChargeLoopReq(
            header=s.header(),
            meter_info_requested=False,
            control_mode=m.ScheduledACCLReqControlMode(ev_present_active_power=r(1000)),  # not BPT
        )
    )
    assert res.response_code is RC.FAILED


def test_pause_before_a_service_is_selected() -> None:
    s = Script(secc())
    s.setup()
    res = s.send(m.SessionStopReq(header=s.header(), charging_session=m.ChargingSession.PAUSE))
    assert res.response_code is RC.FAILED_PAUSE_NOT_ALLOWED


def test_service_renegotiation_not_supported() -> None:
    ev, charger, evcc, s = pair(secc_config=SeccConfig(service_renegotiation_supported=False))
    script = Script(s)
    script.setup()
    script.authorize()
    script.select(int(EnergyService.DC_BPT))
    # SessionStop(ServiceRenegotiation) is only legal after power stopped: sequence error first
    res = script.send(m.SessionStopReq(header=script.header(), charging_session=m.ChargingSession.SERVICE_RENEGOTIATION))
    assert res.response_code is RC.FAILED_SEQUENCE_ERROR
    s2 = SeccSession(make_evse("dc-bidi"), SeccConfig(service_renegotiation_supported=False), clock=clock)
    s2.state = State.STOPPED  # as after PowerDelivery(Stop)
    s2.family = s2.family or None
    script2 = Script(s2)
    script2.session_id = s2.session_id
    res2 = script2.send(m.SessionStopReq(header=script2.header(), charging_session=m.ChargingSession.SERVICE_RENEGOTIATION))
    assert res2.response_code is RC.FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED


def test_power_profile_above_the_schedule_is_a_warning() -> None:
    s = Script(secc("wall-connector"))
    _ac_scheduled_until_schedule(s)
    res = s.send(
        m.PowerDeliveryReq(
            header=s.header(),
            ev_processing=m.Processing.FINISHED,
            charge_progress=m.ChargeProgress.START,
            ev_power_profile=m.EVPowerProfile(
                time_anchor=0,
                control_mode=m.ScheduledEVPPTControlMode(selected_schedule_tuple_id=1),
                ev_power_profile_entries=m.EVPowerProfileEntryList(
                    ev_power_profile_entry=[m.PowerScheduleEntry(duration=60, power=m.RationalNumber(value=30000, exponent=0))]
                ),
            ),
        )
    )
    assert res.response_code is RC.WARNING_EV_POWER_PROFILE_VIOLATION
    assert not s.secc.ended and s.secc.state is State.CHARGING


def test_ev_ignoring_a_terminate_notification_is_failed() -> None:
    s = Script(secc("wall-connector"))
    _ac_scheduled_until_schedule(s)
    assert _power_delivery(s, m.ScheduledEVPPTControlMode(selected_schedule_tuple_id=1)).response_code is RC.OK
    r = lambda v: m.RationalNumber(value=v, exponent=0)  # noqa: E731
    loop = lambda: m.ACChargeLoopReq(  # noqa: E731
        header=s.header(),
        meter_info_requested=True,
        control_mode=m.BPTScheduledACCLReqControlMode(ev_present_active_power=r(1000)),
    )
    s.secc.notify("Terminate", 0)
    first = s.send(loop())
    assert first.response_code is RC.OK and first.evse_status.evse_notification is m.EVSENotification.TERMINATE
    assert first.meter_info is not None and first.meter_info.bpt_discharged_energy_reading_wh is not None
    s.now += 1.0  # within NotificationMaxDelay + one round trip: tolerated
    assert s.send(loop()).response_code is RC.OK
    s.now += 3.0  # still looping long after the notification: the SECC gives up
    late = s.send(loop())
    assert late.response_code is RC.FAILED and s.secc.ended
