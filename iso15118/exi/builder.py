"""Build schema-informed EXI grammars from the XSDs (EXI 1.0 section 8.5).

Proto-grammars are built as a small NFA per type (attribute-use grammars, then
the content particle tree, 8.5.4.1), normalized by epsilon closure and subset
construction (8.5.4.2: every normalized non-terminal is a union of proto
non-terminals), and event codes are assigned in the order of 8.5.4.3.
"""

from __future__ import annotations

from typing import Any

from iso15118.exi import datatypes as D
from iso15118.exi.grammar import AT, ATW, CH, CHU, EE, SE, SEW, DocGrammar, Grammar, Prod, SchemaGrammars, State

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

_INTEGER_NAMES = {
    "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short", "byte",
    "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte", "positiveInteger",
}
_STRINGISH = {
    "string", "normalizedString", "token", "language", "Name", "NCName", "ID", "IDREF", "IDREFS", "ENTITY",
    "ENTITIES", "NMTOKEN", "NMTOKENS", "anyURI", "QName", "NOTATION", "duration", "anySimpleType",
}

_DATE_TIME_NAMES = {"date", "dateTime", "time", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth"}

# Built-in type names pre-populating the XML Schema namespace's local names (Appendix D.3).
XSD_TYPE_NAMES = sorted([
    "ENTITIES", "ENTITY", "ID", "IDREF", "IDREFS", "NCName", "NMTOKEN", "NMTOKENS", "NOTATION", "Name", "QName",
    "anySimpleType", "anyType", "anyURI", "base64Binary", "boolean", "byte", "date", "dateTime", "decimal",
    "double", "duration", "float", "gDay", "gMonth", "gMonthDay", "gYear", "gYearMonth", "hexBinary", "int",
    "integer", "language", "long", "negativeInteger", "nonNegativeInteger", "nonPositiveInteger",
    "normalizedString", "positiveInteger", "short", "string", "time", "token", "unsignedByte", "unsignedInt",
    "unsignedLong", "unsignedShort",
])


def _split(clark: str | None) -> tuple[str, str]:
    if not clark:
        return "", ""
    if clark[0] == "{":
        uri, _, local = clark[1:].partition("}")
        return uri, local
    return "", clark


def _is_wildcard(p: Any) -> bool:
    return type(p).__name__ == "XsdAnyElement"


def _builtin_chain(st: Any) -> list[str]:
    """Local names of the built-in types this simple type derives from, nearest first."""
    names = []
    t = st
    seen = 0
    while t is not None and seen < 64:
        seen += 1
        name = getattr(t, "name", None)
        if name and name.startswith("{" + XSD_NS + "}"):
            names.append(name.split("}")[1])
        t = getattr(t, "base_type", None)
    return names


class Builder:
    def __init__(self, key: str, xsd: Any) -> None:
        self.key = key
        self.xsd = xsd
        self.maps = xsd.maps
        self.dts: dict[int, D.Datatype] = {}
        self.grammars: dict[int, Grammar] = {}
        self.pending: list[tuple[Any, Grammar]] = []
        self.sg_members: dict[str, list[Any]] = {}
        for head, members in self.maps.substitution_groups.items():
            self.sg_members[head] = list(members)

    # ------------------------------------------------------------------ datatypes
    def datatype(self, st: Any) -> D.Datatype:
        dt = self.dts.get(id(st))
        if dt is None:
            dt = self._make_datatype(st)
            self.dts[id(st)] = dt
        return dt

    def _make_datatype(self, st: Any) -> D.Datatype:
        name = _split(getattr(st, "name", None))[1] or "anonymous"
        if getattr(st, "is_list", lambda: False)():
            item = getattr(st, "item_type", None)
            return D.ListDT(name, self.datatype(item) if item is not None else D.StringDT("string"))
        if getattr(st, "is_union", lambda: False)():
            return D.StringDT(name)
        chain = _builtin_chain(st)
        prim = chain[-1] if chain else "string"
        for cand in chain:
            if cand in _INTEGER_NAMES:
                prim = "integer"
                break
        enum = getattr(st, "enumeration", None)
        if enum and prim not in ("QName", "NOTATION"):
            base = self.datatype(st.base_type) if getattr(st, "base_type", None) is not None else D.StringDT()
            values = [self._lexical(v, base) for v in enum]
            return D.EnumDT(name, values, base)
        if prim == "boolean":
            return D.BooleanDT(name)
        if prim in ("base64Binary", "hexBinary"):
            return D.BinaryDT(name, hex=prim == "hexBinary", min_length=getattr(st, "min_length", None),
                              max_length=getattr(st, "max_length", None))
        if prim == "integer":
            lo = getattr(st, "min_value", None)
            hi = getattr(st, "max_value", None)
            lo = int(lo) if lo is not None else None
            hi = int(hi) if hi is not None else None
            if lo is not None and hi is not None and hi - lo + 1 <= 4096:
                return D.NBitDT(name, lo, hi)
            if lo is not None and lo >= 0:
                return D.UnsignedDT(name, lo, hi)
            return D.IntegerDT(name, lo, hi)
        if prim == "decimal":
            return D.DecimalDT(name, getattr(st, "min_value", None), getattr(st, "max_value", None))
        if prim in ("float", "double"):
            return D.FloatDT(name)
        if prim in _DATE_TIME_NAMES:
            return D.DateTimeDT(name, prim)
        if prim in _STRINGISH:
            return D.StringDT(name, getattr(st, "min_length", None), getattr(st, "max_length", None))
        raise NotImplementedError(f"datatype {prim} ({name}) is not supported")

    @staticmethod
    def _lexical(v: Any, base: D.Datatype) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (bytes, bytearray)):
            return base.format(bytes(v))
        return str(v)

    # ------------------------------------------------------------------ grammars
    def grammar_for_type(self, t: Any, name: str) -> Grammar:
        g = self.grammars.get(id(t))
        if g is None:
            g = Grammar(name)
            self.grammars[id(t)] = g
            self.pending.append((t, g))
        return g

    def element_grammar(self, el: Any) -> Grammar:
        t = el.type
        g = self.grammar_for_type(t, _split(el.name)[1])
        if getattr(el, "nillable", False):
            g.nillable = True
        return g

    def run_pending(self) -> None:
        while self.pending:
            t, g = self.pending.pop()
            self._build_type(t, g)

    def _build_type(self, t: Any, g: Grammar) -> None:
        nfa = _NFA()
        final = nfa.new()
        nfa.add(final, ("EE",), None)
        if getattr(t, "is_simple", lambda: False)():
            dt = self.datatype(t)
            g.simple_dt = dt
            c0 = nfa.new()
            nfa.add(c0, ("CH",), final, payload=dt)
            content_start = c0
            attr_uses: list[Any] = []
            attr_wild = None
        else:
            attr_uses = []
            attr_wild = None
            for aname, attr in t.attributes.items():
                if aname is None:
                    attr_wild = attr
                    continue
                if getattr(attr, "use", "optional") == "prohibited":
                    continue
                attr_uses.append(attr)
            first_content_state = len(nfa.prods)
            if t.has_simple_content():
                st = t.content
                dt = self.datatype(st)
                g.simple_dt = dt
                c0 = nfa.new()
                nfa.add(c0, ("CH",), final, payload=dt)
                content_start = c0
            elif t.is_empty() or t.content is None or (hasattr(t.content, "__len__") and len(t.content) == 0 and
                                                       getattr(t.content, "model", None) is not None):
                content_start = final
                if t.mixed:
                    pass
            else:
                order: dict[int, int] = {}
                self._leaf_order(t.content, order)
                content_start = self._particle(nfa, t.content, final, order)
            if t.mixed and g.simple_dt is None:
                for s in list(range(first_content_state, len(nfa.prods))) + [final]:
                    nfa.add(s, ("CHU",), s)
        # attribute-use grammars, sorted by local name then uri (8.5.4.1.3.2)
        nxt = content_start
        wild_terms: list[tuple[Any, ...]] = []
        if attr_wild is not None:
            wild_terms = self._wild_terms(attr_wild, "ATW")
        attr_starts = []
        if attr_wild is not None:
            w0 = nfa.new()
            nfa.add(w0, None, nxt)
            attr_starts.append(w0)
            nxt = w0
        for attr in sorted(attr_uses, key=lambda a: (_split(a.name)[1], _split(a.name)[0]))[::-1]:
            a0 = nfa.new()
            uri, local = _split(attr.name)
            nfa.add(a0, ("AT", uri, local), nxt, payload=self.datatype(attr.type))
            if getattr(attr, "use", "optional") != "required":
                nfa.add(a0, None, nxt)
            attr_starts.append(a0)
            nxt = a0
        for s in attr_starts:
            for term in wild_terms:
                nfa.add(s, term, s)
        self._normalize(nfa, nxt, content_start, g)

    def _leaf_order(self, particle: Any, order: dict[int, int]) -> None:
        if hasattr(particle, "model"):
            for p in particle:
                self._leaf_order(p, order)
        else:
            if id(particle) not in order:
                order[id(particle)] = len(order)

    def _wild_terms(self, wild: Any, kind: str) -> list[tuple[Any, ...]]:
        ns = getattr(wild, "namespace", ["##any"])
        ns = list(ns) if not isinstance(ns, str) else ns.split()
        not_ns = getattr(wild, "not_namespace", ())
        if not ns or "##any" in ns or "##other" in ns or not_ns:
            return [(kind, None)]
        terms = []
        tns = getattr(wild, "target_namespace", "") or ""
        for u in ns:
            if u == "##local":
                u = ""
            elif u == "##targetNamespace":
                u = tns
            terms.append((kind, u))
        return terms

    def _particle(self, nfa: _NFA, p: Any, cont: int, order: dict[int, int]) -> int:
        lo = p.min_occurs
        hi = p.max_occurs  # None = unbounded

        def term(c: int) -> int:
            return self._term(nfa, p, c, order)

        if hi is None:
            loop = nfa.new()
            nfa.add(loop, None, cont)
            body = term(loop)
            nfa.add(loop, None, body)
            start = loop
            for _ in range(lo):
                start = term(start)
            return start
        start = cont
        for _ in range(hi - lo):
            s = nfa.new()
            nfa.add(s, None, cont)
            nfa.add(s, None, term(start))
            start = s
        for _ in range(lo):
            start = term(start)
        return start

    def _term(self, nfa: _NFA, p: Any, cont: int, order: dict[int, int]) -> int:
        model = getattr(p, "model", None)
        if model == "sequence":
            start = cont
            for child in list(p)[::-1]:
                start = self._particle(nfa, child, start, order)
            return start
        if model == "choice":
            s = nfa.new()
            children = list(p)
            if not children:
                nfa.add(s, None, cont)
            for child in children:
                nfa.add(s, None, self._particle(nfa, child, cont, order))
            return s
        if model == "all":
            s = nfa.new()
            nfa.add(s, None, cont)
            for child in p:
                nfa.add(s, None, self._particle(nfa, child, s, order))
            return s
        # leaf: element declaration or wildcard
        s = nfa.new()
        idx = order.get(id(p), 0)
        if _is_wildcard(p):
            for term in self._wild_terms(p, "SEW"):
                nfa.add(s, term, cont, order=idx)
            return s
        decl = p.ref if getattr(p, "ref", None) is not None else p
        members = self._substitutables(decl)
        for m in members:
            uri, local = _split(m.name)
            nfa.add(s, ("SE", uri, local), cont, payload=m, order=idx)
        return s

    def _substitutables(self, decl: Any) -> list[Any]:
        found: dict[str, Any] = {decl.name: decl}
        todo = [decl.name]
        while todo:
            head = todo.pop()
            for m in self.sg_members.get(head, ()):
                if m.name not in found:
                    found[m.name] = m
                    todo.append(m.name)
        return sorted(found.values(), key=lambda e: (_split(e.name)[1], _split(e.name)[0]))

    # ------------------------------------------------------------------ normalization
    def _normalize(self, nfa: _NFA, start: int, content_start: int, g: Grammar) -> None:
        closure_cache: dict[int, frozenset[Any]] = {}

        def closure(s: int) -> frozenset[Any]:
            c = closure_cache.get(s)
            if c is None:
                seen = {s}
                stack = [s]
                while stack:
                    x = stack.pop()
                    for term, tgt, _, _ in nfa.prods[x]:
                        if term is None and tgt not in seen:
                            seen.add(tgt)
                            stack.append(tgt)
                c = frozenset(seen)
                closure_cache[s] = c
            return c

        start_set = closure(start)
        content_set = closure(content_start)
        index: dict[frozenset[Any], State] = {}
        sets: list[frozenset[Any]] = []

        def state_for(ss: frozenset[Any]) -> State:
            st = index.get(ss)
            if st is None:
                st = State(g, len(g.states))
                g.states.append(st)
                index[ss] = st
                sets.append(ss)
            return st

        g.start = state_for(start_set)
        g.start.is_start = True
        i = 0
        raw: list[list[tuple[Any, ...]]] = []
        while i < len(sets):
            ss = sets[i]
            trans: dict[tuple[Any, ...], list[Any]] = {}
            for x in sorted(ss):
                for term, tgt, payload, order in nfa.prods[x]:
                    if term is None:
                        continue
                    entry = trans.get(term)
                    if entry is None:
                        trans[term] = [set(), payload, order]
                        entry = trans[term]
                    elif order is not None and (entry[2] is None or order < entry[2]):
                        entry[2] = order
                    if tgt is not None:
                        entry[0] |= closure(tgt)
            items = []
            for term, (tgts, payload, order) in trans.items():
                nxt = state_for(frozenset(tgts)) if term[0] != "EE" else None
                items.append((term, nxt, payload, order))
            raw.append(items)
            i += 1
        content_state = index.get(content_set)
        for st, items in zip(g.states, raw):
            def sort_key(it: tuple[Any, ...]) -> tuple[Any, ...]:
                term, _, _, order = it
                k = term[0]
                if k == "AT":
                    return (0, term[2], term[1])
                if k == "ATW":
                    return (1 if term[1] is not None else 2, term[1] or "", "")
                if k == "SE":
                    return (3, order, term[2], term[1])
                if k == "SEW":
                    return (4 if term[1] is not None else 5, order, term[1] or "")
                if k == "EE":
                    return (6,)
                return (7,)

            items.sort(key=sort_key)
            for code, (term, nxt, payload, _order) in enumerate(items):
                k = term[0]
                if k == "AT":
                    p = Prod(AT, code, term[1], term[2], dt=payload, next=nxt)
                elif k == "ATW":
                    p = Prod(ATW, code, next=nxt, wild_uri=term[1])
                elif k == "SE":
                    p = Prod(SE, code, term[1], term[2], next=nxt, child=self.element_grammar(payload))
                elif k == "SEW":
                    p = Prod(SEW, code, next=nxt, wild_uri=term[1])
                elif k == "EE":
                    p = Prod(EE, code)
                elif k == "CH":
                    p = Prod(CH, code, dt=payload, next=nxt)
                else:
                    p = Prod(CHU, code, dt=D.UNTYPED, next=nxt)
                st.prods.append(p)
            st.finish()
        # content index (8.5.4.4.1): states with AT productions come first
        g.content = content_state if content_state is not None else g.start
        for st in g.states:
            st.attr_phase = bool(st.at or st.atw) or st is g.content
        g.compute_leaf()
        c = g.content
        c2 = State(g, len(g.states))
        c2.prods = c.prods
        c2.finish()
        c2.attr_phase = False
        g.content2 = c2


