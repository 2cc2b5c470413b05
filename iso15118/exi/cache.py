"""Grammar cache: grammars are built from the XSDs once and pickled.

The cache lives in ``$ISO15118_CACHE`` or ``~/.cache/iso15118`` and is keyed by
the builder's version and a digest of the vendored XSDs, so editing either
rebuilds it.  A missing or unwritable cache only costs build time.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from iso15118.exi.grammar import DocGrammar, Grammar, Prod, SchemaGrammars, State

BUILDER_VERSION = "1"


def cache_dir() -> Path:
    env = os.environ.get("ISO15118_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iso15118"


def _code_digest() -> str:
    """Hash of the modules whose objects the cache holds: editing them rebuilds it."""
    import hashlib

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("builder.py", "grammar.py", "datatypes.py", "cache.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def load_grammars(key: str) -> SchemaGrammars:
    from iso15118.exi.schemas import SCHEMA_FILES, schema_digest

    if key not in SCHEMA_FILES:
        raise ValueError(f"unknown schema key {key!r}; one of {', '.join(SCHEMA_FILES)}")
    path = cache_dir() / f"grammars-{key}-{BUILDER_VERSION}-{_code_digest()}-{schema_digest()}.pickle"
    try:
        with open(path, "rb") as f:
            sg = pickle.load(f)
        sg = _unflatten(sg)
        if isinstance(sg, SchemaGrammars):
            return sg
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    from iso15118.exi.builder import build

    sg = build(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".grammars-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(_flatten(sg), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return sg


def _flatten(sg: SchemaGrammars) -> dict[Any, Any]:
    """A pickle-friendly form without deep object recursion: grammars by index."""
    grammars: list[Grammar] = []
    gidx: dict[int, int] = {}

    def gi(g: Grammar | None) -> int:
        if g is None:
            return -1
        i = gidx.get(id(g))
        if i is None:
            i = gidx[id(g)] = len(grammars)
            grammars.append(g)
        return i

    doc = [(u, l, gi(g)) for u, l, g in sg.document.roots]  # type: ignore[union-attr]
    frag = [(u, l, gi(g)) for u, l, g in sg.fragment.roots]  # type: ignore[union-attr]
    ge = {k: gi(g) for k, g in sg.global_elements.items()}
    tg = {k: gi(g) for k, g in sg.type_grammars.items()}
    flat_grammars = []
    k = 0
    while k < len(grammars):
        g = grammars[k]
        k += 1
        sidx = {id(s): i for i, s in enumerate(g.states)}
        if g.content2 is not None:
            sidx[id(g.content2)] = len(g.states)
        states = []
        for st in list(g.states) + ([g.content2] if g.content2 is not None else []):
            prods = [(p.kind, p.code, p.uri, p.local, p.dt, sidx[id(p.next)] if p.next is not None else -1,
                      gi(p.child), p.wild_uri) for p in st.prods]
            states.append((prods, st.attr_phase, st.is_start))
        flat_grammars.append((g.name, states, sidx[id(g.start)], sidx[id(g.content)] if g.content else -1,
                              g.simple_dt, g.nillable))
    return {"key": sg.key, "grammars": flat_grammars, "doc": doc, "frag": frag, "ge": ge, "tg": tg,
            "uris": sg.uris, "names": sg.local_names, "ga": sg.global_attributes, "ns": sg.namespaces}


def _unflatten(d: dict[Any, Any]) -> SchemaGrammars:
    gs = [Grammar(name) for name, *_ in d["grammars"]]
    for g, flat in zip(gs, d["grammars"]):
        g.simple_dt = flat[4]
        g.nillable = flat[5]
        g.type_empty = None
        # states, start, content, content2 are materialized on first access
        g._lazy = lambda grammar, flat=flat: _materialize(grammar, flat, gs)
        for attr in ("states", "start", "content", "content2", "leaf", "leaf_mode", "leaf_bits"):
            try:
                object.__delattr__(g, attr)
            except AttributeError:
                pass
    sg = SchemaGrammars(d["key"])
    sg.document = DocGrammar([(u, l, gs[i] if i >= 0 else None) for u, l, i in d["doc"]], fragment=False)
    sg.fragment = DocGrammar([(u, l, gs[i] if i >= 0 else None) for u, l, i in d["frag"]], fragment=True)
    sg.global_elements = {k: gs[i] for k, i in d["ge"].items()}
    sg.type_grammars = {k: gs[i] for k, i in d["tg"].items()}
    sg.uris = d["uris"]
    sg.local_names = d["names"]
    sg.global_attributes = d["ga"]
    sg.namespaces = d["ns"]
    return sg


def _materialize(g: Grammar, flat: tuple[Any, ...], gs: list[Grammar]) -> None:
    name, states, start, content, simple_dt, nillable = flat
    objs = [State(g, i) for i in range(len(states))]
    for st, (prods, attr_phase, is_start) in zip(objs, states):
        st.prods = [Prod(kind, code, uri, local, dt, objs[nx] if nx >= 0 else None, gs[ch] if ch >= 0 else None, wu)
                    for kind, code, uri, local, dt, nx, ch, wu in prods]
        st.finish()
        st.attr_phase = attr_phase
        st.is_start = is_start
    g.states = objs[:-1]
    g.content2 = objs[-1]
    g.start = objs[start]
    g.content = objs[content] if content >= 0 else g.start
    g.compute_leaf()
