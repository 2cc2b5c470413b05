"""Class <-> Element tree round trips for every generated class, with generated instances.

Also: the trees of whole messages serialise (by a local, codec-independent writer) to XML that
the official XSDs accept, which checks element order, namespaces and attribute forms.
"""

from __future__ import annotations

import base64
from functools import cache

import pytest
import xmlschema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lxml import etree

import iso15118.messages as M
from iso15118.exi.tree import Element
from tests.messages.strategies import for_class

SETTINGS = settings(
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

CLASSES = list(M.ALL_CLASSES)


def _default_name(klass: type[M.MessageBase]) -> tuple[str, str]:
    if klass.ELEMENT is not None:
        return klass.ELEMENT
    return ("urn:example:test", "Holder")


@pytest.mark.parametrize("klass", CLASSES, ids=lambda k: k.__name__)
@SETTINGS
@given(data=st.data())
def test_tree_round_trip(klass: type[M.MessageBase], data: st.DataObject) -> None:
    obj = data.draw(for_class(klass))
    ns, name = _default_name(klass)
    tree = obj.to_tree(name, ns)
    assert (tree.ns, tree.name) == (ns, name)
    back = klass.from_tree(tree)
    assert type(back) is klass
    assert back == obj
    assert back.to_tree(name, ns) == tree
    obj.validate()


# --- XSD validity of whole messages, via a small local tree -> XML writer ------------------

SCHEMA_FILES = {
    "sap": "V2G_CI_AppProtocol.xsd",
    "common": "iso15118_20/V2G_CI_CommonMessages.xsd",
    "ac": "iso15118_20/V2G_CI_AC.xsd",
    "dc": "iso15118_20/V2G_CI_DC.xsd",
    "acdp": "iso15118_20/V2G_CI_ACDP.xsd",
    "wpt": "iso15118_20/V2G_CI_WPT.xsd",
}


@cache
def _schema(key: str) -> xmlschema.XMLSchema10:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "iso15118" / "schemas"
    return xmlschema.XMLSchema10(str(root / SCHEMA_FILES[key]))


@cache
def _hex_names() -> frozenset[tuple[str, str]]:
    """Elements whose bytes are hexBinary (all other bytes are base64Binary)."""
    out = set()
    for klass in M.ALL_CLASSES:
        for spec in klass.FIELDS:
            if spec.facets and spec.facets.get("hex"):
                out.add((spec.ns, spec.name))
    return frozenset(out)


def _lexical(el: Element, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        if (el.ns, el.name) in _hex_names():
            return value.hex().upper()
        return base64.b64encode(value).decode()
    return str(value)


def tree_to_lxml(el: Element) -> etree._Element:
    tag = f"{{{el.ns}}}{el.name}" if el.ns else el.name
    node = etree.Element(tag, {k: _lexical(el, v) for k, v in el.attrs.items()})
    if el.value is not None:
        node.text = _lexical(el, el.value)
    last = None
    for child in el.children:
        if isinstance(child, str):
            if last is None:
                node.text = (node.text or "") + child
            else:
                last.tail = (last.tail or "") + child
            continue
        last = tree_to_lxml(child)
        node.append(last)
    return node


MESSAGES = [
    k
    for k in M.ALL_CLASSES
    if k.ELEMENT is not None
    and "ELEMENT" in k.__dict__
    and M.SCHEMA_KEY_BY_NAMESPACE[k.ELEMENT[0]] in SCHEMA_FILES
    and k.ELEMENT[1].endswith(("Req", "Res"))
]


def test_every_message_is_covered() -> None:
    assert len(MESSAGES) == 62  # 13 CM pairs, 2 AC, 5 DC, 4 ACDP, 6 WPT pairs, SAP Req/Res


@pytest.mark.parametrize("klass", MESSAGES, ids=lambda k: k.__name__)
@settings(
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_message_xml_is_schema_valid(klass: type[M.MessageBase], data: st.DataObject) -> None:
    obj = data.draw(for_class(klass, wildcards=False))
    xml = tree_to_lxml(obj.to_tree())
    schema = _schema(M.schema_key_of(obj))
    errors = list(schema.iter_errors(etree.tostring(xml)))
    assert not errors, f"{klass.__name__}: {errors[0]}"
