"""Counts of the proofs that ran, for the end of the test run (``tests/conftest.py`` prints them).

A test that compares with something nobody here wrote records how much it compared::

    from tests.proofs import record
    record(ORACLE_DOCS, len(jobs))

Strict mode (``tools/test --strict`` or ``ISO15118_STRICT=1``; ``.ci/run`` uses it) is read here too:
in it a test that would skip fails instead (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import threading
from collections import Counter

ORACLE_DOCS = "EXI documents run through the reference oracle (EXIficient)"
CORPUS_DOCS = "corpus documents byte-compared with the oracle's stored bytes"
PEER_MESSAGES = "real Josev messages re-encoded byte for byte"
PEER_SESSIONS = "sessions run with the Josev peer (its SECC or EVCC)"
PEER_TLS = "TLS handshakes with the Josev peer"
PEER_CASES = "conformance cases run against a Josev SECC or EVCC"
LIVE_CAPTURES = "loopback sessions captured live and decoded (tcpdump / dumpcap)"
REAL_CAPTURES = "real vehicle captures checked against the charger's event log"
SCREENSHOTS = "reports rendered by headless Chromium"
PEER_PNC = "-2 Plug & Charge signatures / key deliveries exchanged with Josev's own functions"
REAL_PAYLOADS = "distinct real -2 / DIN payloads read typed and written back bit for bit"

#: The order of the summary lines.
KINDS = (ORACLE_DOCS, CORPUS_DOCS, PEER_MESSAGES, PEER_SESSIONS, PEER_TLS, PEER_CASES, LIVE_CAPTURES, REAL_CAPTURES,
         SCREENSHOTS, PEER_PNC, REAL_PAYLOADS)

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def record(kind: str, n: int = 1) -> None:
    """Adds ``n`` to the count of ``kind`` (one of :data:`KINDS`, or a new line of its own)."""
    with _lock:
        _counts[kind] += n


def counts() -> dict[str, int]:
    """The counts so far, every known kind included (zero when nothing of that kind ran)."""
    with _lock:
        out = {k: _counts.get(k, 0) for k in KINDS}
        out.update({k: v for k, v in _counts.items() if k not in out})
    return out


def strict() -> bool:
    """True in strict mode: a proof that cannot run fails instead of skipping."""
    return os.environ.get("ISO15118_STRICT", "").strip().lower() not in ("", "0", "no", "false")
