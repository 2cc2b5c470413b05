"""SECC Discovery Protocol (SDP) messages: the UDP request an EVCC multicasts to find the charger's
TCP/TLS server, and the SECC's response (digest §1.1).

Each message is a complete V2GTP datagram (8-byte header + payload)::

    SDP request  (type 0x9000, payload 2 bytes, datagram 10 bytes)
        0  1  Security     0x00 TLS, 0x10 no transport security
        1  1  Transport    0x00 TCP, 0x10 UDP
    SDP response (type 0x9001, payload 20 bytes, datagram 28 bytes)
        0  16 SECC IPv6 address
        16 2  SECC port, big-endian
        18 1  Security
        19 1  Transport

What ISO 15118-20 adds, decided from the digest: only the wireless variants, payload types 0x9002
(request) and 0x9003 (response), meant for ACDP / WPT.  No implementation examined carries them and
their payload layout is not documented in the digest (UNVERIFIED), so this module parses them with
the same layout as 0x9000 / 0x9001, reports them through the ``wireless`` flag, and builds them
only when asked (``wireless=True``).  Everything else -- layouts, codes, port 15118 -- is as in
ISO 15118-2.

Parsing is strict about the frame (header, exact payload length, datagram length) and about the
Security / Transport codes, and lenient about the port: Josev only offers ports 49152-65535, but
the digest records libiso's fixed 50000 too, so any non-zero port is accepted
(``SdpResponse.port_in_dynamic_range`` tells whether it is in the RFC 6335 dynamic range).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

import construct as cs

from iso15118.transport.v2gtp import (
    HEADER_SIZE,
    PayloadType,
    V2GTPError,
    decode_header,
    encode_frame,
)

__all__ = [
    "SDP_PORT",
    "SDP_MULTICAST_ADDRESS",
    "REQUEST_PAYLOAD",
    "RESPONSE_PAYLOAD",
    "SdpError",
    "SdpRequest",
    "SdpResponse",
    "Security",
    "TransportProtocol",
    "decode_sdp",
]

SDP_PORT = 15118
"""UDP port of the SECC's SDP server."""
SDP_MULTICAST_ADDRESS = "ff02::1"
"""IPv6 link-local all-nodes multicast group the EVCC sends requests to."""
DYNAMIC_PORTS = range(49152, 65536)


class Security(IntEnum):
    """SDP Security byte."""

    TLS = 0x00
    NONE = 0x10


class TransportProtocol(IntEnum):
    """SDP Transport byte (UDP is reserved: only SDP itself runs over UDP)."""

    TCP = 0x00
    UDP = 0x10


REQUEST_PAYLOAD = cs.Struct(
    "security" / cs.Int8ub,
    "transport" / cs.Int8ub,
)
"""Payload of an SDP request (2 bytes)."""

RESPONSE_PAYLOAD = cs.Struct(
    "address" / cs.Bytes(16),
    "port" / cs.Int16ub,
    "security" / cs.Int8ub,
    "transport" / cs.Int8ub,
)
"""Payload of an SDP response (20 bytes)."""

REQUEST_PAYLOAD_SIZE = REQUEST_PAYLOAD.sizeof()
RESPONSE_PAYLOAD_SIZE = RESPONSE_PAYLOAD.sizeof()

_REQUEST_TYPES = {PayloadType.SDP_REQUEST: False, PayloadType.SDP_REQUEST_WIRELESS: True}
_RESPONSE_TYPES = {PayloadType.SDP_RESPONSE: False, PayloadType.SDP_RESPONSE_WIRELESS: True}


class SdpError(ValueError):
    """An SDP datagram is malformed (length, V2GTP header, payload type or field codes)."""


def _security(code: int, what: str) -> Security:
    try:
        return Security(code)
    except ValueError:
        raise SdpError(f"{what}: invalid Security byte 0x{code:02X} (expected 0x00 or 0x10)") from None


def _transport(code: int, what: str) -> TransportProtocol:
    try:
        return TransportProtocol(code)
    except ValueError:
        raise SdpError(
            f"{what}: invalid Transport byte 0x{code:02X} (expected 0x00 or 0x10)"
        ) from None


