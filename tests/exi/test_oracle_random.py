"""Random schema-valid documents for every global element: our bytes == the oracle's bytes.

For every schema key, every root that :class:`tests.xsdgen.XsdGenerator` can build (global elements;
xmldsig elements only under the ``xmldsig`` key) gets ``N`` random documents (seeded, so the same each
run), plus EXI fragments: xmldsig ``SignedInfo`` and every element with an ``Id`` (the ones signatures
reference) of the -20 CommonMessages, ISO 15118-2 and DIN schemas, local declarations included. The oracle runs
ONCE, in one JVM, for all of them (encode, then decode of its own bytes).

* ``test_generator_accepted_by_oracle``: a test of the generator and the oracle alone: every document is
  encoded by the oracle and its decode is infoset-equal to the document.
* ``test_random_encode_matches_oracle`` / ``test_random_decode_matches``: the acceptance tests of our
  codec (they FAIL when the codec is missing).

``ISO15118_ORACLE_RANDOM_N`` sets N (default 6: about 2,400 documents, well under a minute for the oracle).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from tests.exi.conftest import describe_bytes, load_codec, report, summarize_failures
from tests.oracle import Oracle
from tests.xsdgen import Unsatisfiable, XsdGenerator
from tools.infoset import compare

N = int(os.environ.get("ISO15118_ORACLE_RANDOM_N", "6"))
KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")
DSIG = "http://www.w3.org/2000/09/xmldsig#"
#: Schema keys whose Id-carrying elements (the ones signatures reference) are tested as EXI fragments.
FRAGMENT_KEYS = ("common", "iso2", "din")


def fragment_roots() -> list[tuple[str, str]]:
    """(schema key, element) of the EXI fragments: xmldsig SignedInfo and every element with an Id."""
    roots = [("xmldsig", f"{{{DSIG}}}SignedInfo")]
    for key in FRAGMENT_KEYS:
        roots += [(key, name) for name in XsdGenerator(key).id_elements()]
    return roots


@dataclass
class RandomDoc:
    """One generated document and what the oracle made of it."""

    key: str
    root: str
    seed: int
    fragment: bool
    xml: bytes
    exi: bytes | None = None
    exi_error: str | None = None
    back: bytes | None = None
    back_error: str | None = None

    @property
    def label(self) -> str:
        local = self.root.split("}", 1)[-1]
        return f"{self.key}{'-fragment' if self.fragment else ''}/{local}#seed{self.seed}"


def _roots(gen: XsdGenerator, key: str) -> list[str]:
    roots = gen.roots()
    if key != "xmldsig":
        roots = [r for r in roots if not r.startswith(f"{{{DSIG}}}")]
    return roots


def build_documents(n: int) -> tuple[list[RandomDoc], int, list[str]]:
    """``n`` documents per root and fragment root; returns (documents, roots covered, roots skipped)."""
    docs: list[RandomDoc] = []
    covered = 0
    skipped: list[str] = []
    for key in KEYS:
        gen = XsdGenerator(key)
        for root in _roots(gen, key):
            made = 0
            for seed in range(n):
                try:
                    docs.append(RandomDoc(key, root, seed, False, gen.generate(root, seed)))
                    made += 1
                except Unsatisfiable as exc:
                    skipped.append(f"{key}:{root.split('}')[-1]} ({exc})")
                    break
            covered += made > 0
    for key, root in fragment_roots():
        gen = XsdGenerator(key)
        for seed in range(n):
            docs.append(RandomDoc(key, root, seed, True, gen.generate(root, seed, local=True)))
        covered += 1
    return docs, covered, skipped


@pytest.fixture(scope="module")
def random_docs(oracle: Oracle) -> tuple[list[RandomDoc], int, list[str]]:
    """The generated documents with the oracle's bytes and decodes (one JVM for all)."""
    t0 = time.monotonic()
    docs, covered, skipped = build_documents(N)
    t1 = time.monotonic()
    results = oracle.encode_then_decode([(d.key, d.xml, d.fragment) for d in docs])
    for d, (enc, dec) in zip(docs, results):
        d.exi, d.exi_error = enc.data, enc.error
        d.back, d.back_error = dec.data, dec.error
    report(f"oracle random: generated {len(docs)} documents for {covered} roots in {t1 - t0:.1f} s, "
           f"oracle encode+decode in {time.monotonic() - t1:.1f} s (N={N}); "
           f"{len(skipped)} roots not generatable (wildcard-only or abstract without members)")
    return docs, covered, skipped


def test_generator_accepted_by_oracle(random_docs) -> None:
    """Every generated document is encoded by the oracle, whose decode is infoset-equal to it."""
    docs, covered, _ = random_docs
    rejected = [f"{d.label}: {d.exi_error}" for d in docs if d.exi is None]
    undecoded = [f"{d.label}: {d.back_error}" for d in docs if d.exi is not None and d.back is None]
    differ = []
    for d in docs:
        if d.back is not None:
            result = compare(d.xml, d.back, d.key)
            if not result.equal:
                differ.append(f"{d.label}: {result.diffs[0]}")
    report(f"oracle random: {len(docs)} documents, {covered} roots; oracle rejected {len(rejected)}, "
           f"failed to decode {len(undecoded)}, round trip differs {len(differ)}")
    assert not rejected and not undecoded and not differ, "\n".join(
        (rejected + undecoded + differ)[:15])


def test_random_encode_matches_oracle(random_docs) -> None:
    """Our encode_xml(doc) is byte-identical to the oracle's for every generated document."""
    docs, covered, _ = random_docs
    failures: list[tuple[str, str]] = []
    checked = 0
    for d in docs:
        if d.exi is None:
            continue
        checked += 1
        try:
            ours = load_codec(d.key).encode_xml(d.xml, fragment=d.fragment)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, pytest.fail.Exception):
                raise
            failures.append((d.label, f"encode raised {exc!r}"))
            continue
        if ours != d.exi:
            failures.append((d.label, f"bytes differ: {describe_bytes(ours, d.exi)}"))
    if not failures:
        report(f"oracle random: {checked} documents, {covered} roots, all byte-identical")
    else:
        report(f"oracle random: {checked} documents, {covered} roots, {len(failures)} differ from the oracle")
    assert not failures, summarize_failures(failures) + _first_doc(docs, failures)


def test_random_decode_matches(random_docs) -> None:
    """Our decode_xml(oracle bytes) is infoset-equal to the generated document."""
    docs, covered, _ = random_docs
    failures: list[tuple[str, str]] = []
    checked = 0
    for d in docs:
        if d.exi is None:
            continue
        checked += 1
        try:
            back = load_codec(d.key).decode_xml(d.exi, fragment=d.fragment)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, pytest.fail.Exception):
                raise
            failures.append((d.label, f"decode raised {exc!r}"))
            continue
        result = compare(d.xml, back, d.key)
        if not result.equal:
            failures.append((d.label, f"infoset differs: {result.diffs[0]}"))
    report(f"oracle random decode: {checked} documents, {checked - len(failures)} infoset-equal")
    assert not failures, summarize_failures(failures) + _first_doc(docs, failures)


def _first_doc(docs: list[RandomDoc], failures: list[tuple[str, str]]) -> str:
    """The XML of the first failing document, to reproduce it."""
    if not failures:
        return ""
    label = failures[0][0]
    for d in docs:
        if d.label == label:
            return f"\n\nfirst failing document ({label}):\n{d.xml.decode('utf-8', 'replace')[:3000]}"
    return ""
