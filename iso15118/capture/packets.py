"""Fast link / network / transport header parsing with ``struct`` (no scapy dissection).

:func:`dissect` turns one captured frame into a :class:`TcpSegment`, :class:`UdpDatagram` or
:class:`L2Frame` (non-IP Ethernet payloads such as HomePlug AV, Ethertype 0x88E1), or a
:class:`Malformed` describing why it could not be parsed, or ``None`` for traffic that is of no
interest (ARP, ICMP, other IP protocols).

Link types: Ethernet (with 802.1Q / 802.1ad tags), Linux cooked SLL and SLL2, BSD NULL and
OpenBSD LOOP, raw IP (101, 12, 14), raw IPv4 (228), raw IPv6 (229).  Network: IPv4 (options,
fragments reported) and IPv6 (extension headers walked; fragments reported).
"""

from __future__ import annotations

import functools
import ipaddress
import struct

from iso15118.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

__all__ = [
    "ETHERTYPE_HOMEPLUG_AV",
    "L2Frame",
    "Malformed",
    "TcpSegment",
    "UdpDatagram",
    "dissect",
    "format_addr",
    "format_mac",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_HOMEPLUG_AV = 0x88E1

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

_u16 = struct.Struct(">H").unpack_from
_ip4 = struct.Struct(">BBHHHBBH4s4s").unpack_from
_ip6 = struct.Struct(">IHBB16s16s").unpack_from
_tcp = struct.Struct(">HHIIBB").unpack_from
_udp = struct.Struct(">HHHH").unpack_from


class TcpSegment:
    """One TCP segment.  Addresses are raw bytes (4 or 16); :func:`format_addr` prints them."""

    __slots__ = ("src", "dst", "sport", "dport", "seq", "ack", "flags", "payload", "src_mac", "dst_mac", "missing")

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes,
        src_mac: bytes | None = None,
        dst_mac: bytes | None = None,
        missing: int = 0,
    ) -> None:
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.missing = missing
        """Payload bytes the IP header announces but the capture (snap length) does not hold."""
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.src_mac = src_mac
        self.dst_mac = dst_mac


class UdpDatagram:
    """One UDP datagram."""

    __slots__ = ("src", "dst", "sport", "dport", "payload", "src_mac", "dst_mac")

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        payload: bytes,
        src_mac: bytes | None = None,
        dst_mac: bytes | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.payload = payload
        self.src_mac = src_mac
        self.dst_mac = dst_mac


class L2Frame:
    """A non-IP frame (e.g. HomePlug AV management message) with its MAC addresses."""

    __slots__ = ("src_mac", "dst_mac", "ethertype", "payload")

    def __init__(self, src_mac: bytes, dst_mac: bytes, ethertype: int, payload: bytes) -> None:
        self.src_mac = src_mac
        self.dst_mac = dst_mac
        self.ethertype = ethertype
        self.payload = payload


