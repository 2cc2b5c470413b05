"""XML signatures the way ISO 15118-20 uses them (digest §7.2): EXI-canonical, detached, in the Header.

A -20 signature covers one or more elements of the message body that carry an ``Id`` attribute
(``PnC_AReqAuthorizationMode``, ``OEMProvisioningCertificateChain``, ``SignedInstallationData``,
``SignedMeteringData``, price schedules).  The ``ds:Signature`` goes into the message Header.

Procedure (:func:`sign`)::

    for each element:   fragment = EXI(element)      schema-informed *fragment*, CommonMessages grammar
                        Reference URI="#<Id>", Transform canonical-exi, DigestMethod, DigestValue = H(fragment)
    SignedInfo = CanonicalizationMethod(canonical-exi) + SignatureMethod + References
    SignatureValue = Sign(key, EXI(SignedInfo))       schema-informed fragment, *xmldsig* grammar
                                                      ECDSA: raw r||s (not DER); Ed448: RFC 8032 pure

:func:`verify` re-encodes the received trees (canonical EXI is a function of the infoset, and
:mod:`iso15118.exi` is byte-identical with the reference EXIficient) and raises
:class:`SignatureError` whose :attr:`~SignatureError.reason` (:class:`SignatureErrorReason`) is meant
for code.  Messages never contain key material or signature bytes.

Algorithm URIs
--------------

=====================  ================================================================  =====
role                   URI                                                               use
=====================  ================================================================  =====
canonicalization,      ``http://www.w3.org/TR/canonical-exi/``                           -2/-20
transform
digest SHA-512         ``http://www.w3.org/2001/04/xmlenc#sha512`` (RFC 9231 §2.1.3)     -20
digest SHA-256         ``http://www.w3.org/2001/04/xmlenc#sha256``                       -2
ECDSA P-521 SHA-512    ``http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512`` (RFC 9231)  -20
Ed448 (pure)           ``http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448`` (RFC 9231)  -20
ECDSA P-256 SHA-256    ``http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256``           -2
=====================  ================================================================  =====

Decisions on the digest's UNVERIFIED items
------------------------------------------

* **Digest SHA-512, ECDSA secp521r1 + SHA-512 with 132-byte r||s, Ed448 with 114-byte
  signatures** for -20 (EVerest PR 2683/2849 "ecdsa-sha512 with SHA-512, or Ed448 ... r||s per
  [V2G20-1000]", ecog PR 419, cbexigen issue 116: a Keysight EVCC sends SHA-512 digests).  SHA-256
  / ECDSA-P-256 stay available (``profile=ISO2_PROFILE``) for -2 and Josev interoperability, and are
  rejected by the default -20 profile (``UNSUPPORTED_ALGORITHM``).
* **Ed448 URI**: RFC 9231's ``eddsa-ed448`` (pure Ed448, empty context, signs the SignedInfo
  bytes themselves); no ISO 15118 source names one.
* **SignedInfo grammar: xmldsig**, not CommonMessages.  Proven with the oracle (tests): the two
  give different bytes (``80 81 12 b4 ...`` vs ``80 73 22 56 ...`` for the same SignedInfo: a
  different fragment grammar, so a different first event code and bit alignment of everything
  after it).  ISO 15118-2 Annex J says the SignedInfo is encoded "using the schema-informed
  fragment grammar based on the XMLdsig schema" (quoted in EVerest/cbexigen issue 69); RISE V2G
  and Josev (EXIficient) do so; tux-evse switched from its message grammar to xmldsig "so that
  messages are accepted by an existing stack" (tux-evse/iso15118-encoders PR 2); libcbv2g added a
  separate ``encode_iso20_xmldsigFragment``.  -20 is assumed to keep the -2 rule.  :func:`verify`
  can additionally accept a SignedInfo signed over its CommonMessages-grammar encoding
  (``signed_info_grammars=("xmldsig", "common")``) for peers built on libcbv2g's
  ``iso20_exiFragment``; off by default.
* **Referenced element = the element carrying the Id** (``PnC_AReqAuthorizationMode``,
  ``OEMProvisioningCertificateChain``, ``SignedInstallationData``, ``SignedMeteringData``), encoded
  as a CommonMessages fragment — the XML-DSig meaning of ``URI="#Id"``, [V2G20-1063] "the EVCC shall
  sign the PnC_AReqAuthorizationMode element" (quoted in cbexigen issue 57).  libcbv2g's fragment
  list holds whole ``CertificateInstallationReq``/``MeteringConfirmationReq`` messages instead;
  we do not follow that.
* At most 4 References per SignedInfo (libcbv2g ``iso20_ReferenceType_4_ARRAY_SIZE``); exactly one
  Transform (canonical EXI) per Reference.
"""

