"""Generate the per-grammar EXI encoders / decoders ``iso15118/exi/_fast_<key>.py``.

What cbexigen does for C, in Python: one decode and one encode function per normalized grammar
reachable from a schema's document grammar, straight-line code per grammar state, with the event
codes, their bit widths and the datatype representations precomputed.  The grammars are those the
generic codec walks (``iso15118.exi.cache.load_grammars``, built by ``iso15118.exi.builder`` from
the vendored XSDs): one reading of the XSDs for both.

The generated code covers first-level productions only; see ``iso15118/exi/fastrt.py`` for what
falls back to the generic codec.  ``tests/exi/test_fast_codec.py`` checks the committed modules
are what this script writes now and that both codecs agree.

    .venv/bin/python tools/gen_fastcodec.py          # rewrite iso15118/exi/_fast_*.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iso15118.exi.cache import load_grammars  # noqa: E402
from iso15118.exi.codec import grammar_digest  # noqa: E402
from iso15118.exi.grammar import AT, CH, EE, SE, Grammar, State  # noqa: E402

KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")
OUT = ROOT / "iso15118" / "exi"


def _remaining(text: str) -> str:
    """The generated readers track ``r``, the bits still to read (``E - pos``), instead of
    the position: one subtraction less per field, and one argument less per call."""
    text = text.replace("(V >> (E - pos))", "(V >> r)")
    text = re.sub(r"\bpos \+= (\d+)", r"r -= \1", text)
    text = text.replace("V: int, E: int, pos: int", "V: int, r: int")
    text = text.replace("(V, E, pos", "(V, r")
    text = text.replace(", pos = ", ", r = ").replace("    pos = _d", "    r = _d")
    text = text.replace("return pos", "return r").replace("return self, pos", "return self, r")
    text = text.replace("    pos = E - ", "    r = E - ").replace("    if pos >= 8:", "    if r >= 8:")
    assert not re.search(r"\bpos\b", text), "a reader still uses pos"
    return text


def _mask(n: int) -> str:
    return hex((1 << n) - 1)


class _Gen:
    def __init__(self, key: str) -> None:
        self.key = key
        self.sg = load_grammars(key)
        self.consts: dict[Any, str] = {}
        self.const_lines: list[str] = []
        self.grammars: list[Grammar] = []
        self.gid: dict[int, int] = {}

    # ------------------------------------------------------------------ constants
    def const(self, value: Any, prefix: str) -> str:
        k = (prefix, repr(value))
        name = self.consts.get(k)  # type: ignore[call-overload]
        if name is None:
            name = f"_{prefix}{len(self.consts)}"
            self.consts[k] = name  # type: ignore[index]
            self.const_lines.append(f"{name} = {value!r}")
        return name

    def g_index(self, g: Grammar) -> int:
        i = self.gid.get(id(g))
        if i is None:
            i = self.gid[id(g)] = len(self.grammars)
            self.grammars.append(g)
        return i

    # ------------------------------------------------------------------ states
    @staticmethod
    def _sig(st: State) -> tuple[Any, ...]:
        return (st.width, tuple((p.kind, p.code, p.uri, p.local, id(p.dt), id(p.child), p.next is None)
                                for p in st.prods))

    def classes(self, g: Grammar) -> tuple[list[int], list[list[int]]]:
        """State -> class index (states whose productions differ only in their right-hand
        side share code), and the member states of each class."""
        sigs: dict[Any, int] = {}
        cls = []
        members: list[list[int]] = []
        for st in g.states:
            s = self._sig(st)
            k = sigs.get(s)
            if k is None:
                k = sigs[s] = len(members)
                members.append([])
            cls.append(k)
            members[k].append(st.index)
        return cls, members

    # ------------------------------------------------------------------ decoding
    def read_value(self, dt: Any, out: list[str], ind: str, var: str = "v") -> None:
        kind = dt.kind
        if kind == "nbit":
            b = dt.nbits
            if b == 0:
                out.append(f"{ind}{var} = {dt.min}")
                return
            out.append(f"{ind}pos += {b}")
            out.append(f"{ind}{var} = ((V >> (E - pos)) & {_mask(b)}) + {dt.min}" if dt.min else
                       f"{ind}{var} = (V >> (E - pos)) & {_mask(b)}")
            if (1 << b) - 1 + dt.min > dt.max:
                out.append(f"{ind}if {var} > {dt.max}:")
                out.append(f"{ind}    raise Fallback")
        elif kind == "enum":
            vals = self.const(tuple(dt.values), "V")
            b = dt.nbits
            if b == 0:
                out.append(f"{ind}{var} = {vals}[0]")
                return
            out.append(f"{ind}pos += {b}")
            out.append(f"{ind}{var} = {vals}[(V >> (E - pos)) & {_mask(b)}]")
        elif kind == "boolean":
            out.append(f"{ind}pos += 1")
            out.append(f"{ind}{var} = (V >> (E - pos)) & 1 == 1")
        elif kind == "unsigned":
            out.append(f"{ind}pos += 8")
            out.append(f"{ind}{var} = (V >> (E - pos)) & 0xFF")
            out.append(f"{ind}if {var} > 0x7F:")
            out.append(f"{ind}    {var}, pos = ruint(V, E, pos, {var})")
        elif kind == "integer":
            out.append(f"{ind}pos += 9")
            out.append(f"{ind}{var} = (V >> (E - pos)) & 0x1FF")
            out.append(f"{ind}if {var} & 0x80:")
            out.append(f"{ind}    u, pos = ruint(V, E, pos, {var} & 0xFF)")
            out.append(f"{ind}    {var} = -u - 1 if {var} & 0x100 else u")
            out.append(f"{ind}elif {var} > 0xFF:")
            out.append(f"{ind}    {var} = 0xFF - {var}")
        elif kind == "string":
            out.append(f"{ind}{var}, pos = rstr(V, E, pos)")
        elif kind == "binary":
            out.append(f"{ind}{var}, pos = rbin(V, E, pos)")
        else:  # decimal, float, list: none in the messages' own types
            out.append(f"{ind}raise Fallback")

    @staticmethod
    def emit_prefix(out: list[str], ind: str, prefix: tuple[int, int] | None) -> None:
        """The event code of a state with a single production, read and checked in one go."""
        if prefix is None or prefix[0] == 0:
            return
        w, code = prefix
        out.append(f"{ind}pos += {w}")
        if code:
            out.append(f"{ind}if (V >> (E - pos)) & {_mask(w)} != {code}:")
        else:
            out.append(f"{ind}if (V >> (E - pos)) & {_mask(w)}:")
        out.append(f"{ind}    raise Fallback")

    def decode_prod(self, g: Grammar, p: Any, out: list[str], ind: str, prefix: tuple[int, int] | None = None) -> None:
        if p.kind == SE:
            cg = p.child
            uri = self.const(p.uri, "U")
            local = self.const(p.local, "L")
            if cg.leaf_mode:
                dt = cg.leaf
                if dt.kind in ("nbit", "enum", "boolean"):
                    b = dt.nbits if dt.kind != "boolean" else 1
                    w, code = prefix if prefix is not None else (0, 0)
                    out.append(f"{ind}pos += {w + b + 2}")
                    out.append(f"{ind}x = (V >> (E - pos)) & {_mask(w + b + 2)}")
                    check = (((1 << w) - 1) << (b + 2)) | (1 << (b + 1)) | 1
                    if code:
                        out.append(f"{ind}if x & {hex(check)} != {hex(code << (b + 2))}:")
                    else:
                        out.append(f"{ind}if x & {hex(check)}:")
                    out.append(f"{ind}    raise Fallback")
                    if w:
                        out.append(f"{ind}x &= {_mask(b + 2)}")
                    if dt.kind == "boolean":
                        out.append(f"{ind}v = x == 2")
                    elif dt.kind == "enum":
                        vals = self.const(tuple(dt.values), "V")
                        out.append(f"{ind}v = {vals}[x >> 1]")
                    else:
                        out.append(f"{ind}v = (x >> 1) + {dt.min}" if dt.min else f"{ind}v = x >> 1")
                        if (1 << b) - 1 + dt.min > dt.max:
                            out.append(f"{ind}if v > {dt.max}:")
                            out.append(f"{ind}    raise Fallback")
                else:
                    w, code = prefix if prefix is not None else (0, 0)
                    out.append(f"{ind}pos += {w + 1}")
                    if code:
                        out.append(f"{ind}if (V >> (E - pos)) & {_mask(w + 1)} != {code << 1}:")
                    else:
                        out.append(f"{ind}if (V >> (E - pos)) & {_mask(w + 1)}:")
                    out.append(f"{ind}    raise Fallback")
                    self.read_value(dt, out, ind)
                    out.append(f"{ind}pos += 1")
                    out.append(f"{ind}if (V >> (E - pos)) & 1:")
                    out.append(f"{ind}    raise Fallback")
                out.append(f"{ind}ch.append(Element({uri}, {local}, None, None, v))")
            else:
                self.emit_prefix(out, ind, prefix)
                out.append(f"{ind}c = Element({uri}, {local})")
                out.append(f"{ind}ch.append(c)")
                out.append(f"{ind}pos = _d{self.g_index(cg)}(V, E, pos, c)")
        elif p.kind == CH:
            self.emit_prefix(out, ind, prefix)
            self.read_value(p.dt, out, ind)
            out.append(f"{ind}el.value = v")
        elif p.kind == AT:
            self.emit_prefix(out, ind, prefix)
            key = p.local if not p.uri else f"{{{p.uri}}}{p.local}"
            self.read_value(p.dt, out, ind)
            out.append(f"{ind}el.attrs[{self.const(key, 'A')}] = v")
        elif p.kind == EE:
            self.emit_prefix(out, ind, prefix)
            out.append(f"{ind}return pos")
        else:  # wildcards, untyped (mixed) character data: the generic codec
            out.append(f"{ind}raise Fallback")

    def decode_grammar(self, g: Grammar) -> list[str]:
        i = self.g_index(g)
        cls, members = self.classes(g)
        out = [f"def _d{i}(V: int, E: int, pos: int, el: Element) -> int:", f"    # {g.name}"]
        if any(p.kind == SE for st in g.states for p in st.prods):
            out.append("    ch = el.children")
        start = g.start.index  # type: ignore[union-attr]
        out.append(f"    s = {start}")
        order = self.straight(g, members)
        straight = order is not None
        tables = None if all(len(m) == 1 for m in members) else self.const(tuple(cls), "K")
        var, base = self.block_heads(out, tables, straight)
        first = True
        for k in order if order is not None else range(len(members)):
            mem = members[k]
            st = g.states[mem[0]]
            ind = self.block_head(out, g, st, k, mem, var, base, straight, first)
            first = False
            w = st.width
            nxt_table = None
            if len(mem) > 1:
                rows = tuple(tuple(p.next.index if p.next is not None else -1 for p in g.states[s].prods) for s in mem)
                nxt_table = self.const(dict(zip(mem, rows)), "N")
            single = len(st.prods) == 1
            if not single:
                out.append(f"{ind}pos += {w}")
                out.append(f"{ind}x = (V >> (E - pos)) & {_mask(w)}")
            for j, p in enumerate(st.prods):
                if single:
                    sub = ind[:-4]
                else:
                    out.append(f"{ind}{'if' if j == 0 else 'elif'} x == {p.code}:")
                    sub = ind
                body: list[str] = []
                self.decode_prod(g, p, body, sub + "    ", (w, p.code) if single else None)
                out.extend(body)
                if p.kind != EE and not (body and body[-1].strip() == "raise Fallback"):
                    if p.next is None:
                        out.append(f"{sub}    return pos")
                    elif nxt_table is None:
                        if not (straight and p.next is st):
                            out.append(f"{sub}    s = {p.next.index}")
                    else:
                        out.append(f"{sub}    s = {nxt_table}[s][{j}]")
            if not single:
                out.append(f"{ind}else:")
                out.append(f"{ind}    raise Fallback")
        self.block_tail(out, straight)
        return out

    # ------------------------------------------------------------------ encoding
    def write_check(self, dt: Any, out: list[str], ind: str) -> str | None:  # noqa: C901
        """Code that raises Fallback unless ``v`` is certainly a valid typed value of ``dt``;
        returns the write statement kind, or None when the generated code does not write it."""
        kind: str = dt.kind
        if kind == "nbit":
            out.append(f"{ind}if v.__class__ is not int or v < {dt.min} or v > {dt.max}:")
            out.append(f"{ind}    raise Fallback")
            return "nbit"
        if kind == "enum":
            idx = self.const({v: i for i, v in enumerate(dt.values)}, "X")
            out.append(f"{ind}if v.__class__ is not str:")
            out.append(f"{ind}    raise Fallback")
            out.append(f"{ind}x = {idx}[v]")
            return "enum"
        if kind == "boolean":
            out.append(f"{ind}if v.__class__ is not bool:")
            out.append(f"{ind}    raise Fallback")
            return "boolean"
        if kind in ("unsigned", "integer"):
            conds = ["v.__class__ is not int"]
            lo = dt.min
            if kind == "unsigned" and (lo is None or lo < 0):
                lo = 0
            if lo is not None:
                conds.append(f"v < {lo}")
            if dt.max is not None:
                conds.append(f"v > {dt.max}")
            out.append(f"{ind}if {' or '.join(conds)}:")
            out.append(f"{ind}    raise Fallback")
            return kind
        if kind in ("string", "binary"):
            py = "str" if kind == "string" else "bytes"
            conds = [f"v.__class__ is not {py}"]
            if kind == "string":
                conds.append("not v.isascii()")
            if dt.min_length is not None and dt.min_length > 0:
                conds.append(f"len(v) < {dt.min_length}")
            if dt.max_length is not None:
                conds.append(f"len(v) > {dt.max_length}")
            out.append(f"{ind}if {' or '.join(conds)}:")
            out.append(f"{ind}    raise Fallback")
            return kind
        out.append(f"{ind}raise Fallback")
        return None

    def write_value(self, dt: Any, how: str, out: list[str], ind: str) -> None:
        if how == "nbit":
            if dt.nbits:
                val = f"(v - {dt.min})" if dt.min else "v"
                out.append(f"{ind}acc = (acc << {dt.nbits}) | {val}")
                out.append(f"{ind}n += {dt.nbits}")
        elif how == "enum":
            if dt.nbits:
                out.append(f"{ind}acc = (acc << {dt.nbits}) | x")
                out.append(f"{ind}n += {dt.nbits}")
        elif how == "boolean":
            out.append(f"{ind}acc = (acc << 1) | v")
            out.append(f"{ind}n += 1")
        elif how == "unsigned":
            out.append(f"{ind}if v < 0x80:")
            out.append(f"{ind}    acc = (acc << 8) | v")
            out.append(f"{ind}    n += 8")
            out.append(f"{ind}else:")
            out.append(f"{ind}    acc, n = wuint(acc, n, v)")
        elif how == "integer":
            out.append(f"{ind}if v < 0:")
            out.append(f"{ind}    acc, n = wuint((acc << 1) | 1, n + 1, -v - 1)")
            out.append(f"{ind}elif v < 0x80:")
            out.append(f"{ind}    acc = (acc << 9) | v")
            out.append(f"{ind}    n += 9")
            out.append(f"{ind}else:")
            out.append(f"{ind}    acc, n = wuint(acc << 1, n + 1, v)")
        elif how == "string":
            out.append(f"{ind}acc, n = wstr(acc, n, v)")
        elif how == "binary":
            out.append(f"{ind}acc, n = wbin(acc, n, v)")

    def encode_child(self, p: Any, st: State, out: list[str], ind: str) -> None:
        """Write SE(p) (event code in ``st``) and the child element ``c``."""
        cg = p.child
        w = st.width
        if cg.leaf_mode:
            dt = cg.leaf
            out.append(f"{ind}if c.attrs or c.children:")
            out.append(f"{ind}    raise Fallback")
            out.append(f"{ind}v = c.value")
            if dt.kind == "string":  # an empty value is no character event (the generic codec writes EE)
                out.append(f"{ind}if not v:")
                out.append(f"{ind}    raise Fallback")
            how = self.write_check(dt, out, ind)
            if how is None:
                return
            if how in ("nbit", "enum", "boolean"):
                b = dt.nbits if how != "boolean" else 1
                if how == "nbit":
                    val = f"((v - {dt.min}) << 1)" if dt.min else "(v << 1)"
                else:
                    val = "(x << 1)" if how == "enum" else "(v << 1)"
                out.append(f"{ind}acc = (acc << {w + b + 2}) | {p.code << (b + 2)} | {val}")
                out.append(f"{ind}n += {w + b + 2}")
            else:
                out.append(f"{ind}acc = (acc << {w + 1}) | {p.code << 1}")
                out.append(f"{ind}n += {w + 1}")
                self.write_value(dt, how, out, ind)
                out.append(f"{ind}acc <<= 1")
                out.append(f"{ind}n += 1")
        else:
            if w:
                out.append(f"{ind}acc = (acc << {w}) | {p.code}")
                out.append(f"{ind}n += {w}")
            out.append(f"{ind}acc, n = _e{self.g_index(cg)}(c, acc, n)")

    def encode_grammar(self, g: Grammar) -> list[str]:
        i = self.g_index(g)
        cls, members = self.classes(g)
        out = [f"def _e{i}(el: Element, acc: int, n: int) -> tuple[int, int]:", f"    # {g.name}"]
        start: State = g.start  # type: ignore[assignment]
        out.append(f"    s = {start.index}")
        # attributes, in the order of their AT productions (local name, then namespace)
        ats: dict[tuple[str, str], list[tuple[State, Any]]] = {}
        for st in g.states:
            for p in st.prods:
                if p.kind == AT:
                    ats.setdefault((p.local, p.uri), []).append((st, p))
        if not ats:
            out.append("    if el.attrs:")
            out.append("        raise Fallback")
        else:
            out.append("    a = el.attrs")
            out.append("    if a:")
            out.append("        na = 0")
            for (local, uri), where in sorted(ats.items()):
                key = local if not uri else f"{{{uri}}}{local}"
                out.append(f"        if {self.const(key, 'A')} in a:")
                out.append(f"            v = a[{self.const(key, 'A')}]")
                out.append("            na += 1")
                how = self.write_check(where[0][1].dt, out, "            ")
                if how is None:
                    continue
                for jj, (st, p) in enumerate(where):
                    out.append(f"            {'if' if jj == 0 else 'elif'} s == {st.index}:")
                    if st.width:
                        out.append(f"                acc = (acc << {st.width}) | {p.code}")
                        out.append(f"                n += {st.width}")
                    out.append(f"                s = {p.next.index}")
                out.append("            else:")
                out.append("                raise Fallback")
                self.write_value(where[0][1].dt, how, out, "            ")
            out.append("        if na != len(a):")
            out.append("            raise Fallback")
        if g.simple_dt is not None:
            # simple content: CH, value, EE
            out.append("    v = el.value")
            out.append("    if el.children or v is None or v == '':")
            out.append("        raise Fallback")
            chs = [st for st in g.states if st.ch is not None and st.ch.kind == CH and st.ch.next is not None
                   and st.ch.next.ee is not None]
            if not chs or any(st.ch.dt is not chs[0].ch.dt for st in chs):  # type: ignore[union-attr]
                out.append("    raise Fallback")
                return out
            dt = chs[0].ch.dt  # type: ignore[union-attr]
            how = self.write_check(dt, out, "    ")
            if how is None:
                return out
            for jj, st in enumerate(chs):
                p = st.ch  # type: ignore[assignment]
                nx: Any = p.next  # type: ignore[union-attr]
                out.append(f"    {'if' if jj == 0 else 'elif'} s == {st.index}:")
                if st.width:
                    out.append(f"        acc = (acc << {st.width}) | {p.code}")  # type: ignore[union-attr]
                    out.append(f"        n += {st.width}")
                out.append(f"        s = {nx.index}")  # type: ignore[union-attr]
            out.append("    else:")
            out.append("        raise Fallback")
            self.write_value(dt, how, out, "    ")
            ees: list[tuple[int, Any]] = sorted({st.ch.next.index: st.ch.next for st in chs}.items())  # type: ignore[union-attr]
            for jj, (idx, nx) in enumerate(ees):
                out.append(f"    {'if' if jj == 0 else 'elif'} s == {idx}:")
                out.append(f"        return (acc << {nx.width}) | {nx.ee.code}, n + {nx.width}")
            out.append("    raise Fallback")
            return out
        out.append("    if el.value is not None and el.value != '':")
        out.append("        raise Fallback")
        out.append("    ch = el.children")
        out.append("    i = 0")
        out.append("    m = len(ch)")
        order = self.straight(g, members)
        straight = order is not None
        tables = None if all(len(mm) == 1 for mm in members) else self.const(tuple(cls), "K")
        var, base = self.block_heads(out, tables, straight)
        first = True
        for k in order if order is not None else range(len(members)):
            mem = members[k]
            st = g.states[mem[0]]
            ind = self.block_head(out, g, st, k, mem, var, base, straight, first)
            first = False
            nxt_table = None
            if len(mem) > 1:
                rows = tuple(tuple(p.next.index if p.next is not None else -1 for p in g.states[s].prods) for s in mem)
                nxt_table = self.const(dict(zip(mem, rows)), "N")
            out.append(f"{ind}if i < m:")
            out.append(f"{ind}    c = ch[i]")
            out.append(f"{ind}    nm = c.name")
            ses = [(j, p) for j, p in enumerate(st.prods) if p.kind == SE]
            for jj, (j, p) in enumerate(ses):
                out.append(f"{ind}    {'if' if jj == 0 else 'elif'} nm == {self.const(p.local, 'L')} and c.ns == {self.const(p.uri, 'U')}:")
                body: list[str] = []
                self.encode_child(p, st, body, ind + "        ")
                out.extend(body)
                if not (body and body[-1].strip() == "raise Fallback"):
                    out.append(f"{ind}        i += 1")
                    if p.next is None:
                        out.append(f"{ind}        raise Fallback")
                    elif nxt_table is None:
                        out.append(f"{ind}        s = {p.next.index}")
                    else:
                        out.append(f"{ind}        s = {nxt_table}[s][{j}]")
            if ses:
                out.append(f"{ind}    else:")
                out.append(f"{ind}        raise Fallback")
            else:
                out.append(f"{ind}    raise Fallback")
            ee = st.ee
            out.append(f"{ind}else:")
            if ee is None:
                out.append(f"{ind}    raise Fallback")
            elif st.width:
                out.append(f"{ind}    return (acc << {st.width}) | {ee.code}, n + {st.width}")
            else:
                out.append(f"{ind}    return acc, n")
        self.block_tail(out, straight)
        return out

    # ------------------------------------------------------------------ control flow
    @staticmethod
    def straight(g: Grammar, members: list[list[int]]) -> list[int] | None:
        """A topological order of the states when there is one (every production goes forward
        in it, or back to its own state): then the code is one pass over the states in that
        order, a self-loop being a ``while``, instead of a dispatch loop.  None otherwise."""
        import heapq

        if any(len(m) > 1 for m in members):
            return None
        n = len(g.states)
        indeg = [0] * n
        succ: list[set[int]] = [set() for _ in range(n)]
        for st in g.states:
            for p in st.prods:
                if p.next is not None and p.next is not st and p.next.index not in succ[st.index]:
                    succ[st.index].add(p.next.index)
                    indeg[p.next.index] += 1
        ready = [i for i in range(n) if indeg[i] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for j in sorted(succ[i]):
                indeg[j] -= 1
                if indeg[j] == 0:
                    heapq.heappush(ready, j)
        return order if len(order) == n else None

    @staticmethod
    def block_heads(out: list[str], tables: str | None, straight: bool) -> tuple[str, str]:
        if straight:
            return "s", "    "
        out.append("    while True:")
        if tables is not None:
            out.append(f"        k = {tables}[s]")
            return "k", "        "
        return "s", "        "

    @staticmethod
    def block_head(out: list[str], g: Grammar, st: State, k: int, mem: list[int], var: str, base: str,
                   straight: bool, first: bool) -> str:
        if straight:
            loops = any(p.next is st for p in st.prods)
            if loops:
                out.append(f"{base}while s == {st.index}:")
            else:
                out.append(f"{base}if s == {st.index}:")
            return base + "    "
        label = mem[0] if var == "s" else k
        out.append(f"{base}{'if' if first else 'elif'} {var} == {label}:")
        return base + "    "

    @staticmethod
    def block_tail(out: list[str], straight: bool) -> None:
        if straight:
            out.append("    raise Fallback")
        else:
            out.append("        else:")
            out.append("            raise Fallback")

    # ------------------------------------------------------------------ module
    def module(self) -> str:
        doc = self.sg.document
        assert doc is not None
        body: list[str] = []
        # document entry points
        dec = ["def decode(data: bytes) -> Element:",
               '    """EXI document -> Element; raises (Fallback or another exception) where the generic codec must run."""',
               "    E = len(data) << 3",
               "    V = int.from_bytes(data, 'big')",
               "    if E < 8 or data[0] != 0x80:",
               "        raise Fallback",
               f"    pos = E - {8 + doc.width}",
               f"    x = (V >> (E - pos)) & {_mask(doc.width)}"]
        enc = ["def encode(root: Element) -> bytes:",
               '    """Element -> EXI document; raises (Fallback or another exception) where the generic codec must run."""',
               "    f, acc, n = _EROOTS[(root.ns, root.name)]",
               "    acc, n = f(root, acc, n)",
               "    pad = -n & 7",
               "    return (acc << pad).to_bytes((n + pad) >> 3, 'big')"]
        droots = []
        eroots = []
        for code, (uri, local, g) in enumerate(doc.roots):
            if g is None:
                droots.append("    None,")
                continue
            gi = self.g_index(g)
            u, loc = self.const(uri, "U"), self.const(local, "L")
            droots.append(f"    ({u}, {loc}, _d{gi}),")
            eroots.append(f"    ({u}, {loc}): (_e{gi}, {0x80 << doc.width | code}, {8 + doc.width}),")
        dec += ["    u, l, f = _DROOTS[x]", "    el = Element(u, l)", "    r = f(V, r, el)",
                "    if r >= 8:", "        raise Fallback", "    return el"]
        tables = ["", "", "# document roots by event code (decoding) and by qname (encoding)", "_DROOTS = ("] + droots + [")",
                  "_EROOTS = {"] + eroots + ["}"]
        k = 0
        while k < len(self.grammars):
            g = self.grammars[k]
            k += 1
            body.append("")
            body.append("")
            body += self.decode_grammar(g)
            body.append("")
            body.append("")
            body += self.encode_grammar(g)
        head = [
            f'"""Generated by tools/gen_fastcodec.py from the grammars of schema key {self.key!r}: do not edit.',
            "",
            "Per-grammar EXI decoder (_d<i>) and encoder (_e<i>) functions; see iso15118/exi/fastrt.py.",
            '"""',
            "",
            "# ruff: noqa",
            "# mypy: ignore-errors",
            "from __future__ import annotations",
            "",
            "from iso15118.exi.fastrt import Fallback, rbin, rstr, ruint, wbin, wstr, wuint",
            "from iso15118.exi.tree import Element",
            "",
            f"SCHEMA_KEY = {self.key!r}",
            f"GRAMMAR_DIGEST = {grammar_digest()!r}",
            f"GRAMMARS = {len(self.grammars)}",
            "",
        ]
        return _remaining("\n".join(head + self.const_lines + ["", ""] + dec + ["", ""] + enc + body + tables) + "\n")


