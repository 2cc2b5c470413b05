"""The EVCC's own faults end the session as a LocalFault, never as the peer's ProtocolError."""

from __future__ import annotations

import pytest

from iso15118.session import EvccFault, LocalFault, ProtocolError, SessionEnded, State
from iso15118.session.events import SendMessage
from tests.session.helpers import pair, run


def test_an_invalid_request_from_the_controller_is_a_local_fault() -> None:
    """An EVCCID longer than the schema allows: the EVCC cannot build SessionSetupReq."""
    ev, _, evcc, secc = pair()
    ev.evcc_id = "X" * 300
    tr = run(evcc, secc)
    events = tr.of("evcc")
    faults = [e for e in events if isinstance(e, LocalFault)]
    assert len(faults) == 1 and "evcc_id" in faults[0].detail
    assert not [e for e in events if isinstance(e, ProtocolError)]
    assert tr.sent("evcc") == ["supportedAppProtocolReq"]
    ended = tr.ended("evcc")
    assert isinstance(ended, SessionEnded) and not ended.ok and ended.reason.startswith("EVCC fault")


def test_a_request_the_rules_forbid_never_reaches_the_wire() -> None:
    _, _, evcc, _ = pair()
    evcc.start(0.0)
    evcc._pending = None  # noqa: SLF001 - force the core to build the next request now
    evcc.state = State.CHARGING  # supportedAppProtocolReq is illegal in the charge loop
    with pytest.raises(EvccFault):
        evcc._send(0.0, evcc._build_sap())  # noqa: SLF001
    events = evcc._guarded(0.0, evcc._send, 0.0, evcc._build_sap())  # noqa: SLF001
    assert [type(e) for e in events] == [LocalFault, SessionEnded]
    assert not any(isinstance(e, SendMessage) for e in events)
