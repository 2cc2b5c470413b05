"""Proof (d): the HTML report (own SECC + Josev) rendered by headless Chromium; the screenshot is
checked to be non-blank (decoded here without imaging libraries)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from conformance.report import render_html, write_json, write_junit
from conformance.runner import Campaign
from tests.proofs import SCREENSHOTS, record

SHOT_COPY = Path(tempfile.gettempdir()) / "conformance-report.png"


def _chromium() -> tuple[str | None, str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        r = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900)
        exe = shutil.which("chromium")
        if exe:
            return exe, ""
        return None, f"apt-get install chromium failed: {r.stderr.strip()[-200:]}"
    return None, "chromium not installed and not root (cannot apt-get install)"


def png_stats(path: Path) -> tuple[int, int, int, float]:
    """(width, height, distinct colours in a sample, share of non-white pixels) of an 8-bit PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = 0
    bit_depth = colour = 0
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, h, bit_depth, colour = struct.unpack(">IIBB", body[:10])
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    raw = zlib.decompress(idat)
    bpp = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
    stride = w * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    nonwhite = total = 0
    i = 0
    for y in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):  # PNG filters
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        if y % 7 == 0:
            for x in range(0, w, 5):
                px = bytes(line[x * bpp:x * bpp + min(bpp, 3)])
                colours.add(px)
                total += 1
                if px != b"\xff" * len(px):
                    nonwhite += 1
    return w, h, len(colours), nonwhite / max(1, total)


def test_html_report_renders_in_chromium(campaigns, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    camp = Campaign(results=list(campaigns.own.results) + list(campaigns.own_evcc.results),
                    suts=list(campaigns.own.suts) + list(campaigns.own_evcc.suts))
    if campaigns.josev is not None:
        camp.results += campaigns.josev.results
        camp.suts += campaigns.josev.suts
    camp.started = min(r.started for r in camp.results)
    camp.ended = max(r.started + r.duration for r in camp.results)
    html = render_html(camp)
    assert html.count("<svg") >= 20  # one timeline per case with a charge loop
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    write_junit(camp, tmp_path / "report.xml")
    write_json(camp, tmp_path / "report.json")
    assert ET.parse(tmp_path / "report.xml").getroot().tag == "testsuites"
    exe, why = _chromium()
    if exe is None:
        print(f"\nscreenshot skipped: {why}")
        pytest.skip(why)
    shot = tmp_path / "report.png"
    r = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--window-size=1280,3200", "--force-device-scale-factor=0.5",
         f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.exists(), r.stderr[-500:]
    w, h, colours, ink = png_stats(shot)
    shutil.copy(shot, SHOT_COPY)
    shutil.copy(page, SHOT_COPY.with_suffix(".html"))
    print(f"\nscreenshot {w}x{h}, {colours} colours sampled, {ink:.1%} non-white; copy at {SHOT_COPY}")
    assert (w, h) == (640, 1600)
    assert colours >= 8 and 0.03 < ink < 0.9
    record(SCREENSHOTS)
