"""An uploaded plan set (``{path: text}``) loads from memory exactly as the same files load from a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plans import load_plan_set
from engine.plans.catalogue import validate_files
from engine.plans.compiler import build_ir, ir_digest
from engine.plans.loader import load_plan_texts, parse_plan_texts, plan_files

REPO = Path(__file__).resolve().parents[3]
NEGATIVE = Path(__file__).parent / "fixtures" / "negative"
FOLDERS = [REPO / "plans", *sorted(p / "plans" for p in (REPO / "tests" / "golden").iterdir() if (p / "plans").is_dir()),
           *sorted(p for p in NEGATIVE.iterdir() if p.is_dir())]


def _readable(folder: Path) -> bool:
    try:
        plan_files(folder)
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("folder", [f for f in FOLDERS if _readable(f)], ids=lambda f: str(f.relative_to(REPO)))
def test_memory_and_folder_load_alike(folder: Path) -> None:
    on_disk, disk_problems = load_plan_set([folder], root=folder)
    in_memory, memory_problems = load_plan_texts(plan_files(folder))
    assert memory_problems == disk_problems
    assert (on_disk is None) == (in_memory is None)
    if on_disk is not None and in_memory is not None:
        assert in_memory.files == on_disk.files
        assert ir_digest(build_ir(in_memory)) == ir_digest(build_ir(on_disk))


def test_plan_files_carries_what_the_loader_reads_and_the_prefix_files() -> None:
    files = plan_files(REPO / "plans")
    assert "destinations/world.prefixes" in files and "destinations/DST_EU.yaml" in files
    # other loaders' documents and the notes stay behind
    assert not [name for name in files if name == "operator.yaml" or name.startswith("vouchers/") or name.endswith(".md")]


def test_a_missing_prefix_file_is_reported_where_it_is_named() -> None:
    files = {"destinations/DST_X.yaml": "kind: destination_group\nid: DST_X\nprefix_file: gone.prefixes\n"}
    plan_set, problems = validate_files(files)
    assert plan_set is None
    assert [(p.file, p.line, p.code) for p in problems] == [("destinations/DST_X.yaml", 1, "destinations.empty"),
                                                            ("destinations/DST_X.yaml", 3, "ref.file")]
    assert "No such file or directory" in problems[1].message


def test_paths_are_normalised_and_prefix_files_found_beside_their_plan_file() -> None:
    files = {"./destinations/DST_X.yaml": "kind: destination_group\nid: DST_X\nprefix_file: x.prefixes\n",
             "destinations/x.prefixes": "33 # France\n34\n"}
    plan_set, problems = parse_plan_texts(files)
    assert problems == [] and plan_set.files == ["destinations/DST_X.yaml"]
    group = plan_set.destinations["DST_X"]
    assert group.prefixes == ("33", "34") and [(m.file, m.line) for m in group.prefix_marks] == [("destinations/x.prefixes", 1),
                                                                                                  ("destinations/x.prefixes", 2)]


# A prefix file of plain lines and the same prefixes written with comments, blanks and spaces load alike (the plain
# file takes the fast path, the other the line-by-line one), with the marks of the lines they are on
@pytest.mark.parametrize("text, lines", [
    ("33\n34\n4420\n", [1, 2, 3]),
    ("33\n34\n4420", [1, 2, 3]),
    ("# EU\n33\n\n  34  \n4420 # UK\n", [2, 4, 5]),
    ("33\r\n34\r\n4420\r\n", [1, 2, 3]),
])
def test_a_prefix_file_reads_the_same_whatever_its_layout(text: str, lines: list[int]) -> None:
    files = {"destinations/DST_X.yaml": "kind: destination_group\nid: DST_X\nprefix_file: x.prefixes\n",
             "destinations/x.prefixes": text}
    plan_set, problems = parse_plan_texts(files)
    assert problems == []
    group = plan_set.destinations["DST_X"]
    assert group.prefixes == ("33", "34", "4420")
    assert [(m.file, m.line, m.col) for m in group.prefix_marks] == [("destinations/x.prefixes", n, 1) for n in lines]
    assert group.prefix_marks[-1].line == lines[-1] and len(group.prefix_marks) == 3
    assert group.prefix_marks == tuple(group.prefix_marks) and hash(group.prefix_marks) == hash(tuple(group.prefix_marks))


@pytest.mark.parametrize("inline, file, codes", [
    ('["33", "+34"]', "35\n", []),                                                    # "+34" is 34: the slow path
    ('["33"]', "33\n", [("destinations/x.prefixes", 1, "destinations.duplicate-prefix")]),
    ('[]', "33\n3 4\n", [("destinations/x.prefixes", 2, "value.prefix")]),
    ('["33\\n34"]', "35\n", [("destinations/DST_X.yaml", 3, "value.prefix")]),        # a newline inside one prefix
    ('["33", "33"]', "", [("destinations/DST_X.yaml", 3, "destinations.duplicate-prefix")]),
])
def test_a_group_with_a_bad_or_repeated_prefix_still_reports_it_where_it_is(inline: str, file: str,
                                                                            codes: list[tuple[str, int, str]]) -> None:
    files = {"destinations/DST_X.yaml": f"kind: destination_group\nid: DST_X\nprefixes: {inline}\nprefix_file: x.prefixes\n",
             "destinations/x.prefixes": file}
    plan_set, problems = parse_plan_texts(files)
    assert [(p.file, p.line, p.code) for p in problems] == codes
    if not codes:
        assert plan_set.destinations["DST_X"].prefixes == ("33", "34", "35")
