"""The response codes: -20's ``responseCodeType`` (V2G_CI_CommonTypes.xsd), -2's and DIN SPEC
70121's (their V2G_CI_MsgDataTypes.xsd; DIN/-2 digest §2.4, §3.14) as the generated enums, and how
a code ends or continues a session (digest §5.1; DIN/-2 digest §5.4: every FAILED* code ends a -2
or DIN session too)."""

from __future__ import annotations

from iso15118.messages import ResponseCode
from iso15118.messages.din import ResponseCode as DinResponseCode
from iso15118.messages.iso2 import ResponseCode as ResponseCodeISO2

__all__ = ["DIN_RESPONSE_CODES", "RESPONSE_CODES", "RESPONSE_CODES_ISO2", "DinResponseCode", "ResponseCode",
           "ResponseCodeISO2", "is_failure_code"]

RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in ResponseCode)
"""Every value of ``responseCodeType``, in XSD order."""

RESPONSE_CODES_ISO2: tuple[str, ...] = tuple(c.value for c in ResponseCodeISO2)
"""Every value of the -2 ``responseCodeType``, in XSD order (26 values; DIN's differ, DIN/-2 digest §3.14)."""

DIN_RESPONSE_CODES: tuple[str, ...] = tuple(c.value for c in DinResponseCode)
"""Every value of DIN's ``responseCodeType``, in XSD order (DIN-only: ``FAILED_EVSEPresentVoltageToLow``,
``FAILED_WrongEnergyTransferType`` where -2 says ``...Mode``)."""


def is_failure_code(value: str) -> bool:
    """True for a FAILED* code of -20 or DIN (it ends the session, digest §5.1, DIN/-2 digest §2.4),
    and for SupportedAppProtocol's ``Failed_NoNegotiation``."""
    return value.startswith("FAILED") or value == "Failed_NoNegotiation"
