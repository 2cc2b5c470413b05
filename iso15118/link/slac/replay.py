"""Replay the EV side of a recorded SLAC exchange against an EVSE SLAC core (virtual time).

The recording (EVSE-side capture) holds the EV's frames (PARM.REQ, START x3, SOUND x10,
ATTEN_CHAR.RSP, MATCH.REQ) and the EVSE modem's CM_ATTEN_PROFILE.INDs with the real measured
attenuations.  :func:`replay_ev` feeds exactly those, at their recorded times, into an
:class:`~iso15118.link.slac.evse.EvseSlac` that uses the recorded EVSE host MAC (the EV
addressed its RSP and MATCH.REQ to it) and collects what our core answers.  The recorded EVSE's
own frames are not fed: our core takes its place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from iso15118.link.slac import messages as msg
from iso15118.link.slac.events import SendFrame, SlacEvent, SlacFailed, SlacMatched
from iso15118.link.slac.evse import EvseSlac
from iso15118.link.slac.messages import MMType, SlacDecodeError, SlacFrame

__all__ = ["Recording", "read_recording", "replay_ev", "ReplayResult"]


@dataclass
class Recording:
    """The SLAC frames of one capture, with timestamps; the three parties' MACs."""

    frames: list[tuple[float, SlacFrame]]
    ev_mac: str
    evse_mac: str
    modem_mac: str | None
    undecodable: int = 0

    def of(self, mmtype: MMType) -> list[tuple[float, SlacFrame]]:
        return [(t, f) for t, f in self.frames if f.mmtype is mmtype]


def read_recording(path: str | Path) -> Recording:
    """Every 0x88E1 frame of a pcap that parses as a SLAC MME (vendor MMEs are counted only)."""
    from scapy.utils import PcapReader

    frames: list[tuple[float, SlacFrame]] = []
    bad = 0
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            raw = bytes(pkt)
            if len(raw) < 17 or raw[12:14] != b"\x88\xe1":
                continue
            try:
                frames.append((float(pkt.time), msg.parse(raw)))
            except SlacDecodeError:
                bad += 1
    parm = next((f for _t, f in frames if f.mmtype is MMType.CM_SLAC_PARM_REQ), None)
    cnf = next((f for _t, f in frames if f.mmtype is MMType.CM_SLAC_PARM_CNF), None)
    prof = next((f for _t, f in frames if f.mmtype is MMType.CM_ATTEN_PROFILE_IND), None)
    if parm is None or cnf is None:
        raise ValueError(f"{path}: no CM_SLAC_PARM.REQ / .CNF pair")
    return Recording(frames, parm.src, cnf.src, prof.src if prof else None, bad)


@dataclass
class ReplayResult:
    sent: list[tuple[float, SlacFrame]] = field(default_factory=list)
    events: list[tuple[float, SlacEvent]] = field(default_factory=list)
    core: EvseSlac | None = None

    @property
    def outcome(self) -> SlacMatched | SlacFailed | None:
        for _t, e in self.events:
            if isinstance(e, SlacMatched | SlacFailed):
                return e
        return None

    def sent_of(self, mmtype: MMType) -> list[SlacFrame]:
        return [f for _t, f in self.sent if f.mmtype is mmtype]


_EV_TYPES = {
    MMType.CM_SLAC_PARM_REQ, MMType.CM_START_ATTEN_CHAR_IND, MMType.CM_MNBC_SOUND_IND, MMType.CM_ATTEN_CHAR_RSP,
    MMType.CM_SLAC_MATCH_REQ, MMType.CM_VALIDATE_REQ,
}


def replay_ev(rec: Recording, core: EvseSlac | None = None, *, stop_at_match: bool = True) -> ReplayResult:
    """Feed the recorded EV (and modem profiles) into ``core`` (default: a new EvseSlac with the
    recorded EVSE MAC), firing its deadlines in between; until the first match."""
    core = core or EvseSlac(rec.evse_mac)
    res = ReplayResult(core=core)
    feed: Iterable[tuple[float, SlacFrame]] = [
        (t, f) for t, f in rec.frames
        if (f.src == rec.ev_mac and f.mmtype in _EV_TYPES) or f.mmtype is MMType.CM_ATTEN_PROFILE_IND
    ]
    feed = list(feed)
    if not feed:
        return res
    t0 = feed[0][0] - 0.5

    def emit(t: float, events: list[SlacEvent]) -> None:
        for e in events:
            res.events.append((t, e))
            if isinstance(e, SendFrame):
                res.sent.append((t, msg.parse(e.frame)))

    emit(t0, core.enable(t0))
    for t, f in feed:
        while (d := core.next_deadline()) is not None and d <= t:
            emit(d, core.handle_timer(d))
        emit(t, core.receive(f.raw, t))
        if stop_at_match and core.matched is not None:
            break
    if core.matched is None:  # let the last deadlines run out
        while (d := core.next_deadline()) is not None and core.failed is None:
            emit(d, core.handle_timer(d))
    return res
