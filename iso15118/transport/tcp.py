"""V2GTP over asyncio TCP (or TLS): a connection object that sends and receives whole frames.

``V2GTPConnection`` wraps an asyncio StreamReader / StreamWriter pair.  ``send`` writes header
and payload as one buffer in one ``write`` call (some peers do no reassembly of a message split
over several TCP segments); ``recv`` returns the next complete ``Frame``, reassembling whatever
splits the peer or the network produce, with ``V2GTPParser``.

No TLS policy lives here: pass an ``ssl.SSLContext`` made by ``iso15118.security`` to
``open_connection`` / ``start_server``; ``V2GTPConnection.ssl_object`` exposes the negotiated
session (version, cipher, peer certificate).  The TLS handshake is driven by
:mod:`iso15118.transport.tlsstream` (not asyncio's SSL transport) so that a refused handshake
sends its alert and logs one line with the reason.

Resource limits of the server (:class:`ServerLimits`, enforced by :class:`ConnectionGate`):

* ``max_connections`` open connections in total and ``max_per_address`` per peer address;
* ``max_handshakes`` TLS handshakes in progress in total and ``max_handshakes_per_address``
  per peer address;
* ``handshake_timeout`` seconds from accept to a finished TLS handshake;
* ``backlog`` for the listening socket (bursts of connects wait in the kernel, not in a
  SYN retransmission second).

When a new connection would exceed a limit, the **oldest connection still in its TLS
handshake** (in the same scope: the same address for a per-address limit) is closed to make
room; only if there is none (every slot holds an established session) is the new connection
refused (closed at once).  So idle or slow half-open sockets cannot starve a real vehicle: a
flood of idle sockets costs at most ``max_handshakes`` pending handshakes, and a new
legitimate connection always gets a handshake slot.  Counters are in ``ConnectionGate.stats``;
the log gets one warning line per 5 s at most while limits act.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Any

from iso15118.transport import tlsstream
from iso15118.transport.v2gtp import (
    DEFAULT_MAX_PAYLOAD,
    Frame,
    V2GTPError,
    V2GTPParser,
    encode_frame,
)

__all__ = [
    "ConnectionClosed",
    "ConnectionGate",
    "ServerLimits",
    "V2GTPConnection",
    "open_connection",
    "start_server",
]

log = logging.getLogger(__name__)

READ_SIZE = 65536
"""Bytes asked for per read from the stream."""


class ConnectionClosed(ConnectionError):
    """The peer closed the connection (EOF) or it was closed locally.

    ``truncated`` is the number of bytes of an incomplete frame pending at EOF (0 if the stream
    ended cleanly between frames).
    """

    def __init__(self, peer: object, truncated: int = 0, detail: str = "") -> None:
        self.peer = peer
        self.truncated = truncated
        msg = f"connection to {peer} closed"
        if truncated:
            msg += f" inside a V2GTP frame ({truncated} bytes of an incomplete frame dropped)"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


Reader = asyncio.StreamReader | tlsstream.TlsStream
Writer = asyncio.StreamWriter | tlsstream.TlsStream


class V2GTPConnection:
    """One TCP / TLS connection carrying V2GTP frames."""

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        allowed_types: Container[int] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = V2GTPParser(max_payload=max_payload, allowed_types=allowed_types)
        # Frames and errors in stream order, produced by one read but not yet handed out.
        self._pending: collections.deque[Frame | V2GTPError] = collections.deque()
        self._eof = False
        self._closed = False
        self.peer: Any = writer.get_extra_info("peername")
        """Peer address tuple as the socket reports it (host, port[, flowinfo, scope_id])."""
        self.local: Any = writer.get_extra_info("sockname")
        """Local address tuple."""
        self.tls_error: str | None = None
        """The TLS error that ended the connection (e.g. an alert the peer sent), if any."""

    # -- properties --

    @property
    def ssl_object(self) -> _ssl.SSLObject | None:
        """The TLS session (``version()``, ``cipher()``, ``getpeercert()``), or None on plain TCP."""
        return self._writer.get_extra_info("ssl_object")  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once ``close`` was called or the peer's EOF was seen."""
        return self._closed or self._eof

    @property
    def parser(self) -> V2GTPParser:
        """The stream parser (for ``buffered`` / ``at_frame_boundary`` diagnostics)."""
        return self._parser

    # -- I/O --

    async def send(self, payload_type: int, payload: bytes) -> None:
        """Send one frame: header and payload in a single write, then wait for buffer room."""
        if self._closed:
            raise ConnectionClosed(self.peer, detail="send on a closed connection")
        self._writer.write(encode_frame(payload_type, payload))
        try:
            await self._writer.drain()
        except (ConnectionError, _ssl.SSLError) as exc:
            raise ConnectionClosed(self.peer, detail=f"send failed: {exc}") from exc

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (test and conformance use: malformed frames)."""
        self._writer.write(data)
        await self._writer.drain()

    async def recv(self, timeout: float | None = None) -> Frame:
        """The next frame.

        Raises ``TimeoutError`` if no complete frame arrives within ``timeout`` seconds (the
        connection stays usable; partial data is kept), ``ConnectionClosed`` at EOF, and the
        parser's ``V2GTPError`` subclasses in stream order: frames received before a bad header
        are returned first.  After an error with ``close_connection`` the caller should close.
        """
        if self._pending:
            return self._pop()
        if timeout is None:
            return await self._recv_until_frame()
        async with asyncio.timeout(timeout):
            return await self._recv_until_frame()

    def _pop(self) -> Frame:
        item = self._pending.popleft()
        if isinstance(item, V2GTPError):
            raise item
        return item

    async def _recv_until_frame(self) -> Frame:
        while not self._pending:
            if self._eof or self._closed:
                raise ConnectionClosed(self.peer, truncated=self._parser.buffered)
            try:
                data = await self._reader.read(READ_SIZE)
            except (ConnectionError, _ssl.SSLError) as exc:
                self._eof = True
                if isinstance(exc, _ssl.SSLError):
                    self.tls_error = tlsstream.describe_ssl_error(exc)
                raise ConnectionClosed(
                    self.peer, truncated=self._parser.buffered, detail=str(exc)
                ) from exc
            if not data:
                self._eof = True
                raise ConnectionClosed(self.peer, truncated=self._parser.buffered)
            self._feed(data)
        return self._pop()

    def _feed(self, data: bytes) -> None:
        """Parse ``data``; queue frames and errors in order, continuing after non-fatal errors."""
        while True:
            try:
                self._pending.extend(self._parser.feed(data))
                return
            except V2GTPError as exc:
                self._pending.extend(exc.frames)
                self._pending.append(exc)
                if exc.close_connection:
                    return
                data = b""  # go on with what is buffered after the skipped message

    def close(self) -> None:
        """Close the connection (does not wait; see ``wait_closed``)."""
        if not self._closed:
            self._closed = True
            self._writer.close()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed (errors of an already broken connection ignored)."""
        try:
            await self._writer.wait_closed()
        except (ConnectionError, _ssl.SSLError):
            pass

    async def aclose(self) -> None:
        """``close`` and ``wait_closed``."""
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> V2GTPConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        tls = f" {self.ssl_object.version()}" if self.ssl_object is not None else ""
        return f"<V2GTPConnection{tls} {self.local} -> {self.peer}>"


