"""V2GTP framing of one reassembled byte stream, with signature search and resynchronisation.

Uses :class:`iso15118.transport.v2gtp.V2GTPParser` for the framing itself.  What this module adds
is what a *capture* decoder needs beyond a receiver:

* :func:`looks_like_v2gtp` / :func:`find_v2gtp`: recognise a V2GTP header by its signature
  (``0x01 0xFE``, a known payload type, a sane length) - to find V2G traffic on unknown ports and
  to find the next frame after damage;
* :class:`V2GTPStream`: frames stamped with the time and frame number of the segment that
  completed them; after a gap or a framing error it resynchronises on the next plausible header
  and says how many bytes it skipped, instead of giving up on the connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from iso15118.transport.v2gtp import (
    HEADER_SIZE,
    PayloadType,
    V2GTPError,
    V2GTPParser,
)

__all__ = [
    "KNOWN_PAYLOAD_TYPES",
    "MAX_SANE_PAYLOAD",
    "FramedMessage",
    "FramingProblem",
    "V2GTPStream",
    "find_v2gtp",
    "looks_like_v2gtp",
]

KNOWN_PAYLOAD_TYPES: frozenset[int] = frozenset(int(t) for t in PayloadType)
MAX_SANE_PAYLOAD = 65536
_hdr = struct.Struct(">BBHI").unpack_from
_ALL_TYPES = range(0x10000)
# Bytes kept while looking for a header after damage (a header is 8 bytes; keep a little more).
_RESYNC_KEEP = 7


def looks_like_v2gtp(data: bytes | bytearray | memoryview, pos: int = 0, *, stream_types_only: bool = False) -> bool:
    """True if ``data[pos:pos+8]`` is a plausible V2GTP header."""
    if len(data) - pos < HEADER_SIZE:
        return False
    version, inverse, ptype, length = _hdr(data, pos)
    if version != 0x01 or inverse != 0xFE or length > MAX_SANE_PAYLOAD:
        return False
    if stream_types_only:
        return bool(0x8001 <= ptype <= 0x8104)
    return bool(ptype in KNOWN_PAYLOAD_TYPES)


def find_v2gtp(data: bytes | bytearray, start: int = 0) -> int:
    """Index of the first plausible V2GTP header at or after ``start``, or -1.

    A candidate followed by bytes must be followed by another plausible header right after its
    payload (or by the end of ``data``), which rules out chance ``01 FE`` pairs inside payloads.
    """
    n = len(data)
    i = data.find(b"\x01\xfe", start)
    while i != -1:
        if looks_like_v2gtp(data, i, stream_types_only=True):
            nxt = i + HEADER_SIZE + _hdr(data, i)[3]
            if nxt >= n or n - nxt < HEADER_SIZE or looks_like_v2gtp(data, nxt, stream_types_only=True):
                return i
        i = data.find(b"\x01\xfe", i + 1)
    return -1


@dataclass(slots=True)
class FramedMessage:
    """One V2GTP frame of a stream."""

    payload_type: int
    payload: bytes
    ts: float
    """Time of the segment that completed the frame."""
    frame: int
    """Capture frame number of that segment."""
    first_frame: int
    """Capture frame number of the segment carrying the frame's first byte."""
    offset: int
    """Stream offset of the V2GTP header."""


@dataclass(slots=True)
class FramingProblem:
    """Damage in the V2GTP layer of a stream."""

    kind: str
    """``framing_error`` (bad header), ``unknown_payload_type``, ``resync`` (bytes skipped to find
    the next header), ``truncated`` (stream ended inside a frame)."""
    ts: float
    frame: int
    detail: str
    offset: int | None = None
    data: bytes = b""
    """The offending bytes (at most 64), for a hex dump."""


