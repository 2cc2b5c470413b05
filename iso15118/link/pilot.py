"""Control pilot and proximity pilot (IEC 61851-1 / SAE J1772), sans-IO, both sides.

* :class:`CpState` A-F and :func:`cp_state_from_voltage` (the EVSE reads the positive level of
  the pilot); :func:`duty_for_current` (EVSE: amps -> PWM duty) and :func:`read_duty` (EV: duty
  -> what it allows); 5 % means "high-level communication required".
* :func:`cable_rating` (proximity pilot resistor -> cable ampacity).
* :class:`EvsePilot` / :class:`EvPilot`: the two state machines.  They take measurements and
  time, and return :class:`PilotAction` values (set the duty, open/close the contactor or S2,
  start SLAC ...) and a ``next_deadline()``; they never touch hardware or asyncio.
* :class:`PilotHardware`: what a real board offers (read the pilot voltage, set the duty,
  close the relay, read PP); :class:`SimulatedPilotLine` is the simulators' line between an
  EVSE and an EV (the resistor network and diode of Annex A, as levels).

Decisions (digest §1.3, DISAGREE): the EVSE generates exactly 5 %; the EV reads 3-7 % as
"HLC required".  Below 3 % is E/F; 7-8 % and 97-100 % (exclusive) are errors; 100 % (no PWM,
X1) means "no charging allowed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from iso15118.link.timers import C_SEQU_RETRY, PilotTimers

__all__ = [
    "DutyKind",
    "DutyReading",
    "CpState",
    "EvPilot",
    "EvsePilot",
    "HLC_DUTY",
    "PilotAction",
    "PilotError",
    "PilotHardware",
    "SimulatedPilotLine",
    "cable_rating",
    "cp_state_from_voltage",
    "duty_for_current",
    "read_duty",
]

HLC_DUTY = 5.0
"""Duty (%) the EVSE sets to say "high-level communication required"."""


class PilotError(ValueError):
    """A measurement or setting outside what IEC 61851-1 allows."""


class CpState(Enum):
    A = "A"  # +12 V: no vehicle
    B = "B"  # +9 V: vehicle connected, not ready
    C = "C"  # +6 V: vehicle requests energy (S2 closed)
    D = "D"  # +3 V: energy, ventilation required
    E = "E"  # 0 V: error (CP shorted to PE) or EVSE without supply
    F = "F"  # -12 V: EVSE not available / fault


def cp_state_from_voltage(high: float) -> CpState:
    """The state from the positive pilot level (volts; bands centred on 12/9/6/3/0/-12 V)."""
    if high >= 10.5:
        return CpState.A
    if high >= 7.5:
        return CpState.B
    if high >= 4.5:
        return CpState.C
    if high >= 1.5:
        return CpState.D
    if high > -10.0:
        return CpState.E
    return CpState.F


NOMINAL_LEVEL = {CpState.A: 12.0, CpState.B: 9.0, CpState.C: 6.0, CpState.D: 3.0, CpState.E: 0.0, CpState.F: -12.0}


def duty_for_current(amps: float) -> float:
    """EVSE side: the PWM duty (%) that offers ``amps`` (IEC 61851-1 Table A.8).

    6-51 A: D = I / 0.6; 51-80 A: D = I / 2.5 + 64 (51-52.5 A clamps to 51 A, the gap in the
    table).  Less than 6 A cannot be offered (PilotError); more than 80 A is capped at 80 A."""
    if math.isnan(amps) or amps < 6.0:
        raise PilotError(f"{amps} A cannot be offered with PWM (minimum 6 A)")
    amps = min(amps, 80.0)
    if amps <= 51.0:
        return round(amps / 0.6, 1)
    if amps < 52.5:
        return round(51.0 / 0.6, 1)
    return round(amps / 2.5 + 64.0, 1)


class DutyKind(Enum):
    CURRENT = "current"
    """Basic charging: the EV may draw ``amps``."""
    HLC = "hlc"
    """5 %: digital communication required (SLAC, then ISO 15118)."""
    NO_CHARGING = "no_charging"
    """100 % / X1 (no PWM): charging not allowed."""
    ERROR = "error"


@dataclass(frozen=True)
class DutyReading:
    kind: DutyKind
    amps: float = 0.0


def read_duty(duty: float | None) -> DutyReading:
    """EV side: what a measured duty (%) allows; ``None`` = no PWM (constant level, X1)."""
    if duty is None or duty >= 100.0:
        return DutyReading(DutyKind.NO_CHARGING)
    if duty < 3.0:
        return DutyReading(DutyKind.ERROR)
    if duty <= 7.0:
        return DutyReading(DutyKind.HLC)
    if duty < 8.0:
        return DutyReading(DutyKind.ERROR)
    if duty < 10.0:
        return DutyReading(DutyKind.CURRENT, 6.0)
    if duty <= 85.0:
        return DutyReading(DutyKind.CURRENT, round(duty * 0.6, 1))
    if duty <= 96.0:
        return DutyReading(DutyKind.CURRENT, round((duty - 64.0) * 2.5, 1))
    if duty <= 97.0:
        return DutyReading(DutyKind.CURRENT, 80.0)
    return DutyReading(DutyKind.ERROR)


_PP_BANDS = ((1100.0, 2460.0, 13), (400.0, 936.0, 20), (164.0, 308.0, 32), (80.0, 140.0, 63))


def cable_rating(ohms: float) -> int:
    """Proximity pilot: the cable's ampacity from its Rc resistor (Type 2 detachable cable).

    Bands 13/20/32/63 A (min-max resistance); a value between two bands counts as the lower
    ampacity; below 60 ohm or above 4500 ohm is an error (PilotError)."""
    if not (60.0 <= ohms <= 4500.0):
        raise PilotError(f"proximity resistor {ohms} ohm out of range (60-4500 ohm)")
    for _lo, hi, amps in reversed(_PP_BANDS):  # ascending resistance: 63, 32, 20, 13 A
        if ohms <= hi:
            return amps
    return 13


# ---------------------------------------------------------------------------------- actions


class ActionKind(Enum):
    SET_DUTY = "set_duty"
    """EVSE: ``duty`` % PWM (X2), or None for a constant +12 V (X1)."""
    SET_STATE_F = "set_state_f"
    """EVSE: drive -12 V (state F, 'not available'; the E/F step of a SLAC retry)."""
    CONTACTOR = "contactor"
    """EVSE: close (``on``) or open the output relay."""
    S2 = "s2"
    """EV: close (``on``, state C) or open (state B) switch S2."""
    START_SLAC = "start_slac"
    STOP_SLAC = "stop_slac"
    ALLOW_CURRENT = "allow_current"
    """EV: draw at most ``amps`` (basic charging), 0 = none."""
    PLUGGED = "plugged"
    UNPLUGGED = "unplugged"


@dataclass(frozen=True)
class PilotAction:
    kind: ActionKind
    duty: float | None = None
    on: bool = False
    amps: float = 0.0


class PilotHardware(Protocol):
    """A real board's pilot interface (what a firmware team implements)."""

    def read_cp_high(self) -> float:
        """The positive pilot level in volts (sampled after the first 10 us of a level)."""

    def set_duty(self, duty: float | None) -> None:
        """PWM duty in % (1 kHz), or None: constant +12 V (X1)."""

    def set_state_f(self) -> None:
        """Drive -12 V."""

    def set_relay(self, closed: bool) -> None:
        """Close or open the output contactor."""

    def read_pp_ohms(self) -> float | None:
        """The proximity resistor, or None on a fixed-cable EVSE."""


