"""TCP stream reassembly, per connection and direction.

Every segment is placed by its sequence number (modulo 2**32).  Bytes are delivered in order to
a sink; whatever departs from a clean in-order stream is *reported*, never silently dropped:

========================  =====================================================================
event kind                meaning
========================  =====================================================================
``open``                  SYN seen (connection start)
``midstream``             the capture starts inside the connection (no SYN for this direction)
``retransmission``        a segment whose bytes were all delivered already (same bytes)
``retransmission_mismatch``  as above but the bytes differ from the first copy (first copy kept)
``overlap``               a segment that repeats delivered bytes and carries new ones
``out_of_order``          a segment ahead of the next expected byte (held until the hole fills)
``gap``                   bytes never captured: the peer acknowledged them, the connection
                          ended, or too much data piled up behind the hole; the stream goes on
                          after the hole and the sink is told (``on_gap``)
``snap_cut``              the capture's snap length cut a segment's payload (reported as a gap)
``keepalive``             a TCP keep-alive probe
``fin`` / ``rst``         orderly close of one direction / reset of the connection
``port_reuse``            a new SYN on a 4-tuple whose previous connection is still known
========================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from iso15118.capture.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TcpSegment

__all__ = ["HalfStream", "StreamNotice", "TcpConnection", "seq_diff"]

_CONTROL = TCP_SYN | TCP_FIN | TCP_RST
# Held out-of-order data beyond which the hole is declared a gap.
MAX_PENDING_BYTES = 256 * 1024
MAX_PENDING_SEGMENTS = 512
# Delivered bytes kept to compare retransmissions against.
HISTORY = 64 * 1024


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in sequence-number space (signed, modulo 2**32)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d & 0x80000000 else d


@dataclass(slots=True)
class StreamNotice:
    """Something the reassembler reports about one direction of a connection."""

    kind: str
    direction: int
    """0 = client to server, 1 = server to client."""
    ts: float
    frame: int
    detail: str
    nbytes: int = 0


class HalfStream:
    """Reassembly state of one direction."""

    __slots__ = (
        "next",
        "isn",
        "pending",
        "pending_bytes",
        "fin_seq",
        "closed",
        "acked",
        "history",
        "delivered",
        "notices",
    )

    def __init__(self) -> None:
        self.next: int | None = None
        self.isn: int | None = None
        self.pending: dict[int, tuple[bytes, float, int]] = {}
        self.pending_bytes = 0
        self.fin_seq: int | None = None
        self.closed = False
        self.acked: int | None = None  # highest ACK the *peer* sent for this direction's bytes
        self.history = bytearray()
        self.delivered = 0  # bytes delivered (stream offset of history's end)
        self.notices: dict[str, int] = {}


DataSink = Callable[["TcpConnection", int, bytes, float, int], None]
NoticeSink = Callable[["TcpConnection", StreamNotice], None]
GapSink = Callable[["TcpConnection", int, int], None]


class TcpConnection:
    """One TCP connection with its two half streams.

    ``on_data(conn, direction, data, ts, frame)`` receives in-order bytes, ``on_notice(conn,
    notice)`` the events of the table above, ``on_gap(conn, direction, missing)`` is called before
    the bytes that follow a hole.  Directions: 0 client->server, 1 server->client.
    """

    __slots__ = (
        "id",
        "client",
        "server",
        "halves",
        "on_data",
        "on_notice",
        "on_gap",
        "syn_seen",
        "reset",
        "first_ts",
        "last_ts",
        "first_frame",
        "app",
        "ignored",
    )

    def __init__(
        self,
        conn_id: int,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        on_data: DataSink,
        on_notice: NoticeSink,
        on_gap: GapSink,
        ts: float,
        frame: int,
    ) -> None:
        self.id = conn_id
        self.client = client
        self.server = server
        self.halves = (HalfStream(), HalfStream())
        self.on_data = on_data
        self.on_notice = on_notice
        self.on_gap = on_gap
        self.syn_seen = False
        self.reset = False
        self.first_ts = ts
        self.last_ts = ts
        self.first_frame = frame
        self.app: object = None  # what the analyser attaches (V2G / TLS state)
        self.ignored = False
        """Set for traffic of no interest: only FIN / RST are still followed (cheap, no buffers)."""

    @property
    def closed(self) -> bool:
        return self.reset or (self.halves[0].closed and self.halves[1].closed)

    def _notice(self, kind: str, direction: int, ts: float, frame: int, detail: str, nbytes: int = 0) -> None:
        h = self.halves[direction]
        h.notices[kind] = h.notices.get(kind, 0) + 1
        self.on_notice(self, StreamNotice(kind, direction, ts, frame, detail, nbytes))

    # -- segment processing -----------------------------------------------------------------

    def segment(self, seg: TcpSegment, direction: int, ts: float, frame: int) -> None:
        """Process one captured segment travelling in ``direction``."""
        self.last_ts = ts
        h = self.halves[direction]
        peer = self.halves[1 - direction]
        flags = seg.flags
        seq = seg.seq
        payload = seg.payload

        if flags & TCP_ACK and peer.next is not None:
            acked = peer.acked
            if acked is None:
                peer.acked = seg.ack
            else:
                d = (seg.ack - acked) & 0xFFFFFFFF  # seq_diff(seg.ack, acked) > 0, inline (every segment)
                if d and not d & 0x80000000:
                    peer.acked = seg.ack
        if not payload and not flags & _CONTROL and not seg.missing:
            return  # a pure ACK: nothing else to do (the common case, kept fast)
        if self.ignored:
            if flags & TCP_RST:
                self.reset = True
                h.closed = peer.closed = True
            elif flags & TCP_FIN:
                h.closed = True
            return

        if flags & TCP_SYN:
            if h.isn is None:
                h.isn = seq
                h.next = (seq + 1) & 0xFFFFFFFF
                self.syn_seen = True
                if direction == 0:
                    self._notice("open", direction, ts, frame, "SYN")
            elif seq == h.isn:
                self._notice("retransmission", direction, ts, frame, "SYN retransmitted")
                return
            seq = (seq + 1) & 0xFFFFFFFF  # data (rare) follows the SYN's sequence number

        if flags & TCP_RST:
            self._notice("rst", direction, ts, frame, "connection reset")
            self.flush(ts, frame)
            self.reset = True
            h.closed = peer.closed = True
            return

        n = len(payload)
        if n or seg.missing:
            if h.next is None:
                h.next = seq
                h.isn = (seq - 1) & 0xFFFFFFFF
                self._notice(
                    "midstream", direction, ts, frame, "capture starts inside the connection; earlier bytes not seen"
                )
            self._data(h, direction, seq, payload, seg.missing, ts, frame)

        if flags & TCP_FIN:
            fin_at = (seq + n + seg.missing) & 0xFFFFFFFF
            if h.closed:
                if not n:
                    self._notice("retransmission", direction, ts, frame, "FIN retransmitted")
            elif h.fin_seq is None:
                h.fin_seq = fin_at
            self._maybe_close(h, direction, ts, frame)

    def _data(self, h: HalfStream, direction: int, seq: int, payload: bytes, missing: int, ts: float, frame: int) -> None:
        assert h.next is not None
        n = len(payload)
        rel = 0 if seq == h.next else seq_diff(seq, h.next)
        if rel == 0:
            self._deliver(h, direction, payload, ts, frame)
            if missing:
                self._gap(h, direction, missing, ts, frame, "snap_cut", f"snap length cut {missing} payload bytes")
            if h.pending:
                self._drain(h, direction, ts, frame)
            return
        if rel < 0:
            end = rel + n
            if n <= 1 and end <= 0 and rel == -1:
                self._notice("keepalive", direction, ts, frame, "keep-alive probe")
                return
            if end <= 0:
                same = self._compare(h, rel, payload)
                if same is False:
                    self._notice(
                        "retransmission_mismatch",
                        direction,
                        ts,
                        frame,
                        f"retransmitted {n} bytes differ from the first copy (first copy kept)",
                        n,
                    )
                else:
                    self._notice("retransmission", direction, ts, frame, f"{n} bytes retransmitted", n)
                return
            same = self._compare(h, rel, payload[:-rel])
            self._notice(
                "overlap",
                direction,
                ts,
                frame,
                f"segment repeats {-rel} delivered bytes"
                + (" (different content; first copy kept)" if same is False else "")
                + f" and adds {end} new",
                -rel,
            )
            self._deliver(h, direction, payload[-rel:], ts, frame)
            if missing:
                self._gap(h, direction, missing, ts, frame, "snap_cut", f"snap length cut {missing} payload bytes")
            if h.pending:
                self._drain(h, direction, ts, frame)
            return
        # Ahead of the next expected byte.
        if h.acked is not None and seq_diff(h.acked, h.next) > 0:
            # The receiver acknowledged bytes we never saw: they were lost by the capture.
            missing_now = min(rel, seq_diff(h.acked, h.next))
            self._gap(
                h, direction, rel, ts, frame, "gap",
                f"{rel} bytes not captured (acknowledged by the peer: lost by the capture)"
                if missing_now == rel
                else f"{rel} bytes not captured",
            )
            self._deliver(h, direction, payload, ts, frame)
            if h.pending:
                self._drain(h, direction, ts, frame)
            return
        if seq in h.pending and len(h.pending[seq][0]) >= n:
            self._notice("retransmission", direction, ts, frame, f"{n} bytes retransmitted (still out of order)", n)
            return
        h.pending[seq] = (payload, ts, frame)
        h.pending_bytes += n
        self._notice("out_of_order", direction, ts, frame, f"{n} bytes arrived {rel} bytes ahead of the stream", n)
        if h.pending_bytes > MAX_PENDING_BYTES or len(h.pending) > MAX_PENDING_SEGMENTS:
            self._skip_hole(h, direction, ts, frame, "too much data held behind the hole")

    def _compare(self, h: HalfStream, rel: int, data: bytes) -> bool | None:
        """Compare ``data`` (starting ``-rel`` bytes before the stream end) with delivered bytes."""
        hist = h.history
        start = len(hist) + rel
        if start < 0:
            return None
        return bytes(hist[start : start + len(data)]) == data

    def _deliver(self, h: HalfStream, direction: int, data: bytes, ts: float, frame: int) -> None:
        if not data:
            return
        h.next = (h.next + len(data)) & 0xFFFFFFFF  # type: ignore[operator]
        h.delivered += len(data)
        hist = h.history
        hist += data
        if len(hist) > 2 * HISTORY:
            del hist[: len(hist) - HISTORY]
        self.on_data(self, direction, data, ts, frame)

    def _gap(self, h: HalfStream, direction: int, missing: int, ts: float, frame: int, kind: str, detail: str) -> None:
        self._notice(kind, direction, ts, frame, detail, missing)
        h.next = (h.next + missing) & 0xFFFFFFFF  # type: ignore[operator]
        h.history.clear()
        self.on_gap(self, direction, missing)

    def _drain(self, h: HalfStream, direction: int, ts: float, frame: int) -> None:
        """Deliver held segments that the stream has reached."""
        progress = True
        while progress and h.pending:
            progress = False
            for s in sorted(h.pending, key=lambda k: seq_diff(k, h.next)):  # type: ignore[arg-type]
                rel = seq_diff(s, h.next)  # type: ignore[arg-type]
                if rel > 0:
                    break
                data, _ts, _frame = h.pending.pop(s)
                h.pending_bytes -= len(data)
                if rel + len(data) > 0:
                    self._deliver(h, direction, data[-rel:] if rel else data, ts, frame)
                progress = True
                break
        self._maybe_close(h, direction, ts, frame)

    def _skip_hole(self, h: HalfStream, direction: int, ts: float, frame: int, why: str) -> None:
        """Declare the hole before the earliest held segment a gap and go on after it."""
        first = min(h.pending, key=lambda k: seq_diff(k, h.next))  # type: ignore[arg-type]
        missing = seq_diff(first, h.next)  # type: ignore[arg-type]
        self._gap(h, direction, missing, ts, frame, "gap", f"{missing} bytes never captured ({why})")
        self._drain(h, direction, ts, frame)

    def _maybe_close(self, h: HalfStream, direction: int, ts: float, frame: int) -> None:
        if h.fin_seq is not None and not h.closed and h.next is not None:
            d = seq_diff(h.fin_seq, h.next)
            if d == 0 and not h.pending:
                # ``next`` stays at the end of the data (the FIN's own sequence number is not
                # data), so late retransmissions are still placed correctly.
                h.closed = True
                self._notice("fin", direction, ts, frame, "FIN: sender closed its direction")
            elif d < 0:
                h.closed = True
                self._notice("fin", direction, ts, frame, "FIN (before bytes already seen)")

    def flush(self, ts: float, frame: int) -> None:
        """End of capture or reset: held segments are delivered after reporting their holes."""
        for direction, h in enumerate(self.halves):
            while h.pending and h.next is not None:
                self._skip_hole(h, direction, ts, frame, "the stream ended before they arrived")
            if h.fin_seq is not None and not h.closed and h.next is not None:
                missing = seq_diff(h.fin_seq, h.next)
                if missing > 0:
                    self._gap(h, direction, missing, ts, frame, "gap", f"{missing} bytes before the FIN never captured")
                    self._maybe_close(h, direction, ts, frame)
