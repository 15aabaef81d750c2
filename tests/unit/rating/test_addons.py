"""Add-on units in a chunk's wallets (engine.rating.addons): valid from the purchase instant to its end, the same
add-on bought twice spent earliest expiry first, each row's take booked to the purchase it came from, and the cycle's
wallet left with its own counters only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

import pytest

from engine.rating.addons import ActiveAddOn, AddOnWallets, counter_cycle, keys_in_uses, split_use, use_name
from engine.rating.usage import CounterKey, CounterRow, Usage

UTC = timezone.utc
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CYCLE: CounterKey = ("mno", "33600000001", "2026-03")


class _Repo:
    def __init__(self, counters: dict[CounterKey, dict[str, CounterRow]]) -> None:
        self.counters = counters

    def counters_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, CounterRow]]:
        return {k: dict(self.counters[k]) for k in keys if k in self.counters}

    def balances_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, int]]:
        return {}


def _addon(cycle: str, hours_from: int, days: int, allowance: int = 100) -> ActiveAddOn:
    start = T0 + timedelta(hours=hours_from)
    return ActiveAddOn("mno", "33600000001", cycle, "BN_EXTRA", allowance, "byte", start, start + timedelta(days=days))


def test_counter_cycles_and_use_names_round_trip() -> None:
    assert counter_cycle(1) == "+000001" and len(counter_cycle(999_999)) == 7
    assert split_use(use_name("BN_EXTRA", "+000002")) == ("BN_EXTRA", "+000002") and split_use("BN_M_DATA_10GB") is None
    assert keys_in_uses(CYCLE, ["BN_M_DATA_10GB", "BN_EXTRA+000002"]) == {("mno", "33600000001", "+000002")}
    with pytest.raises(ValueError):
        counter_cycle(0)


def test_rows_take_from_the_add_ons_valid_at_their_time_earliest_expiry_first() -> None:
    early, late = _addon("+000001", 0, 2), _addon("+000002", 1, 30)
    usage = Usage(_Repo({CYCLE: {"BN_PLAN": CounterRow(50, 50, "byte")}}), [CYCLE, early.key, late.key])
    ats = [T0 - timedelta(minutes=1), T0 + timedelta(minutes=30), T0 + timedelta(hours=2), T0 + timedelta(days=3), T0 + timedelta(days=31)]
    wallets = AddOnWallets(usage, [late, early], [CYCLE] * len(ats), ats)
    seen = []
    for i in range(len(ats)):
        w = wallets.rows_from(0)(i, None)
        assert w is not None
        seen.append(w.get("BN_EXTRA"))
        w["BN_EXTRA" if "BN_EXTRA" in w else "BN_PLAN"] -= min(70, w.get("BN_EXTRA", w["BN_PLAN"]))
    # before the purchase: no add-on; then only the first purchase (the second starts an hour later); then both;
    # after the first expired, what is left of the second; after both, none
    assert seen == [None, 100, 30 + 100, 100 - 40, None]
    wallets.finish()
    assert wallets.taken == {1: [("BN_EXTRA+000001", 70)], 2: [("BN_EXTRA+000001", 30), ("BN_EXTRA+000002", 40)],
                             3: [("BN_EXTRA+000002", 60)]}
    assert usage.wallet(CYCLE) == {"BN_PLAN": 0}                       # the cycle's own counters only
    counters, _ = usage.changes()
    assert sorted((k[2], b, row.remaining) for k, b, row, _ in counters) == [("+000001", "BN_EXTRA", 0), ("+000002", "BN_EXTRA", 0),
                                                                             ("2026-03", "BN_PLAN", 0)]
    # a row's ledger uses name the purchases it took from
    assert wallets.uses_of(2, (("BN_EXTRA", 70),)) == (("BN_EXTRA+000001", 30), ("BN_EXTRA+000002", 40))
    assert wallets.uses_of(0, (("BN_PLAN", 50),)) == (("BN_PLAN", 50),)


def test_a_rated_row_gives_its_add_on_units_back_to_its_purchase() -> None:
    addon = _addon("+000001", 0, 30)
    usage = Usage(_Repo({addon.key: {"BN_EXTRA": CounterRow(100, 40, "byte")}}), [CYCLE, addon.key])
    usage.give_back(CYCLE, [("BN_EXTRA+000001", 60), ("BN_GONE+000009", 5)], "", 0)
    assert usage.wallet(addon.key) == {"BN_EXTRA": 100}
