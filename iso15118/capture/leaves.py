"""The leaf values of a decoded message, in document order: one walk of the tree per message,
read by the timeline's key fields, the ``--summary`` report and the dataset's columns alike.

A leaf is what :func:`iso15118.capture.decode.flatten` keys by path, named by its element alone:
an element without children (its value), or a physical value (-2 / DIN ``PhysicalValueType``,
-20 ``RationalNumberType``) as one scaled number.  Attributes are not leaves.  The readers ask
by element name ("the first ``EVRESSSOC`` or ``PresentSOC``"), never by path, so the paths are
not built.
"""

from __future__ import annotations

from typing import Any

from iso15118.capture.physical import scaled
from iso15118.exi.tree import Element

__all__ = ["EMPTY", "Leaves", "leaves_of"]


class Leaves:
    """``seq``: (element name, value) of every leaf in document order; ``first``: name -> index
    in ``seq`` of its first occurrence."""

    __slots__ = ("seq", "first")

    def __init__(self, seq: list[tuple[str, Any]], first: dict[str, int]) -> None:
        self.seq = seq
        self.first = first

    def get(self, *names: str) -> Any:
        """The value of the first leaf in document order named one of ``names`` (None: none)."""
        first = self.first
        if len(names) == 1:
            i = first.get(names[0])
            return None if i is None else self.seq[i][1]
        best: int | None = None
        for n in names:
            i = first.get(n)
            if i is not None and (best is None or i < best):
                best = i
        return None if best is None else self.seq[best][1]

    def all(self, *names: str) -> list[Any]:
        """The values of every leaf named one of ``names``, in document order."""
        first = self.first
        if not any(n in first for n in names):
            return []
        return [v for n, v in self.seq if n in names]


EMPTY = Leaves([], {})


def leaves_of(el: Element | None) -> Leaves:
    """The leaves below ``el`` (see the module docstring)."""
    if el is None:
        return EMPTY
    seq: list[tuple[str, Any]] = []
    first: dict[str, int] = {}
    _walk(el, seq, first)
    return Leaves(seq, first)


def _walk(el: Element, seq: list[tuple[str, Any]], first: dict[str, int]) -> None:
    for c in el.children:
        if c.__class__ is not Element and not isinstance(c, Element):
            continue  # text in mixed content
        if c.children:
            sv = scaled(c)
            if sv is None:
                _walk(c, seq, first)
                continue
            v: Any = sv[0]
        else:
            v = c.value
        name = c.name
        if name not in first:
            first[name] = len(seq)
        seq.append((name, v))
