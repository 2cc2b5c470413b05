"""xsi:type casts and xsi:nil in open content, against the reference codec (EXIficient) itself.

The schema-valid documents of this kind are in the corpus (``fixtures/exi/xmldsig/Object_Cast*``,
``SignedInfo_TransformCasts``, ``SessionStopReq_SignedObjectCasts``); here are the ones a schema
validator refuses but real peers may still send (xsi:nil on elements that are not nillable, casts
to types no schema defines) and the whitespace rules of open content. Every case is encoded by the
oracle in one JVM; our encoder must give the same bytes and our decoder must read the oracle's bytes
back to a tree that encodes to them again.
"""

from __future__ import annotations

import pytest

from iso15118.exi import ExiEncodeError, codec
from iso15118.exi.tree import Element
from tests.oracle import Oracle, oracle  # noqa: F401  (session fixture)

DS = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
NSD = f'xmlns:xsi="{XSI_NS}" xmlns:xs="{XSD_NS}" xmlns:x="urn:x"'
CM = "urn:iso:std:iso:15118:-20:CommonMessages"
CT = "urn:iso:std:iso:15118:-20:CommonTypes"


def obj(inner: str, attrs: str = "") -> str:
    return f'<Object xmlns="{DS}" {NSD}{attrs}>{inner}</Object>'


def header_object(inner: str) -> str:
    return (f'<SessionStopReq xmlns="{CM}" xmlns:ct="{CT}" xmlns:ds="{DS}" {NSD}><ct:Header>'
            f'<ct:SessionID>0102030405060708</ct:SessionID><ct:TimeStamp>5</ct:TimeStamp>'
            f'<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="urn:c"/><ds:SignatureMethod Algorithm="urn:s"/>'
            f'<ds:Reference URI="#a"><ds:DigestMethod Algorithm="urn:d"/><ds:DigestValue>AAEC</ds:DigestValue></ds:Reference>'
            f'</ds:SignedInfo><ds:SignatureValue>AAEC</ds:SignatureValue><ds:Object>{inner}</ds:Object></ds:Signature>'
            f'</ct:Header><ChargingSession>Terminate</ChargingSession></SessionStopReq>')


CASES: list[tuple[str, str, bool, str]] = [
    # id, key, fragment, xml
    ("nil-undeclared-implicit", "xmldsig", False, obj('<x:v xsi:nil="true"/>')),
    ("nil-false-undeclared", "xmldsig", False, obj('<x:v xsi:nil="false">t</x:v>')),
    ("nil-explicit-anyType", "xmldsig", False, obj('<x:v xsi:type="xs:anyType" xsi:nil="true" a="b"/>')),
    ("nil-false-explicit-anyType", "xmldsig", False, obj('<x:v xsi:type="xs:anyType" xsi:nil="false">t</x:v>')),
    ("nil-KeyInfoType", "xmldsig", False, obj('<x:v xsi:type="KeyInfoType" xsi:nil="true"/>')),
    ("nil-KeyInfoType-attr", "xmldsig", False, obj('<x:v xsi:type="KeyInfoType" Id="k1" xsi:nil="true"/>')),
    ("nil-int", "xmldsig", False, obj('<x:v xsi:type="xs:int" xsi:nil="true"/>')),
    ("nil-declared", "xmldsig", False, obj('<KeyName xsi:nil="true"/>')),
    ("nil-declared-cast", "xmldsig", False, obj('<KeyName xsi:type="xs:string" xsi:nil="true"/>')),
    ("nil-false-declared", "xmldsig", False, obj('<KeyName xsi:nil="false">k</KeyName>')),
    ("nil-declared-attrs", "xmldsig", False, obj('<Reference URI="#a" Id="r" xsi:nil="true"/>')),
    ("nil-ct-type", "common", False, header_object('<ct:Foo xsi:type="ct:RationalNumberType" xsi:nil="true"/>')),
    ("cast-int-to-string-elem", "xmldsig", False, obj('<KeyName xsi:type="xs:int">5</KeyName>')),
    ("unknown-type-undeclared", "xmldsig", False, obj('<x:v xsi:type="x:Unknown">t</x:v>')),
    ("unknown-type-no-ns", "xmldsig", False, obj('<x:v xsi:type="Nope">t</x:v><x:v xsi:type="Nope">u</x:v>')),
    ("unknown-type-declared", "xmldsig", False, obj('<KeyInfo xsi:type="x:Nope" Id="x"><KeyName>k</KeyName></KeyInfo>')),
    ("unknown-type-nil", "xmldsig", False, obj('<x:v xsi:type="x:Nope" xsi:nil="true"/>')),
    ("unknown-type-declared-nil", "xmldsig", False, obj('<KeyName xsi:type="x:Nope" xsi:nil="true"/>')),
    ("repeated-qname", "xmldsig", False, obj('<x:v xsi:type="xs:int">5</x:v><x:v xsi:type="xs:int">6</x:v><x:v>7</x:v>')),
    ("nested-casts", "xmldsig", False,
     obj('<x:v xsi:type="KeyInfoType"><x:w xsi:type="xs:int">7</x:w><KeyName>k</KeyName>'
         '<x:w xsi:type="KeyValueType"><x:z xsi:type="xs:short">-3</x:z></x:w></x:v>')),
    ("ws-between-children", "xmldsig", False, obj('\n  <KeyName>k</KeyName>\n  <KeyName>k</KeyName>\n')),
    ("ws-and-text", "xmldsig", False, obj(' a <KeyName>k</KeyName>\n  ')),
    ("ws-in-undeclared", "xmldsig", False, obj('<x:v>\n <x:w>  </x:w>\n</x:v>')),
    ("ws-in-cast-string", "xmldsig", False, obj('<x:v xsi:type="xs:string">  </x:v>')),
    ("ws-in-cast-complex", "xmldsig", False, obj('<x:v xsi:type="ObjectType">\n <x:w/>\n</x:v>')),
    ("ws-only", "xmldsig", False, obj('\n')),
    *[(f"date-time-{i}", "xmldsig", False, obj(f'<x:v xsi:type="xs:{t}">{v}</x:v>')) for i, (t, v) in enumerate([
        ("dateTime", "2026-12-03T01:00:00Z"), ("dateTime", "1999-01-31T23:59:60.0500+14:00"),
        ("dateTime", "-0044-03-15T12:00:00"), ("dateTime", "2026-12-03T01:00:00.120-05:30"),
        ("dateTime", "2026-12-31T24:00:00"), ("dateTime", "0000-01-01T00:00:00"), ("date", "2026-02-28-01:00"),
        ("gYearMonth", "2026-12"), ("gYear", "2026Z"), ("gMonthDay", "--12-24"), ("gMonth", "--07"),
        ("gDay", "---31+01:00"), ("time", "24:00:00+01:00"), ("time", "08:15:30.5Z")])],
    ("date-declared", "xmldsig", False, obj('<KeyName xsi:type="xs:date">2026-01-01</KeyName>')),
    ("header-object-int", "common", False, header_object('<ct:Foo xsi:type="xs:int">42</ct:Foo>'
                                                         '<ct:Foo xsi:type="ct:RationalNumberType"><ct:Exponent>3</ct:Exponent>'
                                                         '<ct:Value>-7</ct:Value></ct:Foo>')),
]


