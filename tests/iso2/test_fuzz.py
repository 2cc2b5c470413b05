"""Bad input never breaks the -2 cores: mutated and random payloads give a typed ProtocolError (or a
FAILED answer) and end the session; nothing raises, nothing is left running."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from iso15118.facts.namespaces import Family
from iso15118.messages import iso2 as m2
from iso15118.session.events import ProtocolError, SendMessage, SessionEnded
from iso15118.session.iso2 import Iso2EvccConfig, Iso2EvccSession
from iso15118.session.iso2.parts import encode_message
from iso15118.sim import make_ev
from tests.iso2.helpers import run, secc_core, sent_payloads, wall


def _real_requests() -> list[bytes]:
    tr, _, _ = run(Family.DC)
    return [p for name, p in sent_payloads(tr) if name.endswith("Req")]


REQUESTS = _real_requests()


def _check_secc(payload: bytes) -> None:
    core = secc_core()
    core.receive(0x8001, encode_message(bytes(1), m2.SessionSetupReq(evcc_id=bytes(6))), 0.5)
    events = core.receive(0x8001, payload, 1.0)
    # either a valid answer (the mutation kept a legal request) or an error that ended the session
    if core.ended:
        assert any(isinstance(e, SessionEnded) for e in events)
        assert any(isinstance(e, ProtocolError) for e in events) or core.ok
    else:
        assert [e for e in events if isinstance(e, SendMessage)], events


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_requests_to_the_secc(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from(REQUESTS)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        base = base[: data.draw(st.integers(0, len(base)))]
    _check_secc(bytes(base))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_to_the_secc(payload: bytes) -> None:
    _check_secc(payload)


def test_random_bytes_to_the_evcc() -> None:
    rnd = random.Random(15118)
    for _ in range(200):
        core = Iso2EvccSession(make_ev("cybertruck-awd"), Iso2EvccConfig(family=Family.DC), clock=wall)
        core.negotiated(0.0)
        payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
        events = core.receive(0x8001, payload, 0.1)
        assert core.ended and not core.ok and any(isinstance(e, ProtocolError) for e in events)
