"""Sans-IO SECC core: received V2GTP payloads and time in, events out.

    conn = SeccSession(controller, SeccConfig(), clock=time.time)   # the wall clock is an input too
    events = conn.receive(payload_type, payload, now)   # -> [MessageReceived, SendMessage, ...]
    events = conn.handle_timer(now)                     # when now >= conn.next_deadline()

No sockets, no sleeps, no clock of its own: ``now`` comes with every call and ``clock`` (the
wall clock for header TimeStamps) from the driver -- :mod:`iso15118.session.runner` with
asyncio and ``time.time``, the tests with fake ones.  Which request may come next is decided by :mod:`iso15118.session.rules` only; an
out-of-sequence request is answered with its response type and ``FAILED_SequenceError``, a
wrong SessionID with ``FAILED_UnknownSession``; every FAILED* response ends the session
(digest §5.1).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from iso15118 import messages as m
from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import FAMILY_OF_NAMESPACE, SESSION_SCHEMAS
from iso15118.messages import MessageValidationError
from iso15118.security import pnc as sec
from iso15118.session import rules
from iso15118.session.builders import cl_mode, cpd_mode
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
from iso15118.session.events import (
    Event,
    MessageReceived,
    PowerChanged,
    ProtocolError,
    SendMessage,
    SessionEnded,
    StateChanged,
)
from iso15118.session.pnc import SeccPnC, meter_info_mapping, to_tree, typed
from iso15118.session.rules import AuthorizationMode, Family, State
from iso15118.session.services import (
    ControlMode,
    EnergyService,
    MobilityNeedsMode,
    ParameterSetOffer,
    ServiceOffer,
    int_parameter,
    rn,
    to_decimal,
)
from iso15118.transport.v2gtp import schema_key_for

log = logging.getLogger(__name__)

RC = m.ResponseCode
D0 = Decimal(0)


class SessionStore:
    """Paused sessions, shared by all connections of one SECC (resumption, digest §6.4)."""

    def __init__(self, max_age: float = 24 * 3600.0) -> None:
        self._records: dict[bytes, SessionRecord] = {}
        self.max_age = max_age

    def put(self, record: SessionRecord) -> None:
        self._records[record.session_id] = record

    def take(
        self, session_id: bytes, evcc_id: str, now: float, peer_certificate: str | None = None
    ) -> SessionRecord | None:
        """The paused session, if ``evcc_id`` and the TLS peer certificate fingerprint match
        the session that paused it (a mismatch leaves the record in place)."""
        rec = self._records.get(session_id)
        if rec is None or rec.evcc_id != evcc_id or now - rec.paused_at > self.max_age:
            return None
        if rec.extra.get("peer_certificate") != peer_certificate:
            log.warning("resumption of session %s refused: TLS vehicle certificate differs from the pausing session's",
                        session_id.hex())
            return None
        del self._records[session_id]
        return rec

    def __len__(self) -> int:
        return len(self._records)


@dataclass
class SeccConfig:
    """Behaviour switches of the SECC core."""

    timers: rules.Timers = rules.TIMERS
    authorization_services: tuple[str, ...] = ("EIM",)
    service_renegotiation_supported: bool = True
    standby_allowed: bool = True
    store: SessionStore = field(default_factory=SessionStore)
    session_id_factory: Callable[[], bytes] = lambda: secrets.token_bytes(8)
    enforce_notification_delay: bool = True
    """End the session with FAILED if the EV ignores Terminate/Pause past NotificationMaxDelay."""
    pnc: SeccPnC | None = None
    """Plug & Charge settings; PnC is offered only when this is set, ``"PnC"`` is in
    ``authorization_services`` and the connection is TLS (digest §1.3, §8.1)."""


class SeccSession:
    """One SECC communication session (one TCP/TLS connection)."""

    def __init__(
        self,
        controller: EVSEController,
        config: SeccConfig | None = None,
        *,
        now: float = 0.0,
        clock: Callable[[], float],
        tls: bool = False,
        peer_certificate: str | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or SeccConfig()
        self._clock = clock
        self.tls = tls
        """True when the transport is TLS (the runner knows; in-memory tests say so)."""
        self.peer_certificate = peer_certificate
        """SHA-512 fingerprint (hex) of the EV's TLS certificate, an input from the runner: a
        paused session resumes only with the same certificate (digest §1.3)."""
        self.authorization: AuthorizationMode | None = None
        """``"EIM"`` or ``"PnC"`` once the EV is authorized."""
        self.emaid: str | None = None
        self.contract_certificate: Any = None
        self.pnc_result: sec.AuthorizationCheck | None = None
        self.offered_authorization: list[str] = []
        self.certificate_installations = 0
        self.metering_confirmations = 0
        self._gen_challenge: bytes | None = None
        self._expected_meter: dict[str, Any] | None = None
        self._loops = 0
        self._metering_asked = False
        self.state: State = State.CONNECTED
        self.family: Family | None = None
        self.session_id: bytes = bytes(8)
        self.evcc_id: str = ""
        self.service: EnergyService | None = None
        self.parameter_set: ParameterSetOffer | None = None
        self.offered: dict[int, ServiceOffer] = {}
        self.schedule: ScheduleOffer | None = None
        self.ended = False
        self.end_reason = ""
        self.ok = False
        self.rx = 0
        self.tx = 0
        self._deadline: float | None = now + self.config.timers.secc_first_message
        self._deadline_reason = "no supportedAppProtocolReq"
        self._ongoing_since: float | None = None
        self._notification: Notification | None = None
        self._notified_at: float | None = None
        self._notification_sent: Notification | None = None
        self._standby = False
        self._resumed = False
        self._handlers: dict[str, Callable[[Any, float], Any]] = {
            "supportedAppProtocolReq": self._on_sap,
            "SessionSetupReq": self._on_session_setup,
            "AuthorizationSetupReq": self._on_authorization_setup,
            "AuthorizationReq": self._on_authorization,
            "CertificateInstallationReq": self._on_certificate_installation,
            "MeteringConfirmationReq": self._on_metering_confirmation,
            "ServiceDiscoveryReq": self._on_service_discovery,
            "ServiceDetailReq": self._on_service_detail,
            "ServiceSelectionReq": self._on_service_selection,
            "AC_ChargeParameterDiscoveryReq": self._on_ac_cpd,
            "DC_ChargeParameterDiscoveryReq": self._on_dc_cpd,
            "ScheduleExchangeReq": self._on_schedule_exchange,
            "DC_CableCheckReq": self._on_cable_check,
            "DC_PreChargeReq": self._on_pre_charge,
            "PowerDeliveryReq": self._on_power_delivery,
            "AC_ChargeLoopReq": self._on_ac_charge_loop,
            "DC_ChargeLoopReq": self._on_dc_charge_loop,
            "DC_WeldingDetectionReq": self._on_welding_detection,
            "SessionStopReq": self._on_session_stop,
        }
        self._events: list[Event] = []

    # ------------------------------------------------------------------ public API

    @property
    def control_mode(self) -> ControlMode | None:
        return self.parameter_set.control_mode if self.parameter_set else None

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: no timer running)."""
        return None if self.ended else self._deadline

    def negotiated(self, family: Family, now: float) -> None:
        """Continue after a SupportedAppProtocol exchange done by
        :class:`iso15118.session.negotiation.SeccNegotiator` (-20 ``family`` agreed): the next
        request is SessionSetupReq, within the sequence timeout."""
        if self.state is not State.CONNECTED:
            raise RuntimeError(f"negotiated() in {self.state.value}")
        self.family = family
        self.state = State.APP_PROTOCOL
        self._deadline = now + self.config.timers.secc_sequence
        self._deadline_reason = f"no request within {self.config.timers.secc_sequence} s after supportedAppProtocolRes"

    def notify(self, kind: str, max_delay: int = 0) -> None:
        """Queue an EVSENotification (Pause, Terminate, ExitStandby, ScheduleRenegotiation,
        ServiceRenegotiation) for the next PowerDeliveryRes / ChargeLoopRes."""
        self._notification = Notification(kind, max_delay)

    def handle_timer(self, now: float) -> list[Event]:
        """Fire expired timers: the sequence timeout ends the session without a response."""
        if self.ended or self._deadline is None or now < self._deadline:
            return []
        events: list[Event] = [ProtocolError("Timeout", self._deadline_reason)]
        events += self._end(now, f"timeout: {self._deadline_reason}", ok=False)
        return events

    def connection_lost(self, now: float) -> list[Event]:
        """The transport closed; ends the session if it was still running."""
        if self.ended:
            return []
        return self._end(now, f"connection lost in {self.state.value}", ok=self.state in (State.ENDED, State.PAUSED))

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        """Handle one received V2GTP frame; returns the events (at most one SendMessage)."""
        if self.ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self.rx += 1
        self._events = []
        key = schema_key_for(payload_type)
        if key not in SESSION_SCHEMAS or (key == "sap") != (self.state is State.CONNECTED):
            return self._abort(now, "WrongPayloadType", f"payload type 0x{payload_type:04x} in {self.state.value}")
        msg: Any  # a request of the session: which one, the rules table decides below
        try:
            msg = m.decode(payload, key)
        except (ExiError, ValueError, KeyError) as exc:  # undecodable or invalid: nothing to answer (no message type known)
            return self._abort(now, "DecodeError", str(exc))
        name = msg.ELEMENT[1]
        self._events.append(MessageReceived(payload_type, msg, name))
        spec = rules.spec_for_request(name)
        if spec is None:
            return self._abort(now, "UnexpectedMessage", f"{name} is not a request")
        if spec.payload_type != payload_type:
            return self._fail(now, msg, RC.FAILED_SEQUENCE_ERROR, f"{name} in payload type 0x{payload_type:04x}")
        if name != "supportedAppProtocolReq" and self.state is not State.APP_PROTOCOL:
            if msg.header.session_id != self.session_id:
                return self._fail(now, msg, RC.FAILED_UNKNOWN_SESSION, f"SessionID {msg.header.session_id.hex()}")
        if not rules.accepts(self.state, name, self.family):
            return self._fail(now, msg, RC.FAILED_SEQUENCE_ERROR, f"{name} not allowed in {self.state.value}")
        early = rules.request_outcome(msg)
        if early is not None:
            try:
                rules.next_state(self.state, name, early, self.family)
            except KeyError as exc:
                return self._fail(now, msg, RC.FAILED_SEQUENCE_ERROR, str(exc))
        try:
            res = self._handlers[name](msg, now)
        except _Failed as exc:
            return self._fail(now, msg, exc.code, exc.detail)
        except MessageValidationError as exc:  # a response built from the controller's values is invalid: answer FAILED
            log.exception("SECC handler for %s failed", name)
            return self._fail(now, msg, RC.FAILED, f"internal error: {exc}")
        return self._respond(now, msg, res)

    # ------------------------------------------------------------------ plumbing

    def _header(self) -> m.MessageHeader:
        return m.MessageHeader(session_id=self.session_id, time_stamp=int(self._clock()))

    def _respond(self, now: float, req: Any, res: Any) -> list[Event]:
        name = req.ELEMENT[1]
        events = self._events
        if rules.is_failure(res):
            events += self._send(res)
            code = res.response_code.value
            events.append(ProtocolError(code, f"answered {name} with {code}"))
            events += self._end(now, f"{code} on {name}", ok=False)
            return events
        try:
            new = rules.next_state(self.state, name, rules.outcome(req, res), self.family)
        except KeyError as exc:
            return self._fail(now, req, RC.FAILED_SEQUENCE_ERROR, str(exc))
        events += self._send(res)
        if new is not self.state:
            events.append(StateChanged(self.state, new, name))
            self.state = new
        if new in (State.ENDED, State.PAUSED):
            events += self._end(now, "SessionStop " + ("Pause" if new is State.PAUSED else "Terminate"), ok=True)
        else:
            self._deadline = now + self.config.timers.secc_sequence
            self._deadline_reason = f"no request within {self.config.timers.secc_sequence} s after {res.ELEMENT[1]}"
        return events

    def _send(self, res: Any) -> list[Event]:
        spec = rules.spec_for_response(res.ELEMENT[1])
        assert spec is not None
        self.tx += 1
        return [SendMessage(int(spec.payload_type), m.encode(res), res)]

    def _fail(self, now: float, req: Any, code: Any, detail: str) -> list[Event]:
        events = self._events
        res = minimal_response(req.ELEMENT[1], self._header(), code)
        events += self._send(res)
        events.append(ProtocolError(code.value, detail))
        events += self._end(now, f"{code.value}: {detail}", ok=False)
        return events

    def _abort(self, now: float, code: str, detail: str) -> list[Event]:
        events = self._events
        events.append(ProtocolError(code, detail))
        events += self._end(now, f"{code}: {detail}", ok=False)
        return events

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.end_reason, self.ok = True, reason, ok
        self._deadline = None
        if self.service is not None and self.state in (State.CHARGING, State.STANDBY) and not ok:
            # never leave the contactors closed behind an aborted session
            try:
                self.controller.power_delivery(now, "Stop", False)
            except Exception:  # pragma: no cover - controller bug must not hide the end
                log.exception("power_delivery(Stop) failed")
        self.controller.session_ended(now, reason, ok)
        return [SessionEnded(reason, ok, close_after=self.config.timers.close_delay)]

    def _ctx(self) -> LoopContext:
        assert self.service is not None and self.parameter_set is not None
        return LoopContext(self.service, self.parameter_set.control_mode, self.schedule, self._standby)

    def _take_notification(self, now: float, in_loop: bool = False) -> m.EVSEStatus | None:
        note = self._notification or self.controller.pending_notification(now)
        self._notification = None
        if note is None:
            return None
        if note.kind == "MeteringConfirmation":
            if not in_loop:  # needs MeterInfo: only a ChargeLoopRes can carry it
                self._notification = note
                return None
            if self.contract_certificate is None:
                log.info("MeteringConfirmation dropped: no PnC contract in this session")
                return None
        if note.kind == "ServiceRenegotiation" and not self.config.service_renegotiation_supported:
            return None
        if note.kind in ("Terminate", "Pause", "ServiceRenegotiation") and self._notified_at is None:
            self._notified_at = now
            self._notification_sent = note
        return m.EVSEStatus(notification_max_delay=note.max_delay, evse_notification=m.EVSENotification(note.kind))

    def _check_notification_delay(self, now: float) -> None:
        note, at = self._notification_sent, self._notified_at
        if note is None or at is None or not self.config.enforce_notification_delay:
            return
        if now - at > max(note.max_delay, 0) + 2.0:  # 2 s grace for one round trip
            raise _Failed(RC.FAILED, f"EV ignored {note.kind} for {now - at:.1f} s")

    # ------------------------------------------------------------------ handlers

    def _on_sap(self, req: m.SupportedAppProtocolReq, now: float) -> m.SupportedAppProtocolRes:
        families = {o.service.family for o in self.controller.energy_services()}
        for proto in sorted(req.app_protocol, key=lambda p: p.priority):
            fam = FAMILY_OF_NAMESPACE.get(proto.protocol_namespace)
            if fam is None or fam not in families or proto.version_number_major != 1:
                continue
            self.family = fam
            code = (
                m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION
                if proto.version_number_minor == 0
                else m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION
            )
            return m.SupportedAppProtocolRes(response_code=code, schema_id=proto.schema_id)
        return m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)

    def _on_session_setup(self, req: m.SessionSetupReq, now: float) -> m.SessionSetupRes:
        self.evcc_id = req.evcc_id
        rec = None
        if req.header.session_id != bytes(8):
            rec = self.config.store.take(req.header.session_id, req.evcc_id, now, self.peer_certificate)
        if rec is not None and rec.service.family is self.family:
            self.session_id = rec.session_id
            self.service = rec.service
            offer = self._offers().get(int(rec.service))
            self.parameter_set = offer.parameter_set(rec.parameter_set) if offer else None
            if self.parameter_set is not None:
                self._resumed = True
                return m.SessionSetupRes(
                    header=self._header(), response_code=RC.OK_OLD_SESSION_JOINED, evse_id=self.controller.evse_id
                )
            self.service = None
        self.session_id = self.config.session_id_factory()
        return m.SessionSetupRes(
            header=self._header(), response_code=RC.OK_NEW_SESSION_ESTABLISHED, evse_id=self.controller.evse_id
        )

    def _pnc_available(self) -> bool:
        return "PnC" in self.config.authorization_services and self.config.pnc is not None and self.tls

    def _on_authorization_setup(self, req: Any, now: float) -> m.AuthorizationSetupRes:
        names = [s for s in self.config.authorization_services if s in ("EIM", "PnC")]
        if "PnC" in names and not self._pnc_available():
            # never over plain TCP (the contract chain would travel in clear), never without
            # trust settings (digest §1.3 "PnC without TLS")
            names.remove("PnC")
            log.info("PnC not offered: %s", "no TLS" if not self.tls else "no PnC settings")
        if not names:
            names = ["EIM"]
        self.offered_authorization = names
        pnc_cfg = self.config.pnc
        if "PnC" in names:
            assert pnc_cfg is not None
            # [V2G20-2567]/[V2G20-2568]: with PnC offered the PnC mode carries a fresh challenge
            self._gen_challenge = sec.new_gen_challenge()
            mode: Any = m.PnCASResAuthorizationMode.from_tree(
                sec.pnc_authorization_setup_mode(self._gen_challenge, pnc_cfg.supported_providers)
            )
        else:
            mode = m.EIMASResAuthorizationMode()
        return m.AuthorizationSetupRes(
            header=self._header(),
            response_code=RC.OK,
            authorization_services=[m.Authorization(s) for s in names],
            certificate_installation_service="PnC" in names and pnc_cfg is not None and pnc_cfg.provider is not None,
            authorization_mode=mode,
        )

    def _on_authorization(self, req: m.AuthorizationReq, now: float) -> m.AuthorizationRes:
        selected = req.selected_authorization_service.value
        if selected not in self.offered_authorization:
            # not offered in AuthorizationSetupRes ([V2G20-2209])
            return m.AuthorizationRes(
                header=self._header(),
                response_code=RC.WARNING_AUTHORIZATION_SELECTION_INVALID,
                evse_processing=m.Processing.FINISHED,
            )
        if selected == "PnC":
            return self._on_pnc_authorization(req, now)
        decision = self.controller.authorize(now)
        if decision is AuthorizationDecision.PENDING:
            if self._ongoing_since is None:
                self._ongoing_since = now
            if now - self._ongoing_since > self.config.timers.secc_authorization_ongoing:
                raise _Failed(RC.FAILED, "EIM authorization still pending after the ongoing limit")
            return m.AuthorizationRes(
                header=self._header(),
                response_code=RC.OK,
                evse_processing=m.Processing.ONGOING_WAITING_FOR_CUSTOMER_INTERACTION,
            )
        self._ongoing_since = None
        code = RC.OK if decision is AuthorizationDecision.ACCEPTED else RC.WARNING_EIM_AUTHORIZATION_FAILURE
        if code is RC.OK:
            self.authorization = AuthorizationMode.EIM
        return m.AuthorizationRes(header=self._header(), response_code=code, evse_processing=m.Processing.FINISHED)

    def _on_pnc_authorization(self, req: m.AuthorizationReq, now: float) -> m.AuthorizationRes:
        """Verify with :func:`iso15118.security.pnc.check_pnc_authorization_req` (challenge,
        signature, contract chain to an MO root, eMAID) and answer with its code; then ask the
        backend (controller hook ``authorize_contract``), Ongoing while it decides."""
        cfg = self.config.pnc
        assert cfg is not None and self._gen_challenge is not None
        check = sec.check_pnc_authorization_req(
            to_tree(req),
            gen_challenge=self._gen_challenge,
            mo_roots=cfg.mo_roots,
            crls=list(cfg.crls) or None,
            ocsp_responses=list(cfg.ocsp_responses) or None,
            expires_soon=cfg.expires_soon,
        )
        self.pnc_result = check
        fin = m.Processing.FINISHED
        if not check.ok:
            log.info("PnC authorization refused: %s (%s)", check.response_code, check.reason)
            code = RC(check.response_code)
            if code.value.startswith("FAILED"):
                raise _Failed(code, f"PnC AuthorizationReq: {check.reason}")
            self._ongoing_since = None
            return m.AuthorizationRes(header=self._header(), response_code=code, evse_processing=fin)
        hook = getattr(self.controller, "authorize_contract", None)
        decision: Any = AuthorizationDecision.ACCEPTED if hook is None else hook(now, check.emaid, check.contract_certificate)
        if decision is AuthorizationDecision.PENDING:
            if self._ongoing_since is None:
                self._ongoing_since = now
            if now - self._ongoing_since > self.config.timers.secc_authorization_ongoing:
                raise _Failed(RC.FAILED, "PnC authorization still pending after the ongoing limit")
            return m.AuthorizationRes(header=self._header(), response_code=RC.OK, evse_processing=m.Processing.ONGOING)
        self._ongoing_since = None
        if decision is AuthorizationDecision.ACCEPTED:
            code = RC(check.response_code)
        elif decision is AuthorizationDecision.REJECTED:
            code = RC.WARNING_GENERAL_PNC_AUTHORIZATION_ERROR
        else:  # the backend gave a response code (e.g. WARNING_eMSPUnknown)
            code = RC(str(getattr(decision, "value", decision)))
        if code.value.startswith("OK"):
            self.authorization, self.emaid, self.contract_certificate = AuthorizationMode.PNC, check.emaid, check.contract_certificate
            log.info("PnC authorized: eMAID %s (%s)", check.emaid, code.value)
        else:
            log.info("PnC contract %s refused by the backend: %s", check.emaid, code.value)
        if code.value.startswith("FAILED"):
            raise _Failed(code, "refused by the backend")
        return m.AuthorizationRes(header=self._header(), response_code=code, evse_processing=fin)

    def _on_certificate_installation(self, req: m.CertificateInstallationReq, now: float) -> Any:
        """Check the OEM provisioning signature (and chain against the OEM roots) and relay
        the CPS's response: contract chain + encrypted key, signed by the CPS leaf."""
        cfg = self.config.pnc
        if "PnC" not in self.offered_authorization or cfg is None or cfg.provider is None:
            raise _Failed(RC.FAILED, "CertificateInstallationService was not offered")
        tree = to_tree(req)
        check = sec.check_certificate_installation_req(tree, oem_roots=cfg.oem_roots)
        if not check.ok:
            log.info("CertificateInstallationReq refused: %s (%s)", check.response_code, check.reason)
            code = RC(check.response_code)
            if code.value.startswith("FAILED"):
                raise _Failed(code, f"CertificateInstallationReq: {check.reason}")
            return _installation_placeholder(self._header(), code)
        res = cfg.provider.certificate_installation_res(now, self.session_id, check, tree, int(self._clock()))
        if res is None:
            return _installation_placeholder(self._header(), RC.WARNING_NO_CERTIFICATE_AVAILABLE)
        self.certificate_installations += 1
        log.info("contract certificate installed for %s", check.oem_certificate.subject.rfc4514_string() if check.oem_certificate else "?")
        return typed(res)

    def _on_metering_confirmation(self, req: m.MeteringConfirmationReq, now: float) -> m.MeteringConfirmationRes:
        """SignedMeteringData must verify with the contract certificate of this session and
        carry the MeterInfo the SECC sent with its MeteringConfirmation notification."""
        if self.contract_certificate is None:
            raise _Failed(RC.FAILED_SEQUENCE_ERROR, "MeteringConfirmationReq without a PnC contract")
        check = sec.check_metering_confirmation_req(
            to_tree(req),
            public_key=self.contract_certificate,
            session_id=self.session_id,
            expected_meter_info=self._expected_meter,
        )
        self._expected_meter = None
        if not check.ok:
            raise _Failed(RC(check.response_code), f"SignedMeteringData: {check.reason}")
        self.metering_confirmations += 1
        log.info("metering confirmation %d verified", self.metering_confirmations)
        return m.MeteringConfirmationRes(header=self._header(), response_code=RC.OK)

    def _loop_notification(self, now: float) -> m.EVSEStatus | None:
        """The EVSEStatus of a ChargeLoopRes: queued/controller notifications, else the
        configured one-off request for a signed meter reading (PnC sessions)."""
        self._loops += 1
        status = self._take_notification(now, in_loop=True)
        cfg = self.config.pnc
        if (
            status is None
            and cfg is not None
            and cfg.metering_confirmation_after_loops is not None
            and not self._metering_asked
            and self.contract_certificate is not None
            and self._loops >= cfg.metering_confirmation_after_loops
        ):
            status = m.EVSEStatus(notification_max_delay=0, evse_notification=m.EVSENotification.METERING_CONFIRMATION)
        if status is not None and status.evse_notification is m.EVSENotification.METERING_CONFIRMATION:
            self._metering_asked = True
        return status

    def _offers(self) -> dict[int, ServiceOffer]:
        return {int(o.service): o for o in self.controller.energy_services() if o.service.family is self.family}

    def _on_service_discovery(self, req: m.ServiceDiscoveryReq, now: float) -> m.ServiceDiscoveryRes:
        offers = self._offers()
        if req.supported_service_ids is not None:
            wanted = set(req.supported_service_ids.service_id)
            offers = {k: v for k, v in offers.items() if k in wanted}
        if not offers:
            raise _Failed(RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED, "no common energy service")
        self.offered = offers
        return m.ServiceDiscoveryRes(
            header=self._header(),
            response_code=RC.OK,
            service_renegotiation_supported=self.config.service_renegotiation_supported,
            energy_transfer_service_list=m.ServiceList(
                service=[m.Service(service_id=k, free_service=o.free) for k, o in list(offers.items())[:8]]
            ),
        )

    def _on_service_detail(self, req: m.ServiceDetailReq, now: float) -> m.ServiceDetailRes:
        offer = self.offered.get(req.service_id)
        if offer is None:
            raise _Failed(RC.FAILED_SERVICE_ID_INVALID, f"service {req.service_id} not offered")
        return m.ServiceDetailRes(
            header=self._header(),
            response_code=RC.OK,
            service_id=req.service_id,
            service_parameter_list=m.ServiceParameterList(parameter_set=[p.to_message() for p in offer.parameter_sets]),
        )

    def _on_service_selection(self, req: m.ServiceSelectionReq, now: float) -> m.ServiceSelectionRes:
        sel = req.selected_energy_transfer_service
        offer = self.offered.get(sel.service_id)
        if offer is None:
            raise _Failed(RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED, f"service {sel.service_id} not offered")
        pset = offer.parameter_set(sel.parameter_set_id)
        if pset is None:
            raise _Failed(RC.FAILED_SERVICE_SELECTION_INVALID, f"parameter set {sel.parameter_set_id} not offered")
        if req.selected_vas_list is not None:
            raise _Failed(RC.FAILED_SERVICE_SELECTION_INVALID, "no value-added services are offered")
        self.service, self.parameter_set = offer.service, pset
        self.schedule = None
        return m.ServiceSelectionRes(header=self._header(), response_code=RC.OK)

    def _check_cpd_mode(self, mode: Any, bpt_cls: type) -> None:
        assert self.service is not None
        if isinstance(mode, bpt_cls) != self.service.bpt:
            raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, f"{type(mode).__name__} does not match {self.service.name}")

    def _on_ac_cpd(self, req: m.ACChargeParameterDiscoveryReq, now: float) -> m.ACChargeParameterDiscoveryRes:
        self._require_service()
        self._check_cpd_mode(req.energy_transfer_mode, m.BPTACCPDReqEnergyTransferMode)
        assert self.service is not None
        mode = cpd_mode("evse", Family.AC, self.service.bpt, self.controller.limits(now, self.service))
        return m.ACChargeParameterDiscoveryRes(header=self._header(), response_code=RC.OK, energy_transfer_mode=mode)

    def _on_dc_cpd(self, req: m.DCChargeParameterDiscoveryReq, now: float) -> m.DCChargeParameterDiscoveryRes:
        self._require_service()
        self._check_cpd_mode(req.energy_transfer_mode, m.BPTDCCPDReqEnergyTransferMode)
        assert self.service is not None
        mode = cpd_mode("evse", Family.DC, self.service.bpt, self.controller.limits(now, self.service))
        return m.DCChargeParameterDiscoveryRes(header=self._header(), response_code=RC.OK, energy_transfer_mode=mode)

    def _require_service(self) -> None:
        if self.service is None or self.parameter_set is None:
            raise _Failed(RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED, "no service selected")

    def _on_schedule_exchange(self, req: m.ScheduleExchangeReq, now: float) -> m.ScheduleExchangeRes:
        self._require_service()
        assert self.service is not None and self.parameter_set is not None
        dynamic = self.parameter_set.control_mode is ControlMode.DYNAMIC
        if isinstance(req.control_mode, m.DynamicSEReqControlMode) != dynamic:
            raise _Failed(RC.FAILED, f"{type(req.control_mode).__name__} but parameter set is {self.parameter_set.control_mode.name}")
        offer = self.controller.schedule(now, self.service)
        if offer is None:
            if self._ongoing_since is None:
                self._ongoing_since = now
            if now - self._ongoing_since > self.config.timers.secc_schedule_ongoing:
                raise _Failed(RC.FAILED, "schedule not ready within the ongoing limit")
            return m.ScheduleExchangeRes(
                header=self._header(),
                response_code=RC.OK,
                evse_processing=m.Processing.ONGOING,
                control_mode=m.DynamicSEResControlMode() if dynamic else _scheduled_res(offer or ScheduleOffer(), self.service, now, self._clock()),
            )
        self._ongoing_since = None
        self.schedule = offer
        if dynamic:
            ctrl: Any = m.DynamicSEResControlMode()
            if self.parameter_set.mobility_needs_mode is MobilityNeedsMode.PROVIDED_BY_EVCC_AND_SECC:
                rcm = req.control_mode
                assert isinstance(rcm, m.DynamicSEReqControlMode)  # checked above: the parameter set is dynamic
                ctrl = m.DynamicSEResControlMode(departure_time=rcm.departure_time, minimum_soc=rcm.minimum_soc, target_soc=rcm.target_soc)
        else:
            ctrl = _scheduled_res(offer, self.service, now, self._clock())
        return m.ScheduleExchangeRes(
            header=self._header(), response_code=RC.OK, evse_processing=m.Processing.FINISHED, control_mode=ctrl
        )

    def _on_cable_check(self, req: Any, now: float) -> m.DCCableCheckRes:
        done = self.controller.cable_check(now)
        return m.DCCableCheckRes(
            header=self._header(),
            response_code=RC.OK,
            evse_processing=m.Processing.FINISHED if done else m.Processing.ONGOING,
        )

    def _on_pre_charge(self, req: m.DCPreChargeReq, now: float) -> m.DCPreChargeRes:
        v = self.controller.pre_charge(now, to_decimal(req.ev_target_voltage))
        return m.DCPreChargeRes(header=self._header(), response_code=RC.OK, evse_present_voltage=rn(v))

    def _on_power_delivery(self, req: m.PowerDeliveryReq, now: float) -> m.PowerDeliveryRes:
        self._require_service()
        assert self.service is not None and self.parameter_set is not None
        progress = req.charge_progress.value
        code = RC.OK
        if req.ev_processing is m.Processing.FINISHED and progress in ("Start", "Standby"):
            prof = req.ev_power_profile
            code = RC.OK
            if prof is not None:
                dynamic = self.parameter_set.control_mode is ControlMode.DYNAMIC
                if isinstance(prof.control_mode, m.DynamicEVPPTControlMode) != dynamic:
                    raise _Failed(RC.FAILED_EV_POWER_PROFILE_INVALID, "EVPowerProfile control mode mismatch")
                if isinstance(prof.control_mode, m.ScheduledEVPPTControlMode):
                    tid = prof.control_mode.selected_schedule_tuple_id
                    if self.schedule is None or tid != self.schedule.tuple_id:
                        raise _Failed(RC.FAILED_SCHEDULE_SELECTION_INVALID, f"ScheduleTupleID {tid} was not offered")
                    # the profile must stay inside the selected schedule (5 % + 100 W tolerance)
                    powers = [to_decimal(e.power) for e in prof.ev_power_profile_entries.ev_power_profile_entry]
                    hi = self.schedule.charge_power * Decimal("1.05") + 100
                    lo = -(self.schedule.discharge_power * Decimal("1.05") + 100)
                    if any(p > hi or p < lo for p in powers):
                        code = RC.WARNING_EV_POWER_PROFILE_VIOLATION
            discharge = req.bpt_channel_selection is m.ChannelSelection.DISCHARGE
            if discharge and not self.service.bpt:
                raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, "BPT_ChannelSelection=Discharge for a non-BPT service")
            if progress == "Standby":
                if not self.config.standby_allowed:
                    code = RC.WARNING_STANDBY_NOT_ALLOWED
                else:
                    self._standby = True
                    self.controller.power_delivery(now, "Standby", False)
            else:
                if not self.controller.power_delivery(now, "Start", discharge):
                    raise _Failed(RC.FAILED_CONTACTOR_ERROR, "contactors did not close")
                self._standby = False
        elif req.ev_processing is m.Processing.FINISHED and progress == "Stop":
            self._standby = False
            if not self.controller.power_delivery(now, "Stop", False):
                raise _Failed(RC.FAILED_CONTACTOR_ERROR, "contactors did not open")
            self._notification_sent = self._notified_at = None
        elif progress == "ScheduleRenegotiation":
            self.schedule = None
        status = self._take_notification(now) if progress in ("Start",) else None
        return m.PowerDeliveryRes(header=self._header(), response_code=code, evse_status=status)

    def _loop_status(self, now: float, req: Any, family: Family) -> tuple[EVLoopStatus, bool]:
        """Translate a ChargeLoopReq into the controller's view; checks the control mode."""
        assert self.service is not None and self.parameter_set is not None
        cm = req.control_mode
        cname = type(cm).__name__
        is_bpt = cname.startswith("BPT")
        is_dynamic = "Dynamic" in cname
        if is_bpt != self.service.bpt or is_dynamic != (self.parameter_set.control_mode is ControlMode.DYNAMIC):
            raise _Failed(RC.FAILED, f"{cname} does not match {self.service.name}/{self.parameter_set.control_mode.name}")
        def g(attr: str) -> Decimal:
            return to_decimal(getattr(cm, attr, None))

        limits = EVLimits(
            max_charge_power=g("ev_maximum_charge_power"),
            min_charge_power=g("ev_minimum_charge_power"),
            max_charge_current=g("ev_maximum_charge_current"),
            max_voltage=g("ev_maximum_voltage"),
            min_voltage=g("ev_minimum_voltage"),
            max_discharge_power=g("ev_maximum_discharge_power"),
            min_discharge_power=g("ev_minimum_discharge_power"),
            max_discharge_current=g("ev_maximum_discharge_current"),
        )
        energy = EnergyRequest(
            target_wh=g("ev_target_energy_request"),
            max_wh=g("ev_maximum_energy_request"),
            min_wh=g("ev_minimum_energy_request"),
            departure_time=getattr(cm, "departure_time", None) or 0,
            max_v2x_wh=to_decimal(cm.ev_maximum_v2x_energy_request) if getattr(cm, "ev_maximum_v2x_energy_request", None) else None,
            min_v2x_wh=to_decimal(cm.ev_minimum_v2x_energy_request) if getattr(cm, "ev_minimum_v2x_energy_request", None) else None,
        )
        soc = req.display_parameters.present_soc if req.display_parameters is not None else None
        if family is Family.DC:
            voltage = to_decimal(req.ev_present_voltage)
            target_v = to_decimal(getattr(cm, "ev_target_voltage", None)) if hasattr(cm, "ev_target_voltage") else None
            target_i = getattr(cm, "ev_target_current", None)
            target_p = to_decimal(target_i) * (target_v or voltage) if target_i is not None else None
            present = D0
        else:
            voltage = D0
            target_v = None
            present = to_decimal(cm.ev_present_active_power)
            target_p = present if not is_dynamic else None
        return EVLoopStatus(limits, energy, voltage, present, target_p, target_v, soc), is_dynamic

    def _meter(self, req: Any, result: Any, status: m.EVSEStatus | None = None) -> m.MeterInfo | None:
        confirm = status is not None and status.evse_notification is m.EVSENotification.METERING_CONFIRMATION
        if not req.meter_info_requested and not confirm:
            return None
        info = m.MeterInfo(
            meter_id=self.controller.evse_id[:32] or "meter",
            charged_energy_reading_wh=int(result.charged_wh),
            bpt_discharged_energy_reading_wh=int(result.discharged_wh) if self.service and self.service.bpt else None,
            meter_timestamp=int(self._clock()),
        )
        if confirm:  # the EV is to sign exactly this reading
            self._expected_meter = meter_info_mapping(info)
        return info

    def _on_dc_charge_loop(self, req: m.DCChargeLoopReq, now: float) -> m.DCChargeLoopRes:
        self._check_notification_delay(now)
        status, dynamic = self._loop_status(now, req, Family.DC)
        ctx = self._ctx()
        r = self.controller.charge_loop(now, ctx, status)
        assert self.service is not None
        cm = cl_mode("evse", Family.DC, self.service.bpt, dynamic, self.controller.limits(now, self.service), None)
        note = self._loop_notification(now)
        res = m.DCChargeLoopRes(
            header=self._header(),
            response_code=RC.OK,
            evse_status=note,
            meter_info=self._meter(req, r, note),
            evse_present_current=rn(r.present_current),
            evse_present_voltage=rn(r.present_voltage),
            evse_power_limit_achieved=r.power_limit_achieved,
            evse_current_limit_achieved=r.current_limit_achieved,
            evse_voltage_limit_achieved=r.voltage_limit_achieved,
            control_mode=cm,
        )
        self._events.append(
            PowerChanged(r.target_power, r.present_voltage, r.present_current, status.soc, r.charged_wh, r.discharged_wh)
        )
        return res

    def _on_ac_charge_loop(self, req: m.ACChargeLoopReq, now: float) -> m.ACChargeLoopRes:
        self._check_notification_delay(now)
        status, dynamic = self._loop_status(now, req, Family.AC)
        ctx = self._ctx()
        r = self.controller.charge_loop(now, ctx, status)
        assert self.service is not None
        present = rn(r.target_power)
        targets = {"evse_target_active_power": present} if dynamic else {}
        cm = cl_mode("evse", Family.AC, self.service.bpt, dynamic, None, None, evse_present_active_power=present, **targets)
        note = self._loop_notification(now)
        res = m.ACChargeLoopRes(
            header=self._header(),
            response_code=RC.OK,
            evse_status=note,
            meter_info=self._meter(req, r, note),
            control_mode=cm,
        )
        self._events.append(
            PowerChanged(r.target_power, r.present_voltage, r.present_current, status.soc, r.charged_wh, r.discharged_wh)
        )
        return res

    def _on_welding_detection(self, req: Any, now: float) -> m.DCWeldingDetectionRes:
        v = self.controller.present_voltage(now)
        return m.DCWeldingDetectionRes(header=self._header(), response_code=RC.OK, evse_present_voltage=rn(v))

    def _on_session_stop(self, req: m.SessionStopReq, now: float) -> m.SessionStopRes:
        kind = req.charging_session.value
        if kind == "ServiceRenegotiation":
            if not self.config.service_renegotiation_supported:
                raise _Failed(RC.FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED, "service renegotiation is not supported")
            self.service = self.parameter_set = None
            self.schedule = None
            self._notification_sent = self._notified_at = None
        elif kind == "Pause":
            if self.service is None or self.parameter_set is None:
                raise _Failed(RC.FAILED_PAUSE_NOT_ALLOWED, "nothing to resume: no service selected")
            self.config.store.put(
                SessionRecord(
                    self.session_id,
                    self.evcc_id,
                    self.service,
                    self.parameter_set.set_id,
                    self.parameter_set.control_mode,
                    now,
                    extra={"peer_certificate": self.peer_certificate},
                )
            )
        return m.SessionStopRes(header=self._header(), response_code=RC.OK)


