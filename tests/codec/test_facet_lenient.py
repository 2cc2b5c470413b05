"""Values outside a facet that the EXI bits still carry, as real devices send them.

The payloads are crafted from the reference codec's own bytes (EXIficient, never our encoder): the
oracle encodes the same message with neighbouring legal values, the bits that differ locate the
n-bit field, and the field is then set to a code past the facet (4 phases in the 2-bit field of
``maxNumPhasesType`` 1..3, a SOC of 120 in the 7-bit field of ``percentValueType`` 0..100).

* strict ``decode`` refuses them with the typed :class:`ExiFacetError`;
* ``decode_lenient`` keeps the value and lists a :class:`FacetWarning` ("value 4 outside facet
  maxInclusive 3 ...") with the element path;
* the encoder still refuses them (strict), and re-encodes them bit for bit with ``validate=False``;
* an enumeration index past the list is not carried by the bits: an error both ways;
* the typed message layer reports the value as a :class:`MessageValidationError`, never crashes;
* the capture decoder shows the message decoded, with the warning, on the timeline and in JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iso15118 import messages
from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import FindingKind
from iso15118.capture.render import event_to_dict
from iso15118.cli import main
from iso15118.exi import ExiDecodeError, ExiEncodeError, codec
from iso15118.exi.errors import ExiFacetError
from iso15118.exi.facets import FacetWarning
from tests.capture.capgen import v2g_conversation, write_pcap
from tests.oracle import Oracle, oracle  # noqa: F401  (session fixture)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "exi"


def _power_delivery(phases: int) -> str:
    return ('<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef" xmlns:body="urn:iso:15118:2:2013:MsgBody" '
            'xmlns:dt="urn:iso:15118:2:2013:MsgDataTypes" xmlns:hd="urn:iso:15118:2:2013:MsgHeader">'
            '<Header><hd:SessionID>3B5A9C0E12D4F607</hd:SessionID></Header><Body><body:PowerDeliveryReq>'
            '<body:ChargeProgress>Start</body:ChargeProgress><body:SAScheduleTupleID>1</body:SAScheduleTupleID>'
            '<body:ChargingProfile><dt:ProfileEntry><dt:ChargingProfileEntryStart>0</dt:ChargingProfileEntryStart>'
            '<dt:ChargingProfileEntryMaxPower><dt:Multiplier>0</dt:Multiplier><dt:Unit>W</dt:Unit>'
            '<dt:Value>11520</dt:Value></dt:ChargingProfileEntryMaxPower>'
            f'<dt:ChargingProfileEntryMaxNumberOfPhasesInUse>{phases}</dt:ChargingProfileEntryMaxNumberOfPhasesInUse>'
            '</dt:ProfileEntry></body:ChargingProfile></body:PowerDeliveryReq></Body></V2G_Message>')


def _soc(xml: str, soc: int) -> str:
    return xml.replace("<ct:PresentSOC>55</ct:PresentSOC>", f"<ct:PresentSOC>{soc}</ct:PresentSOC>")


def _processing(value: str) -> str:
    xml = (FIX / "common" / "AuthorizationRes.xml").read_text()
    assert "<EVSEProcessing>Finished</EVSEProcessing>" in xml
    return xml.replace("<EVSEProcessing>Finished</EVSEProcessing>", f"<EVSEProcessing>{value}</EVSEProcessing>")


def _bits(data: bytes) -> list[int]:
    return [(b >> (7 - i)) & 1 for b in data for i in range(8)]


def _from_bits(bits: list[int]) -> bytes:
    bits = bits + [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _craft(variants: list[bytes], codes: list[int], width: int, code: int) -> bytes:
    """Locates an n-bit field from reference streams that differ only in it (``codes``: what each
    variant carries there, chosen so that together they differ in every bit of the field) and
    writes ``code`` into it."""
    streams = [_bits(v) for v in variants]
    assert len({len(s) for s in streams}) == 1, "the variants must differ only inside the field"
    diff = [i for i in range(len(streams[0])) if len({s[i] for s in streams}) > 1]
    start, end = diff[0], diff[-1] + 1
    assert end - start == width
    for stream, c in zip(streams, codes):
        assert stream[start:end] == [(c >> (width - 1 - i)) & 1 for i in range(width)]
    out = list(streams[0])
    out[start:end] = [(code >> (width - 1 - i)) & 1 for i in range(width)]
    return _from_bits(out)[: len(variants[0])]


@pytest.fixture(scope="module")
def crafted(oracle: Oracle) -> dict[str, bytes]:  # noqa: F811
    dc_xml = (FIX / "dc" / "DC_ChargeLoopReq_Scheduled.xml").read_text()
    jobs = [("iso2", _power_delivery(1), False), ("iso2", _power_delivery(2), False), ("iso2", _power_delivery(3), False),
            ("dc", _soc(dc_xml, 63), False), ("dc", _soc(dc_xml, 64), False),
            ("common", _processing("Finished"), False), ("common", _processing("Ongoing"), False),
            ("common", _processing("Ongoing_WaitingForCustomerInteraction"), False),
            ("sap", (FIX / "sap" / "SupportedAppProtocolRes.xml").read_text().replace(
                "<SchemaID>1</SchemaID>", "<SchemaID>3</SchemaID>"), False)]
    r = [x.unwrap() for x in oracle.encode_many(jobs)]
    return {
        "phases4": _craft([r[0], r[1], r[2]], [0, 1, 2], 2, 3),  # code 3 = 4 phases
        "phases3": r[2],
        "soc120": _craft([r[3], r[4]], [63, 64], 7, 120),
        "soc64": r[4],
        "enum3": _craft([r[5], r[6], r[7]], [0, 1, 2], 2, 3),  # processingType has 3 values: index 3 is none
        "sap_res_iso2": r[8],  # SchemaID 3: the -2 entry of fixtures/exi/sap/SupportedAppProtocolReq
    }


def test_craft_is_sound(crafted: dict[str, bytes]) -> None:
    """Sanity of the crafting: a legal code written the same way gives the oracle's own bytes."""
    assert codec("iso2").decode(crafted["phases3"]) is not None
    assert crafted["phases4"] != crafted["phases3"] and len(crafted["phases4"]) == len(crafted["phases3"])


