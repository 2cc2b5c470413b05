"""The tester charger for DIN SPEC 70121 and ISO 15118-2 vehicles under test (message level).

It answers SupportedAppProtocol by choosing the protocol under test from the vehicle's list
(a vehicle that does not offer it makes the case not applicable), then answers every request
with the normal DIN / -2 response of a DC (or -2 AC) charger (:func:`conformance.legacy.default_response`)
unless the case's script says otherwise: another response code, an Ongoing answer, different
values, a wrong SessionID, garbage, a late answer, silence or a close.  Every request is logged
with its time; the case then judges what the vehicle did.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformance import legacy as L
from conformance.evidence import Check, Evidence
from iso15118 import messages as m
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, start_server
from iso15118.transport.v2gtp import V2GTPError, encode_frame

if TYPE_CHECKING:
    from conformance.catalogue import CaseContext


@dataclass
class Act:
    """What the charger does instead of its normal answer."""

    body: Any = None
    """An element tree to send instead (its SessionID: ``session_id`` or the session's)."""
    session_id: bytes | None = None
    raw: bytes | None = None
    """A payload sent as is under 0x8001 (garbage EXI, a message of another schema)."""
    delay: float = 0.0
    silent: bool = False
    close: bool = False


Script = Callable[["LegacyCharger", L.Msg, Any], "Act | None"]
"""``script(charger, request, normal_answer)``: an :class:`Act`, or None for the normal answer
(which the script may also change in place)."""


@dataclass
class Req:
    t: float
    name: str
    msg: L.Msg | None


@dataclass
class LegacyCharger:
    evidence: Evidence
    checks: list[Check]
    proto: L.Proto
    ac: bool = False
    script: Script | None = None
    sap_answer: Callable[[Any], Any] | None = None
    """Replace the SupportedAppProtocolRes (gets the request, returns a response)."""
    session_id: bytes = field(default_factory=lambda: secrets.token_bytes(8))
    evse: L.EvseState = field(default_factory=L.EvseState)
    requests: list[Req] = field(default_factory=list)
    sap_entries: list[Any] = field(default_factory=list)
    offered: bool | None = None
    connected_at: float | None = None
    closed_by_ev_at: float | None = None
    last_tx_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    server: Any = None
    stopped: bool = False

    def __post_init__(self) -> None:
        self.evse.ac = self.ac

    async def start(self) -> int:
        self.server = await start_server(self._handle, "::1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    def after(self, t: float) -> list[Req]:
        return [r for r in self.requests if r.t > t]

    async def _send(self, conn: V2GTPConnection, body: Any, session_id: bytes | None = None) -> None:
        sid = self.session_id if session_id is None else session_id
        payload = L.encode(self.proto, body, sid, validate=False)
        await conn.send_raw(encode_frame(L.PT_EXI, payload))
        e = self.evidence.frame("tx", L.PT_EXI, payload, None, name=body.name)
        e.decoded = {"SessionID": sid.hex(), "body": L._plain(body)}
        rc = body.find("ResponseCode")
        e.response_code = rc.value if rc is not None else None
        self.last_tx_at = self.evidence.now()

    async def _handle(self, conn: V2GTPConnection) -> None:
        if self.connected_at is not None:
            self.evidence.note("EVCC under test connected again (not served)", "warning")
            self.requests.append(Req(self.evidence.now(), "reconnect", None))
            conn.close()
            return
        self.connected_at = self.evidence.now()
        self.evidence.note(f"EVCC under test connected from {conn.peer} (tester {self.proto.title} charger)")
        negotiated = False
        try:
            while True:
                try:
                    frame = await conn.recv(timeout=60.0)
                except TimeoutError:
                    self.evidence.note("no request for 60 s: the tester charger ends the session", "warning")
                    break
                except (ConnectionClosed, ConnectionError, V2GTPError, asyncio.IncompleteReadError) as exc:
                    self.closed_by_ev_at = self.evidence.now()
                    self.evidence.note(f"EVCC closed the connection: {exc}")
                    break
                if not negotiated:
                    try:
                        req = m.decode(frame.payload, "sap")
                    except Exception as exc:  # noqa: BLE001
                        self.evidence.frame("rx", frame.payload_type, frame.payload, None, name="?", detail=f"undecodable: {exc}",
                                            level="error")
                        self.requests.append(Req(self.evidence.now(), "?", None))
                        continue
                    self.evidence.frame("rx", frame.payload_type, frame.payload, req)
                    self.requests.append(Req(self.evidence.now(), "supportedAppProtocolReq", None))
                    res = self._sap(req)
                    if self.sap_answer is not None:
                        res = self.sap_answer(req) or res
                    data = m.encode(res)
                    await conn.send_raw(encode_frame(L.PT_EXI, data))
                    self.evidence.frame("tx", L.PT_EXI, data, res)
                    self.last_tx_at = self.evidence.now()
                    negotiated = self.offered is True and res.response_code.value.startswith("OK")
                    if not self.offered:
                        break
                    continue
                try:
                    msg = L.decode(self.proto, frame.payload)
                except Exception as exc:  # noqa: BLE001
                    self.evidence.frame("rx", frame.payload_type, frame.payload, None, name="?", detail=f"undecodable: {exc}",
                                        level="error")
                    self.requests.append(Req(self.evidence.now(), "?", None))
                    continue
                e = self.evidence.frame("rx", frame.payload_type, frame.payload, None, name=msg.name)
                e.decoded = msg.summary()
                self.requests.append(Req(self.evidence.now(), msg.name, msg))
                self.counts[msg.name] = self.counts.get(msg.name, 0) + 1
                normal = L.default_response(self.proto, self.evse, msg)
                if msg.name == "SessionSetupReq" and normal is not None:
                    pass
                act = self.script(self, msg, normal) if self.script is not None else None
                if act is None:
                    act = Act(body=normal)
                if act.delay:
                    self.evidence.note(f"tester charger: holding the answer to {msg.name} for {act.delay:g} s", "warning")
                    await asyncio.sleep(act.delay)
                if act.close:
                    self.evidence.note("tester charger: closing instead of answering", "warning")
                    break
                if act.silent:
                    self.evidence.note(f"tester charger: no answer to {msg.name}", "warning")
                    continue
                try:
                    if act.raw is not None:
                        await conn.send_raw(encode_frame(L.PT_EXI, act.raw))
                        self.evidence.frame("tx", L.PT_EXI, act.raw, None, name=f"{msg.name[:-3]}Res (crafted)", detail="crafted payload")
                        self.last_tx_at = self.evidence.now()
                    elif act.body is not None:
                        await self._send(conn, act.body, act.session_id)
                except (ConnectionClosed, ConnectionError, OSError) as exc:
                    self.closed_by_ev_at = self.evidence.now()
                    self.evidence.note(f"EVCC closed the connection before the answer went out: {exc}")
                    break
                if msg.name == "SessionStopReq":
                    self.stopped = True
            # keep reading until the EV closes (its close delay) or 8 s pass
            if self.closed_by_ev_at is None:
                try:
                    async with asyncio.timeout(8.0):
                        while True:
                            frame = await conn.recv()
                            self.evidence.frame("rx", frame.payload_type, frame.payload, None, name="frame after the end",
                                                level="warning")
                            self.requests.append(Req(self.evidence.now(), "frame after the end", None))
                except (TimeoutError, ConnectionClosed, ConnectionError, V2GTPError, asyncio.IncompleteReadError):
                    if self.closed_by_ev_at is None and not conn.closed:
                        self.closed_by_ev_at = self.evidence.now()
        finally:
            conn.close()
            self.done.set()

    def _sap(self, req: Any) -> Any:
        self.sap_entries = list(req.app_protocol)
        mine = sorted((a for a in req.app_protocol if a.protocol_namespace == self.proto.ns and a.version_number_major == 2),
                      key=lambda a: a.priority)
        self.offered = bool(mine)
        if not mine:
            self.evidence.note(f"the EVCC under test does not offer {self.proto.title}: "
                               f"{[(a.protocol_namespace, a.version_number_major) for a in req.app_protocol]}", "warning")
            return m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
        code = (m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION if mine[0].version_number_minor == 0
                else m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION)
        return m.SupportedAppProtocolRes(response_code=code, schema_id=mine[0].schema_id)


async def run_ev(ctx: CaseContext, proto: L.Proto, script: Script | None = None, *, ac: bool = False, timeout: float = 45.0,
                 sap_answer: Callable[[Any], Any] | None = None, session_id: bytes | None = None,
                 evse: L.EvseState | None = None) -> LegacyCharger:
    """Start a tester charger, launch the EVCC under test against it, wait until the session is
    over (the EV closed, or the charger gave up).  Not applicable when the EV does not offer ``proto``."""
    if ctx.sut.evcc_launcher is None:
        ctx.inconclusive("no EVCC under test (--evcc)")
    ctx.feature(proto.key)
    ch = LegacyCharger(ctx.evidence, ctx.checks, proto, ac=ac, script=script, sap_answer=sap_answer,
                       evse=evse or L.EvseState(ac=ac))
    if session_id is not None:
        ch.session_id = session_id
    port = await ch.start()
    ctx.evidence.note(f"tester {proto.title} charger listening on [::1]:{port}")
    launch: asyncio.Future[Any] = asyncio.ensure_future(_launch(ctx.sut.evcc_launcher, port))
    done = asyncio.ensure_future(ch.done.wait())
    try:
        async with asyncio.timeout(timeout * ctx.sut.time_scale):
            await asyncio.wait({done, launch}, return_when=asyncio.FIRST_COMPLETED)
            if not done.done() and ch.connected_at is not None:
                await done
            try:
                out = await asyncio.wait_for(launch, 15.0)
                ctx.evidence.note(f"EVCC under test finished: {str(out)[:300]}")
            except Exception as exc:  # noqa: BLE001 - the EVCC's own failure is evidence
                ctx.evidence.note(f"EVCC under test ended with {type(exc).__name__}: {exc}", "warning")
    except TimeoutError:
        ctx.evidence.note("EVCC under test did not finish in time", "error")
    finally:
        launch.cancel()
        done.cancel()
        ch.close()
    if ch.connected_at is None:
        ctx.require("precondition: the EVCC under test connects to the tester charger", False, "it never connected")
    if ch.offered is False:
        ctx.not_applicable(f"the EVCC under test does not offer {proto.title} in SupportedAppProtocol")
    return ch


async def _launch(launcher: Callable[[str, int], Awaitable[Any]], port: int) -> Any:
    return await launcher("::1", port)


def local_legacy_evcc_launcher(profile: str = "cybertruck-awd", loops: int = 5) -> Callable[[str, int], Awaitable[Any]]:
    """Our own EVCC (the simulated truck) as a DIN / -2 EVCC under test: it offers every protocol it
    has (-20 first, as in the field); the tester charger picks the one under test."""
    from iso15118.session.evcc import EvccConfig
    from iso15118.session.runner import run_evcc
    from iso15118.sim import make_ev

    configs = L.legacy_evcc_configs(loops)

    async def launch(host: str, port: int) -> Any:
        return await run_evcc(make_ev(profile), host, port, config=EvccConfig(max_loops=loops, loop_interval=0.05,
                                                                               ongoing_interval=0.05), configs=configs)

    return launch


async def reach_legacy_evcc(sut: Any, evidence: Evidence | None = None) -> str | None:
    """The reach gate for a DIN / -2 only EVCC under test: it connects to a tester charger of the
    first protocol it does not declare unsupported and completes SAP and SessionSetup."""
    proto = L.ISO2 if sut.info.features.get("iso2") is not False else L.DIN
    ev = evidence or Evidence()
    ch = LegacyCharger(ev, [], proto, script=lambda c, r, n: Act(close=True) if r.name != "SessionSetupReq" else None)
    port = await ch.start()
    launch = asyncio.ensure_future(_launch(sut.evcc_launcher, port))
    try:
        async with asyncio.timeout(60 * sut.time_scale):
            await ch.done.wait()
    except TimeoutError:
        pass
    finally:
        ch.close()
    try:
        await asyncio.wait_for(launch, 15)
    except Exception:  # noqa: BLE001 - the EV's own ending is not the gate's business
        launch.cancel()
    if ch.connected_at is None:
        return "the EVCC under test never connected to the tester charger"
    if ch.offered is False:
        return f"the EVCC under test does not offer {proto.title}"
    if "SessionSetupReq" not in ch.names():
        return f"the EVCC under test connected but did not complete {proto.title} SAP and SessionSetup (requests: {ch.names()[:4]})"
    return None
