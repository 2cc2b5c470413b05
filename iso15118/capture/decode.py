"""The EXI decode step, behind one small function so the codec plugs in (or is missing) cleanly.

:func:`decode_payload` returns a :class:`Decoded` whatever happens: the element tree and what the
timeline needs from it (message name, session ID, response code, key fields), or the decode
error with its bit offset and element path.  A codec bug (any exception) is reported the same
way, never raised: a capture must not crash the decoder.

Results are memoised per ``(schema, payload)`` in a bounded LRU cache: the charge loop of a real
session repeats identical messages (the fixture captures hold 5-30 % distinct payloads), so this
is most of the decoder's speed on real data.  Cached trees are shared: treat them as read-only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from iso15118.capture.leaves import EMPTY, Leaves, leaves_of
from iso15118.capture.physical import scaled as _scaled
from iso15118.exi.tree import Element

__all__ = [
    "Decoded",
    "DecodeCache",
    "codec_available",
    "codec_unavailable_reason",
    "decode_payload",
    "element_to_json",
    "flatten",
    "to_xml",
]

_codec_error: str | None = None
_codec_checked = False


def codec_unavailable_reason() -> str | None:
    """None when ``iso15118.exi.codec`` imports, else why not."""
    global _codec_checked, _codec_error
    if not _codec_checked:
        _codec_checked = True
        try:
            import iso15118.exi.codec  # noqa: F401
        except Exception as exc:  # ImportError, or an error inside the codec package
            _codec_error = f"EXI codec unavailable: {exc}"
    return _codec_error


def codec_available() -> bool:
    return codec_unavailable_reason() is None


_codecs: dict[str, Any] = {}  # schema key -> codec (get_codec's, held here: looked up per payload)


def _codec(key: str) -> Any:
    c = _codecs.get(key)
    if c is None:
        # ``iso15118.exi.codec(key)`` is shadowed by the submodule of the same name once that is
        # imported, so go to the submodule's accessor directly.
        from iso15118.exi.codec import get_codec

        c = _codecs[key] = get_codec(key)
    return c


@dataclass(slots=True)
class Decoded:
    """The outcome of decoding one V2G payload."""

    schema: str
    tree: Element | None = None
    name: str | None = None
    """Message name: SAP/-20 root element, or the Body child of -2 / DIN V2G_Message."""
    message: Element | None = None
    """The message element (Body child for -2 / DIN, the root otherwise)."""
    session_id: str | None = None
    response_code: str | None = None
    error: str | None = None
    bit_offset: int | None = None
    path: str | None = None
    key: dict[str, Any] | None = None
    """Memo of :func:`iso15118.capture.keyfields.key_fields` (shared: read-only)."""
    flat: dict[str, Any] | None = None
    """Memo of :attr:`values` (shared: read-only)."""
    leaf: Leaves | None = None
    """Memo of :attr:`leaves` (shared: read-only)."""
    json: Any = None
    """Memo of the JSON form of ``tree`` (shared: read-only)."""
    facet_warnings: list[Any] = field(default_factory=list)
    """:class:`~iso15118.exi.facets.FacetWarning` of values the bits carry but the schema's
    facets forbid (decoded leniently instead of refused; empty for a schema-valid message)."""
    trailing: bytes = b""
    """Whole bytes after the end of the EXI document (ignored: the document before them decoded)."""

    @property
    def values(self) -> dict[str, Any]:
        """Flattened leaf values of the message (path -> value; physical values scaled), computed
        on first use (the timeline does not need them; the summary and the dataset do)."""
        flat = self.flat
        if flat is None:
            flat = {}
            if self.message is not None and self.error is None:
                try:
                    flat = flatten(self.message)
                except Exception:  # defensive: the trees the codecs make (bounded integers) read cleanly
                    flat = {}
            self.flat = flat
        return flat

    @property
    def leaves(self) -> Leaves:
        """The message's leaf values by element name, in document order (see
        :mod:`iso15118.capture.leaves`), computed on first use: what the key fields, the summary
        and the dataset read."""
        lv = self.leaf
        if lv is None:
            lv = EMPTY
            if self.message is not None and self.error is None:
                try:
                    lv = leaves_of(self.message)
                except Exception:  # defensive, as for values
                    lv = EMPTY
            self.leaf = lv
        return lv

    def tree_json(self) -> Any:
        """``{root name: element_to_json(tree)}``, computed once."""
        if self.json is None and self.tree is not None:
            self.json = {self.tree.name: element_to_json(self.tree)}
        return self.json


# --------------------------------------------------------------------------------------------
# Tree helpers


def flatten(el: Element, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Leaf values below ``el`` keyed by slash path; physical values become numbers (``unit``
    suffix kept in ``path@unit``); repeated elements get ``[i]`` indexes."""
    if out is None:
        out = {}
    kids = [c for c in el.children if isinstance(c, Element)]
    counts: dict[str, int] | None = None
    if len(kids) > 1 and len({c.name for c in kids}) < len(kids):
        counts = {}
        for c in kids:
            counts[c.name] = counts.get(c.name, 0) + 1
    seen: dict[str, int] = {}
    for c in kids:
        key = c.name
        if counts is not None and counts[key] > 1:
            i = seen.get(key, 0)
            seen[key] = i + 1
            key = f"{key}[{i}]"
        path = f"{prefix}/{key}" if prefix else key
        if c.children:
            sv = _scaled(c)
            if sv is not None:
                out[path] = sv[0]
                if sv[1]:
                    out[path + "@unit"] = sv[1]
            else:
                flatten(c, path, out)
        else:
            out[path] = c.value
        if c.attrs:
            for a, v in c.attrs.items():
                out[f"{path}@{a}"] = v
    return out


