"""A tiny loopback harness: one server thread, one client, real sockets and handshakes."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from iso15118.security import tls
from iso15118.security.validation import Purpose

TIMEOUT = 5.0


@dataclass
class Side:
    info: tls.TlsInfo | None = None
    error: BaseException | None = None
    data: bytes = b""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def failure(self) -> tuple[tls.TlsFailure, object] | None:
        return tls.classify_ssl_error(self.error) if self.error else None


class Server:
    """Accepts connections in a thread; each one: handshake, check_peer, send b'ok', wait for close."""

    def __init__(
        self,
        ctx: ssl.SSLContext,
        host: str = "127.0.0.1",
        *,
        profile: tls.TlsProfile = tls.ISO20,
        purpose: Purpose = Purpose.EV_TLS_CLIENT,
        check: bool = True,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # getaddrinfo turns "fe80::1%lo" into (addr, port, flowinfo, scope_id)
        addr = socket.getaddrinfo(host, 0, family, socket.SOCK_STREAM)[0][4]
        self.sock = socket.create_server(addr, family=family)
        self.sock.settimeout(TIMEOUT)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.ctx, self.profile, self.purpose, self.check = ctx, profile, purpose, check
        self.result = Side()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            raw, _ = self.sock.accept()
        except OSError as exc:
            self.result.error = exc
            return
        raw.settimeout(TIMEOUT)
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as conn:
                if self.check:
                    self.result.info = tls.check_peer(conn, profile=self.profile, purpose=self.purpose)
                else:
                    self.result.info = tls.connection_info(conn)
                try:
                    conn.sendall(b"ok")
                    conn.recv(1)
                except (OSError, ssl.SSLError):
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.result.error = exc
            raw.close()

    def join(self) -> Side:
        self.thread.join(TIMEOUT * 2)
        self.sock.close()
        return self.result


def connect(
    ctx: ssl.SSLContext,
    host: str,
    port: int,
    *,
    profile: tls.TlsProfile = tls.ISO20,
    purpose: Purpose = Purpose.SECC_TLS_SERVER,
    server_hostname: str | None = None,
    check: bool = True,
) -> Side:
    side = Side()
    try:
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as conn:
            side.info = tls.check_peer(conn, profile=profile, purpose=purpose) if check else tls.connection_info(conn)
            data = b""
            while len(data) < 2:
                chunk = conn.recv(2 - len(data))
                if not chunk:
                    break
                data += chunk
            side.data = data
            if data != b"ok":
                raise ConnectionError(f"server closed the connection after the handshake (got {data!r})")
    except BaseException as exc:  # noqa: BLE001
        side.error = exc
    return side


def handshake(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    host: str = "127.0.0.1",
    *,
    server_profile: tls.TlsProfile = tls.ISO20,
    client_profile: tls.TlsProfile = tls.ISO20,
    server_purpose: Purpose = Purpose.EV_TLS_CLIENT,
    client_purpose: Purpose = Purpose.SECC_TLS_SERVER,
    server_hostname: str | None = None,
) -> tuple[Side, Side]:
    server = Server(server_ctx, host, profile=server_profile, purpose=server_purpose)
    client = connect(
        client_ctx, host, server.port, profile=client_profile, purpose=client_purpose, server_hostname=server_hostname
    )
    return server.join(), client


def write_identity(
    directory: Path, name: str, certs: list[x509.Certificate], key: PrivateKeyTypes
) -> tuple[Path, Path]:
    """Write a chain PEM (leaf first) and an unencrypted PKCS#8 key; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = directory / f"{name}Chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    keyfile = directory / f"{name}.key"
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    return chain, keyfile


def describe(side: Side) -> str:
    return f"info={side.info} error={side.error!r}"


Check = Callable[[Side], bool]
