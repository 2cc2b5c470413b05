"""The SLAC cores on the in-memory line (virtual time): a full match, crosstalk, key results,
restarts, the validation branch, and the decoder under fuzzing."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iso15118.link.slac import messages as msg
from iso15118.link.slac.ev import EvPhase, EvSlac
from iso15118.link.slac.events import SendFrame, SlacFailed, SlacMatched
from iso15118.link.slac.evse import EvseSlac
from iso15118.link.slac.messages import MMType, SlacDecodeError
from iso15118.link.slac.modem import SimModem
from iso15118.link.slac.simline import run_line
from iso15118.link.timers import NUM_GROUPS, SlacTimers

EV, EVSE, EVSE2 = "02:00:00:00:0e:01", "02:00:00:00:05:01", "02:00:00:00:05:02"


def test_full_match_on_the_line() -> None:
    ev, evse = EvSlac(EV), EvseSlac(EVSE)
    r = run_line(ev, evse, ev_start_at=1.0)
    a, b = r.outcome("ev"), r.outcome("evse")
    assert isinstance(a, SlacMatched) and isinstance(b, SlacMatched)
    assert a.nmk == b.nmk == evse.nmk and a.nid == b.nid == msg.nid_from_nmk(evse.nmk)
    assert a.peer_mac == EVSE and b.peer_mac == EV and a.run_id == b.run_id
    names = Counter(msg.parse(f).mmtype for _t, _s, f in r.line)
    assert names[MMType.CM_START_ATTEN_CHAR_IND] == 3 and names[MMType.CM_MNBC_SOUND_IND] == 10
    assert names[MMType.CM_SET_KEY_REQ] == 0  # the key exchanges stay between host and modem
    # MATCH.REQ goes out when TT_EV_atten_results (1.2 s from the first START) has expired
    t_start = min(t for t, _s, f in r.line if msg.parse(f).mmtype is MMType.CM_START_ATTEN_CHAR_IND)
    t_match = min(t for t, _s, f in r.line if msg.parse(f).mmtype is MMType.CM_SLAC_MATCH_REQ)
    assert abs(t_match - t_start - SlacTimers().tt_ev_atten_results) < 1e-6
    print(f"\nin-memory SLAC: {b.duration:.3f} s from PARM.REQ to MATCH.CNF, {len(r.line)} frames on the line")


def test_crosstalk_the_ev_picks_the_lowest_attenuation() -> None:
    """Two EVSEs hear the EV's sounds; the EV answers both INDs and matches the nearer one."""
    ev = EvSlac(EV)
    near, far = EvseSlac(EVSE), EvseSlac(EVSE2)
    modems = {EVSE: SimModem(EVSE, base_db=20), EVSE2: SimModem(EVSE2, base_db=38)}
    t = 0.0
    out: list[tuple[str, bytes]] = []  # (sender, frame) still to deliver

    def push(sender: str, events: list[object]) -> None:
        for e in events:
            if isinstance(e, SendFrame):
                out.append((sender, e.frame))

    for c in (near, far):
        push(c.mac, c.start(0.0))
        c.enable(0.0)
    out.clear()  # keys stay in the modems
    push(EV, ev.start(0.0))
    cores = {EVSE: near, EVSE2: far}
    while t < 5.0 and ev.matched is None:
        while out:
            sender, frame = out.pop(0)
            if sender == EV:
                dst = msg.mac_str(frame[0:6])
                if dst == msg.MODEM_MAC:
                    push("ev-modem", [])
                    ev_cnf = msg.set_key_cnf("02:b0:52:00:00:0e", EV)
                    push(EV, ev.receive(ev_cnf, t))
                    continue
                for mac, core in cores.items():
                    if dst in (msg.BROADCAST, mac):
                        for f in modems[mac].from_line(frame):
                            push(mac, core.receive(f, t))
            else:
                push(EV, ev.receive(frame, t))
        ds = [d for d in (ev.next_deadline(), near.next_deadline(), far.next_deadline()) if d is not None]
        if not ds:
            break
        t = max(t, min(ds))
        push(EV, ev.handle_timer(t))
        for mac, core in cores.items():
            push(mac, core.handle_timer(t))
    assert set(ev.results) == {EVSE, EVSE2}
    assert ev.results[EVSE].mean < ev.results[EVSE2].mean
    assert ev.matched is not None and ev.matched.peer_mac == EVSE
    assert near.matched is not None and far.matched is None


@pytest.mark.parametrize(("result", "ok"), [(0, True), (1, True), (2, False)])
def test_set_key_cnf_results(result: int, ok: bool) -> None:
    """HPGP says 0x00 = success, QCA firmware answers 0x01: both are success; others are not."""
    ev, evse = EvSlac(EV), EvseSlac(EVSE)
    r = run_line(ev, evse, ev_modem=SimModem(EV, set_key_result=result), until=30.0)
    assert isinstance(r.outcome("ev"), SlacMatched) is ok
    if not ok:
        assert any("CM_SET_KEY.CNF result 2" in why for why in ev.reasons)


def test_repeated_parm_req_restarts_the_session() -> None:
    """BYD: a second PARM.REQ with the same RunID restarts matching (and the run then matches)."""
    evse = EvseSlac(EVSE)
    evse.enable(0.0)
    run = b"BYDRUNID"
    evse.receive(msg.parm_req(EV, run), 1.0)
    evse.receive(msg.start_atten_char(EV, run), 1.1)
    evse.receive(msg.parm_req(EV, run), 1.2)
    s = evse.sessions[(EV, run)]
    assert s.phase.value == "wait_start" and s.started == 1.2


