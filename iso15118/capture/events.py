"""The timeline's items: one :class:`Event` per message or per thing worth reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from iso15118.capture.decode import Decoded
from iso15118.capture.keyfields import key_fields

__all__ = ["Event", "EV_TO_EVSE", "EVSE_TO_EV", "LEVELS", "Finding", "FindingKind"]

EV_TO_EVSE = "EV->EVSE"
EVSE_TO_EV = "EVSE->EV"
LEVELS = ("info", "warning", "error")


class FindingKind(StrEnum):
    """What a :class:`Finding` says about the peer that sent a message."""

    WRONG_PAYLOAD_TYPE = "wrong_payload_type"
    """The V2GTP payload type is not the one that carries this message in the session's protocol
    (a -20 CertificateInstallationReq as 0x8001, -2 EXI as 0x8002); decoded with the session's
    negotiated grammar anyway."""
    VALUE_OUTSIDE_FACET = "value_outside_facet"
    """A value the EXI bits carry but the schema's facets forbid (4 phases against a maximum of 3)."""
    TRAILING_BYTES = "trailing_bytes"
    """Whole bytes after the end of the EXI document in the V2GTP payload (ignored)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A defect of the sending peer found in one message. ``party``: ``EV`` or ``EVSE`` (the
    sender), None when the direction is unknown; ``data``: the facts behind it (JSON-ready)."""

    kind: FindingKind
    message: str
    party: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind.value, "message": self.message}
        if self.party is not None:
            d["party"] = self.party
        d.update(self.data)
        return d


@dataclass(slots=True, init=False)
class Event:
    """One timeline entry.

    ``kind``: ``v2g`` (a V2GTP message on TCP/TLS), ``sdp``, ``slac`` (HomePlug AV), ``tcp``
    (reassembly events: retransmission, gap, fin...), ``tls``, ``framing`` (V2GTP layer damage),
    ``capture`` (file damage, link-layer problems), ``timing`` (a response later than allowed),
    ``note`` (anything else the decoder inferred).

    Made as ``Event(ts, frame, kind, name, level, direction, conn, detail, fields, src, dst, ...)``
    (the attributes' order; ``fields`` None: the key fields of ``decoded``, see :attr:`fields`).
    """

    ts: float
    frame: int
    kind: str
    name: str
    level: str = "info"
    direction: str | None = None
    conn: int | None = None
    detail: str = ""
    given_fields: dict[str, Any] | None = None
    """The ``fields`` given; None: :attr:`fields` forms the key fields of ``decoded`` when first
    asked for (the timeline and JSON show them; the dataset and the summary never ask)."""
    src: str | None = None
    dst: str | None = None
    # V2G messages only:
    payload_type: int | None = None
    schema: str | None = None
    protocol: str | None = None
    payload: bytes | None = None
    decoded: Decoded | None = None
    session_id: str | None = None
    response_code: str | None = None
    response_time: float | None = None
    first_frame: int | None = None
    tls: bool = False
    timing: str | None = None
    """On a response: the timing limit it broke (``performance_time`` / ``evcc_timeout``)."""
    findings: list[Finding] = field(default_factory=list)
    """Defects of the sender found in this message (wrong payload type, values outside facets)."""
    more_fields: dict[str, Any] | None = None
    """Added after the key fields when :attr:`fields` forms them (a response's performance limit)."""

    def __init__(
        self, ts: float, frame: int, kind: str, name: str, level: str = "info", direction: str | None = None,
        conn: int | None = None, detail: str = "", fields: dict[str, Any] | None = None, src: str | None = None,
        dst: str | None = None, payload_type: int | None = None, schema: str | None = None,
        protocol: str | None = None, payload: bytes | None = None, decoded: Decoded | None = None,
        session_id: str | None = None, response_code: str | None = None, response_time: float | None = None,
        first_frame: int | None = None, tls: bool = False, timing: str | None = None,
        findings: list[Finding] | None = None, more_fields: dict[str, Any] | None = None,
    ) -> None:
        self.ts = ts
        self.frame = frame
        self.kind = kind
        self.name = name
        self.level = level
        self.direction = direction
        self.conn = conn
        self.detail = detail
        self.given_fields = fields
        self.src = src
        self.dst = dst
        self.payload_type = payload_type
        self.schema = schema
        self.protocol = protocol
        self.payload = payload
        self.decoded = decoded
        self.session_id = session_id
        self.response_code = response_code
        self.response_time = response_time
        self.first_frame = first_frame
        self.tls = tls
        self.timing = timing
        self.findings = findings if findings is not None else []
        self.more_fields = more_fields

    @property
    def fields(self) -> dict[str, Any]:
        """The event's facts (JSON-ready); for a decoded V2G message its key fields
        (:func:`~iso15118.capture.keyfields.key_fields`, shared with every event of the same
        decoded payload: treat as read-only, assign a new dict to change)."""
        f = self.given_fields
        if f is None:
            d = self.decoded
            if d is None or d.error is not None:
                f = {}
            else:
                try:
                    f = key_fields(d)
                except Exception as exc:  # defensive: a tree the codec made cannot fail this walk
                    f = {"key_fields_error": f"{type(exc).__name__}: {exc}"}
            if self.more_fields:
                f = {**f, **self.more_fields}
            self.given_fields = f
        return f

    @fields.setter
    def fields(self, value: dict[str, Any]) -> None:
        self.given_fields = value

    @property
    def is_error(self) -> bool:
        return self.level == "error"
