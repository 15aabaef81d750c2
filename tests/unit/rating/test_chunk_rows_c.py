"""The C loops of a chunk rated with counters (engine/rating/_chunkrows.c) held to the Python loops they stand in for.

RatingDesk resolves, keys, rates and writes a chunk through engine.rating._chunkrows when it is built (``use_c``), and
through its Python loops otherwise; Usage likewise for its wallets and changes.  For random chunks of the sample
plans (tenants with and without a plan set of their own, activations before and after the CDRs, subscribers of another
tenant or of no plan, a wholesale customer's CDRs, start times in other forms and none at all, RAP returns, CDRs rated
before, counters read, add-ons) both ways must give the same columns, evaluator rows, ledger rows, counters and
balances.
"""

from __future__ import annotations

import gc

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS, RAP_RETURN_ATTRIBUTE, encode_attributes
from engine.gcpause import collector_paused
from engine.clock import FixedClock
from engine.plans.catalogue import PlanSetVersion
from engine.rating.addons import ActiveAddOn
from engine.rating.desk import RatingDesk, _chunkrows
from engine.rating.evaluator import Priced, row_of
from engine.rating.usage import NO_ADD_ONS, CounterRow, RatedSubscriber
from tests.unit.rating.helpers import REPO, cdr, compile_folder

pytestmark = pytest.mark.skipif(_chunkrows is None, reason="built without a C compiler")

COMPILED = compile_folder(REPO / "plans")
AGAIN = compile_folder(REPO / "plans")   # a second plan set version: other objects, the same plans
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
TENANTS = ("mno", "mvno-alpha", "mvno-beta")
NUMBERS = [f"3361000000{i}" for i in range(6)]
PLANS = ("TP_SMART_M", "TP_SMART_S", "TP_NOPE")
B_NUMBERS = ("33612345678", "33123456789", "44207123456", "14155550100", "internet")
_START, _TENANT, _ATTRS = COLUMNS.index("start_time"), COLUMNS.index("tenant"), COLUMNS.index("attributes")


class _Store:
    """The reads of a chunk, in memory: activation heads, tenants, subscribers, holdings, counters, balances, add-ons."""

    def __init__(self, heads: list[PlanSetVersion], subs: dict[str, RatedSubscriber], holdings: dict[str, tuple[Any, ...]],
                 counters: dict[Any, dict[str, int]], balances: dict[Any, dict[str, int]], add_ons: list[ActiveAddOn]) -> None:
        self.plan_versions, self.usage, self.add_ons = self, self, self
        self.tenants = _Tenants()
        self._heads, self._subs, self._holdings = heads, subs, holdings
        self._counters, self._balances, self._add_ons = counters, balances, add_ons

    def activation_heads(self, tenant: str) -> list[PlanSetVersion]:
        return self._heads if tenant == "mno" else []

    def subscribers_of(self, msisdns: Any) -> dict[str, RatedSubscriber]:
        return {m: self._subs[m] for m in msisdns if m in self._subs}

    def take_holdings(self, tenant: str, ids: list[str]) -> list[tuple[Any, ...]]:
        return [self._holdings[i][1:] for i in ids if i in self._holdings and self._holdings[i][0] == tenant]

    def counters_of(self, keys: Any) -> dict[Any, dict[str, CounterRow]]:
        return {k: {b: CounterRow(100_000, r, "second") for b, r in self._counters[k].items()} for k in keys if k in self._counters}

    def balances_of(self, keys: Any) -> dict[Any, dict[str, int]]:
        return {k: dict(self._balances[k]) for k in keys if k in self._balances}

    def active_add_ons(self, numbers: Any, lo: datetime, hi: datetime) -> list[ActiveAddOn]:
        return [a for a in self._add_ons if (a.tenant_id, a.msisdn) in numbers]


class _Tenants:
    class _Tenant:
        def __init__(self, parent: str) -> None:
            self.parent_tenant_id = parent

    def get(self, tenant: str) -> Any:
        return self._Tenant("" if tenant == "mno" else "mno")


