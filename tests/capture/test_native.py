"""The optional compiled (mypyc) capture modules (iso15118/_native.py, tools/build_native): they are
in use when built and fresh, the pure-Python modules when ``ISO15118_PURE=1`` or when a source
changed after the build, and both give the same bytes on every fixture capture (and on damaged,
pcapng and Linux-cooked variants of one).

Without a native build (no C compiler) the proofs that need it skip, so in strict mode (CI) they
fail: CI proves that the compiled modules run and agree with the pure ones."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iso15118 import _native
from tests.capture.capgen import eth_to_sll2, records, write_pcap, write_pcapng

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SOURCE = FIXTURES / "captures" / "BYD_Atto3_2023-04-18T15-31-50.525Z-2_config-dc-iso2.pcap"

_WHICH = (
    "import importlib, json, sys\n"
    "import iso15118._native as n\n"
    "files = {m: importlib.import_module(m).__file__ for m in n.MODULES}\n"
    "print(json.dumps({'status': n.status(), 'files': files}))\n"
)


def _env(pure: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    if pure:
        env[_native.PURE_ENV] = "1"
    env.update(extra)
    return env


def _need_native() -> None:
    why = _native.build_state()
    if why is not None:
        pytest.skip(f"the native build is not in use: {why}")


def _which(pure: bool, **kw: object) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _WHICH], env=_env(pure), capture_output=True, text=True,
                         check=True, **kw)  # type: ignore[call-overload]
    result: dict[str, object] = json.loads(out.stdout)
    result["stderr"] = out.stderr
    return result


def test_native_modules_in_use_and_pure_when_forced() -> None:
    """A process loads every listed module compiled (an extension module), and with
    ISO15118_PURE=1 every one from its .py source."""
    _need_native()
    native = _which(pure=False)
    assert native["status"] == "native"
    files = native["files"]
    assert isinstance(files, dict) and set(files) == set(_native.MODULES)
    assert all(str(f).endswith(".so") for f in files.values()), files
    pure = _which(pure=True)
    assert pure["status"] == f"pure: {_native.PURE_ENV} set"
    assert pure["files"] == {m: _native.source_path(m) for m in _native.MODULES}
    assert native["stderr"] == pure["stderr"] == ""


def test_a_stale_build_is_never_run(tmp_path: Path) -> None:
    """A copy of the package whose framing.py changed after the build: the pure modules, all of
    them (the compiled ones share their classes), with one warning; the untouched copy runs
    compiled (the control: the copy itself works)."""
    _need_native()
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "iso15118", copy / "iso15118", ignore=shutil.ignore_patterns("__pycache__"))
    control = _which(pure=False, cwd=copy)  # ``python -c`` puts the working directory first on sys.path
    assert control["status"] == "native"
    files = control["files"]
    assert isinstance(files, dict) and all(str(f).startswith(str(copy)) and str(f).endswith(".so") for f in files.values())
    framing = copy / "iso15118" / "capture" / "framing.py"
    framing.write_text(framing.read_text(encoding="utf-8") + "\n# edited after the build\n", encoding="utf-8")
    stale = _which(pure=False, cwd=copy)
    assert str(stale["status"]).startswith("stale: iso15118/capture/framing.py changed")
    assert stale["files"] == {m: str(copy / Path(_native.source_path(m)).relative_to(ROOT)) for m in _native.MODULES}
    assert str(stale["stderr"]).count("\n") == 1 and "using the pure-Python modules" in str(stale["stderr"])


def _variants(tmp: Path) -> Path:
    """Captures beyond the fixtures' plain Ethernet pcap files: pcapng, Linux cooked v2 (SLL2), and
    three damaged copies (bytes flipped at random, a cut, records dropped and repeated)."""
    out = tmp / "variants"
    out.mkdir()
    recs = [(r.ts, r.data) for r in records(SOURCE)]
    write_pcapng(out / "v.pcapng", recs)
    write_pcap(out / "sll2.pcap", [(t, eth_to_sll2(d)) for t, d in recs], linktype=276)
    rng = random.Random(15118)
    flipped = []
    for t, d in recs:
        b = bytearray(d)
        if b and rng.random() < 0.05:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        flipped.append((t, bytes(b)))
    write_pcap(out / "flipped.pcap", flipped)
    shuffled = [r for r in recs if rng.random() > 0.03]
    for _ in range(40):
        i = rng.randrange(len(shuffled) - 1)
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
        shuffled.insert(rng.randrange(len(shuffled)), shuffled[rng.randrange(len(shuffled))])
    write_pcap(out / "shuffled.pcap", shuffled)
    data = SOURCE.read_bytes()
    (out / "cut.pcap").write_bytes(data[: len(data) * 2 // 3])
    return out


def test_native_and_pure_give_the_same_bytes(tmp_path: Path) -> None:
    """``iso15118 decode --format json --summary`` over every fixture capture and the variants, and
    the Parquet dataset's rows: the compiled and the pure modules agree exactly (both processes
    run at once)."""
    _need_native()
    variants = _variants(tmp_path)
    cmd = [sys.executable, "-m", "iso15118", "decode", str(FIXTURES), str(variants)]
    procs = {}
    for label, pure in (("native", False), ("pure", True)):
        d = tmp_path / label
        d.mkdir()
        procs[label] = [
            subprocess.Popen([*cmd, "--format", "json", "--summary", "-o", str(d / "out.json")], env=_env(pure),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE),
            subprocess.Popen([*cmd, "--format", "parquet", "-o", str(d / "dataset")], env=_env(pure),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        ]
    rcs = {label: [(p.wait(timeout=600), p.stderr.read() if p.stderr else b"") for p in ps] for label, ps in procs.items()}
    assert [rc for rc, _e in rcs["native"]] == [rc for rc, _e in rcs["pure"]], rcs
    native_json = (tmp_path / "native" / "out.json").read_bytes()
    assert native_json == (tmp_path / "pure" / "out.json").read_bytes()
    assert native_json.count(b'"capture"') >= 27 + 5 and b"undecodable" in native_json  # the damage was seen
    tables = sorted(p.name for p in (tmp_path / "native" / "dataset").iterdir())
    assert tables == sorted(p.name for p in (tmp_path / "pure" / "dataset").iterdir()) and tables
    for name in tables:
        a = pq.read_table(tmp_path / "native" / "dataset" / name)
        b = pq.read_table(tmp_path / "pure" / "dataset" / name)
        assert a.schema == b.schema and a.to_pylist() == b.to_pylist(), name
