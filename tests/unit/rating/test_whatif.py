"""What-if: revenue difference per plan and service between a candidate and the active plan set."""

from __future__ import annotations

import shutil
from pathlib import Path

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
