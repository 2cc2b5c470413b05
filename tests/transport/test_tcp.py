"""V2GTP over real TCP (and TLS) sockets on loopback."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, open_connection, start_server
from iso15118.transport.v2gtp import (
    Frame,
    InvalidVersionError,
    PayloadTooLargeError,
    PayloadType,
    UnknownPayloadTypeError,
    V2GTPParser,
    encode_frame,
)
from tests.transport.conftest import IPV6_REASON

HOSTS = [
    pytest.param("::1", marks=pytest.mark.skipif(IPV6_REASON is not None, reason=str(IPV6_REASON))),
    "127.0.0.1",
]

Handler = Callable[[V2GTPConnection], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, host: str, **kw) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    server = await start_server(handler, host, 0, **kw)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def echo(conn: V2GTPConnection) -> None:
    while True:
        frame = await conn.recv()
        await conn.send(frame.payload_type, frame.payload)


@pytest.mark.parametrize("host", HOSTS)
async def test_send_recv_echo(host: str) -> None:
    async with serving(echo, host) as port:
        async with await open_connection(f"[{host}]" if ":" in host else host, port) as conn:
            assert conn.peer[1] == port and conn.ssl_object is None
            assert ipaddress.ip_address(conn.peer[0]) == ipaddress.ip_address(host)
            frames = [Frame(PayloadType.SAP, b"sap"), Frame(PayloadType.MAINSTREAM, b""),
                      Frame(PayloadType.DC_MAINSTREAM, bytes(range(256)) * 200)]
            for f in frames:
                await conn.send(f.payload_type, f.payload)
            assert [await conn.recv(timeout=5) for _ in frames] == frames


async def _raw_client(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


@pytest.mark.parametrize("host", HOSTS)
async def test_peer_writing_one_byte_at_a_time(host: str) -> None:
    received: asyncio.Queue[Frame] = asyncio.Queue()

    async def collect(conn: V2GTPConnection) -> None:
        while True:
            received.put_nowait(await conn.recv())

    stream = encode_frame(0x8002, b"hello") + encode_frame(0x8004, b"") + encode_frame(0x8001, b"x" * 50)
    async with serving(collect, host) as port:
        reader, writer = await _raw_client(host, port)
        for i in range(len(stream)):
            writer.write(stream[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.0005)  # separate TCP segments
        got = [await asyncio.wait_for(received.get(), 5) for _ in range(3)]
        writer.close()
    assert got == [Frame(0x8002, b"hello"), Frame(0x8004, b""), Frame(0x8001, b"x" * 50)]


async def test_send_is_one_write_for_a_peer_without_reassembly() -> None:
    """A peer that reads once and expects the whole message in that read."""
    result: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

    async def one_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(65536)
        frames = V2GTPParser().feed(data)
        result.set_result(frames[0])
        writer.close()

    server = await asyncio.start_server(one_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await open_connection("127.0.0.1", port)
        payload = b"\x80\x00" * 700
        await conn.send(0x8002, payload)
        assert await asyncio.wait_for(result, 5) == Frame(0x8002, payload)
        await conn.aclose()
    finally:
        server.close()
        await server.wait_closed()


async def test_recv_timeout_keeps_connection_usable() -> None:
    gate = asyncio.Event()

    async def slow(conn: V2GTPConnection) -> None:
        await conn.send_raw(encode_frame(0x8002, b"late")[:5])  # partial header first
        await gate.wait()
        await conn.send_raw(encode_frame(0x8002, b"late")[5:])
        await conn.recv()

    async with serving(slow, "127.0.0.1") as port:
        conn = await open_connection("127.0.0.1", port)
        with pytest.raises(TimeoutError):
            await conn.recv(timeout=0.1)
        assert conn.parser.buffered == 5
        gate.set()
        assert await conn.recv(timeout=5) == Frame(0x8002, b"late")
        await conn.aclose()


async def test_clean_eof_and_truncated_eof() -> None:
    async def send_then_close(conn: V2GTPConnection) -> None:
        await conn.send(0x8002, b"one")
        await conn.send_raw(encode_frame(0x8003, b"cut here")[:11])

    async with serving(send_then_close, "127.0.0.1") as port:
        conn = await open_connection("127.0.0.1", port)
        assert await conn.recv(timeout=5) == Frame(0x8002, b"one")
        with pytest.raises(ConnectionClosed) as ei:
            await conn.recv(timeout=5)
        assert ei.value.truncated == 11
        assert not conn.parser.at_frame_boundary
        assert "inside a V2GTP frame" in str(ei.value)
        with pytest.raises(ConnectionClosed):  # stays closed
            await conn.recv(timeout=5)
        await conn.aclose()

    async def close_at_once(conn: V2GTPConnection) -> None:
        await conn.send(0x8002, b"bye")

    async with serving(close_at_once, "127.0.0.1") as port:
        conn = await open_connection("127.0.0.1", port)
        assert (await conn.recv(timeout=5)).payload == b"bye"
        with pytest.raises(ConnectionClosed) as ei:
            await conn.recv(timeout=5)
        assert ei.value.truncated == 0 and conn.parser.at_frame_boundary
        await conn.aclose()


async def test_errors_in_stream_order() -> None:
    async def mixed(conn: V2GTPConnection) -> None:
        await conn.send_raw(
            encode_frame(0x8002, b"first")
            + encode_frame(0xA000, b"vendor")      # ignored, not fatal
            + encode_frame(0x8003, b"second")
            + bytes.fromhex("01FD800200000000")    # bad inverse: fatal
        )
        await conn.recv()

    async with serving(mixed, "127.0.0.1") as port:
        conn = await open_connection("127.0.0.1", port)
        assert await conn.recv(timeout=5) == Frame(0x8002, b"first")
        with pytest.raises(UnknownPayloadTypeError) as u:
            await conn.recv(timeout=5)
        assert u.value.close_connection is False
        assert await conn.recv(timeout=5) == Frame(0x8003, b"second")
        with pytest.raises(InvalidVersionError) as v:
            await conn.recv(timeout=5)
        assert v.value.close_connection is True
        await conn.aclose()


async def test_oversize_rejected_by_server() -> None:
    seen: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def limited(conn: V2GTPConnection) -> None:
        try:
            await conn.recv()
        except PayloadTooLargeError as exc:
            seen.set_result(exc)

    async with serving(limited, "127.0.0.1", max_payload=100) as port:
        conn = await open_connection("127.0.0.1", port)
        await conn.send_raw(encode_frame(0x8002, b"")[:4] + (101).to_bytes(4, "big"))  # header only
        exc = await asyncio.wait_for(seen, 5)
        assert isinstance(exc, PayloadTooLargeError) and exc.close_connection
        # the server closes after its handler returns
        with pytest.raises(ConnectionClosed):
            await conn.recv(timeout=5)
        await conn.aclose()


async def test_handler_exception_does_not_stop_server() -> None:
    calls = 0

    async def flaky(conn: V2GTPConnection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("handler bug")
        await echo(conn)

    async with serving(flaky, "127.0.0.1") as port:
        c1 = await open_connection("127.0.0.1", port)
        with pytest.raises(ConnectionClosed):
            await c1.recv(timeout=5)
        await c1.aclose()
        c2 = await open_connection("127.0.0.1", port)
        await c2.send(0x8002, b"ping")
        assert (await c2.recv(timeout=5)).payload == b"ping"
        await c2.aclose()
        with pytest.raises(ConnectionClosed):
            await c2.send(0x8002, b"after close")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secc.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_passthrough(tmp_path: Path) -> None:
    """The layer carries frames over whatever TLS context it is given (policy is elsewhere)."""
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.load_verify_locations(cert)

    async with serving(echo, "127.0.0.1", ssl=server_ctx) as port:
        async with await open_connection("127.0.0.1", port, ssl=client_ctx, timeout=5) as conn:
            assert conn.ssl_object is not None
            assert conn.ssl_object.version() == "TLSv1.3"
            await conn.send(0x8001, b"over tls" * 1000)
            assert await conn.recv(timeout=5) == Frame(0x8001, b"over tls" * 1000)
