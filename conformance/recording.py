"""Real vehicle sessions read from a capture, ready to be replayed against a charger.

A capture (pcap / pcapng, through :mod:`iso15118.capture`) holds one or more TCP connections of
DIN SPEC 70121 or ISO 15118-2 V2G messages.  Each connection becomes a :class:`RecordedSession`:
the vehicle's requests in order, each paired with the answer the recorded charger gave (or None
when the capture holds none), as decoded element trees of our codec (schema keys ``sap``,
``din``, ``iso2``).

A request the strict decoder refuses only because bytes follow the end of its EXI document
(a Tesla pads its ContractAuthenticationReq with one zero byte) is read without the padding and
the exchange says so; any other undecodable request ends what can be replayed of the session
(:attr:`RecordedSession.problems`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iso15118.exi.tree import Element

__all__ = [
    "RecordedExchange",
    "RecordedSession",
    "RecordingError",
    "body_message",
    "read_sessions",
]

REPLAYABLE = ("din", "iso2")
"""The session schemas a real-vehicle replay speaks (the recordings are all DIN or -2)."""

MAX_PADDING = 8
"""At most this many trailing bytes are stripped to read a padded request."""


class RecordingError(ValueError):
    """The file is no capture, or holds no DIN / -2 V2G session to replay."""


@dataclass
class RecordedExchange:
    """One request of the vehicle and the recorded charger's answer."""

    index: int
    schema: str
    """``sap``, ``din`` or ``iso2``."""
    name: str
    """The request's name (``SessionSetupReq`` ...)."""
    request: Element | None
    """The decoded request (None: undecodable, the replay stops before it)."""
    payload: bytes
    response: Element | None = None
    response_name: str | None = None
    response_code: str | None = None
    t: float = 0.0
    """Capture time of the request, seconds from the session's first message."""
    note: str = ""

    @property
    def base(self) -> str:
        return self.name[:-3] if self.name.endswith("Req") else self.name


@dataclass
class RecordedSession:
    """One TCP connection of a recording: the vehicle's side of a V2G session."""

    source: Path
    number: int
    """1-based among the V2G connections of the capture."""
    of: int
    """How many V2G connections the capture holds."""
    protocol: str | None
    """``din`` / ``iso2`` as negotiated in the recording (None: the recorded SAP failed)."""
    exchanges: list[RecordedExchange] = field(default_factory=list)
    ev_address: str | None = None
    problems: list[str] = field(default_factory=list)
    schemas: set[str] = field(default_factory=set)
    """Every schema key the capture decoded this connection with."""

    @property
    def vehicle(self) -> str:
        return self.source.stem

    @property
    def label(self) -> str:
        return self.vehicle if self.of == 1 else f"{self.vehicle}#{self.number}"

    @property
    def sap(self) -> RecordedExchange | None:
        ex = self.exchanges[0] if self.exchanges else None
        return ex if ex is not None and ex.name == "supportedAppProtocolReq" else None

    @property
    def reached_stop(self) -> bool:
        """The recording ends with an answered SessionStopReq."""
        return bool(self.exchanges) and self.exchanges[-1].name == "SessionStopReq" and self.exchanges[-1].response is not None

    @property
    def family(self) -> str | None:
        """``AC`` / ``DC`` as the vehicle's requests show it (DIN is DC only), else the single
        family the recorded charger offered, else None."""
        if self.protocol == "din":
            return "DC"
        for ex in self.exchanges:
            if ex.base in ("CableCheck", "PreCharge", "CurrentDemand", "WeldingDetection"):
                return "DC"
            if ex.base == "ChargingStatus":
                return "AC"
            msg = body_message(ex.request)
            if ex.base == "ChargeParameterDiscovery" and msg is not None:
                mode = msg.find("RequestedEnergyTransferMode")
                if mode is not None and isinstance(mode.value, str):
                    return "AC" if mode.value.startswith("AC") else "DC"
        offered: set[str] = set()
        for ex in self.exchanges:
            res = body_message(ex.response)
            if ex.base == "ServiceDiscovery" and res is not None:
                for el in res.iter():
                    if el.name in ("EnergyTransferMode", "EnergyTransferType") and isinstance(el.value, str):
                        offered.add("AC" if el.value.startswith("AC") else "DC")
        return offered.pop() if len(offered) == 1 else None

    def ev_mac(self) -> bytes | None:
        """The vehicle's MAC address from its EUI-64 link-local address, when it is one."""
        if not self.ev_address:
            return None
        try:
            addr = self.ev_address
            addr = addr[1:].split("]")[0] if addr.startswith("[") else addr
            packed = ipaddress.IPv6Address(addr.split("%")[0]).packed
        except ValueError:
            return None
        iid = packed[8:]
        if iid[3:5] != b"\xff\xfe":
            return None
        return bytes([iid[0] ^ 0x02]) + iid[1:3] + iid[5:8]


