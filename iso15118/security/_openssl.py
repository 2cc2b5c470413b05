"""OpenSSL settings that Python 3.11's :mod:`ssl` does not expose.

``ssl.SSLContext`` has no setter for the TLS 1.3 cipher suites, the (EC)DHE
groups (beyond one curve) or the signature algorithms, all of which the -20
profile wants.  This module sets them on the context's ``SSL_CTX`` through
``ctypes`` and the very ``libssl`` the ``_ssl`` extension is linked against.

Safety checks before anything is written:

* the library version must equal ``ssl.OPENSSL_VERSION_NUMBER``;
* the ``SSL_CTX*`` is read from the ``PySSLContext`` object (first field after
  the object header, true for CPython 3.8–3.13) and accepted only if
  ``SSL_CTX_get_options`` on it returns exactly ``SSLContext.options``;
* every setter's return value is checked, and cipher suites are read back via
  ``SSLContext.get_ciphers()``.

If any check fails, :func:`available` is False and the callers fall back to
what :mod:`ssl` can do (see :mod:`iso15118.security.tls`: the negotiated
cipher and the peer's key algorithm are then checked after the handshake).
"""

from __future__ import annotations

import ctypes
import ssl
import sys
from functools import lru_cache

# SSL_CTX_ctrl commands (openssl/ssl.h, stable since 1.1.0)
_SSL_CTRL_SET_GROUPS_LIST = 92
_SSL_CTRL_SET_SIGALGS_LIST = 98
_SSL_CTRL_SET_CLIENT_SIGALGS_LIST = 102


class NativeUnavailable(RuntimeError):
    """The OpenSSL knobs cannot be set safely in this interpreter."""


def _libssl_path() -> str | None:
    """Path of the libssl mapped into this process (Linux), else None."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1]
                if "/libssl.so" in path:
                    return path
    except OSError:
        return None
    return None


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    import _ssl  # noqa: F401  (ensure libssl is loaded)

    path = _libssl_path()
    if path is None:
        raise NativeUnavailable("libssl not found in /proc/self/maps")
    lib = ctypes.CDLL(path)
    lib.OpenSSL_version_num.restype = ctypes.c_ulong
    if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        raise NativeUnavailable("libssl version differs from the ssl module's")
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
    lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    return lib


def _ctx_pointer(ctx: ssl.SSLContext) -> int:
    if sys.implementation.name != "cpython":
        raise NativeUnavailable("not CPython")
    lib = _lib()
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr or lib.SSL_CTX_get_options(ptr) != int(ctx.options):
        raise NativeUnavailable("cannot locate SSL_CTX of the context")
    return ptr


@lru_cache(maxsize=1)
def available() -> bool:
    """True when the native setters can be used."""
    try:
        _ctx_pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        return True
    except (NativeUnavailable, OSError, AttributeError):
        return False


def set_tls13_ciphersuites(ctx: ssl.SSLContext, suites: tuple[str, ...]) -> None:
    """Set the TLS 1.3 cipher suites in preference order (SSL_CTX_set_ciphersuites)."""
    ptr = _ctx_pointer(ctx)
    if _lib().SSL_CTX_set_ciphersuites(ptr, ":".join(suites).encode()) != 1:
        raise ssl.SSLError(f"cannot set TLS 1.3 cipher suites {suites}")
    got = [c["name"] for c in ctx.get_ciphers() if c.get("protocol") == "TLSv1.3"]
    if tuple(got) != tuple(suites):
        raise NativeUnavailable(f"TLS 1.3 cipher suites read back as {got}")


def set_groups(ctx: ssl.SSLContext, groups: tuple[str, ...]) -> None:
    """Set the supported (EC)DHE groups in preference order (SSL_CTX_set1_groups_list)."""
    ptr = _ctx_pointer(ctx)
    if _lib().SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.c_char_p(":".join(groups).encode())) != 1:
        raise ssl.SSLError(f"cannot set groups {groups}")


def set_sigalgs(ctx: ssl.SSLContext, sigalgs: tuple[str, ...]) -> None:
    """Restrict handshake signature algorithms, ours and those requested from a client
    certificate (SSL_CTX_set1_sigalgs_list + SSL_CTX_set1_client_sigalgs_list)."""
    ptr = _ctx_pointer(ctx)
    text = ctypes.c_char_p(":".join(sigalgs).encode())
    lib = _lib()
    if lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_SIGALGS_LIST, 0, text) != 1:
        raise ssl.SSLError(f"cannot set signature algorithms {sigalgs}")
    if lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_CLIENT_SIGALGS_LIST, 0, text) != 1:
        raise ssl.SSLError(f"cannot set client signature algorithms {sigalgs}")


# --------------------------------------------------------------------------- verify callback

#: ``int verify_callback(int preverify_ok, X509_STORE_CTX *ctx)`` (SSL_CTX_set_verify).
VERIFY_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)

#: X509_V_ERR_* codes we set (openssl/x509_vfy.h, stable since 1.1.0).  OpenSSL turns each
#: into the TLS alert it sends (``ssl_x509err2alert``): see :data:`ALERT_OF_VERIFY_ERROR`.
X509_V_ERR_UNSPECIFIED = 1
X509_V_ERR_CERT_SIGNATURE_FAILURE = 7
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN = 19
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_CERT_REVOKED = 23
X509_V_ERR_INVALID_CA = 24
X509_V_ERR_PATH_LENGTH_EXCEEDED = 25
X509_V_ERR_INVALID_PURPOSE = 26
X509_V_ERR_CERT_REJECTED = 28
X509_V_ERR_UNABLE_TO_GET_CRL = 3

#: The alert OpenSSL 1.1.1/3.x sends for each code above (RFC 8446 §6.2 names).
ALERT_OF_VERIFY_ERROR = {
    2: "unknown_ca",  # UNABLE_TO_GET_ISSUER_CERT
    18: "unknown_ca",  # DEPTH_ZERO_SELF_SIGNED_CERT
    21: "unknown_ca",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    X509_V_ERR_UNSPECIFIED: "certificate_unknown",
    X509_V_ERR_CERT_SIGNATURE_FAILURE: "decrypt_error",
    X509_V_ERR_CERT_NOT_YET_VALID: "bad_certificate",
    X509_V_ERR_CERT_HAS_EXPIRED: "certificate_expired",
    X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: "unknown_ca",
    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unknown_ca",
    X509_V_ERR_CERT_REVOKED: "certificate_revoked",
    X509_V_ERR_INVALID_CA: "unknown_ca",
    X509_V_ERR_PATH_LENGTH_EXCEEDED: "unknown_ca",
    X509_V_ERR_INVALID_PURPOSE: "unsupported_certificate",
    X509_V_ERR_CERT_REJECTED: "bad_certificate",
    X509_V_ERR_UNABLE_TO_GET_CRL: "certificate_unknown",
}


@lru_cache(maxsize=1)
def _verify_lib() -> ctypes.CDLL:
    """libssl with the X509_STORE_CTX / stack / i2d functions (found through its libcrypto)."""
    lib = _lib()
    lib.SSL_CTX_set_verify.restype = None
    lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, VERIFY_CALLBACK]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    lib.X509_STORE_CTX_get_error.restype = ctypes.c_int
    lib.X509_STORE_CTX_get_error.argtypes = [ctypes.c_void_p]
    lib.X509_STORE_CTX_set_error.restype = None
    lib.X509_STORE_CTX_set_error.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.X509_STORE_CTX_get_error_depth.restype = ctypes.c_int
    lib.X509_STORE_CTX_get_error_depth.argtypes = [ctypes.c_void_p]
    lib.X509_STORE_CTX_get0_chain.restype = ctypes.c_void_p
    lib.X509_STORE_CTX_get0_chain.argtypes = [ctypes.c_void_p]
    lib.OPENSSL_sk_num.restype = ctypes.c_int
    lib.OPENSSL_sk_num.argtypes = [ctypes.c_void_p]
    lib.OPENSSL_sk_value.restype = ctypes.c_void_p
    lib.OPENSSL_sk_value.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.X509_verify_cert_error_string.restype = ctypes.c_char_p
    lib.X509_verify_cert_error_string.argtypes = [ctypes.c_long]
    lib.i2d_X509.restype = ctypes.c_int
    lib.i2d_X509.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
    return lib


@lru_cache(maxsize=1)
def verify_callback_available() -> bool:
    """True when :func:`set_verify_callback` can be used (CPython + matching libssl)."""
    if not available():
        return False
    try:
        _verify_lib()
        return True
    except (NativeUnavailable, OSError, AttributeError):
        return False


def store_ctx_error(store_ctx: int) -> tuple[int, int]:
    """(error code, error depth) of an ``X509_STORE_CTX*``."""
    lib = _verify_lib()
    return lib.X509_STORE_CTX_get_error(store_ctx), lib.X509_STORE_CTX_get_error_depth(store_ctx)


def verify_error_text(code: int) -> str:
    """OpenSSL's text for an X509_V_ERR code (``certificate has expired`` ...)."""
    text = _verify_lib().X509_verify_cert_error_string(code)
    return text.decode(errors="replace") if text else f"error {code}"


