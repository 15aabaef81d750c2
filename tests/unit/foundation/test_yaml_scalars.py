"""The line-aware YAML loader's scalars: no number whose building costs more than its length (YAML 1.1's base-60
forms, numbers of thousands of digits), and no explicit tag that breaks a constructor, each refusal located at
its file, line and column, every one collected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.yamlio import MAX_NUMBER_CHARS, Problem, load_text


def _codes(problems: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.code) for p in sorted(problems)]


def test_a_long_base_60_plain_scalar_is_text_and_no_number_is_built() -> None:
    # PyYAML builds 1:1:1:... (YAML 1.1's base 60) as an integer in time growing with the square of its length:
    # 400 KB took 14 s.  Read as YAML 1.2 reads it: text, as written.
    value = "1" + ":1" * 200_000
    problems: list[Problem] = []
    assert load_text(f"kind: rate\nprice: {value}\n", "rates/RT_X.yaml", problems) == {"kind": "rate", "price": value}
    assert problems == []


def test_base_60_times_and_numbers_are_text() -> None:
    problems: list[Problem] = []
    doc = load_text("a: 18:00\nb: 18:00:30\nc: -1:30\nd: 1:30.5\ne: 190:20:30.15\n", "f.yaml", problems)
    assert doc == {"a": "18:00", "b": "18:00:30", "c": "-1:30", "d": "1:30.5", "e": "190:20:30.15"}
    assert problems == []


def test_explicit_base_60_numbers_and_long_numbers_are_refused_each_where_it_stands() -> None:
    text = ("kind: rate\n"
            "a: !!int 1" + ":1" * 200_000 + "\n"
            "b: !!float 1:30.0\n"
            "c: 1" + "0" * 1_000_000 + "\n"             # a million digits: int() of it is quadratic
            "d: 0x" + "f" * MAX_NUMBER_CHARS + "\n"      # cheap to build, not to print
            "e: !!int " + "9" * (MAX_NUMBER_CHARS + 1) + "\n"
            "f: 0." + "1" * 200 + "\n"
            "g: " + "1" * MAX_NUMBER_CHARS + "\n")       # the longest number accepted
    problems: list[Problem] = []
    doc = load_text(text, "rates/RT_X.yaml", problems)
    assert _codes(problems) == [(2, 4, "yaml.bad-value"), (3, 4, "yaml.bad-value"), (4, 4, "yaml.bad-value"),
                                (5, 4, "yaml.bad-value"), (6, 4, "yaml.bad-value"), (7, 4, "yaml.bad-value")]
    assert "base-60" in problems[0].message and f"at most {MAX_NUMBER_CHARS}" in problems[2].message
    assert all(len(p.message) < 200 for p in problems)
    assert doc is not None and [doc[k] for k in "abcdef"] == [None] * 6 and doc["g"] == int("1" * MAX_NUMBER_CHARS)


@pytest.mark.parametrize("value, code", [
    ("!!timestamp soon", "yaml.bad-value"),   # PyYAML: AttributeError
    ("!!bool maybe", "yaml.bad-value"),       # KeyError
    ('!!int ""', "yaml.bad-value"),           # IndexError
    ('!!float ""', "yaml.bad-value"),
    ("!!int 0x", "yaml.bad-value"),
    ("!!omap text", "yaml.bad-tag"),          # a generator object as the value
    ("!!set text", "yaml.bad-tag"),
    ("!!map text", "yaml.bad-tag"),
    ("!!python/name:os.system", "yaml.bad-tag"),
])
def test_an_explicit_tag_that_does_not_fit_its_value_is_a_located_problem(value: str, code: str) -> None:
    problems: list[Problem] = []
    assert load_text(f"kind: rate\nid: RT_X\nprice: {value}\n", "rates/RT_X.yaml", problems) == {
        "kind": "rate", "id": "RT_X", "price": None}
    assert _codes(problems) == [(3, 8, code)]


def test_ordinary_scalars_load_as_before() -> None:
    problems: list[Problem] = []
    doc = load_text("a: 1_000\nb: 0x1f\nc: 0.25\nd: -3\ne: 2026-01-01\nf: true\ng: ~\nh: '1:30'\ni: 010\nj: .inf\n",
                    "f.yaml", problems)
    assert problems == [] and doc is not None
    assert [doc[k] for k in "abcdfgh"] == [1000, 31, 0.25, -3, True, None, "1:30"]
    assert str(doc["e"]) == "2026-01-01" and doc["i"] == 8 and doc["j"] == float("inf")


_NUMBERISH = st.text(alphabet="0123456789:._+-xobeE", min_size=1, max_size=3 * MAX_NUMBER_CHARS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_NUMBERISH, st.sampled_from(["", "!!int ", "!!float "]))
def test_a_number_is_built_only_from_at_most_max_number_chars_and_never_from_base_60(text: str, tag: str) -> None:
    problems: list[Problem] = []
    doc: Any = load_text(f"v: {tag}{text}\n", "f.yaml", problems)
    if doc is None:   # not a YAML value at all (a syntax error), located
        assert [p.code for p in problems] == ["yaml.syntax"]
        return
    value = doc["v"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert len(text) <= MAX_NUMBER_CHARS and ":" not in text and problems == []
    elif value is None and text.strip() not in ("", "~"):
        assert _codes(problems) == [(1, 4, "yaml.bad-value")] or _codes(problems) == [(1, 4, "yaml.syntax")]
