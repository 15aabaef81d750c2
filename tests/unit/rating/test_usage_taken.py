"""What a chunk's replaced ledger rows took, added up per subscriber cycle (engine.rating.usage.Taken): giving it
back per cycle leaves counters, balances and a re-rating run's holdings exactly as giving each row back did."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating.usage import CounterRow, Held, Taken, Usage

MSISDNS = ("33610000001", "33610000002", "33610000003")
CYCLES = ("", "2026-11", "2026-12")
BUNDLES = ("B_MIN", "B_SMS", "B_DATA")

rows = st.lists(st.tuples(
    st.sampled_from(MSISDNS), st.sampled_from(CYCLES), st.sampled_from(("EUR", "USD")), st.integers(0, 5_000_000),
    st.lists(st.tuples(st.sampled_from(BUNDLES), st.integers(1, 900)), max_size=3)), max_size=40)


class _Repo:
    """Counters and balances as read at the start of a chunk (every key's three bundles, a balance in EUR)."""

    def counters_of(self, keys: Any) -> dict[Any, dict[str, CounterRow]]:
        return {k: {b: CounterRow(10_000, 5_000, "units") for b in BUNDLES} for k in keys}

    def balances_of(self, keys: Any) -> dict[Any, dict[str, int]]:
        return {k: {"EUR": 1_000_000} for k in keys}


def _stored(drawn: list[Any]) -> list[tuple[str, str, str, str, int, str]]:
    return [(f"c{i}", m, c, cur, charge, json.dumps(b)) for i, (m, c, cur, charge, b) in enumerate(drawn)]


@settings(max_examples=100, deadline=None)
@given(rows)
def test_giving_back_per_cycle_is_giving_back_per_row(drawn: list[Any]) -> None:
    stored = _stored(drawn)
    taken = Taken()
    taken.add("mno", stored)
    assert taken.replaced == {("mno", r[0]) for r in stored}
    assert taken.keys == {("mno", r[1], r[2]) for r in stored if r[2]}
    keys = sorted(taken.keys)
    by_row, by_key = Usage(_Repo(), keys), Usage(_Repo(), keys)
    for _cdr, msisdn, cycle, currency, charge, bundles in stored:     # the oracle: one row at a time
        if cycle:
            by_row.give_back(("mno", msisdn, cycle), [tuple(b) for b in json.loads(bundles)], currency, charge)
    for key, units in taken.units.items():
        by_key.give_back(key, units.items(), "", 0)
    for key, charges in taken.charges.items():
        for currency, micros in charges.items():
            by_key.give_back(key, (), currency, micros)
    (counters_a, balances_a), (counters_b, balances_b) = by_key.changes(), by_row.changes()
    assert sorted(counters_a, key=repr) == sorted(counters_b, key=repr) and sorted(balances_a) == sorted(balances_b)


@settings(max_examples=100, deadline=None)
@given(rows, rows)
def test_a_run_holds_what_its_unrated_cdrs_took(first: list[Any], second: list[Any]) -> None:
    stored = _stored(first)
    later = [(f"d{i}",) + r[1:] for i, r in enumerate(_stored(second))]
    everything = Taken()
    everything.add("mno", stored + later)
    held = Held({k: dict(v) for k, v in everything.units.items()}, {k: dict(v) for k, v in everything.charges.items()})
    chunk = Taken()
    chunk.add("mno", stored)
    rest = Taken()
    rest.add("mno", later)
    # besides the chunk, the run holds what the later rows took
    got = held.besides(chunk, everything.keys)
    expected = {k: ({b: u for b, u in rest.units.get(k, {}).items() if u}, {c: m for c, m in rest.charges.get(k, {}).items() if m})
                for k in everything.keys}
    assert got == {k: v for k, v in expected.items() if v[0] or v[1]}
    # once the chunk is written, the run holds only the later rows' units and charges
    held.rated(chunk)
    assert {k: {b: u for b, u in v.items() if u} for k, v in held.bundles.items() if any(v.values())} == \
        {k: {b: u for b, u in v.items() if u} for k, v in rest.units.items() if any(v.values())}
    assert {k: {c: m for c, m in v.items() if m} for k, v in held.charges.items() if any(v.values())} == \
        {k: {c: m for c, m in v.items() if m} for k, v in rest.charges.items() if any(v.values())}


holdings = st.dictionaries(
    st.tuples(st.just("mno"), st.sampled_from(MSISDNS), st.sampled_from(("2026-11", "2026-12", "+000007"))),
    st.tuples(st.dictionaries(st.sampled_from(BUNDLES + ("B_OTHER", "B_MIN+000007")), st.integers(-900, 900), max_size=3),
              st.dictionaries(st.sampled_from(("EUR", "USD")), st.integers(-5_000_000, 5_000_000), max_size=2)),
    max_size=6)


@settings(max_examples=100, deadline=None)
@given(holdings, st.sampled_from([1, -1]))
def test_giving_back_many_cycles_at_once_is_giving_each_back(held: dict[Any, Any], sign: int) -> None:
    """Usage.give_back_all (a re-rating chunk's give-back and take-back of what the run's other CDRs hold) moves counters
    and balances as Usage.give_back per cycle, bundle and currency does, add-on units (``B_MIN+000007``) included."""
    keys = sorted(set(held) | {(k[0], k[1], "+000007") for k in held})
    one_by_one, at_once = Usage(_Repo(), keys), Usage(_Repo(), keys)
    for key, (bundles, charges) in held.items():
        one_by_one.give_back(key, [(b, sign * u) for b, u in bundles.items()], "", 0)
        for currency, micros in charges.items():
            one_by_one.give_back(key, (), currency, sign * micros)
    at_once.give_back_all(((k, bundles, charges) for k, (bundles, charges) in held.items()), sign)
    (counters_a, balances_a), (counters_b, balances_b) = at_once.changes(), one_by_one.changes()
    assert sorted(counters_a, key=repr) == sorted(counters_b, key=repr) and sorted(balances_a) == sorted(balances_b)
