"""Bad input gets a typed error that says where and why, never another exception."""

from __future__ import annotations

import pytest

from iso15118.exi import Element, ExiDecodeError, ExiEncodeError, ExiLimitError, codec

CM = "urn:iso:std:iso:15118:-20:CommonMessages"
CT = "urn:iso:std:iso:15118:-20:CommonTypes"


def session_setup_req(session_id: bytes = bytes(8), evccid: str = "WMIV1234567890ABCDEX", ts: int = 1700000000) -> Element:
    header = Element(CT, "Header", children=[Element(CT, "SessionID", value=session_id), Element(CT, "TimeStamp", value=ts)])
    return Element(CM, "SessionSetupReq", children=[header, Element(CM, "EVCCID", value=evccid)])


def test_valid_message_encodes() -> None:
    data = codec("common").encode(session_setup_req())
    assert data[0] == 0x80  # EXI header: no cookie, no options, version 1
    assert codec("common").decode(data) == session_setup_req()


def test_value_out_of_range_names_the_field() -> None:
    with pytest.raises(ExiEncodeError) as err:
        codec("common").encode(session_setup_req(session_id=b"\x01\x02\x03"))
    assert err.value.path == "/SessionSetupReq/Header/SessionID"
    assert "minLength" in str(err.value)


def test_string_too_long_is_rejected() -> None:
    with pytest.raises(ExiEncodeError) as err:
        codec("common").encode(session_setup_req(evccid="X" * 300))
    assert "EVCCID" in err.value.path and "maxLength" in err.value.reason


def test_integer_out_of_range_is_rejected() -> None:
    with pytest.raises(ExiEncodeError) as err:
        codec("common").encode(session_setup_req(ts=-1))
    assert err.value.path.endswith("/TimeStamp")


def test_missing_required_element() -> None:
    root = session_setup_req()
    root.children = root.children[:1]
    with pytest.raises(ExiEncodeError) as err:
        codec("common").encode(root)
    assert "expected EVCCID" in str(err.value)


def test_unexpected_element_and_wrong_schema() -> None:
    root = session_setup_req()
    root.children.append(Element(CM, "Bogus", value="x"))
    with pytest.raises(ExiEncodeError, match="Bogus"):
        codec("common").encode(root)
    with pytest.raises(ExiEncodeError, match="not a global element"):
        codec("dc").encode(session_setup_req())


def test_wrong_python_type() -> None:
    with pytest.raises(ExiEncodeError, match="expected bytes"):
        codec("common").encode(session_setup_req(session_id=5))  # type: ignore[arg-type]


def test_malformed_xml_is_an_encode_error() -> None:
    with pytest.raises(ExiEncodeError, match="well-formed"):
        codec("common").encode_xml(b"<SessionSetupReq xmlns='x'>")


def test_truncated_stream_reports_bit_offset_and_path() -> None:
    data = codec("common").encode(session_setup_req())
    with pytest.raises(ExiDecodeError) as err:
        codec("common").decode(data[:12])
    assert err.value.bit_offset is not None and 0 < err.value.bit_offset <= 8 * 12
    assert err.value.path.startswith("/SessionSetupReq")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "shorter than the EXI header"),
        (b"$EXI\x80", "cookie"),
        (b"\x00\x00", "not an EXI stream"),
        (b"\xa0\x00", "options"),
        (b"\x81\x00", "version"),
    ],
)
def test_bad_headers(data: bytes, reason: str) -> None:
    with pytest.raises(ExiDecodeError, match=reason):
        codec("common").decode(data)


def test_absurd_string_length_hits_a_limit() -> None:
    """An EVCCID claiming 2**40 characters fails fast with a limit error, allocating nothing."""
    from iso15118.exi.bits import BitWriter

    root = session_setup_req(evccid="A")
    nbits = _encoded_bit_length(root)
    real = codec("common").encode(root)
    # the stream ends: length (8 bits, value 3), "A" (8 bits), EE of EVCCID (1 bit), EE of the message (1 bit)
    prefix_bits = nbits - 18
    head = int.from_bytes(real, "big") >> (8 * len(real) - prefix_bits)
    w = BitWriter()
    w.bits(head, prefix_bits)
    w.uint((1 << 40) + 2)
    w.raw_bytes(b"AAAA")
    with pytest.raises(ExiLimitError, match="exceeds the limit"):
        codec("common").decode(w.getvalue())


def _encoded_bit_length(root: Element) -> int:
    from iso15118.exi.bits import BitWriter
    from iso15118.exi.codec import _Encoder

    c = codec("common")
    w = BitWriter()
    w.bits(0x80, 8)
    _Encoder(c.sg, w).root(root, c.sg.document)
    return w.bit_length


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        codec("common").decode("80")  # type: ignore[arg-type]


def test_unknown_schema_key() -> None:
    with pytest.raises(ValueError, match="unknown schema key"):
        codec("iso3")


def test_encode_leaves_the_callers_tree_alone() -> None:
    """Lexical values (XML text) are parsed for the encoding, never written back into the tree."""
    tree = session_setup_req()
    header = tree.children[0]
    assert isinstance(header, Element)
    header.children = [Element(CT, "SessionID", value="0000000000000000"), Element(CT, "TimeStamp", value=" 1700000000 ")]
    before = repr(tree)
    data = codec("common").encode(tree)
    assert repr(tree) == before
    assert codec("common").decode(data) == session_setup_req()
