"""V2GTP: the V2G Transfer Protocol framing used on every ISO 15118 TCP, TLS and UDP connection.

A V2GTP message is an 8-byte header followed by the payload::

    offset  len  field
    0       1    protocol version            0x01
    1       1    inverse protocol version    0xFE
    2       2    payload type                big-endian (see PayloadType)
    4       4    payload length              big-endian, excludes the header

This module holds the header definition (``HEADER``, a ``construct`` struct), the -20 payload
types, a frame encoder, and ``V2GTPParser``: a sans-IO stream parser that turns any split of a
byte stream into ``Frame`` objects.

Error policy (what a receiver does with a bad header), decided from the implementer's digest
(``docs/iso15118-20.md`` §1.2):

* version != 0x01 or inverse != 0xFE -> ``InvalidVersionError``, ``close_connection=True``
  (both reference implementations reject such a header; the stream cannot be trusted after it).
* payload length above the receiver's limit -> ``PayloadTooLargeError``, ``close_connection=True``
  (the digest notes buffer limits are implementation limits; the payload is never buffered, and an
  absurd length usually means the stream is out of sync).
* payload type not accepted (reserved, manufacturer-specific 0xA000-0xFFFF, or outside
  ``allowed_types``) -> ``UnknownPayloadTypeError``, ``close_connection=False``.  The digest only
  marks those ranges reserved / manufacturer-specific and prescribes no reaction; since the header
  announces the length, framing stays intact, so the receiver may ignore the message and continue.
  The parser then discards that payload (without buffering it) and keeps parsing.  The
  session driver (``iso15118.session.runner.drive``) does exactly that on a live connection:
  it logs one warning, drops the message, and the session goes on with its timers running (a
  peer that sent a request under a wrong type gets no answer and times out by its own rules).
  A *defined* payload type in the wrong place (SDP on TCP, a DC message before SAP ...) is not
  this case: the frame is delivered and the session core decides (it ends the session).
  Tested over loopback in ``tests/transport/test_unknown_payload_live.py``.
* stream ends inside a frame -> ``TruncatedStreamError`` (from ``V2GTPParser.finish``),
  ``close_connection=True``.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Container
from dataclasses import dataclass

import construct as cs

# The payload types and their schema / namespace tables are protocol facts: they live in
# iso15118.facts.payload and are re-exported here for the transport's users.
from iso15118.facts.payload import (
    NAMESPACE_TO_PAYLOAD_TYPE,
    PayloadType,
    payload_type_for_namespace,
    payload_type_for_schema_key,
    schema_key_for,
)

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "INVERSE_VERSION",
    "MAX_PAYLOAD_LENGTH",
    "NAMESPACE_TO_PAYLOAD_TYPE",
    "PROTOCOL_VERSION",
    "Frame",
    "Header",
    "InvalidVersionError",
    "PayloadTooLargeError",
    "PayloadType",
    "TruncatedStreamError",
    "UnknownPayloadTypeError",
    "V2GTPError",
    "V2GTPParser",
    "decode_header",
    "encode_frame",
    "is_manufacturer_specific",
    "payload_type_for_namespace",
    "payload_type_for_schema_key",
    "schema_key_for",
]

PROTOCOL_VERSION = 0x01
INVERSE_VERSION = 0xFE
HEADER_SIZE = 8
MAX_PAYLOAD_LENGTH = 0xFFFFFFFF
DEFAULT_MAX_PAYLOAD = 65536


_KNOWN_TYPES: frozenset[int] = frozenset(int(t) for t in PayloadType)
_as_type = {int(t): t for t in PayloadType}.get  # int -> PayloadType member when known


def is_manufacturer_specific(payload_type: int) -> bool:
    """True for the manufacturer-specific range 0xA000-0xFFFF."""
    return 0xA000 <= payload_type <= 0xFFFF


# --------------------------------------------------------------------------------------------
# Header

HEADER = cs.Struct(
    "version" / cs.Int8ub,
    "inverse_version" / cs.Int8ub,
    "payload_type" / cs.Int16ub,
    "payload_length" / cs.Int32ub,
)
"""The V2GTP header as a ``construct`` struct (the normative definition in this package)."""

# Same layout as HEADER, for the parser's hot path (construct parsing costs ~17 us per header;
# the equivalence is checked by tests/transport/test_v2gtp.py).
_FAST_HEADER = struct.Struct(">BBHI")
assert _FAST_HEADER.size == HEADER.sizeof() == HEADER_SIZE


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded V2GTP header."""

    version: int
    payload_type: int
    payload_length: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete V2GTP message: its payload type and payload (header stripped)."""

    payload_type: int
    payload: bytes

    @property
    def raw_length(self) -> int:
        """Total length on the wire, header included."""
        return HEADER_SIZE + len(self.payload)

    def to_bytes(self) -> bytes:
        """The frame as sent on the wire."""
        return encode_frame(self.payload_type, self.payload)


# --------------------------------------------------------------------------------------------
# Errors


class V2GTPError(Exception):
    """A V2GTP stream or datagram is malformed.

    ``close_connection`` tells the receiver whether the stream is unusable after this error
    (True) or whether the offending message can simply be ignored (False).
    """

    close_connection: bool = True

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        self.offset = offset
        self.frames: list[Frame] = []
        """Frames completed by the same ``V2GTPParser.feed`` call before the error."""
        super().__init__(f"{message} (stream offset {offset})" if offset is not None else message)

    def __reduce__(self) -> tuple[object, ...]:
        # copy / pickle without re-running the subclasses' __init__ signatures
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(cls: type[V2GTPError], args: tuple[object, ...], state: dict[str, object]) -> V2GTPError:
    err = Exception.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class InvalidVersionError(V2GTPError):
    """Protocol version is not 0x01 or its inverse is not 0xFE."""

    close_connection = True

    def __init__(self, version: int, inverse: int, *, offset: int | None = None) -> None:
        self.version = version
        self.inverse = inverse
        super().__init__(
            f"invalid V2GTP header: version 0x{version:02X} / inverse 0x{inverse:02X}, "
            f"expected 0x{PROTOCOL_VERSION:02X} / 0x{INVERSE_VERSION:02X}",
            offset=offset,
        )


class UnknownPayloadTypeError(V2GTPError):
    """The payload type is reserved, manufacturer-specific or not accepted by this receiver.

    Not fatal: the framing is intact, the message may be ignored (``close_connection=False``).
    """

    close_connection = False

    def __init__(self, payload_type: int, payload_length: int, *, offset: int | None = None) -> None:
        self.payload_type = payload_type
        self.payload_length = payload_length
        kind = "manufacturer-specific" if is_manufacturer_specific(payload_type) else "unknown"
        super().__init__(
            f"{kind} V2GTP payload type 0x{payload_type:04X} "
            f"({payload_length} payload bytes, ignored)",
            offset=offset,
        )


class PayloadTooLargeError(V2GTPError):
    """The header announces a payload longer than the receiver accepts."""

    close_connection = True

    def __init__(
        self, payload_type: int, payload_length: int, limit: int, *, offset: int | None = None
    ) -> None:
        self.payload_type = payload_type
        self.payload_length = payload_length
        self.limit = limit
        super().__init__(
            f"V2GTP payload of type 0x{payload_type:04X} announces {payload_length} bytes, "
            f"limit is {limit}",
            offset=offset,
        )


class TruncatedStreamError(V2GTPError):
    """The data ended inside a header or payload."""

    close_connection = True

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message, offset=offset)


# --------------------------------------------------------------------------------------------
# Encoding / decoding single headers


def encode_header(payload_type: int, payload_length: int) -> bytes:
    """The 8 header bytes for a payload of the given type and length."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type!r} is not a 16-bit value")
    if not 0 <= payload_length <= MAX_PAYLOAD_LENGTH:
        raise ValueError(f"payload length {payload_length} does not fit in 32 bits")
    return bytes(HEADER.build(
        dict(
            version=PROTOCOL_VERSION,
            inverse_version=INVERSE_VERSION,
            payload_type=payload_type,
            payload_length=payload_length,
        )
    ))


