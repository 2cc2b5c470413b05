"""The one table of legal ISO 15118-20 message sequences, shared by the EVCC and the SECC.

Both roles walk the same state machine: a state names the last completed request/response
exchange.  A row of :data:`TRANSITIONS` says: in ``state``, request ``request`` is legal; when
the exchange ends with ``outcome`` the session goes to ``next``.  ``family`` restricts a row
to AC or DC energy services.

* The SECC accepts a request only if :func:`accepts` says so; otherwise it answers with the
  request's response type and ``FAILED_SequenceError`` (digest §3.3) and ends the session.
* The EVCC asks :func:`accepts` before it sends a request (its own bug would otherwise reach
  the wire) and, after the response, both sides compute :func:`outcome` from the
  request/response pair and move with :func:`next_state` -- so the two cores can never
  disagree about where the session is.

The message table :data:`MESSAGES` gives each request its response, V2GTP payload type,
EXI schema key, the EVCC's message timeout and the SECC's performance time; the values, and
the sequence and loop timers :data:`TIMERS`, come from ``iso15118.facts`` (their one home,
which the capture decoder and the tester read too).

Decisions on items the digest marks DISAGREE / UNVERIFIED (see also docs in ``secc.py``):

* After ``OK_OldSessionJoined`` both AuthorizationSetupReq (Josev) and the matching
  ChargeParameterDiscoveryReq (libiso15118) are accepted (DISAGREE #6); our EVCC uses the
  Josev path by default because every SECC accepts it.
* ScheduleExchange -> PowerDelivery directly is accepted for DC (Josev, [V2G20-2122]) so a
  DC EV may go to Standby/Stop without CableCheck (DISAGREE #9); our EVCC always does
  CableCheck/PreCharge before the first Start.
* ``WARNING_StandbyNotAllowed`` does not end the session: the session stays in the charge
  loop (libiso15118 behaviour, DISAGREE #8).  Every FAILED* code ends the session.
* The SECC sequence timeout is 60 s in every state, including the charge loop
  (both implementations; the 0.5 s loop value in Josev's table is unused, UNVERIFIED).
* CertificateInstallationReq (payload type 0x8002, EVCC timeout 5 s) is legal right after
  AuthorizationSetupRes, before AuthorizationReq, and may repeat; the SECC answers it with
  EVSEProcessing=Finished (no Ongoing loop: an Ongoing CertificateInstallationRes would need
  dummy signed content, XSD-mandatory).
* MeteringConfirmationReq (UNVERIFIED: 0x8002 mainstream, not the 0x8102 side stream --
  the session is strictly request/response on one stream; EVCC timeout 2 s) is legal in the
  charge loop (also in Standby) and keeps the state; the EV sends it when a ChargeLoopRes
  carries EVSENotification=MeteringConfirmation together with MeterInfo.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from iso15118.facts.codes import is_failure_code
from iso15118.facts.namespaces import Family
from iso15118.facts.payload import PayloadType, payload_type_for_schema_key
from iso15118.facts.timing import LOOP_TIMER, TIMERS, Timers, message_timing
from iso15118.messages import Authorization as AuthorizationMode
from iso15118.messages import ChargingSession as StopKind

__all__ = [
    "AuthorizationMode",
    "StopKind",
    "Family",
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


# The protocol's vocabulary as enums: how an EV is authorized and how a session stops are the
# XSD's own enumerations (authorizationType, chargingSessionType); the outcome of an exchange is ours.


class Outcome(str, enum.Enum):
    """How a request/response exchange ended, as the rows of :data:`TRANSITIONS` name it."""

    OK = "ok"
    NEW = "new"
    RESUMED = "resumed"
    FINISHED = "finished"
    ONGOING = "ongoing"
    REJECTED = "rejected"
    # PowerDelivery: the ChargeProgress sent, or Ongoing while the EV is not finished
    START = "Start"
    STOP = "Stop"
    STANDBY = "Standby"
    STANDBY_REFUSED = "StandbyRefused"
    SCHEDULE_RENEGOTIATION = "ScheduleRenegotiation"
    POWER_ONGOING = "Ongoing"
    # SessionStop: the ChargingSession sent
    TERMINATE = "Terminate"
    PAUSE = "Pause"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"


@dataclass(frozen=True)
class MessageSpec:
    """Static facts about one request/response pair."""

    request: str
    response: str
    payload_type: PayloadType
    schema_key: str
    evcc_timeout: float
    """V2G_EVCC_Msg_Timeout: how long the EVCC waits for the response (s)."""
    secc_performance: float
    """V2G_SECC_Msg_Performance_Time: the SECC must have answered within this (s)."""
    family: Family | None = None


def _spec(req: str, key: str, family: Family | None = None) -> MessageSpec:
    """Payload type and timing from ``iso15118.facts`` (the one home of both)."""
    timing = message_timing("-20", req)
    return MessageSpec(
        req, req[:-3] + "Res", payload_type_for_schema_key(key), key, timing.evcc_timeout, timing.secc_performance, family
    )


MESSAGES: dict[str, MessageSpec] = {
    s.request: s
    for s in (
        _spec("supportedAppProtocolReq", "sap"),
        _spec("SessionSetupReq", "common"),
        _spec("AuthorizationSetupReq", "common"),
        _spec("AuthorizationReq", "common"),
        _spec("CertificateInstallationReq", "common"),
        _spec("ServiceDiscoveryReq", "common"),
        _spec("ServiceDetailReq", "common"),
        _spec("ServiceSelectionReq", "common"),
        _spec("AC_ChargeParameterDiscoveryReq", "ac", Family.AC),
        _spec("DC_ChargeParameterDiscoveryReq", "dc", Family.DC),
        _spec("ScheduleExchangeReq", "common"),
        _spec("DC_CableCheckReq", "dc", Family.DC),
        _spec("DC_PreChargeReq", "dc", Family.DC),
        _spec("PowerDeliveryReq", "common"),
        _spec("AC_ChargeLoopReq", "ac", Family.AC),
        _spec("DC_ChargeLoopReq", "dc", Family.DC),
        _spec("DC_WeldingDetectionReq", "dc", Family.DC),
        _spec("MeteringConfirmationReq", "common"),
        _spec("SessionStopReq", "common"),
    )
}
"""Request element name -> :class:`MessageSpec` (digest §1.2, §3.1; timing: ``iso15118.facts.timing``)."""

_BY_RESPONSE = {s.response: s for s in MESSAGES.values()}
# SAP uses lower-case element names.
_BY_RESPONSE["supportedAppProtocolRes"] = MESSAGES["supportedAppProtocolReq"]


def spec_for_request(name: str) -> MessageSpec | None:
    """The spec of a request element name, or None if it is not part of the session."""
    return MESSAGES.get(name)


def spec_for_response(name: str) -> MessageSpec | None:
    """The spec whose response element is ``name``."""
    return _BY_RESPONSE.get(name)


class State(str, enum.Enum):
    """Where a session is: named after the last completed exchange."""

    CONNECTED = "Connected"
    APP_PROTOCOL = "AppProtocolNegotiated"
    SESSION_SETUP = "SessionSetup"
    SESSION_RESUMED = "SessionResumed"
    AUTHORIZATION_SETUP = "AuthorizationSetup"
    AUTHORIZATION_ONGOING = "AuthorizationOngoing"
    AUTHORIZED = "Authorized"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    SERVICE_DETAIL = "ServiceDetail"
    SERVICE_SELECTED = "ServiceSelected"
    CHARGE_PARAMETERS = "ChargeParameterDiscovery"
    SCHEDULE_ONGOING = "ScheduleExchangeOngoing"
    SCHEDULED = "Scheduled"
    CABLE_CHECK_ONGOING = "CableCheckOngoing"
    CABLE_CHECKED = "CableChecked"
    PRE_CHARGE = "PreCharge"
    POWER_DELIVERY_ONGOING = "PowerDeliveryOngoing"
    CHARGING = "ChargeLoop"
    STANDBY = "Standby"
    RENEGOTIATING = "ScheduleRenegotiation"
    RESCHEDULE_ONGOING = "RescheduleOngoing"
    RESCHEDULED = "Rescheduled"
    STOPPED = "PowerStopped"
    WELDING_DETECTION = "WeldingDetection"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"
    ENDED = "Ended"
    PAUSED = "Paused"


@dataclass(frozen=True)
class Transition:
    """One row: ``request`` is legal in ``state``; outcome ``outcome`` leads to ``next``."""

    state: State
    request: str
    outcome: Outcome
    next: State
    family: Family | None = None


S = State
O = Outcome
_STOP = "SessionStopReq"


def _stop_rows(*states: State) -> list[Transition]:
    rows = []
    for st in states:
        rows += [
            Transition(st, _STOP, O.TERMINATE, S.ENDED),
            Transition(st, _STOP, O.PAUSE, S.PAUSED),
        ]
    return rows


_CPD = ("AC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq")
_LOOP = ("AC_ChargeLoopReq", "DC_ChargeLoopReq")

TRANSITIONS: tuple[Transition, ...] = (
    # handshake
    Transition(S.CONNECTED, "supportedAppProtocolReq", O.OK, S.APP_PROTOCOL),
    Transition(S.APP_PROTOCOL, "SessionSetupReq", O.NEW, S.SESSION_SETUP),
    Transition(S.APP_PROTOCOL, "SessionSetupReq", O.RESUMED, S.SESSION_RESUMED),
    # authorization
    Transition(S.SESSION_SETUP, "AuthorizationSetupReq", O.OK, S.AUTHORIZATION_SETUP),
    Transition(S.SESSION_RESUMED, "AuthorizationSetupReq", O.OK, S.AUTHORIZATION_SETUP),
    Transition(S.AUTHORIZATION_SETUP, "AuthorizationReq", O.FINISHED, S.AUTHORIZED),
    Transition(S.AUTHORIZATION_SETUP, "AuthorizationReq", O.ONGOING, S.AUTHORIZATION_ONGOING),
    Transition(S.AUTHORIZATION_ONGOING, "AuthorizationReq", O.FINISHED, S.AUTHORIZED),
    Transition(S.AUTHORIZATION_ONGOING, "AuthorizationReq", O.ONGOING, S.AUTHORIZATION_ONGOING),
    Transition(S.AUTHORIZED, "AuthorizationReq", O.FINISHED, S.AUTHORIZED),
    Transition(S.AUTHORIZED, "AuthorizationReq", O.ONGOING, S.AUTHORIZATION_ONGOING),
    # a WARNING (EIM rejected, selection invalid): the EV may try again or stop
    Transition(S.AUTHORIZATION_SETUP, "AuthorizationReq", O.REJECTED, S.AUTHORIZATION_SETUP),
    Transition(S.AUTHORIZATION_ONGOING, "AuthorizationReq", O.REJECTED, S.AUTHORIZATION_SETUP),
    Transition(S.AUTHORIZED, "AuthorizationReq", O.REJECTED, S.AUTHORIZATION_SETUP),
    # PnC: contract installation before the (PnC) AuthorizationReq, answered at once by the
    # SECC/CPS (an installation failure is a WARNING: the EV may still use EIM or stop)
    Transition(S.AUTHORIZATION_SETUP, "CertificateInstallationReq", O.OK, S.AUTHORIZATION_SETUP),
    # services
    Transition(S.AUTHORIZED, "ServiceDiscoveryReq", O.OK, S.SERVICE_DISCOVERY),
    Transition(S.SERVICE_RENEGOTIATION, "ServiceDiscoveryReq", O.OK, S.SERVICE_DISCOVERY),
    Transition(S.SERVICE_DISCOVERY, "ServiceDiscoveryReq", O.OK, S.SERVICE_DISCOVERY),
    Transition(S.SERVICE_DISCOVERY, "ServiceDetailReq", O.OK, S.SERVICE_DETAIL),
    Transition(S.SERVICE_DETAIL, "ServiceDetailReq", O.OK, S.SERVICE_DETAIL),
    Transition(S.SERVICE_DETAIL, "ServiceSelectionReq", O.OK, S.SERVICE_SELECTED),
    # charge parameters and schedule
    Transition(S.SERVICE_SELECTED, _CPD[0], O.OK, S.CHARGE_PARAMETERS, Family.AC),
    Transition(S.SERVICE_SELECTED, _CPD[1], O.OK, S.CHARGE_PARAMETERS, Family.DC),
    Transition(S.SESSION_RESUMED, _CPD[0], O.OK, S.CHARGE_PARAMETERS, Family.AC),
    Transition(S.SESSION_RESUMED, _CPD[1], O.OK, S.CHARGE_PARAMETERS, Family.DC),
    Transition(S.CHARGE_PARAMETERS, "ScheduleExchangeReq", O.FINISHED, S.SCHEDULED),
    Transition(S.CHARGE_PARAMETERS, "ScheduleExchangeReq", O.ONGOING, S.SCHEDULE_ONGOING),
    Transition(S.SCHEDULE_ONGOING, "ScheduleExchangeReq", O.FINISHED, S.SCHEDULED),
    Transition(S.SCHEDULE_ONGOING, "ScheduleExchangeReq", O.ONGOING, S.SCHEDULE_ONGOING),
    Transition(S.SCHEDULED, "ScheduleExchangeReq", O.FINISHED, S.SCHEDULED),
    Transition(S.SCHEDULED, "ScheduleExchangeReq", O.ONGOING, S.SCHEDULE_ONGOING),
    # DC isolation check and pre-charge
    Transition(S.SCHEDULED, "DC_CableCheckReq", O.FINISHED, S.CABLE_CHECKED, Family.DC),
    Transition(S.SCHEDULED, "DC_CableCheckReq", O.ONGOING, S.CABLE_CHECK_ONGOING, Family.DC),
    Transition(S.CABLE_CHECK_ONGOING, "DC_CableCheckReq", O.FINISHED, S.CABLE_CHECKED, Family.DC),
    Transition(S.CABLE_CHECK_ONGOING, "DC_CableCheckReq", O.ONGOING, S.CABLE_CHECK_ONGOING, Family.DC),
    Transition(S.CABLE_CHECKED, "DC_PreChargeReq", O.OK, S.PRE_CHARGE, Family.DC),
    Transition(S.PRE_CHARGE, "DC_PreChargeReq", O.OK, S.PRE_CHARGE, Family.DC),
    # power delivery: AC straight after the schedule, DC after pre-charge.  DC may also stop
    # without CableCheck/PreCharge (Josev, [V2G20-2122]) but never start without them.
    Transition(S.SCHEDULED, "PowerDeliveryReq", O.START, S.CHARGING, Family.AC),
    *(
        Transition(st, "PowerDeliveryReq", out, nxt, fam)
        for st, fam, outs in (
            (S.SCHEDULED, None, (O.STOP, O.POWER_ONGOING)),
            (S.PRE_CHARGE, Family.DC, (O.START, O.STOP, O.POWER_ONGOING)),
            (S.POWER_DELIVERY_ONGOING, None, (O.START, O.STOP, O.STANDBY, O.POWER_ONGOING)),
            (S.CHARGING, None, (O.START, O.STOP, O.STANDBY, O.STANDBY_REFUSED, O.POWER_ONGOING)),
            (S.STANDBY, None, (O.START, O.STOP, O.STANDBY, O.POWER_ONGOING)),
            (S.RESCHEDULED, None, (O.START, O.STOP, O.POWER_ONGOING)),
        )
        for out, nxt in (
            (O.START, S.CHARGING),
            (O.STOP, S.STOPPED),
            (O.STANDBY, S.STANDBY),
            (O.STANDBY_REFUSED, S.CHARGING),
            (O.POWER_ONGOING, S.POWER_DELIVERY_ONGOING),
        )
        if out in outs
    ),
    Transition(S.CHARGING, "PowerDeliveryReq", O.SCHEDULE_RENEGOTIATION, S.RENEGOTIATING),
    Transition(S.STANDBY, "PowerDeliveryReq", O.SCHEDULE_RENEGOTIATION, S.RENEGOTIATING),
    # charge loop (also kept alive at zero power in Standby)
    Transition(S.CHARGING, _LOOP[0], O.OK, S.CHARGING, Family.AC),
    Transition(S.CHARGING, _LOOP[1], O.OK, S.CHARGING, Family.DC),
    Transition(S.STANDBY, _LOOP[0], O.OK, S.STANDBY, Family.AC),
    Transition(S.STANDBY, _LOOP[1], O.OK, S.STANDBY, Family.DC),
    # signed meter reading, asked for with EVSENotification=MeteringConfirmation in a
    # ChargeLoopRes (PnC sessions); the loop continues afterwards
    Transition(S.CHARGING, "MeteringConfirmationReq", O.OK, S.CHARGING),
    Transition(S.STANDBY, "MeteringConfirmationReq", O.OK, S.STANDBY),
    # schedule renegotiation
    Transition(S.RENEGOTIATING, "ScheduleExchangeReq", O.FINISHED, S.RESCHEDULED),
    Transition(S.RENEGOTIATING, "ScheduleExchangeReq", O.ONGOING, S.RESCHEDULE_ONGOING),
    Transition(S.RESCHEDULE_ONGOING, "ScheduleExchangeReq", O.FINISHED, S.RESCHEDULED),
    Transition(S.RESCHEDULE_ONGOING, "ScheduleExchangeReq", O.ONGOING, S.RESCHEDULE_ONGOING),
    # after power stopped
    Transition(S.STOPPED, "DC_WeldingDetectionReq", O.OK, S.WELDING_DETECTION, Family.DC),
    Transition(S.WELDING_DETECTION, "DC_WeldingDetectionReq", O.OK, S.WELDING_DETECTION, Family.DC),
    Transition(S.STOPPED, _STOP, O.SERVICE_RENEGOTIATION, S.SERVICE_RENEGOTIATION),
    Transition(S.WELDING_DETECTION, _STOP, O.SERVICE_RENEGOTIATION, S.SERVICE_RENEGOTIATION),
    # SessionStop: possible before energy transfer and after it has stopped
    *_stop_rows(
        S.SESSION_SETUP,
        S.SESSION_RESUMED,
        S.AUTHORIZATION_SETUP,
        S.AUTHORIZED,
        S.SERVICE_DISCOVERY,
        S.SERVICE_DETAIL,
        S.SERVICE_SELECTED,
        S.CHARGE_PARAMETERS,
        S.SCHEDULED,
        S.CABLE_CHECK_ONGOING,
        S.CABLE_CHECKED,
        S.STOPPED,
        S.WELDING_DETECTION,
    ),
)
"""Every legal step of a -20 session (digest §3.1 / §3.3)."""

_INDEX: dict[tuple[State, str, Outcome], list[Transition]] = {}
_ACCEPTS: dict[tuple[State, str], list[Transition]] = {}
for _row in TRANSITIONS:
    _INDEX.setdefault((_row.state, _row.request, _row.outcome), []).append(_row)
    _ACCEPTS.setdefault((_row.state, _row.request), []).append(_row)
del _row


def accepts(state: State, request: str, family: Family | None = None) -> bool:
    """True if ``request`` may follow in ``state`` (for the negotiated energy family)."""
    rows = _ACCEPTS.get((state, request))
    if not rows:
        return False
    return family is None or any(r.family in (None, family) for r in rows)


def allowed_requests(state: State, family: Family | None = None) -> list[str]:
    """The requests legal in ``state`` (diagnostics and tests)."""
    return sorted(
        req
        for (st, req), rows in _ACCEPTS.items()
        if st is state and any(family is None or x.family in (None, family) for x in rows)
    )


def next_state(state: State, request: str, outcome_: Outcome, family: Family | None = None) -> State:
    """Where the session goes after ``request`` ended with ``outcome_`` in ``state``.

    Raises ``KeyError`` if the table has no such row (a protocol error of the peer).
    """
    for row in _INDEX.get((state, request, outcome_), ()):
        if family is None or row.family in (None, family):
            return row.next
    raise KeyError(f"{request} with outcome {str.__str__(outcome_)!r} is not legal in {state.value}")


def _name(msg: Any) -> str:
    return str(msg.ELEMENT[1])


def outcome(request: Any, response: Any) -> Outcome:
    """The outcome of a request/response pair, as used by :data:`TRANSITIONS`.

    Both cores call this with the same pair, so they agree on the next state.
    """
    name = _name(request)
    code = getattr(response, "response_code", None)
    code_value = getattr(code, "value", str(code))
    if name == "SessionSetupReq":
        return Outcome.RESUMED if code_value == "OK_OldSessionJoined" else Outcome.NEW
    if name == "AuthorizationReq" and code_value.startswith("WARNING"):
        return Outcome.REJECTED
    if name in ("AuthorizationReq", "ScheduleExchangeReq", "DC_CableCheckReq"):
        processing = response.evse_processing.value
        return Outcome.FINISHED if processing == "Finished" else Outcome.ONGOING
    if name == "PowerDeliveryReq":
        if request.ev_processing.value != "Finished":
            return Outcome.POWER_ONGOING
        progress = request.charge_progress.value
        if progress == "Standby" and code_value == "WARNING_StandbyNotAllowed":
            return Outcome.STANDBY_REFUSED
        return Outcome(progress)
    if name == "SessionStopReq":
        return Outcome(request.charging_session.value)
    return Outcome.OK


def request_outcome(request: Any) -> Outcome | None:
    """The outcome when the request alone decides it (SessionStop, PowerDelivery other than
    Standby), so the SECC can refuse an illegal step before acting on it; else None."""
    name = _name(request)
    if name == "SessionStopReq":
        return Outcome(request.charging_session.value)
    if name == "PowerDeliveryReq":
        if request.ev_processing.value != "Finished":
            return Outcome.POWER_ONGOING
        progress = Outcome(request.charge_progress.value)
        return None if progress is Outcome.STANDBY else progress
    return None


def is_failure(response: Any) -> bool:
    """True if the response carries a FAILED* code (which ends the session, digest §5.1)."""
    code = getattr(response, "response_code", None)
    return is_failure_code(getattr(code, "value", ""))