from __future__ import annotations

import enum
import hashlib
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from iso15118.exi import codec
from iso15118.exi.errors import ExiError
from iso15118.exi.tree import Element

__all__ = [
    "NS_DS",
    "NS_CM",
    "NS_CT",
    "ID_ATTR",
    "CANONICAL_EXI",
    "DIGEST_SHA512",
    "DIGEST_SHA256",
    "SIG_ECDSA_SHA512",
    "SIG_ECDSA_SHA256",
    "SIG_ED448",
    "MAX_REFERENCES",
    "Profile",
    "ISO20_PROFILE",
    "ISO2_PROFILE",
    "SignatureErrorReason",
    "SignatureError",
    "element_id",
    "set_element_id",
    "fragment_bytes",
    "signed_info_bytes",
    "digest_element",
    "signature_method_for",
    "sign",
    "verify",
    "referenced_ids",
    "bench_signatures",
]

NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
NS_CT = "urn:iso:std:iso:15118:-20:CommonTypes"
#: Key of the (qualified) -20 CommonMessages ``Id`` attribute in :class:`Element.attrs`.
ID_ATTR = f"{{{NS_CM}}}Id"

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
DIGEST_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIG_ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SIG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIG_ED448 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448"

#: References per SignedInfo (libcbv2g ``iso20_ReferenceType_4_ARRAY_SIZE``).
MAX_REFERENCES = 4

_DIGESTS = {DIGEST_SHA512: "sha512", DIGEST_SHA256: "sha256"}
#: signature method URI -> (curve name or "ed448", hash, raw signature length)
_METHODS: dict[str, tuple[str, hashes.HashAlgorithm | None, int]] = {
    SIG_ECDSA_SHA512: ("secp521r1", hashes.SHA512(), 132),
    SIG_ECDSA_SHA256: ("secp256r1", hashes.SHA256(), 64),
    SIG_ED448: ("ed448", None, 114),
}
_SHORT_NAMES = {
    "ecdsa-sha512": SIG_ECDSA_SHA512,
    "ecdsa-sha256": SIG_ECDSA_SHA256,
    "ed448": SIG_ED448,
    "eddsa-ed448": SIG_ED448,
    "sha512": DIGEST_SHA512,
    "sha256": DIGEST_SHA256,
}

PublicKey = ec.EllipticCurvePublicKey | ed448.Ed448PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey


@dataclass(frozen=True)
class Profile:
    """Which digest and signature methods :func:`verify` accepts."""

    name: str
    digests: frozenset[str]
    signature_methods: frozenset[str]


ISO20_PROFILE = Profile("iso15118-20", frozenset({DIGEST_SHA512}), frozenset({SIG_ECDSA_SHA512, SIG_ED448}))
"""-20: SHA-512 digests; ECDSA secp521r1/SHA-512 or Ed448 signatures."""

ISO2_PROFILE = Profile("iso15118-2", frozenset({DIGEST_SHA256}), frozenset({SIG_ECDSA_SHA256}))
"""-2 / Josev 0.31.2 (which uses these for -20 too): SHA-256, ECDSA secp256r1/SHA-256."""


class SignatureErrorReason(str, enum.Enum):
    """Why a signature was rejected (stable identifiers for code and logs)."""

    DIGEST_MISMATCH = "DIGEST_MISMATCH"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    MISSING_REFERENCE = "MISSING_REFERENCE"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    KEY_MISMATCH = "KEY_MISMATCH"
    MALFORMED = "MALFORMED"


