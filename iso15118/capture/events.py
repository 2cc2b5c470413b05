"""The timeline's items: one :class:`Event` per message or per thing worth reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iso15118.capture.decode import Decoded

__all__ = ["Event", "EV_TO_EVSE", "EVSE_TO_EV", "LEVELS"]

EV_TO_EVSE = "EV->EVSE"
EVSE_TO_EV = "EVSE->EV"
LEVELS = ("info", "warning", "error")


@dataclass(slots=True)
class Event:
    """One timeline entry.

    ``kind``: ``v2g`` (a V2GTP message on TCP/TLS), ``sdp``, ``slac`` (HomePlug AV), ``tcp``
    (reassembly events: retransmission, gap, fin...), ``tls``, ``framing`` (V2GTP layer damage),
    ``capture`` (file damage, link-layer problems), ``timing`` (a response later than allowed),
    ``note`` (anything else the decoder inferred).
    """

    ts: float
    frame: int
    kind: str
    name: str
    level: str = "info"
    direction: str | None = None
    conn: int | None = None
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
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

    @property
    def is_error(self) -> bool:
        return self.level == "error"
