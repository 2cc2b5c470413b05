"""A library of deliberately defective chargers (SECC) and vehicles (EVCC), built on the real
stack, to prove the tester by mutation: every defect must be caught by at least one case and
every case must fail against at least one defect (see :mod:`conformance.mutation`).

Chargers are our SECC with one defect put in at the level where a real product would have it:

* **transport** -- :func:`dead_port` (nothing listening), :class:`SilentServer` (accepts, never
  answers), :class:`RandomExiServer` (answers every frame with random bytes);
* **controller** (the power stage behind the protocol) -- wrappers of the simulated charger:
  :class:`IgnoreDerate`, :class:`PowerOnAfterAbort`, :class:`LimitsExceeded`, :class:`StandbyPower`,
  :class:`PreChargeOvershoot`, :class:`NoWeldingDischarge`;
* **protocol** -- a V2GTP :class:`DefectProxy` in front of the SECC that rewrites, delays, drops
  or invents answers (always OK, ignores the sequence, wrong codes, stale answers, late answers,
  hard-coded SchemaID, keeps answering after SessionStop, never closes, PnC over TCP ...);
* **configuration** -- SECC settings (fixed SessionID, no idle / sequence timeout, a 2 s sequence
  timeout, a session store that resumes any EV or none);
* **TLS** -- server contexts that accept TLS 1.2, a missing or an untrusted client certificate,
  or plain V2GTP on the TLS port.

Vehicles are our EVCC with one defect (:data:`EVCC_DEFECTS`): a subclass of the EVCC core or a
controller wrapper, run by :func:`defective_evcc_launcher`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from conformance.delegate import Delegating
from iso15118 import messages as m
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, open_connection, start_server
from iso15118.transport.v2gtp import V2GTPError, encode_frame, schema_key_for

RC = m.ResponseCode


# ============================================================================ controller defects


_Wrapper = Delegating


class IgnoreDerate(_Wrapper):
    """Uses the EV limits of the first charge loop for the whole session."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.first_limits: Any = None

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        if self.first_limits is None:
            self.first_limits = status.limits
        return self.inner.charge_loop(now, ctx, dataclasses.replace(status, limits=self.first_limits))


class PowerOnAfterAbort(_Wrapper):
    """When the SECC core aborts a session while delivering power, the output stays on."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.last_power = 0.0
        self.stop_at: float | None = None
        self.before_stop: tuple[float, bool] = (0.0, False)

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        r = self.inner.charge_loop(now, ctx, status)
        self.last_power = float(r.target_power)
        return r

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        if progress == "Stop":
            self.stop_at = now
            self.before_stop = (self.inner.power_w, self.inner.contactors_closed)
        return bool(self.inner.power_delivery(now, progress, discharge))

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self.inner.session_ended(now, reason, ok)
        if ok:
            return
        if self.stop_at == now:  # the core's abort path: Stop and end at the same instant
            power, closed = self.before_stop
        else:  # connection lost while charging: no Stop at all
            power, closed = self.last_power, self.last_power != 0.0
        if closed:
            self.inner.power_w = power
            self.inner.contactors_closed = True


class LimitsExceeded(_Wrapper):
    """Delivers 30 % more than the EV allows (a power stage that overshoots its setpoint)."""

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        r = self.inner.charge_loop(now, ctx, status)
        f = Decimal("1.3")
        return dataclasses.replace(r, target_power=r.target_power * f, present_current=r.present_current * f)


class StandbyPower(_Wrapper):
    """Keeps the last power in Standby instead of 0 W."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.last: Any = None

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        r = self.inner.charge_loop(now, ctx, status)
        if ctx.standby and self.last is not None:
            return self.last
        self.last = r
        return r


class PreChargeOvershoot(_Wrapper):
    """Follows any pre-charge target, above EVSEMaximumVoltage too (the former finding)."""

    def pre_charge(self, now: float, target_voltage: Decimal) -> Decimal:
        self.inner.output_voltage = float(target_voltage)
        return Decimal(target_voltage)


class PreChargeStuck(_Wrapper):
    """The pre-charge converter never starts: the output stays at 0 V."""

    def pre_charge(self, now: float, target_voltage: Decimal) -> Decimal:
        self.inner.pre_charge(now, target_voltage)
        return Decimal(0)


class NoWeldingDischarge(_Wrapper):
    """Leaves the DC output charged after PowerDelivery(Stop)."""

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        v = self.inner.output_voltage
        ok = bool(self.inner.power_delivery(now, progress, discharge))
        if progress == "Stop":
            self.inner.output_voltage = v or 800.0
        return ok

    def present_voltage(self, now: float) -> Decimal:
        return Decimal(str(self.inner.output_voltage or 800.0))


# ============================================================================ transport defects


