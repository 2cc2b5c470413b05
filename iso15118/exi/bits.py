"""Bit-packed EXI streams: a writer and a reader of n-bit fields, unsigned
variable-length integers (7.1.6) and the few composite forms built on them.

Both are hot paths: the writer keeps up to ~64 pending bits in an int and
flushes whole bytes to a bytearray; the reader slices only the bytes a field
spans, so cost per field is independent of the stream length.
"""

from __future__ import annotations

from iso15118.exi.errors import ExiDecodeError, ExiLimitError


class BitWriter:
    __slots__ = ("_buf", "_acc", "_n")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._acc = 0  # pending bits, most significant first
        self._n = 0  # number of pending bits

    def bits(self, value: int, n: int) -> None:
        """Write ``value`` as an n-bit unsigned integer (n may be 0)."""
        if n == 0:
            return
        acc = (self._acc << n) | value
        n += self._n
        if n >= 64:
            whole = n >> 3
            rest = n & 7
            self._buf += (acc >> rest).to_bytes(whole, "big")
            acc &= (1 << rest) - 1
            n = rest
        self._acc = acc
        self._n = n

    def uint(self, value: int) -> None:
        """Unsigned integer (7.1.6): little-endian groups of 7 bits, high bit = more."""
        if value < 128:
            self.bits(value, 8)
            return
        out = 0
        count = 0
        while True:
            low = value & 0x7F
            value >>= 7
            if value:
                out = (out << 8) | 0x80 | low
                count += 1
            else:
                out = (out << 8) | low
                count += 1
                break
        self.bits(out, 8 * count)

    def raw_bytes(self, data: bytes) -> None:
        if data:
            self.bits(int.from_bytes(data, "big"), 8 * len(data))

    @property
    def bit_length(self) -> int:
        return 8 * len(self._buf) + self._n

    def getvalue(self) -> bytes:
        """The stream, padded with zero bits to a whole byte."""
        buf = bytes(self._buf)
        n = self._n
        if n:
            pad = (-n) & 7
            buf += (self._acc << pad).to_bytes((n + pad) >> 3, "big")
        return buf


class BitReader:
    """Reads n-bit fields. Small streams (the usual V2G message) are held as one int
    and read by shifting; large ones are read by slicing only the bytes a field spans."""

    __slots__ = ("data", "pos", "end", "max_string", "max_binary", "bits", "_val")

    SMALL = 512  # bytes: below this, one big int is fastest

    def __init__(self, data: bytes, pos: int = 0, max_string: int = 65536, max_binary: int = 1 << 20) -> None:
        self.data = data
        self.pos = pos  # bit position
        self.end = 8 * len(data)
        self.max_string = max_string
        self.max_binary = max_binary
        if len(data) <= self.SMALL:
            self._val = int.from_bytes(data, "big")
            self.bits = self._bits_small
        else:
            self._val = 0
            self.bits = self._bits_large

    def _bits_small(self, n: int) -> int:
        e = self.pos + n
        if e > self.end:
            raise ExiDecodeError("unexpected end of stream", self.pos)
        self.pos = e
        return (self._val >> (self.end - e)) & ((1 << n) - 1)

    def _bits_large(self, n: int) -> int:
        if n == 0:
            return 0
        p = self.pos
        e = p + n
        if e > self.end:
            raise ExiDecodeError("unexpected end of stream", p)
        self.pos = e
        b0 = p >> 3
        b1 = (e + 7) >> 3
        chunk = int.from_bytes(self.data[b0:b1], "big")
        return (chunk >> ((b1 << 3) - e)) & ((1 << n) - 1)

    def uint(self) -> int:
        b = self.bits(8)
        if b < 0x80:
            return b
        value = b & 0x7F
        shift = 7
        while True:
            b = self.bits(8)
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
            if shift > 7 * 40:  # far beyond any legal value in these schemas
                raise ExiLimitError("unsigned integer too long", self.pos)

    def raw_bytes(self, n: int) -> bytes:
        if n == 0:
            return b""
        if self.pos + 8 * n > self.end:
            raise ExiDecodeError(f"binary/string of {n} bytes runs past the end of the stream", self.pos)
        if self.pos & 7 == 0:
            b0 = self.pos >> 3
            self.pos += 8 * n
            return self.data[b0 : b0 + n]
        return self.bits(8 * n).to_bytes(n, "big")
