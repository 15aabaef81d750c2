"""The lifecycle's answer for one voucher event, as a table the store can evaluate by itself.

Redemption is one round trip on PostgreSQL, so nothing runs in Python between
finding the voucher and changing it.  The rules still decide: :func:`compile_moves`
asks the lifecycle (``rules/lifecycle/voucher.yaml``) about every combination of
voucher state, batch state and expiry once, and the store turns the allowed ones
into the condition of its conditional update.  Change the YAML, restart, and the
store moves vouchers differently; no state name is written in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from engine.eventrules import Lifecycle
from engine.vouchers.model import VoucherState

VOUCHER = "voucher"
VOUCHER_BATCH = "voucher_batch"

# why a voucher cannot take part in a recharge (RechargeRefused reasons, stable codes)
VOUCHER_NOT_ACTIVE = "VOUCHER_NOT_ACTIVE"
BATCH_NOT_ACTIVE = "BATCH_NOT_ACTIVE"
VOUCHER_EXPIRED = "VOUCHER_EXPIRED"


@dataclass(frozen=True)
class Move:
    """One allowed move: a voucher in ``from_state`` of a batch in ``batch_state``, (un)expired, goes to ``to_state``."""

    from_state: VoucherState
    batch_state: str
    expired: bool
    to_state: VoucherState


@dataclass(frozen=True)
class MoveTable:
    """Every move the lifecycle allows for one voucher event (facts: batch state and expiry).

    Built by :func:`compile_moves`; the store evaluates it inside its conditional update, so
    the rules decide even where no Python runs between the lookup and the change.
    """

    event: str
    moves: tuple[Move, ...]

    def find(self, state: VoucherState | str, batch_state: str, expired: bool) -> Move | None:
        for m in self.moves:
            if m.from_state.value == str(getattr(state, "value", state)) and m.batch_state == batch_state and m.expired == expired:
                return m
        return None

    def refusal(self, state: VoucherState | str, batch_state: str, expired: bool) -> str:
        """Which of the voucher's facts stands in the way (a stable code), in the order a customer fixes them."""
        value = str(getattr(state, "value", state))
        if not any(m.from_state.value == value for m in self.moves):
            return VOUCHER_NOT_ACTIVE
        if not any(m.from_state.value == value and m.batch_state == batch_state for m in self.moves):
            return BATCH_NOT_ACTIVE
        if expired:
            return VOUCHER_EXPIRED
        return VOUCHER_NOT_ACTIVE

    def from_states(self) -> list[str]:
        return sorted({m.from_state.value for m in self.moves})


def compile_moves(lifecycle: Lifecycle, event: str, privileges: Iterable[str] = ()) -> MoveTable:
    """Ask the lifecycle about every (voucher state, batch state, expired) once; keep what it allows."""
    held = tuple(sorted(privileges))
    voucher_states = lifecycle.models[VOUCHER].states
    batch_states = lifecycle.models[VOUCHER_BATCH].states
    moves = []
    for state in voucher_states:
        for batch_state in batch_states:
            for expired in (False, True):
                decision = lifecycle.decide(VOUCHER, state, event, {"batch_state": batch_state, "expired": expired}, held)
                if decision.allowed and decision.to_state:
                    moves.append(Move(VoucherState(state), batch_state, expired, VoucherState(decision.to_state)))
    return MoveTable(event, tuple(moves))
