"""The generated codecs (``iso15118/exi/_fast_<key>.py``) against the generic codec, the reference.

* the committed modules are what ``tools/gen_fastcodec.py`` writes now;
* every document of the corpus (``fixtures/exi``, -20, -2 and DIN), every message of the peer's
  benchmark set and every payload of the capture fixtures decodes and re-encodes through the
  generated code itself (no fallback) to exactly what the generic codec gives;
* random schema-valid documents of every root (``tests/xsdgen.py``): same tree, same bytes;
* mutated streams (bit flips, truncation, appended bytes, random bytes): ``Codec.decode`` (generated
  first) and ``Codec.decode_generic`` give the same tree or the same typed error class;
* bad input costs bounded work: the generated decoder reads at least one bit per event and takes
  streams up to ``FAST_MAX_BYTES`` only; its peak memory on junk is measured, never its time.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from iso15118.exi import ExiError
from iso15118.exi.codec import FAST_MAX_BYTES, MAX_DEPTH, get_codec
from iso15118.exi.grammar import SE

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_fastcodec", ROOT / "tools" / "gen_fastcodec.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_fastcodec"] = module
    spec.loader.exec_module(module)
    return module


def corpus() -> list[tuple[str, str, bytes]]:
    """(schema key, label, EXI document) of the corpus and the peer's messages."""
    out = []
    for path in sorted((ROOT / "fixtures" / "exi").glob("*/*.exi")):
        key = path.parent.name
        if key in KEYS:
            out.append((key, f"{key}/{path.name}", path.read_bytes()))
    for line in (ROOT / "fixtures" / "peer" / "bench_messages.jsonl").read_text().splitlines():
        if line.strip():
            m = json.loads(line)
            out.append((m["schema"], f"peer:{m['name']}", bytes.fromhex(m["exi_hex"])))
    return out


