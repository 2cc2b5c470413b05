"""RationalNumber <-> Decimal / float conversions are exact where they claim to be."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iso15118.messages import MessageValidationError, RationalNumber

SHORT = st.integers(-32768, 32767)
BYTE = st.integers(-128, 127)


@pytest.mark.parametrize(
    "text, value, exponent",
    [
        ("11500", 11500, 0),  # 11.5 kW in W: fits a short, exponent 0
        ("11.5e3", 11500, 0),
        ("1000000", 10000, 2),  # 1 MW: smallest exponent that fits
        ("11.5", 115, -1),
        ("0.001", 1, -3),
        ("-32768", -32768, 0),
        ("32767", 32767, 0),
        ("32770", 3277, 1),
        ("0", 0, 0),
        ("-0.00", 0, 0),
        ("400.0", 400, 0),
        ("1E127", 10000, 123),
        ("1E-128", 1, -128),
        ("-3.2768", -32768, -4),
    ],
)
def test_from_decimal_examples(text: str, value: int, exponent: int) -> None:
    r = RationalNumber.from_decimal(Decimal(text))
    assert (r.value, r.exponent) == (value, exponent)
    assert r.to_decimal() == Decimal(text)


@pytest.mark.parametrize("text", ["32768", "123456", "1.23456", "1E132", "1E-129", "NaN", "Infinity"])
def test_from_decimal_not_representable(text: str) -> None:
    with pytest.raises(MessageValidationError) as info:
        RationalNumber.from_decimal(Decimal(text))
    assert info.value.field_path == "RationalNumber"


def test_constructor_is_positional_value_exponent() -> None:
    r = RationalNumber(115, -1)
    assert r.value == 115 and r.exponent == -1
    assert r == RationalNumber(value=115, exponent=-1)
    assert r.to_decimal() == Decimal("11.5")
    assert float(r) == 11.5
    assert str(RationalNumber(10000, 2)) == "1000000"
    assert str(RationalNumber(-5, -3)) == "-0.005"
    assert RationalNumber.from_decimal(11500) == RationalNumber(11500, 0)
    assert RationalNumber.from_decimal("0.25") == RationalNumber(25, -2)


@given(SHORT, BYTE)
@settings(max_examples=300, deadline=None)
def test_every_wire_value_round_trips_exactly(value: int, exponent: int) -> None:
    d = RationalNumber(value, exponent).to_decimal()
    r = RationalNumber.from_decimal(d)
    assert r.to_decimal() == d
    # canonical: exponent closest to zero among the exact representations
    assert abs(r.exponent) <= abs(exponent) or value == 0 or r.value % 10 == 0 or r.exponent > 0


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
@settings(max_examples=300, deadline=None)
def test_from_decimal_exact_or_error(d: Decimal) -> None:
    try:
        r = RationalNumber.from_decimal(d)
    except MessageValidationError:
        # not representable: more than 5 significant digits, or |value| > 32767, or exponent out of range
        sign, digits, exp = d.normalize(decimal.Context(prec=1000)).as_tuple()
        mantissa = int("".join(map(str, digits)))
        assert mantissa > 32767 or exp > 127 + 4 or exp < -128 or (sign and mantissa > 32768)
        return
    assert r.to_decimal() == d
    assert -32768 <= r.value <= 32767 and -128 <= r.exponent <= 127


@given(st.floats(min_value=-3e130, max_value=3e130, allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_from_float_is_the_nearest_most_precise(x: float) -> None:
    r = RationalNumber.from_float(x)
    assert -32768 <= r.value <= 32767 and -128 <= r.exponent <= 127
    if x == 0 or abs(x) < 1e-124:
        return
    # relative error bounded by half a unit in the 5th significant digit (or the 4th when the
    # leading digits exceed 32767)
    err = abs(float(r) - x) / abs(x)
    assert err <= 6e-4


def test_from_float_rounding_and_fixed_exponent() -> None:
    assert RationalNumber.from_float(11.5) == RationalNumber(115, -1)
    assert RationalNumber.from_float(0.1) == RationalNumber(1, -1)
    assert RationalNumber.from_float(1 / 3) == RationalNumber(3333, -4)
    assert RationalNumber.from_float(229.85, exponent=-1) == RationalNumber(2298, -1)  # float is 229.8499...
    assert RationalNumber.from_float(2.5, exponent=0) == RationalNumber(2, 0)  # half-even
    assert RationalNumber.from_float(2.5, exponent=0, rounding=decimal.ROUND_HALF_UP) == RationalNumber(3, 0)
    assert RationalNumber.from_float(-2.5, exponent=0, rounding=decimal.ROUND_FLOOR) == RationalNumber(-3, 0)
    assert RationalNumber.from_float(0.0) == RationalNumber(0, 0)
    with pytest.raises(MessageValidationError):
        RationalNumber.from_float(40000.0, exponent=0)
    with pytest.raises(MessageValidationError):
        RationalNumber.from_float(float("nan"))
    with pytest.raises(MessageValidationError):
        RationalNumber.from_float(1e140)


@given(SHORT, BYTE)
@settings(max_examples=200, deadline=None)
def test_float_conversion_is_correctly_rounded(value: int, exponent: int) -> None:
    r = RationalNumber(value, exponent)
    try:
        expected = float(r.to_decimal())
    except OverflowError:
        return
    assert float(r) == expected
