"""Schema-aware infoset comparison of two XML documents or fragments.

Two documents are infoset-equal when they have the same elements (by expanded name, in order),
the same attributes (by expanded name, any order) and the same typed values, where each value is
compared in the value space of its XSD type:

* boolean ``1`` == ``true``; decimal/integer ``1.50`` == ``1.5``, ``+5`` == ``5``, ``-0`` == ``0``;
* float/double by value (``1E0`` == ``1.0``, ``INF``, ``NaN`` == ``NaN``);
* hexBinary case-insensitively, base64Binary after removing line breaks / whitespace;
* whitespace-collapsing types (token, anyURI, ...) after collapsing; QName by (namespace, local);
* whitespace-only text in element-only content is ignored; namespace prefixes never matter;
  comments and processing instructions are ignored (EXI default fidelity drops them).

    >>> compare(xml_a, xml_b, "common").equal
    >>> assert_infoset_equal(xml_a, xml_b, "common")   # AssertionError with a readable diff

The XSD type of every element is found with xmlschema from the schema of the schema key
(``sap``, ``common``, ``ac``, ``dc``, ``acdp``, ``wpt``, ``xmldsig``, ``iso2``, ``din``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO_ROOT / "iso15118" / "schemas"
SCHEMA_FILES: dict[str, str] = {
    "sap": "V2G_CI_AppProtocol.xsd",
    "common": "iso15118_20/V2G_CI_CommonMessages.xsd",
    "ac": "iso15118_20/V2G_CI_AC.xsd",
    "dc": "iso15118_20/V2G_CI_DC.xsd",
    "acdp": "iso15118_20/V2G_CI_ACDP.xsd",
    "wpt": "iso15118_20/V2G_CI_WPT.xsd",
    "xmldsig": "xmldsig-core-schema.xsd",
    "iso2": "iso15118_2/V2G_CI_MsgDef.xsd",
    "din": "din_spec/V2G_CI_MsgDef.xsd",
}
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"


@cache
def load_schema(key: str) -> xmlschema.XMLSchema:
    """The xmlschema object of a schema key (cached)."""
    return xmlschema.XMLSchema(str(SCHEMA_DIR / SCHEMA_FILES[key]))


@cache
def _all_element_decls(key: str) -> dict[str, Any]:
    """Every element declaration of a schema key by expanded name (global first, then local)."""
    schema = load_schema(key)
    out: dict[str, Any] = dict(schema.maps.elements)
    for comp in schema.maps.iter_components():
        if comp.__class__.__name__ == "XsdElement" and comp.name and comp.name not in out:
            out[comp.name] = comp
    return out


def element_decl(key: str, tag: str) -> Any:
    """The declaration of a root element: a global one, or (EXI fragments) a local one of that name."""
    schema = load_schema(key)
    decl = schema.maps.elements.get(tag)
    if decl is not None:
        return decl
    return _all_element_decls(key).get(tag)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

_DECIMAL_FAMILY = {"decimal"}
_FLOAT_FAMILY = {"float", "double"}


def _primitive_name(xsd_type: Any) -> str | None:
    """Local name of the primitive built-in type an atomic simple type derives from."""
    t = xsd_type
    seen = 0
    while t is not None and seen < 50:
        seen += 1
        name = getattr(t, "name", None)
        if name and name.startswith("{%s}" % XS):
            local = name.split("}", 1)[1]
            if local in ("anySimpleType", "anyType", "anyAtomicType"):
                return "string"
            prim = getattr(t, "primitive_type", None)
            pname = getattr(prim, "name", None) if prim is not None else None
            if pname and pname.startswith("{%s}" % XS):
                return pname.split("}", 1)[1]
            return local
        prim = getattr(t, "primitive_type", None)
        if prim is not None and prim is not t and getattr(prim, "name", None):
            return prim.name.split("}", 1)[1]
        t = getattr(t, "base_type", None)
    return None


def _white_space(xsd_type: Any) -> str:
    """The whiteSpace facet in force for a simple type: preserve, replace or collapse."""
    ws = getattr(xsd_type, "white_space", None)
    if ws:
        return ws
    return "collapse"


def _collapse(text: str) -> str:
    return " ".join(text.split())


def normalize_value(text: str | None, xsd_type: Any, nsmap: dict[str | None, str] | None = None) -> Any:
    """Maps a lexical value of ``xsd_type`` to a comparable value-space representation."""
    text = text or ""
    if xsd_type is None:
        return ("?", text)
    if getattr(xsd_type, "is_list", lambda: False)():
        item = getattr(xsd_type, "item_type", None)
        return ("list", tuple(normalize_value(t, item, nsmap) for t in text.split()))
    if getattr(xsd_type, "is_union", lambda: False)():
        # Try the members in order; the first that accepts the value decides.
        for member in getattr(xsd_type, "member_types", []) or []:
            try:
                member.decode(_collapse(text))
            except Exception:  # noqa: BLE001 - xmlschema raises several types
                continue
            return normalize_value(text, member, nsmap)
        return ("str", _collapse(text))
    prim = _primitive_name(xsd_type)
    ws = _white_space(xsd_type)
    if prim == "string":
        if ws == "collapse":
            return ("str", _collapse(text))
        if ws == "replace":
            return ("str", re.sub(r"[\t\n\r]", " ", text))
        return ("str", text)
    t = text.strip()
    try:
        if prim == "boolean":
            return ("bool", t in ("1", "true"))
        if prim in _DECIMAL_FAMILY:
            d = Decimal(t)
            return ("dec", d.normalize() if d != 0 else Decimal(0))
        if prim in _FLOAT_FAMILY:
            if t == "NaN":
                return ("float", "NaN")
            if t in ("INF", "+INF"):
                return ("float", math.inf)
            if t == "-INF":
                return ("float", -math.inf)
            d = Decimal(t)
            # EXI floats carry a decimal mantissa and exponent: compare exactly as decimals.
            return ("float", d.normalize() if d != 0 else Decimal(0))
        if prim == "hexBinary":
            return ("bin", bytes.fromhex(t))
        if prim == "base64Binary":
            return ("bin", base64.b64decode("".join(t.split()), validate=True))
        if prim == "QName":
            prefix, _, local = t.rpartition(":")
            ns = (nsmap or {}).get(prefix or None)
            return ("qname", ns, local)
    except (InvalidOperation, ValueError, binascii.Error):
        return ("invalid", prim, t)
    return (prim or "str", _collapse(text))


# ---------------------------------------------------------------------------------------------
# Schema lookups
# ---------------------------------------------------------------------------------------------

def _child_decls(xsd_type: Any) -> dict[str, Any]:
    """Element declarations (by expanded name) reachable in the content model of a complex type."""
    out: dict[str, Any] = {}
    content = getattr(xsd_type, "content", None)
    if content is None or not hasattr(content, "iter_elements"):
        return out
    for decl in content.iter_elements():
        name = getattr(decl, "name", None)
        if name and name not in out:
            out[name] = decl
    return out


@dataclass
class _Ctx:
    schema: xmlschema.XMLSchema
    diffs: list[str] = field(default_factory=list)
    limit: int = 40


def _resolve_xsi_type(el: etree._Element, xsd_type: Any, schema: xmlschema.XMLSchema) -> Any:
    value = el.get(f"{{{XSI}}}type")
    if not value:
        return xsd_type
    prefix, _, local = value.strip().rpartition(":")
    ns = el.nsmap.get(prefix or None, "")
    found = schema.maps.types.get(f"{{{ns}}}{local}" if ns else local)
    return found if found is not None else xsd_type


def _element_type(decl: Any) -> Any:
    return getattr(decl, "type", None) if decl is not None else None


def _lookup_child(name: str, decls: dict[str, Any], schema: xmlschema.XMLSchema) -> Any:
    if name in decls:
        return decls[name]
    # Substitution group member or wildcard content: a global element.
    return schema.maps.elements.get(name)


def _label(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _text_chunks(el: etree._Element) -> list[str]:
    """Character content of mixed content, one chunk before and after each child."""
    chunks = [el.text or ""]
    for c in el:
        chunks.append(c.tail or "")
    return chunks


def _compare_attrs(a: etree._Element, b: etree._Element, xsd_type: Any, path: str, ctx: _Ctx) -> None:
    attr_decls = getattr(xsd_type, "attributes", None) or {}

    def attrs(el: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in el.attrib.items():
            if k == f"{{{XSI}}}type":
                prefix, _, local = v.strip().rpartition(":")
                out[k] = ("qname", el.nsmap.get(prefix or None), local)
                continue
            if k.startswith(f"{{{XSI}}}"):
                out[k] = ("str", v.strip())
                continue
            decl = None
            try:
                decl = attr_decls.get(k) if hasattr(attr_decls, "get") else None
            except Exception:  # noqa: BLE001
                decl = None
            out[k] = normalize_value(v, getattr(decl, "type", None) if decl is not None else None, el.nsmap) \
                if decl is not None else ("str", v)
        return out

    aa, bb = attrs(a), attrs(b)
    for k in sorted(set(aa) | set(bb)):
        if aa.get(k) != bb.get(k):
            ctx.diffs.append(f"{path}/@{_label(k)}: {a.get(k)!r} != {b.get(k)!r}")


def _compare(a: etree._Element, b: etree._Element, decl: Any, path: str, ctx: _Ctx) -> None:
    if len(ctx.diffs) >= ctx.limit:
        return
    if a.tag != b.tag:
        ctx.diffs.append(f"{path}: element {a.tag} != {b.tag}")
        return
    xsd_type = _resolve_xsi_type(a, _element_type(decl), ctx.schema)
    _compare_attrs(a, b, xsd_type, path, ctx)
    simple = xsd_type is not None and (
        getattr(xsd_type, "is_simple", lambda: False)() or getattr(xsd_type, "has_simple_content", lambda: False)()
    )
    ca, cb = _elements(a), _elements(b)
    if simple and not ca and not cb:
        st = xsd_type if xsd_type.is_simple() else getattr(xsd_type, "content", None)
        va = normalize_value(a.text, st, a.nsmap)
        vb = normalize_value(b.text, st, b.nsmap)
        if va != vb:
            ctx.diffs.append(f"{path}: value {(a.text or '')[:80]!r} != {(b.text or '')[:80]!r}")
        return
    mixed = bool(getattr(xsd_type, "mixed", False)) or xsd_type is None
    if mixed:
        ta = [c for c in (t.strip() for t in _text_chunks(a)) if c] if xsd_type is None else [
            t for t in _text_chunks(a) if t.strip()]
        tb = [c for c in (t.strip() for t in _text_chunks(b)) if c] if xsd_type is None else [
            t for t in _text_chunks(b) if t.strip()]
        if ta != tb:
            ctx.diffs.append(f"{path}: mixed text {ta!r} != {tb!r}")
    else:
        for el, side in ((a, "left"), (b, "right")):
            stray = [t for t in _text_chunks(el) if t.strip()]
            if stray:
                ctx.diffs.append(f"{path}: text in element-only content on the {side}: {stray[0][:60]!r}")
    if len(ca) != len(cb) or [c.tag for c in ca] != [c.tag for c in cb]:
        la = [_label(c.tag) for c in ca]
        lb = [_label(c.tag) for c in cb]
        ctx.diffs.append(f"{path}: children {la} != {lb}")
    decls = _child_decls(xsd_type)
    counts: dict[str, int] = {}
    for x, y in zip(ca, cb):
        n = counts[x.tag] = counts.get(x.tag, 0) + 1
        child_path = f"{path}/{_label(x.tag)}" + (f"[{n}]" if n > 1 else "")
        if x.tag != y.tag:
            ctx.diffs.append(f"{child_path}: element {_label(x.tag)} != {_label(y.tag)}")
            continue
        _compare(x, y, _lookup_child(x.tag, decls, ctx.schema), child_path, ctx)


@dataclass
class Comparison:
    """Outcome of :func:`compare`: ``equal`` and the list of differences (paths and values)."""

    equal: bool
    diffs: list[str]

    def report(self) -> str:
        """A readable multi-line diff."""
        if self.equal:
            return "infosets are equal"
        return "infosets differ:\n  " + "\n  ".join(self.diffs)


def _parse(doc: bytes | str | etree._Element) -> etree._Element:
    if isinstance(doc, etree._Element):
        return doc
    if isinstance(doc, str):
        doc = doc.encode("utf-8")
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False)
    return etree.fromstring(doc, parser)


def compare(left: bytes | str | etree._Element, right: bytes | str | etree._Element, key: str,
            limit: int = 40) -> Comparison:
    """Compares two documents (or fragment roots) of schema ``key`` by infoset and typed value."""
    schema = load_schema(key)
    a, b = _parse(left), _parse(right)
    ctx = _Ctx(schema=schema, limit=limit)
    decl = element_decl(key, a.tag)
    _compare(a, b, decl, "/" + _label(a.tag), ctx)
    return Comparison(equal=not ctx.diffs, diffs=ctx.diffs)


def infoset_equal(left: bytes | str, right: bytes | str, key: str) -> bool:
    """True when the two documents are infoset-equal under schema ``key``."""
    return compare(left, right, key).equal


def assert_infoset_equal(left: bytes | str, right: bytes | str, key: str, what: str = "") -> None:
    """Raises AssertionError with a readable diff when the documents differ."""
    result = compare(left, right, key)
    if not result.equal:
        raise AssertionError((what + ": " if what else "") + result.report())
