"""ISO 15118-20 sessions: sans-IO EVCC and SECC cores, the shared rules table, controllers,
an asyncio runner, CLI sub-commands and a benchmark.

    from iso15118.session import EvccSession, SeccSession, EvccConfig, SeccConfig
"""

from __future__ import annotations

from iso15118.session.evcc import EvccConfig, EvccSession
from iso15118.session.events import (
    Event,
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
    "EvccSession",
    "Family",
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
