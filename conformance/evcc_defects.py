"""Deliberately defective vehicles: our EVCC core, unmodified, driven through a loop that puts one
defect in -- on the wire (outgoing requests rewritten, incoming responses doctored before the
core sees them), in the controller (the vehicle's power electronics and limits), in the
configuration (timeouts), or in the transport (never closes, no reassembly, TLS checks off).
Only the public API of :class:`~iso15118.session.evcc.EvccSession` is used."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from conformance.delegate import Delegating
from iso15118 import messages as m
from iso15118.session.events import SendMessage, SessionEnded
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, open_connection
from iso15118.transport.v2gtp import V2GTPError, schema_key_for

RC = m.ResponseCode


_EvWrap = Delegating


class IgnoresTargets(_EvWrap):
    """Draws its own maximum whatever the charger's target says."""

    def apply(self, now: float, ctx: Any, result: Any) -> None:
        lim = self.inner.limits(now, ctx.service)
        self.inner.apply(now, ctx, dataclasses.replace(result, target_power=lim.max_charge_power))


class ExceedsOwnLimits(_EvWrap):
    """Declares half of what it then draws."""

    def limits(self, now: float, service: Any) -> Any:
        lim = self.inner.limits(now, service)
        return dataclasses.replace(lim, max_charge_power=lim.max_charge_power / 2, max_charge_current=lim.max_charge_current / 2)

    def loop_status(self, now: float, ctx: Any) -> Any:
        st = self.inner.loop_status(now, ctx)
        return dataclasses.replace(st, limits=self.limits(now, ctx.service))

    def apply(self, now: float, ctx: Any, result: Any) -> None:
        self.inner.apply(now, ctx, result)
        full = self.inner.limits(now, ctx.service).max_charge_power
        if float(result.target_power) >= 0:
            self.inner.power_w = float(full)


class ImplausibleValues(_EvWrap):
    """Minimum limits above the maxima and a control character in the EVCCID."""

    @property
    def evcc_id(self) -> str:
        return "WMI\x07IMPLAUSIBLE"

    def limits(self, now: float, service: Any) -> Any:
        lim = self.inner.limits(now, service)
        return dataclasses.replace(lim, min_charge_power=lim.max_charge_power + 1000,
                                   min_discharge_power=lim.max_discharge_power + 1000)

    def energy_request(self, now: float) -> Any:
        e = self.inner.energy_request(now)
        return dataclasses.replace(e, min_wh=e.max_wh + 1000)

    def loop_status(self, now: float, ctx: Any) -> Any:
        st = self.inner.loop_status(now, ctx)
        return dataclasses.replace(st, limits=self.limits(now, ctx.service), energy=self.energy_request(now))


class IgnoresSchedule(_EvWrap):
    """Scheduled mode: draws 1.5 x the selected schedule."""

    def loop_status(self, now: float, ctx: Any) -> Any:
        st = self.inner.loop_status(now, ctx)
        if ctx.schedule is not None and st.target_power is not None and ctx.schedule.charge_power > 0:
            p = ctx.schedule.charge_power * Decimal("1.5")
            return dataclasses.replace(st, target_power=p, present_power=p)
        return st


def _decode(pt: int, payload: bytes) -> Any:
    try:
        key = schema_key_for(pt)
        return m.decode(payload, key) if key else None  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------ response doctoring (before the core)


def _ok_instead_of_failed(msg: Any) -> Any:
    code = getattr(msg, "response_code", None)
    if isinstance(msg, m.SupportedAppProtocolRes) and code is m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION:
        return dataclasses.replace(msg, response_code=m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION, schema_id=1)
    if code is not None and code.value.startswith("FAILED"):
        return dataclasses.replace(msg, response_code=RC.OK)
    return msg


def _no_notifications(msg: Any) -> Any:
    st = getattr(msg, "evse_status", None)
    if st is not None:
        return dataclasses.replace(msg, evse_status=None)
    return msg


def _reject_minor(msg: Any) -> Any:
    if isinstance(msg, m.SupportedAppProtocolRes) and \
            msg.response_code is m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION:
        return dataclasses.replace(msg, response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION, schema_id=None)
    return msg


# ------------------------------------------------------------------ request rewriting (after the core)


def _bad_sap(msg: Any) -> Any:
    if isinstance(msg, m.SupportedAppProtocolReq):
        protos = [dataclasses.replace(p, schema_id=1, priority=1) for p in msg.app_protocol]
        dup = dataclasses.replace(protos[0], protocol_namespace="urn:iso:std:iso:15118:-2:2013:MsgDef", version_number_major=2)
        return dataclasses.replace(msg, app_protocol=[*protos, dup])
    return msg


