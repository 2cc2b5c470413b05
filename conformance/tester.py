"""The tester EVCC: plays the EV side against a SECC under test, over TCP or TLS.

Where it follows the protocol it *is* the project's sans-IO :class:`EvccSession` core (with a
:class:`~conformance.tester_ev.TesterEV` as its controller), so every legal message is built
from the same rules table and typed messages as the product.  Where a case deviates, it
``hold``s the request the core is about to send and puts something else on the wire instead:
a modified typed message (wrong SessionID, invalid parameter), a message out of sequence,
a hand-made V2GTP frame (malformed EXI, bad header, oversized length), nothing at all (late
or missing request), or a TCP reset / TLS alert.

Every frame in either direction is logged in the case's :class:`~conformance.evidence.Evidence`
with its time, and every response time is checked against V2G_EVCC_Msg_Timeout of the
request (digest §6.1): a late answer is a failed check even when the tester keeps waiting to
see what else the SUT does.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from conformance.evidence import Check, Evidence
from conformance.sut import SutEndpoint
from conformance.tester_ev import TesterEV
from iso15118 import messages as m
from iso15118.facts.namespaces import SESSION_SCHEMAS
from iso15118.session import rules
from iso15118.session.evcc import EvccConfig, EvccSession
from iso15118.session.events import (
    Event,
    NotificationReceived,
    PowerChanged,
    ProtocolError,
    SendMessage,
    SessionEnded,
)
from iso15118.session.services import ControlMode, EnergyService, to_decimal
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection
from iso15118.transport.v2gtp import V2GTPError, encode_frame, schema_key_for

GRACE = 3.0
"""Extra seconds the tester keeps waiting after a timeout expired (to record what happens)."""


@dataclass
class Rx:
    """What came back after a request the tester sent by hand."""

    msg: Any = None
    name: str = ""
    payload_type: int | None = None
    response_time: float | None = None
    closed: bool = False
    error: str = ""
    raw: bytes | None = None

    @property
    def code(self) -> str | None:
        c = getattr(self.msg, "response_code", None)
        return getattr(c, "value", None)

    @property
    def answered(self) -> bool:
        return self.msg is not None


class TesterEvcc:
    """One tester EVCC connection to the SUT."""

    def __init__(
        self,
        sut: SutEndpoint,
        evidence: Evidence,
        checks: list[Check],
        *,
        ev: TesterEV | None = None,
        service: EnergyService | None = None,
        control_mode: ControlMode | None = None,
        loop_interval: float = 0.1,
        ssl_context: ssl.SSLContext | None = None,
        resume_session_id: bytes | None = None,
        welding_detection: bool = True,
    ) -> None:
        self.sut = sut
        self.ev = ev or TesterEV()
        self.evidence = evidence
        self.checks = checks
        self.ssl_context = ssl_context
        cfg = EvccConfig(
            service=service,
            control_mode=control_mode,
            loop_interval=loop_interval,
            ongoing_interval=0.05,
            timeout_scale=1.0 + GRACE,  # the core waits longer; lateness is judged here
            resume_session_id=resume_session_id,
            welding_detection=welding_detection,
            pre_charge_give_up=60,
        )
        self.core = EvccSession(self.ev, cfg, clock=time.time)
        self.conn: V2GTPConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.held: SendMessage | None = None
        self.ended: SessionEnded | None = None
        self.errors: list[ProtocolError] = []
        self.closed_by_sut = False
        self.closed_at: float | None = None
        self.response_times: dict[str, list[float]] = {}
        self.late: list[str] = []
        self._sent_at: float | None = None
        self._sent_name: str | None = None
        self._sent_msg: Any = None
        self._started = False
        self._held_at = 0.0
        self.on_response: Callable[[str, Any], None] | None = None
        self.loop_responses = 0
        self.tls_version: str | None = None
        self.notifications: list[NotificationReceived] = []
        self.connected = False
        self.connect_error = ""
        self.chain_refused = False  # the SUT answered the handshake with a chain the -20 rules refuse
        self.values: Any = None
        """A :class:`conformance.values.ValueChecks` judging every answer (set by the case context)."""

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        ctx = self.ssl_context
        if ctx is None and self.sut.tls:
            ctx = self.sut.client_context()
        kw: dict[str, Any] = {}
        if ctx is not None:
            kw = {"ssl": ctx, "server_hostname": self.sut.host}
        try:
            async with asyncio.timeout(self.sut.connect_timeout):
                reader, writer = await asyncio.open_connection(self.sut.host, self.sut.port, limit=65536, **kw)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.connect_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.chain_refused = isinstance(exc, ssl.SSLCertVerificationError)
            self.evidence.note(f"connect to {self.sut.name} failed: {self.connect_error}", "error")
            raise
        self.connected = True
        self._writer = writer
        self.conn = V2GTPConnection(reader, writer)
        obj = writer.get_extra_info("ssl_object")
        self.tls_version = obj.version() if obj is not None else None
        self.evidence.note(
            f"connected to {self.sut.name}" + (f" ({self.tls_version}, {obj.cipher()[0]})" if obj is not None else "")
        )

    async def close(self) -> None:
        if self.conn is not None:
            try:
                await asyncio.wait_for(self.conn.aclose(), 2.0)
            except Exception:
                pass

    def reset(self) -> None:
        """Abort the TCP connection with a RST (SO_LINGER 0), as a pulled cable would not."""
        assert self._writer is not None
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._writer.transport.abort()
        self.evidence.note("tester: TCP reset (RST) sent", "warning")

    def inject_tls_alert(self) -> None:
        """Write a fatal TLS alert record (handshake_failure) straight onto the TCP socket,
        underneath the TLS session: the SUT's TLS layer must treat the connection as broken."""
        assert self._writer is not None
        sock = self._writer.get_extra_info("socket")
        raw = socket.socket(fileno=sock.fileno()) if sock is not None else None
        try:
            if raw is not None:
                raw.send(bytes.fromhex("15030300020228"))
        finally:
            if raw is not None:
                raw.detach()
        self.evidence.note("tester: fatal TLS alert record injected on the TCP stream", "warning")

    # ------------------------------------------------------------------ sending

    def _check_timing(self, name: str, rt: float) -> None:
        req = self._sent_name
        spec = rules.spec_for_request(req) if req else None
        self.response_times.setdefault(name, []).append(rt)
        if spec is None:
            return
        limit = spec.evcc_timeout
        if rt > limit:
            self.late.append(name)
            self.checks.append(
                Check(
                    f"digest §6.1 V2G_EVCC_Msg_Timeout({req}) = {limit:g} s",
                    False,
                    f"{name} arrived {rt * 1000:.0f} ms after {req} (limit {limit * 1000:.0f} ms)",
                )
            )

    async def send_frame(self, payload_type: int, payload: bytes, msg: Any = None, *, name: str | None = None, detail: str = "") -> None:
        assert self.conn is not None
        await self.conn.send_raw(encode_frame(payload_type, payload))
        self._sent_at = time.monotonic()
        self._sent_name = name or (msg.ELEMENT[1] if msg is not None else None)
        self._sent_msg = msg
        self.evidence.frame("tx", payload_type, payload, msg, name=name, detail=detail)

    async def send_raw(self, data: bytes, name: str, detail: str = "") -> None:
        """Bytes exactly as given (a damaged header, a partial frame ...)."""
        assert self.conn is not None
        await self.conn.send_raw(data)
        self._sent_at = time.monotonic()
        self._sent_name = None
        self._sent_msg = None
        self.evidence.frame("tx", None, data, None, name=name, detail=detail or f"{len(data)} raw bytes")

    async def send(self, msg: Any, *, payload_type: int | None = None, detail: str = "") -> None:
        """A typed message with its proper payload type (or ``payload_type`` to deviate)."""
        name = msg.ELEMENT[1]
        spec = rules.spec_for_request(name)
        pt = payload_type if payload_type is not None else int(spec.payload_type) if spec else 0x8002
        await self.send_frame(pt, m.encode(msg), msg, detail=detail)

    async def _send_event(self, ev: SendMessage) -> None:
        await self.send_frame(ev.payload_type, ev.payload, ev.message)

    # ------------------------------------------------------------------ receiving

    def _decode(self, payload_type: int, payload: bytes) -> tuple[Any, str]:
        key = schema_key_for(payload_type)
        if key not in SESSION_SCHEMAS:
            return None, f"payload type 0x{payload_type:04x} without a -20 schema"
        try:
            return m.decode(payload, key), ""
        except Exception as exc:
            return None, f"undecodable EXI: {exc}"

    async def recv(self, timeout: float) -> Rx:
        """The next frame from the SUT (or why none came)."""
        assert self.conn is not None
        try:
            frame = await self.conn.recv(timeout=timeout)
        except TimeoutError:
            return Rx(error=f"no response within {timeout:g} s")
        except (ConnectionClosed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            self._mark_closed(str(exc))
            return Rx(closed=True, error=f"connection closed by the SUT: {exc}")
        except V2GTPError as exc:
            self.evidence.note(f"SUT sent a bad V2GTP frame: {exc}", "error")
            return Rx(error=f"bad V2GTP frame: {exc}")
        now = time.monotonic()
        rt = now - self._sent_at if self._sent_at is not None else None
        msg, err = self._decode(frame.payload_type, frame.payload)
        name = msg.ELEMENT[1] if msg is not None else f"0x{frame.payload_type:04x}"
        self.evidence.frame(
            "rx", frame.payload_type, frame.payload, msg, name=name, detail=err, response_time=rt, level="error" if err else "info"
        )
        if rt is not None and msg is not None:
            self._check_timing(name, rt)
        if msg is not None and self.values is not None:
            self.values.on_response(name, msg, self._sent_msg)
        self._sent_at = None
        self._sent_msg = None
        return Rx(msg, name, frame.payload_type, rt, error=err, raw=frame.payload)

    def _mark_closed(self, detail: str) -> None:
        if not self.closed_by_sut:
            self.closed_by_sut = True
            self.closed_at = self.evidence.now()
            self.evidence.note(f"connection closed: {detail}")

    async def exchange(self, msg: Any, *, timeout: float | None = None, payload_type: int | None = None, detail: str = "") -> Rx:
        """Send ``msg`` by hand and wait for the answer (standard timeout + grace)."""
        name = msg.ELEMENT[1]
        spec = rules.spec_for_request(name)
        await self.send(msg, payload_type=payload_type, detail=detail)
        wait = timeout if timeout is not None else (spec.evcc_timeout if spec else 2.0) + GRACE
        return await self.recv(wait)

    async def wait_closed(self, within: float) -> float | None:
        """Seconds (case time) at which the SUT closed the connection, or None if it kept it
        open for ``within`` seconds.  Frames that arrive meanwhile are logged."""
        deadline = time.monotonic() + within
        while not self.closed_by_sut:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            rx = await self.recv(left)
            if rx.error and not rx.closed and not rx.msg and "no response" not in rx.error:
                # a broken frame: the stream is unusable; treat as closed by us
                return None
        return self.closed_at

    # ------------------------------------------------------------------ driving the core

    async def _process(self, events: list[Event], hold: Callable[[str, Any], bool] | None) -> SendMessage | None:
        for ev in events:
            if isinstance(ev, SendMessage):
                if hold is not None and hold(ev.name, ev.message):
                    self.held = ev
                    self._held_at = time.monotonic()
                    return ev
                await self._send_event(ev)
            elif isinstance(ev, SessionEnded):
                self.ended = ev
                self.evidence.note(f"tester session ended: {ev.reason}", "info" if ev.ok else "warning")
            elif isinstance(ev, ProtocolError):
                self.errors.append(ev)
                self.evidence.note(f"tester saw a protocol error: {ev.code}: {ev.detail}", "error")
            elif isinstance(ev, NotificationReceived):
                self.notifications.append(ev)
                self.evidence.note(f"SUT notification {ev.notification} (max delay {ev.max_delay} s)")
            elif isinstance(ev, PowerChanged):
                self._sample(ev)
        return None

    def _sample(self, ev: PowerChanged) -> None:
        lim = self.ev.current_limits()
        el = self.core.evse_limits
        self.evidence.sample(
            power_w=float(ev.power_w),
            current_a=float(ev.current_a) if ev.current_a is not None else None,
            soc=self.ev.soc,
            ev_max_charge_w=float(lim.max_charge_power),
            ev_max_discharge_w=float(lim.max_discharge_power) if self.ev.service and self.ev.service.bpt else None,
            evse_max_charge_w=float(el.max_charge_power) if el is not None else None,
            evse_max_discharge_w=float(el.max_discharge_power) if el is not None and el.max_discharge_power else None,
        )

    async def run(
        self,
        hold: Callable[[str, Any], bool] | None = None,
        *,
        max_time: float = 60.0,
    ) -> SendMessage | None:
        """Drive the core until it ends, or until ``hold(name, msg)`` is true for a request it
        wants to send (returned, not sent; see :meth:`release`)."""
        if self.conn is None:
            await self.connect()
        if not self._started:
            self._started = True
            held = await self._process(self.core.start(time.monotonic()), hold)
            if held is not None:
                return held
        elif self.held is not None:
            ev, self.held = self.held, None
            # the core armed its response timer when it built the request; it goes out now.
            # (EvccSession has no public re-arm call: shift its private deadline.)
            delay = time.monotonic() - self._held_at
            pending = self.core._pending_deadline
            if delay > 0 and pending is not None:
                self.core._pending_deadline = pending + delay
            await self._send_event(ev)
        deadline_total = time.monotonic() + max_time
        while not self.core.ended:
            if time.monotonic() > deadline_total:
                self.evidence.note(f"tester gave up after {max_time:g} s", "error")
                break
            dl = self.core.next_deadline()
            timeout = max(0.0, dl - time.monotonic()) if dl is not None else 5.0
            try:
                frame = await self.conn.recv(timeout=timeout)  # type: ignore[union-attr]
            except TimeoutError:
                events = self.core.handle_timer(time.monotonic())
            except (ConnectionClosed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                self._mark_closed(str(exc))
                events = self.core.connection_lost(time.monotonic())
            except V2GTPError as exc:
                self.evidence.note(f"SUT sent a bad V2GTP frame: {exc}", "error")
                events = self.core.connection_lost(time.monotonic())
            else:
                now = time.monotonic()
                rt = now - self._sent_at if self._sent_at is not None else None
                msg, err = self._decode(frame.payload_type, frame.payload)
                name = msg.ELEMENT[1] if msg is not None else f"0x{frame.payload_type:04x}"
                self.evidence.frame("rx", frame.payload_type, frame.payload, msg, name=name, detail=err, response_time=rt)
                if rt is not None and msg is not None:
                    self._check_timing(name, rt)
                if msg is not None and self.values is not None:
                    self.values.on_response(name, msg, self._sent_msg)
                self._sent_at = None
                self._sent_msg = None
                events = self.core.receive(frame.payload_type, frame.payload, now)
                if msg is not None and name.endswith("ChargeLoopRes"):
                    self.loop_responses += 1
                if self.on_response is not None and msg is not None:
                    self.on_response(name, msg)
            held = await self._process(events, hold)
            if held is not None:
                return held
        return None

    async def release(self, **kw: Any) -> SendMessage | None:
        """Send the held request and continue driving the core."""
        return await self.run(**kw)

    async def run_to(self, request: str, **kw: Any) -> SendMessage:
        """Drive until the core wants to send ``request``; raises if the session ends first."""
        held = await self.run(lambda name, msg: name == request, **kw)
        if held is None:
            raise SessionEndedEarly(f"the session ended before {request}: {self.ended.reason if self.ended else '?'}")
        return held

    # ------------------------------------------------------------------ helpers for cases

    def header(self, session_id: bytes | None = None) -> m.MessageHeader:
        return m.MessageHeader(session_id=self.core.session_id if session_id is None else session_id, time_stamp=int(time.time()))

    @property
    def session_id(self) -> bytes:
        return self.core.session_id

    def max_response_time(self, name: str | None = None) -> float:
        vals = [v for k, vs in self.response_times.items() if name is None or k == name for v in vs]
        return max(vals) if vals else 0.0

    def last_power(self) -> float | None:
        return self.evidence.samples[-1].power_w if self.evidence.samples else None


class SessionEndedEarly(Exception):
    """The tester's session ended before the step a case needed (the SUT refused earlier)."""


def loop_power(msg: Any) -> Decimal | None:
    """The power a ChargeLoopRes reports (W, signed; DC: V x I)."""
    if isinstance(msg, m.DCChargeLoopRes):
        return to_decimal(msg.evse_present_voltage) * to_decimal(msg.evse_present_current)
    cm = getattr(msg, "control_mode", None)
    for attr in ("evse_target_active_power", "evse_present_active_power"):
        v = getattr(cm, attr, None)
        if v is not None:
            return to_decimal(v)
    return None
