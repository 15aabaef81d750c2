from __future__ import annotations

from pathlib import Path

import pytest

from engine.eventrules import RuleBook, load_rules
from engine.yamlio import Problem

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "rules"


def load_sample() -> RuleBook:
    problems: list[Problem] = []
    book = load_rules([RULES / "barring", RULES / "alerts", RULES / "lifecycle"], problems)
    assert problems == []
    return book


@pytest.fixture(scope="session")
def book() -> RuleBook:
    return load_sample()


@pytest.fixture(params=["compiled", "durable_rules"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def load_text_rules(tmp_path: Path, files: dict[str, str]) -> tuple[RuleBook, list[tuple[str, int, int, str]]]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    problems: list[Problem] = []
    book = load_rules([tmp_path], problems)
    return book, [(Path(p.file).name, p.line, p.col, p.code) for p in sorted(problems)]
