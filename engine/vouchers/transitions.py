"""Voucher and batch state changes, decided by the lifecycle rules in ``rules/lifecycle/``.

The engine never hard-codes which move is allowed: it asks the lifecycle
(``engine.eventrules.Lifecycle``, loaded from the YAML files) and applies the
answer with conditional updates.  Two shapes of the same question:

* a bulk operation groups the selected vouchers by batch, expiry and current
  state, asks once per group, and changes each group with one
  ``UPDATE ... WHERE state = <from>``: a million vouchers cost a handful of
  decisions, and the whole request is one transaction;
* a hot path that must decide inside the database (redemption is one round trip
  on PostgreSQL) gets the rules as a :class:`engine.vouchers.moves.MoveTable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from engine.errors import FailedPrecondition
from engine.eventrules import Lifecycle
from engine.vouchers.model import BatchState, VoucherState
from engine.vouchers.moves import VOUCHER, VOUCHER_BATCH
from engine.vouchers.ports import VoucherRepository, VoucherSelection

# operator-facing operations and the lifecycle event each one posts
VOUCHER_EVENTS = ("activate", "block", "unblock", "mark_damaged", "mark_stolen", "expire", "purge", "redeem")
BATCH_EVENTS = ("activate", "block", "unblock", "expire", "purge")


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


def voucher_facts(batch_state: BatchState | str, expires_at: datetime, now: datetime) -> dict[str, Any]:
    """Facts a lifecycle rule may test (kept small and JSON-friendly for durable_rules)."""
    state = batch_state.value if isinstance(batch_state, BatchState) else batch_state
    return {"batch_state": state, "expired": expires_at <= now}


def apply_in_bulk(repo: VoucherRepository, lifecycle: Lifecycle, event: str, selection: VoucherSelection, now: datetime,
                  privileges: Iterable[str] = ()) -> BulkOutcome:
    """Group the selection by batch, expiry and state; one rule decision and one conditional update per group."""
    changed: dict[tuple[VoucherState, VoucherState], int] = {}
    refused: dict[tuple[VoucherState, str], int] = {}
    for batch_id in repo.batch_ids(selection):
        batch = repo.get_batch(batch_id)
        batch_state = batch.state if batch else BatchState.PURGED
        for expired in (False, True):
            group = replace(selection, batch_id=batch_id, expired_by=now if expired else selection.expired_by,
                            valid_at=None if expired else now)
            facts = {"batch_state": batch_state.value, "expired": expired}
            for state, count in sorted(repo.count_by_state(group).items(), key=lambda kv: kv[0].value):
                to_state, why = decide_voucher(lifecycle, state, event, facts, privileges)
                if to_state is None:
                    refused[(state, why)] = refused.get((state, why), 0) + count
                    continue
                moved = repo.transition_vouchers(group, state, to_state, now)
                changed[(state, to_state)] = changed.get((state, to_state), 0) + moved
                if moved < count:
                    key = (state, "changed by another request meanwhile")
                    refused[key] = refused.get(key, 0) + count - moved
    return BulkOutcome(event, changed, [RefusedGroup(state, n, why)
                                        for (state, why), n in sorted(refused.items(), key=lambda kv: kv[0][0].value)])
