"""Voucher and batch state changes, decided by the lifecycle rules in ``rules/lifecycle/``.

The engine never hard-codes which move is allowed: it asks a :class:`Lifecycle`
(the durable_rules-backed ``engine.eventrules.Lifecycle`` in production) and
applies the answer with conditional updates.  A bulk operation groups the
selected vouchers by current state, asks once per state, and changes each group
with one ``UPDATE ... WHERE state = <from>`` -- a million vouchers cost a handful
of decisions, and the whole request is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Protocol

from engine.errors import FailedPrecondition
from engine.vouchers.model import BatchState, VoucherState

VOUCHER = "voucher"
VOUCHER_BATCH = "voucher_batch"

# operator-facing operations and the lifecycle event each one posts
VOUCHER_EVENTS = ("activate", "block", "unblock", "mark_damaged", "mark_stolen", "expire", "purge", "redeem")
BATCH_EVENTS = ("activate", "block", "unblock", "expire", "purge")


class Decision(Protocol):
    """``engine.eventrules.TransitionDecision`` (read-only attributes)."""

    @property
    def allowed(self) -> bool: ...
    @property
    def to_state(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


class Lifecycle(Protocol):
    """``engine.eventrules.Lifecycle`` satisfies this (structural typing, no import needed).

    ``privileges`` are the caller's granted privileges (a rule may require one, e.g. ``voucher.purge``).
    """

    def decide(self, entity_kind: str, current_state: str, event: str, facts: Mapping[str, Any],
               privileges: Iterable[str] = ()) -> Decision: ...


@dataclass(frozen=True)
class RefusedGroup:
    state: VoucherState
    count: int
    reason: str


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk operation did: changed per (from -> to), refused per current state."""

    event: str
    changed: dict[tuple[VoucherState, VoucherState], int] = field(default_factory=dict)
    refused: list[RefusedGroup] = field(default_factory=list)

    @property
    def changed_count(self) -> int:
        return sum(self.changed.values())

    @property
    def refused_count(self) -> int:
        return sum(g.count for g in self.refused)


def transition_refused(kind: str, subject: str, state: str, event: str, reason: str) -> FailedPrecondition:
    """The error for a move the rules forbid: names the object, its state and the event."""
    why = f" ({reason})" if reason else ""
    code = "VOUCHER_TRANSITION_REFUSED" if kind == VOUCHER else "BATCH_TRANSITION_REFUSED"
    return FailedPrecondition(code, f"cannot {event} {kind.replace('_', ' ')} {subject}: it is {state}{why}", subject)


def decide_voucher(lifecycle: Lifecycle, state: VoucherState, event: str, facts: Mapping[str, Any],
                   privileges: Iterable[str] = ()) -> tuple[VoucherState | None, str]:
    """(new state, "") when allowed, (None, reason) when refused."""
    decision = lifecycle.decide(VOUCHER, state.value, event, dict(facts), tuple(privileges))
    if not decision.allowed or not decision.to_state:
        return None, decision.reason or f"{event} is not allowed from {state.value}"
    try:
        return VoucherState(decision.to_state), ""
    except ValueError:
        return None, f"the rules name an unknown voucher state {decision.to_state!r}"


def decide_batch(lifecycle: Lifecycle, state: BatchState, event: str, facts: Mapping[str, Any],
                 privileges: Iterable[str] = ()) -> tuple[BatchState | None, str]:
    decision = lifecycle.decide(VOUCHER_BATCH, state.value, event, dict(facts), tuple(privileges))
    if not decision.allowed or not decision.to_state:
        return None, decision.reason or f"{event} is not allowed from {state.value}"
    try:
        return BatchState(decision.to_state), ""
    except ValueError:
        return None, f"the rules name an unknown batch state {decision.to_state!r}"


def voucher_facts(batch_state: BatchState, expires_at: datetime, now: datetime) -> dict[str, Any]:
    """Facts a lifecycle rule may test (kept small and JSON-friendly for durable_rules)."""
    return {"batch_state": batch_state.value, "expired": expires_at <= now}
