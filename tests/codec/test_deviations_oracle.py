"""Corners where the reference codec (EXIficient, configured as chargers use it) does something
specific, checked against the oracle itself: content the schema leaves open (xmldsig wildcards,
mixed content), empty and whitespace-only typed values, xsi:type casts."""

from __future__ import annotations

import pytest

from iso15118.exi import codec
from tests.oracle import oracle  # noqa: F401  (session fixture)

DS = "http://www.w3.org/2000/09/xmldsig#"

CASES = [
    # key, fragment, xml
    ("xmldsig", False, f'<DigestValue xmlns="{DS}"></DigestValue>'),
    ("xmldsig", False, f'<DigestValue xmlns="{DS}">  \n </DigestValue>'),
    ("xmldsig", False, f'<Transforms xmlns="{DS}"><Transform Algorithm="urn:x">hello<XPath>/a</XPath>world</Transform></Transforms>'),
    ("xmldsig", False, f'<Object xmlns="{DS}" Id="o1">text<KeyName>k1</KeyName></Object>'),
    # an element no schema declares, under a lax wildcard: cast to xs:anyType (EXI profile)
    ("xmldsig", False, f'<Object xmlns="{DS}"><x:bar xmlns:x="urn:x" a="1">text</x:bar></Object>'),
    ("xmldsig", False, f'<Object xmlns="{DS}"><x:bar xmlns:x="urn:x"><KeyName>k</KeyName></x:bar></Object>'),
    # the same undeclared qname again in one stream (the reference's second grammar for it)
    ("xmldsig", False, f'<Object xmlns="{DS}"><x:bar xmlns:x="urn:x" a="1"><x:baz>t</x:baz><x:baz b="2">u<x:bar>k</x:bar>'
                       f'</x:baz><x:baz>v</x:baz><x:qux>w</x:qux><x:baz>y</x:baz><x:qux/></x:bar></Object>'),
    ("xmldsig", True, f'<SignedInfo xmlns="{DS}"><CanonicalizationMethod Algorithm="http://www.w3.org/TR/canonical-exi/"/>'
                      f'<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"/>'
                      f'<Reference URI="#id1"><Transforms><Transform Algorithm="http://www.w3.org/TR/canonical-exi/"/></Transforms>'
                      f'<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"/><DigestValue>AAEC</DigestValue></Reference></SignedInfo>'),
    # an empty string element in a -20 message
    ("common", False, '<SessionStopReq xmlns="urn:iso:std:iso:15118:-20:CommonMessages" xmlns:ct="urn:iso:std:iso:15118:-20:CommonTypes">'
                      '<ct:Header><ct:SessionID>0102030405060708</ct:SessionID><ct:TimeStamp>5</ct:TimeStamp></ct:Header>'
                      '<ChargingSession>Terminate</ChargingSession><EVTerminationCode></EVTerminationCode></SessionStopReq>'),
]


@pytest.mark.parametrize("key, fragment, xml", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_reference(oracle, key: str, fragment: bool, xml: str) -> None:  # noqa: F811
    ref = oracle.encode(key, xml.encode(), fragment)
    ours = codec(key).encode_xml(xml, fragment=fragment)
    assert ours == ref, f"ours {ours.hex()} != reference {ref.hex()}"
    # and our decoder reads the reference bytes back to something that encodes the same
    again = codec(key).encode_xml(codec(key).decode_xml(ref, fragment=fragment), fragment=fragment)
    assert again == ref
