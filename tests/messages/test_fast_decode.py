"""The generated typed decoders and encoders (``iso15118/messages/_fast_<key>.py``: EXI bits straight
into the message classes and back) against the reference paths ``from_tree(codec.decode_generic(data))``
and ``codec.encode_generic(msg.to_tree())``.

* committed modules are what ``tools/gen_fastcodec.py`` writes now;
* every corpus document and peer message: the same object (or, where the reference refuses the
  document, the same typed error class), and the -20 messages are decoded by the generated code
  itself, not by its fallback;
* random valid typed messages of every global element (hypothesis, ``tests/messages/strategies``):
  encoded, then decoded both ways: the same object;
* mutated streams: the same object or the same typed error class.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iso15118.messages as M
from iso15118.exi import ExiError
from iso15118.exi.codec import get_codec
from tests.messages.strategies import for_class

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")
TYPED_ERRORS = (ExiError, M.MessageValidationError)


def _corpus() -> list[tuple[str, str, bytes]]:
    out = []
    for path in sorted((ROOT / "fixtures" / "exi").glob("*/*.exi")):
        if path.parent.name in KEYS:
            out.append((path.parent.name, f"{path.parent.name}/{path.name}", path.read_bytes()))
    for line in (ROOT / "fixtures" / "peer" / "bench_messages.jsonl").read_text().splitlines():
        if line.strip():
            m = json.loads(line)
            out.append((m["schema"], f"peer:{m['name']}", bytes.fromhex(m["exi_hex"])))
    return out


CORPUS = _corpus()


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except TYPED_ERRORS as exc:
        return ("error", type(exc).__name__)


def test_typed_modules_are_fresh(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_fastcodec", ROOT / "tools" / "gen_fastcodec.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_fastcodec"] = gen
    spec.loader.exec_module(gen)
    written = gen.generate_typed(tmp_path)
    stale = [p.name for p in written
             if (ROOT / "iso15118" / "messages" / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8")]
    assert not stale, f"stale typed decoders {stale}: run .venv/bin/python tools/gen_fastcodec.py"


def test_corpus_typed_fast_equals_reference() -> None:
    by_generated = 0
    for key, label, data in CORPUS:
        ref = _outcome(M.decode_generic, data, key)
        assert _outcome(M.decode, data, key) == ref, label
        fast = M._typed_fast(key)
        assert fast is not None, key
        try:
            got = fast.decode(data)
        except Exception:  # noqa: BLE001 - fallback (signatures, open content, no typed class)
            continue
        assert ref == ("ok", got), label
        by_generated += 1
    # every unsigned message of the corpus (-20, SAP, -2, DIN) is read by the generated code itself
    assert by_generated >= 190, by_generated


def test_corpus_typed_fast_encode_equals_reference() -> None:
    """The generated typed encoders (message fields straight to bits) write what
    ``codec.encode_generic(msg.to_tree())`` writes, which is the corpus' own bytes."""
    by_generated = 0
    for key, label, data in CORPUS:
        try:
            msg = M.decode_generic(data, key)
        except TYPED_ERRORS:
            continue
        ref = get_codec(key).encode_generic(msg.to_tree())
        assert M.encode(msg) == M.encode_generic(msg) == ref, label
        try:
            got = M._typed_fast(key).encode(msg)
        except Exception:  # noqa: BLE001 - fallback (signatures, open content)
            continue
        assert got == ref, label
        by_generated += 1
    assert by_generated >= 190, by_generated


def _root_classes() -> list[type]:
    from iso15118.messages.din import SCOPE as DIN
    from iso15118.messages.iso2 import SCOPE as ISO2

    classes = list(M.ALL_CLASSES) + list(ISO2.classes) + list(DIN.classes)
    return sorted(
        {c for c in classes if c.ELEMENT is not None and "ELEMENT" in c.__dict__ and M.SCHEMA_KEY_BY_NAMESPACE.get(c.ELEMENT[0]) in KEYS},
        key=lambda c: (c.__module__, c.__name__),
    )


ROOT_CLASSES = _root_classes()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_messages_typed_fast_equals_reference(data: st.DataObject) -> None:
    klass = data.draw(st.sampled_from(ROOT_CLASSES))  # -20, SAP, xmldsig, -2 and DIN global elements
    msg = data.draw(for_class(klass, wildcards=False))
    key = M.schema_key_of(msg)
    try:
        exi = M.encode(msg)
    except ExiError:
        return  # a document the schema grammar refuses (the strategies know no grammar limits)
    assert get_codec(key).encode_generic(msg.to_tree()) == M.encode_generic(msg) == exi
    ref = _outcome(M.decode_generic, exi, key)
    assert _outcome(M.decode, exi, key) == ref


def test_mutated_streams_typed_same_result_or_same_error() -> None:
    rng = random.Random(2016)
    n = 0
    for key, label, data in CORPUS:
        for _ in range(8):
            b = bytearray(data)
            for _ in range(rng.choice((1, 2, 3))):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            if rng.random() < 0.2:
                b = b[: rng.randrange(1, len(b) + 1)]
            m = bytes(b)
            assert _outcome(M.decode, m, key) == _outcome(M.decode_generic, m, key), (label, m.hex())
            n += 1
    assert n > 1500


def test_capture_payloads_typed_fast_equals_reference() -> None:
    """Every distinct V2G payload of the capture fixtures (real vehicles and chargers: DIN, -2,
    -20): the generated typed decoder gives what the reference path gives."""
    from iso15118.capture.analyzer import CaptureDecoder

    seen: set[tuple[str, bytes]] = set()
    for path in sorted((ROOT / "fixtures").glob("*/*.pcap*")):
        for ev in CaptureDecoder(str(path)).events():
            if isinstance(ev.schema, str) and isinstance(ev.payload, bytes) and ev.schema in KEYS:
                seen.add((ev.schema, ev.payload))
    assert len(seen) > 1000
    by_generated = 0
    for key, payload in sorted(seen):
        ref = _outcome(M.decode_generic, payload, key)
        assert _outcome(M.decode, payload, key) == ref, (key, payload.hex())
        try:
            got = M._typed_fast(key).decode(payload)
        except Exception:  # noqa: BLE001 - fallback
            continue
        assert ("ok", got) == ref
        by_generated += 1
    assert by_generated > 1000, by_generated
