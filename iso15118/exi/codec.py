"""EXI encoder and decoder walking schema-informed grammars (EXI 1.0 sections 6 and 8).

The fast path goes straight between EXI bytes and :class:`~iso15118.exi.tree.Element`
trees with typed values; the XML text interface (``encode_xml`` / ``decode_xml``)
is layered on top of it in :mod:`iso15118.exi.xmlio`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from iso15118.exi import datatypes as D
from iso15118.exi.bits import BitReader, BitWriter
from iso15118.exi.cache import load_grammars
from iso15118.exi.errors import ExiDecodeError, ExiEncodeError, ExiError, ExiLimitError
from iso15118.exi.grammar import (
    AT,
    CH,
    CHU,
    EE,
    LEAF_FIXED,
    LEAF_GENERIC,
    LEAF_SMALL_INT,
    SE,
    SEW,
    DocGrammar,
    Grammar,
    SchemaGrammars,
    State,
)
from iso15118.exi.tree import Element

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XSI_TYPE_KEY = f"{{{XSI_NS}}}type"
_HEADER = 0x80  # '10' distinguishing bits, no options, final version 1

# Bounds that keep a hostile stream from costing unbounded time or memory.
MAX_DEPTH = 64
MAX_ELEMENTS = 200_000


# Second-level (undeclared) events of strict = false, default fidelity options (8.5.4.4.1).
L2_EE, L2_XSI_TYPE, L2_XSI_NIL, L2_AT_ANY, L2_AT_UNTYPED, L2_SE_ANY, L2_CH = range(7)


def second_level_events(state: State) -> list[int]:
    events = []
    if not state.ee_first_level:
        events.append(L2_EE)
    if state.attr_phase:
        if state.is_start:
            events += [L2_XSI_TYPE, L2_XSI_NIL]
        events += [L2_AT_ANY, L2_AT_UNTYPED]
    events += [L2_SE_ANY, L2_CH]
    return events


def _write_second_level(w: BitWriter, state: State, event: int) -> None:
    events = second_level_events(state)
    w.bits(len(state.prods), state.width)
    n = len(events)
    w.bits(events.index(event), (n - 1).bit_length() if n > 1 else 0)


class _StringTable:
    """The URI and local-name partitions of one stream (7.3); values are never hit
    because the value partition capacity is 0."""

    __slots__ = ("uris", "names", "_own")

    def __init__(self, sg: SchemaGrammars) -> None:
        self.uris = sg.uris
        self.names = sg.local_names
        self._own = False

    def _copy(self) -> None:
        if not self._own:
            self.uris = list(self.uris)
            self.names = {u: list(v) for u, v in self.names.items()}
            self._own = True

    # --- encoding
    def write_uri(self, w: BitWriter, uri: str) -> None:
        n = len(self.uris)
        width = n.bit_length()  # ceil(log2(n + 1))
        try:
            i = self.uris.index(uri)
        except ValueError:
            w.bits(0, width)
            D.write_plain_string(w, uri)
            self._copy()
            self.uris.append(uri)
            self.names.setdefault(uri, [])
            return
        w.bits(i + 1, width)

    def write_local(self, w: BitWriter, uri: str, local: str) -> None:
        part = self.names.get(uri, [])
        if local in part:
            w.uint(0)
            n = len(part)
            w.bits(part.index(local), (n - 1).bit_length() if n > 1 else 0)
            return
        w.uint(len(local) + 1)
        if local.isascii():
            w.raw_bytes(local.encode("ascii"))
        else:
            for ch in local:
                w.uint(ord(ch))
        self._copy()
        self.names.setdefault(uri, []).append(local)

    # --- decoding
    def read_uri(self, r: BitReader) -> str:
        n = len(self.uris)
        i = r.bits(n.bit_length())
        if i == 0:
            uri = D.read_chars(r, r.uint())
            self._copy()
            self.uris.append(uri)
            self.names.setdefault(uri, [])
            return uri
        if i - 1 >= n:
            raise ExiDecodeError(f"URI id {i - 1} not in the string table", r.pos)
        return self.uris[i - 1]

    def read_local(self, r: BitReader, uri: str) -> str:
        n = r.uint()
        part = self.names.get(uri, [])
        if n == 0:
            k = len(part)
            i = r.bits((k - 1).bit_length() if k > 1 else 0)
            if i >= k:
                raise ExiDecodeError(f"local-name id {i} not in the string table", r.pos)
            return part[i]
        local = D.read_chars(r, n - 1)
        self._copy()
        self.names.setdefault(uri, []).append(local)
        return local


def _parse_if_text(dt: D.Datatype, value: Any) -> Any:
    if isinstance(value, str) and dt.kind != "string":
        return dt.parse(value)
    return value


class _Encoder:
    __slots__ = ("sg", "w", "st", "formats", "facets", "typify", "seen_undeclared")

    def __init__(
        self, sg: SchemaGrammars, w: BitWriter, formats: dict[Any, Any] | None = None, facets: bool = True, typify: bool = False
    ) -> None:
        self.sg = sg
        self.w = w
        self.st = _StringTable(sg)
        self.formats = formats  # id(element) -> (value dt, {attr key: dt}) for the XML writer
        self.facets = facets  # check ranges and lengths (a decoded real-world message may break them)
        self.typify = typify  # store the checked typed values back into the tree (XML -> tree only)
        self.seen_undeclared: set[tuple[str, str]] = set()

    def element(self, el: Element, g: Grammar, path: str = "") -> None:
        """Encode one element's content; ``path`` is only built when an error is raised."""
        try:
            self._element(el, g)
        except ExiEncodeError as exc:
            exc.path = "/" + el.name + exc.path
            exc.args = (f"{exc.reason} (at {exc.path})",)
            raise

    def _element(self, el: Element, g: Grammar) -> None:
        path = ""
        w = self.w
        fast = self.formats is None  # the XML writer needs every element's datatype recorded
        facets = self.facets
        state: State = g.start  # type: ignore[assignment]
        fmt_attrs: dict[str, D.Datatype] | None = {} if self.formats is not None else None
        if el.attrs:
            xsi_type = el.attrs.get(_XSI_TYPE_KEY)
            if xsi_type is not None:
                uri, local = _split_key(xsi_type) if isinstance(xsi_type, str) else xsi_type
                tg = self.sg.type_grammars.get((uri, local))
                if tg is None:
                    raise ExiEncodeError(f"xsi:type {xsi_type!r} names no type of this schema", path)
                _write_second_level(w, state, L2_XSI_TYPE)
                self.st.write_uri(w, uri)
                self.st.write_local(w, uri, local)
                g = tg
                state = g.start  # type: ignore[assignment]
            for key in sorted(el.attrs, key=_attr_sort_key):
                if key == _XSI_TYPE_KEY:
                    continue
                uri, local = _split_key(key)
                value = el.attrs[key]
                p = state.at.get((uri, local))
                if p is not None:
                    try:
                        value = p.dt.check(_parse_if_text(p.dt, value), self.facets)
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        raise ExiEncodeError(f"attribute {local}: {exc}", path) from None
                    if self.typify:
                        el.attrs[key] = value
                    w.bits(p.code, state.width)
                    p.dt.encode(w, value)
                    if fmt_attrs is not None:
                        fmt_attrs[key] = p.dt
                    state = p.next  # type: ignore[assignment]
                    continue
                wp = _match_wild(state.atw, uri)
                if wp is None:
                    raise ExiEncodeError(f"attribute {key!r} is not allowed here", path)
                w.bits(wp.code, state.width)
                if wp.wild_uri is None:
                    self.st.write_uri(w, uri)
                self.st.write_local(w, uri, local)
                dt = self.sg.global_attributes.get((uri, local), D.UNTYPED)
                value = _parse_if_text(dt, value)
                dt.encode(w, value)
                if fmt_attrs is not None:
                    fmt_attrs[key] = dt
                state = wp.next  # type: ignore[assignment]
        if g.simple_dt is not None:
            p = state.ch
            if p is None:
                raise ExiEncodeError("character content is not allowed here", path)
            value = el.value
            if isinstance(value, str) and p.dt.kind != "string" and not value.strip(" \t\r\n"):
                value = None  # whitespace-only text of a typed value is no character event
            if (value is None or value == "") and not el.children:
                # no character event at all (as XML <a></a> gives): EE, at level 2 if need be
                if self.formats is not None:
                    self.formats[id(el)] = (p.dt, fmt_attrs)
                if state.ee is not None:
                    w.bits(state.ee.code, state.width)
                else:
                    _write_second_level(w, state, L2_EE)
                return
            try:
                value = p.dt.check(_parse_if_text(p.dt, value), self.facets)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise ExiEncodeError(f"value of {el.name}: {exc}", path) from None
            if self.typify:
                el.value = value
            if el.children:
                raise ExiEncodeError(f"{el.name} has simple content but child elements", path)
            w.bits(p.code, state.width)
            p.dt.encode(w, value)
            if self.formats is not None:
                self.formats[id(el)] = (p.dt, fmt_attrs)
            state = p.next  # type: ignore[assignment]
        else:
            if self.formats is not None:
                self.formats[id(el)] = (None, fmt_attrs)
            children = el.children
            if el.value not in (None, "") and not children:
                if isinstance(el.value, str) and g.content is not None and g.content.ch is not None:
                    children = [el.value]  # text-only content of a mixed type
                else:
                    raise ExiEncodeError(f"{el.name} has element-only content but a text value {el.value!r}", path)
            for child in children:
                if isinstance(child, str):
                    p = state.ch
                    if p is not None and p.kind == CHU:
                        w.bits(p.code, state.width)
                        D.write_string(w, child)
                        state = p.next  # type: ignore[assignment]
                        continue
                    if child.strip(" \t\r\n"):
                        raise ExiEncodeError(f"text {child[:20]!r} is not allowed in {el.name}", path)
                    continue
                p = state.se.get((child.ns, child.name))
                if p is not None:
                    w.bits(p.code, state.width)
                    cg = p.child
                    mode = cg.leaf_mode  # type: ignore[union-attr]
                    value = child.value
                    if mode and fast and not child.attrs and not child.children and value is not None and value != "":
                        # simple-typed child without attributes: CH (1 bit), value, EE (1 bit)
                        dt = cg.leaf  # type: ignore[union-attr]
                        try:
                            value = dt.check(_parse_if_text(dt, value), facets)
                        except (ValueError, TypeError, ArithmeticError) as exc:
                            raise ExiEncodeError(f"value of {child.name}: {exc}", "/" + child.name) from None
                        if self.typify:
                            child.value = value
                        if mode == LEAF_FIXED:
                            w.bits(dt.fixed_code(value) << 1, cg.leaf_bits + 2)  # type: ignore[union-attr]
                        else:
                            w.bits(0, 1)
                            dt.encode(w, value)
                            w.bits(0, 1)
                        state = p.next  # type: ignore[assignment]
                        continue
                    self.element(child, cg)  # type: ignore[arg-type]
                    state = p.next  # type: ignore[assignment]
                    continue
                wp = _match_wild(state.sew, child.ns)
                if wp is None:
                    expected = ", ".join(p2.local for p2 in state.prods if p2.kind == SE) or "end of element"
                    raise ExiEncodeError(f"element {child.name!r} is not expected here (expected: {expected})", path)
                w.bits(wp.code, state.width)
                if wp.wild_uri is None:
                    self.st.write_uri(w, child.ns)
                self.st.write_local(w, child.ns, child.name)
                cg = self.sg.global_elements.get((child.ns, child.name))
                if cg is None:
                    self.undeclared(child)
                else:
                    self.element(child, cg)
                state = wp.next  # type: ignore[assignment]
        p = state.ee
        if p is None:
            missing = ", ".join(p2.local for p2 in state.prods if p2.kind == SE) or "content"
            raise ExiEncodeError(f"{el.name} is incomplete: expected {missing}", path)
        w.bits(p.code, state.width)

    def undeclared(self, el: Element) -> None:
        """An element matched by a wildcard that has no global declaration. With no built-in
        element grammars allowed (EXI Profile, as the reference codec is set up), it is cast
        to xs:anyType: an AT(xsi:type) at level 2 of an empty built-in start-tag grammar
        (0-bit first level; EE, AT(*), SE(*), CH at level 2), then the anyType grammar."""
        w = self.w
        # As the reference does it: the first element of a qname in the stream meets an empty
        # built-in start-tag grammar (0-bit first level); later ones of the same qname meet a
        # grammar with one first-level production, so the escape to level 2 costs one bit (1).
        if (el.ns, el.name) in self.seen_undeclared:
            w.bits(1, 1)
        else:
            self.seen_undeclared.add((el.ns, el.name))
        w.bits(1, 2)  # AT(*) in [EE, AT(*), SE(*), CH]
        self.st.write_uri(w, XSI_NS)
        self.st.write_local(w, XSI_NS, "type")
        self.st.write_uri(w, XSD_NS)
        self.st.write_local(w, XSD_NS, "anyType")
        attrs = {k: v for k, v in el.attrs.items() if k != _XSI_TYPE_KEY}
        saved = el.attrs
        el.attrs = attrs
        try:
            self.element(el, self.sg.type_grammars[(XSD_NS, "anyType")])
        finally:
            el.attrs = saved

    def root(self, el: Element, doc: DocGrammar, path: str = "") -> None:
        hit = doc.by_qname.get((el.ns, el.name))
        if hit is None:
            raise ExiEncodeError(f"{el.tag} is not a {'fragment' if doc.fragment else 'global'} element of schema {self.sg.key!r}")
        code, g = hit
        if g is None:
            raise ExiEncodeError(f"{el.tag} needs the relaxed element fragment grammar, which is not supported")
        self.w.bits(code, doc.width)
        self.element(el, g)