# -------------------------------------------------------------------------------- EVSE side


class EvsePhase(Enum):
    IDLE = "idle"  # state A
    WAIT_HLC = "wait_hlc"  # 5 % on, SLAC / session running
    BASIC = "basic"  # nominal duty on
    RETRY_EF = "retry_ef"  # state F for T_step_EF
    UNAVAILABLE = "unavailable"  # X1 after C_sequ_retry failed attempts


@dataclass
class EvsePilot:
    """The EVSE's pilot logic.

    ``hlc``: signal 5 % and wait for SLAC + the session (which calls :meth:`power_allowed`);
    otherwise basic charging at ``max_current`` (min with the cable rating from PP).
    Inputs: :meth:`measure` (the pilot state seen), :meth:`slac_result`, :meth:`power_allowed`,
    :meth:`set_max_current`, :meth:`handle_timer`."""

    hlc: bool = True
    max_current: float = 32.0
    cable_amps: float | None = None
    ventilation: bool = False
    """The site ventilates: energy may flow in state D (else D keeps the contactor open)."""
    timers: PilotTimers = field(default_factory=PilotTimers)
    state: CpState = CpState.A
    phase: EvsePhase = EvsePhase.IDLE
    duty: float | None = None
    contactor: bool = False
    retries: int = 0
    log: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._deadline: float | None = None
        self._deadline_what = ""
        self._power_ok = False
        self._last_duty_change: float | None = None

    def next_deadline(self) -> float | None:
        return self._deadline

    def offered_current(self) -> float:
        return min(self.max_current, self.cable_amps) if self.cable_amps else self.max_current

    def _set_duty(self, now: float, duty: float | None, *, force: bool = False) -> list[PilotAction]:
        if duty == self.duty and not force:
            return []
        self.duty = duty
        self._last_duty_change = now
        self.log.append((now, f"duty {'X1' if duty is None else f'{duty:.1f} %'}"))
        return [PilotAction(ActionKind.SET_DUTY, duty=duty)]

    def _relay(self, now: float, on: bool, *, force: bool = False) -> list[PilotAction]:
        if on == self.contactor and not force:
            return []
        self.contactor = on
        self.log.append((now, "contactor closed" if on else "contactor open"))
        return [PilotAction(ActionKind.CONTACTOR, on=on)]

    def start(self, now: float) -> list[PilotAction]:
        """Power-up: X1 (+12 V), contactor open."""
        return self._set_duty(now, None, force=True) + self._relay(now, False, force=True)

    def measure(self, state: CpState, now: float, pp_ohms: float | None = None) -> list[PilotAction]:
        """The pilot state seen now (call on every change; repeats are harmless)."""
        prev, self.state = self.state, state
        out: list[PilotAction] = []
        if state is prev:
            return out
        self.log.append((now, f"CP {prev.value} -> {state.value}"))
        if state is CpState.A:
            out += self._relay(now, False) + self._set_duty(now, None)
            if prev is not CpState.A:
                out.append(PilotAction(ActionKind.UNPLUGGED))
                if self.phase is EvsePhase.WAIT_HLC:
                    out.append(PilotAction(ActionKind.STOP_SLAC))
            self.phase, self.retries, self._power_ok, self._deadline = EvsePhase.IDLE, 0, False, None
            return out
        if state in (CpState.E, CpState.F):
            return out + self._relay(now, False)
        if prev in (CpState.A, CpState.E, CpState.F) and self.phase is EvsePhase.IDLE:
            if pp_ohms is not None:
                self.cable_amps = cable_rating(pp_ohms)
            out.append(PilotAction(ActionKind.PLUGGED))
            out += self._begin(now)
        if state is CpState.B:
            out += self._relay(now, False)  # C2 -> B2: open at once (within 100 ms)
            if self.phase is EvsePhase.BASIC and self._deadline_what == "pwm_off":
                self._deadline = None
        elif state is CpState.D and not self.ventilation:
            self.log.append((now, "state D: ventilation required but not available"))
            out += self._relay(now, False)
        elif state in (CpState.C, CpState.D):
            if self.duty is not None and (self.phase is EvsePhase.BASIC or self._power_ok):
                out += self._relay(now, True)
        return out

    def _begin(self, now: float) -> list[PilotAction]:
        if self.hlc:
            self.phase = EvsePhase.WAIT_HLC
            return self._set_duty(now, HLC_DUTY) + [PilotAction(ActionKind.START_SLAC)]
        self.phase = EvsePhase.BASIC
        return self._set_duty(now, duty_for_current(self.offered_current()))

    def slac_result(self, matched: bool, now: float) -> list[PilotAction]:
        """SLAC ended: matched (keep 5 %; the session follows) or failed / no PARM.REQ in time
        (AC: state F for T_step_EF, then 5 % again; after C_sequ_retry retries X1)."""
        if matched or self.phase is not EvsePhase.WAIT_HLC:
            return []
        if self.retries >= C_SEQU_RETRY:
            self.phase = EvsePhase.UNAVAILABLE
            self.log.append((now, f"SLAC failed {self.retries + 1} times: X1"))
            return self._relay(now, False) + self._set_duty(now, None)
        self.retries += 1
        self.phase = EvsePhase.RETRY_EF
        self.duty = None  # -12 V: no PWM
        self._deadline, self._deadline_what = now + self.timers.t_step_ef, "ef"
        self.log.append((now, f"SLAC failed: state F for {self.timers.t_step_ef:g} s (retry {self.retries})"))
        return self._relay(now, False) + [PilotAction(ActionKind.SET_STATE_F)]

    def power_allowed(self, allowed: bool, now: float) -> list[PilotAction]:
        """The HLC session allows power (PowerDelivery Start) or stops it."""
        self._power_ok = allowed
        if allowed and (self.state is CpState.C or self.state is CpState.D and self.ventilation) and self.duty is not None:
            return self._relay(now, True)
        if not allowed:
            return self._relay(now, False)
        return []

    def set_max_current(self, amps: float, now: float) -> list[PilotAction]:
        """Change the offered current (basic charging: a new duty at once)."""
        self.max_current = amps
        if self.phase is EvsePhase.BASIC:
            return self._set_duty(now, duty_for_current(self.offered_current()))
        return []

    def stop_pwm(self, now: float) -> list[PilotAction]:
        """Switch the PWM off (X1): the EV should go to B; after 6 s in C the EVSE opens anyway."""
        out = self._set_duty(now, None)
        if self.state in (CpState.C, CpState.D) and self.contactor:
            self._deadline, self._deadline_what = now + self.timers.t_pwm_off_fallback, "pwm_off"
        return out

    def handle_timer(self, now: float) -> list[PilotAction]:
        if self._deadline is None or now < self._deadline:
            return []
        what, self._deadline, self._deadline_what = self._deadline_what, None, ""
        if what == "ef":
            self.phase = EvsePhase.WAIT_HLC
            return self._set_duty(now, HLC_DUTY) + [PilotAction(ActionKind.START_SLAC)]
        if what == "pwm_off":
            self.log.append((now, "EV stayed in C after PWM off: opening under load"))
            return self._relay(now, False)
        return []


