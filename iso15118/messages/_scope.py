"""A package of generated classes with names of its own: ISO 15118-2 (``iso15118.messages.iso2``)
and DIN SPEC 70121 (``iso15118.messages.din``) reuse the -20 names (``SessionSetupReq``,
``MessageHeader``, ...), so each lives in a scope: its classes, its element index, and
``decode`` / ``encode`` of its ``V2G_Message`` documents.  The xmldsig classes are shared."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from iso15118.messages._base import MessageBase, MessageDecodeError, MessageValidationError


class Scope:
    """The typed classes of one schema key (``"iso2"`` or ``"din"``)."""

    def __init__(self, key: str, modules: tuple[ModuleType, ...]) -> None:
        self.key = key
        self.classes: tuple[type[MessageBase], ...] = tuple(
            obj
            for mod in modules
            for name in mod.__all__
            if isinstance(obj := getattr(mod, name), type) and issubclass(obj, MessageBase)
        )
        self.enums: tuple[type, ...] = tuple(
            obj
            for mod in modules
            for name in mod.__all__
            if isinstance(obj := getattr(mod, name), type) and not issubclass(obj, MessageBase)
        )
        self.by_element: dict[tuple[str, str], type[MessageBase]] = {}
        for cls in self.classes:
            if cls.ELEMENT is not None and "ELEMENT" in cls.__dict__:
                self.by_element.setdefault(cls.ELEMENT, cls)
        self.by_name: dict[str, type[MessageBase]] = {}
        for (_ns, local), cls in self.by_element.items():
            self.by_name[local] = cls
            self.by_name.setdefault(cls.__name__, cls)
        self.namespaces = frozenset(ns for ns, _ in self.by_element)

    def message_class(self, name: str) -> type[MessageBase]:
        """The class of global element ``name`` (element or class name)."""
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no message {name!r} in schema {self.key!r}") from None

    def from_tree(self, root: Any) -> MessageBase:
        """Typed object for a decoded element tree of this scope (typed errors only)."""
        where = f"{{{getattr(root, 'ns', '?')}}}{getattr(root, 'name', '?')}"
        klass = self.by_element.get((getattr(root, "ns", None), getattr(root, "name", None)))  # type: ignore[arg-type]
        if klass is None:
            raise MessageDecodeError(where, f"no typed {self.key} message class for this element")
        try:
            return klass.from_tree(root)
        except MessageValidationError:
            raise
        except RecursionError as exc:
            raise MessageDecodeError(where, "nesting too deep") from exc
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            raise MessageDecodeError(where, f"not a valid {klass.__name__}: {type(exc).__name__}: {exc}") from exc

    def decode(self, data: bytes) -> MessageBase:
        """EXI bytes of a document of this schema -> its typed object (a ``V2GMessage``)."""
        from iso15118.exi.codec import get_codec

        return self.from_tree(get_codec(self.key).decode(data))

    def encode(self, msg: MessageBase) -> bytes:
        """EXI bytes of a typed global element of this schema (normally a ``V2GMessage``)."""
        from iso15118.exi.codec import get_codec

        return get_codec(self.key).encode(msg.to_tree())
