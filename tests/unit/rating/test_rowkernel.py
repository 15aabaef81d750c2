"""The C loop of the batch rating (engine/rating/_rowkernel.c) changes speed, never results: the same rows, wallets and
plans rated with and without it give the same rows and leave the same wallets (hypothesis over random and damaged rows)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS, to_row
from engine.columns import ColumnRows
from engine.rating import Evaluator
from engine.rating import evaluator as evaluator_module
from engine.rating.evaluator import WalletsByGroup
from tests.unit.rating.helpers import REPO, cdr, compile_folder, ir_plan, ir_rate

pytestmark = pytest.mark.skipif(evaluator_module._kernel() is None, reason="the C extension was not built (no compiler)")

_SAMPLE = compile_folder(REPO / "plans")
_PLANS = ["TP_SMART_S", "TP_SMART_M", "TP_BUSINESS_PRO", "TP_WS_ALPHA", "TP_ALPHA_SIMPLE", "TP_BETA_DATA"]
_NUMBERS = ["33612000009", "33698765432", "33123456789", "33891234567", "112", "14155550100", "4930123456", "8816123456",
            "442071234567", "internet", "999", ""]
_SUBSCRIBERS = ["33612000001", "33612000002", "33614900001"]
# what a damaged cell may hold instead
_ODD = ["", " 5", "+5", "5_0", "٣", "-1", "1e3", "9" * 20, "x", 0, 1, 7, -3, None, True, 2**70]


def _rows(rng: random.Random, n: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for _ in range(n):
        service = rng.choice(["voice", "voice", "voice", "sms", "mms", "data", "supplementary"])
        c = cdr(service, b_number=rng.choice(_NUMBERS),
                start=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                      f"{rng.randint(0, 59):02d}Z",
                duration_seconds=rng.choice([0, 1, 59, 60, 61, 600, 3600, 20000]) if service == "voice" else 0,
                volume_down_bytes=rng.randint(0, 10**9) if service == "data" else 0, event_count=rng.randint(1, 3),
                visited_network=rng.choice(["", "", "", "DEUD1", "USACG"]), direction=rng.choice(["originating"] * 4 + ["terminating"]),
                a_number=rng.choice(_SUBSCRIBERS))
        row: list[Any] = to_row(c)
        if rng.random() < 0.3:   # typed cells, as the CDR store gives them
            for name in ("duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count"):
                i = COLUMNS.index(name)
                row[i] = int(row[i])
        if rng.random() < 0.15:  # a damaged cell
            i = rng.choice([COLUMNS.index(n) for n in ("duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count",
                                                         "start_time", "service", "direction", "visited_network", "b_number")])
            row[i] = rng.choice(_ODD + ["2026-13-01T10:00:00Z", "2026-03-02T10:00:60Z", "2026-03-02T10:00:00+01:00", "voice "])
        if rng.random() < 0.03:
            row = row[:-1]        # a short row
        rows.append(tuple(row) if rng.random() < 0.3 else row)
    return rows


def _wallets(rng: random.Random) -> dict[str, dict[str, int]]:
    return {a: {b: rng.choice([0, 30, 600, 10**6, 10**10]) for b in sorted(_SAMPLE.bundles) if rng.random() < 0.5} for a in _SUBSCRIBERS}


def _rate(rows: list[Any], plans: Any, wallets: Any, kernel: bool) -> list[Any]:
    ev = Evaluator(_SAMPLE)
    ev.use_kernel = kernel
    # how a row was priced: its one-span memo entry, or by parts (the C loop keeps the spans it priced, (gross, spans),
    # which test_calls_priced_by_parts_in_the_c_loop_rate_as_the_per_cdr_way holds to the per-CDR way; the Python loop
    # keeps none: None on a rated row)
    return [r[:4] + (r[4].plan_id if r[4] is not None else None,) + r[5:9]
            + (r[9] if isinstance(r[9], tuple) and len(r[9]) != 2 else "by parts" if r[0] == "rated" else type(r[9]).__name__,)
            for r in ev.rate_rows(rows, plans, wallets)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), mode=st.sampled_from(["by_number", "by_row", "by_call", "none"]))
def test_the_c_loop_and_the_python_loop_rate_the_same(seed: int, mode: str) -> None:
    rng = random.Random(seed)
    rows = _rows(rng, 40)
    plans: Any = rng.choice(_PLANS) if rng.random() < 0.5 else [rng.choice(_PLANS) for _ in rows]
    base = _wallets(rng)
    results = []
    for kernel in (True, False):
        wallets = {a: dict(w) for a, w in base.items()}
        if mode == "by_number":
            given_wallets: Any = wallets
        elif mode == "by_row":
            given_wallets = [wallets.get(r[COLUMNS.index("a_number")]) if len(r) > 6 else None for r in rows]
        elif mode == "by_call":
            given_wallets = lambda _i, row: wallets.get(row[COLUMNS.index("a_number")])  # noqa: E731
        else:
            given_wallets = None
        results.append((_rate(rows, plans, given_wallets, kernel), wallets))
    assert results[0] == results[1]


def _held(rows: list[Any]) -> ColumnRows:
    return ColumnRows([list(c) for c in zip(*rows)] if rows else [[] for _ in COLUMNS], len(rows))


class _Opening(dict[str, dict[str, int]]):
    """Wallets by a_number that open one (from a template) on first use, as what-if's books do."""

    def __init__(self, held: dict[str, dict[str, int]], template: dict[str, int]) -> None:
        super().__init__(held)
        self.template = template

    def __missing__(self, a_number: str) -> dict[str, int]:
        wallet = self[a_number] = dict(self.template)
        return wallet


