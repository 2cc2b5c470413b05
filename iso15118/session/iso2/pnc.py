"""ISO 15118-2 contract provisioning in the sans-IO cores (both roles): CertificateInstallation
and CertificateUpdate, on :mod:`iso15118.security.pnc2` (signatures) and
:mod:`iso15118.security.keydelivery2` (contract key delivery), plus the lab-PKI loaders of -2
Plug & Charge.  PaymentDetails, the signed Authorization and MeteringReceipt are the cores' own
(``secc.py`` / ``evcc.py``); the SECC's settings are ``secc.Iso2SeccPnC``.

After PaymentServiceSelection(Contract) (over TLS only), before PaymentDetails:

* CertificateInstallationReq (EV without a contract; signed with its OEM provisioning key) ->
  CertificateInstallationRes: the contract chain, its key encrypted for the OEM provisioning
  certificate, DHpublickey and eMAID, signed by the CPS leaf (SAProvisioningCertificateChain).
  The EV checks the CPS chain against its V2G roots, the signature, the contract chain against
  its MO roots (if it has any), decrypts the key and checks it against the contract certificate.
* CertificateUpdateReq likewise with the old contract (its chain to the SECC's MO roots, its
  signature, the new key encrypted for it).

Refusals and their codes (the -2 ``responseCodeType``; each FAILED ends the session):

=================================================  ========================================
contract / OEM / CPS chain expired, not yet valid  FAILED_CertificateExpired
a certificate of the chain revoked (CRL / OCSP)    FAILED_CertificateRevoked
any other chain error (unknown root, wrong role,   FAILED_CertChainError
algorithm, eMAID differs from the certificate)
bad or missing signature                           FAILED_SignatureError
(the EV: the same codes end its session)
no contract to deliver                             FAILED_NoCertificateAvailable
installation / update in an EIM session            FAILED_SequenceError
=================================================  ========================================
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from iso15118.facts.codes import ISO2_CHAIN_CODES
from iso15118.messages import Signature, X509IssuerSerial
from iso15118.messages import iso2 as m2
from iso15118.security import pnc2, xmldsig
from iso15118.security.algorithms import ISO2_POLICY
from iso15118.security.keydelivery import KeyDeliveryError
from iso15118.security.keydelivery2 import EncryptedContractKey2, decrypt_private_key_iso2, encrypt_private_key_iso2
from iso15118.security.validation import (
    CertificateChainError,
    Purpose,
    emaid_from_certificate,
    verified_path,
)
from iso15118.session.pnc import ContractCredentials, ProvisioningCredentials


class ProvisioningSettings(Protocol):
    """What the SECC's PnC settings (``secc.Iso2SeccPnC``) give this module."""

    @property
    def mo_roots(self) -> tuple[x509.Certificate, ...]: ...
    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]: ...
    @property
    def ocsp_responses(self) -> tuple[Any, ...]: ...
    @property
    def cps_chain(self) -> tuple[x509.Certificate, ...]: ...
    @property
    def cps_key(self) -> Any: ...
    @property
    def contracts(self) -> Any: ...

log = logging.getLogger(__name__)

RC = m2.ResponseCode
BODY_NS = "urn:iso:15118:2:2013:MsgBody"
DELIVERY_IDS = ("id1", "id2", "id3", "id4")
"""Ids of ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey, eMAID."""

__all__ = [
    "ContractSource",
    "EvccPnCState",
    "PnCRefusal",
    "SeccPnCState",
    "chain_code",
    "ProvisioningSettings",
]


class PnCRefusal(Exception):
    """A PnC step refused with a -2 response code (SECC: the FAILED answer; EVCC: why it stops)."""

    def __init__(self, code: RC, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def chain_code(exc: CertificateChainError) -> RC:
    """The -2 response code for a refused certificate chain (``facts.codes.ISO2_CHAIN_CODES``): the
    SECC core's PaymentDetails and this module's provisioning checks answer alike."""
    return ISO2_CHAIN_CODES.get(exc.reason.value, RC.FAILED_CERT_CHAIN_ERROR)


# --------------------------------------------------------------------------- typed <-> x509


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def chain_element(chain: Sequence[x509.Certificate], ident: str | None = None) -> m2.CertificateChain:
    subs = [_der(c) for c in chain[1:]]
    return m2.CertificateChain(certificate=_der(chain[0]),
                               sub_certificates=m2.SubCertificates(certificate=subs) if subs else None, id=ident)


def chain_of(element: m2.CertificateChain) -> list[x509.Certificate]:
    """The certificates of a -2 CertificateChain, leaf first (FAILED_CertChainError if unreadable)."""
    ders = [element.certificate, *(element.sub_certificates.certificate if element.sub_certificates else ())]
    try:
        return [x509.load_der_x509_certificate(bytes(d)) for d in ders]
    except ValueError as exc:
        raise PnCRefusal(RC.FAILED_CERT_CHAIN_ERROR, f"unreadable certificate: {exc}") from None


def _verify_chain(chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], purpose: Purpose,
                  crls: Sequence[Any] = (), ocsp: Sequence[Any] = ()) -> None:
    try:
        verified_path(chain[0], list(chain[1:]), list(roots), purpose=purpose, policy=ISO2_POLICY,
                      crls=crls, ocsp=ocsp)
    except CertificateChainError as exc:
        raise PnCRefusal(chain_code(exc), str(exc)) from None


