"""The EV's side of SLAC (ISO 15118-3 §A.9), sans-IO.

:meth:`EvSlac.start` (the pilot shows 5 %) begins an attempt:

1. CM_SLAC_PARM.REQ (broadcast), resent every TT_match_response up to C_EV_match_retry times
   until a PARM.CNF with our RunID arrives; its source is the EVSE.
2. START_ATTEN_CHAR.IND x3, then MNBC_SOUND.IND x10 (countdown 9..0), one every
   TP_EV_batch_msg_interval.
3. Every CM_ATTEN_CHAR.IND for our RunID is answered at once with ATTEN_CHAR.RSP (several
   EVSEs may answer: crosstalk); when TT_EV_atten_results (from the first START) expires, the
   EVSE with the lowest mean attenuation is chosen -- if that mean is above
   ``match_attenuation_db`` there is no match ("attenuation out of range").  With
   ``validate_above_db`` set and the mean above it, CM_VALIDATE.REQ first (a "not required"
   answer proceeds; BCB toggles are not done: "ready" ends the attempt).
4. CM_SLAC_MATCH.REQ (EVSE MAC = the chosen EVSE), resent like PARM.REQ; MATCH.CNF with our
   RunID and MACs gives NMK / NID.
5. CM_SET_KEY.REQ with them to our own modem; its CNF (Result 0 or 1) -> :class:`SlacMatched`.

A failed attempt is retried after TT_matching_rate, C_conn_max_match attempts in all (a new
RunID each time), then :class:`SlacFailed`.  Frames with another RunID are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from iso15118.link.slac import messages as msg
from iso15118.link.slac.events import KeySet, SendFrame, SlacEvent, SlacFailed, SlacMatched
from iso15118.link.slac.messages import MMType, SlacDecodeError, SlacFrame
from iso15118.link.timers import (
    C_CONN_MAX_MATCH,
    C_EV_MATCH_MNBC,
    C_EV_MATCH_RETRY,
    C_EV_START_ATTEN_CHAR_INDS,
    SlacTimers,
)

__all__ = ["EvPhase", "EvSlac"]


class EvPhase(Enum):
    IDLE = "idle"
    WAIT_PARM_CNF = "wait_parm_cnf"
    SOUNDING = "sounding"
    WAIT_RESULTS = "wait_results"
    WAIT_VALIDATE = "wait_validate"
    WAIT_MATCH_CNF = "wait_match_cnf"
    WAIT_KEY = "wait_key"
    MATCHED = "matched"
    PAUSE = "pause"
    FAILED = "failed"


@dataclass
class _Result:
    evse_mac: str
    aag: list[int]
    num_sounds: int

    @property
    def mean(self) -> float:
        return sum(self.aag) / len(self.aag) if self.aag else float("inf")


@dataclass
class EvSlac:
    mac: str
    timers: SlacTimers = field(default_factory=SlacTimers)
    match_attenuation_db: float = 50.0
    validate_above_db: float | None = None
    run_id: bytes | None = None
    """Fixed RunID (default: 8 random bytes per attempt)."""
    modem_mac: str = msg.MODEM_MAC
    phase: EvPhase = EvPhase.IDLE

    def __post_init__(self) -> None:
        self.mac = self.mac.lower()
        self.attempt = 0
        self.deadline: float | None = None
        self._sent = 0
        self._queue: list[tuple[bytes, str]] = []
        self._first_start: float | None = None
        self.results: dict[str, _Result] = {}
        self.chosen: _Result | None = None
        self.evse_mac: str | None = None
        self.nmk = self.nid = b""
        self.started = 0.0
        self.matched: SlacMatched | None = None
        self.failed: SlacFailed | None = None
        self.reasons: list[str] = []
        self._cur_run = b""

    def next_deadline(self) -> float | None:
        return self.deadline

    # ------------------------------------------------------------------ control

    def start(self, now: float) -> list[SlacEvent]:
        self.attempt = 0
        self.started = now
        self.matched = self.failed = None
        return self._attempt(now)

    def stop(self) -> None:
        self.phase, self.deadline = EvPhase.IDLE, None

    def _attempt(self, now: float) -> list[SlacEvent]:
        self.attempt += 1
        self._cur_run = self.run_id if self.run_id is not None else os.urandom(8)
        self.results.clear()
        self.chosen = None
        self.evse_mac = None
        self._first_start = None
        self.phase = EvPhase.WAIT_PARM_CNF
        self._sent = 0
        return self._send_parm(now)

    @property
    def current_run_id(self) -> bytes:
        return self._cur_run

    def _send_parm(self, now: float) -> list[SlacEvent]:
        self._sent += 1
        self.deadline = now + self.timers.tt_match_response
        return [SendFrame(msg.parm_req(self.mac, self._cur_run), "CM_SLAC_PARM.REQ")]

    def _attempt_failed(self, now: float, why: str) -> list[SlacEvent]:
        self.reasons.append(why)
        if self.attempt >= C_CONN_MAX_MATCH:
            self.phase, self.deadline = EvPhase.FAILED, None
            self.failed = SlacFailed(f"{why} (after {self.attempt} attempts)", now)
            return [self.failed]
        self.phase, self.deadline = EvPhase.PAUSE, now + self.timers.tt_matching_rate
        return []

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float) -> list[SlacEvent]:
        if self.deadline is None or now < self.deadline:
            return []
        self.deadline = None
        p = self.phase
        if p is EvPhase.WAIT_PARM_CNF:
            if self._sent <= C_EV_MATCH_RETRY:
                return self._send_parm(now)
            return self._attempt_failed(now, "no CM_SLAC_PARM.CNF")
        if p is EvPhase.SOUNDING:
            return self._next_sound(now)
        if p is EvPhase.WAIT_RESULTS:
            return self._choose(now)
        if p in (EvPhase.WAIT_MATCH_CNF, EvPhase.WAIT_VALIDATE):
            if self._sent <= C_EV_MATCH_RETRY:
                return self._send_match(now) if p is EvPhase.WAIT_MATCH_CNF else self._send_validate(now)
            return self._attempt_failed(now, f"no answer in {p.value}")
        if p is EvPhase.WAIT_KEY:
            return self._attempt_failed(now, "the modem did not confirm CM_SET_KEY within TT_match_join")
        if p is EvPhase.PAUSE:
            return self._attempt(now)
        return []

    def _next_sound(self, now: float) -> list[SlacEvent]:
        frame, what = self._queue.pop(0)
        if self._first_start is None:
            self._first_start = now
        if self._queue:
            self.deadline = now + self.timers.tp_ev_batch_msg_interval
        else:
            self.phase = EvPhase.WAIT_RESULTS
            self.deadline = self._first_start + self.timers.tt_ev_atten_results
        return [SendFrame(frame, what)]

    def _choose(self, now: float) -> list[SlacEvent]:
        if not self.results:
            return self._attempt_failed(now, "no CM_ATTEN_CHAR.IND within TT_EV_atten_results")
        best = min(self.results.values(), key=lambda r: r.mean)
        if best.mean > self.match_attenuation_db:
            return self._attempt_failed(
                now, f"attenuation out of range: mean {best.mean:.1f} dB > {self.match_attenuation_db:g} dB")
        self.chosen, self.evse_mac = best, best.evse_mac
        self._sent = 0
        if self.validate_above_db is not None and best.mean > self.validate_above_db:
            self.phase = EvPhase.WAIT_VALIDATE
            return self._send_validate(now)
        self.phase = EvPhase.WAIT_MATCH_CNF
        return self._send_match(now)

    def _send_validate(self, now: float) -> list[SlacEvent]:
        assert self.evse_mac is not None
        self._sent += 1
        self.deadline = now + self.timers.tt_match_response
        return [SendFrame(msg.validate_req(self.mac, self.evse_mac), "CM_VALIDATE.REQ")]

    def _send_match(self, now: float) -> list[SlacEvent]:
        assert self.evse_mac is not None
        self._sent += 1
        self.deadline = now + self.timers.tt_match_response
        return [SendFrame(msg.match_req(self.mac, self.evse_mac, self._cur_run), "CM_SLAC_MATCH.REQ")]

    # ------------------------------------------------------------------ input

    def receive(self, frame: bytes, now: float) -> list[SlacEvent]:
        try:
            f = msg.parse(frame)
        except SlacDecodeError:
            return []
        if f.dst not in (self.mac, msg.BROADCAST):
            return []
        if f.mmtype is MMType.CM_SLAC_PARM_CNF:
            return self._on_parm_cnf(f, now)
        if f.mmtype is MMType.CM_ATTEN_CHAR_IND:
            return self._on_ind(f, now)
        if f.mmtype is MMType.CM_VALIDATE_CNF:
            return self._on_validate_cnf(f, now)
        if f.mmtype is MMType.CM_SLAC_MATCH_CNF:
            return self._on_match_cnf(f, now)
        if f.mmtype is MMType.CM_SET_KEY_CNF:
            return self._on_key(f, now)
        return []

    def _on_parm_cnf(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.phase is not EvPhase.WAIT_PARM_CNF or f.run_id != self._cur_run:
            return []
        if str(f.get("ForwardingSTA")).lower() != self.mac:
            return []
        n = int(f.get("NumberMSounds")) or C_EV_MATCH_MNBC
        to = int(f.get("TimeOut")) or self.timers.time_out_field
        self._queue = [(msg.start_atten_char(self.mac, self._cur_run, num_sounds=n, time_out=to), "CM_START_ATTEN_CHAR.IND")
                       for _ in range(C_EV_START_ATTEN_CHAR_INDS)]
        self._queue += [(msg.mnbc_sound(self.mac, self._cur_run, n - 1 - i), "CM_MNBC_SOUND.IND") for i in range(n)]
        self.phase = EvPhase.SOUNDING
        return self._next_sound(now)

    def _on_ind(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if f.run_id != self._cur_run or str(f.get("SourceAdress")).lower() != self.mac:
            return []
        rsp = SendFrame(msg.atten_char_rsp(self.mac, f.src, self._cur_run), "CM_ATTEN_CHAR.RSP")
        if self.phase in (EvPhase.SOUNDING, EvPhase.WAIT_RESULTS):
            self.results[f.src] = _Result(f.src, f.aag(), int(f.get("NumberOfSounds")))
            return [rsp]
        if f.src in self.results and self.phase in (EvPhase.WAIT_VALIDATE, EvPhase.WAIT_MATCH_CNF, EvPhase.WAIT_KEY):
            return [rsp]  # a repeated IND (our RSP was lost): acknowledge again, the choice stands
        return []

    def _on_validate_cnf(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.phase is not EvPhase.WAIT_VALIDATE or f.src != self.evse_mac:
            return []
        r = int(f.get("Result"))
        if r == msg.ValidateResult.NOT_REQUIRED:
            self.phase, self._sent = EvPhase.WAIT_MATCH_CNF, 0
            return self._send_match(now)
        return self._attempt_failed(now, f"CM_VALIDATE.CNF result {r}: BCB-toggle validation not done")

    def _on_match_cnf(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.phase is not EvPhase.WAIT_MATCH_CNF or f.run_id != self._cur_run or f.src != self.evse_mac:
            return []
        v = f.get("VariableField")
        if str(v.EVMAC).lower() != self.mac or str(v.EVSEMAC).lower() != self.evse_mac:
            return []
        self.nmk, self.nid = bytes(v.NMK), bytes(v.NetworkID)
        self.phase = EvPhase.WAIT_KEY
        self.deadline = now + self.timers.tt_match_join
        return [SendFrame(msg.set_key_req(self.mac, self.nmk, self.nid, dst=self.modem_mac), "CM_SET_KEY.REQ")]

    def _on_key(self, f: SlacFrame, now: float) -> list[SlacEvent]:
        if self.phase is not EvPhase.WAIT_KEY:
            return []
        result = int(f.get("Result"))
        if result not in (0, 1):
            return self._attempt_failed(now, f"CM_SET_KEY.CNF result {result}")
        assert self.evse_mac is not None and self.chosen is not None
        self.phase, self.deadline = EvPhase.MATCHED, None
        self.matched = SlacMatched(self.evse_mac, self._cur_run, self.nmk, self.nid, self.started, now, self.chosen.mean)
        return [KeySet(result, now), self.matched]
