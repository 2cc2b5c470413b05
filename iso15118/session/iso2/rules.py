"""The one table of legal ISO 15118-2 message sequences, shared by the -2 EVCC and SECC cores.

As in :mod:`iso15118.session.rules` (the -20 table): a state names the last completed
request/response exchange; a row of :data:`TRANSITIONS` says that in ``state`` request
``request`` is legal and, when the exchange ends with ``outcome``, the session goes to ``next``;
``family`` restricts a row to AC or DC.  The SECC answers a request the table does not allow
with ``FAILED_SequenceError`` and ends the session; the EVCC asks :func:`accepts` before it
sends; both move with :func:`next_state` on :func:`outcome` of the same request/response pair.

SupportedAppProtocol is not part of this table: :mod:`iso15118.session.negotiation` answers it
for every protocol and hands the connection over in :attr:`State.APP_PROTOCOL`.

Sources: the DIN/-2 digest §3.1-§3.2 (Josev, EVerest and RISE-V2G state tables) and the -2
XSDs.  Decisions on its DISAGREE / UNVERIFIED items (``session/README.md`` lists them too):

* D7 early SessionStop: SessionStopReq(Terminate) is accepted in every state after
  SessionSetup (EVerest; real EVs send it early, digest §6 #14/#15); Pause only after
  PowerDelivery(Stop) / WeldingDetection (EVerest [V2G2-739]).  Our EVCC stops only after
  PowerDelivery(Stop), which every SECC accepts.
* D8 / U6 DC after Renegotiate: after the renegotiated ChargeParameterDiscoveryRes the SECC
  accepts CableCheckReq (EVerest, RISE-V2G) and PowerDeliveryReq(Start) (Josev); our EVCC
  goes straight to PowerDelivery(Start) -- the DC output never opened, the isolation was
  checked in this session -- unless ``EvccConfig.recheck_after_renegotiation``.
* Resume (§3.9): after ``OK_OldSessionJoined`` the whole sequence runs again
  (ServiceDiscovery ... ChargeParameterDiscovery), as Josev's and RISE-V2G's EVCCs do; the
  SECC offers only the payment option chosen before.
* PowerDeliveryReq(Stop) is also legal before the first Start (after ChargeParameterDiscovery
  or PreCharge): an EV that gives up before charging still leaves through SessionStop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from iso15118.facts.codes import is_failure_code
from iso15118.facts.namespaces import Family
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import TIMERS_ISO2, Timers, message_timing
from iso15118.messages import iso2 as m2

__all__ = [
    "LOOP_TIMER",
    "MESSAGES",
    "MessageSpec",
    "Outcome",
    "State",
    "TIMERS",
    "TRANSITIONS",
    "Timers",
    "Transition",
    "accepts",
    "allowed_requests",
    "is_failure",
    "next_state",
    "outcome",
    "request_outcome",
    "spec_for_request",
    "spec_for_response",
]

TIMERS = TIMERS_ISO2
PROTOCOL = "iso2"
SCHEMA_KEY = "iso2"


class Outcome(str, enum.Enum):
    """How a -2 request/response exchange ended."""

    OK = "ok"
    NEW = "new"
    RESUMED = "resumed"
    FINISHED = "finished"
    ONGOING = "ongoing"
    START = "Start"
    STOP = "Stop"
    RENEGOTIATE = "Renegotiate"
    TERMINATE = "Terminate"
    PAUSE = "Pause"


@dataclass(frozen=True)
class MessageSpec:
    """Static facts about one -2 request/response pair (all in V2GTP payload type 0x8001)."""

    request: str
    response: str
    evcc_timeout: float
    secc_performance: float
    family: Family | None = None
    payload_type: PayloadType = PayloadType.EXI_ENCODED
    schema_key: str = SCHEMA_KEY


def _spec(req: str, family: Family | None = None) -> MessageSpec:
    t = message_timing(PROTOCOL, req)
    return MessageSpec(req, req[:-3] + "Res", t.evcc_timeout, t.secc_performance, family)


MESSAGES: dict[str, MessageSpec] = {
    s.request: s
    for s in (
        _spec("SessionSetupReq"),
        _spec("ServiceDiscoveryReq"),
        _spec("ServiceDetailReq"),
        _spec("PaymentServiceSelectionReq"),
        _spec("PaymentDetailsReq"),
        _spec("AuthorizationReq"),
        _spec("ChargeParameterDiscoveryReq"),
        _spec("CableCheckReq", Family.DC),
        _spec("PreChargeReq", Family.DC),
        _spec("PowerDeliveryReq"),
        _spec("ChargingStatusReq", Family.AC),
        _spec("CurrentDemandReq", Family.DC),
        _spec("WeldingDetectionReq", Family.DC),
        _spec("MeteringReceiptReq"),
        _spec("SessionStopReq"),
    )
}
"""Request element name -> :class:`MessageSpec` (timing from ``iso15118.facts.timing``)."""

_BY_RESPONSE = {s.response: s for s in MESSAGES.values()}


def spec_for_request(name: str) -> MessageSpec | None:
    return MESSAGES.get(name)


def spec_for_response(name: str) -> MessageSpec | None:
    return _BY_RESPONSE.get(name)


class State(str, enum.Enum):
    """Where a -2 session is: named after the last completed exchange."""

    APP_PROTOCOL = "AppProtocolNegotiated"
    SESSION_SETUP = "SessionSetup"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    SERVICE_DETAIL = "ServiceDetail"
    PAYMENT_SELECTED = "PaymentServiceSelection"
    PAYMENT_DETAILS = "PaymentDetails"
    AUTHORIZATION_ONGOING = "AuthorizationOngoing"
    AUTHORIZED = "Authorized"
    CPD_ONGOING = "ChargeParameterDiscoveryOngoing"
    CHARGE_PARAMETERS = "ChargeParameterDiscovery"
    CABLE_CHECK_ONGOING = "CableCheckOngoing"
    CABLE_CHECKED = "CableChecked"
    PRE_CHARGE = "PreCharge"
    CHARGING = "ChargeLoop"
    RENEGOTIATING = "Renegotiation"
    RENEGOTIATED = "Renegotiated"
    STOPPED = "PowerStopped"
    WELDING_DETECTION = "WeldingDetection"
    ENDED = "Ended"
    PAUSED = "Paused"


@dataclass(frozen=True)
class Transition:
    state: State
    request: str
    outcome: Outcome
    next: State
    family: Family | None = None


S = State
O = Outcome
_CPD = "ChargeParameterDiscoveryReq"
_PD = "PowerDeliveryReq"
_STOP = "SessionStopReq"

# SessionStop(Terminate) in every state after SessionSetup (decision D7)
_EARLY_STOP = tuple(
    Transition(st, _STOP, O.TERMINATE, S.ENDED)
    for st in State
    if st not in (S.APP_PROTOCOL, S.ENDED, S.PAUSED, S.STOPPED, S.WELDING_DETECTION)
)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.APP_PROTOCOL, "SessionSetupReq", O.NEW, S.SESSION_SETUP),
    Transition(S.APP_PROTOCOL, "SessionSetupReq", O.RESUMED, S.SESSION_SETUP),
    Transition(S.SESSION_SETUP, "ServiceDiscoveryReq", O.OK, S.SERVICE_DISCOVERY),
    Transition(S.SERVICE_DISCOVERY, "ServiceDetailReq", O.OK, S.SERVICE_DETAIL),
    Transition(S.SERVICE_DETAIL, "ServiceDetailReq", O.OK, S.SERVICE_DETAIL),
    Transition(S.SERVICE_DISCOVERY, "PaymentServiceSelectionReq", O.OK, S.PAYMENT_SELECTED),
    Transition(S.SERVICE_DETAIL, "PaymentServiceSelectionReq", O.OK, S.PAYMENT_SELECTED),
    # PnC (Contract): the contract chain first, for a GenChallenge
    Transition(S.PAYMENT_SELECTED, "PaymentDetailsReq", O.OK, S.PAYMENT_DETAILS),
    # identification: EIM right after the selection, PnC after PaymentDetails (the first
    # AuthorizationReq signed); a poll while the SECC says Ongoing
    *(
        Transition(st, "AuthorizationReq", out, nxt)
        for st in (S.PAYMENT_SELECTED, S.PAYMENT_DETAILS, S.AUTHORIZATION_ONGOING)
        for out, nxt in ((O.FINISHED, S.AUTHORIZED), (O.ONGOING, S.AUTHORIZATION_ONGOING))
    ),
    # charge parameters (and the SAScheduleList), also polled while Ongoing
    *(
        Transition(st, _CPD, out, nxt)
        for st in (S.AUTHORIZED, S.CPD_ONGOING)
        for out, nxt in ((O.FINISHED, S.CHARGE_PARAMETERS), (O.ONGOING, S.CPD_ONGOING))
    ),
    # DC: isolation check and pre-charge
    *(
        Transition(st, "CableCheckReq", out, nxt, Family.DC)
        for st in (S.CHARGE_PARAMETERS, S.CABLE_CHECK_ONGOING, S.RENEGOTIATED)
        for out, nxt in ((O.FINISHED, S.CABLE_CHECKED), (O.ONGOING, S.CABLE_CHECK_ONGOING))
    ),
    Transition(S.CABLE_CHECKED, "PreChargeReq", O.OK, S.PRE_CHARGE, Family.DC),
    Transition(S.PRE_CHARGE, "PreChargeReq", O.OK, S.PRE_CHARGE, Family.DC),
    # power delivery: AC after the charge parameters, DC after pre-charge; after a
    # renegotiation both (decision D8)
    Transition(S.CHARGE_PARAMETERS, _PD, O.START, S.CHARGING, Family.AC),
    Transition(S.PRE_CHARGE, _PD, O.START, S.CHARGING, Family.DC),
    Transition(S.RENEGOTIATED, _PD, O.START, S.CHARGING),
    *(Transition(st, _PD, O.STOP, S.STOPPED) for st in (S.CHARGE_PARAMETERS, S.PRE_CHARGE, S.CHARGING, S.RENEGOTIATED)),
    Transition(S.CHARGING, _PD, O.RENEGOTIATE, S.RENEGOTIATING),
    # charge loops
    Transition(S.CHARGING, "ChargingStatusReq", O.OK, S.CHARGING, Family.AC),
    Transition(S.CHARGING, "CurrentDemandReq", O.OK, S.CHARGING, Family.DC),
    # PnC: a signed MeteringReceipt when the loop response said ReceiptRequired (the SECC
    # accepts nothing else then, and nothing of the kind otherwise)
    Transition(S.CHARGING, "MeteringReceiptReq", O.OK, S.CHARGING),
    # renegotiation: ChargeParameterDiscovery again (polled while Ongoing)
    Transition(S.RENEGOTIATING, _CPD, O.FINISHED, S.RENEGOTIATED),
    Transition(S.RENEGOTIATING, _CPD, O.ONGOING, S.RENEGOTIATING),
    # after power stopped
    Transition(S.STOPPED, "WeldingDetectionReq", O.OK, S.WELDING_DETECTION, Family.DC),
    Transition(S.WELDING_DETECTION, "WeldingDetectionReq", O.OK, S.WELDING_DETECTION, Family.DC),
    *(
        Transition(st, _STOP, out, nxt)
        for st in (S.STOPPED, S.WELDING_DETECTION)
        for out, nxt in ((O.TERMINATE, S.ENDED), (O.PAUSE, S.PAUSED))
    ),
    *_EARLY_STOP,
)

_INDEX: dict[tuple[State, str], list[Transition]] = {}
for _t in TRANSITIONS:
    _INDEX.setdefault((_t.state, _t.request), []).append(_t)


def _rows(state: State, request: str, family: Family | None) -> list[Transition]:
    return [t for t in _INDEX.get((state, request), ()) if t.family is None or family is None or t.family is family]


def accepts(state: State, request: str, family: Family | None) -> bool:
    """True if ``request`` may be sent/received in ``state`` (for the session's energy family)."""
    return bool(_rows(state, request, family))


def allowed_requests(state: State, family: Family | None) -> list[str]:
    """The requests legal in ``state``, in table order."""
    return list(dict.fromkeys(t.request for t in TRANSITIONS if t.state is state and (
        t.family is None or family is None or t.family is family)))


def next_state(state: State, request: str, result: Outcome, family: Family | None) -> State:
    """The state after the exchange; KeyError when the table has no such row."""
    for t in _rows(state, request, family):
        if t.outcome is result:
            return t.next
    raise KeyError(f"{request} with outcome {result.value} is not allowed in {state.value}")


def outcome(request: Any, response: Any) -> Outcome:
    """The outcome of a request/response pair (typed -2 body elements or SAP messages)."""
    name = type(request).__name__
    if name == "SessionSetupReq":
        code = response.response_code
        return Outcome.RESUMED if code is m2.ResponseCode.OK_OLD_SESSION_JOINED else Outcome.NEW
    if name in ("AuthorizationReq", "ChargeParameterDiscoveryReq", "CableCheckReq"):
        done = response.evse_processing is m2.EVSEProcessing.FINISHED
        return Outcome.FINISHED if done else Outcome.ONGOING
    if name == "PowerDeliveryReq":
        return Outcome(request.charge_progress.value)
    if name == "SessionStopReq":
        return Outcome(request.charging_session.value)
    return Outcome.OK


def request_outcome(request: Any) -> Outcome | None:
    """The outcome when the request alone decides it (PowerDelivery, SessionStop), so the SECC
    can refuse an illegal step before acting on it; else None."""
    name = type(request).__name__
    if name == "PowerDeliveryReq":
        return Outcome(request.charge_progress.value)
    if name == "SessionStopReq":
        return Outcome(request.charging_session.value)
    return None


def is_failure(response: Any) -> bool:
    """True if the response carries a FAILED* code (it ends the session, digest §5.4)."""
    code = getattr(response, "response_code", None)
    return is_failure_code(getattr(code, "value", ""))


LOOP_TIMER: dict[str, str] = {
    "AuthorizationReq": "evcc_ongoing",
    "ChargeParameterDiscoveryReq": "evcc_ongoing",
    "CableCheckReq": "evcc_cable_check",
    "PreChargeReq": "evcc_pre_charge",
    "WeldingDetectionReq": "evcc_welding_detection",
}
"""Repeatable -2 requests -> the EVCC timer (field of :class:`Timers`) bounding the whole loop."""
