"""Wrappers around gaps of the generated message classes (applied only when the gap exists).

* ``ParameterType`` is an XSD *choice* of boolValue / byteValue / shortValue / intValue /
  rationalNumber / finiteString.  The generated :class:`iso15118.messages.Parameter` (at the
  time of writing) requires all six, so no schema-valid ServiceDetailRes can be built or
  decoded.  :func:`make_parameter` builds one with exactly one value, and the class gets a
  ``to_tree`` / ``from_tree`` / ``__post_init__`` that handle the choice.
* Some generated modules use ``_<Enum>_BY_VALUE`` maps they do not import; they are
  provided when missing.

Each patch checks first whether it is still needed, so a fixed generator makes this a no-op.
"""

from __future__ import annotations

import sys
from typing import Any

from iso15118 import messages as m

_CHOICE = (
    ("bool_value", "boolValue"),
    ("byte_value", "byteValue"),
    ("short_value", "shortValue"),
    ("int_value", "intValue"),
    ("rational_number", "rationalNumber"),
    ("finite_string", "finiteString"),
)


def _fill_missing_enum_maps() -> None:
    for mod_name in [n for n in sys.modules if n.startswith("iso15118.messages._gen_")]:
        mod = sys.modules[mod_name]
        for enum_cls in m.ALL_ENUMS:
            attr = f"_{enum_cls.__name__}_BY_VALUE"
            if not hasattr(mod, attr):
                setattr(mod, attr, enum_cls._value2member_map_)  # type: ignore[attr-defined]


def _parameter_choice_broken() -> bool:
    try:
        m.Parameter(name="Probe", int_value=1)  # type: ignore[call-arg]
    except Exception:
        return True
    return False


_PATCHED = False


def make_parameter(name: str, **value: Any) -> m.Parameter:
    """A ``Parameter`` with ``Name`` and exactly one of the choice values (``int_value=...``)."""
    if not _PATCHED:
        return m.Parameter(name=name, **value)
    obj = object.__new__(m.Parameter)
    for attr, _ in _CHOICE:
        object.__setattr__(obj, attr, value.get(attr))
    object.__setattr__(obj, "name", name)
    obj.__post_init__()
    return obj


def _patch_parameter() -> None:
    global _PATCHED
    from iso15118.exi.tree import Element

    cls = m.Parameter
    ns = cls.XSD_TYPE[1:].split("}")[0]
    name_attr = "{%s}Name" % ns

    def __post_init__(self: Any) -> None:
        count = sum(getattr(self, a) is not None for a, _ in _CHOICE)
        if count != 1:
            raise m.MessageValidationError("Parameter", f"exactly one value must be set, got {count}")
        if not isinstance(self.name, str) or len(self.name) > 80:
            raise m.MessageValidationError("Parameter.name", "Name must be a string of at most 80 characters")

    def to_tree(self: Any, name: str = "Parameter", ns_: str = ns) -> Any:
        children = []
        for attr, el in _CHOICE:
            v = getattr(self, attr)
            if v is None:
                continue
            if attr == "rational_number":
                children.append(v.to_tree(el, ns))
            else:
                children.append(Element(ns, el, None, None, v))
        return Element(ns_, name, {name_attr: self.name}, children, None)

    def from_tree(klass: Any, el: Any) -> Any:
        values: dict[str, Any] = {}
        for child in el.children:
            for attr, tag in _CHOICE:
                if child.name == tag:
                    values[attr] = m.RationalNumber.from_tree(child) if attr == "rational_number" else child.value
        return make_parameter(el.attrs.get(name_attr), **values)

    cls.__post_init__ = __post_init__  # type: ignore[method-assign]
    cls.to_tree = to_tree  # type: ignore[method-assign]
    cls.from_tree = classmethod(from_tree)  # type: ignore[assignment, method-assign]
    _PATCHED = True


def apply() -> None:
    _fill_missing_enum_maps()
    if _parameter_choice_broken():
        _patch_parameter()


apply()
