"""asyncio layer: drives the sans-IO cores with real sockets and real time.

* :func:`start_secc` / :func:`run_secc`: a TCP or TLS server, one :class:`SeccSession` per
  connection, many sessions concurrently; optionally an SDP responder.
* :func:`run_evcc`: one EVCC session to ``host``/``port`` or to what SDP discovery finds.

Every V2GTP frame goes out in a single write (``V2GTPConnection.send``), which Josev needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iso15118.exi import codec
from iso15118.facts.namespaces import SESSION_SCHEMAS, AppProtocol
from iso15118.facts.timing import message_timing
from iso15118.session.controller import EVController, EVSEController
from iso15118.session.evcc import EvccConfig
from iso15118.session.events import Event, MessageReceived, SendMessage, SessionEnded
from iso15118.session.negotiation import ALL_PROTOCOLS, EvccNegotiator, SeccNegotiator, registered, support
from iso15118.session.secc import SeccConfig, SessionStore
from iso15118.transport.tcp import (
    ConnectionClosed,
    ConnectionGate,
    ServerLimits,
    V2GTPConnection,
    open_connection,
    start_server,
)
from iso15118.transport.v2gtp import V2GTPError

log = logging.getLogger(__name__)

EventSink = Callable[[str, float, Event], None]
"""``sink(side, now, event)``: observes every event (timelines, traces, statistics)."""


@dataclass
class SessionResult:
    """How one session ended, as seen by one side."""

    side: str
    ok: bool
    reason: str
    rx: int
    tx: int
    started: float
    ended: float
    peer: Any = None
    tls_version: str | None = None
    paused_session_id: bytes | None = None
    loops: int = 0
    events: list[tuple[float, Event]] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    authorization: str | None = None
    """``"EIM"`` / ``"PnC"`` when the session got authorized."""
    emaid: str | None = None
    protocol: AppProtocol | None = None
    """The protocol agreed in SupportedAppProtocol (None: negotiation failed)."""

    @property
    def duration(self) -> float:
        return self.ended - self.started


async def drive(
    core: Any,
    conn: V2GTPConnection,
    *,
    side: str,
    clock: Callable[[], float] = time.monotonic,
    sink: EventSink | None = None,
    initial: list[Event] | None = None,
    record: list[tuple[float, Event]] | None = None,
    stats: dict[str, float] | None = None,
) -> SessionEnded | None:
    """Feed frames and timer expiries into ``core`` and write what it asks, until it ends.

    ``stats`` (SECC side) receives ``max_response_s`` and ``late_responses``: answers that
    took longer than the message's V2G_SECC_Msg_Performance_Time (see rules.MESSAGES).
    """

    async def pump(events: list[Event]) -> SessionEnded | None:
        ended = None
        now = clock()
        for ev in events:
            if sink is not None:
                sink(side, now, ev)
            if record is not None:
                record.append((now, ev))
            if isinstance(ev, SendMessage):
                try:
                    await conn.send(ev.payload_type, ev.payload)
                except ConnectionClosed:
                    pass  # the receive side reports it
            elif isinstance(ev, SessionEnded):
                ended = ev
        return ended

    ended = await pump(initial or [])
    while ended is None:
        deadline = core.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - clock())
        try:
            frame = await conn.recv(timeout=timeout)
        except TimeoutError:
            events = core.handle_timer(clock())
        except V2GTPError as exc:
            if not exc.close_connection:
                # an unknown / reserved / manufacturer-specific payload type: the framing is
                # intact, the message is ignored and the session goes on (transport/v2gtp.py)
                log.warning("%s: %s", side, exc)
                continue
            log.debug("%s: connection ended: %s", side, exc)
            events = core.connection_lost(clock())
            if not events:
                break
        except (ConnectionClosed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: connection ended: %s", side, exc)
            events = core.connection_lost(clock())
            if not events:
                break
        else:
            t_rx = clock()
            events = core.receive(frame.payload_type, frame.payload, t_rx)
            if stats is not None:
                _account(stats, events, clock() - t_rx, getattr(core, "protocol", None))
        ended = await pump(events)
    return ended


def _account(stats: dict[str, float], events: list[Event], elapsed: float, protocol: AppProtocol | None = None) -> None:
    for ev in events:
        if isinstance(ev, SendMessage):
            name = ev.name
            limit = message_timing(protocol.value if protocol is not None else "-20", name[:-3] + "Req").secc_performance
            stats["max_response_s"] = max(stats.get("max_response_s", 0.0), elapsed)
            if elapsed > limit:
                stats["late_responses"] = stats.get("late_responses", 0) + 1
                log.warning("%s took %.3f s > performance time %.3f s", name, elapsed, limit)


async def _linger(conn: V2GTPConnection, seconds: float) -> None:
    """Keep the connection until the peer closes or ``seconds`` pass ([V2G20-1643])."""
    if seconds <= 0:
        return
    try:
        async with asyncio.timeout(seconds):
            while True:
                await conn.recv()
    except (TimeoutError, ConnectionClosed, ConnectionError, ssl.SSLError, V2GTPError, asyncio.IncompleteReadError):
        return


def warm_codecs(protocols: tuple[AppProtocol, ...] | None) -> None:
    """Load (or build, on a cold cache) the EXI grammars of every schema these protocols use,
    before a session starts: building one takes about a second, which inside the EV's 2 s
    message timeout would cost the first exchange (seen on a cold cache under load)."""
    for proto in protocols or ALL_PROTOCOLS:
        if support(proto) is None:
            continue
        for key in SESSION_SCHEMAS if proto is AppProtocol.ISO20 else (proto.value,):
            codec(key)


def _tls_version(conn: V2GTPConnection) -> str | None:
    obj = conn.ssl_object
    return obj.version() if obj is not None else None


def _peer_fingerprint(conn: V2GTPConnection) -> str | None:
    """SHA-512 of the peer's TLS certificate (DER), hex; None on TCP or without a certificate
    (digest §1.3: binds a resumed session to the vehicle certificate that paused it)."""
    obj = conn.ssl_object
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    return hashlib.sha512(der).hexdigest() if der else None


class SeccServer:
    """A running SECC: ``.port``, ``.results`` (finished sessions), ``close()``."""

    def __init__(
        self,
        controller: EVSEController | Callable[[], EVSEController],
        *,
        config: SeccConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sink: EventSink | None = None,
        linger: float | None = None,
        record_events: bool = False,
        limits: ServerLimits | None = None,
        on_result: Callable[[SessionResult], Any] | None = None,
        protocols: tuple[AppProtocol, ...] | None = None,
        configs: dict[AppProtocol, Any] | None = None,
    ) -> None:
        self._controller = controller
        self.protocols = protocols
        """What the charger serves in SupportedAppProtocol (None: every registered protocol)."""
        self.configs = dict(configs or {})
        """Per-protocol core configurations; ``config`` is the -20 one.  A protocol given none gets
        its registered default, built once here and shared by every connection (a session paused
        on one connection is resumed on the next)."""
        for proto in registered():
            entry = support(proto)
            if proto is not AppProtocol.ISO20 and proto not in self.configs and entry is not None and entry.secc_config:
                self.configs[proto] = entry.secc_config()
        self.gate = ConnectionGate(limits)
        """Connection / handshake limits and their counters (``gate.stats``)."""
        self.on_result = on_result
        """Called with each finished session's :class:`SessionResult` (its own authorization)."""
        self.config = config or SeccConfig()
        self.store: SessionStore = self.config.store
        self.clock = clock
        self.sink = sink
        self.linger = linger
        self.record_events = record_events
        self.results: list[SessionResult] = []
        self.active: set[SeccNegotiator] = set()
        self.server: asyncio.Server | None = None
        self.sessions_started = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def controller_for_session(self) -> EVSEController:
        c = self._controller
        if callable(c) and not hasattr(c, "energy_services"):
            return c()  # type: ignore[no-any-return]
        return c  # type: ignore[return-value]

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def handle(self, conn: V2GTPConnection) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        started = self.clock()
        self.sessions_started += 1
        core = SeccNegotiator(
            self.controller_for_session(),
            protocols=self.protocols,
            configs={AppProtocol.ISO20: self.config, **self.configs},
            now=started,
            clock=time.time,
            tls=conn.ssl_object is not None,
            tls_version=_tls_version(conn),
            peer_certificate=_peer_fingerprint(conn),
            timers=self.config.timers,
        )
        self.active.add(core)
        record: list[tuple[float, Event]] | None = [] if self.record_events else None
        ended = None
        stats: dict[str, float] = {}
        try:
            ended = await drive(core, conn, side="secc", clock=self.clock, sink=self.sink, record=record, stats=stats)
            if ended is not None and not conn.closed:
                linger = ended.close_after if self.linger is None else self.linger
                await _linger(conn, linger)
        finally:
            self.active.discard(core)
            result = SessionResult(
                    "secc",
                    core.ok,
                    core.end_reason or (ended.reason if ended else "closed"),
                    core.rx,
                    core.tx,
                    started,
                    self.clock(),
                    conn.peer,
                    _tls_version(conn),
                    events=record or [],
                    stats=stats,
                    authorization=core.authorization,
                    emaid=getattr(core.core, "emaid", None),
                    protocol=core.protocol,
                )
            self.results.append(result)
            if self.on_result is not None:
                try:
                    self.on_result(result)
                except Exception:
                    log.exception("on_result callback failed")
            self._changed.set()

    async def wait_sessions(self, count: int, timeout: float | None = None) -> list[SessionResult]:
        """Wait until ``count`` sessions have finished."""
        async with asyncio.timeout(timeout):
            while len(self.results) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.results

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()

    async def aclose(self, grace: float = 1.0) -> None:
        """Stop listening, give running sessions ``grace`` seconds, then cancel them."""
        self.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)


