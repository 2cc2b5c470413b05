"""Real vehicles' DIN requests against our DIN SECC.

Every recording in ``fixtures/`` that negotiated DIN SPEC 70121: the EV's own requests, in their
recorded order, go to our SECC (SupportedAppProtocol included: the negotiation must pick DIN
from the car's own offer) with only the SessionID rewritten to the one our SECC gave.  Our SECC
must answer every one without a FAILED code or a protocol error, and end with SessionStop where
the car ended so.  Where a car polled because its charger said Ongoing, our faster SECC gets the
same polls after Finished (the table answers them again).  The Tesla Model 3 pads its
ContractAuthenticationReq with a zero byte after the EXI document: accepted, and counted.

(The full replay with the recorded values and a diff against the recorded charger is the
replay tool's; this proves the DIN SECC core takes what real cars send.)
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest

from iso15118.capture.analyzer import analyze
from iso15118.capture.events import EV_TO_EVSE
from iso15118.facts.namespaces import AppProtocol
from iso15118.messages import din
from iso15118.session.din.values import decode_din
from iso15118.session.events import ProtocolError, SendMessage
from iso15118.session.negotiation import SeccNegotiator
from iso15118.sim import make_evse

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = sorted(p for d in ("captures", "vehicles", "slac") for p in (ROOT / "fixtures" / d).glob("*.pcap"))


@cache
def din_requests(path: Path) -> list[tuple[str, bytes]]:
    """The EV's SupportedAppProtocol and DIN requests of a recording ([] when it is not DIN)."""
    events = [e for e in analyze(path) if e.kind == "v2g" and e.payload]
    if not any(e.schema == "din" for e in events):
        return []
    return [(e.name, bytes(e.payload)) for e in events if e.direction == EV_TO_EVSE and e.schema in ("sap", "din")]


DIN_RECORDINGS = [p for p in RECORDINGS if "din" in p.name.lower()]
"""By name (every DIN recording says so; reading all 27 to find them would double the time); each
test checks that the recording really negotiated DIN."""


def test_there_are_din_vehicles() -> None:
    assert len(DIN_RECORDINGS) >= 10, [p.name for p in DIN_RECORDINGS]


@pytest.mark.parametrize("path", DIN_RECORDINGS, ids=lambda p: p.name[:28])
def test_real_din_vehicle_requests_against_our_secc(path: Path) -> None:
    assert din_requests(path), f"{path.name} did not negotiate DIN"
    # served like the recorded charger: DIN only (a car that prefers -2, the EQE, would get -2 otherwise)
    secc = SeccNegotiator(make_evse("dc-bidi", cable_check_duration=0.0), protocols=(AppProtocol.DIN,),
                          clock=lambda: 1_800_000_000)
    now, answered, errors = 0.0, [], []
    stopped = False
    for name, payload in din_requests(path):
        now += 0.05
        if secc.core is not None:
            doc, pad = decode_din(payload)
            body = doc.body.body_element
            if not isinstance(body, din.SessionSetupReq):
                doc = dataclasses.replace(doc, header=dataclasses.replace(doc.header, session_id=secc.core.session_id))
            payload = din.encode(doc) + bytes(pad)
            stopped = isinstance(body, din.SessionStopReq)
        for ev in secc.receive(0x8001, payload, now):
            if isinstance(ev, SendMessage):
                answered.append(str(getattr(getattr(ev.message, "response_code", None), "value", "")))
            elif isinstance(ev, ProtocolError):
                errors.append((name, ev.code, ev.detail))
        if secc.ended:
            break
    assert secc.protocol is AppProtocol.DIN
    assert not errors, errors
    assert not [c for c in answered if c.startswith(("FAILED", "Failed"))], answered
    assert len(answered) >= 5
    if stopped:
        assert secc.ended and secc.ok, secc.end_reason
    if path.name.startswith("Tesla_Model_3"):
        assert secc.core.padded_frames > 0
