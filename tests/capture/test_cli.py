"""``iso15118 decode``: output formats, summary, filters, progress."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from iso15118.cli import main
from tests.capture.capgen import BYD_ISO2, CITROEN, MERC_DC, MG4


def _codec() -> None:
    import iso15118.exi.codec  # noqa: F401  (a missing codec fails the test, it never skips)


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = tmp_path / "out"
    rc = main(["decode", *args, "-o", str(out)])
    return rc, out.read_text()


def test_text_timeline(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(MERC_DC), "--color", "never")
    assert rc == 0
    lines = text.splitlines()
    assert lines[0].startswith("capture starts 2023-04-18T15:18:")
    sap = [ln for ln in lines if "supportedAppProtocolRes" in ln][0]
    assert "EVSE -> EV" in sap and "OK_SuccessfulNegotiation" in sap
    cd = [ln for ln in lines if " CurrentDemandReq " in ln]
    assert len(cd) == 31 and all("EV  -> EVSE" in ln and "EVTargetVoltage=" in ln for ln in cd)
    assert any("CM_SLAC_MATCH.CNF" in ln and "NMK=" in ln for ln in lines)
    assert any("SDP response" in ln and "Port=61341" in ln for ln in lines)
    assert "\x1b[" not in text


def test_absolute_time(tmp_path: Path) -> None:
    rc, text = _run(tmp_path, str(CITROEN), "--absolute-time", "--no-slac", "--no-decode")
    first = text.splitlines()[0]
    assert first.startswith("12:40:27.373519Z #39 ") and "SDP request" in first


def test_text_colours_errors(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(MG4), "--color", "always")
    assert "\x1b[" in text
    late = [ln for ln in text.splitlines() if "EV timeout exceeded" in ln]
    assert late and "\x1b[1;31m" in late[0]  # bold red


def test_json_has_every_field(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(MERC_DC), "--format", "json", "--summary")
    assert rc == 0
    doc = json.loads(text)
    events = doc["events"]
    v2g = [e for e in events if e["kind"] == "v2g"]
    assert len(v2g) == 98
    first = v2g[0]
    assert first["message"]["supportedAppProtocolReq"]["AppProtocol"]
    assert first["payload_type"] == "0x8001" and first["schema"] == "sap" and first["payload_hex"]
    cd = [e for e in v2g if e["name"] == "CurrentDemandReq"][0]
    body = cd["message"]["V2G_Message"]["Body"]["CurrentDemandReq"]
    assert set(body) >= {"DC_EVStatus", "EVTargetVoltage", "EVTargetCurrent", "ChargingComplete"}
    assert cd["message"]["V2G_Message"]["Header"]["SessionID"] == cd["session_id"]
    assert cd["protocol"] == "din" and cd["direction"] == "EV->EVSE"
    assert {"time", "ts", "frame", "src", "dst", "conn"} <= set(cd)
    s = doc["summary"]
    sess = s["sessions"][0]
    assert sess["session_id"] == cd["session_id"] and sess["protocol"] == "DIN SPEC 70121"
    assert sess["messages"] == {"EV->EVSE": 49, "EVSE->EV": 49}
    assert sess["services_selected"]["PaymentOption"] == "ExternalPayment"
    assert sess["power"]["ev_target"]["max_w"] > 1000
    assert s["capture"]["v2g_messages"] == 98 and s["errors"]["count"] == 0
    assert s["timing_violations"]["by_rule"].get("performance_time", 0) > 0


def test_jsonl_and_filters(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(MG4), "--format", "jsonl", "--message", "currentdemand*", "--summary")
    lines = [json.loads(ln) for ln in text.splitlines()]
    events, summary = lines[:-1], lines[-1]["summary"]
    assert events and {e["name"] for e in events if e["kind"] == "v2g"} == {"CurrentDemandReq", "CurrentDemandRes"}
    assert {e["name"] for e in events if e["kind"] != "v2g"} <= {"CurrentDemandRes slow", "CurrentDemandRes too late"}
    assert len(summary["sessions"]) == 2
    sid = summary["sessions"][1]["session_id"]
    rc, text = _run(tmp_path, str(MG4), "--format", "jsonl", "--session", sid.lower())
    evs = [json.loads(ln) for ln in text.splitlines()]
    assert {e.get("session_id") for e in evs if e["kind"] == "v2g" and e["name"] != "SessionSetupReq"
            and not e["name"].startswith("supportedAppProtocol")} == {sid}
    names = [e["name"] for e in evs if e["kind"] == "v2g"]
    # The negotiation before the SECC assigned the SessionID belongs to the session too.
    assert names[:3] == ["supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq"]
    assert len(names) == summary["sessions"][1]["messages"]["EV->EVSE"] * 2
    assert {e["conn"] for e in evs} == {2}


def test_xml(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(CITROEN), "--format", "xml", "--summary")
    root = ET.fromstring(text)
    assert root.tag == "capture"
    ev = [e for e in root.findall("event") if e.get("kind") == "v2g"]
    assert len(ev) == 8
    msg = ev[2].find("message")
    assert msg is not None and len(msg) == 1 and msg[0].tag.endswith("V2G_Message")
    assert ev[2].find("payload").text
    assert root.find("summary") is not None


def test_summary_text(tmp_path: Path) -> None:
    _codec()
    rc, text = _run(tmp_path, str(BYD_ISO2), "--summary", "--color", "never")
    assert rc == 1  # the file is cut short
    for needle in ("Capture", "Session ", "ISO 15118-2", "power (EVSE present)", "energy", "SoC", "errors",
                   "capture file truncated", "[fe80::d810:3e14:ba2b:b211]:61341"):
        assert needle in text, needle
    assert " CurrentDemandReq " not in text  # no timeline unless --timeline


def test_no_decode_and_progress(tmp_path: Path) -> None:
    rc, text = _run(tmp_path, str(MERC_DC), "--no-decode", "--progress", "always", "--format", "jsonl", "--no-slac")
    evs = [json.loads(ln) for ln in text.splitlines()]
    assert not [e for e in evs if e["kind"] == "slac"]
    v2g = [e for e in evs if e["kind"] == "v2g"]
    assert len(v2g) == 98 and all("message" not in e and e["payload_hex"] for e in v2g)


def test_help_documents_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    out = capsys.readouterr().out
    assert "Exit status" in out and "--keylog" in out and "--summary" in out