class SignatureError(Exception):
    """A signature did not verify; ``reason`` says why.  The message never holds key material."""

    def __init__(self, reason: SignatureErrorReason, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {message}")


# --------------------------------------------------------------------------- helpers


def element_id(element: Element) -> str | None:
    """The ``Id`` of a signed element (the qualified -20 CommonMessages attribute, an unqualified
    ``Id``, or the qualified ``Id`` of another schema such as -2's MsgBody)."""
    value = element.attrs.get(ID_ATTR)
    if value is None:
        value = element.attrs.get("Id")
    if value is None:  # another schema's qualified Id (ISO 15118-2 MsgBody / MsgDataTypes)
        value = next((v for k, v in element.attrs.items() if isinstance(k, str) and k.endswith("}Id")), None)
    return value if isinstance(value, str) else None


def set_element_id(element: Element, value: str) -> Element:
    """Set the qualified -20 ``Id`` attribute (returns ``element``)."""
    element.attrs[ID_ATTR] = value
    return element


def _resolve(uri: str) -> str:
    return _SHORT_NAMES.get(uri, uri)


def fragment_bytes(element: Element, schema: str = "common") -> bytes:
    """The canonical EXI of one signed element: a schema-informed fragment of ``schema`` (default
    the -20 CommonMessages grammar).  These are the bytes that get digested."""
    return codec(schema).encode(element, fragment=True)


def signed_info_bytes(signed_info: Element, grammar: str = "xmldsig") -> bytes:
    """The canonical EXI of a SignedInfo: a fragment of the xmldsig grammar (the signed bytes)."""
    return codec(grammar).encode(signed_info, fragment=True)


def digest_element(element: Element, digest: str = DIGEST_SHA512, schema: str = "common") -> bytes:
    """Digest (SHA-512 by default) of :func:`fragment_bytes`."""
    name = _DIGESTS.get(_resolve(digest))
    if name is None:
        raise ValueError(f"unsupported digest method {digest!r}")
    return hashlib.new(name, fragment_bytes(element, schema)).digest()


def signature_method_for(key: PrivateKey | PublicKey) -> str:
    """The signature method URI that fits a key: ecdsa-sha512 for P-521, ecdsa-sha256 for P-256,
    eddsa-ed448 for Ed448."""
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return SIG_ED448
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name == "secp521r1":
            return SIG_ECDSA_SHA512
        if key.curve.name == "secp256r1":
            return SIG_ECDSA_SHA256
        raise ValueError(f"no -2/-20 signature method for curve {key.curve.name}")
    raise ValueError(f"no -2/-20 signature method for {type(key).__name__}")


def _key_fits(method: str, key: PrivateKey | PublicKey) -> bool:
    curve = _METHODS[method][0]
    if curve == "ed448":
        return isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey))
    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == curve


def _ds(name: str, attrs: dict[Any, Any] | None = None, children: list[Any] | None = None, value: object = None) -> Element:
    return Element(NS_DS, name, attrs or {}, children or [], value)


