"""Brute-force defence for recharge: N consecutive wrong PINs bar a subscriber for a while.

The policy is a port: :class:`RuleBookLockout` runs the ``recharge_lockout``
rule of ``rules/lifecycle/`` through ``engine.eventrules``; :class:`CountingLockout`
is the built-in reading of it (5 failures, 24 h) for installations without the
rules.  Either way the counter lives in the database (:class:`RechargeGuard`),
so replicas agree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.vouchers.ports import RechargeGuard

DEFAULT_MAX_FAILURES = 5
DEFAULT_BAR = timedelta(hours=24)


class LockoutPolicy(Protocol):
    def is_barred(self, guard: RechargeGuard, now: datetime) -> bool: ...
    def after_failure(self, guard: RechargeGuard, now: datetime) -> RechargeGuard: ...
    def after_success(self, guard: RechargeGuard, now: datetime) -> RechargeGuard: ...


class CountingLockout:
    def __init__(self, max_failures: int = DEFAULT_MAX_FAILURES, bar_for: timedelta = DEFAULT_BAR) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self.max_failures = max_failures
        self.bar_for = bar_for

    def is_barred(self, guard: RechargeGuard, now: datetime) -> bool:
        return guard.barred_until is not None and now < guard.barred_until

    def after_failure(self, guard: RechargeGuard, now: datetime) -> RechargeGuard:
        # a bar that has run out starts a fresh count
        count = 1 if guard.barred_until is not None and now >= guard.barred_until else guard.failed_attempts + 1
        barred_until = now + self.bar_for if count >= self.max_failures else None
        return replace(guard, failed_attempts=count, barred_until=barred_until, last_failure_at=now)

    def after_success(self, guard: RechargeGuard, now: datetime) -> RechargeGuard:
        return replace(guard, failed_attempts=0, barred_until=None)


class RuleBookLockout:
    """The ``recharge_lockout`` rule (``rules/lifecycle/recharge_lockout.yaml``) via ``engine.eventrules``.

    The rule decides; this adapter only maps its decision onto the stored guard.
    """

    def __init__(self, policy: Any = None) -> None:
        from engine.eventrules import DEFAULT_LOCKOUT

        self.policy = policy or DEFAULT_LOCKOUT

    def _decide(self, guard: RechargeGuard, now: datetime, outcome: str) -> Any:
        from engine.eventrules import decide_recharge_lockout

        return decide_recharge_lockout(guard.failed_attempts, guard.barred_until, now, outcome, self.policy)

    def is_barred(self, guard: RechargeGuard, now: datetime) -> bool:
        return bool(self._decide(guard, now, "check").barred)

    def after_failure(self, guard: RechargeGuard, now: datetime) -> RechargeGuard:
        d = self._decide(guard, now, "failure")
        return replace(guard, failed_attempts=d.failed_count, barred_until=d.barred_until, last_failure_at=now)

    def after_success(self, guard: RechargeGuard, now: datetime) -> RechargeGuard:
        d = self._decide(guard, now, "success")
        return replace(guard, failed_attempts=d.failed_count, barred_until=d.barred_until)