async def dead_port() -> int:
    """A port nobody listens on (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


class _Server:
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class SilentServer(_Server):
    """Accepts connections, reads everything, never answers, never closes."""

    async def start(self) -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while await r.read(65536):
                    pass
            except OSError:
                pass

        self.server = await asyncio.start_server(handle, "::1", 0)
        return self.port


class RandomExiServer(_Server):
    """Answers every V2GTP frame with random bytes of a plausible length (valid V2GTP header)."""

    async def start(self) -> int:
        async def handle(conn: V2GTPConnection) -> None:
            try:
                while True:
                    f = await conn.recv()
                    await conn.send_raw(encode_frame(f.payload_type, os.urandom(12 + len(f.payload) % 40)))
            except (ConnectionClosed, V2GTPError, ConnectionError, asyncio.IncompleteReadError):
                pass

        self.server = await start_server(handle, "::1", 0)
        return self.port


class DualStackPort(_Server):
    """The TLS port also speaks plain V2GTP: a first byte 0x16 goes to the TLS SECC, anything else
    to a plain-TCP SECC (TCP-level forwarding)."""

    def __init__(self, tls_port: int, plain_port: int) -> None:
        self.tls_port, self.plain_port = tls_port, plain_port

    async def start(self) -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            first = await r.read(65536)
            if not first:
                w.close()
                return
            ur, uw = await asyncio.open_connection("::1", self.tls_port if first[:1] == b"\x16" else self.plain_port)
            uw.write(first)

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                try:
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                except OSError:
                    pass
                finally:
                    dst.close()

            await asyncio.gather(pump(r, uw), pump(ur, w))

        self.server = await asyncio.start_server(handle, "::1", 0)
        return self.port


# ============================================================================ protocol defects (proxy)

Rewrite = Callable[["ProxyState", str, Any], Any]
"""``(state, name, message) -> message`` (or None: drop the frame)."""


@dataclass
class ProxyState:
    sid: bytes | None = None
    last_response: tuple[int, bytes] | None = None
    stopped: bool = False
    last_request: Any = None


@dataclass
class DefectProxy:
    """A V2GTP proxy between the tester and the SECC with deliberate defects.

    ``loop_delay`` / ``delays``: hold these responses; ``accept_wrong_session``: rewrite a wrong
    SessionID in requests to the assigned one; ``down`` / ``up``: rewrite responses / requests;
    ``stale``: answer each request with the previous response; ``after_stop``: keep answering
    OK after SessionStop; ``never_close``: keep the tester's connection open when the SECC closes;
    ``die_on_malformed``: stop accepting connections after an undecodable or broken frame."""

    target_port: int
    loop_delay: float = 0.0
    accept_wrong_session: bool = False
    delays: dict[str, float] = field(default_factory=dict)
    down: Rewrite | None = None
    up: Rewrite | None = None
    stale: bool = False
    after_stop: bool = False
    never_close: bool = False
    die_on_malformed: bool = False
    auto_sap: bool = False
    """A SessionSetupReq as first message: the proxy negotiates SAP upstream itself and goes on."""
    fix_payload_type: bool = False
    """A message under the wrong payload type is re-typed and processed."""
    server: asyncio.Server | None = None
    rewrites: int = 0
    delayed: int = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        self.server = await start_server(self._handle, "::1", 0)
        return self.port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    @staticmethod
    def _decode(pt: int, payload: bytes) -> Any:
        try:
            key = schema_key_for(pt)
            return m.decode(payload, key) if key else None  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001
            return None

    async def _handle(self, ev_side: V2GTPConnection) -> None:
        secc = await open_connection("::1", self.target_port)
        st = ProxyState()

        async def up() -> None:  # EV -> SECC
            while True:
                try:
                    f = await ev_side.recv()
                except V2GTPError:
                    if self.die_on_malformed:
                        self.close()
                    raise
                payload = f.payload
                pt = f.payload_type
                msg = self._decode(pt, payload)
                if msg is None and self.fix_payload_type:
                    for other in (0x8001, 0x8002, 0x8003, 0x8004):
                        msg = self._decode(other, payload) if other != pt else None
                        if msg is not None:
                            pt = other
                            break
                if self.auto_sap and msg is not None and not st.__dict__.get("sap") and msg.ELEMENT[1] != "supportedAppProtocolReq":
                    from iso15118.session.services import NS_AC

                    sap = m.SupportedAppProtocolReq(app_protocol=[m.AppProtocol(
                        protocol_namespace=NS_AC, version_number_major=1, version_number_minor=0, schema_id=1, priority=1)])
                    await secc.send(0x8001, m.encode(sap))
                    st.__dict__["swallow"] = True
                if msg is not None and msg.ELEMENT[1] == "supportedAppProtocolReq":
                    st.__dict__["sap"] = True
                if msg is None and self.die_on_malformed:
                    self.close()  # a crash on bad input: the charger is out of service
                if msg is not None:
                    st.last_request = msg
                    name = msg.ELEMENT[1]
                    if st.stopped and self.after_stop:
                        from iso15118.session.secc import minimal_response

                        hdr = getattr(msg, "header", None) or m.MessageHeader(session_id=st.sid or bytes(8), time_stamp=0)
                        res = minimal_response(name, dataclasses.replace(hdr, session_id=st.sid or hdr.session_id), RC.OK)
                        await ev_side.send(0x8002 if f.payload_type == 0x8002 else f.payload_type, m.encode(res))
                        continue
                    changed = msg
                    if self.accept_wrong_session and st.sid is not None and name not in ("supportedAppProtocolReq", "SessionSetupReq") \
                            and msg.header.session_id != st.sid:
                        changed = dataclasses.replace(msg, header=dataclasses.replace(msg.header, session_id=st.sid))
                    if self.up is not None:
                        changed = self.up(st, name, changed)
                    if changed is not msg:
                        self.rewrites += 1
                        payload = m.encode(changed)
                await secc.send(pt, payload)

        async def down() -> None:  # SECC -> EV
            while True:
                f = await secc.recv()
                payload = f.payload
                msg = self._decode(f.payload_type, payload)
                if st.__dict__.pop("swallow", False) and msg is not None and msg.ELEMENT[1] == "supportedAppProtocolRes":
                    st.__dict__["sap"] = True
                    continue
                if msg is not None:
                    name = msg.ELEMENT[1]
                    if name == "SessionSetupRes":
                        st.sid = msg.header.session_id
                    if name == "SessionStopRes":
                        st.stopped = True
                    if name.endswith("ChargeLoopRes") and self.loop_delay:
                        self.delayed += 1
                        await asyncio.sleep(self.loop_delay)
                    if name in self.delays:
                        self.delayed += 1
                        await asyncio.sleep(self.delays[name])
                    if self.down is not None:
                        new = self.down(st, name, msg)
                        if new is None:
                            continue
                        if new is not msg:
                            self.rewrites += 1
                            payload = m.encode(new) if not isinstance(new, bytes) else new
                    if self.stale and name not in ("supportedAppProtocolRes", "SessionSetupRes"):
                        prev, st.last_response = st.last_response, (f.payload_type, payload)
                        if prev is not None:
                            await ev_side.send(*prev)
                            continue
                await ev_side.send(f.payload_type, payload)

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if self.never_close and not ev_side.closed:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                try:  # the SECC ended the session; the charger keeps the line open anyway
                    async with asyncio.timeout(120):
                        while True:
                            await ev_side.recv()
                except (TimeoutError, ConnectionClosed, V2GTPError, ConnectionError, asyncio.IncompleteReadError):
                    pass
        except (ConnectionClosed, V2GTPError, ConnectionError):
            pass
        finally:
            for t in tasks:
                t.cancel()
            await secc.aclose()
            if not self.never_close:
                await ev_side.aclose()


def _code(res: Any, code: Any) -> Any:
    return dataclasses.replace(res, response_code=code)


def always_ok(st: ProxyState, name: str, res: Any) -> Any:
    code = getattr(res, "response_code", None)
    if name == "supportedAppProtocolRes" and code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION:
        req = st.last_request
        sid = req.app_protocol[0].schema_id if req is not None and getattr(req, "app_protocol", None) else 1
        return dataclasses.replace(res, response_code=m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION, schema_id=sid)
    if code is not None and (code.value.startswith("FAILED") or code.value.startswith("WARNING")):
        return _code(res, RC.OK)
    return res


def auth_mode_mismatch(st: ProxyState, name: str, res: Any) -> Any:
    """Offers EIM only but sends the PnC mode element (a GenChallenge nobody asked for)."""
    if name == "AuthorizationSetupRes" and res.response_code is RC.OK and isinstance(res.authorization_mode, m.EIMASResAuthorizationMode):
        return dataclasses.replace(res, authorization_mode=m.PnCASResAuthorizationMode(gen_challenge=os.urandom(16)))
    return res


def auth_warning(st: ProxyState, name: str, res: Any) -> Any:
    if name == "AuthorizationRes" and res.response_code is RC.OK:
        return _code(res, RC.WARNING_EIM_AUTHORIZATION_FAILURE)
    return res


def duplicate_tuples(st: ProxyState, name: str, res: Any) -> Any:
    cm = getattr(res, "control_mode", None)
    if name == "ScheduleExchangeRes" and isinstance(cm, m.ScheduledSEResControlMode) and cm.schedule_tuple:
        return dataclasses.replace(res, control_mode=dataclasses.replace(cm, schedule_tuple=[cm.schedule_tuple[0]] * 2))
    return res


def scheduled_for_dynamic(st: ProxyState, name: str, res: Any) -> Any:
    """Answers a Dynamic ScheduleExchange with a Scheduled element."""
    cm = getattr(res, "control_mode", None)
    if name == "ScheduleExchangeRes" and isinstance(cm, m.DynamicSEResControlMode):
        entry = m.PowerScheduleEntry(duration=3600, power=m.RationalNumber(exponent=0, value=7000))
        tup = m.ScheduleTuple(schedule_tuple_id=1, charging_schedule=m.ChargingSchedule(power_schedule=m.PowerSchedule(
            time_anchor=0, power_schedule_entries=m.PowerScheduleEntryList(power_schedule_entry=[entry]))))
        return dataclasses.replace(res, control_mode=m.ScheduledSEResControlMode(schedule_tuple=[tup]))
    return res


def extra_services(st: ProxyState, name: str, res: Any) -> Any:
    """Appends the other family's services to every offer, whatever the EV asked for."""
    if name == "ServiceDiscoveryRes" and res.response_code is RC.OK:
        ids = [s.service_id for s in res.energy_transfer_service_list.service]
        other = [2, 6] if any(i in (1, 5) for i in ids) else [1, 5]
        extra = [m.Service(service_id=i, free_service=False) for i in other if i not in ids]
        return dataclasses.replace(res, energy_transfer_service_list=dataclasses.replace(
            res.energy_transfer_service_list, service=[*res.energy_transfer_service_list.service, *extra][:8]))
    return res


