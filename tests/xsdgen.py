"""Random, schema-valid XML instances for any global element of a schema key, driven by the XSDs.

    >>> gen = XsdGenerator("common")
    >>> xml = gen.generate("AuthorizationReq", seed=7)       # bytes, deterministic per seed
    >>> gen.roots()                                          # the global elements that can be roots

What it does, from the xmlschema components of the schema:

* elements: abstract elements are replaced by a non-abstract member of their substitution group
  (chosen at random, itself included when not abstract); elements of an abstract type get an
  ``xsi:type`` of a non-abstract derived type; ``fixed`` values are honoured;
* content models: sequences in order, one branch of each choice, ``xs:all`` shuffled; every particle
  occurs between ``minOccurs`` and ``maxOccurs`` times (unbounded capped at ``max_unbounded``);
  recursion depth is capped (deep particles get their minimum);
* simple values: within the facets in force (enumeration, length / minLength / maxLength, min/max
  Inclusive/Exclusive, totalDigits, fractionDigits), with a bias towards edge values (bounds, 0,
  empty, max length) and lexical variety (``+5``, ``007``, `` 5\n``, ``1`` for true, lower-case hex,
  base64 with line breaks); ``pattern`` facets are not honoured (the ISO 15118 XSDs have none);
* attributes: required ones always, optional ones half of the time; ``xs:ID`` values are unique;
* wildcards (``xs:any``, ``xs:anyAttribute``) stay empty; a particle that cannot be satisfied
  without wildcard content makes :meth:`XsdGenerator.generate` raise :class:`Unsatisfiable`.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from lxml import etree

from tools.infoset import XS, XSI, element_decl, load_schema

_UNBOUNDED_INT = 10**25


class Unsatisfiable(Exception):
    """The element cannot be generated without wildcard content (or has no concrete form)."""


def _local(name: str) -> str:
    return name.split("}", 1)[1] if name.startswith("{") else name


def _ns(name: str) -> str:
    return name[1:].split("}", 1)[0] if name.startswith("{") else ""


class _Facets:
    """The facets in force for a simple type (its own and those of its base types)."""

    def __init__(self, xsd_type: Any) -> None:
        self.enumeration: list[str] | None = None
        self.length: int | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.min_inc: Decimal | None = None
        self.max_inc: Decimal | None = None
        self.total_digits: int | None = None
        self.fraction_digits: int | None = None
        self.primitive = "string"
        self.builtin = "string"
        t = xsd_type
        depth = 0
        found_builtin = False
        while t is not None and depth < 40:
            depth += 1
            name = getattr(t, "name", None) or ""
            if name.startswith("{%s}" % XS) and not found_builtin:
                found_builtin = True
                self.builtin = _local(name)
                if self.builtin in ("anySimpleType", "anyAtomicType"):
                    self.builtin = "string"
            facets = getattr(t, "facets", None) or {}
            for fname, facet in facets.items():
                if fname is None:
                    continue
                local = _local(fname)
                value = getattr(facet, "value", None)
                if local == "enumeration" and self.enumeration is None:
                    enum = getattr(facet, "enumeration", None)
                    if enum:
                        self.enumeration = [str(v) for v in enum]
                elif local == "length" and self.length is None:
                    self.length = int(value)
                elif local == "minLength":
                    self.min_length = max(self.min_length or 0, int(value))
                elif local == "maxLength":
                    self.max_length = int(value) if self.max_length is None else min(self.max_length, int(value))
                elif local == "minInclusive":
                    self._lower(Decimal(str(value)))
                elif local == "minExclusive":
                    self._lower(Decimal(str(value)) + 1 if self._is_int_value(value) else Decimal(str(value)))
                elif local == "maxInclusive":
                    self._upper(Decimal(str(value)))
                elif local == "maxExclusive":
                    self._upper(Decimal(str(value)) - 1 if self._is_int_value(value) else Decimal(str(value)))
                elif local == "totalDigits":
                    self.total_digits = int(value) if self.total_digits is None else min(self.total_digits, int(value))
                elif local == "fractionDigits":
                    self.fraction_digits = int(value) if self.fraction_digits is None else min(
                        self.fraction_digits, int(value))
            t = getattr(t, "base_type", None)
        # Name of the primitive type
        prim = getattr(xsd_type, "primitive_type", None)
        pname = getattr(prim, "name", None)
        if pname:
            self.primitive = _local(pname)
        if self.builtin == "string" and self.primitive != "string":
            self.builtin = self.primitive

    @staticmethod
    def _is_int_value(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def _lower(self, v: Decimal) -> None:
        self.min_inc = v if self.min_inc is None else max(self.min_inc, v)

    def _upper(self, v: Decimal) -> None:
        self.max_inc = v if self.max_inc is None else min(self.max_inc, v)


_INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "long": (-2**63, 2**63 - 1),
    "int": (-2**31, 2**31 - 1),
    "short": (-2**15, 2**15 - 1),
    "byte": (-128, 127),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
}


class XsdGenerator:
    """Seeded generator of schema-valid XML instances for the global elements of a schema key."""

    def __init__(self, key: str, max_unbounded: int = 3, max_depth: int = 12, max_string: int = 24,
                 max_binary: int = 40, lexical_variants: bool = True) -> None:
        """``lexical_variants``: sometimes write typed values in a non-canonical but equal lexical form
        (surrounding whitespace, leading zeros, base64 line breaks), which an encoder must normalize."""
        self.key = key
        self.lexical_variants = lexical_variants
        self.schema = load_schema(key)
        self.max_unbounded = max_unbounded
        self.max_depth = max_depth
        self.max_string = max_string
        self.max_binary = max_binary
        self._subst = self._substitution_members()
        self._derived_cache: dict[str, list[Any]] = {}
        self._ids: set[str] = set()
        self.dangling_idrefs: list[str] = []
        """IDREF values of the last document that name no ID (DIN SPEC 70121 uses IDREF for Id)."""

    # -- schema helpers -------------------------------------------------------------------------
    def _substitution_members(self) -> dict[str, list[Any]]:
        """Head element name -> every (transitive) member element declaration."""
        direct: dict[str, list[Any]] = {}
        for _name, decl in self.schema.maps.elements.items():
            head = getattr(decl, "substitution_group", None)
            if head:
                direct.setdefault(head, []).append(decl)
        closure: dict[str, list[Any]] = {}

        def walk(head: str, acc: list[Any], seen: set[str]) -> None:
            for m in direct.get(head, []):
                if m.name in seen:
                    continue
                seen.add(m.name)
                acc.append(m)
                walk(m.name, acc, seen)

        for head in direct:
            acc: list[Any] = []
            walk(head, acc, set())
            closure[head] = sorted(acc, key=lambda d: d.name)
        return closure

    def _concrete_decls(self, decl: Any) -> list[Any]:
        """Non-abstract declarations that may stand in for ``decl`` (itself or group members)."""
        out = [] if getattr(decl, "abstract", False) else [decl]
        name = decl.name
        if getattr(decl, "ref", None) is not None:
            name = decl.ref.name
        glob = self.schema.maps.elements.get(name)
        if glob is not None and (glob is decl or getattr(decl, "ref", None) is not None):
            out.extend(m for m in self._subst.get(name, []) if not getattr(m, "abstract", False))
        return out

    def _concrete_types(self, xsd_type: Any) -> list[Any]:
        key = xsd_type.name or repr(xsd_type)
        if key not in self._derived_cache:
            found = []
            for t in self.schema.maps.types.values():
                if getattr(t, "abstract", False) or not getattr(t, "name", None):
                    continue
                try:
                    if t is not xsd_type and t.is_derived(xsd_type):
                        found.append(t)
                except Exception:  # noqa: BLE001
                    continue
            self._derived_cache[key] = sorted(found, key=lambda t: t.name)
        return self._derived_cache[key]

    def roots(self, namespaces: set[str] | None = None) -> list[str]:
        """Global elements that can be generated (not abstract without members), optionally by namespace."""
        out = []
        for name, decl in sorted(self.schema.maps.elements.items()):
            if _ns(name) == XS:
                continue
            if namespaces is not None and _ns(name) not in namespaces:
                continue
            if not self._concrete_decls(decl):
                continue
            out.append(name)
        return out

    def id_elements(self) -> list[str]:
        """Element declarations (global or local, outside xmldsig) whose type has an ``Id`` attribute.

        These are what ISO 15118 signatures reference, and so what is encoded as an EXI fragment.
        """
        from tools.infoset import _all_element_decls

        out = []
        for name, decl in _all_element_decls(self.key).items():
            if _ns(name) == "http://www.w3.org/2000/09/xmldsig#" or getattr(decl, "type", None) is None:
                continue
            attrs = getattr(decl.type, "attributes", None) or {}
            if any(k and _local(k) == "Id" for k in attrs):
                out.append(name)
        return sorted(out)

    def target_roots(self) -> list[str]:
        """Global elements of the schema's own target namespace."""
        return self.roots({self.schema.target_namespace})

    # -- generation -----------------------------------------------------------------------------
    def local_elements(self) -> dict[str, Any]:
        """Local element declarations by expanded name (roots of EXI fragments), first one per name."""
        from tools.infoset import _all_element_decls

        return {n: d for n, d in _all_element_decls(self.key).items() if n not in self.schema.maps.elements}

    def generate(self, root: str, seed: int, local: bool = False) -> bytes:
        """One instance of the global element ``root`` (expanded or local name) as UTF-8 XML bytes.

        With ``local=True`` a local element declaration may be the root (an EXI fragment).
        """
        decl = self.schema.maps.elements.get(root)
        if decl is None:
            matches = [d for n, d in self.schema.maps.elements.items() if _local(n) == root]
            decl = matches[0] if matches else None
        if decl is None and local:
            decl = element_decl(self.key, root) if root.startswith("{") else next(
                (d for n, d in self.local_elements().items() if _local(n) == root), None)
        if decl is None:
            raise KeyError(f"{root} is not a {'' if local else 'global '}element of schema {self.key}")
        rng = random.Random(f"{self.key}/{decl.name}/{seed}")
        self._ids: set[str] = set()
        self.dangling_idrefs: list[str] = []
        self._prefixes: dict[str, str] = {}
        el = self._element(decl, rng, depth=0, parent=None)
        if el is None:
            raise Unsatisfiable(root)
        return etree.tostring(el, encoding="utf-8")

    def generate_many(self, root: str, seeds: range | list[int], local: bool = False) -> Iterator[tuple[int, bytes]]:
        """``(seed, xml)`` for each seed."""
        for s in seeds:
            yield s, self.generate(root, s, local=local)

    def _prefix(self, ns: str) -> str:
        if ns not in self._prefixes:
            self._prefixes[ns] = f"n{len(self._prefixes)}"
        return self._prefixes[ns]

    def _make(self, name: str, parent: etree._Element | None) -> etree._Element:
        ns = _ns(name)
        if parent is None:
            nsmap = {self._prefix(ns): ns} if ns else {}
            return etree.Element(name, nsmap=nsmap)
        if ns and ns not in parent.nsmap.values():
            return etree.SubElement(parent, name, nsmap={self._prefix(ns): ns})
        return etree.SubElement(parent, name)

    def _element(self, decl: Any, rng: random.Random, depth: int, parent: etree._Element | None) -> Any:
        choices = self._concrete_decls(decl)
        if not choices:
            raise Unsatisfiable(f"abstract element {decl.name} has no concrete member")
        concrete = rng.choice(choices)
        name = concrete.name
        el = self._make(name, parent)
        xsd_type = concrete.type
        if getattr(xsd_type, "abstract", False):
            derived = self._concrete_types(xsd_type)
            if not derived:
                raise Unsatisfiable(f"abstract type {xsd_type.name} has no concrete derived type")
            xsd_type = rng.choice(derived)
            tns = _ns(xsd_type.name)
            root = el
            while root.getparent() is not None:
                root = root.getparent()
            prefix = next((p for p, u in el.nsmap.items() if u == tns and p), None)
            if prefix is None:
                # Declare the namespace on this element by re-creating it with an extended nsmap.
                prefix = self._prefix(tns)
                nsmap = dict(el.nsmap)
                nsmap[prefix] = tns
                nsmap.setdefault("xsi", XSI)
                new = etree.Element(name, nsmap=nsmap)
                if parent is not None:
                    parent.replace(el, new)
                el = new
            if "xsi" not in el.nsmap:
                nsmap = dict(el.nsmap)
                nsmap["xsi"] = XSI
                new = etree.Element(name, nsmap=nsmap)
                if parent is not None:
                    parent.replace(el, new)
                el = new
            el.set(f"{{{XSI}}}type", f"{prefix}:{_local(xsd_type.name)}")
        fixed = getattr(concrete, "fixed", None)
        if xsd_type.is_simple():
            el.text = str(fixed) if fixed is not None else self._simple_value(xsd_type, rng)
            return el
        self._attributes(el, xsd_type, rng)
        if xsd_type.has_simple_content():
            el.text = str(fixed) if fixed is not None else self._simple_value(xsd_type.content, rng)
            return el
        content = xsd_type.content
        if getattr(xsd_type, "mixed", False) and rng.random() < 0.3:
            el.text = self._string(rng, 1, 8)
        if content is not None and hasattr(content, "model"):
            self._group(content, el, rng, depth + 1, occurs=None)
        return el

    def _attributes(self, el: etree._Element, xsd_type: Any, rng: random.Random) -> None:
        for name, attr in (getattr(xsd_type, "attributes", None) or {}).items():
            if name is None or not hasattr(attr, "type"):
                continue  # anyAttribute wildcard: stays empty
            if getattr(attr, "use", "optional") == "prohibited":
                continue
            required = getattr(attr, "use", "optional") == "required"
            if not required and rng.random() < 0.5:
                continue
            fixed = getattr(attr, "fixed", None)
            el.set(name, str(fixed) if fixed is not None else self._simple_value(attr.type, rng))

    def _count(self, particle: Any, rng: random.Random, depth: int) -> int:
        lo = particle.min_occurs
        hi = particle.max_occurs
        if depth >= self.max_depth:
            return lo
        if hi is None:
            hi = lo + self.max_unbounded
        hi = max(lo, min(hi, lo + self.max_unbounded + 2))
        r = rng.random()
        if r < 0.2:
            return lo
        if r < 0.35:
            return hi
        return rng.randint(lo, hi)

    def _group(self, group: Any, el: etree._Element, rng: random.Random, depth: int, occurs: int | None) -> None:
        if not self._satisfiable_once(group):
            if group.min_occurs == 0 and occurs is None:
                return
            raise Unsatisfiable(f"{group.model} group needs wildcard content")
        n = self._count(group, rng, depth) if occurs is None else occurs
        for _ in range(n):
            if group.model == "choice":
                options = [p for p in group if self._satisfiable(p)]
                self._particle(rng.choice(options), el, rng, depth)
            elif group.model == "all":
                items = list(group)
                rng.shuffle(items)
                for p in items:
                    self._particle(p, el, rng, depth)
            else:
                for p in group:
                    self._particle(p, el, rng, depth)

    def _satisfiable_once(self, group: Any) -> bool:
        """True when one occurrence of ``group`` can be produced without wildcard content."""
        if group.model == "choice":
            return any(self._satisfiable(p) for p in group)
        return all(self._satisfiable(p) for p in group)

    def _satisfiable(self, particle: Any) -> bool:
        """False for a wildcard that must occur (wildcard content stays empty)."""
        if hasattr(particle, "model"):
            if particle.min_occurs == 0:
                return True
            if particle.model == "choice":
                return any(self._satisfiable(p) for p in particle)
            return all(self._satisfiable(p) for p in particle)
        if getattr(particle, "type", None) is None and not hasattr(particle, "name"):
            return particle.min_occurs == 0
        if particle.__class__.__name__.endswith("AnyElement"):
            return particle.min_occurs == 0
        return True

    def _particle(self, p: Any, el: etree._Element, rng: random.Random, depth: int) -> None:
        if hasattr(p, "model"):
            self._group(p, el, rng, depth, occurs=None)
            return
        if p.__class__.__name__.endswith("AnyElement"):
            if p.min_occurs > 0:
                raise Unsatisfiable("required wildcard")
            return
        for _ in range(self._count(p, rng, depth)):
            self._element(p, rng, depth, el)

    # -- simple values --------------------------------------------------------------------------
    def _simple_value(self, xsd_type: Any, rng: random.Random) -> str:
        text = self._canonical_value(xsd_type, rng)
        if self.lexical_variants and rng.random() < 0.08:
            f = _Facets(xsd_type) if not (getattr(xsd_type, "is_list", lambda: False)() or
                                           getattr(xsd_type, "is_union", lambda: False)()) else None
            if f is not None and not f.enumeration:
                text = self._lexical_variant(text, f, rng)
        return text

    @staticmethod
    def _lexical_variant(text: str, f: _Facets, rng: random.Random) -> str:
        """An equal value in another lexical form (only for whitespace-collapsing, non-string types)."""
        prim = f.primitive
        if prim not in ("boolean", "decimal", "float", "double", "hexBinary", "base64Binary") or not text:
            # A whitespace-only value (an empty binary padded with blanks) is left out: EXIficient
            # drops whitespace-only character data and encodes the element as if it had none.
            return text
        choice = rng.random()
        if prim == "decimal" and choice < 0.4 and text.lstrip("+-").isdigit():
            sign = "-" if text.startswith("-") else ""
            return f"{sign}00{text.lstrip('+-')}"
        if prim == "base64Binary" and choice < 0.5 and len(text) > 8:
            return "\n".join(text[i:i + 8] for i in range(0, len(text), 8)) + "\n"
        if prim == "boolean" and choice < 0.4:
            return {"true": "1", "false": "0", "1": "true", "0": "false"}[text]
        return rng.choice([" ", "\n", "\t", "  \n "]) + text + rng.choice([" ", "\n", "\r\n", "\t "])

    def _canonical_value(self, xsd_type: Any, rng: random.Random) -> str:
        if getattr(xsd_type, "is_list", lambda: False)():
            item = xsd_type.item_type
            return " ".join(self._simple_value(item, rng) for _ in range(rng.randint(1, 3)))
        if getattr(xsd_type, "is_union", lambda: False)():
            return self._simple_value(rng.choice(list(xsd_type.member_types)), rng)
        f = _Facets(xsd_type)
        if f.enumeration:
            return rng.choice(f.enumeration)
        b = f.builtin
        if b == "boolean":
            return rng.choice(["true", "false", "1", "0"])
        if b in _INT_RANGES or (f.primitive == "decimal" and f.fraction_digits == 0):
            return self._integer(f, rng)
        if f.primitive == "decimal":
            return self._decimal(f, rng)
        if f.primitive in ("float", "double"):
            return self._float(rng)
        if f.primitive == "hexBinary":
            data = self._bytes(f, rng)
            text = data.hex()
            return text.upper() if rng.random() < 0.7 else text
        if f.primitive == "base64Binary":
            return base64.b64encode(self._bytes(f, rng)).decode("ascii")
        if f.primitive == "anyURI":
            return self._uri(f, rng)
        if f.primitive == "dateTime":
            return f"20{rng.randint(10, 40)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T" \
                   f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        if f.primitive == "date":
            return f"20{rng.randint(10, 40)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if f.primitive == "QName":
            return "xs:string"
        if b == "IDREF":
            if self._ids:
                return rng.choice(sorted(self._ids))
            ref = self._ncname(rng, unique=False)
            self.dangling_idrefs.append(ref)
            return ref
        if b == "ID" or b == "NCName" or b == "Name":
            return self._ncname(rng, unique=(b == "ID"))
        if b in ("token", "NMTOKEN", "language", "normalizedString"):
            return self._string(rng, *self._length_bounds(f, 1), alphabet=string.ascii_letters + string.digits)
        return self._string(rng, *self._length_bounds(f, 0))

    def _length_bounds(self, f: _Facets, default_min: int) -> tuple[int, int]:
        if f.length is not None:
            return f.length, f.length
        lo = f.min_length if f.min_length is not None else default_min
        hi = f.max_length if f.max_length is not None else max(lo, self.max_string)
        return lo, max(lo, hi)

    def _pick_length(self, rng: random.Random, lo: int, hi: int, cap: int) -> int:
        r = rng.random()
        if r < 0.15:
            return lo
        if r < 0.3:
            return hi
        return rng.randint(lo, max(lo, min(hi, lo + cap)))

    def _string(self, rng: random.Random, lo: int, hi: int, alphabet: str | None = None) -> str:
        n = self._pick_length(rng, lo, hi, self.max_string)
        pool = alphabet or (string.ascii_letters + string.digits + "-_.:/ ")
        chars = [rng.choice(pool) for _ in range(n)]
        if alphabet is None and n and rng.random() < 0.15:
            chars[rng.randrange(n)] = rng.choice("äöüßé€Ω中")
        text = "".join(chars)
        if alphabet is None and text and (text[0] == " " or text[-1] == " "):
            text = "x" + text[1:-1] + "x" if len(text) > 1 else "x"
        if alphabet is None and len(text) >= 3 and rng.random() < 0.05:
            # xs:string preserves whitespace: a leading and a trailing blank are content
            text = " " + text[1:-1] + " "
        return text

    def _ncname(self, rng: random.Random, unique: bool) -> str:
        while True:
            n = rng.randint(1, 12)
            name = rng.choice(string.ascii_letters + "_") + "".join(
                rng.choice(string.ascii_letters + string.digits + "-._") for _ in range(n - 1))
            if not unique or name not in self._ids:
                if unique:
                    self._ids.add(name)
                return name

    def _uri(self, f: _Facets, rng: random.Random) -> str:
        lo, hi = self._length_bounds(f, 0)
        bases = ["urn:iso:std:iso:15118:-20:DC", "urn:iso:15118:2:2013:MsgDef",
                 "http://www.w3.org/2001/04/xmlenc#sha512", "#id1", "https://example.com/x?y=1"]
        base = rng.choice(bases)
        if len(base) > hi:
            base = base[:hi]
        while len(base) < lo:
            base += "a"
        return base

    def _bytes(self, f: _Facets, rng: random.Random) -> bytes:
        if f.length is not None:
            n = f.length
        else:
            lo = f.min_length or 0
            hi = f.max_length if f.max_length is not None else max(lo, self.max_binary)
            n = self._pick_length(rng, lo, hi, self.max_binary)
        return bytes(rng.getrandbits(8) for _ in range(n))

    def _integer(self, f: _Facets, rng: random.Random) -> str:
        lo, hi = _INT_RANGES.get(f.builtin, (None, None))
        if f.min_inc is not None:
            lo = int(f.min_inc) if lo is None else max(lo, int(f.min_inc))
        if f.max_inc is not None:
            hi = int(f.max_inc) if hi is None else min(hi, int(f.max_inc))
        if f.total_digits is not None:
            lim = 10**f.total_digits - 1
            lo = -lim if lo is None else max(lo, -lim)
            hi = lim if hi is None else min(hi, lim)
        lo_eff = lo if lo is not None else -_UNBOUNDED_INT
        hi_eff = hi if hi is not None else _UNBOUNDED_INT
        r = rng.random()
        edges = [lo_eff, hi_eff, 0, 1, -1, lo_eff + 1, hi_eff - 1, 63, 64, 127, 128, 255, 256, -64, -65]
        if r < 0.35:
            v = rng.choice(edges)
        elif r < 0.7:
            v = rng.randint(-300, 70000)
        else:
            v = rng.randint(lo_eff, hi_eff)
        v = min(max(v, lo_eff), hi_eff)
        text = str(v)
        if rng.random() < 0.05 and v >= 0:
            text = "+" + text
        return text

    def _decimal(self, f: _Facets, rng: random.Random) -> str:
        frac = f.fraction_digits if f.fraction_digits is not None else rng.choice([0, 1, 2, 3, 6])
        frac = min(frac, rng.randint(0, 6))
        total = f.total_digits or 18
        int_digits = max(1, total - frac)
        ival = rng.choice([0, 1, rng.randint(0, 10 ** min(int_digits, 12) - 1)])
        fval = rng.randint(0, 10**frac - 1) if frac else 0
        text = f"{ival}.{fval:0{frac}d}" if frac else str(ival)
        d = Decimal(text)
        if rng.random() < 0.4:
            d = -d
            text = "-" + text
        if f.min_inc is not None and d < f.min_inc:
            text = str(f.min_inc)
        if f.max_inc is not None and Decimal(text) > f.max_inc:
            text = str(f.max_inc)
        return text

    def _float(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.1:
            return rng.choice(["INF", "-INF", "NaN", "0", "-0"])
        m = rng.randint(-(10**7), 10**7)
        e = rng.randint(-20, 20)
        return f"{m}E{e}"