class _Subclass(dict[str, dict[str, int]]):
    """Wallets by a_number in a dict subclass without __missing__: a number it does not hold has no wallet."""


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), mode=st.sampled_from(["by_number", "by_group", "by_call", "none", "opening_by_number",
                                                         "opening_by_group", "subclass_by_number"]))
@example(seed=2367134, mode="opening_by_group")   # a call crossing a band change on a route without bundles
def test_rows_held_as_columns_rate_as_the_python_loop_rates_rows(seed: int, mode: str) -> None:
    """The C loop reading the cells from columns (engine.columns.ColumnRows, as a CDR file is read) equals the
    Python loop over the same rows; also for wallets found by each row's group and a_number (what-if), and for books
    that open a subscriber's wallet on first use (what-if) or are a dict subclass without that."""
    rng = random.Random(seed)
    rows = [list(r) for r in _rows(rng, 40) if len(r) == len(COLUMNS)]
    plans: Any = rng.choice(_PLANS) if rng.random() < 0.5 else [rng.choice(_PLANS) for _ in rows]
    base = _wallets(rng)
    groups = [rng.choice([-1, 0, 1]) for _ in rows]
    second = {a for a in base if rng.random() < 0.7}   # the second group's subscribers (the others: no wallet there)
    template = {b: rng.choice([0, 30, 600, 10**6]) for b in sorted(_SAMPLE.bundles) if rng.random() < 0.6}
    results = []
    for held, kernel in ((_held(rows), True), (rows, False)):
        books: list[Any] = [{a: dict(w) for a, w in base.items()}, {a: dict(w) for a, w in base.items() if a in second}]
        if mode.startswith("opening"):
            books = [_Opening({}, template), _Opening(books[1], template)]   # the first opens every wallet it is asked
        elif mode.startswith("subclass"):
            books = [_Subclass(books[1]), books[1]]
        if mode.endswith("by_number"):
            given_wallets: Any = books[0]
        elif mode.endswith("by_group"):
            given_wallets = WalletsByGroup(groups, books)
        elif mode == "by_call":
            given_wallets = lambda _i, row: books[0].get(row[COLUMNS.index("a_number")])  # noqa: E731
        else:
            given_wallets = None
        results.append((_rate(held, plans, given_wallets, kernel), [dict(b) for b in books]))
    assert results[0] == results[1]
    if mode.startswith("opening"):   # the wallets opened are those rows asked for: both loops opened the same
        assert set(results[0][1][0]) <= set(_SUBSCRIBERS)