def sloppy_service_detail(st: ProxyState, name: str, res: Any) -> Any:
    """Parameter sets duplicated (same ID) and stripped of BPTChannel / GeneratorMode."""
    if name == "ServiceDetailRes" and res.response_code is RC.OK:
        sets = [dataclasses.replace(ps, parameter=[p for p in ps.parameter if p.name not in ("BPTChannel", "GeneratorMode")])
                for ps in res.service_parameter_list.parameter_set]
        sets = [*sets, sets[0]][:32]
        return dataclasses.replace(res, service_parameter_list=dataclasses.replace(res.service_parameter_list, parameter_set=sets))
    return res


def refuses_selection(st: ProxyState, name: str, res: Any) -> Any:
    if name == "ServiceSelectionRes" and res.response_code is RC.OK:
        return _code(res, RC.FAILED_SERVICE_SELECTION_INVALID)
    return res


def refuses_early_stop(st: ProxyState, name: str, res: Any) -> Any:
    if name == "ServiceDiscoveryRes":
        st.__dict__["discovered"] = True
    if name == "SessionStopRes" and res.response_code is RC.OK and not st.__dict__.get("discovered"):
        return _code(res, RC.FAILED_SEQUENCE_ERROR)
    return res


def ignores_sequence(st: ProxyState, name: str, res: Any) -> Any:
    code = getattr(res, "response_code", None)
    return _code(res, RC.OK) if code is RC.FAILED_SEQUENCE_ERROR else res


