"""Sans-IO EVCC core: it decides the next request from the shared table and its controller.

    conn = EvccSession(controller, EvccConfig(service=EnergyService.DC_BPT), clock=time.time)
    events = conn.start(now)                        # [SendMessage(supportedAppProtocolReq)]
    events = conn.receive(payload_type, payload, now)
    events = conn.handle_timer(now)                 # message timeouts, loop timers, pacing

The EVCC sends a request only when :func:`iso15118.session.rules.accepts` allows it in the
current state; a response of the wrong type, a wrong SessionID, a FAILED* code or a timeout
gives a :class:`ProtocolError` followed by :class:`SessionEnded`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from iso15118 import messages as m
from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import NAMESPACE, SESSION_SCHEMAS
from iso15118.messages import MessageValidationError
from iso15118.security import pnc as sec
from iso15118.security.keydelivery import KeyDeliveryError
from iso15118.security.validation import CertificateChainError
from iso15118.security.xmldsig import SignatureError
from iso15118.session import rules
from iso15118.session.builders import cl_mode, cpd_mode
from iso15118.session.controller import (
    EVAction,
    EVController,
    EVSELimits,
    EVSELoopResult,
    LoopContext,
    ScheduleOffer,
)
from iso15118.session.events import (
    Event,
    LocalFault,
    MessageReceived,
    NotificationReceived,
    PowerChanged,
    ProtocolError,
    SendMessage,
    SessionEnded,
    StateChanged,
)
from iso15118.session.pnc import ContractCredentials, meter_info_mapping, to_tree, typed
from iso15118.session.rules import AuthorizationMode, Family, State, StopKind
from iso15118.session.services import (
    ControlMode,
    EnergyService,
    ParameterSetOffer,
    rn,
    to_decimal,
)
from iso15118.transport.v2gtp import schema_key_for

log = logging.getLogger(__name__)
D0 = Decimal(0)


@dataclass
class EvccConfig:
    """Behaviour switches of the EVCC core."""

    service: EnergyService | None = None
    """Use only this energy service (None: the controller's preference order)."""
    control_mode: ControlMode | None = None
    """Preferred ControlMode (None: ask the controller)."""
    max_loops: int | None = None
    """Stop (PowerDelivery Stop, SessionStop Terminate) after this many charge loops."""
    loop_interval: float = 0.25
    """Pause between a ChargeLoopRes and the next ChargeLoopReq."""
    ongoing_interval: float = 0.1
    """Pause before repeating a request answered with Ongoing."""
    resume_session_id: bytes | None = None
    """Resume a paused session (SessionSetupReq with the old SessionID)."""
    resume_via_cpd: bool = False
    """After OK_OldSessionJoined go straight to ChargeParameterDiscovery (libiso style)."""
    welding_detection: bool = True
    welding_max_requests: int = 10
    """WeldingDetection ends once the charger reports under 60 V, or after this many requests
    (a charger whose voltage never falls must not hold the vehicle forever)."""
    pre_charge_tolerance: Decimal = Decimal(20)
    pre_charge_give_up: int | None = None
    """Lab peers whose simulated EVSE never raises its voltage (Josev's SECC reports 1 V):
    after this many DC_PreChargeReq treat pre-charge as done.  None (default): never --
    a real EV must not close its contactors on a voltage mismatch."""
    timers: rules.Timers = rules.TIMERS
    termination_explanation: str | None = None
    timeout_scale: float = 1.0
    """Multiply every message timeout (V2G_EVCC_Msg_Timeout) and loop timer by this; 1.0 = the standard.
    Interop tests against a slow peer (a cold JVM codec) may relax it."""
    authorization: AuthorizationMode | None = None
    """``AuthorizationMode.PNC``, ``.EIM`` (or their strings ``"PnC"`` / ``"EIM"``) or None (auto: PnC when the SECC offers it over TLS and the EV has
    a contract -- or can install one --, else EIM)."""
    certificate_installation: bool = True
    """Without a contract but with OEM provisioning credentials: install one first when the
    SECC offers CertificateInstallationService."""
    pnc_fallback_eim: bool = False
    """When PnC fails (WARNING AuthorizationRes, installation failure) try EIM if offered
    instead of ending the session."""

    def __post_init__(self) -> None:
        if self.authorization is not None:
            self.authorization = AuthorizationMode(self.authorization)


class EvccSession:
    """One EVCC communication session."""

    def __init__(
        self,
        controller: EVController,
        config: EvccConfig | None = None,
        *,
        clock: Callable[[], float],
        tls: bool = False,
    ) -> None:
        self.controller = controller
        self.config = config or EvccConfig()
        self._clock = clock
        self.tls = tls
        """True when the transport is TLS: PnC is never used over plain TCP."""
        self.authorization: AuthorizationMode | None = None
        """``"EIM"`` / ``"PnC"`` once authorized."""
        self.authorized_at: float | None = None
        self.installed_contract: ContractCredentials | None = None
        self.metering_confirmations = 0
        self.certificate_installation_offered = False
        self._gen_challenge: bytes | None = None
        self._auth_request: Any = None
        self._installation_tried = False
        self._pnc_failed = False
        self._last_meter: Any = None
        self.state: State = State.CONNECTED
        self.family: Family | None = None
        self.session_id = bytes(8)
        self.resumed = False
        self.service: EnergyService | None = None
        self.parameter_set: ParameterSetOffer | None = None
        self.offered_services: list[int] = []
        self.auth_services: list[str] = []
        self.renegotiation_supported = False
        self.evse_limits: EVSELimits | None = None
        self.schedule: ScheduleOffer | None = None
        self.loops = 0
        self.rx = 0
        self.tx = 0
        self.ended = False
        self.ok = False
        self.end_reason = ""
        self.paused_session_id: bytes | None = None
        self._sap_ids: dict[int, Family] = {}
        self._pending: tuple[rules.MessageSpec, Any, float] | None = None
        self._pending_deadline: float | None = None
        self._send_at: float | None = None
        self._setup_deadline: float | None = None
        self._loop_name = ""
        self._loop_started = 0.0
        self._stop_kind = StopKind.TERMINATE
        self._stop_explanation: str | None = None
        self._notification: str | None = None
        self._pre_charge_matched = False
        self._pre_charge_finished_sent = False
        self._welding_done = False
        self._welding_count = 0
        self._standby = False
        self._evse_voltage = D0
        self._pre_charge_count = 0
        self.loops_before = 0
        self._handlers: dict[str, Callable[[Any, Any, float], list[Event]]] = {
            "supportedAppProtocolRes": self._on_supportedAppProtocolRes,
            "SessionSetupRes": self._on_SessionSetupRes,
            "AuthorizationSetupRes": self._on_AuthorizationSetupRes,
            "AuthorizationRes": self._on_AuthorizationRes,
            "CertificateInstallationRes": self._on_CertificateInstallationRes,
            "MeteringConfirmationRes": self._on_MeteringConfirmationRes,
            "ServiceDiscoveryRes": self._on_ServiceDiscoveryRes,
            "ServiceDetailRes": self._on_ServiceDetailRes,
            "AC_ChargeParameterDiscoveryRes": self._on_AC_ChargeParameterDiscoveryRes,
            "DC_ChargeParameterDiscoveryRes": self._on_DC_ChargeParameterDiscoveryRes,
            "ScheduleExchangeRes": self._on_ScheduleExchangeRes,
            "DC_PreChargeRes": self._on_DC_PreChargeRes,
            "PowerDeliveryRes": self._on_PowerDeliveryRes,
            "DC_ChargeLoopRes": self._on_DC_ChargeLoopRes,
            "AC_ChargeLoopRes": self._on_AC_ChargeLoopRes,
            "DC_WeldingDetectionRes": self._on_DC_WeldingDetectionRes,
        }
        """Response name -> handler (responses without one only move the state)."""

    # ------------------------------------------------------------------ public API

    def start(self, now: float) -> list[Event]:
        """Begin the session: returns the supportedAppProtocolReq to send."""
        return self._guarded(now, self._start, now)

    def handle_timer(self, now: float) -> list[Event]:
        """Message timeouts, loop timers and pacing, when ``now >= next_deadline()``."""
        return self._guarded(now, self._handle_timer, now)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        """Handle one received V2GTP frame."""
        return self._guarded(now, self._receive, payload_type, payload, now)

    def _guarded(self, now: float, fn: Callable[..., list[Event]], *args: Any) -> list[Event]:
        """Run ``fn``; the EVCC's own faults end the session as a :class:`LocalFault`, apart
        from the peer's protocol errors."""
        try:
            return fn(*args)
        except EvccFault as exc:
            detail = str(exc)
        except MessageValidationError as exc:  # a request built from the controller's values
            detail = f"invalid request: {exc}"
        return [LocalFault(detail), *self._end(now, f"EVCC fault: {detail}", False)]

    def _start(self, now: float) -> list[Event]:
        # A configured service the vehicle does not offer (e.g. AC_BPT on a vehicle without
        # bidirectional power transfer) ends the session here, before anything is sent.
        wanted = self.config.service
        offered = self.controller.preferred_services()
        if wanted is not None and wanted not in offered:
            names = ", ".join(EnergyService(s).name for s in offered)
            raise EvccFault(f"the vehicle does not offer {EnergyService(wanted).name} (it offers {names})")
        self._setup_deadline = now + self.config.timers.communication_setup
        return self._send(now, self._build_sap())

    def negotiated(self, family: Family, now: float, started: float | None = None) -> list[Event]:
        """Continue after a SupportedAppProtocol exchange done by
        :class:`iso15118.session.negotiation.EvccNegotiator` (-20 ``family`` agreed): returns the
        SessionSetupReq to send.  ``started``: when the communication setup began (its 20 s
        timer runs from there)."""
        return self._guarded(now, self._negotiated, family, now, now if started is None else started)

    def _negotiated(self, family: Family, now: float, started: float) -> list[Event]:
        if self.state is not State.CONNECTED:
            raise EvccFault(f"negotiated() in {self.state.value}")
        wanted = self.config.service
        if wanted is not None and EnergyService(wanted).family is not family:
            raise EvccFault(f"{EnergyService(wanted).name} cannot run in a -20 {family.value} session")
        self._setup_deadline = started + self.config.timers.communication_setup
        self.family = family
        self.state = State.APP_PROTOCOL
        return self._next(now)

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` has work to do."""
        if self.ended:
            return None
        times = [t for t in (self._pending_deadline, self._send_at, self._setup_deadline) if t is not None]
        return min(times) if times else None

    def _handle_timer(self, now: float) -> list[Event]:
        if self.ended:
            return []
        if self._setup_deadline is not None and now >= self._setup_deadline:
            return self._error(now, "Timeout", "V2G_EVCC_CommunicationSetup_Timeout: no SessionSetupRes in time")
        if self._pending is not None and self._pending_deadline is not None and now >= self._pending_deadline:
            spec = self._pending[0]
            limit = spec.evcc_timeout * self.config.timeout_scale
            return self._error(now, "Timeout", f"no {spec.response} within {limit:g} s")
        if self._send_at is not None and now >= self._send_at:
            self._send_at = None
            return self._next(now, timer=True)
        return []

    def connection_lost(self, now: float) -> list[Event]:
        if self.ended:
            return []
        return self._error(now, "ConnectionLost", f"connection closed in {self.state.value}")

    def request_stop(self, kind: StopKind | str = StopKind.TERMINATE) -> None:
        """Ask the EV to end the session at the next opportunity (Terminate or Pause)."""
        self._stop_kind = stop = StopKind(kind)
        self._notification = stop.value if stop in (StopKind.TERMINATE, StopKind.PAUSE) else None

    def _receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self.rx += 1
        key = schema_key_for(payload_type)
        res: Any  # a response of the session: which one, the pending request decides below
        try:
            if key not in SESSION_SCHEMAS:
                raise ValueError(f"payload type 0x{payload_type:04x}")
            res = m.decode(payload, key)
        except (ExiError, ValueError, KeyError) as exc:  # the codec's and the validator's errors, an unknown element
            return self._error(now, "DecodeError", str(exc))
        name = res.ELEMENT[1]
        events: list[Event] = [MessageReceived(payload_type, res, name)]
        if self._pending is None:
            return events + self._error(now, "UnexpectedResponse", f"{name} without a pending request")
        spec, req, _sent = self._pending
        if name != spec.response or payload_type != spec.payload_type:
            return events + self._error(now, "UnexpectedResponse", f"{name} (0x{payload_type:04x}) while waiting for {spec.response}")
        self._pending = self._pending_deadline = None
        if name != "supportedAppProtocolRes" and name != "SessionSetupRes" and res.header.session_id != self.session_id:
            return events + self._error(now, "UnknownSession", f"SessionID {res.header.session_id.hex()} != {self.session_id.hex()}")
        if rules.is_failure(res):
            code = res.response_code.value
            return events + self._error(now, code, f"{name}: {code}")
        try:
            new = rules.next_state(self.state, spec.request, rules.outcome(req, res), self.family)
        except KeyError as exc:
            return events + self._error(now, "UnexpectedResponse", str(exc))
        handler = self._handlers.get(name)
        try:
            if handler is not None:
                events += handler(res, req, now)
        except PeerError as exc:
            return events + self._error(now, exc.code, exc.detail)
        if new is not self.state:
            events.append(StateChanged(self.state, new, spec.request))
            self.state = new
        if new in (State.ENDED, State.PAUSED):
            return events + self._end(now, "SessionStop " + ("Pause" if new is State.PAUSED else "Terminate"), True)
        return events + self._next(now)

    # ------------------------------------------------------------------ plumbing

    def _header(self) -> m.MessageHeader:
        return m.MessageHeader(session_id=self.session_id, time_stamp=int(self._clock()))

    def _send(self, now: float, req: Any) -> list[Event]:
        name = req.ELEMENT[1]
        spec = rules.spec_for_request(name)
        assert spec is not None, name
        if not rules.accepts(self.state, name, self.family):  # our own bug: never put it on the wire
            raise EvccFault(f"EVCC would send {name} in {self.state.value}")
        limit_attr = rules.LOOP_TIMER.get(name)
        if name != self._loop_name:
            self._loop_name, self._loop_started = name, now
        elif limit_attr is not None:
            limit = getattr(self.config.timers, limit_attr) * self.config.timeout_scale
            if now - self._loop_started > limit:
                return self._error(now, "Timeout", f"{name} loop exceeded {limit:g} s")
        self._pending = (spec, req, now)
        self._pending_deadline = now + spec.evcc_timeout * self.config.timeout_scale
        self.tx += 1
        return [SendMessage(int(spec.payload_type), m.encode(req), req)]

    def _error(self, now: float, code: str, detail: str) -> list[Event]:
        return [ProtocolError(code, detail)] + self._end(now, f"{code}: {detail}", False)

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.ok, self.end_reason = True, ok, reason
        self._pending = self._pending_deadline = self._send_at = self._setup_deadline = None
        if self.state is State.PAUSED:
            self.paused_session_id = self.session_id
        try:
            self.controller.session_ended(now, reason, ok)
        except Exception:  # pragma: no cover
            log.exception("controller.session_ended failed")
        return [SessionEnded(reason, ok, paused_session_id=self.paused_session_id)]

    def _ctx(self) -> LoopContext:
        assert self.service is not None
        mode = self.parameter_set.control_mode if self.parameter_set else ControlMode.SCHEDULED
        return LoopContext(self.service, mode, self.schedule, self._standby)

    def _later(self, now: float, delay: float) -> list[Event]:
        self._send_at = now + delay
        return []

    # ------------------------------------------------------------------ what next

    def _next(self, now: float, timer: bool = False) -> list[Event]:
        """Send (or schedule) the request that follows the current state."""
        s = self.state
        S = State
        if s is S.APP_PROTOCOL:
            sid = self.config.resume_session_id or bytes(8)
            self.session_id = sid
            return self._send(now, m.SessionSetupReq(header=self._header(), evcc_id=self.controller.evcc_id))
        if s is S.SESSION_RESUMED and self.config.resume_via_cpd and self.service is not None:
            return self._send(now, self._build_cpd(now))
        if s in (S.SESSION_SETUP, S.SESSION_RESUMED):
            return self._send(now, m.AuthorizationSetupReq(header=self._header()))
        if s is S.AUTHORIZATION_SETUP:
            req, why = (None, self._stop_explanation) if self._stop_explanation is not None else self._choose_authorization()
            if req is None:
                return self._session_stop(now, StopKind.TERMINATE, why)
            return self._send(now, req)
        if s is S.AUTHORIZATION_ONGOING:
            if not timer:
                return self._later(now, self.config.ongoing_interval)
            # [V2G20-1582]: the same request again, only the TimeStamp changes (the PnC
            # signature covers PnC_AReqAuthorizationMode, not the Header)
            prev = self._auth_request or self._build_authorization()
            return self._send(now, dataclasses.replace(prev, header=dataclasses.replace(prev.header, time_stamp=int(self._clock()))))
        if s in (S.AUTHORIZED, S.SERVICE_RENEGOTIATION):
            return self._send(now, m.ServiceDiscoveryReq(header=self._header()))
        if s is S.SERVICE_DISCOVERY:
            if self.service is None:
                return self._session_stop(now, StopKind.TERMINATE, "no suitable energy service offered")
            return self._send(now, m.ServiceDetailReq(header=self._header(), service_id=int(self.service)))
        if s is S.SERVICE_DETAIL:
            assert self.service is not None and self.parameter_set is not None
            return self._send(
                now,
                m.ServiceSelectionReq(
                    header=self._header(),
                    selected_energy_transfer_service=m.SelectedService(
                        service_id=int(self.service), parameter_set_id=self.parameter_set.set_id
                    ),
                ),
            )
        if s is S.SERVICE_SELECTED:
            return self._send(now, self._build_cpd(now))
        if s in (S.CHARGE_PARAMETERS, S.RENEGOTIATING):
            return self._send(now, self._build_schedule_exchange(now))
        if s in (S.SCHEDULE_ONGOING, S.RESCHEDULE_ONGOING, S.CABLE_CHECK_ONGOING, S.POWER_DELIVERY_ONGOING):
            if not timer:
                return self._later(now, self.config.ongoing_interval)
            if s is S.CABLE_CHECK_ONGOING:
                return self._send(now, m.DCCableCheckReq(header=self._header()))
            if s is S.POWER_DELIVERY_ONGOING:
                return self._send(now, self._build_power_delivery(now, "Start"))
            return self._send(now, self._build_schedule_exchange(now))
        if s is S.SCHEDULED:
            if self._notification in ("Pause", "Terminate"):  # GoToPause in ScheduleExchangeRes
                kind, self._notification = StopKind(self._notification), None
                return self._session_stop(now, kind, None)
            if self.family is Family.DC:
                return self._send(now, m.DCCableCheckReq(header=self._header()))
            return self._send(now, self._build_power_delivery(now, "Start"))
        if s in (S.CABLE_CHECKED, S.PRE_CHARGE):
            if self._pre_charge_finished_sent:
                return self._send(now, self._build_power_delivery(now, "Start"))
            return self._send(now, self._build_pre_charge(now))
        if s is S.RESCHEDULED:
            return self._send(now, self._build_power_delivery(now, "Start"))
        if s in (S.CHARGING, S.STANDBY):
            return self._in_loop(now, timer)
        if s is S.STOPPED:
            if self.family is Family.DC and self.config.welding_detection and self._stop_kind is not StopKind.SERVICE_RENEGOTIATION:
                return self._send(now, m.DCWeldingDetectionReq(header=self._header(), ev_processing=m.Processing.ONGOING))
            return self._session_stop(now, self._stop_kind, self._stop_explanation)
        if s is S.WELDING_DETECTION:
            if self._welding_done:
                return self._session_stop(now, self._stop_kind, self._stop_explanation)
            return self._send(now, m.DCWeldingDetectionReq(header=self._header(), ev_processing=m.Processing.ONGOING))
        return self._error(now, "SequenceError", f"EVCC has no next request in {s.value}")

    @property
    def contract(self) -> ContractCredentials | None:
        """The contract this EV uses for PnC: one installed in this session, else the controller's."""
        return self.installed_contract or getattr(self.controller, "contract", None)

    def _contract(self) -> ContractCredentials | None:
        return self.contract

    def _choose_authorization(self) -> tuple[Any, str]:
        """The next AuthorizationReq or CertificateInstallationReq, or (None, why not)."""
        want = self.config.authorization
        pnc_offered = "PnC" in self.auth_services and self._gen_challenge is not None
        if want in (None, "PnC") and pnc_offered and self.tls and not self._pnc_failed:
            contract = self._contract()
            if contract is not None:
                return self._build_pnc_authorization(contract), ""
            prov = getattr(self.controller, "provisioning", None)
            if (
                prov is not None
                and self.certificate_installation_offered
                and self.config.certificate_installation
                and not self._installation_tried
            ):
                self._installation_tried = True
                return self._build_certificate_installation(prov), ""
            if want == "PnC" or self._installation_tried:
                self._pnc_failed = True  # PnC was the plan but no contract came of it
        if self._pnc_failed and not self.config.pnc_fallback_eim:
            return None, "PnC failed: no usable contract"
        if want == "PnC":
            return None, "PnC not offered over TLS" if not (pnc_offered and self.tls) else "PnC failed"
        if "EIM" in self.auth_services:
            return self._build_authorization(), ""
        return None, "EIM not offered"

    def _in_loop(self, now: float, timer: bool) -> list[Event]:
        """Charge loop: react to notifications and the controller, else the next loop request."""
        note, self._notification = self._notification, None
        ctx = self._ctx()
        if note == "MeteringConfirmation":
            contract = self._contract() if self.authorization is AuthorizationMode.PNC else None
            if contract is not None and self._last_meter is not None:
                return self._send(now, self._build_metering_confirmation(contract))
            log.info("MeteringConfirmation not answered: %s", "no MeterInfo" if contract else "no PnC contract")
            note = None
        if note in ("Terminate", "Pause") or (note == "ServiceRenegotiation" and not self.renegotiation_supported):
            self._stop_kind = StopKind.PAUSE if note == "Pause" else StopKind.TERMINATE
            return self._send(now, self._build_power_delivery(now, "Stop"))
        if note == "ServiceRenegotiation":
            self._stop_kind = StopKind.SERVICE_RENEGOTIATION
            return self._send(now, self._build_power_delivery(now, "Stop"))
        if note == "ScheduleRenegotiation" and self.state is State.CHARGING:
            return self._send(now, self._build_power_delivery(now, "ScheduleRenegotiation"))
        if note == "ExitStandby" and self.state is State.STANDBY:
            return self._send(now, self._build_power_delivery(now, "Start"))
        action = self.controller.next_action(now, ctx)
        if self.config.max_loops is not None and self.loops >= self.config.max_loops:
            action = EVAction.STOP
        if action in (EVAction.STOP, EVAction.PAUSE):
            self._stop_kind = StopKind.PAUSE if action is EVAction.PAUSE else StopKind.TERMINATE
            return self._send(now, self._build_power_delivery(now, "Stop"))
        if action is EVAction.STANDBY and self.state is State.CHARGING:
            return self._send(now, self._build_power_delivery(now, "Standby"))
        if action is EVAction.RESUME and self.state is State.STANDBY:
            return self._send(now, self._build_power_delivery(now, "Start"))
        if action is EVAction.RENEGOTIATE_SCHEDULE and self.state is State.CHARGING:
            return self._send(now, self._build_power_delivery(now, "ScheduleRenegotiation"))
        if not timer and self.config.loop_interval > 0:
            return self._later(now, self.config.loop_interval)
        return self._send(now, self._build_charge_loop(now))

    def _session_stop(self, now: float, kind: StopKind, explanation: str | None) -> list[Event]:
        req = m.SessionStopReq(
            header=self._header(),
            charging_session=kind,
            ev_termination_code="1" if explanation else None,
            ev_termination_explanation=explanation[:160] if explanation else None,
        )
        return self._send(now, req)

    # ------------------------------------------------------------------ builders

    def _build_sap(self) -> m.SupportedAppProtocolReq:
        services = [self.config.service] if self.config.service else self.controller.preferred_services()
        families: list[Family] = []
        for svc in services:
            fam = EnergyService(svc).family
            if fam is not None and fam not in families:
                families.append(fam)
        protos = []
        for i, fam in enumerate(families, start=1):
            self._sap_ids[i] = fam
            protos.append(
                m.AppProtocol(
                    protocol_namespace=NAMESPACE[fam], version_number_major=1, version_number_minor=0, schema_id=i, priority=i
                )
            )
        return m.SupportedAppProtocolReq(app_protocol=protos)

    def _build_authorization(self) -> m.AuthorizationReq:
        self._auth_request = req = m.AuthorizationReq(
            header=self._header(),
            selected_authorization_service=m.Authorization.EIM,
            authorization_mode=m.EIMAReqAuthorizationMode(),
        )
        return req

    def _build_pnc_authorization(self, contract: ContractCredentials) -> m.AuthorizationReq:
        """PnC_AReqAuthorizationMode (GenChallenge echoed, contract chain) signed with the
        contract key (:func:`iso15118.security.pnc.build_pnc_authorization_req`)."""
        assert self._gen_challenge is not None
        tree = sec.build_pnc_authorization_req(
            session_id=self.session_id,
            gen_challenge=self._gen_challenge,
            contract_chain=contract.chain,
            contract_key=contract.key,
            time_stamp=int(self._clock()),
        )
        self._auth_request = req = typed(tree)
        return req  # type: ignore[no-any-return]

    def _build_certificate_installation(self, prov: Any) -> m.CertificateInstallationReq:
        tree = sec.build_certificate_installation_req(
            session_id=self.session_id,
            oem_chain=prov.oem_chain,
            oem_key=prov.oem_key,
            root_certificates=prov.root_ids(),
            maximum_contract_certificate_chains=prov.maximum_contract_certificate_chains,
            time_stamp=int(self._clock()),
        )
        return typed(tree)  # type: ignore[no-any-return]

    def _build_metering_confirmation(self, contract: ContractCredentials) -> m.MeteringConfirmationReq:
        """SignedMeteringData over the MeterInfo of the last ChargeLoopRes, signed with the
        contract key (digest §7.2: signer UNVERIFIED, by analogy with -2 MeteringReceipt)."""
        scheduled = self.parameter_set is not None and self.parameter_set.control_mode is ControlMode.SCHEDULED
        tree = sec.build_metering_confirmation_req(
            session_id=self.session_id,
            meter_info=meter_info_mapping(self._last_meter),
            key=contract.key,
            selected_schedule_tuple_id=(self.schedule.tuple_id if self.schedule else 1) if scheduled else None,
            time_stamp=int(self._clock()),
        )
        return typed(tree)  # type: ignore[no-any-return]

    def _build_cpd(self, now: float) -> Any:
        assert self.service is not None and self.family is not None
        lim = self.controller.limits(now, self.service)
        if self.family is Family.AC:
            mode = cpd_mode("ev", Family.AC, self.service.bpt, lim)
            return m.ACChargeParameterDiscoveryReq(header=self._header(), energy_transfer_mode=mode)
        mode = cpd_mode("ev", Family.DC, self.service.bpt, lim, target_soc=lim.target_soc)
        return m.DCChargeParameterDiscoveryReq(header=self._header(), energy_transfer_mode=mode)

    def _build_schedule_exchange(self, now: float) -> m.ScheduleExchangeReq:
        assert self.service is not None and self.parameter_set is not None
        e = self.controller.energy_request(now)
        if self.parameter_set.control_mode is ControlMode.DYNAMIC:
            v2x = self.service.bpt and e.max_v2x_wh is not None and e.min_v2x_wh is not None
            cm: Any = m.DynamicSEReqControlMode(
                departure_time=e.departure_time,
                minimum_soc=e.min_soc,
                target_soc=e.target_soc,
                ev_target_energy_request=rn(e.target_wh),
                ev_maximum_energy_request=rn(e.max_wh),
                ev_minimum_energy_request=rn(e.min_wh),
                ev_maximum_v2x_energy_request=rn(e.max_v2x_wh) if v2x else None,  # type: ignore[arg-type]
                ev_minimum_v2x_energy_request=rn(e.min_v2x_wh) if v2x else None,  # type: ignore[arg-type]
            )
        else:
            cm = m.ScheduledSEReqControlMode(
                departure_time=e.departure_time,
                ev_target_energy_request=rn(e.target_wh),
                ev_maximum_energy_request=rn(e.max_wh),
                ev_minimum_energy_request=rn(e.min_wh),
            )
        return m.ScheduleExchangeReq(header=self._header(), maximum_supporting_points=1024, control_mode=cm)

    def _build_pre_charge(self, now: float) -> m.DCPreChargeReq:
        v = self.controller.present_voltage(now)
        finished = self._pre_charge_matched
        if finished:
            self._pre_charge_finished_sent = True
        return m.DCPreChargeReq(
            header=self._header(),
            ev_processing=m.Processing.FINISHED if finished else m.Processing.ONGOING,
            ev_present_voltage=rn(v),
            ev_target_voltage=rn(v),
        )

    def _build_power_delivery(self, now: float, progress: str) -> m.PowerDeliveryReq:
        assert self.service is not None and self.parameter_set is not None
        profile = None
        channel = None
        if progress in ("Start", "Standby"):
            dynamic = self.parameter_set.control_mode is ControlMode.DYNAMIC
            ctx = self._ctx()
            status = self.controller.loop_status(now, ctx)
            power = status.target_power if status.target_power is not None else status.limits.max_charge_power
            if progress == "Standby":
                power = D0
            if dynamic:
                pcm: Any = m.DynamicEVPPTControlMode()
            else:
                # PowerToleranceAcceptance is XSD-optional; Josev's model requires it.
                pcm = m.ScheduledEVPPTControlMode(
                    selected_schedule_tuple_id=self.schedule.tuple_id if self.schedule else 1,
                    power_tolerance_acceptance=m.PowerToleranceAcceptance.POWER_TOLERANCE_CONFIRMED,
                )
            profile = m.EVPowerProfile(
                time_anchor=int(self._clock()),
                control_mode=pcm,
                ev_power_profile_entries=m.EVPowerProfileEntryList(
                    ev_power_profile_entry=[m.PowerScheduleEntry(duration=3600, power=rn(power))]
                ),
            )
            if self.service.bpt:
                channel = m.ChannelSelection.DISCHARGE if power < 0 else m.ChannelSelection.CHARGE
        return m.PowerDeliveryReq(
            header=self._header(),
            ev_processing=m.Processing.FINISHED,
            charge_progress=m.ChargeProgress(progress),
            ev_power_profile=profile,
            bpt_channel_selection=channel,
        )

    def _build_charge_loop(self, now: float) -> Any:
        assert self.service is not None and self.parameter_set is not None
        ctx = self._ctx()
        st = self.controller.loop_status(now, ctx)
        lim, e = st.limits, st.energy
        dynamic = self.parameter_set.control_mode is ControlMode.DYNAMIC
        bpt = self.service.bpt
        # ChargingComplete is XSD-optional, but Josev's model requires it whenever
        # DisplayParameters is present.
        display = (
            m.DisplayParameters(present_soc=st.soc, charging_complete=st.soc >= 100)
            if st.soc is not None
            else None
        )
        v2x = bpt and e.max_v2x_wh is not None and e.min_v2x_wh is not None
        family = Family.DC if self.family is Family.DC else Family.AC
        values: dict[str, Any] = {}
        if dynamic:
            values = dict(
                departure_time=e.departure_time,
                ev_target_energy_request=rn(e.target_wh),
                ev_maximum_energy_request=rn(e.max_wh),
                ev_minimum_energy_request=rn(e.min_wh),
            )
            if bpt and v2x:
                assert e.max_v2x_wh is not None and e.min_v2x_wh is not None
                values.update(ev_maximum_v2x_energy_request=rn(e.max_v2x_wh), ev_minimum_v2x_energy_request=rn(e.min_v2x_wh))
        else:
            values["ev_target_energy_request"] = rn(e.target_wh)
        if family is Family.DC:
            if not dynamic:
                voltage = st.target_voltage or st.present_voltage or Decimal(1)
                power = st.target_power if st.target_power is not None else D0
                values.update(ev_target_current=rn((power / voltage).quantize(Decimal("0.1"))), ev_target_voltage=rn(voltage))
            cm = cl_mode("ev", family, bpt, dynamic, lim, None, **values)
            return m.DCChargeLoopReq(
                header=self._header(),
                display_parameters=display,
                meter_info_requested=True,
                ev_present_voltage=rn(st.present_voltage),
                control_mode=cm,
            )
        values["ev_present_active_power"] = rn(st.present_power)
        if dynamic:
            values["ev_present_reactive_power"] = rn(0)
        cm = cl_mode("ev", family, bpt, dynamic, lim, None, **values)
        return m.ACChargeLoopReq(
            header=self._header(), display_parameters=display, meter_info_requested=True, control_mode=cm
        )

    # ------------------------------------------------------------------ response handlers

    def _on_supportedAppProtocolRes(self, res: m.SupportedAppProtocolRes, req: Any, now: float) -> list[Event]:
        fam = self._sap_ids.get(res.schema_id) if res.schema_id is not None else None
        if fam is None:
            raise PeerError("UnexpectedResponse", f"SchemaID {res.schema_id} was not offered")
        self.family = fam
        return []

    def _on_SessionSetupRes(self, res: m.SessionSetupRes, req: Any, now: float) -> list[Event]:
        self._setup_deadline = None
        self.resumed = res.response_code is m.ResponseCode.OK_OLD_SESSION_JOINED
        if self.resumed and res.header.session_id != req.header.session_id:
            raise PeerError("UnknownSession", "OK_OldSessionJoined with a different SessionID")
        self.session_id = res.header.session_id
        return []

    def _on_AuthorizationSetupRes(self, res: m.AuthorizationSetupRes, req: Any, now: float) -> list[Event]:
        self.auth_services = [a.value for a in res.authorization_services]
        self.certificate_installation_offered = bool(res.certificate_installation_service)
        mode = res.authorization_mode
        self._gen_challenge = mode.gen_challenge if isinstance(mode, m.PnCASResAuthorizationMode) else None
        self._installation_tried = self._pnc_failed = False
        return []

    def _on_AuthorizationRes(self, res: m.AuthorizationRes, req: Any, now: float) -> list[Event]:
        code = res.response_code.value
        selected = req.selected_authorization_service.value
        if code.startswith("WARNING"):
            if selected == "PnC":
                self._pnc_failed = True
                log.info("PnC authorization refused: %s", code)
                if self.config.pnc_fallback_eim and "EIM" in self.auth_services:
                    return []
            self._stop_explanation = f"authorization refused: {code}"
        elif res.evse_processing is m.Processing.FINISHED:
            self.authorization, self.authorized_at = AuthorizationMode(selected), now
        return []

    def _on_CertificateInstallationRes(self, res: m.CertificateInstallationRes, req: Any, now: float) -> list[Event]:
        """Check the CPS signature and chain, decrypt the contract key with the OEM
        provisioning key and check it against the contract certificate; keep the contract."""
        prov = getattr(self.controller, "provisioning", None)
        code = res.response_code.value
        if prov is None or not code.startswith("OK") or res.evse_processing is not m.Processing.FINISHED:
            log.info("no contract installed: %s", code)
            return []
        try:
            installed = sec.process_certificate_installation_res(
                to_tree(res), oem_key=prov.oem_key, v2g_roots=prov.v2g_roots, mo_roots=prov.mo_roots
            )
        except (sec.PnCError, SignatureError, CertificateChainError, KeyDeliveryError) as exc:
            log.warning("contract installation failed: %s", exc)
            return [ProtocolError("CertificateInstallationFailed", str(exc))]
        contract = ContractCredentials(tuple(installed.chain), installed.private_key)
        self.installed_contract = contract
        hook = getattr(self.controller, "contract_installed", None)
        if hook is not None:
            hook(now, contract)
        log.info("contract installed: eMAID %s", installed.emaid)
        return []

    def _on_MeteringConfirmationRes(self, res: m.MeteringConfirmationRes, req: Any, now: float) -> list[Event]:
        self.metering_confirmations += 1
        return []

    def _on_ServiceDiscoveryRes(self, res: m.ServiceDiscoveryRes, req: Any, now: float) -> list[Event]:
        # a new (re)negotiation round: forget the previous round's progress
        self._pre_charge_matched = self._pre_charge_finished_sent = self._welding_done = False
        self._welding_count = 0
        self._pre_charge_count = 0
        self._stop_kind, self.schedule, self.loops_before = StopKind.TERMINATE, None, self.loops
        self.offered_services = [s.service_id for s in res.energy_transfer_service_list.service]
        self.renegotiation_supported = res.service_renegotiation_supported
        wanted = [self.config.service] if self.config.service else self.controller.preferred_services()
        self.service = next((EnergyService(s) for s in wanted if int(s) in self.offered_services), None)
        return []

    def _on_ServiceDetailRes(self, res: m.ServiceDetailRes, req: Any, now: float) -> list[Event]:
        sets = [ParameterSetOffer.from_message(p) for p in res.service_parameter_list.parameter_set]
        mode = self.config.control_mode or self.controller.preferred_control_mode()
        self.parameter_set = next((p for p in sets if p.control_mode is mode), sets[0] if sets else None)
        if self.parameter_set is None:
            raise PeerError("UnexpectedResponse", "ServiceDetailRes without parameter sets")
        return []

    def _on_AC_ChargeParameterDiscoveryRes(self, res: Any, req: Any, now: float) -> list[Event]:
        t = res.energy_transfer_mode
        self.evse_limits = EVSELimits(
            max_charge_power=to_decimal(t.evse_maximum_charge_power),
            min_charge_power=to_decimal(t.evse_minimum_charge_power),
            max_charge_current=D0,
            max_voltage=D0,
            max_discharge_power=to_decimal(getattr(t, "evse_maximum_discharge_power", None)),
            min_discharge_power=to_decimal(getattr(t, "evse_minimum_discharge_power", None)),
            nominal_frequency=to_decimal(t.evse_nominal_frequency),
        )
        return []

    def _on_DC_ChargeParameterDiscoveryRes(self, res: Any, req: Any, now: float) -> list[Event]:
        t = res.energy_transfer_mode
        self.evse_limits = EVSELimits(
            max_charge_power=to_decimal(t.evse_maximum_charge_power),
            min_charge_power=to_decimal(t.evse_minimum_charge_power),
            max_charge_current=to_decimal(t.evse_maximum_charge_current),
            min_charge_current=to_decimal(t.evse_minimum_charge_current),
            max_voltage=to_decimal(t.evse_maximum_voltage),
            min_voltage=to_decimal(t.evse_minimum_voltage),
            max_discharge_power=to_decimal(getattr(t, "evse_maximum_discharge_power", None)),
            min_discharge_power=to_decimal(getattr(t, "evse_minimum_discharge_power", None)),
            max_discharge_current=to_decimal(getattr(t, "evse_maximum_discharge_current", None)),
            min_discharge_current=to_decimal(getattr(t, "evse_minimum_discharge_current", None)),
        )
        return []

    def _on_ScheduleExchangeRes(self, res: m.ScheduleExchangeRes, req: Any, now: float) -> list[Event]:
        cm = res.control_mode
        if res.evse_processing is not m.Processing.FINISHED:
            return []
        assert self.parameter_set is not None
        if isinstance(cm, m.DynamicSEResControlMode) != (self.parameter_set.control_mode is ControlMode.DYNAMIC):
            raise PeerError("UnexpectedResponse", f"{type(cm).__name__} for a {self.parameter_set.control_mode.name} session")
        if isinstance(cm, m.ScheduledSEResControlMode):
            tup = cm.schedule_tuple[0]
            entries = tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
            dis = D0
            if tup.discharging_schedule is not None:
                dent = tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
                dis = abs(to_decimal(dent[0].power))
            self.schedule = ScheduleOffer(tup.schedule_tuple_id, to_decimal(entries[0].power), dis)
        else:
            self.schedule = None
        if res.go_to_pause:
            self._notification = "Pause"
        return []

    def _on_DC_PreChargeRes(self, res: m.DCPreChargeRes, req: Any, now: float) -> list[Event]:
        self._evse_voltage = to_decimal(res.evse_present_voltage)
        target = to_decimal(req.ev_target_voltage)
        self._pre_charge_count = getattr(self, "_pre_charge_count", 0) + 1
        if abs(self._evse_voltage - target) <= self.config.pre_charge_tolerance:
            self._pre_charge_matched = True
        elif self.config.pre_charge_give_up is not None and self._pre_charge_count >= self.config.pre_charge_give_up:
            self._pre_charge_matched = True
        return []

    def _note(self, status: Any) -> list[Event]:
        if status is None:
            return []
        kind = status.evse_notification.value
        self._notification = kind
        return [NotificationReceived(kind, status.notification_max_delay)]

    def _on_PowerDeliveryRes(self, res: m.PowerDeliveryRes, req: m.PowerDeliveryReq, now: float) -> list[Event]:
        progress = req.charge_progress.value
        if progress == "Start":
            self._standby = False
            self.controller.power_started(now, req.bpt_channel_selection is m.ChannelSelection.DISCHARGE)
        elif progress == "Stop":
            self.controller.power_stopped(now)
        elif progress == "Standby":
            self._standby = res.response_code is not m.ResponseCode.WARNING_STANDBY_NOT_ALLOWED
        return self._note(res.evse_status)

    def _loop_result(self, res: Any, power: Decimal, voltage: Decimal, current: Decimal) -> list[Event]:
        meter = res.meter_info
        if meter is not None:
            self._last_meter = meter
        charged = Decimal(meter.charged_energy_reading_wh) if meter else D0
        discharged = Decimal(meter.bpt_discharged_energy_reading_wh or 0) if meter else D0
        result = EVSELoopResult(power, voltage, current, charged_wh=charged, discharged_wh=discharged)
        self.loops += 1
        now = self._loop_now
        self.controller.apply(now, self._ctx(), result)
        soc = getattr(self.controller, "soc", None)
        return [PowerChanged(power, voltage, current, int(soc) if soc is not None else None, charged, discharged)]

    def _on_DC_ChargeLoopRes(self, res: m.DCChargeLoopRes, req: Any, now: float) -> list[Event]:
        self._loop_now = now
        v = to_decimal(res.evse_present_voltage)
        i = to_decimal(res.evse_present_current)
        return self._loop_result(res, (v * i).quantize(Decimal(1)), v, i) + self._note(res.evse_status)

    def _on_AC_ChargeLoopRes(self, res: m.ACChargeLoopRes, req: Any, now: float) -> list[Event]:
        self._loop_now = now
        cm = res.control_mode
        target = getattr(cm, "evse_target_active_power", None)
        if target is None:
            target = getattr(cm, "evse_present_active_power", None)
        if target is not None:
            p = to_decimal(target)
        else:  # scheduled without EVSE values: the EV follows its own plan
            p = to_decimal(req.control_mode.ev_present_active_power)
        nominal = Decimal(self.parameter_set.nominal_voltage or 230) if self.parameter_set else Decimal(230)
        return self._loop_result(res, p, nominal, (p / nominal).quantize(Decimal("0.1"))) + self._note(res.evse_status)

    def _on_DC_WeldingDetectionRes(self, res: m.DCWeldingDetectionRes, req: Any, now: float) -> list[Event]:
        self._welding_count += 1
        if to_decimal(res.evse_present_voltage) < 60 or self._welding_count >= self.config.welding_max_requests:
            self._welding_done = True
        return []


class EvccFault(Exception):
    """The EVCC's own fault (a request its state forbids): ends the session as a
    :class:`LocalFault`, never reported as the peer's :class:`ProtocolError`."""


class PeerError(Exception):
    """The SECC's answer breaks the protocol (``code``: a short label, as in :class:`ProtocolError`)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


__all__ = ["EvccConfig", "EvccFault", "EvccSession", "PeerError"]
