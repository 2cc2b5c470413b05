"""The shared transition table."""

from __future__ import annotations

import pytest

from iso15118 import messages as m
from iso15118.session import rules
from iso15118.session.rules import Family, State


def test_every_request_has_spec_and_payload_type() -> None:
    for row in rules.TRANSITIONS:
        spec = rules.spec_for_request(row.request)
        assert spec is not None, row.request
        assert rules.spec_for_response(spec.response) is spec


def test_charge_loop_timeouts_are_half_a_second() -> None:
    assert rules.MESSAGES["DC_ChargeLoopReq"].evcc_timeout == 0.5
    assert rules.MESSAGES["AC_ChargeLoopReq"].evcc_timeout == 0.5
    assert rules.MESSAGES["ServiceDetailReq"].evcc_timeout == 5.0
    assert rules.MESSAGES["supportedAppProtocolReq"].evcc_timeout == 2.0
    for spec in rules.MESSAGES.values():
        assert spec.secc_performance < spec.evcc_timeout


def test_every_state_but_terminal_has_a_way_forward() -> None:
    reachable = {State.CONNECTED}
    frontier = [State.CONNECTED]
    while frontier:
        st = frontier.pop()
        for row in rules.TRANSITIONS:
            if row.state is st and row.next not in reachable:
                reachable.add(row.next)
                frontier.append(row.next)
    assert reachable == set(State)
    for st in State:
        if st not in (State.ENDED, State.PAUSED):
            assert rules.allowed_requests(st), st


@pytest.mark.parametrize(
    ("state", "req", "family", "ok"),
    [
        (State.CONNECTED, "supportedAppProtocolReq", None, True),
        (State.CONNECTED, "SessionSetupReq", None, False),
        (State.SCHEDULED, "DC_CableCheckReq", Family.DC, True),
        (State.SCHEDULED, "DC_CableCheckReq", Family.AC, False),
        (State.CHARGING, "AC_ChargeLoopReq", Family.AC, True),
        (State.CHARGING, "DC_ChargeLoopReq", Family.AC, False),
        (State.CHARGING, "SessionStopReq", Family.DC, False),
        (State.STOPPED, "DC_WeldingDetectionReq", Family.DC, True),
        (State.STOPPED, "DC_WeldingDetectionReq", Family.AC, False),
        (State.SERVICE_DISCOVERY, "ServiceSelectionReq", Family.DC, False),
    ],
)
def test_accepts(state: State, req: str, family: Family | None, ok: bool) -> None:
    assert rules.accepts(state, req, family) is ok


def test_dc_may_not_start_power_without_precharge() -> None:
    assert rules.next_state(State.SCHEDULED, "PowerDeliveryReq", "Start", Family.AC) is State.CHARGING
    with pytest.raises(KeyError):
        rules.next_state(State.SCHEDULED, "PowerDeliveryReq", "Start", Family.DC)
    assert rules.next_state(State.SCHEDULED, "PowerDeliveryReq", "Stop", Family.DC) is State.STOPPED


def test_outcome_labels() -> None:
    hdr = m.MessageHeader(session_id=bytes(8), time_stamp=0)
    stop = m.SessionStopReq(header=hdr, charging_session=m.ChargingSession.PAUSE)
    res = m.SessionStopRes(header=hdr, response_code=m.ResponseCode.OK)
    assert rules.outcome(stop, res) == "Pause"
    pd = m.PowerDeliveryReq(header=hdr, ev_processing=m.Processing.FINISHED, charge_progress=m.ChargeProgress.STANDBY)
    refused = m.PowerDeliveryRes(header=hdr, response_code=m.ResponseCode.WARNING_STANDBY_NOT_ALLOWED)
    assert rules.outcome(pd, refused) == "StandbyRefused"
    assert rules.is_failure(m.SessionStopRes(header=hdr, response_code=m.ResponseCode.FAILED_SEQUENCE_ERROR))
