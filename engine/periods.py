"""The span of a request over stored data (re-rating, what-if by stored period, re-billing re-rated invoices): one
request covers at most ``MAX_PERIOD_DAYS``, so the CDRs it reads and the totals it keeps in memory stay bounded; a
longer span is done as several requests."""

from __future__ import annotations

import re
from datetime import date, timedelta

from engine.errors import ErrorList

MAX_PERIOD_DAYS = 186   # about six months of days per request
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def check_period(start: date, end: date, errors: ErrorList, what: str, field: str = "period_end") -> None:
    """``[start, end)`` (days or instants) must be non-empty and at most MAX_PERIOD_DAYS long; a problem goes on ``field``."""
    if end <= start:
        errors.add(field, "must be after period_start")
    elif end - start > timedelta(days=MAX_PERIOD_DAYS):
        errors.add(field, f"{what} at most {MAX_PERIOD_DAYS} days at a time, not {(end - start).days}: split the period")


def month_problem(text: str) -> str | None:
    """Why ``text`` is not a bill cycle or month as Rulebill writes them ("2026-03"); None when it is."""
    return None if _MONTH.match(text) else "a month written YYYY-MM, such as 2026-03"