def _raw_signature(method: str, key: PrivateKey, data: bytes) -> bytes:
    curve, hash_alg, length = _METHODS[method]
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    assert hash_alg is not None
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_alg)))  # type: ignore[union-attr]
    half = length // 2
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def _check_raw_signature(method: str, key: PublicKey, signature: bytes, data: bytes) -> bool:
    _curve, hash_alg, length = _METHODS[method]
    if len(signature) != length:
        return False
    try:
        if isinstance(key, ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            assert hash_alg is not None
            half = length // 2
            r = int.from_bytes(signature[:half], "big")
            s = int.from_bytes(signature[half:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_alg))
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------------------- sign


def sign(
    elements: Sequence[Element],
    key: PrivateKey,
    algorithm: str | None = None,
    *,
    digest: str | None = None,
    schema: str = "common",
) -> Element:
    """Sign ``elements`` (each with an ``Id``) and return the ``ds:Signature`` element.

    ``algorithm`` is a signature method URI or short name (``"ecdsa-sha512"``, ``"ed448"``,
    ``"ecdsa-sha256"``); default: the one that fits ``key`` (:func:`signature_method_for`).
    ``digest`` defaults to SHA-512, or SHA-256 with ecdsa-sha256 (-2 style).  ``schema`` is the
    codec key whose fragment grammar encodes the elements (``"common"`` for -20).
    """
    method = _resolve(algorithm) if algorithm else signature_method_for(key)
    if method not in _METHODS:
        raise ValueError(f"unsupported signature method {algorithm!r}")
    if not _key_fits(method, key):
        raise ValueError(f"the key does not fit signature method {method}")
    digest_uri = _resolve(digest) if digest else (DIGEST_SHA256 if method == SIG_ECDSA_SHA256 else DIGEST_SHA512)
    if digest_uri not in _DIGESTS:
        raise ValueError(f"unsupported digest method {digest!r}")
    if not elements:
        raise ValueError("nothing to sign")
    if len(elements) > MAX_REFERENCES:
        raise ValueError(f"at most {MAX_REFERENCES} elements per signature")
    references: list[Element | str] = []
    seen: set[str] = set()
    for el in elements:
        ident = element_id(el)
        if not ident:
            raise ValueError(f"element {el.name} has no Id attribute")
        if ident in seen:
            raise ValueError(f"duplicate Id {ident!r}")
        seen.add(ident)
        references.append(
            _ds(
                "Reference",
                {"URI": f"#{ident}"},
                [
                    _ds("Transforms", children=[_ds("Transform", {"Algorithm": CANONICAL_EXI})]),
                    _ds("DigestMethod", {"Algorithm": digest_uri}),
                    _ds("DigestValue", value=digest_element(el, digest_uri, schema)),
                ],
            )
        )
    signed_info = _ds(
        "SignedInfo",
        children=[
            _ds("CanonicalizationMethod", {"Algorithm": CANONICAL_EXI}),
            _ds("SignatureMethod", {"Algorithm": method}),
            *references,
        ],
    )
    value = _raw_signature(method, key, signed_info_bytes(signed_info))
    return _ds("Signature", children=[signed_info, _ds("SignatureValue", value=value)])


# --------------------------------------------------------------------------- verify


def _public_key(key_or_cert: PublicKey | x509.Certificate) -> PublicKey:
    if isinstance(key_or_cert, x509.Certificate):
        key = key_or_cert.public_key()
    else:
        key = key_or_cert
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed448.Ed448PublicKey)):
        raise SignatureError(SignatureErrorReason.UNSUPPORTED_ALGORITHM, f"unsupported public key type {type(key).__name__}")
    return key


def _algorithm_of(el: Element | None, what: str) -> str:
    if el is None:
        raise SignatureError(SignatureErrorReason.MALFORMED, f"{what} missing")
    alg = el.attrs.get("Algorithm")
    if not isinstance(alg, str):
        raise SignatureError(SignatureErrorReason.MALFORMED, f"{what} without Algorithm")
    return alg


def referenced_ids(signature: Element) -> list[str]:
    """The Ids a ``ds:Signature`` references (``URI="#Id"``), in order."""
    si = signature.find("SignedInfo")
    out = []
    for ref in si.findall("Reference") if si is not None else []:
        uri = ref.attrs.get("URI")
        if isinstance(uri, str) and uri.startswith("#"):
            out.append(uri[1:])
    return out


