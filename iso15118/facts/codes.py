"""The response codes: -20's ``responseCodeType`` (V2G_CI_CommonTypes.xsd) and DIN SPEC 70121's
(V2G_CI_MsgDataTypes.xsd, DIN/-2 digest §2.4) as the generated enums, and how a code ends or
continues a session (digest §5.1; DIN: every FAILED* code ends it too)."""

from __future__ import annotations

from iso15118.messages import ResponseCode
from iso15118.messages.din import ResponseCode as DinResponseCode

__all__ = ["DIN_RESPONSE_CODES", "RESPONSE_CODES", "DinResponseCode", "ResponseCode", "is_failure_code"]

RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in ResponseCode)
"""Every value of ``responseCodeType``, in XSD order."""

DIN_RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in DinResponseCode)
"""Every value of DIN's ``responseCodeType``, in XSD order (DIN-only: ``FAILED_EVSEPresentVoltageToLow``,
``FAILED_WrongEnergyTransferType`` where -2 says ``...Mode``)."""


def is_failure_code(value: str) -> bool:
    """True for a FAILED* code of -20 or DIN (it ends the session, digest §5.1, DIN/-2 digest §2.4),
    and for SupportedAppProtocol's ``Failed_NoNegotiation``."""
    return value.startswith("FAILED") or value == "Failed_NoNegotiation"
