"""SDP over asyncio UDP: the SECC's discovery server and the EVCC's ``discover`` client.

SECC (``SdpServer``): binds ``[::]:15118`` (or a given host / port), joins ``ff02::1`` on the
chosen interface when that interface does multicast, and answers every valid SDP request, unicast
to the requester's address and port, with the TCP or TLS endpoint chosen by a
``SecurityStrategy`` (digest §1.1: libiso's ACCEPT_CLIENT_OFFER / ENFORCE_TLS / ENFORCE_NO_TLS).
The Transport byte of the answer is always TCP (V2G sessions run over TCP; Josev does the same).
Malformed datagrams are counted and ignored.  ``answering = False`` makes the server ignore
requests, e.g. while a session is running (as libiso does).

EVCC (``discover``): sends an SDP request to ``[ff02::1%iface]:15118`` (hop limit 1, outgoing
interface set) or, for tests and special set-ups, to any unicast address / port; waits 0.25 s for
an answer and repeats, up to 50 requests (digest §1.1: ``SDP_REQ`` timeout, ``SDP_MAX_REQUEST_COUNTER``);
returns the first valid ``SdpResponse`` or raises ``SdpTimeout``.  Whether the answered security
matches what was asked is session policy and left to the caller (``accept=`` can filter).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from iso15118.transport.sdp import (
    SDP_MULTICAST_ADDRESS,
    SDP_PORT,
    SdpError,
    SdpRequest,
    SdpResponse,
    Security,
    TransportProtocol,
)

__all__ = [
    "SDP_MAX_REQUESTS",
    "SDP_REQUEST_TIMEOUT",
    "SdpServer",
    "SdpTimeout",
    "SecurityStrategy",
    "discover",
    "endpoint_host",
    "interface_index",
    "link_local_address",
]

log = logging.getLogger(__name__)

SDP_REQUEST_TIMEOUT = 0.25
"""Seconds the EVCC waits for a response to one SDP request."""
SDP_MAX_REQUESTS = 50
"""SDP requests the EVCC sends before giving up (one cycle)."""

_IFF_MULTICAST = 0x1000


class SdpTimeout(TimeoutError):
    """No valid SDP response arrived after the last request."""

    def __init__(self, requests: int, destination: str, elapsed: float) -> None:
        self.requests = requests
        self.destination = destination
        self.elapsed = elapsed
        super().__init__(
            f"no SDP response from {destination} after {requests} requests ({elapsed:.2f} s)"
        )


class SecurityStrategy(Enum):
    """How the SECC picks the Security of its answer."""

    ACCEPT_CLIENT_OFFER = "accept_client_offer"
    """Answer with what the EVCC asked for; if that endpoint is not configured, the other one."""
    ENFORCE_TLS = "enforce_tls"
    """Always answer TLS."""
    ENFORCE_NO_TLS = "enforce_no_tls"
    """Always answer plain TCP."""


# ------------------------------------------------------------------------------ interfaces


def interface_index(name: str) -> int:
    """The index of a network interface by name; ValueError if there is none."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise ValueError(f"no network interface named {name!r}") from None


