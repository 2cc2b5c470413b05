"""Typed errors of the EXI codec."""

from __future__ import annotations


class ExiError(Exception):
    """Base class of every error the codec raises on bad input."""


class ExiDecodeError(ExiError):
    """An EXI stream could not be decoded.

    ``bit_offset`` is the position in the stream where decoding failed and
    ``path`` the element path (``/SessionSetupReq/Header/SessionID``) reached so far.
    """

    def __init__(self, reason: str, bit_offset: int | None = None, path: str = "") -> None:
        self.reason = reason
        self.bit_offset = bit_offset
        self.path = path
        where = []
        if bit_offset is not None:
            where.append(f"bit {bit_offset}")
        if path:
            where.append(f"at {path}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)


class ExiEncodeError(ExiError):
    """A document or element tree could not be encoded (not valid for the schema)."""

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason} (at {path})" if path else reason)


class ExiLimitError(ExiDecodeError):
    """A decoding limit (string / binary length, occurrences, depth, size) was exceeded."""


class ExiFacetError(ExiDecodeError):
    """A value the bits carry but the schema's facets forbid (an n-bit integer above its
    maxInclusive: 4 in a 2-bit field of 1..3). Strict decoding refuses it with this error;
    ``Codec.decode_lenient`` keeps it and reports a :class:`~iso15118.exi.facets.FacetWarning`."""


class ExiTrailingDataError(ExiDecodeError):
    """Whole bytes after the end of an EXI document (a real vehicle pads a DIN message with a
    zero byte). ``end_byte``: the length of the document itself; the stream up to there decodes."""

    def __init__(self, reason: str, bit_offset: int, end_byte: int) -> None:
        super().__init__(reason, bit_offset)
        self.end_byte = end_byte
