"""TLS contexts for ISO 15118-20 (digest §1.3) on top of the standard :mod:`ssl` module.

Use :func:`server_context` on the SECC and :func:`client_context` on the EVCC,
with plain sockets or :mod:`iso15118.transport.tcp` (whose handshake driver sends the alert
of a refused chain; asyncio's own SSL transport closes without writing it).

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
(EC)DHE groups            not specified by either implementation (digest §1.3); the
                          -20 profile offers and accepts only the -20 key-delivery
                          curves ``x448:secp521r1`` (strict by default: a client that
                          offers only x25519/P-256 gets a ``handshake_failure``
                          alert).  ``strict_groups=False`` widens to
                          ``x25519:secp384r1:secp256r1`` too, and says so in the log.
X.509 verification        ``VERIFY_X509_STRICT``, then **every -20 chain rule inside the
                          handshake** (:func:`install_chain_rules`: an OpenSSL verify
                          callback installed through ``ctypes``) on every connection,
                          both roles: the SECC judges the vehicle chain
                          (:attr:`Purpose.EV_TLS_CLIENT`), the EVCC the charger's
                          (:attr:`Purpose.SECC_TLS_SERVER`): algorithms in keys and
                          signatures, at most two Sub-CAs, the role's domain component,
                          keyUsage / extendedKeyUsage, validity, and revocation from the
                          ``crls`` / ``ocsp_responses`` given.  A refusal sets the
                          X509 error so that OpenSSL sends the matching alert
                          (:func:`alert_for`: ``bad_certificate``, ``unknown_ca``,
                          ``certificate_expired``, ``certificate_revoked``,
                          ``unsupported_certificate``; no certificate at all:
                          ``certificate_required``; TLS 1.2: ``protocol_version``), and
                          the handshake driver (``iso15118.transport.tlsstream``) writes
                          that alert before closing and logs one line with the
                          :class:`~iso15118.security.validation.CertificateChainError`
                          reason.  Without the native callback (not CPython, libssl
                          mismatch) :func:`check_peer` after the handshake is the
                          fallback, and a refusal is then a close without the alert.
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
(``pki/iso15118_2`` in the peer home ``tools/peer/setup`` makes).  For our own lab PKI use
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
import threading
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
from .algorithms import ANY_POLICY, ISO2_POLICY, ISO20_POLICY, AlgorithmPolicy, algorithm_of_key
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
SIGALGS_2: tuple[str, ...] = ("ecdsa_secp256r1_sha256",)
GROUPS_2: tuple[str, ...] = ("secp256r1",)

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
    leaf_purpose: bool = True
    """Check the peer leaf's role (domain component, keyUsage, extendedKeyUsage) in the handshake."""


ISO20 = TlsProfile(
    name="iso15118-20",
    minimum_version=ssl.TLSVersion.TLSv1_3,
    maximum_version=ssl.TLSVersion.TLSv1_3,
    tls13_ciphersuites=TLS13_CIPHERSUITES_20,
    tls12_ciphers=None,
    sigalgs=SIGALGS_20,
    groups=GROUPS_20_PREFERRED,
    policy=ISO20_POLICY,
    require_client_cert=True,
    x509_strict=True,
)

ISO2 = TlsProfile(
    name="iso15118-2",
    minimum_version=ssl.TLSVersion.TLSv1_2,
    maximum_version=ssl.TLSVersion.TLSv1_2,
    tls13_ciphersuites=None,
    tls12_ciphers=TLS12_CIPHERS_2,
    sigalgs=SIGALGS_2,
    groups=GROUPS_2,
    policy=ISO2_POLICY,
    require_client_cert=False,
    x509_strict=True,
)
"""ISO 15118-2: TLS 1.2 only, ``TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256`` on secp256r1 with
ECDSA-SHA-256, server authentication only (the -2 EVCC presents no certificate), every
certificate of the SECC chain P-256 / ECDSA-SHA-256 with the charger's role (DC=CPO) checked in
the handshake.  -2 also lists the static ``TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256``; OpenSSL 1.1+
dropped static-ECDH suites, so (like Josev and EVerest on OpenSSL 3) only the ECDHE suite is
offered and accepted."""

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
    leaf_purpose=False,  # Josev's -2 test PKI was not made for the -20 role checks
)