def _flip_auth(msg: Any) -> Any:
    if isinstance(msg, m.SessionStopReq) and "not offered" in (msg.ev_termination_explanation or ""):
        return m.AuthorizationReq(header=msg.header, selected_authorization_service=m.Authorization.PNC,
                                  authorization_mode=m.EIMAReqAuthorizationMode())
    if isinstance(msg, m.AuthorizationReq):
        other = m.Authorization.PNC if msg.selected_authorization_service is m.Authorization.EIM else m.Authorization.EIM
        return dataclasses.replace(msg, selected_authorization_service=other, authorization_mode=m.EIMAReqAuthorizationMode())
    return msg


def _non_bpt(msg: Any) -> Any:
    if isinstance(msg, m.ACChargeParameterDiscoveryReq) and isinstance(msg.energy_transfer_mode, m.BPTACCPDReqEnergyTransferMode):
        md = msg.energy_transfer_mode
        return dataclasses.replace(msg, energy_transfer_mode=m.ACCPDReqEnergyTransferMode(
            ev_maximum_charge_power=md.ev_maximum_charge_power, ev_minimum_charge_power=md.ev_minimum_charge_power))
    if isinstance(msg, m.PowerDeliveryReq) and msg.bpt_channel_selection is not None:
        return dataclasses.replace(msg, bpt_channel_selection=None)
    return msg


def _unoffered(msg: Any) -> Any:
    if isinstance(msg, m.ServiceSelectionReq):
        return dataclasses.replace(msg, selected_energy_transfer_service=dataclasses.replace(
            msg.selected_energy_transfer_service, parameter_set_id=99))
    if isinstance(msg, m.SessionStopReq) and msg.ev_termination_explanation == "no suitable energy service offered":
        return m.ServiceDetailReq(header=msg.header, service_id=1)
    if isinstance(msg, m.ServiceDetailReq):
        return dataclasses.replace(msg, service_id=6 if msg.service_id in (1, 5) else 5)
    return msg


def _swap_mode(msg: Any) -> Any:
    if isinstance(msg, m.ScheduleExchangeReq):
        if "Dynamic" in type(msg.control_mode).__name__:
            return dataclasses.replace(msg, control_mode=m.ScheduledSEReqControlMode(departure_time=7200))
        return dataclasses.replace(msg, control_mode=m.DynamicSEReqControlMode(
            departure_time=7200, ev_target_energy_request=m.RationalNumber(exponent=0, value=10000),
            ev_maximum_energy_request=m.RationalNumber(exponent=0, value=20000),
            ev_minimum_energy_request=m.RationalNumber(exponent=0, value=0)))
    return msg


def _skip_stop(msg: Any) -> Any:
    if isinstance(msg, m.PowerDeliveryReq) and msg.charge_progress is m.ChargeProgress.STOP:
        return m.SessionStopReq(header=msg.header, charging_session=m.ChargingSession.TERMINATE)
    return msg


RESPONSE_DOCTOR: dict[str, Callable[[Any], Any]] = {
    "ignores-failed": _ok_instead_of_failed,
    "ignores-notifications": _no_notifications,
    "rejects-minor-deviation": _reject_minor,
}
REQUEST_REWRITE: dict[str, Callable[[Any], Any]] = {
    "bad-sap-offer": _bad_sap,
    "wrong-auth-selection": _flip_auth,
    "non-bpt-elements": _non_bpt,
    "unoffered-selection": _unoffered,
    "no-stop-before-sessionstop": _skip_stop,
    "wrong-control-mode": _swap_mode,
}