def test_strict_decode_refuses_with_a_typed_error(crafted: dict[str, bytes]) -> None:
    with pytest.raises(ExiFacetError, match="value 4 outside facet maxInclusive 3"):
        codec("iso2").decode(crafted["phases4"])
    with pytest.raises(ExiFacetError, match="value 120 outside facet maxInclusive 100"):
        codec("dc").decode(crafted["soc120"])


def test_lenient_decode_keeps_the_value_with_a_warning(crafted: dict[str, bytes]) -> None:
    tree, warnings = codec("iso2").decode_lenient(crafted["phases4"])
    entry = tree.find("Body").find("PowerDeliveryReq").find("ChargingProfile").find("ProfileEntry")
    assert entry.find("ChargingProfileEntryMaxNumberOfPhasesInUse").value == 4
    assert entry.find("ChargingProfileEntryMaxPower").find("Value").value == 11520  # the rest is intact
    assert warnings == [FacetWarning(
        "/V2G_Message/Body/PowerDeliveryReq/ChargingProfile/ProfileEntry/ChargingProfileEntryMaxNumberOfPhasesInUse",
        4, "maxInclusive", 3, "maxNumPhasesType")]
    assert str(warnings[0]).startswith("value 4 outside facet maxInclusive 3 of maxNumPhasesType at /V2G_Message/")
    # a legal message: no warning, same tree as the strict decoder
    tree3, w3 = codec("iso2").decode_lenient(crafted["phases3"])
    assert w3 == [] and tree3 == codec("iso2").decode(crafted["phases3"])


def test_encoder_stays_strict_and_reencodes_the_bits(crafted: dict[str, bytes]) -> None:
    tree, _ = codec("iso2").decode_lenient(crafted["phases4"])
    with pytest.raises(ExiEncodeError, match="outside"):
        codec("iso2").encode(tree)
    with pytest.raises(ExiEncodeError):
        codec("iso2").encode_xml(_power_delivery(4))
    assert codec("iso2").encode(tree, validate=False) == crafted["phases4"]
    # 5 phases does not fit the 2-bit field at all: refused even without validation
    tree.find("Body").find("PowerDeliveryReq").find("ChargingProfile").find("ProfileEntry") \
        .find("ChargingProfileEntryMaxNumberOfPhasesInUse").value = 5
    with pytest.raises(ExiEncodeError, match="cannot be carried"):
        codec("iso2").encode(tree, validate=False)


def test_enumeration_index_past_the_list_is_not_carried(crafted: dict[str, bytes]) -> None:
    for decode in (codec("common").decode, codec("common").decode_lenient):
        with pytest.raises(ExiDecodeError, match="enumeration index 3") as info:
            decode(crafted["enum3"])
        assert not isinstance(info.value, ExiFacetError)


def test_typed_layer_reports_the_facet(crafted: dict[str, bytes]) -> None:
    """The -20 typed classes refuse SOC 120 with a MessageValidationError naming the field
    (the capture path keeps the tree and never converts); a legal SOC converts."""
    tree, warnings = codec("dc").decode_lenient(crafted["soc120"])
    assert [(w.path.rsplit("/", 1)[-1], w.value, w.facet, w.limit) for w in warnings] == [
        ("PresentSOC", 120, "maxInclusive", 100)]
    with pytest.raises(messages.MessageValidationError, match="present_soc") as info:
        messages.from_tree(tree)
    assert "120" in str(info.value)
    # the -2 typed classes too: the field named, the facet given
    tree2, _ = codec("iso2").decode_lenient(crafted["phases4"])
    with pytest.raises(messages.MessageValidationError, match="max_number_of_phases_in_use") as info2:
        messages.from_tree(tree2)
    assert info2.value.reason == "value 4 > maxInclusive 3"
    ok = messages.from_tree(codec("dc").decode(crafted["soc64"]))
    assert type(ok).__name__ == "DCChargeLoopReq" and ok.display_parameters.present_soc == 64  # type: ignore[attr-defined]


