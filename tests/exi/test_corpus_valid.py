"""The corpus and the generator, checked against the XSDs and the oracle (not against our codec).

* every corpus XML is valid against the vendored XSDs (xmlschema);
* every ``.exi`` is what the oracle makes of its ``.xml`` today (a stale file fails), and the oracle's
  decode of it is infoset-equal to the XML;
* the random generator (``tests/xsdgen.py``) makes schema-valid documents, deterministically per seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.exi.conftest import describe_bytes, report
from tests.exi.test_oracle_corpus import CORPUS, FILES
from tests.oracle import Oracle
from tests.xsdgen import Unsatisfiable, XsdGenerator
from tools.infoset import compare, load_schema

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from make_fixtures import validate  # noqa: E402


@pytest.mark.parametrize("key,fragment,xml_path", FILES,
                         ids=[f"{p.parent.name}/{p.stem}" for _, _, p in FILES])
def test_corpus_document_is_schema_valid(key: str, fragment: bool, xml_path: Path) -> None:
    """The XML is valid against the XSDs of its schema key."""
    errors = validate(key, xml_path.read_bytes(), fragment)
    assert not errors, f"{xml_path.relative_to(CORPUS)}: {errors[0]}"


def test_corpus_matches_oracle(oracle: Oracle) -> None:
    """Each .exi is the oracle's current encoding of its .xml, and decodes back to the same infoset."""
    results = oracle.encode_then_decode([(k, p.read_bytes(), f) for k, f, p in FILES])
    stale, rejected, differ = [], [], []
    for (key, _fragment, path), (enc, dec) in zip(FILES, results):
        name = str(path.relative_to(CORPUS))
        if not enc.ok:
            rejected.append(f"{name}: {enc.error}")
            continue
        expected = path.with_suffix(".exi").read_bytes()
        if enc.unwrap() != expected:
            stale.append(f"{name}: {describe_bytes(expected, enc.unwrap())}")
        if not dec.ok:
            rejected.append(f"{name}: decode: {dec.error}")
        elif not compare(path.read_bytes(), dec.unwrap(), key).equal:
            differ.append(f"{name}: {compare(path.read_bytes(), dec.unwrap(), key).diffs[0]}")
    report(f"oracle corpus check: {len(FILES)} documents; rejected {len(rejected)}, stale {len(stale)}, "
           f"round trip differs {len(differ)}")
    assert not (stale or rejected or differ), "\n".join(
        (rejected + stale + differ)[:15]) + "\n(rerun tools/make_fixtures.py)"


@pytest.mark.parametrize("key", ["sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din"])
def test_generator_makes_valid_documents(key: str) -> None:
    """Two documents per root are schema-valid, and the same seed gives the same document."""
    gen = XsdGenerator(key)
    schema = load_schema(key)
    checked = 0
    for root in gen.roots():
        for seed in (0, 1):
            try:
                xml = gen.generate(root, seed)
            except Unsatisfiable:
                break
            errors = [e for e in schema.iter_errors(xml) if "IDREF" not in str(e)]
            assert not errors, f"{key}/{root} seed {seed}: {str(errors[0])[:500]}\n{xml[:2000]!r}"
            checked += 1
        else:
            assert gen.generate(root, 1) == XsdGenerator(key).generate(root, 1), f"{root}: not deterministic"
    assert checked > 0


def test_corpus_covers_every_message() -> None:
    """Every Req/Res global element of sap and the five -20 schemas has at least one corpus document."""
    from lxml import etree

    roots: dict[str, set[str]] = {}
    for key, fragment, path in FILES:
        if not fragment:
            roots.setdefault(key, set()).add(etree.parse(str(path)).getroot().tag)
    missing = []
    covered = 0
    for key in ("sap", "common", "ac", "dc", "acdp", "wpt"):
        for name in load_schema(key).elements.values():
            if name.name.endswith(("Req", "Res")):
                if name.name in roots.get(key, set()):
                    covered += 1
                else:
                    missing.append(f"{key}:{name.local_name}")
    report(f"oracle corpus: {len(FILES)} documents cover {covered} message roots of sap and -20")
    assert not missing, f"messages without a corpus document: {missing}"
