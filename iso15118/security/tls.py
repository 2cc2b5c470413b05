"""TLS contexts for ISO 15118-20 (digest §1.3) on top of the standard :mod:`ssl` module.

Use :func:`server_context` on the SECC and :func:`client_context` on the EVCC,
with plain sockets or asyncio (``asyncio.start_server(..., ssl=ctx)``).

The -20 profile (:data:`ISO20`), and why:

========================  ============================================================
TLS version               1.3 only (min = max); a TLS 1.2 ClientHello gets a
                          ``protocol_version`` alert.  (J:sec, L, ADVANTICS)
Cipher suites             ``TLS_AES_256_GCM_SHA384``, ``TLS_CHACHA20_POLY1305_SHA256``,
                          in this order, server preference ([V2G20-1856]/[V2G20-2459]).
Mutual authentication     server: ``CERT_REQUIRED`` (no client certificate = handshake
                          failure); client: SECC chain verified against the V2G root.
Client certificate        **DISAGREE item decided**: the -20 *vehicle certificate*
                          chain, verified against the **V2G root** (libiso15118,
                          ADVANTICS, ecog #446).  The SECC can be given additional
                          anchors (``trust_anchors`` is a list), e.g. the OEM root,
                          which is exactly what the Josev profile does.
Host name / SNI           not checked, not sent: ``check_hostname=False``; the EVCC
                          connects to an IP address (the SECC's link-local address),
                          for which Python sends no SNI; the server ignores SNI.
Key algorithms            **UNVERIFIED item decided**: secp521r1 (ECDSA-SHA-512) or
                          Ed448 for both leafs, enforced in the handshake through the
                          signature algorithms ``ed448:ecdsa_secp521r1_sha512`` (a
                          P-256 leaf cannot produce a CertificateVerify) and for the
                          whole chain after the handshake by :func:`check_peer`
                          (:class:`~iso15118.security.validation.CertificateChainError`
                          ``WRONG_ALGORITHM``).  Our own identity is checked when
                          the context is built (:class:`TlsSetupError`).  Observed:
                          a P-256 SECC fails with ``NO_SUITABLE_SIGNATURE_ALGORITHM``
                          on its side and a ``handshake_failure`` alert at the EVCC;
                          a P-256 EVCC sends no certificate, so the SECC reports
                          ``PEER_DID_NOT_RETURN_A_CERTIFICATE``.
(EC)DHE groups            not specified by either implementation (digest §1.3); we
                          list the -20 key-delivery curves first: ``x448:secp521r1``,
                          then ``x25519:secp384r1:secp256r1``.  Our client therefore
                          sends an x448 key share; an OpenSSL server accepts any
                          acceptable key share the client sent (no HelloRetryRequest),
                          so a foreign client offering x25519 gets x25519.
                          ``strict_groups=True`` keeps only x448/secp521r1 (a client
                          offering other shares gets a HelloRetryRequest).
X.509 verification        ``VERIFY_X509_STRICT``; chain depth limit 4 (leaf, 2 Sub-CAs,
                          root) is checked by :func:`check_peer`.
Key log                   ``keylog_file=`` → NSS key log format (``SSLKEYLOGFILE``),
                          append mode; only when asked for.  Nothing here logs keys.
========================  ============================================================

Python 3.11 cannot set the TLS 1.3 suites, groups or signature algorithms;
:mod:`iso15118.security._openssl` does it through ``ctypes``.  When that is
unavailable the profile is still enforced, but after the handshake by
:func:`check_peer` (cipher suite and algorithms) instead of during it.

Josev compatibility (:data:`JOSEV_COMPAT`): Josev 0.31.2's test PKI is P-256 /
SHA-256, its ``tls13`` mode accepts TLS 1.2 or 1.3, its SECC wants the EVCC to
present the **OEM provisioning chain** (verified against the OEM root) and its
EVCC presents that chain.  The compat profile therefore: TLS 1.2–1.3, the
library's default TLS 1.3 suites plus ``ECDHE-ECDSA-AES128-SHA256`` for 1.2, no
algorithm restriction, client certificate required only if
``require_client_cert`` (Josev's ``tls12`` mode sends none).  Knobs, all
keyword arguments of both factories: ``profile``, ``trust_anchors``,
``require_client_cert``, ``keylog_file``, ``strict_groups``.  For Josev's SECC
give our EVCC ``cert_chain=oemCertChain.pem`` + ``oemLeaf.key`` (password
``12345``) and ``trust_anchors=[v2gRootCACert.pem]``; for Josev's EVCC give our
SECC ``cpoCertChain.pem`` + ``seccLeaf.key`` and
``trust_anchors=[oemRootCACert.pem]`` — :func:`josev_evcc_context` and
:func:`josev_secc_context` do exactly that from the Josev PKI directory
(``~/.cache/iso15118-peer/pki/iso15118_2``).  For our own lab PKI use
:func:`secc_context_from_pki` / :func:`evcc_context_from_pki`.

Handshake reporting: :func:`connection_info` returns version, cipher, the
negotiated group (read from the ServerHello through CPython's
``SSLContext._msg_callback`` hook; ``None`` if unavailable) and the SHA-512
fingerprint of the peer certificate's DER (digest §1.3 last row, used for
pause/resume binding).
"""

