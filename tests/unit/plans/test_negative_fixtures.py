"""Negative fixtures: each invalid plan set reports exactly the pinned problems (code + file + line + col)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plans import load_plan_set

NEGATIVE = Path(__file__).parent / "fixtures" / "negative"
CASES = sorted(p for p in NEGATIVE.iterdir() if p.is_dir())


def test_there_are_negative_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_exact_problem_list(case: Path) -> None:
    expected = [line.strip() for line in (case / "expected.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    plan_set, problems = load_plan_set([case], root=case)
    assert plan_set is None  # an invalid plan set never reaches the compiler
    assert [f"{p.file}:{p.line}:{p.col} {p.code}" for p in problems] == expected
