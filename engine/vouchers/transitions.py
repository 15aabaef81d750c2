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
from typing import Any, Iterable, Mapping, TypeVar

from engine.errors import FailedPrecondition
from engine.eventrules import Lifecycle
from engine.eventrules.lifecycle import PRIVILEGE_REQUIRED, TransitionDecision
from engine.vouchers.model import BatchState, VoucherState
from engine.vouchers.moves import VOUCHER, VOUCHER_BATCH
from engine.vouchers.ports import VoucherRepository, VoucherSelection

# operator-facing operations and the lifecycle event each one posts
VOUCHER_EVENTS = ("activate", "block", "unblock", "mark_damaged", "mark_stolen", "recover", "expire", "purge", "redeem")
BATCH_EVENTS = ("activate", "block", "unblock", "expire", "purge")
S = TypeVar("S", VoucherState, BatchState)


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
    """(new state, "") when allowed, (None, reason) when refused; PermissionDenied when only a privilege the
    caller lacks stands in the way (``requires_privilege``: the request is not the caller's to make)."""
    decision = lifecycle.decide(VOUCHER, state.value, event, dict(facts), tuple(privileges))
    return _to_state(decision, VoucherState, "voucher", event, state.value)


def decide_batch(lifecycle: Lifecycle, state: BatchState, event: str, facts: Mapping[str, Any],
                 privileges: Iterable[str] = ()) -> tuple[BatchState | None, str]:
    decision = lifecycle.decide(VOUCHER_BATCH, state.value, event, dict(facts), tuple(privileges))
    return _to_state(decision, BatchState, "batch", event, state.value)


def _to_state(decision: TransitionDecision, states: type[S], kind: str, event: str, current: str) -> tuple[S | None, str]:
    if decision.code == PRIVILEGE_REQUIRED:
        decision.raise_if_refused()
    if not decision.allowed or not decision.to_state:
        return None, decision.reason or f"{event} is not allowed from {current}"
    try:
        return states(decision.to_state), ""
    except ValueError:
        return None, f"the rules name an unknown {kind} state {decision.to_state!r}"


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
        # the selection holds one owner's vouchers (apply_by_owner) or the batch's own: the state they see
        owner = next(iter(selection.owners)) if selection.owners is not None and len(selection.owners) == 1 else ""
        batch_state = (batch.state_for(owner) if owner else batch.state.value) if batch else BatchState.PURGED.value
        for expired in (False, True):
            group = replace(selection, batch_id=batch_id, expired_by=now if expired else selection.expired_by,
                            valid_at=None if expired else now)
            facts = {"batch_state": batch_state, "expired": expired}
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
    return _outcome(event, changed, refused)


def apply_by_owner(repo: VoucherRepository, lifecycle: Lifecycle, event: str, selection: VoucherSelection, now: datetime,
                   privileges: Iterable[str] = ()) -> dict[str, BulkOutcome]:
    """:func:`apply_in_bulk` once per tenant owning selected vouchers, so that each owner's audit entry tells
    what happened to its own vouchers (an operator's selection may span its MVNOs)."""
    owners = sorted(selection.owners) if selection.owners is not None else repo.owners(selection)
    return {owner: apply_in_bulk(repo, lifecycle, event, replace(selection, owners=frozenset({owner})), now, privileges)
            for owner in owners}


def merged(event: str, outcomes: Iterable[BulkOutcome]) -> BulkOutcome:
    """Several outcomes of one event as one (what the caller is answered)."""
    changed: dict[tuple[VoucherState, VoucherState], int] = {}
    refused: dict[tuple[VoucherState, str], int] = {}
    for o in outcomes:
        for key, n in o.changed.items():
            changed[key] = changed.get(key, 0) + n
        for g in o.refused:
            refused[(g.state, g.reason)] = refused.get((g.state, g.reason), 0) + g.count
    return _outcome(event, changed, refused)


def _outcome(event: str, changed: dict[tuple[VoucherState, VoucherState], int],
             refused: dict[tuple[VoucherState, str], int]) -> BulkOutcome:
    return BulkOutcome(event, changed, [RefusedGroup(state, n, why)
                                        for (state, why), n in sorted(refused.items(), key=lambda kv: kv[0][0].value)])
