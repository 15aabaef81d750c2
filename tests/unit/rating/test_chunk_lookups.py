"""The look-ups a chunk of rating with counters makes once per run of rows, held equal to the per-row answers.

RatingDesk resolves a chunk's rows with memos (engine.rating.desk): the plan set
head activated last per tenant, and per tariff plan a window of start times with
one plan version and one local day.  These properties compare them with what the
per-row look-ups give (``_in_force``, ``cycle_at``) for random start times, time
zones with daylight saving (and half-hour offsets), versions and activations.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterator

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS
from engine.plans.catalogue import PlanSetVersion
from engine.rating.compiled import CompiledPlans
from engine.rating.desk import RatingDesk, _Chunk
from engine.rating.usage import CounterRow, RatedSubscriber, Usage
from tests.unit.rating.helpers import ir_plan, ir_rate

ZONES = ("UTC", "Europe/Paris", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo")
EARLY, LATE = int(datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp()), int(datetime(2031, 1, 1, tzinfo=timezone.utc).timestamp())
# a day before some changes of UTC offset of those zones (EU, Newfoundland, Lord Howe's half hour): runs of start
# times from there cross the change and the local midnights around it
CHANGES = tuple((zone, int(datetime.fromisoformat(d).timestamp()) - 86400) for zone, d in (
    ("Europe/Paris", "2026-03-29T01:00:00+00:00"), ("Europe/Paris", "2026-10-25T01:00:00+00:00"),
    ("America/St_Johns", "2026-03-08T05:30:00+00:00"), ("America/St_Johns", "2026-11-01T04:30:00+00:00"),
    ("Australia/Lord_Howe", "2026-04-04T15:00:00+00:00"), ("Australia/Lord_Howe", "2026-10-03T15:30:00+00:00")))
_START, _TENANT, _A = COLUMNS.index("start_time"), COLUMNS.index("tenant"), COLUMNS.index("a_number")


def _plans(zone: str, effective: list[str]) -> CompiledPlans:
    ir = ir_plan({"R": ir_rate([[0, 10_000, 60, 1]])}, [["voice", "originating", "home", "DST_ALL", "ANYTIME", "R"]], timezone_name=zone)
    first = ir["tariff_plans"]["TP"]["versions"][0]
    versions = [first] + [{**copy.deepcopy(first), "version": n + 2, "effective_from": day} for n, day in enumerate(sorted(set(effective)))]
    ir["tariff_plans"]["TP"]["versions"] = versions
    return CompiledPlans(ir)


def _row(tenant: str, a_number: str, start: str) -> tuple[Any, ...]:
    row = [""] * len(COLUMNS)
    row[_TENANT], row[_A], row[_START] = tenant, a_number, start
    return tuple(row)


def _text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@settings(max_examples=150, deadline=None)
@given(at=st.one_of(st.tuples(st.sampled_from(ZONES), st.integers(EARLY, LATE)),
                    st.sampled_from(CHANGES).flatmap(lambda c: st.tuples(st.just(c[0]), st.integers(c[1], c[1] + 3 * 86400)))))
def test_a_local_day_holds_until_the_time_it_names(at: tuple[str, int]) -> None:
    zone, epoch = at
    clock = _plans(zone, []).clocks["TB"]
    day, until = clock.local_day_until(epoch)
    assert day == clock.local_day(epoch)
    assert epoch < until <= epoch + 86400
    # every 1/60 of the window (under half an hour: the shortest change of offset) and its last second
    for t in [epoch + k * (until - epoch) // 60 for k in range(60)] + [until - 1]:
        assert clock.local_day(t) == day


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES + ("near",)),
       effective=st.lists(st.dates(datetime(2020, 1, 1).date(), datetime(2030, 1, 1).date()).map(str), max_size=4),
       anchors=st.lists(st.integers(1, 28), min_size=1, max_size=3),
       starts=st.lists(st.integers(EARLY, LATE), min_size=1, max_size=60), near=st.sampled_from(CHANGES))
def test_each_rows_counter_key_and_version_are_the_per_row_answers(zone: str, effective: list[str], anchors: list[int],
                                                                  starts: list[int], near: tuple[str, int]) -> None:
    if zone == "near":   # runs of close start times, as a chunk has: windows reused across offset changes and midnights
        zone = near[0]
        starts = [near[1] + (s % 7200) * 40 for s in starts]
    compiled = _plans(zone, effective)
    desk = RatingDesk(None, None, None, None)  # type: ignore[arg-type]
    subs = [RatedSubscriber(f"S{i}", "mno", f"3361{i}", "TP", "", "active", None, "", a) for i, a in enumerate(anchors)]
    rows = [_row("mno", subs[i % len(subs)].msisdn, _text(s)) for i, s in enumerate(starts)]
    chunk = _Chunk(rows)
    for i, s in enumerate(starts):
        chunk.ats.append(datetime.fromtimestamp(s, timezone.utc))
        chunk.versions.append(None)
        chunk.compileds.append(compiled)
        chunk.plan_ids.append("TP")
        chunk.subscribers.append(subs[i % len(subs)])
    desk._keys(chunk)
    plan = compiled.plan("TP")
    assert plan is not None
    for i, s in enumerate(starts):
        sub = subs[i % len(subs)]
        assert chunk.tariffs[i] is plan.version_at(s)
        assert chunk.keys[i] == ("mno", sub.msisdn, desk.cycle_at(sub, compiled, datetime.fromtimestamp(s, timezone.utc)))


class _Heads:
    def __init__(self, heads: list[PlanSetVersion]) -> None:
        self.plan_versions = self
        self.tenants = self
        self._heads = heads

    def activation_heads(self, tenant: str) -> list[PlanSetVersion]:
        return self._heads if tenant == "mno" else []

    def get(self, tenant: str) -> None:
        return None   # no operator above: a tenant without a plan set has none


@settings(max_examples=80, deadline=None)
@given(activations=st.lists(st.one_of(st.none(), st.integers(EARLY, LATE)), min_size=0, max_size=5),
       starts=st.lists(st.integers(EARLY - 86400, LATE + 86400), min_size=1, max_size=40),
       tenants=st.lists(st.sampled_from(["mno", "other"]), min_size=1, max_size=40))
def test_each_rows_plan_set_is_the_one_in_force_at_its_start(activations: list[int | None], starts: list[int], tenants: list[str]) -> None:
    made = datetime(2018, 1, 1, tzinfo=timezone.utc)
    heads = [PlanSetVersion("mno", n + 1, f"d{n}", "{}", {}, made, "t",
                            None if a is None else datetime.fromtimestamp(a, timezone.utc)) for n, a in enumerate(activations)]
    fake = _Heads(heads)

    @contextmanager
    def uow(read_only: bool = False) -> Iterator[_Heads]:
        yield fake

    desk = RatingDesk(None, uow, uow, None)  # type: ignore[arg-type]
    for h in heads:
        desk._compiled[h.digest] = object()  # type: ignore[assignment]
    rows = [_row(tenants[i % len(tenants)], "", _text(s)) for i, s in enumerate(starts)]
    chunk = desk._resolve(rows, "TP", need_subscribers=False)
    for i, s in enumerate(starts):
        want = desk._in_force(rows[i][_TENANT], datetime.fromtimestamp(s, timezone.utc), {})
        assert (chunk.versions[i], chunk.compileds[i]) == want


class _Repo:
    def __init__(self, counters: dict[Any, dict[str, CounterRow]], balances: dict[Any, dict[str, int]]) -> None:
        self.counters, self.balances = counters, balances

    def counters_of(self, keys: Any) -> dict[Any, dict[str, CounterRow]]:
        return {k: {b: replace(r) for b, r in self.counters[k].items()} for k in keys if k in self.counters}

    def balances_of(self, keys: Any) -> dict[Any, dict[str, int]]:
        return {k: dict(self.balances[k]) for k in keys if k in self.balances}


KEYS = [("mno", f"3361{i}", "2026-03") for i in range(4)]
BUNDLES = ("BN_A", "BN_B")


@settings(max_examples=120, deadline=None)
@given(read=st.dictionaries(st.sampled_from(KEYS), st.dictionaries(st.sampled_from(BUNDLES), st.integers(0, 100), max_size=2), max_size=4),
       charged=st.dictionaries(st.sampled_from(KEYS), st.dictionaries(st.sampled_from(("EUR", "USD")), st.integers(-5, 50), max_size=2),
                               max_size=4),
       steps=st.lists(st.tuples(st.sampled_from(("ensure", "take", "give", "charge")), st.sampled_from(KEYS), st.sampled_from(BUNDLES),
                                st.integers(-20, 20)), max_size=30))
def test_a_chunk_writes_exactly_what_changed_from_what_it_read(read: dict[Any, dict[str, int]], charged: dict[Any, dict[str, int]],
                                                              steps: list[tuple[str, Any, str, int]]) -> None:
    counters = {k: {b: CounterRow(100, r, "seconds") for b, r in by.items()} for k, by in read.items()}
    usage = Usage(_Repo(counters, charged), KEYS)
    for op, key, bundle, n in steps:
        if op == "ensure":
            usage.ensure(key, bundle, 100, "seconds")
        elif op == "take":
            w = usage.wallets([key, None])[0]
            assert w is usage.wallet(key)
            if bundle in w:
                w[bundle] -= n
        elif op == "give":
            usage.give_back(key, [(bundle, n)], "EUR", n)
        else:
            usage.add_charge(key, "USD", n)
    written, balances = usage.changes()
    # the reference: every wallet entry that differs from the row read (or has no row read), every balance likewise
    want = []
    for key, w in usage._wallets.items():
        for bundle, remaining in w.items():
            before = read.get(key, {}).get(bundle)
            if before is None or before != remaining:
                want.append((key, bundle, CounterRow(100, remaining, "seconds"), before))
    assert written == want
    want_balances = [(k, c, v, charged.get(k, {}).get(c)) for k, by in usage.balances.items() for c, v in by.items()
                     if charged.get(k, {}).get(c) is None or charged.get(k, {}).get(c) != v]
    assert balances == want_balances


_WEEK_BANDS = {d: [[0, 480, "OFF"], [480, 1140, "PEAK"], [1140, 1440, "OFF"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [[0, 1440, "WE"]], "sun": [[0, 600, "WE"], [600, 630, "OFF"], [630, 1440, "WE"]]}
# a band that lasts six days (longer than the longest call and the day the evaluator looks beyond it)
_LONG_BANDS = {d: [[0, 1440, "OFF"]] for d in ("mon", "tue", "wed", "thu", "sat", "sun")} | {"fri": [[0, 1440, "PEAK"]]}


@settings(max_examples=150, deadline=None)
# a minute of the six-day band asked first, then one whose band ends (Friday) within the longest call of it
@example(zone="UTC", near="year", split=False, week=_LONG_BANDS, effective=[], change=CHANGES[0],
         minutes=[(4 * 24 + 12) * 60, 7 * 24 * 60])
@given(zone=st.sampled_from(ZONES), near=st.sampled_from(("year", "offset", "version")), split=st.booleans(),
       week=st.sampled_from((_WEEK_BANDS, _LONG_BANDS)),
       effective=st.lists(st.dates(datetime(2026, 1, 1).date(), datetime(2027, 1, 1).date()).map(str), max_size=3),
       minutes=st.lists(st.integers(0, 400 * 24 * 60), min_size=1, max_size=80), change=st.sampled_from(CHANGES))
def test_each_start_minutes_band_and_its_length_are_the_band_clocks_answers(zone: str, near: str, split: bool, week: Any,
                                                                           effective: list[str], minutes: list[int],
                                                                           change: tuple[str, int]) -> None:
    """The evaluator's entry of a start minute, found by stretches of one version and band run (asked in any order),
    has the version, band and length of the band (capped at the longest call, cut at the next version's start for
    version_change: split) that the band clock and the plan give for that minute alone."""
    from engine.rating.evaluator import Evaluator

    start = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
    if near == "offset":   # minutes of a few days around a change of UTC offset, where band runs and midnights move
        zone, start = change[0], change[1] - change[1] % 60
        minutes = [m % (8 * 24 * 60) for m in minutes]
    elif near == "version" and effective:   # minutes of a few days before and after a version starts
        start = int(datetime.fromisoformat(min(effective)).replace(tzinfo=timezone.utc).timestamp()) - 4 * 86400
        minutes = [m % (8 * 24 * 60) for m in minutes]
    ir = ir_plan({"R": ir_rate([[0, 10_000, 60, 1]])}, [["voice", "originating", "home", "DST_ALL", b, "R"] for b in ("OFF", "PEAK", "WE")],
                 days=week, timezone_name=zone)
    tp = ir["tariff_plans"]["TP"]
    first = tp["versions"][0]
    tp["versions"] = [first] + [{**copy.deepcopy(first), "version": n + 2, "effective_from": day} for n, day in enumerate(sorted(set(effective)))]
    if split:
        tp["version_change"] = "split"
    compiled = CompiledPlans(ir)
    plan = compiled.plan("TP")
    assert plan is not None
    ev = Evaluator(compiled)
    cache: dict[str, Any] = {}
    horizon = ev.limits.max_call_seconds
    for m in minutes:
        epoch = start + m * 60
        key = _text(epoch)[:16]
        entry = ev._minute(cache, "TP", key)
        v = plan.version_at(epoch)
        band, until = v.clock.band_at(epoch, horizon)
        nxt = plan.next_start(epoch)
        if split and nxt is not None:
            until = min(until, nxt - epoch)
        assert entry is not None and (entry[5], entry[7], entry[0], entry[8]) == (v, band, until, epoch), key
