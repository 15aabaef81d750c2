"""The voucher domain's rules come from rules/lifecycle, or the service does not start; the lifecycle compiles
into the move tables the store applies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.eventrules import RuleFilesInvalid
from engine.vouchers.model import VoucherState
from engine.vouchers.moves import BATCH_NOT_ACTIVE, VOUCHER_EXPIRED, VOUCHER_NOT_ACTIVE, Move, compile_moves
from engine.vouchers.rules import VoucherRulesMissing, load_voucher_rules

from .factories import REPO

A, U, R, P = VoucherState.ACTIVE, VoucherState.USED, VoucherState.RESERVED, VoucherState.PENDING


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "rules" / "lifecycle", tmp_path / "lifecycle")
    return tmp_path / "lifecycle"


def test_no_lifecycle_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(VoucherRulesMissing) as err:
        load_voucher_rules(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'lifecycle'}: no such folder")


def test_each_required_rule_is_named_when_missing(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "recharge_lockout.yaml").unlink()
    (folder / "voucher.yaml").unlink()
    with pytest.raises(VoucherRulesMissing) as err:
        load_voucher_rules(tmp_path)
    assert "no lifecycle for entity voucher " in str(err.value) and "no recharge_lockout file" in str(err.value)


def test_a_state_the_store_cannot_hold_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "voucher.yaml"
    text = path.read_text()
    path.write_text(text.replace("damaged, stolen, purged]", "damaged, stolen, purged, lost]")
                    + "\n  - event: lose\n    from: [active]\n    to: lost\n")
    with pytest.raises(VoucherRulesMissing) as err:
        load_voucher_rules(tmp_path)
    assert f"{path}: voucher state(s) lost are not known" in str(err.value)


def test_an_invalid_file_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "recharge_lockout.yaml").write_text("kind: recharge_lockout\nmax_failures: 0\n")
    with pytest.raises(RuleFilesInvalid) as err:
        load_voucher_rules(tmp_path)
    assert [(Path(p.file).name, p.line, p.code) for p in err.value.problems] == [("recharge_lockout.yaml", 2, "lockout.bad-limit")]


def test_the_shipped_lifecycle_compiles_to_these_moves() -> None:
    lifecycle = load_voucher_rules(REPO / "rules").lifecycle
    assert compile_moves(lifecycle, "redeem").moves == (Move(A, "active", False, U),)
    assert compile_moves(lifecycle, "reserve").moves == (Move(A, "active", False, R),)
    commit = compile_moves(lifecycle, "commit")
    assert {(m.from_state, m.to_state) for m in commit.moves} == {(R, U), (P, U)} and len(commit.moves) == 2 * 6 * 2
    redeem = compile_moves(lifecycle, "redeem")
    assert [redeem.refusal(*facts) for facts in (("used", "active", False), ("active", "blocked", False), ("active", "active", True))] \
        == [VOUCHER_NOT_ACTIVE, BATCH_NOT_ACTIVE, VOUCHER_EXPIRED]


def test_changing_the_yaml_changes_the_moves(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "voucher.yaml"
    old = "  - event: redeem              # one atomic recharge: active -> used\n    from: [active]\n"
    path.write_text(path.read_text().replace(old, old.replace("[active]", "[active, blocked]")))
    moves = compile_moves(load_voucher_rules(tmp_path).lifecycle, "redeem").moves
    assert moves == (Move(A, "active", False, U), Move(VoucherState.BLOCKED, "active", False, U))
