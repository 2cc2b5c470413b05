"""The EVSE's side of SLAC (ISO 15118-3 §A.9), sans-IO.

Feed it every 0x88E1 frame the host receives (:meth:`EvseSlac.receive`) and the expiry of its
deadline (:meth:`EvseSlac.handle_timer`); it returns frames to send and the outcome.

* :meth:`start`: a fresh NMK; CM_SET_KEY.REQ to the local modem (before plug-in).
* :meth:`enable` (the pilot went to 5 %): wait TT_EVSE_SLAC_init for CM_SLAC_PARM.REQ.
* One matching session per (EV MAC, RunID) (several EVs may sound at once: crosstalk).
  PARM.CNF; the sounding window TT_EVSE_match_MNBC starts at the first START_ATTEN_CHAR; each
  CM_ATTEN_PROFILE.IND from our modem for that EV adds to a per-group sum; after NUM_SOUNDS
  profiles or when the window closes, ATTEN_CHAR.IND with floor(mean) (+ an optional offset;
  0 is avoided, some EVs treat it as a defect); resent up to C_EV_match_retry times every
  TT_match_response until ATTEN_CHAR.RSP; then wait TT_EVSE_match_session for MATCH.REQ
  (CM_VALIDATE.REQ is answered "not required": we do not count BCB toggles) and answer
  MATCH.CNF with NID and NMK.  A repeated MATCH.REQ gets the same CNF again.
* Frames with an unknown (MAC, RunID), a wrong RunID, wrong addresses or APP/SEC != 0 are
  ignored (EVerest; pyslac aborts instead -- digest §6.1 DISAGREE: we ignore, as
  [V2G3-A09-47] / [V2G3-A09-98] say).
* :class:`SlacFailed` when no PARM.REQ came in time or every session failed; the pilot then
  does the E/F retry (see :class:`iso15118.link.pilot.EvsePilot`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from iso15118.link.slac import messages as msg
from iso15118.link.slac.events import KeySet, SendFrame, SlacEvent, SlacFailed, SlacMatched
from iso15118.link.slac.messages import MMType, SlacDecodeError, SlacFrame
from iso15118.link.timers import C_EV_MATCH_MNBC, C_EV_MATCH_RETRY, NUM_GROUPS, SlacTimers

__all__ = ["EvseSlac", "SessionPhase"]


class SessionPhase(Enum):
    WAIT_START = "wait_start"
    SOUNDING = "sounding"
    WAIT_RSP = "wait_rsp"
    WAIT_MATCH = "wait_match"
    MATCHED = "matched"
    FAILED = "failed"


@dataclass
class _Session:
    ev_mac: str
    run_id: bytes
    started: float
    phase: SessionPhase = SessionPhase.WAIT_START
    deadline: float | None = None
    num_sounds: int = C_EV_MATCH_MNBC
    sums: list[int] = field(default_factory=lambda: [0] * NUM_GROUPS)
    count: int = 0
    ind: bytes = b""
    ind_sent: int = 0
    aag: list[int] = field(default_factory=list)
    cnf: bytes = b""


class EvseSlac:
    def __init__(
        self,
        mac: str,
        *,
        timers: SlacTimers | None = None,
        nmk: bytes | None = None,
        attenuation_offset: int = 0,
        modem_mac: str = msg.MODEM_MAC,
    ) -> None:
        self.mac = mac.lower()
        self.timers = timers or SlacTimers()
        self.nmk = nmk or msg.new_nmk()
        self.nid = msg.nid_from_nmk(self.nmk)
        self.attenuation_offset = attenuation_offset
        self.modem_mac = modem_mac
        self.sessions: dict[tuple[str, bytes], _Session] = {}
        self.enabled = False
        self.init_deadline: float | None = None
        self.matched: SlacMatched | None = None
        self.failed: SlacFailed | None = None
        self.key_set: KeySet | None = None
        self.ignored: list[tuple[float, str]] = []
        """Frames ignored, with the reason (evidence for the tester)."""

    # ------------------------------------------------------------------ control

    def start(self, now: float, *, new_key: bool = False) -> list[SlacEvent]:
        """Set our modem's key (a new NMK with ``new_key``, e.g. after an unplug)."""
        if new_key:
            self.nmk = msg.new_nmk()
            self.nid = msg.nid_from_nmk(self.nmk)
        self.key_set = None
        return [SendFrame(msg.set_key_req(self.mac, self.nmk, self.nid, dst=self.modem_mac), "CM_SET_KEY.REQ")]

    def enable(self, now: float) -> list[SlacEvent]:
        """The pilot signals 5 %: matching may start; TT_EVSE_SLAC_init runs."""
        self.enabled = True
        self.sessions.clear()
        self.matched = self.failed = None
        self.init_deadline = now + self.timers.tt_evse_slac_init
        return []

    def disable(self) -> None:
        """Unplugged / pilot left 5 %: forget every session."""
        self.enabled = False
        self.sessions.clear()
        self.init_deadline = None

    def next_deadline(self) -> float | None:
        ds = [s.deadline for s in self.sessions.values() if s.deadline is not None]
        if self.init_deadline is not None:
            ds.append(self.init_deadline)
        return min(ds) if ds else None

    # ------------------------------------------------------------------ input

    def receive(self, frame: bytes, now: float) -> list[SlacEvent]:
        try:
            f = msg.parse(frame)
        except SlacDecodeError as exc:
            self._ignore(now, f"undecodable: {exc}")
            return []
        if f.mmtype is MMType.CM_SET_KEY_CNF:
            if f.dst != self.mac:
                return []
            self.key_set = KeySet(int(f.get("Result")), now)
            return [self.key_set]
        if not self.enabled:
            return []
        handler = {
            MMType.CM_SLAC_PARM_REQ: self._on_parm,
            MMType.CM_START_ATTEN_CHAR_IND: self._on_start,
            MMType.CM_ATTEN_PROFILE_IND: self._on_profile,
            MMType.CM_MNBC_SOUND_IND: self._on_sound,
            MMType.CM_ATTEN_CHAR_RSP: self._on_rsp,
            MMType.CM_VALIDATE_REQ: self._on_validate,
            MMType.CM_SLAC_MATCH_REQ: self._on_match,
            MMType.CM_AMP_MAP_REQ: self._on_amp_map,
        }.get(f.mmtype)
        if handler is None:
            return []
        return handler(f, now)

    def handle_timer(self, now: float) -> list[SlacEvent]:
        out: list[SlacEvent] = []
        if self.init_deadline is not None and now >= self.init_deadline and not self.sessions:
            self.init_deadline = None
            return self._fail(now, "no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init")
        for s in list(self.sessions.values()):
            if s.deadline is None or now < s.deadline:
                continue
            s.deadline = None
            if s.phase is SessionPhase.WAIT_START:
                out += self._session_failed(s, now, "no CM_START_ATTEN_CHAR.IND within TT_match_sequence")
            elif s.phase is SessionPhase.SOUNDING:
                out += self._send_ind(s, now)
            elif s.phase is SessionPhase.WAIT_RSP:
                if s.ind_sent <= C_EV_MATCH_RETRY:
                    out += self._resend_ind(s, now)
                else:
                    out += self._session_failed(s, now, "no CM_ATTEN_CHAR.RSP after the retries")
            elif s.phase is SessionPhase.WAIT_MATCH:
                out += self._session_failed(s, now, "no CM_SLAC_MATCH.REQ within TT_EVSE_match_session")
        return out

    # ------------------------------------------------------------------ handlers

    def _ignore(self, now: float, why: str) -> list[SlacEvent]:
        self.ignored.append((now, why))
        return []

    def _session(self, f: SlacFrame, ev_mac: str, now: float) -> _Session | None:
        s = self.sessions.get((ev_mac, f.run_id))
        if s is None:
            self._ignore(now, f"{f.mmtype.name} from {ev_mac} with unknown RunID {f.run_id.hex()}")
        return s

    def _appsec_ok(self, f: SlacFrame) -> bool:
        return int(f.get("ApplicationType")) == 0 and int(f.get("SecurityType")) == 0

    def _on_parm(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if not self._appsec_ok(f):
            return self._ignore(now, "CM_SLAC_PARM.REQ with APPLICATION_TYPE/SECURITY_TYPE != 0")
        # a new PARM.REQ (also after a match: the Opel restart) is answered; the NMK stays
        s = _Session(f.src, f.run_id, now)
        self.sessions[(f.src, f.run_id)] = s  # a repeated PARM.REQ restarts that session
        self.init_deadline = None
        s.deadline = now + self.timers.tt_match_sequence
        return [SendFrame(msg.parm_cnf(self.mac, f.src, f.run_id, time_out=self.timers.time_out_field), "CM_SLAC_PARM.CNF")]

    def _on_start(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        s = self._session(f, f.src, now)
        if s is None or s.phase is not SessionPhase.WAIT_START:
            return []  # the 2nd and 3rd START are repeats
        if int(f.get("NumberOfSounds")) == 0 or int(f.get("TimeOut")) == 0 or int(f.get("ResponseType")) != 1:
            return self._ignore(now, "CM_START_ATTEN_CHAR.IND with NUM_SOUNDS/TIME_OUT 0 or RESP_TYPE != 1")
        s.num_sounds = int(f.get("NumberOfSounds"))
        s.phase = SessionPhase.SOUNDING
        s.deadline = now + self.timers.tt_evse_match_mnbc
        return []

    def _on_sound(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        self._session(f, f.src, now)  # only checks RunID / source; profiles carry the values
        return []

    def _on_profile(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        pev = str(f.get("EVMACAddress")).lower()
        aag = f.aag()
        if len(aag) != NUM_GROUPS:
            return self._ignore(now, f"CM_ATTEN_PROFILE.IND with {len(aag)} groups")
        # no RunID in a profile: the latest sounding session of that EV
        cands = [s for s in self.sessions.values() if s.ev_mac == pev and s.phase is SessionPhase.SOUNDING]
        if not cands:
            return self._ignore(now, f"CM_ATTEN_PROFILE.IND for {pev} outside a sounding window")
        s = cands[-1]
        s.sums = [a + b for a, b in zip(s.sums, aag, strict=True)]
        s.count += 1
        if s.count >= s.num_sounds:
            return self._send_ind(s, now)
        return []

    def _send_ind(self, s: _Session, now: float) -> list[SlacEvent]:
        if s.count:
            s.aag = [max(1, min(255, x // s.count + self.attenuation_offset)) for x in s.sums]
        else:
            s.aag = [1] * NUM_GROUPS
        s.ind = msg.atten_char_ind(self.mac, s.ev_mac, s.run_id, s.count, s.aag)
        s.phase = SessionPhase.WAIT_RSP
        s.ind_sent = 0
        return self._resend_ind(s, now)

    def _resend_ind(self, s: _Session, now: float) -> list[SlacEvent]:
        s.ind_sent += 1
        s.deadline = now + self.timers.tt_match_response
        return [SendFrame(s.ind, "CM_ATTEN_CHAR.IND")]

    def _on_rsp(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        s = self._session(f, f.src, now)
        if s is None or s.phase is not SessionPhase.WAIT_RSP:
            return []
        if (
            str(f.get("SourceAdress")).lower() != s.ev_mac
            or bytes(f.get("SourceID")) != bytes(17)
            or bytes(f.get("ResponseID")) != bytes(17)
            or int(f.get("Result")) != 0
            or not self._appsec_ok(f)
        ):
            return self._ignore(now, "CM_ATTEN_CHAR.RSP with wrong fields")
        s.phase = SessionPhase.WAIT_MATCH
        s.deadline = now + self.timers.tt_evse_match_session
        return []

    def _on_validate(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        ss = [s for s in self.sessions.values() if s.ev_mac == f.src and s.phase is SessionPhase.WAIT_MATCH]
        if not ss or f.dst != self.mac:
            return self._ignore(now, "CM_VALIDATE.REQ outside a session")
        return [SendFrame(msg.validate_cnf(self.mac, f.src, result=msg.ValidateResult.NOT_REQUIRED), "CM_VALIDATE.CNF")]

    def _on_match(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        s = self._session(f, f.src, now)
        if s is None:
            return []
        v = f.get("VariableField")
        if s.phase is SessionPhase.MATCHED:
            return [SendFrame(s.cnf, "CM_SLAC_MATCH.CNF")]
        if s.phase is not SessionPhase.WAIT_MATCH:
            return self._ignore(now, f"CM_SLAC_MATCH.REQ in phase {s.phase.value}")
        if (
            int(f.get("MatchVariableFieldLen")) != 0x3E
            or bytes(v.EVID) != bytes(17)
            or bytes(v.EVSEID) != bytes(17)
            or str(v.EVMAC).lower() != s.ev_mac
            or str(v.EVSEMAC).lower() != self.mac
            or f.dst != self.mac
            or not self._appsec_ok(f)
        ):
            return self._ignore(now, "CM_SLAC_MATCH.REQ with wrong fields")
        s.cnf = msg.match_cnf(self.mac, s.ev_mac, s.run_id, self.nid, self.nmk)
        s.phase, s.deadline = SessionPhase.MATCHED, None
        mean = sum(s.aag) / len(s.aag) if s.aag else None
        self.matched = SlacMatched(s.ev_mac, s.run_id, self.nmk, self.nid, s.started, now, mean)
        # other EVs' sessions (crosstalk) end here
        for o in self.sessions.values():
            if o is not s and o.phase is not SessionPhase.MATCHED:
                o.phase, o.deadline = SessionPhase.FAILED, None
        return [SendFrame(s.cnf, "CM_SLAC_MATCH.CNF"), self.matched]

    def _on_amp_map(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.matched is None or f.src != self.matched.peer_mac:
            return self._ignore(now, "CM_AMP_MAP.REQ before a match")
        return [SendFrame(msg.amp_map_cnf(self.mac, f.src), "CM_AMP_MAP.CNF")]

    def _session_failed(self, s: _Session, now: float, why: str) -> list[SlacEvent]:
        s.phase, s.deadline = SessionPhase.FAILED, None
        self._ignore(now, f"session {s.ev_mac}/{s.run_id.hex()} failed: {why}")
        if self.matched is None and all(x.phase is SessionPhase.FAILED for x in self.sessions.values()):
            return self._fail(now, why)
        return []

    def _fail(self, now: float, why: str) -> list[SlacEvent]:
        self.enabled = False
        self.failed = SlacFailed(why, now)
        return [self.failed]
