"""Exact conversions for ``RationalNumberType`` (``Value`` × 10^``Exponent``).

The schema makes ``Value`` an ``xs:short`` (-32768 … 32767) and ``Exponent`` an ``xs:byte``
(-128 … 127).  A number usually has several exact representations (11500 W is
11500e0 = 1150e1 = 115e2); :meth:`RationalNumberMixin.from_decimal` picks the one whose
exponent is closest to zero, so values that fit a short keep exponent 0 and larger ones
use the smallest positive exponent that fits (1 000 000 -> 10000e2).

Equality (``==``) of RationalNumber objects is structural, i.e. of the wire representation:
``RationalNumber(115, -1) != RationalNumber(1150, -2)``.  Compare amounts with
``a.to_decimal() == b.to_decimal()``.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

SHORT_MIN = -32768
SHORT_MAX = 32767
BYTE_MIN = -128
BYTE_MAX = 127


class RationalNumberMixin:
    """Methods of :class:`iso15118.messages.RationalNumber` beyond the generated ones."""

    __slots__ = ()

    value: int
    exponent: int

    @classmethod
    def from_decimal(cls, number: Decimal | int | str) -> Any:
        """The exact representation of ``number`` with the exponent closest to zero.

        Raises ``ValueError`` (a :class:`MessageValidationError`) when ``number`` needs more
        than the five significant digits of an ``xs:short`` or an exponent outside ``xs:byte``.
        """
        from iso15118.messages._base import MessageValidationError

        new: Any = cls  # the generated dataclass (the mixin does not declare its __init__)
        d = number if isinstance(number, Decimal) else Decimal(number)
        if not d.is_finite():
            raise MessageValidationError("RationalNumber", f"{d} is not finite")
        sign, digits, exp = d.as_tuple()
        assert isinstance(exp, int)  # a finite Decimal has an integer exponent
        mantissa = int("".join(map(str, digits))) if digits else 0
        if mantissa == 0:
            return new(value=0, exponent=0)
        while mantissa % 10 == 0:  # normalise: strip trailing zeros into the exponent
            mantissa //= 10
            exp += 1
        if sign:
            mantissa = -mantissa
        if not SHORT_MIN <= mantissa <= SHORT_MAX:
            raise MessageValidationError(
                "RationalNumber", f"{d} has too many significant digits for an xs:short Value"
            )
        if exp > 0:
            # shift digits back into the value while it still fits, to bring exp towards 0
            while exp > 0 and SHORT_MIN <= mantissa * 10 <= SHORT_MAX:
                mantissa *= 10
                exp -= 1
        if not BYTE_MIN <= exp <= BYTE_MAX:
            raise MessageValidationError(
                "RationalNumber", f"{d} needs exponent {exp}, outside xs:byte [-128, 127]"
            )
        return new(value=mantissa, exponent=exp)

    @classmethod
    def from_float(
        cls,
        number: float,
        *,
        exponent: int | None = None,
        rounding: str = decimal.ROUND_HALF_EVEN,
    ) -> Any:
        """Round ``number`` to a RationalNumber.

        With ``exponent`` given, the result is ``round(number / 10**exponent)`` with that
        exponent (error if the value does not fit an ``xs:short``).  Without it, the smallest
        exponent whose rounded value fits is used (the most precise representation), then the
        result is normalised as in :meth:`from_decimal`.  ``rounding`` is a :mod:`decimal`
        rounding mode.
        """
        from iso15118.messages._base import MessageValidationError

        new: Any = cls  # the generated dataclass (the mixin does not declare its __init__)
        d = Decimal(number)  # exact binary value of the float
        if not d.is_finite():
            raise MessageValidationError("RationalNumber", f"{number} is not finite")
        if exponent is not None:
            value = int(d.scaleb(-exponent).to_integral_value(rounding=rounding))
            if not SHORT_MIN <= value <= SHORT_MAX:
                raise MessageValidationError(
                    "RationalNumber", f"{number} does not fit an xs:short with exponent {exponent}"
                )
            return new(value=value, exponent=exponent)
        if d == 0:
            return new(value=0, exponent=0)
        # first guess from the magnitude, then adjust so the rounded value just fits
        e = d.adjusted() - 4
        e = max(BYTE_MIN, min(BYTE_MAX, e))
        with decimal.localcontext() as ctx:
            ctx.prec = 60
            while True:
                value = int(d.scaleb(-e).to_integral_value(rounding=rounding))
                if SHORT_MIN <= value <= SHORT_MAX:
                    if e > BYTE_MIN:
                        finer = int(d.scaleb(-(e - 1)).to_integral_value(rounding=rounding))
                        if SHORT_MIN <= finer <= SHORT_MAX:
                            e -= 1
                            continue
                    break
                if e >= BYTE_MAX:
                    raise MessageValidationError("RationalNumber", f"{number} is too large")
                e += 1
        if value == 0:
            return new(value=0, exponent=0)
        return cls.from_decimal(Decimal(value).scaleb(e))

    def to_decimal(self) -> Decimal:
        """The exact value as a :class:`decimal.Decimal`."""
        return Decimal(self.value).scaleb(self.exponent)

    def __float__(self) -> float:
        """The value as the nearest float (correctly rounded)."""
        if self.exponent >= 0:
            return float(self.value * 10**self.exponent)
        return float(self.value / 10 ** (-self.exponent))

    def __str__(self) -> str:
        return format(self.to_decimal(), "f")
