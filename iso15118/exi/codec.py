"""EXI encoder and decoder walking schema-informed grammars (EXI 1.0 sections 6 and 8).

The fast path goes straight between EXI bytes and :class:`~iso15118.exi.tree.Element`
trees with typed values; the XML text interface (``encode_xml`` / ``decode_xml``)
is layered on top of it in :mod:`iso15118.exi.xmlio`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from iso15118.exi import datatypes as D
from iso15118.exi.bits import BitReader, BitWriter
from iso15118.exi.cache import load_grammars
from iso15118.exi.errors import ExiDecodeError, ExiEncodeError, ExiError, ExiLimitError, ExiTrailingDataError
from iso15118.exi.facets import FacetWarning, facet_violations
from iso15118.exi.grammar import (
    AT,
    ATW,
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
    Prod,
    SchemaGrammars,
    State,
)
from iso15118.exi.tree import Element

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XSI_TYPE_KEY = f"{{{XSI_NS}}}type"
_XSI_NIL_KEY = f"{{{XSI_NS}}}nil"
_ANY_TYPE = (XSD_NS, "anyType")
_BOOLEAN = D.BooleanDT("boolean")
_CAST_EXPLICIT, _CAST_ANY = 1, 2  # how an undeclared element was cast (see _Encoder.undeclared)
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


def type_empty(g: Grammar) -> Grammar:
    """TypeEmpty of a type grammar (8.5.4.1.3): only its attribute uses and wildcards, then EE;
    the grammar an element with xsi:nil = true continues with. Derived from the normalized
    grammar (states reached from the start through AT productions; EE wherever the content
    could begin) and kept on the grammar once made."""
    te = g.type_empty
    if te is not None:
        return te
    te = Grammar(g.name + "#empty")
    made: dict[int, State] = {}

    def convert(st: State) -> State:
        ns = made.get(id(st))
        if ns is not None:
            return ns
        ns = made[id(st)] = State(te, len(te.states))
        te.states.append(ns)
        content = False
        for p in st.prods:
            if p.kind in (AT, ATW):
                ns.prods.append(Prod(p.kind, len(ns.prods), p.uri, p.local, p.dt, None, None, p.wild_uri))
            else:
                content = True
        for q, p in zip(ns.prods, [p for p in st.prods if p.kind in (AT, ATW)]):
            q.next = convert(p.next)  # type: ignore[arg-type]
        if content:
            ns.prods.append(Prod(EE, len(ns.prods)))
        ns.finish()
        ns.attr_phase = True
        return ns

    te.start = convert(g.start)  # type: ignore[arg-type]
    te.start.is_start = True
    te.content = te.start
    c2 = State(te, len(te.states))
    c2.prods = te.start.prods
    c2.finish()
    te.content2 = c2
    te.compute_leaf()
    g.type_empty = te
    return te


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

    def element(self, el: Element, g: Grammar, path: str = "", cast: int = 0) -> None:
        """Encode one element's content; ``path`` is only built when an error is raised.
        ``cast``: an undeclared element whose xsi:type cast is already written, to its own
        type (_CAST_EXPLICIT) or to xs:anyType (_CAST_ANY: xsi:nil is then an AT(*))."""
        try:
            self._element(el, g, cast)
        except ExiEncodeError as exc:
            exc.path = "/" + el.name + exc.path
            exc.args = (f"{exc.reason} (at {exc.path})",)
            raise

    def _element(self, el: Element, g: Grammar, cast: int = 0) -> None:
        path = ""
        w = self.w
        fast = self.formats is None  # the XML writer needs every element's datatype recorded
        facets = self.facets
        state: State = g.start  # type: ignore[assignment]
        fmt_attrs: dict[str, D.Datatype] | None = {} if self.formats is not None else None
        nil = False
        if el.attrs:
            xsi_type = el.attrs.get(_XSI_TYPE_KEY)
            if xsi_type is not None and not cast:
                uri, local = _split_key(xsi_type) if isinstance(xsi_type, str) else xsi_type
                _write_second_level(w, state, L2_XSI_TYPE)
                self.st.write_uri(w, uri)
                self.st.write_local(w, uri, local)
                tg = self.sg.type_grammars.get((uri, local))
                if tg is not None:
                    g = tg
                    state = g.start  # type: ignore[assignment]
                # else: a type no grammar exists for; the element keeps its own grammar (8.5.4.4.1)
            xsi_nil = el.attrs.get(_XSI_NIL_KEY)
            if xsi_nil is not None and cast != _CAST_ANY:
                # AT(xsi:nil) at level 2 with a Boolean value; true switches to TypeEmpty (8.5.4.1.3)
                try:
                    nil = _BOOLEAN.parse(xsi_nil) if isinstance(xsi_nil, str) else bool(xsi_nil)
                except ValueError:
                    raise ExiEncodeError(f"xsi:nil {xsi_nil!r} is not a boolean", path) from None
                if nil:  # the reference writes no xsi:nil = false
                    _write_second_level(w, state, L2_XSI_NIL)
                    w.bits(1, 1)
                if self.typify:
                    el.attrs[_XSI_NIL_KEY] = nil
                if fmt_attrs is not None:
                    fmt_attrs[_XSI_NIL_KEY] = _BOOLEAN
                if nil:
                    if el.children or el.value not in (None, ""):
                        raise ExiEncodeError(f"{el.name} has xsi:nil=true but content", path)
                    g = type_empty(g)
                    state = g.start  # type: ignore[assignment]
            for key in sorted(el.attrs, key=_attr_sort_key):
                if key == _XSI_TYPE_KEY or (key == _XSI_NIL_KEY and cast != _CAST_ANY):
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
            if (value is None or value == "") and el.children and all(isinstance(c, str) for c in el.children):
                # untyped character data in a typed element, as decoded from a CH at level 2 (the
                # reference writes a value its type cannot represent so: xs:int "abc", gYear 12345)
                if self.formats is not None:
                    self.formats[id(el)] = (None, fmt_attrs)
                for text in el.children:
                    _write_second_level(w, state, L2_CH)
                    D.write_string(w, text)  # type: ignore[arg-type]
                    state = g.content2 if state.attr_phase else state  # type: ignore[assignment]
                if state.ee is not None:
                    w.bits(state.ee.code, state.width)
                else:
                    _write_second_level(w, state, L2_EE)
                return
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
                    if not child.strip(" \t\r\n") and any(isinstance(c, Element) for c in children):
                        continue  # as the reference: whitespace-only text beside child elements is no CH
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
        element grammars allowed (EXI Profile, as the reference codec is set up), its start tag
        is an empty built-in grammar (0-bit first level; EE, AT(*), SE(*), CH at level 2) and the
        element is cast by an AT(*) xsi:type: to the element's own xsi:type when it names a type
        of the schema (a -20 or xmldsig type, or a built-in one like xs:int), else to xs:anyType.
        A type no grammar exists for is written first, as given, and then the anyType cast
        follows (the reference does both; the first leaves one learned production behind)."""
        # As the reference does it: the first element of a qname in the stream meets an empty
        # built-in start-tag grammar (0-bit first level); later ones of the same qname meet a
        # grammar with one first-level production, so the escape to level 2 costs one bit (1).
        repeat = (el.ns, el.name) in self.seen_undeclared
        self.seen_undeclared.add((el.ns, el.name))
        target = _ANY_TYPE
        cast = _CAST_ANY
        xsi_type = el.attrs.get(_XSI_TYPE_KEY)
        if xsi_type is not None:
            uri, local = _split_key(xsi_type) if isinstance(xsi_type, str) else xsi_type
            if (uri, local) in self.sg.type_grammars:
                target = (uri, local)
                cast = _CAST_EXPLICIT
            else:
                self._built_in_cast(uri, local, repeat)
                repeat = True  # the built-in grammar has learned its AT(xsi:type) production
        self._built_in_cast(target[0], target[1], repeat)
        # the cast's xsi:nil (and every other attribute) is an AT of the type grammar
        self.element(el, self.sg.type_grammars[target], cast=cast)

    def _built_in_cast(self, uri: str, local: str, repeat: bool) -> None:
        w = self.w
        if repeat:
            w.bits(1, 1)
        w.bits(1, 2)  # AT(*) in [EE, AT(*), SE(*), CH]
        self.st.write_uri(w, XSI_NS)
        self.st.write_local(w, XSI_NS, "type")
        self.st.write_uri(w, uri)
        self.st.write_local(w, uri, local)

    def root(self, el: Element, doc: DocGrammar, path: str = "") -> None:
        hit = doc.by_qname.get((el.ns, el.name))
        if hit is None:
            raise ExiEncodeError(f"{el.tag} is not a {'fragment' if doc.fragment else 'global'} element of schema {self.sg.key!r}")
        code, g = hit
        if g is None:
            self.w.bits(code, doc.width)
            self.relaxed(el, doc)
            return
        self.w.bits(code, doc.width)
        self.element(el, g)

    def relaxed(self, el: Element, doc: DocGrammar) -> None:
        """A fragment root whose qname is declared with different types (-2: ``eMAID``) under the
        relaxed element fragment grammar (EXI 8.5.3): ElementFragment_0 holds AT(A_i) for every
        attribute qname of the schema (sorted), AT(*), SE(F_j) for every fragment root, SE(*), EE
        and CH [untyped]; ElementFragment_1 the same without attributes.  Encoded here: attributes
        and character content (an element child raises).  Checked byte for byte against EXIficient."""
        if el.children:
            raise ExiEncodeError(f"{el.tag}: element content under the relaxed fragment grammar is not supported")
        attrs = _schema_attributes(self.sg)
        index = {qn: i for i, (qn, _) in enumerate(attrs)}
        m = len(doc.by_qname)
        n = len(attrs)
        w0 = (n + m + 4).bit_length()  # n + m + 4 productions + the escape to level 2 (strict = false)
        w1 = (m + 3).bit_length()
        w = self.w
        fmt_attrs: dict[str, D.Datatype] = {}
        if self.formats is not None:  # the XML writer: the value is untyped text
            self.formats[id(el)] = (D.UNTYPED, fmt_attrs)
        for key in sorted(el.attrs, key=_attr_sort_key):
            qn = _split_key(key)
            i = index.get(qn)
            if i is None:
                raise ExiEncodeError(f"{el.tag}: attribute {key!r} is not declared in schema {self.sg.key!r}")
            dt = attrs[i][1]
            fmt_attrs[key] = dt
            w.bits(i, w0)
            dt.encode(w, dt.check(_parse_if_text(dt, el.attrs[key]), self.facets))
        value = el.value
        if value is not None and value != "":
            w.bits(n + m + 3, w0)  # CH [untyped value]
            D.write_string(w, str(value))
            w.bits(m + 1, w1)  # EE in ElementFragment_1
        else:
            w.bits(n + m + 2, w0)  # EE in ElementFragment_0


