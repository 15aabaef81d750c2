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


class _NoCounters:
    def counters_of(self, keys: object) -> dict:
        return {}

    def balances_of(self, keys: object) -> dict:
        return {}


@settings(max_examples=150, deadline=None)
@given(bought=st.integers(0, 200 * 24), length=st.integers(1, 300 * 24), before=st.integers(1, 31), after=st.integers(1, 31),
       change=st.integers(0, 400 * 24), calls=st.lists(st.integers(0, 500 * 24 * 60), min_size=1, max_size=40))
def test_rows_take_a_monthly_add_on_in_their_own_cycle_whatever_the_anchor_did(bought: int, length: int, before: int, after: int,
                                                                                change: int, calls: list[int]) -> None:
    """The account's anchor day moves from ``before`` to ``after`` at some instant: each row's counter key names its
    bill cycle under the anchor rating reads then (as the plan's bundles), and the add-on's units of a row come from
    the counter of exactly that cycle, only while the purchase is in force; the store's whole-span grant is cut by the
    rows (engine.rating.addons.in_row_cycles), never by the anchor the purchase was bought with."""
    from engine.rating.addons import AddOnWallets, in_row_cycles
    from engine.rating.usage import Usage, cycle_of

    start = T0 + timedelta(hours=bought, minutes=17)
    stop = start + timedelta(hours=length)
    p = _purchase(start, stop, before)
    moved = T0 + timedelta(hours=change)
    ats = [T0 + timedelta(minutes=m) for m in sorted(calls)]
    keys = [("mno", "33612000007", cycle_of(local_day(at, PARIS), before if at < moved else after)) for at in ats]
    span = grants_of(p, ats[0], ats[-1], cycles=False)
    grants = in_row_cycles(span, keys, ats)
    assert len({g.cycle for g in grants}) == len(grants)                     # one grant (counter) per cycle
    usage = Usage(_NoCounters(), ())
    wallets = AddOnWallets(usage, span, keys, ats)
    wallet_of = wallets.rows_from(0)
    took: dict[str, int] = {}
    for j, (key, at) in enumerate(zip(keys, ats)):
        w = wallet_of(j, None)
        assert w is not None
        assert ("BN_INTL" in w) == (start <= at < stop)
        if "BN_INTL" in w:
            assert w["BN_INTL"] == 3600 - took.get(key[2], 0)                 # this cycle's counter, nothing of another's
            w["BN_INTL"] -= 1
            took[key[2]] = took.get(key[2], 0) + 1
    wallets.finish()
    for cycle, n in took.items():
        assert usage.wallet(("mno", "33612000007", monthly_counter_cycle(7, cycle)))["BN_INTL"] == 3600 - n
