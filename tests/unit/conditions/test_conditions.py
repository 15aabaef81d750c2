"""The condition language: parsing (codes and locations), Python and durable forms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.conditions import (
    ALWAYS,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    DurableFields,
    Not,
    condition_from_plain,
    parse_condition,
)
from engine.eventrules.durable_backend import DurableBackend
from engine.eventrules.model import EventRule, EventRuleSet
from engine.yamlio import Problem, load_text


def parse(text: str) -> tuple[Condition | None, list[Problem]]:
    problems: list[Problem] = []
    node = load_text(text, "c.yaml", problems)
    cond = parse_condition(node["when"], "when", problems)
    return cond, problems


def codes(problems: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.code) for p in problems]


def test_forms_and_shorthands() -> None:
    cond, problems = parse(
        """
when:
  all:
    - destination_group: [DST_INTERNATIONAL, DST_PREMIUM]
    - service: voice
    - not: {roaming: true}
    - credit_used: {gte: 0, lt: 100}
    - any:
        - msisdn: {matches: "3361[2-5].*"}
        - flags.vip: {exists: true}
"""
    )
    assert problems == []
    assert cond is not None
    assert cond.fields() == {"destination_group", "service", "roaming", "credit_used", "msisdn", "flags.vip"}
    p = cond.to_python()
    base = {"destination_group": "DST_PREMIUM", "service": "voice", "credit_used": 5, "msisdn": "33612000"}
    assert p(base)
    assert not p({**base, "roaming": True})
    assert p({**base, "roaming": False})
    assert not p({**base, "credit_used": 100})
    assert not p({**base, "msisdn": "4477", "flags": {}})
    assert p({**base, "msisdn": "4477", "flags": {"vip": "yes"}})


def test_families_do_not_mix() -> None:
    p = Comparison("a", "eq", 1).to_python()
    assert p({"a": 1}) and not p({"a": True}) and not p({"a": "1"})
    q = Comparison("a", "eq", True).to_python()
    assert q({"a": True}) and not q({"a": 1})
    ne = Comparison("a", "ne", 5).to_python()
    assert ne({"a": 6}) and not ne({"a": "x"}) and not ne({})
    assert Not(Comparison("a", "eq", 5)).to_python()({})
    lt = Comparison("a", "lt", 5).to_python()
    assert not lt({"a": "4"}) and not lt({"a": False}) and lt({"a": 4})


def test_several_keys_in_one_mapping_mean_all() -> None:
    cond, problems = parse("when: {service: voice, roaming: true}")
    assert problems == [] and isinstance(cond, AllOf)


def test_durable_form_maps_not_and_in() -> None:
    cond, _ = parse("when: {not: {destination_group: [A, B]}}")
    assert cond is not None
    assert cond.to_durable() == {
        "$or": [
            {"$and": [{"$neq": {"destination_group": "A"}}, {"$neq": {"destination_group": "B"}}]},
            {"$nex": {"destination_group": 1}},
        ]
    }
    cond, _ = parse("when: {not: {all: [{x: {lt: 3}}, {y: {exists: true}}]}}")
    assert cond is not None
    assert cond.to_durable() == {"$or": [{"$gte": {"x": 3}}, {"$nex": {"x": 1}}, {"$nex": {"y": 1}}]}
    cond, _ = parse("when: {m: {matches: 'a.*'}, n: {ne: 2}, o: {lte: 4}, p: {gt: 1}}")
    assert cond is not None
    assert cond.to_durable() == {
        "$and": [{"$mt": {"m": "a.*"}}, {"$neq": {"n": 2}}, {"$lte": {"o": 4}}, {"$gt": {"p": 1}}]
    }


def test_durable_keys_separate_families() -> None:
    cond, _ = parse("when: {a: 1, b: {exists: true}}")
    assert cond is not None
    fields = DurableFields(cond.fields())
    assert cond.to_durable(fields.key) == {"$and": [{"f0_num": 1}, {"$ex": {"f1_any": 1}}]}
    assert fields.message({"a": True, "b": "x"}) == {"f0_any": 1, "f0_bool": True, "f1_any": 1, "f1_str": "x"}


NEGATIVE = """
when:
  any:
    - x: {foo: 1}
    - y: {lt: "a"}
    - "$z": 1
    - w: {in: []}
    - v: {matches: "\\\\d+"}
    - u: {exists: maybe}
    - t: {eq: 1.5}
    - all: []
    - s: {}
