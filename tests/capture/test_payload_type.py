"""A message under the wrong V2GTP payload type is decoded with the session's negotiated grammar
and flagged as the sender's defect (a typed finding on the timeline and in the JSON output).

Captures: a -20 AC session built around the reference corpus' EXI streams (a vehicle sending its
CertificateInstallationReq as 0x8001 instead of 0x8002, and an AC message as 0x8002 instead of
0x8003), and the real BYD -2 capture with one message's payload type rewritten to 0x8002.
"""

from __future__ import annotations

import json
from pathlib import Path

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import Event, FindingKind
from iso15118.cli import main
from tests.capture.capgen import (
    BYD_ISO2,
    records,
    retcp,
    tcp_layout,
    tcp_payload_len,
    transform,
    v2g_conversation,
    write_pcap,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "exi"


def _exi(rel: str) -> bytes:
    return (FIX / rel).read_bytes()


def _session_20(cert_type: int = 0x8001, ac_type: int = 0x8002, negotiate: bool = True) -> list[tuple[int, int, bytes]]:
    sap = [(0, 0x8001, _exi("sap/SupportedAppProtocolReq.exi")),  # offers -20 AC (SchemaID 1) first
           (1, 0x8001, _exi("sap/SupportedAppProtocolRes.exi"))]  # SchemaID 1: -20 AC
    return (sap if negotiate else []) + [
        (0, 0x8002, _exi("common/SessionSetupReq.exi")),
        (1, 0x8002, _exi("common/SessionSetupRes.exi")),
        (0, cert_type, _exi("common/CertificateInstallationReq.exi")),
        (1, 0x8002, _exi("common/CertificateInstallationRes.exi")),
        (0, ac_type, _exi("ac/AC_ChargeParameterDiscoveryReq.exi")),
        (1, 0x8003, _exi("ac/AC_ChargeParameterDiscoveryRes.exi")),
    ]


def _v2g(path: Path) -> list[Event]:
    return [e for e in CaptureDecoder(path).events() if e.kind == "v2g"]


def test_20_session_wrong_payload_types(tmp_path: Path) -> None:
    events = _v2g(write_pcap(tmp_path / "s20.pcap", v2g_conversation(_session_20())))
    assert [e.name for e in events] == [
        "supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes",
        "CertificateInstallationReq", "CertificateInstallationRes", "AC_ChargeParameterDiscoveryReq",
        "AC_ChargeParameterDiscoveryRes"]
    cert, ac = events[4], events[6]
    assert cert.schema == "common" and cert.payload_type == 0x8001 and cert.decoded is not None
    assert cert.decoded.error is None and cert.level == "error"
    (f,) = cert.findings
    assert f.kind == FindingKind.WRONG_PAYLOAD_TYPE and f.party == "EV"
    assert f.data == {"payload_type": "0x8001", "expected_payload_type": "0x8002", "schema": "common", "protocol": "-20"}
    assert "CertificateInstallationReq sent as payload type 0x8001" in cert.detail and "EV's defect" in cert.detail
    assert ac.schema == "ac" and ac.findings[0].data["expected_payload_type"] == "0x8003"
    assert ac.findings[0].data["payload_type"] == "0x8002"
    for e in events[:4] + [events[5], events[7]]:  # the rightly typed messages: nothing flagged
        assert e.level == "info" and not e.findings, e.name


def test_20_rightly_typed_session_has_no_finding(tmp_path: Path) -> None:
    """The control: the same session with the right payload types is clean."""
    events = _v2g(write_pcap(tmp_path / "ok.pcap", v2g_conversation(_session_20(0x8002, 0x8003))))
    assert len(events) == 8 and all(e.level == "info" and not e.findings for e in events)


def test_no_negotiation_no_guess(tmp_path: Path) -> None:
    """Without a negotiation seen, nothing says which grammar the session uses: the 0x8001
    payload stays undecodable (an error), never silently re-read with a guessed -20 grammar."""
    events = _v2g(write_pcap(tmp_path / "nosap.pcap", v2g_conversation(_session_20(negotiate=False))))
    cert = [e for e in events if e.payload_type == 0x8001]
    assert len(cert) == 1 and cert[0].name.startswith("undecodable") and not cert[0].findings


def test_json_output_carries_the_finding(tmp_path: Path) -> None:
    p = write_pcap(tmp_path / "s20.pcap", v2g_conversation(_session_20()))
    out = tmp_path / "out.json"
    rc = main(["decode", str(p), "--format", "json", "--summary", "-o", str(out)])
    assert rc == 0  # what the peer did, like a FAILED response code: decoded, not a decoder problem
    doc = json.loads(out.read_text())
    flagged = [e for e in doc["events"] if e.get("findings")]
    assert [e["name"] for e in flagged] == ["CertificateInstallationReq", "AC_ChargeParameterDiscoveryReq"]
    f = flagged[0]["findings"][0]
    assert f["kind"] == "wrong_payload_type" and f["party"] == "EV" and f["expected_payload_type"] == "0x8002"
    assert flagged[0]["payload_type"] == "0x8001" and flagged[0]["schema"] == "common"
    assert flagged[0]["message"]["CertificateInstallationReq"]["Header"]["SessionID"]
    assert doc["summary"]["findings"] == {"wrong_payload_type": {"EV": 2}}


def test_iso2_payload_under_0x8002(tmp_path: Path) -> None:
    """A -2 message sent as 0x8002 in the real BYD -2 session: decoded with the -2 grammar,
    flagged; every other message of the capture decodes exactly as in the original."""
    recs = records(BYD_ISO2)
    data_idx = [i for i, r in enumerate(recs) if tcp_layout(r.data) and tcp_payload_len(r.data) >= 8]
    idx = data_idx[8]

    def retype(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        lay = tcp_layout(r.data)
        assert lay is not None
        payload = bytearray(r.data[lay[2]: lay[2] + tcp_payload_len(r.data)])
        assert payload[:4] == b"\x01\xfe\x80\x01"
        payload[2:4] = b"\x80\x02"
        return [retcp(r.data, bytes(payload), 0)]

    events = _v2g(write_pcap(tmp_path / "iso2.pcap", transform(recs, retype)))
    original = _v2g(BYD_ISO2)
    assert [e.name for e in events] == [e.name for e in original]
    flagged = [e for e in events if e.findings]
    assert len(flagged) == 1
    ev = flagged[0]
    assert ev.frame == recs[idx].index and ev.payload_type == 0x8002 and ev.schema == "iso2"
    assert ev.name == "AuthorizationReq" and ev.level == "error"
    (f,) = ev.findings
    assert f.kind == FindingKind.WRONG_PAYLOAD_TYPE and f.party == "EV"
    assert f.data["expected_payload_type"] == "0x8001" and f.data["protocol"] == "iso2"
    twin = [e for e in original if e.frame == ev.frame][0]
    assert ev.decoded is not None and twin.decoded is not None and ev.decoded.tree == twin.decoded.tree


def test_xml_output_carries_the_finding(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    p = write_pcap(tmp_path / "s20.pcap", v2g_conversation(_session_20()))
    out = tmp_path / "out.xml"
    assert main(["decode", str(p), "--format", "xml", "-o", str(out)]) == 0
    found = [(e.get("name"), f.get("kind"), f.get("party"), f.get("expected_payload_type"))
             for e in ET.parse(out).getroot().iter("event") for f in e.iter("finding")]
    assert found == [("CertificateInstallationReq", "wrong_payload_type", "EV", "0x8002"),
                     ("AC_ChargeParameterDiscoveryReq", "wrong_payload_type", "EV", "0x8003")]