from __future__ import annotations

import enum
import logging
import os
import ssl
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import _openssl

if TYPE_CHECKING:
    from .pki import PkiPaths
from .algorithms import ANY_POLICY, ISO20_POLICY, AlgorithmPolicy, algorithm_of_key
from .validation import (
    CertificateChainError,
    ChainErrorReason,
    Purpose,
    fingerprint_sha512,
    reason_from_verify_code,
    verified_path,
)

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
CertSource = PathLike | x509.Certificate | bytes

TLS13_CIPHERSUITES_20: tuple[str, ...] = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
GROUPS_20_PREFERRED: tuple[str, ...] = ("x448", "secp521r1")
GROUPS_20_FALLBACK: tuple[str, ...] = ("x25519", "secp384r1", "secp256r1")
SIGALGS_20: tuple[str, ...] = ("ed448", "ecdsa_secp521r1_sha512")
TLS12_CIPHERS_2: str = "ECDHE-ECDSA-AES128-SHA256"

#: TLS NamedGroup code points (RFC 8446 §4.2.7, RFC 7919) -> OpenSSL names.
GROUP_NAMES = {
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001D: "x25519",
    0x001E: "x448",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
}


@dataclass(frozen=True)
class TlsProfile:
    """Everything that differs between the -20 profile and the Josev compatibility profile."""

    name: str
    minimum_version: ssl.TLSVersion
    maximum_version: ssl.TLSVersion
    tls13_ciphersuites: tuple[str, ...] | None  # None = library default
    tls12_ciphers: str | None
    sigalgs: tuple[str, ...] | None
    groups: tuple[str, ...] | None  # None = library default
    policy: AlgorithmPolicy
    require_client_cert: bool
    x509_strict: bool


ISO20 = TlsProfile(
    name="iso15118-20",
    minimum_version=ssl.TLSVersion.TLSv1_3,
    maximum_version=ssl.TLSVersion.TLSv1_3,
    tls13_ciphersuites=TLS13_CIPHERSUITES_20,
    tls12_ciphers=None,
    sigalgs=SIGALGS_20,
    groups=GROUPS_20_PREFERRED + GROUPS_20_FALLBACK,
    policy=ISO20_POLICY,
    require_client_cert=True,
    x509_strict=True,
)

JOSEV_COMPAT = TlsProfile(
    name="josev-compat",
    minimum_version=ssl.TLSVersion.TLSv1_2,
    maximum_version=ssl.TLSVersion.TLSv1_3,
    tls13_ciphersuites=None,
    tls12_ciphers=TLS12_CIPHERS_2,
    sigalgs=None,
    groups=None,
    policy=ANY_POLICY,
    require_client_cert=True,
    x509_strict=False,
)


