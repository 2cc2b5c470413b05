"""File formats and link types: the same real session in pcap (both byte orders, micro- and
nanoseconds), pcapng (both byte orders), gzip, and as Linux cooked SLL / SLL2, BSD NULL, raw IP
link types must decode to the same V2G messages as the original Ethernet capture."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.pcapio import CaptureFormatError
from tests.capture.capgen import (
    CITROEN,
    MERC_DC,
    eth_to_null,
    eth_to_raw,
    eth_to_sll,
    eth_to_sll2,
    records,
    write_pcap,
    write_pcap_variant,
    write_pcapng,
)


def _messages(path: Path) -> list[tuple[str | None, int, bytes]]:
    dec = CaptureDecoder(path, decode=False)
    out = [(e.direction, round(e.ts * 1e6), e.payload or b"") for e in dec.events() if e.kind == "v2g"]
    assert not dec.reader.problems
    return out


@pytest.fixture(scope="module")
def reference() -> list[tuple[str | None, int, bytes]]:
    ref = _messages(MERC_DC)
    assert len(ref) == 98
    return ref


def _pairs(path: Path = MERC_DC) -> list[tuple[float, bytes]]:
    return [(r.ts, r.data) for r in records(path)]


@pytest.mark.parametrize(
    "variant",
    ["pcap-be", "pcap-nano", "pcap-be-nano", "pcapng", "pcapng-be", "pcapng-nano", "gzip"],
)
def test_file_formats(tmp_path: Path, reference: list, variant: str) -> None:
    pairs = _pairs()
    if variant == "pcap-be":
        p = write_pcap_variant(tmp_path / "x.pcap", pairs, big_endian=True, nano=False)
    elif variant == "pcap-nano":
        p = write_pcap_variant(tmp_path / "x.pcap", pairs, big_endian=False, nano=True)
    elif variant == "pcap-be-nano":
        p = write_pcap_variant(tmp_path / "x.pcap", pairs, big_endian=True, nano=True)
    elif variant == "pcapng":
        p = write_pcapng(tmp_path / "x.pcapng", pairs)
    elif variant == "pcapng-be":
        p = write_pcapng(tmp_path / "x.pcapng", pairs, big_endian=True)
    elif variant == "pcapng-nano":
        p = write_pcapng(tmp_path / "x.pcapng", pairs, tsresol=9)
    else:
        p = tmp_path / "x.pcap.gz"
        p.write_bytes(gzip.compress(MERC_DC.read_bytes()))
    assert _messages(p) == reference


@pytest.mark.parametrize(
    "linktype,convert",
    [(113, eth_to_sll), (276, eth_to_sll2), (0, eth_to_null), (101, eth_to_raw), (229, eth_to_raw)],
    ids=["SLL", "SLL2", "NULL", "RAW", "IPV6"],
)
def test_link_types(tmp_path: Path, reference: list, linktype: int, convert) -> None:  # type: ignore[no-untyped-def]
    pairs = []
    for ts, data in _pairs():
        d = convert(data)
        if d is not None:
            pairs.append((ts, d))
    p = write_pcap(tmp_path / "x.pcap", pairs, linktype)
    got = _messages(p)
    if linktype in (113, 276):
        # Cooked captures keep the Ethertype: SLAC and SDP are there too.
        dec = CaptureDecoder(p, decode=False)
        evs = list(dec.events())
        assert dec.stats.slac == 35 and dec.stats.sdp == 2
        assert any(e.kind == "slac" for e in evs)
    assert got == reference


def test_ipv4_session(tmp_path: Path) -> None:
    """The same TCP bytes carried over IPv4 (no SDP: found by the V2GTP signature)."""
    from iso15118.capture.pcapwriter import PcapWriter, TcpFlowWriter

    ref = _messages(CITROEN)
    assert ref
    p = tmp_path / "v4.pcap"
    with PcapWriter(p) as w:
        flow = TcpFlowWriter(w, (bytes([192, 168, 0, 2]), 50000), (bytes([192, 168, 0, 1]), 61341))
        flow.handshake(ref[0][1] / 1e6 - 0.01)
        for direction, us, payload in ref:
            ts = us / 1e6
            frame = (0x01FE8001).to_bytes(4, "big") + len(payload).to_bytes(4, "big") + payload
            flow.send(ts, 0 if direction == "EV->EVSE" else 1, frame)
        flow.close(ref[-1][1] / 1e6 + 0.01)
    dec = CaptureDecoder(p, decode=False)
    evs = list(dec.events())
    got = [(e.direction, round(e.ts * 1e6), e.payload) for e in evs if e.kind == "v2g"]
    assert got == ref
    assert [e.src.split("]")[0] for e in evs if e.kind == "v2g"][:1] == ["[192.168.0.2"]


def test_not_a_capture(tmp_path: Path) -> None:
    for content in (b"", b"abc", b"hello world, this is not a capture file" * 10):
        p = tmp_path / "bad.pcap"
        p.write_bytes(content)
        with pytest.raises(CaptureFormatError):
            CaptureDecoder(p)
    with pytest.raises(CaptureFormatError):
        CaptureDecoder(tmp_path / "missing.pcap")


def test_unsupported_link_type_is_reported(tmp_path: Path) -> None:
    p = write_pcap(tmp_path / "wifi.pcap", _pairs()[:50], linktype=105)
    dec = CaptureDecoder(p)
    evs = list(dec.events())
    bad = [e for e in evs if e.kind == "capture"]
    assert len(bad) == 1 and "unsupported link type 105" in bad[0].detail and bad[0].level == "error"
    assert dec.stats.malformed == 50
