"""The payload memo changes the speed of ``iso15118 decode``, never its output: the same captures
decoded with the memo on (``DecodeCache`` of 4096) and off (``--no-cache``) give the same events,
field for field (the JSON form of each, with the decoded message and its key fields), the same
flattened values and the same dataset rows.

Each capture repeats payloads, so the memo-on run really serves decoded payloads from the memo
(asserted: hits, and events sharing one decoded object), and the memo-off run decodes every one.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from iso15118._native import source_path
from iso15118.capture.analyzer import AnalyzerStats, CaptureDecoder
from iso15118.capture.dataset import DatasetBuilder
from iso15118.capture.decode import Decoded
from iso15118.capture.events import Event
from iso15118.capture.render import event_to_dict
from tests.capture.capgen import BYD_ISO2, MERC_DC, v2g_conversation, write_pcap

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "exi"


def _exi(rel: str) -> bytes:
    return (FIX / rel).read_bytes()


def _session_20_dc() -> list[tuple[int, int, bytes]]:
    """A -20 session from the reference corpus' streams with a repeated DC charge loop."""
    loop = [(0, 0x8004, _exi("dc/DC_ChargeLoopReq_Dynamic.exi")), (1, 0x8004, _exi("dc/DC_ChargeLoopRes_Dynamic.exi")),
            (0, 0x8004, _exi("dc/DC_ChargeLoopReq_Scheduled.exi")),
            (1, 0x8004, _exi("dc/DC_ChargeLoopRes_Scheduled.exi"))]
    return [(0, 0x8001, _exi("sap/SupportedAppProtocolReq.exi")), (1, 0x8001, _exi("sap/SupportedAppProtocolRes.exi")),
            (0, 0x8002, _exi("common/SessionSetupReq.exi")), (1, 0x8002, _exi("common/SessionSetupRes.exi")),
            *loop * 6]


def _decode(path: Path, cache_size: int) -> tuple[list[Event], AnalyzerStats]:
    dec = CaptureDecoder(path, cache_size=cache_size)
    return list(dec.events()), dec.stats


def _rows(path: Path, events: list[Event], stats: AnalyzerStats) -> dict[str, list[dict[str, Any]]]:
    b = DatasetBuilder(str(path))
    for ev in events:
        b.add(ev)
    return b.rows(stats)


@pytest.mark.parametrize("which", ["din", "iso2", "-20"])
def test_memo_off_decodes_what_memo_on_decodes(which: str, tmp_path: Path) -> None:
    path = {"din": MERC_DC, "iso2": BYD_ISO2}.get(which) or write_pcap(tmp_path / "s20.pcap",
                                                                       v2g_conversation(_session_20_dc()))
    on, on_stats = _decode(path, 4096)
    off, off_stats = _decode(path, 0)
    # the memo was used in one run and not in the other
    assert on_stats.cache_hits > 0 and off_stats.cache_hits == 0
    assert off_stats.cache_misses == off_stats.v2g_messages
    decoded_on = [e.decoded for e in on if e.decoded is not None]
    assert len({id(d) for d in decoded_on}) < len(decoded_on)  # payloads served from the memo
    decoded_off = [e.decoded for e in off if e.decoded is not None]
    assert len({id(d) for d in decoded_off}) == len(decoded_off)
    assert all(d.error is None for d in decoded_off)

    assert len(on) == len(off)
    # every event formed first, then compared: a later event must not change what an earlier one
    # (sharing its decoded payload) shows
    dicts_on, dicts_off = [event_to_dict(e) for e in on], [event_to_dict(e) for e in off]
    for a, b, da, db in zip(on, off, dicts_on, dicts_off, strict=True):
        assert da == db == event_to_dict(a)
        assert a.fields == b.fields
        if a.decoded is not None and b.decoded is not None:
            assert a.decoded.values == b.decoded.values
    assert any(e.fields for e in off if e.kind == "v2g")  # the key fields are there to compare
    assert _rows(path, on, on_stats) == _rows(path, off, off_stats)


def test_key_fields_of_a_slow_response_keep_the_performance_limit() -> None:
    """A response later than its performance time shows its key fields, then the limit it broke,
    whether its payload came from the memo or not (the key fields are formed when first asked for)."""
    for cache_size in (4096, 0):
        events, _ = _decode(BYD_ISO2, cache_size)
        slow = [e for e in events if e.kind == "v2g" and e.timing == "performance_time"]
        assert slow
        for e in slow:
            keys = list(e.fields)
            assert keys[-1] == "performance_limit_ms" and len(keys) > 1
            # the decoded payload's own key fields (shared through the memo) stay as they were
            assert e.decoded is not None and e.decoded.key is not None
            assert "performance_limit_ms" not in e.decoded.key
        # V2G_SECC_Msg_Performance_Time of -2 CurrentDemand: 25 ms
        assert {e.fields["performance_limit_ms"] for e in slow if e.name == "CurrentDemandRes"} == {25.0}


def _distinct(annotation: str, i: int) -> Any:
    kind = annotation.split("[")[0].split(" |")[0]
    made: dict[str, Any] = {"float": i + 0.5, "int": i, "str": f"v{i}", "bool": True, "dict": {"k": i},
                            "bytes": bytes([i]), "list": [i], "Decoded": Decoded(f"v{i}")}
    return made[kind]


def test_event_init_sets_every_attribute() -> None:
    """Event's __init__ is written by hand (it takes ``fields`` for the attribute ``given_fields``):
    every attribute the dataclass declares is set, positionally in declaration order too."""
    names = [f.name for f in dataclasses.fields(Event)]
    # a distinct value per attribute, of the attribute's type (the compiled Event checks the types;
    # its dataclass fields do not keep the annotations: they are read from the source)
    tree = ast.parse(Path(source_path(Event.__module__)).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Event")
    types = {a.target.id: ast.unparse(a.annotation) for a in cls.body
             if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)}
    values = [_distinct(types[n], i) for i, n in enumerate(names)]
    ev = Event(*values)
    assert [getattr(ev, n) for n in names] == values
    bare = Event(0.0, 1, "note", "x")
    for n in names:
        getattr(bare, n)  # AttributeError for an attribute __init__ leaves unset
    assert bare.fields == {} and bare.findings == [] and Event(0.0, 1, "tls", "x", fields={"a": 1}).fields == {"a": 1}
