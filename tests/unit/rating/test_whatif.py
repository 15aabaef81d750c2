"""What-if: revenue difference per plan and service between a candidate and the active plan set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine.cdr import MediatedCdr, read_cdrs
from engine.rating.whatif import what_if, what_if_paths
from engine.replay import load_assignments
from tests.unit.rating.helpers import REPO, compile_folder

CASE = REPO / "tests" / "golden" / "sample-operator"


def _cdrs() -> list[MediatedCdr]:
    with (CASE / "cdrs.cdr.csv").open() as stream:
        return [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]


def test_same_plans_make_no_difference() -> None:
    active = compile_folder(CASE / "plans")
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for
    report = what_if(_cdrs(), active, active, plan_for)
    assert report.ok and report.difference_micros == 0
    assert sum(line.cdrs for line in report.lines) == len(_cdrs())


def test_price_rise_shows_per_plan_and_service(tmp_path: Path) -> None:
    shutil.copytree(CASE / "plans", tmp_path / "plans")
    rate = tmp_path / "plans" / "rates" / "retail" / "RT_MMS.yaml"
    rate.write_text(rate.read_text().replace('price: "0.40"', 'price: "0.55"'))
    active = compile_folder(CASE / "plans")
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for
    report = what_if_paths(_cdrs(), [str(tmp_path / "plans")], active, plan_for)
    assert report.ok
    changed = {(line.plan_id, line.service): line.difference_micros for line in report.lines if line.difference_micros}
    assert changed == {("TP_SMART_M", "mms"): 150_000}


def test_invalid_candidate_returns_its_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: rate\nid: RT_X\ncurrency: EUR\nprice: 0.1\nper: 60\n")
    report = what_if_paths(_cdrs(), [str(tmp_path)], compile_folder(CASE / "plans"), {})
    assert not report.ok and report.lines == []
    assert [p.code for p in report.problems] == ["value.amount"]


def test_bundles_are_spent_per_subscriber_and_bill_cycle_on_each_side(tmp_path: Path) -> None:
    """Each side starts every subscriber's bill cycle (Paris time) with its plan's bundles in full: a bigger allowance
    in the candidate shows as less revenue, and the call at 00:30 on 1 April in Paris opens a new cycle."""
    from engine.rating.evaluator import Evaluator
    from tests.unit.rating.helpers import cdr

    shutil.copytree(CASE / "plans", tmp_path / "plans")
    bundle = tmp_path / "plans" / "bundles" / "BN_S_VOICE_120MIN.yaml"
    bundle.write_text(bundle.read_text().replace("amount: 120min", "amount: 200min"))
    active, candidate = compile_folder(CASE / "plans"), compile_folder(tmp_path / "plans")
    # 100 minutes each, national mobile, one subscriber: March has 300 minutes, the fourth call is April's (22:30 UTC)
    calls = [cdr(start=start, duration_seconds=6000, a_number="33612000001")
             for start in ("2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z", "2026-03-04T10:00:00Z", "2026-03-31T22:30:00Z")]
    another = cdr(start="2026-03-05T10:00:00Z", duration_seconds=6000, a_number="33612000002")
    cdrs = [*calls, another]

    def expected(compiled: object, allowance: int, local_cycles: bool = True) -> int:
        ev = Evaluator(compiled)  # type: ignore[arg-type]
        march, april, other = ({"BN_S_VOICE_120MIN": allowance, "BN_S_DATA_2GB": 2 * 1024**3} for _ in range(3))
        wallets = [march, march, march, april if local_cycles else march, other]
        return sum(ev.rate_cdr(c, "TP_SMART_S", w).charge_micros for c, w in zip(cdrs, wallets))

    report = what_if(cdrs, candidate, active, lambda _row: "TP_SMART_S")
    [line] = report.lines
    assert (line.plan_id, line.service, line.cdrs) == ("TP_SMART_S", "voice", 5)
    assert line.active_micros == expected(active, 120 * 60) > 0
    assert line.candidate_micros == expected(candidate, 200 * 60)
    assert line.difference_micros < 0
    assert expected(active, 120 * 60, local_cycles=False) > line.active_micros   # a UTC month would charge the 4th call


def test_lines_add_up_to_what_each_row_was_rated(tmp_path: Path) -> None:
    """The report's lines (counted and summed a chunk at a time) are the per-row sums of the rows' ratings on both sides:
    several plans and services in one chunk, rejected rows (in no line), unrated rows (counted apart), and a chunk of
    one plan (added up by service alone)."""
    from engine.cdr import COLUMNS, to_row
    from engine.rating import whatif
    from engine.rating.evaluator import Evaluator

    shutil.copytree(CASE / "plans", tmp_path / "plans")
    rate = tmp_path / "plans" / "rates" / "retail" / "RT_MMS.yaml"
    rate.write_text(rate.read_text().replace('price: "0.40"', 'price: "0.55"'))
    active, candidate = compile_folder(CASE / "plans"), compile_folder(tmp_path / "plans")
    rows = [to_row(c) for c in _cdrs()]
    bad = list(rows[0])
    bad[COLUMNS.index("duration_seconds")] = "-5"            # rejected
    unknown = list(rows[1])
    unknown[COLUMNS.index("b_number")] = "999999"           # in no destination group: unrated on both sides
    rows = [*rows, bad, unknown, *rows[:5]]
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for_row
    for assign in (plan_for, lambda _row: "TP_SMART_M"):
        report = what_if(rows, candidate, active, assign)
        # the same rows rated side by side, added up one row at a time
        want: dict[tuple[str, str], list[Any]] = {}
        rejected = 0
        plans = [assign(r) for r in rows]
        sides = [Evaluator(c).rate_rows(rows, plans, whatif.Wallets(c).of_rows(rows, plans)) for c in (active, candidate)]
        for row, plan, a, c in zip(rows, plans, *sides):
            if a[0] == "rejected":
                rejected += 1
                continue
            line = want.setdefault((plan, row[COLUMNS.index("service")]), [0, 0, 0, 0, 0])
            line[0] += 1
            line[1] += a[1] if a[0] == "rated" else 0
            line[2] += c[1] if c[0] == "rated" else 0
            line[3] += a[0] != "rated"
            line[4] += c[0] != "rated"
        got = {(x.plan_id, x.service): [x.cdrs, x.active_micros, x.candidate_micros, x.active_unrated, x.candidate_unrated]
               for x in report.lines}
        assert got == want and report.rejected == rejected == 1
        assert sum(x[3] for x in got.values()) >= 1   # the call to no destination group
        assert all(x.currency == "EUR" for x in report.lines if x.active_unrated < x.cdrs)
