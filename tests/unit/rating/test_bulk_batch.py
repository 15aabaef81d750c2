"""BulkRater.rate_rows (the batch loop) and band-crossing calls on the bulk path rate exactly like the full rater."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS, MediatedCdr, read_cdrs, to_row, write_cdrs
from engine.rating import CompiledPlans, Rater
from engine.rating.bulk import BulkRater
from engine.replay import find_cases, load_assignments
from tests.unit.rating.helpers import REPO, cdr, compile_folder, ir_plan, ir_rate

GOLDEN = REPO / "tests" / "golden"


def _full(rater: Rater, c: MediatedCdr, plan: str) -> tuple[str, int, str]:
    """What the bulk path must answer: status, charge and (when rated) the span rate ids joined by '+'."""
    rated = rater.rate(c, plan)
    if not rated.rated:
        return rated.status.value, 0, ""
    return rated.status.value, rated.charge_micros, "+".join(s.rate_id for s in rated.spans)


def _csv_rows(cdrs: list[MediatedCdr]) -> list[list[str]]:
    buf = io.StringIO()
    write_cdrs(cdrs, buf)
    return list(csv.reader(io.StringIO(buf.getvalue())))[1:]


def _same(bulk: tuple[str, int, str], full: tuple[str, int, str]) -> bool:
    return bulk[:2] == full[:2] and (bulk[0] != "rated" or bulk[2] == full[2])


def test_rate_rows_on_golden_cases_equals_row_rater_and_full_rater() -> None:
    compared = 0
    for case in find_cases([GOLDEN]):
        compiled = compile_folder(case / "plans")
        assignments = load_assignments(case / "subscribers.yaml", [])
        rater = Rater(compiled)
        with (case / "cdrs.cdr.csv").open() as stream:
            cdrs = [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]
        by_plan: dict[str, list[MediatedCdr]] = {}
        for c in cdrs:
            by_plan.setdefault(assignments.plan_for(c), []).append(c)
        for plan, group in by_plan.items():
            rows = [to_row(c) for c in group]
            statuses, charges, ids = BulkRater(compiled).rate_rows(iter(rows), plan)
            one_by_one = BulkRater(compiled).row_rater(plan)
            assert len(statuses) == len(charges) == len(ids) == len(rows)
            for c, row, got in zip(group, rows, zip(statuses, charges, ids)):
                assert got == one_by_one(row), (case.name, c)
                assert _same(got, _full(rater, c, plan)), (case.name, c, got)
                compared += 1
    assert compared > 100


_SAMPLE = compile_folder(REPO / "plans")
_PLANS = ["TP_SMART_S", "TP_SMART_M", "TP_BUSINESS_PRO", "TP_WS_ALPHA", "TP_WS_BETA", "TP_ALPHA_SIMPLE", "TP_BETA_DATA"]
_NUMBERS = ["33612000009", "33698765432", "33123456789", "33891234567", "112", "14155550100", "4930123456", "8816123456",
            "442071234567", "33811234567", "internet", "5511999999999", "999", ""]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_rate_rows_on_random_sample_plan_cdrs_equals_full_rater(seed: int) -> None:
    rng = random.Random(seed)
    cdrs = []
    for _ in range(40):
        service = rng.choice(["voice", "voice", "voice", "sms", "mms", "data", "supplementary"])
        cdrs.append(cdr(
            service, b_number=rng.choice(_NUMBERS),
            start=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                  f"{rng.randint(0, 59):02d}Z",
            duration_seconds=rng.choice([0, 1, 59, 60, 61, 600, 3600, 20000, 90000]) if service == "voice" else 0,
            volume_down_bytes=rng.randint(0, 10**9) if service == "data" else 0,
            event_count=rng.randint(1, 3), visited_network=rng.choice(["", "", "DEUD1", "CHESR", "USACG"]),
            direction=rng.choice(["originating", "originating", "terminating"]), a_number=rng.choice(["33612000001", "33614900001"])))
    plan = rng.choice(_PLANS)
    rater = Rater(_SAMPLE)
    rows = _csv_rows(cdrs)
    got = list(zip(*BulkRater(_SAMPLE).rate_rows(rows, plan)))
    for c, g in zip(cdrs, got):
        assert _same(g, _full(rater, c, plan)), (c, g)


def test_rate_rows_without_the_full_layout_takes_the_full_path() -> None:
    header = [h for h in COLUMNS if h != "visited_network"]
    c = cdr(duration_seconds=60)
    row = [to_row(c)[COLUMNS.index(h)] for h in header]
    bulk = BulkRater(_SAMPLE, header)
    statuses, charges, _ = bulk.rate_rows([row], "TP_SMART_S")
    assert (statuses[0], charges[0]) == _full(Rater(_SAMPLE), c, "TP_SMART_S")[:2]
    assert bulk.fallbacks == 1


# band-crossing calls: random stepped rates (several steps, connect fee, minimum, cap, rounding modes) over bands
# that change within the day, in a DST time zone, so calls cross band boundaries, midnight and clock changes
_WEEK = {d: [[0, 420, "NIGHT"], [420, 1140, "DAY"], [1140, 1320, "EVE"], [1320, 1440, "NIGHT"]]
         for d in ("mon", "tue", "wed", "thu", "fri")}
_WEEK.update({d: [[0, 1440, "WEEKEND"]] for d in ("sat", "sun")})
_START = datetime(2026, 3, 27, tzinfo=timezone.utc)  # the Friday before the March DST change in Europe/Paris

steps = st.lists(st.tuples(st.integers(0, 5_000_000), st.sampled_from([1, 60, 100]), st.sampled_from([1, 6, 30, 60])),
                 min_size=1, max_size=3)


def _rate(draw_steps: list[tuple[int, int, int]], offsets: list[int], connect: int, minimum: int, maximum: int | None,
          mode: str, decimals: int) -> dict[str, Any]:
    at = sorted(set([0] + offsets))[:len(draw_steps)]
    return ir_rate([[a, p, per, inc] for a, (p, per, inc) in zip(at, draw_steps)], connect=connect, minimum=minimum,
                   maximum=maximum, mode=mode, decimals=decimals)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_band_crossing_calls_on_the_bulk_path_equal_the_full_rater(data: st.DataObject) -> None:
    rates = {}
    for band in ("NIGHT", "DAY", "EVE", "WEEKEND"):
        rates[f"RT_{band}"] = _rate(
            data.draw(steps), data.draw(st.lists(st.integers(1, 600), max_size=2)), data.draw(st.integers(0, 200_000)),
            data.draw(st.integers(0, 500_000)), data.draw(st.none() | st.integers(0, 30_000_000)),
            data.draw(st.sampled_from(["up", "down", "half_up", "half_even"])), data.draw(st.sampled_from([0, 2, 4, 6])))
    if data.draw(st.booleans()):
        rates["RT_EVE"] = rates["RT_DAY"]  # the same rate in two bands: spans merge only when band and rate repeat
    compiled = CompiledPlans.from_ir(ir_plan(
        rates, [["voice", "originating", "home", "DST_ALL", band, f"RT_{band}"] for band in ("NIGHT", "DAY", "EVE", "WEEKEND")],
        days=_WEEK, timezone_name="Europe/Paris"))
    cdrs = []
    for _ in range(10):
        start = _START + timedelta(seconds=data.draw(st.integers(0, 4 * 86400)))
        cdrs.append(cdr(b_number="33612345678", start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        duration_seconds=data.draw(st.integers(0, 30 * 3600))))
    rater, bulk = Rater(compiled), BulkRater(compiled)
    rows = _csv_rows(cdrs)
    batch = list(zip(*bulk.rate_rows(rows, "TP")))
    one_by_one = bulk.row_rater("TP")
    for c, row, got in zip(cdrs, rows, batch):
        full = _full(rater, c, "TP")
        assert _same(got, full), (c, got, full)
        assert _same(one_by_one(row), full)
    assert bulk.fallbacks == 0  # every call, crossing or not, priced on the bulk path


def test_out_of_range_hours_and_minutes_are_rejected_on_both_bulk_loops() -> None:
    compiled = compile_folder(GOLDEN / "band-split" / "plans")
    rater = Rater(compiled)
    for start in ("2026-03-02T25:00:00Z", "2026-03-02T10:61:00Z", "2026-03-02T1a:00:00Z"):
        row = to_row(cdr(start="2026-03-02T10:00:00Z", duration_seconds=60))
        row[COLUMNS.index("start_time")] = start
        assert BulkRater(compiled).row_rater("TP_BANDS")(row)[0] == "rejected"
        assert BulkRater(compiled).rate_rows([row], "TP_BANDS")[0] == ["rejected"]
    assert rater.rate(cdr(start="2026-03-02T10:00:00Z", duration_seconds=60), "TP_BANDS").rated
