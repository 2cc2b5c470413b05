"""Schema-informed EXI grammars: the runtime structures the encoder and decoder walk.

A :class:`Grammar` is a normalized element/type grammar (EXI 1.0 section 8.5.4):
a list of :class:`State` (non-terminals), each with its first-level productions in
event-code order.  Second-level (undeclared) productions of strict = false are not
stored as objects: they follow from a state's flags (see :mod:`iso15118.exi.codec`).

Grammars are built once from the XSDs by :mod:`iso15118.exi.builder` and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Production kinds (first level).
AT = 0  # AT(qname) [schema-typed value]
ATW = 1  # AT(uri:*) or AT(*) from an attribute wildcard
SE = 2  # SE(qname)
SEW = 3  # SE(uri:*) or SE(*) from a wildcard particle
EE = 4
CH = 5  # CH [schema-typed value]
CHU = 6  # CH [untyped value] (mixed content)

# Leaf shapes the decoder reads with one shift: CH code (1 bit), the value, EE code (1 bit).
LEAF_GENERIC = 1  # any other datatype: CH, value through the datatype, EE
LEAF_FIXED = 2  # n-bit integer, enumeration or boolean: leaf_bits bits
LEAF_SMALL_INT = 3  # signed integer whose magnitude fits one 7-bit group: sign + 8 bits
LEAF_SMALL_UINT = 4  # unsigned integer below 128: 8 bits

KIND_NAMES = {AT: "AT", ATW: "AT*", SE: "SE", SEW: "SE*", EE: "EE", CH: "CH", CHU: "CH~"}


class Prod:
    """One first-level production: event code ``code`` in its state."""

    __slots__ = ("kind", "code", "uri", "local", "dt", "next", "child", "wild_uri")

    def __init__(self, kind: int, code: int, uri: str = "", local: str = "", dt: Any = None,
                 next: State | None = None, child: Grammar | None = None, wild_uri: str | None = None) -> None:
        self.kind = kind
        self.code = code
        self.uri = uri
        self.local = local
        self.dt = dt  # Datatype for AT / CH
        self.next = next  # right-hand-side non-terminal (None after EE)
        self.child = child  # element grammar for SE
        self.wild_uri = wild_uri  # SEW/ATW: namespace, None = any

    def __repr__(self) -> str:
        what = f"{{{self.uri}}}{self.local}" if self.kind in (AT, SE) else (self.wild_uri or "*")
        if self.kind in (EE, CH, CHU):
            what = ""
        return f"{KIND_NAMES[self.kind]}({what})#{self.code}"


class State:
    """A non-terminal of a normalized grammar."""

    __slots__ = ("grammar", "index", "prods", "width", "at", "se", "sew", "atw", "ee", "ch",
                 "attr_phase", "is_start", "ee_first_level")

    def __init__(self, grammar: Grammar, index: int) -> None:
        self.grammar = grammar
        self.index = index
        self.prods: list[Prod] = []
        self.width = 0  # bits of a first-level event code (with the escape to level 2)
        self.at: dict[tuple[str, str], Prod] = {}
        self.se: dict[tuple[str, str], Prod] = {}
        self.sew: list[Prod] = []
        self.atw: list[Prod] = []
        self.ee: Prod | None = None
        self.ch: Prod | None = None
        self.attr_phase = False  # 0 <= j <= content (8.5.4.4.1)
        self.is_start = False
        self.ee_first_level = False

    def finish(self, second_level: bool = True) -> None:
        n = len(self.prods) + (1 if second_level else 0)
        self.width = (n - 1).bit_length() if n > 1 else 0
        for p in self.prods:
            if p.kind == AT:
                self.at[(p.uri, p.local)] = p
            elif p.kind == SE:
                self.se[(p.uri, p.local)] = p
            elif p.kind == SEW:
                self.sew.append(p)
            elif p.kind == ATW:
                self.atw.append(p)
            elif p.kind == EE:
                self.ee = p
                self.ee_first_level = True
            elif p.kind in (CH, CHU):
                self.ch = p

    def __repr__(self) -> str:
        return f"State({self.grammar.name}[{self.index}] {self.prods})"


class Grammar:
    """A normalized type grammar (element grammars share their type's grammar)."""

    __slots__ = ("name", "states", "start", "content", "content2", "simple_dt", "nillable", "type_empty", "leaf", "leaf_mode", "leaf_bits", "_lazy")
    _lazy: Callable[[Grammar], None] | None

    def __getattr__(self, attr: str) -> Any:
        # Grammars loaded from the cache are materialized on first use (see cache.py):
        # an unset slot lands here once, later accesses are plain slot reads.
        lazy = object.__getattribute__(self, "_lazy")
        if lazy is None:
            raise AttributeError(attr)
        self._lazy = None
        lazy(self)
        return object.__getattribute__(self, attr)

    def __init__(self, name: str) -> None:
        self._lazy = None
        self.name = name
        self.states: list[State] = []
        self.start: State | None = None
        self.content: State | None = None  # Element_i,content
        self.content2: State | None = None  # its copy for deviations (8.5.4.4.1)
        self.simple_dt: Any = None  # Datatype when the content is a simple type
        self.nillable = False
        self.type_empty: Grammar | None = None
        self.leaf: Any = None  # Datatype when the grammar is exactly "CH (1 bit), EE (1 bit)"
        self.leaf_mode = 0  # LEAF_* below: how the decoder may read such a leaf in one go
        self.leaf_bits = 0

    def compute_leaf(self) -> None:
        """Mark the common shape of a simple-typed element without attributes, which the
        encoder and decoder handle without walking states."""
        st = self.start
        self.leaf = None
        self.leaf_mode = 0
        self.leaf_bits = 0
        if st is not None and len(st.prods) == 1 and st.prods[0].kind == CH and st.width == 1:
            nxt = st.prods[0].next
            if nxt is not None and len(nxt.prods) == 1 and nxt.prods[0].kind == EE and nxt.width == 1:
                self.leaf = dt = st.prods[0].dt
                kind = dt.kind
                self.leaf_mode = LEAF_GENERIC
                if kind in ("nbit", "enum"):
                    self.leaf_mode, self.leaf_bits = LEAF_FIXED, dt.nbits
                elif kind == "boolean":
                    self.leaf_mode, self.leaf_bits = LEAF_FIXED, 1
                elif kind == "integer":
                    self.leaf_mode, self.leaf_bits = LEAF_SMALL_INT, 9
                elif kind == "unsigned":
                    self.leaf_mode, self.leaf_bits = LEAF_SMALL_UINT, 8

    def __repr__(self) -> str:
        return f"Grammar({self.name}, {len(self.states)} states)"


class DocGrammar:
    """Document (or fragment) grammar: the root elements by qname, sorted."""

    __slots__ = ("roots", "by_qname", "width", "fragment", "wild_code", "ed_code")

    def __init__(self, roots: Sequence[tuple[str, str, Grammar | None]], fragment: bool) -> None:
        self.roots = roots  # [(uri, local, grammar)] in event-code order
        self.by_qname = {(u, l): (i, g) for i, (u, l, g) in enumerate(roots)}
        n = len(roots)
        self.fragment = fragment
        self.wild_code = n  # SE(*)
        if fragment:
            self.ed_code = n + 1
            count = n + 2
        else:
            self.ed_code = -1
            count = n + 1
        self.width = (count - 1).bit_length() if count > 1 else 0


class SchemaGrammars:
    """Everything the codec needs for one schema key."""

    __slots__ = ("key", "document", "fragment", "uris", "local_names", "global_elements", "global_attributes",
                 "type_grammars", "namespaces")

    def __init__(self, key: str) -> None:
        self.key = key
        self.document: DocGrammar | None = None
        self.fragment: DocGrammar | None = None
        self.uris: list[str] = []  # initial URI partition
        self.local_names: dict[str, list[str]] = {}  # initial local-name partitions per uri
        self.global_elements: dict[tuple[str, str], Grammar] = {}
        self.global_attributes: dict[tuple[str, str], Any] = {}
        self.type_grammars: dict[tuple[str, str], Grammar] = {}  # named types, for xsi:type
        self.namespaces: dict[str, str] = {}  # prefix suggestions for XML output