CORPUS = corpus()


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except ExiError as exc:
        return ("error", type(exc).__name__)


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    written = _generator().generate(tmp_path)
    assert [p.name for p in written] == [f"_fast_{k}.py" for k in KEYS]
    stale = [p.name for p in written
             if (ROOT / "iso15118" / "exi" / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8")]
    assert not stale, f"stale generated codecs {stale}: run .venv/bin/python tools/gen_fastcodec.py"


def test_fast_codecs_are_in_use() -> None:
    for key in KEYS:
        fast = get_codec(key).fast
        assert fast is not None, f"{key}: the generated codec is not loaded (stale digest or import error)"
        assert fast.SCHEMA_KEY == key


def test_grammar_nesting_is_bounded() -> None:
    """The generated decoder recurses along the element grammars of the schema (wildcards fall
    back), so it is bounded by the codec's MAX_DEPTH if that graph has no cycle deeper than it."""
    def walk(key: str, g: Any, depth: dict[int, int], active: set[int]) -> int:
        if id(g) in depth:
            return depth[id(g)]
        assert id(g) not in active, f"{key}: recursive grammar {g.name} (the generated code needs a depth bound)"
        active.add(id(g))
        kids = [p.child for st in g.states for p in st.prods if p.kind == SE and p.child is not None]
        d = 1 + max((walk(key, c, depth, active) for c in kids), default=0)
        active.discard(id(g))
        depth[id(g)] = d
        return d

    for key in KEYS:
        sg = get_codec(key).sg
        seen: dict[int, int] = {}
        deepest = max(walk(key, g, seen, set()) for _, _, g in sg.document.roots if g is not None)
        assert deepest < MAX_DEPTH, (key, deepest)


@pytest.mark.parametrize("key,label,data", CORPUS, ids=[c[1] for c in CORPUS])
def test_corpus_generated_equals_generic(key: str, label: str, data: bytes) -> None:
    c = get_codec(key)
    ref = c.decode_generic(data)
    assert c.fast.decode(data) == ref  # the generated code itself, no fallback
    assert c.fast.encode(ref) == c.encode_generic(ref) == data


def test_capture_payloads_generated_equals_generic() -> None:
    """Every V2G payload of the capture fixtures (real vehicles and chargers, DIN / -2 / -20)."""
    from iso15118.capture.analyzer import CaptureDecoder

    seen: set[tuple[str, bytes]] = set()
    for path in sorted((ROOT / "fixtures").glob("*/*.pcap*")):
        dec = CaptureDecoder(str(path))
        for ev in dec.events():
            schema = getattr(ev, "schema", None)
            payload = getattr(ev, "payload", None)
            if isinstance(schema, str) and isinstance(payload, bytes) and schema in KEYS:
                seen.add((schema, payload))
    assert len(seen) > 100
    fast_ok = 0
    for schema, payload in sorted(seen):
        c = get_codec(schema)
        ref = _outcome(c.decode_generic, payload)
        assert _outcome(c.decode, payload) == ref, (schema, payload.hex())
        if ref[0] == "ok":
            fast_ok += 1
            assert c.fast.decode(payload) == ref[1]
            assert _outcome(c.encode, ref[1]) == _outcome(c.encode_generic, ref[1])
    assert fast_ok > 100


def _random_trees() -> list[tuple[str, Any]]:
    from tests.xsdgen import Unsatisfiable, XsdGenerator

    out = []
    rng = random.Random(16)
    for key in KEYS:
        gen = XsdGenerator(key)
        c = get_codec(key)
        for root in gen.roots():
            for _ in range(2):
                try:
                    xml = gen.generate(root, seed=rng.randrange(1 << 30))
                except Unsatisfiable:
                    break
                try:
                    out.append((key, c.xml_to_tree(xml)))
                except ExiError:
                    continue
    return out


def test_random_documents_generated_equals_generic() -> None:
    trees = _random_trees()
    assert len(trees) > 300
    by_fast = 0
    for key, tree in trees:
        c = get_codec(key)
        ref = c.encode_generic(tree)
        assert c.encode(tree) == ref
        try:
            assert c.fast.encode(tree) == ref
            by_fast += 1
        except AssertionError:
            raise
        except Exception:  # noqa: BLE001 - a fallback: the generic codec wrote it (checked above)
            pass
        back = c.decode_generic(ref)
        assert c.decode(ref) == back
        assert c.encode(back) == c.encode_generic(back) == ref
    # most random documents are within what the generated code writes itself
    assert by_fast > len(trees) // 2, (by_fast, len(trees))


def _mutants(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(6):
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    out.append(data[: rng.randrange(len(data))])
    out.append(data + bytes([rng.randrange(256)]))
    out.append(data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))))
    out.append(bytes([0x80]) + bytes(rng.randrange(256) for _ in range(len(data))))
    return out


def test_mutated_streams_same_result_or_same_error() -> None:
    rng = random.Random(1616)
    n = 0
    for key, _label, data in CORPUS:
        c = get_codec(key)
        for m in _mutants(data, rng):
            assert _outcome(c.decode, m) == _outcome(c.decode_generic, m), (key, _label, m.hex())
            n += 1
    assert n > 2000


def test_junk_is_bounded_in_memory() -> None:
    """Random bytes up to FAST_MAX_BYTES behind a valid header: a typed error or a tree, and the
    peak memory stays a small multiple of the input (measured, not timed)."""
    rng = random.Random(7)
    c = get_codec("common")
    tracemalloc.start()
    try:
        for size in (1, 16, 300, 4000, FAST_MAX_BYTES):
            for _ in range(5):
                data = bytes([0x80]) + rng.randbytes(size - 1)
                tracemalloc.reset_peak()
                _outcome(c.decode, data)
                _, peak = tracemalloc.get_traced_memory()
                assert peak < 200 * size + 200_000, (size, peak)
    finally:
        tracemalloc.stop()


def test_generated_code_can_be_switched_off_and_is_refused_when_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    codec_module = sys.modules["iso15118.exi.codec"]  # the package attribute is the codec() factory

    code = "from iso15118.exi.codec import get_codec; print(get_codec('dc').fast is None)"
    for value, off in (("1", "True"), ("0", "False")):
        env = {**__import__("os").environ, "ISO15118_EXI_GENERIC": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == off
    assert codec_module.load_fast("dc") is not None
    monkeypatch.setattr(codec_module, "grammar_digest", lambda: "another-builder-another-xsd")
    assert codec_module.load_fast("dc") is None
