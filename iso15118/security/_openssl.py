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
