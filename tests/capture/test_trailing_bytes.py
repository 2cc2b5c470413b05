"""A real vehicle (the Tesla Model 3 DIN DC recording) pads its ContractAuthenticationReq with a
zero byte after the end of the EXI document. The strict decoder refuses that with the typed
ExiTrailingDataError; the capture decoder decodes the document before it, as the reference codec
does, and flags the extra byte as the vehicle's defect."""

from __future__ import annotations

from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import FindingKind
from iso15118.exi import ExiDecodeError, ExiTrailingDataError, codec
from tests.oracle import Oracle, oracle  # noqa: F401  (session fixture)
from tools.infoset import compare

TESLA = Path(__file__).resolve().parents[2] / "fixtures" / "vehicles" / \
    "Tesla_Model_3_2023-04-06T11-52-31.423Z-tesla_model_3_dinspec_DC.pcap"


def test_tesla_padding_byte(oracle: Oracle) -> None:  # noqa: F811
    events = [e for e in CaptureDecoder(TESLA).events() if e.kind == "v2g"]
    padded = [e for e in events if any(f.kind == FindingKind.TRAILING_BYTES for f in e.findings)]
    assert [e.name for e in padded] == ["ContractAuthenticationReq"] * 3  # the charger's log has these three
    assert not [e for e in events if e.decoded is None or e.decoded.error]  # nothing left undecodable
    for e in padded:
        assert e.level == "warning" and e.direction == "EV->EVSE"
        (f,) = e.findings
        assert f.party == "EV" and f.data == {"trailing_hex": "00", "trailing_bytes": 1}
        assert e.payload is not None and e.payload.endswith(b"\x00")
    payload = padded[0].payload
    assert payload is not None
    with pytest.raises(ExiTrailingDataError, match="1 byte") as info:
        codec("din").decode(payload)
    assert isinstance(info.value, ExiDecodeError) and info.value.end_byte == len(payload) - 1
    # the reference reads the whole payload to what we read from the document before the byte
    ref = oracle.decode("din", payload)
    ours = codec("din").decode_xml(payload[: info.value.end_byte])
    assert compare(ref, ours, "din").equal


def test_only_zero_bytes_are_padding() -> None:
    """Non-zero bytes after the document are no padding: still an error (a stream read with the
    wrong grammar often stops early, and must not pass as a message)."""
    from iso15118.capture.decode import decode_uncached

    doc = (TESLA.parents[1] / "exi" / "din" / "SessionSetupReq.exi").read_bytes()
    padded = decode_uncached("din", doc + b"\x00\x00")
    assert padded.error is None and padded.trailing == b"\x00\x00" and padded.name == "SessionSetupReq"
    junk = decode_uncached("din", doc + b"\x00\x01")
    assert junk.error is not None and "left over" in junk.error and junk.tree is None
    assert decode_uncached("din", doc).trailing == b""
