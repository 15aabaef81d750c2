"""QA replay: the golden folders pass, a changed expectation gives a readable diff, the CLI exits right."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clients.commands import replay as replay_command
from engine.replay import find_cases, rated_forms, replay_folder, update_folder
from tests.unit.rating.helpers import REPO

GOLDEN = REPO / "tests" / "golden"
CASES = find_cases([GOLDEN])


def test_at_least_ten_golden_folders() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert (case / "README.md").exists() and (case / "cdrs.cdr.csv").exists() and (case / "expected.jsonl").exists()


def test_the_golden_readme_lists_every_rating_case_and_names_the_other_folders() -> None:
    text = (GOLDEN / "README.md").read_text(encoding="utf-8")
    listed = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and not line.startswith("| case ")}
    assert listed == {c.name for c in CASES}
    others = {p.name for p in GOLDEN.iterdir() if p.is_dir()} - listed
    assert others == {"bills", "mediation"} and all(f"`{name}/`" in text for name in others)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_folder_matches(case: Path) -> None:
    result = replay_folder(case)
    assert result.ok, result.render()
    assert result.count > 0


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("sample-operator", "barring", "bundles")],
                         ids=lambda c: c.name)
def test_a_case_read_in_small_chunks_gives_the_same_result(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is streamed a chunk at a time: bundle counters and credit used carry over chunk boundaries."""
    from engine import replay

    whole = replay_folder(case)
    whole_lines = rated_forms(case)[1]
    monkeypatch.setattr(replay, "CHUNK_ROWS", 2)
    chunked = replay_folder(case)
    assert chunked.ok, chunked.render()
    assert rated_forms(case)[1] == whole_lines
    def plain(rows: list) -> list:   # each run compiles its own plan set: versions by name; the tenth is pricing's own
        return [(*r[:4], r[4] and (r[4].plan_id, r[4].version), *r[5:9]) for r in rows]

    assert plain(chunked.rows) == plain(whole.rows)
    assert chunked.count == whole.count > 2


def _run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    replay_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out), out.getvalue()


def test_cli_replay_with_junit(tmp_path: Path) -> None:
    junit = tmp_path / "replay.xml"
    code, text = _run(["replay", str(GOLDEN), "--junit", str(junit)])
    assert code == 0, text
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(CASES)) and suite.get("failures") == "0"


def test_changed_expectation_fails_with_a_per_cdr_diff(tmp_path: Path) -> None:
    case = tmp_path / "reference-cases"
    shutil.copytree(GOLDEN / "reference-cases", case)
    lines = (case / "expected.jsonl").read_text().splitlines()
    second = json.loads(lines[1])
    second["charge"], second["charge_micros"] = "0.71", 710_000
    lines[1] = json.dumps(second, sort_keys=True)
    (case / "expected.jsonl").write_text("\n".join(lines) + "\n")

    junit = tmp_path / "j.xml"
    code, text = _run(["replay", str(case), "--junit", str(junit)])
    assert code == 1
    assert "1 of 7 CDRs differ" in text
    assert "charge: expected 0.71 EUR, actual 0.72 EUR" in text
    assert "RT_REF_A" in text  # which rate and span
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "1 of 7" in (failure.get("message") or "")

    code, text = _run(["replay", str(case), "--update"])
    assert code == 0 and "updated reference-cases" in text
    assert replay_folder(case).ok


def test_invalid_plan_set_in_a_case_is_reported_not_rated(tmp_path: Path) -> None:
    case = tmp_path / "broken"
    shutil.copytree(GOLDEN / "bad-input", case)
    (case / "plans" / "rt.yaml").write_text("kind: rate\nid: RT_VOICE\ncurrency: EUR\nprice: 0.10\nper: 60\n")
    result = replay_folder(case)
    assert not result.ok
    assert [p.code for p in result.problems] == ["value.amount"]
    assert update_folder(case).problems  # --update refuses too
    code, text = _run(["replay", str(case)])
    assert code == 1 and "value.amount" in text


def test_missing_folder_fails() -> None:
    code, _ = _run(["replay", "/nonexistent/case"])
    assert code == 1


def test_rulebill_entry_point_replay_with_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    junit = tmp_path / "ci.xml"
    assert main(["replay", str(GOLDEN), "--junit", str(junit)]) == 0
    assert f"{len(CASES)} of {len(CASES)} case(s) passed" in capsys.readouterr().out
    assert ET.parse(junit).getroot().find("testsuite") is not None
    assert main(["plans", "validate", str(REPO / "plans")]) == 0


def test_barring_rules_in_a_case_decide_before_rating_and_a_changed_rule_shows_in_the_diff(tmp_path: Path) -> None:
    result = replay_folder(GOLDEN / "barring")
    assert result.ok, result.render()
    barred = [a for a in map(json.loads, rated_forms(GOLDEN / "barring")[1]) if a["status"] == "barred"]
    assert [(a["rule"], a["reason"][:22]) for a in barred][:3] == [
        ("BAR_STUDENT_PREMIUM", "The student plan does "), ("BAR_STAFF_INTERNATIONAL", "International calls ba"),
        ("BAR_NIGHT_PREMIUM", "Premium-rate numbers a")]
    case = tmp_path / "barring"
    shutil.copytree(GOLDEN / "barring", case)
    rules = case / "rules" / "barring" / "barring.yaml"
    rules.write_text(rules.read_text().replace("when: {plan_id: TP_STUDENT, destination_group: DST_PREMIUM}",
                                               "when: {plan_id: TP_NOBODY, destination_group: DST_PREMIUM}"))
    changed = replay_folder(case)
    assert not changed.ok and [d.index for d in changed.diffs] == [0]
    assert "status: expected barred, actual rated" in changed.render()


def test_a_case_whose_barring_rules_are_invalid_cannot_run(tmp_path: Path) -> None:
    case = tmp_path / "barring"
    shutil.copytree(GOLDEN / "barring", case)
    (case / "rules" / "barring" / "bad.yaml").write_text("kind: barring\nrules: [{id: bad id, action: bar}]\n")
    result = replay_folder(case)
    assert not result.ok and [p.code for p in result.problems] == ["rule.bad-id"]
