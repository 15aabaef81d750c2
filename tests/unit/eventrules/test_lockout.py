"""Recharge lockout: N consecutive wrong PINs bar recharge; success resets; staff clear."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.eventrules import LockoutPolicy, RuleBook, decide_recharge_lockout

from .conftest import load_text_rules

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def test_five_failures_bar_for_a_day(backend: str) -> None:
    count, until = 0, None
    for i in range(4):
        d = decide_recharge_lockout(count, until, T0, "failure", backend=backend)
        assert (d.failed_count, d.barred, d.rule_id) == (i + 1, False, "COUNT_FAILURE")
        count, until = d.failed_count, d.barred_until
    d = decide_recharge_lockout(count, until, T0, "failure", backend=backend)
    assert (d.failed_count, d.barred_until, d.barred, d.allowed, d.rule_id) == (0, T0 + timedelta(hours=24), True, False, "LOCK")
    # while barred nothing changes, even a right PIN is refused
    for outcome in ("check", "failure", "success"):
        later = decide_recharge_lockout(d.failed_count, d.barred_until, T0 + timedelta(hours=23), outcome, backend=backend)
        assert (later.barred, later.accepted, later.barred_until, later.rule_id) == (True, False, d.barred_until, "BARRED")
    # the bar runs out
    after = decide_recharge_lockout(d.failed_count, d.barred_until, T0 + timedelta(hours=24), "check", backend=backend)
    assert (after.barred, after.barred_until, after.allowed) == (False, None, True)


def test_success_resets(backend: str) -> None:
    d = decide_recharge_lockout(4, None, T0, "success", backend=backend)
    assert (d.failed_count, d.barred, d.rule_id) == (0, False, "RESET_ON_SUCCESS")


def test_staff_clear_and_bar(backend: str) -> None:
    barred = decide_recharge_lockout(0, T0 + timedelta(hours=5), T0, "staff_clear", backend=backend)
    assert (barred.failed_count, barred.barred_until, barred.barred) == (0, None, False)
    bar = decide_recharge_lockout(2, None, T0, "staff_bar", backend=backend)
    assert (bar.barred, bar.barred_until, bar.failed_count) == (True, T0 + timedelta(days=1), 2)


def test_policy_from_rules(book: RuleBook, backend: str) -> None:
    policy = LockoutPolicy(max_failures=2, bar_seconds=600)
    d = decide_recharge_lockout(1, None, T0, "failure", policy, backend)
    assert d.barred and d.barred_until == T0 + timedelta(minutes=10)
    assert book.lockout_policy == LockoutPolicy(5, 86_400)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        decide_recharge_lockout(0, None, T0, "maybe")
    with pytest.raises(ValueError):
        decide_recharge_lockout(-1, None, T0, "check")


def test_lockout_file_validation(tmp_path: Path) -> None:
    book, problems = load_text_rules(tmp_path, {"l.yaml": "kind: recharge_lockout\nmax_failures: 3\nbar_for: 30m\n"})
    assert problems == [] and book.lockout_policy == LockoutPolicy(3, 1800)
    _, problems = load_text_rules(tmp_path, {"l.yaml": "kind: recharge_lockout\nmax_failures: 0\nbar_for: soon\nx: 1\n"})
    assert problems == [("l.yaml", 2, 15, "lockout.bad-limit"), ("l.yaml", 3, 10, "schema.bad-duration"), ("l.yaml", 4, 1, "schema.unknown-field")]
