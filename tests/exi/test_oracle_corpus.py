"""Acceptance: the codec reproduces the oracle's bytes for every corpus document, and decodes them.

Corpus: ``fixtures/exi/<dir>/<Name>.xml`` + ``<Name>.exi`` (the oracle's bytes; see its README).
No Java needed: the expected bytes are files. Fails (never skips) when the codec is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exi.conftest import describe_bytes, report
from tests.proofs import CORPUS_DOCS, record
from tools.infoset import compare

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "exi"


def corpus_files() -> list[tuple[str, bool, Path]]:
    """``(schema key, fragment, xml path)`` for every corpus document that has its .exi."""
    out = []
    for sub in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name != "published"):
        key, _, mode = sub.name.partition("-")
        for xml in sorted(sub.glob("*.xml")):
            if xml.with_suffix(".exi").is_file():
                out.append((key, mode == "fragment", xml))
    return out


FILES = corpus_files()


def test_corpus_is_there() -> None:
    """The corpus exists and is big enough to mean something."""
    assert len(FILES) >= 80, f"only {len(FILES)} corpus documents in {CORPUS}"
    keys = {k for k, _, _ in FILES}
    assert {"sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din"} <= keys


@pytest.mark.parametrize("key,fragment,xml_path", FILES,
                         ids=[f"{p.parent.name}/{p.stem}" for _, _, p in FILES])
def test_encode_matches_oracle(codec, key: str, fragment: bool, xml_path: Path) -> None:
    """encode_xml(xml) is byte-identical to the oracle's stream."""
    expected = xml_path.with_suffix(".exi").read_bytes()
    ours = codec(key).encode_xml(xml_path.read_bytes(), fragment=fragment)
    assert ours == expected, f"{xml_path.parent.name}/{xml_path.name}: {describe_bytes(ours, expected)}"
    record(CORPUS_DOCS)


@pytest.mark.parametrize("key,fragment,xml_path", FILES,
                         ids=[f"{p.parent.name}/{p.stem}" for _, _, p in FILES])
def test_decode_oracle_stream(codec, key: str, fragment: bool, xml_path: Path) -> None:
    """decode_xml(oracle bytes) is infoset-equal to the source XML."""
    decoded = codec(key).decode_xml(xml_path.with_suffix(".exi").read_bytes(), fragment=fragment)
    result = compare(xml_path.read_bytes(), decoded, key)
    assert result.equal, f"{xml_path.parent.name}/{xml_path.name}: {result.report()}"


def test_corpus_summary(codec) -> None:
    """All corpus documents in one pass, with a count line (and the first failures listed)."""
    bad_enc: list[str] = []
    bad_dec: list[str] = []
    for key, fragment, xml_path in FILES:
        name = f"{xml_path.parent.name}/{xml_path.stem}"
        expected = xml_path.with_suffix(".exi").read_bytes()
        try:
            ours = codec(key).encode_xml(xml_path.read_bytes(), fragment=fragment)
            if ours != expected:
                bad_enc.append(f"{name}: {describe_bytes(ours, expected)}")
        except Exception as exc:  # noqa: BLE001
            bad_enc.append(f"{name}: encode raised {exc!r}")
        try:
            result = compare(xml_path.read_bytes(), codec(key).decode_xml(expected, fragment=fragment), key)
            if not result.equal:
                bad_dec.append(f"{name}: {result.diffs[0]}")
        except Exception as exc:  # noqa: BLE001
            bad_dec.append(f"{name}: decode raised {exc!r}")
    n = len(FILES)
    report(f"oracle corpus: {n} documents, {n - len(bad_enc)} byte-identical, "
           f"{n - len(bad_dec)} decoded infoset-equal")
    assert not bad_enc and not bad_dec, "\n".join(
        ["encode differs:"] + bad_enc[:10] + ["decode differs:"] + bad_dec[:10])


def test_codec_api_survives_submodule_import() -> None:
    """``iso15118.exi.codec(key)`` stays callable after ``import iso15118.exi.codec``.

    Python binds an imported submodule as an attribute of its package, so a submodule named
    ``codec`` replaces the function ``iso15118.exi.codec`` as soon as anything imports it.
    """
    import importlib

    importlib.import_module("iso15118.exi.codec")
    pkg = importlib.import_module("iso15118.exi")
    assert callable(pkg.codec), (
        "iso15118.exi.codec is the submodule, not the codec(key) function, once iso15118.exi.codec is "
        "imported: rename the submodule or make the package attribute survive the import")
    assert hasattr(pkg.codec("common"), "encode_xml")
