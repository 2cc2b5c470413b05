"""The decoding pipeline: capture records in, timeline :class:`~iso15118.capture.events.Event`
objects out, streamed.

    records -> link/IP/TCP/UDP headers (packets) -> HomePlug AV (slac) / SDP (UDP 15118) /
    TCP reassembly (reassembly) -> [TLS decryption (tls_decrypt)] -> V2GTP framing (framing) ->
    SupportedAppProtocol negotiation -> EXI decoding with the negotiated schema (decode)

V2G connections are found without being told the port: the SDP response names the SECC's
address and TCP port; any other TCP stream is V2G when its first bytes carry a V2GTP header
(signature ``01 FE`` + known payload type + sane length) - or, for a capture that starts inside
a connection, when a chain of plausible headers turns up in its first bytes.

Directions: the TCP client of a V2G connection is the EV (it sent the SYN, or it sent the
request that SDP answered); when the capture starts inside a connection without any hint, the
first decoded request decides.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from iso15118.capture.decode import DecodeCache, Decoded, codec_unavailable_reason
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event, Finding, FindingKind
from iso15118.capture.framing import FramedMessage, V2GTPStream, find_v2gtp, looks_like_v2gtp
from iso15118.capture.limits import (
    COMMUNICATION_SETUP_TIMEOUT,
    PROTOCOL_LABELS,
    SECC_SEQUENCE_TIMEOUT,
    loop_limit,
    protocol_for_namespace,
    schema_for,
    timing_limits,
)
from iso15118.capture.packets import (
    ETHERTYPE_HOMEPLUG_AV,
    TCP_ACK,
    TCP_SYN,
    L2Frame,
    Malformed,
    TcpSegment,
    UdpDatagram,
    dissect,
    format_addr,
    format_mac,
)
from iso15118.capture.pcapio import LINKTYPE_NAMES, ReadProblem, Record, open_capture
from iso15118.capture.reassembly import StreamNotice, TcpConnection
from iso15118.capture.slac import direction_hint, parse_homeplug
from iso15118.facts.namespaces import AppProtocol
from iso15118.facts.payload import MAINSTREAM_FOR_SCHEMA, NAMESPACE_TO_PAYLOAD_TYPE, SCHEMA_OF_PAYLOAD, PayloadType
from iso15118.facts.transport import TRANSPORTS, carries

# the -20 grammars, in payload-type order (common, ac, dc, acdp, wpt)
SESSION_SCHEMAS_20 = tuple(dict.fromkeys(k for k in SCHEMA_OF_PAYLOAD.values() if k != "sap"))

__all__ = ["Analyzer", "AnalyzerStats", "CaptureDecoder", "analyze"]

SDP_PORT = 15118
_UNDECIDED_LIMIT = 4096  # bytes held while deciding what a connection carries
_CLOSED_KEEP = 1024  # closed connections remembered (late retransmissions, port reuse)
_TLS_RECORD_TYPES = (20, 21, 22, 23)
_SAP = int(PayloadType.SAP)  # 0x8001: SupportedAppProtocol, and every -2 / DIN message
# the limits are pure functions of (protocol, request): asked once per message, computed once
_loop_limit = functools.lru_cache(maxsize=1024)(loop_limit)
_timing_limits = functools.lru_cache(maxsize=1024)(timing_limits)

_NOTICE_LEVEL = {
    "open": "info",
    "fin": "info",
    "rst": "warning",
    "midstream": "warning",
    "retransmission": "warning",
    "retransmission_mismatch": "error",
    "overlap": "warning",
    "out_of_order": "warning",
    "gap": "error",
    "snap_cut": "error",
    "keepalive": "info",
    "port_reuse": "warning",
}


@dataclass
class AnalyzerStats:
    """Counters for the summary and the tests."""

    frames: int = 0
    slac: int = 0
    sdp: int = 0
    v2g_messages: int = 0
    v2g_by_direction: dict[str, int] = field(default_factory=lambda: {EV_TO_EVSE: 0, EVSE_TO_EV: 0})
    decode_errors: int = 0
    malformed: int = 0
    tcp_notices: dict[str, int] = field(default_factory=dict)
    framing_problems: int = 0
    capture_problems: int = 0
    connections: int = 0
    v2g_connections: int = 0
    tls_connections: int = 0
    linktypes: set[int] = field(default_factory=set)
    cache_hits: int = 0
    cache_misses: int = 0
    internal_errors: int = 0


class _Conn:
    """What the analyser knows about one TCP connection."""

    __slots__ = (
        "kind", "streams", "protocol", "sap_done", "sap_offer", "flipped", "roles_known",
        "pending_req", "last_res_ts", "hold", "tls", "session_id", "known_port", "note_done",
        "sdp_security", "held_notices", "ends", "loop", "namespace",
    )

    def __init__(self) -> None:
        self.kind = "undecided"  # undecided | v2g | tls | other
        self.streams: list[V2GTPStream] | None = None
        self.protocol: str | None = None
        self.sap_done = False
        self.sap_offer: dict[int, str] = {}
        self.flipped = False
        self.roles_known = False
        self.pending_req: deque[tuple[str, float, int]] = deque()
        self.last_res_ts: float | None = None
        self.hold: list[list[tuple[bytes, float, int]]] = [[], []]
        self.tls: Any = None
        self.session_id: str | None = None
        self.known_port = False
        self.note_done = False
        self.sdp_security: int | None = None
        self.held_notices: list[Event] | None = []  # TCP events held until the kind is known
        self.ends: tuple[tuple[str, str], tuple[str, str]] | None = None  # printable endpoints
        self.loop: list[Any] | None = None  # [request base, start ts, start frame, reported]
        self.namespace: str | None = None  # the AppProtocol namespace the SAP negotiation chose


class Analyzer:
    """Feed records with :meth:`process`, call :meth:`finish` at the end; every event goes to
    ``on_event`` as soon as it is known.

    ``keylog``: an SSLKEYLOGFILE path (or a loaded :class:`~iso15118.capture.tls_decrypt.Keylog`)
    to decrypt TLS.  ``decode``: False skips EXI decoding (framing only).  ``cache_size``: the
    decode memo size (0 disables it).
    """

    def __init__(
        self,
        on_event: Callable[[Event], None],
        *,
        keylog: Any = None,
        decode: bool = True,
        cache_size: int = 4096,
    ) -> None:
        self.on_event = on_event
        self.stats = AnalyzerStats()
        self.decode = decode
        self.cache = DecodeCache(cache_size)
        if isinstance(keylog, (str, os.PathLike)):
            from iso15118.capture.tls_decrypt import Keylog

            keylog = Keylog.load(keylog)
        self.keylog = keylog
        self._tcp: dict[tuple[bytes, int, bytes, int], tuple[TcpConnection, int]] = {}
        self._closed: OrderedDict[int, TcpConnection] = OrderedDict()
        self._next_id = 1
        self._secc_endpoints: dict[tuple[bytes, int], int] = {}  # (addr, port) -> SDP security byte
        self._secc_ports: set[int] = set()
        self._server_ports: set[tuple[bytes, int]] = set()
        self._slac_start: tuple[float, int] | None = None  # first CM_SLAC_PARAM.REQ (ts, frame)
        self._pev_mac: bytes | None = None
        self._evse_mac: bytes | None = None
        self._last_ts = 0.0
        self._last_frame = 0
        self._linktype_warned: set[int] = set()
        codec_reason = codec_unavailable_reason() if decode else None
        self._codec_reason = codec_reason
        self._codec_noted = False

    # -- plumbing -------------------------------------------------------------------------

    def _emit(self, ev: Event) -> None:
        self.on_event(ev)

    def add_secrets(self, text: bytes) -> None:
        """TLS secrets embedded in the capture (pcapng Decryption Secrets Block): merged into the
        key log (a new one when ``--keylog`` was not given)."""
        from iso15118.capture.tls_decrypt import Keylog

        embedded = Keylog.parse(text.decode("ascii", "replace"))
        if self.keylog is None:
            self.keylog = embedded
        else:
            self.keylog.merge(embedded)
        self._emit(Event(self._last_ts, self._last_frame, "tls", "TLS secrets in capture", "info",
                         detail=f"{len(embedded)} secrets from a pcapng Decryption Secrets Block added to the key log"))

    def capture_problem(self, p: ReadProblem) -> None:
        """Report damage found by the capture reader."""
        self.stats.capture_problems += 1
        level = "info" if p.kind == "resynced" else "error"
        self._emit(
            Event(self._last_ts, p.after_frame, "capture", f"capture file {p.kind}", level,
                  detail=f"{p.message} (file offset {p.offset})")
        )

    # -- records --------------------------------------------------------------------------

    def process(self, rec: Record) -> None:
        """Decode one record.  Never raises: a bug met on odd input becomes an error event."""
        self.stats.frames += 1
        self._last_ts = rec.ts
        self._last_frame = rec.index
        try:
            pkt = dissect(rec.linktype, rec.data)
            if pkt.__class__ is TcpSegment:  # the common case first, without a call
                self._tcp_segment(pkt, rec)  # type: ignore[arg-type]
            elif pkt is not None:
                self._process(pkt, rec)
        except Exception as exc:  # defensive: a capture must never crash the decoder
            self.stats.internal_errors += 1
            self._emit(Event(rec.ts, rec.index, "capture", "internal decoder error", "error",
                             detail=f"{type(exc).__name__}: {exc} (rest of this frame skipped)"))

    def _process(self, pkt: Any, rec: Record) -> None:
        t = type(pkt)
        if t is TcpSegment:
            self._tcp_segment(pkt, rec)  # type: ignore[arg-type]
        elif t is UdpDatagram:
            if pkt.sport == SDP_PORT or pkt.dport == SDP_PORT:  # type: ignore[union-attr]
                self._sdp(pkt, rec)  # type: ignore[arg-type]
        elif t is L2Frame:
            if pkt.ethertype == ETHERTYPE_HOMEPLUG_AV:  # type: ignore[union-attr]
                self._slac(pkt, rec)  # type: ignore[arg-type]
        elif t is Malformed:
            self.stats.malformed += 1
            reason = pkt.reason  # type: ignore[union-attr]
            if reason.startswith("unsupported link type"):
                if rec.linktype in self._linktype_warned:
                    return
                self._linktype_warned.add(rec.linktype)
                reason += f" ({LINKTYPE_NAMES.get(rec.linktype, 'unknown')}); frames of this type are skipped"
                self._emit(Event(rec.ts, rec.index, "capture", "unsupported link type", "error", detail=reason))
                return
            self._emit(Event(rec.ts, rec.index, "capture", "malformed frame", "warning", detail=reason))

    # -- SLAC -----------------------------------------------------------------------------

    def _slac(self, pkt: L2Frame, rec: Record) -> None:
        self.stats.slac += 1
        m = parse_homeplug(pkt.src_mac, pkt.dst_mac, pkt.payload)
        if m.name == "CM_SLAC_PARAM.REQ":
            self._pev_mac = pkt.src_mac
            if self._slac_start is None:
                self._slac_start = (rec.ts, rec.index)
        elif m.name == "CM_SLAC_PARAM.CNF":
            self._evse_mac = pkt.src_mac
        hint = direction_hint(m.name)
        if self._pev_mac is not None and pkt.src_mac == self._pev_mac:
            direction = EV_TO_EVSE
        elif self._evse_mac is not None and pkt.src_mac == self._evse_mac and hint is not None:
            direction = EVSE_TO_EV
        elif hint == "EV":
            direction = EV_TO_EVSE
        elif hint == "EVSE":
            direction = EVSE_TO_EV
        else:
            direction = "local"  # host <-> own modem (CM_SET_KEY, vendor-specific...)
        level = "info"
        detail = ""
        if m.error:
            level, detail = "warning", m.error
        res = m.fields.get("Result")
        if m.name == "CM_SET_KEY.CNF" and res not in (None, 0, 1):
            level = "warning"
        self._emit(
            Event(rec.ts, rec.index, "slac", m.name, level, direction, None, detail, dict(m.fields),
                  format_mac(pkt.src_mac), format_mac(pkt.dst_mac))
        )

    # -- SDP ------------------------------------------------------------------------------

    def _sdp(self, pkt: UdpDatagram, rec: Record) -> None:
        data = pkt.payload
        src = f"[{format_addr(pkt.src)}]:{pkt.sport}"
        dst = f"[{format_addr(pkt.dst)}]:{pkt.dport}"
        if not looks_like_v2gtp(data) or len(data) < 8:
            self._emit(Event(rec.ts, rec.index, "sdp", "SDP (not V2GTP)", "warning", None, None,
                             f"{len(data)} bytes: {data[:32].hex()}", src=src, dst=dst))
            return
        ptype = int.from_bytes(data[2:4], "big")
        length = int.from_bytes(data[4:8], "big")
        body = data[8 : 8 + length]
        self.stats.sdp += 1
        sec_names = {0x00: "TLS", 0x10: "no TLS"}
        tr_names = {0x00: "TCP", 0x10: "UDP"}
        fields: dict[str, Any]
        if ptype in (0x9000, 0x9002) and len(body) >= 2:
            fields = {"Security": sec_names.get(body[0], f"0x{body[0]:02X}"),
                      "Transport": tr_names.get(body[1], f"0x{body[1]:02X}")}
            self._emit(Event(rec.ts, rec.index, "sdp", "SDP request", "info", EV_TO_EVSE, None, "", fields,
                             src, dst, payload_type=ptype, payload=body))
        elif ptype in (0x9001, 0x9003) and len(body) >= 20:
            addr = body[:16]
            port = int.from_bytes(body[16:18], "big")
            fields = {"SECC": format_addr(addr), "Port": port,
                      "Security": sec_names.get(body[18], f"0x{body[18]:02X}"),
                      "Transport": tr_names.get(body[19], f"0x{body[19]:02X}")}
            self._secc_endpoints[(addr, port)] = body[18]
            self._secc_ports.add(port)
            self._emit(Event(rec.ts, rec.index, "sdp", "SDP response", "info", EVSE_TO_EV, None,
                             f"V2G server at [{fields['SECC']}]:{port}", fields, src, dst,
                             payload_type=ptype, payload=body))
        else:
            self._emit(Event(rec.ts, rec.index, "sdp", f"SDP payload type 0x{ptype:04X}", "warning", None, None,
                             f"{len(body)} bytes: {body[:32].hex()}", src=src, dst=dst, payload_type=ptype,
                             payload=body))

    # -- TCP ------------------------------------------------------------------------------

    def _tcp_segment(self, seg: TcpSegment, rec: Record) -> None:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        entry = self._tcp.get(key)
        flags = seg.flags
        if entry is not None:
            conn, direction = entry
            if flags & TCP_SYN and not flags & TCP_ACK and direction == 0:
                isn = conn.halves[0].isn
                if isn is not None and isn != seg.seq and (conn.closed or conn.halves[0].delivered or conn.reset):
                    self._retire(conn, rec.ts, rec.index)
                    entry = None
                elif isn is not None and isn != seg.seq:
                    self._notice(conn, StreamNotice("port_reuse", 0, rec.ts, rec.index,
                                                    "new SYN on a live connection: treated as a new connection"))
                    self._retire(conn, rec.ts, rec.index)
                    entry = None
        if entry is None:
            conn, direction = self._new_conn(seg, rec)
        conn.segment(seg, direction, rec.ts, rec.index)
        if conn.reset or (conn.halves[0].closed and conn.halves[1].closed):  # conn.closed, inline
            self._park(conn)

    def _new_conn(self, seg: TcpSegment, rec: Record) -> tuple[TcpConnection, int]:
        flags = seg.flags
        a = (seg.src, seg.sport)
        b = (seg.dst, seg.dport)
        app = _Conn()
        if flags & TCP_SYN and not flags & TCP_ACK:
            client, server = a, b
            app.roles_known = True
        elif flags & TCP_SYN:
            client, server = b, a
            app.roles_known = True
        elif b in self._secc_endpoints or seg.dport in self._secc_ports or b in self._server_ports:
            client, server = a, b
            app.roles_known = True
        elif a in self._secc_endpoints or seg.sport in self._secc_ports or a in self._server_ports:
            client, server = b, a
            app.roles_known = True
        else:
            client, server = a, b  # a guess; the first decoded request may flip it
        if server in self._secc_endpoints or server[1] in self._secc_ports:
            app.known_port = True
            app.sdp_security = self._secc_endpoints.get(server)
        if app.roles_known:
            self._server_ports.add(server)
        conn = TcpConnection(self._next_id, client, server, self._on_data, self._notice, self._on_gap, rec.ts, rec.index)
        self._next_id += 1
        conn.app = app
        self.stats.connections += 1
        self._tcp[(client[0], client[1], server[0], server[1])] = (conn, 0)
        self._tcp[(server[0], server[1], client[0], client[1])] = (conn, 1)
        return conn, (0 if a == client else 1)

    def _park(self, conn: TcpConnection) -> None:
        """A closed connection stays reachable for late segments, within a bounded number."""
        if conn.id in self._closed:
            return
        self._closed[conn.id] = conn
        self._finish_streams(conn, conn.last_ts, self._last_frame)
        for h in conn.halves:  # keep a little history for late retransmissions, not 64 KiB
            if len(h.history) > 2048:
                del h.history[:-2048]
        while len(self._closed) > _CLOSED_KEEP:
            _cid, old = self._closed.popitem(last=False)
            self._drop(old)

    def _drop(self, conn: TcpConnection) -> None:
        c, s = conn.client, conn.server
        for k in ((c[0], c[1], s[0], s[1]), (s[0], s[1], c[0], c[1])):
            e = self._tcp.get(k)
            if e is not None and e[0] is conn:
                del self._tcp[k]

    def _retire(self, conn: TcpConnection, ts: float, frame: int) -> None:
        if conn.id not in self._closed:
            conn.flush(ts, frame)
            self._finish_streams(conn, ts, frame)
        else:
            del self._closed[conn.id]
        self._drop(conn)

    def _dir_label(self, conn: TcpConnection, direction: int) -> str:
        app: _Conn = conn.app  # type: ignore[assignment]
        client_side = (direction == 0) != app.flipped
        return EV_TO_EVSE if client_side else EVSE_TO_EV

    def _endpoints(self, conn: TcpConnection, direction: int) -> tuple[str, str]:
        app: _Conn = conn.app  # type: ignore[assignment]
        ends = app.ends
        if ends is None:
            c = f"[{format_addr(conn.client[0])}]:{conn.client[1]}"
            s = f"[{format_addr(conn.server[0])}]:{conn.server[1]}"
            ends = app.ends = ((c, s), (s, c))
        return ends[direction]

    def _notice(self, conn: TcpConnection, n: StreamNotice) -> None:
        st = self.stats.tcp_notices
        st[n.kind] = st.get(n.kind, 0) + 1
        app: _Conn = conn.app  # type: ignore[assignment]
        if app.kind == "other":
            return  # reassembly details of unrelated traffic are noise
        src, dst = self._endpoints(conn, n.direction)
        name = {"open": "TCP connect", "fin": "TCP FIN", "rst": "TCP RST"}.get(n.kind, f"TCP {n.kind.replace('_', ' ')}")
        fields = {"bytes": n.nbytes} if n.nbytes else {}
        ev = Event(n.ts, n.frame, "tcp", name, _NOTICE_LEVEL.get(n.kind, "warning"),
                   self._dir_label(conn, n.direction), conn.id, n.detail, fields, src, dst)
        if app.kind == "undecided" and app.held_notices is not None:
            app.held_notices.append(ev)
            if len(app.held_notices) > 64:
                del app.held_notices[:-64]
            return
        self._emit(ev)

    def _on_gap(self, conn: TcpConnection, direction: int, missing: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        if app.kind == "v2g" and app.streams is not None:
            app.streams[direction].gap(missing, self._last_ts, self._last_frame)
            self._framing_problems(conn, direction)
        elif app.kind == "tls" and app.tls is not None:
            src, dst = self._endpoints(conn, direction)
            for out in app.tls.gap(direction, missing):
                self._emit(Event(self._last_ts, self._last_frame, "tls", out.name, out.level,
                                 self._dir_label(conn, direction), conn.id, out.detail, dict(out.fields), src, dst,
                                 tls=True))
        elif app.kind == "undecided":
            app.hold[direction].append((b"", -1.0, missing))  # marker: a gap

    # -- stream classification -------------------------------------------------------------

    def _on_data(self, conn: TcpConnection, direction: int, data: bytes, ts: float, frame: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        kind = app.kind
        if kind == "v2g":
            self._v2g_data(conn, direction, data, ts, frame)
        elif kind == "tls":
            self._tls_data(conn, direction, data, ts, frame)
        elif kind == "undecided":
            app.hold[direction].append((data, ts, frame))
            self._classify(conn, direction)

    def _classify(self, conn: TcpConnection, direction: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        held = app.hold[direction]
        buf = b"".join(d for d, t, _f in held if t >= 0)
        if len(buf) < 8 and not any(t < 0 for _d, t, _f in held):
            return
        midstream = not conn.syn_seen or any(t < 0 for _d, t, _f in held)
        decision = None
        resync = False
        if looks_like_v2gtp(buf, stream_types_only=True) and not midstream:
            decision = "v2g"
        elif len(buf) >= 3 and buf[0] in _TLS_RECORD_TYPES and buf[1] == 3 and buf[2] <= 4:
            if self.keylog is not None or app.known_port:
                decision = "tls"
            else:
                decision = "other"
        elif looks_like_v2gtp(buf, stream_types_only=True):
            decision = "v2g"
        else:
            idx = find_v2gtp(buf)
            if idx >= 0 and (midstream or app.known_port):
                decision, resync = "v2g", True
            elif app.known_port:
                decision, resync = "v2g", True
            elif len(buf) >= _UNDECIDED_LIMIT or not midstream:
                decision = "other"
        if decision is None:
            return
        app.kind = decision
        held_notices, app.held_notices = app.held_notices, None
        if decision == "other":
            app.hold = [[], []]
            conn.ignored = True
            for h in conn.halves:
                h.history = bytearray()
                h.pending.clear()
                h.pending_bytes = 0
            return
        for ev in held_notices or ():
            ev.direction = self._dir_label(conn, 0 if ev.direction == EV_TO_EVSE else 1)
            self._emit(ev)
        if decision == "v2g":
            self.stats.v2g_connections += 1
            app.streams = [V2GTPStream(resync=resync), V2GTPStream(resync=resync)]
            if not app.known_port:
                src, dst = self._endpoints(conn, 0)
                how = "a V2GTP header at the stream start" if not resync else "V2GTP headers found inside the stream"
                self._emit(Event(held[0][1] if held and held[0][1] >= 0 else conn.first_ts, conn.first_frame,
                                 "note", "V2G connection", "info", None, conn.id,
                                 f"recognised by {how} (no SDP response seen for this port)", {}, src, dst))
        else:
            self.stats.tls_connections += 1
            self._start_tls(conn)
        holds, app.hold = app.hold, [[], []]
        for d in (direction, 1 - direction):
            for data, ts, frame in holds[d]:
                if ts < 0:
                    self._on_gap(conn, d, frame)
                else:
                    self._on_data(conn, d, data, ts, frame)

    # -- TLS ------------------------------------------------------------------------------

    def _start_tls(self, conn: TcpConnection) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        src, dst = self._endpoints(conn, 0)
        if self.keylog is None:
            app.tls = None
            self._emit(Event(conn.first_ts, conn.first_frame, "tls", "TLS connection (encrypted)", "warning", None,
                             conn.id, "no --keylog given: application data cannot be decoded", {}, src, dst))
            return
        from iso15118.capture.tls_decrypt import TlsDecryptor

        app.tls = TlsDecryptor(self.keylog)

    def _tls_data(self, conn: TcpConnection, direction: int, data: bytes, ts: float, frame: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        if app.tls is None:
            return
        outs = app.tls.feed(direction, data)
        cr = app.tls.client_random
        if not app.known_port and cr is not None and not self.keylog.knows(cr):
            # TLS on a port SDP did not announce, of a session the key log does not know: likely
            # unrelated traffic; said once, not decrypted.
            app.kind = "other"
            app.tls = None
            conn.ignored = True
            src, dst = self._endpoints(conn, 0)
            self._emit(Event(ts, frame, "tls", "TLS connection not decrypted", "info", None, conn.id,
                             f"TLS session not in the key log (client random {cr.hex()[:16]}...)", {}, src, dst,
                             tls=True))
            return
        for out in outs:
            if out.kind == "app":
                if app.streams is None:
                    app.streams = [V2GTPStream(resync=False), V2GTPStream(resync=False)]
                    self.stats.v2g_connections += 1
                self._v2g_data(conn, direction, out.data, ts, frame, tls=True)
            else:
                src, dst = self._endpoints(conn, direction)
                self._emit(Event(ts, frame, "tls", out.name, out.level, self._dir_label(conn, direction), conn.id,
                                 out.detail, dict(out.fields), src, dst, tls=True))

    # -- V2G ------------------------------------------------------------------------------

    def _framing_problems(self, conn: TcpConnection, direction: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        stream = app.streams[direction]  # type: ignore[index]
        if not stream.problems:
            return
        src, dst = self._endpoints(conn, direction)
        for p in stream.problems:
            self.stats.framing_problems += 1
            level = "warning" if p.kind == "resync" and not p.data else "error"
            fields: dict[str, Any] = {}
            if p.offset is not None:
                fields["stream_offset"] = p.offset
            self._emit(Event(p.ts, p.frame, "framing", f"V2GTP {p.kind.replace('_', ' ')}", level,
                             self._dir_label(conn, direction), conn.id, p.detail, fields, src, dst,
                             payload=p.data or None))
        stream.problems.clear()

    def _v2g_data(self, conn: TcpConnection, direction: int, data: bytes, ts: float, frame: int, tls: bool = False) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        stream = app.streams[direction]  # type: ignore[index]
        msgs = stream.feed(data, ts, frame)
        if stream.problems:
            self._framing_problems(conn, direction)
        for m in msgs:
            self._message(conn, direction, m, tls)

    def _message(self, conn: TcpConnection, direction: int, m: FramedMessage, tls: bool) -> None:
        # Runs once per V2G message: the cheap tests of the helpers it calls are made here first.
        app: _Conn = conn.app  # type: ignore[assignment]
        ptype = m.payload_type
        schema = schema_for(ptype, app.protocol, app.sap_done)
        dec: Decoded | None = None
        wrong_type: str | None = None  # the payload type the message should have travelled in
        stats = self.stats
        if schema is not None and self.decode:
            cache = self.cache
            dec = cache.decode(schema, m.payload)
            if self._codec_reason is None:
                if dec.error is not None and ptype == _SAP:
                    dec, schema = self._fallback(app, schema, m.payload, dec)
                # _payload_type_check returns at once unless a negotiated session may see a wrong type
                if app.sap_done and app.protocol is not None and (ptype != _SAP or app.protocol == "-20"):
                    dec, schema, wrong_type = self._payload_type_check(app, ptype, schema, m.payload, dec)
            stats.cache_hits = cache.hits
            stats.cache_misses = cache.misses

        # Roles: the EV sends requests.  Flip once when the first request comes from the "server".
        if dec is not None and dec.name and not app.roles_known:
            is_req = dec.name.endswith("Req")
            if is_req == (direction == 1):
                app.flipped = True
            app.roles_known = True
            if app.flipped:
                src, dst = self._endpoints(conn, direction)
                self._emit(Event(m.ts, m.frame, "note", "roles", "info", None, conn.id,
                                 "capture started inside the connection; EV side taken from the first request",
                                 {}, src, dst))
        label = EV_TO_EVSE if (direction == 0) != app.flipped else EVSE_TO_EV  # as _dir_label

        name = "?"
        level = "info"
        detail = ""
        fields: dict[str, Any] | None = {}
        rc = None
        if schema is None:
            name = f"V2GTP payload type 0x{ptype:04X}"
            level = "warning"
            detail = "payload type without an EXI schema; shown as hex"
        elif dec is None:
            name = f"EXI ({schema})"
        elif dec.error is not None:
            if self._codec_reason is None:
                stats.decode_errors += 1
            level = "error"
            name = f"undecodable ({schema})"
            detail = dec.error
            where: dict[str, Any] = {}
            if dec.bit_offset is not None:
                where["bit_offset"] = dec.bit_offset
            if dec.path:
                where["path"] = dec.path
            fields = where
            if self._codec_reason is not None:
                level = "warning"
                name = f"EXI payload 0x{ptype:04X} (not decoded)"
                if not self._codec_noted:
                    self._codec_noted = True
                    self._emit(Event(m.ts, m.frame, "note", "EXI codec unavailable", "warning", detail=dec.error))
                detail = ""
                fields = {}
        else:
            name = dec.name or "?"
            rc = dec.response_code
            fields = None  # the key fields of dec, formed when asked for (Event.fields)
            if dec.facet_warnings or dec.trailing:
                level = "warning"
                detail = "; ".join([str(w) for w in dec.facet_warnings] + (
                    [f"{len(dec.trailing)} byte(s) after the end of the EXI document, ignored"] if dec.trailing else []))
            if rc is not None:
                urc = rc.upper()  # SupportedAppProtocol spells it "Failed_NoNegotiation"
                if urc.startswith("FAILED"):
                    level = "error"
                elif urc.startswith("WARN"):
                    level = "warning"
            sid = dec.session_id
            if sid and sid.strip("0"):
                app.session_id = sid
            if dec.schema == "sap":
                self._track_sap(app, dec, conn, m)

        if app.protocol is None and (schema == "din" or schema == "iso2"):
            app.protocol = schema
        stats.v2g_messages += 1
        by_dir = stats.v2g_by_direction
        by_dir[label] = by_dir.get(label, 0) + 1
        ends = app.ends
        if ends is None:
            self._endpoints(conn, 0)
            ends = app.ends
        src, dst = ends[direction]  # type: ignore[index]
        if dec is not None and (wrong_type is not None or dec.facet_warnings or dec.trailing):
            findings = self._findings(app, label, ptype, schema, dec, wrong_type)
        else:
            findings = []
        if wrong_type is not None:
            level = "error"
            detail = "; ".join(x for x in (findings[0].message, detail) if x)
        ev = Event(
            m.ts, m.frame, "v2g", name, level, label, conn.id, detail, fields, src, dst,
            ptype, schema, app.protocol, m.payload, dec,
            (dec.session_id if dec is not None else None) or app.session_id, rc,
            None, m.first_frame, tls, None, findings,
        )
        if dec is not None and dec.name:
            timing = self._timing(app, ev)
            self.on_event(ev)
            for t in timing:
                self.on_event(t)
        else:
            self.on_event(ev)

    def _session_schemas(self, app: _Conn) -> list[str]:
        """The grammars of the session's negotiated protocol, the likeliest first."""
        if app.protocol == "din":
            return ["din"]
        if app.protocol in ("iso2", "iso2-2010"):
            return ["iso2"]
        if app.protocol == "-20":
            energy = SCHEMA_OF_PAYLOAD.get(NAMESPACE_TO_PAYLOAD_TYPE.get(app.namespace or "", 0))
            first = ["common"] + ([energy] if energy and energy != "common" else [])
            return first + [k for k in SESSION_SCHEMAS_20 if k not in first]
        return []

    def _payload_type_check(self, app: _Conn, ptype: int, schema: str, payload: bytes,
                            dec: Decoded) -> tuple[Decoded, str, str | None]:
        """A message under the wrong V2GTP payload type (a -20 CertificateInstallationReq as
        0x8001, -2 EXI as 0x8002): decoded with the session's negotiated grammar and the payload
        type it belongs in returned (None: nothing wrong, or nothing decodes it)."""
        if not app.sap_done or app.protocol is None:
            return dec, schema, None
        if app.protocol != "-20":
            # -2 and DIN carry every message in 0x8001: any other EXI payload type is the sender's
            # defect, whatever that type's own grammar might make of the bytes
            if ptype == PayloadType.SAP:
                return dec, schema, None
            session = self._session_schemas(app)
            if not session:
                return dec, schema, None
            d2 = self.cache.decode(session[0], payload)
            if d2.error is None:
                return d2, session[0], f"0x{PayloadType.EXI_ENCODED:04X}"
            return dec, schema, None
        if dec.error is None and not dec.trailing:
            return dec, schema, None
        # not decodable with its payload type's grammar (or only up to padding): another grammar
        # of the session that reads it cleanly is the one the message belongs to
        for alt in self._session_schemas(app):
            if alt == schema:
                continue
            d2 = self.cache.decode(alt, payload)
            if d2.error is None and not d2.trailing:
                return d2, alt, f"0x{MAINSTREAM_FOR_SCHEMA[alt]:04X}"
        return dec, schema, None

    def _findings(self, app: _Conn, label: str, ptype: int, schema: str | None, dec: Decoded | None,
                  wrong_type: str | None) -> list[Finding]:
        if dec is None or (wrong_type is None and not dec.facet_warnings and not dec.trailing):
            return []
        party = "EV" if label == EV_TO_EVSE else "EVSE" if label == EVSE_TO_EV else None
        who = f"the {party}'s defect" if party else "the sender's defect"
        out: list[Finding] = []
        if wrong_type is not None and schema is not None:
            proto = PROTOCOL_LABELS.get(app.protocol or "", app.protocol or "?")
            got = SCHEMA_OF_PAYLOAD.get(ptype)
            got_s = f" (the type of '{got}' messages)" if got else ""
            out.append(Finding(
                FindingKind.WRONG_PAYLOAD_TYPE,
                f"{dec.name} sent as payload type 0x{ptype:04X}{got_s}; {proto} carries it as {wrong_type}: "
                f"decoded with the session's '{schema}' grammar ({who})",
                party, {"payload_type": f"0x{ptype:04X}", "expected_payload_type": wrong_type, "schema": schema,
                        "protocol": app.protocol}))
        for w in dec.facet_warnings:
            out.append(Finding(FindingKind.VALUE_OUTSIDE_FACET, f"{w} ({who})", party, w.as_dict()))
        if dec.trailing:
            out.append(Finding(FindingKind.TRAILING_BYTES, f"{len(dec.trailing)} byte(s) after the end of the EXI "
                               f"document, ignored ({who})", party,
                               {"trailing_hex": dec.trailing[:64].hex().upper(), "trailing_bytes": len(dec.trailing)}))
        return out

    def _fallback(self, app: _Conn, schema: str, payload: bytes, dec: Decoded) -> tuple[Decoded, str]:
        """A 0x8001 payload failed with the expected schema: when the negotiation was not seen (or
        not decodable), try the other 0x8001 schemas and adopt the protocol whose schema decodes
        it (DIN and -2 grammars differ enough that one of them fails on the other's messages)."""
        if app.protocol is not None and app.sap_done:
            return dec, schema
        if schema != "sap":
            d2 = self.cache.decode("sap", payload)
            if d2.error is None:
                return d2, "sap"
        ok = {alt: self.cache.decode(alt, payload) for alt in ("din", "iso2") if alt != schema}
        ok = {k: v for k, v in ok.items() if v.error is None}
        if not ok:
            return dec, schema
        if len(ok) == 1:
            alt = next(iter(ok))
            why = f"only the {PROTOCOL_LABELS[alt]} schema decodes the messages"
        else:
            # Both grammars accept it.  The -2 grammar is the more permissive one on DIN streams
            # (a DIN SessionSetupReq reads as a -2 WeldingDetectionReq), so DIN wins unless only
            # the -2 reading gives the message a session starts with.
            setup = [k for k, v in ok.items() if v.name in ("SessionSetupReq", "SessionSetupRes")]
            alt = setup[0] if len(setup) == 1 else "din"
            why = f"both DIN SPEC 70121 and ISO 15118-2 decode the first message; {PROTOCOL_LABELS[alt]} assumed"
        app.protocol = alt
        app.sap_done = True
        self._emit(Event(self._last_ts, self._last_frame, "note", "protocol inferred", "warning", None, None,
                         f"no SupportedAppProtocol negotiation seen for this connection: {why}"))
        return ok[alt], alt

    def _track_sap(self, app: _Conn, dec: Decoded, conn: TcpConnection, m: FramedMessage) -> None:
        if dec.schema != "sap" or dec.message is None:
            return
        if dec.name == "supportedAppProtocolReq":
            app.sap_offer = {}
            for ap in dec.message.findall("AppProtocol"):
                ns = ap.find("ProtocolNamespace")
                sid = ap.find("SchemaID")
                if ns is not None and sid is not None and isinstance(sid.value, int):
                    app.sap_offer[sid.value] = str(ns.value)
        elif dec.name == "supportedAppProtocolRes":
            app.sap_done = True
            if (dec.response_code or "").upper().startswith("FAILED"):
                return  # no protocol was agreed
            sid = dec.message.find("SchemaID")
            if sid is not None and sid.value in app.sap_offer:
                chosen = app.sap_offer[sid.value]
                app.namespace = chosen
                app.protocol = protocol_for_namespace(chosen)
                if app.protocol is None:
                    self._emit(Event(m.ts, m.frame, "note", "unknown protocol", "warning", None, conn.id,
                                     f"negotiated namespace {chosen!r} is not one this decoder knows"))
                else:
                    self._check_transport(app, conn, m)
            elif sid is not None:
                self._emit(Event(m.ts, m.frame, "note", "SAP", "warning", None, conn.id,
                                 f"SchemaID {sid.value} was not offered in the request seen"))

    def _check_transport(self, app: _Conn, conn: TcpConnection, m: FramedMessage) -> None:
        """The protocol agreed must be one the connection's TLS version carries (facts.transport:
        DIN on TCP only, -2 on TCP or TLS 1.2, -20 on TCP or TLS 1.3)."""
        label = app.protocol if app.protocol != "iso2-2010" else "iso2"
        tls = app.kind == "tls"
        seen = getattr(app.tls, "version", None) if tls else None  # "TLS 1.2" / "TLS 1.3"
        version = f"TLSv{seen.split()[-1]}" if seen else None
        if label is None or carries(AppProtocol(label), tls, version):
            return
        allowed = ", ".join(sorted(t.value for t in TRANSPORTS[AppProtocol(label)]))
        self._emit(Event(m.ts, m.frame, "note", "protocol over this transport", "warning", None, conn.id,
                         f"{PROTOCOL_LABELS[label]} negotiated over {seen or 'TLS'}: it runs over {allowed} only"))

    def _timing(self, app: _Conn, ev: Event) -> list[Event]:
        """Pair requests and responses; report responses later than the limits."""
        name = ev.name
        out: list[Event] = []
        if name.endswith("Req"):
            base = name[:-3]
            if app.last_res_ts is not None and ev.ts - app.last_res_ts > SECC_SEQUENCE_TIMEOUT:
                out.append(Event(ev.ts, ev.frame, "timing", f"{name} late", "warning", ev.direction, ev.conn,
                                 f"{ev.ts - app.last_res_ts:.3f} s after the previous response "
                                 f"(V2G_SECC_Sequence_Timeout {SECC_SEQUENCE_TIMEOUT:.0f} s)",
                                 {"delay_s": round(ev.ts - app.last_res_ts, 6), "limit_s": SECC_SEQUENCE_TIMEOUT,
                                  "rule": "sequence_timeout"}))
            app.pending_req.append((base, ev.ts, ev.frame))
            loop = app.loop
            if loop is None or loop[0] != base:
                app.loop = [base, ev.ts, ev.frame, False] if _loop_limit(app.protocol, base) else None
            if len(app.pending_req) > 8:
                app.pending_req.popleft()
        elif name.endswith("Res"):
            base = name[:-3]
            app.last_res_ts = ev.ts
            loop = app.loop
            if loop is not None and loop[0] == base and not loop[3]:
                limit = _loop_limit(app.protocol, base)
                if limit is not None and ev.ts - loop[1] > limit[0]:
                    loop[3] = True
                    out.append(Event(ev.ts, ev.frame, "timing", f"{base} loop too long", "error", ev.direction,
                                     ev.conn, f"{ev.ts - loop[1]:.1f} s since the first {base}Req (frame {loop[2]}): "
                                     f"{limit[1]} {limit[0]:.0f} s exceeded",
                                     {"loop_s": round(ev.ts - loop[1], 3), "limit_s": limit[0], "rule": "loop_timeout",
                                      "timer": limit[1]}))
            if base == "SessionSetup" and self._slac_start is not None:
                t0, f0 = self._slac_start
                self._slac_start = None
                if ev.ts - t0 > COMMUNICATION_SETUP_TIMEOUT:
                    out.append(Event(ev.ts, ev.frame, "timing", "communication setup too long", "warning",
                                     ev.direction, ev.conn,
                                     f"{ev.ts - t0:.1f} s from the first CM_SLAC_PARAM.REQ (frame {f0}) to "
                                     f"SessionSetupRes: V2G_EVCC_CommunicationSetup_Timeout "
                                     f"{COMMUNICATION_SETUP_TIMEOUT:.0f} s (from plug-in) exceeded",
                                     {"setup_s": round(ev.ts - t0, 3), "limit_s": COMMUNICATION_SETUP_TIMEOUT,
                                      "rule": "communication_setup"}))
            while app.pending_req:
                rbase, rts, rframe = app.pending_req.popleft()
                if rbase == base:
                    dt = ev.ts - rts
                    ev.response_time = dt
                    timeout, perf, source = _timing_limits(app.protocol, base)
                    if dt > timeout:
                        ev.timing = "evcc_timeout"
                        out.append(Event(ev.ts, ev.frame, "timing", f"{name} too late", "error", ev.direction, ev.conn,
                                         f"{dt * 1000:.1f} ms after the request (frame {rframe}): EV timeout "
                                         f"V2G_EVCC_Msg_Timeout {timeout * 1000:.0f} ms exceeded [{source}]",
                                         {"response_time_s": round(dt, 6), "limit_s": timeout, "rule": "evcc_timeout",
                                          "request_frame": rframe}))
                    elif dt > perf:
                        ev.timing = "performance_time"
                        more = {"performance_limit_ms": round(perf * 1000, 1)}
                        if ev.given_fields is None:
                            ev.more_fields = more  # added when the key fields are formed
                        else:
                            ev.fields = {**ev.fields, **more}  # fields may be shared
                        out.append(Event(ev.ts, ev.frame, "timing", f"{name} slow", "warning", ev.direction, ev.conn,
                                         f"{dt * 1000:.1f} ms after the request (frame {rframe}): "
                                         f"V2G_SECC_Msg_Performance_Time {perf * 1000:.0f} ms exceeded [{source}]",
                                         {"response_time_s": round(dt, 6), "limit_s": perf, "rule": "performance_time",
                                          "request_frame": rframe}))
                    break
        return out

    # -- end ------------------------------------------------------------------------------

    def _finish_streams(self, conn: TcpConnection, ts: float, frame: int) -> None:
        app: _Conn = conn.app  # type: ignore[assignment]
        if app.kind == "undecided":
            # Too little data to decide: try with what there is.
            for d in (0, 1):
                if app.hold[d]:
                    app.hold[d].append((b"", -1.0, 0))
                    self._classify(conn, d)
                    if app.kind != "undecided":
                        break
        if app.streams is not None:
            for d, s in enumerate(app.streams):
                s.finish(ts, frame)
                self._framing_problems(conn, d)

    def finish(self) -> None:
        """End of capture: flush held segments, report unfinished streams.  Never raises."""
        try:
            self._finish()
        except Exception as exc:  # defensive, as in process()
            self.stats.internal_errors += 1
            self._emit(Event(self._last_ts, self._last_frame, "capture", "internal decoder error", "error",
                             detail=f"{type(exc).__name__}: {exc} (at the end of the capture)"))

    def _finish(self) -> None:
        seen: set[int] = set()
        for conn, _d in list(self._tcp.values()):
            if conn.id in seen:
                continue
            seen.add(conn.id)
            if conn.id in self._closed:
                continue
            conn.flush(self._last_ts, self._last_frame)
            self._finish_streams(conn, self._last_ts, self._last_frame)
            app: _Conn = conn.app  # type: ignore[assignment]
            if app.kind in ("v2g", "tls") and not conn.closed:
                src, dst = self._endpoints(conn, 0)
                self._emit(Event(self._last_ts, self._last_frame, "tcp", "TCP still open", "info", None, conn.id,
                                 "the capture ends before the connection was closed", {}, src, dst))


