"""Shared fixtures of the codec tests: real messages recorded from the independent Josev
implementation (``fixtures/peer/bench_messages.jsonl``, see the README beside it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEER_MESSAGES_FILE = ROOT / "fixtures" / "peer" / "bench_messages.jsonl"


def load_peer_messages() -> list[dict]:
    if not PEER_MESSAGES_FILE.exists():
        return []
    return [json.loads(line) for line in PEER_MESSAGES_FILE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def peer_messages() -> list[dict]:
    msgs = load_peer_messages()
    if not msgs:
        pytest.fail(f"recorded peer messages missing: {PEER_MESSAGES_FILE} (part of the repository)")
    return msgs