def set_store_ctx_error(store_ctx: int, code: int) -> None:
    _verify_lib().X509_STORE_CTX_set_error(store_ctx, code)


def store_ctx_chain(store_ctx: int) -> list[bytes]:
    """DER of the chain OpenSSL built (leaf first, trust anchor last)."""
    lib = _verify_lib()
    stack = lib.X509_STORE_CTX_get0_chain(store_ctx)
    if not stack:
        return []
    out: list[bytes] = []
    for i in range(max(0, lib.OPENSSL_sk_num(stack))):
        x509_ptr = lib.OPENSSL_sk_value(stack, i)
        size = lib.i2d_X509(x509_ptr, None)
        if size <= 0:
            raise NativeUnavailable("i2d_X509 failed")
        buf = (ctypes.c_ubyte * size)()
        cursor = ctypes.cast(buf, ctypes.POINTER(ctypes.c_ubyte))  # i2d advances this copy
        if lib.i2d_X509(x509_ptr, ctypes.byref(cursor)) != size:
            raise NativeUnavailable("i2d_X509 wrote an unexpected length")
        out.append(bytes(buf))
    return out


def set_verify_callback(ctx: ssl.SSLContext, callback: object) -> None:
    """Install ``callback`` (a :data:`VERIFY_CALLBACK` object) on the context, keeping the
    verify mode.  The callback object is stored on the context so that it lives as long as
    the ``SSL_CTX`` may call it (every ``SSLObject`` keeps its context alive)."""
    ptr = _ctx_pointer(ctx)
    lib = _verify_lib()
    ctx.__dict__["_iso15118_verify_callback"] = callback
    lib.SSL_CTX_set_verify(ptr, lib.SSL_CTX_get_verify_mode(ptr), callback)