async def start_secc(
    controller: EVSEController | Callable[[], EVSEController],
    host: str | None = "::1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    *,
    config: SeccConfig | None = None,
    clock: Callable[[], float] = time.monotonic,
    sink: EventSink | None = None,
    linger: float | None = None,
    record_events: bool = False,
    limits: ServerLimits | None = None,
    on_result: Callable[[SessionResult], Any] | None = None,
    protocols: tuple[AppProtocol, ...] | None = None,
    configs: dict[AppProtocol, Any] | None = None,
) -> SeccServer:
    """Start serving; returns the :class:`SeccServer` (``port=0`` picks a free port).

    ``controller``: one controller shared by all sessions, or a factory called per session
    (the runner knows no simulator: ``lambda: make_evse("dc-bidi")`` lives in the caller).
    ``limits``: connection / handshake caps and the handshake timeout (:class:`ServerLimits` defaults)."""
    warm_codecs(protocols)
    secc = SeccServer(
        controller, config=config, clock=clock, sink=sink, linger=linger, record_events=record_events,
        limits=limits, on_result=on_result, protocols=protocols, configs=configs,
    )
    secc.server = await start_server(secc.handle, host, port, tls, gate=secc.gate)
    return secc


async def run_secc(
    controller: EVSEController | Callable[[], EVSEController],
    host: str | None = "::1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    *,
    config: SeccConfig | None = None,
    sdp: bool = False,
    sdp_port: int = 15118,
    ready: Callable[[SeccServer], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Serve SECC sessions until cancelled (optionally answering SDP on ``sdp_port``)."""
    secc = await start_secc(controller, host, port, tls, config=config, **kwargs)
    sdp_server = None
    if sdp:
        from iso15118.transport.sdp_asyncio import SdpServer

        addr = host if host not in (None, "", "::") else "::1"
        sdp_server = SdpServer(
            tls_port=secc.port if tls else None,
            tcp_port=None if tls else secc.port,
            address=addr,
            host=addr,
            port=sdp_port,
        )
        await sdp_server.start()
    if ready is not None:
        ready(secc)
    try:
        assert secc.server is not None
        await secc.server.serve_forever()
    finally:
        if sdp_server is not None:
            sdp_server.close()
        secc.close()


async def run_evcc(
    controller: EVController,
    host: str | None = "::1",
    port: int | None = None,
    tls: ssl.SSLContext | None = None,
    *,
    config: EvccConfig | None = None,
    discover: bool = False,
    sdp_address: str = "::1",
    sdp_port: int = 15118,
    clock: Callable[[], float] = time.monotonic,
    sink: EventSink | None = None,
    record_events: bool = False,
    connect_timeout: float = 10.0,
    protocols: tuple[AppProtocol, ...] | None = None,
    configs: dict[AppProtocol, Any] | None = None,
) -> SessionResult:
    """Run one EVCC session; with ``discover`` ask SDP (unicast to ``sdp_address``) first.

    ``protocols``: what the vehicle offers in SupportedAppProtocol, most preferred first (None:
    every registered protocol, -20 first); ``config`` is the -20 core's, ``configs`` the others'."""
    if discover:
        from iso15118.transport.sdp import Security
        from iso15118.transport.sdp_asyncio import discover as sdp_discover

        resp = await sdp_discover(Security.TLS if tls else Security.NONE, address=sdp_address, port=sdp_port)
        host, port = str(resp.address), resp.port
    if host is None or port is None:
        raise ValueError("run_evcc needs host and port, or discover=True")
    warm_codecs(protocols)
    started = clock()
    conn = await open_connection(host, port, tls, timeout=connect_timeout)
    stats = {"connect_s": clock() - started}
    cfg20 = config or EvccConfig()
    core = EvccNegotiator(
        controller,
        protocols=protocols,
        configs={AppProtocol.ISO20: cfg20, **(configs or {})},
        clock=time.time,
        tls=conn.ssl_object is not None,
        tls_version=_tls_version(conn),
        timers=cfg20.timers,
        timeout_scale=cfg20.timeout_scale,
    )
    record: list[tuple[float, Event]] | None = [] if record_events else None
    try:
        ended = await drive(core, conn, side="evcc", clock=clock, sink=sink, initial=core.start(clock()), record=record)
    finally:
        tls_version = _tls_version(conn)
        if core.authorized_at is not None:
            stats["authorized_s"] = core.authorized_at - started
        await conn.aclose()
    reason = core.end_reason or (ended.reason if ended else "closed")
    if not core.ok and conn.tls_error:
        reason = f"{reason} (TLS: {conn.tls_error})"
    return SessionResult(
        "evcc",
        core.ok,
        reason,
        core.rx,
        core.tx,
        started,
        clock(),
        (host, port),
        tls_version,
        core.paused_session_id,
        core.loops,
        events=record or [],
        stats=stats,
        authorization=core.authorization,
        emaid=contract.emaid if core.authorization == "PnC" and (contract := core.contract) is not None else None,
        protocol=core.protocol,
    )


__all__ = [
    "EventSink",
    "ServerLimits",
    "SeccServer",
    "SessionResult",
    "drive",
    "warm_codecs",
    "run_evcc",
    "run_secc",
    "start_secc",
]

# re-exported for callers that only import the runner
_ = (MessageReceived,)