def _unframe(data: bytes, types: dict[PayloadType, bool], size: int, what: str) -> tuple[bool, bytes]:
    """Check the V2GTP framing of an SDP datagram; return (wireless, payload)."""
    data = bytes(data)
    try:
        header = decode_header(data)
    except V2GTPError as exc:
        raise SdpError(f"{what}: {exc}") from exc
    if header.payload_type not in types:
        expected = " or ".join(f"0x{int(t):04X}" for t in types)
        raise SdpError(
            f"{what}: V2GTP payload type 0x{header.payload_type:04X}, expected {expected}"
        )
    if header.payload_length != size:
        raise SdpError(
            f"{what}: V2GTP header announces a {header.payload_length}-byte payload, "
            f"expected {size}"
        )
    if len(data) != HEADER_SIZE + size:
        raise SdpError(f"{what}: datagram is {len(data)} bytes, expected {HEADER_SIZE + size}")
    return types[PayloadType(header.payload_type)], data[HEADER_SIZE:]


@dataclass(frozen=True, slots=True)
class SdpRequest:
    """SDP request: what the EVCC asks for."""

    security: Security = Security.TLS
    transport: TransportProtocol = TransportProtocol.TCP
    wireless: bool = False
    """Sent / received as the -20 wireless variant (0x9002)."""

    @property
    def payload_type(self) -> PayloadType:
        return PayloadType.SDP_REQUEST_WIRELESS if self.wireless else PayloadType.SDP_REQUEST

    def to_bytes(self) -> bytes:
        """The full V2GTP datagram."""
        payload = REQUEST_PAYLOAD.build(
            dict(security=int(self.security), transport=int(self.transport))
        )
        return encode_frame(self.payload_type, payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> SdpRequest:
        """Parse a full V2GTP datagram; raises SdpError."""
        wireless, payload = _unframe(data, _REQUEST_TYPES, REQUEST_PAYLOAD_SIZE, "SDP request")
        p = REQUEST_PAYLOAD.parse(payload)
        return cls(
            security=_security(p.security, "SDP request"),
            transport=_transport(p.transport, "SDP request"),
            wireless=wireless,
        )


@dataclass(frozen=True, slots=True)
class SdpResponse:
    """SDP response: where the SECC's TCP / TLS server listens."""

    address: ipaddress.IPv6Address
    port: int
    security: Security = Security.TLS
    transport: TransportProtocol = TransportProtocol.TCP
    wireless: bool = False
    """Sent / received as the -20 wireless variant (0x9003)."""

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv6Address):
            object.__setattr__(self, "address", ipaddress.IPv6Address(self.address))
        if not 0 < self.port <= 0xFFFF:
            raise SdpError(f"SDP response: port {self.port} out of range 1-65535")

    @property
    def payload_type(self) -> PayloadType:
        return PayloadType.SDP_RESPONSE_WIRELESS if self.wireless else PayloadType.SDP_RESPONSE

    @property
    def port_in_dynamic_range(self) -> bool:
        """True if the port is in 49152-65535 (the range Josev's SECC picks from)."""
        return self.port in DYNAMIC_PORTS

    def to_bytes(self) -> bytes:
        """The full V2GTP datagram."""
        payload = RESPONSE_PAYLOAD.build(
            dict(
                address=self.address.packed,
                port=self.port,
                security=int(self.security),
                transport=int(self.transport),
            )
        )
        return encode_frame(self.payload_type, payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> SdpResponse:
        """Parse a full V2GTP datagram; raises SdpError."""
        wireless, payload = _unframe(data, _RESPONSE_TYPES, RESPONSE_PAYLOAD_SIZE, "SDP response")
        p = RESPONSE_PAYLOAD.parse(payload)
        if p.port == 0:
            raise SdpError("SDP response: port 0")
        return cls(
            address=ipaddress.IPv6Address(p.address),
            port=p.port,
            security=_security(p.security, "SDP response"),
            transport=_transport(p.transport, "SDP response"),
            wireless=wireless,
        )


def decode_sdp(data: bytes) -> SdpRequest | SdpResponse:
    """Parse either kind of SDP datagram (e.g. from a capture); raises SdpError."""
    try:
        ptype = decode_header(data).payload_type
    except V2GTPError as exc:
        raise SdpError(f"SDP datagram: {exc}") from exc
    if ptype in _REQUEST_TYPES:
        return SdpRequest.from_bytes(data)
    if ptype in _RESPONSE_TYPES:
        return SdpResponse.from_bytes(data)
    raise SdpError(f"SDP datagram: V2GTP payload type 0x{ptype:04X} is not an SDP type")
