"""The reference EXI oracle for the tests: the driver is ``tools/exi_oracle.py``; this module adds the
pytest fixture and counts the documents the oracle handled as proofs.

The reference EXI oracle (EXIficient, driven by ``tools/oracle/RefExi.java``).

The oracle is a Java program; a JVM start costs about a second, so :class:`Oracle` runs many jobs
in ONE JVM through the driver's ``batch`` mode: every input is written to a temporary folder, one
``java ... RefExi batch`` subprocess reads one job a line on stdin and answers ``OK <job>`` or
``ERR <job> :: <exception>`` a line on stdout.

Where the oracle lives:

1. ``$ISO15118_ORACLE_DIR`` (``tools/test`` sets it to what ``tools/oracle/build`` printed): a folder
   with ``EXICodec.jar`` and ``RefExi.class``. When set it is the only place looked at, so pointing it
   at a bogus folder makes the oracle unavailable on purpose (strict mode must then fail);
2. otherwise ``tools/oracle/build`` is run (it downloads the wheel once and compiles the driver into
   ``.cache/oracle``) and the folder it prints is used.

The pytest fixture :func:`oracle` (session scope) skips, with the reason, when Java or the oracle is not
available; the skip carries the ``oracle`` marker's proof kind, so ``tools/test --strict`` turns it into
a failure (``tests/conftest.py``).

    >>> o = Oracle.locate()
    >>> [r.data for r in o.run([Job.encode("common", xml_bytes)])]
"""

from __future__ import annotations

import sys

import pytest

from tests.proofs import ORACLE_DOCS, record
from tools.exi_oracle import (
    OK_HOOKS,
    SCHEMA_KEYS,
    Job,
    Oracle,
    OracleError,
    OracleUnavailable,
    Result,
    locate_oracle_dir,
    session_oracle,
)

__all__ = ["SCHEMA_KEYS", "Job", "Oracle", "OracleError", "OracleUnavailable", "Result", "locate_oracle_dir", "oracle",
           "session_oracle"]


def _count(n: int) -> None:
    record(ORACLE_DOCS, n)


if _count not in OK_HOOKS:
    OK_HOOKS.append(_count)


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    """The reference EXI oracle; skips (reason printed) when Java or the oracle is unavailable."""
    try:
        return session_oracle()
    except OracleUnavailable as exc:
        reason = f"reference EXI oracle unavailable: {exc}"
        print(f"\nSKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
        raise  # unreachable
