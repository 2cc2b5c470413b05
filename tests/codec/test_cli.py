"""The `iso15118 exi` command: many files in one process, and --hex."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import load_peer_messages

MSGS = load_peer_messages()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iso15118", *args], capture_output=True, text=True, timeout=120)


def test_decode_then_encode_many_files(tmp_path: Path) -> None:
    common = [m for m in MSGS if m["schema"] == "common"][:10]
    assert common, "no recorded -20 common messages"
    exi_dir = tmp_path / "exi"
    exi_dir.mkdir()
    for i, m in enumerate(common):
        (exi_dir / f"m{i}.exi").write_bytes(bytes.fromhex(m["exi_hex"]))
    files = sorted(str(p) for p in exi_dir.glob("*.exi"))
    res = run("exi", "decode", "--schema", "common", "-o", str(tmp_path / "xml"), *files)
    assert res.returncode == 0, res.stderr
    xmls = sorted(str(p) for p in (tmp_path / "xml").glob("*.xml"))
    assert len(xmls) == len(files)
    res = run("exi", "encode", "--schema", "common", "-o", str(tmp_path / "again"), *xmls)
    assert res.returncode == 0, res.stderr
    for i, m in enumerate(common):
        assert (tmp_path / "again" / f"m{i}.exi").read_bytes() == bytes.fromhex(m["exi_hex"])


def test_hex_decode_prints_xml() -> None:
    res = run("exi", "decode", "--schema", "sap", "--hex", "80400040")
    assert res.returncode == 0, res.stderr
    assert "<ResponseCode>OK_SuccessfulNegotiation</ResponseCode>" in res.stdout
    assert "<SchemaID>1</SchemaID>" in res.stdout


def test_bad_input_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.exi"
    bad.write_bytes(b"\x80\xff\xff")
    res = run("exi", "decode", "--schema", "common", str(bad))
    assert res.returncode == 1
    assert "bad.exi: error:" in res.stderr and "bit" in res.stderr
    res = run("exi", "decode", "--schema", "sap", "--hex", "zz")
    assert res.returncode == 2
