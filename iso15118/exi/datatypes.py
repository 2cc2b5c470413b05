"""EXI datatype representations (EXI 1.0 section 7) for schema-typed values.

Each :class:`Datatype` knows four conversions: typed value -> EXI bits
(``encode``), EXI bits -> typed value (``decode``), XML lexical form -> typed
value (``parse``) and typed value -> canonical lexical form (``format``).
Typed values follow the conventions of :mod:`iso15118.exi.tree`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal
import math
import re
from decimal import Decimal
from typing import Any

from iso15118.exi.bits import BitReader, BitWriter
from iso15118.exi.errors import ExiDecodeError, ExiEncodeError, ExiFacetError, ExiLimitError

_WS = " \t\r\n"


class Datatype:
    """Base class; subclasses implement the four conversions."""

    __slots__ = ("name",)
    kind = "abstract"

    def __init__(self, name: str = "") -> None:
        self.name = name  # XSD type name, for messages

    def encode(self, w: BitWriter, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, r: BitReader) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, text: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def format(self, value: Any) -> str:
        return str(value)

    def check(self, value: Any, facets: bool = True) -> Any:
        """Coerce a Python value given in a tree to this datatype, or raise ValueError."""
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable despite __slots__
        return (_rebuild, (type(self), self.__getstate__()))

    def __getstate__(self) -> dict[Any, Any]:
        state = {}
        for cls in type(self).__mro__:
            for s in getattr(cls, "__slots__", ()):
                state[s] = getattr(self, s)
        return state


def _rebuild(cls: type[Datatype], state: dict[Any, Any]) -> Datatype:
    obj = cls.__new__(cls)
    for k, v in state.items():
        setattr(obj, k, v)
    return obj


def _check_length(dt: Any, n: int, unit: str) -> None:
    if dt.min_length is not None and n < dt.min_length:
        raise ValueError(f"length {n} {unit} below minLength {dt.min_length} of {dt.name}")
    if dt.max_length is not None and n > dt.max_length:
        raise ValueError(f"length {n} {unit} above maxLength {dt.max_length} of {dt.name}")


def write_string(w: BitWriter, s: str) -> None:
    """A string value that misses the (capacity 0) value table: length+2, then code points."""
    n = len(s)
    w.uint(n + 2)
    if s.isascii():
        w.raw_bytes(s.encode("ascii"))
    else:
        for ch in s:
            w.uint(ord(ch))


def write_plain_string(w: BitWriter, s: str) -> None:
    """A string with its length (no +2 offset): URIs and local names that miss the table."""
    w.uint(len(s))
    if s.isascii():
        w.raw_bytes(s.encode("ascii"))
    else:
        for ch in s:
            w.uint(ord(ch))


def read_chars(r: BitReader, n: int) -> str:
    if n > r.max_string:
        raise ExiLimitError(f"string of {n} characters exceeds the limit of {r.max_string}", r.pos)
    if n == 0:
        return ""
    start = r.pos
    if start + 8 * n <= r.end:
        raw = r.bits(8 * n).to_bytes(n, "big")
        if raw.isascii():
            return raw.decode("ascii")
        r.pos = start
    out = []
    for _ in range(n):
        cp = r.uint()
        if cp > 0x10FFFF:
            raise ExiDecodeError(f"invalid code point {cp}", r.pos)
        out.append(chr(cp))
    return "".join(out)


def read_string(r: BitReader) -> str:
    n = r.uint()
    if n < 2:
        raise ExiDecodeError("string table hit, but the value partition capacity is 0", r.pos)
    return read_chars(r, n - 2)


class StringDT(Datatype):
    __slots__ = ("min_length", "max_length")
    kind = "string"

    def __init__(self, name: str = "", min_length: int | None = None, max_length: int | None = None) -> None:
        super().__init__(name)
        self.min_length = min_length
        self.max_length = max_length

    def encode(self, w: BitWriter, value: Any) -> None:
        write_string(w, value)

    def decode(self, r: BitReader) -> Any:
        return read_string(r)

    def parse(self, text: str) -> Any:
        return text

    def check(self, value: Any, facets: bool = True) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        if facets:
            _check_length(self, len(value), "characters")
        return value


class BooleanDT(Datatype):
    __slots__ = ()
    kind = "boolean"

    def fixed_value(self, x: int) -> Any:
        return x == 1

    def fixed_code(self, value: Any) -> int:
        return 1 if value else 0

    def encode(self, w: BitWriter, value: Any) -> None:
        w.bits(1 if value else 0, 1)

    def decode(self, r: BitReader) -> Any:
        return r.bits(1) == 1

    def parse(self, text: str) -> Any:
        t = text.strip(_WS)
        if t in ("true", "1"):
            return True
        if t in ("false", "0"):
            return False
        raise ValueError(f"not a boolean: {text!r}")

    def format(self, value: Any) -> str:
        return "true" if value else "false"

    def check(self, value: Any, facets: bool = True) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"expected a bool, got {type(value).__name__}")
        return value


class BinaryDT(Datatype):
    __slots__ = ("hex", "min_length", "max_length")
    kind = "binary"

    def __init__(self, name: str = "", hex: bool = False, min_length: int | None = None, max_length: int | None = None) -> None:
        super().__init__(name)
        self.hex = hex
        self.min_length = min_length
        self.max_length = max_length

    def encode(self, w: BitWriter, value: Any) -> None:
        w.uint(len(value))
        w.raw_bytes(value)

    def decode(self, r: BitReader) -> Any:
        n = r.uint()
        if n > r.max_binary:
            raise ExiLimitError(f"binary of {n} bytes exceeds the limit of {r.max_binary}", r.pos)
        return bytes(r.raw_bytes(n))

    def parse(self, text: str) -> Any:
        t = "".join(text.split())
        try:
            if self.hex:
                return bytes.fromhex(t)
            return base64.b64decode(t, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"not {'hexBinary' if self.hex else 'base64Binary'}: {text[:40]!r}") from exc

    def format(self, value: Any) -> str:
        if self.hex:
            return str(value.hex().upper())
        return base64.b64encode(value).decode("ascii")

    def check(self, value: Any, facets: bool = True) -> Any:
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"expected bytes, got {type(value).__name__}")
        if facets:
            _check_length(self, len(value), "bytes")
        return bytes(value)


class IntegerDT(Datatype):
    """Signed integer (7.1.5): sign bit, then the magnitude (minus one when negative)."""

    __slots__ = ("min", "max")
    kind = "integer"

    def __init__(self, name: str = "", min: int | None = None, max: int | None = None) -> None:
        super().__init__(name)
        self.min = min
        self.max = max

    def encode(self, w: BitWriter, value: Any) -> None:
        if value < 0:
            w.bits(1, 1)
            w.uint(-value - 1)
        else:
            w.bits(0, 1)
            w.uint(value)

    def decode(self, r: BitReader) -> Any:
        if r.bits(1):
            return -r.uint() - 1
        return r.uint()

    def parse(self, text: str) -> Any:
        return int(text.strip(_WS))

    def check(self, value: Any, facets: bool = True) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an int, got {type(value).__name__}")
        if facets and ((self.min is not None and value < self.min) or (self.max is not None and value > self.max)):
            raise ValueError(f"{value} outside [{self.min}, {self.max}]")
        return value


class UnsignedDT(IntegerDT):
    """Non-negative integer: unsigned representation (7.1.6)."""

    __slots__ = ()
    kind = "unsigned"

    def encode(self, w: BitWriter, value: Any) -> None:
        w.uint(value)

    def decode(self, r: BitReader) -> Any:
        return r.uint()


class NBitDT(IntegerDT):
    """Bounded integer with a range of at most 4096: n-bit offset from the minimum (7.1.9)."""

    __slots__ = ("nbits",)
    kind = "nbit"

    min: int
    max: int

    def __init__(self, name: str = "", min: int = 0, max: int = 0) -> None:
        super().__init__(name, min, max)
        rng = max - min + 1
        self.nbits = (rng - 1).bit_length() if rng > 1 else 0

    def encode(self, w: BitWriter, value: Any) -> None:
        w.bits(value - self.min, self.nbits)

    def check(self, value: Any, facets: bool = True) -> Any:
        if facets:
            return super().check(value, True)
        # without facets: whatever the n bits carry (a decoded out-of-facet value re-encodes)
        value = super().check(value, False)
        if not 0 <= value - self.min < (1 << self.nbits):
            raise ValueError(f"{value} cannot be carried by the {self.nbits}-bit field of {self.name} "
                             f"(from {self.min})")
        return value

    def fixed_code(self, value: Any) -> int:
        return int(value) - self.min

    def fixed_value(self, x: int) -> Any:
        """The value of an n-bit field already read; None when out of range."""
        v = x + self.min
        return v if v <= self.max else None

    def decode(self, r: BitReader) -> Any:
        v = r.bits(self.nbits) + self.min
        if v > self.max:
            if getattr(r, "lenient", None) is not None:
                r.lenient.append((self, v, r.pos))  # type: ignore[attr-defined]  # a lenient decode keeps it
                return v
            raise ExiFacetError(f"value {v} outside facet maxInclusive {self.max} of {self.name}", r.pos)
        return v


class DecimalDT(Datatype):
    """Decimal (7.1.3): sign, integral part, fractional digits in reverse order."""

    __slots__ = ("min", "max")
    kind = "decimal"

    def __init__(self, name: str = "", min: Any = None, max: Any = None) -> None:
        super().__init__(name)
        self.min = min
        self.max = max

    def encode(self, w: BitWriter, value: Any) -> None:
        sign, digits, exp = Decimal(value).as_tuple()
        if not isinstance(exp, int):
            raise ExiEncodeError(f"not a finite decimal: {value}")
        ds = "".join(map(str, digits))
        if exp >= 0:
            integral = ds + "0" * exp
            frac = ""
        else:
            cut = len(ds) + exp
            if cut > 0:
                integral, frac = ds[:cut], ds[cut:]
            else:
                integral, frac = "0", "0" * (-cut) + ds
        frac = frac.rstrip("0")
        ival = int(integral or "0")
        fval = int(frac[::-1]) if frac else 0
        w.bits(1 if (sign and (ival or fval)) else 0, 1)
        w.uint(ival)
        w.uint(fval)

    def decode(self, r: BitReader) -> Any:
        neg = r.bits(1)
        ival = r.uint()
        fval = r.uint()
        frac = str(fval)[::-1] if fval else "0"
        d = Decimal(f"{'-' if neg else ''}{ival}.{frac}")
        return d

    def parse(self, text: str) -> Any:
        try:
            d = Decimal(text.strip(_WS))
        except decimal.InvalidOperation as exc:
            raise ValueError(f"not a decimal: {text!r}") from exc
        if not d.is_finite():
            raise ValueError(f"not a decimal: {text!r}")
        return d

    def format(self, value: Any) -> str:
        d = Decimal(value)
        s = format(d, "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
            if s in ("", "-"):
                s = "0"
        return s

    def check(self, value: Any, facets: bool = True) -> Any:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise ValueError(f"expected a Decimal, got {type(value).__name__}")
        d = Decimal(value)
        if not d.is_finite():
            raise ValueError(f"{value} is not a finite decimal")
        if facets and ((self.min is not None and d < self.min) or (self.max is not None and d > self.max)):
            raise ValueError(f"{value} outside [{self.min}, {self.max}]")
        return d

_DT_RE = {
    "dateTime": re.compile(r"(-?\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?"),
    "date": re.compile(r"(-?\d{4})-(\d\d)-(\d\d)(Z|[+-]\d\d:\d\d)?"),
    "gYearMonth": re.compile(r"(-?\d{4})-(\d\d)(Z|[+-]\d\d:\d\d)?"),
    "gYear": re.compile(r"(-?\d{4})(Z|[+-]\d\d:\d\d)?"),
    "gMonthDay": re.compile(r"--(\d\d)-(\d\d)(Z|[+-]\d\d:\d\d)?"),
    "gMonth": re.compile(r"--(\d\d)(Z|[+-]\d\d:\d\d)?"),
    "gDay": re.compile(r"---(\d\d)(Z|[+-]\d\d:\d\d)?"),
    "time": re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?"),
}
_TZ_OFFSET = 14 * 64  # 896


class DateTimeDT(Datatype):
    """Date-Time (7.1.8): Year (Integer, offset from 2000), MonthDay (9 bits), Time (17 bits),
    FractionalSecs (digits reversed) and TimeZone (11 bits), as the XSD type includes them.
    Typed values are the lexical form (``str``), normalized: fraction digits without trailing
    zeros, time zone ``Z`` for +00:00."""

    __slots__ = ("variant",)
    kind = "datetime"

    def __init__(self, name: str, variant: str) -> None:
        super().__init__(name)
        self.variant = variant  # the XSD primitive: dateTime, date, gYear, ... time

    def _parts(self, text: str) -> dict[str, Any]:
        m = _DT_RE[self.variant].fullmatch(text.strip(_WS))
        if m is None:
            raise ValueError(f"not an xs:{self.variant}: {text!r}")
        g = list(m.groups())
        v = self.variant
        out: dict[str, Any] = {"tz": g.pop()}
        if v in ("dateTime", "date", "gYearMonth", "gYear"):
            out["year"] = int(g.pop(0))
        if v in ("dateTime", "date", "gYearMonth", "gMonthDay", "gMonth"):
            out["month"] = int(g.pop(0))
        if v in ("dateTime", "date", "gMonthDay", "gDay"):
            out["day"] = int(g.pop(0))
        if v in ("dateTime", "time"):
            out["time"] = (int(g[0]), int(g[1]), int(g[2]))
            out["frac"] = g[3]
            if out["time"] == (24, 0, 0) and not (g[3] or "").strip("0"):
                # 24:00:00 is 00:00:00 of the next day (the canonical form the reference writes)
                out["time"] = (0, 0, 0)
                if v == "dateTime":
                    if not 1 <= out["year"] <= 9999:
                        raise ValueError(f"24:00:00 of year {out['year']} is not supported: {text!r}")
                    nxt = _dt.date(out["year"], out["month"], out["day"]) + _dt.timedelta(days=1)
                    out["year"], out["month"], out["day"] = nxt.year, nxt.month, nxt.day
        return out

    def encode(self, w: BitWriter, value: Any) -> None:
        p = self._parts(value)
        v = self.variant
        if "year" in p:
            y = p["year"] - 2000
            if y < 0:
                w.bits(1, 1)
                w.uint(-y - 1)
            else:
                w.bits(0, 1)
                w.uint(y)
        if v not in ("gYear", "time"):
            w.bits(p.get("month", 0) * 32 + p.get("day", 0), 9)
        if "time" in p:
            h, mi, sec = p["time"]
            w.bits((h * 64 + mi) * 64 + sec, 17)
            frac = (p["frac"] or "").rstrip("0")
            if frac:
                w.bits(1, 1)
                w.uint(int(frac[::-1]))
            else:
                w.bits(0, 1)
        tz = p["tz"]
        if tz:
            w.bits(1, 1)
            if tz == "Z":
                w.bits(_TZ_OFFSET, 11)
            else:
                sign = -1 if tz[0] == "-" else 1
                w.bits(sign * (int(tz[1:3]) * 64 + int(tz[4:6])) + _TZ_OFFSET, 11)
        else:
            w.bits(0, 1)

    def decode(self, r: BitReader) -> Any:
        v = self.variant
        out = ""
        if v in ("dateTime", "date", "gYearMonth", "gYear"):
            y = (-r.uint() - 1 if r.bits(1) else r.uint()) + 2000
            out = f"-{-y:04d}" if y < 0 else f"{y:04d}"
        if v not in ("gYear", "time"):
            md = r.bits(9)
            month, day = md >> 5, md & 31
            if v in ("dateTime", "date"):
                out += f"-{month:02d}-{day:02d}"
            elif v == "gYearMonth":
                out += f"-{month:02d}"
            elif v == "gMonthDay":
                out = f"--{month:02d}-{day:02d}"
            elif v == "gMonth":
                out = f"--{month:02d}"
            else:
                out = f"---{day:02d}"
        if v in ("dateTime", "time"):
            t = r.bits(17)
            hms = f"{t >> 12:02d}:{(t >> 6) & 63:02d}:{t & 63:02d}"
            out = f"{out}T{hms}" if v == "dateTime" else hms
            if r.bits(1):
                digits = str(r.uint())
                if len(digits) > r.max_string:
                    raise ExiLimitError("fractional seconds too long", r.pos)
                out += "." + digits[::-1]
        if r.bits(1):
            tz = r.bits(11) - _TZ_OFFSET
            if tz == 0:
                out += "Z"
            else:
                a = abs(tz)
                out += f"{'-' if tz < 0 else '+'}{a // 64:02d}:{a % 64:02d}"
        return out

    def parse(self, text: str) -> Any:
        p = self._parts(text)
        for key, hi in (("month", 12), ("day", 31)):
            if key in p and not 1 <= p[key] <= hi:
                raise ValueError(f"{key} {p[key]} out of range in {text!r}")
        if "time" in p and (p["time"][0] > 24 or p["time"][1] > 59 or p["time"][2] > 60):
            raise ValueError(f"time out of range in {text!r}")
        tz = p["tz"]
        if tz and tz != "Z" and (int(tz[1:3]) > 14 or int(tz[4:6]) > 59):
            raise ValueError(f"time zone out of range in {text!r}")
        return text.strip(_WS)

    def check(self, value: Any, facets: bool = True) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected a {self.variant} string, got {type(value).__name__}")
        return self.parse(value)


class FloatDT(Datatype):
    """Float / double (7.1.4): mantissa and base-10 exponent, both as integers."""

    __slots__ = ()
    kind = "float"

    def encode(self, w: BitWriter, value: Any) -> None:
        v = float(value)
        if math.isnan(v):
            m, e = 0, -(1 << 14)
        elif math.isinf(v):
            m, e = (1 if v > 0 else -1), -(1 << 14)
        else:
            d = Decimal(repr(v)).normalize()
            sign, digits, exp = d.as_tuple()
            m = int("".join(map(str, digits))) * (-1 if sign else 1)
            e = int(exp)
            while m and m % 10 == 0:
                m //= 10
                e += 1
            if m == 0:
                e = 0
        for part in (m, e):
            if part < 0:
                w.bits(1, 1)
                w.uint(-part - 1)
            else:
                w.bits(0, 1)
                w.uint(part)

    def decode(self, r: BitReader) -> Any:
        m = -r.uint() - 1 if r.bits(1) else r.uint()
        e = -r.uint() - 1 if r.bits(1) else r.uint()
        if e == -(1 << 14):
            if m == 1:
                return math.inf
            if m == -1:
                return -math.inf
            return math.nan
        return float(Decimal(m).scaleb(e))

    def parse(self, text: str) -> Any:
        t = text.strip(_WS)
        return float({"INF": "inf", "-INF": "-inf", "NaN": "nan"}.get(t, t))

    def format(self, value: Any) -> str:
        v = float(value)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "INF" if v > 0 else "-INF"
        return repr(v).upper().replace("E+", "E")

    def check(self, value: Any, facets: bool = True) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a float, got {type(value).__name__}")
        return float(value)


class EnumDT(Datatype):
    """Enumeration (7.2): n-bit index into the facet values in schema order."""

    __slots__ = ("values", "index", "nbits", "base")
    kind = "enum"

    def __init__(self, name: str, values: list[str], base: Datatype) -> None:
        super().__init__(name)
        self.values = tuple(values)
        self.index = {v: i for i, v in enumerate(self.values)}
        n = len(self.values)
        self.nbits = (n - 1).bit_length() if n > 1 else 0
        self.base = base

    def encode(self, w: BitWriter, value: Any) -> None:
        w.bits(self.index[value], self.nbits)

    def fixed_value(self, x: int) -> Any:
        return self.values[x] if x < len(self.values) else None

    def fixed_code(self, value: Any) -> int:
        return self.index[value]

    def decode(self, r: BitReader) -> Any:
        i = r.bits(self.nbits)
        if i >= len(self.values):
            raise ExiDecodeError(f"enumeration index {i} out of range for {self.name}", r.pos)
        return self.values[i]

    def parse(self, text: str) -> Any:
        t = text if self.base.kind == "string" else text.strip(_WS)
        if t not in self.index:
            t2 = " ".join(text.split())
            if t2 in self.index:
                return t2
            raise ValueError(f"{text!r} is not one of the values of {self.name}")
        return t

    def check(self, value: Any, facets: bool = True) -> Any:
        if value not in self.index:
            raise ValueError(f"{value!r} is not one of the values of {self.name}")
        return value


class ListDT(Datatype):
    """List (7.1.11): item count, then each item in the item type's representation."""

    __slots__ = ("item",)
    kind = "list"

    def __init__(self, name: str, item: Datatype) -> None:
        super().__init__(name)
        self.item = item

    def encode(self, w: BitWriter, value: Any) -> None:
        w.uint(len(value))
        enc = self.item.encode
        for v in value:
            enc(w, v)

    def decode(self, r: BitReader) -> Any:
        n = r.uint()
        if n > r.max_string:
            raise ExiLimitError(f"list of {n} items exceeds the limit", r.pos)
        dec = self.item.decode
        return [dec(r) for _ in range(n)]

    def parse(self, text: str) -> Any:
        return [self.item.parse(t) for t in text.split()]

    def format(self, value: Any) -> str:
        return " ".join(self.item.format(v) for v in value)

    def check(self, value: Any, facets: bool = True) -> Any:
        return [self.item.check(v, facets) for v in value]


UNTYPED = StringDT("untyped")
