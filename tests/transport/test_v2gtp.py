"""V2GTP framing and the sans-IO stream parser."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iso15118.transport import v2gtp
from iso15118.transport.v2gtp import (
    HEADER,
    HEADER_SIZE,
    Frame,
    InvalidVersionError,
    PayloadTooLargeError,
    PayloadType,
    TruncatedStreamError,
    UnknownPayloadTypeError,
    V2GTPError,
    V2GTPParser,
    decode_header,
    encode_frame,
    payload_type_for_namespace,
    payload_type_for_schema_key,
    schema_key_for,
)

KNOWN = [int(t) for t in PayloadType]


# ---------------------------------------------------------------- header and payload types


def test_payload_type_values_from_digest_table() -> None:
    expected = {
        "SAP": 0x8001, "MAINSTREAM": 0x8002, "AC_MAINSTREAM": 0x8003, "DC_MAINSTREAM": 0x8004,
        "ACDP_MAINSTREAM": 0x8005, "WPT_MAINSTREAM": 0x8006, "SCHEDULE_RENEGOTIATION": 0x8101,
        "METERING_CONFIRMATION": 0x8102, "ACDP_SYSTEM_STATUS": 0x8103, "PARKING_STATUS": 0x8104,
        "SDP_REQUEST": 0x9000, "SDP_RESPONSE": 0x9001, "SDP_REQUEST_WIRELESS": 0x9002,
        "SDP_RESPONSE_WIRELESS": 0x9003,
    }
    assert {t.name: int(t) for t in PayloadType} == expected
    assert PayloadType.EXI_ENCODED is PayloadType.SAP


def test_schema_keys() -> None:
    assert [schema_key_for(t) for t in range(0x8001, 0x8007)] == [
        "sap", "common", "ac", "dc", "acdp", "wpt"]
    for t in (0x9000, 0x9001, 0x9002, 0x9003, 0x8007, 0xA000):
        assert schema_key_for(t) is None
    for key in ("sap", "common", "ac", "dc", "acdp", "wpt"):
        assert schema_key_for(payload_type_for_schema_key(key)) == key
    assert payload_type_for_namespace("urn:iso:std:iso:15118:-20:DC") == 0x8004
    assert payload_type_for_namespace("urn:iso:std:iso:15118:-20:AC") == 0x8003
    assert payload_type_for_namespace("urn:iso:std:iso:15118:-20:CommonMessages") == 0x8002
    assert payload_type_for_namespace("urn:iso:15118:2:2010:AppProtocol") == 0x8001
    with pytest.raises(KeyError):
        payload_type_for_namespace("urn:iso:std:iso:15118:-20:CommonTypes")


def test_encode_frame_known_bytes() -> None:
    # Digest §1.2: 01 FE, type BE, length BE (payload only).
    assert encode_frame(0x8002, b"\xaa\xbb\xcc") == bytes.fromhex("01FE8002 00000003 AABBCC")
    assert encode_frame(PayloadType.SAP, b"") == bytes.fromhex("01FE8001 00000000")
    assert HEADER_SIZE == 8


def test_encode_frame_rejects_bad_type() -> None:
    with pytest.raises(ValueError):
        encode_frame(0x10000, b"")
    with pytest.raises(ValueError):
        encode_frame(-1, b"")


def test_decode_header() -> None:
    h = decode_header(bytes.fromhex("01FE8004 00010000") + b"rest")
    assert (h.version, h.payload_type, h.payload_length) == (1, 0x8004, 65536)
    with pytest.raises(InvalidVersionError) as ei:
        decode_header(bytes.fromhex("02FD8004 00000000"))
    assert ei.value.close_connection
    with pytest.raises(TruncatedStreamError):
        decode_header(b"\x01\xfe\x80")


@given(st.binary(min_size=8, max_size=8))
def test_fast_header_matches_construct_definition(raw: bytes) -> None:
    c = HEADER.parse(raw)
    assert struct.unpack(">BBHI", raw) == (
        c.version, c.inverse_version, c.payload_type, c.payload_length)


# ---------------------------------------------------------------- parser: any split


frames_st = st.lists(
    st.builds(Frame, st.sampled_from(KNOWN), st.binary(max_size=300)), max_size=12
)


@st.composite
def stream_and_splits(draw):  # type: ignore[no-untyped-def]
    frames = draw(frames_st)
    stream = b"".join(f.to_bytes() for f in frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    return frames, stream, cuts


@settings(max_examples=300, deadline=None)
@given(stream_and_splits())
def test_any_split_gives_the_same_frames(data) -> None:  # type: ignore[no-untyped-def]
    frames, stream, cuts = data
    parser = V2GTPParser()
    got: list[Frame] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got += parser.feed(stream[prev:cut])
        prev = cut
    assert got == frames
    assert parser.at_frame_boundary and parser.buffered == 0
    assert parser.offset == len(stream)
    parser.finish()


@settings(max_examples=50, deadline=None)
@given(frames_st)
def test_byte_by_byte(frames: list[Frame]) -> None:
    stream = b"".join(f.to_bytes() for f in frames)
    parser = V2GTPParser()
    got: list[Frame] = []
    for i in range(len(stream)):
        got += parser.feed(stream[i : i + 1])
        # mid-stream the boundary flag agrees with the frame boundaries
    assert got == frames
    assert parser.at_frame_boundary


def test_boundary_flag_tracks_frames() -> None:
    stream = encode_frame(0x8002, b"xy") + encode_frame(0x8003, b"z")
    boundaries = {0, 10, 19}
    parser = V2GTPParser()
    for i in range(len(stream)):
        assert parser.at_frame_boundary == (i in boundaries)
        parser.feed(stream[i : i + 1])
    assert parser.at_frame_boundary


def test_feed_accepts_memoryview_and_bytearray() -> None:
    stream = encode_frame(0x8002, b"abc") * 3
    p = V2GTPParser()
    got = p.feed(memoryview(stream)[:5]) + p.feed(bytearray(stream[5:]))
    assert [f.payload for f in got] == [b"abc"] * 3


# ---------------------------------------------------------------- parser: error paths


@pytest.mark.parametrize("split", [None, 1, 3])
def test_bad_version(split: int | None) -> None:
    good = encode_frame(0x8002, b"ok")
    bad = bytes.fromhex("02FE8002 00000000")
    stream = good + bad
    p = V2GTPParser()
    with pytest.raises(InvalidVersionError) as ei:
        if split is None:
            p.feed(stream)
        else:
            for i in range(0, len(stream), split):
                p.feed(stream[i : i + split])
    err = ei.value
    assert err.close_connection is True
    assert err.offset == len(good)
    assert "version 0x02" in str(err) and f"offset {len(good)}" in str(err)
    if split is None:
        assert err.frames == [Frame(0x8002, b"ok")]
    # the parser stays failed, and does not hand out the same frames twice
    with pytest.raises(InvalidVersionError) as again:
        p.feed(encode_frame(0x8002, b""))
    assert again.value.frames == [] and again.value.offset == len(good)


def test_bad_inverse() -> None:
    p = V2GTPParser()
    with pytest.raises(InvalidVersionError) as ei:
        p.feed(bytes.fromhex("01FF8002 00000000"))
    assert ei.value.close_connection and ei.value.inverse == 0xFF
    assert "inverse 0xFF" in str(ei.value)


@pytest.mark.parametrize("ptype", [0x8007, 0x8100, 0x8105, 0x9004, 0xA000, 0xFFFF, 0x0000])
def test_unknown_type_is_skipped_not_fatal(ptype: int) -> None:
    stream = (encode_frame(0x8002, b"a") + encode_frame(ptype, b"junk" * 10)
              + encode_frame(0x8004, b"b"))
    p = V2GTPParser()
    with pytest.raises(UnknownPayloadTypeError) as ei:
        p.feed(stream)
    err = ei.value
    assert err.close_connection is False
    assert err.payload_type == ptype and err.payload_length == 40
    assert f"0x{ptype:04X}" in str(err)
    assert err.frames == [Frame(0x8002, b"a")]
    assert p.feed(b"") == [Frame(0x8004, b"b")]
    assert p.at_frame_boundary


def test_unknown_type_payload_skipped_across_reads() -> None:
    stream = encode_frame(0xA123, b"x" * 100) + encode_frame(0x8001, b"sap")
    p = V2GTPParser()
    got: list[Frame] = []
    errors = 0
    for i in range(0, len(stream), 7):
        try:
            got += p.feed(stream[i : i + 7])
        except UnknownPayloadTypeError as e:
            errors += 1
            got += e.frames
            assert not p.at_frame_boundary  # payload still to skip
    assert errors == 1 and got == [Frame(0x8001, b"sap")]
    assert p.buffered == 0  # the skipped payload was never buffered


def test_allowed_types_restricts_and_extends() -> None:
    p = V2GTPParser(allowed_types={0x9000})
    with pytest.raises(UnknownPayloadTypeError):
        p.feed(encode_frame(0x8002, b""))
    everything = V2GTPParser(allowed_types=range(0x10000))
    assert everything.feed(encode_frame(0xA000, b"m")) == [Frame(0xA000, b"m")]


def test_oversize_detected_from_header_alone() -> None:
    p = V2GTPParser(max_payload=1000)
    # only the header: the error must come before any payload arrives
    with pytest.raises(PayloadTooLargeError) as ei:
        p.feed(bytes.fromhex("01FE8002 000003E9"))
    err = ei.value
    assert err.close_connection is True
    assert (err.payload_length, err.limit, err.payload_type) == (1001, 1000, 0x8002)
    assert "1001" in str(err) and "1000" in str(err)
    assert V2GTPParser(max_payload=1000).feed(encode_frame(0x8002, b"x" * 1000))


def test_oversize_default_limit_and_huge_length() -> None:
    p = V2GTPParser()
    with pytest.raises(PayloadTooLargeError):
        p.feed(bytes.fromhex("01FE8002 FFFFFFFF"))


def test_truncated_stream_detected_at_eof() -> None:
    stream = encode_frame(0x8002, b"hello") + encode_frame(0x8003, b"world")
    for cut in range(len(stream) + 1):
        p = V2GTPParser()
        p.feed(stream[:cut])
        complete = cut in (0, 13, 26)
        assert p.at_frame_boundary is complete
        if complete:
            p.finish()
        else:
            with pytest.raises(TruncatedStreamError) as ei:
                p.finish()
            assert ei.value.close_connection is True
            assert isinstance(ei.value, V2GTPError)
            assert "stream ended inside" in str(ei.value)


def test_errors_copy_and_pickle() -> None:
    import copy
    import pickle

    errs = [InvalidVersionError(2, 0xFD, offset=5), UnknownPayloadTypeError(0xA000, 3),
            PayloadTooLargeError(0x8002, 10**6, 65536), TruncatedStreamError("cut", offset=1)]
    for e in errs:
        for clone in (copy.copy(e), pickle.loads(pickle.dumps(e))):
            assert type(clone) is type(e) and str(clone) == str(e)
            assert clone.close_connection == e.close_connection and clone.offset == e.offset


def test_error_hierarchy() -> None:
    for cls in (InvalidVersionError, UnknownPayloadTypeError, PayloadTooLargeError,
                TruncatedStreamError):
        assert issubclass(cls, V2GTPError)
    assert v2gtp.UnknownPayloadTypeError.close_connection is False
