"""Plug & Charge building blocks for ISO 15118-20 (digest §7.2, §8): pure functions, no I/O.

The sessions code calls these from the EVCC and SECC state machines; they work on
:class:`iso15118.exi.tree.Element` trees of whole messages (``AuthorizationReq`` ...), which the
codec encodes with ``codec("common").encode(tree)`` and the typed layer converts with
``iso15118.messages.<Class>.from_tree(tree)``.

===================================  ====================================  ===========================================
message                              EV / CPS side (build)                  SECC / EV side (check)
===================================  ====================================  ===========================================
AuthorizationReq (PnC)               :func:`build_pnc_authorization_req`    :func:`check_pnc_authorization_req` -> code
CertificateInstallationReq           :func:`build_certificate_installation_req`  :func:`check_certificate_installation_req`
CertificateInstallationRes           :func:`build_certificate_installation_res`  :func:`process_certificate_installation_res`
MeteringConfirmationReq              :func:`build_metering_confirmation_req`     :func:`check_metering_confirmation_req`
===================================  ====================================  ===========================================

Response codes are the exact enumeration values of ``responseCodeType`` (V2G_CI_CommonTypes.xsd).
-20 has no ``FAILED_ChallengeInvalid`` / ``FAILED_CertChainError`` / ``FAILED_CertificateExpired`` /
``FAILED_CertificateRevoked`` / ``FAILED_NoCertificateAvailable`` / ``FAILED_ContractCanceled``
(those are -2 names); their -20 counterparts are WARNINGs that end the PnC attempt but not the
session (digest §5.1, "AuthorizationRes ... PnC" row):

==================================  ==================================================================
situation                           -20 AuthorizationRes ResponseCode
==================================  ==================================================================
all checks pass                     ``OK``; ``OK_CertificateExpiresSoon`` when the contract certificate
                                    expires within ``expires_soon`` (14 days, [V2G20-2218] as cited by
                                    EVerest PR 2849)
GenChallenge differs                ``WARNING_ChallengeInvalid``
no/invalid signature, tampered      ``FAILED_SignatureError`` (the only FAILED here; ends the session)
contract chain: expired             ``WARNING_CertificateExpired``
  not yet valid                     ``WARNING_CertificateNotYetValid``
  revoked (CRL/OCSP)                ``WARNING_CertificateRevoked``
  unknown root, bad chain, other    ``WARNING_CertificateValidationError``
  no contract certificate           ``WARNING_NoCertificateAvailable``
contract canceled / unknown (hook)  whatever ``contract_status`` returns, e.g.
                                    ``WARNING_GeneralPnCAuthorizationError`` or ``WARNING_eMSPUnknown``
SelectedAuthorizationService≠PnC    ``WARNING_AuthorizationSelectionInvalid``
==================================  ==================================================================

Order of the SECC checks (as EVerest PR 2849: [V2G20-2565] challenge, [V2G20-461] signature, then
the chain): challenge, signature over ``PnC_AReqAuthorizationMode`` with the leaf of the received
ContractCertificateChain, chain to an MO root, eMAID, backend hook, expiry warning.

Signer of ``SignedMeteringData`` (digest: UNVERIFIED): the contract certificate's key by analogy with
the -2 MeteringReceiptReq; :func:`check_metering_confirmation_req` takes whatever key/certificate the
caller considers right.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from iso15118.exi.tree import Element

# the -20 response codes live in iso15118.facts (the generated responseCodeType enum)
from iso15118.facts.codes import RESPONSE_CODES, ResponseCode
from iso15118.security.algorithms import ISO20_POLICY, AlgorithmPolicy
from iso15118.security.keydelivery import (
    CURVE_SECP521,
    CURVE_X448,
    EncryptedContractKey,
    decrypt_private_key,
    encrypt_private_key,
)
from iso15118.security.validation import (
    CertificateChainError,
    ChainErrorReason,
    Purpose,
    emaid_from_certificate,
    validate_chain,
)
from iso15118.security.xmldsig import (
    ID_ATTR,
    ISO20_PROFILE,
    NS_CM,
    NS_CT,
    NS_DS,
    Profile,
    SignatureError,
    element_id,
    sign,
    verify,
)

__all__ = [
    "ResponseCode",
    "RESPONSE_CODES",
    "GEN_CHALLENGE_LENGTH",
    "PnCError",
    "PnCErrorReason",
    "AuthorizationCheck",
    "InstallationReqCheck",
    "InstalledContract",
    "MeteringCheck",
    "new_gen_challenge",
    "pnc_authorization_setup_mode",
    "message_header",
    "certificate_chain_element",
    "parse_certificate_chain",
    "build_pnc_authorization_req",
    "check_pnc_authorization_req",
    "build_certificate_installation_req",
    "check_certificate_installation_req",
    "build_certificate_installation_res",
    "process_certificate_installation_res",
    "build_metering_confirmation_req",
    "check_metering_confirmation_req",
]

GEN_CHALLENGE_LENGTH = 16
PrivateKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
CertLike = x509.Certificate | bytes


class PnCErrorReason(str, enum.Enum):
    """Structural problems of a PnC message (signature/chain/key errors keep their own types)."""

    MALFORMED = "MALFORMED"
    RESPONSE_NOT_OK = "RESPONSE_NOT_OK"
    BAD_CERTIFICATE = "BAD_CERTIFICATE"
    EMAID_MISMATCH = "EMAID_MISMATCH"


class PnCError(Exception):
    """A PnC message could not be used; ``reason`` says why."""

    def __init__(self, reason: PnCErrorReason, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {message}")


# --------------------------------------------------------------------------- element helpers


def _cm(name: str, value: Any = None, children: list[Any] | None = None, attrs: dict[Any, Any] | None = None) -> Element:
    return Element(NS_CM, name, attrs or {}, children or [], value)


def _ct(name: str, value: Any = None, children: list[Any] | None = None) -> Element:
    return Element(NS_CT, name, {}, children or [], value)


def _der(cert: CertLike) -> bytes:
    return cert if isinstance(cert, bytes) else cert.public_bytes(Encoding.DER)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_gen_challenge() -> bytes:
    """A fresh 16-byte GenChallenge for PnC_ASResAuthorizationMode (CSPRNG)."""
    return secrets.token_bytes(GEN_CHALLENGE_LENGTH)


def message_header(session_id: bytes, time_stamp: int | None = None, signature: Element | None = None) -> Element:
    """``Header`` (CommonTypes): SessionID (8 bytes), TimeStamp (Unix seconds), optional ds:Signature."""
    if len(session_id) != 8:
        raise ValueError("SessionID must be 8 bytes")
    children: list[Element | str] = [
        _ct("SessionID", bytes(session_id)),
        _ct("TimeStamp", int(time.time()) if time_stamp is None else int(time_stamp)),
    ]
    if signature is not None:
        children.append(signature)
    return _ct("Header", children=children)


def certificate_chain_element(
    name: str,
    chain: Sequence[CertLike],
    *,
    id_value: str | None = None,
    sub_certificates_required: bool = False,
) -> Element:
    """A -20 certificate chain element (``ContractCertificateChain``, ``CPSCertificateChain``,
    ``OEMProvisioningCertificateChain`` with ``id_value``): leaf first, then up to 3 Sub-CAs."""
    if not chain:
        raise ValueError(f"{name}: empty chain")
    subs = list(chain[1:])
    if len(subs) > 3:
        raise ValueError(f"{name}: at most 3 SubCertificates")
    if sub_certificates_required and not subs:
        raise ValueError(f"{name}: SubCertificates are mandatory")
    children: list[Element | str] = [_cm("Certificate", _der(chain[0]))]
    if subs:
        children.append(_cm("SubCertificates", children=[_cm("Certificate", _der(c)) for c in subs]))
    el = _cm(name, children=children)
    if id_value is not None:
        el.attrs[ID_ATTR] = id_value
    return el


def parse_certificate_chain(element: Element) -> list[x509.Certificate]:
    """Leaf first; raises :class:`PnCError` (``BAD_CERTIFICATE`` / ``MALFORMED``)."""
    leaf = element.find("Certificate")
    if leaf is None or not isinstance(leaf.value, (bytes, bytearray)):
        raise PnCError(PnCErrorReason.MALFORMED, f"{element.name} without Certificate")
    raw = [bytes(leaf.value)]
    subs = element.find("SubCertificates")
    if subs is not None:
        raw += [bytes(c.value) for c in subs.findall("Certificate") if isinstance(c.value, (bytes, bytearray))]
    try:
        return [x509.load_der_x509_certificate(d) for d in raw]
    except ValueError:
        raise PnCError(PnCErrorReason.BAD_CERTIFICATE, f"{element.name} holds a certificate that is not DER X.509") from None


def _header_signature(message: Element) -> Element | None:
    header = message.find("Header")
    return header.find("Signature") if header is not None else None


def _code_for_chain_error(exc: CertificateChainError) -> str:
    return exc.response_code


# --------------------------------------------------------------------------- Authorization


def pnc_authorization_setup_mode(gen_challenge: bytes, supported_providers: Sequence[str] = ()) -> Element:
    """SECC side: ``PnC_ASResAuthorizationMode`` for AuthorizationSetupRes (GenChallenge from
    :func:`new_gen_challenge`, optional SupportedProviders, at most 128)."""
    if len(gen_challenge) != GEN_CHALLENGE_LENGTH:
        raise ValueError("GenChallenge must be 16 bytes")
    if len(supported_providers) > 128:
        raise ValueError("at most 128 SupportedProviders")
    children: list[Element | str] = [_cm("GenChallenge", bytes(gen_challenge))]
    if supported_providers:
        children.append(_cm("SupportedProviders", children=[_cm("ProviderID", p) for p in supported_providers]))
    return _cm("PnC_ASResAuthorizationMode", children=children)


def build_pnc_authorization_req(
    *,
    session_id: bytes,
    gen_challenge: bytes,
    contract_chain: Sequence[CertLike],
    contract_key: PrivateKey,
    time_stamp: int | None = None,
    id_value: str = "PnC_AReq",
    algorithm: str | None = None,
) -> Element:
    """EV side: AuthorizationReq with PnC_AReqAuthorizationMode (Id, GenChallenge echoed from
    AuthorizationSetupRes, ContractCertificateChain leaf + Sub-CAs) signed with the contract key;
    the ds:Signature goes into the Header."""
    if len(gen_challenge) != GEN_CHALLENGE_LENGTH:
        raise ValueError("GenChallenge must be 16 bytes")
    mode = _cm(
        "PnC_AReqAuthorizationMode",
        attrs={ID_ATTR: id_value},
        children=[
            _cm("GenChallenge", bytes(gen_challenge)),
            certificate_chain_element("ContractCertificateChain", contract_chain, sub_certificates_required=True),
        ],
    )
    signature = sign([mode], contract_key, algorithm)
    return _cm(
        "AuthorizationReq",
        children=[message_header(session_id, time_stamp, signature), _cm("SelectedAuthorizationService", "PnC"), mode],
    )


@dataclass(frozen=True)
class AuthorizationCheck:
    """Outcome of :func:`check_pnc_authorization_req`."""

    response_code: str
    reason: str | None = None  # machine-readable detail (SignatureErrorReason / ChainErrorReason value ...)
    emaid: str | None = None
    contract_certificate: x509.Certificate | None = field(default=None, repr=False)
    #: False when ``mo_roots=None`` skipped the chain validation (left to the backend).
    chain_checked: bool = True

    @property
    def ok(self) -> bool:
        """True for OK / OK_CertificateExpiresSoon: the checks made here passed."""
        return self.response_code.startswith("OK")


def check_pnc_authorization_req(
    request: Element,
    *,
    gen_challenge: bytes,
    mo_roots: Sequence[x509.Certificate] | None,
    at: dt.datetime | None = None,
    crls: Iterable[x509.CertificateRevocationList] | None = None,
    ocsp_responses: Iterable[ocsp.OCSPResponse] | None = None,
    contract_status: Callable[[str, x509.Certificate], str | None] | None = None,
    expires_soon: dt.timedelta = dt.timedelta(days=14),
    profile: Profile = ISO20_PROFILE,
    policy: AlgorithmPolicy = ISO20_POLICY,
) -> AuthorizationCheck:
    """SECC side: the -20 ResponseCode for a PnC AuthorizationReq (see the module table).

    ``gen_challenge`` is the one sent in AuthorizationSetupRes; ``mo_roots`` the trusted MO roots
    (``None``: the SECC has none and leaves the chain to the backend, e.g. OCPP Authorize with the
    chain; the signature and the eMAID shape are still checked, ``chain_checked`` is False);
    ``contract_status(emaid, leaf)`` may return a response code (e.g. a canceled contract) or None.
    Never raises for bad input: every problem maps to a code, ``reason`` says which check failed.
    """
    service = request.find("SelectedAuthorizationService")
    mode = request.find("PnC_AReqAuthorizationMode")
    if service is None or service.value != "PnC" or mode is None:
        return AuthorizationCheck(ResponseCode.WARNING_AUTHORIZATION_SELECTION_INVALID.value, "NOT_PNC")
    challenge = mode.find("GenChallenge")
    if (
        challenge is None
        or not isinstance(challenge.value, (bytes, bytearray))
        or not hmac.compare_digest(bytes(challenge.value), bytes(gen_challenge))
    ):
        return AuthorizationCheck(ResponseCode.WARNING_CHALLENGE_INVALID.value, "CHALLENGE_MISMATCH")
    chain_el = mode.find("ContractCertificateChain")
    if chain_el is None:
        return AuthorizationCheck(ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE.value, ChainErrorReason.NO_CERTIFICATE.value)
    try:
        chain = parse_certificate_chain(chain_el)
    except PnCError as exc:
        return AuthorizationCheck(ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR.value, exc.reason.value)
    leaf = chain[0]
    signature = _header_signature(request)
    mode_id = element_id(mode)
    if signature is None or not mode_id:
        return AuthorizationCheck(ResponseCode.FAILED_SIGNATURE_ERROR.value, "NO_SIGNATURE", contract_certificate=leaf)
    try:
        verify(signature, {mode_id: mode}, leaf, profile=profile, required_ids=[mode_id])
    except SignatureError as exc:
        return AuthorizationCheck(ResponseCode.FAILED_SIGNATURE_ERROR.value, exc.reason.value, contract_certificate=leaf)
    try:
        if mo_roots is not None:
            validate_chain(
                leaf, chain[1:], mo_roots, at=at, purpose=Purpose.CONTRACT, crls=crls, ocsp=ocsp_responses, policy=policy
            )
        emaid = emaid_from_certificate(leaf)
    except CertificateChainError as exc:
        return AuthorizationCheck(_code_for_chain_error(exc), exc.reason.value, contract_certificate=leaf)
    if contract_status is not None:
        code = contract_status(emaid, leaf)
        if code is not None and code not in ("OK", "OK_CertificateExpiresSoon"):
            if code not in RESPONSE_CODES:
                raise ValueError(f"contract_status returned {code!r}, not a -20 responseCodeType value")
            return AuthorizationCheck(code, "CONTRACT_STATUS", emaid, leaf, mo_roots is not None)
    when = at or _now()
    if leaf.not_valid_after_utc - when <= expires_soon:
        return AuthorizationCheck(ResponseCode.OK_CERTIFICATE_EXPIRES_SOON.value, None, emaid, leaf, mo_roots is not None)
    return AuthorizationCheck(ResponseCode.OK.value, None, emaid, leaf, mo_roots is not None)


# --------------------------------------------------------------------------- CertificateInstallation


def _root_certificate_id(item: x509.Certificate | tuple[str, int]) -> Element:
    if isinstance(item, x509.Certificate):
        issuer, serial = item.issuer.rfc4514_string(), item.serial_number
    else:
        issuer, serial = item
    return _ct(
        "RootCertificateID",
        children=[Element(NS_DS, "X509IssuerName", value=issuer), Element(NS_DS, "X509SerialNumber", value=int(serial))],
    )


def build_certificate_installation_req(
    *,
    session_id: bytes,
    oem_chain: Sequence[CertLike],
    oem_key: PrivateKey,
    root_certificates: Sequence[x509.Certificate | tuple[str, int]],
    maximum_contract_certificate_chains: int = 1,
    prioritized_emaids: Sequence[str] = (),
    time_stamp: int | None = None,
    id_value: str = "OEMProvChain",
    algorithm: str | None = None,
) -> Element:
    """EV side: CertificateInstallationReq; ``OEMProvisioningCertificateChain`` (with Id) is signed
    with the OEM provisioning key.  ``root_certificates`` (1–20): the roots the EV trusts, as
    certificates or (issuer RFC 4514 name, serial) pairs -> ListOfRootCertificateIDs."""
    if not 1 <= len(root_certificates) <= 20:
        raise ValueError("ListOfRootCertificateIDs holds 1 to 20 entries")
    if not 0 <= maximum_contract_certificate_chains <= 255:
        raise ValueError("MaximumContractCertificateChains is an unsignedByte")
    if len(prioritized_emaids) > 8:
        raise ValueError("at most 8 PrioritizedEMAIDs")
    chain_el = certificate_chain_element("OEMProvisioningCertificateChain", oem_chain, id_value=id_value)
    signature = sign([chain_el], oem_key, algorithm)
    children: list[Element | str] = [
        message_header(session_id, time_stamp, signature),
        chain_el,
        _cm("ListOfRootCertificateIDs", children=[_root_certificate_id(r) for r in root_certificates]),
        _cm("MaximumContractCertificateChains", int(maximum_contract_certificate_chains)),
    ]
    if prioritized_emaids:
        children.append(_cm("PrioritizedEMAIDs", children=[_cm("EMAID", e) for e in prioritized_emaids]))
    return _cm("CertificateInstallationReq", children=children)


@dataclass(frozen=True)
class InstallationReqCheck:
    """Outcome of :func:`check_certificate_installation_req`."""

    response_code: str
    reason: str | None = None
    oem_certificate: x509.Certificate | None = field(default=None, repr=False)
    root_certificate_ids: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.response_code.startswith("OK")


def check_certificate_installation_req(
    request: Element,
    *,
    oem_roots: Sequence[x509.Certificate] | None,
    at: dt.datetime | None = None,
    profile: Profile = ISO20_PROFILE,
    policy: AlgorithmPolicy = ISO20_POLICY,
) -> InstallationReqCheck:
    """SECC/CPS side: verify the OEM provisioning signature (``FAILED_SignatureError``) and, when
    ``oem_roots`` is given, the OEM chain (WARNING_Certificate* codes).  ``oem_roots=None`` skips
    the chain check (the SECC may leave it to the CPS behind the backend)."""
    chain_el = request.find("OEMProvisioningCertificateChain")
    if chain_el is None:
        return InstallationReqCheck(ResponseCode.FAILED.value, PnCErrorReason.MALFORMED.value)
    try:
        chain = parse_certificate_chain(chain_el)
    except PnCError as exc:
        return InstallationReqCheck(ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR.value, exc.reason.value)
    ids: list[tuple[str, int]] = []
    lst = request.find("ListOfRootCertificateIDs")
    for rid in lst.findall("RootCertificateID") if lst is not None else []:
        name, serial = rid.find("X509IssuerName"), rid.find("X509SerialNumber")
        if name is not None and serial is not None:
            ids.append((str(name.value), int(serial.value)))
    signature = _header_signature(request)
    chain_id = element_id(chain_el)
    if signature is None or not chain_id:
        return InstallationReqCheck(ResponseCode.FAILED_SIGNATURE_ERROR.value, "NO_SIGNATURE", chain[0], tuple(ids))
    try:
        verify(signature, {chain_id: chain_el}, chain[0], profile=profile, required_ids=[chain_id])
    except SignatureError as exc:
        return InstallationReqCheck(ResponseCode.FAILED_SIGNATURE_ERROR.value, exc.reason.value, chain[0], tuple(ids))
    if oem_roots is not None:
        try:
            validate_chain(chain[0], chain[1:], oem_roots, at=at, purpose=Purpose.OEM_PROVISIONING, policy=policy)
        except CertificateChainError as exc:
            return InstallationReqCheck(_code_for_chain_error(exc), exc.reason.value, chain[0], tuple(ids))
    return InstallationReqCheck(ResponseCode.OK.value, None, chain[0], tuple(ids))


def build_certificate_installation_res(
    *,
    session_id: bytes,
    oem_certificate: x509.Certificate,
    contract_chain: Sequence[CertLike],
    contract_key: PrivateKey,
    cps_chain: Sequence[CertLike],
    cps_key: PrivateKey,
    remaining_contract_certificate_chains: int = 0,
    evse_processing: str = "Finished",
    response_code: str = "OK",
    time_stamp: int | None = None,
    id_value: str = "SignedInstallationData",
    curve: str | None = None,
    algorithm: str | None = None,
) -> Element:
    """CPS side (relayed by the SECC): CertificateInstallationRes whose SignedInstallationData
    carries the contract chain and the contract key encrypted for ``oem_certificate``
    (:mod:`iso15118.security.keydelivery`), signed with the CPS leaf key."""
    if response_code not in RESPONSE_CODES:
        raise ValueError(f"{response_code!r} is not a -20 responseCodeType value")
    delivered = encrypt_private_key(contract_key, oem_certificate, curve=curve)
    data = _cm(
        "SignedInstallationData",
        attrs={ID_ATTR: id_value},
        children=[
            certificate_chain_element("ContractCertificateChain", contract_chain, sub_certificates_required=True),
            _cm("ECDHCurve", delivered.curve),
            _cm("DHPublicKey", delivered.dh_public_key),
            _cm(delivered.element_name, delivered.encrypted_private_key),
        ],
    )
    signature = sign([data], cps_key, algorithm)
    return _cm(
        "CertificateInstallationRes",
        children=[
            message_header(session_id, time_stamp, signature),
            _ct("ResponseCode", response_code),
            _cm("EVSEProcessing", evse_processing),
            certificate_chain_element("CPSCertificateChain", cps_chain),
            data,
            _cm("RemainingContractCertificateChains", int(remaining_contract_certificate_chains)),
        ],
    )


@dataclass(frozen=True)
class InstalledContract:
    """What the EV keeps from a CertificateInstallationRes."""

    chain: list[x509.Certificate] = field(repr=False)  # leaf first
    private_key: PrivateKey = field(repr=False)
    emaid: str
    remaining_contract_certificate_chains: int = 0


def process_certificate_installation_res(
    response: Element,
    *,
    oem_key: PrivateKey,
    v2g_roots: Sequence[x509.Certificate],
    mo_roots: Sequence[x509.Certificate] | None = None,
    at: dt.datetime | None = None,
    profile: Profile = ISO20_PROFILE,
    policy: AlgorithmPolicy = ISO20_POLICY,
) -> InstalledContract:
    """EV side: check and unpack a CertificateInstallationRes.

    1. ResponseCode must be OK* (``PnCError RESPONSE_NOT_OK``);
    2. the CPS chain must validate to a V2G root with the CPS role (:class:`CertificateChainError`);
    3. the Header signature must cover SignedInstallationData and verify with the CPS leaf
       (:class:`SignatureError`);
    4. the contract chain is validated against ``mo_roots`` when given (the EV often has none);
    5. the key is decrypted with the OEM provisioning key and must match the contract leaf
       (:class:`KeyDeliveryError`, ``KEY_MISMATCH``).
    """
    code = response.find("ResponseCode")
    if code is None or not str(code.value).startswith("OK"):
        raise PnCError(PnCErrorReason.RESPONSE_NOT_OK, f"ResponseCode {None if code is None else code.value}")
    cps_el, data = response.find("CPSCertificateChain"), response.find("SignedInstallationData")
    if cps_el is None or data is None:
        raise PnCError(PnCErrorReason.MALFORMED, "CPSCertificateChain or SignedInstallationData missing")
    cps_chain = parse_certificate_chain(cps_el)
    validate_chain(cps_chain[0], cps_chain[1:], v2g_roots, at=at, purpose=Purpose.CPS, policy=policy)
    signature, data_id = _header_signature(response), element_id(data)
    if signature is None or not data_id:
        raise PnCError(PnCErrorReason.MALFORMED, "no Header signature or SignedInstallationData Id")
    verify(signature, {data_id: data}, cps_chain[0], profile=profile, required_ids=[data_id])
    chain_el = data.find("ContractCertificateChain")
    if chain_el is None:
        raise PnCError(PnCErrorReason.MALFORMED, "SignedInstallationData without ContractCertificateChain")
    contract_chain = parse_certificate_chain(chain_el)
    if mo_roots is not None:
        validate_chain(contract_chain[0], contract_chain[1:], mo_roots, at=at, purpose=Purpose.CONTRACT, policy=policy)
    curve_el, dh_el = data.find("ECDHCurve"), data.find("DHPublicKey")
    curve = str(curve_el.value) if curve_el is not None else ""
    enc_el = data.find(f"{curve}_EncryptedPrivateKey") if curve in (CURVE_SECP521, CURVE_X448) else None
    if dh_el is None or enc_el is None:
        raise PnCError(PnCErrorReason.MALFORMED, f"no DHPublicKey or encrypted key for ECDHCurve {curve!r}")
    key = decrypt_private_key(
        EncryptedContractKey(curve, bytes(dh_el.value), bytes(enc_el.value)),
        oem_key,  # type: ignore[arg-type]
        expected_public_key=contract_chain[0],
    )
    remaining = response.find("RemainingContractCertificateChains")
    return InstalledContract(
        chain=contract_chain,
        private_key=key,
        emaid=emaid_from_certificate(contract_chain[0]),
        remaining_contract_certificate_chains=int(remaining.value) if remaining is not None else 0,
    )


# --------------------------------------------------------------------------- MeteringConfirmation

_METER_INFO_FIELDS = (
    "MeterID",
    "ChargedEnergyReadingWh",
    "BPT_DischargedEnergyReadingWh",
    "CapacitiveEnergyReadingVARh",
    "BPT_InductiveEnergyReadingVARh",
    "MeterSignature",
    "MeterStatus",
    "MeterTimestamp",
)


def _meter_info(info: Element | Mapping[str, Any]) -> Element:
    if isinstance(info, Element):
        return Element(NS_CM, "MeterInfo", dict(info.attrs), list(info.children), info.value)
    unknown = set(info) - set(_METER_INFO_FIELDS)
    if unknown:
        raise ValueError(f"unknown MeterInfo field(s): {sorted(unknown)}")
    return _cm("MeterInfo", children=[_ct(n, info[n]) for n in _METER_INFO_FIELDS if info.get(n) is not None])


def build_metering_confirmation_req(
    *,
    session_id: bytes,
    meter_info: Element | Mapping[str, Any],
    key: PrivateKey,
    selected_schedule_tuple_id: int | None = None,
    receipt: Element | None = None,
    time_stamp: int | None = None,
    id_value: str = "SignedMeteringData",
    algorithm: str | None = None,
) -> Element:
    """EV side: MeteringConfirmationReq with SignedMeteringData signed by ``key`` (the contract key,
    see module docstring).  ``selected_schedule_tuple_id`` given -> Scheduled_SMDTControlMode, else
    Dynamic_SMDTControlMode.  ``meter_info`` is a MeterInfo element or a mapping of its fields
    (``{"MeterID": "M1", "ChargedEnergyReadingWh": 12000}``) as received in the charge loop."""
    children: list[Element | str] = [_cm("SessionID", bytes(session_id)), _meter_info(meter_info)]
    if receipt is not None:
        children.append(Element(NS_CM, "Receipt", dict(receipt.attrs), list(receipt.children), receipt.value))
    if selected_schedule_tuple_id is None:
        children.append(_cm("Dynamic_SMDTControlMode"))
    else:
        children.append(
            _cm("Scheduled_SMDTControlMode", children=[_cm("SelectedScheduleTupleID", int(selected_schedule_tuple_id))])
        )
    data = _cm("SignedMeteringData", attrs={ID_ATTR: id_value}, children=children)
    signature = sign([data], key, algorithm)
    return _cm("MeteringConfirmationReq", children=[message_header(session_id, time_stamp, signature), data])


@dataclass(frozen=True)
class MeteringCheck:
    """Outcome of :func:`check_metering_confirmation_req`."""

    response_code: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.response_code == "OK"


def check_metering_confirmation_req(
    request: Element,
    *,
    public_key: ec.EllipticCurvePublicKey | ed448.Ed448PublicKey | x509.Certificate,
    session_id: bytes | None = None,
    expected_meter_info: Element | Mapping[str, Any] | None = None,
    profile: Profile = ISO20_PROFILE,
) -> MeteringCheck:
    """SECC side: ``OK`` or ``FAILED_MeteringSignatureNotValid`` (signature, or signed MeterInfo
    differing from ``expected_meter_info``), ``FAILED_UnknownSession`` when the signed SessionID is
    not ``session_id``."""
    data = request.find("SignedMeteringData")
    signature = _header_signature(request)
    data_id = element_id(data) if data is not None else None
    if data is None or signature is None or not data_id:
        return MeteringCheck(ResponseCode.FAILED_METERING_SIGNATURE_NOT_VALID.value, "NO_SIGNATURE")
    try:
        verify(signature, {data_id: data}, public_key, profile=profile, required_ids=[data_id])
    except SignatureError as exc:
        return MeteringCheck(ResponseCode.FAILED_METERING_SIGNATURE_NOT_VALID.value, exc.reason.value)
    if session_id is not None:
        sid = data.find("SessionID")
        if sid is None or bytes(sid.value) != bytes(session_id):
            return MeteringCheck(ResponseCode.FAILED_UNKNOWN_SESSION.value, "SESSION_MISMATCH")
    if expected_meter_info is not None and data.find("MeterInfo") != _meter_info(expected_meter_info):
        return MeteringCheck(ResponseCode.FAILED_METERING_SIGNATURE_NOT_VALID.value, "METER_INFO_MISMATCH")
    return MeteringCheck(ResponseCode.OK.value)
