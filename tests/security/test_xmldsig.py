"""-20 XML signatures: round trips, the oracle's bytes, every rejection path (iso15118.security.xmldsig)."""

from __future__ import annotations

import copy
import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from iso15118.exi import codec
from iso15118.exi.tree import Element
from iso15118.security import xmldsig as X
from iso15118.security.pki import PKI, Algorithm, create_pki, load_pki
from iso15118.security.xmldsig import SignatureError
from iso15118.security.xmldsig import SignatureErrorReason as R
from tests.oracle import Job, Oracle, oracle  # noqa: F401, F811  (session fixture)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def dsig_pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PKI]:
    """One lab PKI per algorithm, plus an unrelated P-521 one ("other") and a -2 style P-256 one."""
    root = tmp_path_factory.mktemp("xmldsig-pki")
    algs = {"secp521r1": Algorithm.SECP521R1, "ed448": Algorithm.ED448, "other": Algorithm.SECP521R1,
            "p256": Algorithm.SECP256R1}
    return {name: load_pki(create_pki(root / name, alg).root) for name, alg in algs.items()}


@pytest.fixture(params=["secp521r1", "ed448"])
def dpki(request: pytest.FixtureRequest, dsig_pkis: dict[str, PKI]) -> PKI:
    return dsig_pkis[request.param]


def cm(name: str, value=None, children=None, ident: str | None = None) -> Element:
    attrs = {X.ID_ATTR: ident} if ident else {}
    return Element(X.NS_CM, name, attrs, children or [], value)


def pnc_mode(pki: PKI, ident: str = "id1", challenge: bytes = bytes(range(16))) -> Element:
    der = [c.public_bytes(serialization.Encoding.DER) for c in pki.chain("moCertChain")]
    return cm(
        "PnC_AReqAuthorizationMode",
        ident=ident,
        children=[
            cm("GenChallenge", challenge),
            cm("ContractCertificateChain", children=[
                cm("Certificate", der[0]),
                cm("SubCertificates", children=[cm("Certificate", d) for d in der[1:]]),
            ]),
        ],
    )


def metering_data(ident: str = "smd1", wh: int = 5000) -> Element:
    return cm(
        "SignedMeteringData",
        ident=ident,
        children=[
            cm("SessionID", bytes(8)),
            cm("MeterInfo", children=[Element(X.NS_CT, "MeterID", value="M1"),
                                      Element(X.NS_CT, "ChargedEnergyReadingWh", value=wh)]),
            cm("Scheduled_SMDTControlMode", children=[cm("SelectedScheduleTupleID", 1)]),
        ],
    )


