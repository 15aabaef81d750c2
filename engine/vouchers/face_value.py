"""Face values: decimal text -> integer micro-units, checked against the currency's minor units.

Built on :mod:`engine.money` (exact parsing) and :mod:`engine.currencies` (the ISO 4217 table).
"""

from __future__ import annotations

from engine.currencies import MICROS_PER_UNIT, is_currency, minor_units
from engine.errors import shown
from engine.money import AmountBeyondBound, AmountError, format_micros, parse_amount

MAX_FACE_VALUE_MICROS = 10**15  # a billion units: far above any voucher, far below int64


class FaceValueError(ValueError):
    """``code`` is stable (tests and problem lists assert on it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_currency(code: object) -> str:
    if not is_currency(code):
        raise FaceValueError("currency.unknown", f"{code!r} is not an ISO 4217 currency code")
    return str(code)


def parse_face_value(value: object, currency: str) -> int:
    """``"10.50"`` EUR -> 10_500_000 micros; more decimals than the currency has is an error (JPY has none)."""
    check_currency(currency)
    try:
        micros = parse_amount(value)
    except AmountBeyondBound:
        raise FaceValueError("money.range", f"face value {shown(value)} is too large") from None
    except AmountError as exc:
        raise FaceValueError("money.syntax", str(exc)) from None
    if micros <= 0:
        raise FaceValueError("money.not-positive", f"a face value must be greater than zero, got {value}")
    if micros > MAX_FACE_VALUE_MICROS:
        raise FaceValueError("money.range", f"face value {value} is too large")
    places = minor_units(currency)
    if micros % (MICROS_PER_UNIT // 10**places):
        raise FaceValueError("money.precision", f"{currency} has {places} decimal place(s); {value} has more")
    return micros


def format_face_value(micros: int, currency: str) -> str:
    """Exact text with the currency's decimals: 10_500_000 EUR -> ``"10.50"``, 1000 JPY -> ``"1000"``."""
    places = minor_units(currency) if is_currency(currency) else 6
    if micros % (MICROS_PER_UNIT // 10**places):
        places = 6  # never hide a remainder by rounding
    return format_micros(micros, places)


def parse_face_value_limits(text: str) -> dict[str, int]:
    """``"EUR:20.00, JPY:3000"`` -> ``{"EUR": 20_000_000, "JPY": 3_000_000_000}`` (the CSR limits setting)."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        currency, sep, value = item.partition(":")
        if not sep:
            raise FaceValueError("limit.syntax", f"{item!r}: expected CURRENCY:VALUE, e.g. EUR:20.00")
        currency = currency.strip()
        if currency in limits:
            raise FaceValueError("limit.duplicate", f"{currency} is listed twice")
        limits[currency] = parse_face_value(value.strip(), currency)
    return limits