class TlsSetupError(ValueError):
    """A context could not be built as requested (bad key, password, file ...)."""


# --------------------------------------------------------------------------- chain rules in the handshake

#: The X509_V_ERR code set for each refusal; OpenSSL sends the matching alert
#: (:data:`iso15118.security._openssl.ALERT_OF_VERIFY_ERROR`).
VERIFY_ERROR_OF_REASON: dict[ChainErrorReason, int] = {
    ChainErrorReason.EXPIRED: _openssl.X509_V_ERR_CERT_HAS_EXPIRED,  # certificate_expired
    ChainErrorReason.NOT_YET_VALID: _openssl.X509_V_ERR_CERT_NOT_YET_VALID,  # bad_certificate
    ChainErrorReason.UNKNOWN_ISSUER: _openssl.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,  # unknown_ca
    ChainErrorReason.NO_TRUST_ANCHOR: _openssl.X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,  # unknown_ca
    ChainErrorReason.BAD_SIGNATURE: _openssl.X509_V_ERR_CERT_SIGNATURE_FAILURE,  # decrypt_error
    ChainErrorReason.WRONG_KEY_USAGE: _openssl.X509_V_ERR_INVALID_PURPOSE,  # unsupported_certificate
    ChainErrorReason.NOT_A_CA: _openssl.X509_V_ERR_INVALID_CA,  # unknown_ca
    ChainErrorReason.PATH_LENGTH: _openssl.X509_V_ERR_PATH_LENGTH_EXCEEDED,  # unknown_ca
    ChainErrorReason.REVOKED: _openssl.X509_V_ERR_CERT_REVOKED,  # certificate_revoked
    ChainErrorReason.REVOCATION_UNKNOWN: _openssl.X509_V_ERR_UNABLE_TO_GET_CRL,  # certificate_unknown
    ChainErrorReason.WRONG_ALGORITHM: _openssl.X509_V_ERR_CERT_REJECTED,  # bad_certificate
    ChainErrorReason.WRONG_DOMAIN: _openssl.X509_V_ERR_CERT_REJECTED,  # bad_certificate
    ChainErrorReason.NO_CERTIFICATE: _openssl.X509_V_ERR_UNSPECIFIED,
    ChainErrorReason.OTHER: _openssl.X509_V_ERR_UNSPECIFIED,
}


def alert_for(reason: ChainErrorReason) -> str:
    """The TLS alert (RFC 8446 §6.2 name) sent when a chain is refused for ``reason``."""
    if reason is ChainErrorReason.NO_CERTIFICATE:
        return "certificate_required"
    return _openssl.ALERT_OF_VERIFY_ERROR.get(VERIFY_ERROR_OF_REASON[reason], "certificate_unknown")


@dataclass(frozen=True)
class ChainRules:
    """The -20 chain rules one side applies to the peer's chain during the handshake."""

    role: str
    """Whose chain is judged, for the log: ``"vehicle"`` (SECC side) or ``"charger"`` (EVCC)."""
    purpose: Purpose
    policy: AlgorithmPolicy
    max_intermediates: int = 2
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    ocsp_responses: tuple[Any, ...] = ()
    require_revocation: bool = False

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        """Raise :class:`CertificateChainError` unless ``chain`` (leaf first, anchor last) passes."""
        if not chain:
            raise CertificateChainError(ChainErrorReason.NO_CERTIFICATE, "peer presented no certificate")
        verified_path(
            chain[0],
            list(chain[1:-1]),
            list(chain[-1:]),
            purpose=self.purpose,
            policy=self.policy,
            crls=self.crls,
            ocsp=self.ocsp_responses,
            max_intermediates=self.max_intermediates,
            require_revocation=self.require_revocation,
        )


