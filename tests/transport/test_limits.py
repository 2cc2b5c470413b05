"""Server resource limits (iso15118/transport/tcp.py ServerLimits / ConnectionGate) on real
loopback sockets: established sessions are never evicted, a full server refuses newcomers,
pending handshakes make room for new connections (oldest first), per-address caps, and the
handshake timeout closes a silent socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from iso15118.security.pki import create_pki
from iso15118.session.tlsconf import secc_context
from iso15118.transport.tcp import ConnectionGate, ServerLimits, V2GTPConnection, start_server

pytestmark = pytest.mark.timeout(60)


async def _closed(reader: asyncio.StreamReader, wait: float = 10.0) -> bool:
    """True when the server closed the socket (EOF / reset) within ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            return await reader.read(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def _serve(tls: bool, tmp: Path, limits: ServerLimits) -> tuple[asyncio.Server, ConnectionGate, asyncio.Event]:
    gate = ConnectionGate(limits)
    stop = asyncio.Event()

    async def handler(conn: V2GTPConnection) -> None:
        await stop.wait()

    ctx = None
    if tls:
        create_pki(tmp / "pki", "secp521r1")
        ctx = secc_context(tmp / "pki")
    server = await start_server(handler, "::1", 0, ctx, gate=gate)
    return server, gate, stop


def test_full_server_refuses_but_never_evicts_established_sessions(tmp_path: Path) -> None:
    async def main() -> None:
        server, gate, stop = await _serve(False, tmp_path, ServerLimits(max_connections=2, max_per_address=2))
        port = server.sockets[0].getsockname()[1]
        try:
            a = await asyncio.open_connection("::1", port)
            b = await asyncio.open_connection("::1", port)
            await asyncio.sleep(0.2)
            c = await asyncio.open_connection("::1", port)
            assert await _closed(c[0]), "the third connection should be refused"
            assert not await _closed(a[0], 0.5) and not await _closed(b[0], 0.5), "established sessions stay"
            assert gate.stats["refused"] == 1 and gate.open == 2
            for _, w in (a, b, c):
                w.close()
        finally:
            stop.set()
            server.close()

    asyncio.run(main())


def test_pending_handshakes_make_room_oldest_first_and_time_out(tmp_path: Path) -> None:
    async def main() -> None:
        limits = ServerLimits(max_handshakes=3, max_handshakes_per_address=2, handshake_timeout=1.5)
        server, gate, stop = await _serve(True, tmp_path, limits)
        port = server.sockets[0].getsockname()[1]
        try:
            socks = []
            for _ in range(4):
                socks.append(await asyncio.open_connection("::1", port))
                await asyncio.sleep(0.1)
            # per address at most 2 pending: the two oldest were closed, the two newest wait
            assert await _closed(socks[0][0]) and await _closed(socks[1][0])
            assert gate.pending == 2 and gate.stats["evicted"] == 2
            # the handshake timeout closes the silent ones
            assert await _closed(socks[2][0]) and await _closed(socks[3][0])
            assert gate.stats["handshake_timeout"] == 2 and gate.pending == 0 and gate.open == 0
            for _, w in socks:
                w.close()
        finally:
            stop.set()
            server.close()

    asyncio.run(main())