def wrong_codes(st: ProxyState, name: str, res: Any) -> Any:
    swap = {RC.FAILED_UNKNOWN_SESSION: RC.FAILED_SEQUENCE_ERROR, RC.FAILED_SEQUENCE_ERROR: RC.FAILED_UNKNOWN_SESSION,
            RC.FAILED_WRONG_CHARGE_PARAMETER: RC.FAILED, RC.FAILED_SERVICE_SELECTION_INVALID: RC.FAILED,
            RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED: RC.FAILED, RC.FAILED_SCHEDULE_SELECTION_INVALID: RC.FAILED,
            RC.FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED: RC.FAILED}
    code = getattr(res, "response_code", None)
    if code in swap:
        return _code(res, swap[code])
    if name == "supportedAppProtocolRes" and code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION:
        return res  # SAP has its own code list
    return res


def hardcoded_schema(st: ProxyState, name: str, res: Any) -> Any:
    if name == "supportedAppProtocolRes" and res.schema_id is not None:
        return dataclasses.replace(res, schema_id=1)
    return res


def pnc_over_tcp(st: ProxyState, name: str, res: Any) -> Any:
    if name == "AuthorizationSetupRes" and res.response_code is RC.OK:
        return dataclasses.replace(res, authorization_services=[m.Authorization.EIM, m.Authorization.PNC],
                                   authorization_mode=m.PnCASResAuthorizationMode(gen_challenge=os.urandom(16)))
    return res


def empty_evseid(st: ProxyState, name: str, res: Any) -> Any:
    return dataclasses.replace(res, evse_id="") if name == "SessionSetupRes" else res


def cpd_understates(st: ProxyState, name: str, res: Any) -> Any:
    if name.endswith("ChargeParameterDiscoveryRes") and res.response_code is RC.OK:
        mode = res.energy_transfer_mode
        return dataclasses.replace(res, energy_transfer_mode=dataclasses.replace(
            mode, evse_maximum_charge_power=m.RationalNumber(exponent=0, value=1000)))
    return res


def odd_frequency(st: ProxyState, name: str, res: Any) -> Any:
    if name == "AC_ChargeParameterDiscoveryRes" and res.response_code is RC.OK:
        mode = res.energy_transfer_mode
        return dataclasses.replace(res, energy_transfer_mode=dataclasses.replace(
            mode, evse_nominal_frequency=m.RationalNumber(exponent=0, value=55)))
    return res


def meter_backwards(st: ProxyState, name: str, res: Any) -> Any:
    if name.endswith("ChargeLoopRes") and getattr(res, "meter_info", None) is not None:
        st.__dict__["n"] = st.__dict__.get("n", 0) + 1
        mi = res.meter_info
        return dataclasses.replace(res, meter_info=dataclasses.replace(
            mi, charged_energy_reading_wh=max(0, 100000 - 7 * st.__dict__["n"])))
    return res


def false_renegotiation_claim(st: ProxyState, name: str, res: Any) -> Any:
    if name == "ServiceDiscoveryRes" and res.response_code is RC.OK:
        return dataclasses.replace(res, service_renegotiation_supported=True)
    return res


def strict_minor(st: ProxyState, name: str, res: Any) -> Any:
    req = st.last_request
    if name == "supportedAppProtocolRes" and req is not None and any(p.version_number_minor > 0 for p in req.app_protocol):
        return dataclasses.replace(res, response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION, schema_id=None)
    return res


def inconsistent_dc_cpd(st: ProxyState, name: str, res: Any) -> Any:
    if name == "DC_ChargeParameterDiscoveryRes" and res.response_code is RC.OK:
        md = res.energy_transfer_mode
        return dataclasses.replace(res, energy_transfer_mode=dataclasses.replace(
            md, evse_minimum_voltage=md.evse_maximum_voltage, evse_maximum_voltage=md.evse_minimum_voltage))
    return res


def echo_session_id(st: ProxyState, name: str, res: Any) -> Any:
    """Answers with the SessionID of the request (whatever it was)."""
    req = st.last_request
    if req is not None and getattr(req, "header", None) is not None and name not in ("SessionSetupRes", "supportedAppProtocolRes"):
        if getattr(res, "header", None) is not None and res.header.session_id != req.header.session_id:
            return dataclasses.replace(res, header=dataclasses.replace(res.header, session_id=req.header.session_id),
                                       response_code=RC.OK) if res.response_code is RC.FAILED_UNKNOWN_SESSION else res
    return res


# ============================================================================ the SECC defect catalogue


@dataclass(frozen=True)
class Defect:
    name: str
    what: str
    cases: tuple[str, ...] = ("TC_SECC_*",)
    """Case-ID globs that can catch it (the matrix runs only these; dead/silent/random: all)."""
    tls: bool = False
    profile: str = "wall-connector"


def _glob(*ids: str) -> tuple[str, ...]:
    return ids


NEG_CODES = _glob("TC_SECC_SAP_00[25]", "TC_SECC_SessionSetup_00[456]", "TC_SECC_Authorization_00[456]",
                  "TC_SECC_ServiceSelection_00[234]", "TC_SECC_ChargeParameterDiscovery_00[234]",
                  "TC_SECC_ScheduleExchange_00[34]", "TC_SECC_PowerDelivery_00[2345]", "TC_SECC_ChargeLoop_00[46]",
                  "TC_SECC_SessionStop_00[35]", "TC_SECC_DC_CableCheck_002", "TC_SECC_DC_PreCharge_002",
                  "TC_SECC_DC_WeldingDetection_002", "TC_SECC_ServiceDetail_*")
REFUSALS = _glob("TC_SECC_SAP_006", "TC_SECC_V2GTP_00[12356]", "TC_SECC_DC_CableCheck_003", "TC_SECC_SessionStop_00[15]",
                 "TC_SECC_ChargeParameterDiscovery_003")

