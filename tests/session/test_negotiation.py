"""SupportedAppProtocol negotiation (session/negotiation.py): the SECC's choice by the EV's
priority among what it serves, the response codes, and the hand-over to the chosen core."""

from __future__ import annotations

from typing import Any

import pytest

from iso15118 import messages as m
from iso15118.facts.namespaces import NS_AC, NS_DC, NS_DIN, NS_ISO2, AppProtocol
from iso15118.facts.payload import PayloadType
from iso15118.session import EvccConfig, SeccConfig
from iso15118.session.events import ProtocolError, SendMessage, SessionEnded
from iso15118.session.memory import run_pair
from iso15118.session.negotiation import (
    ALL_PROTOCOLS,
    EvccNegotiator,
    Offer,
    SeccNegotiator,
    choose,
    parse_protocols,
)
from iso15118.sim import make_ev, make_evse

from .helpers import clock

APC = m.AppProtocolResponseCode


def entry(ns: str, schema_id: int, priority: int, major: int = 1, minor: int = 0) -> m.AppProtocol:
    return m.AppProtocol(protocol_namespace=ns, version_number_major=major, version_number_minor=minor,
                         schema_id=schema_id, priority=priority)


def ask(entries: list[m.AppProtocol], *, evse: str = "dc-bidi", protocols: Any = None,
        tls: bool = False) -> tuple[SeccNegotiator, list[Any]]:
    secc = SeccNegotiator(make_evse(evse), protocols=protocols, clock=clock, tls=tls)
    req = m.SupportedAppProtocolReq(app_protocol=entries)
    return secc, secc.receive(int(PayloadType.SAP), m.encode(req), 0.1)


def answer(events: list[Any]) -> m.SupportedAppProtocolRes:
    sends = [e for e in events if isinstance(e, SendMessage)]
    assert len(sends) == 1, events
    assert sends[0].payload_type == PayloadType.SAP
    res = m.decode(sends[0].payload, "sap")  # the bytes on the wire, not the object
    assert isinstance(res, m.SupportedAppProtocolRes)
    return res


def test_ev_priority_decides_not_list_order() -> None:
    secc, events = ask([entry(NS_AC, 7, 2), entry(NS_DC, 9, 1)], evse="dc-bidi")
    res = answer(events)
    assert (res.response_code, res.schema_id) == (APC.OK_SUCCESSFUL_NEGOTIATION, 9)
    assert secc.protocol is AppProtocol.ISO20 and secc.core is not None and secc.core.family.value == "DC"


def test_unserved_entries_are_skipped_by_priority() -> None:
    # the wall connector is AC only: the EV's first choice (DC) is not served, its second is
    secc, events = ask([entry(NS_DC, 1, 1), entry(NS_AC, 2, 2)], evse="wall-connector")
    res = answer(events)
    assert (res.response_code, res.schema_id) == (APC.OK_SUCCESSFUL_NEGOTIATION, 2)
    assert secc.core is not None and secc.core.family.value == "AC"


def test_priority_tie_first_listed_wins() -> None:
    _, events = ask([entry(NS_DC, 4, 1), entry(NS_AC, 5, 1)], evse="dc-bidi")
    assert answer(events).schema_id == 4


def test_minor_deviation() -> None:
    _, events = ask([entry(NS_DC, 3, 1, minor=2)])
    res = answer(events)
    assert (res.response_code, res.schema_id) == (APC.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION, 3)


def test_major_mismatch_and_unknown_namespace_fail_without_schema_id() -> None:
    secc, events = ask([entry(NS_DC, 1, 1, major=2), entry("urn:example:not-a-protocol", 2, 2)])
    res = answer(events)
    assert res.response_code is APC.FAILED_NO_NEGOTIATION and res.schema_id is None
    assert any(isinstance(e, ProtocolError) and e.code == "Failed_NoNegotiation" for e in events)
    end = [e for e in events if isinstance(e, SessionEnded)]
    assert end and not end[0].ok and secc.ended and not secc.ok


def test_protocol_not_in_the_chargers_profile_is_not_chosen() -> None:
    # a charger configured for DIN only does not take the EV's -20 entry
    _, events = ask([entry(NS_DC, 1, 1)], protocols=(AppProtocol.DIN,))
    assert answer(events).response_code is APC.FAILED_NO_NEGOTIATION


def test_first_frame_must_be_sap() -> None:
    secc = SeccNegotiator(make_evse("dc-bidi"), clock=clock)
    events = secc.receive(int(PayloadType.MAINSTREAM), b"\x80\x00", 0.1)
    assert not [e for e in events if isinstance(e, SendMessage)]
    assert secc.ended and not secc.ok


