"""Certificate chain validation for ISO 15118-20 (digest §8.2), independent of TLS.

:func:`validate_chain` builds the path leaf → intermediates → trust anchor and
checks it.  Every failure raises :class:`CertificateChainError` whose
``reason`` (:class:`ChainErrorReason`) is meant for code: it maps directly to
the -20 response codes (:attr:`CertificateChainError.response_code`) and is
what the TLS layer reports too (:func:`reason_from_verify_code`).

Rules applied, in this order, and the reason raised:

1. path building by issuer name, narrowed by authorityKeyIdentifier /
   subjectKeyIdentifier when both are present — ``UNKNOWN_ISSUER`` (no issuer
   certificate available) or ``NO_TRUST_ANCHOR`` (the path ends in a
   self-signed certificate that is not a configured anchor);
2. signatures (``BAD_SIGNATURE``), Ed448 and ECDSA alike;
3. algorithms per :class:`~iso15118.security.algorithms.AlgorithmPolicy`
   (``WRONG_ALGORITHM``); default :data:`ISO20_POLICY` = secp521r1/ECDSA-SHA-512
   or Ed448 for every certificate including the anchor (decision on the
   digest's UNVERIFIED algorithm item, see ``algorithms``);
4. validity at ``at`` (``NOT_YET_VALID``, ``EXPIRED``) for every certificate
   including the anchor;
5. issuers are CAs (``NOT_A_CA``) with keyCertSign when keyUsage is present
   (``WRONG_KEY_USAGE``);
6. pathLenConstraint, and at most ``max_intermediates`` Sub-CAs (default 2,
   Josev ``verify_certs``: "at most 2 Sub-CAs", Sub-CA 2 pathLen 0) — ``PATH_LENGTH``;
7. purpose of the leaf: digitalSignature in keyUsage, extendedKeyUsage (when
   present) containing the purpose's usage (``WRONG_KEY_USAGE``) and the Domain
   Component the role requires (``WRONG_DOMAIN``; cf. [V2G2-925] in -2, DC=CPO
   for SECC, OEM for vehicle/OEM, MO for contract, CPS for CPS);
8. revocation from the given CRLs and OCSP responses (``REVOKED``); a CRL or
   OCSP response whose signature does not verify is ``BAD_SIGNATURE``.
   Missing revocation data is not an error unless ``require_revocation``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .algorithms import ANY_POLICY, ISO20_POLICY, AlgorithmPolicy, algorithm_of_key

_DER = Encoding.DER

__all__ = [
    "ChainErrorReason",
    "CertificateChainError",
    "Purpose",
    "validate_chain",
    "verified_path",
    "emaid_from_certificate",
    "normalize_emaid",
    "reason_from_verify_code",
    "fingerprint_sha512",
    "as_certificate",
    "ISO20_POLICY",
    "ANY_POLICY",
]


class ChainErrorReason(str, enum.Enum):
    """Why a chain was rejected (stable identifiers for code and logs)."""

    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    NO_TRUST_ANCHOR = "NO_TRUST_ANCHOR"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    WRONG_KEY_USAGE = "WRONG_KEY_USAGE"
    NOT_A_CA = "NOT_A_CA"
    PATH_LENGTH = "PATH_LENGTH"
    REVOKED = "REVOKED"
    REVOCATION_UNKNOWN = "REVOCATION_UNKNOWN"
    WRONG_ALGORITHM = "WRONG_ALGORITHM"
    WRONG_DOMAIN = "WRONG_DOMAIN"
    NO_CERTIFICATE = "NO_CERTIFICATE"
    OTHER = "OTHER"


#: -20 ResponseCode (digest §5.1) a SECC answers for each reason.
_RESPONSE_CODES = {
    ChainErrorReason.EXPIRED: "WARNING_CertificateExpired",
    ChainErrorReason.NOT_YET_VALID: "WARNING_CertificateNotYetValid",
    ChainErrorReason.REVOKED: "WARNING_CertificateRevoked",
    ChainErrorReason.NO_CERTIFICATE: "WARNING_NoCertificateAvailable",
}


class CertificateChainError(Exception):
    """A certificate chain was rejected; ``reason`` says why, ``subject`` which certificate."""

    def __init__(self, reason: ChainErrorReason, message: str, *, subject: str | None = None, depth: int | None = None):
        self.reason = reason
        self.subject = subject
        self.depth = depth
        where = f" [{subject}]" if subject else ""
        super().__init__(f"{reason.value}: {message}{where}")

    @property
    def response_code(self) -> str:
        """The -20 ResponseCode name matching this failure."""
        return _RESPONSE_CODES.get(self.reason, "WARNING_CertificateValidationError")


@dataclass(frozen=True)
class _PurposeInfo:
    eku: x509.ObjectIdentifier | None
    domains: frozenset[str] | None


class Purpose(enum.Enum):
    """What the leaf certificate is used for (selects the leaf checks)."""

    ANY = _PurposeInfo(None, None)
    SECC_TLS_SERVER = _PurposeInfo(ExtendedKeyUsageOID.SERVER_AUTH, frozenset({"CPO", "CSO"}))
    #: -20 TLS client: the vehicle certificate or (Josev) the OEM provisioning certificate.
    EV_TLS_CLIENT = _PurposeInfo(ExtendedKeyUsageOID.CLIENT_AUTH, frozenset({"OEM"}))
    OEM_PROVISIONING = _PurposeInfo(None, frozenset({"OEM"}))
    CONTRACT = _PurposeInfo(None, frozenset({"MO"}))
    CPS = _PurposeInfo(None, frozenset({"CPS"}))


CertLike = x509.Certificate | bytes


def as_certificate(cert: CertLike) -> x509.Certificate:
    """Accept a certificate object or its DER/PEM encoding."""
    if isinstance(cert, x509.Certificate):
        return cert
    if cert.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(cert)
    return x509.load_der_x509_certificate(cert)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _ext(cert: x509.Certificate, cls: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _key_ids_compatible(child: x509.Certificate, parent: x509.Certificate) -> bool:
    aki = _ext(child, x509.AuthorityKeyIdentifier)
    ski = _ext(parent, x509.SubjectKeyIdentifier)
    if isinstance(aki, x509.AuthorityKeyIdentifier) and aki.key_identifier and isinstance(ski, x509.SubjectKeyIdentifier):
        return aki.key_identifier == ski.digest
    return True


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


def verified_path(
    leaf: CertLike,
    intermediates: Sequence[CertLike],
    trust_anchors: Sequence[CertLike],
    *,
    at: dt.datetime | None = None,
    purpose: Purpose = Purpose.ANY,
    crls: Iterable[x509.CertificateRevocationList] | None = None,
    ocsp: Iterable[ocsp.OCSPResponse] | None = None,
    policy: AlgorithmPolicy = ISO20_POLICY,
    max_intermediates: int = 2,
    require_revocation: bool = False,
) -> list[x509.Certificate]:
    """Like :func:`validate_chain` but returns the path (leaf first, anchor last)."""
    leaf = as_certificate(leaf)
    inter = [as_certificate(c) for c in intermediates]
    anchors = [as_certificate(c) for c in trust_anchors]
    when = at or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    path = _build_path(leaf, inter, anchors)
    for depth, cert in enumerate(path):
        _check_algorithm(cert, depth, policy)
    for depth, cert in enumerate(path):
        _check_validity(cert, depth, when)
    _check_issuers(path, max_intermediates)
    _check_purpose(path[0], purpose)
    _check_revocation(path, list(crls or ()), list(ocsp or ()), require_revocation)
    return path


def validate_chain(
    leaf: CertLike,
    intermediates: Sequence[CertLike],
    trust_anchors: Sequence[CertLike],
    at: dt.datetime | None = None,
    purpose: Purpose = Purpose.ANY,
    crls: Iterable[x509.CertificateRevocationList] | None = None,
    ocsp: Iterable[ocsp.OCSPResponse] | None = None,
    *,
    policy: AlgorithmPolicy = ISO20_POLICY,
    max_intermediates: int = 2,
    require_revocation: bool = False,
) -> None:
    """Validate ``leaf`` up to one of ``trust_anchors``; raise :class:`CertificateChainError`.

    Certificates may be :class:`x509.Certificate` objects or DER/PEM bytes (as
    carried in -20 messages).  ``intermediates`` may be in any order and may
    contain unrelated certificates.
    ``policy=ANY_POLICY`` accepts any key algorithm (Josev's P-256 PKI).
    """
    verified_path(
        leaf,
        intermediates,
        trust_anchors,
        at=at,
        purpose=purpose,
        crls=crls,
        ocsp=ocsp,
        policy=policy,
        max_intermediates=max_intermediates,
        require_revocation=require_revocation,
    )


# --------------------------------------------------------------------------- path building


def _build_path(
    leaf: x509.Certificate, pool: list[x509.Certificate], anchors: list[x509.Certificate]
) -> list[x509.Certificate]:
    if not anchors:
        raise CertificateChainError(ChainErrorReason.NO_TRUST_ANCHOR, "no trust anchors configured")
    anchor_ders = {a.public_bytes(_DER) for a in anchors}
    path = [leaf]
    current = leaf
    # A bound on the loop: every step consumes one certificate of the pool.
    for _ in range(len(pool) + 2):
        if current.public_bytes(_DER) in anchor_ders:
            return path
        if _self_issued(current) and _signed_by(current, current):
            raise CertificateChainError(
                ChainErrorReason.NO_TRUST_ANCHOR,
                "chain ends in a self-signed certificate that is not a trust anchor",
                subject=_subject(current),
                depth=len(path) - 1,
            )
        seen = {c.public_bytes(_DER) for c in path}
        candidates = [a for a in anchors if a.subject == current.issuer and _key_ids_compatible(current, a)]
        candidates += [
            c
            for c in pool
            if c.subject == current.issuer and _key_ids_compatible(current, c) and c.public_bytes(_DER) not in seen
        ]
        if not candidates:
            if _self_issued(current):
                raise CertificateChainError(
                    ChainErrorReason.NO_TRUST_ANCHOR,
                    "chain ends in a self-signed certificate that is not a trust anchor",
                    subject=_subject(current),
                    depth=len(path) - 1,
                )
            raise CertificateChainError(
                ChainErrorReason.UNKNOWN_ISSUER,
                f"issuer {current.issuer.rfc4514_string()} not found among intermediates or trust anchors",
                subject=_subject(current),
                depth=len(path) - 1,
            )
        parent = next((c for c in candidates if _signed_by(current, c)), None)
        if parent is None:
            raise CertificateChainError(
                ChainErrorReason.BAD_SIGNATURE,
                "signature does not verify with the issuer's key",
                subject=_subject(current),
                depth=len(path) - 1,
            )
        path.append(parent)
        if parent.public_bytes(_DER) in anchor_ders:
            return path
        current = parent
    raise CertificateChainError(ChainErrorReason.UNKNOWN_ISSUER, "no path to a trust anchor", subject=_subject(leaf))


# --------------------------------------------------------------------------- checks


def _check_algorithm(cert: x509.Certificate, depth: int, policy: AlgorithmPolicy) -> None:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise CertificateChainError(ChainErrorReason.WRONG_ALGORITHM, f"unsupported key: {exc}", subject=_subject(cert), depth=depth) from None
    if not policy.key_allowed(key):
        raise CertificateChainError(
            ChainErrorReason.WRONG_ALGORITHM,
            f"key algorithm {algorithm_of_key(key)} not allowed by policy {policy.name}",
            subject=_subject(cert),
            depth=depth,
        )
    if not policy.signature_allowed(cert):
        name = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
        raise CertificateChainError(
            ChainErrorReason.WRONG_ALGORITHM,
            f"signature algorithm {name} not allowed by policy {policy.name}",
            subject=_subject(cert),
            depth=depth,
        )


def _check_validity(cert: x509.Certificate, depth: int, when: dt.datetime) -> None:
    if when < cert.not_valid_before_utc:
        raise CertificateChainError(
            ChainErrorReason.NOT_YET_VALID,
            f"valid from {cert.not_valid_before_utc.isoformat()}",
            subject=_subject(cert),
            depth=depth,
        )
    if when > cert.not_valid_after_utc:
        raise CertificateChainError(
            ChainErrorReason.EXPIRED,
            f"expired {cert.not_valid_after_utc.isoformat()}",
            subject=_subject(cert),
            depth=depth,
        )


def _check_issuers(path: list[x509.Certificate], max_intermediates: int) -> None:
    n_intermediates = len(path) - 2  # without leaf and anchor
    if len(path) >= 2 and n_intermediates > max_intermediates:
        raise CertificateChainError(
            ChainErrorReason.PATH_LENGTH,
            f"{n_intermediates} Sub-CAs, at most {max_intermediates} allowed",
            subject=_subject(path[0]),
        )
    for depth in range(1, len(path)):
        ca = path[depth]
        bc = _ext(ca, x509.BasicConstraints)
        if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
            raise CertificateChainError(
                ChainErrorReason.NOT_A_CA, "issuer is not a CA (basicConstraints)", subject=_subject(ca), depth=depth
            )
        ku = _ext(ca, x509.KeyUsage)
        if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
            raise CertificateChainError(
                ChainErrorReason.WRONG_KEY_USAGE, "issuer lacks keyCertSign", subject=_subject(ca), depth=depth
            )
        below = depth - 1  # CA certificates between this issuer and the leaf
        if bc.path_length is not None and below > bc.path_length:
            raise CertificateChainError(
                ChainErrorReason.PATH_LENGTH,
                f"pathLenConstraint {bc.path_length} but {below} CA certificate(s) below",
                subject=_subject(ca),
                depth=depth,
            )


def _domain_components(cert: x509.Certificate) -> set[str]:
    return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)}


def _check_purpose(leaf: x509.Certificate, purpose: Purpose) -> None:
    if purpose is Purpose.ANY:
        return
    info: _PurposeInfo = purpose.value
    ku = _ext(leaf, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage) and not ku.digital_signature:
        raise CertificateChainError(
            ChainErrorReason.WRONG_KEY_USAGE, f"leaf lacks digitalSignature for {purpose.name}", subject=_subject(leaf), depth=0
        )
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if info.eku is not None and isinstance(eku, x509.ExtendedKeyUsage):
        usages = set(eku)
        if info.eku not in usages and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
            raise CertificateChainError(
                ChainErrorReason.WRONG_KEY_USAGE,
                f"extendedKeyUsage lacks {info.eku._name} for {purpose.name}",
                subject=_subject(leaf),
                depth=0,
            )
    if info.domains is not None and not (_domain_components(leaf) & info.domains):
        raise CertificateChainError(
            ChainErrorReason.WRONG_DOMAIN,
            f"leaf needs DC in {sorted(info.domains)} for {purpose.name}",
            subject=_subject(leaf),
            depth=0,
        )


def _verify_raw(key: CertificatePublicKeyTypes, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, (ed448.Ed448PublicKey, ed25519.Ed25519PublicKey)):
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        else:
            return False
        return True
    except InvalidSignature:
        return False


def _check_revocation(
    path: list[x509.Certificate],
    crls: list[x509.CertificateRevocationList],
    responses: list[ocsp.OCSPResponse],
    require: bool,
) -> None:
    for depth in range(len(path) - 1):  # the anchor is trusted as configured
        cert, issuer = path[depth], path[depth + 1]
        known = False
        for crl in crls:
            if crl.issuer != issuer.subject:
                continue
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                raise CertificateChainError(
                    ChainErrorReason.BAD_SIGNATURE, "CRL signature does not verify", subject=_subject(issuer), depth=depth + 1
                )
            known = True
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise CertificateChainError(ChainErrorReason.REVOKED, "listed in CRL", subject=_subject(cert), depth=depth)
        for resp in responses:
            status = _ocsp_status(resp, cert, issuer, depth)
            if status is None:
                continue
            known = True
            if status == ocsp.OCSPCertStatus.REVOKED:
                raise CertificateChainError(ChainErrorReason.REVOKED, "OCSP status revoked", subject=_subject(cert), depth=depth)
        if require and not known:
            raise CertificateChainError(
                ChainErrorReason.REVOCATION_UNKNOWN, "no CRL or OCSP response covers this certificate", subject=_subject(cert), depth=depth
            )


def _ocsp_status(
    resp: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate, depth: int
) -> ocsp.OCSPCertStatus | None:
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return None
    status = None
    for single in resp.responses:
        if single.serial_number != cert.serial_number:
            continue
        digest = hashes.Hash(single.hash_algorithm)
        digest.update(issuer.subject.public_bytes())
        if digest.finalize() != single.issuer_name_hash:
            continue
        status = single.certificate_status
    if status is None:
        return None
    # The response must be signed by the issuer or by a responder it certified.
    signers = [issuer] + [c for c in resp.certificates if _signed_by(c, issuer)]
    ok = any(
        _verify_raw(s.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)  # type: ignore[arg-type]
        for s in signers
    )
    if not ok:
        raise CertificateChainError(
            ChainErrorReason.BAD_SIGNATURE, "OCSP response signature does not verify", subject=_subject(cert), depth=depth
        )
    return status


# --------------------------------------------------------------------------- eMAID


_EMAID_RE = re.compile(r"^[A-Z]{2}-?[A-Z0-9]{3}-?[A-Z0-9]{9}(-?[A-Z0-9])?$")


def normalize_emaid(emaid: str) -> str:
    """Upper case without the optional ``-`` separators (``DE-PNX-C12345678-9`` -> ``DEPNXC123456789``)."""
    return emaid.replace("-", "").upper()


def emaid_from_certificate(cert: x509.Certificate, *, check_domain: bool = True) -> str:
    """The eMAID carried as CN of a contract certificate (as written in the CN).

    Raises :class:`CertificateChainError` (``WRONG_DOMAIN``) when the subject is
    not DC=MO (``check_domain``) or (``OTHER``) when the CN is not eMAID-shaped:
    2 letters country, 3 provider characters, 9 instance characters, optional
    check character, each part optionally separated by ``-``.
    """
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise CertificateChainError(ChainErrorReason.OTHER, "contract certificate has no CN", subject=_subject(cert))
    if check_domain and "MO" not in _domain_components(cert):
        raise CertificateChainError(ChainErrorReason.WRONG_DOMAIN, "not a contract certificate (DC=MO)", subject=_subject(cert))
    value = str(cns[0].value)
    if not _EMAID_RE.match(value.upper()):
        raise CertificateChainError(ChainErrorReason.OTHER, f"CN {value!r} is not an eMAID", subject=_subject(cert))
    return value


# --------------------------------------------------------------------------- helpers


#: OpenSSL X509_V_ERR_* codes (``ssl.SSLCertVerificationError.verify_code``) -> reason.
_VERIFY_CODES = {
    2: ChainErrorReason.UNKNOWN_ISSUER,  # UNABLE_TO_GET_ISSUER_CERT
    7: ChainErrorReason.BAD_SIGNATURE,  # CERT_SIGNATURE_FAILURE
    9: ChainErrorReason.NOT_YET_VALID,  # CERT_NOT_YET_VALID
    10: ChainErrorReason.EXPIRED,  # CERT_HAS_EXPIRED
    18: ChainErrorReason.NO_TRUST_ANCHOR,  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: ChainErrorReason.NO_TRUST_ANCHOR,  # SELF_SIGNED_CERT_IN_CHAIN
    20: ChainErrorReason.UNKNOWN_ISSUER,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: ChainErrorReason.UNKNOWN_ISSUER,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    23: ChainErrorReason.REVOKED,  # CERT_REVOKED
    24: ChainErrorReason.NOT_A_CA,  # INVALID_CA
    25: ChainErrorReason.PATH_LENGTH,  # PATH_LENGTH_EXCEEDED
    26: ChainErrorReason.WRONG_KEY_USAGE,  # INVALID_PURPOSE
    32: ChainErrorReason.WRONG_KEY_USAGE,  # KEYUSAGE_NO_CERTSIGN
}


def reason_from_verify_code(code: int | None) -> ChainErrorReason:
    """Map an OpenSSL verify error code to :class:`ChainErrorReason`."""
    return _VERIFY_CODES.get(code or 0, ChainErrorReason.OTHER)


def fingerprint_sha512(cert: x509.Certificate | bytes) -> str:
    """SHA-512 over the DER encoding, hex (digest §1.3: the -20 session binding fingerprint)."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(_DER)
    h = hashes.Hash(hashes.SHA512())
    h.update(der)
    return h.finalize().hex()
