"""Shared fixtures of the codec tests: real messages recorded from the independent
Josev implementation (../shared/peer/bench_messages.jsonl)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("ISO15118_SHARED", ROOT.parent / "shared"))


def load_peer_messages() -> list[dict]:
    path = shared_dir() / "peer" / "bench_messages.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def peer_messages() -> list[dict]:
    msgs = load_peer_messages()
    if not msgs:
        pytest.skip(f"recorded peer messages not found at {shared_dir() / 'peer' / 'bench_messages.jsonl'}")
    return msgs