def test_capture_timeline_shows_the_warning(tmp_path: Path, crafted: dict[str, bytes]) -> None:
    """A -20 DC session whose vehicle reports SOC 120: decoded, a warning on the timeline, the
    finding in the JSON output; the charger's next message is untouched."""
    msgs = [(0, 0x8001, (FIX / "sap" / "SupportedAppProtocolReq_DCOnly.exi").read_bytes()),
            (1, 0x8001, (FIX / "sap" / "SupportedAppProtocolRes.exi").read_bytes()),
            (0, 0x8004, crafted["soc120"]),
            (1, 0x8004, (FIX / "dc" / "DC_ChargeLoopRes_Scheduled.exi").read_bytes())]
    p = write_pcap(tmp_path / "soc120.pcap", v2g_conversation(msgs))
    events = [e for e in CaptureDecoder(p).events() if e.kind == "v2g"]
    assert [e.name for e in events] == ["supportedAppProtocolReq", "supportedAppProtocolRes", "DC_ChargeLoopReq",
                                        "DC_ChargeLoopRes"]
    ev = events[2]
    assert ev.level == "warning" and "value 120 outside facet maxInclusive 100" in ev.detail
    assert ev.decoded is not None and ev.decoded.error is None
    assert [(f.kind, f.party) for f in ev.findings] == [(FindingKind.VALUE_OUTSIDE_FACET, "EV")]
    d = json.loads(json.dumps(event_to_dict(ev), default=str))
    assert d["findings"][0]["kind"] == "value_outside_facet" and d["findings"][0]["value"] == 120
    assert d["findings"][0]["facet"] == "maxInclusive" and d["findings"][0]["limit"] == 100
    assert d["findings"][0]["path"].endswith("/DisplayParameters/PresentSOC")
    assert d["message"]["DC_ChargeLoopReq"]["DisplayParameters"]["PresentSOC"] == 120
    assert events[3].level == "info" and not events[3].findings
    out = tmp_path / "summary.json"
    assert main(["decode", str(p), "--format", "json", "--summary", "-o", str(out)]) == 0  # decoded: no problem
    summary = json.loads(out.read_text())["summary"]
    assert summary["findings"] == {"value_outside_facet": {"EV": 1}} and summary["capture"]["decode_errors"] == 0


def test_exi_cli_lenient(crafted: dict[str, bytes], capsys: pytest.CaptureFixture[str]) -> None:
    """``iso15118 exi decode --hex ... --lenient``: the XML with the value, the warning on stderr;
    without ``--lenient`` the typed error and exit 1."""
    hx = crafted["phases4"].hex()
    assert main(["exi", "decode", "--schema", "iso2", "--hex", hx]) == 1
    assert "value 4 outside facet maxInclusive 3" in capsys.readouterr().err
    assert main(["exi", "decode", "--schema", "iso2", "--hex", hx, "--lenient"]) == 0
    out, err = capsys.readouterr()
    assert "ChargingProfileEntryMaxNumberOfPhasesInUse>4</" in out
    assert err.startswith("warning: value 4 outside facet maxInclusive 3 of maxNumPhasesType at /V2G_Message/")


def test_capture_iso2_four_phases(tmp_path: Path, crafted: dict[str, bytes]) -> None:
    """The issue's vehicle: a -2 session whose PowerDeliveryReq announces 4 phases (maximum 3)."""
    msgs = [(0, 0x8001, (FIX / "sap" / "SupportedAppProtocolReq.exi").read_bytes()),
            (1, 0x8001, crafted["sap_res_iso2"]),
            (0, 0x8001, crafted["phases4"])]
    p = write_pcap(tmp_path / "phases4.pcap", v2g_conversation(msgs))
    events = [e for e in CaptureDecoder(p).events() if e.kind == "v2g"]
    assert [e.name for e in events] == ["supportedAppProtocolReq", "supportedAppProtocolRes", "PowerDeliveryReq"]
    ev = events[2]
    assert ev.schema == "iso2" and ev.level == "warning" and not ev.name.startswith("undecodable")
    assert ev.detail.startswith("value 4 outside facet maxInclusive 3 of maxNumPhasesType at /V2G_Message/Body/")
    assert [(f.kind, f.party, f.data["value"]) for f in ev.findings] == [(FindingKind.VALUE_OUTSIDE_FACET, "EV", 4)]
