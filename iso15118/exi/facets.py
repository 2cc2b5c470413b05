"""Facet warnings: values a decoded tree carries that the schema's facets forbid.

Real devices send such values (a vehicle announcing 4 phases in a 2-bit field of 1..3, a SOC of
101 %). The EXI bits carry them, so :meth:`iso15118.exi.codec.Codec.decode_lenient` keeps them in
the tree and lists one :class:`FacetWarning` each; strict decoding refuses the n-bit ones with
:class:`~iso15118.exi.errors.ExiFacetError` and the encoder refuses them all (unless
``validate=False``).

    >>> str(w)
    'value 4 outside facet maxInclusive 3 of maxNumPhasesType at /V2G_Message/Body/.../ChargingProfileEntryMaxNumberOfPhasesInUse'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iso15118.exi import datatypes as D
from iso15118.exi.tree import Element

__all__ = ["FacetWarning", "facet_violations"]


@dataclass(frozen=True, slots=True)
class FacetWarning:
    """One value outside a facet of its type.

    ``path``: the element path (``/Root/Child/Leaf``, ``@attr`` for an attribute); ``value``: the
    typed value decoded; ``facet``: ``minInclusive``, ``maxInclusive``, ``minLength`` or
    ``maxLength``; ``limit``: the facet's value; ``type_name``: the XSD simple type."""

    path: str
    value: Any
    facet: str
    limit: Any
    type_name: str

    @property
    def message(self) -> str:
        what = f"length {_length(self.value)}" if self.facet.endswith("Length") else f"value {self.value!r}"
        return f"{what} outside facet {self.facet} {self.limit} of {self.type_name}"

    def __str__(self) -> str:
        return f"{self.message} at {self.path}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        value = self.value.hex().upper() if isinstance(self.value, (bytes, bytearray)) else self.value
        return {"path": self.path, "value": value, "facet": self.facet, "limit": self.limit,
                "type": self.type_name, "message": self.message}


def _length(value: Any) -> int:
    return len(value) if hasattr(value, "__len__") else 0


def _violation(dt: Any, value: Any) -> tuple[str, Any] | None:
    """(facet, limit) the value breaks, or None."""
    if value is None:
        return None
    if isinstance(dt, D.IntegerDT) and isinstance(value, int) and not isinstance(value, bool):
        if dt.max is not None and value > dt.max:
            return "maxInclusive", dt.max
        if dt.min is not None and value < dt.min:
            return "minInclusive", dt.min
        return None
    if isinstance(dt, (D.StringDT, D.BinaryDT)) and isinstance(value, (str, bytes, bytearray)):
        n = len(value)
        if dt.max_length is not None and n > dt.max_length:
            return "maxLength", dt.max_length
        if dt.min_length is not None and n < dt.min_length:
            return "minLength", dt.min_length
    return None


def facet_violations(roots: Element | Iterable[Element], formats: dict[int, Any]) -> list[FacetWarning]:
    """Every value of ``roots`` outside its facets; ``formats`` maps ``id(element)`` to
    ``(value datatype, {attribute key: datatype})`` as the codec's grammar walk records them."""
    out: list[FacetWarning] = []
    stack: list[tuple[Element, str]] = [(r, "/" + r.name) for r in ([roots] if isinstance(roots, Element) else roots)]
    stack.reverse()
    while stack:
        el, path = stack.pop()
        vdt, adts = formats.get(id(el), (None, None))
        if vdt is not None:
            hit = _violation(vdt, el.value)
            if hit is not None:
                out.append(FacetWarning(path, el.value, hit[0], hit[1], vdt.name))
        if adts:
            for key, adt in adts.items():
                value = el.attrs.get(key)
                hit = _violation(adt, value)
                if hit is not None:
                    out.append(FacetWarning(f"{path}/@{key}", value, hit[0], hit[1], adt.name))
        kids = [c for c in el.children if isinstance(c, Element)]
        for c in reversed(kids):
            stack.append((c, f"{path}/{c.name}"))
    return out
