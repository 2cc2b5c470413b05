"""XML text <-> :class:`~iso15118.exi.tree.Element` trees (lxml).

Parsing yields *lexical* (string) values; the codec's grammar walk turns them
into typed values.  Writing formats typed values in their canonical lexical form
using the datatypes the grammar walk recorded.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from iso15118.exi.errors import ExiEncodeError
from iso15118.exi.tree import Element

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True,
                          huge_tree=False)

PREFIXES = {
    "urn:iso:std:iso:15118:-20:CommonMessages": "cm",
    "urn:iso:std:iso:15118:-20:CommonTypes": "ct",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:ACDP": "acdp",
    "urn:iso:std:iso:15118:-20:WPT": "wpt",
    "http://www.w3.org/2000/09/xmldsig#": "ds",
    "urn:iso:15118:2:2010:AppProtocol": "app",
    "urn:iso:15118:2:2013:MsgDef": "v2g",
    "urn:iso:15118:2:2013:MsgHeader": "hd",
    "urn:iso:15118:2:2013:MsgBody": "body",
    "urn:iso:15118:2:2013:MsgDataTypes": "dt",
    "urn:din:70121:2012:MsgDef": "v2g",
    "urn:din:70121:2012:MsgHeader": "hd",
    "urn:din:70121:2012:MsgBody": "body",
    "urn:din:70121:2012:MsgDataTypes": "dt",
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
}


_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _convert(node: Any) -> Element:
    qn = etree.QName(node)
    el = Element(qn.namespace or "", qn.localname)
    for k, v in node.attrib.items():
        if k == _XSI_TYPE:
            # a QName value: resolve its prefix now, while the namespace map is at hand
            prefix, _, local = v.strip().rpartition(":")
            uri = node.nsmap.get(prefix or None)
            v = f"{{{uri}}}{local}" if uri else v.strip()
        el.attrs[k] = v
    children: list[Any] = []
    if node.text is not None:
        children.append(node.text)
    for c in node:
        if not isinstance(c.tag, str):
            if c.tail is not None:
                children.append(c.tail)
            continue
        children.append(_convert(c))
        if c.tail is not None:
            children.append(c.tail)
    if any(isinstance(c, Element) for c in children):
        el.children = children
    else:
        el.value = "".join(children) if children else None
    return el


def parse_xml(xml: bytes | str, fragment: bool = False) -> Any:
    """XML text -> Element (or a list of Elements for a fragment with several roots)."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8") if not xml.lstrip().startswith("<?xml") else xml.split("?>", 1)[1].encode("utf-8")
    try:
        if fragment:
            root = etree.fromstring(b"<fragment-wrapper>" + _strip_decl(xml) + b"</fragment-wrapper>", _PARSER)
            return [_convert(c) for c in root if isinstance(c.tag, str)]
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ExiEncodeError(f"not well-formed XML: {exc}") from None
    return _convert(root)


def _strip_decl(xml: bytes) -> bytes:
    s = xml.lstrip()
    if s.startswith(b"<?xml"):
        return s.split(b"?>", 1)[1]
    return s


def write_xml(root: Any, formats: dict[Any, Any], fragment: bool = False) -> bytes:
    roots = root if isinstance(root, list) else [root]
    out = []
    for r in roots:
        unqualified = any(not e.ns for e in r.iter())
        # a default namespace would capture unqualified child elements: use prefixes then
        nsmap: dict[str | None, str] = {None: r.ns} if r.ns and not unqualified else {}
        used = {e.ns for e in r.iter() if e.ns and (e.ns != r.ns or unqualified)}
        for e in r.iter():
            for k, v in e.attrs.items():
                if k.startswith("{"):
                    used.add(k[1:].split("}")[0])
                if k == _XSI_TYPE and isinstance(v, str) and v.startswith("{"):
                    used.add(v[1:].split("}")[0])
        n = 0
        for uri in sorted(used):
            p = PREFIXES.get(uri)
            if p is None or p in nsmap:
                p = f"ns{n}"
                n += 1
            nsmap[p] = uri
        prefix_of = {u: p for p, u in nsmap.items()}
        out.append(etree.tostring(_build(r, formats, nsmap, prefix_of), encoding="utf-8"))
    body = b"".join(out)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + body if not fragment else body


def _build(el: Element, formats: dict[Any, Any], nsmap: dict[Any, Any] | None, prefix_of: dict[Any, Any]) -> Any:
    node = etree.Element(el.tag, nsmap=nsmap) if nsmap is not None else etree.Element(el.tag)
    vdt, adts = formats.get(id(el), (None, None))
    for k, v in el.attrs.items():
        if k == _XSI_TYPE:
            uri, _, local = v[1:].partition("}") if v.startswith("{") else ("", "", v)
            prefix = prefix_of.get(uri) if uri else None
            node.set(k, f"{prefix}:{local}" if prefix else local)
            continue
        dt = adts.get(k) if adts else None
        node.set(k, dt.format(v) if dt is not None else _plain(v))
    if vdt is not None:
        if el.value is not None:
            node.text = vdt.format(el.value)
    elif el.children:
        last = None
        for c in el.children:
            if isinstance(c, str):
                if last is None:
                    node.text = (node.text or "") + c
                else:
                    last.tail = (last.tail or "") + c
            else:
                last = _build(c, formats, None, prefix_of)
                node.append(last)
    return node


def _plain(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
