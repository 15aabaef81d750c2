"""The compiled intermediate form: stable, serialisable, golden; evaluators built from it rate identically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.plans import compile_plan_set, load_plan_set
from engine.plans.compiler import build_ir, dump_ir, ir_digest
from engine.rating import CompiledPlans, Evaluator
from engine.replay import rate_folder

REPO = Path(__file__).resolve().parents[3]
GOLDEN_IR = Path(__file__).parent / "golden_ir"
CASES = ["band-split", "bundles", "discounts", "wholesale-mvno", "destinations-zones", "caps-minimums"]
UPDATE = os.environ.get("RULEBILL_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", CASES)
def test_ir_matches_golden(case: Path) -> None:
    plan_set, problems = load_plan_set([REPO / "tests" / "golden" / case / "plans"])
    assert plan_set is not None, problems
    text = dump_ir(build_ir(plan_set))
    golden = GOLDEN_IR / f"{case}.json"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"IR changed; review and rerun with RULEBILL_UPDATE_GOLDEN=1"


def test_ir_is_json_without_floats_and_stable() -> None:
    plan_set, _ = load_plan_set([REPO / "plans"])
    assert plan_set is not None
    first = build_ir(plan_set)
    again, _ = load_plan_set([REPO / "plans"])
    assert again is not None
    assert dump_ir(first) == dump_ir(build_ir(again))
    assert ir_digest(first) == ir_digest(build_ir(again))

    def walk(value: object) -> None:
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(json.loads(dump_ir(first)))


def test_evaluator_from_stored_ir_rates_like_a_fresh_compile(tmp_path: Path) -> None:
    case = REPO / "tests" / "golden" / "sample-operator"
    plan_set, _ = load_plan_set([case / "plans"])
    assert plan_set is not None
    fresh = compile_plan_set(plan_set)
    stored = CompiledPlans.from_ir(json.loads(dump_ir(fresh.to_ir())))
    expected = rate_folder(case)
    from engine.cdr import MediatedCdr, read_cdrs
    from engine.replay import load_assignments

    assignments = load_assignments(case / "subscribers.yaml", [])
    with (case / "cdrs.cdr.csv").open() as stream:
        cdrs = [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]
    a, b = Evaluator(fresh), Evaluator(stored)
    for cdr in cdrs:
        assert a.rate(cdr, assignments.plan_for(cdr)).as_dict() == b.rate(cdr, assignments.plan_for(cdr)).as_dict()
    assert expected.count == len(cdrs)


def test_from_ir_rejects_other_formats() -> None:
    with pytest.raises(ValueError):
        CompiledPlans.from_ir({"format": "something-else"})
