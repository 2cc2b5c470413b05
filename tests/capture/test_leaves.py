"""The one-walk leaf values (``Decoded.leaves``) against the path-keyed flattening
(``decode.flatten``), an independent walk: on every V2G message of every fixture capture, each
leaf name's values in document order, and the first of any two names, agree."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.decode import Decoded, flatten
from iso15118.capture.leaves import leaves_of
from iso15118.exi.tree import Element

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(p for p in (ROOT / "fixtures").rglob("*.pcap*"))


def _by_path(d: Decoded) -> list[tuple[str, Any]]:
    """(leaf element name, value) of the flattened paths, attributes left out."""
    assert d.message is not None
    out = []
    for path, v in flatten(d.message).items():
        if "@" in path:
            continue
        out.append((re.sub(r"\[\d+\]$", "", path.rsplit("/", 1)[-1]), v))
    return out


def test_fixture_captures_are_there() -> None:
    assert len(CAPTURES) >= 25


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name[:40])
def test_leaves_agree_with_the_flattened_paths(capture: Path) -> None:
    seen = 0  # messages compared
    for ev in CaptureDecoder(capture, cache_size=0).events():
        d = ev.decoded
        if ev.kind != "v2g" or d is None or d.error is not None or d.message is None:
            continue
        expected = _by_path(d)
        lv = d.leaves
        assert lv.seq == expected
        names = list(dict.fromkeys(n for n, _ in expected))
        for n in names:
            assert lv.get(n) == next(v for m, v in expected if m == n)
            assert lv.all(n) == [v for m, v in expected if m == n]
        for a, b in itertools.islice(itertools.combinations(names, 2), 40):
            assert lv.get(a, b) == next(v for m, v in expected if m in (a, b))
        assert lv.get("NoSuchElement") is None and lv.all("NoSuchElement") == []
        seen += 1
    # a capture of TLS without its key log has no decoded message: nothing to compare there


def test_a_physical_value_is_one_scaled_leaf_and_text_in_mixed_content_is_skipped() -> None:
    pv = Element("", "EVTargetVoltage", children=[
        Element("", "Multiplier", value=-1), Element("", "Unit", value="V"), Element("", "Value", value=4005)])
    msg = Element("", "CurrentDemandReq", children=[
        "text", pv, Element("", "ChargingComplete", value=False), Element("", "EVTargetVoltage", value=1)])
    lv = leaves_of(msg)
    assert lv.seq == [("EVTargetVoltage", pytest.approx(400.5)), ("ChargingComplete", False), ("EVTargetVoltage", 1)]
    assert lv.get("EVTargetVoltage") == pytest.approx(400.5)
    assert lv.get("ChargingComplete", "EVTargetVoltage") == pytest.approx(400.5)
    assert lv.all("EVTargetVoltage") == [pytest.approx(400.5), 1]
