"""The examples in the package docstring run (they use the EXI codec)."""

from __future__ import annotations

import doctest

import pytest

import iso15118.messages as M

try:
    import iso15118.exi.codec  # noqa: F401
except ImportError as exc:  # pragma: no cover
    MISSING = f"EXI codec not importable: {exc}"
else:
    MISSING = ""


@pytest.mark.skipif(bool(MISSING), reason=MISSING or "codec present")
def test_package_docstring_examples() -> None:
    result = doctest.testmod(M, verbose=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8
    assert result.failed == 0