def secret_hex(key) -> list[str]:
    """Hex/decimal renderings of a private key that must never show up in messages."""
    if isinstance(key, ed448.Ed448PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        return [raw.hex(), raw[:16].hex()]
    value = key.private_numbers().private_value
    return [format(value, "x"), str(value)[:30]]


def expect(reason: R, fn, *args, **kwargs) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        fn(*args, **kwargs)
    assert info.value.reason is reason, str(info.value)
    return info.value


# --------------------------------------------------------------------------- round trips


def test_round_trip_with_certificate(dpki: PKI) -> None:
    key, cert = dpki.key("contractLeaf"), dpki.cert("contractLeaf")
    el = pnc_mode(dpki)
    sig = X.sign([el], key)  # type: ignore[arg-type]
    X.verify(sig, [el], cert, required_ids=["id1"])
    X.verify(sig, {"id1": el}, cert.public_key())  # type: ignore[arg-type]
    si = sig.find("SignedInfo")
    assert si is not None
    expected = X.SIG_ED448 if dpki.algorithm is Algorithm.ED448 else X.SIG_ECDSA_SHA512
    assert si.find("SignatureMethod").attrs["Algorithm"] == expected  # type: ignore[union-attr]
    assert si.find("CanonicalizationMethod").attrs["Algorithm"] == X.CANONICAL_EXI  # type: ignore[union-attr]
    ref = si.find("Reference")
    assert ref.attrs["URI"] == "#id1"  # type: ignore[union-attr]
    assert [t.attrs["Algorithm"] for t in ref.find("Transforms").findall("Transform")] == [X.CANONICAL_EXI]  # type: ignore[union-attr]
    assert ref.find("DigestMethod").attrs["Algorithm"] == X.DIGEST_SHA512  # type: ignore[union-attr]
    assert ref.find("DigestValue").value == hashlib.sha512(X.fragment_bytes(el)).digest()  # type: ignore[union-attr]
    # raw signature value: r||s 132 bytes for P-521, 114 bytes for Ed448
    assert len(sig.find("SignatureValue").value) == (114 if dpki.algorithm is Algorithm.ED448 else 132)  # type: ignore[union-attr]


def test_raw_ecdsa_value_is_r_concat_s(dsig_pkis: dict[str, PKI]) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    pki = dsig_pkis["secp521r1"]
    el = pnc_mode(pki)
    sig = X.sign([el], pki.key("contractLeaf"), "ecdsa-sha512")  # type: ignore[arg-type]
    raw = sig.find("SignatureValue").value  # type: ignore[union-attr]
    der = encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big"))
    data = X.signed_info_bytes(sig.find("SignedInfo"))  # type: ignore[arg-type]
    pki.cert("contractLeaf").public_key().verify(der, data, ec.ECDSA(hashes.SHA512()))  # type: ignore[call-arg]


def test_several_references_and_exi_round_trip_of_the_signature(dpki: PKI) -> None:
    a, b = pnc_mode(dpki, "a1"), metering_data("m1")
    sig = X.sign([a, b], dpki.key("contractLeaf"))  # type: ignore[arg-type]
    assert X.referenced_ids(sig) == ["a1", "m1"]
    # The signature travels in the -20 Header: encode a message with it and decode again.
    header = Element(X.NS_CT, "Header", {}, [Element(X.NS_CT, "SessionID", value=bytes(8)),
                                             Element(X.NS_CT, "TimeStamp", value=1700000000), sig])
    msg = cm("AuthorizationReq", children=[header, cm("SelectedAuthorizationService", "PnC"), a])
    back = codec("common").decode(codec("common").encode(msg))
    sig2 = back.find("Header").find("Signature")
    assert sig2 == sig
    X.verify(sig2, [back.find("PnC_AReqAuthorizationMode"), b], dpki.cert("contractLeaf"), required_ids=["a1", "m1"])


def test_iso2_profile_sha256_p256(dsig_pkis: dict[str, PKI]) -> None:
    pki = dsig_pkis["p256"]
    el = pnc_mode(pki)
    sig = X.sign([el], pki.key("contractLeaf"))  # type: ignore[arg-type]
    si = sig.find("SignedInfo")
    assert si.find("SignatureMethod").attrs["Algorithm"] == X.SIG_ECDSA_SHA256  # type: ignore[union-attr]
    assert si.find("Reference").find("DigestMethod").attrs["Algorithm"] == X.DIGEST_SHA256  # type: ignore[union-attr]
    assert len(sig.find("SignatureValue").value) == 64  # type: ignore[union-attr]
    X.verify(sig, [el], pki.cert("contractLeaf"), profile=X.ISO2_PROFILE)
    expect(R.UNSUPPORTED_ALGORITHM, X.verify, sig, [el], pki.cert("contractLeaf"))  # -20 default profile


def test_sign_argument_errors(dsig_pkis: dict[str, PKI]) -> None:
    pki = dsig_pkis["secp521r1"]
    key = pki.key("contractLeaf")
    with pytest.raises(ValueError):
        X.sign([cm("PnC_AReqAuthorizationMode")], key)  # type: ignore[arg-type]  # no Id
    with pytest.raises(ValueError):
        X.sign([pnc_mode(pki, f"i{n}") for n in range(5)], key)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        X.sign([pnc_mode(pki, "x"), pnc_mode(pki, "x")], key)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        X.sign([pnc_mode(pki)], key, "ed448")  # type: ignore[arg-type]  # key does not fit
    with pytest.raises(ValueError):
        X.sign([pnc_mode(pki)], key, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        X.sign([], key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- oracle


def test_fragment_and_signed_info_bytes_equal_the_oracle(oracle: Oracle, dsig_pkis: dict[str, PKI]) -> None:  # noqa: F811
    """The bytes we digest and sign are the reference (EXIficient) fragment encodings of the same XML.

    Also proves that the SignedInfo grammar matters: the xmldsig and the CommonMessages fragment
    grammars give different bytes for the same SignedInfo (decision documented in xmldsig.py).
    """
    items = []
    for name in ("secp521r1", "ed448"):
        pki = dsig_pkis[name]
        els = [pnc_mode(pki), metering_data()]
        sig = X.sign(els, pki.key("contractLeaf"))  # type: ignore[arg-type]
        items.append((els, sig.find("SignedInfo")))
    jobs, expected = [], []
    for els, si in items:
        for el in els:
            jobs.append(Job.encode("common", codec("common").tree_to_xml(el, fragment=True), fragment=True))
            expected.append(X.fragment_bytes(el))
        jobs.append(Job.encode("xmldsig", codec("xmldsig").tree_to_xml(si, fragment=True), fragment=True))
        expected.append(X.signed_info_bytes(si))
        jobs.append(Job.encode("common", codec("common").tree_to_xml(si, fragment=True), fragment=True))
        expected.append(X.signed_info_bytes(si, "common"))
    results = oracle.run(jobs)
    for job, result, mine in zip(jobs, results, expected):
        assert result.unwrap() == mine, f"{job.schema} fragment differs from the oracle"
    for _els, si in items:
        xmldsig_bytes, common_bytes = X.signed_info_bytes(si), X.signed_info_bytes(si, "common")
        assert xmldsig_bytes != common_bytes
        assert xmldsig_bytes[:2] == b"\x80\x81"  # SE(SignedInfo) in the xmldsig fragment grammar
        assert common_bytes[:2] == b"\x80\x73"  # ... and in the CommonMessages one (ISO 15118-2 Annex J uses the former)


def test_signed_info_grammar_option(dsig_pkis: dict[str, PKI]) -> None:
    """A peer that signed the CommonMessages-grammar SignedInfo (libcbv2g iso20_exiFragment) is
    rejected by default and accepted when that grammar is explicitly allowed."""
    pki = dsig_pkis["secp521r1"]
    key = pki.key("contractLeaf")
    el = pnc_mode(pki)
    sig = X.sign([el], key)  # type: ignore[arg-type]
    si = sig.find("SignedInfo")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(key.sign(X.signed_info_bytes(si, "common"), ec.ECDSA(hashes.SHA512())))  # type: ignore[union-attr,call-arg,arg-type]
    sig.find("SignatureValue").value = r.to_bytes(66, "big") + s.to_bytes(66, "big")  # type: ignore[union-attr]
    expect(R.BAD_SIGNATURE, X.verify, sig, [el], pki.cert("contractLeaf"))
    X.verify(sig, [el], pki.cert("contractLeaf"), signed_info_grammars=("xmldsig", "common"))


# --------------------------------------------------------------------------- rejections


@pytest.fixture
def signed(dpki: PKI) -> tuple[PKI, Element, Element]:
    el = pnc_mode(dpki)
    return dpki, el, X.sign([el], dpki.key("contractLeaf"))  # type: ignore[arg-type]


def test_tampered_element_is_digest_mismatch(signed) -> None:
    pki, el, sig = signed
    bad = copy.deepcopy(el)
    bad.find("GenChallenge").value = bytes(16)  # type: ignore[union-attr]
    e = expect(R.DIGEST_MISMATCH, X.verify, sig, [bad], pki.cert("contractLeaf"))
    assert "id1" in str(e)


def test_tampered_signature_value_is_bad_signature(signed) -> None:
    pki, el, sig = signed
    bad = copy.deepcopy(sig)
    value = bytearray(bad.find("SignatureValue").value)
    value[10] ^= 0x01
    bad.find("SignatureValue").value = bytes(value)
    expect(R.BAD_SIGNATURE, X.verify, bad, [el], pki.cert("contractLeaf"))
    bad.find("SignatureValue").value = bytes(value[:-1])  # wrong length
    expect(R.BAD_SIGNATURE, X.verify, bad, [el], pki.cert("contractLeaf"))


def test_tampered_signed_info_is_bad_signature(signed) -> None:
    pki, el, sig = signed
    bad = copy.deepcopy(sig)
    bad.find("SignedInfo").find("Reference").attrs["Id"] = "r1"  # changes the signed bytes, not the digest
    expect(R.BAD_SIGNATURE, X.verify, bad, [el], pki.cert("contractLeaf"))


def test_wrong_key_is_bad_signature(signed, dsig_pkis: dict[str, PKI]) -> None:
    pki, el, sig = signed
    other = dsig_pkis["other"] if pki.algorithm is Algorithm.SECP521R1 else None
    wrong = other.cert("contractLeaf") if other else ed448.Ed448PrivateKey.generate().public_key()
    expect(R.BAD_SIGNATURE, X.verify, sig, [el], wrong)
    expect(R.BAD_SIGNATURE, X.verify, sig, [el], pki.cert("moSubCA2"))  # right family, wrong certificate


def test_key_of_another_algorithm_is_key_mismatch(signed, dsig_pkis: dict[str, PKI]) -> None:
    pki, el, sig = signed
    other = dsig_pkis["ed448" if pki.algorithm is Algorithm.SECP521R1 else "secp521r1"]
    expect(R.KEY_MISMATCH, X.verify, sig, [el], other.cert("contractLeaf"))
    expect(R.KEY_MISMATCH, X.verify, sig, [el], dsig_pkis["p256"].cert("contractLeaf"))


def test_unknown_and_missing_references(signed) -> None:
    pki, el, sig = signed
    expect(R.UNKNOWN_REFERENCE, X.verify, sig, [pnc_mode(pki, "other")], pki.cert("contractLeaf"))
    expect(R.UNKNOWN_REFERENCE, X.verify, sig, {}, pki.cert("contractLeaf"))
    bad = copy.deepcopy(sig)
    bad.find("SignedInfo").find("Reference").attrs["URI"] = "http://example.com/x"
    expect(R.UNKNOWN_REFERENCE, X.verify, bad, [el], pki.cert("contractLeaf"))
    # a valid signature over something else does not vouch for the element the caller cares about
    expect(R.MISSING_REFERENCE, X.verify, sig, [el, metering_data("m9")], pki.cert("contractLeaf"), required_ids=["m9"])


@pytest.mark.parametrize(
    "where, uri",
    [
        ("SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
        ("SignatureMethod", X.SIG_ECDSA_SHA256),
        ("CanonicalizationMethod", "http://www.w3.org/2001/10/xml-exc-c14n#"),
        ("DigestMethod", X.DIGEST_SHA256),
        ("DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1"),
        ("Transform", "http://www.w3.org/2000/09/xmldsig#enveloped-signature"),
    ],
)
def test_unsupported_algorithms(signed, where: str, uri: str) -> None:
    pki, el, sig = signed
    bad = copy.deepcopy(sig)
    target = next(e for e in bad.iter() if e.name == where)
    target.attrs["Algorithm"] = uri
    expect(R.UNSUPPORTED_ALGORITHM, X.verify, bad, [el], pki.cert("contractLeaf"))


def test_malformed_signatures(signed) -> None:
    pki, el, sig = signed
    expect(R.MALFORMED, X.verify, cm("Signature"), [el], pki.cert("contractLeaf"))
    bad = copy.deepcopy(sig)
    bad.children = [c for c in bad.children if c.name != "SignatureValue"]
    expect(R.MALFORMED, X.verify, bad, [el], pki.cert("contractLeaf"))
    bad = copy.deepcopy(sig)
    si = bad.find("SignedInfo")
    si.children = [c for c in si.children if c.name != "Reference"]
    expect(R.MALFORMED, X.verify, bad, [el], pki.cert("contractLeaf"))
    # the same Id twice among the candidates: "#id1" would be ambiguous
    expect(R.MALFORMED, X.verify, sig, [el, pnc_mode(pki, challenge=bytes(16))], pki.cert("contractLeaf"))


def test_errors_carry_no_key_material(dsig_pkis: dict[str, PKI], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    messages = []
    secrets_ = []
    for name in ("secp521r1", "ed448"):
        pki = dsig_pkis[name]
        key = pki.key("contractLeaf")
        secrets_ += secret_hex(key)
        el = pnc_mode(pki)
        sig = X.sign([el], key)  # type: ignore[arg-type]
        sv = sig.find("SignatureValue").value  # type: ignore[union-attr]
        secrets_ += [sv.hex()[:40]]
        bad = copy.deepcopy(el)
        bad.find("GenChallenge").value = bytes(16)  # type: ignore[union-attr]
        for args in ((sig, [bad], pki.cert("contractLeaf")), (sig, [el], dsig_pkis["other"].cert("contractLeaf"))):
            with pytest.raises(SignatureError) as info:
                X.verify(*args)  # type: ignore[arg-type]
            messages.append(str(info.value) + repr(info.value))
    text = "\n".join(messages) + caplog.text
    for s in secrets_:
        assert s not in text
    assert not re.search(r"[0-9a-f]{64}", text)


def test_bench_signatures_smoke() -> None:
    out = X.bench_signatures(iterations=1)
    for label in ("ecdsa-p521", "ed448"):
        assert out[label]["sign_us"] > 0 and out[label]["verify_us"] > 0