def test_secc_waits_for_sap_only_so_long() -> None:
    secc = SeccNegotiator(make_evse("dc-bidi"), clock=clock, now=0.0)
    deadline = secc.next_deadline()
    assert deadline is not None and deadline == pytest.approx(20.0)
    assert secc.handle_timer(deadline - 0.01) == []
    assert any(isinstance(e, SessionEnded) for e in secc.handle_timer(deadline))


def test_choose_is_pure() -> None:
    offers = [Offer(AppProtocol.ISO20, NS_DC, 1, 0), Offer(AppProtocol.DIN, NS_DIN, 2, 0)]
    assert choose([entry(NS_ISO2, 1, 1, major=2)], offers) is None
    got = choose([entry(NS_ISO2, 1, 1, major=2), entry(NS_DIN, 2, 3, major=2), entry(NS_DC, 3, 2)], offers)
    assert got is not None and got.protocol is AppProtocol.ISO20 and got.schema_id == 3


def test_parse_protocols() -> None:
    assert parse_protocols(None) == ALL_PROTOCOLS
    assert parse_protocols(["din", "iso2,iso20"]) == (AppProtocol.DIN, AppProtocol.ISO2, AppProtocol.ISO20)
    assert parse_protocols(["-20", "din", "iso20"]) == (AppProtocol.ISO20, AppProtocol.DIN)
    with pytest.raises(ValueError):
        parse_protocols(["iso3"])


def test_evcc_rejects_a_schema_id_it_did_not_offer() -> None:
    evcc = EvccNegotiator(make_ev("cybertruck-awd"), protocols=(AppProtocol.ISO20,), clock=clock)
    sent = [e for e in evcc.start(0.0) if isinstance(e, SendMessage)]
    req = m.decode(sent[0].payload, "sap")
    ids = {e.schema_id for e in req.app_protocol}
    bogus = m.SupportedAppProtocolRes(response_code=APC.OK_SUCCESSFUL_NEGOTIATION, schema_id=max(ids) + 1)
    events = evcc.receive(int(PayloadType.SAP), m.encode(bogus), 0.1)
    assert any(isinstance(e, ProtocolError) and e.code == "UnexpectedResponse" for e in events)
    assert evcc.ended and not evcc.ok


def test_evcc_ends_on_failed_no_negotiation() -> None:
    evcc = EvccNegotiator(make_ev("cybertruck-awd"), protocols=(AppProtocol.ISO20,), clock=clock)
    evcc.start(0.0)
    events = evcc.receive(int(PayloadType.SAP), m.encode(m.SupportedAppProtocolRes(response_code=APC.FAILED_NO_NEGOTIATION)), 0.1)
    assert any(isinstance(e, ProtocolError) and e.code == "Failed_NoNegotiation" for e in events)
    assert evcc.ended and not evcc.ok


@pytest.mark.parametrize(("ev_service", "evse", "family"), [("DC_BPT", "dc-bidi", "DC"), ("AC_BPT", "wall-connector", "AC")])
def test_iso20_session_through_both_negotiators(ev_service: str, evse: str, family: str) -> None:
    from iso15118.session.services import EnergyService

    ev = make_ev("cybertruck-awd")
    evcc = EvccNegotiator(ev, protocols=(AppProtocol.ISO20,), clock=clock,
                          configs={AppProtocol.ISO20: EvccConfig(service=EnergyService[ev_service], max_loops=3)})
    secc = SeccNegotiator(make_evse(evse), configs={AppProtocol.ISO20: SeccConfig()}, clock=clock)
    tr = run_pair(evcc, secc, max_time=900.0)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert evcc.protocol is secc.protocol is AppProtocol.ISO20
    assert secc.core.family.value == family
    assert tr.sent("evcc")[0] == "supportedAppProtocolReq" and tr.sent("evcc")[-1] == "SessionStopReq"
    assert evcc.loops == 3 and evcc.rx == evcc.tx and secc.rx == secc.tx == evcc.tx


def test_evcc_refuses_a_service_its_vehicle_lacks_before_sending() -> None:
    from iso15118.session.events import LocalFault
    from iso15118.session.services import EnergyService

    evcc = EvccNegotiator(make_ev("cybertruck-rwd"), clock=clock,
                          configs={AppProtocol.ISO20: EvccConfig(service=EnergyService.DC_BPT)})
    events = evcc.start(0.0)
    assert not [e for e in events if isinstance(e, SendMessage)]
    assert any(isinstance(e, LocalFault) for e in events) and evcc.ended and not evcc.ok