def _match_wild(prods: list[Any], uri: str) -> Any:
    for p in prods:
        if p.wild_uri is None or p.wild_uri == uri:
            return p
    return None


def _split_key(key: str) -> tuple[str, str]:
    if key and key[0] == "{":
        uri, _, local = key[1:].partition("}")
        return uri, local
    return "", key


def _attr_sort_key(key: str) -> tuple[str, str]:
    uri, local = _split_key(key)
    return (local, uri)


class _Decoder:
    __slots__ = ("sg", "r", "st", "count", "seen_undeclared")

    def __init__(self, sg: SchemaGrammars, r: BitReader) -> None:
        self.sg = sg
        self.r = r
        self.st = _StringTable(sg)
        self.count = 0
        self.seen_undeclared: set[tuple[str, str]] = set()

    def _count_element(self, depth: int) -> None:
        """The bounds on a hostile stream: nesting depth and number of elements."""
        if depth > MAX_DEPTH:
            raise ExiLimitError(f"nesting deeper than {MAX_DEPTH}", self.r.pos)
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise ExiLimitError(f"more than {MAX_ELEMENTS} elements", self.r.pos)

    def element(self, ns: str, name: str, g: Grammar, depth: int, into: Element | None = None) -> Element:
        """Decode one element's content. The element path of an error is added on the
        way out (in the ``except`` below), so the happy path builds no path strings."""
        self._count_element(depth)
        r = self.r
        bits = r.bits
        val = r._val
        end = r.end
        small = r.bits == r._bits_small
        el = Element(ns, name) if into is None else into
        state: State = g.start  # type: ignore[assignment]
        try:
            while True:
                code = bits(state.width)
                prods = state.prods
                if code < len(prods):
                    p = prods[code]
                    kind = p.kind
                    if kind == SE:
                        cg = p.child
                        mode = cg.leaf_mode  # type: ignore[union-attr]
                        if mode:
                            # simple-typed child without attributes: CH (1 bit), value, EE (1 bit)
                            start = r.pos
                            if mode != LEAF_GENERIC and small:
                                n = cg.leaf_bits + 2  # type: ignore[union-attr]
                                e = start + n
                                if e <= end:
                                    chunk = (val >> (end - e)) & ((1 << n) - 1)
                                    if not (chunk >> (n - 1)) and not (chunk & 1):
                                        x = chunk >> 1
                                        if mode == LEAF_FIXED:
                                            v = cg.leaf.fixed_value(x)  # type: ignore[union-attr]
                                            ok = v is not None
                                        elif mode == LEAF_SMALL_INT:
                                            b = x & 0xFF  # one 7-bit group: no continuation bit
                                            ok = b < 128
                                            v = -b - 1 if x >> 8 else b
                                        else:
                                            ok = x < 128
                                            v = x
                                        if ok:
                                            r.pos = e
                                            self.count += 1
                                            el.children.append(Element(p.uri, p.local, None, None, v))
                                            state = p.next  # type: ignore[assignment]
                                            continue
                            if bits(1) == 0:
                                v = cg.leaf.decode(r)  # type: ignore[union-attr]
                                if bits(1) == 0:
                                    self.count += 1
                                    el.children.append(Element(p.uri, p.local, None, None, v))
                                    state = p.next  # type: ignore[assignment]
                                    continue
                            r.pos = start  # a deviation: take the general path
                        el.children.append(self.element(p.uri, p.local, cg, depth + 1))  # type: ignore[arg-type]
                    elif kind == CH:
                        el.value = p.dt.decode(r)
                    elif kind == AT:
                        el.attrs[p.local if not p.uri else f"{{{p.uri}}}{p.local}"] = p.dt.decode(r)
                    elif kind == EE:
                        return el
                    elif kind == CHU:
                        el.children.append(D.read_string(r))
                    elif kind == SEW:
                        uri = p.wild_uri if p.wild_uri is not None else self.st.read_uri(r)
                        local = self.st.read_local(r, uri)
                        cg = self.sg.global_elements.get((uri, local))
                        if cg is None:
                            el.children.append(self.undeclared(uri, local, depth + 1))
                        else:
                            el.children.append(self.element(uri, local, cg, depth + 1))
                    else:  # ATW
                        uri = p.wild_uri if p.wild_uri is not None else self.st.read_uri(r)
                        local = self.st.read_local(r, uri)
                        dt = self.sg.global_attributes.get((uri, local), D.UNTYPED)
                        el.attrs[local if not uri else f"{{{uri}}}{local}"] = dt.decode(r)
                    state = p.next  # type: ignore[assignment]
                    if state is None:
                        return el
                    continue
                if code > len(prods):
                    raise ExiDecodeError(f"event code {code} out of range in {g.name}", r.pos)
                g, state = self._second_level(el, g, state, depth)  # type: ignore[assignment]
                if state is None:
                    return el
        except ExiDecodeError as exc:
            exc.path = "/" + name + exc.path
            exc.args = (f"{exc.reason} (bit {exc.bit_offset}, at {exc.path})",)
            raise

    def undeclared(self, ns: str, name: str, depth: int) -> Element:
        """An element with no global declaration: a built-in element grammar that never learns
        (no built-in productions allowed), unless an xsi:type cast switches to a schema type."""
        self._count_element(depth)
        r = self.r
        el = Element(ns, name)
        in_content = False
        repeat = (ns, name) in self.seen_undeclared
        self.seen_undeclared.add((ns, name))
        try:
            while True:
                if not in_content and repeat:
                    # a qname seen before in this stream: one first-level production, then the
                    # escape (see _Encoder.undeclared); that production is never written by the
                    # reference in this configuration
                    if r.bits(1) == 0:
                        raise ExiDecodeError("learned built-in production is not supported", r.pos)
                    repeat = False
                    ev = r.bits(2)
                elif not in_content:
                    ev = r.bits(2)  # StartTagContent: EE, AT(*), SE(*), CH
                else:
                    ev = 0 if r.bits(1) == 0 else 2 + r.bits(1)  # ElementContent: EE | SE(*), CH
                if ev == 0:
                    return el
                if ev == 1:
                    uri = self.st.read_uri(r)
                    local = self.st.read_local(r, uri)
                    if uri == XSI_NS and local == "type":
                        turi = self.st.read_uri(r)
                        tlocal = self.st.read_local(r, turi)
                        tg = self.sg.type_grammars.get((turi, tlocal))
                        if tg is None:
                            raise ExiDecodeError(f"xsi:type {{{turi}}}{tlocal} names no type of this schema", r.pos)
                        if (turi, tlocal) != (XSD_NS, "anyType"):
                            el.attrs[_XSI_TYPE_KEY] = f"{{{turi}}}{tlocal}"
                        return self.element(ns, name, tg, depth, into=el)
                    dt = self.sg.global_attributes.get((uri, local), D.UNTYPED)
                    el.attrs[local if not uri else f"{{{uri}}}{local}"] = dt.decode(r)
                elif ev == 2:
                    uri = self.st.read_uri(r)
                    local = self.st.read_local(r, uri)
                    cg = self.sg.global_elements.get((uri, local))
                    el.children.append(self.undeclared(uri, local, depth + 1) if cg is None
                                       else self.element(uri, local, cg, depth + 1))
                    in_content = True
                else:
                    el.children.append(D.read_string(r))
                    in_content = True
        except ExiDecodeError as exc:
            exc.path = "/" + name + exc.path
            exc.args = (f"{exc.reason} (bit {exc.bit_offset}, at {exc.path})",)
            raise

    def _second_level(self, el: Element, g: Grammar, state: State, depth: int) -> tuple[Grammar, State | None]:
        """Undeclared productions of strict = false (8.5.4.4.1), default fidelity options.
        Returns the grammar in force (xsi:type may switch it) and the next state (None: EE)."""
        r = self.r
        events = second_level_events(state)
        n = len(events)
        i = r.bits((n - 1).bit_length() if n > 1 else 0)
        if i >= n:
            raise ExiDecodeError("second-level event code out of range", r.pos)
        ev = events[i]
        if ev == L2_EE:
            return g, None
        if ev == L2_CH:
            el.children.append(D.read_string(r))
            return g, (g.content2 if state.attr_phase else state)
        if ev == L2_XSI_TYPE:
            uri = self.st.read_uri(r)
            local = self.st.read_local(r, uri)
            tg = self.sg.type_grammars.get((uri, local))
            el.attrs[_XSI_TYPE_KEY] = f"{{{uri}}}{local}" if uri else local
            if tg is None:
                raise ExiDecodeError(f"xsi:type {{{uri}}}{local} names no type of this schema", r.pos)
            return tg, tg.start
        if ev == L2_AT_ANY:
            uri = self.st.read_uri(r)
            local = self.st.read_local(r, uri)
            dt = self.sg.global_attributes.get((uri, local), D.UNTYPED)
            el.attrs[local if not uri else f"{{{uri}}}{local}"] = dt.decode(r)
            return g, state
        if ev == L2_AT_UNTYPED:
            decl = [p for p in state.prods if p.kind == AT]
            k = len(decl) + 1
            j = r.bits((k - 1).bit_length() if k > 1 else 0)
            if j < len(decl):
                p = decl[j]
                el.attrs[p.local if not p.uri else f"{{{p.uri}}}{p.local}"] = D.read_string(r)
                return g, p.next
            uri = self.st.read_uri(r)
            local = self.st.read_local(r, uri)
            el.attrs[local if not uri else f"{{{uri}}}{local}"] = D.read_string(r)
            return g, state
        if ev == L2_XSI_NIL:
            nil = r.bits(1) == 1
            el.attrs[f"{{{XSI_NS}}}nil"] = nil
            if nil:
                # TypeEmpty: only attributes may follow, then EE (attributes are not supported here)
                code = r.bits(state.width)
                ee = state.ee
                if ee is not None and code == ee.code:
                    return g, None
                raise ExiDecodeError("content after xsi:nil=true is not supported", r.pos)
            return g, state
        # L2_SE_ANY: an element the schema does not allow here
        uri = self.st.read_uri(r)
        local = self.st.read_local(r, uri)
        cg = self.sg.global_elements.get((uri, local))
        el.children.append(self.undeclared(uri, local, depth + 1) if cg is None else self.element(uri, local, cg, depth + 1))
        return g, (g.content2 if state.attr_phase else state)

    def root(self, doc: DocGrammar) -> Element:
        r = self.r
        code = r.bits(doc.width)
        if code >= len(doc.roots):
            raise ExiDecodeError("SE(*) or ED where a declared root element was expected", r.pos, "/")
        uri, local, g = doc.roots[code]
        if g is None:
            raise ExiDecodeError(f"{local} needs the relaxed element fragment grammar, which is not supported", r.pos)
        return self.element(uri, local, g, 0)


