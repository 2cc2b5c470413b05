"""Fixtures of the EXI oracle tests: the oracle, the codec under test, and a summary of counts."""

from __future__ import annotations

from typing import Any, Callable

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
    """``iso15118.exi.codec(key)``; FAILS the calling test (never skips) when the codec is missing."""
    try:
        import iso15118.exi.codec  # noqa: F401
        from iso15118.exi import codec as get
    except Exception as exc:  # noqa: BLE001 - any import failure means the codec is not there
        pytest.fail(f"the EXI codec is missing or broken (import iso15118.exi.codec): {exc!r}", pytrace=False)
    return get(key)


@pytest.fixture(scope="session")
def codec() -> Callable[[str], Any]:
    """``codec(key)`` of the codec under test; calling it FAILS the test when the codec is missing."""
    return load_codec


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
