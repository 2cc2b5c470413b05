"""Runtime of the generated per-grammar codecs (``iso15118/exi/_fast_<key>.py``).

The generated modules (``tools/gen_fastcodec.py``) read a whole stream held as one int ``V``,
keeping ``r``, the number of bits still to read (a field of n bits is ``(V >> r) & mask`` after
``r -= n``) and write by shifting into an accumulator ``acc`` of ``n`` bits.  They cover the
first-level productions of the schema-informed grammars with the event codes and bit widths
precomputed; anything else (a second-level event, a wildcard, xsi:type, a value that needs a
lexical parse, an attribute to write, a malformed stream) raises :class:`Fallback` or fails with
some other exception, and :class:`iso15118.exi.codec.Codec` then runs the generic codec, the
reference, on the whole input.  So the generated code never has to produce an error itself:
the generic codec gives the typed error of record.

Only the helpers too long to inline are here.
"""

from __future__ import annotations

__all__ = ["Fallback", "rbin", "rstr", "ruint", "wbin", "wstr", "wuint"]


class Fallback(Exception):
    """The generated code does not handle this input: use the generic codec."""


def ruint(V: int, r: int, b: int) -> tuple[int, int]:
    """The rest of an unsigned integer (7.1.6) whose first octet ``b`` (>= 128) is read;
    ``r`` is the number of bits still to read in ``V``."""
    value = b & 0x7F
    shift = 7
    while True:
        r -= 8
        b = (V >> r) & 0xFF
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, r
        shift += 7
        if shift > 7 * 40:
            raise Fallback


def _uint(V: int, r: int) -> tuple[int, int]:
    r -= 8
    b = (V >> r) & 0xFF
    if b < 0x80:
        return b, r
    return ruint(V, r, b)


def rstr(V: int, r: int) -> tuple[str, int]:
    """A string value that misses the (capacity 0) value table: length + 2, then ASCII
    characters (any other code point: the generic codec)."""
    n, r = _uint(V, r)
    if n < 2:
        raise Fallback
    n -= 2
    if n == 0:
        return "", r
    r -= 8 * n
    raw = ((V >> r) & ((1 << (8 * n)) - 1)).to_bytes(n, "big")
    if not raw.isascii():
        raise Fallback
    return raw.decode("ascii"), r


def rbin(V: int, r: int) -> tuple[bytes, int]:
    """Binary (7.1.1): length in octets, then the octets."""
    n, r = _uint(V, r)
    if n == 0:
        return b"", r
    r -= 8 * n
    return ((V >> r) & ((1 << (8 * n)) - 1)).to_bytes(n, "big"), r


def wuint(acc: int, n: int, value: int) -> tuple[int, int]:
    """Write an unsigned integer (7.1.6): little-endian 7-bit groups, high bit = more."""
    if value < 0x80:
        return (acc << 8) | value, n + 8
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            acc = (acc << 8) | 0x80 | low
            n += 8
        else:
            return (acc << 8) | low, n + 8


def wstr(acc: int, n: int, s: str) -> tuple[int, int]:
    """An ASCII string value: length + 2, then the characters (the caller checked ASCII)."""
    k = len(s)
    acc, n = wuint(acc, n, k + 2)
    if k:
        acc = (acc << (8 * k)) | int.from_bytes(s.encode("ascii"), "big")
        n += 8 * k
    return acc, n


def wbin(acc: int, n: int, b: bytes) -> tuple[int, int]:
    k = len(b)
    acc, n = wuint(acc, n, k)
    if k:
        acc = (acc << (8 * k)) | int.from_bytes(b, "big")
        n += 8 * k
    return acc, n
