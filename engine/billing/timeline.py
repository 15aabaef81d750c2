"""From stored facts to a bill's inputs: subscribers' service in the account's days, and which period is due.

A subscriber's days: its assignment to the account (the day it joins is the
new account's, the day it leaves the next one's), activation and deactivation
(both days charged) and its plan history (a change day is the new plan's; with
several changes on one day the last counts).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.billing.addons import OPEN
from engine.billing.cycles import final_period, is_cycle_date, local_day, period_closing_on
from engine.billing.model import Account, Assignment, BillPeriod, SubscriberService
from engine.billing.ports import PeriodClaim, SubscriberFacts
from engine.rating.period import add_months, cycle_bounds


def service_of(assignment: Assignment, facts: SubscriberFacts, tz: ZoneInfo) -> SubscriberService:
    by_day: dict[date, str] = {}
    for when, plan in facts.plans:
        by_day[local_day(when, tz)] = plan
    return SubscriberService(
        subscriber_id=assignment.subscriber_id,
        msisdn=assignment.msisdn,
        assigned_from=local_day(assignment.valid_from, tz),
        assigned_until=local_day(assignment.valid_to, tz) if assignment.valid_to else None,
        activated=local_day(facts.activate_time, tz) if facts.activate_time else None,
        deactivated=local_day(facts.deactivate_time, tz) if facts.deactivate_time else None,
        plans=tuple(sorted(by_day.items())),
        # the purchase day is charged, and so is the day it stops in (a cancel stopping it at a local midnight: not that day)
        add_ons=tuple((bundle, local_day(since, tz), None if until >= OPEN else local_day(until - timedelta(microseconds=1), tz))
                      for bundle, since, until in facts.add_ons if until > since),
    )


def first_period_start(account: Account, assignments: list[Assignment]) -> date:
    """The start of the cycle in which the account's first subscriber joined it (without subscribers: the account's creation)."""
    tz = ZoneInfo(account.time_zone)
    starts = [local_day(a.valid_from, tz) for a in assignments]
    if not starts and account.create_time is not None:
        starts.append(local_day(account.create_time, tz))
    first = min(starts) if starts else date(1970, 1, 1)
    return cycle_bounds(account.anchor_day, first)[0]


def next_due_period(account: Account, last: PeriodClaim | None, assignments: list[Assignment], today: date) -> BillPeriod | None:
    """The oldest unbilled regular period that has ended by ``today`` (the account's local day), or None."""
    start = last.period_end if last is not None else first_period_start(account, assignments)
    # a period is anchored on the account's cycle day; an anchor changed since the last bill re-aligns here
    cycle_start, end = _cycle_from(account.anchor_day, start)
    if end > today:
        return None
    if cycle_start != start:  # the anchor moved: this one period runs from the last bill's end to the new cycle date
        return BillPeriod(start, end, cycle_start, end, add_months(end, 1, account.anchor_day))
    return period_closing_on(account.anchor_day, end)


@lru_cache(maxsize=4096)
def _cycle_from(anchor_day: int, start: date) -> tuple[date, date]:
    """The start of the cycle holding ``start`` and the cycle date that closes it (the same few for a run's accounts)."""
    cycle_start = cycle_bounds(anchor_day, start)[0]
    return cycle_start, add_months(cycle_start, 1, anchor_day)


def period_for_cycle_date(account: Account, cycle_date: date) -> BillPeriod | None:
    if not is_cycle_date(account.anchor_day, cycle_date):
        return None
    return period_closing_on(account.anchor_day, cycle_date)


def final_bill_period(account: Account, last: PeriodClaim | None, assignments: list[Assignment], last_day: date) -> BillPeriod:
    start = last.period_end if last is not None else first_period_start(account, assignments)
    return final_period(account.anchor_day, start, last_day)


def interim_period(account: Account, last: PeriodClaim | None, assignments: list[Assignment], today: date) -> BillPeriod | None:
    """An interim bill ("bill now"): from the first unbilled day up to yesterday, inside its regular cycle, or None when
    that is no day at all.  Like a final bill it charges nothing in advance; the next regular bill then runs from its
    end to the cycle date, prorated on the same cycle (``next_due_period``), so no day is billed twice."""
    period = final_bill_period(account, last, assignments, today - timedelta(days=1))
    return period if period.end > period.start else None