async def open_connection(
    host: str,
    port: int,
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Container[int] | None = None,
    timeout: float | None = None,
) -> V2GTPConnection:
    """Connect to a V2GTP server (IPv4, IPv6, ``fe80::1%eth0`` link-local with scope).

    With ``ssl``, ``server_hostname`` defaults to ``host`` as in asyncio; -20 does not check
    host names (digest §1.3) so contexts from iso15118.security have ``check_hostname`` off.
    ``timeout`` bounds connect plus TLS handshake.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # "[::1]" as written in URLs
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        if ssl is None:
            return V2GTPConnection(reader, writer, max_payload=max_payload, allowed_types=allowed_types)
        try:
            stream = await tlsstream.handshake(
                reader, writer, ssl, server_side=False,
                server_hostname=server_hostname if server_hostname is not None else host,
            )
        except _ssl.SSLError as exc:
            log.warning("TLS handshake with [%s]:%s failed: %s", host, port, tlsstream.describe_ssl_error(exc))
            raise
    return V2GTPConnection(stream, stream, max_payload=max_payload, allowed_types=allowed_types)


@dataclass(frozen=True)
class ServerLimits:
    """Resource limits of a V2GTP server (see the module docstring for the policy)."""

    max_connections: int = 512
    max_per_address: int = 256
    max_handshakes: int = 64
    max_handshakes_per_address: int = 16
    handshake_timeout: float = 10.0
    backlog: int = 1024


class _Slot:
    __slots__ = ("addr", "task", "pending", "released", "evicted")

    def __init__(self, addr: str, task: asyncio.Task[Any] | None) -> None:
        self.addr = addr
        self.task = task
        self.pending = True
        self.released = False
        self.evicted = False


class ConnectionGate:
    """Admission control for :func:`start_server` (counts, limits, eviction)."""

    def __init__(self, limits: ServerLimits | None = None) -> None:
        self.limits = limits or ServerLimits()
        self.open = 0
        self.per_address: collections.Counter[str] = collections.Counter()
        self._pending: dict[_Slot, None] = {}  # insertion order = age
        self.stats: collections.Counter[str] = collections.Counter()
        self._last_log = 0.0

    @property
    def pending(self) -> int:
        """TLS handshakes in progress."""
        return len(self._pending)

    def _note(self, what: str) -> None:
        self.stats[what] += 1
        now = time.monotonic()
        if now - self._last_log >= 5.0:
            self._last_log = now
            log.warning(
                "connection limits acting: open=%d handshakes=%d totals %s (%s)",
                self.open, len(self._pending), dict(self.stats), self.limits,
            )

    def _evict(self, addr: str | None) -> bool:
        """Close the oldest pending handshake (from ``addr``, or any); False if none."""
        for slot in self._pending:
            if addr is None or slot.addr == addr:
                slot.evicted = True
                self.release(slot)
                if slot.task is not None:
                    slot.task.cancel()
                self._note("evicted")
                return True
        return False

    def admit(self, addr: str, task: asyncio.Task[Any] | None, *, handshake: bool) -> _Slot | None:
        lim = self.limits
        if self.open >= lim.max_connections and not self._evict(None):
            self._note("refused")
            return None
        if self.per_address[addr] >= lim.max_per_address and not self._evict(addr):
            self._note("refused")
            return None
        if handshake:
            if sum(1 for s in self._pending if s.addr == addr) >= lim.max_handshakes_per_address:
                self._evict(addr)
            if len(self._pending) >= lim.max_handshakes:
                self._evict(None)
        slot = _Slot(addr, task)
        self.open += 1
        self.per_address[addr] += 1
        if handshake:
            self._pending[slot] = None
        else:
            slot.pending = False
        self.stats["accepted"] += 1
        return slot

    def established(self, slot: _Slot) -> None:
        slot.pending = False
        self._pending.pop(slot, None)

    def release(self, slot: _Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self._pending.pop(slot, None)
        self.open -= 1
        self.per_address[slot.addr] -= 1
        if self.per_address[slot.addr] <= 0:
            del self.per_address[slot.addr]


async def start_server(
    handler: Callable[[V2GTPConnection], Awaitable[None]],
    host: str | None,
    port: int,
    ssl: _ssl.SSLContext | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Container[int] | None = None,
    ssl_handshake_timeout: float | None = None,
    limits: ServerLimits | None = None,
    gate: ConnectionGate | None = None,
) -> asyncio.Server:
    """Listen for V2GTP connections; run ``handler(conn)`` for each, closing it afterwards.

    ``port=0`` picks a free port (see ``server.sockets[0].getsockname()``).  ``ConnectionClosed``
    escaping the handler is normal end of session; other exceptions are logged, not propagated.
    ``limits`` (or the limits of ``gate``, which keeps the counters) bound connections and
    handshakes; ``ssl_handshake_timeout`` overrides ``limits.handshake_timeout``.
    """
    if gate is None:
        gate = ConnectionGate(limits)
    lim = gate.limits
    handshake_timeout = ssl_handshake_timeout if ssl_handshake_timeout is not None else lim.handshake_timeout

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = str(peer[0]) if peer else "?"
        slot = gate.admit(addr, asyncio.current_task(), handshake=ssl is not None)
        if slot is None:
            writer.transport.abort()
            return
        try:
            if ssl is not None:
                try:
                    async with asyncio.timeout(handshake_timeout):
                        stream = await tlsstream.handshake(reader, writer, ssl, server_side=True)
                except TimeoutError:
                    gate._note("handshake_timeout")
                    writer.transport.abort()
                    return
                except (_ssl.SSLEOFError, ConnectionError) as exc:  # the peer went away mid-handshake
                    gate.stats["handshake_aborted"] += 1
                    log.debug("TLS handshake from %s aborted by the peer: %s", peer, exc)
                    return
                except (_ssl.SSLError, OSError) as exc:
                    gate.stats["handshake_failed"] += 1
                    log.warning("TLS handshake from %s refused: %s", peer, tlsstream.describe_ssl_error(exc))
                    return
                gate.established(slot)
                conn = V2GTPConnection(stream, stream, max_payload=max_payload, allowed_types=allowed_types)
            else:
                conn = V2GTPConnection(reader, writer, max_payload=max_payload, allowed_types=allowed_types)
            try:
                await handler(conn)
            except ConnectionClosed as exc:
                log.debug("%s", exc)
            except Exception:
                log.exception("V2GTP connection handler failed for %s", conn.peer)
            finally:
                await conn.aclose()
        except asyncio.CancelledError:
            if not slot.evicted:
                raise
            writer.transport.abort()
        finally:
            gate.release(slot)

    return await asyncio.start_server(on_connect, host, port, limit=READ_SIZE, backlog=lim.backlog)
