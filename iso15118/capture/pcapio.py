"""Streaming readers for libpcap and pcapng files.

Both formats are read record by record with ``struct`` (no whole-file loads), so memory stays
flat in the capture size.  A capture never makes the reader raise in the middle of iteration:
damage is reported as :class:`ReadProblem` items in :attr:`CaptureReader.problems` (and through
the optional ``on_problem`` callback, at the point where it happened), and the reader either
resynchronises on the next plausible record or stops.

Only a file that is not a capture at all (unknown magic number, empty, unreadable) raises, with
:class:`CaptureFormatError` (a subclass of :class:`CaptureError`).

Limits (hostile input):

* a packet whose timestamp cannot be a date (pcapng 64-bit tick counts beyond year 9999, or
  before year 1) is reported (``corrupt``: "timestamp out of range") and skipped;
* a gzip-compressed capture may expand to at most :data:`GZIP_MAX_RATIO` times its compressed
  size, and at least :data:`GZIP_MIN_ALLOWANCE` bytes (``max_decompressed`` overrides): beyond
  that (a decompression bomb: 200 KB of gzip that would expand to 200 MiB of empty frames)
  reading stops with a ``limit`` problem naming the limit.  Real captures of charging sessions
  compress about 3-15:1.

Formats (facts from the public libpcap / pcapng specifications):

* libpcap: 24-byte global header (magic ``a1b2c3d4`` microseconds or ``a1b23c4d`` nanoseconds,
  either byte order; version; snaplen; link type in the low 16 bits of the last word), then
  records of a 16-byte header (ts_sec, ts_frac, incl_len, orig_len) and ``incl_len`` bytes.
* pcapng: blocks of (type, total length, body, total length); Section Header Block
  (``0a0d0d0a``, byte-order magic ``1a2b3c4d``), Interface Description Block (type 1: link type,
  snaplen, options incl. ``if_tsresol`` code 9), Enhanced Packet Block (6), Simple Packet Block
  (3), obsolete Packet Block (2), Decryption Secrets Block (10: TLS key logs embedded by
  ``editcap --inject-secrets``).  Other blocks are skipped.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = [
    "CaptureError",
    "CaptureFormatError",
    "CaptureReader",
    "ReadProblem",
    "Record",
    "open_capture",
    "LINKTYPE_NAMES",
]

# Link types (tcpdump.org LINKTYPE_* values).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES: dict[int, str] = {
    LINKTYPE_NULL: "NULL (BSD loopback)",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    12: "raw IP (DLT 12)",
    14: "raw IP (DLT 14)",
    LINKTYPE_LOOP: "LOOP (OpenBSD loopback)",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

# pcapng Decryption Secrets Block type of an NSS key log ("TLSK").
SECRETS_TLS_KEYLOG = 0x544C534B

# Sanity limit for one record (bigger than any real snaplen; 256 KiB is tcpdump's default).
MAX_RECORD = 1 << 20
# How far the reader scans for the next plausible record after damage.
RESYNC_WINDOW = 1 << 20


class CaptureError(Exception):
    """Base class of the capture reader's errors."""


class CaptureLimitError(CaptureError):
    """A resource limit of the reader was reached (see the module docstring)."""


GZIP_MAX_RATIO = 32
"""Decompressed bytes allowed per compressed byte of a gzip'ed capture."""
GZIP_MIN_ALLOWANCE = 4 * 1024 * 1024
"""Decompressed bytes every gzip'ed capture may have, whatever its compressed size."""

_TS_MIN = -62135596800.0  # 0001-01-01T00:00:00Z
_TS_MAX = 253402300799.0  # 9999-12-31T23:59:59Z


def timestamp_in_range(ts: float) -> bool:
    """True when ``ts`` (seconds since the epoch) is a representable date (years 1-9999)."""
    return _TS_MIN <= ts <= _TS_MAX