class _TypedGen(_Gen):
    """Typed decoders: EXI bits straight into the generated message classes
    (``iso15118/messages/_fast_<key>.py``), the same grammars and state code as :class:`_Gen`,
    with each production assigning a field instead of building an element.  The object is built
    as the class's ``from_tree`` builds it (``object.__new__``, the fields, ``__post_init__``), so
    the validation is the class's own."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        import iso15118.messages as M

        self.M = M
        self.tid: dict[tuple[int, type], int] = {}
        self.todo: list[tuple[Grammar, type]] = []
        self.uid: dict[tuple[int, type], int] = {}
        self.utodo: list[tuple[Grammar, type]] = []
        self.class_consts: dict[type, str] = {}

    def cls_const(self, klass: type) -> str:
        name = self.class_consts.get(klass)
        if name is None:
            name = self.class_consts[klass] = f"_C{len(self.class_consts)}"
        return name

    def t_index(self, g: Grammar, klass: type) -> int:
        k = (id(g), klass)
        i = self.tid.get(k)
        if i is None:
            i = self.tid[k] = len(self.todo)
            self.todo.append((g, klass))
        return i

    def enum_members(self, dt: Any, enum_cls: Any) -> str | None:
        try:
            members = tuple(enum_cls(v) for v in dt.values)
        except ValueError:
            return None
        ec = self.cls_const(enum_cls)
        name = self.const(tuple(dt.values), "V")
        key = ("EM", ec, name)
        got = self.consts.get(key)  # type: ignore[call-overload]
        if got is None:
            got = f"_EM{len(self.consts)}"
            self.consts[key] = got  # type: ignore[index]
            self.const_lines.append(f"{got} = tuple(map({ec}, {name}))")
        del members
        return got

    def field_for(self, klass: type, p: Any) -> tuple[Any, type | None]:
        """The FieldSpec an SE / AT production fills, and the class of a complex child."""
        for spec in klass.FIELDS:  # type: ignore[attr-defined]
            if p.kind == AT:
                if spec.kind == "attr" and spec.name == p.local and (spec.ns or "") == (p.uri or ""):
                    return spec, None
                continue
            if spec.kind in ("simple", "enum") and spec.name == p.local and spec.ns == p.uri:
                return spec, None
            if spec.kind == "class" and spec.name == p.local and spec.ns == p.uri:
                return spec, spec.py
            if spec.kind == "union":
                for ns, local, alt in spec.alts:
                    if ns == p.uri and local == p.local:
                        return spec, alt
        return None, None

    def typed_prod(self, klass: type, p: Any, out: list[str], ind: str, prefix: tuple[int, int] | None = None) -> None:
        if p.kind == SE:
            spec, child_cls = self.field_for(klass, p)
            if spec is None:
                out.append(f"{ind}raise Fallback")
                return
            var = f"f_{spec.attr}"
            many = spec.max_occurs != 1
            cg = p.child
            if child_cls is not None:
                self.emit_prefix(out, ind, prefix)
                out.append(f"{ind}v, pos = _t{self.t_index(cg, child_cls)}(V, E, pos)")
            elif cg.leaf_mode:
                body: list[str] = []
                save = len(self.const_lines)
                self.decode_prod(None, p, body, ind, prefix)  # type: ignore[arg-type]
                assert body[-1].strip().startswith("ch.append(Element(")
                body.pop()
                if spec.kind == "enum" and cg.leaf.kind == "enum":
                    em = self.enum_members(cg.leaf, spec.py)
                    if em is not None:
                        body = [ln.replace(f"v = {self.const(tuple(cg.leaf.values), 'V')}[", f"v = {em}[") for ln in body]
                del save
                out.extend(body)
            else:
                out.append(f"{ind}raise Fallback")
                return
            out.append(f"{ind}{var}.append(v)" if many else f"{ind}{var} = v")
        elif p.kind == AT:
            spec, _ = self.field_for(klass, p)
            if spec is None:
                out.append(f"{ind}raise Fallback")
                return
            self.emit_prefix(out, ind, prefix)
            self.read_value(p.dt, out, ind)
            out.append(f"{ind}f_{spec.attr} = v")
        elif p.kind == CH:
            spec = next((s for s in klass.FIELDS if s.kind == "value"), None)  # type: ignore[attr-defined]
            if spec is None:
                out.append(f"{ind}raise Fallback")
                return
            self.emit_prefix(out, ind, prefix)
            self.read_value(p.dt, out, ind)
            out.append(f"{ind}f_{spec.attr} = v")
        elif p.kind == EE:
            self.emit_prefix(out, ind, prefix)
            c = self.cls_const(klass)
            out.append(f"{ind}self = _new({c})")
            for spec in klass.FIELDS:  # type: ignore[attr-defined]
                out.append(f"{ind}self.{spec.attr} = f_{spec.attr}")
            out.append(f"{ind}self.__post_init__()")
            out.append(f"{ind}return self, pos")
        else:
            out.append(f"{ind}raise Fallback")

    def typed_grammar(self, g: Grammar, klass: type) -> list[str]:
        i = self.t_index(g, klass)
        cls, members = self.classes(g)
        out = [f"def _t{i}(V: int, E: int, pos: int) -> tuple[Any, int]:", f"    # {g.name} -> {klass.__name__}"]
        for spec in klass.FIELDS:  # type: ignore[attr-defined]
            # open (mixed / wildcard) content is read here only when there is none (an empty
            # ds:CanonicalizationMethod, ds:SignatureMethod, ...): any wildcard or text event
            # raises Fallback, and the generic path reads the element
            many = spec.kind == "content" or spec.max_occurs != 1
            out.append(f"    f_{spec.attr} = {'[]' if many else 'None'}")
        start = g.start.index  # type: ignore[union-attr]
        out.append(f"    s = {start}")
        order = self.straight(g, members)
        straight = order is not None
        tables = None if all(len(m) == 1 for m in members) else self.const(tuple(cls), "K")
        var, base = self.block_heads(out, tables, straight)
        first = True
        for k in order if order is not None else range(len(members)):
            mem = members[k]
            st = g.states[mem[0]]
            ind = self.block_head(out, g, st, k, mem, var, base, straight, first)
            first = False
            w = st.width
            nxt_table = None
            if len(mem) > 1:
                rows = tuple(tuple(p.next.index if p.next is not None else -1 for p in g.states[s].prods) for s in mem)
                nxt_table = self.const(dict(zip(mem, rows)), "N")
            single = len(st.prods) == 1
            if not single:
                out.append(f"{ind}pos += {w}")
                out.append(f"{ind}x = (V >> (E - pos)) & {_mask(w)}")
            for j, p in enumerate(st.prods):
                if single:
                    sub = ind[:-4]
                else:
                    out.append(f"{ind}{'if' if j == 0 else 'elif'} x == {p.code}:")
                    sub = ind
                body: list[str] = []
                self.typed_prod(klass, p, body, sub + "    ", (w, p.code) if single else None)
                out.extend(body)
                if p.kind != EE and not (body and body[-1].strip() == "raise Fallback"):
                    if p.next is None:
                        out.append(f"{sub}    raise Fallback")
                    elif nxt_table is None:
                        if not (straight and p.next is st):
                            out.append(f"{sub}    s = {p.next.index}")
                    else:
                        out.append(f"{sub}    s = {nxt_table}[s][{j}]")
            if not single:
                out.append(f"{ind}else:")
                out.append(f"{ind}    raise Fallback")
        self.block_tail(out, straight)
        return out

    # ------------------------------------------------------------------ typed encoding
    def u_index(self, g: Grammar, klass: type) -> int:
        k = (id(g), klass)
        i = self.uid.get(k)
        if i is None:
            i = self.uid[k] = len(self.utodo)
            self.utodo.append((g, klass))
        return i

    def write_leaf(self, spec: Any, dt: Any, out: list[str], ind: str) -> str | None:
        """Check ``v`` (a field value) for a simple-typed element; for an enumeration field the
        value is its Enum member, looked up by value.  Returns how to write it."""
        if spec.kind == "enum" and dt.kind == "enum":
            idx = self.const({v: i for i, v in enumerate(dt.values)}, "X")
            out.append(f"{ind}if v.__class__ is not {self.cls_const(spec.py)}:")
            out.append(f"{ind}    raise Fallback")
            out.append(f"{ind}x = {idx}[v._value_]")
            return "enum"
        if dt.kind == "string":
            out.append(f"{ind}if not v:")
            out.append(f"{ind}    raise Fallback")
        return self.write_check(dt, out, ind)

    def typed_encoder(self, g: Grammar, klass: type) -> list[str]:  # noqa: C901
        i = self.u_index(g, klass)
        cls, members = self.classes(g)
        out = [f"def _u{i}(o: Any, acc: int, n: int) -> tuple[int, int]:", f"    # {g.name} <- {klass.__name__}"]
        fields = klass.FIELDS  # type: ignore[attr-defined]
        if any(f.kind in ("content", "value") for f in fields):
            out.append("    raise Fallback")
            return out
        out.append(f"    if o.__class__ is not {self.cls_const(klass)}:")
        out.append("        raise Fallback")
        out.append(f"    s = {g.start.index}")  # type: ignore[union-attr]

        def transition(where: list[tuple[State, Any]], ind: str, extra_bits: int = 0, extra: str = "") -> None:
            if len(where) > 6:  # an unrolled list: by table
                table = self.const({st.index: (p.code << extra_bits, st.width + extra_bits, p.next.index) for st, p in where}, "T")
                out.append(f"{ind}t = {table}[s]")
                out.append(f"{ind}acc = (acc << t[1]) | t[0]" + (f" | {extra}" if extra else ""))
                out.append(f"{ind}n += t[1]")
                out.append(f"{ind}s = t[2]")
                return
            for jj, (st, p) in enumerate(where):
                out.append(f"{ind}{'if' if jj == 0 else 'elif'} s == {st.index}:")
                w = st.width + extra_bits
                if w:
                    val = f"{p.code << extra_bits}" + (f" | {extra}" if extra else "")
                    out.append(f"{ind}    acc = (acc << {w}) | {val}")
                    out.append(f"{ind}    n += {w}")
                out.append(f"{ind}    s = {p.next.index}")
            out.append(f"{ind}else:")
            out.append(f"{ind}    raise Fallback")

        # attributes, in the order of their AT productions (local name, then namespace)
        ats: dict[tuple[str, str], list[tuple[State, Any]]] = {}
        for st in g.states:
            for p in st.prods:
                if p.kind == AT:
                    ats.setdefault((p.local, p.uri), []).append((st, p))
        for (local, uri), where in sorted(ats.items()):
            spec = next((f for f in fields if f.kind == "attr" and f.name == local and (f.ns or "") == (uri or "")), None)
            if spec is None:
                continue
            out.append(f"    v = o.{spec.attr}")
            out.append("    if v is not None:")
            how = self.write_check(where[0][1].dt, out, "        ")
            if how is None:
                return out
            transition(where, "        ")
            self.write_value(where[0][1].dt, how, out, "        ")
        # child elements, in field order
        for spec in fields:
            if spec.kind not in ("simple", "enum", "class", "union"):
                continue
            many = spec.max_occurs != 1
            ind = "    "
            out.append(f"{ind}v = o.{spec.attr}")
            if many:
                out.append(f"{ind}if v.__class__ is not list:")
                out.append(f"{ind}    raise Fallback")
                out.append(f"{ind}for v in v:")
                ind += "    "
            else:
                out.append(f"{ind}if v is not None:")
                ind += "    "
            targets = [(spec.ns, spec.name, spec.py if spec.kind == "class" else None)]
            if spec.kind == "union":
                targets = list(spec.alts)
            for tj, (ns, local, tcls) in enumerate(targets):
                where = [(st, p) for st in g.states for p in st.prods if p.kind == SE and p.uri == ns and p.local == local]
                if spec.kind == "union":
                    out.append(f"{ind}{'if' if tj == 0 else 'elif'} v.__class__ is {self.cls_const(tcls)}:")  # type: ignore[arg-type]
                    sub = ind + "    "
                else:
                    sub = ind
                if not where:
                    out.append(f"{sub}raise Fallback")
                    continue
                cg = where[0][1].child
                if any(p.child is not cg for _, p in where):
                    out.append(f"{sub}raise Fallback")
                    continue
                if tcls is not None:
                    transition(where, sub)
                    out.append(f"{sub}acc, n = _u{self.u_index(cg, tcls)}(v, acc, n)")
                elif cg.leaf_mode:
                    dt = cg.leaf
                    how = self.write_leaf(spec, dt, out, sub)
                    if how is None:
                        continue
                    if how in ("nbit", "enum", "boolean"):
                        b = dt.nbits if how != "boolean" else 1
                        if how == "nbit":
                            val = f"((v - {dt.min}) << 1)" if dt.min else "(v << 1)"
                        else:
                            val = "(x << 1)" if how == "enum" else "(v << 1)"
                        transition(where, sub, b + 2, val)
                    else:
                        transition(where, sub, 1)
                        self.write_value(dt, how, out, sub)
                        out.append(f"{sub}acc <<= 1")
                        out.append(f"{sub}n += 1")
                else:
                    out.append(f"{sub}raise Fallback")
            if spec.kind == "union":
                out.append(f"{ind}else:")
                out.append(f"{ind}    raise Fallback")
        ees = [(st, st.ee) for st in g.states if st.ee is not None]
        if len(ees) > 6:
            table = self.const({st.index: (ee.code, st.width) for st, ee in ees}, "T")  # type: ignore[union-attr]
            out.append(f"    t = {table}[s]")
            out.append("    return (acc << t[1]) | t[0], n + t[1]")
            return out
        for jj, (st, ee) in enumerate(ees):
            out.append(f"    {'if' if jj == 0 else 'elif'} s == {st.index}:")
            out.append(f"        return (acc << {st.width}) | {ee.code}, n + {st.width}")  # type: ignore[union-attr]
        out.append("    raise Fallback")
        return out

    def module(self) -> str:
        doc = self.sg.document
        assert doc is not None
        dec = ["def decode(data: bytes) -> Any:",
               '    """EXI document -> typed message; raises (Fallback or another exception) where',
               '    ``from_tree(codec.decode(data))`` must run."""',
               "    E = len(data) << 3",
               "    V = int.from_bytes(data, 'big')",
               "    if E < 8 or data[0] != 0x80:",
               "        raise Fallback",
               f"    pos = E - {8 + doc.width}",
               f"    x = (V >> (E - pos)) & {_mask(doc.width)}"]
        troots = []
        for uri, local, g in doc.roots:
            klass = None
            if g is not None:
                try:
                    klass = self.M.class_for_element(uri, local)
                except KeyError:
                    klass = None
            troots.append(f"    _t{self.t_index(g, klass)},  # {local}" if klass is not None and g is not None else f"    None,  # {local}")
        dec += ["    msg, r = _TROOTS[x](V, r)", "    if r >= 8:", "        raise Fallback", "    return msg"]
        uroots = []
        for code, (uri, local, g) in enumerate(doc.roots):
            if g is None:
                continue
            try:
                klass = self.M.class_for_element(uri, local)
            except KeyError:
                continue
            if klass.ELEMENT != (uri, local):
                continue
            uroots.append(f"    {self.cls_const(klass)}: (_u{self.u_index(g, klass)}, {0x80 << doc.width | code}, {8 + doc.width}),")
        enc = ["def encode(msg: Any) -> bytes:",
               '    """Typed message -> EXI document; raises (Fallback or another exception) where',
               '    ``codec.encode(msg.to_tree())`` must run."""',
               "    f, acc, n = _UROOTS[msg.__class__]",
               "    acc, n = f(msg, acc, n)",
               "    pad = -n & 7",
               "    return (acc << pad).to_bytes((n + pad) >> 3, 'big')"]
        tables = ["", "", "# typed readers of the document roots by event code", "_TROOTS = ("] + troots + [")",
                  "# typed writers of the document roots by class", "_UROOTS = {"] + uroots + ["}"]
        body: list[str] = []
        k = 0
        while k < len(self.todo):
            g, klass = self.todo[k]
            k += 1
            body += ["", ""] + self.typed_grammar(g, klass)
        k = 0
        while k < len(self.utodo):
            g, klass = self.utodo[k]
            k += 1
            body += ["", ""] + self.typed_encoder(g, klass)
        head = [
            f'"""Generated by tools/gen_fastcodec.py from the grammars of schema key {self.key!r} and the',
            "message classes: do not edit.",
            "",
            "Typed decoders (_t<i>): EXI bits straight into the message classes, and typed encoders (_u<i>):",
            "message fields straight to EXI bits; see iso15118/exi/fastrt.py.",
            '"""',
            "",
            "# ruff: noqa",
            "# mypy: ignore-errors",
            "from __future__ import annotations",
            "",
            "from typing import Any",
            "",
            "from iso15118.exi.fastrt import Fallback, rbin, rstr, ruint, wbin, wstr, wuint",
            "",
            f"SCHEMA_KEY = {self.key!r}",
            f"GRAMMAR_DIGEST = {grammar_digest()!r}",
            "_new = object.__new__",
        ]
        classes = [f"from {klass.__module__} import {klass.__qualname__} as {c}"
                   for klass, c in sorted(self.class_consts.items(), key=lambda kv: int(kv[1][2:]))] + [""]
        return _remaining("\n".join(head + classes + self.const_lines + ["", ""] + dec + ["", ""] + enc + body + tables) + "\n")


TYPED_OUT = ROOT / "iso15118" / "messages"


def generate_typed(out_dir: Path = TYPED_OUT) -> list[Path]:
    written = []
    for key in KEYS:
        text = _TypedGen(key).module()
        path = out_dir / f"_fast_{key}.py"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def generate(out_dir: Path = OUT) -> list[Path]:
    written = []
    for key in KEYS:
        gen = _Gen(key)
        text = gen.module()
        path = out_dir / f"_fast_{key}.py"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in generate() + generate_typed():
        print(p.relative_to(ROOT), len(p.read_text().splitlines()), "lines")