def test_parm_req_bursts_are_each_answered() -> None:
    """Tesla: PARM.REQ repeated every ~204 ms; each gets a CNF (same RunID)."""
    evse = EvseSlac(EVSE)
    evse.enable(0.0)
    cnfs = [e for i in range(5) for e in evse.receive(msg.parm_req(EV, b"TESLA EV"), 1.0 + 0.204 * i)
            if isinstance(e, SendFrame)]
    assert len(cnfs) == 5 and all(msg.parse(c.frame).run_id == b"TESLA EV" for c in cnfs)


def test_validation_branch() -> None:
    """Between the direct and the match threshold the EV asks CM_VALIDATE first; our EVSE answers
    "not required" and the match follows."""
    ev, evse = EvSlac(EV, validate_above_db=15.0), EvseSlac(EVSE)
    r = run_line(ev, evse)
    names = [msg.parse(f).mmtype for _t, _s, f in r.line]
    assert MMType.CM_VALIDATE_REQ in names and MMType.CM_VALIDATE_CNF in names
    assert names.index(MMType.CM_VALIDATE_CNF) < names.index(MMType.CM_SLAC_MATCH_REQ)
    assert isinstance(r.outcome("ev"), SlacMatched)


def test_attenuation_out_of_range_on_the_line() -> None:
    ev, evse = EvSlac(EV, match_attenuation_db=30.0), EvseSlac(EVSE)
    r = run_line(ev, evse, evse_modem=SimModem(EVSE, base_db=45.0), until=20.0)
    assert isinstance(r.outcome("ev"), SlacFailed) and ev.phase is EvPhase.FAILED
    assert all("attenuation out of range" in why for why in ev.reasons), ev.reasons
    assert not any(msg.parse(f).mmtype is MMType.CM_SLAC_MATCH_REQ for _t, _s, f in r.line)


def test_amp_map_after_the_match() -> None:
    ev, evse = EvSlac(EV), EvseSlac(EVSE)
    run_line(ev, evse)
    frame = msg.amp_map_req(EV, EVSE, b"\x11\x22")
    out = [e for e in evse.receive(frame, 10.0) if isinstance(e, SendFrame)]
    assert len(out) == 1 and msg.parse(out[0].frame).mmtype is MMType.CM_AMP_MAP_CNF
    assert not [e for e in EvseSlac(EVSE).receive(frame, 1.0) if isinstance(e, SendFrame)]  # not before a match


def test_profile_groups_are_checked() -> None:
    bad = bytearray(msg.atten_profile_ind(EVSE, EV, [20] * NUM_GROUPS))
    bad[19 + 6] = 200  # NumGroups says 200, 58 present
    with pytest.raises(SlacDecodeError):
        msg.parse(bytes(bad))


_VALID = [
    msg.parm_req(EV, b"12345678"), msg.parm_cnf(EVSE, EV, b"12345678"), msg.start_atten_char(EV, b"12345678"),
    msg.mnbc_sound(EV, b"12345678", 3), msg.atten_profile_ind(EVSE, EV, [30] * NUM_GROUPS),
    msg.atten_char_ind(EVSE, EV, b"12345678", 10, [30] * NUM_GROUPS), msg.atten_char_rsp(EV, EVSE, b"12345678"),
    msg.match_req(EV, EVSE, b"12345678"), msg.match_cnf(EVSE, EV, b"12345678", bytes(7), bytes(16)),
    msg.set_key_req(EVSE, bytes(16), bytes(7)), msg.set_key_cnf(EVSE, EV), msg.validate_req(EV, EVSE),
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_VALID), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       st.integers(0, 140), st.binary(max_size=40))
def test_fuzz_decoder_and_cores(base: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    """Mutated, truncated and extended frames: a SlacFrame or SlacDecodeError, never anything
    else; the cores never raise on them."""
    b = bytearray(base)
    for pos, val in flips:
        if pos < len(b):
            b[pos] = val
    frame = bytes(b[: max(0, len(b) - cut)]) + tail
    try:
        msg.parse(frame)
    except SlacDecodeError:
        pass
    ev, evse = EvSlac(EV), EvseSlac(EVSE)
    ev.start(0.0)
    evse.enable(0.0)
    ev.receive(frame, 0.1)
    evse.receive(frame, 0.1)


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(SlacDecodeError):
        msg.parse(msg.parm_req(EV, b"12345678") + bytes(2000))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_pilot_wire_decoder(data: bytes) -> None:
    from iso15118.link.driver import PilotWire

    st_ = PilotWire.decode(bytes(14) + b"CPSIM1" + data)
    assert st_ is None or st_.role in ("evse", "ev")
    assert PilotWire.decode(data) is None or data[14:20] == b"CPSIM1"


def test_lost_rsp_the_repeated_ind_is_acknowledged() -> None:
    """The line drops our first ATTEN_CHAR.RSP: the EVSE repeats the IND, the EV answers again and
    the match still happens."""
    dropped: list[float] = []

    def drop(t: float, side: str, frame: bytes) -> bool:
        if side == "ev" and msg.parse(frame).mmtype is MMType.CM_ATTEN_CHAR_RSP and not dropped:
            dropped.append(t)
            return True
        return False

    ev, evse = EvSlac(EV), EvseSlac(EVSE)
    r = run_line(ev, evse, drop=drop)
    inds = [t for t, _s, f in r.line if msg.parse(f).mmtype is MMType.CM_ATTEN_CHAR_IND]
    rsps = [t for t, _s, f in r.line if msg.parse(f).mmtype is MMType.CM_ATTEN_CHAR_RSP]
    assert dropped and len(inds) == 2 and len(rsps) == 1
    assert isinstance(r.outcome("ev"), SlacMatched) and isinstance(r.outcome("evse"), SlacMatched)
