"""Bill cycles in the account's own days: which period a cycle date closes, who is due, local midnights.

A cycle anchored on day ``A`` starts on day ``A`` of every month, clamped to
the month's last day and never rolling over: an account anchored on the 31st
is billed on 31 January, 28/29 February, 31 March, 30 April ...  (the month
arithmetic is ``engine.rating.period.add_months``, shared with bundle
proration).  Days are the account's local days: "is this account due today"
and "was this period billed already" are asked in its time zone, never in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.billing.model import Account, BillPeriod
from engine.rating.period import add_months, cycle_bounds, days_in_month
from engine.rating.usage import cycle_of


def valid_anchor(anchor_day: int) -> bool:
    return isinstance(anchor_day, int) and not isinstance(anchor_day, bool) and 1 <= anchor_day <= 31


def valid_time_zone(name: str) -> bool:
    if not name or "/" not in name and name != "UTC":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# a run plans every account's period with the same few (anchor, day) pairs: the month arithmetic once per pair
@lru_cache(maxsize=4096)
def is_cycle_date(anchor_day: int, day: date) -> bool:
    """Whether an account anchored on ``anchor_day`` closes a cycle on ``day``."""
    return day.day == min(anchor_day, days_in_month(day.year, day.month))


def last_cycle_date(anchor_day: int, on: date) -> date:
    """The latest cycle date on or before ``on``."""
    return cycle_bounds(anchor_day, on)[0]


@lru_cache(maxsize=4096)   # BillPeriod is frozen: one value shared by the accounts of an anchor
def period_closing_on(anchor_day: int, cycle_date: date) -> BillPeriod:
    """The regular period a cycle date closes: ``[previous cycle date, cycle_date)``."""
    if not is_cycle_date(anchor_day, cycle_date):
        raise ValueError(f"{cycle_date} is not a cycle date of an account anchored on day {anchor_day}")
    start = add_months(cycle_date, -1, anchor_day)
    return BillPeriod(start, cycle_date, start, cycle_date, add_months(cycle_date, 1, anchor_day))


def final_period(anchor_day: int, start: date, last_day: date) -> BillPeriod:
    """A final bill: from ``start`` (the first unbilled day) through ``last_day`` (the last day of service),
    prorated against the regular cycle that contains ``start``."""
    cycle_start, cycle_end = cycle_bounds(anchor_day, start)
    end = max(min(last_day + timedelta(days=1), cycle_end), start)
    return BillPeriod(start, end, cycle_start, cycle_end, end, final=True)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


@lru_cache(maxsize=4096)   # a bill run asks for the same few days in the same zone for every account (~5 times a bill)
def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of ``day`` in ``tz`` as a UTC instant (a day that starts in a DST gap starts at the first valid time)."""
    local = datetime.combine(day, time(0), tzinfo=tz)
    return local.astimezone(timezone.utc)


def days(start: date, end: date) -> int:
    return max((end - start).days, 0)


def counter_cycles(account: Account, period: BillPeriod) -> frozenset[str]:
    """The keys of rating's bundle counters a bill shows: the bill cycles (under the account's anchor) its period's
    days fall in, each named by the month it started in (``engine.rating.usage.cycle_of``).  A regular period is
    one cycle; a period after a missed one or a final bill may touch two."""
    return _counter_cycles(account.anchor_day, period)


@lru_cache(maxsize=4096)   # the accounts of an anchor share their period: worked out once per run, not per account
def _counter_cycles(anchor_day: int, period: BillPeriod) -> frozenset[str]:
    last = max(period.end - timedelta(days=1), period.start)
    return frozenset((cycle_of(period.start, anchor_day), cycle_of(last, anchor_day)))
