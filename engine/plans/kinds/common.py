"""Helpers shared by the per-kind parsers: ids, amounts, enums, units, times.

Each helper reports a :class:`Problem` with a stable code and returns a safe
default, so one bad field never hides the next one.
"""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Callable, TypeVar

from engine.currencies import is_currency
from engine.money import AmountError, format_amount, has_finer_decimals, minor_units, parse_amount
from engine.yamlio import Fields, Mark, MarkedList, Problem

E = TypeVar("E", bound=Enum)

ID_PREFIXES = {
    "destination_group": "DST_",
    "zone": "ZN_",
    "holiday_calendar": "HOL_",
    "time_bands": "TB_",
    "rate": "RT_",
    "rate_table": "RTT_",
    "tariff_plan": "TP_",
    "bundle": "BN_",
    "discount_plan": "DP_",
    "tax_table": "TAX_",
}

_ID_BODY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LOCAL_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
TAX_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_UNIT_TEXT = re.compile(r"^(\d+)\s*(B|KB|MB|GB|s|min|h)?$")
_UNIT_FACTORS = {None: 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "s": 1, "min": 60, "h": 3600}


# why a plan amount has at most 6 decimals (and a rounding at most 6 decimals)
MICROS_REASON = ("money is kept exactly as integer micro-units (1/1,000,000 of the currency unit), so an amount or a "
                 "rounding has at most 6 decimals; price a larger quantity instead (per 60 s rather than per second, "
                 "per 1,000 events rather than per event)")


def _read_from_disk(path: PurePath) -> str:
    return Path(path).read_text(encoding="utf-8")


