"""The decoder on real charging-session captures, checked against the charger's own event log
(an independent account of the same session) and against what the protocols require."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event
from tests.capture.capgen import (
    ALL,
    BYD_DIN,
    BYD_ISO2,
    CITROEN,
    MERC_AC,
    MERC_DC,
    MG4,
    WITH_EVENTLOG,
    eventlog,
    records,
    write_pcap,
)
from tests.proofs import REAL_CAPTURES, record


def _run(path: Path, **kw: object) -> tuple[list[Event], CaptureDecoder]:
    dec = CaptureDecoder(path, **kw)  # type: ignore[arg-type]
    return list(dec.events()), dec


def _truncated(dec: CaptureDecoder) -> bool:
    return any(p.kind == "truncated" for p in dec.reader.problems)


@pytest.mark.parametrize("path", WITH_EVENTLOG, ids=lambda p: p.name[:24])
def test_framing_counts_match_eventlog(path: Path) -> None:
    """V2GTP frames per direction (reassembly + framing only, no EXI) = messages the charger
    logged; a capture file cut short holds a prefix of them."""
    events, dec = _run(path, decode=False)
    car, evse = eventlog(path)
    v2g = [e for e in events if e.kind == "v2g"]
    n_ev = sum(e.direction == EV_TO_EVSE for e in v2g)
    n_evse = sum(e.direction == EVSE_TO_EV for e in v2g)
    if _truncated(dec):
        assert 0 < n_ev <= len(car) and 0 < n_evse <= len(evse)
        assert len(car) - n_ev <= 8 and len(evse) - n_evse <= 8
    else:
        assert (n_ev, n_evse) == (len(car), len(evse))
    assert dec.stats.v2g_by_direction == {EV_TO_EVSE: n_ev, EVSE_TO_EV: n_evse}


def test_truncated_fixtures_are_reported() -> None:
    for path in (BYD_DIN, BYD_ISO2, MERC_AC):
        events, dec = _run(path, decode=False)
        assert _truncated(dec), path.name
        cap = [e for e in events if e.kind == "capture"]
        assert cap and cap[-1].level == "error" and "ends inside frame" in cap[-1].detail
    for path in (MERC_DC, CITROEN, MG4):
        _events, dec = _run(path, decode=False)
        assert not dec.reader.problems, path.name


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name[:24])
def test_sdp_announces_the_v2g_port(path: Path) -> None:
    events, _dec = _run(path, decode=False)
    sdp = [e for e in events if e.kind == "sdp" and e.name == "SDP response"]
    assert sdp, "every fixture has an SDP exchange"
    ports = {e.fields["Port"] for e in sdp}
    v2g = [e for e in events if e.kind == "v2g"]
    assert v2g
    for e in v2g:
        server = e.dst if e.direction == EV_TO_EVSE else e.src
        assert int(server.rsplit(":", 1)[1]) in ports
        assert server.startswith(f"[{sdp[0].fields['SECC']}]")
    # Found through SDP, not by signature.
    assert not [e for e in events if e.kind == "note" and e.name == "V2G connection"]


def test_v2g_found_by_signature_without_sdp(tmp_path: Path) -> None:
    """Remove the SDP datagrams: the V2G connection is still found, from its V2GTP headers."""
    recs = records(MERC_DC)
    kept = [(r.ts, r.data) for r in recs if not (len(r.data) > 57 and r.data[20] == 17)]
    assert len(kept) < len(recs)
    p = write_pcap(tmp_path / "nosdp.pcap", kept)
    events, _ = _run(p, decode=False)
    ref, _ = _run(MERC_DC, decode=False)
    assert not [e for e in events if e.kind == "sdp"]
    notes = [e for e in events if e.kind == "note" and e.name == "V2G connection"]
    assert len(notes) == 1 and "V2GTP header" in notes[0].detail
    names = lambda evs: [(e.direction, e.payload) for e in evs if e.kind == "v2g"]  # noqa: E731
    assert names(events) == names(ref)


def test_retransmissions_reported() -> None:
    """Frames Wireshark's TCP analysis flags as retransmissions (tshark -Y tcp.analysis.retransmission
    on these files) are reported, and none of their bytes is delivered twice."""
    expected = {
        MG4: {189, 190, 191, 194, 197, 199, 390, 391, 392, 395, 399, 401},
        BYD_ISO2: {42, 508, 509},
    }
    for path, frames in expected.items():
        events, _ = _run(path, decode=False)
        flagged = {e.frame for e in events if e.kind == "tcp" and e.name in ("TCP retransmission", "TCP overlap")}
        assert frames <= flagged, (path.name, sorted(frames - flagged))
        assert not [e for e in events if e.kind == "tcp" and e.name == "TCP retransmission mismatch"]
        assert not [e for e in events if e.kind == "framing"]


def test_mg4_retransmission_with_new_data_and_fin() -> None:
    """MG4 frame 199 re-sends 172 bytes (the 86 of frame 188 and the 86 of frame 196) with FIN:
    a pure retransmission in sequence space, no duplicate message."""
    events, _ = _run(MG4, decode=False)
    at199 = [e for e in events if e.frame == 199 and e.kind == "tcp"]
    assert at199 and at199[0].fields.get("bytes") == 172
    v2g = [e for e in events if e.kind == "v2g"]
    payloads = [(e.conn, e.direction, e.first_frame) for e in v2g]
    assert len(payloads) == len(set(payloads))
    assert len({e.conn for e in v2g}) == 2


def test_capture_starting_inside_a_connection_and_port_reuse() -> None:
    """BYD -2: the capture starts with an ACK for bytes never seen, an RST, then a new SYN."""
    events, dec = _run(BYD_ISO2, decode=False)
    tcp = [(e.frame, e.name) for e in events if e.kind == "tcp"]
    assert (41, "TCP RST") in tcp
    assert (42, "TCP retransmission") in tcp
    assert dec.stats.v2g_by_direction[EV_TO_EVSE] == 135


# --------------------------------------------------------------------------------------------
# SLAC


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name[:24])
def test_slac_frames(path: Path) -> None:
    """Each SLAC run is complete and consistent: one RunID across the run, as many
    CM_MNBC_SOUND.IND as CM_SLAC_PARAM.CNF announced, match with the PEV's MAC."""
    events, dec = _run(path, decode=False)
    slac = [e for e in events if e.kind == "slac"]
    assert dec.stats.slac == len(slac) > 0
    names = Counter(e.name for e in slac)
    for n in ("CM_SLAC_PARAM.REQ", "CM_SLAC_PARAM.CNF", "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND",
              "CM_ATTEN_CHAR.IND", "CM_ATTEN_CHAR.RSP", "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"):
        assert names[n] >= 1, n
    assert all(not e.detail for e in slac), [e.detail for e in slac if e.detail]
    # A run starts with CM_SLAC_PARAM.REQ (the BYD runs SLAC twice with the same RunID, the
    # Citroen starts over with a new one).
    starts = [i for i, e in enumerate(slac) if e.name == "CM_SLAC_PARAM.REQ"]
    complete = 0
    for a, b in zip(starts, [*starts[1:], len(slac)]):
        run_id = slac[a].fields["RunID"]
        run = slac[a:b]
        assert all(e.fields.get("RunID") in (None, run_id) for e in run), "one RunID per run"
        cnf = [e for e in run if e.name == "CM_SLAC_PARAM.CNF"]
        sounds = [e for e in run if e.name == "CM_MNBC_SOUND.IND"]
        if cnf and sounds:  # a run may be abandoned before sounding
            complete += 1
            assert len(sounds) == cnf[0].fields["NUM_SOUNDS"]
            assert sorted(e.fields["CNT"] for e in sounds) == list(range(len(sounds)))
    assert complete >= 1
    match = [e for e in slac if e.name == "CM_SLAC_MATCH.CNF"][0]
    req = [e for e in slac if e.name == "CM_SLAC_PARAM.REQ" and e.fields["RunID"] == match.fields["RunID"]]
    assert req and req[0].src == match.fields["PEV_MAC"]
    assert req[0].direction == EV_TO_EVSE and match.direction == EVSE_TO_EV
    assert len(match.fields["NMK"]) == 32 and len(match.fields["NID"]) == 14


