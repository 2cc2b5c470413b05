"""Physical values in a decoded tree: -2 / DIN ``PhysicalValueType`` and -20 ``RationalNumberType``.

Read by the flattened values (:func:`iso15118.capture.decode.flatten`) and the timeline's key
fields, summary and dataset (:func:`iso15118.capture.leaves.leaves_of`) alike, so both scale the same way.
"""

from __future__ import annotations

from decimal import Decimal

from iso15118.exi.tree import Element

__all__ = ["scaled"]


def scaled(el: Element) -> tuple[float, str] | None:
    """A physical value: -2/DIN PhysicalValueType (Multiplier, Unit, Value) or -20
    RationalNumberType (Exponent, Value); returns (value, unit).

    Children are read as a name -> value map would read them (the last of a repeated name wins),
    in one pass without building the map: this runs for every complex element of every message."""
    ch = el.children
    if len(ch) == 3:  # the -2 / DIN shape, in schema order: Multiplier, Unit, Value
        m, u, v = ch
        if (m.__class__ is Element and u.__class__ is Element and v.__class__ is Element
                and m.name == "Multiplier" and u.name == "Unit" and v.name == "Value"):
            value = v.value
            if not isinstance(value, (int, float, Decimal)) or not isinstance(m.value, int):
                return None
            return float(value) * 10.0**m.value, str(u.value or "")
    value = multiplier = unit = exponent = None
    has_value = False
    for c in ch:
        if isinstance(c, Element):
            name = c.name
            if name == "Value":
                value = c.value
                has_value = True
            elif name == "Multiplier":
                multiplier = c.value
            elif name == "Unit":
                unit = c.value
            elif name == "Exponent":
                exponent = c.value
    if not has_value or not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(multiplier, int):
        return float(value) * 10.0**multiplier, str(unit or "")
    if isinstance(exponent, int) and all(
        c.name in ("Exponent", "Value") for c in el.children if isinstance(c, Element)
    ):
        return float(value) * 10.0**exponent, ""
    return None
