"""Recharge lockout: N consecutive wrong PINs bar recharge for a period.

The policy (``kind: recharge_lockout``: ``max_failures``, ``bar_for``) lives
in rules/; the decision runs as an event-rule table like every other rule
kind, over a fact built from the stored counter (the database is the truth;
this function is pure).

Outcomes:
  check        -- may this subscriber try a PIN now?
  failure      -- a PIN was wrong: count it, bar at the limit
  success      -- a PIN was right: the counter resets
  staff_clear  -- customer care lifts a bar and resets the counter
  staff_bar    -- customer care bars recharge for the policy's period
While barred, ``check``/``failure``/``success`` are refused and change nothing.
A bar whose time has passed is gone (and the counter starts again at 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from engine.conditions import Comparison, all_of
from engine.eventrules.adapter import DEFAULT_BACKEND, RuleBackend, make_backend
from engine.eventrules.common import duration_seconds
from engine.eventrules.model import EventRule, EventRuleSet
from engine.yamlio import Fields, Problem

OUTCOMES = ("check", "failure", "success", "staff_clear", "staff_bar")


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    bar_seconds: int = 86_400

    def ruleset(self) -> EventRuleSet:
        outcome = lambda o: Comparison("outcome", "eq", o)  # noqa: E731 - table below reads better
        barred = Comparison("barred", "eq", True)
        return EventRuleSet(
            "recharge_lockout",
            "first",
            (
                EventRule("STAFF_CLEAR", outcome("staff_clear")),
                EventRule("STAFF_BAR", outcome("staff_bar")),
                EventRule("BARRED", barred),
                EventRule("LOCK", all_of(outcome("failure"), Comparison("failures_after", "gte", self.max_failures))),
                EventRule("COUNT_FAILURE", outcome("failure")),
                EventRule("RESET_ON_SUCCESS", outcome("success")),
                EventRule("ALLOW_CHECK", outcome("check")),
            ),
        )


DEFAULT_LOCKOUT = LockoutPolicy()


@dataclass(frozen=True)
class LockoutDecision:
    """The new stored state (``failed_count``, ``barred_until``) and what it means now."""

    failed_count: int
    barred_until: datetime | None
    barred: bool  # recharge is barred after this outcome
    accepted: bool  # False only when the outcome was refused because a bar is in force
    rule_id: str
    reason: str

    @property
    def allowed(self) -> bool:
        """A recharge may be attempted now."""
        return not self.barred


@lru_cache(maxsize=32)
def _backend(policy: LockoutPolicy, backend: str) -> RuleBackend:
    return make_backend(policy.ruleset(), backend)


@lru_cache(maxsize=1024)
def _rule(policy: LockoutPolicy, backend: str, outcome: str, barred: bool, failures_after: int) -> str:
    """The rule the fact hits; the table is a pure function of these few values, and every PIN entry asks it twice
    (kept: the redemption writer of a SQLite store asks it for every request while it holds the write lock)."""
    fact: dict[str, Any] = {"outcome": outcome, "barred": barred, "failures_after": failures_after}
    hit = _backend(policy, backend).matches(fact)
    return hit[0] if hit else "NONE"


def decide_recharge_lockout(
    failed_count: int,
    barred_until: datetime | None,
    now: datetime,
    outcome: str,
    policy: LockoutPolicy = DEFAULT_LOCKOUT,
    backend: str = DEFAULT_BACKEND,
) -> LockoutDecision:
    """Pure: the stored counter and bar, the time and what happened -> the new counter and bar."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown recharge outcome {outcome!r} (use one of {', '.join(OUTCOMES)})")
    if failed_count < 0:
        raise ValueError("failed_count must not be negative")
    barred = barred_until is not None and now < barred_until
    if barred_until is not None and not barred:
        # the bar ran out: forget it and start counting again
        barred_until, failed_count = None, 0
    rule = _rule(policy, backend, outcome, barred, failed_count + 1)
    until = now + timedelta(seconds=policy.bar_seconds)
    if rule == "STAFF_CLEAR":
        return LockoutDecision(0, None, False, True, rule, "recharge bar cleared by staff")
    if rule == "STAFF_BAR":
        return LockoutDecision(failed_count, until, True, True, rule, f"recharge barred by staff until {until.isoformat()}")
    if rule == "BARRED":
        assert barred_until is not None
        return LockoutDecision(failed_count, barred_until, True, False, rule, f"recharge is barred until {barred_until.isoformat()}")
    if rule == "LOCK":
        return LockoutDecision(
            0, until, True, True, rule, f"{policy.max_failures} consecutive wrong PINs: recharge barred until {until.isoformat()}"
        )
    if rule == "COUNT_FAILURE":
        left = policy.max_failures - failed_count - 1
        return LockoutDecision(failed_count + 1, None, False, True, rule, f"wrong PIN; {left} attempt(s) left before a bar")
    if rule == "RESET_ON_SUCCESS":
        return LockoutDecision(0, None, False, True, rule, "recharge succeeded; failure counter reset")
    return LockoutDecision(failed_count, None, False, True, rule, "recharge allowed")


def parse_lockout_file(node: Any, problems: list[Problem]) -> LockoutPolicy | None:
    start = len(problems)
    f = Fields(node, "recharge_lockout", problems)
    f.optional("kind", str)
    f.optional("description", str)
    max_failures = f.optional("max_failures", int, default=DEFAULT_LOCKOUT.max_failures)
    raw = f.optional("bar_for", (int, str), default=DEFAULT_LOCKOUT.bar_seconds)
    f.done()
    seconds = duration_seconds(raw, f.node.mark_of("bar_for"), "bar_for", problems)
    if max_failures is not None and max_failures < 1:
        problems.append(Problem.at(f.node.mark_of("max_failures"), "lockout.bad-limit", "max_failures must be at least 1"))
    if len(problems) != start or seconds is None:
        return None
    return LockoutPolicy(max_failures, seconds)
