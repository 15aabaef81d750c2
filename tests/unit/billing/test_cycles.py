"""Bill cycles: month-end safe anchors, the account's local days, which period is due."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.billing.cycles import counter_cycles, final_period, is_cycle_date, local_day, local_midnight, period_closing_on, valid_anchor, valid_time_zone
from engine.billing.ports import PeriodClaim, PeriodStatus
from engine.billing.timeline import next_due_period
from tests.unit.billing.factories import account

UTC = timezone.utc


def test_an_account_anchored_on_the_31st_bills_on_each_month_s_last_day() -> None:
    dates = [d for d in (date(2026, m, dd) for m in range(1, 13) for dd in range(1, 32) if dd <= [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1])
             if is_cycle_date(31, d)]
    assert [d.isoformat() for d in dates[:4]] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
    assert len(dates) == 12
    feb = period_closing_on(31, date(2026, 2, 28))
    assert (feb.start, feb.end, feb.next_end) == (date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31))
    assert period_closing_on(30, date(2028, 2, 29)).start == date(2028, 1, 30)   # leap year, anchor 30
    with pytest.raises(ValueError):
        period_closing_on(31, date(2026, 4, 1))


@given(st.integers(1, 31), st.dates(date(2000, 1, 1), date(2100, 12, 31)))
def test_cycles_tile_time_without_gaps_or_overlaps(anchor: int, day: date) -> None:
    from engine.billing.cycles import last_cycle_date

    end = last_cycle_date(anchor, day)
    p = period_closing_on(anchor, end)
    nxt = period_closing_on(anchor, p.next_end)
    assert p.start < p.end == nxt.start < nxt.end and 28 <= (p.end - p.start).days <= 31
    assert p.start <= day or p.end <= day


def test_anchor_and_time_zone_checks() -> None:
    assert [a for a in (0, 1, 31, 32, -1) if valid_anchor(a)] == [1, 31]
    assert valid_time_zone("Europe/Paris") and valid_time_zone("UTC")
    assert not valid_time_zone("Mars/Olympus") and not valid_time_zone("") and not valid_time_zone("CET1CEST")


def test_local_days_decide_not_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 23:30 UTC on 31 March is already 1 April in Paris (summer time) and still 31 March in New York
    instant = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert local_day(instant, paris) == date(2026, 4, 1)
    assert local_day(instant, ZoneInfo("America/New_York")) == date(2026, 3, 31)
    assert local_midnight(date(2026, 3, 29), paris) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)   # before the DST change
    assert local_midnight(date(2026, 3, 30), paris) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)   # after it


def test_the_next_due_period_follows_the_last_claim_and_the_local_day() -> None:
    acc = account(anchor_day=15, time_zone="Pacific/Auckland", create_time=datetime(2026, 1, 20, tzinfo=UTC))
    assert next_due_period(acc, None, [], date(2026, 2, 14)) is None
    p = next_due_period(acc, None, [], date(2026, 2, 15))
    assert p is not None and (p.start, p.end) == (date(2026, 1, 15), date(2026, 2, 15))
    claim = PeriodClaim("mno", acc.account_id, p.start, p.end, PeriodStatus.INVOICED, "inv", "run")
    assert next_due_period(acc, claim, [], date(2026, 3, 14)) is None
    assert next_due_period(acc, claim, [], date(2026, 3, 15)).start == date(2026, 2, 15)  # type: ignore[union-attr]


@pytest.mark.parametrize("anchor, cycle_date, cycles", [
    (1, date(2026, 3, 1), {"2026-02"}),      # February, calendar month
    (15, date(2026, 3, 15), {"2026-02"}),    # 15 February to 14 March: the cycle that started in February
    (31, date(2026, 3, 31), {"2026-02"}),    # 28 February to 30 March
    (31, date(2026, 2, 28), {"2026-01"}),    # 31 January to 27 February
])
def test_a_bill_shows_the_bundle_counters_of_its_own_bill_cycle(anchor: int, cycle_date: date, cycles: set[str]) -> None:
    assert counter_cycles(account(anchor_day=anchor), period_closing_on(anchor, cycle_date)) == cycles


def test_a_final_bill_across_a_missed_cycle_shows_both_cycles() -> None:
    period = final_period(15, date(2026, 3, 10), date(2026, 3, 20))
    assert counter_cycles(account(anchor_day=15), period) == {"2026-02"}   # 10-14 March: the short final period
    from engine.billing.model import BillPeriod

    two = BillPeriod(date(2026, 3, 10), date(2026, 3, 20), date(2026, 2, 15), date(2026, 3, 15), date(2026, 3, 20), final=True)
    assert counter_cycles(account(anchor_day=15), two) == {"2026-02", "2026-03"}
