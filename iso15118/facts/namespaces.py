"""SupportedAppProtocol namespaces: which protocol and which energy family each one selects
(digest §2; DIN / -2 digest §1)."""

from __future__ import annotations

import enum

__all__ = [
    "FAMILY_OF_NAMESPACE",
    "NAMESPACE",
    "NS_20_PREFIX",
    "NS_AC",
    "NS_DC",
    "NS_DIN",
    "NS_ISO2",
    "PROTOCOL_LABELS",
    "SESSION_SCHEMAS",
    "AppProtocol",
    "Family",
    "protocol_for_namespace",
]


class Family(str, enum.Enum):
    """Energy family fixed by the SupportedAppProtocol namespace (digest §2)."""

    AC = "AC"
    DC = "DC"


NS_20_PREFIX = "urn:iso:std:iso:15118:-20:"
NS_AC = "urn:iso:std:iso:15118:-20:AC"
NS_DC = "urn:iso:std:iso:15118:-20:DC"

NAMESPACE: dict[Family, str] = {Family.AC: NS_AC, Family.DC: NS_DC}
"""The namespace an EV offers (and a charger accepts) for each energy family."""
FAMILY_OF_NAMESPACE: dict[str, Family] = {ns: fam for fam, ns in NAMESPACE.items()}

SESSION_SCHEMAS: tuple[str, ...] = ("sap", "common", "ac", "dc")
"""The EXI schema keys an AC or DC session of this stack uses (ACDP and WPT are not served):
a payload of another schema is not part of the session."""

class AppProtocol(str, enum.Enum):
    """A session protocol an EV and a charger can agree on in SupportedAppProtocol; the value is the
    short label the capture decoder, the timing table and the reports use."""

    DIN = "din"
    ISO2 = "iso2"
    ISO20 = "-20"

    @property
    def label(self) -> str:
        return PROTOCOL_LABELS[self.value]


NS_DIN = "urn:din:70121:2012:MsgDef"
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"

_PROTOCOLS = {
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
    "urn:iso:15118:2:2010:MsgDef": "iso2-2010",
}

PROTOCOL_LABELS = {
    "din": "DIN SPEC 70121",
    "iso2": "ISO 15118-2",
    "iso2-2010": "ISO 15118-2 (2010 draft, decoded as -2:2013)",
    "-20": "ISO 15118-20",
}


def protocol_for_namespace(ns: str) -> str | None:
    """``din`` / ``iso2`` / ``iso2-2010`` / ``-20`` for an AppProtocol namespace, None when unknown."""
    if ns in _PROTOCOLS:
        return _PROTOCOLS[ns]
    if ns.startswith(NS_20_PREFIX):
        return "-20"
    return None
