"""ISO 15118-20 sessions: sans-IO EVCC and SECC cores, the shared rules table, controllers,
and (``session.runner``, ``session.tlsconf``) the asyncio and TLS drivers of the cores.

    from iso15118.session import EvccSession, SeccSession, EvccConfig, SeccConfig
"""

from __future__ import annotations

from iso15118.session.evcc import EvccConfig, EvccFault, EvccSession
from iso15118.session.events import (
    Event,
    LocalFault,
    MessageReceived,
    NotificationReceived,
    PowerChanged,
    ProtocolError,
    SendMessage,
    SessionEnded,
    StateChanged,
)
from iso15118.session.rules import Family, State
from iso15118.session.secc import SeccConfig, SeccSession, SessionStore
from iso15118.session.services import ControlMode, EnergyService

__all__ = [
    "ControlMode",
    "EnergyService",
    "Event",
    "EvccConfig",
    "EvccFault",
    "EvccSession",
    "Family",
    "LocalFault",
    "MessageReceived",
    "NotificationReceived",
    "PowerChanged",
    "ProtocolError",
    "SendMessage",
    "SeccConfig",
    "SeccSession",
    "SessionEnded",
    "SessionStore",
    "State",
    "StateChanged",
]
