"""Properties of the layers, on real session bytes, with hypothesis choosing the damage:
framing is independent of how the stream is split; reassembly is independent of segment order
and duplication; no input makes the analyser raise."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iso15118.capture.analyzer import Analyzer, CaptureDecoder
from iso15118.capture.events import Event
from iso15118.capture.framing import V2GTPStream
from iso15118.capture.packets import TcpSegment
from iso15118.capture.pcapio import Record
from iso15118.capture.reassembly import TcpConnection
from iso15118.capture.tls_decrypt import Keylog, TlsDecryptor
from tests.capture.capgen import MERC_DC

_REF = [e for e in CaptureDecoder(MERC_DC, decode=False).events() if e.kind == "v2g"]
# The EV's byte stream: its V2GTP frames back to back.
STREAM = b"".join(b"\x01\xfe" + struct.pack(">HI", e.payload_type, len(e.payload)) + e.payload
                  for e in _REF if e.direction == "EV->EVSE")
FRAMES = [e.payload for e in _REF if e.direction == "EV->EVSE"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_framing_any_split(cuts: list[int]) -> None:
    s = V2GTPStream()
    out = []
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    for a, b in zip(bounds, bounds[1:]):
        out += [m.payload for m in s.feed(STREAM[a:b], 0.0, 1)]
    assert out == FRAMES
    assert not s.problems and s.at_frame_boundary


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=len(STREAM) - 200), st.integers(min_value=1, max_value=150))
def test_framing_resynchronises_after_a_gap(start: int, missing: int) -> None:
    """Lose ``missing`` bytes anywhere: every frame that starts after the gap is still found."""
    s = V2GTPStream()
    got = [m.offset for m in s.feed(STREAM[:start], 0.0, 1)]
    s.gap(missing, 0.0, 2)
    got += [m.offset for m in s.feed(STREAM[start + missing :], 0.0, 3)]
    offsets, pos = [], 0
    for f in FRAMES:
        offsets.append(pos)
        pos += 8 + len(f)
    expected = [o for o in offsets if o + 8 + 0 <= start and o + 8 + len(FRAMES[offsets.index(o)]) <= start]
    after = [o for o in offsets if o >= start + missing]
    assert got[: len(expected)] == expected
    assert got[-len(after):] == after if after else True
    assert set(got) <= set(offsets)


def _segments(chunk: int) -> list[tuple[int, bytes]]:
    return [(1000 + i, STREAM[i : i + chunk]) for i in range(0, len(STREAM), chunk)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=20, max_value=400), st.randoms(use_true_random=False), st.integers(0, 30))
def test_reassembly_any_order(chunk: int, rnd, dups: int) -> None:  # type: ignore[no-untyped-def]
    """Segments delivered in any order, some twice: the same byte stream comes out."""
    segs = _segments(chunk)
    order = segs[1:]
    rnd.shuffle(order)
    order = [segs[0], *order] + [rnd.choice(segs) for _ in range(dups)]
    out = bytearray()
    notices = []
    conn = TcpConnection(1, (b"a" * 16, 1), (b"b" * 16, 2), lambda c, d, data, ts, f: out.extend(data),
                         lambda c, n: notices.append(n), lambda c, d, m: None, 0.0, 1)
    syn = TcpSegment(b"a" * 16, b"b" * 16, 1, 2, 999, 0, 0x02, b"")
    conn.segment(syn, 0, 0.0, 1)
    for i, (seq, data) in enumerate(order):
        conn.segment(TcpSegment(b"a" * 16, b"b" * 16, 1, 2, seq, 0, 0x18, data), 0, 0.0, i + 2)
    conn.flush(0.0, 0)
    assert bytes(out) == STREAM
    assert not [n for n in notices if n.kind in ("gap", "retransmission_mismatch")]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([1, 113, 276, 0, 101, 228, 229, 105]), st.lists(st.binary(max_size=200), max_size=30))
def test_analyser_never_raises_on_garbage(linktype: int, frames: list[bytes]) -> None:
    events: list[Event] = []
    an = Analyzer(events.append)
    for i, data in enumerate(frames):
        an.process(Record(i + 1, 1.0 + i, linktype, data, len(data)))
    an.finish()
    assert an.stats.internal_errors == 0, [e.detail for e in events if e.name == "internal decoder error"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20))
def test_tls_decryptor_never_raises(chunks: list[bytes]) -> None:
    t = TlsDecryptor(Keylog())
    for i, c in enumerate(chunks):
        for out in t.feed(i % 2, b"\x16\x03\x03" + c if i < 2 else c):
            assert out.kind in ("app", "event")