def _same_emaid(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        return x.replace("-", "").upper()

    return norm(a) == norm(b) or norm(a)[:14] == norm(b)[:14] and min(len(norm(a)), len(norm(b))) == 14


def _delivery_parts(res: m2.CertificateInstallationRes | m2.CertificateUpdateRes) -> list[pnc2.SignedPart]:
    return [
        (res.contract_signature_cert_chain, "ContractSignatureCertChain", BODY_NS),
        (res.contract_signature_encrypted_private_key, "ContractSignatureEncryptedPrivateKey", BODY_NS),
        (res.d_hpublickey, "DHpublickey", BODY_NS),
        (res.e_ma_id, "eMAID", BODY_NS),
    ]


# --------------------------------------------------------------------------- SECC side

ContractSource = Callable[[x509.Certificate], tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey]]
"""The CPS behind the SECC: for the EV's OEM provisioning (or old contract) certificate, a contract
chain (leaf first, root excluded) and its private key."""


@dataclass
class SeccPnCState:
    """What one SECC session knows of its PnC exchange."""

    installed: int = 0

    # ---- CertificateInstallation / CertificateUpdate

    def certificate_installation(self, cfg: ProvisioningSettings, msg: m2.V2GMessage) -> tuple[m2.CertificateInstallationRes, Signature]:
        req = msg.body.body_element
        assert isinstance(req, m2.CertificateInstallationReq)
        try:
            oem = x509.load_der_x509_certificate(bytes(req.oem_provisioning_cert))
        except ValueError as exc:
            raise PnCRefusal(RC.FAILED_CERT_CHAIN_ERROR, f"unreadable OEM provisioning certificate: {exc}") from None
        self._check_signed(msg, req, oem)
        now = dt.datetime.now(dt.UTC)
        if not oem.not_valid_before_utc <= now <= oem.not_valid_after_utc:
            raise PnCRefusal(RC.FAILED_CERTIFICATE_EXPIRED, "OEM provisioning certificate not valid now")
        return self._deliver(cfg, oem, m2.CertificateInstallationRes)  # type: ignore[return-value]

    def certificate_update(self, cfg: ProvisioningSettings, msg: m2.V2GMessage) -> tuple[m2.CertificateUpdateRes, Signature]:
        req = msg.body.body_element
        assert isinstance(req, m2.CertificateUpdateReq)
        chain = chain_of(req.contract_signature_cert_chain)
        self._check_signed(msg, req, chain[0])
        _verify_chain(chain, cfg.mo_roots, Purpose.CONTRACT, cfg.crls, cfg.ocsp_responses)
        return self._deliver(cfg, chain[0], m2.CertificateUpdateRes)  # type: ignore[return-value]

    @staticmethod
    def _check_signed(msg: m2.V2GMessage, req: Any, cert: x509.Certificate) -> None:
        if msg.header.signature is None:
            raise PnCRefusal(RC.FAILED_SIGNATURE_ERROR, f"{type(req).__name__} without a signature")
        try:
            pnc2.verify_elements(msg.header.signature, [req], cert, required_ids=[req.id])
        except xmldsig.SignatureError as exc:
            raise PnCRefusal(RC.FAILED_SIGNATURE_ERROR, str(exc)) from None

    def _deliver(self, cfg: ProvisioningSettings, recipient: x509.Certificate, cls: Any) -> tuple[Any, Signature]:
        if cfg.contracts is None or cfg.cps_key is None or not cfg.cps_chain:
            raise PnCRefusal(RC.FAILED_NO_CERTIFICATE_AVAILABLE, "no certificate provisioning service")
        chain, key = cfg.contracts(recipient)
        try:
            blob = encrypt_private_key_iso2(key, recipient)
        except KeyDeliveryError as exc:
            raise PnCRefusal(RC.FAILED_CERT_CHAIN_ERROR, str(exc)) from None
        res = cls(
            response_code=RC.OK,
            sa_provisioning_certificate_chain=chain_element(cfg.cps_chain),
            contract_signature_cert_chain=chain_element(chain, DELIVERY_IDS[0]),
            contract_signature_encrypted_private_key=m2.ContractSignatureEncryptedPrivateKey(
                value=blob.encrypted_private_key, id=DELIVERY_IDS[1]),
            d_hpublickey=m2.DiffieHellmanPublickey(value=blob.dh_public_key, id=DELIVERY_IDS[2]),
            e_ma_id=m2.EMAID(value=emaid_from_certificate(chain[0]), id=DELIVERY_IDS[3]),
        )
        self.installed += 1
        return res, pnc2.sign_elements(_delivery_parts(res), cfg.cps_key)


