"""Contract private-key delivery of ISO 15118-2 (CertificateInstallationRes / CertificateUpdateRes).

The sender (the CPS, or the charger standing in for it) encrypts the contract private key for the
EV: ephemeral-static ECDH on secp256r1 between a fresh key pair (its public point goes into
``DHpublickey``) and the EV's static key (the OEM provisioning key for CertificateInstallation,
the old contract key for CertificateUpdate), then [V2G2-818] ConcatKDF and AES-128-CBC:

=====================================  ==============================================================
``DHpublickey`` (65 bytes)             uncompressed point ``04 || X || Y`` of the ephemeral key
shared secret Z                        ECDH x-coordinate, 32 bytes
KDF                                    ConcatKDF (NIST SP 800-56A) with SHA-256, OtherInfo =
                                       AlgorithmID 0x01 || PartyUInfo 0x55 ('U') || PartyVInfo 0x56
                                       ('V'), 16-byte key
cipher                                 AES-128-CBC, random 16-byte IV, no padding (the plaintext is
                                       the 32-byte big-endian private scalar: two blocks)
``ContractSignatureEncryptedPrivateKey``  IV (16) || ciphertext (32) = 48 bytes
=====================================  ==============================================================

CBC carries no integrity: a tampered ciphertext decrypts to some other number.  The EV therefore
always checks the recovered key against the contract certificate it came with
(``expected_public_key``, ``KEY_MISMATCH``), which is what makes a wrong key an error instead of a
silently broken credential.  Errors reuse :class:`~iso15118.security.keydelivery.KeyDeliveryError`.
Nothing here logs or puts key material into exception messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from .keydelivery import KDF_OTHER_INFO, KeyDeliveryError, KeyDeliveryErrorReason

__all__ = [
    "DH_PUBLIC_KEY_LENGTH_2",
    "ENCRYPTED_KEY_LENGTH_2",
    "EncryptedContractKey2",
    "decrypt_private_key_iso2",
    "encrypt_private_key_iso2",
]

DH_PUBLIC_KEY_LENGTH_2 = 65
ENCRYPTED_KEY_LENGTH_2 = 48
_IV = 16


@dataclass(frozen=True)
class EncryptedContractKey2:
    """``DHpublickey`` and ``ContractSignatureEncryptedPrivateKey`` of a -2 CertificateInstallationRes."""

    dh_public_key: bytes  # 65 bytes
    encrypted_private_key: bytes  # 48 bytes

    def __repr__(self) -> str:  # no ciphertext in logs
        return f"EncryptedContractKey2({len(self.encrypted_private_key)} bytes)"


def _kdf(shared: bytes) -> bytes:
    return ConcatKDFHash(algorithm=hashes.SHA256(), length=16, otherinfo=KDF_OTHER_INFO).derive(shared)


def _p256_public(key: x509.Certificate | ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey:
    pub = key.public_key() if isinstance(key, x509.Certificate) else key
    if not (isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"):
        raise KeyDeliveryError(KeyDeliveryErrorReason.BAD_PUBLIC_KEY, "-2 key delivery needs a secp256r1 key")
    return pub


def encrypt_private_key_iso2(
    contract_key: ec.EllipticCurvePrivateKey, recipient: x509.Certificate | ec.EllipticCurvePublicKey
) -> EncryptedContractKey2:
    """Sender side: encrypt the P-256 ``contract_key`` for the holder of ``recipient``'s private key
    (the OEM provisioning certificate, or the contract certificate being updated)."""
    if not (isinstance(contract_key, ec.EllipticCurvePrivateKey) and contract_key.curve.name == "secp256r1"):
        raise KeyDeliveryError(KeyDeliveryErrorReason.UNSUPPORTED_CURVE, "-2 delivers secp256r1 contract keys only")
    peer = _p256_public(recipient)
    eph = ec.generate_private_key(ec.SECP256R1())
    dh_public = eph.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    iv = os.urandom(_IV)
    enc = Cipher(algorithms.AES(_kdf(eph.exchange(ec.ECDH(), peer))), modes.CBC(iv)).encryptor()
    ct = enc.update(contract_key.private_numbers().private_value.to_bytes(32, "big")) + enc.finalize()
    return EncryptedContractKey2(dh_public, iv + ct)


def decrypt_private_key_iso2(
    delivered: EncryptedContractKey2,
    recipient_key: ec.EllipticCurvePrivateKey,
    *,
    expected_public_key: x509.Certificate | ec.EllipticCurvePublicKey | None,
) -> ec.EllipticCurvePrivateKey:
    """EV side: recover the contract key with the static P-256 key (OEM provisioning key, or the
    old contract key on update).  ``expected_public_key`` is the new contract certificate (or its
    key): the recovered key must match it (``KEY_MISMATCH``); pass None only to inspect a blob."""
    dh, blob = bytes(delivered.dh_public_key), bytes(delivered.encrypted_private_key)
    if len(dh) != DH_PUBLIC_KEY_LENGTH_2:
        raise KeyDeliveryError(KeyDeliveryErrorReason.BAD_LENGTH, f"DHpublickey is {len(dh)} bytes, not {DH_PUBLIC_KEY_LENGTH_2}")
    if len(blob) != ENCRYPTED_KEY_LENGTH_2:
        raise KeyDeliveryError(
            KeyDeliveryErrorReason.BAD_LENGTH, f"encrypted private key is {len(blob)} bytes, not {ENCRYPTED_KEY_LENGTH_2}"
        )
    if not (isinstance(recipient_key, ec.EllipticCurvePrivateKey) and recipient_key.curve.name == "secp256r1"):
        raise KeyDeliveryError(KeyDeliveryErrorReason.BAD_PRIVATE_KEY, "-2 delivery needs the secp256r1 static key")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh)
    except ValueError:
        raise KeyDeliveryError(KeyDeliveryErrorReason.BAD_PUBLIC_KEY, "DHpublickey is not a valid point") from None
    dec = Cipher(algorithms.AES(_kdf(recipient_key.exchange(ec.ECDH(), peer))), modes.CBC(blob[:_IV])).decryptor()
    plain = dec.update(blob[_IV:]) + dec.finalize()
    try:
        key = ec.derive_private_key(int.from_bytes(plain, "big"), ec.SECP256R1())
    except ValueError:
        raise KeyDeliveryError(KeyDeliveryErrorReason.DECRYPTION_FAILED, "decrypted data is not a secp256r1 private key") from None
    finally:
        plain = b""
    if expected_public_key is not None:
        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*fmt) != _p256_public(expected_public_key).public_bytes(*fmt):
            raise KeyDeliveryError(KeyDeliveryErrorReason.KEY_MISMATCH, "decrypted key does not match the contract certificate")
    return key
