"""A monthly add-on's grants (engine.billing.addons.grants_of): one per bill cycle it is in force in, each with its
own counter cycle (never a one-off's ``+NNNNNN``, never another purchase's or cycle's), back to back from the purchase
instant to the instant it stops at, each cut at the cycle's local midnight."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.addons import OPEN, AddOnPurchase, grants_of
from engine.billing.cycles import local_day
from engine.rating.addons import counter_cycle, monthly_counter_cycle, split_use, use_name
from engine.rating.period import cycle_bounds

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _purchase(bought: datetime, stop: datetime, anchor: int, seq: int = 7) -> AddOnPurchase:
    return AddOnPurchase(f"ao_{seq}", "mno", "sub", "33612000007", "ACC", "BN_INTL", "r", counter_cycle(seq), "2026-01", "TP", bought,
                         bought, stop, 3600, "second", 5_000_000, "EUR", "standard", "", "test", recurrence="monthly", anchor_day=anchor,
                         cycle_zone="Europe/Paris")


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 400 * 24), length=st.integers(1, 200 * 24), anchor=st.integers(1, 31))
def test_grants_are_back_to_back_one_per_cycle_with_their_own_counters(start: int, length: int, anchor: int) -> None:
    bought = T0 + timedelta(hours=start, minutes=17)
    stop = bought + timedelta(hours=length)
    grants = grants_of(_purchase(bought, stop, anchor), T0, T0 + timedelta(days=800))
    assert grants[0].valid_from == bought and grants[-1].valid_until == stop
    for a, b in zip(grants, grants[1:]):
        assert a.valid_until == b.valid_from            # back to back
        cut = a.valid_until.astimezone(PARIS)
        assert (cut.hour, cut.minute) == (0, 0) and cut.date() == cycle_bounds(anchor, cut.date())[0]   # at a cycle's first instant
    keys = [g.cycle for g in grants]
    assert len(set(keys)) == len(keys) and all(len(k) == 7 and k[0] == "+" and not k[1:].isdigit() for k in keys)
    for g in grants:
        assert local_day(g.valid_from, PARIS) >= cycle_bounds(anchor, local_day(g.valid_from, PARIS))[0]
        assert split_use(use_name(g.bundle_id, g.cycle)) == (g.bundle_id, g.cycle)   # a ledger row gives units back to it


def test_an_open_add_on_is_granted_only_within_the_asked_span() -> None:
    p = _purchase(datetime(2026, 3, 10, 14, 0, tzinfo=UTC), OPEN, 1)
    grants = grants_of(p, datetime(2026, 4, 20, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC))
    assert [(g.cycle, g.valid_from, g.valid_until) for g in grants] == [
        (monthly_counter_cycle(7, "2026-04"), datetime(2026, 3, 31, 22, 0, tzinfo=UTC), datetime(2026, 4, 30, 22, 0, tzinfo=UTC)),
        (monthly_counter_cycle(7, "2026-05"), datetime(2026, 4, 30, 22, 0, tzinfo=UTC), datetime(2026, 5, 31, 22, 0, tzinfo=UTC))]
    assert grants_of(p, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)) == []


@given(a=st.integers(1, 999_999), b=st.integers(1, 999_999), m=st.integers(0, 1199), n=st.integers(0, 1199))
def test_monthly_counter_cycles_never_meet(a: int, b: int, m: int, n: int) -> None:
    def name(i: int) -> str:
        return f"{2000 + i // 12:04d}-{i % 12 + 1:02d}"

    assert (monthly_counter_cycle(a, name(m)) == monthly_counter_cycle(b, name(n))) == (a == b and m == n)
    assert monthly_counter_cycle(a, name(m)) != counter_cycle(b)