class CaptureDecoder:
    """One capture file decoded: iterate :meth:`events`; afterwards :attr:`stats` and
    :attr:`reader` (its ``problems``, ``linktypes``) describe the run.

    Raises :class:`~iso15118.capture.pcapio.CaptureFormatError` (on construction) only when the
    file is not a capture at all; damage inside it becomes ``capture`` events.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keylog: Any = None,
        decode: bool = True,
        cache_size: int = 4096,
    ) -> None:
        self._queue: deque[Event] = deque()
        self.analyzer = Analyzer(self._queue.append, keylog=keylog, decode=decode, cache_size=cache_size)
        self.reader = open_capture(path, on_problem=self.analyzer.capture_problem,
                                   on_secrets=self.analyzer.add_secrets)

    @property
    def stats(self) -> AnalyzerStats:
        return self.analyzer.stats

    def events(self, progress: Callable[[int, int], None] | None = None) -> Iterator[Event]:
        """Timeline events in capture order, streamed.  ``progress(done, total)`` gets byte
        counts every 1024 records."""
        queue = self._queue
        an = self.analyzer
        reader = self.reader
        try:
            n = 0
            for rec in reader:
                an.process(rec)
                while queue:
                    yield queue.popleft()
                n += 1
                if progress is not None and not n & 1023:
                    progress(reader.position, reader.size)
            an.finish()
            an.stats.linktypes = set(reader.linktypes)
            while queue:
                yield queue.popleft()
            if progress is not None:
                progress(reader.size, reader.size)
        finally:
            reader.close()


def analyze(path: str | os.PathLike[str], **kwargs: Any) -> Iterator[Event]:
    """Shorthand: the events of :class:`CaptureDecoder` ``(path, **kwargs)``."""
    return CaptureDecoder(path, **kwargs).events()
