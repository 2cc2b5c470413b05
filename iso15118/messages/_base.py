"""Runtime support shared by the generated message classes.

The generated modules (``_gen_*.py``) contain one dataclass per XSD complex type.  Their
validation, ``to_tree`` and ``from_tree`` code is generated straight-line; this module only
holds what that code calls on the *error* path (building :class:`MessageValidationError`),
the common base class and the per-field metadata record :class:`FieldSpec`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, NamedTuple, Self

from iso15118.exi.tree import Element

__all__ = [
    "FieldSpec",
    "MessageBase",
    "MessageDecodeError",
    "MessageValidationError",
]


class MessageValidationError(ValueError):
    """A value violates the schema.

    ``field_path`` names the offending field, starting with the class name, e.g.
    ``SessionSetupReq.header.session_id``; ``reason`` says what is wrong, e.g.
    ``length 9 != length 8``.
    """

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}")
        self.field_path = field_path
        self.reason = reason

    def nested(self, owner: str, attr: str, index: int = -1) -> MessageValidationError:
        """The same error seen from the enclosing object ``owner`` through field ``attr``."""
        _, _, rest = self.field_path.partition(".")
        step = f"{attr}[{index}]" if index >= 0 else attr
        path = f"{owner}.{step}.{rest}" if rest else f"{owner}.{step}"
        return MessageValidationError(path, self.reason)


class MessageDecodeError(MessageValidationError):
    """Decoded bytes (or a tree) that do not form a typed message: an element with no
    message class (a bare xmldsig ``DigestValue`` under the dc grammar), text where the schema has
    element-only content, a missing or misplaced child.  ``field_path`` names the element
    (``{namespace}Name``), ``reason`` what is wrong; the original exception is chained."""



class FieldSpec(NamedTuple):
    """Schema metadata of one generated field (for introspection, tests and tooling).

    ``kind`` is one of

    * ``"simple"`` – a child element with a simple type (``py`` is int/bool/bytes/str/Decimal/float)
    * ``"enum"`` – a child element whose simple type is an enumeration (``py`` is the Enum class)
    * ``"class"`` – a child element with a complex type (``py`` is the message class)
    * ``"union"`` – an XSD choice or substitution group of complex elements; ``alts`` lists
      ``(namespace, element name, class)`` for every alternative
    * ``"attr"`` – an attribute (``py`` is the Python type)
    * ``"value"`` – the simple content of a complex type with simple content
    * ``"content"`` – the open (mixed / wildcard) content of some xmldsig types, a list of
      ``Element`` / ``str`` items (children with a generated class are converted, see ``alts``)
    """

    attr: str
    name: str
    ns: str
    kind: str
    py: Any
    min_occurs: int = 1
    max_occurs: int | None = 1
    facets: dict[str, Any] | None = None
    alts: tuple[tuple[str, str, type], ...] = ()
    choice: int | None = None
    choice_min: int = 1


class MessageBase:
    """Base of every generated class.

    Class attributes set by the generator:

    * ``ELEMENT`` – ``(namespace, local name)`` of the global element this class is the
      type of, or ``None``
    * ``SCHEMA_KEY`` – the codec schema key (``"common"``, ``"dc"``, ...) of that element
    * ``XSD_TYPE`` – the qualified name of the XSD type, ``{namespace}name``
    * ``FIELDS`` – tuple of :class:`FieldSpec`, in schema order
    """

    __slots__ = ()

    ELEMENT: ClassVar[tuple[str, str] | None] = None
    SCHEMA_KEY: ClassVar[str | None] = None
    XSD_TYPE: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()

    def __post_init__(self) -> None:  # replaced by generated code
        pass

    def to_tree(self, name: str = "", ns: str = "") -> Element:  # replaced by generated code
        """This object as an :class:`~iso15118.exi.tree.Element` named ``{ns}name``."""
        raise NotImplementedError

    @classmethod
    def from_tree(cls, el: Element) -> Self:  # replaced by generated code
        """Build from a decoded :class:`~iso15118.exi.tree.Element`; validates."""
        raise NotImplementedError

    def validate(self) -> None:
        """Re-check this object and everything below it (e.g. after mutating fields).

        Construction already validates each object's own fields; this walks the tree so that
        errors name the full path from ``self``.
        """
        self.__post_init__()
        name = type(self).__name__
        for spec in self.FIELDS:
            if spec.kind not in ("class", "union", "content"):
                continue
            value = getattr(self, spec.attr)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if not isinstance(item, MessageBase):  # raw Element / text in open content
                    continue
                try:
                    item.validate()
                except MessageValidationError as err:
                    raise err.nested(name, spec.attr, index if isinstance(value, list) else -1) from None


# --- error helpers (only called on failure, so their cost does not matter) -----------------


def field_path(obj: Any, attr: str, index: int = -1) -> str:
    """``ClassName.attr`` or ``ClassName.attr[index]`` for error messages."""
    return f"{type(obj).__name__}.{attr}" + (f"[{index}]" if index >= 0 else "")

_PY_NAMES = {int: "int", bool: "bool", bytes: "bytes", str: "str", Decimal: "Decimal", float: "float"}


def type_error(path: str, value: Any, expected: str) -> MessageValidationError:
    if value is None:
        return required_error(path)
    return MessageValidationError(path, f"expected {expected}, got {type(value).__name__} {value!r:.60}")


def range_error(path: str, value: int, lo: int | None, hi: int | None) -> MessageValidationError:
    if lo is not None and value < lo:
        return MessageValidationError(path, f"value {value} < minInclusive {lo}")
    return MessageValidationError(path, f"value {value} > maxInclusive {hi}")


def length_error(
    path: str, value: Any, length: int | None, min_length: int | None, max_length: int | None
) -> MessageValidationError:
    n = len(value)
    if length is not None:
        return MessageValidationError(path, f"length {n} != length {length}")
    if min_length is not None and n < min_length:
        return MessageValidationError(path, f"length {n} < minLength {min_length}")
    return MessageValidationError(path, f"length {n} > maxLength {max_length}")


def occurs_error(path: str, value: Any, lo: int, hi: int | None) -> MessageValidationError:
    if not isinstance(value, list):
        return type_error(path, value, "list")
    n = len(value)
    if n < lo:
        return MessageValidationError(path, f"{n} items < minOccurs {lo}")
    return MessageValidationError(path, f"{n} items > maxOccurs {hi}")


def required_error(path: str) -> MessageValidationError:
    return MessageValidationError(path, "required field is None")


def pattern_error(path: str, value: str, pattern: str) -> MessageValidationError:
    return MessageValidationError(path, f"{value!r:.60} does not match pattern {pattern}")


def choice_error(path: str, attrs: tuple[str, ...], count: int, optional: bool) -> MessageValidationError:
    need = "at most one" if optional else "exactly one"
    return MessageValidationError(path, f"{need} of {', '.join(attrs)} must be set, got {count}")


def coerce_enum(path: str, enum_cls: type[Enum], value: Any) -> Any:
    """Accept the lexical value (``"OK"``) for an enumeration field; reject anything else."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        member = enum_cls._value2member_map_.get(value)
        if member is not None:
            return member
        raise MessageValidationError(path, f"{value!r:.60} is not a {enum_cls.__name__} value")
    raise type_error(path, value, enum_cls.__name__)