class TlsSetupError(ValueError):
    """A context could not be built as requested (bad key, password, file ...)."""


# --------------------------------------------------------------------------- handshake observer


class _HandshakeObserver:
    """Remembers, per connection, the group chosen in the (last) ServerHello."""

    def __init__(self) -> None:
        self.groups: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def __call__(self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: bytes) -> None:
        try:
            if int(content_type) != 22 or not data or data[0] != 2:
                return
            group = _server_hello_group(data)
            if group is not None and conn is not None:
                self.groups[conn] = group
        except Exception:  # never let observation break a handshake
            return


def _server_hello_group(msg: bytes) -> int | None:
    """Parse a ServerHello handshake message (with its 4-byte header) for key_share."""
    pos = 4 + 2 + 32  # header, legacy_version, random
    if len(msg) < pos + 1:
        return None
    pos += 1 + msg[pos]  # legacy_session_id
    pos += 2 + 1  # cipher_suite, compression
    if len(msg) < pos + 2:
        return None
    end = pos + 2 + int.from_bytes(msg[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= min(end, len(msg)):
        ext_type = int.from_bytes(msg[pos : pos + 2], "big")
        ext_len = int.from_bytes(msg[pos + 2 : pos + 4], "big")
        body = msg[pos + 4 : pos + 4 + ext_len]
        if ext_type == 51 and len(body) >= 2:  # key_share (ServerHello or HelloRetryRequest)
            return int.from_bytes(body[:2], "big")
        pos += 4 + ext_len
    return None


_OBSERVER = _HandshakeObserver()


# --------------------------------------------------------------------------- factories


def _read_certs(sources: Iterable[CertSource]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for src in sources:
        if isinstance(src, x509.Certificate):
            out.append(src)
            continue
        data = src if isinstance(src, bytes) else Path(src).read_bytes()
        if b"-----BEGIN" in data:
            out.extend(x509.load_pem_x509_certificates(data))
        else:
            out.append(x509.load_der_x509_certificate(data))
    return out


def _cadata(anchors: Sequence[x509.Certificate]) -> str:
    return "".join(a.public_bytes(Encoding.PEM).decode() for a in anchors)


def _password(password: bytes | str | PathLike | None) -> bytes | None:
    """bytes/str are the password itself; a Path (os.PathLike) names a password file."""
    if password is None or isinstance(password, bytes):
        return password
    if isinstance(password, str):
        return password.encode()
    return Path(password).read_bytes().strip()


def _apply_profile(ctx: ssl.SSLContext, profile: TlsProfile, strict_groups: bool, server: bool) -> None:
    ctx.minimum_version = profile.minimum_version
    ctx.maximum_version = profile.maximum_version
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if server:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if profile.tls12_ciphers:
        ctx.set_ciphers(profile.tls12_ciphers)
    native = _openssl.available()
    if native:
        if profile.tls13_ciphersuites:
            _openssl.set_tls13_ciphersuites(ctx, profile.tls13_ciphersuites)
        groups = GROUPS_20_PREFERRED if strict_groups else profile.groups
        if groups:
            _openssl.set_groups(ctx, groups)
        if profile.sigalgs:
            _openssl.set_sigalgs(ctx, profile.sigalgs)
    elif profile.tls13_ciphersuites or profile.sigalgs or profile.groups or strict_groups:
        log.info("OpenSSL knobs unavailable; the %s profile is enforced after the handshake", profile.name)
    if profile.x509_strict:
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    # Observe ServerHello for the negotiated group (CPython debugging hook).
    if hasattr(ctx, "_msg_callback"):
        ctx._msg_callback = _OBSERVER  # type: ignore[attr-defined]


def _load_identity(
    ctx: ssl.SSLContext,
    cert_chain: PathLike,
    key: PathLike,
    password: bytes | str | PathLike | None,
    profile: TlsProfile,
) -> None:
    chain = _read_certs([cert_chain])
    if not chain:
        raise TlsSetupError(f"no certificate in {cert_chain}")
    for cert in chain:
        if not (profile.policy.key_allowed(cert.public_key()) and profile.policy.signature_allowed(cert)):
            raise TlsSetupError(
                f"{ChainErrorReason.WRONG_ALGORITHM.value}: {cert.subject.rfc4514_string()} "
                f"({algorithm_of_key(cert.public_key())}) is not allowed by the {profile.name} profile"
            )
    try:
        ctx.load_cert_chain(os.fspath(cert_chain), os.fspath(key), password=_password(password))
    except ssl.SSLError as exc:
        # Never include key material; OpenSSL's reason is enough.
        raise TlsSetupError(f"cannot load certificate chain {cert_chain} / key {key}: {exc.reason or exc}") from None


def server_context(
    cert_chain: PathLike,
    key: PathLike,
    password: bytes | str | PathLike | None = None,
    trust_anchors: Iterable[CertSource] = (),
    *,
    profile: TlsProfile = ISO20,
    require_client_cert: bool | None = None,
    keylog_file: PathLike | None = None,
    strict_groups: bool = False,
) -> ssl.SSLContext:
    """SECC context: presents ``cert_chain`` (leaf first, e.g. ``cpoCertChain.pem``) and
    verifies EV certificates against ``trust_anchors`` (-20: the V2G root).

    ``password`` is the key password as bytes/str, or a :class:`~pathlib.Path` to a
    password file (``seccLeafPassword.txt``).
    """
    anchors = _read_certs(trust_anchors)
    need_client = profile.require_client_cert if require_client_cert is None else require_client_cert
    if need_client and not anchors:
        raise TlsSetupError("mutual authentication needs trust anchors for client certificates")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_profile(ctx, profile, strict_groups, server=True)
    _load_identity(ctx, cert_chain, key, password, profile)
    if anchors:
        ctx.load_verify_locations(cadata=_cadata(anchors))
    ctx.verify_mode = ssl.CERT_REQUIRED if need_client else (ssl.CERT_OPTIONAL if anchors else ssl.CERT_NONE)
    ctx.sni_callback = None  # SNI is neither required nor used (digest §1.3)
    if keylog_file is not None:
        ctx.keylog_filename = os.fspath(keylog_file)
    return ctx


def client_context(
    trust_anchors: Iterable[CertSource],
    cert_chain: PathLike | None = None,
    key: PathLike | None = None,
    password: bytes | str | PathLike | None = None,
    *,
    profile: TlsProfile = ISO20,
    keylog_file: PathLike | None = None,
    strict_groups: bool = False,
) -> ssl.SSLContext:
    """EVCC context: verifies the SECC chain against ``trust_anchors`` (the V2G root),
    host name not checked; presents ``cert_chain`` (-20: ``vehicleCertChain.pem``;
    Josev: ``oemCertChain.pem``) when given."""
    anchors = _read_certs(trust_anchors)
    if not anchors:
        raise TlsSetupError("the EVCC needs the V2G root as trust anchor")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_profile(ctx, profile, strict_groups, server=False)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=_cadata(anchors))
    if cert_chain is not None:
        if key is None:
            raise TlsSetupError("cert_chain given without key")
        _load_identity(ctx, cert_chain, key, password, profile)
    if keylog_file is not None:
        ctx.keylog_filename = os.fspath(keylog_file)
    return ctx


# --------------------------------------------------------------------------- after the handshake

SSLConn = ssl.SSLSocket | ssl.SSLObject


@dataclass(frozen=True)
class TlsInfo:
    """What was negotiated, for logs and session binding (no secrets)."""

    version: str | None
    cipher: str | None
    group: str | None
    peer_fingerprint_sha512: str | None
    peer_subject: str | None
    peer_key_algorithm: str | None

    def as_dict(self) -> dict[str, str | None]:
        return dict(self.__dict__)


def peer_chain(conn: SSLConn) -> list[x509.Certificate]:
    """The peer's verified chain, leaf first (uses ``get_verified_chain``: public in
    Python 3.13, private ``_sslobj`` method since 3.10); [] when unavailable."""
    getter = getattr(conn, "get_verified_chain", None)
    if getter is None:
        inner = getattr(conn, "_sslobj", None)
        getter = getattr(inner, "get_verified_chain", None)
    if getter is None:
        leaf = conn.getpeercert(binary_form=True)
        return [x509.load_der_x509_certificate(leaf)] if leaf else []
    chain = getter() or []
    out = []
    for c in chain:
        der = c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
        out.append(x509.load_der_x509_certificate(der))
    return out


def connection_info(conn: SSLConn) -> TlsInfo:
    """Version, cipher, group and peer certificate fingerprint of a finished handshake."""
    cipher = conn.cipher()
    der = conn.getpeercert(binary_form=True)
    subject = key_alg = fp = None
    if der:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        key_alg = algorithm_of_key(cert.public_key())
        fp = fingerprint_sha512(der)
    code = _OBSERVER.groups.get(conn)
    group = GROUP_NAMES.get(code, f"0x{code:04x}") if code is not None else None
    return TlsInfo(
        version=conn.version(),
        cipher=cipher[0] if cipher else None,
        group=group,
        peer_fingerprint_sha512=fp,
        peer_subject=subject,
        peer_key_algorithm=key_alg,
    )


def check_peer(
    conn: SSLConn,
    *,
    profile: TlsProfile = ISO20,
    purpose: Purpose = Purpose.ANY,
    require_certificate: bool = True,
) -> TlsInfo:
    """Apply the profile's rules that OpenSSL did not (or could not) check in the handshake.

    Raises :class:`~iso15118.security.validation.CertificateChainError` (e.g.
    ``WRONG_ALGORITHM`` for a P-256 Sub-CA, ``PATH_LENGTH`` for more than two
    Sub-CAs, ``NO_CERTIFICATE``) or :class:`ssl.SSLError` for a cipher suite
    outside the profile.  Returns :func:`connection_info`.
    """
    info = connection_info(conn)
    if profile.tls13_ciphersuites and info.version == "TLSv1.3" and info.cipher not in profile.tls13_ciphersuites:
        raise ssl.SSLError(f"cipher suite {info.cipher} not allowed by the {profile.name} profile")
    chain = peer_chain(conn)
    if not chain:
        if require_certificate:
            raise CertificateChainError(ChainErrorReason.NO_CERTIFICATE, "peer presented no certificate")
        return info
    # The chain was verified by OpenSSL up to a configured anchor; re-check it with our rules.
    anchor = chain[-1:] if len(chain) > 1 else chain
    verified_path(chain[0], chain[1:-1], anchor, purpose=purpose, policy=profile.policy)
    return info


class TlsFailure(str, enum.Enum):
    """Coarse, stable classification of a failed handshake (for logs and tests)."""

    PROTOCOL_VERSION = "PROTOCOL_VERSION"
    CERTIFICATE = "CERTIFICATE"  # see the ChainErrorReason
    NO_CLIENT_CERTIFICATE = "NO_CLIENT_CERTIFICATE"
    NO_SHARED_ALGORITHM = "NO_SHARED_ALGORITHM"
    PEER_ALERT = "PEER_ALERT"
    OTHER = "OTHER"


def classify_ssl_error(exc: BaseException) -> tuple[TlsFailure, ChainErrorReason | None]:
    """Map an exception from a handshake (either side) to (:class:`TlsFailure`, reason)."""
    if isinstance(exc, CertificateChainError):
        if exc.reason is ChainErrorReason.NO_CERTIFICATE:
            return TlsFailure.NO_CLIENT_CERTIFICATE, exc.reason
        return TlsFailure.CERTIFICATE, exc.reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure.CERTIFICATE, reason_from_verify_code(exc.verify_code)
    text = f"{getattr(exc, 'reason', '') or ''} {exc}".upper()
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text or "CERTIFICATE_REQUIRED" in text:
        return TlsFailure.NO_CLIENT_CERTIFICATE, ChainErrorReason.NO_CERTIFICATE
    if "UNSUPPORTED_PROTOCOL" in text or "PROTOCOL_VERSION" in text or "WRONG_VERSION" in text:
        return TlsFailure.PROTOCOL_VERSION, None
    if "NO_SUITABLE_SIGNATURE" in text or "NO_SHARED_CIPHER" in text or "NO_SUITABLE_KEY_SHARE" in text:
        return TlsFailure.NO_SHARED_ALGORITHM, None
    if "ALERT_UNKNOWN_CA" in text or "ALERT_BAD_CERTIFICATE" in text or "CERTIFICATE_EXPIRED" in text:
        return TlsFailure.CERTIFICATE, None
    if "ALERT" in text:
        return TlsFailure.PEER_ALERT, None
    return TlsFailure.OTHER, None


# --------------------------------------------------------------------------- convenience


def secc_context_from_pki(paths: PkiPaths, *, client_roots: Sequence[str] = ("v2gRootCA",), **kw: Any) -> ssl.SSLContext:
    """-20 SECC context from a lab PKI: ``cpoCertChain`` + ``seccLeaf``, EV chains checked
    against ``client_roots`` (add ``"oemRootCA"`` to also accept OEM provisioning chains)."""
    return server_context(
        paths.chain("cpoCertChain"),
        paths.key("seccLeaf"),
        paths.password_file("seccLeaf"),
        [paths.cert(r) for r in client_roots],
        **kw,
    )


def evcc_context_from_pki(paths: PkiPaths, *, identity: str | None = "vehicle", **kw: Any) -> ssl.SSLContext:
    """-20 EVCC context from a lab PKI: trusts the V2G root, presents the vehicle chain
    (``identity="vehicle"``), the OEM provisioning chain (``"oem"``) or nothing (``None``)."""
    roots = [paths.cert("v2gRootCA")]
    if identity is None:
        return client_context(roots, **kw)
    chain, leaf = {"vehicle": ("vehicleCertChain", "vehicleLeaf"), "oem": ("oemCertChain", "oemLeaf")}[identity]
    return client_context(roots, paths.chain(chain), paths.key(leaf), paths.password_file(leaf), **kw)


def josev_secc_context(josev_pki: PathLike, **kw: Any) -> ssl.SSLContext:
    """Our SECC with Josev's test PKI (``.../pki/iso15118_2``) for a Josev EVCC in ``tls13``
    mode (client certificate = OEM chain, checked against the OEM root) or ``tls12`` mode
    (pass ``require_client_cert=False``)."""
    root = Path(josev_pki)
    return server_context(
        root / "certs" / "cpoCertChain.pem",
        root / "private_keys" / "seccLeaf.key",
        root / "private_keys" / "seccLeafPassword.txt",
        [root / "certs" / "oemRootCACert.pem"],
        profile=kw.pop("profile", JOSEV_COMPAT),
        **kw,
    )


def josev_evcc_context(josev_pki: PathLike, *, present_oem_chain: bool = True, **kw: Any) -> ssl.SSLContext:
    """Our EVCC with Josev's test PKI for a Josev SECC: trusts its V2G root and presents
    its OEM provisioning chain (required by Josev's ``tls13`` mode)."""
    root = Path(josev_pki)
    roots = [root / "certs" / "v2gRootCACert.pem"]
    profile = kw.pop("profile", JOSEV_COMPAT)
    if not present_oem_chain:
        return client_context(roots, profile=profile, **kw)
    return client_context(
        roots,
        root / "certs" / "oemCertChain.pem",
        root / "private_keys" / "oemLeaf.key",
        root / "private_keys" / "oemLeafPassword.txt",
        profile=profile,
        **kw,
    )
