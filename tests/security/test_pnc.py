"""Plug & Charge: PnC authorization codes, certificate installation with key delivery, metering
confirmation (iso15118.security.pnc, iso15118.security.keydelivery)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from iso15118.exi import codec
from iso15118.exi.tree import Element
from iso15118.security import keydelivery as K
from iso15118.security import pnc
from iso15118.security.keydelivery import KeyDeliveryError
from iso15118.security.keydelivery import KeyDeliveryErrorReason as KR
from iso15118.security.pki import PKI, Algorithm, Profile, create_pki, issue_certificate, load_pki, make_crl
from iso15118.security.validation import CertificateChainError
from iso15118.security.xmldsig import SignatureError, SignatureErrorReason
from tests.oracle import Job, Oracle, oracle  # noqa: F401, F811  (session fixture)

XSD_CT = Path(pnc.__file__).resolve().parent.parent / "schemas" / "iso15118_20" / "V2G_CI_CommonTypes.xsd"
SID = bytes.fromhex("0102030405060708")
CHALLENGE = bytes(range(100, 116))

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pnc_pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PKI]:
    """Lab PKIs: secp521r1, Ed448, an unrelated secp521r1 one ("other") and P-256 (-2 algorithms)."""
    root = tmp_path_factory.mktemp("pnc-pki")
    algs = {"secp521r1": Algorithm.SECP521R1, "ed448": Algorithm.ED448, "other": Algorithm.SECP521R1,
            "p256": Algorithm.SECP256R1}
    return {name: load_pki(create_pki(root / name, alg).root) for name, alg in algs.items()}


@pytest.fixture(params=["secp521r1", "ed448"])
def ppki(request: pytest.FixtureRequest, pnc_pkis: dict[str, PKI]) -> PKI:
    return pnc_pkis[request.param]


def wire(el: Element) -> Element:
    """Through EXI and back, as on the wire."""
    return codec("common").decode(codec("common").encode(el))


def auth_req(pki: PKI, *, challenge: bytes = CHALLENGE, chain=None, key=None) -> Element:
    return pnc.build_pnc_authorization_req(
        session_id=SID,
        gen_challenge=challenge,
        contract_chain=chain or pki.chain("moCertChain"),
        contract_key=key or pki.key("contractLeaf"),  # type: ignore[arg-type]
        time_stamp=1_700_000_000,
    )


def check(pki: PKI, req: Element, **kw) -> pnc.AuthorizationCheck:
    kw.setdefault("mo_roots", [pki.cert("moRootCA")])
    return pnc.check_pnc_authorization_req(wire(req), gen_challenge=CHALLENGE, **kw)


def contract_leaf(pki: PKI, **kw) -> tuple[x509.Certificate, object]:
    """A contract certificate issued by the PKI's MO Sub-CA 2 with custom validity."""
    key = pki.algorithm.generate_key()
    cert = issue_certificate(cn=pki.emaid, dc="MO", profile=Profile.CONTRACT, key=key,
                             issuer=pki.issued("moSubCA2"), **kw)
    return cert, key


def xsd_response_codes() -> set[str]:
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    root = ET.parse(XSD_CT).getroot()
    st = next(s for s in root.findall("xs:simpleType", ns) if s.get("name") == "responseCodeType")
    return {e.get("value") for e in st.iter("{http://www.w3.org/2001/XMLSchema}enumeration")}  # type: ignore[misc]


# --------------------------------------------------------------------------- response codes


def test_response_codes_are_the_xsd_enumeration() -> None:
    codes = xsd_response_codes()
    assert set(pnc.RESPONSE_CODES) == codes and len(pnc.RESPONSE_CODES) == 40
    assert {c.value for c in pnc.ResponseCode} <= codes
    # The -2 names of the brief do not exist in -20 (documented mapping in pnc's docstring).
    for name in ("FAILED_ChallengeInvalid", "FAILED_CertChainError", "FAILED_CertificateExpired",
                 "FAILED_CertificateRevoked", "FAILED_NoCertificateAvailable", "FAILED_ContractCanceled"):
        assert name not in codes


