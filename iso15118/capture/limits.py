"""Protocol facts the decoder needs, read from their one home (``iso15118.facts``): the
negotiated protocol from the SupportedAppProtocol namespace, the schema for each payload, and the
timing limits responses are checked against.

Timing limits (seconds, ``iso15118.facts.timing``; the same values the session cores use):

* ``timeout``: V2G_EVCC_Msg_Timeout, how long the EV waits for the response.
* ``performance``: V2G_SECC_Msg_Performance_Time, how long the charger may take.
* SECC sequence timeout: 60 s between a response and the next request (digest §6.2).
"""

from __future__ import annotations

from iso15118.facts.namespaces import PROTOCOL_LABELS, protocol_for_namespace
from iso15118.facts.payload import PayloadType, schema_key_for
from iso15118.facts.timing import TIMERS, loop_limit, message_timing

__all__ = [
    "COMMUNICATION_SETUP_TIMEOUT",
    "PROTOCOL_LABELS",
    "SECC_SEQUENCE_TIMEOUT",
    "loop_limit",
    "protocol_for_namespace",
    "schema_for",
    "timing_limits",
]

SECC_SEQUENCE_TIMEOUT = TIMERS.secc_sequence
COMMUNICATION_SETUP_TIMEOUT = TIMERS.communication_setup
"""V2G_EVCC_CommunicationSetup_Timeout: plug-in to SessionSetupRes (digest §6.2).  The plug-in is
not in a capture; the decoder measures from the first CM_SLAC_PARAM.REQ, a lower bound."""


def schema_for(payload_type: int, protocol: str | None, sap_done: bool) -> str | None:
    """The EXI schema key for a payload, given the negotiated protocol (None before / unknown).

    0x8001 is SupportedAppProtocol until the negotiation is done, and after it every -2 / DIN
    message; for -20 it stays SupportedAppProtocol.
    """
    if payload_type == PayloadType.SAP:
        if not sap_done or protocol in (None, "-20"):
            return "sap"
        return "din" if protocol == "din" else "iso2"
    return schema_key_for(payload_type)


def timing_limits(protocol: str | None, request: str) -> tuple[float, float, str]:
    """(EVCC timeout, SECC performance time, source note) for a request name without ``Req``."""
    t = message_timing(protocol, request)
    return t.evcc_timeout, t.secc_performance, t.source