@pytest.fixture(scope="module")
def reference(oracle: Oracle) -> dict[str, bytes]:  # noqa: F811
    """The oracle's bytes for every case, in one JVM."""
    results = oracle.encode_many([(k, x.encode(), f) for _, k, f, x in CASES])
    out = {}
    for (name, _, _, _), r in zip(CASES, results):
        out[name] = r.unwrap()
    return out


@pytest.mark.parametrize("name, key, fragment, xml", CASES, ids=[c[0] for c in CASES])
def test_cast_matches_reference(reference: dict[str, bytes], name: str, key: str, fragment: bool, xml: str) -> None:
    ref = reference[name]
    ours = codec(key).encode_xml(xml, fragment=fragment)
    assert ours == ref, f"ours {ours.hex()} != reference {ref.hex()}"
    tree = codec(key).decode(ref, fragment=fragment)
    assert codec(key).encode(tree, fragment=fragment) == ref
    assert codec(key).encode_xml(codec(key).decode_xml(ref, fragment=fragment), fragment=fragment) == ref


def test_cast_int_decodes_typed(reference: dict[str, bytes]) -> None:
    """The reference's bytes for an xs:int cast decode to an int with the cast kept."""
    tree = codec("xmldsig").decode(reference["repeated-qname"])
    v1, v2, v3 = tree.children
    assert isinstance(v1, Element) and isinstance(v2, Element) and isinstance(v3, Element)
    assert (v1.ns, v1.name, v1.value, v1.attrs) == ("urn:x", "v", 5, {f"{{{XSI_NS}}}type": f"{{{XSD_NS}}}int"})
    assert v2.value == 6 and type(v2.value) is int
    assert v3.children == ["7"] and v3.attrs == {}  # the implicit anyType cast: untyped text, no attribute
    nil = codec("xmldsig").decode(reference["nil-declared"]).children[0]
    assert isinstance(nil, Element) and nil.attrs == {f"{{{XSI_NS}}}nil": True} and nil.value is None


def test_unknown_type_kept(reference: dict[str, bytes]) -> None:
    """A cast to a type no schema defines is kept in the tree (the reference writes it, then anyType)."""
    v = codec("xmldsig").decode(reference["unknown-type-undeclared"]).children[0]
    assert isinstance(v, Element) and v.attrs == {f"{{{XSI_NS}}}type": "{urn:x}Unknown"} and v.children == ["t"]


INVALID_FOR_TYPE = [
    obj('<x:v xsi:type="xs:int">abc</x:v>'),
    obj('<KeyName xsi:type="xs:int">abc</KeyName>'),
    obj('<x:v xsi:type="xs:gYear">12345</x:v><x:v xsi:type="xs:boolean">maybe</x:v>'),
]


def test_values_invalid_for_their_type(oracle: Oracle) -> None:  # noqa: F811
    """A value its (cast) type cannot represent: the reference writes it as untyped character data
    (CH at level 2). Our encoder refuses such text (strict), but reads the reference's bytes and
    writes the decoded tree back to the same bytes, and shows it as XML."""
    refs = [r.unwrap() for r in oracle.encode_many([("xmldsig", x.encode(), False) for x in INVALID_FOR_TYPE])]
    for xml, ref in zip(INVALID_FOR_TYPE, refs):
        with pytest.raises(ExiEncodeError):
            codec("xmldsig").encode_xml(xml)
        tree = codec("xmldsig").decode(ref)
        assert codec("xmldsig").encode(tree) == ref
        text = codec("xmldsig").decode_xml(ref).decode()
        assert ">abc<" in text or ">12345<" in text
    first = codec("xmldsig").decode(refs[0]).children[0]
    assert isinstance(first, Element) and first.children == ["abc"] and first.value is None


def test_nil_with_content_refused() -> None:
    with pytest.raises(ExiEncodeError, match="xsi:nil=true but content"):
        codec("xmldsig").encode_xml(obj('<KeyName xsi:nil="true">k</KeyName>'))
    with pytest.raises(ExiEncodeError, match="not a boolean"):
        codec("xmldsig").encode_xml(obj('<KeyName xsi:nil="maybe"/>'))