def test_slac_match_time_agrees_with_eventlog() -> None:
    """The Citroen charger logged "SLAC MATCHED" right after the CM_SLAC_MATCH.CNF it sent."""
    import csv
    import datetime

    log = CITROEN.with_name(CITROEN.name.replace(".pcap", ".eventlog.csv"))
    with open(log, newline="") as f:
        t = [datetime.datetime.fromisoformat(r[0].replace("Z", "+00:00")).timestamp()
             for r in csv.reader(f) if len(r) > 2 and r[2] == "SLAC MATCHED"][0]
    events, _ = _run(CITROEN, decode=False)
    cnf = [e for e in events if e.name == "CM_SLAC_MATCH.CNF"]
    assert any(0 <= t - e.ts < 2.0 for e in cnf)


# --------------------------------------------------------------------------------------------
# With the EXI codec


def _codec() -> None:
    import iso15118.exi.codec  # noqa: F401  (a missing codec fails the test, it never skips)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name[:24])
def test_every_message_decodes(path: Path) -> None:
    _codec()
    events, dec = _run(path)
    v2g = [e for e in events if e.kind == "v2g"]
    bad = [(e.frame, e.detail) for e in v2g if e.decoded is None or e.decoded.error]
    assert not bad
    assert dec.stats.decode_errors == 0
    body = [e for e in v2g if not e.name.startswith("supportedAppProtocol")]
    expected = "din" if "dinspec" in path.name else "iso2"
    assert {e.protocol for e in body} == {expected}
    assert {e.schema for e in body} == {expected}
    assert v2g[0].name == "supportedAppProtocolReq" and v2g[0].direction == EV_TO_EVSE
    assert v2g[1].name == "supportedAppProtocolRes" and v2g[1].response_code.startswith("OK")
    # Requests go EV->EVSE, responses EVSE->EV; every response answers the request before it.
    for e in v2g:
        assert e.name.endswith("Req") == (e.direction == EV_TO_EVSE), (e.frame, e.name, e.direction)