SECC_DEFECTS: dict[str, Defect] = {d.name: d for d in (
    Defect("dead-port", "nothing listening on the port"),
    Defect("silent-after-accept", "accepts TCP connections, never answers"),
    Defect("random-exi", "answers every frame with random bytes"),
    Defect("stale-answers", "answers each request with the previous response", _glob("TC_SECC_*")),
    Defect("always-ok", "every FAILED and WARNING code rewritten to OK", NEG_CODES),
    Defect("ignores-sequence", "FAILED_SequenceError rewritten to OK", NEG_CODES),
    Defect("ignores-session-id", "a wrong SessionID is replaced by the right one and accepted",
           _glob("TC_SECC_*SessionSetup_00[45]", "TC_SECC_*_00[46]", "TC_SECC_ChargeParameterDiscovery_004")),
    Defect("echoes-session-id", "answers with the request's SessionID and OK", _glob("TC_SECC_SessionSetup_00[45]",
                                                                                   "TC_SECC_Authorization_006")),
    Defect("wrong-response-codes", "FAILED codes swapped (UnknownSession <-> SequenceError, specific -> FAILED)", NEG_CODES),
    Defect("late-loop-answers", "every ChargeLoopRes 0.7 s late (limit 0.5 s)", _glob("TC_SECC_*ChargeLoop*", "TC_SECC_Timing_00[14]",
                                                                                      "TC_SECC_WC_Power_001")),
    Defect("late-session-setup", "SessionSetupRes 2.5 s late (limit 2 s)", _glob("TC_SECC_*")),
    Defect("limits-exceeded", "delivers 130 % of the EV's limits", _glob("TC_SECC_*ChargeLoop_00[1237]", "TC_SECC_WC_*",
                                                                        "TC_SECC_Timing_001", "TC_SECC_PowerDelivery_001")),
    Defect("power-on-after-abort", "output stays on after an aborted session", _glob("TC_SECC_*", )),
    Defect("ignores-derate", "keeps the EV limits of the first loop", _glob("TC_SECC_WC_Derate_*", "TC_SECC_WC_Reserve_*",
                                                                           "TC_SECC_DC_BPT_Derate_001")),
    Defect("standby-power", "keeps delivering in Standby", _glob("TC_SECC_PowerDelivery_006")),
    Defect("precharge-overshoot", "pre-charge follows targets above EVSEMaximumVoltage", _glob("TC_SECC_DC_P*"),
           profile="dc-bidi"),
    Defect("dc-late-session-setup", "DC charger: SessionSetupRes 2.5 s late (limit 2 s)", _glob("TC_SECC_DC_*"), profile="dc-bidi"),
    Defect("no-welding-discharge", "DC output stays charged after Stop", _glob("TC_SECC_DC_WeldingDetection_001"), profile="dc-bidi"),
    Defect("hardcoded-schema-id", "SupportedAppProtocolRes always SchemaID 1", _glob("TC_SECC_SAP_*")),
    Defect("keeps-answering-after-stop", "answers OK to anything after SessionStop", _glob("TC_SECC_SessionStop_*")),
    Defect("never-closes", "keeps the connection open after the session ended", REFUSALS + _glob("TC_SECC_Timing_002")),
    Defect("pnc-over-tcp", "offers PnC over plain TCP", _glob("TC_SECC_Authorization_*")),
    Defect("empty-evseid", "SessionSetupRes without an EVSEID", _glob("TC_SECC_SessionSetup_00[13]")),
    Defect("cpd-understates-limits", "declares 1 kW in CPD, delivers more in the loop", _glob("TC_SECC_*ChargeLoop_00[1237]")),
    Defect("odd-grid-frequency", "declares a 55 Hz grid", _glob("TC_SECC_AC_BPT_*")),
    Defect("meter-backwards", "meter readings decrease", _glob("TC_SECC_ChargeLoop_005", "TC_SECC_*ChargeLoop_003",
                                                               "TC_SECC_WC_Abort_007", "TC_SECC_WC_Reserve_001")),
    Defect("auth-mode-mismatch", "offers EIM only with the PnC mode element", _glob("TC_SECC_Authorization_00[13]")),
    Defect("auth-warning", "every EIM authorization answered WARNING_EIMAuthorizationFailure", _glob("TC_SECC_Authorization_003")),
    Defect("duplicate-schedule-tuples", "two ScheduleTuples with the same ID", _glob("TC_SECC_ScheduleExchange_*")),
    Defect("scheduled-for-dynamic", "answers a Dynamic ScheduleExchange with a Scheduled element", _glob("TC_SECC_ScheduleExchange_*")),
    Defect("extra-services", "offers the other family's services too, ignoring SupportedServiceIDs",
           _glob("TC_SECC_ServiceDiscovery_*")),
    Defect("sloppy-service-detail", "parameter sets duplicated and without BPTChannel / GeneratorMode", _glob("TC_SECC_ServiceDetail_*")),
    Defect("refuses-selection", "refuses every ServiceSelection", _glob("TC_SECC_ServiceSelection_*")),
    Defect("refuses-early-stop", "refuses SessionStop before ServiceDiscovery", _glob("TC_SECC_SessionStop_*")),
    Defect("false-renegotiation-claim", "advertises ServiceRenegotiation and refuses it", _glob("TC_SECC_SessionStop_004")),
    Defect("dies-after-malformed", "stops accepting connections after a malformed frame", _glob("TC_SECC_V2GTP_00[1236]")),
    Defect("no-reassembly", "drops a frame that arrives in two TCP segments", _glob("TC_SECC_V2GTP_004")),
    Defect("fixed-session-id", "the same SessionID for every session", _glob("TC_SECC_SessionSetup_00[23]")),
    Defect("resumes-any-ev", "a paused session can be joined by any EV", _glob("TC_SECC_PauseResume_*")),
    Defect("never-resumes", "paused sessions are forgotten", _glob("TC_SECC_PauseResume_*")),
    Defect("no-idle-timeout", "never closes an idle connection", _glob("TC_SECC_Timing_002")),
    Defect("no-sequence-timeout", "never ends a session whose EV went silent", _glob("TC_SECC_WC_Abort_005")),
    Defect("short-sequence-timeout", "ends the session after 2 s without a request", _glob("TC_SECC_Timing_004")),
    Defect("accepts-tls12", "accepts TLS 1.2 as well as 1.3", _glob("TC_SECC_TLS_*"), tls=True),
    Defect("wrong-dc-chain", "presents a SECC leaf with DomainComponent OEM", _glob("TC_SECC_TLS_001"), tls=True),
    Defect("power-on-after-tls-abort", "output stays on after a TLS session broke", _glob("TC_SECC_WC_Abort_004"), tls=True),
    Defect("strict-minor-version", "refuses a higher minor version of -20", _glob("TC_SECC_SAP_*")),
    Defect("accepts-setup-first", "accepts SessionSetupReq without SupportedAppProtocol", _glob("TC_SECC_SAP_006")),
    Defect("lenient-payload-type", "processes a message sent under the wrong payload type",
           _glob("TC_SECC_V2GTP_005", "TC_SECC_DC_CableCheck_003"), profile="dc-bidi"),
    Defect("dc-ignores-sequence", "DC: FAILED_SequenceError rewritten to OK", _glob("TC_SECC_DC_*"), profile="dc-bidi"),
    Defect("dc-ignores-derate", "DC: keeps the EV limits of the first loop", _glob("TC_SECC_DC_BPT_Derate_001"), profile="dc-bidi"),
    Defect("dc-inconsistent-cpd", "DC CPD with minimum voltage above maximum", _glob("TC_SECC_DC_BPT_*"), profile="dc-bidi"),
    Defect("precharge-stuck", "pre-charge output stays at 0 V", _glob("TC_SECC_DC_PreCharge_001"), profile="dc-bidi"),
    Defect("late-cable-check", "DC_CableCheckRes 2.5 s late (limit 2 s)", _glob("TC_SECC_DC_CableCheck_001"), profile="dc-bidi"),
    Defect("accepts-missing-client-cert", "no client certificate required", _glob("TC_SECC_TLS_*"), tls=True),
    Defect("accepts-untrusted-client-cert", "trusts an extra (rogue) root for client certificates", _glob("TC_SECC_TLS_*"), tls=True),
    Defect("plain-on-tls-port", "speaks plain V2GTP on the TLS port too", _glob("TC_SECC_TLS_*"), tls=True),
)}