@pytest.mark.parametrize("held", [False, True])
def test_the_c_loop_takes_the_plain_rows(held: bool) -> None:
    """One call of the C loop rates them all; rows held as columns are read where they are (no row built)."""
    plain = [to_row(cdr(b_number="33698765432", duration_seconds=d, start="2026-03-02T10:00:00Z")) for d in range(1, 200)]
    rows: Any = _held(plain) if held else plain
    calls = []
    real = evaluator_module._kernel(rows)

    def counting(*args: Any) -> int:
        calls.append((type(args[0]).__name__, args[1]))
        return real(*args)  # type: ignore[misc]

    original = evaluator_module._kernel
    evaluator_module._kernel = lambda *_rows: counting  # type: ignore[assignment]
    try:
        out = Evaluator(_SAMPLE).rate_rows(rows, "TP_SMART_M")
    finally:
        evaluator_module._kernel = original
    assert calls == [(type(rows).__name__, 0)] and len(out) == 199
    assert out == Evaluator(_SAMPLE).rate_rows(list(plain), "TP_SMART_M")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.sampled_from([3, 300, 5_000]))
def test_the_c_prefix_table_finds_the_longest_prefix_of_many(seed: int, count: int) -> None:
    """The C loop's prefix table (with its filter of the lengths a number has no prefix of) gives each number the group
    of its longest prefix, as the prefix index does, over thousands of nested prefixes of 1-9 digits."""
    from engine.rating.compiled import CompiledPlans

    rng = random.Random(seed)
    groups: dict[str, list[str]] = {f"DST_{g}": [] for g in range(7)}
    seen: set[str] = set()
    while len(seen) < count:
        p = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        if p not in seen:
            seen.add(p)
            groups[f"DST_{rng.randrange(7)}"].append(p)
    groups = {g: p for g, p in groups.items() if p}
    rates = {f"RT_{g}": ir_rate([[0, 10_000 * (k + 1), 60, 1]]) for k, g in enumerate(groups)}
    compiled = CompiledPlans.from_ir(ir_plan(rates, [["voice", "originating", "home", g, "ANYTIME", f"RT_{g}"] for g in groups],
                                             prefixes=groups))
    prefixes = sorted(seen)
    numbers = [rng.choice(prefixes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 6))) for _ in range(300)]
    numbers += ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))) for _ in range(100)]
    rows = [to_row(cdr(b_number=n, duration_seconds=61)) for n in numbers]
    c_loop, py_loop = Evaluator(compiled), Evaluator(compiled)
    py_loop.use_kernel = False
    got, want = c_loop.rate_rows(rows, "TP"), py_loop.rate_rows(rows, "TP")
    index = compiled.plans["TP"].versions[0].index
    assert [r[5] for r in got] == [r[5] for r in want] == [index.lookup(n)[0] for n in numbers]
    assert [r[:3] for r in got] == [r[:3] for r in want]


# == the one-span memo's key: usage rounded up to the end of its increment ===================================
_grids = st.lists(st.tuples(st.integers(0, 90), st.integers(1, 70)), min_size=1, max_size=4).map(
    lambda steps: [(0, steps[0][1])] + [(sum(s[0] for s in steps[1:k + 1]), inc) for k, (_f, inc) in enumerate(steps[1:], 1)])


@settings(max_examples=300, deadline=None)
@given(steps=_grids, prices=st.lists(st.integers(0, 5_000_000), min_size=4, max_size=4), per=st.sampled_from([1, 6, 60, 1000]),
       connect=st.sampled_from([0, 50_000]), minimum=st.sampled_from([0, 100_000]), maximum=st.sampled_from([None, 250_000]),
       mode=st.sampled_from(["half_up", "half_even", "up", "down"]), scope=st.sampled_from(["per_call", "per_span", "per_increment"]),
       units=st.integers(0, 2_000))