def body_message(tree: Element | None) -> Element | None:
    """The message element: the Body child of a DIN / -2 V2G_Message, or the root (SAP)."""
    if tree is None:
        return None
    if tree.name != "V2G_Message":
        return tree
    body = tree.find("Body")
    if body is None:
        return None
    for c in body.children:
        if isinstance(c, Element):
            return c
    return None


def _decode_padded(schema: str, payload: bytes) -> tuple[Element | None, str]:
    """Our codec's reading of ``payload``; bytes left over after the EXI document are
    stripped (at most :data:`MAX_PADDING`) and said so."""
    from iso15118.exi import ExiError
    from iso15118.exi.codec import get_codec

    codec = get_codec(schema)
    error = ""
    for cut in range(0, min(MAX_PADDING, max(0, len(payload) - 2)) + 1):
        data = payload[: len(payload) - cut] if cut else payload
        try:
            tree = codec.decode(data)
        except ExiError as exc:
            error = error or f"{type(exc).__name__}: {exc}"
            if "left over" not in str(exc):
                break
            continue
        if not isinstance(tree, Element):
            return None, "the codec returned no element"
        return tree, (f"{cut} trailing byte(s) after the EXI document stripped" if cut else "")
    return None, error


def read_sessions(path: str | Path) -> list[RecordedSession]:
    """Every DIN / -2 V2G session (TCP connection) of a capture, in capture order."""
    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.events import EV_TO_EVSE

    p = Path(path)
    try:
        events = [e for e in CaptureDecoder(p).events() if e.kind == "v2g" and e.conn is not None]
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{p.name}: not a readable capture: {exc}") from exc
    conns: dict[int, list[Any]] = {}
    for e in events:
        conns.setdefault(e.conn or 0, []).append(e)
    if not conns:
        raise RecordingError(f"{p.name}: no V2G session in the capture (nothing to replay)")
    out: list[RecordedSession] = []
    for number, (_, evs) in enumerate(sorted(conns.items()), start=1):
        sess = RecordedSession(p, number, len(conns), None)
        t0 = evs[0].ts
        pending: RecordedExchange | None = None
        for e in evs:
            schema = e.schema or "sap"
            sess.schemas.add(schema)
            if schema in REPLAYABLE:
                sess.protocol = sess.protocol or schema
            payload = bytes(e.payload or b"")
            if e.direction == EV_TO_EVSE:
                tree = e.decoded.tree if e.decoded is not None else None
                note = ""
                if tree is not None and e.decoded is not None and e.decoded.trailing:
                    note = f"{len(e.decoded.trailing)} trailing byte(s) after the EXI document stripped"
                if tree is None and schema in ("sap", *REPLAYABLE):
                    tree, note = _decode_padded(schema, payload)
                msg = body_message(tree)
                name = msg.name if msg is not None else (e.name if e.name.endswith("Req") else "?")
                if tree is None:
                    sess.problems.append(f"request #{len(sess.exchanges) + 1} undecodable ({note or e.detail})")
                pending = RecordedExchange(len(sess.exchanges), schema, name, tree, payload, t=e.ts - t0, note=note)
                sess.exchanges.append(pending)
                if sess.ev_address is None and e.src:
                    sess.ev_address = str(e.src)
            elif pending is not None and pending.response is None:
                tree = e.decoded.tree if e.decoded is not None else None
                pending.response = tree
                msg = body_message(tree)
                pending.response_name = msg.name if msg is not None else None
                rc = msg.find("ResponseCode") if msg is not None else None
                pending.response_code = str(rc.value) if rc is not None and rc.value is not None else None
        out.append(sess)
    return out