class _Refusals(threading.local):
    """The chain refusal of the handshake step that ran last in this thread.

    OpenSSL calls the verify callback synchronously inside ``do_handshake`` on the calling
    thread, so the handshake driver can read, right after a failed step, why it failed."""

    last: CertificateChainError | None = None


_REFUSALS = _Refusals()


def take_refusal() -> CertificateChainError | None:
    """The :class:`CertificateChainError` our verify callback raised in this thread's last
    handshake step (and forget it); None if the callback did not refuse anything."""
    last, _REFUSALS.last = _REFUSALS.last, None
    return last


def _make_verify_callback(rules: ChainRules) -> Any:
    def check(preverify_ok: int, store_ctx: int) -> int:
        code, depth = _openssl.store_ctx_error(store_ctx)
        if not preverify_ok:  # OpenSSL's own verification failed: keep its error (and alert)
            reason = reason_from_verify_code(code)
            refusal = CertificateChainError(
                reason, f"{_openssl.verify_error_text(code)} (OpenSSL verify error {code} at depth {depth})", depth=depth
            )
            refusal.alert = _openssl.ALERT_OF_VERIFY_ERROR.get(code, "certificate_unknown")  # type: ignore[attr-defined]
            _REFUSALS.last = refusal
            return 0
        if depth != 0:
            return 1
        chain = [x509.load_der_x509_certificate(der) for der in _openssl.store_ctx_chain(store_ctx)]
        try:
            rules.check(chain)
        except CertificateChainError as exc:
            exc.alert = alert_for(exc.reason)  # type: ignore[attr-defined]
            _REFUSALS.last = exc
            _openssl.set_store_ctx_error(store_ctx, VERIFY_ERROR_OF_REASON[exc.reason])
            log.debug("TLS: %s chain refused: %s", rules.role, exc)
            return 0
        return 1

    def callback(preverify_ok: int, store_ctx: int) -> int:
        # Never let an exception unwind into OpenSSL: anything unexpected refuses the chain.
        try:
            return check(preverify_ok, store_ctx)
        except BaseException as exc:  # noqa: BLE001
            try:
                _REFUSALS.last = CertificateChainError(ChainErrorReason.OTHER, f"chain check failed: {exc!r}")
                _openssl.set_store_ctx_error(store_ctx, _openssl.X509_V_ERR_UNSPECIFIED)
            except BaseException:  # noqa: BLE001
                pass
            return 0

    return _openssl.VERIFY_CALLBACK(callback)


def install_chain_rules(ctx: ssl.SSLContext, rules: ChainRules) -> bool:
    """Run ``rules`` on the peer's chain inside the handshake (an OpenSSL verify callback):
    a refused chain fails the handshake with the alert of :func:`alert_for`.  Returns False
    when the native callback cannot be installed (then only :func:`check_peer` after the
    handshake applies the rules, and the refusal is a close without the matching alert)."""
    if not _openssl.verify_callback_available():
        log.warning("OpenSSL verify callback unavailable: %s chain rules run after the handshake", rules.role)

        def after_handshake(obj: SSLConn) -> None:
            try:
                rules.check(peer_chain(obj))
            except CertificateChainError as exc:
                err = ssl.SSLError(f"peer chain refused after the handshake: {exc}")
                err.chain_refusal = exc  # type: ignore[attr-defined]
                raise err from exc

        ctx.__dict__["iso15118_after_handshake"] = after_handshake
        ctx.__dict__["_iso15118_chain_rules"] = rules
        return False
    _openssl.set_verify_callback(ctx, _make_verify_callback(rules))
    ctx.__dict__["_iso15118_chain_rules"] = rules
    ctx.__dict__["iso15118_take_refusal"] = take_refusal
    return True


