"""The -2 rule table (``iso15118.session.iso2.rules``) and the -2 facts it reads."""

from __future__ import annotations

import pytest

from iso15118.facts.codes import RESPONSE_CODES_ISO2, is_failure_code
from iso15118.facts.namespaces import Family
from iso15118.facts.timing import TIMERS_ISO2, message_timing
from iso15118.session.iso2 import rules
from iso15118.session.iso2.rules import MESSAGES, TRANSITIONS, State, accepts, allowed_requests, next_state

S = State
O = rules.Outcome


def test_every_row_names_a_known_request_and_the_timing_is_the_facts() -> None:
    assert {t.request for t in TRANSITIONS} == set(MESSAGES)
    for name, spec in MESSAGES.items():
        t = message_timing("iso2", name)
        assert (spec.evcc_timeout, spec.secc_performance) == (t.evcc_timeout, t.secc_performance)
        assert spec.payload_type == 0x8001 and spec.schema_key == "iso2"
    assert MESSAGES["CurrentDemandReq"].evcc_timeout == 0.25
    assert MESSAGES["PowerDeliveryReq"].evcc_timeout == 5.0
    assert MESSAGES["ChargeParameterDiscoveryReq"].evcc_timeout == 2.0
    assert TIMERS_ISO2.evcc_pre_charge == 7.0 and TIMERS_ISO2.evcc_cable_check == 40.0
    assert rules.LOOP_TIMER["PreChargeReq"] == "evcc_pre_charge"


def test_response_codes_are_the_xsd_enumeration() -> None:
    assert len(RESPONSE_CODES_ISO2) == 26
    assert RESPONSE_CODES_ISO2[:3] == ("OK", "OK_NewSessionEstablished", "OK_OldSessionJoined")
    assert "FAILED_NoChargeServiceSelected" in RESPONSE_CODES_ISO2 and "FAILED_EVSEPresentVoltageToLow" not in RESPONSE_CODES_ISO2
    assert [c for c in RESPONSE_CODES_ISO2 if is_failure_code(c)] == [c for c in RESPONSE_CODES_ISO2 if c.startswith("FAILED")]


def test_every_state_is_reachable_and_only_end_and_pause_are_terminal() -> None:
    seen, todo = {S.APP_PROTOCOL}, [S.APP_PROTOCOL]
    while todo:
        st = todo.pop()
        for t in TRANSITIONS:
            if t.state is st and t.next not in seen:
                seen.add(t.next)
                todo.append(t.next)
    assert seen == set(State)
    terminal = {st for st in State if not any(t.state is st for t in TRANSITIONS)}
    assert terminal == {S.ENDED, S.PAUSED}


def test_pause_only_after_power_delivery_stop_terminate_anywhere_after_setup() -> None:
    pause_from = {t.state for t in TRANSITIONS if t.outcome is O.PAUSE}
    assert pause_from == {S.STOPPED, S.WELDING_DETECTION}
    for st in State:
        if st not in (S.APP_PROTOCOL, S.ENDED, S.PAUSED):
            assert next_state(st, "SessionStopReq", O.TERMINATE, None) is S.ENDED
    assert not accepts(S.APP_PROTOCOL, "SessionStopReq", None)


@pytest.mark.parametrize("request_,family", [("CableCheckReq", Family.DC), ("PreChargeReq", Family.DC),
                                             ("CurrentDemandReq", Family.DC), ("WeldingDetectionReq", Family.DC),
                                             ("ChargingStatusReq", Family.AC)])
def test_family_rows(request_: str, family: Family) -> None:
    other = Family.AC if family is Family.DC else Family.DC
    rows = [t for t in TRANSITIONS if t.request == request_]
    assert rows and all(t.family is family for t in rows)
    assert not any(accepts(t.state, request_, other) for t in rows)


def test_charge_loop_and_power_delivery_order() -> None:
    # (MeteringReceiptReq only when the SECC asked for it: the SECC checks that, not the table)
    assert allowed_requests(S.CHARGING, Family.AC) == ["PowerDeliveryReq", "ChargingStatusReq", "MeteringReceiptReq",
                                                       "SessionStopReq"]
    assert allowed_requests(S.CHARGING, Family.DC) == ["PowerDeliveryReq", "CurrentDemandReq", "MeteringReceiptReq",
                                                       "SessionStopReq"]
    # AC starts after the charge parameters, DC only after CableCheck and PreCharge
    assert next_state(S.CHARGE_PARAMETERS, "PowerDeliveryReq", O.START, Family.AC) is S.CHARGING
    with pytest.raises(KeyError):
        next_state(S.CHARGE_PARAMETERS, "PowerDeliveryReq", O.START, Family.DC)
    with pytest.raises(KeyError):  # Renegotiate only from the charge loop
        next_state(S.PRE_CHARGE, "PowerDeliveryReq", O.RENEGOTIATE, Family.DC)
    # renegotiation goes back to ChargeParameterDiscovery; then DC may start at once or re-check (D8)
    assert next_state(S.CHARGING, "PowerDeliveryReq", O.RENEGOTIATE, Family.DC) is S.RENEGOTIATING
    assert allowed_requests(S.RENEGOTIATING, Family.DC) == ["ChargeParameterDiscoveryReq", "SessionStopReq"]
    assert next_state(S.RENEGOTIATED, "PowerDeliveryReq", O.START, Family.DC) is S.CHARGING
    assert next_state(S.RENEGOTIATED, "CableCheckReq", O.FINISHED, Family.DC) is S.CABLE_CHECKED
    assert not accepts(S.RENEGOTIATED, "CableCheckReq", Family.AC)
    # Ongoing loops stay put until Finished
    assert next_state(S.AUTHORIZATION_ONGOING, "AuthorizationReq", O.ONGOING, None) is S.AUTHORIZATION_ONGOING
    assert next_state(S.CPD_ONGOING, "ChargeParameterDiscoveryReq", O.FINISHED, None) is S.CHARGE_PARAMETERS
