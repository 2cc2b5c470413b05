"""Writing captures: a libpcap writer and a TCP flow synthesiser.

Used by the benchmark (to build large captures) and by tests that record a real exchange
(bytes that two sockets really sent, relayed through a recording proxy) when no packet capture
tool is available.  The synthesised packets are Ethernet + IPv6 (or IPv4) + TCP with correct
sequence and acknowledgement numbers; checksums are left zero (the decoder does not verify them).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

__all__ = ["PcapNgWriter", "PcapWriter", "TcpFlowWriter"]


class PcapWriter:
    """Minimal libpcap (microsecond) writer."""

    def __init__(self, path_or_file: str | os.PathLike[str] | BinaryIO, linktype: int = 1, snaplen: int = 262144) -> None:
        if isinstance(path_or_file, (str, os.PathLike)):
            self._f: BinaryIO = open(path_or_file, "wb")
            self._own = True
        else:
            self._f = path_or_file
            self._own = False
        self._f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        self.count = 0

    def write(self, ts: float, data: bytes, orig_len: int | None = None) -> None:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self._f.write(struct.pack("<IIII", sec, usec, len(data), orig_len or len(data)))
        self._f.write(data)
        self.count += 1

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ipv6(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    return struct.pack(">IHBB", 0x60000000, len(payload), proto, 64) + src + dst + payload


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    return struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0) + src + dst + payload


class TcpFlowWriter:
    """Synthesises the packets of one TCP connection into a :class:`PcapWriter`.

    ``client`` / ``server`` are (address bytes (4 or 16), port).  Call :meth:`handshake`, then
    :meth:`send` for each chunk each side sent (direction 0 = client to server), then
    :meth:`close`.  Every data segment is acknowledged by a pure ACK from the other side.
    """

    def __init__(
        self,
        writer: PcapWriter,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        *,
        client_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
        server_mac: bytes = b"\x02\x00\x00\x00\x00\x02",
        isn: tuple[int, int] = (1000, 5000),
        mss: int = 1400,
    ) -> None:
        self.w = writer
        self.ends = (client, server)
        self.macs = (client_mac, server_mac)
        self.next = [isn[0], isn[1]]
        self.mss = mss

    def _packet(self, ts: float, d: int, flags: int, seq: int, ack: int, payload: bytes = b"") -> None:
        (saddr, sport), (daddr, dport) = self.ends[d], self.ends[1 - d]
        tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
        seg = tcp + payload
        if len(saddr) == 16:
            ip, etype = _ipv6(saddr, daddr, 6, seg), 0x86DD
        else:
            ip, etype = _ipv4(saddr, daddr, 6, seg), 0x0800
        eth = self.macs[1 - d] + self.macs[d] + struct.pack(">H", etype)
        self.w.write(ts, eth + ip)

    def handshake(self, ts: float) -> None:
        c, s = self.next
        self._packet(ts, 0, 0x02, c, 0)
        self._packet(ts + 1e-5, 1, 0x12, s, c + 1)
        self._packet(ts + 2e-5, 0, 0x10, c + 1, s + 1)
        self.next = [c + 1, s + 1]

    def send(self, ts: float, direction: int, data: bytes, ack: bool = True) -> None:
        d = direction
        for i in range(0, len(data), self.mss):
            chunk = data[i : i + self.mss]
            self._packet(ts, d, 0x18, self.next[d], self.next[1 - d], chunk)
            self.next[d] += len(chunk)
        if ack:
            self._packet(ts + 1e-5, 1 - d, 0x10, self.next[1 - d], self.next[d])

    def close(self, ts: float, direction: int = 0) -> None:
        d = direction
        self._packet(ts, d, 0x11, self.next[d], self.next[1 - d])
        self.next[d] += 1
        self._packet(ts + 1e-5, 1 - d, 0x11, self.next[1 - d], self.next[d])
        self.next[1 - d] += 1
        self._packet(ts + 2e-5, d, 0x10, self.next[d], self.next[1 - d])


class PcapNgWriter:
    """Minimal pcapng writer: one section, one interface, Enhanced Packet Blocks.

    ``tsresol``: the interface's ``if_tsresol`` exponent (6 = microseconds, 9 = nanoseconds).
    ``big_endian`` writes the section in big-endian byte order.
    """

    def __init__(self, path: str | os.PathLike[str], linktype: int = 1, *, tsresol: int = 6,
                 big_endian: bool = False, snaplen: int = 262144) -> None:
        self._f = open(path, "wb")
        self._e = ">" if big_endian else "<"
        self._tick = 10 ** tsresol
        e = self._e
        shb_body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        self._block(0x0A0D0D0A, shb_body)
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
        self._block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)
        self.count = 0

    def _block(self, btype: int, body: bytes) -> None:
        pad = (-len(body)) % 4
        total = 12 + len(body) + pad
        e = self._e
        self._f.write(struct.pack(e + "II", btype, total) + body + b"\0" * pad + struct.pack(e + "I", total))

    def write_secrets(self, keylog_text: bytes, secrets_type: int = 0x544C534B) -> None:
        """A Decryption Secrets Block (default type: TLS key log)."""
        self._block(10, struct.pack(self._e + "II", secrets_type, len(keylog_text)) + keylog_text)

    def write(self, ts: float, data: bytes, orig_len: int | None = None) -> None:
        t = int(round(ts * self._tick))
        body = struct.pack(self._e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(data), orig_len or len(data)) + data
        self._block(6, body)
        self.count += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PcapNgWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