class Malformed:
    """A frame of interest (IP / HomePlug) whose headers are damaged or cut; ``reason`` says how."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


Packet = TcpSegment | UdpDatagram | L2Frame | Malformed | None


@functools.lru_cache(maxsize=4096)
def format_addr(addr: bytes) -> str:
    """IPv4 / IPv6 address bytes as text (IPv6 compressed)."""
    if len(addr) == 4:
        return ".".join(str(b) for b in addr)
    try:
        return str(ipaddress.IPv6Address(addr))
    except ValueError:
        return addr.hex()


@functools.lru_cache(maxsize=4096)
def format_mac(mac: bytes | None) -> str:
    return ":".join(f"{b:02x}" for b in mac) if mac else "?"


def dissect(linktype: int, data: bytes) -> Packet:
    """Parse one frame of the given link type (see module docstring)."""
    try:
        if linktype == LINKTYPE_ETHERNET:
            return _ethernet(data)
        if linktype in (LINKTYPE_RAW, 12, 14):
            return _ip(data, 0, None, None)
        if linktype == LINKTYPE_LINUX_SLL:
            if len(data) < 16:
                return Malformed("SLL header cut")
            proto = _u16(data, 14)[0]
            alen = _u16(data, 4)[0]
            src = data[6:12] if alen == 6 else None
            return _ethertype(proto, data, 16, src, None)
        if linktype == LINKTYPE_LINUX_SLL2:
            if len(data) < 20:
                return Malformed("SLL2 header cut")
            proto = _u16(data, 0)[0]
            src = data[12:18] if data[11] == 6 else None
            return _ethertype(proto, data, 20, src, None)
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if len(data) < 4:
                return Malformed("loopback header cut")
            if linktype == LINKTYPE_LOOP:
                family = struct.unpack_from(">I", data)[0]
            else:
                family = struct.unpack_from("<I", data)[0]
                if family > 0xFFFF:  # written in big-endian host order
                    family = struct.unpack_from(">I", data)[0]
            if family == 2:
                return _ip(data, 4, None, None)
            if family in (10, 24, 28, 30):
                return _ip(data, 4, None, None)
            return None
        if linktype == LINKTYPE_IPV4 or linktype == LINKTYPE_IPV6:
            return _ip(data, 0, None, None)
    except (struct.error, IndexError) as exc:  # defensive: any cut header
        return Malformed(f"headers cut ({exc})")
    return Malformed(f"unsupported link type {linktype}")


def _ethernet(data: bytes) -> Packet:
    if len(data) < 14:
        return Malformed(f"Ethernet frame of {len(data)} bytes")
    etype = (data[12] << 8) | data[13]
    off = 14
    while etype in (ETHERTYPE_VLAN, ETHERTYPE_QINQ):
        if len(data) < off + 4:
            return Malformed("VLAN tag cut")
        etype = (data[off + 2] << 8) | data[off + 3]
        off += 4
    if etype == ETHERTYPE_IPV6 or etype == ETHERTYPE_IPV4:  # _ethertype's first case, inline
        return _ip(data, off, data[6:12], data[0:6])
    return _ethertype(etype, data, off, data[6:12], data[0:6])


def _ethertype(etype: int, data: bytes, off: int, src_mac: bytes | None, dst_mac: bytes | None) -> Packet:
    if etype == ETHERTYPE_IPV6 or etype == ETHERTYPE_IPV4:
        return _ip(data, off, src_mac, dst_mac)
    if etype == ETHERTYPE_HOMEPLUG_AV:
        return L2Frame(src_mac or b"", dst_mac or b"", etype, data[off:])
    return None


def _ip(data: bytes, off: int, src_mac: bytes | None, dst_mac: bytes | None) -> Packet:
    n = len(data)
    if off >= n:
        return Malformed("IP header missing")
    version = data[off] >> 4
    if version == 4:
        if n < off + 20:
            return Malformed("IPv4 header cut")
        vihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _ip4(data, off)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or n < off + ihl:
            return Malformed(f"IPv4 header length {ihl}")
        end = off + total if total else n
        cut = 0
        if end > n:
            cut = end - n  # snap length cut: parse what is there, report the rest as missing
            end = n
        if frag & 0x3FFF:
            if proto in (6, 17):
                return Malformed(f"IPv4 fragment (offset {(frag & 0x1FFF) * 8}) not reassembled")
            return None
        start = off + ihl
    elif version == 6:
        if n < off + 40:
            return Malformed("IPv6 header cut")
        _vtf, plen, nxt, _hlim, src, dst = _ip6(data, off)
        start = off + 40
        end = start + plen if plen else n
        cut = 0
        if end > n:
            cut = end - n
            end = n
        # Walk extension headers.
        while nxt in (0, 43, 60, 51, 44):
            if start + 8 > end:
                return Malformed("IPv6 extension header cut")
            if nxt == 44:
                if proto_frag := data[start]:
                    if proto_frag in (6, 17):
                        return Malformed("IPv6 fragment not reassembled")
                return None
            hdr_next = data[start]
            if nxt == 51:
                length = (data[start + 1] + 2) * 4
            else:
                length = (data[start + 1] + 1) * 8
            nxt = hdr_next
            start += length
        proto = nxt
    else:
        return Malformed(f"IP version {version}")

    if proto == 6:
        if end - start < 20:
            return Malformed("TCP header cut")
        sport, dport, seq, ack, doff, flags = _tcp(data, start)
        hl = (doff >> 4) * 4
        if hl < 20 or start + hl > end:
            return Malformed(f"TCP header length {hl}")
        return TcpSegment(src, dst, sport, dport, seq, ack, flags, data[start + hl : end], src_mac, dst_mac, cut)
    if proto == 17:
        if end - start < 8:
            return Malformed("UDP header cut")
        sport, dport, ulen, _csum = _udp(data, start)
        uend = start + ulen if 8 <= ulen <= end - start else end
        return UdpDatagram(src, dst, sport, dport, data[start + 8 : uend], src_mac, dst_mac)
    return None
