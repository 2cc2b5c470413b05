"""What the SLAC cores and the simulated modem return to their drivers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeySet", "SendFrame", "SlacEvent", "SlacFailed", "SlacMatched"]


@dataclass(frozen=True)
class SendFrame:
    """Write this Ethernet frame (to the line, or to the local modem if addressed to it)."""

    frame: bytes
    what: str = ""


@dataclass(frozen=True)
class SlacMatched:
    """The EV and EVSE are paired: both modems hold ``nmk`` / ``nid``."""

    peer_mac: str
    run_id: bytes
    nmk: bytes
    nid: bytes
    started: float
    ended: float
    attenuation_db: float | None = None
    """Mean attenuation of the chosen ATTEN_CHAR.IND (EV side) or the sent one (EVSE side)."""

    @property
    def duration(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class SlacFailed:
    reason: str
    at: float


@dataclass(frozen=True)
class KeySet:
    """The local modem confirmed CM_SET_KEY (Result 0x00 or 0x01 both mean success)."""

    result: int
    at: float


SlacEvent = SendFrame | SlacMatched | SlacFailed | KeySet
