"""validate_chain: one test per rejection reason, plus eMAID extraction."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from iso15118.security.pki import PKI, IssuedCert, Profile, issue_certificate, make_crl, make_ocsp_response
from iso15118.security.validation import (
    ANY_POLICY,
    CertificateChainError,
    Purpose,
    emaid_from_certificate,
    fingerprint_sha512,
    normalize_emaid,
    reason_from_verify_code,
    validate_chain,
)
from iso15118.security.validation import (
    ChainErrorReason as R,
)

NOW = dt.datetime.now(dt.UTC)


def secc_args(p: PKI) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    return p.cert("seccLeaf"), p.intermediates("cpoCertChain"), [p.cert("v2gRootCA")]


def reason_of(*args: object, **kwargs: object) -> R:
    with pytest.raises(CertificateChainError) as info:
        validate_chain(*args, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(info.value.reason.value)
    return info.value.reason


def new_leaf(p: PKI, issuer: str = "cpoSubCA2", profile: Profile = Profile.SECC, **kw: object) -> x509.Certificate:
    return issue_certificate(
        cn=kw.pop("cn", "DE*PNX*E99999*1"), dc=kw.pop("dc", "CPO"), profile=profile,  # type: ignore[arg-type]
        key=p.algorithm.generate_key(), issuer=p.issued(issuer), **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "chain,root,purpose",
    [
        ("cpoCertChain", "v2gRootCA", Purpose.SECC_TLS_SERVER),
        ("vehicleCertChain", "v2gRootCA", Purpose.EV_TLS_CLIENT),
        ("oemCertChain", "oemRootCA", Purpose.EV_TLS_CLIENT),
        ("oemCertChain", "oemRootCA", Purpose.OEM_PROVISIONING),
        ("moCertChain", "moRootCA", Purpose.CONTRACT),
        ("cpsCertChain", "v2gRootCA", Purpose.CPS),
    ],
)
def test_valid_chains(pki: PKI, chain: str, root: str, purpose: Purpose) -> None:
    certs = pki.chain(chain)
    # intermediates in any order, with unrelated certificates mixed in
    pool = list(reversed(certs[1:])) + pki.intermediates("cpsCertChain")
    validate_chain(certs[0], pool, [pki.cert(root), pki.cert("moRootCA")], purpose=purpose)


def test_expired(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    assert reason_of(leaf, inter, roots, at=NOW + dt.timedelta(days=61)) is R.EXPIRED
    old = new_leaf(pki, not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1))
    assert reason_of(old, inter, roots) is R.EXPIRED


def test_not_yet_valid(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    assert reason_of(leaf, inter, roots, at=NOW - dt.timedelta(days=1)) is R.NOT_YET_VALID
    future = new_leaf(pki, not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=30))
    assert reason_of(future, inter, roots) is R.NOT_YET_VALID


def test_unknown_issuer(pki: PKI, pki_other: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    assert reason_of(leaf, inter[:1], roots) is R.UNKNOWN_ISSUER  # Sub-CA 1 missing
    assert reason_of(leaf, [], roots) is R.UNKNOWN_ISSUER
    # Same names, different keys: the key identifiers keep the chains apart.
    assert reason_of(pki_other.cert("seccLeaf"), pki_other.intermediates("cpoCertChain"), roots) is R.UNKNOWN_ISSUER


def test_no_trust_anchor(pki: PKI, pki_other: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    assert reason_of(leaf, inter + roots, [pki_other.cert("v2gRootCA")]) is R.NO_TRUST_ANCHOR
    assert reason_of(leaf, inter, []) is R.NO_TRUST_ANCHOR


def test_bad_signature(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    der = bytearray(leaf.public_bytes(Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    assert reason_of(x509.load_der_x509_certificate(bytes(der)), inter, roots) is R.BAD_SIGNATURE


def test_wrong_key_usage(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    no_sig = new_leaf(pki, key_usage=x509.KeyUsage(False, False, False, False, True, False, False, False, False))
    validate_chain(no_sig, inter, roots)  # fine for Purpose.ANY
    assert reason_of(no_sig, inter, roots, purpose=Purpose.SECC_TLS_SERVER) is R.WRONG_KEY_USAGE
    client_only = new_leaf(pki, extended_key_usage=[x509.ExtendedKeyUsageOID.CLIENT_AUTH])
    assert reason_of(client_only, inter, roots, purpose=Purpose.SECC_TLS_SERVER) is R.WRONG_KEY_USAGE
    # A CA without keyCertSign issuing a leaf
    ku = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    bad_ca = issue_certificate(cn="CPOSubCA2", dc="V2G", profile=Profile.SUB_CA2, key=pki.algorithm.generate_key(),
                               issuer=pki.issued("cpoSubCA1"), key_usage=ku)
    bad_ca_key = pki.algorithm.generate_key()
    bad_ca = issue_certificate(cn="CPOSubCA2b", dc="V2G", profile=Profile.SUB_CA2, key=bad_ca_key,
                               issuer=pki.issued("cpoSubCA1"), key_usage=ku)
    leaf2 = issue_certificate(cn="X", dc="CPO", profile=Profile.SECC, key=pki.algorithm.generate_key(),
                              issuer=IssuedCert(bad_ca, bad_ca_key))
    assert reason_of(leaf2, [bad_ca, inter[1]], roots) is R.WRONG_KEY_USAGE


def test_not_a_ca(pki: PKI) -> None:
    _, inter, roots = secc_args(pki)
    under_leaf = new_leaf(pki, issuer="seccLeaf")
    assert reason_of(under_leaf, [pki.cert("seccLeaf")] + inter, roots, max_intermediates=3) is R.NOT_A_CA


def test_path_length(pki: PKI) -> None:
    _, inter, roots = secc_args(pki)
    sub3_key = pki.algorithm.generate_key()
    sub3 = issue_certificate(cn="CPOSubCA3", dc="V2G", profile=Profile.SUB_CA2, key=sub3_key, issuer=pki.issued("cpoSubCA2"))
    leaf = issue_certificate(cn="X", dc="CPO", profile=Profile.SECC, key=pki.algorithm.generate_key(),
                             issuer=IssuedCert(sub3, sub3_key))
    assert reason_of(leaf, [sub3] + inter, roots, max_intermediates=5) is R.PATH_LENGTH  # pathLen 0 of Sub-CA 2
    assert reason_of(leaf, [sub3] + inter, roots) is R.PATH_LENGTH  # more than 2 Sub-CAs


def test_revoked_by_crl(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    good = make_crl(pki.issued("cpoSubCA2"), [12345])
    validate_chain(leaf, inter, roots, crls=[good])
    crl = make_crl(pki.issued("cpoSubCA2"), [leaf.serial_number])
    assert reason_of(leaf, inter, roots, crls=[crl]) is R.REVOKED
    # A revoked Sub-CA revokes everything below it.
    crl_root = make_crl(pki.issued("v2gRootCA"), [pki.cert("cpoSubCA1").serial_number])
    assert reason_of(leaf, inter, roots, crls=[good, crl_root]) is R.REVOKED
    # A CRL claiming to come from Sub-CA 2 but signed by another key is rejected.
    forged = make_crl(IssuedCert(pki.cert("cpoSubCA2"), pki.algorithm.generate_key()), [leaf.serial_number])
    assert reason_of(leaf, inter, roots, crls=[forged]) is R.BAD_SIGNATURE


def test_revoked_by_ocsp(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    issuer = pki.issued("cpoSubCA2")
    ok = make_ocsp_response(leaf, issuer, ocsp.OCSPCertStatus.GOOD)
    validate_chain(leaf, inter, roots, ocsp=[ok], require_revocation=False)
    revoked = make_ocsp_response(leaf, issuer, ocsp.OCSPCertStatus.REVOKED)
    assert reason_of(leaf, inter, roots, ocsp=[revoked]) is R.REVOKED
    # round trip through DER, as it would arrive in a message
    revoked = ocsp.load_der_ocsp_response(revoked.public_bytes(Encoding.DER))
    assert reason_of(leaf, inter, roots, ocsp=[revoked]) is R.REVOKED
    # Delegated responder certified by the issuer
    rkey = pki.algorithm.generate_key()
    rcert = issue_certificate(cn="OCSP", dc="V2G", profile=Profile.CPS, key=rkey, issuer=issuer,
                              extended_key_usage=[x509.ExtendedKeyUsageOID.OCSP_SIGNING])
    delegated = make_ocsp_response(leaf, issuer, ocsp.OCSPCertStatus.REVOKED, responder=IssuedCert(rcert, rkey))
    assert reason_of(leaf, inter, roots, ocsp=[delegated]) is R.REVOKED
    fkey = pki.algorithm.generate_key()
    fcert = issue_certificate(cn="OCSP", dc="V2G", profile=Profile.CPS, key=fkey)  # self-signed, not certified
    forged = make_ocsp_response(leaf, issuer, ocsp.OCSPCertStatus.GOOD, responder=IssuedCert(fcert, fkey))
    assert reason_of(leaf, inter, roots, ocsp=[forged]) is R.BAD_SIGNATURE


def test_revocation_required(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    assert reason_of(leaf, inter, roots, require_revocation=True) is R.REVOCATION_UNKNOWN
    crls = [make_crl(pki.issued("cpoSubCA2"), []), make_crl(pki.issued("cpoSubCA1"), []), make_crl(pki.issued("v2gRootCA"), [])]
    validate_chain(leaf, inter, roots, crls=crls, require_revocation=True)


def test_wrong_algorithm(pki_p256: PKI) -> None:
    leaf, inter, roots = secc_args(pki_p256)
    assert reason_of(leaf, inter, roots) is R.WRONG_ALGORITHM
    validate_chain(leaf, inter, roots, policy=ANY_POLICY, purpose=Purpose.SECC_TLS_SERVER)


def test_wrong_algorithm_in_the_middle(pki_p521: PKI, pki_p256: PKI) -> None:
    """A secp521r1 leaf whose Sub-CA is P-256 is still not a -20 chain."""
    p = pki_p521
    sub2_key = pki_p256.algorithm.generate_key()
    sub2 = issue_certificate(cn="CPOSubCA2", dc="V2G", profile=Profile.SUB_CA2, key=sub2_key, issuer=p.issued("cpoSubCA1"))
    leaf = issue_certificate(cn="X", dc="CPO", profile=Profile.SECC, key=p.algorithm.generate_key(),
                             issuer=IssuedCert(sub2, sub2_key))
    assert reason_of(leaf, [sub2, p.cert("cpoSubCA1")], [p.cert("v2gRootCA")]) is R.WRONG_ALGORITHM


def test_josev_pki_with_any_policy(josev_pki: Path) -> None:
    certs = lambda n: x509.load_pem_x509_certificate((josev_pki / "certs" / n).read_bytes())  # noqa: E731
    chain = x509.load_pem_x509_certificates((josev_pki / "certs" / "cpoCertChain.pem").read_bytes())
    roots = [certs("v2gRootCACert.pem")]
    validate_chain(chain[0], chain[1:], roots, policy=ANY_POLICY, purpose=Purpose.SECC_TLS_SERVER)
    assert reason_of(chain[0], chain[1:], roots) is R.WRONG_ALGORITHM
    oem = x509.load_pem_x509_certificates((josev_pki / "certs" / "oemCertChain.pem").read_bytes())
    validate_chain(oem[0], oem[1:], [certs("oemRootCACert.pem")], policy=ANY_POLICY, purpose=Purpose.EV_TLS_CLIENT)
    contract = x509.load_der_x509_certificate((josev_pki / "certs" / "contractLeafCert.der").read_bytes())
    assert emaid_from_certificate(contract) == "UKSWI123456791A"


def test_wrong_domain(pki: PKI) -> None:
    contract = pki.cert("contractLeaf")
    inter, roots = pki.intermediates("moCertChain"), [pki.cert("moRootCA")]
    validate_chain(contract, inter, roots, purpose=Purpose.CONTRACT)
    assert reason_of(contract, inter, roots, purpose=Purpose.SECC_TLS_SERVER) is R.WRONG_DOMAIN


def test_emaid(pki: PKI) -> None:
    assert emaid_from_certificate(pki.cert("contractLeaf")) == "DEPNXC123456789"
    with pytest.raises(CertificateChainError) as info:
        emaid_from_certificate(pki.cert("seccLeaf"))
    assert info.value.reason is R.WRONG_DOMAIN
    dashed = issue_certificate(cn="DE-PNX-C12345678-9", dc="MO", profile=Profile.CONTRACT,
                               key=pki.algorithm.generate_key(), issuer=pki.issued("moSubCA2"))
    assert emaid_from_certificate(dashed) == "DE-PNX-C12345678-9"
    assert normalize_emaid("de-pnx-c12345678-9") == "DEPNXC123456789"
    junk = issue_certificate(cn="not an emaid", dc="MO", profile=Profile.CONTRACT,
                             key=pki.algorithm.generate_key(), issuer=pki.issued("moSubCA2"))
    with pytest.raises(CertificateChainError, match="not an eMAID"):
        emaid_from_certificate(junk)


def test_response_codes_and_helpers(pki: PKI) -> None:
    leaf, inter, roots = secc_args(pki)
    with pytest.raises(CertificateChainError) as info:
        validate_chain(leaf, inter, roots, at=NOW + dt.timedelta(days=400))
    assert info.value.response_code == "WARNING_CertificateExpired"
    assert info.value.subject and "CN=" in info.value.subject
    with pytest.raises(CertificateChainError) as info:
        validate_chain(leaf, [], roots)
    assert info.value.response_code == "WARNING_CertificateValidationError"
    assert reason_from_verify_code(10) is R.EXPIRED
    assert reason_from_verify_code(20) is R.UNKNOWN_ISSUER
    assert reason_from_verify_code(None) is R.OTHER
    der = leaf.public_bytes(Encoding.DER)
    assert fingerprint_sha512(leaf) == fingerprint_sha512(der) == hashlib.sha512(der).hexdigest()


def test_der_and_pem_input(pki: PKI) -> None:
    """Chains arrive as DER in -20 messages (certificateType)."""
    leaf, inter, roots = secc_args(pki)
    validate_chain(
        leaf.public_bytes(Encoding.DER),
        [c.public_bytes(Encoding.DER) for c in inter],
        [roots[0].public_bytes(Encoding.PEM)],
        purpose=Purpose.SECC_TLS_SERVER,
    )