@pytest.mark.parametrize("path", WITH_EVENTLOG, ids=lambda p: p.name[:24])
def test_message_names_and_times_match_eventlog(path: Path) -> None:
    _codec()
    events, dec = _run(path)
    car, evse = eventlog(path)
    offsets = []
    for side, logged in ((EV_TO_EVSE, car), (EVSE_TO_EV, evse)):
        got = [e for e in events if e.kind == "v2g" and e.direction == side]
        names = [e.name.lower() for e in got]
        want = [n.lower() for _t, n in logged]
        if _truncated(dec):
            assert names == want[: len(names)]
        else:
            assert names == want
        offsets += [t - e.ts for e, (t, _n) in zip(got, logged)]
    # The charger logs each message shortly after the capture saw it (its clock and the
    # capture's agree to well within a second on these sessions).
    assert statistics.median(offsets) == pytest.approx(0.03, abs=0.1)
    assert max(abs(o) for o in offsets) < 1.5
    record(REAL_CAPTURES)


def test_session_ids_and_response_codes() -> None:
    _codec()
    events, _ = _run(MERC_DC)
    v2g = [e for e in events if e.kind == "v2g"]
    setup_res = [e for e in v2g if e.name == "SessionSetupRes"][0]
    assert setup_res.response_code == "OK_NewSessionEstablished"
    sid = setup_res.session_id
    assert sid and len(sid) == 16 and sid.strip("0")
    after = v2g[v2g.index(setup_res):]
    assert {e.session_id for e in after} == {sid}
    assert v2g[-1].name == "SessionStopRes"
    cur = [e for e in v2g if e.name == "CurrentDemandRes"]
    assert cur and all("EVSEPresentVoltage" in e.fields for e in cur)