def link_local_address(name: str) -> ipaddress.IPv6Address | None:
    """The first IPv6 link-local (fe80::/10) address of an interface (Linux, /proc), or None."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[5] == name:
            addr = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            if addr.is_link_local:
                return addr
    return None


def endpoint_host(response: SdpResponse, interface: str | None = None) -> str:
    """The host string to connect to for an SDP response: the address, with ``%interface`` added
    when it is link-local (a link-local address means nothing without its interface)."""
    if response.address.is_link_local and interface:
        return f"{response.address}%{interface}"
    return str(response.address)


def multicast_interfaces() -> list[str]:
    """Names of interfaces that are up, do multicast, are not loopback and have an IPv6
    link-local address (Linux sysfs / procfs; empty list elsewhere)."""
    names: list[str] = []
    try:
        entries = sorted(Path("/sys/class/net").iterdir())
    except OSError:
        return names
    for entry in entries:
        try:
            flags = int((entry / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        up, loopback = flags & 0x1, flags & 0x8
        if up and not loopback and flags & _IFF_MULTICAST and link_local_address(entry.name):
            names.append(entry.name)
    return names


def _supports_multicast(name: str) -> bool:
    """Interface flag IFF_MULTICAST (Linux sysfs); assume yes where it cannot be read."""
    try:
        flags = int(Path(f"/sys/class/net/{name}/flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return True
    return bool(flags & _IFF_MULTICAST)


# ------------------------------------------------------------------------------ server


@dataclass
class SdpServerStats:
    """Counters of an SdpServer."""

    requests: int = 0
    responses: int = 0
    ignored: int = 0
    malformed: int = 0


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SdpServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self._server._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SDP server socket error: %s", exc)


class SdpServer:
    """The SECC's SDP responder.

    ``tls_port`` / ``tcp_port``: where the SECC's TLS and plain TCP servers listen (either may be
    None, not both).  ``address``: the IPv6 address announced; default the link-local address of
    ``interface``.  ``host`` / ``port``: UDP bind address (default ``::`` and 15118; port 0 picks
    a free port, see ``.port``).  Use ``async with SdpServer(...)`` or ``start()`` / ``close()``.
    """

    def __init__(
        self,
        *,
        tls_port: int | None = None,
        tcp_port: int | None = None,
        address: ipaddress.IPv6Address | str | None = None,
        interface: str | None = None,
        host: str = "::",
        port: int = SDP_PORT,
        strategy: SecurityStrategy = SecurityStrategy.ACCEPT_CLIENT_OFFER,
    ) -> None:
        if tls_port is None and tcp_port is None:
            raise ValueError("SdpServer needs a tls_port or a tcp_port to announce")
        if strategy is SecurityStrategy.ENFORCE_TLS and tls_port is None:
            raise ValueError("strategy ENFORCE_TLS needs a tls_port")
        if strategy is SecurityStrategy.ENFORCE_NO_TLS and tcp_port is None:
            raise ValueError("strategy ENFORCE_NO_TLS needs a tcp_port")
        self.tls_port = tls_port
        self.tcp_port = tcp_port
        self.interface = interface
        self.ifindex = interface_index(interface) if interface else 0
        if address is None:
            if interface is None:
                raise ValueError("SdpServer needs an address to announce, or an interface")
            address = link_local_address(interface)
            if address is None:
                raise ValueError(f"interface {interface!r} has no IPv6 link-local address")
        self.address = ipaddress.IPv6Address(address)
        self.host = host
        self._port = port
        self.strategy = strategy
        self.answering = True
        """False: ignore requests (e.g. while a session is running)."""
        self.multicast_joined = False
        self.stats = SdpServerStats()
        self._transport: asyncio.DatagramTransport | None = None

    # -- policy (pure) --

    def choose_response(self, request: SdpRequest) -> SdpResponse:
        """The answer to ``request`` under the configured strategy and endpoints."""
        if self.strategy is SecurityStrategy.ENFORCE_TLS:
            security = Security.TLS
        elif self.strategy is SecurityStrategy.ENFORCE_NO_TLS:
            security = Security.NONE
        else:
            security = request.security
            if security is Security.TLS and self.tls_port is None:
                security = Security.NONE
            elif security is Security.NONE and self.tcp_port is None:
                security = Security.TLS
        port = self.tls_port if security is Security.TLS else self.tcp_port
        assert port is not None
        return SdpResponse(
            address=self.address,
            port=port,
            security=security,
            transport=TransportProtocol.TCP,
            wireless=request.wireless,
        )

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The UDP port actually bound (after start)."""
        return self._port

    def _make_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.interface and hasattr(socket, "SO_BINDTODEVICE"):
                try:
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode()
                    )
                except PermissionError:
                    log.info("SDP: no permission to bind to device %s; not bound", self.interface)
            bind_host = self.host
            scope = self.ifindex if ipaddress.IPv6Address(bind_host.split("%")[0]).is_link_local else 0
            sock.bind((bind_host, self._port, 0, scope))
            self._port = sock.getsockname()[1]
            if self.interface and _supports_multicast(self.interface):
                mreq = socket.inet_pton(socket.AF_INET6, SDP_MULTICAST_ADDRESS) + struct.pack(
                    "@I", self.ifindex
                )
                try:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
                    self.multicast_joined = True
                except OSError as exc:
                    log.warning("SDP: cannot join %s on %s: %s",
                                SDP_MULTICAST_ADDRESS, self.interface, exc)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def start(self) -> SdpServer:
        """Bind the socket and start answering."""
        if self._transport is not None:
            raise RuntimeError("SdpServer already started")
        loop = asyncio.get_running_loop()
        sock = self._make_socket()
        transport, _ = await loop.create_datagram_endpoint(lambda: _ServerProtocol(self), sock=sock)
        self._transport = transport
        log.info(
            "SDP server on [%s]:%d (multicast %s) announcing [%s] tls=%s tcp=%s, %s",
            self.host, self._port, "joined" if self.multicast_joined else "off",
            self.address, self.tls_port, self.tcp_port, self.strategy.value,
        )
        return self

    def close(self) -> None:
        """Stop answering and release the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> SdpServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _on_datagram(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        try:
            request = SdpRequest.from_bytes(data)
        except SdpError as exc:
            self.stats.malformed += 1
            log.info("SDP: ignoring datagram from %s: %s", addr[0], exc)
            return
        self.stats.requests += 1
        if not self.answering:
            self.stats.ignored += 1
            return
        response = self.choose_response(request)
        assert self._transport is not None
        self._transport.sendto(response.to_bytes(), addr)
        self.stats.responses += 1
        log.debug("SDP: %s from %s -> %s", request, addr[0], response)


# ------------------------------------------------------------------------------ client


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable while the SECC is not listening yet: keep retrying
        log.debug("SDP client socket error: %s", exc)


async def discover(
    security: Security = Security.TLS,
    transport: TransportProtocol = TransportProtocol.TCP,
    *,
    interface: str | None = None,
    address: str = SDP_MULTICAST_ADDRESS,
    port: int = SDP_PORT,
    request_timeout: float = SDP_REQUEST_TIMEOUT,
    max_requests: int = SDP_MAX_REQUESTS,
    wireless: bool = False,
    accept: Callable[[SdpResponse], bool] | None = None,
) -> SdpResponse:
    """Find the SECC: send SDP requests until a valid response arrives.

    Default destination ``[ff02::1%interface]:15118`` (``interface`` required then).  For a
    unicast destination (``address="::1"``, ``port=...``) the interface is optional.  Datagrams
    that are not valid SDP responses, or that ``accept`` rejects, are ignored.  Raises
    ``SdpTimeout`` after ``max_requests`` requests of ``request_timeout`` seconds each.
    """
    dest_ip = ipaddress.IPv6Address(address.split("%")[0])
    if dest_ip.is_multicast and interface is None:
        raise ValueError(f"multicast SDP to {dest_ip} needs an interface name")
    ifindex = interface_index(interface) if interface else 0
    scope = ifindex if (dest_ip.is_multicast or dest_ip.is_link_local) else 0
    destination = (str(dest_ip), port, 0, scope)
    shown = f"[{dest_ip}{'%' + interface if scope and interface else ''}]:{port}"

    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        if ifindex:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        bind_host = "::1" if dest_ip.is_loopback else "::"
        sock.bind((bind_host, 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    udp, proto = await loop.create_datagram_endpoint(_ClientProtocol, sock=sock)
    request = SdpRequest(security, transport, wireless).to_bytes()
    started = time.monotonic()
    try:
        for attempt in range(1, max_requests + 1):
            udp.sendto(request, destination)
            deadline = loop.time() + request_timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    data = await asyncio.wait_for(proto.queue.get(), remaining)
                except TimeoutError:
                    break
                try:
                    response = SdpResponse.from_bytes(data)
                except SdpError as exc:
                    log.info("SDP: ignoring reply: %s", exc)
                    continue
                if accept is not None and not accept(response):
                    log.info("SDP: response rejected by caller: %s", response)
                    continue
                log.debug("SDP: response after %d request(s): %s", attempt, response)
                return response
        raise SdpTimeout(max_requests, shown, time.monotonic() - started)
    finally:
        udp.close()
