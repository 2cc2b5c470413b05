"""Helpers that derive test captures from the real fixture captures: other link types and file
formats, re-segmented / reordered / duplicated / dropped TCP segments, cut and damaged files.
Only headers are rewritten; every payload byte comes from the real capture."""

from __future__ import annotations

import csv
import datetime
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

from iso15118.capture.pcapio import Record, open_capture
from iso15118.capture.pcapwriter import PcapNgWriter, PcapWriter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "captures"

BYD_DIN = FIXTURES / "BYD_Atto3_2023-04-18T15-30-40.007Z-1_config-dc-dinspec.pcap"
BYD_ISO2 = FIXTURES / "BYD_Atto3_2023-04-18T15-31-50.525Z-2_config-dc-iso2.pcap"
MERC_AC = FIXTURES / "Mercedes-Benz_EQE_2023-04-18T15-20-45.345Z-3_config-ac-iso2.pcap"
MERC_DC = FIXTURES / "Mercedes-Benz_EQE_2023-04-18T15-18-18.778Z-1_config-dc-dinspec.pcap"
CITROEN = FIXTURES / "Citroen_eC4_2024-02-29T12-40-16.003Z-2_iso2_ac.pcap"
MG4 = FIXTURES / "MG_MG4_electric.pcap"
WITH_EVENTLOG = [BYD_DIN, BYD_ISO2, MERC_AC, MERC_DC, CITROEN]
ALL = [*WITH_EVENTLOG, MG4]


def eventlog(pcap: Path) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """The charger's log: (time, message name) of V2G messages from the car and from the charger.
    Lines the logger wrote twice (same time, same message) are kept once."""
    car: list[tuple[float, str]] = []
    evse: list[tuple[float, str]] = []
    path = pcap.with_name(pcap.name[: -len(".pcap")] + ".eventlog.csv")
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 3 and row[2].startswith("V2G "):
                ts = datetime.datetime.fromisoformat(row[0].replace("Z", "+00:00")).timestamp()
                item = (ts, row[2][4:].split()[0])
                lst = car if row[1] == "CAR" else evse
                if lst and lst[-1] == item:
                    continue
                lst.append(item)
    return car, evse


def records(path: Path) -> list[Record]:
    return list(open_capture(path))


def write_pcap(path: Path, recs: Iterable[tuple[float, bytes]], linktype: int = 1) -> Path:
    with PcapWriter(path, linktype) as w:
        for ts, data in recs:
            w.write(ts, data)
    return path


def write_pcapng(path: Path, recs: Iterable[tuple[float, bytes]], linktype: int = 1, **kw: object) -> Path:
    with PcapNgWriter(path, linktype, **kw) as w:  # type: ignore[arg-type]
        for ts, data in recs:
            w.write(ts, data)
    return path


def write_pcap_variant(path: Path, recs: Iterable[tuple[float, bytes]], *, big_endian: bool, nano: bool) -> Path:
    """libpcap in the other byte order and / or with nanosecond timestamps."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1))
        for ts, data in recs:
            sec = int(ts)
            frac = int(round((ts - sec) * (1e9 if nano else 1e6)))
            f.write(struct.pack(e + "IIII", sec, frac, len(data), len(data)) + data)
    return path


# --------------------------------------------------------------------------------------------
# Link-layer rewriting (input: Ethernet frames)


def eth_to_sll(frame: bytes) -> bytes:
    etype = frame[12:14]
    return struct.pack(">HHH", 0, 1, 6) + frame[6:12] + b"\0\0" + etype + frame[14:]


def eth_to_sll2(frame: bytes) -> bytes:
    return frame[12:14] + b"\0\0" + struct.pack(">IHBB", 2, 1, 0, 6) + frame[6:12] + b"\0\0" + frame[14:]


def eth_to_null(frame: bytes) -> bytes | None:
    etype = frame[12:14]
    if etype == b"\x86\xdd":
        return struct.pack("<I", 30) + frame[14:]
    if etype == b"\x08\x00":
        return struct.pack("<I", 2) + frame[14:]
    return None


def eth_to_raw(frame: bytes) -> bytes | None:
    return frame[14:] if frame[12:14] in (b"\x86\xdd", b"\x08\x00") else None


# --------------------------------------------------------------------------------------------
# TCP rewriting (Ethernet + IPv6 / IPv4 + TCP)


def tcp_layout(frame: bytes) -> tuple[int, int, int] | None:
    """(IP offset, TCP offset, payload offset) of an Ethernet/IP/TCP frame, else None."""
    if len(frame) < 14:
        return None
    etype = frame[12:14]
    if etype == b"\x86\xdd" and len(frame) >= 54 and frame[20] == 6:
        ip, tcp = 14, 54
    elif etype == b"\x08\x00" and len(frame) >= 34 and frame[23] == 6:
        ip, tcp = 14, 14 + (frame[14] & 0x0F) * 4
    else:
        return None
    return ip, tcp, tcp + (frame[tcp + 12] >> 4) * 4


def tcp_payload_len(frame: bytes) -> int:
    lay = tcp_layout(frame)
    if lay is None:
        return 0
    ip, _tcp, pay = lay
    if frame[12:14] == b"\x86\xdd":
        end = ip + 40 + struct.unpack_from(">H", frame, ip + 4)[0]
    else:
        end = ip + struct.unpack_from(">H", frame, ip + 2)[0]
    return max(0, end - pay)


def retcp(frame: bytes, payload: bytes, seq_delta: int) -> bytes:
    """The same segment with another payload and its sequence number moved by ``seq_delta``."""
    lay = tcp_layout(frame)
    assert lay is not None
    ip, tcp, pay = lay
    head = bytearray(frame[:pay])
    seq = (struct.unpack_from(">I", head, tcp + 4)[0] + seq_delta) & 0xFFFFFFFF
    struct.pack_into(">I", head, tcp + 4, seq)
    if frame[12:14] == b"\x86\xdd":
        struct.pack_into(">H", head, ip + 4, pay - ip - 40 + len(payload))
    else:
        struct.pack_into(">H", head, ip + 2, pay - ip + len(payload))
    return bytes(head) + payload


def split_segment(frame: bytes, cuts: list[int]) -> list[bytes]:
    """Split a data segment's payload at the given offsets into several segments."""
    lay = tcp_layout(frame)
    assert lay is not None
    n = tcp_payload_len(frame)
    payload = frame[lay[2] : lay[2] + n]
    bounds = [0, *cuts, n]
    return [retcp(frame, payload[a:b], a) for a, b in zip(bounds, bounds[1:]) if b > a]