ZERO_PASS = ("dead-port", "silent-after-accept", "random-exi")
"""These must pass no case of the whole SECC catalogue, and the campaign must exit non-zero."""


async def start_secc_defect(name: str, pki_dir: Any = None) -> tuple[Any, Callable[[], None]]:
    """Start the defective charger ``name``; returns its :class:`~conformance.sut.SutEndpoint` and
    a close function.  TLS defects need ``pki_dir`` (a PKI whose root the tester trusts)."""
    from conformance.local import start_local_secc
    from conformance.sut import SutEndpoint
    from iso15118.session import rules
    from iso15118.session.secc import SeccConfig, SessionStore

    d = SECC_DEFECTS[name]
    closers: list[Callable[[], None]] = []
    kw: dict[str, Any] = {"evse_kwargs": {"home_load_w": 11520.0}} if d.profile == "wall-connector" else {}

    def done() -> None:
        for c in closers:
            c()

    if name == "dead-port":
        port = await dead_port()
        return SutEndpoint("::1", port, name=f"defect:{name}", info=_info(d.profile), connect_timeout=2.0), done
    if name in ("silent-after-accept", "random-exi"):
        srv: Any = SilentServer() if name == "silent-after-accept" else RandomExiServer()
        port = await srv.start()
        closers.append(srv.close)
        return SutEndpoint("::1", port, name=f"defect:{name}", info=_info(d.profile), connect_timeout=2.0), done

    wrap: Any = {"power-on-after-abort": PowerOnAfterAbort, "ignores-derate": IgnoreDerate, "limits-exceeded": LimitsExceeded,
                 "power-on-after-tls-abort": PowerOnAfterAbort, "dc-ignores-derate": IgnoreDerate, "precharge-stuck": PreChargeStuck,
                 "standby-power": StandbyPower, "precharge-overshoot": PreChargeOvershoot,
                 "no-welding-discharge": NoWeldingDischarge}.get(name)
    cfg = SeccConfig()
    if name == "fixed-session-id":
        cfg = SeccConfig(session_id_factory=lambda: bytes.fromhex("0102030405060708"))
    elif name in ("resumes-any-ev", "never-resumes"):
        any_ev, forgetful = _store_classes()
        cfg = SeccConfig(store=any_ev() if name == "resumes-any-ev" else forgetful())
    elif name == "no-idle-timeout":
        cfg = SeccConfig(timers=dataclasses.replace(rules.TIMERS, secc_first_message=3600.0))
    elif name == "no-sequence-timeout":
        cfg = SeccConfig(timers=dataclasses.replace(rules.TIMERS, secc_sequence=3600.0))
    elif name == "short-sequence-timeout":
        cfg = SeccConfig(timers=dataclasses.replace(rules.TIMERS, secc_sequence=2.0))
    elif name == "false-renegotiation-claim":
        cfg = SeccConfig(service_renegotiation_supported=False)
    _ = SessionStore

    tls_ctx = None
    if d.tls:
        tls_ctx = _defect_tls_context(name, pki_dir)
    loc = await start_local_secc(d.profile, tls=tls_ctx, wrap=wrap, config=cfg, **kw)
    closers.append(loc.close)
    sut = loc.endpoint(jobs=4, pki_dir=pki_dir)
    sut.name = f"defect:{name}"
    proxy_table: dict[str, dict[str, Any]] = {
        "stale-answers": {"stale": True},
        "always-ok": {"down": always_ok},
        "ignores-sequence": {"down": ignores_sequence},
        "ignores-session-id": {"accept_wrong_session": True},
        "echoes-session-id": {"down": echo_session_id},
        "wrong-response-codes": {"down": wrong_codes},
        "late-loop-answers": {"loop_delay": 0.7},
        "late-session-setup": {"delays": {"SessionSetupRes": 2.5}},
        "dc-late-session-setup": {"delays": {"SessionSetupRes": 2.5}},
        "hardcoded-schema-id": {"down": hardcoded_schema},
        "keeps-answering-after-stop": {"after_stop": True},
        "never-closes": {"never_close": True},
        "pnc-over-tcp": {"down": pnc_over_tcp},
        "empty-evseid": {"down": empty_evseid},
        "cpd-understates-limits": {"down": cpd_understates},
        "odd-grid-frequency": {"down": odd_frequency},
        "meter-backwards": {"down": meter_backwards},
        "false-renegotiation-claim": {"down": false_renegotiation_claim},
        "dies-after-malformed": {"die_on_malformed": True},
        "strict-minor-version": {"down": strict_minor},
        "auth-mode-mismatch": {"down": auth_mode_mismatch},
        "auth-warning": {"down": auth_warning},
        "duplicate-schedule-tuples": {"down": duplicate_tuples},
        "scheduled-for-dynamic": {"down": scheduled_for_dynamic},
        "extra-services": {"down": extra_services},
        "sloppy-service-detail": {"down": sloppy_service_detail},
        "refuses-selection": {"down": refuses_selection},
        "refuses-early-stop": {"down": refuses_early_stop},
        "accepts-setup-first": {"auto_sap": True},
        "lenient-payload-type": {"fix_payload_type": True},
        "dc-ignores-sequence": {"down": ignores_sequence},
        "dc-inconsistent-cpd": {"down": inconsistent_dc_cpd},
        "late-cable-check": {"delays": {"DC_CableCheckRes": 2.5}},
    }
    proxy_kw = proxy_table.get(name)
    if proxy_kw is not None:
        p = DefectProxy(loc.server.port, **proxy_kw)
        sut.port = await p.start()
        closers.append(p.close)
    elif name == "no-reassembly":
        nr = NoReassembly(loc.server.port)
        sut.port = await nr.start()
        closers.append(nr.close)
    elif name == "plain-on-tls-port":
        plain = await start_local_secc(d.profile, **kw)
        closers.append(plain.close)
        ds = DualStackPort(loc.server.port, plain.server.port)
        sut.port = await ds.start()
        closers.append(ds.close)
    return sut, done