class _NFA:
    __slots__ = ("prods",)

    def __init__(self) -> None:
        self.prods: list[list[tuple[Any, ...]]] = []

    def new(self) -> int:
        self.prods.append([])
        return len(self.prods) - 1

    def add(self, s: int, term: tuple[Any, ...] | None, tgt: int | None, payload: Any = None, order: int | None = None) -> None:
        self.prods[s].append((term, tgt, payload, order))


_MODELS: dict[str, Any] = {}


def schema_model(key: str) -> Any:
    """The XSD component model (xmlschema) of a schema key, as the grammar builder reads it:
    one reading of the vendored XSDs per process, shared by the codec's grammars and the
    typed-message generator (``tools/gen_messages.py``)."""
    model = _MODELS.get(key)
    if model is None:
        from iso15118.exi.schemas import load_xsd

        model = _MODELS[key] = load_xsd(key)
    return model


def build(key: str) -> SchemaGrammars:
    xsd = schema_model(key)
    b = Builder(key, xsd)
    sg = SchemaGrammars(key)
    maps = xsd.maps
    globals_ = [e for name, e in maps.elements.items() if not name.startswith("{" + XSD_NS + "}")]
    roots = []
    for e in globals_:
        uri, local = _split(e.name)
        g = b.element_grammar(e)
        sg.global_elements[(uri, local)] = g
        roots.append((uri, local, g))
    roots.sort(key=lambda r: (r[1], r[0]))
    sg.document = DocGrammar(roots, fragment=False)
    # global attributes (for AT(*) typed values)
    for name, a in maps.attributes.items():
        uri, local = _split(name)
        if uri in (XSD_NS, XML_NS, XSI_NS):
            continue
        sg.global_attributes[(uri, local)] = b.datatype(a.type)
    # named types (for xsi:type)
    for name, t in maps.types.items():
        uri, local = _split(name)
        if uri == XSD_NS and local not in XSD_TYPE_NAMES:
            continue
        try:
            sg.type_grammars[(uri, local)] = b.grammar_for_type(t, local)
        except NotImplementedError:
            continue
    # all element declarations (global and local), for the fragment grammar and string table
    all_elems: dict[tuple[str, str], list[Any]] = {}
    local_names: dict[str, set[str]] = {}

    def visit_particle(p: Any) -> None:
        if hasattr(p, "model"):
            for c in p:
                visit_particle(c)
        elif not _is_wildcard(p) and getattr(p, "ref", None) is None:
            uri, local = _split(p.name)
            all_elems.setdefault((uri, local), []).append(p)
            local_names.setdefault(uri, set()).add(local)

    for name, t in maps.types.items():
        uri, local = _split(name)
        if uri == XSD_NS:
            continue
        local_names.setdefault(uri, set()).add(local)
        _visit_type(t, visit_particle, local_names)
    for e in globals_:
        uri, local = _split(e.name)
        all_elems.setdefault((uri, local), []).append(e)
        local_names.setdefault(uri, set()).add(local)
        if getattr(e.type, "name", None) is None:
            _visit_type(e.type, visit_particle, local_names)
    for name in maps.attributes:
        uri, local = _split(name)
        if uri not in (XSD_NS, XML_NS, XSI_NS):
            local_names.setdefault(uri, set()).add(local)
    b.run_pending()
    frag_roots: list[tuple[str, str, Grammar | None]] = []
    for (uri, local), decls in all_elems.items():
        types = {id(d.type) for d in decls}
        nill = {bool(getattr(d, "nillable", False)) for d in decls}
        if len(types) == 1 and len(nill) == 1:
            fg: Grammar | None = b.element_grammar(decls[0])
        else:
            fg = None  # relaxed element fragment grammar (8.5.3)
        frag_roots.append((uri, local, fg))
    b.run_pending()
    frag_roots.sort(key=lambda r: (r[1], r[0]))
    sg.fragment = DocGrammar(frag_roots, fragment=True)
    # string table pre-population (7.3.1, D.1-D.3)
    uris = sorted(u for u in local_names if u not in ("", XML_NS, XSI_NS, XSD_NS))
    sg.uris = ["", XML_NS, XSI_NS, XSD_NS] + uris
    ln = {u: sorted(v) for u, v in local_names.items()}
    ln[XML_NS] = ["base", "id", "lang", "space"]
    ln[XSI_NS] = ["nil", "type"]
    ln[XSD_NS] = XSD_TYPE_NAMES
    ln.setdefault("", [])
    sg.local_names = ln
    return sg


def _visit_type(t: Any, visit_particle: Any, local_names: dict[str, set[str]]) -> None:
    if getattr(t, "is_simple", lambda: True)():
        return
    for aname, attr in t.attributes.items():
        if aname is None:
            continue
        uri, local = _split(attr.name)
        local_names.setdefault(uri, set()).add(local)
    content = getattr(t, "content", None)
    if content is not None and hasattr(content, "model"):
        visit_particle(content)
