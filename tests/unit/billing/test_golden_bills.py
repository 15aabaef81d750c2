"""The golden bill folders: each replays through the product's bill runs and matches its expected documents,
and every document it issues passes the UBL 2.1 XSD and the EN 16931 Schematron."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.commands.replay import run_replay
from engine.billing.replay import replay_bill_case, run_bill_case
from tests.ubl_conformance import assert_valid, corpus

CASES = Path(__file__).resolve().parents[2] / "golden" / "bills"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "accounts.yaml").is_file())
REQUIRED = {"proration-activation-mid-cycle", "month-end-anchor", "plan-change-mid-cycle", "bundle-fee-with-overage",
            "spend-tier-discount", "commitment-true-up", "two-vat-rates", "credit-note-and-rebill"}


def test_the_issue_s_eight_cases_are_there() -> None:
    assert REQUIRED <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_golden_bill_case(name: str) -> None:
    result = replay_bill_case(CASES / name)
    assert result.ok, result.render()
    assert result.documents and result.xml
    corpus()
    for number, xml in result.xml.items():
        try:
            assert_valid(xml)
        except AssertionError as exc:
            raise AssertionError(f"{name} {number}: {exc}") from None


def test_a_changed_expectation_fails_with_the_line_named(tmp_path: Path) -> None:
    import shutil

    case = tmp_path / "two-vat-rates"
    shutil.copytree(CASES / "two-vat-rates", case)
    text = (case / "expected.yaml").read_text(encoding="utf-8")
    (case / "expected.yaml").write_text(text.replace("= 9.99 [S 2.10]", "= 9.99 [S 20.00]").replace("tax: '8.24'", "tax: '8.23'"),
                                        encoding="utf-8")
    result = replay_bill_case(case)
    assert not result.ok
    assert any("line 4" in d and "S 2.10" in d for d in result.diffs), result.diffs
    assert any("totals" in d for d in result.diffs)


def test_rulebill_replay_runs_bill_cases_and_reports(tmp_path: Path) -> None:
    import argparse
    import io

    out = io.StringIO()
    folders = [str(CASES.parent), str(CASES)]   # `rulebill replay tests/golden tests/golden/bills`
    code = run_replay(argparse.Namespace(folders=folders, junit=str(tmp_path / "j.xml"), update=False), out)
    assert code == 0, out.getvalue()
    assert "ok   credit-note-and-rebill: 4 documents match" in out.getvalue()
    assert 'name="two-vat-rates"' in (tmp_path / "j.xml").read_text()


def test_bundles_are_counted_per_bill_cycle_of_the_account(tmp_path: Path) -> None:
    """The bundle case with the account anchored on the 6th: the call of 5 March is in the cycle that started on
    6 February, the calls of 6 and 7 March (70 minutes) in the next one, each cycle with its own 100 minutes, so
    nothing is left to pay; with calendar-month counters (the case as shipped, anchored on the 1st) 30 minutes
    are."""
    import shutil

    case = tmp_path / "bundle-anchor-6"
    shutil.copytree(CASES / "bundle-fee-with-overage", case)
    accounts = (case / "accounts.yaml").read_text(encoding="utf-8")
    (case / "accounts.yaml").write_text(accounts.replace("anchor_day: 1", "anchor_day: 6")
                                        .replace("{run: 2026-04-01}", "{run: 2026-03-06}\n  - {run: 2026-04-06}"), encoding="utf-8")
    result = run_bill_case(case)
    assert not result.problems, result.problems
    usage = [ln for d in result.documents for ln in d["lines"] if " usage DST_NATIONAL " in ln]
    assert [u.split(" = ")[1].split(" ")[0] for u in usage] == ["0.00", "0.00"], usage
    assert [u.split(" x")[1].split(" ")[0] for u in usage] == ["1", "2"], usage
    shipped = run_bill_case(CASES / "bundle-fee-with-overage")
    assert any(" usage DST_NATIONAL " in ln and "= 3.00" in ln for d in shipped.documents for ln in d["lines"])
