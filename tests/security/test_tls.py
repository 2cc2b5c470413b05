"""Real TLS handshakes on loopback with the -20 contexts (no mocks)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from iso15118.security import _openssl, tls
from iso15118.security.pki import PKI, IssuedCert, Profile, issue_certificate
from iso15118.security.validation import CertificateChainError, Purpose
from iso15118.security.validation import ChainErrorReason as R

from .conftest import needs_ipv6
from .tls_harness import Server, connect, describe, handshake, write_identity

NOW = dt.datetime.now(dt.UTC)


def secc_ctx(p: PKI, trust: list[PKI] | None = None, **kw: object) -> ssl.SSLContext:
    anchors = [x.paths.cert("v2gRootCA") for x in (trust or [p])]
    return tls.server_context(
        p.paths.chain("cpoCertChain"), p.paths.key("seccLeaf"), p.paths.password_file("seccLeaf"), anchors, **kw  # type: ignore[arg-type]
    )


def evcc_ctx(p: PKI, trust: PKI | None = None, with_cert: bool = True, **kw: object) -> ssl.SSLContext:
    if not with_cert:
        return tls.client_context([(trust or p).paths.cert("v2gRootCA")], **kw)  # type: ignore[arg-type]
    return tls.client_context(
        [(trust or p).paths.cert("v2gRootCA")],
        p.paths.chain("vehicleCertChain"),
        p.paths.key("vehicleLeaf"),
        p.paths.password_file("vehicleLeaf"),
        **kw,  # type: ignore[arg-type]
    )


def der_sha512(p: PKI, name: str) -> str:
    return hashlib.sha512(p.cert(name).public_bytes(Encoding.DER)).hexdigest()


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_mutual_auth_handshake(pki: PKI, host: str) -> None:
    server, client = handshake(secc_ctx(pki), evcc_ctx(pki), host)
    assert server.error is None and client.error is None, (describe(server), describe(client))
    for side in (server, client):
        assert side.info is not None
        assert side.info.version == "TLSv1.3"
        assert side.info.cipher == "TLS_AES_256_GCM_SHA384"
        assert side.info.peer_key_algorithm == pki.algorithm.value
        if _openssl.available():
            assert side.info.group == "x448"
    assert server.info and server.info.peer_fingerprint_sha512 == der_sha512(pki, "vehicleLeaf")
    assert client.info and client.info.peer_fingerprint_sha512 == der_sha512(pki, "seccLeaf")
    assert client.data == b"ok"


def test_context_settings(pki_p521: PKI) -> None:
    ctx = secc_ctx(pki_p521)
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    cctx = evcc_ctx(pki_p521)
    assert cctx.check_hostname is False and cctx.verify_mode == ssl.CERT_REQUIRED
    if not _openssl.available():
        pytest.skip("OpenSSL knobs unavailable: suites enforced after the handshake only")
    tls13 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]
    assert tls13 == ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]


def test_openssl_knobs_available() -> None:
    """The ctypes route to SSL_CTX works in this interpreter (otherwise the fallbacks apply)."""
    if not _openssl.available():
        pytest.skip("ctypes access to libssl unavailable; -20 rules are checked after the handshake")
    assert _openssl.available()


@pytest.mark.skipif(not _openssl.available(), reason="needs the OpenSSL knobs to shape the client offer")
def test_cipher_suite_rules(pki_p521: PKI) -> None:
    # A client preferring ChaCha still gets AES-256-GCM: server order wins.
    cctx = evcc_ctx(pki_p521)
    _openssl.set_tls13_ciphersuites(cctx, ("TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"))
    server, client = handshake(secc_ctx(pki_p521), cctx)
    assert client.info and client.info.cipher == "TLS_AES_256_GCM_SHA384", describe(client)
    # ChaCha only: accepted (second -20 suite).
    cctx = evcc_ctx(pki_p521)
    _openssl.set_tls13_ciphersuites(cctx, ("TLS_CHACHA20_POLY1305_SHA256",))
    server, client = handshake(secc_ctx(pki_p521), cctx)
    assert client.info and client.info.cipher == "TLS_CHACHA20_POLY1305_SHA256", describe(client)
    # AES-128-GCM only: not a -20 suite, refused.
    cctx = evcc_ctx(pki_p521)
    _openssl.set_tls13_ciphersuites(cctx, ("TLS_AES_128_GCM_SHA256",))
    server, client = handshake(secc_ctx(pki_p521), cctx)
    assert server.error is not None and client.error is not None
    assert server.failure and server.failure[0] is tls.TlsFailure.NO_SHARED_ALGORITHM, describe(server)


def test_host_name_not_checked_and_sni_ignored(pki_p521: PKI) -> None:
    seen: list[str | None] = []
    sctx = secc_ctx(pki_p521)
    sctx.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,misc]
    server, client = handshake(sctx, evcc_ctx(pki_p521))
    assert client.error is None and seen == [None]  # connecting to an IP: no SNI
    seen.clear()
    server, client = handshake(sctx, evcc_ctx(pki_p521), server_hostname="not-the-secc.example")
    assert client.error is None, describe(client)  # CN is the SECC ID; no host name check
    assert seen == ["not-the-secc.example"]


def test_asyncio_streams(pki_ed448: PKI) -> None:
    p = pki_ed448

    async def main() -> tuple[tls.TlsInfo, tls.TlsInfo, bytes]:
        infos: list[tls.TlsInfo] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            infos.append(tls.check_peer(writer.get_extra_info("ssl_object"), purpose=Purpose.EV_TLS_CLIENT))
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        host = "::1" if socket.has_ipv6 else "127.0.0.1"
        try:
            srv = await asyncio.start_server(handle, host, 0, ssl=secc_ctx(p))
        except OSError:
            host = "127.0.0.1"
            srv = await asyncio.start_server(handle, host, 0, ssl=secc_ctx(p))
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            reader, writer = await asyncio.open_connection(host, port, ssl=evcc_ctx(p))
            cinfo = tls.check_peer(writer.get_extra_info("ssl_object"), purpose=Purpose.SECC_TLS_SERVER)
            writer.write(b"ping")
            echo = await reader.readexactly(4)
            writer.close()
            await writer.wait_closed()
        return infos[0], cinfo, echo

    sinfo, cinfo, echo = asyncio.run(asyncio.wait_for(main(), 20))
    assert echo == b"ping"
    assert sinfo.version == cinfo.version == "TLSv1.3"
    assert sinfo.peer_fingerprint_sha512 == der_sha512(p, "vehicleLeaf")
    assert cinfo.peer_fingerprint_sha512 == der_sha512(p, "seccLeaf")
    if _openssl.available():
        assert sinfo.group == cinfo.group == "x448"


def test_keylog_file(pki_ed448: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    skeys, ckeys = tmp_path / "server.keys", tmp_path / "client.keys"
    server, client = handshake(secc_ctx(pki_ed448, keylog_file=skeys), evcc_ctx(pki_ed448, keylog_file=ckeys))
    assert server.error is None and client.error is None
    labels = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    }
    per_file = []
    for path in (skeys, ckeys):
        lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        found = {}
        for ln in lines:
            m = re.fullmatch(r"([A-Z_0-9]+) ([0-9a-f]{64}) ([0-9a-f]{96})", ln)  # SHA-384 secrets
            assert m, ln
            found[m.group(1)] = (m.group(2), m.group(3))
        assert labels <= set(found), found.keys()
        per_file.append(found)
    assert per_file[0] == per_file[1]  # both ends logged the same secrets
    secrets = [s for _, s in per_file[0].values()]
    assert not any(s in caplog.text for s in secrets)


# --------------------------------------------------------------------------- rejections


def test_wrong_ca(pki_p521: PKI, pki_other: PKI) -> None:
    # EVCC trusts another V2G root: it rejects the SECC chain.
    server, client = handshake(secc_ctx(pki_p521), evcc_ctx(pki_p521, trust=pki_other))
    assert isinstance(client.error, ssl.SSLCertVerificationError), describe(client)
    assert client.failure == (tls.TlsFailure.CERTIFICATE, R.UNKNOWN_ISSUER)
    assert server.error is not None
    # SECC trusts another V2G root: it rejects the vehicle chain.
    server, client = handshake(secc_ctx(pki_p521, trust=[pki_other]), evcc_ctx(pki_p521))
    assert isinstance(server.error, ssl.SSLCertVerificationError), describe(server)
    assert server.failure == (tls.TlsFailure.CERTIFICATE, R.UNKNOWN_ISSUER)
    assert client.error is not None  # alert unknown_ca after the client's Finished


def _secc_with_leaf(p: PKI, tmp: Path, **validity: dt.datetime) -> ssl.SSLContext:
    key = p.algorithm.generate_key()
    leaf = issue_certificate(cn="DE*PNX*E12345*1", dc="CPO", profile=Profile.SECC, key=key, issuer=p.issued("cpoSubCA2"), **validity)
    chain, keyfile = write_identity(tmp, "secc", [leaf, *p.intermediates("cpoCertChain")], key)
    return tls.server_context(chain, keyfile, None, [p.paths.cert("v2gRootCA")])


def test_expired_secc_leaf(pki: PKI, tmp_path: Path) -> None:
    sctx = _secc_with_leaf(pki, tmp_path, not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=30))
    server, client = handshake(sctx, evcc_ctx(pki))
    assert client.failure == (tls.TlsFailure.CERTIFICATE, R.EXPIRED), describe(client)
    assert "expired" in str(client.error)


def test_not_yet_valid_secc_leaf(pki: PKI, tmp_path: Path) -> None:
    sctx = _secc_with_leaf(pki, tmp_path, not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=60))
    server, client = handshake(sctx, evcc_ctx(pki))
    assert client.failure == (tls.TlsFailure.CERTIFICATE, R.NOT_YET_VALID), describe(client)


def test_expired_vehicle_leaf(pki_ed448: PKI, tmp_path: Path) -> None:
    p = pki_ed448
    key = p.algorithm.generate_key()
    leaf = issue_certificate(cn="WMIV1234567890ABCDEX", dc="OEM", profile=Profile.VEHICLE, key=key,
                             issuer=p.issued("vehicleSubCA2"), not_before=NOW - dt.timedelta(days=9),
                             not_after=NOW - dt.timedelta(days=1))
    chain, keyfile = write_identity(tmp_path, "vehicle", [leaf, *p.intermediates("vehicleCertChain")], key)
    cctx = tls.client_context([p.paths.cert("v2gRootCA")], chain, keyfile)
    server, client = handshake(secc_ctx(p), cctx)
    assert server.failure == (tls.TlsFailure.CERTIFICATE, R.EXPIRED), describe(server)
    assert client.error is not None


def test_missing_client_certificate(pki: PKI) -> None:
    server, client = handshake(secc_ctx(pki), evcc_ctx(pki, with_cert=False))
    assert server.failure == (tls.TlsFailure.NO_CLIENT_CERTIFICATE, R.NO_CERTIFICATE), describe(server)
    assert client.failure is not None and client.failure[0] is tls.TlsFailure.NO_CLIENT_CERTIFICATE, describe(client)


def test_tls12_client_refused(pki_p521: PKI) -> None:
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    legacy.check_hostname = False
    legacy.verify_mode = ssl.CERT_NONE
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client = handshake(secc_ctx(pki_p521), legacy)
    assert server.failure == (tls.TlsFailure.PROTOCOL_VERSION, None), describe(server)
    assert client.failure == (tls.TlsFailure.PROTOCOL_VERSION, None), describe(client)


def test_p256_identity_refused_at_setup(pki_p256: PKI) -> None:
    """A -2 style (P-256) certificate cannot even be loaded into a -20 context."""
    with pytest.raises(tls.TlsSetupError, match="WRONG_ALGORITHM.*secp256r1"):
        secc_ctx(pki_p256)
    with pytest.raises(tls.TlsSetupError, match="WRONG_ALGORITHM"):
        evcc_ctx(pki_p256)


def test_p256_secc_refused(pki_p256: PKI, pki_p521: PKI) -> None:
    """A -20 EVCC refuses a SECC that presents a P-256 certificate (even one it trusts)."""
    sctx = secc_ctx(pki_p256, trust=[pki_p521], profile=tls.JOSEV_COMPAT)
    cctx = tls.client_context(
        [pki_p256.paths.cert("v2gRootCA")],
        pki_p521.paths.chain("vehicleCertChain"),
        pki_p521.paths.key("vehicleLeaf"),
        pki_p521.paths.password_file("vehicleLeaf"),
    )
    server, client = handshake(sctx, cctx, server_profile=tls.JOSEV_COMPAT)
    assert server.error is not None and client.error is not None, (describe(server), describe(client))
    print("P-256 SECC certificate:", describe(server), "|", describe(client))
    if _openssl.available():  # refused in the handshake: no ed448/ecdsa_secp521r1_sha512 signature possible
        assert server.failure and server.failure[0] is tls.TlsFailure.NO_SHARED_ALGORITHM, describe(server)
    else:  # refused right after it by check_peer
        assert isinstance(client.error, CertificateChainError) and client.error.reason is R.WRONG_ALGORITHM


def test_p256_vehicle_refused(pki_p521: PKI, pki_p256: PKI) -> None:
    """A P-256 vehicle certificate (chain trusted by the SECC!) is refused by the -20 SECC."""
    cctx = tls.client_context(
        [pki_p521.paths.cert("v2gRootCA")],
        pki_p256.paths.chain("vehicleCertChain"),
        pki_p256.paths.key("vehicleLeaf"),
        pki_p256.paths.password_file("vehicleLeaf"),
        profile=tls.JOSEV_COMPAT,
    )
    server, client = handshake(secc_ctx(pki_p521, trust=[pki_p521, pki_p256]), cctx, client_profile=tls.JOSEV_COMPAT)
    assert server.error is not None and client.error is not None, (describe(server), describe(client))
    print("P-256 vehicle certificate:", describe(server))


def test_p256_sub_ca_refused_after_handshake(pki_p521: PKI, pki_p256: PKI, tmp_path: Path) -> None:
    """secp521r1 leaf below a P-256 Sub-CA: the chain check after the handshake refuses it."""
    p = pki_p521
    sub2_key = pki_p256.algorithm.generate_key()
    sub2 = issue_certificate(cn="CPOSubCA2", dc="V2G", profile=Profile.SUB_CA2, key=sub2_key, issuer=p.issued("cpoSubCA1"))
    key = p.algorithm.generate_key()
    leaf = issue_certificate(cn="DE*PNX*E12345*1", dc="CPO", profile=Profile.SECC, key=key, issuer=IssuedCert(sub2, sub2_key))
    chain, keyfile = write_identity(tmp_path, "mixed", [leaf, sub2, p.cert("cpoSubCA1")], key)
    with pytest.raises(tls.TlsSetupError, match="WRONG_ALGORITHM"):  # our own SECC would not even start
        tls.server_context(chain, keyfile, None, [p.paths.cert("v2gRootCA")])
    sctx = tls.server_context(chain, keyfile, None, [p.paths.cert("v2gRootCA")], profile=tls.JOSEV_COMPAT)
    server, client = handshake(sctx, evcc_ctx(p), server_profile=tls.JOSEV_COMPAT)
    assert client.error is not None, describe(client)
    print("P-256 Sub-CA:", describe(client))
    if isinstance(client.error, CertificateChainError):
        assert client.error.reason is R.WRONG_ALGORITHM
    else:  # OpenSSL may already refuse the ecdsa-with-SHA256 chain signature in the handshake
        assert client.failure is not None


def test_context_errors(pki_p521: PKI) -> None:
    p = pki_p521.paths
    with pytest.raises(tls.TlsSetupError) as info:
        tls.server_context(p.chain("cpoCertChain"), p.key("seccLeaf"), b"wrong-password", [p.cert("v2gRootCA")])
    assert p.password("seccLeaf").decode() not in str(info.value)
    with pytest.raises(tls.TlsSetupError, match="trust anchors"):
        tls.server_context(p.chain("cpoCertChain"), p.key("seccLeaf"), p.password_file("seccLeaf"))
    with pytest.raises(tls.TlsSetupError):
        tls.client_context([])


def test_server_without_client_auth_knob(pki_p521: PKI) -> None:
    sctx = tls.server_context(
        pki_p521.paths.chain("cpoCertChain"), pki_p521.paths.key("seccLeaf"), pki_p521.paths.password("seccLeaf"),
        require_client_cert=False,
    )
    server = Server(sctx, check=False)
    client = connect(evcc_ctx(pki_p521, with_cert=False), "127.0.0.1", server.port)
    srv = server.join()
    assert client.error is None and srv.error is None and srv.info and srv.info.peer_fingerprint_sha512 is None


# --------------------------------------------------------------------------- Josev compatibility


def test_josev_compat_profile(josev_pki: Path, pki_p521: PKI) -> None:
    certs, keys = josev_pki / "certs", josev_pki / "private_keys"
    sctx = tls.server_context(
        certs / "cpoCertChain.pem", keys / "seccLeaf.key", keys / "seccLeafPassword.txt",
        [certs / "oemRootCACert.pem"], profile=tls.JOSEV_COMPAT,
    )
    cctx = tls.client_context(
        [certs / "v2gRootCACert.pem"], certs / "oemCertChain.pem", keys / "oemLeaf.key", keys / "oemLeafPassword.txt",
        profile=tls.JOSEV_COMPAT,
    )
    kw = dict(server_profile=tls.JOSEV_COMPAT, client_profile=tls.JOSEV_COMPAT, server_purpose=Purpose.EV_TLS_CLIENT)
    server, client = handshake(sctx, cctx, **kw)  # type: ignore[arg-type]
    assert server.error is None and client.error is None, (describe(server), describe(client))
    assert client.info and client.info.version == "TLSv1.3" and client.info.peer_key_algorithm == "secp256r1"
    # Josev's tls12 mode: TLS 1.2 with the -2 cipher suite
    cctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client = handshake(sctx, cctx, **kw)  # type: ignore[arg-type]
    assert client.info and client.info.version == "TLSv1.2", describe(client)
    assert client.info.cipher == "ECDHE-ECDSA-AES128-SHA256"
    # The strict -20 server refuses Josev's P-256 EVCC identity.
    p = pki_p521.paths
    strict = tls.server_context(
        p.chain("cpoCertChain"), p.key("seccLeaf"), p.password_file("seccLeaf"), [certs / "oemRootCACert.pem"]
    )
    server, client = handshake(strict, cctx, client_profile=tls.JOSEV_COMPAT)
    assert server.error is not None


def test_pki_convenience_contexts(pki_ed448: PKI) -> None:
    p = pki_ed448.paths
    server, client = handshake(tls.secc_context_from_pki(p), tls.evcc_context_from_pki(p))
    assert server.error is None and client.error is None, (describe(server), describe(client))
    # The OEM provisioning chain (Josev's choice) is accepted only if the SECC trusts the OEM root.
    server, client = handshake(tls.secc_context_from_pki(p), tls.evcc_context_from_pki(p, identity="oem"))
    assert server.failure == (tls.TlsFailure.CERTIFICATE, R.UNKNOWN_ISSUER), describe(server)
    both = tls.secc_context_from_pki(p, client_roots=("v2gRootCA", "oemRootCA"))
    server, client = handshake(both, tls.evcc_context_from_pki(p, identity="oem"))
    assert server.error is None and server.info and "CN=OEMProvCert" in (server.info.peer_subject or "")


def _link_local() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(socket.getaddrinfo("fe80::1%lo", 0, socket.AF_INET6, socket.SOCK_STREAM)[0][4])
        return "fe80::1%lo"
    except (OSError, IndexError):
        return None


@pytest.mark.skipif(_link_local() is None, reason="fe80::1 not configured on lo (tools/peer/setup adds it as root)")
def test_link_local_handshake(pki_p521: PKI) -> None:
    """The SECC serves on its link-local address in practice; the scope id does not matter to TLS."""
    server, client = handshake(secc_ctx(pki_p521), evcc_ctx(pki_p521), "fe80::1%lo")
    assert server.error is None and client.error is None, (describe(server), describe(client))
    assert client.info and client.info.version == "TLSv1.3"