class _LimitedReader:
    """A read()-only stream that raises :class:`CaptureLimitError` past ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int, what: str) -> None:
        self._inner = inner
        self._left = limit
        self.limit = limit
        self._what = what

    def read(self, n: int = -1) -> bytes:
        want = self._left + 1 if n is None or n < 0 else min(n, self._left + 1)
        data: bytes = self._inner.read(want)
        self._left -= len(data)
        if self._left < 0:
            raise CaptureLimitError(
                f"{self._what} expands beyond {self.limit} bytes ({self.limit / 1048576:.1f} MiB: "
                f"{GZIP_MAX_RATIO}:1 to the compressed size, at least {GZIP_MIN_ALLOWANCE // 1048576} MiB); "
                "reading stopped (a decompression bomb?)"
            )
        return data

    def close(self) -> None:
        self._inner.close()


class CaptureFormatError(CaptureError):
    """The file is not a pcap / pcapng capture (or cannot be opened)."""


@dataclass(slots=True)
class Record:
    """One captured packet."""

    index: int
    """Frame number, 1-based, in file order (as Wireshark counts)."""
    ts: float
    """Capture time, seconds since the epoch."""
    linktype: int
    data: bytes
    orig_len: int
    """Length on the wire (``len(data)`` is smaller when the snap length cut it)."""


@dataclass(slots=True)
class ReadProblem:
    """Damage found in the capture file itself."""

    kind: str
    """``truncated`` (file ends inside a record), ``corrupt`` (implausible header, skipped),
    ``resynced`` (reading resumed after damage), ``unsupported`` (block / link type ignored)."""
    offset: int
    """Byte offset in the file."""
    message: str
    after_frame: int
    """Number of the last good frame before the problem (0 = none)."""


class CaptureReader:
    """Iterate the records of a pcap or pcapng file, streamed.

    Use as ``for rec in reader: ...``; afterwards :attr:`problems` lists the damage found.
    ``on_problem`` is called as soon as a problem is found (so it can be placed in a timeline).
    :attr:`position` is the byte offset reached (for progress bars); :attr:`size` the file size.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_problem: Callable[[ReadProblem], None] | None = None,
        on_secrets: Callable[[bytes], None] | None = None,
        *,
        max_decompressed: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.problems: list[ReadProblem] = []
        self._on_problem = on_problem
        self._on_secrets = on_secrets
        self.secrets: list[tuple[int, bytes]] = []
        """pcapng Decryption Secrets Blocks seen: (secrets type, data)."""
        try:
            raw: BinaryIO = open(self.path, "rb", buffering=1 << 16)
        except OSError as exc:
            raise CaptureFormatError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        self._raw = raw
        self.size = os.fstat(raw.fileno()).st_size
        head = raw.read(4)
        raw.seek(0)
        self._f: BinaryIO = raw
        if head[:2] == b"\x1f\x8b":  # gzip-compressed capture
            try:
                head = gzip.GzipFile(fileobj=raw).read(4)
            except (OSError, EOFError, zlib.error) as exc:
                raw.close()
                raise CaptureFormatError(f"{self.path}: bad gzip data: {exc}") from exc
            raw.seek(0)
            limit = max_decompressed if max_decompressed is not None else max(
                GZIP_MIN_ALLOWANCE, GZIP_MAX_RATIO * self.size)
            self._f = _LimitedReader(gzip.GzipFile(fileobj=raw), limit, "gzip data")  # type: ignore[assignment]
        if len(head) < 4:
            self.close()
            raise CaptureFormatError(f"{self.path}: empty or too short to be a capture")
        if head == b"\x0a\x0d\x0d\x0a":
            self.format = "pcapng"
        elif head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            self.format = "pcap"
        else:
            self.close()
            raise CaptureFormatError(
                f"{self.path}: not a pcap or pcapng file (magic {head.hex()})"
            )
        self.linktypes: set[int] = set()
        self.frames = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Bytes of the underlying file consumed so far."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return self.size

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            self._raw.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        inner = self._iter_pcap() if self.format == "pcap" else self._iter_pcapng()
        try:
            yield from inner
        except (OSError, EOFError, zlib.error) as exc:  # e.g. a cut gzip stream, an I/O error
            self._problem("truncated", self.position, f"read error after frame {self.frames}: {exc}")
        except CaptureLimitError as exc:
            self._problem("limit", self.position, f"after frame {self.frames}: {exc}")

    # -- helpers ------------------------------------------------------------------------------

    def _problem(self, kind: str, offset: int, message: str) -> None:
        p = ReadProblem(kind, offset, message, self.frames)
        self.problems.append(p)
        if self._on_problem is not None:
            self._on_problem(p)

    # -- libpcap ------------------------------------------------------------------------------

    def _iter_pcap(self) -> Iterator[Record]:
        f = self._f
        hdr = f.read(24)
        if len(hdr) < 24:
            self._problem("truncated", 0, f"file ends inside the pcap global header ({len(hdr)} of 24 bytes)")
            return
        magic = hdr[:4]
        endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr[4:])
        linktype = network & 0xFFFF  # upper bits: FCS length flags
        self.linktypes.add(linktype)
        div = 1e9 if nano else 1e6
        frac_max = 1_000_000_000 if nano else 1_000_000
        max_len = max(snaplen, 65535) if snaplen else MAX_RECORD
        max_len = min(max(max_len, 65535), MAX_RECORD * 4)
        rec_hdr = struct.Struct(endian + "IIII")
        unpack = rec_hdr.unpack
        read = f.read
        offset = 24
        last_ts = None
        index = 0
        while True:
            h = read(16)
            if not h:
                return
            if len(h) < 16:
                self._problem(
                    "truncated",
                    offset,
                    f"file ends inside a record header ({len(h)} of 16 bytes) after frame {index}",
                )
                return
            ts_sec, ts_frac, incl, orig = unpack(h)
            if incl > max_len or ts_frac >= frac_max or (incl > orig and orig != 0 and incl - orig > 4):
                self._problem(
                    "corrupt",
                    offset,
                    f"implausible record header after frame {index} "
                    f"(caplen {incl}, orig_len {orig}, ts fraction {ts_frac})",
                )
                found = self._pcap_resync(offset + 1, h, rec_hdr, max_len, frac_max, last_ts)
                if found is None:
                    return
                offset, h = found
                read = self._f.read
                ts_sec, ts_frac, incl, orig = unpack(h)
                self._problem("resynced", offset, f"reading resumed at a plausible record at offset {offset}")
            data = read(incl)
            if len(data) < incl:
                self._problem(
                    "truncated",
                    offset,
                    f"file ends inside frame {index + 1}: {len(data)} of {incl} bytes captured",
                )
                return
            index += 1
            self.frames = index
            last_ts = ts_sec
            offset += 16 + incl
            yield Record(index, ts_sec + ts_frac / div, linktype, data, orig)

    def _pcap_resync(
        self,
        start: int,
        first: bytes,
        rec_hdr: struct.Struct,
        max_len: int,
        frac_max: int,
        last_ts: int | None,
    ) -> tuple[int, bytes] | None:
        """Scan forward for a record header followed by another plausible one (or EOF)."""
        window = first[1:] + self._f.read(RESYNC_WINDOW)
        unpack_from = rec_hdr.unpack_from

        def plausible(pos: int) -> int | None:
            if pos + 16 > len(window):
                return None
            ts_sec, ts_frac, incl, orig = unpack_from(window, pos)
            if incl == 0 or incl > max_len or ts_frac >= frac_max or incl > orig + 4 or orig > MAX_RECORD * 4:
                return None
            if last_ts is not None and abs(ts_sec - last_ts) > 86400:
                return None
            return int(incl)

        for pos in range(0, max(0, len(window) - 16)):
            incl = plausible(pos)
            if incl is None:
                continue
            nxt = pos + 16 + incl
            if nxt == len(window) or plausible(nxt) is not None:
                # Re-position the stream just after this header.
                rest = window[pos + 16 :]
                self._f = _PrefixedReader(rest, self._f)  # type: ignore[assignment]
                return start + pos, window[pos : pos + 16]
        self._problem("corrupt", start, "no plausible record found after the damage; reading stopped")
        return None

    # -- pcapng -------------------------------------------------------------------------------

    def _iter_pcapng(self) -> Iterator[Record]:
        f = self._f
        read = f.read
        endian = "<"
        interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
        offset = 0
        index = 0
        while True:
            h = read(8)
            if not h:
                return
            if len(h) < 8:
                self._problem("truncated", offset, f"file ends inside a block header after frame {index}")
                return
            if h[:4] == b"\x0a\x0d\x0d\x0a":
                bom = read(4)
                if len(bom) < 4:
                    self._problem("truncated", offset, "file ends inside a section header block")
                    return
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    self._problem("corrupt", offset, f"bad byte-order magic {bom.hex()} in section header")
                    return
                (blen,) = struct.unpack(endian + "I", h[4:])
                if blen < 28 or blen % 4 or blen > MAX_RECORD:
                    self._problem("corrupt", offset, f"bad section header block length {blen}")
                    return
                rest = read(blen - 12)
                if len(rest) < blen - 12:
                    self._problem("truncated", offset, "file ends inside a section header block")
                    return
                interfaces = []
                offset += blen
                continue
            btype, blen = struct.unpack(endian + "II", h)
            if blen < 12 or blen % 4 or blen > MAX_RECORD * 4:
                self._problem("corrupt", offset, f"implausible block length {blen} (type {btype}) after frame {index}")
                found = self._pcapng_resync(offset + 1, h, endian)
                if found is None:
                    return
                offset, h = found
                read = self._f.read
                btype, blen = struct.unpack(endian + "II", h)
                self._problem("resynced", offset, f"reading resumed at a plausible block at offset {offset}")
            body = read(blen - 8)
            if len(body) < blen - 8:
                self._problem(
                    "truncated",
                    offset,
                    f"file ends inside a block of type {btype} ({len(body) + 8} of {blen} bytes) after frame {index}",
                )
                return
            (trailer,) = struct.unpack_from(endian + "I", body, blen - 12)
            if trailer != blen:
                self._problem(
                    "corrupt", offset, f"block of type {btype} has trailing length {trailer} != {blen}; skipped"
                )
                offset += blen
                continue
            block_offset = offset
            offset += blen
            body = body[:-4]
            if btype == 1:  # Interface Description Block
                if len(body) < 8:
                    self._problem("corrupt", block_offset, "interface description block too short")
                    continue
                linktype, _res, _snap = struct.unpack_from(endian + "HHI", body, 0)
                tick = 1e-6
                for code, value in _options(body, 8, endian):
                    if code == 9 and value:
                        r = value[0]
                        tick = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                interfaces.append((linktype, tick))
                self.linktypes.add(linktype)
            elif btype == 6 or btype == 2:  # Enhanced / obsolete Packet Block
                if len(body) < 20:
                    self._problem("corrupt", block_offset, "packet block too short; skipped")
                    continue
                if btype == 6:
                    iface, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "IIIII", body, 0)
                else:
                    iface, _drops, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "HHIIII", body, 0)
                if iface >= len(interfaces):
                    self._problem("corrupt", block_offset, f"packet on undeclared interface {iface}; skipped")
                    continue
                if caplen > len(body) - 20:
                    self._problem("corrupt", block_offset, f"packet block caplen {caplen} exceeds block; cut")
                    caplen = len(body) - 20
                linktype, tick = interfaces[iface]
                index += 1
                ts = ((ts_hi << 32) | ts_lo) * tick
                if not timestamp_in_range(ts):
                    self._problem("corrupt", block_offset,
                                  f"frame {index}: timestamp out of range ({ts:.6g} s since 1970); packet skipped")
                    continue
                self.frames = index
                yield Record(index, ts, linktype, body[20 : 20 + caplen], orig)
            elif btype == 3:  # Simple Packet Block
                if not interfaces or len(body) < 4:
                    self._problem("corrupt", block_offset, "simple packet block without interface; skipped")
                    continue
                (orig,) = struct.unpack_from(endian + "I", body, 0)
                linktype, _tick = interfaces[0]
                index += 1
                self.frames = index
                yield Record(index, 0.0, linktype, body[4 : 4 + min(orig, len(body) - 4)], orig)
            elif btype == 10:  # Decryption Secrets Block
                if len(body) >= 8:
                    stype, slen = struct.unpack_from(endian + "II", body, 0)
                    secret = body[8 : 8 + slen]
                    if stype == SECRETS_TLS_KEYLOG and self._on_secrets is not None:
                        self._on_secrets(secret)
                    self.secrets.append((stype, secret))
            # Other blocks (name resolution, statistics, custom...) carry no packets.

    def _pcapng_resync(self, start: int, first: bytes, endian: str) -> tuple[int, bytes] | None:
        """Scan for a block whose leading and trailing lengths agree."""
        window = first[1:] + self._f.read(RESYNC_WINDOW)
        for pos in range(0, max(0, len(window) - 12)):
            btype, blen = struct.unpack_from(endian + "II", window, pos)
            if btype not in (1, 2, 3, 4, 5, 6) or blen < 12 or blen % 4 or pos + blen > len(window):
                continue
            (trailer,) = struct.unpack_from(endian + "I", window, pos + blen - 4)
            if trailer == blen:
                self._f = _PrefixedReader(window[pos + 8 :], self._f)  # type: ignore[assignment]
                return start + pos, window[pos : pos + 8]
        self._problem("corrupt", start, "no plausible block found after the damage; reading stopped")
        return None


