"""DIN SPEC 70121 sessions (session/din): our EVCC against our SECC in memory on a fake clock and
over loopback TCP, the rule table, the SECC's response codes to a scripted EV, and EVCCs that
must refuse deliberately broken chargers."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from iso15118 import messages as m
from iso15118.facts.namespaces import NS_DC, NS_DIN, AppProtocol
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import message_timing
from iso15118.messages import din
from iso15118.session import registry
from iso15118.session.din import DinEvccConfig, DinSeccConfig, DinSeccSession
from iso15118.session.din import rules as R
from iso15118.session.din.values import pv, to_decimal
from iso15118.session.events import PowerChanged, ProtocolError, SendMessage, SessionEnded
from iso15118.session.memory import Transcript, run_pair
from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
from iso15118.session.runner import run_evcc, start_secc
from iso15118.sim import make_ev, make_evse

EPOCH = 1_800_000_000
RC = din.ResponseCode
FULL_SEQUENCE = [
    "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq",
    "ContractAuthenticationReq", "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq",
    "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq",
]


def clock() -> float:
    return EPOCH


def din_pair(loops: int = 3, evse: Any = None, secc_cls: type[DinSeccSession] | None = None,
             **ev_cfg: Any) -> tuple[Any, Any, EvccNegotiator, SeccNegotiator]:
    ev = make_ev("cybertruck-awd")
    evse = evse or make_evse("dc-bidi")
    evcc = EvccNegotiator(ev, protocols=(AppProtocol.DIN,), clock=clock,
                          configs={AppProtocol.DIN: DinEvccConfig(max_loops=loops, **ev_cfg)})
    overrides = {}
    if secc_cls is not None:  # a deliberately broken charger: the same negotiation, another core
        real = registry.support(AppProtocol.DIN)
        assert real is not None
        overrides[AppProtocol.DIN] = dataclasses.replace(
            real, secc=lambda h: secc_cls(h.controller, None, now=h.now, clock=h.clock))
    secc = SeccNegotiator(evse, clock=clock, overrides=overrides)
    return ev, evse, evcc, secc


def run(evcc: Any, secc: Any, **kw: Any) -> Transcript:
    return run_pair(evcc, secc, max_time=900.0, **kw)


def dedup(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        if not out or out[-1] != n:
            out.append(n)
    return out


def test_din_session_in_memory_runs_to_session_stop() -> None:
    ev, evse, evcc, secc = din_pair(loops=4)
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert evcc.protocol is secc.protocol is AppProtocol.DIN
    assert dedup(tr.sent("evcc")) == FULL_SEQUENCE
    assert dedup(tr.sent("secc")) == [n[:-3] + "Res" for n in FULL_SEQUENCE]
    assert evcc.loops == 4 and secc.core.loops == 4
    assert evcc.rx == evcc.tx == secc.rx == secc.tx
    # energy flowed both in the charger's meter and in the truck's battery, and the contactors
    # are open at the end
    power = [e for e in tr.of("secc", PowerChanged)]
    assert len(power) == 4 and all(e.power_w > 0 for e in power)
    assert evse.meter.charged_wh > 0 and not evse.contactors_closed
    assert ev.energy_in_wh > 0 or ev.battery.soc > 50.0
    # every request on the wire carries the SECC's SessionID after SessionSetup
    sid = secc.core.session_id
    for ev_ in tr.of("evcc", SendMessage)[2:]:
        assert din.decode(ev_.payload).header.session_id == sid


def test_din_timing_is_dins_own() -> None:
    assert R.MESSAGES["PowerDeliveryReq"].evcc_timeout == 2.0  # -2: 5 s
    assert R.MESSAGES["CurrentDemandReq"].evcc_timeout == 0.25
    assert message_timing("iso2", "PowerDeliveryReq").evcc_timeout == 5.0
    assert R.loop_timer("PreChargeReq") == (7.0, "V2G_EVCC_PreCharge_Timeout")
    assert R.loop_timer("CableCheckReq") == (40.0, "V2G_EVCC_CableCheck_Timeout")
    assert R.loop_timer("ContractAuthenticationReq") == (60.0, "V2G_EVCC_Ongoing_Timeout")


def test_din_rule_table() -> None:
    S = R.State
    assert R.allowed_requests(S.APP_PROTOCOL) == ["SessionSetupReq"]
    # the poll is not optional (pyPLC vs Alpitronic, digest §2.7)
    assert not R.accepts(S.PAYMENT_SELECTED, "ChargeParameterDiscoveryReq")
    # early stop accepted before power, never inside the charge loop
    assert R.accepts(S.CABLE_CHECKED, "SessionStopReq") and not R.accepts(S.CHARGING, "SessionStopReq")
    assert not R.accepts(S.POWER_ON, "PowerDeliveryReq")
    with pytest.raises(KeyError):
        R.next_state(S.CHARGING, "PowerDeliveryReq", R.Outcome.START)
    assert R.next_state(S.CHARGING, "PowerDeliveryReq", R.Outcome.STOP) is S.STOPPED


def test_physical_values() -> None:
    assert (pv(Decimal(400), din.UnitSymbol.A).value, pv(Decimal(400), din.UnitSymbol.A).multiplier) == (4000, -1)
    assert to_decimal(pv(Decimal(150000), din.UnitSymbol.W)) == 150000
    assert to_decimal(pv(Decimal("398.5"), din.UnitSymbol.V)) == Decimal("398.5")


# ------------------------------------------------------------------ a scripted EV against the SECC


class Ev:
    """Hand-made DIN requests to our SECC (after a DIN SupportedAppProtocol)."""

    def __init__(self, **cfg: Any) -> None:
        self.secc = SeccNegotiator(make_evse("dc-bidi"), clock=clock, configs={AppProtocol.DIN: DinSeccConfig(**cfg)})
        self.now = 0.0
        self.sid = bytes(8)
        sap = m.SupportedAppProtocolReq(app_protocol=[m.AppProtocol(
            protocol_namespace=NS_DIN, version_number_major=2, version_number_minor=0, schema_id=1, priority=1)])
        events = self.secc.receive(int(PayloadType.SAP), m.encode(sap), 0.0)
        res = [e for e in events if isinstance(e, SendMessage)][0].message
        assert res.response_code is m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION and res.schema_id == 1

    def send(self, body: Any, sid: bytes | None = None) -> Any:
        self.now += 0.01
        events = self.secc.receive(0x8001, din.encode(din.message(self.sid if sid is None else sid, body)), self.now)
        sends = [e for e in events if isinstance(e, SendMessage)]
        if not sends:
            return None
        doc = din.decode(sends[0].payload)
        if isinstance(body, din.SessionSetupReq):
            self.sid = doc.header.session_id
        return doc.body.body_element

    def status(self) -> din.DCEVStatus:
        return din.DCEVStatus(ev_ready=True, ev_error_code=din.DCEVErrorCode.NO_ERROR, evresssoc=50)

    def to_authorized(self) -> None:
        assert self.send(din.SessionSetupReq(evcc_id=bytes(6))).response_code is RC.OK_NEW_SESSION_ESTABLISHED
        assert self.send(din.ServiceDiscoveryReq()).response_code is RC.OK
        assert self.send(self.payment()).response_code is RC.OK
        res = self.send(din.ContractAuthenticationReq())
        assert res.response_code is RC.OK and res.evse_processing is din.EVSEProcessing.FINISHED

    def payment(self, option: din.PaymentOption = din.PaymentOption.EXTERNAL_PAYMENT, ids: tuple[int, ...] = (1,)) -> Any:
        return din.ServicePaymentSelectionReq(selected_payment_option=option, selected_service_list=din.SelectedServiceList(
            selected_service=[din.SelectedService(service_id=i) for i in ids]))

    def cpd(self, transfer: din.EVRequestedEnergyTransfer = din.EVRequestedEnergyTransfer.DC_EXTENDED,
            param: Any = None) -> Any:
        return din.ChargeParameterDiscoveryReq(
            ev_requested_energy_transfer_type=transfer,
            ev_charge_parameter=param or din.DCEVChargeParameter(
                dc_ev_status=self.status(), ev_maximum_current_limit=pv(200, din.UnitSymbol.A),
                ev_maximum_voltage_limit=pv(800, din.UnitSymbol.V)))

    @property
    def ended(self) -> bool:
        return bool(self.secc.ended)


def test_secc_answers_the_dc_eim_sequence() -> None:
    ev = Ev()
    ev.to_authorized()
    res = ev.send(ev.cpd())
    assert res.response_code is RC.OK and isinstance(res.evse_charge_parameter, din.DCEVSEChargeParameter)
    assert to_decimal(res.evse_charge_parameter.evse_maximum_voltage_limit) > 0
    res = ev.send(din.CableCheckReq(dc_ev_status=ev.status()))
    while res.evse_processing is din.EVSEProcessing.ONGOING:
        ev.now += 0.5
        res = ev.send(din.CableCheckReq(dc_ev_status=ev.status()))
    assert res.dc_evse_status.evse_status_code is din.DCEVSEStatusCode.EVSE_READY
    assert res.dc_evse_status.evse_isolation_status is din.IsolationLevel.VALID
    # an early stop before power is accepted (EVerest's reading, digest §2.3)
    assert ev.send(din.SessionStopReq()).response_code is RC.OK
    assert ev.ended and ev.secc.ok


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("cpd_before_authorization", RC.FAILED_SEQUENCE_ERROR),
        ("wrong_session_id", RC.FAILED_UNKNOWN_SESSION),
        ("contract_payment", RC.FAILED_PAYMENT_SELECTION_INVALID),
        ("two_services", RC.FAILED_SERVICE_SELECTION_INVALID),
        ("ac_transfer", RC.FAILED_WRONG_ENERGY_TRANSFER_TYPE),
        ("ac_parameter", RC.FAILED_WRONG_CHARGE_PARAMETER),
        ("stop_in_charge_loop", RC.FAILED_SEQUENCE_ERROR),
        ("service_detail", RC.FAILED_SEQUENCE_ERROR),
    ],
)
def test_secc_refuses_with_the_right_code(script: str, code: din.ResponseCode) -> None:
    ev = Ev()
    if script == "cpd_before_authorization":
        ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
        ev.send(din.ServiceDiscoveryReq())
        ev.send(ev.payment())
        res = ev.send(ev.cpd())
    elif script == "wrong_session_id":
        ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
        res = ev.send(din.ServiceDiscoveryReq(), sid=b"\x01" * 8)
    elif script in ("contract_payment", "two_services"):
        ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
        ev.send(din.ServiceDiscoveryReq())
        res = ev.send(ev.payment(din.PaymentOption.CONTRACT) if script == "contract_payment" else ev.payment(ids=(1, 2)))
    elif script == "service_detail":
        ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
        res = ev.send(din.ServiceDetailReq(service_id=1))
    else:
        ev.to_authorized()
        if script == "ac_transfer":
            res = ev.send(ev.cpd(din.EVRequestedEnergyTransfer.AC_THREE_PHASE_CORE))
        elif script == "ac_parameter":
            res = ev.send(ev.cpd(param=din.ACEVChargeParameter(
                departure_time=0, e_amount=pv(1000, din.UnitSymbol.WH), ev_max_voltage=pv(240, din.UnitSymbol.V),
                ev_max_current=pv(32, din.UnitSymbol.A), ev_min_current=pv(6, din.UnitSymbol.A))))
        else:
            ev.send(ev.cpd())
            res = ev.send(din.CableCheckReq(dc_ev_status=ev.status()))
            while res.evse_processing is din.EVSEProcessing.ONGOING:
                ev.now += 0.5
                res = ev.send(din.CableCheckReq(dc_ev_status=ev.status()))
            ev.send(din.PreChargeReq(dc_ev_status=ev.status(), ev_target_voltage=pv(0, din.UnitSymbol.V),
                                     ev_target_current=pv(1, din.UnitSymbol.A)))
            pd = din.PowerDeliveryReq(ready_to_charge_state=True)
            assert ev.send(pd).response_code is RC.OK
            res = ev.send(din.SessionStopReq())
    assert res is not None and res.response_code is code, res
    assert type(res).__name__ == {"cpd_before_authorization": "ChargeParameterDiscoveryRes",
                                  "wrong_session_id": "ServiceDiscoveryRes", "service_detail": "ServiceDetailRes",
                                  "stop_in_charge_loop": "SessionStopRes"}.get(script, type(res).__name__)
    assert ev.ended and not ev.secc.ok


# ------------------------------------------------------------------ broken chargers must fail our EVCC


class WrongSessionIdSecc(DinSeccSession):
    """Answers ServiceDiscovery with a SessionID other than the one it established."""

    def _on_service_discovery(self, req: Any, now: float) -> Any:
        self.session_id = bytes(reversed(self.session_id))
        return super()._on_service_discovery(req, now)


class IsolationFaultSecc(DinSeccSession):
    """Finishes the cable check with an isolation fault and still says EVSE_Ready."""

    def _on_cable_check(self, req: Any, now: float) -> Any:
        res = super()._on_cable_check(req, now)
        if res.evse_processing is din.EVSEProcessing.FINISHED:
            res = dataclasses.replace(res, dc_evse_status=dataclasses.replace(
                res.dc_evse_status, evse_isolation_status=din.IsolationLevel.FAULT))
        return res


class SkipsAuthorizationSecc(DinSeccSession):
    """Answers ContractAuthenticationReq with a SessionStopRes (a response of the wrong type)."""

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Any]:
        if isinstance(din.decode(payload).body.body_element, din.ContractAuthenticationReq):
            self.rx, self.tx = self.rx + 1, self.tx + 1
            wrong = din.encode(din.message(self.session_id, din.SessionStopRes(response_code=RC.OK)))
            return [SendMessage(0x8001, wrong, None)]
        return super().receive(payload_type, payload, now)


class SilentInChargeLoopSecc(DinSeccSession):
    """Stops answering in the charge loop (it never sends the CurrentDemandRes)."""

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Any]:
        if self.loops >= 2 and R.element_name(din.decode(payload).body.body_element) == "CurrentDemandReq":
            self.rx += 1
            return []
        return super().receive(payload_type, payload, now)


@pytest.mark.parametrize(
    ("broken", "code"),
    [(WrongSessionIdSecc, "UnknownSession"), (IsolationFaultSecc, "CableCheckFailed"),
     (SkipsAuthorizationSecc, "UnexpectedResponse"), (SilentInChargeLoopSecc, "Timeout")],
    ids=["session-id", "isolation", "wrong-response", "silent"],
)
def test_our_evcc_refuses_a_broken_charger(broken: type[DinSeccSession], code: str) -> None:
    _, _, evcc, secc = din_pair(secc_cls=broken)
    tr = run(evcc, secc)
    assert not evcc.ok
    errors = [e for e in tr.of("evcc", ProtocolError)]
    assert errors and errors[0].code == code, errors
    if broken is SilentInChargeLoopSecc:  # DIN's own 0.25 s CurrentDemand timeout
        sent = [t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SendMessage)][-1]
        end = [t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SessionEnded)][0]
        assert end - sent == pytest.approx(0.25)


def test_evse_stop_request_ends_the_session_cleanly() -> None:
    _, evse, evcc, secc = din_pair(loops=50)
    tr = run(evcc, secc, hooks=[(3.0, lambda t: secc.notify("Terminate"))])
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert 0 < evcc.core.loops < 50
    assert dedup(tr.sent("evcc"))[-3:] == ["PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]


def test_evse_stop_before_power_ends_with_session_stop() -> None:
    # the charger shuts down during the cable check: no power, a clean SessionStop on both sides
    _, evse, evcc, secc = din_pair(loops=5, evse=make_evse("dc-bidi", cable_check_duration=5.0))
    tr = run(evcc, secc, hooks=[(2.0, lambda t: secc.notify("Terminate"))])
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    sent = dedup(tr.sent("evcc"))
    assert sent[-2:] == ["CableCheckReq", "SessionStopReq"] and "PowerDeliveryReq" not in sent
    assert evse.meter.charged_wh == 0


def test_secc_sequence_timeout() -> None:
    ev = Ev()
    ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
    deadline = ev.secc.next_deadline()
    assert deadline == pytest.approx(ev.now + 60.0)
    events = ev.secc.handle_timer(deadline)
    assert any(isinstance(e, ProtocolError) and e.code == "Timeout" for e in events) and ev.ended


# ------------------------------------------------------------------ negotiation with DIN in the list


def sap_entries(*entries: tuple[str, int, int]) -> bytes:
    return m.encode(m.SupportedAppProtocolReq(app_protocol=[
        m.AppProtocol(protocol_namespace=ns, version_number_major=major, version_number_minor=0, schema_id=i, priority=prio)
        for i, (ns, major, prio) in enumerate(entries, start=1)]))


def answer(secc: SeccNegotiator, payload: bytes) -> Any:
    events = secc.receive(0x8001, payload, 0.0)
    return [e for e in events if isinstance(e, SendMessage)][0].message


def test_ev_priority_between_din_and_20() -> None:
    # DIN first (priority 1) wins on a DC charger without TLS ...
    secc = SeccNegotiator(make_evse("dc-bidi"), clock=clock)
    res = answer(secc, sap_entries((NS_DC, 1, 2), (NS_DIN, 2, 1)))
    assert res.schema_id == 2 and secc.protocol is AppProtocol.DIN
    # ... -20 when it comes first
    secc = SeccNegotiator(make_evse("dc-bidi"), clock=clock)
    res = answer(secc, sap_entries((NS_DC, 1, 1), (NS_DIN, 2, 2)))
    assert res.schema_id == 1 and secc.protocol is AppProtocol.ISO20
    # DIN is never served over TLS ([V2G-DC-618]) nor by an AC-only charger
    for evse, tls in (("dc-bidi", True), ("wall-connector", False)):
        secc = SeccNegotiator(make_evse(evse), clock=clock, tls=tls)
        res = answer(secc, sap_entries((NS_DIN, 2, 1)))
        assert res.response_code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION and res.schema_id is None


def test_truck_falls_back_to_din_but_v2h_stays_20() -> None:
    # a charger serving DIN only: the truck (default offer: -20 first, then DIN) charges over DIN
    for profile in ("cybertruck-awd", "cybertruck-rwd"):
        evcc = EvccNegotiator(make_ev(profile), clock=clock, configs={AppProtocol.DIN: DinEvccConfig(max_loops=2)})
        secc = SeccNegotiator(make_evse("dc-bidi"), protocols=(AppProtocol.DIN,), clock=clock)
        run(evcc, secc)
        assert evcc.ok and secc.ok and evcc.protocol is AppProtocol.DIN, (profile, evcc.end_reason)
        offered = [o.protocol for o in evcc.offered.values()]
        assert offered[0] is AppProtocol.ISO20 and offered[-1] is AppProtocol.DIN
    # asked for V2H (DC_BPT), the truck does not offer DIN: no common protocol with that charger
    from iso15118.session import EvccConfig
    from iso15118.session.services import EnergyService

    evcc = EvccNegotiator(make_ev("cybertruck-awd"), clock=clock,
                          configs={AppProtocol.ISO20: EvccConfig(service=EnergyService.DC_BPT)})
    secc = SeccNegotiator(make_evse("dc-bidi"), protocols=(AppProtocol.DIN,), clock=clock)
    run(evcc, secc)
    assert not evcc.ok and AppProtocol.DIN not in [o.protocol for o in evcc.offered.values()]
    assert "Failed_NoNegotiation" in evcc.end_reason


# ------------------------------------------------------------------ over loopback TCP, and the oracle


def test_din_over_loopback_tcp() -> None:
    # both ends share one event loop on a busy CI machine: DIN's 0.25 s CurrentDemand timeout is
    # relaxed 4x here (the fake-clock tests hold the standard values)
    async def scenario() -> tuple[Any, Any]:
        server = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, None, linger=0.5, protocols=(AppProtocol.DIN,))
        try:
            r = await run_evcc(make_ev("cybertruck-awd"), "::1", server.port, None,
                               configs={AppProtocol.DIN: DinEvccConfig(max_loops=3, timeout_scale=4.0)})
            s = (await server.wait_sessions(1, 20))[0]
        finally:
            await server.aclose()
        return r, s

    r, s = asyncio.run(scenario())
    assert r.ok and s.ok, (r.reason, s.reason)
    assert r.protocol is s.protocol is AppProtocol.DIN
    assert r.loops == 3 and r.rx == r.tx == s.rx == s.tx


@pytest.mark.oracle
def test_every_din_message_of_a_session_through_the_oracle(oracle: Any) -> None:
    """Each distinct message both our cores put on the wire in a DIN session, the FAILED answers
    of the SECC included, is decoded by EXIficient, and EXIficient's encoding of what it read is
    our bytes, bit for bit."""
    frames: dict[tuple[int, bytes], str] = {}
    # a plain session, one with an Ongoing authorization, one the charger stops (EVSE_Shutdown)
    for evse, hooks in ((None, None), (make_evse("dc-bidi", authorization_delay=0.5), None), (None, "stop")):
        _, _, evcc, secc = din_pair(loops=2 if hooks is None else 50, evse=evse)
        tr = run(evcc, secc, hooks=[(2.0, lambda t, secc=secc: secc.notify("Terminate"))] if hooks else None)
        assert evcc.ok and secc.ok
        frames.update({(e.payload_type, e.payload): e.name for side in ("evcc", "secc") for e in tr.of(side, SendMessage)})
    for script, _code in [("contract_payment", None), ("wrong_session_id", None), ("ac_transfer", None)]:
        ev = Ev()
        msgs: list[Any] = []
        orig = ev.secc.receive

        def spy(pt: int, payload: bytes, now: float, orig: Any = orig, msgs: list[Any] = msgs) -> Any:
            out = orig(pt, payload, now)
            msgs.extend(e for e in out if isinstance(e, SendMessage))
            return out

        ev.secc.receive = spy  # type: ignore[method-assign]
        if script == "ac_transfer":
            ev.to_authorized()
            ev.send(ev.cpd(din.EVRequestedEnergyTransfer.AC_THREE_PHASE_CORE))
        elif script == "wrong_session_id":
            ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
            ev.send(din.ServiceDiscoveryReq(), sid=b"\x01" * 8)
        else:
            ev.send(din.SessionSetupReq(evcc_id=bytes(6)))
            ev.send(din.ServiceDiscoveryReq())
            ev.send(ev.payment(din.PaymentOption.CONTRACT))
        frames.update({(e.payload_type, e.payload): e.name for e in msgs})
    items = [("sap" if name.startswith("supportedAppProtocol") else "din", payload) for (_pt, payload), name in frames.items()]
    bodies = [din.decode(p).body.body_element for k, p in items if k == "din"]
    assert any(getattr(getattr(b, "dc_evse_status", None), "evse_notification", None) is din.EVSENotification.STOP_CHARGING
               for b in bodies)
    assert any(isinstance(b, din.ContractAuthenticationRes) and b.evse_processing is din.EVSEProcessing.ONGOING
               for b in bodies)
    names = set(frames.values())
    assert {n[:-3] + "Res" for n in FULL_SEQUENCE} <= names and set(FULL_SEQUENCE) <= names
    decoded = oracle.decode_many([(k, p, False) for k, p in items])
    bad = [(frames[(0x8001, p)], r.error) for (k, p), r in zip(items, decoded, strict=True) if not r.ok]
    assert not bad, bad
    again = oracle.encode_many([(k, r.data, False) for (k, _p), r in zip(items, decoded, strict=True)])
    differ = [frames[(0x8001, p)] for (_k, p), r in zip(items, again, strict=True) if r.unwrap() != p]
    assert not differ, differ
    assert len(items) >= 2 * len(set(FULL_SEQUENCE)) + 3


def test_ongoing_authorization_and_its_limit() -> None:
    # EIM identification takes 2 s: the EV polls ContractAuthentication, then goes on
    _, _, evcc, secc = din_pair(loops=1, evse=make_evse("dc-bidi", authorization_delay=2.0))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    polls = tr.sent("evcc").count("ContractAuthenticationReq")
    assert polls >= 10, polls
    # ... the charger that never decides: the EV gives up after V2G_EVCC_Ongoing_Timeout (60 s)
    _, _, evcc, secc = din_pair(loops=1, evse=make_evse("dc-bidi", authorization_delay=1e9))
    tr = run(evcc, secc)
    assert not evcc.ok and "V2G_EVCC_Ongoing_Timeout" in evcc.end_reason
    started = next(t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SendMessage)
                   and e.name == "ContractAuthenticationReq")
    ended = next(t for t, side, e in tr.entries if side == "evcc" and isinstance(e, SessionEnded))
    assert 60.0 <= ended - started <= 60.5


def test_a_charger_that_never_finishes_pre_charge() -> None:
    # the output voltage never comes within 20 V of the battery: 7 s V2G_EVCC_PreCharge_Timeout
    class StuckEvse(type(make_evse("dc-bidi"))):  # type: ignore[misc]
        def pre_charge(self, now: float, target_voltage: Decimal) -> Decimal:
            return Decimal(1)

    from iso15118.sim.evse import DC_BIDI

    _, _, evcc, secc = din_pair(loops=1, evse=StuckEvse(DC_BIDI))
    run(evcc, secc)
    assert not evcc.ok and "V2G_EVCC_PreCharge_Timeout" in evcc.end_reason
    # and the contactors never closed
    assert not secc.controller.contactors_closed
