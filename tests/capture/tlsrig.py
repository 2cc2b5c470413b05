"""A real TLS exchange over loopback, recorded two ways: by tcpdump / dumpcap (when installed)
and by a recording TCP proxy whose bytes are written to a pcap by
:class:`iso15118.capture.pcapwriter.TcpFlowWriter`.

The client and server are Python ``ssl`` sockets with a self-signed ECDSA certificate made
with ``cryptography``; the client writes an SSLKEYLOGFILE.  Each side sends V2GTP frames.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iso15118.capture.pcapwriter import PcapWriter, TcpFlowWriter
from iso15118.transport.v2gtp import encode_frame

# OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC (not exported by Python's ssl): classic MAC-then-encrypt
# CBC records, as TLS 1.2 stacks without RFC 7366 send them.
_OP_NO_ENCRYPT_THEN_MAC = 1 << 19


def make_cert(directory: Path, curve: ec.EllipticCurve) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secc.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA512() if isinstance(curve, ec.SECP521R1) else hashes.SHA256())
    )
    cp = directory / "cert.pem"
    kp = directory / "key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


@dataclass
class Exchange:
    keylog: Path
    port: int
    client_sent: list[bytes] = field(default_factory=list)
    server_sent: list[bytes] = field(default_factory=list)
    client_received: bytes = b""
    cipher: tuple = ()
    version: str = ""


def _recv_exact(s: ssl.SSLSocket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def run_exchange(
    directory: Path,
    *,
    version: str = "1.3",
    ciphers: str | None = None,
    curve: ec.EllipticCurve | None = None,
    client_frames: list[bytes] | None = None,
    server_frames: list[bytes] | None = None,
    host: str = "127.0.0.1",
    connect_port: int | None = None,
    listen_sock: socket.socket | None = None,
    no_etm: bool = False,
) -> Exchange:
    """Run one TLS session: the client sends each of ``client_frames`` (V2GTP frames) and reads
    one V2GTP frame back each time, which the server takes from ``server_frames``.  By default
    5 + 5 frames of random payload, the last client one bigger than a TLS record (16 KiB)."""
    cert, key = make_cert(directory, curve or ec.SECP256R1())
    keylog = directory / f"keylog-{version}.txt"
    if keylog.exists():
        keylog.unlink()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cctx.keylog_filename = str(keylog)
    for ctx in (sctx, cctx):
        if version == "1.3":
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        else:
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            if ciphers:
                ctx.set_ciphers(ciphers)
            if no_etm:
                ctx.options |= _OP_NO_ENCRYPT_THEN_MAC
    if client_frames is None:
        client_frames = [encode_frame(0x8002, os.urandom(40 + 97 * i)) for i in range(4)]
        client_frames.append(encode_frame(0x8002, os.urandom(20000)))
    if server_frames is None:
        server_frames = [encode_frame(0x8002, os.urandom(30 + 55 * i)) for i in range(len(client_frames))]
    srv = listen_sock or socket.create_server((host, 0))
    port = srv.getsockname()[1]
    ex = Exchange(keylog, port)
    errors: list[BaseException] = []

    def server() -> None:
        try:
            conn, _ = srv.accept()
            with sctx.wrap_socket(conn, server_side=True) as s:
                for frame in server_frames:
                    hdr = _recv_exact(s, 8)
                    _recv_exact(s, int.from_bytes(hdr[4:8], "big"))
                    s.sendall(frame)
                    ex.server_sent.append(frame)
                try:
                    s.unwrap()
                except (ssl.SSLError, OSError):
                    pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    t = threading.Thread(target=server, daemon=True)
    t.start()
    with socket.create_connection((host, connect_port or port), timeout=10) as raw:
        with cctx.wrap_socket(raw, server_hostname="secc.test") as c:
            ex.cipher = c.cipher()
            ex.version = c.version() or ""
            got = b""
            for frame in client_frames:
                c.sendall(frame)
                ex.client_sent.append(frame)
                hdr = _recv_exact(c, 8)
                got += hdr + _recv_exact(c, int.from_bytes(hdr[4:8], "big"))
            ex.client_received = got
            try:
                c.unwrap()
            except (ssl.SSLError, OSError):
                pass
    t.join(10)
    if listen_sock is None:
        srv.close()
    if errors:
        raise errors[0]
    return ex


class RecordingProxy:
    """Relays one TCP connection and records every chunk each side sent, with its time."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.chunks: list[tuple[float, int, bytes]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: int) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self._lock:
                self.chunks.append((time.time(), direction, data))
            try:
                dst.sendall(data)
            except OSError:
                return

    def _run(self) -> None:
        try:
            client, _ = self.sock.accept()
            upstream = socket.create_connection(self.target)
        except OSError:
            return
        a = threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True)
        b = threading.Thread(target=self._pump, args=(upstream, client, 1), daemon=True)
        a.start()
        b.start()
        a.join(15)
        b.join(15)
        client.close()
        upstream.close()

    def join(self) -> None:
        self._thread.join(15)
        self.sock.close()

    def write_pcap(self, path: Path, server_port: int) -> None:
        with PcapWriter(path) as w:
            flow = TcpFlowWriter(w, (bytes(15) + b"\x01", 50123), (bytes(15) + b"\x01", server_port))
            t0 = self.chunks[0][0] if self.chunks else time.time()
            flow.handshake(t0 - 0.001)
            for ts, d, data in self.chunks:
                flow.send(ts, d, data)
            flow.close((self.chunks[-1][0] if self.chunks else t0) + 0.001)


