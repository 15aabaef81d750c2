"""'matches' patterns run on RE2 (linear time): a pattern with exponential backtracking in Python's ``re`` -- one
MVNO's plan set could stall rating for every tenant -- validates and rates a 255-digit number; what RE2 does not
implement, and over-long patterns, are refused at validation as ``file:line:col`` plan problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.conditions import MAX_PATTERN, parse_condition
from engine.plans import load_plan_set
from engine.rating import Evaluator
from tests.unit.rating.helpers import REPO, cdr, compile_folder

STAFF = 'condition: {a_number: {matches: "336149[0-9]*"}}'
# (6|6)* matches each 6 two ways: Python's re tries all 2^n ways before it fails on a number that does not end in 2
CATASTROPHIC = "33(6|6)*2"


def _plans_with(tmp_path: Path, condition: str) -> Path:
    folder = tmp_path / "plans"
    shutil.copytree(REPO / "plans", folder)
    discount = folder / "discounts" / "DP_ALPHA_STAFF_50PCT.yaml"
    text = discount.read_text(encoding="utf-8")
    assert STAFF in text
    discount.write_text(text.replace(STAFF, condition), encoding="utf-8")
    return folder


def test_a_backtracking_pattern_validates_and_rates_a_255_digit_number(tmp_path: Path) -> None:
    compiled = compile_folder(_plans_with(tmp_path, f'condition: {{b_number: {{matches: "{CATASTROPHIC}"}}}}'))
    ev = Evaluator(compiled)
    no_match = ev.rate(cdr("voice", b_number="33" + "6" * 253, duration_seconds=600), "TP_ALPHA_SIMPLE").as_dict()
    match = ev.rate(cdr("voice", b_number="33" + "6" * 252 + "2", duration_seconds=600), "TP_ALPHA_SIMPLE").as_dict()
    assert no_match["status"] == match["status"] == "rated"
    assert "discounts" not in no_match and [d["discount"] for d in match["discounts"]] == ["DP_ALPHA_STAFF_50PCT"]
    assert match["charge_micros"] * 2 == no_match["charge_micros"]


def test_the_reviewers_pattern_completes_on_24_and_255_digits() -> None:
    problems: list = []
    cond = parse_condition({"b_number": {"matches": "(1|1)*2"}}, "when", problems)
    assert cond is not None and problems == []
    test = cond.to_python()
    assert not test({"b_number": "1" * 24}) and not test({"b_number": "1" * 255}) and test({"b_number": "1" * 254 + "2"})


@pytest.mark.parametrize("pattern, why", [
    ("(?=336)[0-9]*", "look-ahead"),
    ("(?!33)[0-9]*", "negative look-ahead"),
    ("(?<=3)3", "look-behind"),
    ("(3)\\\\1", "back-reference"),   # written \1 in the YAML string (refused for its backslash too)
    ("3" * (MAX_PATTERN + 1), "too long"),
])
def test_a_pattern_re2_cannot_run_is_a_located_plan_problem(tmp_path: Path, pattern: str, why: str) -> None:
    folder = _plans_with(tmp_path, f'condition: {{b_number: {{matches: "{pattern}"}}}}')
    plan_set, problems = load_plan_set([folder])
    assert plan_set is None, why
    located = [(Path(p.file).name, p.line, p.col, p.code) for p in problems]
    assert located == [("DP_ALPHA_STAFF_50PCT.yaml", 8, 33, "condition.bad-regex")], (why, [str(p) for p in problems])
