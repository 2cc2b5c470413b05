"""Fuzzing the decoder: mutated real messages and random bytes, every schema.
The only exception a decoder may raise on bad input is an ExiError; and it terminates
(bounded by the stream length and the codec's limits)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iso15118.exi import SCHEMA_KEYS, ExiError, codec

from .conftest import load_peer_messages

SEEDS = [bytes.fromhex(m["exi_hex"]) for m in load_peer_messages()] or [bytes.fromhex("80400040")]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        if op == 0 and len(data) > 1:
            del data[draw(st.integers(1, len(data) - 1)) :]
        elif op == 1:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 2:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


def _decode_all_ways(data: bytes, key: str, fragment: bool) -> None:
    try:
        codec(key).decode(data, fragment=fragment)
    except ExiError:
        pass


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mutated(), key=st.sampled_from(SCHEMA_KEYS), fragment=st.booleans())
def test_mutated_real_messages_give_only_typed_errors(data: bytes, key: str, fragment: bool) -> None:
    _decode_all_ways(data, key, fragment)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200), key=st.sampled_from(SCHEMA_KEYS), fragment=st.booleans())
def test_random_bodies_give_only_typed_errors(body: bytes, key: str, fragment: bool) -> None:
    _decode_all_ways(b"\x80" + body, key, fragment)
