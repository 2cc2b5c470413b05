"""The benchmark still runs (tiny size; speed is measured by tools/bench, never asserted)."""

from __future__ import annotations

from pathlib import Path

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.bench import bench, build_repeated_capture
from tests.capture.capgen import CITROEN


def test_repeated_capture_is_distinct_connections(tmp_path: Path) -> None:
    out = tmp_path / "rep.pcap"
    info = build_repeated_capture(CITROEN, 3, out)
    dec = CaptureDecoder(out, decode=False)
    events = list(dec.events())
    one = CaptureDecoder(CITROEN, decode=False)
    list(one.events())
    assert dec.stats.v2g_messages == 3 * one.stats.v2g_messages
    assert dec.stats.connections == 3 * one.stats.connections
    assert not [e for e in events if e.kind == "tcp" and e.name in ("TCP retransmission", "TCP gap")]
    assert info["frames"] == 3 * one.stats.frames


def test_bench_reports(tmp_path: Path) -> None:
    r = bench(CITROEN, 2, decode=False, runs=1)
    for key in ("messages_per_s", "frames_per_s", "peak_rss_mb", "peak_rss_mb_quarter_capture", "capture_mb"):
        assert r[key] is not None
    assert r["messages"] == 16
