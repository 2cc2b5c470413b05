"""V2GTP payload types and which EXI schema each carries (ISO 15118-20 Table 12; digest §1.2)."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "MAINSTREAM_FOR_SCHEMA",
    "NAMESPACE_TO_PAYLOAD_TYPE",
    "SCHEMA_OF_PAYLOAD",
    "PayloadType",
    "payload_type_for_namespace",
    "payload_type_for_schema_key",
    "schema_key_for",
]


class PayloadType(IntEnum):
    """V2GTP payload types of ISO 15118-20 (Table 12; digest §1.2).

    0x8001 is also the ISO 15118-2 / DIN SPEC 70121 "EXI encoded V2G message" type, which those
    protocols use for SupportedAppProtocol *and* every later message.
    """

    SAP = 0x8001
    MAINSTREAM = 0x8002
    AC_MAINSTREAM = 0x8003
    DC_MAINSTREAM = 0x8004
    ACDP_MAINSTREAM = 0x8005
    WPT_MAINSTREAM = 0x8006
    SCHEDULE_RENEGOTIATION = 0x8101
    METERING_CONFIRMATION = 0x8102
    ACDP_SYSTEM_STATUS = 0x8103
    PARKING_STATUS = 0x8104
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002
    SDP_RESPONSE_WIRELESS = 0x9003

    # -2 / DIN name for 0x8001 (an alias: PayloadType.EXI_ENCODED is PayloadType.SAP).
    EXI_ENCODED = 0x8001


SCHEMA_OF_PAYLOAD: dict[int, str] = {
    PayloadType.SAP: "sap",
    PayloadType.MAINSTREAM: "common",
    PayloadType.AC_MAINSTREAM: "ac",
    PayloadType.DC_MAINSTREAM: "dc",
    PayloadType.ACDP_MAINSTREAM: "acdp",
    PayloadType.WPT_MAINSTREAM: "wpt",
    PayloadType.SCHEDULE_RENEGOTIATION: "common",
    PayloadType.METERING_CONFIRMATION: "common",
    PayloadType.ACDP_SYSTEM_STATUS: "acdp",
    PayloadType.PARKING_STATUS: "common",
}
"""-20 payload type -> EXI codec schema key (``iso15118.exi.SCHEMA_KEYS``).  The side-stream types
(0x81xx) carry messages of the schema shown; that use is UNVERIFIED in the digest."""

MAINSTREAM_FOR_SCHEMA: dict[str, PayloadType] = {
    "sap": PayloadType.SAP,
    "common": PayloadType.MAINSTREAM,
    "ac": PayloadType.AC_MAINSTREAM,
    "dc": PayloadType.DC_MAINSTREAM,
    "acdp": PayloadType.ACDP_MAINSTREAM,
    "wpt": PayloadType.WPT_MAINSTREAM,
    # -2 and DIN carry everything in 0x8001.
    "iso2": PayloadType.EXI_ENCODED,
    "din": PayloadType.EXI_ENCODED,
}
"""Schema key -> the mainstream payload type that carries its messages."""

NAMESPACE_TO_PAYLOAD_TYPE: dict[str, PayloadType] = {
    "urn:iso:15118:2:2010:AppProtocol": PayloadType.SAP,
    "urn:iso:std:iso:15118:-20:CommonMessages": PayloadType.MAINSTREAM,
    "urn:iso:std:iso:15118:-20:AC": PayloadType.AC_MAINSTREAM,
    "urn:iso:std:iso:15118:-20:DC": PayloadType.DC_MAINSTREAM,
    "urn:iso:std:iso:15118:-20:ACDP": PayloadType.ACDP_MAINSTREAM,
    "urn:iso:std:iso:15118:-20:WPT": PayloadType.WPT_MAINSTREAM,
}
"""Namespace of a message's root element -> its payload type."""


def schema_key_for(payload_type: int) -> str | None:
    """The EXI codec schema key for a -20 payload type, or None (SDP, reserved, unknown).

    0x8001 maps to ``"sap"``; after a -2 / DIN SupportedAppProtocol negotiation the caller must
    use ``"iso2"`` / ``"din"`` instead, since those protocols send every message as 0x8001.
    """
    return SCHEMA_OF_PAYLOAD.get(payload_type)


def payload_type_for_schema_key(key: str) -> PayloadType:
    """The mainstream payload type that carries messages of schema ``key`` (inverse of
    ``schema_key_for``).  Raises KeyError for keys that have no payload type (e.g. 'xmldsig')."""
    return MAINSTREAM_FOR_SCHEMA[key]


def payload_type_for_namespace(namespace: str) -> PayloadType:
    """The payload type of a message whose root element is in the given -20 / SAP namespace.
    Raises KeyError for other namespaces (CommonTypes and xmldsig are never message roots)."""
    return NAMESPACE_TO_PAYLOAD_TYPE[namespace]
