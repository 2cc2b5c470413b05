"""TCP reassembly under damage, on a real session: its segments split, reordered, duplicated,
overlapped, dropped or cut by the snap length.  The V2G messages must come out the same (or,
for lost bytes, the same minus what was lost), and every departure must be reported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import Event
from tests.capture.capgen import MERC_DC, records, retcp, split_segment, tcp_layout, tcp_payload_len, transform, write_pcap


def _decode(path: Path) -> tuple[list[Event], CaptureDecoder]:
    dec = CaptureDecoder(path, decode=False)
    return list(dec.events()), dec


def _payloads(events: list[Event]) -> list[tuple[str | None, bytes]]:
    return [(e.direction, e.payload or b"") for e in events if e.kind == "v2g"]


def _data_indexes(recs: list) -> list[int]:
    return [i for i, r in enumerate(recs) if tcp_layout(r.data) and tcp_payload_len(r.data) >= 24]


REF_EVENTS, _ = _decode(MERC_DC)
REF = _payloads(REF_EVENTS)


def test_reference_is_clean() -> None:
    kinds = Counter(e.name for e in REF_EVENTS if e.kind in ("tcp", "framing"))
    assert set(kinds) <= {"TCP connect", "TCP FIN"}
    assert len(REF) == 98


def test_split_reordered_duplicated_overlapping(tmp_path: Path) -> None:
    recs = records(MERC_DC)
    data = set(_data_indexes(recs))

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i not in data:
            return None
        n = tcp_payload_len(r.data)
        a, b = n // 3, 2 * n // 3
        p1, p2, p3 = split_segment(r.data, [a, b])
        lay = tcp_layout(r.data)
        payload = r.data[lay[2] : lay[2] + n]
        overlap = retcp(r.data, payload[a - 4 :], a - 4)  # repeats 4 bytes of p1, carries p2 + p3
        variant = i % 4
        if variant == 0:
            return [p3, p1, p2]  # out of order
        if variant == 1:
            return [p1, p1, p2, p3, p3]  # duplicates
        if variant == 2:
            return [p1, overlap, p3]  # overlap, then a retransmission of p3
        return [p2, p3, p1]  # two held segments

    p = write_pcap(tmp_path / "mangled.pcap", transform(recs, mangle))
    events, dec = _decode(p)
    assert _payloads(events) == REF
    kinds = Counter(e.name for e in events if e.kind == "tcp")
    assert kinds["TCP out of order"] > 30
    assert kinds["TCP retransmission"] > 30
    assert kinds["TCP overlap"] > 10
    assert "TCP gap" not in kinds and "TCP retransmission mismatch" not in kinds
    assert not [e for e in events if e.kind == "framing"]


def test_conflicting_retransmission_is_reported(tmp_path: Path) -> None:
    recs = records(MERC_DC)
    idx = _data_indexes(recs)[10]

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        lay = tcp_layout(r.data)
        n = tcp_payload_len(r.data)
        payload = r.data[lay[2] : lay[2] + n]
        forged = bytes(b ^ 0xFF for b in payload)
        return [r.data, retcp(r.data, forged, 0)]

    p = write_pcap(tmp_path / "conflict.pcap", transform(recs, mangle))
    events, _ = _decode(p)
    bad = [e for e in events if e.name == "TCP retransmission mismatch"]
    assert len(bad) == 1 and bad[0].level == "error"
    assert _payloads(events) == REF  # the first copy is kept


def test_lost_segment_is_a_gap_and_the_stream_resumes(tmp_path: Path) -> None:
    recs = records(MERC_DC)
    idx = _data_indexes(recs)[20]
    lost_frame = recs[idx].index
    p = write_pcap(tmp_path / "lost.pcap", transform(recs, lambda i, r: [] if i == idx else None))
    events, _ = _decode(p)
    gaps = [e for e in events if e.name == "TCP gap"]
    assert len(gaps) == 1 and gaps[0].level == "error"
    assert "acknowledged by the peer" in gaps[0].detail
    got = _payloads(events)
    lost = [e for e in REF_EVENTS if e.kind == "v2g" and e.frame == lost_frame]
    assert len(lost) == 1
    expected = [m for m, e in zip(REF, [e for e in REF_EVENTS if e.kind == "v2g"]) if e.frame != lost_frame]
    assert got == expected


def test_lost_part_of_a_message(tmp_path: Path) -> None:
    """Half of a message lost: that message is dropped with a report, the next one is found."""
    recs = records(MERC_DC)
    idx = _data_indexes(recs)[30]
    victim = recs[idx].index

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        n = tcp_payload_len(r.data)
        return split_segment(r.data, [n // 2])[:1]

    p = write_pcap(tmp_path / "half.pcap", transform(recs, mangle))
    events, _ = _decode(p)
    assert [e for e in events if e.name == "TCP gap"]
    resync = [e for e in events if e.kind == "framing"]
    assert resync and "dropped at a gap" in resync[0].detail
    ref_v2g = [e for e in REF_EVENTS if e.kind == "v2g"]
    expected = [(e.direction, e.payload) for e in ref_v2g if e.frame != victim]
    assert _payloads(events) == expected


def test_snap_length_cut(tmp_path: Path) -> None:
    recs = records(MERC_DC)
    idx = _data_indexes(recs)[40]
    victim = recs[idx].index
    lay = tcp_layout(recs[idx].data)
    p = write_pcap(
        tmp_path / "snap.pcap",
        transform(recs, lambda i, r: [r.data[: lay[2] + 10]] if i == idx else None),
    )
    events, _ = _decode(p)
    cut = [e for e in events if e.name == "TCP snap cut"]
    assert len(cut) == 1 and cut[0].level == "error"
    ref_v2g = [e for e in REF_EVENTS if e.kind == "v2g"]
    assert _payloads(events) == [(e.direction, e.payload) for e in ref_v2g if e.frame != victim]


def test_lost_tail_reported_at_the_end(tmp_path: Path) -> None:
    """Segments held out of order whose hole never fills are delivered at the end, after a gap."""
    recs = records(MERC_DC)
    data = _data_indexes(recs)
    idx = data[-6]

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        n = tcp_payload_len(r.data)
        return split_segment(r.data, [n // 2])[1:]  # only the second half arrives

    kept = transform(recs, mangle)
    p = write_pcap(tmp_path / "tail.pcap", kept)
    events, _ = _decode(p)
    assert [e for e in events if e.name in ("TCP gap", "TCP out of order")]
    assert len(_payloads(events)) == len(REF) - 1


def test_sequence_number_wraparound(tmp_path: Path) -> None:
    """The real session's bytes in a connection whose sequence numbers wrap past 2**32."""
    from iso15118.capture.pcapwriter import PcapWriter, TcpFlowWriter

    ref_v2g = [e for e in REF_EVENTS if e.kind == "v2g"]
    p = tmp_path / "wrap.pcap"
    with PcapWriter(p) as w:
        flow = TcpFlowWriter(w, (bytes(15) + b"\x02", 50000), (bytes(15) + b"\x01", 61341),
                             isn=(0xFFFFFF00, 0xFFFFFFF0), mss=40)
        flow.handshake(ref_v2g[0].ts - 0.01)
        for e in ref_v2g:
            frame = (0x01FE0000 | e.payload_type).to_bytes(4, "big") + len(e.payload).to_bytes(4, "big") + e.payload
            flow.send(e.ts, 0 if e.direction == "EV->EVSE" else 1, frame)
        flow.close(ref_v2g[-1].ts + 0.01)
    events, _ = _decode(p)
    assert _payloads(events) == REF
    assert not [e for e in events if e.kind in ("tcp", "framing") and e.level != "info"]