def transform(recs: list[Record], fn: Callable[[int, Record], list[bytes] | None]) -> list[tuple[float, bytes]]:
    """Apply ``fn(i, record)`` (None = keep) to every record; returns (ts, frame) pairs."""
    out: list[tuple[float, bytes]] = []
    for i, r in enumerate(recs):
        res = fn(i, r)
        if res is None:
            out.append((r.ts, r.data))
        else:
            out.extend((r.ts, d) for d in res)
    return out


# --------------------------------------------------------------------------------------------
# Synthetic V2G conversations (Ethernet + IPv6 + TCP) around EXI payloads given by the caller

EV_MAC, EVSE_MAC = bytes.fromhex("02000000ee01"), bytes.fromhex("02000000cc02")
EV_IP, EVSE_IP = bytes.fromhex("fe80" + "00" * 12 + "0001"), bytes.fromhex("fe80" + "00" * 12 + "0002")
EV_PORT, EVSE_PORT = 50123, 61851


def _tcp6(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
          payload: bytes) -> bytes:
    head = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    seg = head + payload
    pseudo = src_ip + dst_ip + struct.pack(">IxxxB", len(seg), 6)
    data = pseudo + seg + (b"\0" if len(seg) % 2 else b"")
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    seg = seg[:16] + struct.pack(">H", ~total & 0xFFFF) + seg[18:]
    ip6 = struct.pack(">IHBB", 6 << 28, len(seg), 6, 64) + src_ip + dst_ip
    return (EVSE_MAC if src_ip == EV_IP else EV_MAC) + (EV_MAC if src_ip == EV_IP else EVSE_MAC) + b"\x86\xdd" + ip6 + seg


def v2g_conversation(messages: Iterable[tuple[int, int, bytes]], t0: float = 1764115200.0,
                     gap: float = 0.05) -> list[tuple[float, bytes]]:
    """(ts, Ethernet frame) of one TCP connection (EV = client): handshake, then one segment per
    message ``(direction, V2GTP payload type, EXI payload)``, direction 0 = EV->EVSE, 1 = EVSE->EV."""
    syn, fin, ack_f, psh = 0x02, 0x01, 0x10, 0x08
    seq = [1000, 5000]  # next sequence number of the EV and of the EVSE
    ends = [(EV_IP, EVSE_IP, EV_PORT, EVSE_PORT), (EVSE_IP, EV_IP, EVSE_PORT, EV_PORT)]
    out = [(t0, _tcp6(*ends[0], seq[0], 0, syn, b""))]
    out.append((t0 + 0.001, _tcp6(*ends[1], seq[1], seq[0] + 1, syn | ack_f, b"")))
    seq = [seq[0] + 1, seq[1] + 1]
    out.append((t0 + 0.002, _tcp6(*ends[0], seq[0], seq[1], ack_f, b"")))
    t = t0 + 0.01
    for direction, ptype, exi in messages:
        data = struct.pack(">BBHI", 1, 0xFE, ptype, len(exi)) + exi
        out.append((t, _tcp6(*ends[direction], seq[direction], seq[1 - direction], ack_f | psh, data)))
        seq[direction] += len(data)
        t += gap
    out.append((t, _tcp6(*ends[0], seq[0], seq[1], fin | ack_f, b"")))
    out.append((t + 0.001, _tcp6(*ends[1], seq[1], seq[0] + 1, fin | ack_f, b"")))
    return out
