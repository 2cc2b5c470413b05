"""Hypothesis strategies for every generated class, built from the generated ``FIELDS`` metadata.

Values stay within the schema facets (integer ranges, lengths, enumerations, occurrence
bounds, choice arity), so every drawn object is valid; list sizes are kept small.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from hypothesis import strategies as st

from iso15118.exi.tree import Element
from iso15118.messages import FieldSpec, MessageBase

MAX_ITEMS_EXTRA = 1  # a list gets at most min_occurs + this many items
MAX_TEXT = 12
MAX_BINARY = 24
TEXT_ALPHABET = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _int(facets: dict[str, Any]) -> st.SearchStrategy[int]:
    lo = facets.get("min", -(10**20))
    hi = facets.get("max", 10**20)
    edges = st.sampled_from(sorted({lo, hi, max(lo, min(hi, 0))}))
    return st.one_of(edges, st.integers(lo, hi))


def _sized(facets: dict[str, Any], cap: int) -> tuple[int, int]:
    if "length" in facets:
        return facets["length"], facets["length"]
    lo = facets.get("minLength", 0)
    hi = min(facets.get("maxLength", cap), max(lo, cap))
    return lo, hi


def simple(py: Any, facets: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    facets = facets or {}
    if py is bool:
        return st.booleans()
    if py is int:
        return _int(facets)
    if py is bytes:
        lo, hi = _sized(facets, MAX_BINARY)
        return st.binary(min_size=lo, max_size=hi)
    if py is str:
        if facets.get("ncname"):
            # xs:ID values must be unique in a document: random UUIDs make clashes negligible
            return st.uuids().map(lambda u: f"id{u.hex[:12]}")
        lo, hi = _sized(facets, MAX_TEXT)
        return st.text(TEXT_ALPHABET, min_size=lo, max_size=hi)
    if py is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6)
    if py is float:
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if isinstance(py, type):  # enumeration
        return st.sampled_from(list(py))
    raise TypeError(py)


def _raw_element(ns: str) -> st.SearchStrategy[Element]:
    """Wildcard content: a few untyped elements (values are text, as the codec gives them)."""
    return st.builds(
        lambda name, text: Element(ns or "urn:example:wildcard", name, None, None, text),
        st.sampled_from(["Extra", "Vendor", "Any"]),
        st.text(TEXT_ALPHABET, min_size=1, max_size=6),
    )


def item(spec: FieldSpec, wildcards: bool = True) -> st.SearchStrategy[Any]:
    if spec.kind in ("simple", "enum", "attr", "value"):
        return simple(spec.py, spec.facets)
    if spec.kind == "class":
        return st.deferred(lambda: for_class(spec.py, wildcards))
    if spec.kind == "union":
        return st.one_of([st.deferred(lambda k=alt[2]: for_class(k, wildcards)) for alt in spec.alts])
    if spec.kind == "content":
        if not wildcards:
            return st.nothing()
        return _raw_element("urn:example:wildcard")
    raise ValueError(spec.kind)


# xmldsig classes whose (open) content the schema requires to be non-empty
NEEDS_CONTENT = {"KeyInfo", "KeyValue", "X509Data", "PGPData", "SPKIData", "SignatureProperty"}


def field_strategy(spec: FieldSpec, wildcards: bool = True) -> st.SearchStrategy[Any]:
    if not wildcards and spec.kind == "class" and spec.py.__name__ in NEEDS_CONTENT and spec.min_occurs == 0:
        return st.none() if spec.max_occurs == 1 else st.just([])
    one = item(spec, wildcards)
    if spec.kind == "content":
        return st.lists(one, max_size=2) if wildcards else st.just([])
    if spec.max_occurs != 1:
        hi = spec.min_occurs + MAX_ITEMS_EXTRA
        if spec.max_occurs is not None:
            hi = min(hi, spec.max_occurs)
        return st.lists(one, min_size=spec.min_occurs, max_size=hi)
    if spec.min_occurs == 0:
        return st.one_of(st.none(), one)
    return one


@cache
def for_class(klass: type[MessageBase], wildcards: bool = True) -> st.SearchStrategy[MessageBase]:
    """Valid instances of ``klass``.

    With ``wildcards`` false, open (wildcard / mixed) content stays empty: the xmldsig
    wildcards are strict, so made-up elements there would not be schema-valid.
    """
    plain = {s.attr: field_strategy(s, wildcards) for s in klass.FIELDS if s.choice is None}
    groups: dict[int, list[FieldSpec]] = {}
    for s in klass.FIELDS:
        if s.choice is not None:
            groups.setdefault(s.choice, []).append(s)

    def pick(group: list[FieldSpec]) -> st.SearchStrategy[dict[str, Any]]:
        options = [
            st.tuples(st.just(s.attr), item(s, wildcards)) for s in group
        ]
        chosen = st.one_of(options)
        if group[0].choice_min == 0:
            chosen = st.one_of(st.none(), chosen)

        def to_kwargs(choice: tuple[str, Any] | None) -> dict[str, Any]:
            kwargs = {s.attr: None for s in group}
            if choice is not None:
                kwargs[choice[0]] = choice[1]
            return kwargs

        return chosen.map(to_kwargs)

    parts = [st.fixed_dictionaries(plain)] + [pick(g) for g in groups.values()]

    def build(dicts: tuple[dict[str, Any], ...]) -> MessageBase:
        kwargs: dict[str, Any] = {}
        for d in dicts:
            kwargs.update(d)
        return klass(**kwargs)

    return st.tuples(*parts).map(build)
