"""A capture never makes the decoder crash: real captures cut mid-packet, with flipped bytes,
with damaged V2GTP headers or EXI payloads - every problem is reported, typed, with the exit
status the CLI documents."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.cli import EXIT_NOT_A_CAPTURE, EXIT_OK, EXIT_PROBLEMS
from iso15118.cli import main
from tests.capture.capgen import BYD_ISO2, CITROEN, MERC_DC, MG4, records, retcp, tcp_layout, tcp_payload_len, transform, write_pcap


def _decode(path: Path, **kw: object) -> tuple[list, CaptureDecoder]:
    dec = CaptureDecoder(path, **kw)  # type: ignore[arg-type]
    return list(dec.events()), dec


def test_cut_at_many_offsets(tmp_path: Path) -> None:
    data = CITROEN.read_bytes()
    full, _ = _decode(CITROEN, decode=False)
    n_full = sum(e.kind == "v2g" for e in full)
    rng = random.Random(7)
    offsets = sorted({24, 25, 30, 39, 40, *rng.sample(range(41, len(data)), 60), len(data) - 1})
    p = tmp_path / "cut.pcap"
    for off in offsets:
        p.write_bytes(data[:off])
        events, dec = _decode(p, decode=False)
        trunc = [e for e in events if e.kind == "capture" and e.name == "capture file truncated"]
        assert len(trunc) <= 1
        at_boundary = not dec.reader.problems
        if not at_boundary:
            assert trunc and trunc[0].level == "error", off
        assert sum(e.kind == "v2g" for e in events) <= n_full


def test_cut_inside_the_global_header(tmp_path: Path) -> None:
    p = tmp_path / "short.pcap"
    p.write_bytes(CITROEN.read_bytes()[:10])
    events, dec = _decode(p)
    assert [e.name for e in events] == ["capture file truncated"]


@pytest.mark.parametrize("seed", range(12))
def test_random_byte_flips(tmp_path: Path, seed: int) -> None:
    """Flip bytes anywhere (record headers included): decoding goes to the end."""
    rng = random.Random(seed)
    src = [MERC_DC, BYD_ISO2, MG4][seed % 3]
    data = bytearray(src.read_bytes())
    for _ in range(40 + seed * 10):
        i = rng.randrange(24, len(data))
        data[i] ^= 1 << rng.randrange(8)
    p = tmp_path / "flipped.pcap"
    p.write_bytes(bytes(data))
    events, dec = _decode(p)
    assert dec.stats.frames > 0
    for e in events:
        assert e.level in ("info", "warning", "error")
        if e.kind == "v2g" and e.decoded is not None and e.decoded.error:
            assert e.payload is not None


def test_record_header_damage_resynchronises(tmp_path: Path) -> None:
    """An absurd caplen in one record header: reported, and reading resumes at the next record."""
    data = bytearray(MERC_DC.read_bytes())
    recs = records(MERC_DC)
    # Offset of record 100's header: 24 + sum of (16 + caplen) before it.
    off = 24 + sum(16 + len(r.data) for r in recs[:99])
    data[off + 8 : off + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    p = tmp_path / "hdr.pcap"
    p.write_bytes(bytes(data))
    events, dec = _decode(p, decode=False)
    kinds = [p.kind for p in dec.reader.problems]
    assert kinds[:2] == ["corrupt", "resynced"]
    assert dec.stats.frames >= len(recs) - 2


def test_damaged_v2gtp_header_resynchronises(tmp_path: Path) -> None:
    recs = records(MERC_DC)
    data_idx = [i for i, r in enumerate(recs) if tcp_layout(r.data) and tcp_payload_len(r.data) >= 24]
    idx = data_idx[25]
    victim = recs[idx].index

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        lay = tcp_layout(r.data)
        n = tcp_payload_len(r.data)
        payload = bytearray(r.data[lay[2] : lay[2] + n])
        payload[0] = 0x02  # protocol version byte
        return [retcp(r.data, bytes(payload), 0)]

    p = write_pcap(tmp_path / "v2gtp.pcap", transform(recs, mangle))
    events, _ = _decode(p, decode=False)
    ref, _ = _decode(MERC_DC, decode=False)
    err = [e for e in events if e.kind == "framing" and e.name == "V2GTP framing error"]
    assert len(err) == 1 and "version 0x02" in err[0].detail and err[0].payload[:2] == b"\x02\xfe"
    expected = [e.payload for e in ref if e.kind == "v2g" and e.frame != victim]
    assert [e.payload for e in events if e.kind == "v2g"] == expected


def test_damaged_exi_payload_shows_hex_and_bit_offset(tmp_path: Path) -> None:
    import iso15118.exi.codec  # noqa: F401  (a missing codec fails the test, it never skips)
    recs = records(MERC_DC)
    data_idx = [i for i, r in enumerate(recs) if tcp_layout(r.data) and tcp_payload_len(r.data) >= 40]
    idx = data_idx[30]
    victim = recs[idx].index

    def mangle(i: int, r) -> list[bytes] | None:  # type: ignore[no-untyped-def]
        if i != idx:
            return None
        lay = tcp_layout(r.data)
        n = tcp_payload_len(r.data)
        payload = bytearray(r.data[lay[2] : lay[2] + n])
        for k in range(12, n):  # keep the V2GTP header and the EXI header, wreck the body
            payload[k] = 0xFF
        return [retcp(r.data, bytes(payload), 0)]

    p = write_pcap(tmp_path / "exi.pcap", transform(recs, mangle))
    events, dec = _decode(p)
    bad = [e for e in events if e.kind == "v2g" and e.decoded is not None and e.decoded.error]
    assert len(bad) == 1 and bad[0].frame == victim
    assert bad[0].level == "error" and bad[0].name.startswith("undecodable")
    assert bad[0].decoded.bit_offset is not None and bad[0].fields["bit_offset"] == bad[0].decoded.bit_offset
    assert dec.stats.decode_errors == 1
    assert sum(e.kind == "v2g" for e in events) == 98
    # The CLI shows it as hex, with the error, and exits 1.
    out = tmp_path / "out.txt"
    assert main(["decode", str(p), "--color", "never", "-o", str(out)]) == EXIT_PROBLEMS
    text = out.read_text()
    line = [ln for ln in text.splitlines() if f"#{victim} " in ln and "undecodable" in ln]
    assert line and "bit_offset=" in line[0]
    assert "FF FF FF FF" in text


def test_cli_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(MERC_DC), "--format", "jsonl", "-o", str(tmp_path / "a")]) == EXIT_OK
    assert main(["decode", str(BYD_ISO2), "--format", "jsonl", "-o", str(tmp_path / "b")]) == EXIT_PROBLEMS
    bad = tmp_path / "garbage.pcap"
    bad.write_bytes(b"\x00" * 100)
    assert main(["decode", str(bad)]) == EXIT_NOT_A_CAPTURE
    assert "not a pcap or pcapng" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "nope.pcap")]) == EXIT_NOT_A_CAPTURE


def test_without_the_exi_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """When iso15118.exi.codec cannot be imported: framing still works, payloads are shown as hex,
    one note says why, and that is not counted as a decode error."""
    import iso15118.capture.decode as decode_mod

    monkeypatch.setattr(decode_mod, "_codec_checked", True)
    monkeypatch.setattr(decode_mod, "_codec_error", "EXI codec unavailable: simulated")
    events, dec = _decode(MERC_DC, cache_size=0)
    v2g = [e for e in events if e.kind == "v2g"]
    assert len(v2g) == 98 and all(e.name == "EXI payload 0x8001 (not decoded)" and e.payload for e in v2g)
    notes = [e for e in events if e.kind == "note" and e.name == "EXI codec unavailable"]
    assert len(notes) == 1 and "simulated" in notes[0].detail
    assert dec.stats.decode_errors == 0
    assert not [e for e in v2g if e.level == "error"]
