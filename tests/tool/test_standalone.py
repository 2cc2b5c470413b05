"""The repository stands alone: no tracked file needs anything beside the clone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Built from pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "ISO15118_" + "SHARED", "EXI_ORACLE" + "_DIR", "ISO15118_PEER" + "_VENV",
             "-digest" + ".md")  # the reading room's digests: cite docs/ pages or [V2G20-...] IDs instead


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"git ls-files failed in {REPO}: {out.stderr.decode(errors='replace')}")
    return [REPO / p for p in out.stdout.decode().split("\0") if p]


def test_docs_page_of_the_digest_citations_exists() -> None:
    """Code cites "digest §N.N": the sections of docs/iso15118-20.md, in the repository."""
    page = (REPO / "docs" / "iso15118-20.md").read_text()
    for section in ("### 1.2 V2GTP header", "### 3.3", "### 5.1 Response codes", "### 6.1", "### 6.4", "### 7.2",
                    "### 8.1"):
        assert section in page, section


def test_no_reference_outside_the_repository() -> None:
    hits = []
    files = tracked_files()
    assert len(files) > 100
    for path in files:
        if path.suffix in (".exi", ".pcap", ".pcapng", ".pickle") or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        for n, line in enumerate(text.splitlines(), 1):
            hits += [f"{path.relative_to(REPO)}:{n}: {line.strip()[:120]}" for word in FORBIDDEN if word in line]
    assert not hits, "references to things outside the repository:\n" + "\n".join(hits)
