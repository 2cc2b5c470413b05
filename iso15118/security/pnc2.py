"""ISO 15118-2 Plug & Charge signatures on typed messages (sans-IO).

-2 signs body elements that carry an ``Id`` (AuthorizationReq, MeteringReceiptReq,
CertificateInstallationReq / CertificateUpdateReq, and in the responses ContractSignatureCertChain,
ContractSignatureEncryptedPrivateKey, DHpublickey, eMAID) with ECDSA P-256 / SHA-256 over
canonical EXI: each element is encoded as a *fragment of the -2 grammar* and digested with
SHA-256, the SignedInfo as a fragment of the xmldsig grammar and signed (raw r||s, 64 bytes),
the ``ds:Signature`` goes into the message header (-2 Annex J; :mod:`iso15118.security.xmldsig`
does the work, with ``schema="iso2"`` and :data:`~iso15118.security.xmldsig.ISO2_PROFILE`).

The contract key delivery of CertificateInstallation / CertificateUpdate is
:mod:`iso15118.security.keydelivery2`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from iso15118.exi.tree import Element
from iso15118.messages import MessageBase, Signature
from iso15118.messages import iso2 as m2

from . import xmldsig

__all__ = [
    "ChallengeMismatch",
    "sign_elements",
    "signed_authorization_req",
    "verify_authorization_req",
    "verify_elements",
]


class ChallengeMismatch(ValueError):
    """A correctly signed AuthorizationReq whose GenChallenge is not the one the SECC sent
    (-2: FAILED_ChallengeInvalid)."""


SignedPart = MessageBase | tuple[MessageBase, str, str] | Element


def _tree(part: SignedPart) -> Element:
    """A signed part as the tree the fragment grammar encodes: a global element (its own name),
    ``(object, element name, namespace)`` for a local one, or an already built tree."""
    if isinstance(part, Element):
        return part
    if isinstance(part, tuple):
        obj, name, ns = part
        return obj.to_tree(name, ns)
    return part.to_tree()


def sign_elements(parts: Sequence[SignedPart], key: ec.EllipticCurvePrivateKey) -> Signature:
    """The typed ``ds:Signature`` over ``parts`` (each with an ``Id``), -2 style."""
    return Signature.from_tree(xmldsig.sign([_tree(p) for p in parts], key, "ecdsa-sha256", schema="iso2"))


def verify_elements(
    signature: Signature, parts: Sequence[SignedPart], cert: x509.Certificate | ec.EllipticCurvePublicKey,
    *, required_ids: Sequence[str] = (),
) -> None:
    """Raise :class:`~iso15118.security.xmldsig.SignatureError` unless ``signature`` covers
    ``parts`` (and every id of ``required_ids``) under the -2 profile with ``cert``'s key."""
    xmldsig.verify(signature.to_tree(), [_tree(p) for p in parts], cert, profile=xmldsig.ISO2_PROFILE,
                   required_ids=required_ids, schema="iso2")


def signed_authorization_req(
    session_id: bytes, gen_challenge: bytes, contract_key: ec.EllipticCurvePrivateKey, *, ident: str = "ID1"
) -> m2.V2GMessage:
    """What a -2 EVCC sends in PnC: AuthorizationReq(Id, GenChallenge) signed with the contract key."""
    req = m2.AuthorizationReq(id=ident, gen_challenge=gen_challenge)
    return m2.message(session_id, req, signature=sign_elements([req], contract_key))


def verify_authorization_req(
    msg: m2.V2GMessage, contract_cert: x509.Certificate, expected_challenge: bytes
) -> m2.AuthorizationReq:
    """What a -2 SECC checks: the AuthorizationReq is signed by the contract certificate's key
    (:class:`~iso15118.security.xmldsig.SignatureError`: FAILED_SignatureError) and carries the
    challenge it sent (:class:`ChallengeMismatch`: FAILED_ChallengeInvalid)."""
    req = msg.body.body_element
    if not isinstance(req, m2.AuthorizationReq) or not req.id:
        raise xmldsig.SignatureError(xmldsig.SignatureErrorReason.MALFORMED, "not an AuthorizationReq with an Id")
    if msg.header.signature is None:
        raise xmldsig.SignatureError(xmldsig.SignatureErrorReason.MALFORMED, "AuthorizationReq without a signature")
    verify_elements(msg.header.signature, [req], contract_cert, required_ids=[req.id])
    if req.gen_challenge != expected_challenge:
        raise ChallengeMismatch("GenChallenge differs from the one in PaymentDetailsRes")
    return req