_SCHEMA_ATTRIBUTES: dict[str, list[tuple[tuple[str, str], D.Datatype]]] = {}


def _schema_attributes(sg: SchemaGrammars) -> list[tuple[tuple[str, str], D.Datatype]]:
    """Every attribute qname of the schema's grammars, sorted (local name, then URI), with its
    datatype (untyped when its uses differ): the A_i of the relaxed fragment grammar."""
    cached = _SCHEMA_ATTRIBUTES.get(sg.key)
    if cached is not None:
        return cached
    found: dict[tuple[str, str], set[Any]] = {}
    seen: set[int] = set()
    todo: list[Any] = [*sg.type_grammars.values(), *sg.global_elements.values()]
    while todo:
        g = todo.pop()
        if g is None or id(g) in seen:
            continue
        seen.add(id(g))
        for st in getattr(g, "states", None) or ():
            for qn, p in st.at.items():
                found.setdefault(qn, set()).add(p.dt)
            for p in st.se.values():
                todo.append(p.child)
    out = [(qn, next(iter(dts)) if len(dts) == 1 else D.UNTYPED) for qn, dts in found.items()]
    out.sort(key=lambda a: (a[0][1], a[0][0]))
    _SCHEMA_ATTRIBUTES[sg.key] = out
    return out


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
                            # a type no grammar exists for: recorded; the built-in grammar goes on,
                            # with its AT(xsi:type) production learned (one first-level production)
                            el.attrs.setdefault(_XSI_TYPE_KEY, f"{{{turi}}}{tlocal}" if turi else tlocal)
                            repeat = True
                            continue
                        if (turi, tlocal) != _ANY_TYPE:
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
                return g, state  # no grammar for that type: the element's own grammar goes on (8.5.4.4.1)
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
            el.attrs[_XSI_NIL_KEY] = nil
            if _XSI_TYPE_KEY not in el.attrs and g is self.sg.type_grammars.get(_ANY_TYPE):
                el.attrs[_XSI_TYPE_KEY] = f"{{{XSD_NS}}}anyType"  # an explicit cast (the implicit one sends AT(*))
            if nil:
                te = type_empty(g)  # only attributes may follow, then EE
                return te, te.start
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


