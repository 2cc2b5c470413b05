"""tools/infoset.py: lexically different but equal values compare equal; real differences are reported."""

from __future__ import annotations

import pytest

from tools.infoset import assert_infoset_equal, compare

CM = "urn:iso:std:iso:15118:-20:CommonMessages"
CT = "urn:iso:std:iso:15118:-20:CommonTypes"


def _doc(sid: str = "3B5A9C0E12D4F607", ts: str = "1700000000", free: str = "false",
         sep: str = "", prefix: str = "ct") -> str:
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns:{prefix}="{CT}"' if prefix else ""
    return (f'<ServiceDiscoveryRes xmlns="{CM}" {ns}>{sep}'
            f'<{p}Header xmlns="{CT}">{sep}<SessionID>{sid}</SessionID>{sep}<TimeStamp>{ts}</TimeStamp>{sep}'
            f'</{p}Header>{sep}'
            f'<ResponseCode xmlns="{CT}">OK</ResponseCode>{sep}'
            f'<ServiceRenegotiationSupported>{free}</ServiceRenegotiationSupported>{sep}'
            f'<EnergyTransferServiceList><Service><ServiceID>1</ServiceID><FreeService>0</FreeService></Service>'
            f'</EnergyTransferServiceList></ServiceDiscoveryRes>')


@pytest.mark.parametrize("variant", [
    dict(sid="3b5a9c0e12d4f607"),            # hexBinary case
    dict(ts="+1700000000"),                  # integer sign
    dict(ts="001700000000"),                 # leading zeros
    dict(free="0"),                          # boolean 0 == false
    dict(sep="\n   "),                       # whitespace in element-only content
    dict(prefix="x"),                        # another prefix
    dict(prefix=""),                         # default namespace only
])
def test_lexical_variants_are_equal(variant: dict[str, str]) -> None:
    assert_infoset_equal(_doc(), _doc(**variant), "common")


def test_value_differences_are_reported_with_paths() -> None:
    result = compare(_doc(), _doc(ts="1700000001", free="true"), "common")
    assert not result.equal
    report = result.report()
    assert "/ServiceDiscoveryRes/Header/TimeStamp" in report
    assert "/ServiceDiscoveryRes/ServiceRenegotiationSupported" in report


def test_structure_differences_are_reported() -> None:
    other = _doc().replace("<ResponseCode", "<ResponseCodeX").replace("</ResponseCode>", "</ResponseCodeX>")
    result = compare(_doc(), other, "common")
    assert not result.equal and "ResponseCode" in result.report()


def test_decimal_base64_and_rational_values() -> None:
    """xmldsig: base64 with line breaks; -20: rational numbers with signs and leading zeros."""
    a = ('<SignatureValue xmlns="http://www.w3.org/2000/09/xmldsig#">'
         'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</SignatureValue>')
    b = ('<SignatureValue xmlns="http://www.w3.org/2000/09/xmldsig#">\n'
         'AAECAwQFBgcICQoLDA0O\nDxAREhMUFRYXGBkaGxwdHh8=\n</SignatureValue>')
    assert_infoset_equal(a, b, "xmldsig")
    c = b.replace("Hh8=", "Hh4=")
    assert not compare(a, c, "xmldsig").equal
    r1 = (f'<DC_PreChargeRes xmlns="urn:iso:std:iso:15118:-20:DC" xmlns:ct="{CT}"><ct:Header><ct:SessionID>'
          f'0000000000000000</ct:SessionID><ct:TimeStamp>1</ct:TimeStamp></ct:Header><ct:ResponseCode>OK'
          f'</ct:ResponseCode><EVSEPresentVoltage><ct:Exponent>-1</ct:Exponent><ct:Value>4000</ct:Value>'
          f'</EVSEPresentVoltage></DC_PreChargeRes>')
    r2 = r1.replace("<ct:Exponent>-1<", "<ct:Exponent> -01 <").replace(">4000<", ">+4000<")
    assert_infoset_equal(r1, r2, "dc")


def test_decimal_and_float_value_spaces() -> None:
    from decimal import Decimal

    from tools.infoset import load_schema, normalize_value

    types = load_schema("common").maps.types
    dec = types["{http://www.w3.org/2001/XMLSchema}decimal"]
    dbl = types["{http://www.w3.org/2001/XMLSchema}double"]
    assert normalize_value("1.50", dec) == normalize_value("1.5", dec) == ("dec", Decimal("1.5"))
    assert normalize_value("-0", dec) == normalize_value("0.00", dec)
    assert normalize_value("1E0", dbl) == normalize_value("1.0", dbl)
    assert normalize_value("NaN", dbl) == normalize_value("NaN", dbl)
    assert normalize_value("INF", dbl) != normalize_value("-INF", dbl)
