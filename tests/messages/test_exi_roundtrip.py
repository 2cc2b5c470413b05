"""Generated messages survive EXI: ``decode(encode(msg)) == msg`` and XML round trips.

Gated on the EXI codec being importable (skipped with the reason otherwise).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import iso15118.messages as M
from tests.messages.strategies import for_class

try:
    import iso15118.exi.codec  # noqa: F401
except ImportError as exc:  # pragma: no cover
    MISSING = f"EXI codec not importable: {exc}"
else:
    MISSING = ""

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING or "codec present")

MESSAGES = [
    k
    for k in M.ALL_CLASSES
    if k.ELEMENT is not None and "ELEMENT" in k.__dict__ and k.ELEMENT[1].endswith(("Req", "Res"))
]


@pytest.mark.parametrize("klass", MESSAGES, ids=lambda k: k.__name__)
@settings(
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_exi_round_trip(klass: type[M.MessageBase], data: st.DataObject) -> None:
    msg = data.draw(for_class(klass, wildcards=False))
    key = M.schema_key_of(msg)
    blob = M.encode(msg)
    assert M.decode(blob, key) == msg
    assert M.from_xml(M.to_xml(msg), key) == msg


def test_fragment_round_trip() -> None:
    si = M.SignedInfo(
        canonicalization_method=M.CanonicalizationMethod(algorithm="http://www.w3.org/TR/canonical-exi/"),
        signature_method=M.SignatureMethod(algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"),
        reference=[
            M.Reference(
                uri="#id1",
                transforms=M.Transforms(transform=[M.Transform(algorithm="http://www.w3.org/TR/canonical-exi/")]),
                digest_method=M.DigestMethod(algorithm="http://www.w3.org/2001/04/xmlenc#sha512"),
                digest_value=bytes(range(64)),
            )
        ],
    )
    blob = M.encode_fragment(si)
    assert M.decode_fragment(blob, "xmldsig") == si
    chain = M.ContractCertificateChain(certificate=b"leaf", sub_certificates=M.SubCertificates(certificate=[b"sub"]))
    mode = M.PnCAReqAuthorizationMode(id="id1", gen_challenge=bytes(16), contract_certificate_chain=chain)
    blob = M.encode_fragment(mode, "common", name="PnC_AReqAuthorizationMode", ns=M._base.NS_CM)
    assert M.decode_fragment(blob, "common") == mode