def _info(profile: str) -> Any:
    from conformance.local import profile_services
    from conformance.sut import SutInfo

    return SutInfo(profile_services(profile), source="profile")


def _store_classes() -> tuple[type[Any], type[Any]]:
    from iso15118.session.secc import SessionStore

    class AnyEvStore(SessionStore):
        """A session store that lets any EV join a paused session."""

        def take(self, session_id: bytes, evcc_id: str, now: float, peer_certificate: str | None = None) -> Any:
            rec = self._records.get(session_id)
            return None if rec is None else super().take(session_id, rec.evcc_id, now, peer_certificate)

    class ForgetfulStore(SessionStore):
        """A session store that forgets every paused session."""

        def put(self, record: Any) -> None:
            pass

    return AnyEvStore, ForgetfulStore


class NoReassembly(_Server):
    """Forwards to the SECC, but treats every TCP read as one whole frame: a split frame is dropped
    together with the connection."""

    def __init__(self, target: int) -> None:
        self.target = target

    async def start(self) -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            ur, uw = await asyncio.open_connection("::1", self.target)

            async def upstream() -> None:
                try:
                    while data := await r.read(65536):
                        if len(data) < 8 or len(data) < 8 + int.from_bytes(data[4:8], "big"):
                            break  # "incomplete frame": the defect
                        uw.write(data)
                        await uw.drain()
                except OSError:
                    pass
                finally:
                    uw.close()
                    w.close()

            async def downstream() -> None:
                try:
                    while data := await ur.read(65536):
                        w.write(data)
                        await w.drain()
                except OSError:
                    pass
                finally:
                    w.close()

            await asyncio.gather(upstream(), downstream())

        self.server = await asyncio.start_server(handle, "::1", 0)
        return self.port


def _defect_tls_context(name: str, pki_dir: Any) -> ssl.SSLContext:
    from conformance.cases.transport_tls_timing import _rogue_pki
    from iso15118.security.pki import load_pki
    from iso15118.security.tls import secc_context_from_pki

    if pki_dir is None:
        raise ValueError("TLS defects need the PKI the tester uses")
    paths = load_pki(pki_dir).paths
    ctx = secc_context_from_pki(paths)
    if name == "wrong-dc-chain":
        return _wrong_dc_context(pki_dir)
    if name == "accepts-tls12":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        try:
            ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256")
        except ssl.SSLError:
            pass
    elif name == "accepts-missing-client-cert":
        ctx.verify_mode = ssl.CERT_OPTIONAL
    elif name == "accepts-untrusted-client-cert":
        rogue = load_pki(_rogue_pki(load_pki(pki_dir).algorithm.value))
        ctx.load_verify_locations(cafile=str(rogue.paths.cert("v2gRootCA")))
    return ctx