class V2GTPStream:
    """Frames one direction of a V2G connection (see module docstring)."""

    __slots__ = (
        "_parser", "_origin", "_resync", "_scan", "_scan_origin", "_pos", "_next_offset",
        "_start_frame", "problems", "frames",
    )

    def __init__(self, *, resync: bool = False) -> None:
        self._parser = V2GTPParser(max_payload=MAX_SANE_PAYLOAD, allowed_types=_ALL_TYPES)
        self._origin = 0  # stream offset where the current parser started
        self._resync = resync  # looking for a header (stream start unknown, or after damage)
        self._scan = bytearray()
        self._scan_origin = 0  # stream offset of _scan[0]
        self._pos = 0  # stream offset of the next byte fed (gaps included)
        self._next_offset = 0  # stream offset of the next frame's header
        self._start_frame: int | None = None  # capture frame of the pending frame's first byte
        self.problems: list[FramingProblem] = []
        self.frames = 0

    @property
    def at_frame_boundary(self) -> bool:
        return not self._resync and self._parser.at_frame_boundary

    def gap(self, missing: int, ts: float, frame: int) -> None:
        """Bytes of the stream were lost: drop any partial frame and look for the next header."""
        partial = (0 if self._resync else self._parser.buffered) + len(self._scan)
        if partial:
            self.problems.append(
                FramingProblem(
                    "resync", ts, frame,
                    f"partial V2GTP data ({partial} bytes) dropped at a gap of {missing} bytes",
                    self._pos - partial,
                )
            )
        self._pos += missing
        self._enter_resync(self._pos, b"")

    def _enter_resync(self, origin: int, data: bytes) -> None:
        self._resync = True
        self._scan = bytearray(data)
        self._scan_origin = origin
        self._start_frame = None

    def feed(self, data: bytes, ts: float, frame: int) -> list[FramedMessage]:
        """Add in-order stream bytes; return the frames they complete."""
        out: list[FramedMessage] = []
        n = len(data)
        self._pos += n
        if self._resync:
            self._scan += data
            self._try_resync(ts, frame, out)
            return out
        if n >= HEADER_SIZE and self._parser.at_frame_boundary:
            # The common case, one segment = one whole frame: read here, the parser skipped (its
            # offsets count from ``_origin``, which moves past the frame instead).
            version, inverse, ptype, length = _hdr(data, 0)
            if version == 0x01 and inverse == 0xFE and n - HEADER_SIZE == length <= MAX_SANE_PAYLOAD:
                start = self._start_frame if self._start_frame is not None else frame
                out.append(FramedMessage(ptype, bytes(data[HEADER_SIZE:]), ts, frame, start, self._next_offset))
                self._next_offset += n
                self._origin += n
                self._start_frame = None
                self.frames += 1
                return out
        self._parse(data, ts, frame, out)
        return out

    def _try_resync(self, ts: float, frame: int, out: list[FramedMessage]) -> None:
        scan = self._scan
        idx = find_v2gtp(scan)
        if idx < 0:
            if len(scan) > MAX_SANE_PAYLOAD * 2:
                drop = len(scan) - _RESYNC_KEEP
                self.problems.append(
                    FramingProblem("resync", ts, frame, f"{drop} bytes without a V2GTP header skipped",
                                   self._scan_origin, bytes(scan[:64]))
                )
                del scan[:drop]
                self._scan_origin += drop
            return
        if idx:
            self.problems.append(
                FramingProblem("resync", ts, frame, f"{idx} bytes skipped to the next V2GTP header",
                               self._scan_origin, bytes(scan[: min(idx, 64)]))
            )
        data = bytes(scan[idx:])
        origin = self._scan_origin + idx
        self._scan = bytearray()
        self._resync = False
        self._parser = V2GTPParser(max_payload=MAX_SANE_PAYLOAD, allowed_types=_ALL_TYPES)
        self._origin = self._next_offset = origin
        self._parse(data, ts, frame, out)

    def _parse(self, data: bytes, ts: float, frame: int, out: list[FramedMessage]) -> None:
        parser = self._parser
        if self._start_frame is None and data:
            self._start_frame = frame
        data_start = self._pos - len(data)
        chunk: bytes = data
        while True:
            try:
                frames = parser.feed(chunk)
            except V2GTPError as exc:
                self._emit(exc.frames, ts, frame, out)
                where = self._origin + (exc.offset if exc.offset is not None else parser.offset)
                rel = max(0, where - data_start)
                if exc.close_connection:
                    self.problems.append(
                        FramingProblem("framing_error", ts, frame, str(exc), where, bytes(data[rel : rel + 64]))
                    )
                    # Look for the next plausible header after the bad one.
                    resume = max(where + 1, data_start)
                    self._enter_resync(resume, data[resume - data_start :])
                    self._try_resync(ts, frame, out)
                    return
                self.problems.append(
                    FramingProblem("unknown_payload_type", ts, frame, str(exc), where, bytes(data[rel : rel + 64]))
                )
                self._next_offset = where + HEADER_SIZE + getattr(exc, "payload_length", 0)
                self._start_frame = None
                chunk = b""
                continue
            break
        self._emit(frames, ts, frame, out)
        if parser.at_frame_boundary:
            self._start_frame = None

    def _emit(self, frames: list[Any], ts: float, frame: int, out: list[FramedMessage]) -> None:
        for f in frames:
            start = self._start_frame if self._start_frame is not None else frame
            out.append(FramedMessage(int(f.payload_type), f.payload, ts, frame, start, self._next_offset))
            self._next_offset += HEADER_SIZE + len(f.payload)
            self._start_frame = frame
            self.frames += 1

    def finish(self, ts: float, frame: int) -> None:
        """End of stream: report a partial frame."""
        if self._resync:
            if self._scan:
                self.problems.append(
                    FramingProblem("truncated", ts, frame,
                                   f"{len(self._scan)} bytes at the stream end hold no complete V2GTP header",
                                   self._scan_origin, bytes(self._scan[:64]))
                )
            return
        try:
            self._parser.finish()
        except V2GTPError as exc:
            where = self._origin + (exc.offset or 0)
            self.problems.append(FramingProblem("truncated", ts, frame, str(exc), where))