class Ctx:
    """Parsing context for one file: where problems go."""

    def __init__(self, problems: list[Problem], read_file: Callable[[PurePath], str] | None = None) -> None:
        self.problems = problems
        # how a file a plan file names (a prefix_file) is read: from disk, or from an uploaded file set
        self.read_file = read_file or _read_from_disk

    def problem(self, mark: Mark, code: str, message: str) -> None:
        self.problems.append(Problem.at(mark, code, message))

    # -- identifiers -------------------------------------------------------------------------
    def ident(self, f: Fields, kind: str) -> str:
        prefix = ID_PREFIXES[kind]
        value = f.required("id", str)
        if value is None:
            return ""
        if not value.startswith(prefix) or not _ID_BODY.match(value[len(prefix):] or "-"):
            self.problem(
                f.node.mark_of("id"),
                "id.format",
                f"{kind} id {value!r} must look like {prefix}NAME (upper case letters, digits, '_')",
            )
        return str(value)

    def local_id(self, f: Fields, key: str, what: str) -> str:
        value = f.required(key, str)
        if value is None:
            return ""
        if not _LOCAL_ID.match(value):
            self.problem(f.node.mark_of(key), "id.format", f"{what} {value!r} must be upper case letters, digits and '_'")
        return str(value)

    # -- values ------------------------------------------------------------------------------
    def amount(self, f: Fields, key: str, default: int | None = 0, required: bool = False, negative: bool = False) -> int:
        raw = f.required(key, (str, int, float)) if required else f.optional(key, (str, int, float))
        if raw is None:
            return default if default is not None else 0
        try:
            micros = parse_amount(raw)
        except AmountError as exc:
            why = f" ({MICROS_REASON})" if "decimals" in str(exc) else ""
            self.problem(f.node.mark_of(key), "value.amount", f"{f.what}.{key}: {exc}{why}")
            return default or 0
        if micros < 0 and not negative:
            self.problem(f.node.mark_of(key), "value.range", f"{f.what}.{key}: must not be negative")
            return default or 0
        return micros

    def billed(self, f: Fields, key: str, micros: int, currency: str) -> None:
        """An amount that goes on a bill as it is (a fee, a fixed discount, a commitment) must be writable in the
        currency's minor units: JPY 1000.5 or EUR 9.999 cannot be invoiced."""
        if key in f.node and currency and has_finer_decimals(micros, currency):
            digits = minor_units(currency)
            self.problem(f.node.mark_of(key), "value.decimals",
                         f"{f.what}.{key}: {format_amount(micros)} has more decimals than {currency} bills ({digits}); "
                         f"write it in whole {'units' if digits == 0 else f'{digits}-decimal amounts'}")

    def enum(self, f: Fields, key: str, enum: type[E], default: E | None = None, required: bool = False) -> E | None:
        raw = f.required(key, str) if required else f.optional(key, str)
        if raw is None:
            return default
        try:
            return enum(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.problem(f.node.mark_of(key), "value.enum", f"{f.what}.{key}: {raw!r} is not one of: {allowed}")
            return default

    def choice(self, f: Fields, key: str, allowed: tuple[str, ...], default: str) -> str:
        raw = f.optional(key, str)
        if raw is None:
            return default
        if raw not in allowed:
            self.problem(f.node.mark_of(key), "value.enum", f"{f.what}.{key}: {raw!r} is not one of: {', '.join(allowed)}")
            return default
        return str(raw)

    def currency(self, f: Fields, key: str = "currency", required: bool = True) -> str:
        raw = f.required(key, str) if required else f.optional(key, str)
        if raw is None:
            return ""
        if not is_currency(raw):
            self.problem(f.node.mark_of(key), "value.currency", f"{f.what}.{key}: {raw!r} is not an ISO 4217 currency code")
        return str(raw)

    def units(self, f: Fields, key: str, default: int | None = None, required: bool = False, minimum: int = 1) -> int:
        """A positive quantity of units: ``60``, ``"1MB"`` (1024-based), ``"1min"``."""
        raw = f.required(key, (int, str)) if required else f.optional(key, (int, str))
        if raw is None:
            return default if default is not None else 0
        value = parse_units(raw)
        if value is None:
            self.problem(f.node.mark_of(key), "value.units", f"{f.what}.{key}: {raw!r} is not a quantity (e.g. 60, \"1MB\", \"5min\")")
            return default or minimum
        if value < minimum:
            self.problem(f.node.mark_of(key), "value.range", f"{f.what}.{key}: must be at least {minimum}")
            return default or minimum
        return value

    def integer(self, f: Fields, key: str, default: int, lo: int | None = None, hi: int | None = None, required: bool = False) -> int:
        raw = f.required(key, int) if required else f.optional(key, int)
        if raw is None:
            return default
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            self.problem(f.node.mark_of(key), "value.range", f"{f.what}.{key}: {raw} is outside {lo}..{hi}")
            return default
        return int(raw)

    def str_list(self, f: Fields, key: str, required: bool = False) -> tuple[list[str], list[Mark]]:
        raw = f.required(key, list) if required else f.optional(key, list)
        if raw is None:
            return [], []
        out: list[str] = []
        marks: list[Mark] = []
        for i, item in enumerate(raw):
            mark = raw.mark_of(i) if isinstance(raw, MarkedList) else f.node.mark_of(key)
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)  # prefixes and network codes written without quotes
            if not isinstance(item, str):
                self.problem(mark, "schema.type", f"{f.what}.{key}[{i}]: expected text, got {type(item).__name__}")
                continue
            out.append(item)
            marks.append(mark)
        return out, marks

    def tax_category(self, f: Fields, key: str = "tax_category") -> str:
        """A VAT category name of plans/taxes/ (``standard`` when absent)."""
        raw = f.optional(key, str)
        if raw is None:
            return "standard"
        if not TAX_CATEGORY.match(raw):
            self.problem(f.node.mark_of(key), "id.format", f"{f.what}.{key}: {raw!r} must be lower case letters, digits and '_'")
            return "standard"
        return str(raw)

    def date_value(self, f: Fields, key: str, required: bool = True) -> date | None:
        raw = f.required(key, (date, str)) if required else f.optional(key, (date, str))
        if raw is None:
            return None
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.problem(f.node.mark_of(key), "value.date", f"{f.what}.{key}: {raw!r} is not a date (YYYY-MM-DD)")
            return None


def parse_units(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if not isinstance(raw, str):
        return None
    m = _UNIT_TEXT.match(raw.strip())
    if not m:
        return None
    return int(m.group(1)) * _UNIT_FACTORS[m.group(2)]


def parse_clock(raw: Any) -> int | None:
    """``"08:30"`` -> 30600 seconds of day, ``"08:30:15"`` -> 30615.  Unquoted ``18:00`` is text too (the
    loader reads no base-60 numbers, :mod:`engine.yamlio`); a number is not a clock time."""
    if not isinstance(raw, str):
        return None
    m = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", raw.strip())
    if not m:
        return None
    h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if mi >= 60 or sec >= 60 or h > 24 or (h == 24 and (mi or sec)):
        return None
    return h * 3600 + mi * 60 + sec