def test_usage_prices_as_the_end_of_its_increment(steps: list[tuple[int, int]], prices: list[int], per: int, connect: int,
                                                    minimum: int, maximum: int | None, mode: str, scope: str, units: int) -> None:
    """A stepped rate prices a usage as it prices the end of the increment the usage falls in (increments from 0, each
    billed in full at the step it starts in, however many steps, nested or equal step starts): so the batch loops
    ask the one-span memo by that end (ChargeModel.memo_key), and the C loop computes the same key."""
    from engine.rating._rowkernel import memo_key
    from engine.rating.compiled import _rate
    from engine.rating.models import Part
    from engine.rating.models.base import grid_end

    rate = _rate("RT", ir_rate([[f, prices[k], per, inc] for k, (f, inc) in enumerate(steps)], connect=connect, minimum=minimum,
                               maximum=maximum, mode=mode, scope=scope))
    key = rate.model.memo_key(units)
    assert rate.model.memo_grid == tuple(x for s in steps for x in s)
    assert key == grid_end(rate.model.memo_grid, units) == memo_key(rate.model.memo_grid, units) >= units
    assert (key == 0) == (units == 0)
    at_usage: list[Part] = []
    at_key: list[Part] = []
    assert rate.model.parts(0, 0, units, units, at_usage) == key
    rate.model.parts(0, 0, key, key, at_key)
    assert at_usage == at_key
    assert Evaluator.one_span(rate, units) == Evaluator.one_span(rate, key)


@settings(max_examples=200, deadline=None)
@given(grid=st.lists(st.integers(-3, 80), min_size=0, max_size=9).map(tuple), units=st.integers(0, 10**6))
def test_the_c_memo_key_is_the_python_one_or_none(grid: tuple[int, ...], units: int) -> None:
    """Any tuple given as a grid: the C key equals engine.rating.models.base.grid_end where it is a grid from 0 of whole
    increments with steps in order; otherwise the C loop declines (None) and the Python loop rates the row."""
    from engine.rating._rowkernel import memo_key
    from engine.rating.models.base import grid_end, memo_grid_of

    got = memo_key(grid, units)
    pairs = tuple(zip(grid[::2], grid[1::2]))
    if got is not None:
        assert got == grid_end(grid, units)
    if units and len(grid) % 2 == 0 and memo_grid_of(pairs) == grid:
        assert got == grid_end(grid, units)
    assert memo_key(grid, 0) in (0, None)