def element_to_json(el: Element) -> Any:
    """JSON-ready form of an element: leaves are their value; complex elements are objects of
    child name -> value (a list when the name repeats), attributes as ``@name``."""
    if not el.children and not el.attrs:
        return json_value(el.value)
    obj: dict[str, Any] = {}
    for a, v in el.attrs.items():
        obj["@" + a] = json_value(v)
    for c in el.children:
        if isinstance(c, Element):
            if not c.children and not c.attrs:  # a leaf: element_to_json(c), without the call
                v = c.value
                t = v.__class__
                if not (t is str or t is int or t is bool or t is float or v is None):
                    v = json_value(v)
            else:
                v = element_to_json(c)
            if c.name in obj:
                prev = obj[c.name]
                if isinstance(prev, list) and getattr(prev, "_repeat", False):
                    prev.append(v)
                else:
                    lst = _Repeat([prev, v])
                    obj[c.name] = lst
            else:
                obj[c.name] = v
        elif c.strip():
            obj.setdefault("#text", "")
            obj["#text"] += c
    if el.value is not None:
        obj["#value"] = json_value(el.value)
    return obj


class _Repeat(list[Any]):
    _repeat = True


def json_value(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return v.hex().upper()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, list):
        return [json_value(x) for x in v]
    return v


def to_xml(schema: str, tree: Element) -> bytes | None:
    """Lexical XML of a decoded tree (through the codec's XML layer), or None."""
    try:
        return bytes(_codec(schema).tree_to_xml(tree))
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# Decoding


def _describe(schema: str, tree: Element, d: Decoded) -> None:
    if schema in ("din", "iso2") and tree.name == "V2G_Message":
        body = tree.find("Body")
        header = tree.find("Header")
        if header is not None:
            sid = header.find("SessionID")
            if sid is not None and isinstance(sid.value, (bytes, bytearray)):
                d.session_id = sid.value.hex().upper()
        msg = None
        if body is not None:
            for c in body.children:
                if isinstance(c, Element):
                    msg = c
                    break
        d.message = msg
        d.name = msg.name if msg is not None else "V2G_Message (empty Body)"
    else:
        d.message = tree
        d.name = tree.name
        header = tree.find("Header")
        if header is not None:
            sid = header.find("SessionID")
            if sid is not None and isinstance(sid.value, (bytes, bytearray)):
                d.session_id = sid.value.hex().upper()
    if d.message is not None:
        rc = d.message.find("ResponseCode")
        if rc is not None and rc.value is not None:
            d.response_code = str(rc.value)
        # the flattened values (Decoded.values) and the key fields (keyfields.key_fields) are
        # formed when first asked for: the timeline needs only the key fields, the dataset only
        # the values


def _decode_tolerant(codec: Any, payload: bytes, d: Decoded) -> Any:
    """Decode as real devices send: a value outside its facet that the bits carry (4 phases of
    1..3) is kept with a warning, whole bytes after the document's end are set aside; anything
    else raises as the strict decoder does."""
    data = payload
    lenient = False
    while True:  # at most three rounds: each tolerance is taken once
        try:
            if lenient:
                tree, d.facet_warnings = codec.decode_lenient(data)
                return tree
            return codec.decode(data)
        except Exception as exc:
            kind = type(exc).__name__
            if kind == "ExiFacetError" and not lenient:
                lenient = True
            elif kind == "ExiTrailingDataError" and data is payload and not any(payload[exc.end_byte:]):  # type: ignore[attr-defined]
                # zero bytes only, as padding: anything else is more likely a stream read with the
                # wrong grammar that stopped early (an AC message read as -20 CommonMessages)
                end = exc.end_byte  # type: ignore[attr-defined]
                d.trailing = bytes(payload[end:])
                data = payload[:end]
            else:
                raise


def decode_uncached(schema: str, payload: bytes) -> Decoded:
    d = Decoded(schema)
    reason = _codec_error if _codec_checked else codec_unavailable_reason()
    if reason is not None:
        d.error = reason
        return d
    try:
        tree = _decode_tolerant(_codec(schema), payload, d)
    except Exception as exc:  # ExiDecodeError (typed), or a codec bug: never crash
        d.error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
        d.bit_offset = getattr(exc, "bit_offset", None)
        d.path = getattr(exc, "path", None) or None
        return d
    if not isinstance(tree, Element):
        d.error = f"codec returned {type(tree).__name__}, not an element"
        return d
    d.tree = tree
    try:
        _describe(schema, tree, d)
    except Exception as exc:  # defensive: odd trees
        d.error = f"decoded, but the tree could not be read: {exc}"
    return d


class DecodeCache:
    """Bounded LRU memo of :func:`decode_uncached` (see module docstring)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._d: OrderedDict[tuple[str, bytes], Decoded] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def decode(self, schema: str, payload: bytes) -> Decoded:
        if self.size <= 0:
            self.misses += 1
            return decode_uncached(schema, payload)
        key = (schema, payload)
        d = self._d.get(key)
        if d is not None:
            self.hits += 1
            self._d.move_to_end(key)
            return d
        self.misses += 1
        d = decode_uncached(schema, payload)
        self._d[key] = d
        if len(self._d) > self.size:
            self._d.popitem(last=False)
        return d


_default_cache = DecodeCache()


def decode_payload(schema: str, payload: bytes, cache: DecodeCache | None = None) -> Decoded:
    """Decode one V2G payload with the given schema key (see module docstring)."""
    return (cache or _default_cache).decode(schema, payload)
