"""Key and signature algorithms of the ISO 15118-20 PKI.

Decision on the digest's UNVERIFIED item (§1.3 "Key algorithms of -20 leaf/CA
certificates", §9 row 4): this package treats **secp521r1 with ECDSA-SHA-512**
and **Ed448** as the only -20 algorithms.  Both public test PKIs (Josev,
libiso15118) still use prime256v1/SHA-256 with a "TODO" for -20, but the
secondary sources that speak about -20 (EVerest PR 2683, ecog PRs 233/419)
agree on secp521r1/Ed448 and SHA-512, and -20's own key-delivery curves are
SECP521/X448 (X:CM ``ecdhCurveType``).  Enforcement is a policy knob
(:data:`ISO20_POLICY` vs. :data:`ANY_POLICY`) so the P-256 Josev PKI stays
usable for interoperability tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)


class Algorithm(str, enum.Enum):
    """Key algorithm of a generated PKI."""

    SECP521R1 = "secp521r1"
    ED448 = "ed448"
    #: Only for negative tests and -2 style certificates; not a -20 algorithm.
    SECP256R1 = "secp256r1"

    def generate_key(self) -> CertificateIssuerPrivateKeyTypes:
        """Generate a fresh private key of this algorithm."""
        if self is Algorithm.SECP521R1:
            return ec.generate_private_key(ec.SECP521R1())
        if self is Algorithm.SECP256R1:
            return ec.generate_private_key(ec.SECP256R1())
        return ed448.Ed448PrivateKey.generate()

    def signing_hash(self) -> hashes.HashAlgorithm | None:
        """Hash used when this key signs a certificate/CRL (None for EdDSA)."""
        if self is Algorithm.SECP521R1:
            return hashes.SHA512()
        if self is Algorithm.SECP256R1:
            return hashes.SHA256()
        return None


def algorithm_of_key(key: CertificatePublicKeyTypes | CertificateIssuerPrivateKeyTypes) -> str:
    """A short human name of a key's algorithm (``secp521r1``, ``ed448``, ``rsa2048`` ...)."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return key.curve.name
    if isinstance(key, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return "ed448"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "ed25519"
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"rsa{key.key_size}"
    return type(key).__name__


def algorithm_of_private_key(key: CertificateIssuerPrivateKeyTypes) -> Algorithm:
    """Map a private key to :class:`Algorithm` (ValueError for anything else)."""
    return Algorithm(algorithm_of_key(key))


def signing_hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """Hash to use when ``key`` signs: SHA-512 for P-521, SHA-256 for P-256, None for EdDSA."""
    return algorithm_of_private_key(key).signing_hash()


@dataclass(frozen=True)
class AlgorithmPolicy:
    """Which public-key and certificate-signature algorithms a chain may use.

    ``key_algorithms`` names as returned by :func:`algorithm_of_key`;
    ``signature_oids`` are X.509 signature algorithm OIDs.  ``None`` = anything.
    """

    name: str
    key_algorithms: frozenset[str] | None
    signature_oids: frozenset[x509.ObjectIdentifier] | None

    def key_allowed(self, key: CertificatePublicKeyTypes) -> bool:
        return self.key_algorithms is None or algorithm_of_key(key) in self.key_algorithms

    def signature_allowed(self, cert: x509.Certificate) -> bool:
        return self.signature_oids is None or cert.signature_algorithm_oid in self.signature_oids


ISO20_POLICY = AlgorithmPolicy(
    name="iso15118-20",
    key_algorithms=frozenset({"secp521r1", "ed448"}),
    signature_oids=frozenset(
        {x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512, x509.SignatureAlgorithmOID.ED448}
    ),
)
"""secp521r1 (ECDSA with SHA-512) or Ed448, for every certificate of the chain."""

ISO2_POLICY = AlgorithmPolicy(
    name="iso15118-2",
    key_algorithms=frozenset({"secp256r1"}),
    signature_oids=frozenset({x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256}),
)
"""ISO 15118-2 (DIN/-2 digest, PKI): secp256r1 keys, certificates signed with ECDSA-SHA-256."""

ANY_POLICY = AlgorithmPolicy(name="any", key_algorithms=None, signature_oids=None)
"""No algorithm restriction (ISO 15118-2 / Josev test PKI compatibility)."""
