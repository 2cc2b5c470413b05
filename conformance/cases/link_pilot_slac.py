"""Control pilot (IEC 61851-1) and SLAC (ISO 15118-3) cases, in the style of ISO 15118-5.

The SUT is a link-layer implementation: sans-IO SLAC and pilot cores handed to the campaign
as ``extra["link"]`` (a :class:`LinkSut`).  The harness plays the other side -- the EV and the
EVSE's modem for ``TC_SECC_*`` cases, the EVSE and the EV's modem for ``TC_EVCC_*`` cases --
in virtual time, with frames it builds itself, so every timer is checked exactly and the cases
take milliseconds.  Without ``extra["link"]`` every case is inconclusive (not applicable: a
V2G endpoint has no link layer to test).

Timer values and thresholds come from :mod:`iso15118.link.timers` (one home); where the
digest leaves a choice the case says which bound it checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.catalogue import CaseContext, Inconclusive, case
from iso15118.link import pilot as P
from iso15118.link.slac import messages as msg
from iso15118.link.slac.ev import EvSlac
from iso15118.link.slac.events import KeySet, SendFrame, SlacFailed, SlacMatched
from iso15118.link.slac.evse import EvseSlac
from iso15118.link.slac.messages import MMType, SlacFrame
from iso15118.link.timers import (
    C_CONN_MAX_MATCH,
    C_EV_MATCH_RETRY,
    C_SEQU_RETRY,
    NUM_GROUPS,
    PilotTimers,
    SlacTimers,
)

T = SlacTimers()
PT = PilotTimers()
EV_MAC = "02:15:11:8e:0e:01"
EVSE_MAC = "02:15:11:8e:05:01"
RUN = bytes.fromhex("1511801511801501")


@dataclass
class LinkSut:
    """Factories for the link-layer implementation under test (one fresh instance per use)."""

    evse_slac: Callable[[str], Any] = lambda mac: EvseSlac(mac)
    ev_slac: Callable[[str], Any] = lambda mac: EvSlac(mac)
    evse_pilot: Callable[[], Any] = lambda: P.EvsePilot()
    ev_pilot: Callable[[], Any] = lambda: P.EvPilot()
    name: str = "iso15118.link"


def _sut(ctx: CaseContext) -> LinkSut:
    sut = ctx.extra.get("link")
    if not isinstance(sut, LinkSut):
        raise Inconclusive("not applicable: needs a link-layer SUT (SLAC / pilot cores, extra['link'])")
    ctx.evidence.note(f"link SUT {sut.name}")
    return sut


# ------------------------------------------------------------------------------ harnesses


class _Harness:
    """Virtual time around one SLAC core: what it sent, when; deadlines fired in order."""

    def __init__(self, ctx: CaseContext, core: Any, t0: float = 0.0) -> None:
        self.ctx, self.core, self.t = ctx, core, t0
        self.out: list[tuple[float, SlacFrame]] = []
        self.outcomes: list[tuple[float, Any]] = []

    def emit(self, events: list[Any]) -> None:
        for e in events:
            if isinstance(e, SendFrame):
                f = msg.parse(e.frame)
                self.out.append((self.t, f))
                self.ctx.evidence.note(f"{self.t:8.3f} SUT -> {f.mmtype.name} to {f.dst}")
                if f.mmtype is MMType.CM_SET_KEY_REQ:  # the harness is the SUT's own modem
                    self.emit(self.core.receive(msg.set_key_cnf("02:b0:52:00:00:77", f.src, your_nonce=int(f.get("MyNonce"))),
                                                self.t))
            elif isinstance(e, SlacMatched | SlacFailed | KeySet):
                self.outcomes.append((self.t, e))
                self.ctx.evidence.note(f"{self.t:8.3f} SUT {type(e).__name__} {getattr(e, 'reason', '')}")

    def until(self, t: float) -> None:
        while (d := self.core.next_deadline()) is not None and d <= t:
            self.t = max(self.t, d)
            self.emit(self.core.handle_timer(self.t))
        self.t = max(self.t, t)

    def send(self, frame: bytes, t: float) -> None:
        self.until(t)
        f = msg.parse(frame)
        self.ctx.evidence.note(f"{self.t:8.3f} tester -> {f.mmtype.name}")
        self.emit(self.core.receive(frame, self.t))

    def sent(self, mmtype: MMType, after: float = -1.0) -> list[tuple[float, SlacFrame]]:
        return [(t, f) for t, f in self.out if f.mmtype is mmtype and t > after]

    def outcome(self, kind: type) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.outcomes if isinstance(e, kind)]


class _EvseUnderTest(_Harness):
    """The tester is the EV (and the EVSE's modem, which turns sounds into profiles)."""

    def __init__(self, ctx: CaseContext, sut: LinkSut, t0: float = 0.0) -> None:
        super().__init__(ctx, sut.evse_slac(EVSE_MAC), t0)
        self.emit(self.core.start(t0))
        self.emit(self.core.enable(t0))

    def parm(self, t: float, run: bytes = RUN) -> SlacFrame | None:
        self.send(msg.parm_req(EV_MAC, run), t)
        c = self.sent(MMType.CM_SLAC_PARM_CNF, after=t - 1e-9)
        return c[0][1] if c else None

    def sound(self, t: float, *, run: bytes = RUN, n: int = 10, gap: float = 0.03, aag: Callable[[int], list[int]] | None = None,
              start_run: bytes | None = None) -> float:
        aag = aag or (lambda i: [20 + (g + i) % 7 for g in range(NUM_GROUPS)])
        for _i in range(3):
            self.send(msg.start_atten_char(EV_MAC, start_run or run), t)
            t += gap
        for i in range(n):
            self.send(msg.mnbc_sound(EV_MAC, run, 9 - i), t)
            self.send(msg.atten_profile_ind("02:b0:52:00:00:77", EV_MAC, aag(i)), t + 0.001)
            t += gap
        return t

    def rsp(self, t: float, run: bytes = RUN) -> None:
        self.send(msg.atten_char_rsp(EV_MAC, EVSE_MAC, run), t)

    def match(self, t: float, run: bytes = RUN) -> SlacFrame | None:
        self.send(msg.match_req(EV_MAC, EVSE_MAC, run), t)
        c = self.sent(MMType.CM_SLAC_MATCH_CNF, after=t - 1e-9)
        return c[0][1] if c else None


class _EvUnderTest(_Harness):
    """The tester is the EVSE (and the EV's modem, which answers CM_SET_KEY)."""

    def __init__(self, ctx: CaseContext, sut: LinkSut, t0: float = 0.0) -> None:
        super().__init__(ctx, sut.ev_slac(EV_MAC), t0)
        self.emit(self.core.start(t0))

    def run_id(self) -> bytes:
        p = self.sent(MMType.CM_SLAC_PARM_REQ)
        return p[-1][1].run_id if p else b""

    def answer_parm(self, t: float, run: bytes | None = None) -> None:
        self.send(msg.parm_cnf(EVSE_MAC, EV_MAC, run if run is not None else self.run_id()), t)

    def ind(self, t: float, aag: list[int], sounds: int = 10) -> None:
        self.send(msg.atten_char_ind(EVSE_MAC, EV_MAC, self.run_id(), sounds, aag), t)

    def cnf(self, t: float, nmk: bytes) -> None:
        self.send(msg.match_cnf(EVSE_MAC, EV_MAC, self.run_id(), msg.nid_from_nmk(nmk), nmk), t)


# --------------------------------------------------------------------- SECC: EVSE's SLAC

_SLAC = "slac-pilot digest §2-§6 (ISO 15118-3 Annex A.9)"


@case("TC_SECC_SLAC_001", "CM_SLAC_PARM.CNF answers the EV's request", group="SLAC",
      purpose="The EVSE answers CM_SLAC_PARM.REQ with the sounding parameters and the EV's RunID.",
      requirement=f"{_SLAC}: PARM.CNF fields (M-SOUND_TARGET broadcast, NUM_SOUNDS 10, TIME_OUT 6, RESP_TYPE 1, "
                  "FORWARDING_STA = EV MAC, RunID echoed), TP_match_response",
      steps=("EV broadcasts CM_SLAC_PARM.REQ", "expect PARM.CNF unicast to the EV within TP_match_response"),
      tags=("slac", "link"))
async def slac_001(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    cnf = h.parm(1.0)
    ctx.require("PARM.CNF sent", cnf is not None, "no CM_SLAC_PARM.CNF")
    assert cnf is not None
    t_cnf = h.sent(MMType.CM_SLAC_PARM_CNF)[0][0]
    ctx.check("TP_match_response", t_cnf - 1.0 <= T.tp_match_response, f"answered after {t_cnf - 1.0:.3f} s")
    ctx.check("unicast to the EV", cnf.dst == EV_MAC, cnf.dst)
    ctx.check("M-SOUND_TARGET broadcast", str(cnf.get("MSoundTargetMAC")).lower() == msg.BROADCAST, str(cnf.get("MSoundTargetMAC")))
    ctx.check("NUM_SOUNDS 10 / TIME_OUT 6 / RESP_TYPE 1",
              (cnf.get("NumberMSounds"), cnf.get("TimeOut"), cnf.get("ResponseType")) == (10, 6, 1),
              f"{cnf.get('NumberMSounds')}/{cnf.get('TimeOut')}/{cnf.get('ResponseType')}")
    ctx.check("FORWARDING_STA = EV MAC", str(cnf.get("ForwardingSTA")).lower() == EV_MAC, str(cnf.get("ForwardingSTA")))
    ctx.check("RunID echoed", cnf.run_id == RUN, cnf.run_id.hex())


@case("TC_SECC_SLAC_002", "CM_ATTEN_CHAR.IND reports the averaged attenuation", group="SLAC",
      purpose="After ten sounds the EVSE reports, per group, the floor of the mean of its modem's profiles.",
      requirement=f"{_SLAC}: ATTEN_CHAR.IND (NUM_SOUNDS, 58 groups, average), TP_EVSE_avg_atten_calc",
      steps=("PARM", "START x3, SOUND x10 with a profile after each", "expect ATTEN_CHAR.IND with floor(mean)"),
      tags=("slac", "link"))
async def slac_002(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.parm(1.0)
    prof = [[10 + (g * 3 + i * 7) % 41 for g in range(NUM_GROUPS)] for i in range(10)]
    end = h.sound(1.1, aag=lambda i: prof[i])
    h.until(end + T.tp_evse_avg_atten_calc)
    ind = h.sent(MMType.CM_ATTEN_CHAR_IND)
    ctx.require("ATTEN_CHAR.IND sent", bool(ind), "no CM_ATTEN_CHAR.IND")
    t_ind, f = ind[0]
    want = [sum(p[g] for p in prof) // 10 for g in range(NUM_GROUPS)]
    ctx.check("NUM_SOUNDS = 10", f.get("NumberOfSounds") == 10, str(f.get("NumberOfSounds")))
    ctx.check("58 groups, floor of the mean", f.aag() == want, f"first groups {f.aag()[:6]} want {want[:6]}")
    ctx.check("RunID and SOURCE_ADDRESS", f.run_id == RUN and str(f.get("SourceAdress")).lower() == EV_MAC, f.run_id.hex())
    last_profile = end - 0.03 + 0.001
    ctx.check("TP_EVSE_avg_atten_calc", t_ind - last_profile <= T.tp_evse_avg_atten_calc,
              f"IND {t_ind - last_profile:.3f} s after the last profile")


@case("TC_SECC_SLAC_003", "The sounding window closes after TT_EVSE_match_MNBC", group="SLAC",
      purpose="Sounds arriving slower than the window allows: the EVSE reports what it had when the window closed "
              "(the Seres case: NUM_SOUNDS 9).",
      requirement=f"{_SLAC}: TT_EVSE_match_MNBC = TIME_OUT x 100 ms from the first START_ATTEN_CHAR",
      steps=("PARM", "START x3 and sounds 60 ms apart", "expect IND at the window's end with the sounds counted so far"),
      tags=("slac", "link", "timer"))
async def slac_003(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.parm(1.0)
    h.sound(1.1, gap=0.06)
    h.until(5.0)
    ind = h.sent(MMType.CM_ATTEN_CHAR_IND)
    ctx.require("ATTEN_CHAR.IND sent", bool(ind), "no CM_ATTEN_CHAR.IND")
    t_ind, f = ind[0]
    window_end = 1.1 + T.tt_evse_match_mnbc
    ctx.check("not before the window closed", t_ind >= window_end - 1e-9, f"IND at {t_ind:.3f}, window ends {window_end:.3f}")
    ctx.check("within TP_EVSE_avg_atten_calc of the window", t_ind <= window_end + T.tp_evse_avg_atten_calc, f"{t_ind:.3f}")
    inside = sum(1 for i in range(10) if 1.1 + 3 * 0.06 + i * 0.06 + 0.001 < window_end)
    ctx.check("NUM_SOUNDS = profiles inside the window", f.get("NumberOfSounds") == inside,
              f"{f.get('NumberOfSounds')} reported, {inside} inside")


@case("TC_SECC_SLAC_004", "ATTEN_CHAR.IND is repeated until ATTEN_CHAR.RSP", group="SLAC",
      purpose="Without CM_ATTEN_CHAR.RSP the EVSE resends the IND every TT_match_response, C_EV_match_retry times, "
              "then gives the session up.",
      requirement=f"{_SLAC}: TT_match_response 200 ms, C_EV_match_retry 2",
      steps=("PARM, sounding", "never answer the IND", "expect 1 + 2 INDs 200 ms apart, then no match"),
      tags=("slac", "link", "retry"))
async def slac_004(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.parm(1.0)
    end = h.sound(1.1)
    h.until(end + 3.0)
    inds = [t for t, _f in h.sent(MMType.CM_ATTEN_CHAR_IND)]
    ctx.check("1 + C_EV_match_retry INDs", len(inds) == 1 + C_EV_MATCH_RETRY, f"{len(inds)} sent")
    gaps = [b - a for a, b in zip(inds, inds[1:])]
    ctx.check("TT_match_response between them", bool(gaps) and all(abs(g - T.tt_match_response) < 0.011 for g in gaps),
              f"gaps {[round(g, 3) for g in gaps]}")
    late = h.match(end + 3.1)
    ctx.check("no match after the session was given up", late is None and not h.outcome(SlacMatched), "MATCH.CNF sent")


@case("TC_SECC_SLAC_005", "Frames with a wrong RunID are ignored", group="SLAC",
      purpose="A MATCH.REQ with another RunID gets no answer; the right one then matches.",
      requirement=f"{_SLAC}: [V2G3-A09-47], [V2G3-A09-98] (frames of another run shall be ignored)",
      steps=("PARM, sounding, RSP", "MATCH.REQ with a wrong RunID: expect silence", "MATCH.REQ with the RunID: expect CNF"),
      tags=("slac", "link", "wrong_input"))
async def slac_005(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.parm(1.0)
    end = h.sound(1.1)
    h.rsp(end + 0.01)
    wrong = bytes(b ^ 0xFF for b in RUN)
    bad = h.match(end + 0.1, run=wrong)
    ctx.check("wrong RunID ignored", bad is None, "answered a MATCH.REQ of another run")
    good = h.match(end + 0.2)
    ctx.check("right RunID matched", good is not None and good.run_id == RUN, "no MATCH.CNF for the right RunID")


@case("TC_SECC_SLAC_006", "CM_SLAC_MATCH.CNF hands out the key the EVSE's modem holds", group="SLAC",
      purpose="MATCH.CNF carries the NMK the EVSE set in its own modem with CM_SET_KEY, and the NID derived from it.",
      requirement=f"{_SLAC}: MATCH.CNF (EV/EVSE MAC, RunID, NID, NMK); HPGP NID = f(NMK)",
      steps=("observe CM_SET_KEY.REQ to the EVSE modem", "complete matching", "compare NMK / NID"),
      tags=("slac", "link", "key"))
async def slac_006(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    keys = h.sent(MMType.CM_SET_KEY_REQ)
    ctx.require("CM_SET_KEY.REQ to the modem", bool(keys), "the EVSE never set its modem's key")
    k = keys[-1][1]
    h.parm(1.0)
    end = h.sound(1.1)
    h.rsp(end + 0.01)
    cnf = h.match(end + 0.1)
    ctx.require("MATCH.CNF sent", cnf is not None, "no MATCH.CNF")
    assert cnf is not None
    v = cnf.get("VariableField")
    ctx.check("NMK = the modem's key", bytes(v.NMK) == bytes(k.get("NewKey")), "NMK differs from CM_SET_KEY")
    ctx.check("NID = f(NMK)", bytes(v.NetworkID) == msg.nid_from_nmk(bytes(v.NMK)), bytes(v.NetworkID).hex())
    ctx.check("MACs", str(v.EVMAC).lower() == EV_MAC and str(v.EVSEMAC).lower() == EVSE_MAC and cnf.dst == EV_MAC,
              f"{v.EVMAC} / {v.EVSEMAC}")
    ctx.check("MatchVariableFieldLen 0x56", cnf.get("MatchVariableFieldLen") == 0x56, str(cnf.get("MatchVariableFieldLen")))


@case("TC_SECC_SLAC_007", "No CM_SLAC_MATCH.REQ within TT_EVSE_match_session", group="SLAC",
      purpose="After ATTEN_CHAR.RSP the EVSE waits TT_EVSE_match_session (10 s) for MATCH.REQ, then fails.",
      requirement=f"{_SLAC}: TT_EVSE_match_session",
      steps=("PARM, sounding, RSP", "stay silent", "expect SLAC failure after 10 s, and no CNF to a late MATCH.REQ"),
      tags=("slac", "link", "timer"))
async def slac_007(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.parm(1.0)
    end = h.sound(1.1)
    t_rsp = end + 0.01
    h.rsp(t_rsp)
    h.until(t_rsp + T.tt_evse_match_session - 0.05)
    ctx.check("still waiting before the timer", not h.outcome(SlacFailed), "failed early")
    h.until(t_rsp + T.tt_evse_match_session + 0.05)
    fails = h.outcome(SlacFailed)
    ctx.check("SLAC failed at TT_EVSE_match_session", bool(fails), "no failure reported")
    late = h.match(t_rsp + T.tt_evse_match_session + 0.1)
    ctx.check("late MATCH.REQ not answered", late is None, "answered after the session timed out")


@case("TC_SECC_SLAC_008", "No CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init", group="SLAC",
      purpose="At 5 % the EVSE waits 20-50 s for the EV's PARM.REQ, then reports the failure (E/F retry follows).",
      requirement=f"{_SLAC}: TT_EVSE_SLAC_init (20-50 s); EVs in the captures start up to 22.7 s after 5 %",
      steps=("enable at 5 %", "no PARM.REQ for 22.7 s: expect no failure yet", "expect a failure by 50 s"),
      tags=("slac", "link", "timer"))
async def slac_008(ctx: CaseContext) -> None:
    h = _EvseUnderTest(ctx, _sut(ctx))
    h.until(22.7)
    ctx.check("still waiting at 22.7 s (the slowest real EV)", not h.outcome(SlacFailed),
              f"failed at {h.outcome(SlacFailed)[0][0] if h.outcome(SlacFailed) else 0:.1f} s")
    h.until(50.0)
    f = h.outcome(SlacFailed)
    ctx.check("failed by 50 s", bool(f) and 20.0 <= f[0][0] <= 50.0, f"{f[0][0] if f else 'no failure'}")


# ----------------------------------------------------------------------- SECC: the pilot


def _evse_pilot_pair(sut: LinkSut, *, hlc: bool) -> tuple[Any, P.SimulatedPilotLine]:
    evse = sut.evse_pilot()
    evse.hlc = hlc
    line = P.SimulatedPilotLine()
    line.apply_evse(evse.start(0.0))
    return evse, line


@case("TC_SECC_CP_001", "SLAC failure: state F for T_step_EF, retries, then X1", group="CP",
      purpose="When matching fails at 5 %, the EVSE goes to E/F for T_step_EF (4-8 s), then back to 5 %; after "
              "C_sequ_retry retries it stops offering HLC (X1, no PWM).",
      requirement="slac-pilot digest §1 / ISO 15118-3 [V2G3-M06-07]; IEC 61851-1 (T_step_EF, C_sequ_retry)",
      steps=("plug in at 5 %", "report SLAC failure three times", "check F durations and the final X1"),
      tags=("cp", "link", "retry"))
async def cp_001(ctx: CaseContext) -> None:
    evse, line = _evse_pilot_pair(_sut(ctx), hlc=True)
    line.plugged = True
    line.apply_evse(evse.measure(line.cp_state(), 1.0))
    ctx.require("5 % at plug-in", line.evse_duty == P.HLC_DUTY, f"duty {line.evse_duty}")
    t = 2.0
    for i in range(C_SEQU_RETRY):
        line.apply_evse(evse.slac_result(False, t))
        ctx.check(f"retry {i + 1}: state F", line.cp_state() is P.CpState.F, line.cp_state().value)
        t_f = t
        while line.cp_state() is P.CpState.F and t < t_f + 10.0:
            t = round(t + 0.05, 3)
            line.apply_evse(evse.measure(line.cp_state(), t) + evse.handle_timer(t))
        ctx.check(f"retry {i + 1}: F for 4-8 s", 4.0 <= t - t_f <= 8.0, f"{t - t_f:.2f} s")
        ctx.check(f"retry {i + 1}: back to 5 %", line.evse_duty == P.HLC_DUTY, f"duty {line.evse_duty}")
    line.apply_evse(evse.slac_result(False, t))
    ctx.check("after C_sequ_retry: X1 (no PWM)", line.evse_duty is None and line.cp_state() is P.CpState.B,
              f"duty {line.evse_duty} state {line.cp_state().value}")


@case("TC_SECC_CP_002", "The contactor follows S2 and the session", group="CP",
      purpose="At 5 % the EVSE closes only when the session allows power and the EV is in C; on C->B it opens at once.",
      requirement="slac-pilot digest §1 / IEC 61851-1 Table A.6 seq. 4 (close within 3 s) and 8.1 (open within 100 ms)",
      steps=("plug in, 5 %", "EV closes S2 before the session allows power: expect open",
             "session allows power: expect closed", "EV opens S2: expect open within 100 ms"),
      tags=("cp", "link", "safety"))
async def cp_002(ctx: CaseContext) -> None:
    evse, line = _evse_pilot_pair(_sut(ctx), hlc=True)
    line.plugged = True
    evse.measure(P.CpState.B, 1.0)
    evse.measure(P.CpState.C, 2.0)
    ctx.check("open in C without the session's PowerDelivery", not evse.contactor, "closed at 5 % without power allowed")
    evse.power_allowed(True, 3.0)
    evse.measure(P.CpState.C, 3.0)
    closed = evse.contactor
    ctx.check("closed in C once power is allowed (within 3 s)", closed, "stayed open")
    evse.measure(P.CpState.B, 4.0)
    ctx.check("open at C -> B (within 100 ms)", not evse.contactor, "stayed closed in B")


@case("TC_SECC_CP_003", "PWM duty: 5 % for HLC, 53.3 % for 32 A basic charging", group="CP",
      purpose="The EVSE signals 5 % when it requires HLC and the IEC 61851-1 duty for its current otherwise.",
      requirement="slac-pilot digest §1 / IEC 61851-1 Table A.8 (D = I / 0.6 for 6-51 A); ISO 15118-3 (5 % = digital communication)",
      steps=("HLC EVSE: plug in, expect 5.0 %", "basic EVSE offering 32 A: expect 53.3 %"),
      tags=("cp", "link"))
async def cp_003(ctx: CaseContext) -> None:
    sut = _sut(ctx)
    evse, line = _evse_pilot_pair(sut, hlc=True)
    line.plugged = True
    line.apply_evse(evse.measure(line.cp_state(), 1.0))
    ctx.check("5 % with HLC", line.evse_duty is not None and abs(line.evse_duty - 5.0) < 0.05, f"{line.evse_duty}")
    evse, line = _evse_pilot_pair(sut, hlc=False)
    line.apply_evse(evse.set_max_current(32.0, 0.5))
    line.plugged = True
    line.apply_evse(evse.measure(line.cp_state(), 1.0))
    ctx.check("53.3 % for 32 A", line.evse_duty is not None and abs(line.evse_duty - 53.3) < 0.05, f"{line.evse_duty}")


@case("TC_SECC_CP_004", "A duty change mid-session", group="CP",
      purpose="During basic charging the EVSE lowers its offer from 32 A to 16 A: the duty follows.",
      requirement="slac-pilot digest §1 / IEC 61851-1 Table A.8; duty updates while charging",
      steps=("basic charging at 32 A, EV in C", "lower the offer to 16 A", "expect 26.7 % at once, contactor closed"),
      tags=("cp", "link"))
async def cp_004(ctx: CaseContext) -> None:
    evse, line = _evse_pilot_pair(_sut(ctx), hlc=False)
    line.apply_evse(evse.set_max_current(32.0, 0.0))
    line.plugged = True
    line.apply_evse(evse.measure(P.CpState.B, 1.0))
    line.apply_evse(evse.measure(P.CpState.C, 1.5))
    ctx.require("charging at 53.3 %", line.evse_duty == 53.3 and evse.contactor, f"{line.evse_duty} {evse.contactor}")
    line.apply_evse(evse.set_max_current(16.0, 10.0))
    ctx.check("26.7 % after the change", line.evse_duty == 26.7, f"{line.evse_duty}")
    ctx.check("still charging", evse.contactor, "contactor opened on a duty change")


# ------------------------------------------------------------------------ EVCC: EV's SLAC


@case("TC_EVCC_SLAC_001", "CM_SLAC_PARM.REQ is repeated until answered", group="SLAC",
      purpose="Without PARM.CNF the EV resends PARM.REQ every TT_match_response, C_EV_match_retry times, same RunID.",
      requirement=f"{_SLAC}: TT_match_response, C_EV_match_retry",
      steps=("EV starts", "never answer", "count PARM.REQs of the first attempt and their spacing"),
      tags=("slac", "link", "retry"))
async def ev_slac_001(ctx: CaseContext) -> None:
    h = _EvUnderTest(ctx, _sut(ctx))
    h.until(T.tt_match_response * (C_EV_MATCH_RETRY + 1) - 0.01)
    reqs = h.sent(MMType.CM_SLAC_PARM_REQ)
    ctx.check("1 + C_EV_match_retry PARM.REQ in the first attempt", len(reqs) == 1 + C_EV_MATCH_RETRY, f"{len(reqs)}")
    gaps = [b[0] - a[0] for a, b in zip(reqs, reqs[1:])]
    ctx.check("TT_match_response apart", bool(gaps) and all(abs(g - T.tt_match_response) < 0.011 for g in gaps), f"{gaps}")
    ctx.check("broadcast, one RunID", all(f.dst == msg.BROADCAST for _t, f in reqs) and len({f.run_id for _t, f in reqs}) == 1,
              "RunID changed or unicast")


@case("TC_EVCC_SLAC_002", "Sounding: START_ATTEN_CHAR x3 and MNBC_SOUND x10", group="SLAC",
      purpose="After PARM.CNF the EV sends three START_ATTEN_CHAR.IND and ten MNBC_SOUND.IND (countdown 9..0), "
              "20-50 ms apart, the first within TP_match_sequence.",
      requirement=f"{_SLAC}: C_EV_start_atten_char_inds, C_EV_match_MNBC, TP_EV_batch_msg_interval, TP_match_sequence",
      steps=("answer PARM.REQ", "record the sounding frames"),
      tags=("slac", "link"))
async def ev_slac_002(ctx: CaseContext) -> None:
    h = _EvUnderTest(ctx, _sut(ctx))
    h.answer_parm(0.01)
    h.until(1.0)
    starts, sounds = h.sent(MMType.CM_START_ATTEN_CHAR_IND), h.sent(MMType.CM_MNBC_SOUND_IND)
    ctx.check("3 START_ATTEN_CHAR.IND", len(starts) == 3, f"{len(starts)}")
    ctx.check("10 MNBC_SOUND.IND", len(sounds) == 10, f"{len(sounds)}")
    ctx.require("sounding happened", bool(starts and sounds), "nothing sent")
    ctx.check("first START within TP_match_sequence (100 ms)", starts[0][0] - 0.01 <= 0.1, f"{starts[0][0] - 0.01:.3f}")
    times = [t for t, _f in starts + sounds]
    gaps = [b - a for a, b in zip(times, times[1:])]
    ctx.check("TP_EV_batch_msg_interval 20-50 ms", all(T.tp_ev_batch_min - 1e-9 <= g <= T.tp_ev_batch_max + 1e-9 for g in gaps),
              f"gaps {min(gaps):.3f}-{max(gaps):.3f} s")
    ctx.check("countdown 9..0", [int(f.get("Countdown")) for _t, f in sounds] == list(range(9, -1, -1)),
              str([int(f.get("Countdown")) for _t, f in sounds]))
    ctx.check("one RunID", len({f.run_id for _t, f in starts + sounds}) == 1 and starts[0][1].run_id == h.run_id(), "RunID changed")


@case("TC_EVCC_SLAC_003", "A PARM.CNF with another RunID is ignored", group="SLAC",
      purpose="The EV does not start sounding on a PARM.CNF of another run.",
      requirement=f"{_SLAC}: the EV ignores frames whose RunID is not its own",
      steps=("answer PARM.REQ with a wrong RunID", "expect no START_ATTEN_CHAR, PARM.REQ repeated"),
      tags=("slac", "link", "wrong_input"))
async def ev_slac_003(ctx: CaseContext) -> None:
    h = _EvUnderTest(ctx, _sut(ctx))
    h.answer_parm(0.01, run=bytes(b ^ 0x5A for b in h.run_id()))
    h.until(0.35)
    ctx.check("no sounding", not h.sent(MMType.CM_START_ATTEN_CHAR_IND), "started sounding for another run")
    ctx.check("PARM.REQ repeated", len(h.sent(MMType.CM_SLAC_PARM_REQ)) >= 2, "stopped asking")


def _ev_to_ind(ctx: CaseContext, sut: LinkSut, mean_db: int) -> _EvUnderTest:
    h = _EvUnderTest(ctx, sut)
    h.answer_parm(0.01)
    h.until(0.6)
    h.ind(0.61, [mean_db] * NUM_GROUPS)
    return h


@case("TC_EVCC_SLAC_004", "Attenuation out of range: no match", group="SLAC",
      purpose="An EVSE whose reported attenuation is far above the EV's threshold (70 dB; real matches were "
              "18-48 dB) is not matched: the EV acknowledges the IND but sends no CM_SLAC_MATCH.REQ.",
      requirement=f"{_SLAC}: attenuation threshold (digest §4: 40-60 dB in the sources; ours 50 dB)",
      steps=("PARM.CNF", "ATTEN_CHAR.IND with 70 dB in every group", "expect RSP, no MATCH.REQ"),
      tags=("slac", "link", "wrong_input"))
async def ev_slac_004(ctx: CaseContext) -> None:
    h = _ev_to_ind(ctx, _sut(ctx), 70)
    h.until(3.0)
    ctx.check("ATTEN_CHAR.RSP sent", bool(h.sent(MMType.CM_ATTEN_CHAR_RSP)), "IND not acknowledged")
    ctx.check("no MATCH.REQ", not h.sent(MMType.CM_SLAC_MATCH_REQ), "matched an EVSE at 70 dB")


@case("TC_EVCC_SLAC_005", "Match: MATCH.REQ and the key to the EV's modem", group="SLAC",
      purpose="With a good attenuation the EV sends MATCH.REQ (its host MAC, the EVSE's MAC, its RunID) once the "
              "results window closed, and sets the received NMK / NID in its modem.",
      requirement=f"{_SLAC}: TT_EV_atten_results, TP_EV_match_session, MATCH.REQ fields, CM_SET_KEY after MATCH.CNF",
      steps=("PARM.CNF, IND 25 dB", "expect RSP, then MATCH.REQ", "answer MATCH.CNF", "expect CM_SET_KEY.REQ to the modem"),
      tags=("slac", "link"))
async def ev_slac_005(ctx: CaseContext) -> None:
    h = _ev_to_ind(ctx, _sut(ctx), 25)
    t = h.t
    while not h.sent(MMType.CM_SLAC_MATCH_REQ) and t < 3.0:
        t = round(t + 0.005, 3)
        h.until(t)
    mreq = h.sent(MMType.CM_SLAC_MATCH_REQ)
    ctx.require("MATCH.REQ sent", bool(mreq), "no MATCH.REQ")
    t_m, f = mreq[0]
    v = f.get("VariableField")
    ctx.check("EVMAC = host MAC, EVSEMAC = the EVSE", str(v.EVMAC).lower() == EV_MAC and str(v.EVSEMAC).lower() == EVSE_MAC,
              f"{v.EVMAC} / {v.EVSEMAC}")
    ctx.check("unicast to the EVSE, RunID", f.dst == EVSE_MAC and f.run_id == h.run_id(), f.dst)
    ctx.check("MatchVariableFieldLen 0x3E", f.get("MatchVariableFieldLen") == 0x3E, str(f.get("MatchVariableFieldLen")))
    t_start = h.sent(MMType.CM_START_ATTEN_CHAR_IND)[0][0]
    ctx.check("after TT_EV_atten_results, within TP_EV_match_session",
              t_start + T.tt_ev_atten_results - 1e-9 <= t_m <= t_start + T.tt_ev_atten_results + T.tp_ev_match_session,
              f"MATCH.REQ {t_m - t_start:.3f} s after the first START")
    nmk = b"0123456789ABCDEF"
    h.cnf(t_m + 0.001, nmk)
    keys = h.sent(MMType.CM_SET_KEY_REQ)
    ctx.check("CM_SET_KEY.REQ with the NMK / NID", bool(keys) and bytes(keys[-1][1].get("NewKey")) == nmk
              and bytes(keys[-1][1].get("NetworkID")) == msg.nid_from_nmk(nmk), "key not set")
    ctx.check("matched", bool(h.outcome(SlacMatched)), "no match reported")


@case("TC_EVCC_SLAC_006", "No EVSE answers: retries, then give up", group="SLAC",
      purpose="No ATTEN_CHAR.IND arrives: the attempt fails at TT_EV_atten_results; the EV retries after "
              "TT_matching_rate, C_conn_max_match attempts in all, a new RunID each time, then reports no match.",
      requirement=f"{_SLAC}: TT_matching_rate, C_conn_max_match ([V2G3-A09-124/125])",
      steps=("answer every PARM.REQ, never send an IND", "count attempts and pauses"),
      tags=("slac", "link", "retry"))
async def ev_slac_006(ctx: CaseContext) -> None:
    h = _EvUnderTest(ctx, _sut(ctx))
    answered: set[bytes] = set()
    t = 0.0
    while t < 15.0:
        t = round(t + 0.01, 3)
        h.until(t)
        rid = h.run_id()
        if rid and rid not in answered:
            answered.add(rid)
            h.answer_parm(t)
    ctx.check("C_conn_max_match attempts", len(answered) == C_CONN_MAX_MATCH, f"{len(answered)} RunIDs")
    ctx.check("no MATCH.REQ", not h.sent(MMType.CM_SLAC_MATCH_REQ), "matched nobody?")
    ctx.check("no match reported", bool(h.outcome(SlacFailed)) and not h.outcome(SlacMatched), "no failure reported")
    firsts = [min(t for t, f in h.sent(MMType.CM_SLAC_PARM_REQ) if f.run_id == r) for r in answered]
    ends = sorted(firsts)
    pauses = [b - a for a, b in zip(ends, ends[1:])]
    ctx.check("attempts at least TT_EV_atten_results + TT_matching_rate apart",
              bool(pauses) and all(p >= T.tt_ev_atten_results + T.tt_matching_rate - 0.05 for p in pauses),
              f"{[round(p, 2) for p in pauses]}")


# --------------------------------------------------------------------------- EVCC: pilot


@case("TC_EVCC_CP_001", "At 5 % the EV waits for the session before closing S2", group="CP",
      purpose="5 % means digital communication: the EV starts SLAC and stays in B until the session starts power; "
              "it returns to B when power stops.",
      requirement="slac-pilot digest §1 / IEC 61851-1 / ISO 15118-3 (5 % duty), ISO 15118-20 PowerDelivery",
      steps=("5 %", "expect SLAC started, S2 open", "session starts power: S2 closed", "power stops: S2 open"),
      tags=("cp", "link"))
async def ev_cp_001(ctx: CaseContext) -> None:
    ev = _sut(ctx).ev_pilot()
    acts = ev.measure(True, 5.0, 1.0)
    ctx.check("SLAC started at 5 %", any(a.kind is P.ActionKind.START_SLAC for a in acts), "no SLAC")
    ctx.check("S2 open at 5 %", not ev.s2 and ev.allowed == 0.0, f"S2 {ev.s2} allowed {ev.allowed}")
    ev.measure(True, 5.0, 2.0)
    ev.power_ready(True, 3.0)
    ctx.check("S2 closed when the session starts power", ev.s2, "stayed in B")
    ev.power_ready(False, 4.0)
    ctx.check("S2 open when power stops", not ev.s2, "stayed in C")


@case("TC_EVCC_CP_002", "The EV follows a duty change mid-session", group="CP",
      purpose="Basic charging at 53.3 % (32 A); the EVSE changes to 26.7 % (16 A), then stops the PWM (X1): the EV "
              "draws at most the new current and goes back to B on X1.",
      requirement="slac-pilot digest §1 / IEC 61851-1 Table A.8 (EV side), Table A.6 seq. 10.2; EV reaction time 5 s (UNVERIFIED, our choice)",
      steps=("53.3 %: expect C, 32 A", "26.7 %: expect <= 16 A within 5 s", "X1: expect B, 0 A"),
      tags=("cp", "link"))
async def ev_cp_002(ctx: CaseContext) -> None:
    ev = _sut(ctx).ev_pilot()
    ev.hlc = False
    ev.measure(True, 53.3, 1.0)
    ctx.require("charging at 32 A", ev.s2 and abs(ev.allowed - 32.0) < 0.1, f"S2 {ev.s2} {ev.allowed} A")
    t = 10.0
    while t < 10.0 + PT.t_ev_duty_follow:
        ev.measure(True, 26.7, t)
        t += 0.5
    ctx.check("<= 16 A within T_EV_duty_follow", ev.allowed <= 16.02 and ev.s2, f"{ev.allowed} A")
    ev.measure(True, None, 20.0)
    ctx.check("X1: back to B, no current", not ev.s2 and ev.allowed == 0.0, f"S2 {ev.s2} {ev.allowed} A")


@case("TC_EVCC_CP_003", "State F / E from the EVSE stops the EV", group="CP",
      purpose="When the EVSE drives -12 V (F) or the pilot collapses (E) the EV opens S2 and draws nothing.",
      requirement="slac-pilot digest §1 / IEC 61851-1 (states E, F)",
      steps=("charging at 53.3 %", "pilot F: expect B, 0 A", "53.3 % again, then E: expect B, 0 A"),
      tags=("cp", "link", "safety"))
async def ev_cp_003(ctx: CaseContext) -> None:
    ev = _sut(ctx).ev_pilot()
    ev.hlc = False
    ev.measure(True, 53.3, 1.0)
    ctx.require("charging", ev.s2, "not charging")
    ev.measure(True, None, 2.0, level=P.CpState.F)
    ctx.check("F: S2 open, 0 A", not ev.s2 and ev.allowed == 0.0, f"S2 {ev.s2} {ev.allowed} A")
    ev.measure(True, 53.3, 3.0)
    ev.measure(True, None, 4.0, level=P.CpState.E)
    ctx.check("E: S2 open, 0 A", not ev.s2 and ev.allowed == 0.0, f"S2 {ev.s2} {ev.allowed} A")


__all__ = ["LinkSut"]
