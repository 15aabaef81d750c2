"""Smaller items of the README walkthrough issue (14): replay skips files among its folders (item 1), and
`plans validate` counts the plan set's files as the upload does (item 13)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from clients.commands.plans import validate_paths
from clients.commands.replay import run_replay
from engine.plans.loader import plan_files

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"


def test_replay_skips_a_file_among_its_folders_with_a_note() -> None:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(folders=[str(GOLDEN / "README.md"), str(GOLDEN / "increments-rounding")], junit=None, update=False)
    assert run_replay(args, out, err) == 0
    assert err.getvalue() == f"replay: skipping {GOLDEN / 'README.md'}: a file, not a case folder\n"
    assert out.getvalue().endswith("1 of 1 case(s) passed\n")


def test_replay_names_a_folder_without_a_case_and_fails() -> None:
    """`rulebill replay tests/golden/mediation tests/golden/bundles`: the bundles case passes, the mediation folder
    (mediation cases, run through pytest) holds no replay case: named on stderr and in the summary, exit 1."""
    out, err = io.StringIO(), io.StringIO()
    mediation = str(GOLDEN / "mediation")
    args = argparse.Namespace(folders=[mediation, str(GOLDEN / "bundles")], junit=None, update=False)
    assert run_replay(args, out, err) == 1
    assert err.getvalue().startswith(f"replay: {mediation}: no replay case in it")
    assert out.getvalue().endswith(f"1 of 1 case(s) passed\n1 folder(s) without a case: {mediation}\n")


def test_replay_of_a_missing_folder_still_fails() -> None:
    args = argparse.Namespace(folders=[str(GOLDEN / "no-such-case")], junit=None, update=False)
    assert run_replay(args, io.StringIO(), io.StringIO()) == 1


def test_validate_counts_the_files_an_upload_carries() -> None:
    valid, problems, summary = validate_paths([str(REPO / "plans")])
    assert valid, problems
    uploaded = plan_files(REPO / "plans")  # what bootstrap and `PlanService.UploadPlanSet` receive
    assert summary["files"] == len(uploaded)
    prefix_files = [name for name in uploaded if name.endswith(".prefixes")]
    assert prefix_files and summary["plan_files"] == len(uploaded) - len(prefix_files)
