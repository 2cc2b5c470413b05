"""Sans-IO ISO 15118-2 EVCC core (EIM, AC and DC): it decides the next request from the shared
-2 table (:mod:`iso15118.session.iso2.rules`) and its controller.

    core = Iso2EvccSession(controller, Iso2EvccConfig(family=Family.DC), clock=time.time)
    events = core.negotiated(now, started)      # after SupportedAppProtocol: [SendMessage(SessionSetupReq)]
    events = core.receive(payload_type, payload, now)
    events = core.handle_timer(now)             # message timeouts, loop timers, pacing

SupportedAppProtocol is :class:`iso15118.session.negotiation.EvccNegotiator`'s; the registry in
``iso15118.session.iso2`` builds this core after the SECC chose -2.  The EVCC sends a request
only when :func:`rules.accepts` allows it; a response of the wrong type, a wrong SessionID, a
FAILED* code or a timeout ends the session (:class:`ProtocolError` + :class:`SessionEnded`).

The controller is the -20 :class:`~iso15118.session.controller.EVController`: a -2 session is
the unidirectional AC or DC service in scheduled mode (the SAScheduleList's first tuple), so the
truck profiles speak -2 without BPT.  EVAction.RENEGOTIATE_SCHEDULE and the SECC's
``ReNegotiation`` lead to PowerDelivery(Renegotiate) -> ChargeParameterDiscovery -> (DC:
CableCheck, PreCharge) -> PowerDelivery(Start); ``StopCharging`` and EVAction.STOP / PAUSE to
PowerDelivery(Stop) -> (DC: WeldingDetection) -> SessionStop(Terminate / Pause).  -2 has no
Standby: EVAction.STANDBY / RESUME are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import Family
from iso15118.facts.payload import PayloadType
from iso15118.messages import MessageValidationError, Signature
from iso15118.messages import iso2 as m2
from iso15118.security import pnc2
from iso15118.session.controller import EVAction, EVController, EVSELoopResult, LoopContext, ScheduleOffer
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
from iso15118.session.iso2 import parts as p
from iso15118.session.iso2 import rules
from iso15118.session.iso2.pnc import EvccPnCState, PnCRefusal
from iso15118.session.iso2.rules import State
from iso15118.session.pnc import ContractCredentials
from iso15118.session.services import ControlMode, EnergyService

log = logging.getLogger(__name__)
D0 = Decimal(0)
ETM = m2.EnergyTransferMode
S = State


@dataclass
class Iso2EvccConfig:
    """Behaviour switches of the -2 EVCC core."""

    family: Family | None = None
    """AC or DC (None: the controller's first AC/DC service the SECC offers)."""
    service: EnergyService | None = None
    """The service the user asked for (the CLI's ``--service``): a BPT one means -2 is not offered at
    all (-2 has no bidirectional power: V2H stays -20 only); a plain one fixes the family."""
    energy_modes: tuple[m2.EnergyTransferMode, ...] = (
        ETM.AC_SINGLE_PHASE_CORE, ETM.AC_THREE_PHASE_CORE, ETM.DC_EXTENDED, ETM.DC_CORE)
    """Modes the EV can use, most preferred first (the truck: 240 V single phase, CCS1 DC_extended)."""
    service_detail: bool = False
    """Ask ServiceDetail for the charge service before PaymentServiceSelection (optional in -2)."""
    max_loops: int | None = None
    loop_interval: float = 0.25
    ongoing_interval: float = 0.1
    resume_session_id: bytes | None = None
    """Resume a paused session (SessionSetupReq with the old SessionID)."""
    welding_detection: bool = True
    welding_max_requests: int = 5
    recheck_after_renegotiation: bool = True
    """DC: CableCheck + PreCharge again after a renegotiated ChargeParameterDiscovery (EVerest and
    RISE-V2G SECCs expect it, Josev's accepts it; decision D8)."""
    pre_charge_tolerance: Decimal = Decimal(20)
    pre_charge_current: Decimal = Decimal(2)
    pre_charge_give_up: int | None = None
    """Lab peers whose simulated EVSE never reaches the target: accept pre-charge after N requests
    (None, the default: never)."""
    timers: rules.Timers = rules.TIMERS
    timeout_scale: float = 1.0
    """Multiply every message timeout and loop timer (interop tests against a slow peer)."""
    contract: ContractCredentials | None = None
    """A -2 contract (P-256 chain leaf first, its key): Plug & Charge when the SECC offers
    ``Contract`` over TLS; None (or plain TCP): EIM.  Default: the controller's ``contract``
    when it is a P-256 one."""
    update_contract: bool = False
    """PnC: renew the contract with CertificateUpdate before PaymentDetails (``iso2/pnc.py``)."""


class EvccFault(Exception):
    """The EVCC itself cannot go on (its own bug or its controller's values)."""


class PeerError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class Iso2EvccSession:
    """One -2 EVCC communication session."""

    protocol = "iso2"

    def __init__(self, controller: EVController, config: Iso2EvccConfig | None = None, *,
                 clock: Callable[[], float], tls: bool = False) -> None:
        self.controller = controller
        self.config = config or Iso2EvccConfig()
        self._clock = clock
        self.tls = tls
        self.state = S.APP_PROTOCOL
        self.family: Family | None = None
        self.service: EnergyService | None = None
        self.energy_mode: m2.EnergyTransferMode | None = None
        self.session_id = bytes(1)
        self.evcc_id = p.evcc_id_bytes(controller.evcc_id)
        self.resumed = False
        self.authorization: str | None = None
        self.authorized_at: float | None = None
        self.contract = self.config.contract if self.config.contract is not None else _p256_contract(controller)
        self.payment = m2.PaymentOption.EXTERNAL_PAYMENT
        self.pnc = EvccPnCState(contract=self.contract, provisioning=_p256_provisioning(controller))
        """Contract provisioning: CertificateInstallation with the OEM provisioning credential when
        there is no contract, CertificateUpdate on request (``iso2/pnc.py``)."""
        self._gen_challenge: bytes | None = None
        self._receipt: m2.MeterInfo | None = None
        self.metering_receipts = 0
        self.schedule: ScheduleOffer | None = None
        self.tuple_id: int | None = None
        self.pmax = D0
        self.evse_max_current: Decimal | None = None
        self.evse_nominal_voltage: Decimal | None = None
        self.loops = 0
        self.renegotiations = 0
        self.rx = 0
        self.tx = 0
        self.ended = False
        self.ok = False
        self.end_reason = ""
        self.paused_session_id: bytes | None = None
        self._pending: tuple[rules.MessageSpec, Any, float] | None = None
        self._pending_deadline: float | None = None
        self._send_at: float | None = None
        self._setup_deadline: float | None = None
        self._loop_name = ""
        self._loop_started = 0.0
        self._stop_kind = m2.ChargingSession.TERMINATE
        self._notification: m2.EVSENotification | None = None
        self._pre_charge_count = 0
        self._pre_charged = False
        self._welding_count = 0
        self.service_id = 1
        """The ChargeService's ServiceID from ServiceDiscoveryRes (selected in PaymentServiceSelectionReq)."""
        self._welding_done = False
        self._renegotiated = False
        self._power_on = False
        self._stop_requested: m2.ChargingSession | None = None

    # ------------------------------------------------------------------ public API

    def negotiated(self, now: float, started: float | None = None) -> list[Event]:
        """Start after SupportedAppProtocol chose -2: returns the SessionSetupReq to send;
        V2G_EVCC_CommunicationSetup_Timeout runs from ``started``."""
        self._setup_deadline = (now if started is None else started) + self.config.timers.communication_setup
        return self._guarded(now, self._next, now)

    def handle_timer(self, now: float) -> list[Event]:
        return self._guarded(now, self._handle_timer, now)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        return self._guarded(now, self._receive, payload_type, payload, now)

    def next_deadline(self) -> float | None:
        if self.ended:
            return None
        times = [t for t in (self._pending_deadline, self._send_at, self._setup_deadline) if t is not None]
        return min(times) if times else None

    def connection_lost(self, now: float) -> list[Event]:
        if self.ended:
            return []
        return self._error(now, "ConnectionLost", f"connection closed in {self.state.value}")

    def request_stop(self, kind: Any = "Terminate") -> None:
        """End the session at the next opportunity (``Terminate`` or ``Pause``)."""
        self._stop_requested = m2.ChargingSession(getattr(kind, "value", kind))

    # ------------------------------------------------------------------ plumbing

    def _guarded(self, now: float, fn: Callable[..., list[Event]], *args: Any) -> list[Event]:
        try:
            return fn(*args)
        except EvccFault as exc:
            detail = str(exc)
        except MessageValidationError as exc:
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
            return self._error(now, "UnexpectedResponse", f"payload type 0x{payload_type:04x}")
        try:
            msg = p.decode_message(payload)
        except (ExiError, ValueError, KeyError) as exc:
            return self._error(now, "DecodeError", str(exc))
        res = p.body_of(msg)
        name = p.element_name(res) if res is not None else "(empty body)"
        events: list[Event] = [MessageReceived(payload_type, res, name)]
        if self._pending is None:
            return events + self._error(now, "UnexpectedResponse", f"{name} without a pending request")
        spec, req, _ = self._pending
        if name != spec.response:
            return events + self._error(now, "UnexpectedResponse", f"{name} while waiting for {spec.response}")
        self._pending = self._pending_deadline = None
        if name == "SessionSetupRes":
            self._setup_deadline = None
        elif msg.header.session_id != self.session_id:
            return events + self._error(now, "UnknownSession", f"SessionID {msg.header.session_id.hex()} != {self.session_id.hex()}")
        if rules.is_failure(res):
            code = res.response_code.value
            return events + self._error(now, code, f"{name}: {code}")
        try:
            new = rules.next_state(self.state, spec.request, rules.outcome(req, res), self.family)
        except KeyError as exc:
            return events + self._error(now, "UnexpectedResponse", str(exc))
        handler = getattr(self, "_on_" + name, None)
        try:
            if handler is not None:
                events += handler(res, req, msg, now)
        except PeerError as exc:
            return events + self._error(now, exc.code, exc.detail)
        if new is not self.state:
            events.append(StateChanged(self.state, new, spec.request))
            self.state = new
        if new in (S.ENDED, S.PAUSED):
            return events + self._end(now, "SessionStop " + ("Pause" if new is S.PAUSED else "Terminate"), True)
        return events + self._next(now)

    def _send(self, now: float, req: Any, signature: Signature | None = None) -> list[Event]:
        name = p.element_name(req)
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
        payload = (p.encode_message(self.session_id, req) if signature is None
                   else m2.encode(m2.message(self.session_id, req, signature=signature)))
        return [SendMessage(int(PayloadType.EXI_ENCODED), payload, req)]

    def _error(self, now: float, code: str, detail: str) -> list[Event]:
        return [ProtocolError(code, detail), *self._end(now, f"{code}: {detail}", False)]

    def _end(self, now: float, reason: str, ok: bool) -> list[Event]:
        if self.ended:
            return []
        self.ended, self.ok, self.end_reason = True, ok, reason
        self._pending = self._pending_deadline = self._send_at = self._setup_deadline = None
        if self._power_on:
            self._power_on = False
            self.controller.power_stopped(now)
        if self.state is S.PAUSED:
            self.paused_session_id = self.session_id
        try:
            self.controller.session_ended(now, reason, ok)
        except Exception:  # pragma: no cover
            log.exception("controller.session_ended failed")
        return [SessionEnded(reason, ok, paused_session_id=self.paused_session_id)]

    def _later(self, now: float, delay: float) -> list[Event]:
        self._send_at = now + delay
        return []

    def _ctx(self) -> LoopContext:
        assert self.service is not None
        return LoopContext(self.service, ControlMode.SCHEDULED, self.schedule, False)

    # ------------------------------------------------------------------ what next

    def _next(self, now: float, timer: bool = False) -> list[Event]:
        s = self.state
        if s is S.APP_PROTOCOL:
            self.session_id = self.config.resume_session_id or bytes(1)
            return self._send(now, m2.SessionSetupReq(evcc_id=self.evcc_id))
        if s is S.SESSION_SETUP:
            return self._send(now, m2.ServiceDiscoveryReq())
        if s in (S.SERVICE_DISCOVERY, S.SERVICE_DETAIL):
            if self.energy_mode is None:
                return self._session_stop(now, m2.ChargingSession.TERMINATE)
            if s is S.SERVICE_DISCOVERY and self.config.service_detail:
                return self._send(now, m2.ServiceDetailReq(service_id=self.service_id))
            return self._send(now, m2.PaymentServiceSelectionReq(
                selected_payment_option=self.payment,
                selected_service_list=m2.SelectedServiceList(selected_service=[m2.SelectedService(service_id=self.service_id)])))
        if s is S.PAYMENT_SELECTED:
            if self.payment is m2.PaymentOption.CONTRACT:
                if self.contract is None:  # no contract yet: install one with the OEM provisioning key
                    return self._send(now, *self.pnc.installation_req())
                if self.config.update_contract and not self.pnc.updated:
                    return self._send(now, *self.pnc.update_req())
                return self._send(now, self._payment_details())
            return self._send(now, m2.AuthorizationReq())
        if s is S.CERTIFICATE:
            return self._send(now, self._payment_details())
        if s is S.PAYMENT_DETAILS:  # PnC: the first AuthorizationReq signed, with the SECC's challenge
            assert self.contract is not None and self._gen_challenge is not None
            req = m2.AuthorizationReq(id="ID1", gen_challenge=self._gen_challenge)
            key = self.contract.key
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise EvccFault("the contract key is not an ECDSA key")
            return self._send(now, req, signature=pnc2.sign_elements([req], key))
        if s is S.AUTHORIZATION_ONGOING:
            return self._send(now, m2.AuthorizationReq()) if timer else self._later(now, self.config.ongoing_interval)
        if s in (S.AUTHORIZED, S.RENEGOTIATING):
            return self._send(now, self._build_cpd(now))
        if s is S.CPD_ONGOING:
            return self._send(now, self._build_cpd(now)) if timer else self._later(now, self.config.ongoing_interval)
        if s is S.CHARGE_PARAMETERS or (s is S.RENEGOTIATED and self.family is Family.DC
                                        and self.config.recheck_after_renegotiation):
            if self._stop_requested is not None:
                self._stop_kind = m2.ChargingSession.TERMINATE
                return self._send(now, self._power_delivery(now, m2.ChargeProgress.STOP))
            if self.family is Family.DC:
                self._pre_charge_count, self._pre_charged = 0, False
                return self._send(now, m2.CableCheckReq(dc_ev_status=self._dc_status(now)))
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.START))
        if s is S.CABLE_CHECK_ONGOING:
            if not timer:
                return self._later(now, self.config.ongoing_interval)
            return self._send(now, m2.CableCheckReq(dc_ev_status=self._dc_status(now)))
        if s in (S.CABLE_CHECKED, S.PRE_CHARGE):
            if self._pre_charged:
                return self._send(now, self._power_delivery(now, m2.ChargeProgress.START))
            self._pre_charge_count += 1
            return self._send(now, m2.PreChargeReq(
                dc_ev_status=self._dc_status(now), ev_target_voltage=p.pv(self.controller.present_voltage(now), "V"),
                ev_target_current=p.pv(self.config.pre_charge_current, "A")))
        if s is S.RENEGOTIATED:
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.START))
        if s is S.CHARGING:
            return self._in_loop(now, timer)
        if s is S.STOPPED:
            if self.family is Family.DC and self.config.welding_detection:
                return self._welding(now)
            return self._session_stop(now, self._stop_kind)
        if s is S.WELDING_DETECTION:
            if self._welding_done:
                return self._session_stop(now, self._stop_kind)
            return self._welding(now)
        raise EvccFault(f"EVCC has no next request in {s.value}")

    def _welding(self, now: float) -> list[Event]:
        self._welding_count += 1
        return self._send(now, m2.WeldingDetectionReq(dc_ev_status=self._dc_status(now)))

    def _in_loop(self, now: float, timer: bool) -> list[Event]:
        if self._receipt is not None:  # the SECC asked for a signed MeteringReceipt: before anything else
            meter, self._receipt = self._receipt, None
            assert self.contract is not None and isinstance(self.contract.key, ec.EllipticCurvePrivateKey)
            receipt = m2.MeteringReceiptReq(id="ID2", session_id=self.session_id, sa_schedule_tuple_id=self.tuple_id,
                                            meter_info=meter)
            return self._send(now, receipt, signature=pnc2.sign_elements([receipt], self.contract.key))
        note, self._notification = self._notification, None
        if note is m2.EVSENotification.STOP_CHARGING or self._stop_requested is not None:
            self._stop_kind = self._stop_requested or m2.ChargingSession.TERMINATE
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.STOP))
        if note is m2.EVSENotification.RE_NEGOTIATION:
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.RENEGOTIATE))
        action = self.controller.next_action(now, self._ctx())
        if self.config.max_loops is not None and self.loops >= self.config.max_loops:
            action = EVAction.STOP
        if action in (EVAction.STOP, EVAction.PAUSE):
            self._stop_kind = m2.ChargingSession.PAUSE if action is EVAction.PAUSE else m2.ChargingSession.TERMINATE
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.STOP))
        if action is EVAction.RENEGOTIATE_SCHEDULE:
            return self._send(now, self._power_delivery(now, m2.ChargeProgress.RENEGOTIATE))
        if not timer and self.config.loop_interval > 0:
            return self._later(now, self.config.loop_interval)
        if self.family is Family.AC:
            return self._send(now, m2.ChargingStatusReq())
        return self._send(now, self._current_demand(now))

    def _payment_details(self) -> m2.PaymentDetailsReq:
        assert self.contract is not None
        leaf, *subs = (c.public_bytes(Encoding.DER) for c in self.contract.chain)
        return m2.PaymentDetailsReq(
            e_ma_id=self.contract.emaid,
            contract_signature_cert_chain=m2.CertificateChain(
                certificate=leaf, sub_certificates=m2.SubCertificates(certificate=subs) if subs else None),
        )

    def _session_stop(self, now: float, kind: m2.ChargingSession) -> list[Event]:
        return self._send(now, m2.SessionStopReq(charging_session=kind))

    # ------------------------------------------------------------------ builders

    def _dc_status(self, now: float) -> m2.DCEVStatus:
        soc = getattr(self.controller, "soc_percent", None)
        return p.dc_ev_status(soc if isinstance(soc, int) else None)

    def _build_cpd(self, now: float) -> m2.ChargeParameterDiscoveryReq:
        assert self.service is not None and self.energy_mode is not None
        lim = self.controller.limits(now, self.service)
        energy = self.controller.energy_request(now)
        cp: m2.ACEVChargeParameter | m2.DCEVChargeParameter
        if self.family is Family.AC:
            volts = lim.max_voltage
            cp = m2.ACEVChargeParameter(
                departure_time=energy.departure_time or None,
                e_amount=p.pv(max(D0, energy.target_wh), "Wh"), ev_max_voltage=p.pv(volts, "V"),
                ev_max_current=p.pv(lim.max_charge_current, "A"), ev_min_current=p.pv(min(lim.min_charge_current or 6, lim.max_charge_current), "A"))
        else:
            cp = m2.DCEVChargeParameter(
                departure_time=energy.departure_time or None, dc_ev_status=self._dc_status(now),
                ev_maximum_current_limit=p.pv(lim.max_charge_current, "A"),
                ev_maximum_power_limit=p.pv(lim.max_charge_power, "W"),
                ev_maximum_voltage_limit=p.pv(lim.max_voltage, "V"),
                ev_energy_request=p.pv(max(D0, energy.target_wh), "Wh"),
                full_soc=lim.target_soc, bulk_soc=min(lim.target_soc, 80) if lim.target_soc else None)
        return m2.ChargeParameterDiscoveryReq(requested_energy_transfer_mode=self.energy_mode, ev_charge_parameter=cp)

    def _power_delivery(self, now: float, progress: m2.ChargeProgress) -> m2.PowerDeliveryReq:
        assert self.service is not None
        profile = None
        if progress is m2.ChargeProgress.START:
            lim = self.controller.limits(now, self.service)
            power = min(self.pmax, lim.max_charge_power) if self.pmax > 0 else lim.max_charge_power
            profile = m2.ChargingProfile(profile_entry=[m2.ProfileEntry(
                charging_profile_entry_start=0, charging_profile_entry_max_power=p.pv(power, "W"))])
        dc = None
        if self.family is Family.DC:
            dc = m2.DCEVPowerDeliveryParameter(dc_ev_status=self._dc_status(now),
                                               charging_complete=progress is m2.ChargeProgress.STOP)
        return m2.PowerDeliveryReq(charge_progress=progress, sa_schedule_tuple_id=self.tuple_id or 1,
                                   charging_profile=profile, ev_power_delivery_parameter=dc)

    def _current_demand(self, now: float) -> m2.CurrentDemandReq:
        assert self.service is not None
        status = self.controller.loop_status(now, self._ctx())
        lim = status.limits
        volts = status.target_voltage or status.present_voltage or self.controller.present_voltage(now)
        target_p = max(D0, status.target_power if status.target_power is not None else lim.max_charge_power)
        amps = min(target_p / volts if volts > 0 else D0, lim.max_charge_current)
        return m2.CurrentDemandReq(
            dc_ev_status=p.dc_ev_status(status.soc), ev_target_current=p.pv(amps.quantize(Decimal("0.1")), "A"),
            ev_maximum_voltage_limit=p.pv(lim.max_voltage, "V"), ev_maximum_current_limit=p.pv(lim.max_charge_current, "A"),
            ev_maximum_power_limit=p.pv(lim.max_charge_power, "W"), charging_complete=False,
            ev_target_voltage=p.pv(volts, "V"))

    # ------------------------------------------------------------------ response handlers

    def _on_SessionSetupRes(self, res: m2.SessionSetupRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        self.session_id = msg.header.session_id
        self.resumed = res.response_code is m2.ResponseCode.OK_OLD_SESSION_JOINED
        return []

    def _on_ServiceDiscoveryRes(self, res: m2.ServiceDiscoveryRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        options = res.payment_option_list.payment_option
        can_pnc = self.contract is not None or self.pnc.provisioning is not None
        if self.tls and can_pnc and m2.PaymentOption.CONTRACT in options:
            self.payment = m2.PaymentOption.CONTRACT  # PnC only over TLS (digest §3.3)
        elif m2.PaymentOption.EXTERNAL_PAYMENT in options:
            self.payment = m2.PaymentOption.EXTERNAL_PAYMENT
        else:
            raise PeerError("NoPaymentOption", "the SECC offers neither ExternalPayment nor (over TLS) Contract we can use")
        self.service_id = res.charge_service.service_id  # the charger's own ID of its charge service
        offered = list(res.charge_service.supported_energy_transfer_mode.energy_transfer_mode)
        families = [self.config.family] if self.config.family else [
            s.family for s in self.controller.preferred_services() if s.family is not None]
        for fam in dict.fromkeys(families):
            for mode in self.config.energy_modes:
                if mode in offered and p.family_of_mode(mode) is fam:
                    self.energy_mode, self.family = mode, fam
                    self.service = p.service_of_family(fam)
                    return []
        raise PeerError("NoEnergyMode", f"none of {[x.value for x in offered]} suits the vehicle")

    def _installed(self, res: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        try:
            contract = self.pnc.accept_installation(res, msg.header.signature)
        except PnCRefusal as exc:
            raise PeerError(exc.code.value, f"{type(res).__name__} refused: {exc.detail}") from None
        self.contract = contract
        hook = getattr(self.controller, "contract_installed", None)
        if hook is not None:
            hook(now, contract)
        return []

    def _on_CertificateInstallationRes(self, res: m2.CertificateInstallationRes, req: Any, msg: m2.V2GMessage,
                                       now: float) -> list[Event]:
        return self._installed(res, msg, now)

    def _on_CertificateUpdateRes(self, res: m2.CertificateUpdateRes, req: Any, msg: m2.V2GMessage,
                                 now: float) -> list[Event]:
        return self._installed(res, msg, now)

    def _on_PaymentDetailsRes(self, res: m2.PaymentDetailsRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        self._gen_challenge = res.gen_challenge
        return []

    def _on_AuthorizationRes(self, res: m2.AuthorizationRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        if res.evse_processing is m2.EVSEProcessing.FINISHED:
            self.authorization = "PnC" if self.payment is m2.PaymentOption.CONTRACT else "EIM"
            self.authorized_at = now
        return []

    def _on_ChargeParameterDiscoveryRes(self, res: m2.ChargeParameterDiscoveryRes, req: Any, msg: m2.V2GMessage,
                                        now: float) -> list[Event]:
        cp = res.evse_charge_parameter
        if (self.family is Family.AC) != isinstance(cp, m2.ACEVSEChargeParameter):
            raise PeerError("UnexpectedResponse", f"{type(cp).__name__} in a {self.family} session")
        if isinstance(cp, m2.ACEVSEChargeParameter):
            self.evse_max_current = p.dv(cp.evse_max_current)
            self.evse_nominal_voltage = p.dv(cp.evse_nominal_voltage)
        if res.evse_processing is not m2.EVSEProcessing.FINISHED:
            return []
        if res.sa_schedules is None or not res.sa_schedules.sa_schedule_tuple:
            raise PeerError("NoSchedule", "ChargeParameterDiscoveryRes Finished without SAScheduleList")
        tup = res.sa_schedules.sa_schedule_tuple[0]
        first = tup.p_max_schedule.p_max_schedule_entry[0]
        self.tuple_id, self.pmax = tup.sa_schedule_tuple_id, p.dv(first.p_max)
        self.schedule = ScheduleOffer(tup.sa_schedule_tuple_id, self.pmax, D0)
        if self.state is S.RENEGOTIATING:
            self.renegotiations += 1
        return []

    def _on_PreChargeRes(self, res: m2.PreChargeRes, req: m2.PreChargeReq, msg: m2.V2GMessage, now: float) -> list[Event]:
        present, target = p.dv(res.evse_present_voltage), p.dv(req.ev_target_voltage)
        give_up = self.config.pre_charge_give_up
        if abs(present - target) <= self.config.pre_charge_tolerance or (give_up is not None and self._pre_charge_count >= give_up):
            self._pre_charged = True
        return []

    def _on_PowerDeliveryRes(self, res: m2.PowerDeliveryRes, req: m2.PowerDeliveryReq, msg: m2.V2GMessage,
                             now: float) -> list[Event]:
        if req.charge_progress is m2.ChargeProgress.START and not self._power_on:
            self._power_on = True
            self.controller.power_started(now, False)
        elif req.charge_progress is m2.ChargeProgress.STOP and self._power_on:
            self._power_on = False
            self.controller.power_stopped(now)
        return []

    def _note(self, status: m2.ACEVSEStatus | m2.DCEVSEStatus) -> list[Event]:
        note = status.evse_notification
        if note is m2.EVSENotification.NONE:
            return []
        self._notification = note
        return [NotificationReceived(note.value, status.notification_max_delay)]

    def _want_receipt(self, res: m2.ChargingStatusRes | m2.CurrentDemandRes) -> None:
        """ReceiptRequired: sign the MeterInfo in PnC over TLS (a MeteringReceipt needs the contract key)."""
        if res.receipt_required and res.meter_info is not None and self.payment is m2.PaymentOption.CONTRACT and self.tls:
            self._receipt = res.meter_info

    def _on_MeteringReceiptRes(self, res: m2.MeteringReceiptRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        self.metering_receipts += 1
        return self._note(res.evse_status)

    def _loop_result(self, now: float, power: Decimal, voltage: Decimal, current: Decimal) -> list[Event]:
        self.loops += 1
        self.controller.apply(now, self._ctx(), EVSELoopResult(power, voltage, current))
        soc = getattr(self.controller, "soc_percent", None)
        return [PowerChanged(power, voltage, current, soc if isinstance(soc, int) else None)]

    def _on_ChargingStatusRes(self, res: m2.ChargingStatusRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        status = self.controller.loop_status(now, self._ctx())
        volts = self.evse_nominal_voltage or Decimal(230)  # AC: the supply's voltage, not the battery's
        want = max(D0, status.target_power if status.target_power is not None else status.limits.max_charge_power)
        want = min(want, status.limits.max_charge_current * volts)
        if res.evse_max_current is not None:
            want = min(want, p.dv(res.evse_max_current) * volts)
        if self.pmax > 0:
            want = min(want, self.pmax)
        self._want_receipt(res)
        return self._note(res.ac_evse_status) + self._loop_result(now, want, volts, want / volts if volts else D0)

    def _on_CurrentDemandRes(self, res: m2.CurrentDemandRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        v, i = p.dv(res.evse_present_voltage), p.dv(res.evse_present_current)
        self._want_receipt(res)
        return self._note(res.dc_evse_status) + self._loop_result(now, v * i, v, i)

    def _on_WeldingDetectionRes(self, res: m2.WeldingDetectionRes, req: Any, msg: m2.V2GMessage, now: float) -> list[Event]:
        if p.dv(res.evse_present_voltage) < 60 or self._welding_count >= self.config.welding_max_requests:
            self._welding_done = True
        return []


def _p256_provisioning(controller: Any) -> Any:
    """The controller's OEM provisioning credential when it is a -2 one (P-256), else None."""
    prov = getattr(controller, "provisioning", None)
    key = getattr(prov, "oem_key", None)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return prov
    return None


def _p256_contract(controller: Any) -> ContractCredentials | None:
    """The controller's contract when it is a -2 one (P-256); a -20 contract is not usable in -2."""
    contract = getattr(controller, "contract", None)
    key = getattr(contract, "key", None)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return contract  # type: ignore[no-any-return]
    return None


__all__ = ["Iso2EvccConfig", "Iso2EvccSession"]
