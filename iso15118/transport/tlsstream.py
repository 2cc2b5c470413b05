"""TLS over an asyncio stream pair, driven by us (``ssl.SSLObject`` + memory BIOs).

Why not ``asyncio.start_server(ssl=...)``: when a handshake fails, asyncio's SSL protocol
closes the transport without writing what OpenSSL queued, so the peer never sees the alert
(``bad_certificate``, ``unknown_ca``, ``certificate_expired`` ...) and the log has no reason.
It also gives every connection a 256 KiB receive buffer before the first byte arrives.  Here:

* :func:`handshake` runs the handshake over a plain ``StreamReader`` / ``StreamWriter``
  and, when it fails, **writes the queued alert before closing**; the exception carries
  ``chain_refusal`` (the :class:`~iso15118.security.validation.CertificateChainError` of
  our verify callback, see :func:`iso15118.security.tls.install_chain_rules`) when the
  peer's chain broke a -20 rule;
* :class:`TlsStream` then offers the small reader/writer surface that
  :class:`~iso15118.transport.tcp.V2GTPConnection` uses (``read``, ``write``, ``drain``,
  ``close``, ``wait_closed``, ``get_extra_info("ssl_object" | "peername" | ...)``).

The module knows nothing of the -20 rules: contexts come from ``iso15118.security.tls``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

__all__ = ["TlsStream", "handshake", "describe_ssl_error"]

READ_SIZE = 65536


#: Alerts OpenSSL sends for handshake failures it detects itself (its reason -> RFC 8446 name).
_ALERT_OF_REASON = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "certificate_required",
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "NO_SHARED_CIPHER": "handshake_failure",
    "NO_SUITABLE_KEY_SHARE": "handshake_failure",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "handshake_failure",
}


def describe_ssl_error(exc: BaseException) -> str:
    """Short, stable text for a TLS failure: OpenSSL's reason (``SSLV3_ALERT_BAD_CERTIFICATE``
    when the peer's alert ended it, ``CERTIFICATE_VERIFY_FAILED`` ...), the chain refusal
    reason when our rules refused, and the alert we sent when known."""
    reason = str(getattr(exc, "reason", None) or type(exc).__name__)
    refusal = getattr(exc, "chain_refusal", None)
    if refusal is not None:
        alert = getattr(refusal, "alert", None)
        return f"{reason}: {refusal}" + (f" -> alert {alert}" if alert else "")
    if reason in _ALERT_OF_REASON:
        return f"{reason} -> alert {_ALERT_OF_REASON[reason]}"
    return reason


class TlsStream:
    """An established TLS session over a stream pair (reader and writer in one object)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        obj: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._obj = obj
        self._in = incoming
        self._out = outgoing
        self._closing = False
        self.error: BaseException | None = None
        """The TLS error that ended the session (an alert from the peer ...), if any."""

    # -- writer side --

    def _flush(self) -> None:
        data = self._out.read()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    def write(self, data: bytes) -> None:
        if self._closing:
            raise ConnectionResetError("TLS stream is closing")
        view = memoryview(data)
        while view:
            n = self._obj.write(view)
            view = view[n:]
        self._flush()

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._obj.unwrap()  # queues close_notify; waits for the peer's, which we do not
        except (ssl.SSLError, ValueError):
            pass
        try:
            self._flush()
        except (ConnectionError, RuntimeError):
            pass
        self._writer.close()

    def is_closing(self) -> bool:
        return self._closing or self._writer.is_closing()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._obj
        if name == "peercert":
            return self._obj.getpeercert()
        if name == "cipher":
            return self._obj.cipher()
        return self._writer.get_extra_info(name, default)

    # -- reader side --

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of application data; b"" at the end of the stream (close_notify
        or a TCP close without it).  TLS errors (an alert from the peer) are raised."""
        size = READ_SIZE if n is None or n < 0 else n
        while True:
            try:
                data = self._obj.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                raw = await self._reader.read(READ_SIZE)
                if not raw:
                    self._in.write_eof()
                    try:
                        return self._obj.read(size)
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                        return b""
                self._in.write(raw)
                continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as exc:
                self.error = exc
                self._flush()
                raise
            self._flush()  # post-handshake messages (NewSessionTicket, KeyUpdate answers)
            return data


async def handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None = None,
) -> TlsStream:
    """Run the TLS handshake; on failure write the alert OpenSSL queued, close, and re-raise
    (``exc.chain_refusal`` set when our chain rules refused the peer's certificates).

    No timeout here: the caller bounds it (``asyncio.timeout``)."""
    # A context made by iso15118.security.tls carries a hook that returns (and forgets) the
    # chain refusal its verify callback recorded in this thread (transport does not import security).
    take_refusal = context.__dict__.get("iso15118_take_refusal") or (lambda: None)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=server_hostname)
    take_refusal()
    try:
        while True:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if data:
                    writer.write(data)
                    await writer.drain()
                raw = await reader.read(READ_SIZE)
                if not raw:
                    incoming.write_eof()
                else:
                    incoming.write(raw)
                continue
            break
    except ssl.SSLError as exc:
        refusal = take_refusal()
        if refusal is not None:
            exc.chain_refusal = refusal  # type: ignore[attr-defined]
        alert = outgoing.read()
        if alert and not writer.is_closing():
            writer.write(alert)  # the alert: the peer learns why
            try:
                async with asyncio.timeout(1.0):
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
        writer.close()
        raise
    except BaseException:
        writer.close()
        raise
    data = outgoing.read()
    if data:
        writer.write(data)
    # Fallback of a context whose chain rules could not be installed in the handshake (no
    # native verify callback): they run here, and a refusal is a close without the alert.
    after = context.__dict__.get("iso15118_after_handshake")
    if after is not None:
        try:
            after(obj)
        except BaseException:
            writer.close()
            raise
    return TlsStream(reader, writer, obj, incoming, outgoing)
