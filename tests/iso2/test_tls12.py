"""ISO 15118-2 over TLS 1.2 (the -2 profile: ``iso15118.security.tls.ISO2``).

* ``iso15118 pki create --profile iso2`` writes a P-256 / ECDSA-SHA-256 PKI; our EVCC and SECC
  run a -2 DC session over TLS 1.2 with it (ECDHE-ECDSA-AES128-SHA256, secp256r1), and the
  profile refuses what -2 does not allow (a TLS 1.3-only peer, a secp521r1 chain).
* With Josev over TLS 1.2 (its P-256 test PKI): ``tests/iso2/test_josev.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.security.pki import create_pki
from iso15118.security.tls import TlsSetupError
from iso15118.session.iso2 import Iso2EvccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse

ISO2_ONLY = (AppProtocol.ISO2,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def iso2_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki") / "iso2"
    proc = subprocess.run([sys.executable, "-m", "iso15118", "pki", "create", str(d), "--profile", "iso2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return d


def test_pki_create_profile_iso2_is_p256_sha256(iso2_pki: Path) -> None:
    for name in ("v2gRootCA", "cpoSubCA1", "cpoSubCA2", "seccLeaf", "moRootCA", "contractLeaf", "oemLeaf"):
        cert = x509.load_pem_x509_certificate((iso2_pki / "certs" / f"{name}Cert.pem").read_bytes())
        assert cert.public_key().curve.name == "secp256r1", name  # type: ignore[union-attr]
        assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256, name
    bad = subprocess.run([sys.executable, "-m", "iso15118", "pki", "create", str(iso2_pki.parent / "x"), "--profile",
                          "iso2", "--algorithm", "ed448"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "secp256r1" in bad.stderr


def test_our_evcc_and_secc_over_tls12(iso2_pki: Path) -> None:
    async def scenario() -> None:
        srv = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, secc_context(iso2_pki, iso2=True), linger=0.2,
                               protocols=ISO2_ONLY)
        try:
            r = await run_evcc(make_ev("cybertruck-awd"), "::1", srv.port, evcc_context(iso2_pki, iso2=True),
                               protocols=ISO2_ONLY, configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=3)})
            s = (await srv.wait_sessions(1, 20))[0]
        finally:
            srv.close()
        assert r.ok and s.ok, (r.reason, s.reason)
        assert r.tls_version == s.tls_version == "TLSv1.2"
        assert r.protocol is s.protocol is AppProtocol.ISO2

    asyncio.run(scenario())


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str | None, tuple[str, str, int] | None]:
    """One handshake over a socket pair; (version, cipher) of the client, or raises."""
    a, b = socket.socketpair()
    out: dict[str, object] = {}

    def serve() -> None:
        try:
            s = server.wrap_socket(a, server_side=True)
            s.recv(1)
        except (ssl.SSLError, OSError) as exc:
            out["server"] = exc

    import threading

    t = threading.Thread(target=serve)
    t.start()
    try:
        c = client.wrap_socket(b)
        result = (c.version(), c.cipher())
        c.close()
    finally:
        b.close()
        t.join(5)
        a.close()
    return result


def test_the_iso2_profile_is_tls12_ecdhe_ecdsa_aes128_sha256_only(iso2_pki: Path, tmp_path: Path) -> None:
    version, cipher = _handshake(secc_context(iso2_pki, iso2=True), evcc_context(iso2_pki, iso2=True))
    assert version == "TLSv1.2" and cipher is not None and cipher[0] == "ECDHE-ECDSA-AES128-SHA256"
    # a TLS 1.3-only client (the -20 profile) gets no -2 handshake
    tls13 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    tls13.check_hostname = False
    tls13.verify_mode = ssl.CERT_NONE
    with pytest.raises(ssl.SSLError):
        _handshake(secc_context(iso2_pki, iso2=True), tls13)
    # a -20 (secp521r1) certificate chain is not a -2 chain
    p521 = tmp_path / "p521"
    create_pki(p521, "secp521r1")
    with pytest.raises(TlsSetupError, match="not allowed by the iso15118-2 profile"):
        secc_context(p521, iso2=True)
    with pytest.raises(ssl.SSLError):  # our EV refuses a P-521 charger chain
        _handshake(secc_context(p521), evcc_context(iso2_pki, iso2=True))
