"""Sans-IO DIN SPEC 70121 SECC core (DC, EIM), built by the negotiation after SupportedAppProtocol.

    core = DinSeccSession(evse_controller, DinSeccConfig(), now=now, clock=time.time)
    events = core.receive(0x8001, payload, now)     # -> [MessageReceived, SendMessage, ...]
    events = core.handle_timer(now)                 # the 60 s V2G_SECC_Sequence_Timeout

It drives the same :class:`~iso15118.session.controller.EVSEController` as the -20 core, with
the plain DC energy service in scheduled mode (one PMaxSchedule).  Which request may come next is
decided by :mod:`iso15118.session.din.rules` only: an out-of-sequence request is answered with its
response type and FAILED_SequenceError, a wrong SessionID with FAILED_UnknownSession; every FAILED
response ends the session.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from iso15118.exi.errors import ExiError
from iso15118.facts.payload import PayloadType
from iso15118.messages import MessageValidationError, din
from iso15118.session.controller import (
    AuthorizationDecision,
    EnergyRequest,
    EVLimits,
    EVLoopStatus,
    EVSEController,
    LoopContext,
    ScheduleOffer,
)
from iso15118.session.din import rules
from iso15118.session.din.rules import State
from iso15118.session.din.values import decode_din, evse_id_bytes, pv, to_decimal
from iso15118.session.events import Event, MessageReceived, PowerChanged, ProtocolError, SendMessage, SessionEnded, StateChanged
from iso15118.session.services import ControlMode, EnergyService

log = logging.getLogger(__name__)

__all__ = ["DinSeccConfig", "DinSeccSession", "minimal_response"]

RC = din.ResponseCode
U = din.UnitSymbol
D0 = Decimal(0)
CHARGE_SERVICE_ID = 1
"""The ServiceID of DIN's one charge service (Josev and EVerest use 1)."""
DC_TYPES = (din.EVRequestedEnergyTransfer.DC_CORE, din.EVRequestedEnergyTransfer.DC_EXTENDED)
"""The EVRequestedEnergyTransferType values a DIN session accepts ([V2G-DC-625])."""


@dataclass
class DinSeccConfig:
    timers: rules.Timers = rules.TIMERS
    session_id_factory: Callable[[], bytes] = lambda: secrets.token_bytes(8)
    energy_transfer: din.EVSESupportedEnergyTransfer = din.EVSESupportedEnergyTransfer.DC_EXTENDED
    """The ChargeService's EnergyTransferType (Josev's EV asks for DC_extended)."""
    isolation: din.IsolationLevel = din.IsolationLevel.VALID
    """What a finished cable check reports (Warning passes too: both public SECCs treat it so)."""
    schedule_duration: int = 86400


_MAY_STOP = (State.AUTHORIZED, State.CHARGE_PARAMETERS_ONGOING, State.CHARGE_PARAMETERS, State.CABLE_CHECK_ONGOING,
             State.CABLE_CHECKED, State.PRE_CHARGE, State.POWER_ON, State.CHARGING)
"""States whose next response carries a DC_EVSEStatus that can ask the EV to stop."""