class _LenientReader(BitReader):
    """A reader whose n-bit datatypes keep values above their maxInclusive (listed here)."""

    __slots__ = ("lenient",)

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.lenient: list[Any] = []


class LenientDecode(NamedTuple):
    """What :meth:`Codec.decode_lenient` returns: the tree (an Element, or a list of them for a
    fragment) and the values in it outside their facets."""

    tree: Any
    warnings: list[FacetWarning]


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
        return self._decode(BitReader(bytes(data)), fragment)

    def decode_lenient(self, data: bytes, fragment: bool = False) -> LenientDecode:
        """Like :meth:`decode`, but a value outside its facets that the bits still carry (an
        n-bit integer above its maxInclusive) is kept: the result has the tree and one
        :class:`~iso15118.exi.facets.FacetWarning` per value outside a facet (integer ranges,
        lengths; found by a grammar walk over the tree, which costs about one encode). What the
        bits cannot carry (an enumeration index past the list) stays an :class:`ExiDecodeError`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        r = _LenientReader(bytes(data))
        tree = self._decode(r, fragment)
        try:
            return LenientDecode(tree, self.facet_warnings(tree, fragment))
        except ExiError:
            # a tree the grammar walk cannot follow (odd but decodable open content): the values
            # the n-bit fields kept, located by bit offset instead of element path
            return LenientDecode(tree, [FacetWarning(f"(bit {pos})", v, "maxInclusive", dt.max, dt.name)
                                        for dt, v, pos in r.lenient])

    def facet_warnings(self, tree: Any, fragment: bool = False) -> list[FacetWarning]:
        """The values of a tree outside the facets of their types (read by a grammar walk)."""
        formats: dict[Any, Any] = {}
        self._encode_body(_Encoder(self.sg, BitWriter(), formats, facets=False), tree, fragment)
        return facet_violations(tree, formats)

    def _decode(self, r: BitReader, fragment: bool) -> Any:
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
        raise ExiTrailingDataError(f"{left // 8} byte(s) left over after the end of the EXI document", r.pos,
                                   (r.pos + 7) // 8)


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