# --------------------------------------------------------------------------- Authorization


def test_pnc_authorization_ok(ppki: PKI) -> None:
    req = auth_req(ppki)
    mode = req.find("PnC_AReqAuthorizationMode")
    assert mode is not None and req.find("SelectedAuthorizationService").value == "PnC"  # type: ignore[union-attr]
    assert req.find("Header").find("Signature") is not None  # type: ignore[union-attr]
    result = check(ppki, req)
    assert result.response_code == "OK" and result.ok and result.reason is None
    assert result.emaid == ppki.emaid


def test_tampered_request_is_signature_error(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    req = auth_req(ppki)
    subs = req.find("PnC_AReqAuthorizationMode").find("ContractCertificateChain").find("SubCertificates")  # type: ignore[union-attr]
    subs.children[-1].value = ppki.cert("cpoSubCA1").public_bytes(serialization.Encoding.DER)  # type: ignore[union-attr]
    result = check(ppki, req)
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "DIGEST_MISMATCH")
    assert not result.ok


def test_tampered_signature_is_signature_error(ppki: PKI) -> None:
    req = auth_req(ppki)
    sv = req.find("Header").find("Signature").find("SignatureValue")  # type: ignore[union-attr]
    sv.value = bytes([sv.value[0] ^ 0x80]) + sv.value[1:]  # type: ignore[union-attr,index]
    result = check(ppki, req)
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "BAD_SIGNATURE")


def test_wrong_key_is_signature_error(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    wrong = ppki.algorithm.generate_key()
    result = check(ppki, auth_req(ppki, key=wrong))
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "BAD_SIGNATURE")


def test_missing_signature_is_signature_error(ppki: PKI) -> None:
    req = auth_req(ppki)
    header = req.find("Header")
    header.children = [c for c in header.children if c.name != "Signature"]  # type: ignore[union-attr]
    result = check(ppki, req)
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "NO_SIGNATURE")


def test_wrong_challenge(ppki: PKI) -> None:
    result = check(ppki, auth_req(ppki, challenge=bytes(16)))
    assert (result.response_code, result.reason) == ("WARNING_ChallengeInvalid", "CHALLENGE_MISMATCH")


