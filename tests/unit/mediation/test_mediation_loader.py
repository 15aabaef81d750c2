"""Layout and tenants files: every problem collected with file:line:col and a stable code.

Negative fixtures in ``negative/`` pin the exact problem list (``<name>.expected``,
one ``line:col: code`` per problem).  Regenerate after an intended change with
``RULEBILL_UPDATE_GOLDEN=1 pytest tests/unit/mediation/test_mediation_loader.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.mediation import LayoutError, load_layout, load_layout_text, load_tenants
from engine.mediation.layout import find_layout
from engine.mediation.tenants import DEFAULT_DIRECTORY, range_prefixes
from engine.yamlio import Problem

NEGATIVE = Path(__file__).resolve().parent / "negative"
CASES = sorted(p.stem for p in NEGATIVE.glob("*.yaml"))


def _problems(path: Path) -> list[Problem]:
    if path.stem.startswith("tenants"):
        problems: list[Problem] = []
        load_tenants(path, problems)
        return problems
    with pytest.raises(LayoutError) as info:
        load_layout(path, tenants=DEFAULT_DIRECTORY)
    return info.value.problems


@pytest.mark.parametrize("case", CASES)
def test_negative_fixture_pins_every_problem(case: str) -> None:
    path = NEGATIVE / f"{case}.yaml"
    problems = sorted(_problems(path))
    assert problems, "a negative fixture must fail"
    assert all(p.file == str(path) for p in problems)
    got = "\n".join(f"{p.line}:{p.col}: {p.code}" for p in problems) + "\n"
    expected_file = NEGATIVE / f"{case}.expected"
    if os.environ.get("RULEBILL_UPDATE_GOLDEN"):
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")


def test_problems_print_as_file_line_col_code_message() -> None:
    with pytest.raises(LayoutError) as info:
        load_layout_text("columns: [a]\nidentity: [a]\nfields:\n  service: {value: fax}\n", "x", "x.yaml")
    assert [str(p).split(": ")[:2] for p in sorted(info.value.problems)] == [
        ["x.yaml:3:1", "layout.missing-field"],
        ["x.yaml:4:12", "layout.bad-value"],
    ]


def test_unknown_layout_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("x: 1\n", encoding="utf-8")
    with pytest.raises(LayoutError) as info:
        find_layout(tmp_path, "two")
    assert info.value.problems[0].code == "layout.unknown"
    assert "one" in info.value.problems[0].message


def test_range_prefixes_cover_exactly() -> None:
    assert range_prefixes("447700900000", "447700900499") == [f"447700900{d}" for d in range(5)]
    assert range_prefixes("100", "100") == ["100"]
    got = range_prefixes("1234", "1301")
    covered = {n for n in range(1000, 10000) if any(str(n).startswith(p) for p in got)}
    assert covered == set(range(1234, 1302))


def test_tenant_identification_imsi_beats_msisdn() -> None:
    problems: list[Problem] = []
    directory = load_tenants(Path(__file__).resolve().parents[3] / "rules" / "mediation" / "tenants.yaml", problems)
    assert problems == []
    identify = directory.compile()
    assert identify("", "447700900123") == "mvno-alpha"
    assert identify("", "447700900777") == "mvno-beta"
    assert identify("234990200000001", "447700900123") == "mvno-beta"
    assert identify("", "447911123456") == "mno"
    assert identify("", "") == "mno"
    assert directory.tenants() == {"mno", "mvno-alpha", "mvno-beta"}