def _wrong_dc_context(pki_dir: Any) -> ssl.SSLContext:
    import tempfile
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from iso15118.security.pki import Profile, issue_certificate, load_pki

    pki = load_pki(pki_dir)
    key: Any = pki.algorithm.generate_key()
    leaf = issue_certificate(cn="SECCWRONGDC", dc="OEM", profile=Profile.SECC, key=key, issuer=pki.issued("cpoSubCA2"), days=30)
    d = Path(tempfile.mkdtemp(prefix="defect-wrong-dc-"))
    chain = [leaf, pki.cert("cpoSubCA2"), pki.cert("cpoSubCA1")]
    (d / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(d / "chain.pem", d / "key.pem")
    ctx.load_verify_locations(cafile=str(pki.paths.cert("v2gRootCA")))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ============================================================================ EVCC defects


@dataclass(frozen=True)
class EvccDefect:
    name: str
    what: str
    cases: tuple[str, ...] = ("TC_EVCC_*",)
    tls: bool = False


EVCC_DEFECTS: dict[str, EvccDefect] = {d.name: d for d in (
    EvccDefect("ignores-failed", "acts on responses with FAILED codes as if they were OK"),
    EvccDefect("ignores-session-id", "accepts responses with another SessionID", _glob("TC_EVCC_SessionSetup_*")),
    EvccDefect("no-timeouts", "waits for ever for late or missing responses",
               _glob("TC_EVCC_*Timing_*", "TC_EVCC_SAP_00[56]", "TC_EVCC_Authorization_008")),
    EvccDefect("strict-timeouts", "gives up after half of every message timeout", _glob("TC_EVCC_Timing_003", "TC_EVCC_ChargeLoop_006")),
    EvccDefect("ignores-targets", "draws its own maximum whatever the charger's target",
               _glob("TC_EVCC_ChargeLoop_*", "TC_EVCC_BPT_*", "TC_EVCC_ScheduleExchange_003")),
    EvccDefect("exceeds-own-limits", "draws above its own declared maximum",
               _glob("TC_EVCC_ChargeLoop_*", "TC_EVCC_BPT_*", "TC_EVCC_ScheduleExchange_003")),
    EvccDefect("implausible-values", "minimum limits above the maxima, a control character in the EVCCID"),
    EvccDefect("ignores-notifications", "never reacts to EVSENotification",
               _glob("TC_EVCC_Notification_*", "TC_EVCC_ServiceRenegotiation_*")),
    EvccDefect("bad-sap-offer", "duplicate SchemaIDs in its SAP offer", _glob("TC_EVCC_SAP_*")),
    EvccDefect("rejects-minor-deviation", "treats a minor-version negotiation as a failure", _glob("TC_EVCC_SAP_*")),
    EvccDefect("nonzero-first-session-id", "first SessionSetupReq with a random SessionID", _glob("TC_EVCC_SessionSetup_*")),
    EvccDefect("wrong-auth-selection", "selects the authorization service that was not offered", _glob("TC_EVCC_Authorization_*")),
    EvccDefect("gives-up-ongoing", "ends the session on the first Ongoing",
               _glob("TC_EVCC_Authorization_00[18]", "TC_EVCC_ScheduleExchange_004")),
    EvccDefect("non-bpt-elements", "non-BPT CPD element and no BPT_ChannelSelection on a BPT service",
               _glob("TC_EVCC_ChargeParameterDiscovery_*", "TC_EVCC_BPT_*")),
    EvccDefect("unoffered-selection", "selects parameter sets / services it was not offered", _glob("TC_EVCC_Service*")),
    EvccDefect("no-stop-before-sessionstop", "ends the loop with SessionStop, no PowerDelivery(Stop)",
               _glob("TC_EVCC_ChargeLoop_007", "TC_EVCC_Notification_*", "TC_EVCC_ServiceRenegotiation_*")),
    EvccDefect("never-closes", "keeps TCP open 9 s after the session ended",
               _glob("TC_EVCC_Timing_005", "TC_EVCC_SAP_00[2356]", "TC_EVCC_SessionSetup_00[234]", "TC_EVCC_Authorization_00[45]",
                     "TC_EVCC_Service*_00[15]", "TC_EVCC_ServiceDetail_001", "TC_EVCC_ChargeParameterDiscovery_003",
                     "TC_EVCC_ScheduleExchange_006", "TC_EVCC_PowerDelivery_00[12]", "TC_EVCC_ChargeLoop_009",
                     "TC_EVCC_V2GTP_00[1-8]", "TC_EVCC_Timing_00[12489]")),
    EvccDefect("pipelines", "sends the next loop request without waiting for the answer", _glob("TC_EVCC_ChargeLoop_*")),
    EvccDefect("wrong-control-mode", "ScheduleExchangeReq with the other control mode's element",
               _glob("TC_EVCC_ScheduleExchange_00[12]")),
    EvccDefect("ignores-schedule", "Scheduled mode: draws 1.5 x the selected schedule", _glob("TC_EVCC_ScheduleExchange_003")),
    EvccDefect("hangs-after-loss", "hangs 12 s when the charger drops the connection", _glob("TC_EVCC_V2GTP_009")),
    EvccDefect("no-reassembly", "drops a response that arrives in two TCP segments", _glob("TC_EVCC_V2GTP_005")),
    EvccDefect("tls-anything-goes", "TLS 1.2 allowed, no chain verification", _glob("TC_EVCC_TLS_*"), tls=True),
    EvccDefect("tls-broken", "trusts the wrong root: refuses every genuine charger", _glob("TC_EVCC_TLS_001"), tls=True),
)}


def defective_evcc_launcher(name: str, *, tls_pki: Any = None) -> Callable[..., Awaitable[Any]]:
    """Our EVCC (cybertruck-awd, AC_BPT) with the defect ``name``; ``launch(host, port[, trust])``."""
    from conformance.evcc_defects import launcher

    return launcher(name, tls_pki=tls_pki)
