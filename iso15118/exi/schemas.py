"""Which XSD files make up each schema key, and loading them with xmlschema."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

#: schema key -> (entry XSD relative to iso15118/schemas, human title)
SCHEMA_FILES: dict[str, tuple[str, str]] = {
    "sap": ("V2G_CI_AppProtocol.xsd", "SupportedAppProtocol (DIN 70121, ISO 15118-2 and -20)"),
    "common": ("iso15118_20/V2G_CI_CommonMessages.xsd", "ISO 15118-20 CommonMessages"),
    "ac": ("iso15118_20/V2G_CI_AC.xsd", "ISO 15118-20 AC"),
    "dc": ("iso15118_20/V2G_CI_DC.xsd", "ISO 15118-20 DC"),
    "acdp": ("iso15118_20/V2G_CI_ACDP.xsd", "ISO 15118-20 ACDP"),
    "wpt": ("iso15118_20/V2G_CI_WPT.xsd", "ISO 15118-20 WPT"),
    "xmldsig": ("xmldsig-core-schema.xsd", "W3C XML Signature"),
    "iso2": ("iso15118_2/V2G_CI_MsgDef.xsd", "ISO 15118-2"),
    "din": ("din_spec/V2G_CI_MsgDef.xsd", "DIN SPEC 70121"),
}

XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


def schema_path(key: str) -> Path:
    try:
        return SCHEMA_DIR / SCHEMA_FILES[key][0]
    except KeyError:
        raise ValueError(f"unknown schema key {key!r}; one of {', '.join(SCHEMA_FILES)}") from None


def schema_digest() -> str:
    """Hash of every vendored XSD: part of the grammar cache key."""
    h = hashlib.sha256()
    for p in sorted(SCHEMA_DIR.rglob("*.xsd")):
        h.update(p.relative_to(SCHEMA_DIR).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_xsd(key: str) -> Any:
    """The xmlschema object for a key. The DIN schemas import xmldsig from a
    location that does not exist beside them; it is resolved to the vendored copy
    with a location hint (the XSDs themselves stay unmodified)."""
    import xmlschema

    path = schema_path(key)
    if key == "din":
        locations = [(XMLDSIG_NS, (SCHEMA_DIR / "xmldsig-core-schema.xsd").as_uri())]
        return xmlschema.XMLSchema10(str(path), locations=locations)
    return xmlschema.XMLSchema10(str(path))