class Sniffer:
    """tcpdump (pcap) or dumpcap (pcapng) on the loopback interface, for one port."""

    def __init__(self, path: Path, port: int, tool: str = "tcpdump", interface: str = "lo") -> None:
        self.path = path
        if tool == "tcpdump":
            cmd = ["tcpdump", "-i", interface, "--immediate-mode", "-U", "-s", "0", "-w", str(path), f"tcp port {port}"]
        else:
            cmd = ["dumpcap", "-q", "-i", interface, "-f", f"tcp port {port}", "-w", str(path)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Wait until it listens: tcpdump says "listening on", dumpcap "Capturing on".
        deadline = time.time() + 10
        self.ready = False
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        buf = b""
        while time.time() < deadline and self.proc.poll() is None:
            try:
                chunk = self.proc.stderr.read() or b""
            except BlockingIOError:
                chunk = b""
            buf += chunk
            if b"listening on" in buf or b"Capturing on" in buf:
                self.ready = True
                # The message can come a moment before the socket sees packets (notably on
                # "any"): give it that moment, or the handshake may be missed on a busy machine.
                time.sleep(0.5)
                break
            time.sleep(0.05)
        self.stderr = buf

    def stop(self) -> None:
        # Let the sniffer catch up (the machine may be busy): wait until the file stops growing.
        last, stable, deadline = -1, 0, time.time() + 8
        while time.time() < deadline and stable < 3:
            time.sleep(0.15)
            size = self.path.stat().st_size if self.path.exists() else 0
            stable = stable + 1 if size == last else 0
            last = size
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tool_available(name: str) -> bool:
    return shutil.which(name) is not None


def record(directory: Path, *, version: str, ciphers: str | None = None, curve: str = "P-256",
           sniff: str | None = None, interface: str = "lo",
           client_frames: list[bytes] | None = None, server_frames: list[bytes] | None = None,
           no_etm: bool = False) -> dict:
    """One exchange, relayed through a :class:`RecordingProxy` (``proxy.pcap``) and, when
    ``sniff`` names a tool, captured by it on ``interface`` (``sniffed.pcap`` / ``.pcapng``)."""
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    proxy = RecordingProxy(("127.0.0.1", port))
    sniffer = None
    if sniff:
        ext = "pcapng" if sniff == "dumpcap" else "pcap"
        sniffer = Sniffer(directory / f"sniffed.{ext}", port, sniff, interface)
    try:
        ex = run_exchange(directory, version=version, ciphers=ciphers, curve=curves[curve],
                          connect_port=proxy.port, listen_sock=srv,
                          client_frames=client_frames, server_frames=server_frames, no_etm=no_etm)
    finally:
        proxy.join()
        if sniffer is not None:
            sniffer.stop()
        srv.close()
    proxy.write_pcap(directory / "proxy.pcap", port)
    return {
        "keylog": str(ex.keylog),
        "port": port,
        "cipher": ex.cipher[0],
        "version": ex.version,
        "client_sent": [f.hex() for f in ex.client_sent],
        "server_sent": [f.hex() for f in ex.server_sent],
        "client_received": ex.client_received.hex(),
        "sniffed": str(sniffer.path) if sniffer is not None and sniffer.ready else None,
        "sniffer_error": None if sniffer is None or sniffer.ready else sniffer.stderr.decode("utf-8", "replace"),
    }


def main() -> None:
    """``python -m tests.capture.tlsrig SPEC.json``: run :func:`record` with the JSON's arguments
    (frames as hex) and write the result next to it as ``result.json``.  A separate process so
    that ``OPENSSL_CONF`` can pick the TLS 1.3 cipher suite (Python's ssl cannot)."""
    import json
    import sys

    spec_path = Path(sys.argv[1])
    spec = json.loads(spec_path.read_text())
    for k in ("client_frames", "server_frames"):
        if spec.get(k) is not None:
            spec[k] = [bytes.fromhex(h) for h in spec[k]]
    result = record(spec_path.parent, **spec)
    (spec_path.parent / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
