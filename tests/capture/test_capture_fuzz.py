"""The capture decoder never crashes: mutated real captures (bit flips, timestamps, block and
record lengths, cuts, junk), in pcap, pcapng and gzip form, through ``iso15118 decode`` in every
output format; a pcapng timestamp out of range is reported and skipped; a decompression bomb
stops at the documented limit with a clear error.

Seeds: the real captures in ``fixtures/captures`` (re-written as pcapng and gzip'ed pcapng for
the block-structure mutations).  Deterministic (seeded), CI-sized.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import random
import struct
from collections import Counter
from pathlib import Path

import pytest

from iso15118.capture import pcapio
from iso15118.cli import main
from tests.capture.capgen import CITROEN, MERC_AC, records, write_pcapng

FORMATS = ("text", "json", "jsonl", "xml")
MUTATIONS = 1000


def _run(path: Path, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["decode", str(path), *args])
    return rc, out.getvalue() + err.getvalue()


def _pcapng(tmp: Path, src: Path) -> bytes:
    return write_pcapng(tmp / f"{src.stem}.pcapng", [(r.ts, r.data) for r in records(src)]).read_bytes()


def _blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, length) of each pcapng block (little-endian, as written by our writer)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if blen < 12:
            break
        out.append((pos, btype, blen))
        pos += blen
    return out


def _mutate(rng: random.Random, data: bytes, ng: bool) -> bytes:
    b = bytearray(data)
    blocks = _blocks(data) if ng else []
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        if op == 0:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and blocks:  # a packet timestamp: anything a 64-bit tick count can hold
            off, btype, _ = rng.choice([x for x in blocks if x[1] == 6] or blocks)
            if off + 20 <= len(b):
                struct.pack_into("<II", b, off + 12, rng.choice((0xFFFFFFFF, 0x80000000, rng.getrandbits(32))),
                                 rng.getrandbits(32))
        elif op == 2:  # a block / record length
            if blocks:
                off, _, blen = rng.choice(blocks)
                where = off + 4 if rng.random() < 0.5 else off + blen - 4
            else:
                where = rng.randrange(24, max(25, len(b) - 16))
            if where + 4 <= len(b):
                struct.pack_into("<I", b, where, rng.choice((0, 1, 7, 12, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32))))
        elif op == 3 and len(b) > 8:  # cut
            del b[rng.randrange(4, len(b)):]
        elif op == 4:  # junk
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 64))
        elif op == 5 and len(b) > 40:  # a record header of a pcap
            i = rng.randrange(24, len(b) - 16)
            b[i:i + 16] = rng.randbytes(16)
        else:  # a byte run
            i = rng.randrange(len(b))
            b[i:i + 4] = bytes([rng.randrange(256)]) * 4
    return bytes(b)


def test_timestamp_out_of_range_is_reported_and_skipped(tmp_path: Path) -> None:
    data = bytearray(_pcapng(tmp_path, CITROEN))
    epb = [x for x in _blocks(bytes(data)) if x[1] == 6]
    off = epb[3][0]
    struct.pack_into("<II", data, off + 12, 0xFFFFFFF0, 0)  # year ~38000 at microsecond ticks
    p = tmp_path / "ts.pcapng"
    p.write_bytes(data)
    for fmt in FORMATS:
        rc, out = _run(p, "--format", fmt)
        assert rc == 1 and "timestamp out of range" in out and "packet skipped" in out, (fmt, out[-500:])
    rc, out = _run(p, "--summary")
    assert rc == 1, out[-500:]
    with pcapio.open_capture(p) as r:
        frames = [rec.index for rec in r]
    assert len(frames) == len(epb) - 1 and 4 not in frames
    assert any("timestamp out of range" in pr.message for pr in r.problems)


def test_decompression_bomb_stops_at_the_documented_limit(tmp_path: Path) -> None:
    head = _pcapng(tmp_path, CITROEN)
    shb_idb = sum(blen for _, _, blen in _blocks(head)[:2])
    bomb = tmp_path / "bomb.pcapng.gz"
    empty_epb = struct.pack("<IIIIIII", 6, 32, 0, 0, 0, 0, 0) + struct.pack("<I", 32)
    with gzip.open(bomb, "wb", compresslevel=9) as g:
        g.write(head[:shb_idb])
        chunk = empty_epb * 32768  # 1 MiB of empty packets
        for _ in range(64):  # 64 MiB expanded
            g.write(chunk)
    size = bomb.stat().st_size
    limit = max(pcapio.GZIP_MIN_ALLOWANCE, pcapio.GZIP_MAX_RATIO * size)
    assert limit < 64 * 1024 * 1024
    rc, out = _run(bomb, "--format", "jsonl")
    assert rc == 1 and "expands beyond" in out and "decompression bomb" in out, out[-800:]
    frames = out.count('"frame"')
    print(f"\nbomb: {size} bytes gzip -> 64 MiB; stopped at {limit / 1048576:.1f} MiB; {frames} events printed, "
          f"{len(out) / 1e6:.1f} MB output")
    # the limit bounds the work: at most limit / 32 bytes per empty packet events
    assert frames <= limit // 32 + 100


@pytest.mark.timeout(600)
def test_mutated_captures_never_crash(tmp_path: Path) -> None:
    rng = random.Random(2026)
    seeds: list[tuple[str, bytes, bool]] = [
        ("pcap", CITROEN.read_bytes(), False),
        ("pcapng", _pcapng(tmp_path, CITROEN), True),
        ("pcapng-ac", _pcapng(tmp_path, MERC_AC)[:60000], True),
    ]
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    p = tmp_path / "m.cap"
    for n in range(MUTATIONS):
        name, data, ng = seeds[n % len(seeds)]
        mutated = _mutate(rng, data, ng)
        if n % 4 == 3:  # gzip'ed: the mutation inside the compressed stream
            mutated = gzip.compress(mutated)
        elif n % 17 == 5:  # and a damaged gzip stream
            g = bytearray(gzip.compress(mutated))
            g[rng.randrange(10, len(g))] ^= 0xFF
            mutated = bytes(g)
        p.write_bytes(mutated)
        fmt = FORMATS[n % len(FORMATS)]
        extra = ("--summary",) if n % 5 == 0 else ()
        try:
            rc, _ = _run(p, "--format", fmt, *extra)
            outcomes[f"exit {rc}"] += 1
        except Exception as exc:  # noqa: BLE001 - what this test counts
            outcomes["CRASH"] += 1
            if len(crashes) < 5:
                bad = tmp_path / f"crash{n}.cap"
                bad.write_bytes(mutated)
                crashes.append(f"{name} #{n} {fmt}{extra}: {type(exc).__name__}: {exc} (kept as {bad})")
    print(f"\ncapture fuzz: {MUTATIONS} mutated captures, {outcomes['CRASH']} crashes; {dict(outcomes)}")
    assert not crashes, "\n".join(crashes)
    assert set(outcomes) <= {"exit 0", "exit 1", "exit 3"}