# --------------------------------------------------------------------------- EVCC side


@dataclass
class EvccPnCState:
    """What one EVCC session holds for -2 PnC: the contract (installed or brought along)."""

    contract: ContractCredentials | None = field(default=None, repr=False)
    provisioning: ProvisioningCredentials | None = field(default=None, repr=False)
    installed: bool = False
    updated: bool = False

    def installation_req(self) -> tuple[m2.CertificateInstallationReq, Signature]:
        prov = self.provisioning
        assert prov is not None
        roots = [X509IssuerSerial(x509_issuer_name=c.issuer.rfc4514_string(), x509_serial_number=c.serial_number)
                 for c in prov.root_ids()] or [X509IssuerSerial(x509_issuer_name="CN=none", x509_serial_number=0)]
        req = m2.CertificateInstallationReq(
            oem_provisioning_cert=_der(prov.oem_chain[0]),
            list_of_root_certificate_ids=m2.ListOfRootCertificateIDs(root_certificate_id=roots), id="id1")
        return req, pnc2.sign_elements([req], prov.oem_key)  # type: ignore[arg-type]

    def update_req(self) -> tuple[m2.CertificateUpdateReq, Signature]:
        """CertificateUpdateReq for the contract held, signed with its key."""
        assert self.contract is not None
        prov = self.provisioning
        roots = prov.root_ids() if prov is not None else []
        ids = [X509IssuerSerial(x509_issuer_name=c.issuer.rfc4514_string(), x509_serial_number=c.serial_number)
               for c in roots] or [X509IssuerSerial(x509_issuer_name=self.contract.chain[-1].issuer.rfc4514_string(),
                                                    x509_serial_number=0)]
        req = m2.CertificateUpdateReq(contract_signature_cert_chain=chain_element(self.contract.chain),
                                      e_ma_id=self.contract.emaid,
                                      list_of_root_certificate_ids=m2.ListOfRootCertificateIDs(root_certificate_id=ids),
                                      id="id1")
        return req, pnc2.sign_elements([req], self.contract.key)  # type: ignore[arg-type]

    def accept_installation(self, res: m2.CertificateInstallationRes | m2.CertificateUpdateRes,
                            signature: Signature | None) -> ContractCredentials:
        """Check the CPS chain and signature, decrypt the contract key (PnCRefusal on any error):
        with the OEM provisioning key (installation) or the old contract key (update)."""
        prov = self.provisioning
        if prov is None:
            raise PnCRefusal(RC.FAILED_CERT_CHAIN_ERROR, "no V2G root to check the certificate provisioning service")
        update = isinstance(res, m2.CertificateUpdateRes)
        if update and self.contract is None:
            raise PnCRefusal(RC.FAILED, "CertificateUpdateRes without a contract to update")
        cps = chain_of(res.sa_provisioning_certificate_chain)
        _verify_chain(cps, prov.v2g_roots, Purpose.CPS)
        if signature is None:
            raise PnCRefusal(RC.FAILED_SIGNATURE_ERROR, "CertificateInstallationRes without a signature")
        ids = [str(x.id) for x in (res.contract_signature_cert_chain, res.contract_signature_encrypted_private_key,
                                   res.d_hpublickey, res.e_ma_id)]
        try:
            pnc2.verify_elements(signature, _delivery_parts(res), cps[0], required_ids=ids)
        except xmldsig.SignatureError as exc:
            raise PnCRefusal(RC.FAILED_SIGNATURE_ERROR, str(exc)) from None
        contract = chain_of(res.contract_signature_cert_chain)
        if prov.mo_roots:
            _verify_chain(contract, prov.mo_roots, Purpose.CONTRACT)
        try:
            key = decrypt_private_key_iso2(
                EncryptedContractKey2(bytes(res.d_hpublickey.value), bytes(res.contract_signature_encrypted_private_key.value)),
                self.contract.key if update and self.contract is not None else prov.oem_key,  # type: ignore[arg-type]
                expected_public_key=contract[0])
        except KeyDeliveryError as exc:
            raise PnCRefusal(RC.FAILED, f"contract key delivery: {exc}") from None
        self.contract, self.installed = ContractCredentials(tuple(contract), key), True
        self.updated = self.updated or update
        return self.contract
