"""The ISO 15118-2 TLS profile (``tls.ISO2``) and the -2 lab PKI (``pki create --profile iso2``).

-2: TLS 1.2 only, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 on secp256r1, ECDSA-SHA-256 everywhere,
the SECC authenticated by its CPO chain under the V2G root, the EVCC presents no certificate.
Real handshakes on loopback between our contexts, and against the independent peer (Josev's
``tls12`` mode, its own P-256 PKI) in both directions.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from iso15118.security import tls
from iso15118.security.pki import NOT_IN_ISO2, PKI, PkiProfile, create_pki, load_pki
from iso15118.security.validation import ChainErrorReason as R
from iso15118.security.validation import Purpose
from iso15118.session.tlsconf import evcc_context, is_iso2_pki, secc_context
from tests.peer import josev
from tests.proofs import PEER_TLS, record

from .conftest import needs_ipv6
from .test_josev_tls import free_port
from .tls_harness import Server, Side, connect, describe, write_identity


def handshake2(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[Side, Side]:
    """A loopback handshake under the -2 profile: the server expects no client certificate."""
    server = Server(server_ctx, check=False)
    client = connect(client_ctx, "127.0.0.1", server.port, profile=tls.ISO2)
    return server.join(), client


@pytest.fixture(scope="module")
def pki2(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return load_pki(create_pki(tmp_path_factory.mktemp("pki2"), profile=PkiProfile.ISO2, password=b"pw").root)


def test_the_iso2_pki_is_p256_sha256_without_vehicle_chain(pki2: PKI) -> None:
    assert pki2.paths.profile is PkiProfile.ISO2 and pki2.algorithm.value == "secp256r1"
    assert is_iso2_pki(pki2.paths.root)
    manifest = json.loads(pki2.paths.manifest.read_text())
    assert manifest["profile"] == "iso2" and "vehicleCertChain" not in manifest["chains"]
    assert not (set(pki2.certs) & NOT_IN_ISO2)
    for name, cert in pki2.certs.items():
        assert cert.public_key().curve.name == "secp256r1", name  # type: ignore[union-attr]
        assert cert.signature_algorithm_oid._name == "ecdsa-with-SHA256", name


def test_iso2_handshake_is_tls12_ecdhe_ecdsa_aes128_sha256_without_client_certificate(pki2: PKI) -> None:
    server, client = handshake2(secc_context(pki2.paths.root), evcc_context(pki2.paths.root))
    assert server.error is None and client.error is None, (describe(server), describe(client))
    assert client.info and client.info.version == "TLSv1.2" and client.info.cipher == "ECDHE-ECDSA-AES128-SHA256"
    assert client.info.peer_key_algorithm == "secp256r1" and "CN=DE*PNX*E12345*1" in (client.info.peer_subject or "")
    assert server.info and server.info.peer_fingerprint_sha512 is None  # the -2 EVCC presents no certificate
    assert tls.profile_of(secc_context(pki2.paths.root)) == "iso15118-2"


def test_a_tls13_only_client_is_refused(pki2: PKI) -> None:
    client_ctx = evcc_context(pki2.paths.root)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server, client = handshake2(secc_context(pki2.paths.root), client_ctx)
    assert server.error is not None and client.error is not None
    assert client.failure and client.failure[0] in (tls.TlsFailure.PROTOCOL_VERSION, tls.TlsFailure.PEER_ALERT), describe(client)


def test_a_client_without_the_iso2_suite_is_refused(pki2: PKI) -> None:
    client_ctx = evcc_context(pki2.paths.root)
    client_ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    server, client = handshake2(secc_context(pki2.paths.root), client_ctx)
    assert server.error is not None and client.error is not None, describe(client)


def test_the_iso2_evcc_refuses_a_p521_charger(pki2: PKI, pki_p521: PKI) -> None:
    """A -20 (P-521 / SHA-512) charger chain is not a -2 chain, even under a trusted root."""
    p = pki_p521.paths
    srv = tls.server_context(p.chain("cpoCertChain"), p.key("seccLeaf"), p.password_file("seccLeaf"),
                             profile=tls.JOSEV_COMPAT, require_client_cert=False)
    cli = tls.client_context([p.cert("v2gRootCA")], profile=tls.ISO2)
    server = Server(srv, check=False)
    client = connect(cli, "127.0.0.1", server.port, profile=tls.ISO2)
    srv_side = server.join()
    # the -2 client offers only ecdsa_secp256r1_sha256: a P-521 key cannot sign the handshake
    assert client.failure is not None and srv_side.error is not None, describe(client)
    assert re.search("NO_SHARED_CIPHER|NO_SUITABLE_SIGNATURE_ALGORITHM", str(srv_side.error).upper()), describe(srv_side)


def test_the_iso2_evcc_refuses_a_p521_sub_ca_in_the_handshake(tmp_path: Path) -> None:
    """A P-256 charger leaf whose chain holds a P-521 Sub-CA: the handshake's own signature is
    fine, the -2 chain rules (run inside the handshake) refuse the Sub-CA."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from iso15118.security.pki import IssuedCert, Profile, issue_certificate

    def issued(key: ec.EllipticCurvePrivateKey, issuer: IssuedCert | None, profile: Profile, cn: str, dc: str) -> IssuedCert:
        return IssuedCert(issue_certificate(cn=cn, dc=dc, profile=profile, key=key, issuer=issuer), key)

    root = issued(ec.generate_private_key(ec.SECP256R1()), None, Profile.ROOT, "V2GRootCA", "V2G")
    sub1 = issued(ec.generate_private_key(ec.SECP521R1()), root, Profile.SUB_CA1, "CPOSubCA1", "V2G")
    sub2 = issued(ec.generate_private_key(ec.SECP256R1()), sub1, Profile.SUB_CA2, "CPOSubCA2", "V2G")
    leaf = issued(ec.generate_private_key(ec.SECP256R1()), sub2, Profile.SECC, "DE*PNX*E1*1", "CPO")
    chain, key = write_identity(tmp_path, "secc", [leaf.cert, sub2.cert, sub1.cert], leaf.key)
    srv = tls.server_context(chain, key, profile=tls.JOSEV_COMPAT, require_client_cert=False)
    cli = tls.client_context([root.cert], profile=tls.ISO2)
    server = Server(srv, check=False)
    client = connect(cli, "127.0.0.1", server.port, profile=tls.ISO2)
    server.join()
    refusal = tls.take_refusal()  # what our verify callback said inside the handshake (this thread)
    assert client.failure and client.failure[0] is tls.TlsFailure.CERTIFICATE, describe(client)
    assert refusal is not None and refusal.reason is R.WRONG_ALGORITHM and "CPOSubCA" in str(refusal), refusal
    # the same chain with the P-256 Sub-CA it should have is accepted
    sub1 = issued(ec.generate_private_key(ec.SECP256R1()), root, Profile.SUB_CA1, "CPOSubCA1", "V2G")
    sub2 = issued(ec.generate_private_key(ec.SECP256R1()), sub1, Profile.SUB_CA2, "CPOSubCA2", "V2G")
    leaf = issued(ec.generate_private_key(ec.SECP256R1()), sub2, Profile.SECC, "DE*PNX*E1*1", "CPO")
    chain, key = write_identity(tmp_path, "secc", [leaf.cert, sub2.cert, sub1.cert], leaf.key)
    server = Server(tls.server_context(chain, key, profile=tls.ISO2), check=False)
    client = connect(cli, "127.0.0.1", server.port, profile=tls.ISO2)
    server.join()
    assert client.error is None, describe(client)


