"""The -20 response codes: the XSD's ``responseCodeType`` (V2G_CI_CommonTypes.xsd) as the
generated enum, and how a code ends or continues a session (digest §5.1)."""

from __future__ import annotations

from iso15118.messages import ResponseCode

__all__ = ["RESPONSE_CODES", "ResponseCode", "is_failure_code"]

RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in ResponseCode)
"""Every value of ``responseCodeType``, in XSD order."""


def is_failure_code(value: str) -> bool:
    """True for a FAILED* code (it ends the session, digest §5.1), and for SupportedAppProtocol's
    ``Failed_NoNegotiation``."""
    return value.startswith("FAILED") or value == "Failed_NoNegotiation"