def coerce_bytes(path: str, value: Any) -> bytes:
    """Accept bytearray / memoryview for binary fields (stored as bytes)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise type_error(path, value, "bytes")


def coerce_simple(path: str, value: Any, py: type) -> Any:
    """Slow path of the generated type checks: accept subclasses, reject the rest."""
    if py is bytes:
        return coerce_bytes(path, value)
    if py is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif py is str:
        if isinstance(value, str):
            return str(value)
    elif py is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, py):
        return value
    raise type_error(path, value, _PY_NAMES.get(py, py.__name__))


def item_error(path: str, items: list[Any], check: Any) -> MessageValidationError:
    """Locate the first bad item of a list of simple values and report it with its index."""
    for index, item in enumerate(items):
        try:
            check(f"{path}[{index}]", item)
        except MessageValidationError as err:
            return err
    return MessageValidationError(path, "invalid item")


def missing_element(owner: str, attr: str, name: str, found: Any) -> MessageValidationError:
    what = f"found {found.name}" if found is not None else "found end of content"
    return MessageValidationError(f"{owner}.{attr}", f"required element {name} missing ({what})")


def unexpected_element(owner: str, found: Any) -> MessageValidationError:
    name = found.name if hasattr(found, "name") else repr(found)
    return MessageValidationError(owner, f"unexpected element {name}")


NCNAME = re.compile(r"[A-Za-z_\u00c0-\uffff][A-Za-z0-9_.\-\u00b7\u00c0-\uffff]*\Z").match
"""Matcher for xs:ID / xs:NCName values (approximation of the XML NameChar classes)."""


class _End:
    """Sentinel standing for "no more children" in generated ``from_tree`` code."""

    __slots__ = ()
    name = None


END: Any = _End()

# --- namespaces ---------------------------------------------------------------------------

NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_CT = "urn:iso:std:iso:15118:-20:CommonTypes"
NS_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
NS_AC = "urn:iso:std:iso:15118:-20:AC"
NS_DC = "urn:iso:std:iso:15118:-20:DC"
NS_ACDP = "urn:iso:std:iso:15118:-20:ACDP"
NS_WPT = "urn:iso:std:iso:15118:-20:WPT"
NS_SAP = "urn:iso:15118:2:2010:AppProtocol"


def union_target(table: dict[type, tuple[str, str]], value: Any, path: str) -> tuple[str, str]:
    """Element ``(ns, name)`` for a union member whose exact class is not in ``table``
    (a user subclass): the nearest registered base class wins."""
    for klass in type(value).__mro__:
        target = table.get(klass)
        if target is not None:
            return target
    raise type_error(path, value, " | ".join(k.__name__ for k in table))
