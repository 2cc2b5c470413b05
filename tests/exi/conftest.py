"""Fixtures of the EXI oracle tests: the oracle, the codec under test, and a summary of counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.oracle import oracle  # noqa: F401  (session fixture, re-exported for this package)

#: Lines that tests add; printed in pytest's terminal summary (so counts show without -s).
SUMMARY: list[str] = []


def report(line: str) -> None:
    """Prints a line now and repeats it in the terminal summary."""
    print(line)
    SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Shows the counts recorded by the EXI oracle tests."""
    if SUMMARY:
        terminalreporter.section("EXI oracle")
        for line in SUMMARY:
            terminalreporter.write_line(line)


def load_codec(key: str) -> Any:
    """``iso15118.exi.codec(key)``; FAILS the calling test (never skips) when the codec is missing.

    Importing the submodule ``iso15118.exi.codec`` rebinds the package attribute ``codec`` to that
    module (Python sets submodules as attributes of their package), so the function is looked up
    defensively here; ``test_codec_api_survives_submodule_import`` checks the public API itself.
    """
    import importlib
    import types

    try:
        pkg = importlib.import_module("iso15118.exi")
        mod = importlib.import_module("iso15118.exi.codec")
    except Exception as exc:  # noqa: BLE001 - any import failure means the codec is not there
        pytest.fail(f"the EXI codec is missing or broken (import iso15118.exi.codec): {exc!r}", pytrace=False)
    fn = getattr(pkg, "codec", None)
    if isinstance(fn, types.ModuleType) or not callable(fn):
        fn = getattr(mod, "get_codec", None)
    if fn is None:
        pytest.fail("iso15118.exi has neither a codec(key) function nor iso15118.exi.codec.get_codec", pytrace=False)
    return fn(key)


@pytest.fixture(scope="session")
def codec() -> Callable[[str], Any]:
    """``codec(key)`` of the codec under test; calling it FAILS the test when the codec is missing."""
    return load_codec


def failure_category(message: str) -> str:
    """A failure message without its values (quoted text, numbers, paths), to group failures by kind."""
    import re

    if message.startswith("bytes differ"):
        return "bytes differ from the oracle"
    m = re.match(r"^(.*? raised )(\w+)\((['\"])(.*)\3\)$", message, re.S)
    if m:
        message = f"{m.group(1)}{m.group(2)}: {m.group(4)}"
    text = re.sub(r"\((?:at|bit) [^)]*\)", "", message)
    text = re.sub(r"(?:/[\w.:@-]+(?:\[\d+\])?)*/([\w.:@-]+)(?:\[\d+\])?", r"…/\1", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"-?\d+", "N", text)
    return text.strip()[:160]


def summarize_failures(failures: list[tuple[str, str]], limit: int = 12) -> str:
    """Failures ``(label, message)`` grouped by kind (count and first example each), then the first ones."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for label, message in failures:
        groups.setdefault(failure_category(message), []).append((label, message))
    lines = [f"{len(failures)} failures in {len(groups)} kinds:"]
    for kind, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        label, message = items[0]
        lines.append(f"  {len(items):5d} x {kind}\n          e.g. {label}: {message[:300]}")
    lines.append("first failing documents:")
    lines += [f"  {label}: {message[:300]}" for label, message in failures[:limit]]
    return "\n".join(lines)


def first_difference(a: bytes, b: bytes) -> int:
    """Offset of the first differing byte (the shorter length when one is a prefix of the other)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe_bytes(ours: bytes, theirs: bytes) -> str:
    """One line: the first differing offset with a few bytes of context from both sides."""
    off = first_difference(ours, theirs)
    lo = max(0, off - 4)
    return (f"first difference at byte {off} (ours {len(ours)} B, oracle {len(theirs)} B): "
            f"ours ...{ours[lo:off + 8].hex()} oracle ...{theirs[lo:off + 8].hex()}")