"""


def test_negative_codes_and_locations() -> None:
    cond, problems = parse(NEGATIVE)
    assert cond is None
    assert codes(problems) == [
        (4, 11, "condition.unknown-op"),
        (5, 15, "condition.bad-value"),
        (6, 7, "condition.bad-field"),
        (7, 15, "condition.bad-value"),
        (8, 20, "condition.bad-regex"),
        (9, 19, "condition.bad-value"),
        (10, 15, "condition.bad-value"),
        (11, 12, "condition.type"),
        (12, 10, "condition.empty"),
    ]


def test_not_matches_is_refused() -> None:
    cond, problems = parse("when: {not: {any: [{m: {matches: 'a.*'}}, {n: 1}]}}")
    assert cond is None and [p.code for p in problems] == ["condition.negated-matches"]
    # two negations cancel out
    cond, problems = parse("when: {not: {not: {m: {matches: 'a.*'}}}}")
    assert cond is not None and problems == []


def test_not_a_mapping() -> None:
    cond, problems = parse("when: [a, b]")
    assert cond is None and codes(problems) == [(1, 7, "condition.type")]


def test_plain_round_trip() -> None:
    cond, _ = parse("when: {all: [{a: [1, 2]}, {not: {b: {matches: 'x|y'}}}], c: {exists: false}}")
    # negated matches refused, so build one without it
    cond, problems = parse("when: {all: [{a: [1, 2]}, {not: {b: {gte: 3}}}], c: {exists: false}}")
    assert cond is not None, problems
    again = condition_from_plain(cond.to_plain())
    assert again == cond
    assert condition_from_plain({}) == ALWAYS


# --- differential: to_python agrees with durable_rules on random conditions and facts ----------

FIELDS = {"n": "num", "m": "num", "s": "str", "t": "str", "b": "bool", "g.h": "num"}
NUMS = st.integers(min_value=-5, max_value=5) | st.sampled_from([0, 2**40, -(2**40)])
STRS = st.sampled_from(["", "a", "ab", "abab", "b", "DST_PREMIUM", "4412", "x y"])
PATTERNS = st.sampled_from(["a.*", "(ab)+", "[a-c]+", "DST_.*", "44[0-9]*", "a|b", "x y", ".*"])


def value_for(fam: str) -> st.SearchStrategy[Any]:
    return {"num": NUMS, "str": STRS, "bool": st.booleans()}[fam]


@st.composite
def leaves(draw: st.DrawFn) -> Condition:
    path = draw(st.sampled_from(sorted(FIELDS)))
    fam = FIELDS[path]
    if draw(st.integers(0, 6)) == 0:  # occasionally a value of another family
        fam = draw(st.sampled_from(["num", "str", "bool"]))
    ops = ["eq", "ne", "in", "exists"] + (["lt", "lte", "gt", "gte"] if fam == "num" else []) + (["matches"] if fam == "str" else [])
    op = draw(st.sampled_from(ops))
    if op == "exists":
        return Comparison(path, op, draw(st.booleans()))
    if op == "in":
        return Comparison(path, op, tuple(dict.fromkeys(draw(st.lists(value_for(fam), min_size=1, max_size=3)))))
    if op == "matches":
        return Comparison(path, op, draw(PATTERNS))
    return Comparison(path, op, draw(value_for(fam)))


def no_negated_matches(c: Condition) -> bool:
    from engine.conditions import has_negated_matches

    return not has_negated_matches(c)


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=6,
).filter(no_negated_matches)


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    fact: dict[str, Any] = {}
    for path, fam in FIELDS.items():
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing
        if choice == 1:
            value: Any = None
        elif choice == 2:
            value = draw(value_for(draw(st.sampled_from(["num", "str", "bool"]))))
        else:
            value = draw(value_for(fam))
        if "." in path:
            head, tail = path.split(".")
            fact[head] = {tail: value}
        else:
            fact[path] = value
    return fact


def durable_eval(cond: Condition, fact: dict[str, Any]) -> bool:
    ruleset = EventRuleSet("cond-test", "first", (EventRule("hit", cond),))
    return DurableBackend(ruleset).matches(fact) == ("hit",)


def test_shapes_durable_refuses_still_work() -> None:
    # durable_rules rejects this nested $or/$and shape (error 113); the backend splits it into DNF rules
    leaf = lambda i: Comparison(f"f{i}", "ne", 1)  # noqa: E731
    cond = AnyOf(tuple(AllOf((AnyOf((leaf(i), leaf(i + 10))), AnyOf((leaf(i + 20), leaf(i + 30))))) for i in range(6)))
    fact = {f"f{i}": 2 for i in range(40)}
    assert cond.to_python()(fact) is True and durable_eval(cond, fact) is True
    assert durable_eval(cond, {}) is False


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=conditions, fact_list=st.lists(facts(), min_size=1, max_size=4))
def test_python_agrees_with_durable_rules(cond: Condition, fact_list: list[dict[str, Any]]) -> None:
    predicate = cond.to_python()
    for fact in fact_list:
        assert predicate(fact) == durable_eval(cond, fact), (cond.to_plain(), fact, cond.to_durable())


@pytest.mark.parametrize(
    "cond,fact,expected",
    [
        (Comparison("a", "eq", 1), {"a": True}, False),
        (Comparison("a", "eq", 1), {"a": "1"}, False),
        (Comparison("a", "eq", True), {"a": "true"}, False),
        (Not(Comparison("a", "eq", 1)), {"a": "1"}, True),
        (Not(Comparison("a", "lt", 5)), {"a": "x"}, True),
        (Comparison("a", "lt", 5), {"a": True}, False),
        (Comparison("a", "matches", "ab"), {"a": "abc"}, False),
        (Comparison("a", "eq", "$x"), {"a": "$x"}, True),
        (Comparison("a", "ne", 5), {}, False),
        (Comparison("g.h", "gt", 2**40), {"g": {"h": 2**40 + 1}}, True),
    ],
)
def test_hand_made_cases_both_ways(cond: Condition, fact: dict[str, Any], expected: bool) -> None:
    assert cond.to_python()(fact) is expected
    assert durable_eval(cond, fact) is expected