class _Failed(Exception):
    def __init__(self, code: Any, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _price_schedule(anchor: int) -> m.AbsolutePriceSchedule:
    return m.AbsolutePriceSchedule(
        time_anchor=anchor,
        price_schedule_id=1,
        currency="USD",
        language="ENG",
        price_algorithm="urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power",
        price_rule_stacks=m.PriceRuleStackList(
            price_rule_stack=[
                m.PriceRuleStack(
                    duration=0,
                    price_rule=[m.PriceRule(energy_fee=rn(Decimal("0.25")), power_range_start=rn(0))],
                )
            ]
        ),
    )


def _scheduled_res(offer: ScheduleOffer, service: EnergyService, now: float, epoch: float) -> m.ScheduledSEResControlMode:
    """One ScheduleTuple: a constant charging schedule, for BPT a discharging schedule with
    negative power (sign convention in controller.py), each with an AbsolutePriceSchedule
    (XSD-optional; Josev's EVCC requires one, DISAGREE #5)."""
    anchor = int(epoch)

    def sched(power: Decimal) -> m.ChargingSchedule:
        return m.ChargingSchedule(
            power_schedule=m.PowerSchedule(
                time_anchor=anchor,
                power_schedule_entries=m.PowerScheduleEntryList(
                    power_schedule_entry=[m.PowerScheduleEntry(duration=offer.duration, power=rn(power))]
                ),
            ),
            price_schedule=_price_schedule(anchor),
        )

    tup = m.ScheduleTuple(
        schedule_tuple_id=offer.tuple_id,
        charging_schedule=sched(offer.charge_power),
        discharging_schedule=sched(-offer.discharge_power) if service.bpt and offer.discharge_power else None,
    )
    return m.ScheduledSEResControlMode(schedule_tuple=[tup])


def _installation_placeholder(header: m.MessageHeader, code: Any) -> m.CertificateInstallationRes:
    """A schema-valid CertificateInstallationRes without a contract (refusals): the XSD makes
    CPSCertificateChain and SignedInstallationData mandatory, so they are filled with
    zero bytes of the right sizes and no signature; an EV reads the ResponseCode first."""
    return m.CertificateInstallationRes(
        header=header,
        response_code=code,
        evse_processing=m.Processing.FINISHED,
        cps_certificate_chain=m.CertificateChain(certificate=bytes(1)),
        signed_installation_data=m.SignedInstallationData(
            contract_certificate_chain=m.ContractCertificateChain(
                certificate=bytes(1), sub_certificates=m.SubCertificates(certificate=[bytes(1)])
            ),
            ecdh_curve=m.ECDHCurve.SECP521,
            dh_public_key=bytes(133),
            secp521_encrypted_private_key=bytes(94),
            id="SignedInstallationData",
        ),
        remaining_contract_certificate_chains=0,
    )


def minimal_response(request_name: str, header: m.MessageHeader, code: Any) -> Any:
    """The smallest schema-valid response of ``request_name``'s type carrying ``code``
    (used for FAILED_SequenceError / FAILED_UnknownSession / other FAILED answers)."""
    z = rn(0)
    c = dict(header=header, response_code=code)
    fin = m.Processing.FINISHED
    if request_name == "supportedAppProtocolReq":
        return m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
    builders: dict[str, Callable[[], Any]] = {
        "SessionSetupReq": lambda: m.SessionSetupRes(**c, evse_id="ZZ00000"),
        "AuthorizationSetupReq": lambda: m.AuthorizationSetupRes(
            **c,
            authorization_services=[m.Authorization.EIM],
            certificate_installation_service=False,
            authorization_mode=m.EIMASResAuthorizationMode(),
        ),
        "AuthorizationReq": lambda: m.AuthorizationRes(**c, evse_processing=fin),
        "CertificateInstallationReq": lambda: _installation_placeholder(header, code),
        "MeteringConfirmationReq": lambda: m.MeteringConfirmationRes(**c),
        "ServiceDiscoveryReq": lambda: m.ServiceDiscoveryRes(
            **c,
            service_renegotiation_supported=False,
            energy_transfer_service_list=m.ServiceList(service=[m.Service(service_id=1, free_service=False)]),
        ),
        "ServiceDetailReq": lambda: m.ServiceDetailRes(
            **c,
            service_id=1,
            service_parameter_list=m.ServiceParameterList(
                parameter_set=[m.ParameterSet(parameter_set_id=0, parameter=[int_parameter("Connector", 1)])]
            ),
        ),
        "ServiceSelectionReq": lambda: m.ServiceSelectionRes(**c),
        "AC_ChargeParameterDiscoveryReq": lambda: m.ACChargeParameterDiscoveryRes(
            **c,
            energy_transfer_mode=m.ACCPDResEnergyTransferMode(
                evse_maximum_charge_power=z, evse_minimum_charge_power=z, evse_nominal_frequency=z
            ),
        ),
        "DC_ChargeParameterDiscoveryReq": lambda: m.DCChargeParameterDiscoveryRes(
            **c,
            energy_transfer_mode=m.DCCPDResEnergyTransferMode(
                evse_maximum_charge_power=z,
                evse_minimum_charge_power=z,
                evse_maximum_charge_current=z,
                evse_minimum_charge_current=z,
                evse_maximum_voltage=z,
                evse_minimum_voltage=z,
            ),
        ),
        "ScheduleExchangeReq": lambda: m.ScheduleExchangeRes(
            **c, evse_processing=fin, control_mode=m.DynamicSEResControlMode()
        ),
        "DC_CableCheckReq": lambda: m.DCCableCheckRes(**c, evse_processing=fin),
        "DC_PreChargeReq": lambda: m.DCPreChargeRes(**c, evse_present_voltage=z),
        "PowerDeliveryReq": lambda: m.PowerDeliveryRes(**c),
        "AC_ChargeLoopReq": lambda: m.ACChargeLoopRes(**c, control_mode=m.ScheduledACCLResControlMode()),
        "DC_ChargeLoopReq": lambda: m.DCChargeLoopRes(
            **c,
            evse_present_current=z,
            evse_present_voltage=z,
            evse_power_limit_achieved=False,
            evse_current_limit_achieved=False,
            evse_voltage_limit_achieved=False,
            control_mode=m.ScheduledDCCLResControlMode(),
        ),
        "DC_WeldingDetectionReq": lambda: m.DCWeldingDetectionRes(**c, evse_present_voltage=z),
        "SessionStopReq": lambda: m.SessionStopRes(**c),
    }
    return builders[request_name]()


__all__ = ["SeccConfig", "SeccSession", "SessionStore", "minimal_response"]
