"""Deliberately broken link-layer implementations (fault seeding for the pilot / SLAC cases).

Each defect is a small subclass of our own core that breaks one rule; ``DEFECTS`` maps its
name to the :class:`~conformance.cases.link_pilot_slac.LinkSut` that carries it and to the
case written to catch it.  ``tests/link/test_link_cases.py`` proves that every case passes
against our cores and fails against its defect.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from conformance.cases.link_pilot_slac import LinkSut
from iso15118.link import pilot as P
from iso15118.link.slac import messages as msg
from iso15118.link.slac.ev import EvSlac
from iso15118.link.slac.events import SendFrame, SlacEvent
from iso15118.link.slac.evse import EvseSlac, SessionPhase
from iso15118.link.slac.messages import MMType, SlacFrame
from iso15118.link.timers import SlacTimers

__all__ = ["DEFECTS"]


# ------------------------------------------------------------------------------ EVSE SLAC


class ParmCnfEightSounds(EvseSlac):
    """The old QCA default: PARM.CNF asks for 8 sounds."""

    def _on_parm(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        out = super()._on_parm(f, now)
        return [SendFrame(msg.parm_cnf(self.mac, f.src, f.run_id, num_sounds=8), e.what) if isinstance(e, SendFrame) else e
                for e in out]


class RoundedAverage(EvseSlac):
    """Reports the last profile instead of the mean."""

    def _on_profile(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        for s in self.sessions.values():
            if s.phase is SessionPhase.SOUNDING:
                s.sums = [a * (s.count + 1) for a in f.aag()] if s.count + 1 else s.sums
                s.count += 1
                if s.count >= s.num_sounds:
                    return self._send_ind(s, now)
                s.count -= 1
        return super()._on_profile(f, now)


class NoSoundingWindow(EvseSlac):
    """Waits for all ten sounds, however long they take (no TT_EVSE_match_MNBC)."""

    def _on_start(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        out = super()._on_start(f, now)
        for s in self.sessions.values():
            if s.phase is SessionPhase.SOUNDING:
                s.deadline = now + 30.0
        return out


class NoIndRetry(EvseSlac):
    """Sends ATTEN_CHAR.IND once and never again."""

    def _resend_ind(self, s: Any, now: float) -> list[SlacEvent]:
        if s.ind_sent >= 1:
            s.ind_sent = 99
            s.deadline = now + self.timers.tt_match_response
            return []
        return super()._resend_ind(s, now)


class AnyRunIdMatch(EvseSlac):
    """Answers MATCH.REQ of any run (the RunID is not checked)."""

    def _session(self, f: SlacFrame, ev_mac: str, now: float) -> Any:
        s = super()._session(f, ev_mac, now)
        if s is None and f.mmtype is MMType.CM_SLAC_MATCH_REQ:
            cands = [x for x in self.sessions.values() if x.ev_mac == ev_mac]
            return cands[-1] if cands else None
        return s


class OtherKeyInCnf(EvseSlac):
    """Hands the EV a different NMK than the one in its modem."""

    def _on_match(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        real = self.nmk
        self.nmk = bytes(16)
        try:
            return super()._on_match(f, now)
        finally:
            self.nmk = real


class NoMatchTimeout(EvseSlac):
    """Waits for MATCH.REQ forever."""

    def __init__(self, mac: str) -> None:
        super().__init__(mac, timers=replace(SlacTimers(), tt_evse_match_session=1e6))


class ShortSlacInit(EvseSlac):
    """TT_EVSE_SLAC_init of 10 s (EVerest's manifest: '10-20 violates ISO')."""

    def __init__(self, mac: str) -> None:
        super().__init__(mac, timers=replace(SlacTimers(), tt_evse_slac_init=10.0))


# ------------------------------------------------------------------------------ EVSE pilot


class NoEfRetry(P.EvsePilot):
    """A failed SLAC goes straight to X1: no E/F retry."""

    def slac_result(self, matched: bool, now: float) -> list[P.PilotAction]:
        if not matched and self.phase is P.EvsePhase.WAIT_HLC:
            self.retries = 99
        return super().slac_result(matched, now)


class ContactorAtFivePercent(P.EvsePilot):
    """Closes whenever the EV is in C, session or not, and forgets to open on C -> B."""

    def measure(self, state: P.CpState, now: float, pp_ohms: float | None = None) -> list[P.PilotAction]:
        out = super().measure(state, now, pp_ohms)
        if state is P.CpState.C and not self.contactor:
            out += self._relay(now, True)
        if state is P.CpState.B and self.phase is P.EvsePhase.WAIT_HLC:
            self.contactor = True
        return out


class WrongDutyFormula(P.EvsePilot):
    """Duty = 1.6 x I: 32 A -> 51.2 %."""

    def _begin(self, now: float) -> list[P.PilotAction]:
        if self.hlc:
            return super()._begin(now)
        self.phase = P.EvsePhase.BASIC
        return self._set_duty(now, round(self.offered_current() * 1.6, 1))

    def set_max_current(self, amps: float, now: float) -> list[P.PilotAction]:
        self.max_current = amps
        if self.phase is P.EvsePhase.BASIC:
            return self._set_duty(now, round(self.offered_current() * 1.6, 1))
        return []


class FrozenDuty(P.EvsePilot):
    """Keeps the duty of the plug-in for the whole session."""

    def set_max_current(self, amps: float, now: float) -> list[P.PilotAction]:
        if self.phase is P.EvsePhase.BASIC:
            return []
        return super().set_max_current(amps, now)


# --------------------------------------------------------------------------------- EV SLAC


class NoParmRetry(EvSlac):
    """Sends CM_SLAC_PARM.REQ once per attempt."""

    def _send_parm(self, now: float) -> list[SlacEvent]:
        if self._sent >= 1 and self.phase.value == "wait_parm_cnf":
            self._sent = 99
            self.deadline = now + self.timers.tt_match_response
            return []
        return super()._send_parm(now)


class SlowSounds(EvSlac):
    """60 ms between sounding frames (above TP_EV_batch_msg_interval's 50 ms)."""

    def __init__(self, mac: str) -> None:
        super().__init__(mac, timers=replace(SlacTimers(), tp_ev_batch_msg_interval=0.06))


class AnyRunIdParm(EvSlac):
    """Starts sounding on any PARM.CNF."""

    def _on_parm_cnf(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.phase.value == "wait_parm_cnf" and f.run_id != self._cur_run:
            f = msg.parse(msg.parm_cnf(f.src, self.mac, self._cur_run))
        return super()._on_parm_cnf(f, now)


class NoThreshold(EvSlac):
    """Matches any EVSE, whatever the attenuation (EVerest's EV does this)."""

    def __init__(self, mac: str) -> None:
        super().__init__(mac, match_attenuation_db=1e9)


class ModemMacInMatch(EvSlac):
    """Puts its modem's MAC into MATCH.REQ (EVerest/EVerest#1812)."""

    def _send_match(self, now: float) -> list[SlacEvent]:
        real = self.mac
        self.mac = "02:b0:52:00:00:01"
        try:
            out = super()._send_match(now)
        finally:
            self.mac = real
        return [SendFrame(e.frame[:6] + msg.mac_bytes(real) + e.frame[12:], e.what) if isinstance(e, SendFrame) else e
                for e in out]


class GivesUpAtOnce(EvSlac):
    """One attempt only (no TT_matching_rate retries)."""

    def _attempt_failed(self, now: float, why: str) -> list[SlacEvent]:
        self.attempt = 99
        return super()._attempt_failed(now, why)


# -------------------------------------------------------------------------------- EV pilot


class S2AtFivePercent(P.EvPilot):
    """Closes S2 as soon as it sees 5 %."""

    def measure(self, connected: bool, duty: float | None, now: float, *, level: P.CpState | None = None) -> list[P.PilotAction]:
        out = super().measure(connected, duty, now, level=level)
        if self.reading.kind is P.DutyKind.HLC:
            out += self._s2(now, True)
        return out


class IgnoresDutyChange(P.EvPilot):
    """Keeps the current of the first duty it saw."""

    def measure(self, connected: bool, duty: float | None, now: float, *, level: P.CpState | None = None) -> list[P.PilotAction]:
        if self.s2 and duty is not None and level is None and connected:
            return []
        return super().measure(connected, duty, now, level=level)


class IgnoresStateF(P.EvPilot):
    """Stays in C when the EVSE drives F or the pilot collapses."""

    def measure(self, connected: bool, duty: float | None, now: float, *, level: P.CpState | None = None) -> list[P.PilotAction]:
        if level in (P.CpState.E, P.CpState.F):
            return []
        return super().measure(connected, duty, now, level=level)


def _sut(name: str, **kw: Any) -> LinkSut:
    return LinkSut(name=f"defect:{name}", **kw)


DEFECTS: dict[str, tuple[LinkSut, str]] = {
    "parm-cnf-8-sounds": (_sut("parm-cnf-8-sounds", evse_slac=ParmCnfEightSounds), "TC_SECC_SLAC_001"),
    "last-profile-not-mean": (_sut("last-profile-not-mean", evse_slac=RoundedAverage), "TC_SECC_SLAC_002"),
    "no-sounding-window": (_sut("no-sounding-window", evse_slac=NoSoundingWindow), "TC_SECC_SLAC_003"),
    "no-ind-retry": (_sut("no-ind-retry", evse_slac=NoIndRetry), "TC_SECC_SLAC_004"),
    "any-runid-match": (_sut("any-runid-match", evse_slac=AnyRunIdMatch), "TC_SECC_SLAC_005"),
    "other-key-in-cnf": (_sut("other-key-in-cnf", evse_slac=OtherKeyInCnf), "TC_SECC_SLAC_006"),
    "no-match-timeout": (_sut("no-match-timeout", evse_slac=NoMatchTimeout), "TC_SECC_SLAC_007"),
    "short-slac-init": (_sut("short-slac-init", evse_slac=ShortSlacInit), "TC_SECC_SLAC_008"),
    "no-ef-retry": (_sut("no-ef-retry", evse_pilot=NoEfRetry), "TC_SECC_CP_001"),
    "contactor-at-5-percent": (_sut("contactor-at-5-percent", evse_pilot=ContactorAtFivePercent), "TC_SECC_CP_002"),
    "wrong-duty-formula": (_sut("wrong-duty-formula", evse_pilot=WrongDutyFormula), "TC_SECC_CP_003"),
    "frozen-duty": (_sut("frozen-duty", evse_pilot=FrozenDuty), "TC_SECC_CP_004"),
    "no-parm-retry": (_sut("no-parm-retry", ev_slac=NoParmRetry), "TC_EVCC_SLAC_001"),
    "slow-sounds": (_sut("slow-sounds", ev_slac=SlowSounds), "TC_EVCC_SLAC_002"),
    "any-runid-parm": (_sut("any-runid-parm", ev_slac=AnyRunIdParm), "TC_EVCC_SLAC_003"),
    "no-attenuation-threshold": (_sut("no-attenuation-threshold", ev_slac=NoThreshold), "TC_EVCC_SLAC_004"),
    "modem-mac-in-match": (_sut("modem-mac-in-match", ev_slac=ModemMacInMatch), "TC_EVCC_SLAC_005"),
    "gives-up-at-once": (_sut("gives-up-at-once", ev_slac=GivesUpAtOnce), "TC_EVCC_SLAC_006"),
    "s2-at-5-percent": (_sut("s2-at-5-percent", ev_pilot=S2AtFivePercent), "TC_EVCC_CP_001"),
    "ignores-duty-change": (_sut("ignores-duty-change", ev_pilot=IgnoresDutyChange), "TC_EVCC_CP_002"),
    "ignores-state-f": (_sut("ignores-state-f", ev_pilot=IgnoresStateF), "TC_EVCC_CP_003"),
}
