"""Issue #16 constructs on the one evaluator: shared prefixes by priority, the fall back to a priced prefix, band
times with seconds, declared policies (maximum cost, unanswered connect fee, version change) and plan inheritance.

The old rater (tests/oracle) cannot express them: these tests and the golden folders (prefix-priority,
prefix-fallback, plan-syntax, declared-policies, plan-inheritance, with the arithmetic in their READMEs) hold them;
the C loop and the Python loop are held equal on them by hypothesis, as on the sample catalogue."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import to_row
from engine.plans.compiler import build_ir
from engine.plans.kinds.common import parse_clock
from engine.plans import load_plan_set
from engine.rating import Evaluator
from engine.rating import evaluator as evaluator_module
from engine.rating.prefix import PrefixIndex
from engine.replay import load_assignments
from tests.unit.rating.helpers import REPO, cdr, compile_folder

GOLDEN = REPO / "tests" / "golden"
NEW_CASES = ("prefix-priority", "prefix-fallback", "plan-syntax", "declared-policies", "plan-inheritance", "row-time-bands")


def test_a_prefix_in_several_groups_goes_to_the_highest_priority_and_candidates_list_them_all() -> None:
    index = PrefixIndex([("33", "DST_WORLD"), ("33", "DST_FRANCE"), ("336", "DST_MOBILE"), ("44", "DST_WORLD")],
                        {"DST_FRANCE": 10, "DST_WORLD": 0})
    assert index.lookup("33612") == ("DST_MOBILE", "336")
    assert index.lookup("33123") == ("DST_FRANCE", "33")
    assert index.candidates("33612") == [("DST_MOBILE", "336"), ("DST_FRANCE", "33"), ("DST_WORLD", "33")]
    assert index.candidates("4420") == [("DST_WORLD", "44")]
    assert index.candidates("99") == []


def test_the_explanation_names_the_longer_prefixes_passed_over() -> None:
    compiled = compile_folder(GOLDEN / "prefix-fallback" / "plans")
    rated = Evaluator(compiled).rate(cdr(b_number="33612345678", duration_seconds=100), "TP_FALLBACK")
    assert (rated.destination, rated.prefix, rated.charge_micros) == ("DST_FR_MOBILE", "336", 200_000)
    assert "passed over DST_PREMIUM_SMS (prefix 3361)" in rated.explanation
    sms = Evaluator(compiled).rate(cdr("sms", b_number="33612345678", event_count=1), "TP_FALLBACK")
    assert (sms.destination, sms.charge_micros) == ("DST_PREMIUM_SMS", 500_000)
    assert "passed over" not in sms.explanation


def test_band_times_carry_seconds_and_the_ir_says_so_only_when_needed() -> None:
    assert parse_clock("08:00:30") == 8 * 3600 + 30
    assert parse_clock("08:00") == 8 * 3600
    assert parse_clock(1080) is None and parse_clock(8) is None   # a number is not a clock time (18:00 loads as text)
    assert parse_clock("24:00:00") == 86400
    assert parse_clock("24:00:01") is None and parse_clock("12:00:60") is None
    ps, problems = load_plan_set([GOLDEN / "plan-syntax" / "plans"])
    assert not problems and ps is not None
    tb = build_ir(ps)["time_bands"]["TB_SECONDS"]
    assert tb["resolution"] == "second" and [8 * 3600 + 30, 72000 - 15, "PEAK"] in tb["days"]["mon"]
    sample, _ = load_plan_set([REPO / "plans"])
    assert sample is not None
    assert all("resolution" not in t for t in build_ir(sample)["time_bands"].values())


def test_maximum_cost_strategies_and_the_disconnect_flag() -> None:
    compiled = compile_folder(GOLDEN / "declared-policies" / "plans")
    ev = Evaluator(compiled)
    capped = ev.rate(cdr(b_number="33891234567", duration_seconds=600), "TP_POLICIES")
    assert (capped.charge_micros, capped.flags) == (5_000_000, ())
    cut = ev.rate(cdr(b_number="442071234567", duration_seconds=600), "TP_POLICIES")
    assert (cut.charge_micros, cut.flags) == (3_000_000, ("max-cost-disconnect",))
    assert "should have been disconnected" in cut.explanation and cut.as_dict()["flags"] == ["max-cost-disconnect"]
    full = ev.rate(cdr(b_number="881612345678", duration_seconds=150), "TP_POLICIES")
    assert (full.charge_micros, full.flags) == (15_000_000, ("max-cost-disconnect",))
    under = ev.rate(cdr(b_number="442071234567", duration_seconds=200), "TP_POLICIES")
    assert (under.charge_micros, under.flags) == (2_000_000, ())


def test_the_connect_fee_of_an_unanswered_call_is_waived_when_the_rate_says_so() -> None:
    ev = Evaluator(compile_folder(GOLDEN / "declared-policies" / "plans"))
    zero = ev.rate(cdr(b_number="14155550100", duration_seconds=0), "TP_POLICIES")
    assert zero.charge_micros == 0 and "waived" in zero.explanation
    assert ev.rate(cdr(b_number="14155550100", duration_seconds=1), "TP_POLICIES").charge_micros == 260_000   # 0.25 + 0.005


def test_a_split_plan_cuts_the_call_where_the_next_version_starts() -> None:
    ev = Evaluator(compile_folder(GOLDEN / "declared-policies" / "plans"))
    call = dict(b_number="14155550100", duration_seconds=120, start="2026-03-31T23:59:00Z")
    split = ev.rate(cdr(**call), "TP_SPLIT")
    assert [(s.start, s.end, s.rate_id) for s in split.spans] == [(0, 60, "RT_WAIVE"), (60, 120, "RT_US_V2")]
    assert split.charge_micros == 1_150_000 and "version 2 (version_change: split)" in split.explanation
    whole = ev.rate(cdr(**call), "TP_START")
    assert [s.rate_id for s in whole.spans] == ["RT_WAIVE"] and whole.charge_micros == 850_000


def test_a_row_with_its_own_band_set_prices_its_traffic_while_its_band_is_in_force() -> None:
    ev = Evaluator(compile_folder(GOLDEN / "row-time-bands" / "plans"))
    holiday = ev.rate(cdr(b_number="442071234567", duration_seconds=120, start="2026-05-04T22:59:00Z"), "TP_ROWBANDS")
    assert [(s.start, s.end, s.band, s.rate_id) for s in holiday.spans] == [
        (0, 60, "BANK_HOLIDAY", "RT_UK_HOLIDAY"), (60, 120, "OFFPEAK", "RT_OFFPEAK")]
    assert holiday.charge_micros == 180_000
    other = ev.rate(cdr(b_number="33123456789", duration_seconds=120, start="2026-05-04T09:00:00Z"), "TP_ROWBANDS")
    assert [s.rate_id for s in other.spans] == ["RT_PEAK"]


def test_a_plan_without_a_rate_is_priced_by_its_parent_and_the_explanation_says_which() -> None:
    ev = Evaluator(compile_folder(GOLDEN / "plan-inheritance" / "plans"))
    world = ev.rate(cdr(b_number="442071234567", duration_seconds=90), "TP_PROMO")
    assert (world.plan_id, world.charge_micros) == ("TP_DEFAULT", 1_500_000)
    assert "TP_PROMO has no rate" in world.explanation and "TP_FAMILY has no rate" in world.explanation
    assert world.explanation.index("TP_DEFAULT v1") > world.explanation.index("TP_FAMILY has no rate")
    own = ev.rate(cdr(b_number="33123456789", duration_seconds=120), "TP_PROMO")
    assert (own.plan_id, own.charge_micros) == ("TP_PROMO", 100_000) and "parent" not in own.explanation
    none = ev.rate(cdr("data", b_number="internet", volume_down_bytes=10), "TP_PROMO")
    assert none.status.value == "unrated" and none.plan_id == "TP_PROMO" and none.reason.count("then its parent") == 2


# -- the C loop and the Python loop on the new constructs ---------------------------------------------------
_COMPILED = {name: compile_folder(GOLDEN / name / "plans") for name in NEW_CASES}
_PLANS = {name: sorted(c.plans) for name, c in _COMPILED.items()}
_NUMBERS = ["4420712345", "33612345678", "33712345678", "33123456789", "442071234567", "35312345678", "14155550100", "33891234567",
            "881612345678", "8821234", "internet", "999", ""]


def _rows(rng: random.Random, n: int) -> list[list[Any]]:
    rows = []
    for _ in range(n):
        service = rng.choice(["voice", "voice", "voice", "sms", "mms", "data"])
        start = rng.choice(["2026-03-02T08:00:", "2026-03-02T19:59:", "2026-03-31T23:58:", "2026-03-31T23:59:", "2026-05-04T22:59:",
                            "2026-05-03T22:58:",
                            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"])
        c = cdr(service, b_number=rng.choice(_NUMBERS), start=f"{start}{rng.randint(0, 59):02d}Z",
                duration_seconds=rng.choice([0, 1, 29, 30, 31, 60, 150, 600, 3600]) if service == "voice" else 0,
                volume_down_bytes=rng.randint(0, 10**6) if service == "data" else 0, event_count=rng.randint(1, 3),
                direction=rng.choice(["originating"] * 4 + ["terminating"]))
        rows.append(to_row(c))
    return rows


@pytest.mark.skipif(evaluator_module._kernel() is None, reason="the C extension was not built (no compiler)")
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), case=st.sampled_from(NEW_CASES))
def test_the_c_loop_the_python_loop_and_the_per_cdr_way_agree_on_the_new_constructs(seed: int, case: str) -> None:
    rng = random.Random(seed)
    compiled = _COMPILED[case]
    rows = _rows(rng, 30)
    plans = [rng.choice(_PLANS[case]) for _ in rows]
    results = []
    for kernel in (True, False):
        ev = Evaluator(compiled)
        ev.use_kernel = kernel
        out = ev.rate_rows(rows, plans)
        results.append([r[:4] + (r[4].plan_id if r[4] is not None else None,) + r[5:9] for r in out])
        per_cdr = [ev.rated_of(r, ev_cdr, p).as_dict() for r, ev_cdr, p in zip(out, _cdrs(rows), plans)]
        assert per_cdr == [Evaluator(compiled).rate(c, p).as_dict() for c, p in zip(_cdrs(rows), plans)]
    assert results[0] == results[1]


def _cdrs(rows: list[list[Any]]) -> list[Any]:
    from engine.cdr import COLUMNS, from_row

    return [from_row(dict(zip(COLUMNS, (str(x) for x in row)))) for row in rows]


def test_the_golden_folders_of_the_new_constructs_exist_with_their_arithmetic() -> None:
    for name in NEW_CASES:
        folder = GOLDEN / name
        assert (folder / "README.md").read_text().count("|") > 20, name
        assert load_assignments(folder / "subscribers.yaml", []).default_plan, name
        assert Path(folder / "expected.jsonl").read_text().strip(), name
