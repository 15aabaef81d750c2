"""Money arithmetic: integer micro-units and exact rationals, never floats.

An amount is held as integer micro-units (1 currency unit = 1_000_000 micros).
Rating accumulates exact rationals as ``numerator / denominator`` micros (a
price per 60 s times 70 s is 0.1166... units, not representable in micros) and
rounds **once**, at the place the plan says, with the plan's mode and decimals.

Amounts in plan files are written as text (``"0.10"``) or integers; a YAML
float (``0.10`` unquoted) is refused by the loader precisely because it has
already lost exactness by the time we see it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from fractions import Fraction

from engine.currencies import MINOR_UNITS
from engine.errors import shown

MICROS = 1_000_000
MAX_DECIMALS = 6  # a micro is the smallest amount we keep
# The largest amount, in absolute value, of any one money value Rulebill takes in or charges: a price, fee, cap or discount
# of a plan, a one-off charge, a payment, a credit limit, a credit-note line, the charge of one CDR, an account's bill
# total.  A billion currency units: int64 micro-units end at 9.2 * 10**18, so thousands of such amounts still add up
# without overflow, and anything larger is a mistake or a probe.
MAX_AMOUNT_MICROS = 10**15
_BEYOND = f"is beyond the largest amount Rulebill takes (at most {MAX_AMOUNT_MICROS // MICROS} currency units either way)"
MAX_WHOLE_DIGITS = 10  # digits before the decimal point MAX_AMOUNT_MICROS allows; a longer number is refused unread

_AMOUNT = re.compile(r"^([+-])?(\d+)(?:\.(\d+))?$")


class RoundingMode(str, Enum):
    UP = "up"              # away from zero (ceiling for charges)
    DOWN = "down"          # towards zero (truncate)
    HALF_UP = "half_up"    # ties away from zero
    HALF_EVEN = "half_even"  # ties to the even neighbour (banker's)


class AmountError(ValueError):
    pass


class AmountBeyondBound(AmountError):
    """An amount beyond :data:`MAX_AMOUNT_MICROS`."""


def parse_amount(value: object) -> int:
    """``"0.10"`` / ``"-3"`` / ``7`` -> micros.  More than 6 decimals is an error, floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise AmountError("write amounts as quoted text (\"0.10\") or integers, not floating point numbers")
    if isinstance(value, int):
        return within_bound(value * MICROS, value)
    if isinstance(value, Decimal):
        value = format(value, "f")
    if not isinstance(value, str):
        raise AmountError(f"not an amount: {value!r}")
    m = _AMOUNT.match(value.strip())
    if not m:
        raise AmountError(f"not an amount: {value!r} (expected digits with an optional '.' and up to 6 decimals)")
    sign, whole, frac = m.groups()
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise AmountBeyondBound(f"{shown(value)} has more than {MAX_WHOLE_DIGITS} digits before the decimal point: it {_BEYOND}")
    frac = frac or ""
    if len(frac) > MAX_DECIMALS:
        if frac[MAX_DECIMALS:].strip("0"):
            raise AmountError(f"{value!r} has more than {MAX_DECIMALS} decimals")
        frac = frac[:MAX_DECIMALS]
    micros = int(whole) * MICROS + int((frac + "000000")[:MAX_DECIMALS])
    return within_bound(-micros if sign == "-" else micros, value)


def beyond_bound(micros: int) -> bool:
    """Whether an amount is beyond :data:`MAX_AMOUNT_MICROS` (either sign)."""
    return not -MAX_AMOUNT_MICROS <= micros <= MAX_AMOUNT_MICROS


def bound_message(micros: int) -> str:
    """Why an amount beyond :data:`MAX_AMOUNT_MICROS` is refused (for an error on its field or a reject reason)."""
    return f"{format_micros(micros)} {_BEYOND}"


def within_bound(micros: int, value: object) -> int:
    if beyond_bound(micros):
        raise AmountBeyondBound(f"{shown(value)} {_BEYOND}")
    return micros


def parse_percent(value: object) -> Fraction:
    """``"12.5"`` -> Fraction(1, 8).  Exact; same spelling rules as amounts."""
    return Fraction(parse_amount(value), 100 * MICROS)


def format_micros(micros: int, decimals: int = 6) -> str:
    """Micros -> fixed-point text with ``decimals`` digits (digits beyond are cut, round first)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    if decimals <= 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{f'{frac:06d}'[:min(decimals, 6)]}"


def minor_units(currency: str) -> int:
    """The currency's ISO 4217 minor-unit digits (JPY 0, EUR 2, KWD 3); 2 for an unknown or empty code."""
    return MINOR_UNITS.get(currency, 2)


def format_amount(micros: int, currency: str = "") -> str:
    """Shortest exact text with at least the currency's minor-unit digits (2 without a currency).

    EUR 700000 -> ``"0.70"``, 716667 -> ``"0.716667"``; JPY 1200000000 -> ``"1200"``; KWD 125000 -> ``"0.125"``.
    Nothing is rounded away: an exact amount finer than the minor unit shows all its digits.
    """
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    text = f"{frac:06d}".rstrip("0")
    digits = minor_units(currency)
    if len(text) < digits:
        text = (text + "000000")[:digits]
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


def has_finer_decimals(micros: int, currency: str) -> bool:
    """True when ``micros`` cannot be written in the currency's minor units (e.g. JPY 0.5, EUR 0.001)."""
    return micros % 10 ** (MAX_DECIMALS - minor_units(currency)) != 0


def positive_amount_problem(micros: int, currency: str) -> str | None:
    """Why an amount given for a charge, a payment or a credit is not taken (None: it is): it must be positive, in the
    currency's minor units and within :data:`MAX_AMOUNT_MICROS`."""
    if micros <= 0 or has_finer_decimals(micros, currency):
        return f"a positive amount in {currency}'s minor units"
    if beyond_bound(micros):
        return bound_message(micros)
    return None


def divide_rounded(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """``numerator / denominator`` rounded to an integer with ``mode``; exact integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    negative = numerator < 0
    q, r = divmod(abs(numerator), denominator)
    if r:
        if mode is RoundingMode.UP:
            q += 1
        elif mode is RoundingMode.HALF_UP:
            if 2 * r >= denominator:
                q += 1
        elif mode is RoundingMode.HALF_EVEN:
            if 2 * r > denominator or (2 * r == denominator and q % 2 == 1):
                q += 1
        # DOWN: keep q
    return -q if negative else q


def round_micros(numerator: int, denominator: int, mode: RoundingMode, decimals: int) -> int:
    """Round the exact amount ``numerator/denominator`` micros to ``decimals`` places; result in micros."""
    quantum = 10 ** (MAX_DECIMALS - decimals)
    return divide_rounded(numerator, denominator * quantum, mode) * quantum


def round_fraction(amount: Fraction, mode: RoundingMode, decimals: int) -> int:
    """Same as :func:`round_micros` for a Fraction of micros."""
    return round_micros(amount.numerator, amount.denominator, mode, decimals)


def fraction_text(numerator: int, denominator: int = 1, currency: str = "") -> str:
    """Exact micros ``numerator/denominator`` as text for explanations, with a marker when not a whole micro."""
    if numerator % denominator == 0:
        return format_amount(numerator // denominator, currency)
    return format_amount(divide_rounded(numerator, denominator, RoundingMode.HALF_EVEN), currency) + "…"