def profile_of(ctx: ssl.SSLContext) -> str | None:
    """Name of the :class:`TlsProfile` a context was built with (``"iso15118-20"``,
    ``"josev-compat"``), None for a context not made here: tests and logs say which ran."""
    name = ctx.__dict__.get("iso15118_profile")
    return name if isinstance(name, str) else None


def chain_rules_of(ctx: ssl.SSLContext) -> ChainRules | None:
    """The rules installed on ``ctx`` by :func:`install_chain_rules` (None if none)."""
    rules = ctx.__dict__.get("_iso15118_chain_rules")
    return rules if isinstance(rules, ChainRules) else None


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


def _apply_profile(ctx: ssl.SSLContext, profile: TlsProfile, strict_groups: bool | None, server: bool) -> None:
    if profile.name not in (ISO20.name, ISO2.name):
        log.warning(
            "TLS compatibility profile %s (%s side): TLS %s-%s, key algorithms %s, groups %s",
            profile.name, "server" if server else "client", profile.minimum_version.name,
            profile.maximum_version.name, profile.policy.name, "library default" if profile.groups is None else ":".join(profile.groups),
        )
    ctx.__dict__["iso15118_profile"] = profile.name
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
        if strict_groups is None or profile.name == ISO2.name:
            groups = profile.groups
        elif strict_groups:
            groups = GROUPS_20_PREFERRED
        else:
            groups = GROUPS_20_PREFERRED + GROUPS_20_FALLBACK
            log.warning("TLS compatibility: groups widened to %s (strict_groups=False)", ":".join(groups))
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
    strict_groups: bool | None = None,
    crls: Iterable[x509.CertificateRevocationList] = (),
    ocsp_responses: Iterable[Any] = (),
    max_intermediates: int = 2,
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
    if ctx.verify_mode != ssl.CERT_NONE:
        install_chain_rules(ctx, _rules("vehicle", Purpose.EV_TLS_CLIENT, profile, crls, ocsp_responses, max_intermediates))
    return ctx


def client_context(
    trust_anchors: Iterable[CertSource],
    cert_chain: PathLike | None = None,
    key: PathLike | None = None,
    password: bytes | str | PathLike | None = None,
    *,
    profile: TlsProfile = ISO20,
    keylog_file: PathLike | None = None,
    strict_groups: bool | None = None,
    crls: Iterable[x509.CertificateRevocationList] = (),
    ocsp_responses: Iterable[Any] = (),
    max_intermediates: int = 2,
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
    install_chain_rules(ctx, _rules("charger", Purpose.SECC_TLS_SERVER, profile, crls, ocsp_responses, max_intermediates))
    return ctx


def _rules(
    role: str,
    purpose: Purpose,
    profile: TlsProfile,
    crls: Iterable[x509.CertificateRevocationList],
    ocsp_responses: Iterable[Any],
    max_intermediates: int,
) -> ChainRules:
    return ChainRules(
        role=role,
        purpose=purpose if profile.leaf_purpose else Purpose.ANY,
        policy=profile.policy,
        max_intermediates=max_intermediates,
        crls=tuple(crls),
        ocsp_responses=tuple(ocsp_responses),
    )


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
    if profile.tls12_ciphers and info.version == "TLSv1.2" and info.cipher not in profile.tls12_ciphers.split(":"):
        raise ssl.SSLError(f"cipher suite {info.cipher} not allowed by the {profile.name} profile")
    if profile.maximum_version == ssl.TLSVersion.TLSv1_2 and info.version != "TLSv1.2":
        raise ssl.SSLError(f"{info.version} not allowed by the {profile.name} profile (TLS 1.2 only)")
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
    refusal = getattr(exc, "chain_refusal", None)
    if isinstance(refusal, CertificateChainError):
        return TlsFailure.CERTIFICATE, refusal.reason
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