class Codec:
    """Encoder/decoder for one schema key. Thread-safe; grammars are shared."""

    def __init__(self, sg: SchemaGrammars) -> None:
        self.sg = sg
        self.key = sg.key
        self.fast: Any = load_fast(sg.key)
        """The generated codec of this schema (``iso15118/exi/_fast_<key>.py``), or None."""

    # ----------------------------------------------------------------- fast path
    def encode(self, root: Element | Iterable[Element], fragment: bool = False, validate: bool = True) -> bytes:
        """Element tree -> EXI stream (header + body). A fragment takes one or more roots.
        The caller's tree is left as it was (lexical values are parsed, not written back).

        ``validate=False`` skips the facet checks (ranges, lengths) that the EXI representation
        does not need, e.g. to re-encode a decoded real-world message that breaks them.

        Documents go through the generated codec first; whatever it does not handle (see
        ``iso15118/exi/fastrt.py``) is encoded by the generic one, the reference."""
        fast = self.fast
        if fast is not None and not fragment and root.__class__ is Element:
            try:
                return fast.encode(root)  # type: ignore[no-any-return]
            except Exception:  # noqa: BLE001 - anything it does not handle: the reference decides
                pass
        return self.encode_generic(root, fragment, validate)

    def encode_generic(self, root: Element | Iterable[Element], fragment: bool = False, validate: bool = True) -> bytes:
        """:meth:`encode` by the generic codec alone (the reference the generated one is tested against)."""
        w = BitWriter()
        w.bits(_HEADER, 8)
        enc = _Encoder(self.sg, w, facets=validate)
        self._encode_body(enc, root, fragment)
        return w.getvalue()

    def _encode_body(self, enc: _Encoder, root: Any, fragment: bool) -> None:
        try:
            if fragment:
                doc = self.sg.fragment
                roots = [root] if isinstance(root, Element) else list(root)
                for el in roots:
                    enc.root(el, doc)  # type: ignore[arg-type]
                enc.w.bits(doc.ed_code, doc.width)  # type: ignore[union-attr]
            else:
                if not isinstance(root, Element):
                    raise ExiEncodeError("a document has exactly one root element")
                enc.root(root, self.sg.document)  # type: ignore[arg-type]
        except ExiError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise ExiEncodeError(f"cannot encode: {type(exc).__name__}: {exc}") from exc

    def decode(self, data: bytes, fragment: bool = False) -> Any:
        """EXI stream -> Element (a document) or list[Element] (a fragment).

        Documents go through the generated codec first; a stream it does not handle, or cannot
        decode, is decoded by the generic codec, which gives the typed error of record."""
        fast = self.fast
        if fast is not None and not fragment and data.__class__ is bytes and len(data) <= FAST_MAX_BYTES:
            try:
                return fast.decode(data)
            except Exception:  # noqa: BLE001 - anything it does not handle: the reference decides
                pass
        return self.decode_generic(data, fragment)

    def decode_generic(self, data: bytes, fragment: bool = False) -> Any:
        """:meth:`decode` by the generic codec alone (the reference the generated one is tested against)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        data = bytes(data)
        r = BitReader(data)
        try:
            self._header(r)
            dec = _Decoder(self.sg, r)
            if fragment:
                doc = self.sg.fragment
                out: list[Element] = []
                while True:
                    code = r.bits(doc.width)  # type: ignore[union-attr]
                    if code == doc.ed_code:  # type: ignore[union-attr]
                        _check_end(r)
                        return out
                    if code >= len(doc.roots):  # type: ignore[union-attr]
                        raise ExiDecodeError("SE(*) in a fragment is not supported", r.pos, "/")
                    uri, local, g = doc.roots[code]  # type: ignore[union-attr]
                    if g is None:
                        raise ExiDecodeError(f"{local} needs the relaxed element fragment grammar", r.pos, "/")
                    out.append(dec.element(uri, local, g, 0))
                    if len(out) > MAX_ELEMENTS:
                        raise ExiLimitError("too many fragment roots", r.pos)
            root = dec.root(self.sg.document)  # type: ignore[arg-type]
            _check_end(r)
            return root
        except ExiError:
            raise
        except RecursionError:
            raise ExiLimitError("nesting too deep", r.pos) from None
        except (IndexError, ValueError, KeyError, OverflowError, TypeError, ArithmeticError) as exc:
            raise ExiDecodeError(f"malformed stream: {type(exc).__name__}: {exc}", r.pos) from None

    @staticmethod
    def _header(r: BitReader) -> None:
        if r.end < 8:
            raise ExiDecodeError("stream shorter than the EXI header", 0)
        b = r.bits(8)
        if b == 0x24:  # '$EXI' cookie
            raise ExiDecodeError("EXI cookie is not used by ISO 15118", 0)
        if b >> 6 != 0b10:
            raise ExiDecodeError(f"not an EXI stream (header byte 0x{b:02x})", 0)
        if b & 0x20:
            raise ExiDecodeError("EXI options in the header are not supported (ISO 15118 sends none)", 2)
        if b & 0x1F != 0:
            raise ExiDecodeError(f"unsupported EXI version field 0x{b & 0x1F:02x}", 3)

    # ----------------------------------------------------------------- XML interface
    def encode_xml(self, xml: bytes | str, fragment: bool = False, validate: bool = True) -> bytes:
        from iso15118.exi.xmlio import parse_xml

        return self.encode(parse_xml(xml, fragment), fragment, validate)

    def decode_xml(self, data: bytes, fragment: bool = False) -> bytes:
        return self.tree_to_xml(self.decode(data, fragment), fragment)

    def xml_to_tree(self, xml: bytes | str, fragment: bool = False, validate: bool = True) -> Any:
        """XML text -> Element tree with typed values (checked against the grammar)."""
        from iso15118.exi.xmlio import parse_xml

        tree = parse_xml(xml, fragment)
        w = BitWriter()
        self._encode_body(_Encoder(self.sg, w, facets=validate, typify=True), tree, fragment)
        return tree

    def tree_to_xml(self, root: Any, fragment: bool = False) -> bytes:
        from iso15118.exi.xmlio import write_xml

        formats: dict[Any, Any] = {}
        w = BitWriter()
        self._encode_body(_Encoder(self.sg, w, formats, facets=False, typify=True), root, fragment)
        return write_xml(root, formats, fragment)


def _check_end(r: BitReader) -> None:
    """After EndDocument only the padding of the last byte may follow (fewer than 8 bits,
    as in every stream of the reference corpus); whole bytes left over are an error."""
    left = r.end - r.pos
    if left >= 8:
        raise ExiDecodeError(f"{left // 8} byte(s) left over after the end of the EXI document", r.pos)


# The generated codec reads the stream as one int: it takes streams up to this size (far above
# any V2G message); each event reads at least one bit, so MAX_ELEMENTS and the string / binary
# limits cannot be reached below it.
FAST_MAX_BYTES = 16384


def load_fast(key: str) -> Any:
    """The generated codec module of schema ``key``, or None when it is switched off
    (``ISO15118_EXI_GENERIC=1``), missing, or generated from other XSDs than the vendored ones."""
    import os

    if os.environ.get("ISO15118_EXI_GENERIC", "") not in ("", "0"):
        return None
    try:
        mod = _fast_module(key)
    except ImportError:
        return None
    if getattr(mod, "GRAMMAR_DIGEST", None) != grammar_digest():
        return None
    return mod


def _fast_module(key: str) -> Any:
    """Imports spelled out (the layer test reads them): one generated module per schema key."""
    if key == "sap":
        from iso15118.exi import _fast_sap

        return _fast_sap
    elif key == "common":
        from iso15118.exi import _fast_common

        return _fast_common
    elif key == "ac":
        from iso15118.exi import _fast_ac

        return _fast_ac
    elif key == "dc":
        from iso15118.exi import _fast_dc

        return _fast_dc
    elif key == "acdp":
        from iso15118.exi import _fast_acdp

        return _fast_acdp
    elif key == "wpt":
        from iso15118.exi import _fast_wpt

        return _fast_wpt
    elif key == "xmldsig":
        from iso15118.exi import _fast_xmldsig

        return _fast_xmldsig
    elif key == "iso2":
        from iso15118.exi import _fast_iso2

        return _fast_iso2
    elif key == "din":
        from iso15118.exi import _fast_din

        return _fast_din
    raise ImportError(f"no generated codec for schema key {key!r}")


_digest: list[str] = []


def grammar_digest() -> str:
    """What the grammars are made of: the builder's code and the vendored XSDs (the grammar
    cache's key). A generated module made from anything else is not used."""
    if not _digest:
        from iso15118.exi.cache import _code_digest
        from iso15118.exi.schemas import schema_digest

        _digest.append(f"{_code_digest()}-{schema_digest()}")
    return _digest[0]


_codecs: dict[str, Codec] = {}
_lock = threading.Lock()


def get_codec(key: str) -> Codec:
    c = _codecs.get(key)
    if c is None:
        with _lock:
            c = _codecs.get(key)
            if c is None:
                c = Codec(load_grammars(key))
                _codecs[key] = c
    return c