def test_the_iso2_evcc_refuses_a_charger_of_another_role(pki2: PKI, tmp_path: Path) -> None:
    """The OEM provisioning chain (DC=OEM) presented as a charger: wrong role for a -2 SECC."""
    p = pki2.paths
    srv = tls.server_context(p.chain("oemCertChain"), p.key("oemLeaf"), p.password_file("oemLeaf"), profile=tls.ISO2)
    cli = tls.client_context([p.cert("oemRootCA")], profile=tls.ISO2)
    server = Server(srv, check=False)
    client = connect(cli, "127.0.0.1", server.port, profile=tls.ISO2)
    server.join()
    assert client.failure == (tls.TlsFailure.CERTIFICATE, R.WRONG_KEY_USAGE) or (
        client.failure is not None and client.failure[1] in (R.WRONG_KEY_USAGE, R.WRONG_DOMAIN)
    ), describe(client)


def test_pki_create_profile_iso2_cli(tmp_path: Path) -> None:
    import sys

    out = subprocess.run([sys.executable, "-m", "iso15118", "pki", "create", str(tmp_path / "p"), "--profile", "iso2"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "secp256r1 (iso2)" in out.stdout and "vehicleCertChain" not in out.stdout
    assert load_pki(tmp_path / "p").paths.profile is PkiProfile.ISO2


# --------------------------------------------------------------------------- the independent peer


@pytest.fixture(scope="module")
def josev_tls12(peer_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int, subprocess.Popen[str], socket.socket]]:
    port = free_port()
    listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    listener.settimeout(60)
    secc = subprocess.Popen(
        josev("secc", "--port", str(port), "--tls", "tls12", "--once", "--services", "DC", "--protocols", "ISO_15118_2"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=peer_env,
    )
    evcc = subprocess.Popen(
        josev("evcc", "--port", str(listener.getsockname()[1]), "--tls", "tls12", "--protocol", "iso2", "--service", "DC",
              "--no-linger", "--timeout", "60"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=peer_env,
    )
    try:
        yield secc, port, evcc, listener
    finally:
        for proc in (secc, evcc):
            proc.terminate()
        for proc in (secc, evcc):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        listener.close()


@pytest.mark.peer
@needs_ipv6
def test_our_iso2_evcc_with_josev_tls12_secc(josev_tls12: tuple, josev_pki: Path) -> None:  # type: ignore[type-arg]
    secc, port, _evcc, _listener = josev_tls12
    line = secc.stdout.readline() if secc.stdout else ""
    assert line.startswith("READY"), line
    ctx = tls.client_context([josev_pki / "certs" / "v2gRootCACert.pem"], profile=tls.ISO2)
    with socket.create_connection(("::1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw) as conn:
            info = tls.check_peer(conn, profile=tls.ISO2, purpose=Purpose.SECC_TLS_SERVER)
    assert info.version == "TLSv1.2" and info.cipher == "ECDHE-ECDSA-AES128-SHA256", info
    assert info.peer_key_algorithm == "secp256r1" and "CN=SECCCert" in (info.peer_subject or "")
    record(PEER_TLS)


@pytest.mark.peer
@needs_ipv6
def test_josev_tls12_evcc_with_our_iso2_secc(josev_tls12: tuple, pki2: PKI) -> None:  # type: ignore[type-arg]
    """Josev's EVCC trusts its own V2G root, so our SECC presents a chain under it: the charger's
    identity from Josev's PKI, served with the -2 profile's rules."""
    from tests.peer import peer_pki

    _secc, _port, _evcc, listener = josev_tls12
    certs, keys = peer_pki() / "certs", peer_pki() / "private_keys"
    sctx = tls.server_context(certs / "cpoCertChain.pem", keys / "seccLeaf.key", keys / "seccLeafPassword.txt",
                              profile=tls.ISO2)
    raw, _ = listener.accept()
    raw.settimeout(15)
    with sctx.wrap_socket(raw, server_side=True) as conn:
        info = tls.check_peer(conn, profile=tls.ISO2, require_certificate=False)
        header = b""
        while len(header) < 8:
            chunk = conn.recv(8 - len(header))
            if not chunk:
                break
            header += chunk
    assert info.version == "TLSv1.2" and info.cipher == "ECDHE-ECDSA-AES128-SHA256", info
    assert info.peer_subject is None  # Josev's tls12 EVCC presents no certificate, as -2 says
    assert header[:4] == bytes([0x01, 0xFE, 0x80, 0x01]), header.hex()  # V2GTP, SupportedAppProtocolReq
    record(PEER_TLS)
