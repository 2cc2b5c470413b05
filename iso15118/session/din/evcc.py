"""Sans-IO DIN SPEC 70121 EVCC core (DC, EIM), started by the negotiation when the SECC chose DIN.

    core = DinEvccSession(ev_controller, DinEvccConfig(max_loops=10), clock=time.time)
    events = core.begin(now, started)              # [SendMessage(SessionSetupReq)]
    events = core.receive(0x8001, payload, now)
    events = core.handle_timer(now)                # message timeouts, loop timers, pacing

It drives the same :class:`~iso15118.session.controller.EVController` as the -20 core (the plain
DC service, scheduled mode: the EV follows the charger's PMaxSchedule).  It sends a request only
when :func:`iso15118.session.din.rules.accepts` allows it; a response of the wrong type, a wrong
SessionID, a FAILED code or a timeout gives a :class:`ProtocolError` and ends the session.

Decisions (DIN/-2 digest DISAGREE items, see ``session/README.md``): the EV ends the charge loop
when the charger sends EVSEStatusCode other than EVSE_Ready *or* EVSENotification=StopCharging
(Josev's EV looks at the first only); a finished CableCheck passes with isolation Valid or Warning
(IEC 61851-23 allows charging on a warning; Josev's EV only takes Valid).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from iso15118.exi.errors import ExiError
from iso15118.facts.payload import PayloadType
from iso15118.messages import MessageValidationError, din
from iso15118.session.controller import EVAction, EVController, EVSELoopResult, LoopContext, ScheduleOffer
from iso15118.session.din import rules
from iso15118.session.din.rules import State
from iso15118.session.din.values import decode_din, evcc_id_bytes, pv, to_decimal
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
from iso15118.session.services import ControlMode, EnergyService

log = logging.getLogger(__name__)

__all__ = ["DinEvccConfig", "DinEvccSession"]

U = din.UnitSymbol
D0 = Decimal(0)
_DC_SUPPLY = {
    din.EVSESupportedEnergyTransfer.DC_CORE: din.EVRequestedEnergyTransfer.DC_CORE,
    din.EVSESupportedEnergyTransfer.DC_EXTENDED: din.EVRequestedEnergyTransfer.DC_EXTENDED,
    din.EVSESupportedEnergyTransfer.AC_CORE1P_DC_EXTENDED: din.EVRequestedEnergyTransfer.DC_EXTENDED,
    din.EVSESupportedEnergyTransfer.AC_SINGLE_PHASE_THREE_PHASE_CORE_DC_EXTENDED: din.EVRequestedEnergyTransfer.DC_EXTENDED,
    din.EVSESupportedEnergyTransfer.AC_CORE3P_DC_EXTENDED: din.EVRequestedEnergyTransfer.DC_EXTENDED,
    din.EVSESupportedEnergyTransfer.AC_SINGLE_DC_CORE: din.EVRequestedEnergyTransfer.DC_CORE,
}
"""The charger's EnergyTransferType -> the DC type the EV asks for ([V2G-DC-625]: DC_core or
DC_extended only)."""


@dataclass
class DinEvccConfig:
    """Behaviour switches of the DIN EVCC core."""

    max_loops: int | None = None
    """Stop (PowerDelivery false, SessionStop) after this many CurrentDemand exchanges."""
    loop_interval: float = 0.25
    """Pause between a CurrentDemandRes and the next CurrentDemandReq."""
    ongoing_interval: float = 0.1
    """Pause before repeating a request answered with Ongoing (and between PreCharge requests)."""
    welding_detection: bool = True
    welding_voltage: Decimal = Decimal(60)
    """WeldingDetection is done once the charger reports at most this voltage ..."""
    welding_max_requests: int = 10
    """... or after this many requests (the EV's own check then decides; ours has none)."""
    pre_charge_tolerance: Decimal = Decimal(20)
    pre_charge_current: Decimal = Decimal(2)
    """EVTargetCurrent during pre-charge (IEC 61851-23 CC.5.2: at most 2 A)."""
    pre_charge_give_up: int | None = None
    """Lab peers whose simulated EVSE never reaches the voltage: accept after N requests (never by default)."""
    timers: rules.Timers = rules.TIMERS
    timeout_scale: float = 1.0
    """Multiply every message timeout and loop timer by this (slow lab peers); 1.0 = the standard."""


class EvccFault(Exception):
    """The core's own fault: it would send what the rules forbid."""


class PeerError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


_EVSE_STOPPING = (din.DCEVSEStatusCode.EVSE_SHUTDOWN, din.DCEVSEStatusCode.EVSE_EMERGENCY_SHUTDOWN,
                  din.DCEVSEStatusCode.EVSE_MALFUNCTION, din.DCEVSEStatusCode.EVSE_UTILITY_INTERRUPT_EVENT)
"""DC_EVSEStatusCode values that end a session whenever they come."""

_BEFORE_POWER = (State.SESSION_SETUP, State.SERVICE_DISCOVERY, State.PAYMENT_SELECTED, State.AUTHORIZATION_ONGOING,
                 State.AUTHORIZED, State.CHARGE_PARAMETERS_ONGOING, State.CHARGE_PARAMETERS, State.CABLE_CHECK_ONGOING,
                 State.CABLE_CHECKED)
"""States from which a stop is a plain SessionStopReq (no power was delivered)."""


class DinEvccSession:
    """One DIN communication session, EV side."""

    def __init__(self, controller: EVController, config: DinEvccConfig | None = None, *,
                 clock: Callable[[], float], tls: bool = False) -> None:
        self.controller = controller
        self.config = config or DinEvccConfig()
        self._clock = clock
        self.tls = tls
        self.state = State.APP_PROTOCOL
        self.session_id = bytes(8)
        self.service = EnergyService.DC
        self.authorization: str | None = None
        self.authorized_at: float | None = None
        self.paused_session_id: bytes | None = None
        self.loops = 0
        self.rx = 0
        self.tx = 0
        self.padded_frames = 0
        """Frames that carried zero bytes after the end of their EXI document (real vehicles do)."""
        self.ended = False
        self.ok = False
        self.end_reason = ""
        self.evse_id = b""
        self.service_id = 1
        self.transfer = din.EVRequestedEnergyTransfer.DC_EXTENDED
        self.schedule = ScheduleOffer(1, D0, D0)
        self.evse_max_current: Decimal | None = None
        self.evse_max_power: Decimal | None = None
        self.evse_voltage = D0
        self.evse_stop = False
        self._pending: tuple[rules.MessageSpec, Any, float] | None = None
        self._pending_deadline: float | None = None
        self._send_at: float | None = None
        self._setup_deadline: float | None = None
        self._loop_name = ""
        self._loop_started = 0.0
        self._pre_charge_count = 0
        self._pre_charged = False
        self._welding_count = 0
        self._welding_done = False
        self._stop_requested = False
        self._soc: int = 0

    # ------------------------------------------------------------------ public API

    def begin(self, now: float, started: float | None = None) -> list[Event]:
        """Start after supportedAppProtocolRes chose DIN: returns the SessionSetupReq to send."""
        self._setup_deadline = (now if started is None else started) + self.config.timers.communication_setup
        return self._guarded(now, self._send, now, din.SessionSetupReq(evcc_id=evcc_id_bytes(self.controller.evcc_id)))

    def next_deadline(self) -> float | None:
        if self.ended:
            return None
        times = [t for t in (self._pending_deadline, self._send_at, self._setup_deadline) if t is not None]
        return min(times) if times else None

    def request_stop(self, kind: Any = "Terminate") -> None:
        """End the session at the next opportunity (DIN knows no pause: always a stop)."""
        self._stop_requested = True

    def handle_timer(self, now: float) -> list[Event]:
        return self._guarded(now, self._handle_timer, now)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        return self._guarded(now, self._receive, payload_type, payload, now)

    def connection_lost(self, now: float) -> list[Event]:
        if self.ended:
            return []
        return self._error(now, "ConnectionLost", f"connection closed in {self.state.value}")

    # ------------------------------------------------------------------ plumbing

    def _guarded(self, now: float, fn: Callable[..., list[Event]], *args: Any) -> list[Event]:
        try:
            return fn(*args)
        except EvccFault as exc:
            detail = str(exc)
        except MessageValidationError as exc:  # a request built from the controller's values
            detail = f"invalid request: {exc}"
        return [LocalFault(detail), *self._end(now, f"EVCC fault: {detail}", False)]

    def _handle_timer(self, now: float) -> list[Event]:
        if self.ended:
            return []
        if self._setup_deadline is not None and now >= self._setup_deadline:
            return self._error(now, "Timeout", "V2G_EVCC_CommunicationSetup_Timeout: no SessionSetupRes in time")
        if self._pending is not None and self._pending_deadline is not None and now >= self._pending_deadline:
            spec = self._pending[0]
            return self._error(now, "Timeout", f"no {spec.response} within {spec.evcc_timeout * self.config.timeout_scale:g} s")
        if self._send_at is not None and now >= self._send_at:
            self._send_at = None
            return self._next(now, timer=True)
        return []

    def _receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self.rx += 1
        if payload_type != PayloadType.EXI_ENCODED:
            return self._error(now, "UnexpectedResponse", f"payload type 0x{payload_type:04x} in a DIN session")
        try:
            doc, padding = decode_din(payload)
        except (ExiError, ValueError, KeyError) as exc:
            return self._error(now, "DecodeError", str(exc))
        if padding:
            self.padded_frames += 1
            log.info("DIN frame with %d zero byte(s) after the end of its EXI document: ignored", padding)
        res: Any = doc.body.body_element  # which response, the pending request decides below
        if res is None:
            return self._error(now, "DecodeError", "V2G_Message without a body element")
        name = rules.element_name(res)
        events: list[Event] = [MessageReceived(payload_type, res, name)]
        if self._pending is None:
            return events + self._error(now, "UnexpectedResponse", f"{name} without a pending request")
        spec, req, _sent = self._pending
        if name != spec.response:
            return events + self._error(now, "UnexpectedResponse", f"{name} while waiting for {spec.response}")
        self._pending = self._pending_deadline = None
        if name != "SessionSetupRes" and doc.header.session_id != self.session_id:
            return events + self._error(now, "UnknownSession",
                                        f"SessionID {doc.header.session_id.hex()} != {self.session_id.hex()}")
        if rules.is_failure(res):
            code = res.response_code.value
            return events + self._error(now, code, f"{name}: {code}")
        try:
            new = rules.next_state(self.state, spec.request, rules.outcome(req, res))
        except KeyError as exc:
            return events + self._error(now, "UnexpectedResponse", str(exc))
        try:
            events += self._on_response(name, res, req, doc, now)
        except PeerError as exc:
            return events + self._error(now, exc.code, exc.detail)
        if new is not self.state:
            events.append(StateChanged(self.state, new, spec.request))
            self.state = new
        if new is State.ENDED:
            return events + self._end(now, "SessionStop", True)
        return events + self._next(now)

    def _send(self, now: float, body: Any) -> list[Event]:
        name = rules.element_name(body)
        spec = rules.spec_for_request(name)
        if spec is None or not rules.accepts(self.state, name):  # our own bug: never put it on the wire
            raise EvccFault(f"EVCC would send {name} in {self.state.value}")
        if name != self._loop_name:
            self._loop_name, self._loop_started = name, now
        else:
            loop = rules.loop_timer(name)
            if loop is not None and now - self._loop_started > loop[0] * self.config.timeout_scale:
                return self._error(now, "Timeout", f"{name} loop exceeded {loop[1]} ({loop[0] * self.config.timeout_scale:g} s)")
        self._pending = (spec, body, now)
        self._pending_deadline = now + spec.evcc_timeout * self.config.timeout_scale
        self.tx += 1
        return [SendMessage(int(PayloadType.EXI_ENCODED), din.encode(din.message(self.session_id, body)), body)]

    def _later(self, now: float, delay: float) -> list[Event]:
        self._send_at = now + delay
        return []

    def _error(self, now: float, code: str, detail: str) -> list[Event]:
        return [ProtocolError(code, detail), *self._end(now, f"{code}: {detail}", False)]

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.ok, self.end_reason = True, ok, reason
        self._pending = self._pending_deadline = self._send_at = self._setup_deadline = None
        try:
            self.controller.session_ended(now, reason, ok)
        except Exception:  # pragma: no cover
            log.exception("controller.session_ended failed")
        return [SessionEnded(reason, ok)]

    def _ctx(self) -> LoopContext:
        return LoopContext(self.service, ControlMode.SCHEDULED, self.schedule, False)

    def _ev_status(self, now: float) -> din.DCEVStatus:
        soc = self.controller.loop_status(now, self._ctx()).soc
        self._soc = max(0, min(100, int(soc if soc is not None else self._soc)))
        return din.DCEVStatus(ev_ready=True, ev_error_code=din.DCEVErrorCode.NO_ERROR, evresssoc=self._soc)

    # ------------------------------------------------------------------ what next

    def _next(self, now: float, timer: bool = False) -> list[Event]:
        s, S = self.state, State
        if (self._stop_requested or self.evse_stop) and s in _BEFORE_POWER:
            return self._send(now, din.SessionStopReq())
        if s is S.SESSION_SETUP:
            return self._send(now, din.ServiceDiscoveryReq(service_category=din.ServiceCategory.EV_CHARGING))
        if s is S.SERVICE_DISCOVERY:
            return self._send(now, din.ServicePaymentSelectionReq(
                selected_payment_option=din.PaymentOption.EXTERNAL_PAYMENT,
                selected_service_list=din.SelectedServiceList(selected_service=[din.SelectedService(service_id=self.service_id)]),
            ))
        if s in (S.PAYMENT_SELECTED, S.AUTHORIZATION_ONGOING):
            if s is S.AUTHORIZATION_ONGOING and not timer:
                return self._later(now, self.config.ongoing_interval)
            return self._send(now, din.ContractAuthenticationReq())
        if s in (S.AUTHORIZED, S.CHARGE_PARAMETERS_ONGOING):
            if s is S.CHARGE_PARAMETERS_ONGOING and not timer:
                return self._later(now, self.config.ongoing_interval)
            return self._send(now, self._build_cpd(now))
        if s in (S.CHARGE_PARAMETERS, S.CABLE_CHECK_ONGOING):
            if s is S.CABLE_CHECK_ONGOING and not timer:
                return self._later(now, self.config.ongoing_interval)
            return self._send(now, din.CableCheckReq(dc_ev_status=self._ev_status(now)))
        if s in (S.CABLE_CHECKED, S.PRE_CHARGE):
            if self.evse_stop:  # the charger is shutting down before power: leave without it
                return self._send(now, self._power_delivery(now, ready=False))
            if self._pre_charged:
                return self._send(now, self._power_delivery(now, ready=True))
            if s is S.PRE_CHARGE and not timer:
                return self._later(now, self.config.ongoing_interval)
            target_v = self.controller.present_voltage(now)
            current = min(self.config.pre_charge_current, self.evse_max_current or self.config.pre_charge_current)
            self._pre_charge_count += 1
            return self._send(now, din.PreChargeReq(dc_ev_status=self._ev_status(now), ev_target_voltage=pv(target_v, U.V),
                                                    ev_target_current=pv(current, U.A)))
        if s is S.POWER_ON:
            return self._send(now, self._build_current_demand(now))
        if s is S.CHARGING:
            if self._should_stop(now):
                return self._send(now, self._power_delivery(now, ready=False))
            if not timer:
                return self._later(now, self.config.loop_interval)
            return self._send(now, self._build_current_demand(now))
        if s in (S.STOPPED, S.WELDING_DETECTION):
            if self.config.welding_detection and not self._welding_done:
                if s is S.WELDING_DETECTION and not timer:
                    return self._later(now, self.config.ongoing_interval)
                self._welding_count += 1
                return self._send(now, din.WeldingDetectionReq(dc_ev_status=self._ev_status(now)))
            return self._send(now, din.SessionStopReq())
        raise EvccFault(f"no next request in {s.value}")

    def _should_stop(self, now: float) -> bool:
        if self._stop_requested or self.evse_stop:
            return True
        if self.config.max_loops is not None and self.loops >= self.config.max_loops:
            return True
        return self.controller.next_action(now, self._ctx()) in (EVAction.STOP, EVAction.PAUSE)

    # ------------------------------------------------------------------ builders

    def _build_cpd(self, now: float) -> din.ChargeParameterDiscoveryReq:
        lim = self.controller.limits(now, self.service)
        energy = self.controller.energy_request(now)
        return din.ChargeParameterDiscoveryReq(
            ev_requested_energy_transfer_type=self.transfer,
            ev_charge_parameter=din.DCEVChargeParameter(
                dc_ev_status=self._ev_status(now),
                ev_maximum_current_limit=pv(lim.max_charge_current, U.A),
                ev_maximum_power_limit=pv(lim.max_charge_power, U.W),
                ev_maximum_voltage_limit=pv(lim.max_voltage, U.V),
                ev_energy_request=pv(max(energy.target_wh, D0), U.WH),
                full_soc=100,
                bulk_soc=min(100, lim.target_soc or 80),
            ),
        )

    def _power_delivery(self, now: float, ready: bool) -> din.PowerDeliveryReq:
        return din.PowerDeliveryReq(
            ready_to_charge_state=ready,
            ev_power_delivery_parameter=din.DCEVPowerDeliveryParameter(
                dc_ev_status=self._ev_status(now), bulk_charging_complete=False, charging_complete=not ready),
        )

    def _build_current_demand(self, now: float) -> din.CurrentDemandReq:
        st = self.controller.loop_status(now, self._ctx())
        lim = st.limits
        voltage = st.target_voltage or st.present_voltage
        power = max(st.target_power or D0, D0)
        current = power / voltage if voltage > 0 else D0
        for cap in (lim.max_charge_current, self.evse_max_current):
            if cap is not None:
                current = min(current, cap)
        soc = st.soc if st.soc is not None else self._soc
        self._soc = max(0, min(100, int(soc)))
        complete = lim.target_soc is not None and self._soc >= lim.target_soc
        return din.CurrentDemandReq(
            dc_ev_status=din.DCEVStatus(ev_ready=True, ev_error_code=din.DCEVErrorCode.NO_ERROR, evresssoc=self._soc),
            ev_target_current=pv(current.quantize(Decimal("0.1")), U.A),
            ev_maximum_voltage_limit=pv(lim.max_voltage, U.V),
            ev_maximum_current_limit=pv(lim.max_charge_current, U.A),
            ev_maximum_power_limit=pv(lim.max_charge_power, U.W),
            bulk_charging_complete=complete,
            charging_complete=complete,
            ev_target_voltage=pv(Decimal(voltage).quantize(Decimal("0.1")), U.V),
        )

    # ------------------------------------------------------------------ response handlers

    def _evse_status(self, status: din.DCEVSEStatus, now: float) -> list[Event]:
        """Does the charger want the session to end?  StopCharging, or a shutdown / fault status
        code, at any time; in the charge loop any status but EVSE_Ready (Josev's EV rule; before
        power, NotReady and IsolationMonitoringActive are ordinary)."""
        code = status.evse_status_code
        in_loop = self.state in (State.POWER_ON, State.CHARGING)
        stop = (status.evse_notification is din.EVSENotification.STOP_CHARGING or code in _EVSE_STOPPING
                or (in_loop and code is not din.DCEVSEStatusCode.EVSE_READY))
        if stop and not self.evse_stop:
            self.evse_stop = True
            return [NotificationReceived(status.evse_notification.value if status.evse_notification is not
                                         din.EVSENotification.NONE else status.evse_status_code.value,
                                         status.notification_max_delay)]
        return []

    def _on_response(self, name: str, res: Any, req: Any, doc: Any, now: float) -> list[Event]:
        if isinstance(res, din.SessionSetupRes):
            self._setup_deadline = None
            if res.response_code is not din.ResponseCode.OK_NEW_SESSION_ESTABLISHED:
                raise PeerError("UnexpectedResponse", f"SessionSetupRes {res.response_code.value}: DIN has no old sessions")
            self.session_id = doc.header.session_id
            self.evse_id = res.evse_id
        elif isinstance(res, din.ServiceDiscoveryRes):
            if din.PaymentOption.EXTERNAL_PAYMENT not in res.payment_options.payment_option:
                raise PeerError("NoPaymentOption", "the SECC does not offer ExternalPayment (DIN is EIM only)")
            transfer = _DC_SUPPLY.get(res.charge_service.energy_transfer_type)
            if transfer is None:
                raise PeerError("NoChargeService", f"the charge service is {res.charge_service.energy_transfer_type.value}, not DC")
            self.transfer = transfer
            self.service_id = res.charge_service.service_tag.service_id
        elif isinstance(res, din.ContractAuthenticationRes):
            if res.evse_processing is din.EVSEProcessing.FINISHED:
                self.authorization, self.authorized_at = "EIM", now
        elif isinstance(res, din.ChargeParameterDiscoveryRes):
            param = res.evse_charge_parameter
            if not isinstance(param, din.DCEVSEChargeParameter):
                raise PeerError("UnexpectedResponse", f"{type(param).__name__} in a DC session")
            events = self._evse_status(param.dc_evse_status, now)
            if res.evse_processing is din.EVSEProcessing.FINISHED:
                self.evse_max_current = to_decimal(param.evse_maximum_current_limit)
                self.evse_max_power = (to_decimal(param.evse_maximum_power_limit) if param.evse_maximum_power_limit
                                       else to_decimal(param.evse_maximum_voltage_limit) * self.evse_max_current)
                tuples = res.sa_schedules.sa_schedule_tuple if isinstance(res.sa_schedules, din.SAScheduleList) else []
                tuple_id = tuples[0].sa_schedule_tuple_id if tuples else 1
                self.schedule = ScheduleOffer(tuple_id, self.evse_max_power, D0)
            return events
        elif isinstance(res, din.CableCheckRes):
            events = self._evse_status(res.dc_evse_status, now)
            if res.evse_processing is din.EVSEProcessing.FINISHED and not self.evse_stop:
                st = res.dc_evse_status
                if st.evse_status_code is not din.DCEVSEStatusCode.EVSE_READY or st.evse_isolation_status not in (
                        din.IsolationLevel.VALID, din.IsolationLevel.WARNING):
                    iso = st.evse_isolation_status.value if st.evse_isolation_status else "none"
                    raise PeerError("CableCheckFailed", f"{st.evse_status_code.value}, isolation {iso}")
            return events
        elif isinstance(res, din.PreChargeRes):
            self.evse_voltage = to_decimal(res.evse_present_voltage)
            target = self.controller.present_voltage(now)
            give_up = self.config.pre_charge_give_up
            self._pre_charged = abs(self.evse_voltage - target) <= self.config.pre_charge_tolerance or (
                give_up is not None and self._pre_charge_count >= give_up)
            return self._evse_status(res.dc_evse_status, now)
        elif isinstance(res, din.PowerDeliveryRes):
            if req.ready_to_charge_state:
                self.controller.power_started(now, False)
            else:
                self.controller.power_stopped(now)
            return self._evse_status(res.evse_status, now) if isinstance(res.evse_status, din.DCEVSEStatus) else []
        elif isinstance(res, din.CurrentDemandRes):
            v, i = to_decimal(res.evse_present_voltage), to_decimal(res.evse_present_current)
            result = EVSELoopResult(target_power=v * i, present_voltage=v, present_current=i,
                                    power_limit_achieved=res.evse_power_limit_achieved,
                                    current_limit_achieved=res.evse_current_limit_achieved,
                                    voltage_limit_achieved=res.evse_voltage_limit_achieved)
            self.controller.apply(now, self._ctx(), result)
            self.loops += 1
            return [PowerChanged(v * i, v, i, self._soc), *self._evse_status(res.dc_evse_status, now)]
        elif isinstance(res, din.WeldingDetectionRes):
            self.evse_voltage = to_decimal(res.evse_present_voltage)
            if self.evse_voltage <= self.config.welding_voltage or self._welding_count >= self.config.welding_max_requests:
                self._welding_done = True
        return []