@pytest.mark.parametrize("path,protocol", [(MERC_DC, "din"), (CITROEN, "iso2")], ids=["din", "iso2"])
def test_protocol_inferred_without_negotiation(tmp_path: Path, path: Path, protocol: str) -> None:
    """Capture without the SupportedAppProtocol exchange (its two segments removed): the protocol
    is inferred from which schema decodes the messages, and said so."""
    _codec()
    from tests.capture.capgen import tcp_layout, tcp_payload_len

    recs = records(path)
    sap = [i for i, r in enumerate(recs) if tcp_layout(r.data) and tcp_payload_len(r.data) > 0][:2]
    p = write_pcap(tmp_path / "nosap.pcap", [(r.ts, r.data) for i, r in enumerate(recs) if i not in sap])
    events, _ = _run(p)
    ref, _ = _run(path)
    notes = [e for e in events if e.kind == "note" and e.name == "protocol inferred"]
    assert len(notes) == 1
    v2g = [e for e in events if e.kind == "v2g"]
    assert {e.schema for e in v2g} == {protocol} and not [e for e in v2g if e.decoded.error]
    assert [e.name for e in v2g] == [e.name for e in ref if e.kind == "v2g"][2:]


def test_timing_rules_on_a_slowed_down_session(tmp_path: Path) -> None:
    """The real DIN session replayed 60 times slower: every response is late; the
    ContractAuthentication (Ongoing), CableCheck and PreCharge loops and the communication setup
    overrun their timers."""
    _codec()
    recs = records(MERC_DC)
    t0 = recs[0].ts
    p = write_pcap(tmp_path / "slow.pcap", [(t0 + (r.ts - t0) * 60, r.data) for r in recs])
    events, _ = _run(p)
    rules = Counter(e.fields.get("rule") for e in events if e.kind == "timing")
    assert rules["evcc_timeout"] >= 45
    assert rules["loop_timeout"] == 3  # Ongoing (60 s), CableCheck (40 s), PreCharge (7 s)
    assert rules["communication_setup"] == 1
    loops = {e.name for e in events if e.fields.get("rule") == "loop_timeout"}
    assert loops == {"ContractAuthentication loop too long", "CableCheck loop too long", "PreCharge loop too long"}
    normal, _ = _run(MERC_DC)
    assert not [e for e in normal if e.kind == "timing" and e.fields.get("rule") != "performance_time"]


@pytest.mark.parametrize(("path", "limit", "source"), [(MERC_DC, 2.0, "DIN SPEC 70121"), (BYD_ISO2, 5.0, "15118-2")],
                         ids=["din", "iso2"])
def test_power_delivery_judged_by_its_own_protocols_timeout(tmp_path: Path, path: Path, limit: float, source: str) -> None:
    """DIN's own EVCC timeout for PowerDelivery (2 s, DIN Table 75) differs from -2's 5 s: the
    decoder judges each capture by the timing facts of the protocol it negotiated."""
    _codec()
    recs = records(path)
    t0 = recs[0].ts
    p = write_pcap(tmp_path / "slow.pcap", [(t0 + (r.ts - t0) * 600, r.data) for r in recs])
    events, _ = _run(p)
    late = [e for e in events if e.kind == "timing" and e.name == "PowerDeliveryRes too late"]
    assert late, "a 600x slower session must make PowerDeliveryRes late"
    assert {e.fields["limit_s"] for e in late} == {limit}
    assert all(source in e.detail for e in late)
