"""Timing of the -20 security primitives (called by ``tools/bench``; never asserted in tests).

:func:`bench` returns a JSON-serialisable dict::

    {"sign_us": {"ecdsa_p521_sha512": ..., "ed448": ...},
     "verify_us": {...},
     "handshake_ms": {"secp521r1": ..., "ed448": ...},   # mutual-auth TLS 1.3 on loopback
     "handshake": {"secp521r1": {"version":..., "cipher":..., "group":...}, ...},
     "n": {...}, "openssl": "..."}

Times are medians.  Handshake time = TCP connect + full TLS 1.3 handshake with
client certificate, both ends in this process (server in a thread), measured on
the client side until the first application byte arrives.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from . import tls
from .pki import Algorithm, PkiPaths, create_pki


def _median_us(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return round(statistics.median(samples), 1)


def _sign_verify(n: int) -> tuple[dict[str, float], dict[str, float]]:
    data = b"\x80" * 256  # about the size of an EXI-encoded SignedInfo
    p521 = ec.generate_private_key(ec.SECP521R1())
    edk = ed448.Ed448PrivateKey.generate()
    algo = ec.ECDSA(hashes.SHA512())
    sig_ec = p521.sign(data, algo)
    sig_ed = edk.sign(data)
    pub_ec, pub_ed = p521.public_key(), edk.public_key()
    sign = {
        "ecdsa_p521_sha512": _median_us(lambda: p521.sign(data, algo), n),
        "ed448": _median_us(lambda: edk.sign(data), n),
    }
    verify = {
        "ecdsa_p521_sha512": _median_us(lambda: pub_ec.verify(sig_ec, data, algo), n),
        "ed448": _median_us(lambda: pub_ed.verify(sig_ed, data), n),
    }
    return sign, verify


def _handshakes(paths: PkiPaths, n: int) -> tuple[float, dict[str, Any]]:
    sctx = tls.server_context(
        paths.chain("cpoCertChain"), paths.key("seccLeaf"), paths.password_file("seccLeaf"), [paths.cert("v2gRootCA")]
    )
    cctx = tls.client_context(
        [paths.cert("v2gRootCA")], paths.chain("vehicleCertChain"), paths.key("vehicleLeaf"), paths.password_file("vehicleLeaf")
    )
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    stop = threading.Event()

    srv.settimeout(0.2)  # so that the loop notices ``stop``; close() does not wake accept()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                with sctx.wrap_socket(raw, server_side=True) as conn:
                    conn.sendall(b"\x01")
                    conn.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    samples: list[float] = []
    info: dict[str, Any] = {}
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with cctx.wrap_socket(raw) as conn:
                conn.recv(1)
                samples.append((time.perf_counter() - t0) * 1e3)
                i = tls.connection_info(conn)
                info = {"version": i.version, "cipher": i.cipher, "group": i.group}
                conn.sendall(b"\x00")
    finally:
        stop.set()
        thread.join(5)
        srv.close()
    return round(statistics.median(samples), 2), info


def bench(n_sign: int = 200, n_handshake: int = 20) -> dict[str, Any]:
    """Measure sign/verify (µs) and loopback handshake (ms) times; see the module docstring."""
    sign, verify = _sign_verify(n_sign)
    hs_ms: dict[str, float] = {}
    hs_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="iso15118-bench-") as tmp:
        for alg in (Algorithm.SECP521R1, Algorithm.ED448):
            paths = create_pki(Path(tmp) / alg.value, alg)
            hs_ms[alg.value], hs_info[alg.value] = _handshakes(paths, n_handshake)
    return {
        "sign_us": sign,
        "verify_us": verify,
        "handshake_ms": hs_ms,
        "handshake": hs_info,
        "n": {"sign": n_sign, "handshake": n_handshake},
        "openssl": ssl.OPENSSL_VERSION,
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(bench(), indent=2))