def _rated(store: _Store, rows: list[tuple[Any, ...]], tariff_plan: str, fixed: bool, use_c: bool) -> dict[str, Any]:
    @contextmanager
    def uow(read_only: bool = False) -> Iterator[_Store]:
        yield store

    desk = RatingDesk(None, uow, uow, FixedClock(T0))  # type: ignore[arg-type]
    desk.use_c = use_c
    for h in store._heads:
        desk._compiled[h.digest] = COMPILED if h.version % 2 else AGAIN
    version = store._heads[0] if fixed and store._heads else None
    chunk = desk._resolve(rows, tariff_plan, True, version, COMPILED if version is not None else None)
    desk._keys(chunk)
    results, (entries, counters, balances), previous = desk._chunk(store, chunk, defer=True)
    return {"ats": chunk.ats, "versions": [id(v) for v in chunk.versions], "compileds": [id(c) for c in chunk.compileds],
            "plan_ids": chunk.plan_ids, "subscribers": [id(s) for s in chunk.subscribers], "keys": chunk.keys,
            "tariffs": [id(t) for t in chunk.tariffs], "results": [_plain(r) for r in results], "entries": entries, "counters": counters,
            "balances": balances, "previous": (previous.replaced, previous.units, previous.charges)}


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """An evaluator row comparable across runs: what the per-CDR pricing found (Priced, compared by identity) by its fields."""
    how = row[9]
    if isinstance(how, Priced):
        how = tuple(getattr(how, name, None) for name in Priced.__slots__)
    return row[:9] + (how,)


def _row(n: int, tenant: str, a: str, b: str, minutes: int, seconds: int, form: int, rap: bool) -> tuple[Any, ...]:
    service = "data" if b == "internet" else ("sms" if seconds % 5 == 0 else "voice")
    kw: dict[str, Any] = {"duration_seconds": seconds} if service == "voice" else (
        {"volume_down_bytes": seconds * 10_000} if service == "data" else {"event_count": 1})
    at = T0 + timedelta(minutes=minutes)
    made = cdr(service, b_number=b, start=at.strftime("%Y-%m-%dT%H:%M:%SZ"), a_number=a, tenant=tenant, origin_id=f"o{n}", **kw)
    row = list(row_of(made))
    row[_START] = (row[_START], at.isoformat(), str(at), "not a time", at.strftime("%Y-%m-%dT%H:%M:%S+01:00"), "2026-02-30T10:00:00Z")[form]
    if rap:
        row[_ATTRS] = encode_attributes({RAP_RETURN_ATTRIBUTE: "1"})
    return tuple(row)


MINUTES = st.integers(-40 * 24 * 60, 40 * 24 * 60)


@settings(max_examples=120, deadline=None)
@example(activations=[0], subs=[("mno", "TP_SMART_M", 1, False)], rows=[(0, "mno", 0, 60, 0, False, False)], minutes=[0] * 40, tariff_plan="", fixed=False,
         counters={}, add_on=False)
@given(activations=st.lists(st.one_of(st.none(), MINUTES), max_size=3),
       subs=st.lists(st.tuples(st.sampled_from(TENANTS), st.sampled_from(PLANS), st.integers(1, 28), st.booleans()), min_size=1,
                     max_size=len(NUMBERS)),
       rows=st.lists(st.tuples(st.integers(0, len(NUMBERS)), st.sampled_from(TENANTS), st.integers(0, len(B_NUMBERS) - 1),
                               st.integers(1, 4000), st.sampled_from((0, 0, 0, 0, 1, 2, 3, 4, 5)), st.booleans(), st.booleans()),
                     min_size=1, max_size=40),
       minutes=st.lists(MINUTES, min_size=40, max_size=40),
       tariff_plan=st.sampled_from(("", "", "TP_SMART_S")), fixed=st.booleans(),
       counters=st.dictionaries(st.tuples(st.sampled_from(NUMBERS), st.sampled_from(("2026-01", "2026-02", "2026-03", "2026-04"))),
                                st.integers(0, 100_000), max_size=6),
       add_on=st.booleans())
