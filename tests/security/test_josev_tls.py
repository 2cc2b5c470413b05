"""TLS interop with the independent Josev peer (its own venv, its P-256 test PKI).

Only the TLS layer is exercised: the handshake completes, certificates are
checked by both sides, and (Josev EVCC -> our SECC) the first V2GTP header
arrives through the tunnel.  Whole sessions are the session tests' job.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iso15118.security import tls
from iso15118.security.pki import PKI
from iso15118.security.validation import CertificateChainError, Purpose

from .conftest import needs_ipv6

PEER = Path(os.environ.get("ISO15118_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "peer"
PEER_HOME = Path(os.environ.get("ISO15118_PEER_HOME", Path.home() / ".cache" / "iso15118-peer"))

pytestmark = [
    pytest.mark.peer,
    needs_ipv6,
    pytest.mark.skipif(
        not (PEER / "josev-secc").exists() or not (PEER_HOME / "venv" / "bin" / "python").exists(),
        reason=f"Josev peer not set up ({PEER}/setup)",
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


@dataclass
class JosevPeers:
    secc: subprocess.Popen[str]
    secc_port: int
    secc_keylog: Path
    evcc: subprocess.Popen[str]
    evcc_listener: socket.socket


@pytest.fixture(scope="module")
def peers(josev_pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JosevPeers]:
    """Start Josev's SECC and EVCC together: their start-up (Python + JVM) dominates."""
    keylog = tmp_path_factory.mktemp("josev") / "josev.keys"
    port = free_port()
    listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    listener.settimeout(60)
    secc = subprocess.Popen(
        [str(PEER / "josev-secc"), "--port", str(port), "--tls", "tls13", "--once", "--keylog", str(keylog)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    evcc = subprocess.Popen(
        [str(PEER / "josev-evcc"), "--port", str(listener.getsockname()[1]), "--tls", "tls13", "--no-linger",
         "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        yield JosevPeers(secc, port, keylog, evcc, listener)
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


def ssl_errors() -> tuple[type[BaseException], ...]:
    return (ssl.SSLError, CertificateChainError, ConnectionError)


def test_our_evcc_with_josev_secc(peers: JosevPeers, josev_pki: Path, pki_p521: PKI) -> None:
    certs = josev_pki / "certs"
    line = peers.secc.stdout.readline() if peers.secc.stdout else ""
    assert line.startswith("READY"), line
    # The -20 profile refuses Josev's P-256 SECC certificate ...
    strict = tls.client_context(
        [certs / "v2gRootCACert.pem"], pki_p521.paths.chain("vehicleCertChain"),
        pki_p521.paths.key("vehicleLeaf"), pki_p521.paths.password_file("vehicleLeaf"),
    )
    with socket.create_connection(("::1", peers.secc_port), timeout=10) as raw:
        with pytest.raises(ssl_errors()):
            with strict.wrap_socket(raw) as conn:
                tls.check_peer(conn, purpose=Purpose.SECC_TLS_SERVER)
                conn.recv(1)
    # ... the compatibility profile talks to it, presenting the OEM provisioning chain.
    ctx = tls.josev_evcc_context(josev_pki)
    print(f"TLS profiles: refused with {tls.profile_of(strict)}, talked with {tls.profile_of(ctx)}")
    assert tls.profile_of(strict) == "iso15118-20" and tls.profile_of(ctx) == "josev-compat"
    with socket.create_connection(("::1", peers.secc_port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as conn:
            info = tls.check_peer(conn, profile=tls.JOSEV_COMPAT, purpose=Purpose.SECC_TLS_SERVER)
    assert info.version == "TLSv1.3" and info.cipher == "TLS_AES_256_GCM_SHA384"
    assert info.peer_key_algorithm == "secp256r1" and info.peer_subject and "CN=SECCCert" in info.peer_subject
    # Josev's SECC logs the client traffic secret once it has processed our Finished, which may
    # be after our side is done: wait for it (bounded), under load that takes a moment.
    deadline = time.monotonic() + 15
    while "CLIENT_TRAFFIC_SECRET_0" not in peers.secc_keylog.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "CLIENT_TRAFFIC_SECRET_0" in peers.secc_keylog.read_text()


def test_josev_evcc_with_our_secc(peers: JosevPeers, josev_pki: Path) -> None:
    sctx = tls.josev_secc_context(josev_pki)
    print(f"TLS profile of our SECC: {tls.profile_of(sctx)}")
    assert tls.profile_of(sctx) == "josev-compat"
    raw, _ = peers.evcc_listener.accept()
    raw.settimeout(15)
    with sctx.wrap_socket(raw, server_side=True) as conn:
        info = tls.check_peer(conn, profile=tls.JOSEV_COMPAT, purpose=Purpose.EV_TLS_CLIENT)
        header = b""
        while len(header) < 8:
            chunk = conn.recv(8 - len(header))
            if not chunk:
                break
            header += chunk
    assert info.version == "TLSv1.3"
    assert info.peer_subject and "CN=OEMProvCert" in info.peer_subject  # Josev presents the OEM chain
    assert header[:4] == bytes([0x01, 0xFE, 0x80, 0x01]), header.hex()  # V2GTP, SupportedAppProtocolReq