class DinSeccSession:
    """One DIN communication session, from the first request after supportedAppProtocolRes."""

    def __init__(
        self,
        controller: EVSEController,
        config: DinSeccConfig | None = None,
        *,
        now: float = 0.0,
        clock: Callable[[], float],
        tls: bool = False,
        peer_certificate: str | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or DinSeccConfig()
        self._clock = clock
        self.tls = tls
        self.state = State.APP_PROTOCOL
        self.session_id = bytes(8)
        self.evcc_id = ""
        self.authorization: str | None = None
        self.service = EnergyService.DC
        self.schedule = ScheduleOffer(1, D0, D0, self.config.schedule_duration)
        self.ev_limits: EVLimits | None = None
        self.soc: int | None = None
        self.ended = False
        self.ok = False
        self.end_reason = ""
        self.rx = 0
        self.tx = 0
        self.padded_frames = 0
        """Frames that carried zero bytes after the end of their EXI document (real vehicles do)."""
        self.loops = 0
        self._events: list[Event] = []
        self._deadline: float | None = now + self.config.timers.secc_sequence
        self._deadline_reason = "no SessionSetupReq after supportedAppProtocolRes"
        self._auth_since: float | None = None
        self._stop_asked = False
        self._handlers: dict[str, Callable[[Any, float], Any]] = {
            "SessionSetupReq": self._on_session_setup,
            "ServiceDiscoveryReq": self._on_service_discovery,
            "ServicePaymentSelectionReq": self._on_payment_selection,
            "ContractAuthenticationReq": self._on_contract_authentication,
            "ChargeParameterDiscoveryReq": self._on_charge_parameter_discovery,
            "CableCheckReq": self._on_cable_check,
            "PreChargeReq": self._on_pre_charge,
            "PowerDeliveryReq": self._on_power_delivery,
            "CurrentDemandReq": self._on_current_demand,
            "WeldingDetectionReq": self._on_welding_detection,
            "SessionStopReq": self._on_session_stop,
        }

    # ------------------------------------------------------------------ public API

    def next_deadline(self) -> float | None:
        return None if self.ended else self._deadline

    def notify(self, kind: str, max_delay: int = 0) -> None:
        """The EVSE wants to stop (``Terminate`` / ``Pause``; DIN knows only StopCharging): the
        next responses carry EVSE_Shutdown + StopCharging until the EV ends power delivery."""
        if kind in ("Terminate", "Pause"):
            self._stop_asked = True

    def handle_timer(self, now: float) -> list[Event]:
        if self.ended or self._deadline is None or now < self._deadline:
            return []
        return [ProtocolError("Timeout", self._deadline_reason), *self._end(now, f"timeout: {self._deadline_reason}", False)]

    def connection_lost(self, now: float) -> list[Event]:
        if self.ended:
            return []
        return self._end(now, f"connection lost in {self.state.value}", ok=self.state is State.ENDED)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self.rx += 1
        self._events = []
        if payload_type != PayloadType.EXI_ENCODED:
            return self._abort(now, "WrongPayloadType", f"payload type 0x{payload_type:04x} in a DIN session")
        try:
            doc, padding = decode_din(payload)
        except (ExiError, ValueError, KeyError) as exc:  # undecodable: nothing to answer
            return self._abort(now, "DecodeError", str(exc))
        if padding:
            self.padded_frames += 1
            log.info("DIN frame with %d zero byte(s) after the end of its EXI document: ignored", padding)
        req = doc.body.body_element
        if req is None:
            return self._abort(now, "DecodeError", "V2G_Message without a body element")
        name = rules.element_name(req)
        self._events.append(MessageReceived(payload_type, req, name))
        if not name.endswith("Req"):
            return self._abort(now, "UnexpectedMessage", f"{name} is not a request")
        if rules.spec_for_request(name) is None:  # in the XSD but not in a DIN DC EIM session
            return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, f"{name} is not used in DIN DC EIM sessions")
        if name != "SessionSetupReq" and doc.header.session_id != self.session_id:
            return self._fail(now, name, RC.FAILED_UNKNOWN_SESSION, f"SessionID {doc.header.session_id.hex()}")
        if not rules.accepts(self.state, name):
            return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, f"{name} not allowed in {self.state.value}")
        early = rules.request_outcome(req)
        if early is not None:
            try:
                rules.next_state(self.state, name, early)
            except KeyError as exc:
                return self._fail(now, name, RC.FAILED_SEQUENCE_ERROR, str(exc))
        try:
            res = self._handlers[name](req, now)
        except _Failed as exc:
            return self._fail(now, name, exc.code, exc.detail)
        except MessageValidationError as exc:  # a response built from the controller's values is invalid
            log.exception("DIN SECC handler for %s failed", name)
            return self._fail(now, name, RC.FAILED, f"internal error: {exc}")
        return self._respond(now, req, res)

    # ------------------------------------------------------------------ plumbing

    def _respond(self, now: float, req: Any, res: Any) -> list[Event]:
        name = rules.element_name(req)
        events = self._events
        if rules.is_failure(res):
            events += self._send(res)
            events.append(ProtocolError(res.response_code.value, f"answered {name} with {res.response_code.value}"))
            return events + self._end(now, f"{res.response_code.value} on {name}", ok=False)
        try:
            new = rules.next_state(self.state, name, rules.outcome(req, res))
        except KeyError as exc:  # the controller's answer does not fit the table (e.g. Ongoing where none is allowed)
            return self._fail(now, name, RC.FAILED, str(exc))
        events += self._send(res)
        if new is not self.state:
            events.append(StateChanged(self.state, new, name))
            self.state = new
        if new is State.ENDED:
            return events + self._end(now, "SessionStop", ok=True)
        self._deadline = now + self.config.timers.secc_sequence
        self._deadline_reason = f"no request within {self.config.timers.secc_sequence:g} s after {rules.element_name(res)}"
        return events

    def _send(self, body: Any) -> list[Event]:
        self.tx += 1
        data = din.encode(din.message(self.session_id, body))
        return [SendMessage(int(PayloadType.EXI_ENCODED), data, body)]

    def _fail(self, now: float, request: str, code: din.ResponseCode, detail: str) -> list[Event]:
        res = minimal_response(request, code)
        if res is None:
            return self._abort(now, code.value, detail)
        events = self._events
        events += self._send(res)
        events.append(ProtocolError(code.value, detail))
        return events + self._end(now, f"{code.value}: {detail}", ok=False)

    def _abort(self, now: float, code: str, detail: str) -> list[Event]:
        self._events.append(ProtocolError(code, detail))
        return self._events + self._end(now, f"{code}: {detail}", ok=False)

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.end_reason, self.ok = True, reason, ok
        self._deadline = None
        if not ok and self.state in (State.POWER_ON, State.CHARGING, State.PRE_CHARGE):
            try:  # never leave the contactors closed behind an aborted session
                self.controller.power_delivery(now, "Stop", False)
            except Exception:  # pragma: no cover
                log.exception("power_delivery(Stop) failed")
        try:
            self.controller.session_ended(now, reason, ok)
        except Exception:  # pragma: no cover
            log.exception("controller.session_ended failed")
        return [SessionEnded(reason, ok, close_after=self.config.timers.close_delay)]

    def _status(self, now: float, code: din.DCEVSEStatusCode | None = None,
                isolation: din.IsolationLevel | None = None) -> din.DCEVSEStatus:
        """DC_EVSEStatus: EVSE_Ready, or EVSE_Shutdown + StopCharging once the EVSE wants to stop."""
        if not self._stop_asked:
            note = self.controller.pending_notification(now)
            if note is not None and note.kind in ("Terminate", "Pause"):
                self._stop_asked = True
        stop = self._stop_asked and self.state in _MAY_STOP
        return din.DCEVSEStatus(
            evse_isolation_status=isolation,
            evse_status_code=din.DCEVSEStatusCode.EVSE_SHUTDOWN if stop else (code or din.DCEVSEStatusCode.EVSE_READY),
            notification_max_delay=0,
            evse_notification=din.EVSENotification.STOP_CHARGING if stop else din.EVSENotification.NONE,
        )

    # ------------------------------------------------------------------ handlers

    def _on_session_setup(self, req: din.SessionSetupReq, now: float) -> din.SessionSetupRes:
        self.evcc_id = req.evcc_id.hex()
        # DIN has no pause: every session is new ([V2G-DC-393], EVerest); an old ID is not joined
        self.session_id = self.config.session_id_factory()
        return din.SessionSetupRes(response_code=RC.OK_NEW_SESSION_ESTABLISHED,
                                   evse_id=evse_id_bytes(self.controller.evse_id), date_time_now=int(self._clock()))

    def _on_service_discovery(self, req: din.ServiceDiscoveryReq, now: float) -> din.ServiceDiscoveryRes:
        if not any(o.service.family is not None and o.service.family.value == "DC" for o in self.controller.energy_services()):
            raise _Failed(RC.FAILED, "this charger has no DC service")
        return din.ServiceDiscoveryRes(
            response_code=RC.OK,
            payment_options=din.PaymentOptions(payment_option=[din.PaymentOption.EXTERNAL_PAYMENT]),
            charge_service=din.ServiceCharge(
                service_tag=din.ServiceTag(service_id=CHARGE_SERVICE_ID, service_category=din.ServiceCategory.EV_CHARGING),
                free_service=False,
                energy_transfer_type=self.config.energy_transfer,
            ),
        )

    def _on_payment_selection(self, req: din.ServicePaymentSelectionReq, now: float) -> din.ServicePaymentSelectionRes:
        if req.selected_payment_option is not din.PaymentOption.EXTERNAL_PAYMENT:
            raise _Failed(RC.FAILED_PAYMENT_SELECTION_INVALID, f"{req.selected_payment_option.value}: DIN is EIM only")
        ids = [s.service_id for s in req.selected_service_list.selected_service]
        if ids != [CHARGE_SERVICE_ID]:
            raise _Failed(RC.FAILED_SERVICE_SELECTION_INVALID, f"selected services {ids}, offered [{CHARGE_SERVICE_ID}]")
        return din.ServicePaymentSelectionRes(response_code=RC.OK)

    def _on_contract_authentication(self, req: din.ContractAuthenticationReq, now: float) -> din.ContractAuthenticationRes:
        decision = self.controller.authorize(now)
        if self._auth_since is None:
            self._auth_since = now
        if decision is AuthorizationDecision.REJECTED:
            raise _Failed(RC.FAILED, "external identification refused")
        if decision is AuthorizationDecision.PENDING:
            if now - self._auth_since > self.config.timers.secc_authorization_ongoing:
                raise _Failed(RC.FAILED, f"no authorization within {self.config.timers.secc_authorization_ongoing:g} s")
            return din.ContractAuthenticationRes(response_code=RC.OK, evse_processing=din.EVSEProcessing.ONGOING)
        self.authorization = "EIM"
        return din.ContractAuthenticationRes(response_code=RC.OK, evse_processing=din.EVSEProcessing.FINISHED)

    def _evse_charge_parameter(self, now: float) -> din.DCEVSEChargeParameter:
        lim = self.controller.limits(now, self.service)
        return din.DCEVSEChargeParameter(
            dc_evse_status=self._status(now, isolation=din.IsolationLevel.INVALID),
            evse_maximum_current_limit=pv(lim.max_charge_current, U.A),
            evse_maximum_power_limit=pv(lim.max_charge_power, U.W),
            evse_maximum_voltage_limit=pv(lim.max_voltage, U.V),
            evse_minimum_current_limit=pv(lim.min_charge_current, U.A),
            evse_minimum_voltage_limit=pv(lim.min_voltage, U.V),
            evse_peak_current_ripple=pv(Decimal(1), U.A),
        )

    def _on_charge_parameter_discovery(self, req: din.ChargeParameterDiscoveryReq, now: float) -> din.ChargeParameterDiscoveryRes:
        if req.ev_requested_energy_transfer_type not in DC_TYPES:
            raise _Failed(RC.FAILED_WRONG_ENERGY_TRANSFER_TYPE, f"{req.ev_requested_energy_transfer_type.value}: DIN is DC only")
        param = req.ev_charge_parameter
        if not isinstance(param, din.DCEVChargeParameter):
            raise _Failed(RC.FAILED_WRONG_CHARGE_PARAMETER, f"{type(param).__name__} in a DC session")
        max_v, max_i = to_decimal(param.ev_maximum_voltage_limit), to_decimal(param.ev_maximum_current_limit)
        max_p = to_decimal(param.ev_maximum_power_limit) if param.ev_maximum_power_limit is not None else max_v * max_i
        self.ev_limits = EVLimits(max_charge_power=max_p, max_charge_current=max_i, max_voltage=max_v, min_voltage=D0)
        self.soc = param.dc_ev_status.evresssoc
        lim = self.controller.limits(now, self.service)
        pmax = min(lim.max_charge_power, max_p)
        self.schedule = ScheduleOffer(1, pmax, D0, self.config.schedule_duration)
        # PMax is xs:short in W: a DC charger's power does not fit; its unit in DIN practice is W
        # and Josev / EVerest clamp it the same way (EVSEMaximumPowerLimit carries the real value)
        entry = din.PMaxScheduleEntry(
            time_interval=din.RelativeTimeInterval(start=0, duration=self.config.schedule_duration),
            p_max=int(min(pmax, Decimal(32767))),
        )
        return din.ChargeParameterDiscoveryRes(
            response_code=RC.OK,
            evse_processing=din.EVSEProcessing.FINISHED,
            sa_schedules=din.SAScheduleList(sa_schedule_tuple=[din.SAScheduleTuple(
                sa_schedule_tuple_id=1, p_max_schedule=din.PMaxSchedule(p_max_schedule_id=1, p_max_schedule_entry=[entry]))]),
            evse_charge_parameter=self._evse_charge_parameter(now),
        )

    def _check_ev(self, status: din.DCEVStatus, what: str) -> None:
        if status.ev_error_code is not din.DCEVErrorCode.NO_ERROR:
            raise _Failed(RC.FAILED, f"EV reports {status.ev_error_code.value} in {what}")

    def _on_cable_check(self, req: din.CableCheckReq, now: float) -> din.CableCheckRes:
        self._check_ev(req.dc_ev_status, "CableCheck")
        self.soc = req.dc_ev_status.evresssoc
        if not self.controller.cable_check(now):
            return din.CableCheckRes(
                response_code=RC.OK,
                dc_evse_status=self._status(now, din.DCEVSEStatusCode.EVSE_ISOLATION_MONITORING_ACTIVE, din.IsolationLevel.INVALID),
                evse_processing=din.EVSEProcessing.ONGOING,
            )
        return din.CableCheckRes(response_code=RC.OK, dc_evse_status=self._status(now, isolation=self.config.isolation),
                                 evse_processing=din.EVSEProcessing.FINISHED)

    def _on_pre_charge(self, req: din.PreChargeReq, now: float) -> din.PreChargeRes:
        self._check_ev(req.dc_ev_status, "PreCharge")
        voltage = self.controller.pre_charge(now, to_decimal(req.ev_target_voltage))
        return din.PreChargeRes(response_code=RC.OK, dc_evse_status=self._status(now, isolation=self.config.isolation),
                                evse_present_voltage=pv(voltage, U.V))

    def _on_power_delivery(self, req: din.PowerDeliveryReq, now: float) -> din.PowerDeliveryRes:
        if req.ready_to_charge_state:
            profile = req.charging_profile
            if profile is not None and profile.sa_schedule_tuple_id != self.schedule.tuple_id:
                raise _Failed(RC.FAILED_TARIFF_SELECTION_INVALID, f"SAScheduleTupleID {profile.sa_schedule_tuple_id}")
            if self._stop_asked:
                raise _Failed(RC.FAILED_POWER_DELIVERY_NOT_APPLIED, "the EVSE is shutting down")
            if not self.controller.power_delivery(now, "Start", False):
                raise _Failed(RC.FAILED_POWER_DELIVERY_NOT_APPLIED, "contactors did not close")
        elif not self.controller.power_delivery(now, "Stop", False):
            raise _Failed(RC.FAILED, "contactors did not open")
        return din.PowerDeliveryRes(response_code=RC.OK, evse_status=self._status(now, isolation=self.config.isolation))

    def _on_current_demand(self, req: din.CurrentDemandReq, now: float) -> din.CurrentDemandRes:
        lim_ev = self.ev_limits
        assert lim_ev is not None
        max_v = to_decimal(req.ev_maximum_voltage_limit) if req.ev_maximum_voltage_limit else lim_ev.max_voltage
        max_i = to_decimal(req.ev_maximum_current_limit) if req.ev_maximum_current_limit else lim_ev.max_charge_current
        max_p = to_decimal(req.ev_maximum_power_limit) if req.ev_maximum_power_limit else lim_ev.max_charge_power
        target_v, target_i = to_decimal(req.ev_target_voltage), to_decimal(req.ev_target_current)
        self.soc = req.dc_ev_status.evresssoc
        status = EVLoopStatus(
            limits=EVLimits(max_charge_power=max_p, max_charge_current=max_i, max_voltage=max_v, min_voltage=D0),
            energy=EnergyRequest(D0, D0, D0),
            present_voltage=target_v,
            present_power=D0,
            target_power=target_i * target_v,
            target_voltage=target_v,
            soc=self.soc,
        )
        ctx = LoopContext(self.service, ControlMode.SCHEDULED, self.schedule, False)
        r = self.controller.charge_loop(now, ctx, status)
        lim = self.controller.limits(now, self.service)
        self.loops += 1
        self._events.append(PowerChanged(r.target_power, r.present_voltage, r.present_current, self.soc, r.charged_wh,
                                         r.discharged_wh))
        return din.CurrentDemandRes(
            response_code=RC.OK,
            dc_evse_status=self._status(now, isolation=self.config.isolation),
            evse_present_voltage=pv(r.present_voltage, U.V),
            evse_present_current=pv(r.present_current, U.A),
            evse_current_limit_achieved=r.current_limit_achieved,
            evse_voltage_limit_achieved=r.voltage_limit_achieved,
            evse_power_limit_achieved=r.power_limit_achieved,
            evse_maximum_voltage_limit=pv(lim.max_voltage, U.V),
            evse_maximum_current_limit=pv(lim.max_charge_current, U.A),
            evse_maximum_power_limit=pv(lim.max_charge_power, U.W),
        )

    def _on_welding_detection(self, req: din.WeldingDetectionReq, now: float) -> din.WeldingDetectionRes:
        return din.WeldingDetectionRes(response_code=RC.OK, dc_evse_status=self._status(now, isolation=self.config.isolation),
                                       evse_present_voltage=pv(self.controller.present_voltage(now), U.V))

    def _on_session_stop(self, req: din.SessionStopReq, now: float) -> din.SessionStopRes:
        return din.SessionStopRes(response_code=RC.OK)


