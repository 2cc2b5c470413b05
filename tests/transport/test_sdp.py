"""SDP request / response layouts (bytes written from the digest's table §1.1)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iso15118.transport.sdp import (
    SdpError,
    SdpRequest,
    SdpResponse,
    Security,
    TransportProtocol,
    decode_sdp,
)

# header 01 FE | type 9000 | length 00000002 | security | transport
REQ_TLS_TCP = bytes.fromhex("01FE 9000 00000002 00 00")
REQ_NOTLS_TCP = bytes.fromhex("01FE 9000 00000002 10 00")
# header 01 FE | type 9001 | length 00000014 (20) | fe80::1234 | port 0xC350 = 50000 | 10 | 00
RESP = bytes.fromhex(
    "01FE 9001 00000014"
    "FE80 0000 0000 0000 0000 0000 0000 1234"
    "C350 10 00"
)


def test_request_known_layout() -> None:
    assert len(REQ_TLS_TCP) == 10
    assert SdpRequest(Security.TLS, TransportProtocol.TCP).to_bytes() == REQ_TLS_TCP
    assert SdpRequest(Security.NONE, TransportProtocol.TCP).to_bytes() == REQ_NOTLS_TCP
    r = SdpRequest.from_bytes(REQ_NOTLS_TCP)
    assert r == SdpRequest(Security.NONE, TransportProtocol.TCP)
    assert r.wireless is False


def test_response_known_layout() -> None:
    assert len(RESP) == 28
    r = SdpResponse.from_bytes(RESP)
    assert r.address == ipaddress.IPv6Address("fe80::1234")
    assert r.port == 50000 and r.port_in_dynamic_range
    assert r.security is Security.NONE and r.transport is TransportProtocol.TCP
    assert SdpResponse(ipaddress.IPv6Address("fe80::1234"), 50000, Security.NONE).to_bytes() == RESP


def test_wireless_variants() -> None:
    wreq = bytes.fromhex("01FE 9002 00000002 00 00")
    r = SdpRequest.from_bytes(wreq)
    assert r.wireless and r.to_bytes() == wreq
    wresp = bytes.fromhex("01FE 9003") + RESP[4:]
    s = SdpResponse.from_bytes(wresp)
    assert s.wireless and s.to_bytes() == wresp
    assert isinstance(decode_sdp(wreq), SdpRequest)
    assert isinstance(decode_sdp(wresp), SdpResponse)


@given(
    st.sampled_from(Security), st.sampled_from(TransportProtocol), st.booleans(),
    st.integers(0, 2**128 - 1), st.integers(1, 65535),
)
def test_round_trip(sec, tr, wireless, addr, port) -> None:  # type: ignore[no-untyped-def]
    req = SdpRequest(sec, tr, wireless)
    assert SdpRequest.from_bytes(req.to_bytes()) == req
    resp = SdpResponse(ipaddress.IPv6Address(addr), port, sec, tr, wireless)
    assert SdpResponse.from_bytes(resp.to_bytes()) == resp
    assert decode_sdp(resp.to_bytes()) == resp


@pytest.mark.parametrize(
    "data, fragment",
    [
        (REQ_TLS_TCP[:9], "datagram is 9 bytes"),
        (REQ_TLS_TCP + b"\x00", "datagram is 11 bytes"),
        (bytes.fromhex("01FE 9000 00000003 00 00 00"), "announces a 3-byte payload"),
        (bytes.fromhex("02FE 9000 00000002 00 00"), "version 0x02"),
        (bytes.fromhex("01FD 9000 00000002 00 00"), "inverse 0xFD"),
        (bytes.fromhex("01FE 9001 00000002 00 00"), "payload type 0x9001"),
        (bytes.fromhex("01FE 8001 00000002 00 00"), "payload type 0x8001"),
        (bytes.fromhex("01FE 9000 00000002 01 00"), "Security byte 0x01"),
        (bytes.fromhex("01FE 9000 00000002 00 11"), "Transport byte 0x11"),
        (b"\x01\xfe", "needs 8 bytes"),
    ],
)
def test_bad_requests(data: bytes, fragment: str) -> None:
    with pytest.raises(SdpError) as ei:
        SdpRequest.from_bytes(data)
    assert fragment in str(ei.value) and "SDP request" in str(ei.value)


@pytest.mark.parametrize(
    "data, fragment",
    [
        (RESP[:-1], "datagram is 27 bytes"),
        (RESP[:8] + RESP[8:] + b"\x00", "datagram is 29 bytes"),
        (REQ_TLS_TCP, "payload type 0x9000"),
        (RESP[:26] + b"\x20\x00", "Security byte 0x20"),
        (RESP[:27] + b"\x01", "Transport byte 0x01"),
        (RESP[:24] + b"\x00\x00" + RESP[26:], "port 0"),
        (b"\x00" + RESP[1:], "version 0x00"),
    ],
)
def test_bad_responses(data: bytes, fragment: str) -> None:
    with pytest.raises(SdpError) as ei:
        SdpResponse.from_bytes(data)
    assert fragment in str(ei.value)


def test_decode_sdp_rejects_other_types() -> None:
    with pytest.raises(SdpError, match="not an SDP type"):
        decode_sdp(bytes.fromhex("01FE 8002 00000000"))