def verify(
    signature: Element,
    elements_by_id: Mapping[str, Element] | Iterable[Element],
    public_key: PublicKey | x509.Certificate,
    *,
    profile: Profile = ISO20_PROFILE,
    required_ids: Iterable[str] = (),
    schema: str = "common",
    signed_info_grammars: Sequence[str] = ("xmldsig",),
) -> None:
    """Verify ``signature`` (a ``ds:Signature``) over the referenced elements; raise :class:`SignatureError`.

    ``elements_by_id`` maps Id -> element (or is an iterable of elements, keyed by their Id).
    Every Reference must name one of them (``UNKNOWN_REFERENCE``); every id in ``required_ids``
    must be referenced (``MISSING_REFERENCE``: a signature over something else proves nothing).
    Algorithms outside ``profile`` are ``UNSUPPORTED_ALGORITHM``; a key that does not fit the
    signature method is ``KEY_MISMATCH``.  A Reference may omit ``Transforms`` (libcbv2g test
    vectors do); if present it must be exactly the canonical-EXI transform.  Order of checks:
    structure and algorithms, References and digests, then the signature value.
    """
    if not isinstance(signature, Element) or signature.name != "Signature" or signature.ns != NS_DS:
        raise SignatureError(SignatureErrorReason.MALFORMED, "not a ds:Signature element")
    if isinstance(elements_by_id, Mapping):
        by_id = dict(elements_by_id)
    else:
        by_id = {}
        for el in elements_by_id:
            ident = element_id(el)
            if ident and ident in by_id:
                # xs:ID values are unique per document; two candidates make "#Id" ambiguous.
                raise SignatureError(SignatureErrorReason.MALFORMED, f"Id {ident!r} occurs twice")
            if ident:
                by_id[ident] = el
    key = _public_key(public_key)
    si = signature.find("SignedInfo")
    sv = signature.find("SignatureValue")
    if si is None or sv is None or not isinstance(sv.value, (bytes, bytearray)):
        raise SignatureError(SignatureErrorReason.MALFORMED, "SignedInfo or SignatureValue missing")
    c14n = _algorithm_of(si.find("CanonicalizationMethod"), "CanonicalizationMethod")
    if c14n != CANONICAL_EXI:
        raise SignatureError(SignatureErrorReason.UNSUPPORTED_ALGORITHM, f"canonicalization {c14n}")
    method = _algorithm_of(si.find("SignatureMethod"), "SignatureMethod")
    if method not in profile.signature_methods or method not in _METHODS:
        raise SignatureError(SignatureErrorReason.UNSUPPORTED_ALGORITHM, f"signature method {method} (profile {profile.name})")
    if not _key_fits(method, key):
        raise SignatureError(SignatureErrorReason.KEY_MISMATCH, f"public key does not fit signature method {method}")
    refs = si.findall("Reference")
    if not refs:
        raise SignatureError(SignatureErrorReason.MALFORMED, "SignedInfo without Reference")
    if len(refs) > MAX_REFERENCES:
        raise SignatureError(SignatureErrorReason.MALFORMED, f"{len(refs)} References, at most {MAX_REFERENCES}")
    covered: set[str] = set()
    for ref in refs:
        uri = ref.attrs.get("URI")
        if not isinstance(uri, str) or not uri.startswith("#") or len(uri) < 2:
            raise SignatureError(SignatureErrorReason.UNKNOWN_REFERENCE, f"Reference URI {uri!r} is not a same-document '#Id'")
        ident = uri[1:]
        if ident not in by_id:
            raise SignatureError(SignatureErrorReason.UNKNOWN_REFERENCE, f"no element with Id {ident!r}")
        if ident in covered:
            raise SignatureError(SignatureErrorReason.MALFORMED, f"Id {ident!r} referenced twice")
        transforms = ref.find("Transforms")
        if transforms is not None:
            algs = [_algorithm_of(t, "Transform") for t in transforms.findall("Transform")]
            if algs != [CANONICAL_EXI]:
                raise SignatureError(SignatureErrorReason.UNSUPPORTED_ALGORITHM, f"transforms {algs}")
        digest_uri = _algorithm_of(ref.find("DigestMethod"), "DigestMethod")
        if digest_uri not in profile.digests or digest_uri not in _DIGESTS:
            raise SignatureError(SignatureErrorReason.UNSUPPORTED_ALGORITHM, f"digest method {digest_uri} (profile {profile.name})")
        dv = ref.find("DigestValue")
        if dv is None or not isinstance(dv.value, (bytes, bytearray)):
            raise SignatureError(SignatureErrorReason.MALFORMED, "DigestValue missing")
        try:
            actual = digest_element(by_id[ident], digest_uri, schema)
        except ExiError as exc:
            raise SignatureError(SignatureErrorReason.MALFORMED, f"element {ident!r} cannot be EXI-encoded: {exc}") from None
        if not _consteq(actual, bytes(dv.value)):
            raise SignatureError(SignatureErrorReason.DIGEST_MISMATCH, f"digest of element {ident!r} does not match")
        covered.add(ident)
    missing = [i for i in required_ids if i not in covered]
    if missing:
        raise SignatureError(SignatureErrorReason.MISSING_REFERENCE, f"signature does not cover Id(s) {missing}")
    for grammar in signed_info_grammars:
        try:
            data = signed_info_bytes(si, grammar)
        except ExiError as exc:
            raise SignatureError(SignatureErrorReason.MALFORMED, f"SignedInfo cannot be EXI-encoded: {exc}") from None
        if _check_raw_signature(method, key, bytes(sv.value), data):
            return
    raise SignatureError(SignatureErrorReason.BAD_SIGNATURE, "signature value does not verify over SignedInfo")