class _Failed(Exception):
    def __init__(self, code: din.ResponseCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _zero_status() -> din.DCEVSEStatus:
    return din.DCEVSEStatus(evse_status_code=din.DCEVSEStatusCode.EVSE_NOT_READY, notification_max_delay=0,
                            evse_notification=din.EVSENotification.NONE)


def minimal_response(request: str, code: din.ResponseCode) -> Any:
    """The smallest schema-valid response of ``request``'s type carrying ``code`` (FAILED answers),
    or None for the XSD's PaymentDetails / Certificate* / ChargingStatus requests (their responses
    need content a DIN EIM SECC does not have: the connection is closed without an answer)."""
    z = pv(0, U.V)
    finished = din.EVSEProcessing.FINISHED
    builders: dict[str, Callable[[], Any]] = {
        "SessionSetupReq": lambda: din.SessionSetupRes(response_code=code, evse_id=b"\x00"),
        "ServiceDiscoveryReq": lambda: din.ServiceDiscoveryRes(
            response_code=code,
            payment_options=din.PaymentOptions(payment_option=[din.PaymentOption.EXTERNAL_PAYMENT]),
            charge_service=din.ServiceCharge(
                service_tag=din.ServiceTag(service_id=CHARGE_SERVICE_ID, service_category=din.ServiceCategory.EV_CHARGING),
                free_service=False, energy_transfer_type=din.EVSESupportedEnergyTransfer.DC_EXTENDED),
        ),
        "ServicePaymentSelectionReq": lambda: din.ServicePaymentSelectionRes(response_code=code),
        "ContractAuthenticationReq": lambda: din.ContractAuthenticationRes(response_code=code, evse_processing=finished),
        "ChargeParameterDiscoveryReq": lambda: din.ChargeParameterDiscoveryRes(
            response_code=code,
            evse_processing=finished,
            sa_schedules=din.SAScheduleList(sa_schedule_tuple=[din.SAScheduleTuple(
                sa_schedule_tuple_id=1, p_max_schedule=din.PMaxSchedule(p_max_schedule_id=1, p_max_schedule_entry=[
                    din.PMaxScheduleEntry(time_interval=din.RelativeTimeInterval(start=0), p_max=0)]))]),
            evse_charge_parameter=din.DCEVSEChargeParameter(
                dc_evse_status=_zero_status(), evse_maximum_current_limit=pv(0, U.A), evse_maximum_voltage_limit=z,
                evse_minimum_current_limit=pv(0, U.A), evse_minimum_voltage_limit=z, evse_peak_current_ripple=pv(0, U.A)),
        ),
        "CableCheckReq": lambda: din.CableCheckRes(response_code=code, dc_evse_status=_zero_status(),
                                                   evse_processing=finished),
        "PreChargeReq": lambda: din.PreChargeRes(response_code=code, dc_evse_status=_zero_status(), evse_present_voltage=z),
        "PowerDeliveryReq": lambda: din.PowerDeliveryRes(response_code=code, evse_status=_zero_status()),
        "CurrentDemandReq": lambda: din.CurrentDemandRes(
            response_code=code, dc_evse_status=_zero_status(), evse_present_voltage=z, evse_present_current=pv(0, U.A),
            evse_current_limit_achieved=False, evse_voltage_limit_achieved=False, evse_power_limit_achieved=False),
        "WeldingDetectionReq": lambda: din.WeldingDetectionRes(response_code=code, dc_evse_status=_zero_status(),
                                                               evse_present_voltage=z),
        "SessionStopReq": lambda: din.SessionStopRes(response_code=code),
        "ServiceDetailReq": lambda: din.ServiceDetailRes(response_code=code, service_id=CHARGE_SERVICE_ID),
        "MeteringReceiptReq": lambda: din.MeteringReceiptRes(
            response_code=code, ac_evse_status=din.ACEVSEStatus(power_switch_closed=False, rcd=False,
                                                                 notification_max_delay=0,
                                                                 evse_notification=din.EVSENotification.NONE)),
    }
    build = builders.get(request)
    return build() if build is not None else None