def _options(body: bytes, pos: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options (code, value) from ``pos`` to the end of ``body``."""
    n = len(body)
    while pos + 4 <= n:
        code, length = struct.unpack_from(endian + "HH", body, pos)
        pos += 4
        if code == 0:
            return
        yield code, body[pos : pos + length]
        pos += (length + 3) & ~3


class _PrefixedReader:
    """A read()-only stream: ``prefix`` bytes first, then the wrapped stream."""

    def __init__(self, prefix: bytes, inner: BinaryIO) -> None:
        self._prefix = prefix
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n < 0 or n >= len(self._prefix):
                p, self._prefix = self._prefix, b""
                return p + self._inner.read(-1 if n < 0 else n - len(p))
            p, self._prefix = self._prefix[:n], self._prefix[n:]
            return p
        return self._inner.read(n)

    def close(self) -> None:
        self._inner.close()


def open_capture(
    path: str | os.PathLike[str],
    on_problem: Callable[[ReadProblem], None] | None = None,
    on_secrets: Callable[[bytes], None] | None = None,
) -> CaptureReader:
    """Open a pcap / pcapng (optionally gzip-compressed) capture for streamed reading.
    ``on_secrets`` receives the NSS key log text of pcapng Decryption Secrets Blocks."""
    return CaptureReader(path, on_problem, on_secrets)
