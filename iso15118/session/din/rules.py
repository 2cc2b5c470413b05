"""The one table of legal DIN SPEC 70121 message sequences (DC, EIM), shared by the EVCC and the SECC.

The same shape as the -20 table (``iso15118.session.rules``): a state names the last completed
exchange; a row of :data:`TRANSITIONS` says that in ``state`` the request ``request`` is legal and,
when the exchange ends with ``outcome``, the session goes to ``next``.  The SECC answers a request
the table does not allow with its response type and ``FAILED_SequenceError`` and ends the session
([V2G-DC-390]); the EVCC asks :func:`accepts` before it sends; both compute :func:`outcome` from
the request/response pair and move with :func:`next_state`.

The table follows DIN/-2 digest §2.2 / §2.3 (EVerest's and Josev's SECC tables agree on every
row but two), with our decisions on the DISAGREE items:

* SessionStopReq before the charge loop (from SessionSetupRes up to PreCharge) is accepted, as
  EVerest does: real vehicles stop early (Josev answers FAILED_SequenceError there).  Inside the
  charge loop (after PowerDeliveryRes with ReadyToChargeState=true) it is not: the EV first ends
  power delivery with ReadyToChargeState=false.
* PowerDeliveryReq with ReadyToChargeState=true in the charge loop is refused (EVerest); Josev
  starts again.  DIN has no renegotiation and no pause.
* After PowerDelivery(false): WeldingDetectionReq or SessionStopReq (both SECCs); a second
  PowerDeliveryReq is not accepted (only Josev allows it).
* PreCharge may be left with PowerDelivery(false) (the EV gives up before power): then
  WeldingDetection / SessionStop as after a charge.
* A ContractAuthentication, ChargeParameterDiscovery or CableCheck poll repeated after its
  Finished answer is answered again (the -20 table does so for Authorization; both public SECCs
  would refuse it).  Real cars replayed against a charger faster than the recorded one do this.

Timing comes from ``iso15118.facts.timing`` (protocol ``"din"``: DIN's own EVCC timeouts) and
the loop limits from :func:`iso15118.facts.timing.loop_limit`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from iso15118.facts.codes import is_failure_code
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import TIMERS, Timers, loop_limit, message_timing
from iso15118.messages import din

__all__ = [
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
    "loop_timer",
    "next_state",
    "outcome",
    "request_outcome",
    "spec_for_request",
    "spec_for_response",
]

RC = din.ResponseCode


class Outcome(str, enum.Enum):
    """How a request/response exchange ended, as the rows of :data:`TRANSITIONS` name it."""

    OK = "ok"
    FINISHED = "finished"
    ONGOING = "ongoing"
    START = "ReadyToCharge"
    STOP = "NotReadyToCharge"


class State(str, enum.Enum):
    """Where a DIN session is: named after the last completed exchange."""

    APP_PROTOCOL = "AppProtocolNegotiated"
    SESSION_SETUP = "SessionSetup"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    PAYMENT_SELECTED = "ServicePaymentSelection"
    AUTHORIZATION_ONGOING = "ContractAuthenticationOngoing"
    AUTHORIZED = "ContractAuthentication"
    CHARGE_PARAMETERS_ONGOING = "ChargeParameterDiscoveryOngoing"
    CHARGE_PARAMETERS = "ChargeParameterDiscovery"
    CABLE_CHECK_ONGOING = "CableCheckOngoing"
    CABLE_CHECKED = "CableCheck"
    PRE_CHARGE = "PreCharge"
    POWER_ON = "PowerDeliveryOn"
    CHARGING = "CurrentDemand"
    STOPPED = "PowerDeliveryOff"
    WELDING_DETECTION = "WeldingDetection"
    ENDED = "Ended"


@dataclass(frozen=True)
class MessageSpec:
    """Static facts about one DIN request/response pair (every one travels as 0x8001)."""

    request: str
    response: str
    evcc_timeout: float
    secc_performance: float
    payload_type: PayloadType = PayloadType.EXI_ENCODED
    schema_key: str = "din"


def _spec(request: str) -> MessageSpec:
    t = message_timing("din", request)
    return MessageSpec(request, request[:-3] + "Res", t.evcc_timeout, t.secc_performance)


MESSAGES: dict[str, MessageSpec] = {
    s.request: s
    for s in map(
        _spec,
        (
            "SessionSetupReq",
            "ServiceDiscoveryReq",
            "ServicePaymentSelectionReq",
            "ContractAuthenticationReq",
            "ChargeParameterDiscoveryReq",
            "CableCheckReq",
            "PreChargeReq",
            "PowerDeliveryReq",
            "CurrentDemandReq",
            "WeldingDetectionReq",
            "SessionStopReq",
        ),
    )
}
"""The requests of a DIN DC EIM session (DIN/-2 digest §2.2) -> :class:`MessageSpec`.  The XSD's
ServiceDetail, PaymentDetails, Certificate*, ChargingStatus and MeteringReceipt are not part of it
(digest §2.1): a SECC answers them with FAILED_SequenceError."""

_BY_RESPONSE = {s.response: s for s in MESSAGES.values()}


def spec_for_request(name: str) -> MessageSpec | None:
    return MESSAGES.get(name)


def spec_for_response(name: str) -> MessageSpec | None:
    return _BY_RESPONSE.get(name)


@dataclass(frozen=True)
class Transition:
    state: State
    request: str
    outcome: Outcome
    next: State


S, O = State, Outcome
_STOP = "SessionStopReq"


def _poll(states: tuple[State, ...], request: str, ongoing: State, finished: State) -> list[Transition]:
    """An EVSEProcessing loop: Ongoing stays in ``ongoing``, Finished moves to ``finished``."""
    return [row for st in states for row in (Transition(st, request, O.ONGOING, ongoing),
                                              Transition(st, request, O.FINISHED, finished))]


TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.APP_PROTOCOL, "SessionSetupReq", O.OK, S.SESSION_SETUP),
    Transition(S.SESSION_SETUP, "ServiceDiscoveryReq", O.OK, S.SERVICE_DISCOVERY),
    Transition(S.SERVICE_DISCOVERY, "ServicePaymentSelectionReq", O.OK, S.PAYMENT_SELECTED),
    # a poll repeated after Finished is answered again (as -20's table does for Authorization):
    # real cars replayed against a charger faster than the recorded one repeat them
    *_poll((S.PAYMENT_SELECTED, S.AUTHORIZATION_ONGOING, S.AUTHORIZED), "ContractAuthenticationReq",
           S.AUTHORIZATION_ONGOING, S.AUTHORIZED),
    *_poll((S.AUTHORIZED, S.CHARGE_PARAMETERS_ONGOING, S.CHARGE_PARAMETERS), "ChargeParameterDiscoveryReq",
           S.CHARGE_PARAMETERS_ONGOING, S.CHARGE_PARAMETERS),
    *_poll((S.CHARGE_PARAMETERS, S.CABLE_CHECK_ONGOING, S.CABLE_CHECKED), "CableCheckReq", S.CABLE_CHECK_ONGOING,
           S.CABLE_CHECKED),
    Transition(S.CABLE_CHECKED, "PreChargeReq", O.OK, S.PRE_CHARGE),
    Transition(S.PRE_CHARGE, "PreChargeReq", O.OK, S.PRE_CHARGE),
    Transition(S.PRE_CHARGE, "PowerDeliveryReq", O.START, S.POWER_ON),
    Transition(S.PRE_CHARGE, "PowerDeliveryReq", O.STOP, S.STOPPED),
    Transition(S.POWER_ON, "CurrentDemandReq", O.OK, S.CHARGING),
    Transition(S.CHARGING, "CurrentDemandReq", O.OK, S.CHARGING),
    Transition(S.CHARGING, "PowerDeliveryReq", O.STOP, S.STOPPED),
    Transition(S.STOPPED, "WeldingDetectionReq", O.OK, S.WELDING_DETECTION),
    Transition(S.WELDING_DETECTION, "WeldingDetectionReq", O.OK, S.WELDING_DETECTION),
    *(
        Transition(st, _STOP, O.OK, S.ENDED)
        for st in (
            S.SESSION_SETUP, S.SERVICE_DISCOVERY, S.PAYMENT_SELECTED, S.AUTHORIZATION_ONGOING, S.AUTHORIZED,
            S.CHARGE_PARAMETERS_ONGOING, S.CHARGE_PARAMETERS, S.CABLE_CHECK_ONGOING, S.CABLE_CHECKED, S.PRE_CHARGE,
            S.STOPPED, S.WELDING_DETECTION,
        )
    ),
)
"""Every legal step of a DIN SPEC 70121 DC EIM session."""

_INDEX: dict[tuple[State, str, Outcome], State] = {(r.state, r.request, r.outcome): r.next for r in TRANSITIONS}
_ACCEPTS: dict[tuple[State, str], list[Transition]] = {}
for _row in TRANSITIONS:
    _ACCEPTS.setdefault((_row.state, _row.request), []).append(_row)
del _row


def accepts(state: State, request: str) -> bool:
    """True if ``request`` may follow in ``state``."""
    return (state, request) in _ACCEPTS


def allowed_requests(state: State) -> list[str]:
    return sorted(req for (st, req) in _ACCEPTS if st is state)


def next_state(state: State, request: str, outcome_: Outcome) -> State:
    """Where the session goes; ``KeyError`` when the table has no such row."""
    try:
        return _INDEX[(state, request, outcome_)]
    except KeyError:
        raise KeyError(f"{request} with outcome {outcome_.value!r} is not legal in {state.value}") from None


def element_name(body: Any) -> str:
    """The element name of a DIN body element (``SessionSetupReq`` ...)."""
    return str(body.ELEMENT[1]) if getattr(body, "ELEMENT", None) else type(body).__name__


def request_outcome(request: Any) -> Outcome | None:
    """The outcome when the request alone decides it (PowerDelivery, SessionStop), so the SECC can
    refuse an illegal step before acting on it; else None."""
    if isinstance(request, din.PowerDeliveryReq):
        return O.START if request.ready_to_charge_state else O.STOP
    if isinstance(request, din.SessionStopReq):
        return O.OK
    return None


def outcome(request: Any, response: Any) -> Outcome:
    """The outcome of a request/response pair (both cores call it with the same pair)."""
    early = request_outcome(request)
    if early is not None:
        return early
    processing = getattr(response, "evse_processing", None)
    if processing is not None:
        return O.FINISHED if processing is din.EVSEProcessing.FINISHED else O.ONGOING
    return O.OK


def is_failure(response: Any) -> bool:
    """True for a FAILED* response code: it ends the session (digest §2.4)."""
    code = getattr(response, "response_code", None)
    return code is not None and is_failure_code(din.ResponseCode(code).value)


def loop_timer(request: str) -> tuple[float, str] | None:
    """(limit in s, timer name) bounding a repeated request of the EVCC (ContractAuthentication and
    ChargeParameterDiscovery 60 s, CableCheck 40 s, PreCharge 7 s), or None."""
    return loop_limit("din", request[:-3] if request.endswith("Req") else request)
