"""Sans-IO ISO 15118-2 SECC core (EIM, AC and DC): received V2GTP payloads and time in, events out.

    conn = Iso2SeccSession(controller, Iso2SeccConfig(), now=now, clock=time.time)
    events = conn.receive(payload_type, payload, now)
    events = conn.handle_timer(now)

The same driver interface as the -20 :class:`~iso15118.session.secc.SeccSession`.  It starts
after SupportedAppProtocol, which :class:`iso15118.session.negotiation.SeccNegotiator` answers
for every protocol (the registry in ``iso15118.session.iso2`` builds this core): the first frame
is SessionSetupReq.  Which request may come next is decided by
:mod:`iso15118.session.iso2.rules` only; out of sequence -> ``FAILED_SequenceError``, wrong
SessionID -> ``FAILED_UnknownSession``; every FAILED* response ends the session.

The controllers are the -20 ones (:mod:`iso15118.session.controller`): a -2 AC session is the
``EnergyService.AC`` service in scheduled mode, DC likewise; the SAScheduleList holds one tuple
with the controller's :class:`ScheduleOffer` as PMax; EVSE notifications map to -2's
``StopCharging`` (Terminate, Pause) and ``ReNegotiation`` (ScheduleRenegotiation,
ServiceRenegotiation).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography import x509

from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import Family
from iso15118.facts.payload import PayloadType
from iso15118.messages import MessageValidationError
from iso15118.messages import iso2 as m2
from iso15118.security import pnc2
from iso15118.security.algorithms import ISO2_POLICY
from iso15118.security.validation import (
    CertificateChainError,
    ChainErrorReason,
    Purpose,
    emaid_from_certificate,
    normalize_emaid,
    validate_chain,
)
from iso15118.security.xmldsig import SignatureError
from iso15118.session.controller import (
    AuthorizationDecision,
    EnergyRequest,
    EVLimits,
    EVLoopStatus,
    EVSEController,
    LoopContext,
    Notification,
    ScheduleOffer,
    SessionRecord,
)
from iso15118.session.events import Event, MessageReceived, PowerChanged, ProtocolError, SendMessage, SessionEnded, StateChanged
from iso15118.session.iso2 import parts as p
from iso15118.session.iso2 import rules
from iso15118.session.iso2.rules import State
from iso15118.session.secc import SessionStore
from iso15118.session.services import ControlMode, EnergyService

log = logging.getLogger(__name__)

RC = m2.ResponseCode
ETM = m2.EnergyTransferMode
D0 = Decimal(0)

_NOTE = {
    "Terminate": m2.EVSENotification.STOP_CHARGING,
    "Pause": m2.EVSENotification.STOP_CHARGING,
    "ScheduleRenegotiation": m2.EVSENotification.RE_NEGOTIATION,
    "ServiceRenegotiation": m2.EVSENotification.RE_NEGOTIATION,
}
"""-20 notification kinds (the controllers' vocabulary) -> -2 EVSENotification."""


@dataclass(frozen=True)
class Iso2SeccPnC:
    """-2 Plug & Charge on the SECC: the MO roots a contract chain must lead to (DIN/-2 digest
    §3.4).  PnC (``Contract``) is offered only over TLS."""

    mo_roots: tuple[x509.Certificate, ...]
    contract_purpose: Purpose = Purpose.CONTRACT
    max_intermediates: int = 2
    receipt_after_loops: int | None = 2
    """Ask for a signed MeteringReceipt (ReceiptRequired=true) in this charge-loop response of a PnC
    session, once; None: never."""


@dataclass
class Iso2SeccConfig:
    """Behaviour switches of the -2 SECC core."""

    timers: rules.Timers = rules.TIMERS
    store: SessionStore = field(default_factory=SessionStore)
    session_id_factory: Callable[[], bytes] = lambda: secrets.token_bytes(8)
    ac_modes: tuple[m2.EnergyTransferMode, ...] = p.AC_MODES
    """AC energy transfer modes offered (the split-phase 240 V wall connector is single phase;
    three-phase core is also offered so an EV configured for it connects at its phase count)."""
    free_service: bool = False
    schedule_duration: int = 86400
    """PMaxSchedule coverage without DepartureTime ([V2G2-304] per the digest: at least 24 h)."""
    pnc: Iso2SeccPnC | None = None
    """Plug & Charge (PaymentDetails, signed AuthorizationReq); None: EIM only."""


class Iso2SeccSession:
    """One -2 SECC communication session (one TCP connection)."""

    protocol = "iso2"

    def __init__(
        self,
        controller: EVSEController,
        config: Iso2SeccConfig | None = None,
        *,
        now: float = 0.0,
        clock: Callable[[], float],
        tls: bool = False,
        peer_certificate: str | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or Iso2SeccConfig()
        self._clock = clock
        self.tls = tls
        self.peer_certificate = peer_certificate
        self.state = State.APP_PROTOCOL
        self.family: Family | None = None
        self.session_id = bytes(1)
        self.evcc_id = b""
        self.evse_id = p.evse_id_string(controller.evse_id)
        self.authorization: str | None = None
        self.emaid: str | None = None
        self.payment: m2.PaymentOption | None = None
        self.energy_mode: m2.EnergyTransferMode | None = None
        self.service: EnergyService | None = None
        self.schedule: ScheduleOffer | None = None
        self.tuple_id: int | None = None
        self.ev_limits: EVLimits | None = None
        self.contract_certificate: x509.Certificate | None = None
        self._gen_challenge: bytes | None = None
        self._msg: m2.V2GMessage | None = None
        self._receipt_meter: m2.MeterInfo | None = None
        """The MeterInfo the EV must sign next (ReceiptRequired sent), else None."""
        self._receipt_asked = False
        self.metering_receipts = 0
        self.resumed = False
        self.power_on = False
        """The contactors are closed (PowerDelivery Start answered OK, no Stop since)."""
        self._resume: SessionRecord | None = None
        self.ended = False
        self.end_reason = ""
        self.ok = False
        self.rx = 0
        self.tx = 0
        self.loops = 0
        self.renegotiations = 0
        self._deadline: float | None = now + self.config.timers.secc_sequence
        self._deadline_reason = f"no SessionSetupReq within {self.config.timers.secc_sequence:g} s after supportedAppProtocolRes"
        self._ongoing_since: float | None = None
        self._notification: Notification | None = None
        self._events: list[Event] = []
        self._handlers: dict[str, Callable[[Any, float], Any]] = {
            "SessionSetupReq": self._on_session_setup,
            "ServiceDiscoveryReq": self._on_service_discovery,
            "ServiceDetailReq": self._on_service_detail,
            "PaymentServiceSelectionReq": self._on_payment_selection,
            "PaymentDetailsReq": self._on_payment_details,
            "AuthorizationReq": self._on_authorization,
            "ChargeParameterDiscoveryReq": self._on_cpd,
            "CableCheckReq": self._on_cable_check,
            "PreChargeReq": self._on_pre_charge,
            "PowerDeliveryReq": self._on_power_delivery,
            "ChargingStatusReq": self._on_charging_status,
            "CurrentDemandReq": self._on_current_demand,
            "WeldingDetectionReq": self._on_welding_detection,
            "MeteringReceiptReq": self._on_metering_receipt,
            "SessionStopReq": self._on_session_stop,
        }

    # ------------------------------------------------------------------ public API

    def next_deadline(self) -> float | None:
        return None if self.ended else self._deadline

    def notify(self, kind: str, max_delay: int = 0) -> None:
        """Queue an EVSE notification (Terminate, Pause -> StopCharging; ScheduleRenegotiation,
        ServiceRenegotiation -> ReNegotiation) for the next charge-loop response."""
        self._notification = Notification(kind, max_delay)

    def handle_timer(self, now: float) -> list[Event]:
        if self.ended or self._deadline is None or now < self._deadline:
            return []
        return [ProtocolError("Timeout", self._deadline_reason), *self._end(now, f"timeout: {self._deadline_reason}", False)]

    def connection_lost(self, now: float) -> list[Event]:
        if self.ended:
            return []
        return self._end(now, f"connection lost in {self.state.value}", self.state in (State.ENDED, State.PAUSED))

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self.rx += 1
        self._events = []
        if payload_type != PayloadType.EXI_ENCODED:
            return self._abort(now, "WrongPayloadType", f"payload type 0x{payload_type:04x} in {self.state.value}")
        try:
            msg = p.decode_message(payload)
        except (ExiError, ValueError, KeyError) as exc:  # undecodable: no response type known (digest §5.3)
            return self._abort(now, "DecodeError", str(exc))
        body = p.body_of(msg)
        if body is None:
            return self._abort(now, "UnexpectedMessage", "V2G_Message without a body element")
        name = p.element_name(body)
        self._events.append(MessageReceived(payload_type, body, name))
        if rules.spec_for_request(name) is None:
            return self._abort(now, "UnexpectedMessage", f"{name} is not a request of this session")
        if name != "SessionSetupReq" and msg.header.session_id != self.session_id:
            return self._fail(now, name, RC.FAILED_UNKNOWN_SESSION, f"SessionID {msg.header.session_id.hex()}")
        if not rules.accepts(self.state, name, self.family):
            return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, f"{name} not allowed in {self.state.value}")
        if (self._receipt_meter is not None) != (name == "MeteringReceiptReq"):  # [V2G2-795] per EVerest
            why = "MeteringReceiptReq expected" if self._receipt_meter is not None else "no MeteringReceipt was asked for"
            return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, f"{name}: {why}")
        early = rules.request_outcome(body)
        if early is not None:
            try:
                rules.next_state(self.state, name, early, self.family)
            except KeyError as exc:
                return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, str(exc))
        self._msg = msg  # the whole message: the header's SessionID and Signature
        try:
            res = self._handlers[name](body if name != "SessionSetupReq" else msg, now)
        except _Failed as exc:
            return self._fail(now, name, exc.code, exc.detail)
        except MessageValidationError as exc:
            log.exception("-2 SECC handler for %s failed", name)
            return self._fail(now, name, RC.FAILED, f"internal error: {exc}")
        return self._respond(now, body, res)

    # ------------------------------------------------------------------ plumbing

    def _arm(self, now: float, after: str) -> None:
        self._deadline = now + self.config.timers.secc_sequence
        self._deadline_reason = f"no request within {self.config.timers.secc_sequence} s after {after}"

    def _send(self, body: Any) -> list[Event]:
        payload = p.encode_message(self.session_id, body)
        self.tx += 1
        return [SendMessage(int(PayloadType.EXI_ENCODED), payload, body)]

    def _respond(self, now: float, req: Any, res: Any) -> list[Event]:
        name = p.element_name(req)
        events = self._events
        if rules.is_failure(res):
            events += self._send(res)
            code = res.response_code.value
            events.append(ProtocolError(code, f"answered {name} with {code}"))
            events += self._end(now, f"{code} on {name}", False)
            return events
        try:
            new = rules.next_state(self.state, name, rules.outcome(req, res), self.family)
        except KeyError as exc:
            return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, str(exc))
        events += self._send(res)
        if new is not self.state:
            events.append(StateChanged(self.state, new, name))
            self.state = new
        if new in (State.ENDED, State.PAUSED):
            events += self._end(now, "SessionStop " + ("Pause" if new is State.PAUSED else "Terminate"), True)
        else:
            self._arm(now, p.element_name(res))
        return events

    def _fail(self, now: float, request_name: str, code: RC, detail: str) -> list[Event]:
        events = self._events
        events += self._send(p.minimal_response(request_name, code, self.family, self.evse_id))
        events.append(ProtocolError(code.value, detail))
        events += self._end(now, f"{code.value}: {detail}", False)
        return events

    def _abort(self, now: float, code: str, detail: str) -> list[Event]:
        self._events.append(ProtocolError(code, detail))
        self._events += self._end(now, f"{code}: {detail}", False)
        return self._events

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.end_reason, self.ok = True, reason, ok
        self._deadline = None
        if self.power_on:
            self.power_on = False
            try:  # never leave the contactors closed behind a session that ended with power on (an
                # early SessionStop, decision D7; a timeout or FAILED during renegotiation ...)
                self.controller.power_delivery(now, "Stop", False)
            except Exception:  # pragma: no cover - a controller bug must not hide the end
                log.exception("power_delivery(Stop) failed")
        self.controller.session_ended(now, reason, ok)
        paused = self.session_id if self.state is State.PAUSED else None
        return [SessionEnded(reason, ok, paused_session_id=paused, close_after=self.config.timers.close_delay)]

    def _ongoing(self, now: float, limit: float, what: str) -> None:
        """Bound an Ongoing loop: FAILED once it ran longer than ``limit``."""
        if self._ongoing_since is None:
            self._ongoing_since = now
        elif now - self._ongoing_since > limit:
            self._ongoing_since = None
            raise _Failed(RC.FAILED, f"{what} still not finished after {limit:g} s")

    def _loop_status(self, now: float) -> m2.ACEVSEStatus | m2.DCEVSEStatus:
        """The EVSEStatus of a charge-loop response, carrying a pending notification."""
        note, delay = m2.EVSENotification.NONE, 0
        pending = self._notification or self.controller.pending_notification(now)
        self._notification = None
        if pending is not None and pending.kind in _NOTE:
            note, delay = _NOTE[pending.kind], pending.max_delay
            if note is m2.EVSENotification.RE_NEGOTIATION:
                self.renegotiations += 1
        return p.evse_status(self.family, note, delay)

    # ------------------------------------------------------------------ handlers

    def _on_session_setup(self, msg: m2.V2GMessage, now: float) -> m2.SessionSetupRes:
        req = msg.body.body_element
        assert isinstance(req, m2.SessionSetupReq)
        self.evcc_id = req.evcc_id
        old = msg.header.session_id
        record = None
        if any(old):
            record = self.config.store.take(old, req.evcc_id.hex(), now, self.peer_certificate)
        if record is not None and record.extra.get("protocol") == "iso2":
            self.session_id, self.resumed, self._resume = old, True, record
            code = RC.OK_OLD_SESSION_JOINED
        else:
            if record is not None:  # a -20 record: not ours to resume
                self.config.store.put(record)
            self.session_id = self.config.session_id_factory()
            code = RC.OK_NEW_SESSION_ESTABLISHED
        return m2.SessionSetupRes(response_code=code, evse_id=self.evse_id, evse_time_stamp=int(self._clock()))

    def _modes(self) -> list[m2.EnergyTransferMode]:
        services = [o.service for o in self.controller.energy_services()]
        modes = p.offered_modes(services, self.config.ac_modes)
        if self._resume is not None and self._resume.extra.get("energy_mode") in modes:
            return [self._resume.extra["energy_mode"]]  # type: ignore[list-item]
        return modes

    def _payments(self) -> list[m2.PaymentOption]:
        if self._resume is not None:
            return [m2.PaymentOption(str(self._resume.extra.get("payment", m2.PaymentOption.EXTERNAL_PAYMENT)))]
        if self.tls and self.config.pnc is not None:  # Contract only over TLS (digest §3.3)
            return [m2.PaymentOption.CONTRACT, m2.PaymentOption.EXTERNAL_PAYMENT]
        return [m2.PaymentOption.EXTERNAL_PAYMENT]

    def _on_service_discovery(self, req: m2.ServiceDiscoveryReq, now: float) -> m2.ServiceDiscoveryRes:
        modes = self._modes()
        if not modes:
            raise _Failed(RC.FAILED, "no AC or DC energy service configured")
        return m2.ServiceDiscoveryRes(
            response_code=RC.OK,
            payment_option_list=m2.PaymentOptionList(payment_option=self._payments()),
            charge_service=m2.ChargeService(
                service_id=1, service_name="AC_DC_Charging", service_category=m2.ServiceCategory.EV_CHARGING,
                free_service=self.config.free_service,
                supported_energy_transfer_mode=m2.SupportedEnergyTransferMode(energy_transfer_mode=modes),
            ),
        )

    def _on_service_detail(self, req: m2.ServiceDetailReq, now: float) -> m2.ServiceDetailRes:
        if req.service_id != 1:  # only the charge service is offered (no value-added services)
            raise _Failed(RC.FAILED_SERVICE_ID_INVALID, f"ServiceID {req.service_id} was not offered")
        return m2.ServiceDetailRes(response_code=RC.OK, service_id=1)

    def _on_payment_selection(self, req: m2.PaymentServiceSelectionReq, now: float) -> m2.PaymentServiceSelectionRes:
        if req.selected_payment_option not in self._payments():
            raise _Failed(RC.FAILED_PAYMENT_SELECTION_INVALID, f"{req.selected_payment_option.value} not offered")
        ids = [s.service_id for s in req.selected_service_list.selected_service]
        if any(i != 1 for i in ids):
            raise _Failed(RC.FAILED_SERVICE_SELECTION_INVALID, f"services {ids}: only ServiceID 1 was offered")
        if 1 not in ids:
            raise _Failed(RC.FAILED_NO_CHARGE_SERVICE_SELECTED, "the charge service (ServiceID 1) is not selected")
        self.payment = req.selected_payment_option
        return m2.PaymentServiceSelectionRes(response_code=RC.OK)

    def _on_payment_details(self, req: m2.PaymentDetailsReq, now: float) -> m2.PaymentDetailsRes:
        pnc = self.config.pnc
        if self.payment is not m2.PaymentOption.CONTRACT or pnc is None:
            raise _Failed(RC.FAILED_SEQUENCE_ERROR, "PaymentDetailsReq without the Contract payment option")
        chain = req.contract_signature_cert_chain
        subs = list(chain.sub_certificates.certificate) if chain.sub_certificates is not None else []
        try:
            leaf = x509.load_der_x509_certificate(chain.certificate)
            validate_chain(leaf, subs, list(pnc.mo_roots), purpose=pnc.contract_purpose, policy=ISO2_POLICY,
                           max_intermediates=pnc.max_intermediates)
            emaid = emaid_from_certificate(leaf, check_domain=False)
        except CertificateChainError as exc:
            raise _Failed(_chain_code(exc), f"contract chain: {exc}") from None
        except ValueError as exc:
            raise _Failed(RC.FAILED_CERT_CHAIN_ERROR, f"contract certificate: {exc}") from None
        if normalize_emaid(emaid) != normalize_emaid(req.e_ma_id):
            raise _Failed(RC.FAILED_CERT_CHAIN_ERROR, f"eMAID {req.e_ma_id} is not the certificate's {emaid}")
        self.contract_certificate, self.emaid = leaf, emaid
        self._gen_challenge = secrets.token_bytes(16)  # [V2G2-697]: 16 fresh random bytes
        return m2.PaymentDetailsRes(response_code=RC.OK, gen_challenge=self._gen_challenge,
                                    evse_time_stamp=int(self._clock()))

    def _pnc_decision(self, now: float) -> AuthorizationDecision:
        hook = getattr(self.controller, "authorize_contract", None)
        if hook is None:
            return self.controller.authorize(now)
        return hook(now, self.emaid, self.contract_certificate)  # type: ignore[no-any-return]

    def _on_authorization(self, req: m2.AuthorizationReq, now: float) -> m2.AuthorizationRes:
        if self.payment is m2.PaymentOption.CONTRACT:
            if self.state is State.PAYMENT_SELECTED:
                raise _Failed(RC.FAILED_SEQUENCE_ERROR, "PnC: AuthorizationReq before PaymentDetailsReq")
            if self.state is State.PAYMENT_DETAILS:  # the first one: signed, with our challenge
                assert self._msg is not None and self.contract_certificate is not None and self._gen_challenge is not None
                try:
                    pnc2.verify_authorization_req(self._msg, self.contract_certificate, self._gen_challenge)
                except pnc2.ChallengeMismatch as exc:
                    raise _Failed(RC.FAILED_CHALLENGE_INVALID, str(exc)) from None
                except SignatureError as exc:
                    raise _Failed(RC.FAILED_SIGNATURE_ERROR, str(exc)) from None
            decision = self._pnc_decision(now)
        else:
            decision = self.controller.authorize(now)
        return self._authorization_res(now, decision)

    def _authorization_res(self, now: float, decision: AuthorizationDecision) -> m2.AuthorizationRes:
        if decision is AuthorizationDecision.REJECTED:
            raise _Failed(RC.FAILED, f"{'contract' if self.payment is m2.PaymentOption.CONTRACT else 'EIM'} authorization rejected")
        if decision is AuthorizationDecision.PENDING:
            self._ongoing(now, self.config.timers.secc_authorization_ongoing, "authorization")
            waiting = (m2.EVSEProcessing.ONGOING if self.payment is m2.PaymentOption.CONTRACT  # the backend decides
                       else m2.EVSEProcessing.ONGOING_WAITING_FOR_CUSTOMER_INTERACTION)  # RFID, app ([V2G2-854])
            return m2.AuthorizationRes(response_code=RC.OK, evse_processing=waiting)
        self._ongoing_since = None
        self.authorization = "PnC" if self.payment is m2.PaymentOption.CONTRACT else "EIM"
        return m2.AuthorizationRes(response_code=RC.OK, evse_processing=m2.EVSEProcessing.FINISHED)

    def _on_cpd(self, req: m2.ChargeParameterDiscoveryReq, now: float) -> m2.ChargeParameterDiscoveryRes:
        mode = req.requested_energy_transfer_mode
        if mode not in self._modes() or (self.energy_mode is not None and mode is not self.energy_mode):
            raise _Failed(RC.FAILED_WRONG_ENERGY_TRANSFER_MODE, f"{mode.value} not offered")
        family = p.family_of_mode(mode)
        cp = req.ev_charge_parameter
        if (family is Family.AC) != isinstance(cp, m2.ACEVChargeParameter):
            raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, f"{type(cp).__name__} for {mode.value}")
        self.family, self.energy_mode = family, mode
        self.service = service_for(family, self.controller)
        lim = self.controller.limits(now, self.service)
        if isinstance(cp, m2.ACEVChargeParameter):
            max_i, max_v = p.dv(cp.ev_max_current), p.dv(cp.ev_max_voltage)
            if max_i < 0 or max_v <= 0 or p.dv(cp.ev_min_current) > max_i:
                raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, "AC EV limits out of range")
            self.ev_limits = EVLimits(max_charge_power=max_i * (lim.nominal_voltage or max_v), max_charge_current=max_i,
                                      max_voltage=max_v, min_voltage=D0, min_charge_current=p.dv(cp.ev_min_current))
        else:
            assert isinstance(cp, m2.DCEVChargeParameter)
            max_i, max_v = p.dv(cp.ev_maximum_current_limit), p.dv(cp.ev_maximum_voltage_limit)
            if max_i < 0 or max_v <= 0 or max_v < lim.min_voltage:
                raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, "DC EV limits out of range")
            max_p = p.dv(cp.ev_maximum_power_limit) if cp.ev_maximum_power_limit is not None else max_i * max_v
            self.ev_limits = EVLimits(max_charge_power=max_p, max_charge_current=max_i, max_voltage=max_v, min_voltage=D0,
                                      target_soc=cp.full_soc)
        offer = self.controller.schedule(now, self.service)
        if offer is None:
            self._ongoing(now, self.config.timers.secc_schedule_ongoing, "ChargeParameterDiscovery")
            return m2.ChargeParameterDiscoveryRes(response_code=RC.OK, evse_processing=m2.EVSEProcessing.ONGOING,
                                                  evse_charge_parameter=self._evse_parameter(now))
        self._ongoing_since = None
        self.schedule = offer
        if self._resume is not None and self.tuple_id is None:
            offer.tuple_id = int(self._resume.parameter_set) or offer.tuple_id  # keep the tuple ([V2G2-741])
        self.tuple_id = offer.tuple_id
        return m2.ChargeParameterDiscoveryRes(
            response_code=RC.OK,
            evse_processing=m2.EVSEProcessing.FINISHED,
            sa_schedules=self._schedule_list(offer, cp.departure_time),
            evse_charge_parameter=self._evse_parameter(now),
        )

    def _schedule_list(self, offer: ScheduleOffer, departure: int | None) -> m2.SAScheduleList:
        duration = min(departure or self.config.schedule_duration, 86400) or self.config.schedule_duration
        entry = m2.PMaxScheduleEntry(time_interval=m2.RelativeTimeInterval(start=0, duration=duration),
                                     p_max=p.pv(offer.charge_power, "W"))
        tup = m2.SAScheduleTuple(sa_schedule_tuple_id=offer.tuple_id,
                                 p_max_schedule=m2.PMaxSchedule(p_max_schedule_entry=[entry]))
        return m2.SAScheduleList(sa_schedule_tuple=[tup])

    def _evse_parameter(self, now: float) -> m2.ACEVSEChargeParameter | m2.DCEVSEChargeParameter:
        assert self.service is not None
        lim = self.controller.limits(now, self.service)
        if self.family is Family.AC:
            return m2.ACEVSEChargeParameter(ac_evse_status=p.ac_evse_status(),
                                            evse_nominal_voltage=p.pv(lim.nominal_voltage or lim.max_voltage, "V"),
                                            evse_max_current=p.pv(lim.max_charge_current, "A"))
        return m2.DCEVSEChargeParameter(
            dc_evse_status=p.dc_evse_status(isolation=m2.IsolationLevel.INVALID, code=m2.DCEVSEStatusCode.EVSE_READY),
            evse_maximum_current_limit=p.pv(lim.max_charge_current, "A"),
            evse_maximum_power_limit=p.pv(lim.max_charge_power, "W"),
            evse_maximum_voltage_limit=p.pv(lim.max_voltage, "V"),
            evse_minimum_current_limit=p.pv(lim.min_charge_current, "A"),
            evse_minimum_voltage_limit=p.pv(lim.min_voltage, "V"),
            evse_peak_current_ripple=p.pv(1, "A"),
        )

    def _on_cable_check(self, req: m2.CableCheckReq, now: float) -> m2.CableCheckRes:
        if self.controller.cable_check(now):
            self._ongoing_since = None
            return m2.CableCheckRes(response_code=RC.OK, evse_processing=m2.EVSEProcessing.FINISHED,
                                    dc_evse_status=p.dc_evse_status(isolation=m2.IsolationLevel.VALID))
        self._ongoing(now, self.config.timers.evcc_cable_check, "CableCheck")
        return m2.CableCheckRes(response_code=RC.OK, evse_processing=m2.EVSEProcessing.ONGOING,
                                dc_evse_status=p.dc_evse_status(isolation=m2.IsolationLevel.INVALID,
                                                                code=m2.DCEVSEStatusCode.EVSE_ISOLATION_MONITORING_ACTIVE))

    def _on_pre_charge(self, req: m2.PreChargeReq, now: float) -> m2.PreChargeRes:
        target = max(D0, p.dv(req.ev_target_voltage))  # re-applied every time (digest §6 #9); negative -> 0
        v = self.controller.pre_charge(now, target)
        return m2.PreChargeRes(response_code=RC.OK, dc_evse_status=p.dc_evse_status(isolation=m2.IsolationLevel.VALID),
                               evse_present_voltage=p.pv(v, "V"))

    def _on_power_delivery(self, req: m2.PowerDeliveryReq, now: float) -> m2.PowerDeliveryRes:
        progress = req.charge_progress
        if progress is m2.ChargeProgress.START:
            if req.sa_schedule_tuple_id != self.tuple_id:
                raise _Failed(RC.FAILED_TARIFF_SELECTION_INVALID, f"SAScheduleTupleID {req.sa_schedule_tuple_id} not offered")
            if req.charging_profile is not None and self.schedule is not None:
                limit = self.schedule.charge_power
                over = [e for e in req.charging_profile.profile_entry if p.dv(e.charging_profile_entry_max_power) > limit]
                if over:
                    raise _Failed(RC.FAILED_CHARGING_PROFILE_INVALID, f"ChargingProfile above PMax {limit} W")
            if not self.controller.power_delivery(now, "Start", False):
                raise _Failed(RC.FAILED_CONTACTOR_ERROR, "contactors did not close")
            self.power_on = True
        elif progress is m2.ChargeProgress.STOP:
            self.power_on = False
            if not self.controller.power_delivery(now, "Stop", False):
                raise _Failed(RC.FAILED_CONTACTOR_ERROR, "contactors did not open")
        else:  # Renegotiate: a new ChargeParameterDiscovery follows, power stays on
            self.schedule = None
        return m2.PowerDeliveryRes(response_code=RC.OK, evse_status=p.evse_status(self.family))

    def _ctx(self) -> LoopContext:
        assert self.service is not None
        return LoopContext(self.service, ControlMode.SCHEDULED, self.schedule, False)

    def _loop(self, now: float, status: EVLoopStatus) -> Any:
        self.loops += 1
        return self.controller.charge_loop(now, self._ctx(), status)

    def _meter(self, r: Any) -> m2.MeterInfo:
        return m2.MeterInfo(meter_id=self.evse_id[:32], meter_reading=int(r.charged_wh), t_meter=int(self._clock()))

    def _receipt(self, meter: m2.MeterInfo) -> bool:
        """ReceiptRequired of this loop response: true once, in a PnC session ([V2G2-691]: never for EIM)."""
        pnc = self.config.pnc
        if (self.authorization != "PnC" or pnc is None or pnc.receipt_after_loops is None or self._receipt_asked
                or self.loops < pnc.receipt_after_loops):
            return False
        self._receipt_asked, self._receipt_meter = True, meter
        return True

    def _on_metering_receipt(self, req: m2.MeteringReceiptReq, now: float) -> m2.MeteringReceiptRes:
        expected, self._receipt_meter = self._receipt_meter, None
        assert expected is not None and self._msg is not None and self.contract_certificate is not None
        if req.session_id != self.session_id or req.meter_info != expected or not req.id:
            raise _Failed(RC.FAILED_METERING_SIGNATURE_NOT_VALID, "MeteringReceiptReq does not hold the MeterInfo we sent")
        if self._msg.header.signature is None:
            raise _Failed(RC.FAILED_METERING_SIGNATURE_NOT_VALID, "MeteringReceiptReq without a signature")
        try:
            pnc2.verify_elements(self._msg.header.signature, [req], self.contract_certificate, required_ids=[req.id])
        except SignatureError as exc:
            raise _Failed(RC.FAILED_METERING_SIGNATURE_NOT_VALID, str(exc)) from None
        self.metering_receipts += 1
        return m2.MeteringReceiptRes(response_code=RC.OK, evse_status=p.evse_status(self.family))

    def _on_charging_status(self, req: m2.ChargingStatusReq, now: float) -> m2.ChargingStatusRes:
        assert self.ev_limits is not None and self.service is not None
        lim = self.controller.limits(now, self.service)
        pmax = self.schedule.charge_power if self.schedule is not None else lim.max_charge_power
        want = min(self.ev_limits.max_charge_power, pmax)
        status = EVLoopStatus(self.ev_limits, EnergyRequest(D0, D0, D0), lim.nominal_voltage or D0, want, want)
        r = self._loop(now, status)
        self._events.append(PowerChanged(r.target_power, r.present_voltage, r.present_current, None, r.charged_wh,
                                         r.discharged_wh))
        meter = self._meter(r)
        return m2.ChargingStatusRes(
            response_code=RC.OK, evse_id=self.evse_id, sa_schedule_tuple_id=self.tuple_id or 1,
            evse_max_current=p.pv(lim.max_charge_current, "A"), meter_info=meter, receipt_required=self._receipt(meter),
            ac_evse_status=self._loop_status(now),  # type: ignore[arg-type]
        )

    def _on_current_demand(self, req: m2.CurrentDemandReq, now: float) -> m2.CurrentDemandRes:
        assert self.ev_limits is not None and self.service is not None
        v, i = p.dv(req.ev_target_voltage), max(D0, p.dv(req.ev_target_current))  # negative current -> 0 (§6 #10)
        ev = self.ev_limits
        if req.ev_maximum_current_limit is not None or req.ev_maximum_power_limit is not None:
            ev = EVLimits(max_charge_power=p.dv(req.ev_maximum_power_limit) if req.ev_maximum_power_limit else ev.max_charge_power,
                          max_charge_current=p.dv(req.ev_maximum_current_limit) if req.ev_maximum_current_limit
                          else ev.max_charge_current,
                          max_voltage=p.dv(req.ev_maximum_voltage_limit) if req.ev_maximum_voltage_limit else ev.max_voltage,
                          min_voltage=D0)
        soc = req.dc_ev_status.evresssoc
        status = EVLoopStatus(ev, EnergyRequest(D0, D0, D0), v, i * v, i * v, v, soc)
        r = self._loop(now, status)
        lim = self.controller.limits(now, self.service)
        self._events.append(PowerChanged(r.target_power, r.present_voltage, r.present_current, soc, r.charged_wh,
                                         r.discharged_wh))
        st = self._loop_status(now)
        assert isinstance(st, m2.DCEVSEStatus)
        meter = self._meter(r)
        return m2.CurrentDemandRes(
            response_code=RC.OK, dc_evse_status=st,
            evse_present_voltage=p.pv(r.present_voltage, "V"), evse_present_current=p.pv(max(D0, r.present_current), "A"),
            evse_current_limit_achieved=r.current_limit_achieved, evse_voltage_limit_achieved=r.voltage_limit_achieved,
            evse_power_limit_achieved=r.power_limit_achieved,
            evse_maximum_voltage_limit=p.pv(lim.max_voltage, "V"),
            evse_maximum_current_limit=p.pv(lim.max_charge_current, "A"),
            evse_maximum_power_limit=p.pv(lim.max_charge_power, "W"),
            evse_id=self.evse_id, sa_schedule_tuple_id=self.tuple_id or 1, meter_info=meter,
            receipt_required=self._receipt(meter),
        )

    def _on_welding_detection(self, req: m2.WeldingDetectionReq, now: float) -> m2.WeldingDetectionRes:
        v = self.controller.present_voltage(now)
        return m2.WeldingDetectionRes(response_code=RC.OK, dc_evse_status=p.dc_evse_status(isolation=m2.IsolationLevel.VALID),
                                      evse_present_voltage=p.pv(v, "V"))

    def _on_session_stop(self, req: m2.SessionStopReq, now: float) -> m2.SessionStopRes:
        if req.charging_session is m2.ChargingSession.PAUSE:
            if self.service is None or self.payment is None:
                raise _Failed(RC.FAILED, "nothing to resume: no charge parameters yet")
            self.config.store.put(SessionRecord(
                self.session_id, self.evcc_id.hex(), self.service, self.tuple_id or 0, ControlMode.SCHEDULED, now,
                extra={"protocol": "iso2", "payment": self.payment, "energy_mode": self.energy_mode,
                       "peer_certificate": self.peer_certificate},
            ))
        return m2.SessionStopRes(response_code=RC.OK)


def service_for(family: Family, controller: EVSEController) -> EnergyService:
    """The charger's unidirectional service of ``family`` (a BPT-only charger serves its BPT
    service unidirectionally: -2 has no discharge)."""
    services = [o.service for o in controller.energy_services()]
    plain = p.service_of_family(family)
    if plain in services:
        return plain
    return next((s for s in services if s.family is family), plain)


def _chain_code(exc: CertificateChainError) -> RC:
    """The -2 code of a refused contract chain (DIN/-2 digest §3.4)."""
    if exc.reason in (ChainErrorReason.EXPIRED, ChainErrorReason.NOT_YET_VALID):
        return RC.FAILED_CERTIFICATE_EXPIRED  # also not yet valid ([V2G2-824] per Josev)
    if exc.reason is ChainErrorReason.REVOKED:
        return RC.FAILED_CERTIFICATE_REVOKED
    return RC.FAILED_CERT_CHAIN_ERROR


class _Failed(Exception):
    def __init__(self, code: RC, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


__all__ = ["Iso2SeccConfig", "Iso2SeccPnC", "Iso2SeccSession"]