# ---------------------------------------------------------------------------------- EV side


@dataclass
class EvPilot:
    """The EV's pilot logic: reads the duty, closes S2 when it may draw power.

    ``hlc``: the EV can do ISO 15118 (at 5 % it starts SLAC and waits for :meth:`power_ready`
    from the session before closing S2).  Basic charging: at a current duty it closes S2 and
    draws at most the duty's current (and at most ``max_current``, its on-board charger)."""

    hlc: bool = True
    wants_energy: bool = True
    max_current: float = 48.0
    timers: PilotTimers = field(default_factory=PilotTimers)
    s2: bool = False
    allowed: float = 0.0
    reading: DutyReading = DutyReading(DutyKind.NO_CHARGING)
    slac_started: bool = False
    log: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._hlc_power = False

    def _s2(self, now: float, on: bool) -> list[PilotAction]:
        if on == self.s2:
            return []
        self.s2 = on
        self.log.append((now, "S2 closed (C)" if on else "S2 open (B)"))
        return [PilotAction(ActionKind.S2, on=on)]

    def _allow(self, now: float, amps: float) -> list[PilotAction]:
        if amps == self.allowed:
            return []
        self.allowed = amps
        self.log.append((now, f"draw at most {amps:g} A"))
        return [PilotAction(ActionKind.ALLOW_CURRENT, amps=amps)]

    def measure(self, connected: bool, duty: float | None, now: float, *, level: CpState | None = None) -> list[PilotAction]:
        """What the EV sees on the pilot: ``connected`` (a pilot signal at all) and the duty
        (None = constant level).  ``level`` E/F: EVSE fault / not available."""
        out: list[PilotAction] = []
        if not connected or level in (CpState.E, CpState.F):
            self.reading = DutyReading(DutyKind.ERROR if connected else DutyKind.NO_CHARGING)
            if self.slac_started:  # unplugged, or the EVSE's E/F step: matching starts over at the next 5 %
                self.slac_started = False
                out.append(PilotAction(ActionKind.STOP_SLAC))
            return out + self._allow(now, 0.0) + self._s2(now, False)
        r = read_duty(duty)
        changed = r != self.reading
        self.reading = r
        if changed:
            self.log.append((now, f"duty {'X1' if duty is None else f'{duty:.1f} %'}: {r.kind.value} {r.amps:g} A"))
        if r.kind is DutyKind.HLC:
            if self.hlc and not self.slac_started:
                self.slac_started = True
                out.append(PilotAction(ActionKind.START_SLAC))
            if not self._hlc_power:
                out += self._allow(now, 0.0) + self._s2(now, False)
            return out
        if r.kind is DutyKind.CURRENT and self.wants_energy:
            return out + self._allow(now, min(r.amps, self.max_current)) + self._s2(now, True)
        # X1 / error: stop drawing, back to B
        return out + self._allow(now, 0.0) + self._s2(now, False)

    def power_ready(self, ready: bool, now: float) -> list[PilotAction]:
        """HLC: the session is about to start (True) or has stopped (False) power: S2 follows."""
        self._hlc_power = ready
        return self._s2(now, ready and self.reading.kind is DutyKind.HLC)