@settings(max_examples=60, deadline=None)
@given(steps=_grids, price=st.integers(1, 2_000_000), connect=st.sampled_from([0, 70_000]), seed=st.integers(0, 2**32))
def test_rows_keyed_by_the_end_of_their_increment_rate_as_the_per_cdr_way(steps: list[tuple[int, int]], price: int, connect: int,
                                                                         seed: int) -> None:
    """Calls of every length at a many-step rate (60/1, 30/6, ...), rated by the C loop through the memo keyed by the
    end of the increment, charge what the per-CDR way (no memo) charges, in a midnight-split two-band plan."""
    from engine.rating.compiled import CompiledPlans

    rng = random.Random(seed)
    rates = {"RT": ir_rate([[f, price * (k + 1), 60, inc] for k, (f, inc) in enumerate(steps)], connect=connect, maximum=900_000)}
    week = {d: [[0, 600, "NIGHT"], [600, 1440, "DAY"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    compiled = CompiledPlans.from_ir(ir_plan(rates, [["voice", "originating", "home", "DST_ALL", b, "RT"] for b in ("DAY", "NIGHT")],
                                             days=week))
    calls = [cdr(duration_seconds=rng.randint(0, 400), start=f"2026-03-0{rng.randint(2, 3)}T{rng.choice(['09:5', '23:5', '12:0'])}"
                                                                f"{rng.randint(0, 9)}:{rng.randint(0, 59):02d}Z") for _ in range(150)]
    rows = [to_row(c) for c in calls]
    ev = Evaluator(compiled)
    got = ev.rate_rows(_held(rows), "TP")
    want = [Evaluator(compiled).rate(c, "TP") for c in calls]
    assert [(r[0], r[1]) for r in got] == [(w.status.value, w.charge_micros) for w in want]
    model = compiled.plans["TP"].versions[0].table[("voice", "originating", "home", "DST_ALL", "DAY")].model
    assert compiled.memos["RT"] and set(compiled.memos["RT"]) <= {model.memo_key(c.duration_seconds) for c in calls}   # asked by the end of the increment


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_c_minute_table_answers_only_for_its_own_plan(seed: int) -> None:
    """The C loop keeps the start minutes' entries of a few plans' minute caches by the minute's bytes: the same
    minutes rated in turn under six plan sets (more than it keeps tables for) with other prices and band hours,
    thousands of distinct minutes (slots taken over), each gives what the Python loop gives for that plan set."""
    from engine.rating.compiled import CompiledPlans

    rng = random.Random(seed)
    sets = []
    for k in range(6):
        cut = rng.randrange(1, 1440)
        week = {d: [[0, cut, "NIGHT"], [cut, 1440, "DAY"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        rates = {b: ir_rate([[0, 10_000 * (k + 1) * (2 if b == "DAY" else 1), 60, 1]]) for b in ("DAY", "NIGHT")}
        sets.append(CompiledPlans.from_ir(ir_plan(rates, [["voice", "originating", "home", "DST_ALL", b, b] for b in ("DAY", "NIGHT")],
                                                  days=week)))
    minutes = [f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}" for _ in range(6_000)]
    rows = [to_row(cdr(duration_seconds=rng.randint(1, 90), start=f"{m}:{rng.randint(0, 59):02d}Z")) for m in minutes]
    c_loops = [Evaluator(s) for s in sets]
    for _round in range(2):
        for k in rng.sample(range(6), 6):
            py_loop = Evaluator(sets[k])
            py_loop.use_kernel = False
            part = rows[rng.randrange(0, 3_000):][:3_000]
            got = c_loops[k].rate_rows(_held(part), "TP")
            assert [r[:3] + r[5:9] for r in got] == [r[:3] + r[5:9] for r in py_loop.rate_rows(part, "TP")]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), cut=st.integers(1, 1439))
def test_minutes_sharing_an_entry_keep_their_own_band_end(seed: int, cut: int) -> None:
    """The C loop shares one entry among the minutes of a band run (same routes, version, band) and keeps each minute's
    band end and epoch apart: calls started in every minute of the two hours before a band change, three a minute, in any order, some
    crossing it, each priced as the Python loop prices it (a band end read from another minute's entry would price a
    crossing call as one span, or a plain call as a crossing one)."""
    from engine.rating.compiled import CompiledPlans

    rng = random.Random(seed)
    week = {d: [[0, cut, "NIGHT"], [cut, 1440, "DAY"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    rates = {b: ir_rate([[0, 10_000 * (3 if b == "DAY" else 1), 60, 1]]) for b in ("DAY", "NIGHT")}
    compiled = CompiledPlans.from_ir(ir_plan(rates, [["voice", "originating", "home", "DST_ALL", b, b] for b in ("DAY", "NIGHT")],
                                             days=week))
    change = datetime(2026, 3, 10, tzinfo=timezone.utc) + timedelta(minutes=cut)   # (the plan's zone is UTC)
    starts = [change - timedelta(minutes=m) for m in range(1, 121)] * 3   # (a minute seen again: the slot answers)
    rng.shuffle(starts)
    rows = [to_row(cdr(duration_seconds=rng.choice([30, 90, 900, 3600, 7000]),
                       start=f"{s:%Y-%m-%dT%H:%M}:{rng.randint(0, 59):02d}Z")) for s in starts]
    py_loop = Evaluator(compiled)
    py_loop.use_kernel = False
    want = py_loop.rate_rows(rows, "TP")
    assert len({r[2] for r in want}) > 1   # some calls cross the change (priced by both bands' rates), some do not
    assert [r[:3] + r[5:9] for r in Evaluator(compiled).rate_rows(_held(rows), "TP")] == [r[:3] + r[5:9] for r in want]


# == calls priced by parts in the C loop: band crossings, bundles paying part of a call ======================
def _bundle(service: str, allowance: int, priority: int) -> dict[str, Any]:
    return {"name": "b", "service": service, "unit": "second" if service == "voice" else "byte", "allowance": allowance,
            "destinations": [], "zones": [], "recurrence": "monthly", "validity_days": 0, "fee": 0, "currency": "EUR",
            "proration": "daily", "priority": priority, "condition": None}


_step_lists = st.lists(st.tuples(st.integers(0, 120), st.sampled_from([1, 6, 10, 30, 60]), st.integers(0, 3_000_000),
                                 st.sampled_from([1, 60, 3600])), min_size=1, max_size=3).map(
    lambda s: [[0 if k == 0 else sum(x[0] for x in s[1:k + 1]), price, per, inc] for k, (_f, inc, price, per) in enumerate(s)])


@settings(max_examples=80, deadline=None)
@given(day=_step_lists, night=_step_lists, connect=st.sampled_from([0, 50_000]), minimum=st.sampled_from([0, 120_000]),
       maximum=st.sampled_from([None, 400_000, 3_000_000]), mode=st.sampled_from(["half_up", "half_even", "up", "down"]),
       scopes=st.tuples(st.sampled_from(["per_call", "per_span", "per_increment"]), st.sampled_from(["per_call", "per_span", "per_increment"])),
       decimals=st.sampled_from([0, 2, 4, 6]), zone=st.sampled_from(["UTC", "Europe/Paris"]), cut=st.integers(1, 1439),
       bundles=st.lists(st.tuples(st.sampled_from(["voice", "data"]), st.integers(0, 3)), max_size=3),
       second=st.sampled_from([0, 0, 17, 59]), seed=st.integers(0, 2**32))
def test_calls_priced_by_parts_in_the_c_loop_rate_as_the_per_cdr_way(day: list[list[int]], night: list[list[int]], connect: int,
                                                                       minimum: int, maximum: int | None, mode: str,
                                                                       scopes: tuple[str, str], decimals: int, zone: str, cut: int,
                                                                       bundles: list[tuple[str, int]], second: int, seed: int) -> None:
    """Voice calls crossing band changes (at the band edges, midnight, the DST changes of Europe/Paris, calls long
    enough to cross several) and calls that bundles pay for in part (counters running out mid-call, several bundles by
    priority then id) are priced by the C loop itself -- one call of it rates every row -- and charge, name the
    rates, spend the bundles and leave the wallets as the per-CDR way (the oracle, row after row) and the Python loop
    do, whatever the steps, prices, connect fee, minimum, maximum, rounding mode, decimals and scope of each band's rate;
    also when the band changes on a second within a minute (band times to the second)."""
    from engine.rating.compiled import CompiledPlans

    rng = random.Random(seed)
    rates = {"RT_DAY": ir_rate(day, connect=connect, minimum=minimum, maximum=maximum, mode=mode, decimals=decimals, scope=scopes[0]),
             "RT_NIGHT": ir_rate(night, connect=connect // 2, minimum=minimum, maximum=maximum, mode=mode, decimals=decimals,
                                 scope=scopes[1]),
             "RT_DATA": ir_rate([[0, 20_000, 1_000_000, 10_000]], mode=mode, decimals=decimals, scope=scopes[0], unit="byte")}
    week = {d: [[0, cut, "NIGHT"], [cut, 1440, "DAY"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    week.update({d: [[0, 1440, "NIGHT"]] for d in ("sat", "sun")})
    kinds = {f"BN_{k}_{service}": _bundle(service, 0, priority) for k, (service, priority) in enumerate(bundles)}
    rows_ir = [["voice", "originating", "home", "DST_ALL", b, f"RT_{b}"] for b in ("DAY", "NIGHT")]
    rows_ir += [["data", "originating", "home", "DST_ALL", b, "RT_DATA"] for b in ("DAY", "NIGHT")]
    ir = ir_plan(rates, rows_ir, days=week, timezone_name=zone, bundles=kinds)
    if second:   # the band changes `second` seconds into the minute: the day tables in seconds
        table = ir["time_bands"]["TB"]
        table["resolution"] = "second"
        table["days"] = {d: [[a * 60 + (second if a == cut else 0), b * 60 + (second if b == cut else 0), w] for a, b, w in segs]
                         for d, segs in week.items()}
    compiled = CompiledPlans.from_ir(ir)
    # starts near the band change, near midnight (UTC and Paris), on the days the clocks change in Paris
    edges = [(cut // 60, cut % 60), (0, 0), (23, 0), (22, 0), (1, 0), (2, 0)]
    calls = []
    for _ in range(60):
        hour, minute = rng.choice(edges)
        moment = datetime(2026, 3, rng.choice([27, 28, 29, 30]) if rng.random() < 0.5 else 25, hour, minute, tzinfo=timezone.utc) \
            if rng.random() < 0.7 else datetime(2026, 10, rng.choice([24, 25, 26]), hour, minute, tzinfo=timezone.utc)
        moment += timedelta(seconds=rng.randint(-400, 400))
        start = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        a_number = rng.choice(_SUBSCRIBERS)
        if rng.random() < 0.8:
            calls.append(cdr(duration_seconds=rng.choice([0, 1, 59, 61, rng.randint(1, 900), rng.randint(900, 9000)]), start=start,
                             a_number=a_number))
        else:
            calls.append(cdr("data", volume_down_bytes=rng.randint(0, 5 * 10**6), start=start, a_number=a_number))
    base = {a: {bid: rng.choice([0, 1, 30, 59, 60, 300, 10_000, 10**6]) for bid in kinds if rng.random() < 0.8} for a in _SUBSCRIBERS}
    rows = [to_row(c) for c in calls]

    wallets = {a: dict(w) for a, w in base.items()}
    calls_made = []
    real = evaluator_module._kernel(_held(rows))
    original = evaluator_module._kernel

    def counting(*args: Any) -> int:
        calls_made.append(args[1])
        return real(*args)  # type: ignore[misc]

    evaluator_module._kernel = lambda *_rows: counting  # type: ignore[assignment]
    try:
        c_loop = Evaluator(compiled)
        got = c_loop.rate_rows(_held(rows), "TP", wallets)
    finally:
        evaluator_module._kernel = original
    if not second:   # (an SMS or data event after a band change within its minute goes to the Python loop)
        assert calls_made == [0], "every row priced by the C loop itself"

    oracle_wallets = {a: dict(w) for a, w in base.items()}
    oracle = Evaluator(compiled)
    want = [oracle.rate_cdr(c, "TP", oracle_wallets[c.a_number]) for c in calls]
    assert [(r[0], r[1], r[2], tuple(r[3] or ()), r[8]) for r in got] == \
        [(w.status.value, w.charge_micros, "+".join(s.rate_id for s in w.spans), tuple((u.bundle_id, u.units) for u in w.bundle_usage),
          w.spans[0].band if w.spans else "") for w in want]
    assert wallets == oracle_wallets

    py_wallets = {a: dict(w) for a, w in base.items()}
    py_loop = Evaluator(compiled)
    py_loop.use_kernel = False
    assert [r[:4] + r[5:9] for r in got] == [r[:4] + r[5:9] for r in py_loop.rate_rows(rows, "TP", py_wallets)]
    assert py_wallets == wallets
    # the detail of a row priced by parts is the per-CDR way's
    for row, c, w in zip(got, calls, want):
        detail = c_loop.rated_of(row, c, "TP")
        assert (detail.charge_micros, detail.spans, detail.bundle_usage, detail.gross_micros) == \
            (w.charge_micros, w.spans, w.bundle_usage, w.gross_micros)


@pytest.mark.parametrize("kernel", [True, False])
def test_an_event_after_a_band_change_within_its_minute_takes_the_band_then(kernel: bool) -> None:
    """Band times to the second: a data session or SMS starting at 10:00:30, after the band changed at 10:00:17, is
    priced at the new band by both batch loops, as the per-CDR way prices it (the minute's entry holds the band at
    10:00:00; the loops used to price such events at it)."""
    from engine.rating.compiled import CompiledPlans

    rates = {"RT_DAY": ir_rate([[0, 100_000, 1, 1]], unit="byte"), "RT_NIGHT": ir_rate([[0, 1_000, 1, 1]], unit="byte"),
             "RT_SMS_DAY": ir_rate([[0, 90_000, 1, 1]], unit="event"), "RT_SMS_NIGHT": ir_rate([[0, 10_000, 1, 1]], unit="event")}
    rows_ir = [["data", "originating", "home", "DST_ALL", b, f"RT_{b}"] for b in ("DAY", "NIGHT")]
    rows_ir += [["sms", "originating", "home", "DST_ALL", b, f"RT_SMS_{b}"] for b in ("DAY", "NIGHT")]
    ir = ir_plan(rates, rows_ir, days={d: [[0, 600 * 60 + 17, "NIGHT"], [600 * 60 + 17, 86400, "DAY"]]
                                       for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    ir["time_bands"]["TB"]["resolution"] = "second"
    compiled = CompiledPlans.from_ir(ir)
    calls = [cdr("data", volume_down_bytes=5, start=f"2026-03-02T10:00:{s:02d}Z") for s in (0, 16, 17, 30, 59)]
    calls += [cdr("sms", event_count=1, start=f"2026-03-02T10:00:{s:02d}Z") for s in (0, 16, 17, 30, 59)]
    ev = Evaluator(compiled)
    ev.use_kernel = kernel
    got = ev.rate_rows(_held([to_row(c) for c in calls]) if kernel else [to_row(c) for c in calls], "TP")
    want = [Evaluator(compiled).rate(c, "TP") for c in calls]
    assert [(r[1], r[8]) for r in got] == [(w.charge_micros, w.spans[0].band) for w in want]
    assert [r[8] for r in got] == ["NIGHT", "NIGHT", "DAY", "DAY", "DAY"] * 2


def test_the_lines_of_discounted_rows_are_kept_and_the_same_again() -> None:
    """What a route's CDR discounts make of a one-span memo entry and charge is kept by the C loop (DiscountModel.on_cdr
    is a function of the charge alone): the same CDRs rated again, in the same call and in a later one, come out with
    the charges and discount lines the Python loop gives them."""
    many = _rows(random.Random(3), 4000)
    plans = [_PLANS[i % len(_PLANS)] for i in range(len(many))]
    found = _rate(many, plans, None, False)
    picked = [i for i, r in enumerate(found) if isinstance(r[9], tuple) and len(r[9]) == 4 and r[9][3]]   # discounted
    assert len(picked) >= 10
    picked += list(range(50))   # and others between them
    rows, plans = [many[i] for i in picked], [plans[i] for i in picked]
    twice = rows + rows
    first = _rate(twice, plans + plans, None, True)
    assert first == _rate(twice, plans + plans, None, False)
    assert _rate(rows, plans, None, True) == first[:len(rows)]