def _consteq(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


# --------------------------------------------------------------------------- benchmark


def bench_signatures(iterations: int = 50) -> dict[Any, Any]:
    """Sign and verify times per message (µs) for ECDSA secp521r1/SHA-512 and Ed448.

    The message is a PnC_AReqAuthorizationMode with a realistic contract chain (leaf + 2 Sub-CA
    certificates of the algorithm), i.e. what an AuthorizationReq signs.  Keys and certificates
    are generated in memory.  Times are medians over ``iterations`` (``*_min_us``: the fastest);
    ``exi_encode_us`` is the canonical-EXI share (element fragment + SignedInfo), the rest is
    hashing and the public-key operation.  Returns ``{"ecdsa-p521": {"sign_us":..., "verify_us":...,
    ...}, "ed448": {...}, "iterations": n}``.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    from iso15118.security.pki import Algorithm, IssuedCert, issue_certificate
    from iso15118.security.pki import Profile as CertProfile

    out: dict[Any, Any] = {"iterations": iterations}
    for label, alg in (("ecdsa-p521", Algorithm.SECP521R1), ("ed448", Algorithm.ED448)):
        root_key = alg.generate_key()
        root = IssuedCert(issue_certificate(cn="MORootCA", dc="MO", profile=CertProfile.ROOT, key=root_key), root_key)
        sub1_key = alg.generate_key()
        sub1 = IssuedCert(issue_certificate(cn="MOSubCA1", dc="MO", profile=CertProfile.SUB_CA1, key=sub1_key, issuer=root), sub1_key)
        sub2_key = alg.generate_key()
        sub2 = IssuedCert(issue_certificate(cn="MOSubCA2", dc="MO", profile=CertProfile.SUB_CA2, key=sub2_key, issuer=sub1), sub2_key)
        leaf_key = alg.generate_key()
        leaf = issue_certificate(cn="DEPNXC123456789", dc="MO", profile=CertProfile.CONTRACT, key=leaf_key, issuer=sub2)
        def cm(n: str, v: Any = None, c: list[Element | str] | None = None) -> Element:
            return Element(NS_CM, n, {}, c or [], v)

        element = Element(
            NS_CM,
            "PnC_AReqAuthorizationMode",
            {ID_ATTR: "id1"},
            [
                cm("GenChallenge", bytes(range(16))),
                cm(
                    "ContractCertificateChain",
                    c=[
                        cm("Certificate", leaf.public_bytes(Encoding.DER)),
                        cm("SubCertificates", c=[cm("Certificate", sub2.cert.public_bytes(Encoding.DER)),
                                                 cm("Certificate", sub1.cert.public_bytes(Encoding.DER))]),
                    ],
                ),
            ],
        )
        public = leaf_key.public_key()
        sig = sign([element], leaf_key)  # type: ignore[arg-type]
        verify(sig, [element], public)  # type: ignore[arg-type]
        si = sig.find("SignedInfo")
        assert si is not None
        sign_t, verify_t, exi_t = [], [], []
        for _ in range(iterations):
            t0 = time.perf_counter()
            sig = sign([element], leaf_key)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            verify(sig, [element], public)  # type: ignore[arg-type]
            t2 = time.perf_counter()
            fragment_bytes(element)
            signed_info_bytes(si)
            t3 = time.perf_counter()
            sign_t.append(t1 - t0)
            verify_t.append(t2 - t1)
            exi_t.append(t3 - t2)
        out[label] = {
            "sign_us": round(statistics.median(sign_t) * 1e6, 1),
            "verify_us": round(statistics.median(verify_t) * 1e6, 1),
            "sign_min_us": round(min(sign_t) * 1e6, 1),
            "verify_min_us": round(min(verify_t) * 1e6, 1),
            "exi_encode_us": round(statistics.median(exi_t) * 1e6, 1),
            "fragment_bytes": len(fragment_bytes(element)),
            "signed_info_bytes": len(signed_info_bytes(si)),
            "signature_bytes": len(sig.find("SignatureValue").value),  # type: ignore[union-attr,arg-type]
        }
    return out