# ------------------------------------------------------------------------------ simulation


@dataclass
class SimulatedPilotLine:
    """One cable between a simulated EVSE and EV: what the EVSE drives (X1, PWM duty, F), the
    EV's S2 and whether the EV is plugged in; the levels each side reads follow Annex A."""

    plugged: bool = False
    evse_duty: float | None = None
    evse_f: bool = False
    evse_powered: bool = True
    """False: the EVSE has no supply (e.g. a mobile connector whose outlet went off): 0 V, E."""
    ev_s2: bool = False
    pp_ohms: float | None = 220.0

    def cp_state(self) -> CpState:
        """What the EVSE measures on the positive half-wave."""
        if not self.evse_powered:
            return CpState.E
        if self.evse_f:
            return CpState.F
        if not self.plugged:
            return CpState.A
        return CpState.C if self.ev_s2 else CpState.B

    def ev_view(self) -> tuple[bool, float | None, CpState]:
        """What the EV sees: (pilot present, duty or None, level)."""
        if not self.plugged:
            return False, None, CpState.A
        state = self.cp_state()
        if state in (CpState.E, CpState.F):
            return True, None, state
        return True, self.evse_duty, state

    def apply_evse(self, actions: list[PilotAction]) -> None:
        for a in actions:
            if a.kind is ActionKind.SET_DUTY:
                self.evse_duty, self.evse_f = a.duty, False
            elif a.kind is ActionKind.SET_STATE_F:
                self.evse_f, self.evse_duty = True, None

    def apply_ev(self, actions: list[PilotAction]) -> None:
        for a in actions:
            if a.kind is ActionKind.S2:
                self.ev_s2 = a.on


__all__ += ["ActionKind", "EvsePhase", "NOMINAL_LEVEL"]