def test_expired_contract_certificate(ppki: PKI) -> None:
    now = dt.datetime.now(dt.UTC)
    leaf, key = contract_leaf(ppki, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    req = auth_req(ppki, chain=[leaf, *ppki.intermediates("moCertChain")], key=key)
    result = check(ppki, req)
    assert (result.response_code, result.reason) == ("WARNING_CertificateExpired", "EXPIRED")


def test_not_yet_valid_contract_certificate(ppki: PKI) -> None:
    now = dt.datetime.now(dt.UTC)
    leaf, key = contract_leaf(ppki, not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    result = check(ppki, auth_req(ppki, chain=[leaf, *ppki.intermediates("moCertChain")], key=key))
    assert result.response_code == "WARNING_CertificateNotYetValid"


def test_contract_expiring_soon(ppki: PKI) -> None:
    now = dt.datetime.now(dt.UTC)
    leaf, key = contract_leaf(ppki, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=5))
    result = check(ppki, auth_req(ppki, chain=[leaf, *ppki.intermediates("moCertChain")], key=key))
    assert result.response_code == "OK_CertificateExpiresSoon" and result.ok


def test_chain_from_unknown_root(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    result = check(ppki, auth_req(ppki), mo_roots=[pnc_pkis["other"].cert("moRootCA")])
    assert result.response_code == "WARNING_CertificateValidationError"
    assert result.reason in ("UNKNOWN_ISSUER", "NO_TRUST_ANCHOR", "BAD_SIGNATURE")
    # the V2G root is not an MO root either
    result = check(ppki, auth_req(ppki), mo_roots=[ppki.cert("v2gRootCA")])
    assert result.response_code == "WARNING_CertificateValidationError"


def test_revoked_contract_certificate(ppki: PKI) -> None:
    crl = make_crl(ppki.issued("moSubCA2"), [ppki.cert("contractLeaf").serial_number])
    result = check(ppki, auth_req(ppki), crls=[crl])
    assert (result.response_code, result.reason) == ("WARNING_CertificateRevoked", "REVOKED")


def test_contract_canceled_by_backend(ppki: PKI) -> None:
    seen = []

    def status(emaid: str, leaf: x509.Certificate) -> str | None:
        seen.append(emaid)
        return "WARNING_GeneralPnCAuthorizationError"

    result = check(ppki, auth_req(ppki), contract_status=status)
    assert (result.response_code, result.reason) == ("WARNING_GeneralPnCAuthorizationError", "CONTRACT_STATUS")
    assert seen == [ppki.emaid]
    with pytest.raises(ValueError):
        check(ppki, auth_req(ppki), contract_status=lambda e, c: "FAILED_ContractCanceled")


def test_unsupported_algorithm_p256_contract(pnc_pkis: dict[str, PKI]) -> None:
    pki = pnc_pkis["p256"]
    result = check(pki, auth_req(pki))
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "UNSUPPORTED_ALGORITHM")


def test_eim_selection_is_not_pnc(ppki: PKI) -> None:
    req = auth_req(ppki)
    req.find("SelectedAuthorizationService").value = "EIM"  # type: ignore[union-attr]
    req.children = [c for c in req.children if c.name != "PnC_AReqAuthorizationMode"]
    req.children.append(Element(pnc.NS_CM, "EIM_AReqAuthorizationMode"))
    result = check(ppki, req)
    assert result.response_code == "WARNING_AuthorizationSelectionInvalid"


def test_without_mo_roots_the_chain_is_left_to_the_backend(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    result = check(ppki, auth_req(ppki), mo_roots=None)
    assert result.response_code == "OK" and not result.chain_checked and result.emaid == ppki.emaid
    assert check(ppki, auth_req(ppki)).chain_checked
    # the signature is still checked
    assert check(ppki, auth_req(ppki, key=ppki.algorithm.generate_key()), mo_roots=None).response_code == "FAILED_SignatureError"


def test_authorization_setup_mode_carries_the_challenge(ppki: PKI) -> None:
    challenge = pnc.new_gen_challenge()
    assert len(challenge) == 16 and challenge != pnc.new_gen_challenge()
    mode = pnc.pnc_authorization_setup_mode(challenge, ["PROVIDER1"])
    res = Element(pnc.NS_CM, "AuthorizationSetupRes", children=[
        pnc.message_header(SID, 1_700_000_000), Element(pnc.NS_CT, "ResponseCode", value="OK"),
        Element(pnc.NS_CM, "AuthorizationServices", value="EIM"), Element(pnc.NS_CM, "AuthorizationServices", value="PnC"),
        Element(pnc.NS_CM, "CertificateInstallationService", value=True), mode,
    ])
    back = wire(res)
    echoed = back.find("PnC_ASResAuthorizationMode").find("GenChallenge").value  # type: ignore[union-attr]
    assert echoed == challenge
    req = auth_req(ppki, challenge=echoed)
    assert pnc.check_pnc_authorization_req(wire(req), gen_challenge=challenge,
                                           mo_roots=[ppki.cert("moRootCA")]).response_code == "OK"


def test_every_returned_code_is_in_the_xsd(ppki: PKI) -> None:
    codes = xsd_response_codes()
    for result in (check(ppki, auth_req(ppki)), check(ppki, auth_req(ppki, challenge=bytes(16)))):
        assert result.response_code in codes


# --------------------------------------------------------------------------- key delivery


@pytest.mark.parametrize("curve, gen, length", [
    ("SECP521", lambda: ec.generate_private_key(ec.SECP521R1()), 94),
    ("X448", ed448.Ed448PrivateKey.generate, 84),
])
def test_key_delivery_round_trip_and_tampering(curve: str, gen, length: int) -> None:
    oem, contract = gen(), gen()
    delivered = K.encrypt_private_key(contract, oem.public_key())
    assert delivered.curve == curve and len(delivered.dh_public_key) == 133
    assert len(delivered.encrypted_private_key) == length
    key = K.decrypt_private_key(delivered, oem, expected_public_key=contract.public_key())
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*fmt) == contract.public_key().public_bytes(*fmt)
    blob = delivered.encrypted_private_key
    for index in (0, 12, 40, length - 1):  # nonce, ciphertext start, ciphertext, tag
        bad = bytearray(blob)
        bad[index] ^= 0x01
        with pytest.raises(KeyDeliveryError) as info:
            K.decrypt_private_key(dataclasses.replace(delivered, encrypted_private_key=bytes(bad)), oem)
        assert info.value.reason is KR.DECRYPTION_FAILED
    with pytest.raises(KeyDeliveryError) as info:  # another EV cannot decrypt
        K.decrypt_private_key(delivered, gen())
    assert info.value.reason is KR.DECRYPTION_FAILED
    with pytest.raises(KeyDeliveryError) as info:  # correct decryption, wrong contract certificate
        K.decrypt_private_key(delivered, oem, expected_public_key=gen().public_key())
    assert info.value.reason is KR.KEY_MISMATCH
    with pytest.raises(KeyDeliveryError) as info:
        K.decrypt_private_key(dataclasses.replace(delivered, encrypted_private_key=blob[:-1]), oem)
    assert info.value.reason is KR.BAD_LENGTH


def test_key_delivery_dh_public_key_checks() -> None:
    oem, contract = ed448.Ed448PrivateKey.generate(), ed448.Ed448PrivateKey.generate()
    d = K.encrypt_private_key(contract, oem.public_key())
    assert not any(d.dh_public_key[56:])
    with pytest.raises(KeyDeliveryError) as info:
        K.decrypt_private_key(dataclasses.replace(d, dh_public_key=d.dh_public_key[:-1] + b"\x01"), oem)
    assert info.value.reason is KR.BAD_PUBLIC_KEY
    bad = bytearray(d.dh_public_key)
    bad[3] ^= 0x40
    with pytest.raises(KeyDeliveryError) as info:  # other X448 point -> other secret -> tag fails
        K.decrypt_private_key(dataclasses.replace(d, dh_public_key=bytes(bad)), oem)
    assert info.value.reason is KR.DECRYPTION_FAILED
    oem_p, contract_p = ec.generate_private_key(ec.SECP521R1()), ec.generate_private_key(ec.SECP521R1())
    d = K.encrypt_private_key(contract_p, oem_p.public_key())
    assert d.dh_public_key[0] == 0x04
    with pytest.raises(KeyDeliveryError) as info:  # not on the curve
        K.decrypt_private_key(dataclasses.replace(d, dh_public_key=b"\x04" + bytes(132)), oem_p)
    assert info.value.reason is KR.BAD_PUBLIC_KEY
    with pytest.raises(KeyDeliveryError) as info:
        K.decrypt_private_key(d, oem)  # Ed448 key for a SECP521 delivery
    assert info.value.reason is KR.BAD_PRIVATE_KEY
    with pytest.raises(KeyDeliveryError):
        K.encrypt_private_key(contract_p, oem.public_key())  # family mismatch
    with pytest.raises(KeyDeliveryError):
        K.encrypt_private_key(contract_p, oem_p.public_key(), curve="X448")
    with pytest.raises(KeyDeliveryError):
        K.decrypt_private_key(dataclasses.replace(d, curve="TPM"), oem_p)


def test_ed448_to_x448_conversion_is_consistent() -> None:
    for _ in range(5):
        k = ed448.Ed448PrivateKey.generate()
        raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert K.ed448_to_x448_private(k).public_key().public_bytes(*raw) == \
            K.ed448_to_x448_public(k.public_key()).public_bytes(*raw)
    # the isogeny maps the Ed448 base point (RFC 8032) to the X448 base point u = 5 (RFC 7748)
    base_y = 298819210078481492676017930443930673437544040154080242095928241372331506189835876003536878655418784733982303233503462500531545062832660
    base = ed448.Ed448PublicKey.from_public_bytes(base_y.to_bytes(57, "little"))
    assert K.ed448_to_x448_public(base).public_bytes(*raw) == (5).to_bytes(56, "little")


# --------------------------------------------------------------------------- CertificateInstallation


def install_req(pki: PKI, **kw) -> Element:
    kw.setdefault("oem_chain", pki.chain("oemCertChain"))
    kw.setdefault("oem_key", pki.key("oemLeaf"))
    return pnc.build_certificate_installation_req(
        session_id=SID, root_certificates=[pki.cert("v2gRootCA"), pki.cert("moRootCA")],
        maximum_contract_certificate_chains=2, prioritized_emaids=[pki.emaid], time_stamp=1_700_000_000, **kw,
    )


def install_res(pki: PKI, **kw) -> Element:
    kw.setdefault("contract_key", pki.key("contractLeaf"))
    kw.setdefault("cps_chain", pki.chain("cpsCertChain"))
    kw.setdefault("cps_key", pki.key("cpsLeaf"))
    return pnc.build_certificate_installation_res(
        session_id=SID, oem_certificate=pki.cert("oemLeaf"), contract_chain=pki.chain("moCertChain"),
        remaining_contract_certificate_chains=1, time_stamp=1_700_000_000, **kw,
    )


def test_certificate_installation_req(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    req = install_req(ppki)
    chain_el = req.find("OEMProvisioningCertificateChain")
    assert chain_el is not None and pnc.element_id(chain_el) == "OEMProvChain"
    result = pnc.check_certificate_installation_req(wire(req), oem_roots=[ppki.cert("oemRootCA")])
    assert result.response_code == "OK" and result.ok
    assert result.oem_certificate == ppki.cert("oemLeaf")
    assert [serial for _name, serial in result.root_certificate_ids] == [
        ppki.cert("v2gRootCA").serial_number, ppki.cert("moRootCA").serial_number]
    # tampered chain element
    bad = copy.deepcopy(req)
    subs = bad.find("OEMProvisioningCertificateChain").find("SubCertificates")  # type: ignore[union-attr]
    subs.children = subs.children[:1]  # type: ignore[union-attr]
    result = pnc.check_certificate_installation_req(wire(bad), oem_roots=[ppki.cert("oemRootCA")])
    assert (result.response_code, result.reason) == ("FAILED_SignatureError", "DIGEST_MISMATCH")
    # signed by another key
    other = install_req(ppki, oem_key=ppki.algorithm.generate_key())
    assert pnc.check_certificate_installation_req(wire(other), oem_roots=None).response_code == "FAILED_SignatureError"
    # OEM chain from an unknown root
    result = pnc.check_certificate_installation_req(wire(req), oem_roots=[pnc_pkis["other"].cert("oemRootCA")])
    assert result.response_code == "WARNING_CertificateValidationError"


def test_certificate_installation_res_round_trip(ppki: PKI) -> None:
    res = wire(install_res(ppki))
    data = res.find("SignedInstallationData")
    curve = "X448" if ppki.algorithm is Algorithm.ED448 else "SECP521"
    assert data.find("ECDHCurve").value == curve  # type: ignore[union-attr]
    assert len(data.find(f"{curve}_EncryptedPrivateKey").value) == (84 if curve == "X448" else 94)  # type: ignore[union-attr]
    installed = pnc.process_certificate_installation_res(
        res, oem_key=ppki.key("oemLeaf"), v2g_roots=[ppki.cert("v2gRootCA")], mo_roots=[ppki.cert("moRootCA")],  # type: ignore[arg-type]
    )
    assert installed.emaid == ppki.emaid and installed.remaining_contract_certificate_chains == 1
    assert installed.chain[0] == ppki.cert("contractLeaf")
    assert "PrivateKey" not in repr(installed) and "private" not in repr(installed)
    # The installed key works: it signs an AuthorizationReq the SECC accepts.
    req = auth_req(ppki, chain=installed.chain, key=installed.private_key)
    assert check(ppki, req).response_code == "OK"


def test_certificate_installation_res_rejections(ppki: PKI, pnc_pkis: dict[str, PKI]) -> None:
    oem_key = ppki.key("oemLeaf")
    roots = [ppki.cert("v2gRootCA")]
    res = install_res(ppki)
    # tampered ciphertext inside the signed data: the CPS signature catches it first
    bad = copy.deepcopy(res)
    data = bad.find("SignedInstallationData")
    enc = next(c for c in data.children if c.name.endswith("_EncryptedPrivateKey"))  # type: ignore[union-attr]
    enc.value = bytes([enc.value[0] ^ 1]) + enc.value[1:]  # type: ignore[union-attr]
    with pytest.raises(SignatureError) as info:
        pnc.process_certificate_installation_res(wire(bad), oem_key=oem_key, v2g_roots=roots)  # type: ignore[arg-type]
    assert info.value.reason is SignatureErrorReason.DIGEST_MISMATCH
    # another EV (OEM key) cannot decrypt
    with pytest.raises(KeyDeliveryError) as kinfo:
        pnc.process_certificate_installation_res(wire(res), oem_key=ppki.algorithm.generate_key(), v2g_roots=roots)  # type: ignore[arg-type]
    assert kinfo.value.reason is KR.DECRYPTION_FAILED
    # CPS chain from an unknown root
    with pytest.raises(CertificateChainError):
        pnc.process_certificate_installation_res(wire(res), oem_key=oem_key, v2g_roots=[pnc_pkis["other"].cert("v2gRootCA")])  # type: ignore[arg-type]
    # a CPS that delivers a key not matching the contract certificate
    wrong = install_res(ppki, contract_key=ppki.algorithm.generate_key())
    with pytest.raises(KeyDeliveryError) as kinfo:
        pnc.process_certificate_installation_res(wire(wrong), oem_key=oem_key, v2g_roots=roots)  # type: ignore[arg-type]
    assert kinfo.value.reason is KR.KEY_MISMATCH
    # signed by something that is not the CPS leaf
    forged = install_res(ppki, cps_key=ppki.algorithm.generate_key())
    with pytest.raises(SignatureError) as info:
        pnc.process_certificate_installation_res(wire(forged), oem_key=oem_key, v2g_roots=roots)  # type: ignore[arg-type]
    assert info.value.reason is SignatureErrorReason.BAD_SIGNATURE
    # a response that is not OK
    failed = install_res(ppki, response_code="FAILED")
    with pytest.raises(pnc.PnCError) as pinfo:
        pnc.process_certificate_installation_res(wire(failed), oem_key=oem_key, v2g_roots=roots)  # type: ignore[arg-type]
    assert pinfo.value.reason is pnc.PnCErrorReason.RESPONSE_NOT_OK


# --------------------------------------------------------------------------- MeteringConfirmation

METER = {"MeterID": "METER-1", "ChargedEnergyReadingWh": 12_345, "MeterTimestamp": 1_700_000_100}


def test_metering_confirmation(ppki: PKI) -> None:
    key, cert = ppki.key("contractLeaf"), ppki.cert("contractLeaf")
    for tuple_id in (1, None):  # scheduled and dynamic control modes
        req = pnc.build_metering_confirmation_req(
            session_id=SID, meter_info=METER, key=key, selected_schedule_tuple_id=tuple_id,  # type: ignore[arg-type]
        )
        result = pnc.check_metering_confirmation_req(wire(req), public_key=cert, session_id=SID, expected_meter_info=METER)
        assert result.response_code == "OK" and result.ok
    tampered = copy.deepcopy(req)
    reading = next(e for e in tampered.iter() if e.name == "ChargedEnergyReadingWh")
    reading.value = 1
    result = pnc.check_metering_confirmation_req(wire(tampered), public_key=cert)
    assert (result.response_code, result.reason) == ("FAILED_MeteringSignatureNotValid", "DIGEST_MISMATCH")
    result = pnc.check_metering_confirmation_req(wire(req), public_key=ppki.cert("oemLeaf"))
    assert result.response_code == "FAILED_MeteringSignatureNotValid"
    result = pnc.check_metering_confirmation_req(wire(req), public_key=cert, session_id=bytes(8))
    assert result.response_code == "FAILED_UnknownSession"
    result = pnc.check_metering_confirmation_req(
        wire(req), public_key=cert, expected_meter_info={**METER, "ChargedEnergyReadingWh": 1})
    assert (result.response_code, result.reason) == ("FAILED_MeteringSignatureNotValid", "METER_INFO_MISMATCH")


# --------------------------------------------------------------------------- reference codec


def test_signed_messages_match_the_oracle(oracle: Oracle, pnc_pkis: dict[str, PKI]) -> None:  # noqa: F811
    """Whole signed messages: the reference (EXIficient) encodes their XML to our bytes and decodes ours."""
    messages = []
    for name in ("secp521r1", "ed448"):
        pki = pnc_pkis[name]
        messages += [
            auth_req(pki),
            install_req(pki),
            install_res(pki),
            pnc.build_metering_confirmation_req(session_id=SID, meter_info=METER, key=pki.key("contractLeaf"),  # type: ignore[arg-type]
                                                selected_schedule_tuple_id=3, time_stamp=1_700_000_000),
        ]
    c = codec("common")
    ours = [c.encode(m) for m in messages]
    jobs = [Job.encode("common", c.tree_to_xml(m)) for m in messages] + [Job.decode("common", b) for b in ours]
    results = oracle.run(jobs)
    for msg, data, result in zip(messages, ours, results[: len(messages)]):
        assert result.unwrap() == data, f"{msg.name}: oracle bytes differ"
    for msg, result in zip(messages, results[len(messages):]):
        assert c.xml_to_tree(result.unwrap()) == msg, f"{msg.name}: oracle decodes something else"


# --------------------------------------------------------------------------- no secrets


def test_no_key_material_in_errors_or_logs(pnc_pkis: dict[str, PKI], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    pki = pnc_pkis["secp521r1"]
    secrets_ = [format(pki.key(n).private_numbers().private_value, "x")[:40] for n in ("contractLeaf", "oemLeaf", "cpsLeaf")]  # type: ignore[union-attr]
    texts = []
    res = install_res(pki)
    data = res.find("SignedInstallationData")
    blob = data.find("SECP521_EncryptedPrivateKey").value  # type: ignore[union-attr]
    secrets_.append(blob.hex()[:40])
    for call in (
        lambda: pnc.process_certificate_installation_res(wire(res), oem_key=ec.generate_private_key(ec.SECP521R1()),
                                                         v2g_roots=[pki.cert("v2gRootCA")]),
        lambda: pnc.process_certificate_installation_res(wire(install_res(pki, contract_key=ec.generate_private_key(ec.SECP521R1()))),
                                                         oem_key=pki.key("oemLeaf"), v2g_roots=[pki.cert("v2gRootCA")]),
    ):
        with pytest.raises(Exception) as info:
            call()
        texts.append(str(info.value) + repr(info.value))
    texts.append(repr(pnc.check_pnc_authorization_req(wire(auth_req(pki)), gen_challenge=CHALLENGE, mo_roots=[pki.cert("moRootCA")])))
    text = "\n".join(texts) + caplog.text
    for s in secrets_:
        assert s not in text
    assert not re.search(r"[0-9a-f]{64}", text)