def test_the_c_loops_rate_a_chunk_as_the_python_loops_do(activations: list[int | None], subs: list[tuple[str, str, int, bool]],
                                                         rows: list[tuple[Any, ...]], minutes: list[int], tariff_plan: str, fixed: bool,
                                                         counters: dict[tuple[str, str], int], add_on: bool) -> None:
    made = datetime(2020, 1, 1, tzinfo=timezone.utc)
    heads = [PlanSetVersion("mno", n + 1, f"d{n}", "{}", {}, made, "t", None if m is None else T0 + timedelta(minutes=m))
             for n, m in enumerate(activations)]
    by_number = {NUMBERS[i]: RatedSubscriber(f"S{i}", tenant, NUMBERS[i], plan, "", "active", None, "", anchor,
                                             add_ons_until=None if bought else NO_ADD_ONS)
                 for i, (tenant, plan, anchor, bought) in enumerate(subs)}
    chunk_rows, holdings = [], {}
    for n, (who, tenant, b, seconds, form, rap, before) in enumerate(rows):
        a = NUMBERS[who] if who < len(NUMBERS) else ""
        # a row on an activation's very instant, on the minute of another row, or anywhere in the months around
        at = minutes[n] if n % 3 else (activations[n % len(activations)] or 0) if activations else minutes[n]
        row = _row(n, tenant, a, B_NUMBERS[b], at, seconds, form, rap)
        chunk_rows.append(row)
        if before:   # rated before: what it took goes back first
            holdings[row[0]] = (tenant, row[0], a, "2026-03", "EUR", seconds * 100, '[["BN_M_VOICE_1000MIN", 60]]')
    stored = {("mno", m, c): {"BN_M_VOICE_1000MIN": r, "BN_M_SMS_500": r % 500} for (m, c), r in counters.items()}
    charged = {("mno", m, c): {"EUR": r * 7} for (m, c), r in counters.items()}
    add_ons = [ActiveAddOn(s.tenant_id, s.msisdn, "+000001", "BN_ADDON_INTL_60MIN", 600, "second", T0 - timedelta(days=20),
                           T0 + timedelta(days=20)) for s in by_number.values()] if add_on else []

    def store() -> _Store:
        return _Store(heads, by_number, holdings, stored, charged, add_ons)

    want = _rated(store(), chunk_rows, tariff_plan, fixed, use_c=False)
    with collector_paused():   # what the C loops hand over, before any collection of the young could untrack it
        got = _rated(store(), chunk_rows, tariff_plan, fixed, use_c=True)
        # a ledger row or counter key of atoms only (strs, ints, None, datetimes) is out of the cyclic collector's reach
        # from the start (a group's rows outlive several of its young collections); one holding a tracked value is not
        made = [*got["entries"], *(k for k in got["keys"] if k is not None)]
        assert [gc.is_tracked(t) for t in made] == [any(gc.is_tracked(x) for x in t) for t in made]
    for name in want:
        assert got[name] == want[name], name



STORED_ROW = st.tuples(st.sampled_from(["c1", "c2", "c3", "c4"]), st.sampled_from(NUMBERS[:3]), st.sampled_from(["", "2026-03", "2026-04"]),
                       st.sampled_from(["EUR", "GBP", ""]), st.integers(-5, 10**13) | st.sampled_from([0, 0]),
                       st.sampled_from(["[]", "", '[["BN_M_VOICE_1000MIN", 60]]', '[["BN_A", 1], ["BN_B", 2], ["BN_A", 3]]']))


@given(st.lists(st.tuples(st.sampled_from(TENANTS), st.lists(STORED_ROW, max_size=8)), max_size=4))
def test_the_c_loop_adds_up_the_replaced_rows_as_taken_add_does(parts: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """_chunkrows.taken_add (what RatingDesk._chunk calls for each tenant's stored rows) gives Taken.add's sums: rows
    without a cycle count in no key, "[]" and "" take no units, a zero charge no balance, a bundle twice in one row adds."""
    from engine.rating.usage import Taken, bundle_units

    python, c = Taken(), Taken()
    for tenant, rows in parts:
        python.add(tenant, rows)
        _chunkrows.taken_add(tenant, list(rows), c.replaced, c.keys, c.units, c.charges, bundle_units)
    assert (c.replaced, c.keys, c.units, c.charges) == (python.replaced, python.keys, python.units, python.charges)
