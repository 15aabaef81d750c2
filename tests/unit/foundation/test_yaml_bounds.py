"""The line-aware YAML loader's bounds (issue #13 items 2 and 3): aliases refused, nesting capped, values
counted against a budget, the call's scope checked while parsing; and the same refusal through every loader
that reads YAML (plans, rules, settings, ``rulebill plans validate``)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from clients.commands import plans as plans_command
from engine.cancellation import CallScope, checkpoint, scope, time_limit
from engine.errors import Cancelled, DeadlineExceeded, ResourceExhausted
from engine.eventrules import load_rules
from engine.plans.catalogue import validate_files
from engine.plans.limits import PlanSetLimits
from engine.settings import SettingsInvalid, load_settings
from engine.yamlio import MAX_DEPTH, NodeBudget, Problem, cap_problems, load_text


def billion_laughs(levels: int = 9) -> str:
    """The classic: each anchor names ten aliases of the one before, 10**levels strings from ~400 bytes."""
    lines = ["kind: rate", 'l0: &l0 "lol"']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _codes(problems: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.code) for p in sorted(problems)]


def test_a_billion_laughs_is_refused_at_its_aliases_without_expanding_them() -> None:
    text = billion_laughs()
    assert len(text) < 450
    problems: list[Problem] = []
    budget = NodeBudget()
    assert load_text(text, "bomb.yaml", problems, budget) is None
    # every alias is reported where it stands (8 lines of 10), the first at line 3 column 10
    assert len(problems) == 80 and {p.code for p in problems} == {"yaml.alias"}
    assert _codes(problems)[0] == (3, 10, "yaml.alias")
    # the work counter: only the values written in the text were built, never their 10**9 expansion
    assert budget.used == 1 + 2 + 2 + 2 * 8   # the mapping, kind, l0 and its string, l1..l8 and their lists


def test_an_alias_of_its_own_anchor_is_refused() -> None:
    problems: list[Problem] = []
    assert load_text("a: &a [1, *a]\n", "loop.yaml", problems) is None
    assert _codes(problems) == [(1, 11, "yaml.alias")]


@pytest.mark.parametrize("text, where", [
    ("[" * 500 + "]" * 500, (1, MAX_DEPTH + 1)),
    ("{a: " * 500 + "}" * 500, (1, 4 * MAX_DEPTH + 1)),
    ("".join(f"{' ' * i}k{i}:\n" for i in range(200)) + " " * 200 + "leaf", (MAX_DEPTH + 1, MAX_DEPTH + 1)),
])
def test_nesting_deeper_than_the_bound_is_refused_where_it_goes_too_deep(text: str, where: tuple[int, int]) -> None:
    problems: list[Problem] = []
    assert load_text(text, "deep.yaml", problems) is None
    assert _codes(problems) == [(*where, "yaml.too-deep")]


def test_nesting_far_deeper_is_refused_too() -> None:
    # libyaml itself stops at 1,000 levels (a syntax error), PyYAML's parser at our bound: a located problem either way
    problems: list[Problem] = []
    assert load_text("[" * 100_000 + "]" * 100_000, "deeper.yaml", problems) is None
    assert [(p.line, p.code) for p in problems] in ([(1, "yaml.too-deep")], [(1, "yaml.syntax")])


def test_nesting_up_to_the_bound_loads() -> None:
    problems: list[Problem] = []
    doc = load_text("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok.yaml", problems)
    assert problems == [] and doc is not None


def test_a_budget_caps_the_values_of_several_files_together() -> None:
    budget = NodeBudget(25, " in the test")
    problems: list[Problem] = []
    assert load_text("".join(f"k{i}: {i}\n" for i in range(10)), "a.yaml", problems, budget) is not None   # 21 values
    assert load_text("".join(f"k{i}: {i}\n" for i in range(10)), "b.yaml", problems, budget) is None
    assert _codes(problems) == [(2, 5, "limit.values")]   # the 26th value of the set
    assert "more than 25 keys and values in the test" in problems[0].message
    # the set is over budget: a later file is not even parsed, and adds no second problem
    assert load_text("x: 1\n", "c.yaml", problems, budget) is None and len(problems) == 1


def test_the_loader_stops_when_its_call_ends() -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(2000))
    call = CallScope()
    call.cancel()
    with scope(call), pytest.raises(Cancelled):
        load_text(text, "big.yaml", [])
    clock = [0.0]
    late = CallScope(deadline=10.0, now=lambda: clock[0])
    clock[0] = 11.0
    with scope(late), pytest.raises(DeadlineExceeded):
        load_text(text, "big.yaml", [])
    # a short document is loaded before the first checkpoint: the scope is only consulted every so many events
    with scope(call):
        assert load_text("a: 1\n", "small.yaml", []) == {"a": 1}


def test_a_time_limit_inside_a_call_raises_its_own_error_and_the_calls_end_wins() -> None:
    clock = [0.0]
    outer = CallScope(deadline=100.0, now=lambda: clock[0])
    with scope(outer):
        with time_limit(5.0, lambda: ResourceExhausted("ours"), now=lambda: clock[0]) as limited:
            checkpoint()
            clock[0] = 6.0
            with pytest.raises(ResourceExhausted):
                checkpoint()
            assert limited.checks == 2
        outer.cancel()
        with time_limit(5.0, lambda: ResourceExhausted("ours"), now=lambda: clock[0]), pytest.raises(Cancelled):
            checkpoint()
    checkpoint()   # outside any call nothing ends


def test_problems_are_capped_per_file_and_in_all_and_the_cut_is_counted() -> None:
    problems = [Problem(f"f{f}.yaml", line, 1, "x.y", "m") for f in range(5) for line in range(1, 11)]
    kept = cap_problems(problems, per_file=3, total=10)
    assert len(kept) == 11
    assert [(p.file, p.line, p.code) for p in kept[:4]] == [("f0.yaml", 1, "x.y"), ("f0.yaml", 2, "x.y"), ("f0.yaml", 3, "x.y"),
                                                            ("f0.yaml", 4, "limit.problems")]
    assert "7 more problem(s) in this file" in kept[3].message
    last = kept[-1]
    assert last.code == "limit.problems" and (last.file, last.line) == ("f2.yaml", 3)
    # shown: f0, f1 (3 each) and f2's first 2 of 50 problems in all; 42 more are left out
    assert "42 more problem(s) in 3 file(s)" in last.message


def test_a_problem_never_echoes_unbounded_text() -> None:
    problems: list[Problem] = []
    load_text(f"? {'k' * 50_000}\n: 1\n? {'k' * 50_000}\n: 2\n", "x" * 10_000 + ".yaml", problems)
    [p] = problems
    assert p.code == "yaml.duplicate-key" and len(p.message) < 600 and len(p.file) < 300


def _bomb_files(tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    (folder / "rates").mkdir(parents=True)
    (folder / "rates" / "RT_BOMB.yaml").write_text(billion_laughs())
    return folder


def test_rulebill_plans_validate_refuses_the_bomb_with_file_line_col(tmp_path: Path) -> None:
    folder = _bomb_files(tmp_path)
    parser = argparse.ArgumentParser()
    plans_command.register(parser.add_subparsers())
    args = parser.parse_args(["plans", "validate", str(folder)])
    out = io.StringIO()
    assert args.func(args, out) == 1
    assert "RT_BOMB.yaml:3:10: yaml.alias: aliases (*l0) are not allowed" in out.getvalue()


def test_rule_files_refuse_deep_nesting_and_aliases(tmp_path: Path) -> None:
    barring = tmp_path / "barring"
    barring.mkdir()
    (barring / "deep.yaml").write_text("kind: barring_rules\nrules: " + "[" * 500 + "]" * 500 + "\n")
    (barring / "alias.yaml").write_text("kind: barring_rules\nid: &x BR_X\nother: *x\n")
    problems: list[Problem] = []
    load_rules([barring], problems)
    found = {(Path(p.file).name, p.line, p.col, p.code) for p in problems}
    assert ("deep.yaml", 2, 8 + MAX_DEPTH - 1, "yaml.too-deep") in found
    assert ("alias.yaml", 3, 8, "yaml.alias") in found


def test_the_settings_file_refuses_aliases(tmp_path: Path) -> None:
    (tmp_path / "rulebill.yaml").write_text("log_level: &l INFO\nlistening: *l\n")
    with pytest.raises(SettingsInvalid) as err:
        load_settings({"RULEBILL_HOME": str(tmp_path)})
    assert (2, 12, "yaml.alias") in [(p.line, p.col, p.code) for p in err.value.problems]


def test_an_uploaded_set_is_refused_by_size_before_it_is_parsed() -> None:
    limits = PlanSetLimits(max_bytes=1000, max_files=3)
    plan_set, problems = validate_files({"a.yaml": "k: [" + "1," * 10_000 + "]"}, limits)
    assert plan_set is None and [p.code for p in problems] == ["limit.size"]
    assert "setting max_plan_set_bytes" in problems[0].message
    _, problems = validate_files({f"f{i}.yaml": "kind: rate\n" for i in range(4)}, limits)
    assert [p.code for p in problems] == ["limit.size"]
    _, problems = validate_files({"x" * 2000 + ".yaml": "kind: rate\n"}, limits)
    assert [p.code for p in problems] == ["file.path"] and len(problems[0].file) < 300


def test_an_uploaded_set_stops_at_its_value_budget_and_lists_a_bounded_number_of_problems() -> None:
    many = "".join(f"k{i}: 1\n" for i in range(3000))
    _, problems = validate_files({"rates/big.yaml": many}, PlanSetLimits(max_values=1000))
    assert [(p.line, p.code) for p in problems] == [(500, "limit.values")]   # the value of key 500 is the 1,001st
    dupes = "kind: rate\n" + "id: RT_A\n" * 500
    _, problems = validate_files({f"rates/RT_{i}.yaml": dupes for i in range(4)},
                                 PlanSetLimits(max_problems_per_file=20, max_problems=50))
    assert len(problems) == 51 and problems[20].code == "limit.problems" and problems[-1].code == "limit.problems"


def test_an_uploaded_set_has_a_time_limit() -> None:
    text = "".join(f"k{i}: 1\n" for i in range(3000))
    with pytest.raises(ResourceExhausted) as err:
        validate_files({"rates/big.yaml": text}, PlanSetLimits(max_seconds=0))
    assert "max_validation_seconds" in err.value.message
