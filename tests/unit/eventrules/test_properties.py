"""Properties over sequences: alerts fire once per period, the lockout caps guesses, the durable host is thread-safe."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.eventrules import CallAttempt, CreditFact, LockoutPolicy, decide_recharge_lockout

from .conftest import load_sample

BOOK = load_sample()
ALERTS = BOOK.credit_alerts()
LIMIT = 1_000_000_000


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["mno", "mvno-alpha", "mvno-beta"]), st.lists(st.integers(0, 400_000_000), min_size=1, max_size=12))
def test_each_threshold_fires_once_per_period(tenant: str, increments: list[int]) -> None:
    used, fired = 0, Counter[str]()
    for inc in increments:
        actions = ALERTS.evaluate_credit(CreditFact(tenant, "A", "2026-11", "EUR", LIMIT, used, used + inc))
        fired.update({a.threshold_id for a in actions})
        used += inc
    assert all(n == 1 for n in fired.values())
    expected = {t.id for t in BOOK.alert_table.thresholds if t.tenant == tenant and used * 10_000 >= t.basis_points * LIMIT and t.condition.fields() == frozenset()}
    assert set(fired) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["failure", "failure", "failure", "success", "check"]), st.integers(0, 7200)), max_size=30))
def test_lockout_never_allows_more_than_max_consecutive_failures(steps: list[tuple[str, int]]) -> None:
    policy = LockoutPolicy(max_failures=3, bar_seconds=3600)
    now = datetime(2026, 1, 1)
    count, until = 0, None
    run = 0  # failures accepted since the last success, reset or expired bar
    for outcome, wait in steps:
        now += timedelta(seconds=wait)
        if until is not None and now >= until:
            run = 0
        d = decide_recharge_lockout(count, until, now, outcome, policy)
        if d.accepted and outcome == "failure":
            run += 1
        if outcome == "success" and d.accepted:
            run = 0
        assert run <= policy.max_failures
        assert d.barred == (d.barred_until is not None and now < d.barred_until)
        if run == policy.max_failures:
            assert d.barred
            run = 0
        count, until = d.failed_count, d.barred_until


def test_durable_backend_is_safe_from_several_threads() -> None:
    python, durable = BOOK.barring("compiled"), BOOK.barring("durable_rules")
    calls = [
        CallAttempt(f"3361{i:07d}", tenant="mno", plan_id=("TP_SMART_S" if i % 2 else "TP_SMART_M"),
                    destination_group=["DST_PREMIUM", "DST_EU", "DST_EMERGENCY"][i % 3], flags=frozenset({"bar_international"}) if i % 5 == 0 else frozenset())
        for i in range(300)
    ]
    expected = [python.authorise(c) for c in calls]
    errors: list[str] = []

    def worker() -> None:
        for c, want in zip(calls, expected):
            got = durable.authorise(c)
            if got != want:
                errors.append(f"{c}: {got} != {want}")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
