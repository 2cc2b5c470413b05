"""Shared set-ups of the -2 session tests: our cores on the simulators, in memory on a fake clock."""

from __future__ import annotations

from typing import Any

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.session.events import Event, MessageReceived, ProtocolError, SendMessage
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig, Iso2SeccSession
from iso15118.session.iso2 import parts as p
from iso15118.session.memory import Transcript, run_pair
from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
from iso15118.sim import make_ev, make_evse

WALL = 1_767_225_600.0  # the fake wall clock (header time stamps)


def wall() -> float:
    return WALL


def pair(
    family: Family,
    *,
    ev: Any = None,
    evse: Any = None,
    evcc: Iso2EvccConfig | None = None,
    secc: Iso2SeccConfig | None = None,
    ev_protocols: tuple[AppProtocol, ...] = (AppProtocol.ISO2,),
    secc_protocols: tuple[AppProtocol, ...] = (AppProtocol.ISO2,),
    now: float = 0.0,
) -> tuple[EvccNegotiator, SeccNegotiator]:
    """An EVCC and an SECC negotiator with our -2 cores behind them."""
    ev = ev if ev is not None else make_ev("cybertruck-awd", stop_after=3.0)
    evse = evse if evse is not None else make_evse("dc-bidi" if family is Family.DC else "wall-connector")
    e = EvccNegotiator(ev, protocols=ev_protocols, configs={AppProtocol.ISO2: evcc or Iso2EvccConfig(family=family)},
                       clock=wall)
    s = SeccNegotiator(evse, protocols=secc_protocols, configs={AppProtocol.ISO2: secc or Iso2SeccConfig()}, clock=wall,
                       now=now)
    return e, s


def run(family: Family, **kw: Any) -> tuple[Transcript, EvccNegotiator, SeccNegotiator]:
    hooks = kw.pop("hooks", None)
    start = kw.pop("start", 0.0)
    e, s = pair(family, now=start, **kw)
    return run_pair(e, s, hooks=hooks, start=start), e, s


def errors(tr: Transcript, side: str) -> list[ProtocolError]:
    return tr.of(side, ProtocolError)  # type: ignore[return-value]


def received(tr: Transcript, side: str) -> list[str]:
    return [e.name for e in tr.of(side, MessageReceived)]  # type: ignore[attr-defined]


def sent_payloads(tr: Transcript) -> list[tuple[str, bytes]]:
    """(element name, EXI bytes) of every -2 message both sides sent (SupportedAppProtocol excluded)."""
    out = []
    for _, _, ev in tr.entries:
        if isinstance(ev, SendMessage) and ev.name not in ("supportedAppProtocolReq", "supportedAppProtocolRes"):
            out.append((ev.name, ev.payload))
    return out


def secc_core(evse: Any = None, config: Iso2SeccConfig | None = None) -> Iso2SeccSession:
    """A bare -2 SECC core, as the negotiator hands it over (SessionSetupReq expected next)."""
    return Iso2SeccSession(evse if evse is not None else make_evse("dc-bidi"), config, now=0.0, clock=wall)


def feed(core: Iso2SeccSession, session_id: bytes, body: Any, now: float = 1.0) -> tuple[Any, list[Event]]:
    """Send ``body`` to the SECC core; returns (the typed response body or None, all events)."""
    events = core.receive(0x8001, p.encode_message(session_id, body), now)
    res = [e for e in events if isinstance(e, SendMessage)]
    return (p.decode_message(res[0].payload).body.body_element if res else None), events
