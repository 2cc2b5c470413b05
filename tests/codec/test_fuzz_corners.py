"""Fuzzing the decode paths of the corners: xsi:type casts in open content (undeclared elements,
unknown types, xsi:nil and TypeEmpty grammars), the lenient decode of out-of-facet values, and the
capture decoder's payload-type check. Seeds: the oracle's streams of the corpus documents with
casts and -2 / -20 messages with n-bit fields. The only exceptions allowed are typed ones, every
decode terminates within the codec's bounds (depth, element count, stream length), and a lenient
decode agrees with the strict one wherever the strict one succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.exi import ExiError, codec
from iso15118.exi.codec import MAX_DEPTH
from iso15118.exi.errors import ExiFacetError, ExiLimitError, ExiTrailingDataError
from iso15118.exi.facets import FacetWarning
from tests.capture.capgen import v2g_conversation, write_pcap

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "exi"
SEED_FILES = [
    ("xmldsig", False, "xmldsig/Object_CastBuiltins.exi"),
    ("xmldsig", False, "xmldsig/Object_CastComplex.exi"),
    ("xmldsig", False, "xmldsig/Object_CastNested.exi"),
    ("xmldsig", False, "xmldsig/Object_CastDeclared.exi"),
    ("xmldsig", False, "xmldsig/Object_CastDateTime.exi"),
    ("xmldsig", True, "xmldsig-fragment/SignedInfo_TransformCasts.exi"),
    ("common", False, "common/SessionStopReq_SignedObjectCasts.exi"),
    ("dc", False, "dc/DC_ChargeLoopReq_Scheduled.exi"),
    ("iso2", False, "iso2/CurrentDemandReq.exi"),
    ("ac", False, "ac/AC_ChargeParameterDiscoveryReq_3Phase.exi"),
]
SEEDS = [(k, f, (FIX / p).read_bytes()) for k, f, p in SEED_FILES]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bool, bytes]:
    key, fragment, seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        if op == 0 and len(data) > 2:
            del data[draw(st.integers(2, len(data) - 1)):]
        elif op == 1:
            i = draw(st.integers(1, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 2:
            i = draw(st.integers(1, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=12))
        else:
            i = draw(st.integers(1, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    return key, fragment, bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated())
def test_mutated_cast_and_facet_streams(case: tuple[str, bool, bytes]) -> None:
    key, fragment, data = case
    c = codec(key)
    try:
        strict = c.decode(data, fragment=fragment)
    except ExiFacetError:
        strict = None
    except ExiError:
        strict = False
    try:
        tree, warnings = c.decode_lenient(data, fragment=fragment)
    except ExiError as exc:
        # lenient fails only where the strict decoder failed too (on a facet, then on more damage)
        assert strict is None or strict is False, f"lenient decode failed ({exc}) where strict succeeded"
        return
    assert strict is not False, "lenient decode succeeded where strict failed without a facet error"
    assert all(isinstance(w, FacetWarning) for w in warnings)
    if strict is not None:
        assert tree == strict
    else:
        assert warnings, "a facet error seen strictly must come back as a warning"
    # whatever decoded, leniently or not, re-encodes without facet checks (the bits carried it)
    try:
        c.encode(tree, fragment=fragment, validate=False)
    except ExiError:
        pass  # e.g. a mutated stream using a learned built-in production the encoder never writes


def _nested_casts(depth: int) -> bytes:
    inner = '<v:Leaf xsi:type="xs:int">1</v:Leaf>'
    for i in range(depth):
        inner = f'<v:N{i % 3} xsi:type="ObjectType">{inner}</v:N{i % 3}>'
    xml = (f'<Object xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           f'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:v="urn:v">{inner}</Object>')
    return codec("xmldsig").encode_xml(xml)


def test_nested_casts_are_bounded() -> None:
    """Casts nest like any element: up to the depth limit they decode, past it a typed limit error."""
    ok = _nested_casts(MAX_DEPTH - 3)
    assert codec("xmldsig").decode(ok) is not None
    with pytest.raises(ExiLimitError, match="nesting"):
        codec("xmldsig").decode(_nested_casts(MAX_DEPTH + 5))
    with pytest.raises(ExiLimitError, match="nesting"):
        codec("xmldsig").decode_lenient(_nested_casts(MAX_DEPTH + 5))


def test_repeated_unknown_casts_terminate() -> None:
    """An undeclared element cast again and again to types no schema has: every cast costs bits,
    so the loop ends with the stream (a typed error), whatever its length."""
    xml = ('<Object xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xmlns:v="urn:v"><v:a xsi:type="v:T">t</v:a></Object>')
    data = codec("xmldsig").encode_xml(xml)
    for cut in range(2, len(data)):
        with pytest.raises(ExiError):
            codec("xmldsig").decode(data[:cut])


_TYPES = st.sampled_from([0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006, 0x8101, 0x9000, 0x1234])
_PAYLOADS = [(FIX / p).read_bytes() for p in ("sap/SupportedAppProtocolReq.exi", "sap/SupportedAppProtocolRes.exi",
                                              "common/SessionSetupReq.exi", "common/CertificateInstallationReq.exi",
                                              "ac/AC_ChargeParameterDiscoveryReq.exi", "iso2/SessionSetupReq.exi",
                                              "din/SessionSetupReq.exi", "dc/DC_ChargeLoopReq_Scheduled.exi")]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(msgs=st.lists(st.tuples(st.integers(0, 1), _TYPES, st.sampled_from(range(len(_PAYLOADS))),
                               st.integers(0, 40), st.integers(0, 255), st.binary(max_size=3)), min_size=1, max_size=8))
def test_capture_with_any_payload_types_never_crashes(tmp_path_factory: pytest.TempPathFactory,
                                                      msgs: list[tuple[int, int, int, int, int, bytes]]) -> None:
    """Any payload type on any message, payload bytes damaged, bytes appended: the capture decoder
    flags or reports, never raises, and every V2G message yields exactly one timeline event."""
    conv = []
    for direction, ptype, which, at, byte, tail in msgs:
        data = bytearray(_PAYLOADS[which])
        if at:
            data[at % len(data)] = byte
        conv.append((direction, ptype, bytes(data) + tail))
    p = write_pcap(tmp_path_factory.mktemp("fz") / "c.pcap", v2g_conversation(conv))
    events = [e for e in CaptureDecoder(p).events()]
    v2g = [e for e in events if e.kind == "v2g"]
    if conv[0][1] in (0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006):  # a stream that starts as V2GTP
        assert len(v2g) == len(conv)
    for e in v2g:
        for f in e.findings:
            assert f.as_dict()["kind"] in ("wrong_payload_type", "value_outside_facet", "trailing_bytes")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(SEEDS), tail=st.binary(min_size=1, max_size=20))
def test_trailing_bytes_are_typed(seed: tuple[str, bool, bytes], tail: bytes) -> None:
    """Whole bytes after any corpus document: ExiTrailingDataError naming where the document ends,
    and the document before them decodes to what it was."""
    key, fragment, data = seed
    with pytest.raises(ExiTrailingDataError) as info:
        codec(key).decode(data + tail, fragment=fragment)
    assert info.value.end_byte == len(data)
    assert codec(key).decode((data + tail)[: info.value.end_byte], fragment=fragment) == codec(key).decode(data, fragment)
