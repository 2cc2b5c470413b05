"""Events the sans-IO cores return (h11 style): the caller performs the I/O they describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Event:
    """Base class of everything ``receive`` / ``handle_timer`` / ``start`` return."""

    __slots__ = ()


@dataclass(frozen=True)
class SendMessage(Event):
    """Write this V2GTP frame (one write per frame): ``payload_type`` + EXI ``payload``."""

    payload_type: int
    payload: bytes
    message: Any = field(repr=False, default=None)

    @property
    def name(self) -> str:
        return self.message.ELEMENT[1] if self.message is not None else "?"


@dataclass(frozen=True)
class MessageReceived(Event):
    """A message was decoded (for timelines and traces)."""

    payload_type: int
    message: Any = field(repr=False)
    name: str = ""


@dataclass(frozen=True)
class StateChanged(Event):
    """The shared session state moved (see :class:`iso15118.session.rules.State`)."""

    old: Any
    new: Any
    request: str


@dataclass(frozen=True)
class PowerChanged(Event):
    """Power flow after a charge-loop exchange; positive = into the EV battery."""

    power_w: Decimal
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    soc: int | None = None
    charged_wh: Decimal | None = None
    discharged_wh: Decimal | None = None


@dataclass(frozen=True)
class NotificationReceived(Event):
    """EVCC: the SECC asked for something via EVSEStatus (Pause, Terminate, ...)."""

    notification: str
    max_delay: int


@dataclass(frozen=True)
class LocalFault(Event):
    """The core itself cannot go on -- not the peer's fault: it would send a request the rules
    forbid in its state, or a request it built from its controller's values is invalid.  The
    session ends (``SessionEnded`` follows); nothing about the peer is implied."""

    detail: str


@dataclass(frozen=True)
class ProtocolError(Event):
    """Something the peer did violates the protocol (or timed out).

    ``code`` is the ResponseCode value sent (SECC) or a short label (EVCC:
    ``UnexpectedResponse``, ``Timeout``, ``DecodeError``, ``UnknownSession``, a FAILED code
    received ...).
    """

    code: str
    detail: str = ""


@dataclass(frozen=True)
class SessionEnded(Event):
    """The session is over; the caller closes the connection after ``close_after`` seconds
    (or as soon as the peer closes).  ``ok`` is True for a SessionStop without errors."""

    reason: str
    ok: bool
    paused_session_id: bytes | None = None
    close_after: float = 0.0
