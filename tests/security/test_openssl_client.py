"""``openssl s_client`` (an independent TLS stack configuration) against our -20 server context."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from iso15118.security import tls
from iso15118.security.pki import PKI

from .tls_harness import Server, describe

OPENSSL = shutil.which("openssl")
if OPENSSL is None:
    print("openssl s_client tests skipped: no openssl binary on PATH")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed (s_client interop skipped)")


def serve(p: PKI) -> Server:
    sctx = tls.server_context(
        p.paths.chain("cpoCertChain"), p.paths.key("seccLeaf"), p.paths.password_file("seccLeaf"), [p.paths.cert("v2gRootCA")]
    )
    return Server(sctx)


def s_client(p: PKI, port: int, *extra: str, cert: bool = True) -> subprocess.CompletedProcess[str]:
    paths = p.paths
    cmd = [
        str(OPENSSL), "s_client", "-connect", f"127.0.0.1:{port}", "-brief", "-verify_return_error",
        "-CAfile", str(paths.cert("v2gRootCA")),
    ]
    if cert:
        cmd += [
            "-cert", str(paths.cert("vehicleLeaf")),
            "-cert_chain", str(paths.chain("vehicleCertChain")),
            "-key", str(paths.key("vehicleLeaf")),
            "-pass", f"file:{paths.password_file('vehicleLeaf')}",
        ]
    return subprocess.run(cmd + list(extra), input="", capture_output=True, text=True, timeout=20)


def test_s_client_tls13_mutual_auth(pki: PKI) -> None:
    server = serve(pki)
    out = s_client(pki, server.port, "-tls1_3")
    srv = server.join()
    assert srv.error is None, describe(srv) + out.stderr
    assert "Protocol version: TLSv1.3" in out.stderr, out.stderr
    assert "Ciphersuite: TLS_AES_256_GCM_SHA384" in out.stderr
    assert "Verification: OK" in out.stderr
    assert srv.info and srv.info.version == "TLSv1.3"
    assert srv.info.peer_key_algorithm == pki.algorithm.value
    if tls._openssl.available():
        # OpenSSL's server takes the client's key share when it is acceptable (no
        # HelloRetryRequest), so s_client's x25519 share wins over our x448 preference.
        assert srv.info.group in tls.GROUPS_20_PREFERRED + tls.GROUPS_20_FALLBACK


@pytest.mark.skipif(not tls._openssl.available(), reason="group setting needs the OpenSSL knobs")
def test_s_client_strict_groups(pki_ed448: PKI) -> None:
    p = pki_ed448.paths
    sctx = tls.server_context(
        p.chain("cpoCertChain"), p.key("seccLeaf"), p.password_file("seccLeaf"), [p.cert("v2gRootCA")], strict_groups=True
    )
    server = Server(sctx)
    out = s_client(pki_ed448, server.port)  # offers x25519 first: HelloRetryRequest to a -20 curve
    srv = server.join()
    assert srv.error is None, describe(srv) + out.stderr
    assert srv.info and srv.info.group in ("x448", "secp521r1")


@pytest.mark.skipif(not tls._openssl.available(), reason="group preference needs the OpenSSL knobs")
def test_s_client_group_and_suite_choice(pki_p521: PKI) -> None:
    server = serve(pki_p521)
    out = s_client(pki_p521, server.port, "-groups", "secp521r1", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    srv = server.join()
    assert srv.error is None, describe(srv) + out.stderr
    assert srv.info and srv.info.group == "secp521r1" and srv.info.cipher == "TLS_CHACHA20_POLY1305_SHA256"
    server = serve(pki_p521)
    out = s_client(pki_p521, server.port, "-ciphersuites", "TLS_AES_128_GCM_SHA256")
    srv = server.join()
    assert srv.failure and srv.failure[0] is tls.TlsFailure.NO_SHARED_ALGORITHM, describe(srv)


def test_s_client_tls12_refused(pki_p521: PKI) -> None:
    server = serve(pki_p521)
    out = s_client(pki_p521, server.port, "-tls1_2")
    srv = server.join()
    assert out.returncode != 0
    assert "protocol version" in out.stderr.lower() or "alert" in out.stderr.lower(), out.stderr
    assert srv.failure == (tls.TlsFailure.PROTOCOL_VERSION, None), describe(srv)


def test_s_client_without_certificate_refused(pki_ed448: PKI) -> None:
    server = serve(pki_ed448)
    s_client(pki_ed448, server.port, "-tls1_3", cert=False)
    srv = server.join()
    assert srv.failure is not None and srv.failure[0] is tls.TlsFailure.NO_CLIENT_CERTIFICATE, describe(srv)
