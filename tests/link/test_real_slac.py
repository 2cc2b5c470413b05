"""Real SLAC recordings (EVerest/logfiles, Apache-2.0): every SLAC frame parses, and the EV
side of each recording, replayed at its recorded times with the modem's real attenuation
profiles, matches against our EVSE SLAC -- which answers what the recorded EVSE answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from iso15118.link.slac import messages as msg
from iso15118.link.slac.events import SlacMatched
from iso15118.link.slac.evse import EvseSlac
from iso15118.link.slac.messages import MMType
from iso15118.link.slac.replay import read_recording, replay_ev

FIX = Path(__file__).resolve().parents[2] / "fixtures"
RECORDINGS = sorted((FIX / "captures").glob("*.pcap")) + sorted((FIX / "slac").glob("*.pcap"))
OFFSET_DB = {"MG_MG4_electric.pcap": -10}
"""That charger added -10 dB to every reported group (EVerest's sounding_attenuation_adjustment)."""


def test_the_recordings_are_there() -> None:
    assert len(RECORDINGS) == 8, RECORDINGS


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name[:28])
def test_every_slac_frame_parses(path: Path) -> None:
    rec = read_recording(path)
    assert rec.undecodable == 0
    kinds = {f.mmtype for _t, f in rec.frames}
    for k in (MMType.CM_SET_KEY_REQ, MMType.CM_SET_KEY_CNF, MMType.CM_SLAC_PARM_REQ, MMType.CM_SLAC_PARM_CNF,
              MMType.CM_START_ATTEN_CHAR_IND, MMType.CM_MNBC_SOUND_IND, MMType.CM_ATTEN_PROFILE_IND,
              MMType.CM_ATTEN_CHAR_IND, MMType.CM_ATTEN_CHAR_RSP, MMType.CM_SLAC_MATCH_REQ, MMType.CM_SLAC_MATCH_CNF):
        assert k in kinds, k
    # the recorded EVSE's NID is derived from its NMK as ours is
    for _t, f in rec.of(MMType.CM_SLAC_MATCH_CNF):
        v = f.get("VariableField")
        assert msg.nid_from_nmk(bytes(v.NMK)) == bytes(v.NetworkID)
    # our builders reproduce the recorded EVSE's MATCH.CNF byte for byte (up to trailing padding)
    t, cnf = rec.of(MMType.CM_SLAC_MATCH_CNF)[0]
    v = cnf.get("VariableField")
    ours = msg.match_cnf(cnf.src, cnf.dst, bytes(v.RunID), bytes(v.NetworkID), bytes(v.NMK))
    assert ours == cnf.raw[: len(ours)]


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name[:28])
def test_recorded_ev_matches_our_evse(path: Path) -> None:
    rec = read_recording(path)
    core = EvseSlac(rec.evse_mac, attenuation_offset=OFFSET_DB.get(path.name, 0))
    res = replay_ev(rec, core)
    out = res.outcome
    assert isinstance(out, SlacMatched), (out, core.ignored)
    assert out.peer_mac == rec.ev_mac
    t_match, recorded_match = rec.of(MMType.CM_SLAC_MATCH_REQ)[0]
    assert out.run_id == recorded_match.run_id
    ours = res.sent_of(MMType.CM_SLAC_MATCH_CNF)[0].get("VariableField")
    assert bytes(ours.NMK) == core.nmk and bytes(ours.NetworkID) == msg.nid_from_nmk(core.nmk)
    # our ATTEN_CHAR.IND carries what the recorded EVSE reported: same sound count, same groups
    our_ind = res.sent_of(MMType.CM_ATTEN_CHAR_IND)[-1]
    their_ind = [f for t, f in rec.of(MMType.CM_ATTEN_CHAR_IND) if f.run_id == out.run_id and t < t_match][-1]
    assert our_ind.get("NumberOfSounds") == their_ind.get("NumberOfSounds")
    assert our_ind.aag() == their_ind.aag()
    # and our PARM.CNF has the fields the EV accepted from the recorded one
    p_ours, p_theirs = res.sent_of(MMType.CM_SLAC_PARM_CNF)[0], rec.of(MMType.CM_SLAC_PARM_CNF)[0][1]
    for name in ("MSoundTargetMAC", "NumberMSounds", "TimeOut", "ResponseType", "ForwardingSTA", "RunID"):
        assert p_ours.get(name) == p_theirs.get(name), name
    print(f"\n{path.name[:28]}: matched {out.duration * 1000:.0f} ms after the first PARM.REQ, "
          f"{our_ind.get('NumberOfSounds')} sounds, mean {out.attenuation_db:.1f} dB")


def test_seres_late_sounds_give_nine() -> None:
    """Seres: 54 ms between sounds, the 600 ms window closes before the 10th (digest §7.3)."""
    rec = read_recording(FIX / "slac" / "Seres_2024-01-10T13-18-27.364Z-1_din_spec.pcap")
    res = replay_ev(rec)
    assert res.sent_of(MMType.CM_ATTEN_CHAR_IND)[0].get("NumberOfSounds") == 9
    assert any("outside a sounding window" in why for _t, why in res.core.ignored)  # type: ignore[union-attr]


def test_a_wrong_evse_mac_never_matches() -> None:
    """Control: the same replay against an EVSE with another MAC gets no MATCH.CNF (the EV
    addressed its MATCH.REQ to the recorded EVSE), so the match above is earned."""
    rec = read_recording(RECORDINGS[0])
    core = EvseSlac("02:00:00:00:00:99")
    res = replay_ev(rec, core)
    assert not res.sent_of(MMType.CM_SLAC_MATCH_CNF)
    assert not isinstance(res.outcome, SlacMatched)