async def run_defective_evcc(name: str, host: str, port: int, tls: ssl.SSLContext | None = None,
                             profile: str = "cybertruck-awd", loops: int = 8) -> str:
    from iso15118.session.evcc import EvccConfig, EvccSession
    from iso15118.session.services import EnergyService
    from iso15118.sim import make_ev

    ev: Any = make_ev(profile)
    ev = {"ignores-targets": IgnoresTargets, "exceeds-own-limits": ExceedsOwnLimits,
          "implausible-values": ImplausibleValues, "ignores-schedule": IgnoresSchedule}.get(name, lambda x: x)(ev)
    cfg = EvccConfig(service=EnergyService.AC_BPT, max_loops=loops, loop_interval=0.05, ongoing_interval=0.05)
    if name == "no-timeouts":
        cfg = dataclasses.replace(cfg, timeout_scale=1000.0)
    elif name == "strict-timeouts":
        cfg = dataclasses.replace(cfg, timeout_scale=0.5)
    elif name == "nonzero-first-session-id":
        cfg = dataclasses.replace(cfg, resume_session_id=os.urandom(8))
    conn = await open_connection(host, port, tls, timeout=10.0)
    if name == "slow-start":
        await asyncio.sleep(25.0)
    core = EvccSession(ev, cfg, clock=time.time, tls=conn.ssl_object is not None)
    sid_fix = name == "ignores-session-id"
    loop_reqs = 0
    ended: SessionEnded | None = None

    async def pump(events: list[Any]) -> None:
        nonlocal ended, loop_reqs
        for e in events:
            if isinstance(e, SendMessage):
                msg = e.message
                rw = REQUEST_REWRITE.get(name)
                new = rw(msg) if rw is not None else msg
                payload = e.payload if new is msg else m.encode(new)
                pt = e.payload_type
                if new is not msg and isinstance(new, (m.SessionStopReq, m.ServiceDetailReq)):
                    pt = 0x8002
                await conn.send(pt, payload)
                if e.name.endswith("ChargeLoopReq"):
                    loop_reqs += 1
                    if name == "pipelines" and loop_reqs == 2:
                        await conn.send(pt, payload)  # the next request before the answer
            elif isinstance(e, SessionEnded):
                ended = e

    try:
        await pump(core.start(time.monotonic()))
        while ended is None:
            dl = core.next_deadline()
            timeout = None if dl is None else max(0.0, dl - time.monotonic())
            try:
                f = await conn.recv(timeout=timeout)
            except TimeoutError:
                await pump(core.handle_timer(time.monotonic()))
                continue
            except (ConnectionClosed, ConnectionError, ssl.SSLError, V2GTPError, asyncio.IncompleteReadError):
                await pump(core.connection_lost(time.monotonic()))
                if name == "hangs-after-loss":
                    await asyncio.sleep(12.0)  # the vehicle's stack hangs on a lost connection
                break
            payload = f.payload
            msg = _decode(f.payload_type, payload)
            if msg is not None:
                new = msg
                doc = RESPONSE_DOCTOR.get(name)
                if doc is not None:
                    new = doc(msg)
                if sid_fix and getattr(new, "header", None) is not None and core.session_id != bytes(8) \
                        and not isinstance(new, (m.SessionSetupRes, m.SupportedAppProtocolRes)):
                    new = dataclasses.replace(new, header=dataclasses.replace(new.header, session_id=core.session_id))
                if name == "gives-up-ongoing" and getattr(getattr(new, "evse_processing", None), "value", "") == "Ongoing":
                    break  # gives up on the first Ongoing
                if new is not msg:
                    payload = m.encode(new)
            await pump(core.receive(f.payload_type, payload, time.monotonic()))
        if name == "never-closes":
            await asyncio.sleep(9.0)
    finally:
        await conn.aclose()
    return f"defective EVCC {name}: {core.end_reason or (ended.reason if ended else 'closed')}"


class _NoReassemblyForwarder:
    """Between the vehicle and the charger: a response split over two TCP reads is dropped
    together with the connection (the vehicle's defect, modelled at its socket)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            ur, uw = await asyncio.open_connection(self.host, self.port)

            async def up() -> None:
                try:
                    while data := await r.read(65536):
                        uw.write(data)
                        await uw.drain()
                except OSError:
                    pass
                finally:
                    uw.close()

            async def down() -> None:
                try:
                    while data := await ur.read(65536):
                        if len(data) < 8 or len(data) < 8 + int.from_bytes(data[4:8], "big"):
                            break
                        w.write(data)
                        await w.drain()
                except OSError:
                    pass
                finally:
                    w.close()
                    uw.close()

            await asyncio.gather(up(), down())

        self.server = await asyncio.start_server(handle, "::1", 0)
        return int(self.server.sockets[0].getsockname()[1])


def launcher(name: str, *, tls_pki: Any = None) -> Callable[..., Awaitable[Any]]:
    """``launch(host, port[, trust_dir])`` for the defective vehicle ``name``."""

    async def launch(host: str, port: int, trust_dir: Any = None) -> Any:
        tls = None
        if trust_dir is not None:
            from iso15118.security.pki import load_pki
            from iso15118.security.tls import evcc_context_from_pki

            tls = evcc_context_from_pki(load_pki(tls_pki).paths)
            if name == "tls-broken":  # trusts the wrong root: refuses every genuine charger
                from conformance.cases.transport_tls_timing import _rogue_pki

                tls = evcc_context_from_pki(load_pki(_rogue_pki("secp521r1")).paths)
            if name == "tls-anything-goes":
                tls.minimum_version = ssl.TLSVersion.TLSv1_2
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        if name == "no-reassembly":
            fwd = _NoReassemblyForwarder(host, port)
            port = await fwd.start()
            try:
                return await run_defective_evcc(name, host, port, tls)
            finally:
                if fwd.server is not None:
                    fwd.server.close()
        return await run_defective_evcc(name, host, port, tls)

    return launch


_ = (V2GTPConnection, Decimal)
