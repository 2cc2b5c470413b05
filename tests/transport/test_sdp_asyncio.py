"""SDP server and client over real UDP sockets on ::1."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import pytest

from iso15118.transport.sdp import SdpRequest, SdpResponse, Security, TransportProtocol
from iso15118.transport.sdp_asyncio import (
    SDP_MAX_REQUESTS,
    SDP_REQUEST_TIMEOUT,
    SdpServer,
    SdpTimeout,
    SecurityStrategy,
    discover,
    endpoint_host,
    link_local_address,
    multicast_interfaces,
)
from iso15118.transport.tcp import V2GTPConnection, open_connection, start_server
from tests.transport.conftest import free_port, needs_ipv6

LOOP = ipaddress.IPv6Address("::1")


def test_client_defaults_from_digest() -> None:
    assert SDP_REQUEST_TIMEOUT == 0.25
    assert SDP_MAX_REQUESTS == 50


@pytest.mark.parametrize(
    "strategy, asked, expected",
    [
        (SecurityStrategy.ACCEPT_CLIENT_OFFER, Security.TLS, (Security.TLS, 50001)),
        (SecurityStrategy.ACCEPT_CLIENT_OFFER, Security.NONE, (Security.NONE, 50002)),
        (SecurityStrategy.ENFORCE_TLS, Security.NONE, (Security.TLS, 50001)),
        (SecurityStrategy.ENFORCE_NO_TLS, Security.TLS, (Security.NONE, 50002)),
    ],
)
def test_strategy(strategy, asked, expected) -> None:  # type: ignore[no-untyped-def]
    srv = SdpServer(tls_port=50001, tcp_port=50002, address="fe80::1", strategy=strategy)
    r = srv.choose_response(SdpRequest(asked, TransportProtocol.TCP))
    assert (r.security, r.port) == expected
    assert r.transport is TransportProtocol.TCP
    assert r.address == ipaddress.IPv6Address("fe80::1")


def test_accept_offer_falls_back_to_configured_endpoint() -> None:
    only_tls = SdpServer(tls_port=50001, address="fe80::1")
    assert only_tls.choose_response(SdpRequest(Security.NONE)).security is Security.TLS
    only_tcp = SdpServer(tcp_port=50002, address="fe80::1")
    assert only_tcp.choose_response(SdpRequest(Security.TLS)).security is Security.NONE
    with pytest.raises(ValueError):
        SdpServer(tcp_port=1, address="fe80::1", strategy=SecurityStrategy.ENFORCE_TLS)
    with pytest.raises(ValueError):
        SdpServer(address="fe80::1")
    with pytest.raises(ValueError, match="no network interface"):
        SdpServer(tcp_port=1, interface="no-such-if0")


@needs_ipv6
async def test_discover_unicast_loopback() -> None:
    async with SdpServer(tls_port=50001, tcp_port=50002, address=LOOP, host="::1", port=0) as srv:
        r = await discover(Security.NONE, address="::1", port=srv.port)
        assert r == SdpResponse(LOOP, 50002, Security.NONE, TransportProtocol.TCP)
        r = await discover(Security.TLS, address="::1", port=srv.port)
        assert (r.security, r.port) == (Security.TLS, 50001)
        r = await discover(Security.TLS, address="::1", port=srv.port, wireless=True)
        assert r.wireless
        assert srv.stats.requests == srv.stats.responses == 3


@needs_ipv6
async def test_retry_when_first_request_is_lost() -> None:
    port = free_port("::1", socket.SOCK_DGRAM)
    started = time.monotonic()
    task = asyncio.create_task(discover(Security.NONE, address="::1", port=port))
    await asyncio.sleep(0.35)  # first request (and maybe a second) sent to nobody
    assert not task.done()
    async with SdpServer(tcp_port=50002, address=LOOP, host="::1", port=port) as srv:
        r = await asyncio.wait_for(task, 5)
        elapsed = time.monotonic() - started
    assert r.port == 50002
    assert elapsed >= 0.35
    assert srv.stats.requests == 1  # only the retry after start reached the server


@needs_ipv6
async def test_timeout() -> None:
    port = free_port("::1", socket.SOCK_DGRAM)
    started = time.monotonic()
    with pytest.raises(SdpTimeout) as ei:
        await discover(address="::1", port=port, request_timeout=0.05, max_requests=4)
    elapsed = time.monotonic() - started
    assert ei.value.requests == 4
    assert 0.2 <= elapsed < 1.5
    assert isinstance(ei.value, TimeoutError)
    assert f"[::1]:{port}" in str(ei.value) and "4 requests" in str(ei.value)


@needs_ipv6
async def test_server_ignores_garbage_and_paused_state() -> None:
    async with SdpServer(tcp_port=50002, address=LOOP, host="::1", port=0) as srv:
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                replies.put_nowait(data)

        tr, _ = await loop.create_datagram_endpoint(P, local_addr=("::1", 0))
        try:
            tr.sendto(b"\x01\xfe\x90\x00\x00\x00\x00\x02\x33\x00", ("::1", srv.port))
            tr.sendto(b"garbage", ("::1", srv.port))
            srv.answering = False
            tr.sendto(SdpRequest(Security.NONE).to_bytes(), ("::1", srv.port))
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(replies.get(), 0.2)
            assert srv.stats.malformed == 2 and srv.stats.ignored == 1
            srv.answering = True
            tr.sendto(SdpRequest(Security.NONE).to_bytes(), ("::1", srv.port))
            reply = await asyncio.wait_for(replies.get(), 2)
            assert SdpResponse.from_bytes(reply).port == 50002
        finally:
            tr.close()


@needs_ipv6
async def test_client_ignores_bad_and_rejected_replies() -> None:
    """A fake SECC that first answers garbage, then a response the caller rejects, then a good one."""
    loop = asyncio.get_running_loop()
    good = SdpResponse(LOOP, 50010, Security.TLS)
    bad_sec = SdpResponse(LOOP, 50011, Security.NONE)
    sent = 0

    class Fake(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.tr = transport

        def datagram_received(self, data: bytes, addr: object) -> None:
            nonlocal sent
            SdpRequest.from_bytes(data)
            self.tr.sendto(b"\x01\xfe\x90\x01junk", addr)  # type: ignore[attr-defined]
            self.tr.sendto(bad_sec.to_bytes(), addr)  # type: ignore[attr-defined]
            self.tr.sendto(good.to_bytes(), addr)  # type: ignore[attr-defined]
            sent += 1

    tr, _ = await loop.create_datagram_endpoint(Fake, local_addr=("::1", 0))
    try:
        port = tr.get_extra_info("sockname")[1]
        r = await discover(Security.TLS, address="::1", port=port,
                           accept=lambda resp: resp.security is Security.TLS)
        assert r == good and sent == 1
    finally:
        tr.close()


def test_multicast_needs_interface() -> None:
    with pytest.raises(ValueError, match="interface"):
        asyncio.run(discover())


@needs_ipv6
async def test_lo_interface_has_no_multicast_but_answers() -> None:
    async with SdpServer(tcp_port=50002, interface="lo", address=LOOP, port=0) as srv:
        assert srv.multicast_joined is False
        r = await discover(Security.NONE, address="::1", interface="lo", port=srv.port)
        assert r.address == LOOP


MCAST_IFACES = multicast_interfaces()


@pytest.mark.skipif(not MCAST_IFACES, reason="no up, multicast-capable interface with an IPv6 "
                    "link-local address (only loopback): multicast SDP not testable here")
async def test_multicast_discovery_then_tcp_over_link_local() -> None:
    """The whole EVCC path on a real interface: multicast SDP to ff02::1%iface (looped back to
    the local SECC), then a TCP connection to the announced link-local address with its scope."""
    iface = MCAST_IFACES[0]

    async def hello(conn: V2GTPConnection) -> None:
        await conn.send(0x8001, b"hello")

    server = await start_server(hello, "::", 0)
    tcp_port = server.sockets[0].getsockname()[1]
    try:
        async with SdpServer(tcp_port=tcp_port, interface=iface, port=0) as srv:
            assert srv.multicast_joined
            assert srv.address == link_local_address(iface)
            r = await discover(Security.NONE, interface=iface, port=srv.port, max_requests=8)
        assert r.address.is_link_local and r.port == tcp_port
        host = endpoint_host(r, iface)
        assert host.endswith(f"%{iface}")
        async with await open_connection(host, r.port, timeout=5) as conn:
            assert (await conn.recv(timeout=5)).payload == b"hello"
    finally:
        server.close()
        await server.wait_closed()


def test_endpoint_host() -> None:
    assert endpoint_host(SdpResponse(ipaddress.IPv6Address("fe80::1"), 50000), "eth1") == "fe80::1%eth1"
    assert endpoint_host(SdpResponse(ipaddress.IPv6Address("fe80::1"), 50000)) == "fe80::1"
    assert endpoint_host(SdpResponse(ipaddress.IPv6Address("2001:db8::1"), 50000), "eth1") == "2001:db8::1"
