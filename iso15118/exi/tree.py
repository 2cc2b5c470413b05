"""The element tree the codec's fast path reads and writes.

An :class:`Element` is one XML element with *typed* values: the codec encodes
``Element`` trees straight to EXI and decodes EXI straight to them, with no XML
text in between.  The typed message classes (``iso15118.messages``) convert to
and from these trees; the XML layer (``iso15118.exi.xml``) converts them to and
from lexical XML.

Typed value conventions (both for ``Element.value`` and attribute values):

=========================================  =======================
XSD datatype family                        Python type
=========================================  =======================
integer types (byte ... unsignedLong)      ``int``
boolean                                    ``bool``
base64Binary, hexBinary                    ``bytes``
string, anyURI, QName, enumerations        ``str``
decimal                                    ``decimal.Decimal``
float, double                              ``float``
list types                                 ``list`` of the item type
untyped content (anyType, wildcards)       ``str``
=========================================  =======================

Attribute keys are the local name for unqualified attributes (xmldsig's, -2's)
and Clark notation ``{uri}local`` for qualified ones: the -20 CommonMessages
schema has ``attributeFormDefault="qualified"``, so its ``Id`` attributes are
``{urn:iso:std:iso:15118:-20:CommonMessages}Id``.
``children`` holds child elements in document order; in mixed content (some
xmldsig types) it may also hold ``str`` items for character data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["Element"]


class Element:
    """One element: namespace URI, local name, attributes, children, simple value."""

    __slots__ = ("ns", "name", "attrs", "children", "value")

    def __init__(
        self,
        ns: str,
        name: str,
        attrs: dict[str, Any] | None = None,
        children: list[Element | str] | None = None,
        value: Any = None,
    ) -> None:
        self.ns = ns
        self.name = name
        self.attrs: dict[str, Any] = attrs if attrs is not None else {}
        self.children: list[Element | str] = children if children is not None else []
        self.value = value

    @property
    def tag(self) -> str:
        """Clark notation ``{ns}name`` (``name`` alone when there is no namespace)."""
        return f"{{{self.ns}}}{self.name}" if self.ns else self.name

    def find(self, name: str) -> Element | None:
        """First child element with this local name, or None."""
        for c in self.children:
            if isinstance(c, Element) and c.name == name:
                return c
        return None

    def findall(self, name: str) -> list[Element]:
        return [c for c in self.children if isinstance(c, Element) and c.name == name]

    def iter(self) -> Iterator[Element]:
        """This element and all descendant elements, depth first."""
        yield self
        for c in self.children:
            if isinstance(c, Element):
                yield from c.iter()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return (
            self.ns == other.ns
            and self.name == other.name
            and self.attrs == other.attrs
            and self.value == other.value
            and self.children == other.children
        )

    def __repr__(self) -> str:
        parts = [self.name]
        if self.attrs:
            parts.append(f"attrs={self.attrs!r}")
        if self.value is not None:
            parts.append(f"value={self.value!r}")
        if self.children:
            parts.append(f"children={self.children!r}")
        return f"Element({', '.join(parts)})"