def encode_frame(payload_type: int, payload: bytes) -> bytes:
    """Header + payload, ready to be written in one piece."""
    return encode_header(payload_type, len(payload)) + bytes(payload)


def decode_header(data: bytes) -> Header:
    """Decode and check the first 8 bytes of ``data`` (version and inverse only; the payload type
    and length are returned as found).  Raises ``TruncatedStreamError`` if fewer than 8 bytes,
    ``InvalidVersionError`` on a bad version byte."""
    if len(data) < HEADER_SIZE:
        raise TruncatedStreamError(
            f"V2GTP header needs {HEADER_SIZE} bytes, got {len(data)}", offset=0
        )
    h = HEADER.parse(bytes(data[:HEADER_SIZE]))
    if h.version != PROTOCOL_VERSION or h.inverse_version != INVERSE_VERSION:
        raise InvalidVersionError(h.version, h.inverse_version, offset=0)
    return Header(h.version, h.payload_type, h.payload_length)


# --------------------------------------------------------------------------------------------
# Stream parser


class V2GTPParser:
    """Sans-IO V2GTP stream parser: ``feed`` it bytes as they arrive, get complete frames back.

    Any split of the stream gives the same frames.  Checks happen as soon as a header is complete,
    before any of its payload is buffered: version / inverse, then announced length against
    ``max_payload``, then payload type against ``allowed_types`` (default: every ``PayloadType``;
    pass ``range(0x10000)`` to accept all types, e.g. in a capture decoder).

    On an error, ``feed`` raises; the exception's ``frames`` holds the frames completed before it
    in that call.  After a non-fatal error (``close_connection`` False) the parser stays usable:
    the offending payload is skipped, and ``feed(b"")`` continues with the bytes already buffered.
    After a fatal error every further ``feed`` raises the same error.

    Internally the unconsumed bytes live in one bytearray read through an offset, compacted once
    per ``feed`` call, so the cost is linear in the stream length whatever the split.
    """

    __slots__ = (
        "_allowed",
        "_buf",
        "_consumed",
        "_error",
        "_header",
        "_max_payload",
        "_skip",
    )

    def __init__(
        self, max_payload: int = DEFAULT_MAX_PAYLOAD, allowed_types: Container[int] | None = None
    ) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self._max_payload = min(max_payload, MAX_PAYLOAD_LENGTH)
        self._allowed: Container[int] = _KNOWN_TYPES if allowed_types is None else allowed_types
        self._buf = bytearray()
        self._header: tuple[int, int] | None = None  # (payload_type, length) of the pending frame
        self._skip = 0  # payload bytes still to discard (after an unknown type)
        self._consumed = 0  # stream offset of self._buf[0]
        self._error: V2GTPError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (pending header and payload)."""
        pending_header = HEADER_SIZE if self._header is not None else 0
        return len(self._buf) + pending_header

    @property
    def at_frame_boundary(self) -> bool:
        """True when no partial frame is pending: the stream may end here without truncation."""
        return not self._buf and self._header is None and self._skip == 0

    @property
    def offset(self) -> int:
        """Stream offset of the first byte still buffered (everything before it was parsed)."""
        return self._consumed

    def finish(self) -> None:
        """Declare end of stream: raises ``TruncatedStreamError`` if a partial frame is pending."""
        if self.at_frame_boundary:
            return
        if self._header is not None:
            ptype, length = self._header
            raise TruncatedStreamError(
                f"stream ended inside a V2GTP payload of type 0x{ptype:04X}: "
                f"{len(self._buf)} of {length} bytes received",
                offset=self._consumed,
            )
        if self._skip:
            raise TruncatedStreamError(
                f"stream ended inside an ignored V2GTP payload: {self._skip} bytes missing",
                offset=self._consumed,
            )
        raise TruncatedStreamError(
            f"stream ended inside a V2GTP header: {len(self._buf)} of {HEADER_SIZE} bytes received",
            offset=self._consumed,
        )

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; return every frame completed by them (possibly none)."""
        if self._error is not None:
            again = copy.copy(self._error)
            again.frames = []  # the frames were handed out with the first raise
            raise again
        buf = self._buf
        frames: list[Frame] = []
        n = len(data)

        # Discard payload bytes of an ignored message without buffering them.
        if self._skip:
            take = min(self._skip, n)
            self._skip -= take
            self._consumed += take
            if take == n:
                return frames
            data = memoryview(data)[take:]
            n -= take

        # Parse straight from `data` when nothing is buffered (saves a copy of big reads).
        if buf:
            if n:
                buf += data
            src: bytes | bytearray | memoryview = buf
        else:
            src = data
        end = len(src)
        pos = 0
        header = self._header
        unpack = _FAST_HEADER.unpack_from
        allowed = self._allowed
        limit = self._max_payload
        try:
            while True:
                if header is None:
                    if end - pos < HEADER_SIZE:
                        break
                    version, inverse, ptype, length = unpack(src, pos)
                    if version != PROTOCOL_VERSION or inverse != INVERSE_VERSION:
                        err: V2GTPError = InvalidVersionError(
                            version, inverse, offset=self._consumed + pos
                        )
                        self._error = err
                        raise err
                    if length > limit:
                        err = PayloadTooLargeError(ptype, length, limit, offset=self._consumed + pos)
                        self._error = err
                        raise err
                    if ptype not in allowed:
                        err = UnknownPayloadTypeError(ptype, length, offset=self._consumed + pos)
                        pos += HEADER_SIZE
                        take = min(length, end - pos)
                        pos += take
                        self._skip = length - take
                        raise err
                    pos += HEADER_SIZE
                    header = (ptype, length)
                ptype, length = header
                if end - pos < length:
                    break
                frames.append(Frame(_as_type(ptype, ptype), bytes(src[pos : pos + length])))
                pos += length
                header = None
        except V2GTPError as exc:
            exc.frames = frames
            raise
        finally:
            self._header = header
            self._consumed += pos
            if src is buf:
                if pos:
                    del buf[:pos]
            elif pos < end:
                buf += memoryview(src)[pos:]
        return frames
