"""The response codes: -20's ``responseCodeType`` (V2G_CI_CommonTypes.xsd) and -2's
(V2G_CI_MsgDataTypes.xsd, ``ResponseCodeISO2``) as the generated enums, and how a code ends or
continues a session (digest §5.1; DIN/-2 digest §5.4: every FAILED* code ends a -2 session)."""

from __future__ import annotations

from iso15118.messages import ResponseCode
from iso15118.messages.iso2 import ResponseCode as ResponseCodeISO2

__all__ = ["RESPONSE_CODES", "RESPONSE_CODES_ISO2", "ResponseCode", "ResponseCodeISO2", "is_failure_code"]

RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in ResponseCode)
"""Every value of ``responseCodeType``, in XSD order."""

RESPONSE_CODES_ISO2: tuple[str, ...] = tuple(c.value for c in ResponseCodeISO2)
"""Every value of the -2 ``responseCodeType``, in XSD order (26 values; DIN's differ, DIN/-2 digest §3.14)."""


def is_failure_code(value: str) -> bool:
    """True for a FAILED* code (it ends the session, digest §5.1), and for SupportedAppProtocol's
    ``Failed_NoNegotiation``."""
    return value.startswith("FAILED") or value == "Failed_NoNegotiation"
