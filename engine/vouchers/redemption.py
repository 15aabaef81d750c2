"""What one PIN entry or one reservation step does, decided from a snapshot: the reference semantics.

A recharge must be exactly-once under concurrency and cost one round trip on
PostgreSQL, so the store carries it out in one unit: PostgreSQL in a stored
function (migrations ``vouchers_0003``, ``vouchers_0004``), SQLite and the in-memory test store by
reading a :class:`AttemptSnapshot` under their single writer lock, calling
:func:`settle_attempt` and writing the :class:`Settlement` it returns.  A contract
test runs the same scenarios against all three, so the stored function cannot
drift from this module.

Order of decisions, each for a reason:

1. a live subscriber the caller may act for -- else not found, and not counted
   (it is not the subscriber's guess).  This comes before the request id: request
   ids belong to a tenant (the subscriber's), so another tenant's ids are neither
   refused as taken nor replayed -- a caller who cannot see the subscriber learns
   exactly what an unknown subscriber gives;
2. the request id, within the subscriber's tenant -- a retry returns the stored
   result (same subscriber, same voucher), never a second credit; the same id with
   another PIN or subscriber is refused, never answered with the first result.
   Another PIN with the same id and subscriber is a guess (its answer says whether
   the PIN is the earlier voucher's): barred while the bar holds, counted otherwise;
3. the recharge bar (``rules/lifecycle/recharge_lockout.yaml``): while it holds,
   nothing is looked up and nothing is counted;
4. the attempt is counted before the PIN is looked up, so concurrent guesses
   cannot all pass a check made before any of them was counted;
5. the voucher: unknown, or of another tenant, is a wrong PIN; one the lifecycle
   does not let move is refused with the fact in the way -- counted, unless this
   very subscriber used or holds it (a double submission is not a guess);
6. the move the lifecycle allows (:class:`MoveTable`), and for ``redeem`` the
   credit, the validity extension and the ledger row; success resets the counter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Sequence

from engine import audit
from engine.eventrules import LockoutPolicy, decide_recharge_lockout
from engine.identity import Principal
from engine.vouchers.model import Voucher
from engine.vouchers.moves import MoveTable

PIN_CHECK_DIGIT = "PIN_CHECK_DIGIT"
PIN_UNKNOWN = "PIN_UNKNOWN"
REPLAY_OTHER_PIN = "voucher"   # REQUEST_ID_REUSED's reason: the id's earlier request was for another voucher (PIN)

# RESERVED / COMMITTED / RELEASED: Reservation.status
RESERVED = "reserved"
COMMITTED = "committed"
RELEASED = "released"

CREDITING_EVENTS = ("redeem", "commit")  # the events that turn a voucher into balance


@dataclass(frozen=True)
class RechargeGuard:
    """Per-subscriber brute-force state: consecutive failed PINs and a bar."""

    msisdn: str
    failed_attempts: int = 0
    barred_until: datetime | None = None
    last_failure_at: datetime | None = None


@dataclass(frozen=True)
class Redemption:
    """A ledger row: one credit, stored under its request id (the same id always returns it again)."""

    request_id: str
    msisdn: str
    serial: int
    batch_id: str
    currency: str
    credited_micros: int
    balance_micros: int  # the subscriber's balance in that currency after the credit
    valid_until: datetime  # the subscriber's validity in that currency after the extension
    redeemed_at: datetime
    transaction_id: str


@dataclass(frozen=True)
class Reservation:
    """A voucher held for a subscriber (two-step recharge); its id is the request id of the reservation."""

    reservation_id: str
    msisdn: str
    serial: int
    batch_id: str
    tenant_id: str
    currency: str
    face_value_micros: int
    validity_extension_days: int
    reserved_at: datetime
    status: str = RESERVED  # reserved | committed | released
    settled_at: datetime | None = None


@dataclass(frozen=True)
class PinAttempt:
    """One PIN entry: ``redeem`` (credit now) or ``reserve`` (hold the voucher; credit at commit)."""

    event: str
    request_id: str
    msisdn: str
    lookup_hashes: tuple[bytes, ...]  # one per live lookup key; empty when the check digit was wrong
    at: datetime
    moves: MoveTable  # what rules/lifecycle allows for ``event``
    lockout: LockoutPolicy  # rules/lifecycle/recharge_lockout.yaml
    transaction_id: str
    actor: Principal

    def can_see(self, tenant_id: str) -> bool:
        return self.actor.can_see_tenant(tenant_id)


@dataclass(frozen=True)
class ReservationStep:
    """``commit`` (credit the held voucher) or ``release`` (give it back) of one reservation.

    Reservation ids belong to a tenant: ``tenant_id`` names it; empty means the caller's own tenant, or else the
    only tenant the caller can see that has the id (:func:`reservation_named`)."""

    event: str
    reservation_id: str
    at: datetime
    moves: MoveTable
    transaction_id: str
    actor: Principal
    reason: str = ""
    tenant_id: str = ""


class Outcome(str, Enum):
    DONE = "done"  # the voucher moved (and, for redeem and commit, the credit was booked)
    REPLAYED = "replayed"  # the same request again: its stored result, nothing changed
    REQUEST_ID_REUSED = "request_id_reused"  # the id belongs to another subscriber, voucher or kind of request
    NO_SUBSCRIBER = "no_subscriber"  # no live subscriber the caller may act for (not counted)
    NOT_FOUND = "not_found"  # no such reservation for this caller
    AMBIGUOUS = "ambiguous"  # the reservation id is held in several tenants the caller sees: it must name one
    BARRED = "barred"  # a recharge bar holds (not counted)
    WRONG_PIN = "wrong_pin"  # counted: bad check digit, unknown PIN, another tenant's voucher
    REFUSED = "refused"  # the voucher exists but the lifecycle does not let it move (counted for PIN entries)
    ALREADY_YOURS = "already_yours"  # this subscriber used or holds the voucher: not a guess, not counted


@dataclass(frozen=True)
class VoucherFacts:
    """What the caller may learn about the voucher behind a refusal (never the PIN)."""

    serial: int
    state: str
    batch_state: str
    expired: bool
    redeemed_by: str = ""


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    reason: str = ""  # refusal code (PIN_UNKNOWN, VOUCHER_EXPIRED ...) or what a reused id belongs to
    redemption: Redemption | None = None
    reservation: Reservation | None = None
    voucher: VoucherFacts | None = None
    failed_attempts: int = 0
    barred_until: datetime | None = None


@dataclass(frozen=True)
class AttemptSnapshot:
    """Everything a PIN entry reads, taken under the store's write lock (SQLite, the test store)."""

    # the ledger row and the reservation with the request id in the subscriber's tenant (ids are per tenant)
    earlier_redemption: Redemption | None
    earlier_reservation: Reservation | None
    subscriber_tenant: str | None  # the live subscriber's tenant; None when there is none
    guard: RechargeGuard
    voucher: Voucher | None
    batch_state: str  # "" when there is no voucher
    validity_extension_days: int
    balance: tuple[int, datetime] | None  # (balance micros, valid until) in the voucher's currency


@dataclass(frozen=True)
class StepSnapshot:
    reservation: Reservation | None
    earlier_redemption: Redemption | None  # the ledger row of a commit already made (in the reservation's tenant)
    voucher: Voucher | None
    batch_state: str
    balance: tuple[int, datetime] | None
    ambiguous: bool = False  # several tenants the caller sees hold the id and the step named none (reservation_named)


def reservation_named(actor: Principal, tenant_id: str, candidates: Sequence[Reservation]) -> tuple[Reservation | None, bool]:
    """The reservation a caller names by its id (``candidates``: that id in every tenant): (reservation, ambiguous).

    The one in ``tenant_id`` when named, else in the caller's own tenant, else the only one the caller can see;
    several and none named is ambiguous (an operator acting for its MVNOs names the tenant)."""
    seen = [r for r in candidates if actor.can_see_tenant(r.tenant_id) and (not tenant_id or r.tenant_id == tenant_id)]
    own = [r for r in seen if r.tenant_id == actor.tenant_id]
    if own:
        return own[0], False
    if len(seen) == 1:
        return seen[0], False
    return None, len(seen) > 1


@dataclass(frozen=True)
class VoucherMove:
    """One voucher changes state; ``holder`` / ``holder_request`` record who redeemed or holds it ("" clears)."""

    serial: int
    from_state: str
    to_state: str
    holder: str
    holder_request: str
    at: datetime


@dataclass(frozen=True)
class Settlement:
    """What to write for one attempt or step; the store writes all of it or nothing.

    ``ledger`` is a credit: the voucher move in ``ledger_move``, the balance and validity in the
    row itself (final values), and a reset of the subscriber's failure counter.
    """

    result: AttemptResult
    guard: RechargeGuard | None = None  # the counter to store (None: unchanged)
    move: VoucherMove | None = None  # a move without credit (reserve, release)
    ledger: Redemption | None = None
    ledger_move: VoucherMove | None = None
    ledger_tenant: str = ""
    reservation: Reservation | None = None  # to insert (reserve) or to store with its new status
    audit: audit.AuditEntry | None = None


def _facts(voucher: Voucher, batch_state: str, at: datetime) -> VoucherFacts:
    return VoucherFacts(voucher.serial, voucher.state.value, batch_state, voucher.expires_at <= at, voucher.redeemed_by)


def credit(request_id: str, msisdn: str, voucher: Voucher | Reservation, extension_days: int,
           balance: tuple[int, datetime] | None, at: datetime, transaction_id: str) -> Redemption:
    """The ledger row of one credit: the face value on top of the balance, the validity extended from
    whichever is later, the current validity or now."""
    face = voucher.face_value_micros
    current, valid_until = balance if balance is not None else (0, at)
    return Redemption(request_id, msisdn, voucher.serial, voucher.batch_id, voucher.currency, face, current + face,
                      max(valid_until, at) + timedelta(days=extension_days), at, transaction_id)


def _lockout(guard: RechargeGuard, at: datetime, outcome: str, policy: LockoutPolicy) -> RechargeGuard:
    d = decide_recharge_lockout(guard.failed_attempts, guard.barred_until, at, outcome, policy)
    last = at if outcome == "failure" else guard.last_failure_at
    return replace(guard, failed_attempts=d.failed_count, barred_until=d.barred_until, last_failure_at=last)


def _counted(a: PinAttempt, snap: AttemptSnapshot, tenant: str, outcome: Outcome, reason: str,
             facts: VoucherFacts | None) -> Settlement:
    guard = _lockout(snap.guard, a.at, "failure", a.lockout)
    after: dict[str, object] = {"reason": reason, "failed_attempts": guard.failed_attempts}
    if guard.barred_until is not None:
        after["barred_until"] = guard.barred_until
    entry = audit.entry(a.actor, a.at, f"voucher.{a.event}_failed", "subscriber", a.msisdn, {}, after, tenant, a.request_id)
    return Settlement(AttemptResult(outcome, reason, voucher=facts, failed_attempts=guard.failed_attempts,
                                    barred_until=guard.barred_until), guard=guard, audit=entry)


def settle_attempt(a: PinAttempt, snap: AttemptSnapshot) -> Settlement:
    """The reference decision for one PIN entry (see the module doc for the order)."""
    # the tenant first: the request ids looked up below are the subscriber's tenant's
    tenant = snap.subscriber_tenant
    if tenant is None or not a.can_see(tenant):
        return Settlement(AttemptResult(Outcome.NO_SUBSCRIBER))
    earlier = snap.earlier_redemption if a.event == "redeem" else snap.earlier_reservation
    other = snap.earlier_reservation if a.event == "redeem" else snap.earlier_redemption
    if earlier is not None or other is not None:
        if earlier is None:
            return Settlement(AttemptResult(Outcome.REQUEST_ID_REUSED, "request"))
        if earlier.msisdn != a.msisdn:
            return Settlement(AttemptResult(Outcome.REQUEST_ID_REUSED, "subscriber"))
        if snap.voucher is None or snap.voucher.serial != earlier.serial:
            # the same id and subscriber with another PIN: the answer tells whether the PIN is the earlier voucher's, so
            # it is a guess like any other -- barred while the bar holds, counted otherwise (else replaying one id would
            # probe PINs without ever reaching the lockout)
            check = decide_recharge_lockout(snap.guard.failed_attempts, snap.guard.barred_until, a.at, "check", a.lockout)
            if check.barred:
                return Settlement(AttemptResult(Outcome.BARRED, failed_attempts=check.failed_count, barred_until=check.barred_until))
            return _counted(a, snap, tenant, Outcome.REQUEST_ID_REUSED, REPLAY_OTHER_PIN, None)
        if isinstance(earlier, Redemption):
            return Settlement(AttemptResult(Outcome.REPLAYED, redemption=earlier))
        return Settlement(AttemptResult(Outcome.REPLAYED, reservation=earlier))
    check = decide_recharge_lockout(snap.guard.failed_attempts, snap.guard.barred_until, a.at, "check", a.lockout)
    if check.barred:
        return Settlement(AttemptResult(Outcome.BARRED, failed_attempts=check.failed_count, barred_until=check.barred_until))
    if not a.lookup_hashes:
        return _counted(a, snap, tenant, Outcome.WRONG_PIN, PIN_CHECK_DIGIT, None)
    v = snap.voucher
    # another tenant's voucher looks exactly like an unknown PIN
    if v is None or v.owner != tenant or not a.can_see(v.owner):
        return _counted(a, snap, tenant, Outcome.WRONG_PIN, PIN_UNKNOWN, None)
    facts = _facts(v, snap.batch_state, a.at)
    move = a.moves.find(v.state, snap.batch_state, facts.expired)
    if move is None:
        if v.redeemed_by == a.msisdn:
            return Settlement(AttemptResult(Outcome.ALREADY_YOURS, a.moves.refusal(v.state, snap.batch_state, facts.expired),
                                            voucher=facts, failed_attempts=snap.guard.failed_attempts,
                                            barred_until=snap.guard.barred_until))
        return _counted(a, snap, tenant, Outcome.REFUSED, a.moves.refusal(v.state, snap.batch_state, facts.expired), facts)
    reset = _lockout(snap.guard, a.at, "success", a.lockout)
    guard = reset if reset != snap.guard else None
    change = VoucherMove(v.serial, v.state.value, move.to_state.value, a.msisdn, a.request_id, a.at)
    if a.event == "redeem":
        ledger = credit(a.request_id, a.msisdn, v, snap.validity_extension_days, snap.balance, a.at, a.transaction_id)
        entry = audit.entry(a.actor, a.at, "voucher.redeem", "voucher", str(v.serial), {"state": v.state.value},
                            {"state": move.to_state.value, "msisdn": a.msisdn, "credited_micros": ledger.credited_micros,
                             "currency": ledger.currency, "transaction_id": ledger.transaction_id}, v.owner, a.request_id)
        return Settlement(AttemptResult(Outcome.DONE, redemption=ledger), guard=guard, ledger=ledger, ledger_move=change,
                          ledger_tenant=v.owner, audit=entry)
    held = Reservation(a.request_id, a.msisdn, v.serial, v.batch_id, v.owner, v.currency, v.face_value_micros,
                       snap.validity_extension_days, a.at)
    entry = audit.entry(a.actor, a.at, f"voucher.{a.event}", "voucher", str(v.serial), {"state": v.state.value},
                        {"state": move.to_state.value, "msisdn": a.msisdn}, v.owner, a.request_id)
    return Settlement(AttemptResult(Outcome.DONE, reservation=held), guard=guard, move=change, reservation=held, audit=entry)


def settle_step(s: ReservationStep, snap: StepSnapshot) -> Settlement:
    """The reference decision for committing or releasing a reservation."""
    if snap.ambiguous:
        return Settlement(AttemptResult(Outcome.AMBIGUOUS))
    held = snap.reservation
    if held is None or not s.actor.can_see_tenant(held.tenant_id) or (s.tenant_id and held.tenant_id != s.tenant_id):
        return Settlement(AttemptResult(Outcome.NOT_FOUND))
    done = COMMITTED if s.event == "commit" else RELEASED
    if held.status == done:
        return Settlement(AttemptResult(Outcome.REPLAYED, redemption=snap.earlier_redemption, reservation=held))
    v = snap.voucher
    if held.status != RESERVED or v is None:
        return Settlement(AttemptResult(Outcome.REFUSED, f"reservation is {held.status}", reservation=held))
    facts = _facts(v, snap.batch_state, s.at)
    move = s.moves.find(v.state, snap.batch_state, facts.expired)
    if move is None:
        return Settlement(AttemptResult(Outcome.REFUSED, s.moves.refusal(v.state, snap.batch_state, facts.expired),
                                        reservation=held, voucher=facts))
    settled = replace(held, status=done, settled_at=s.at)
    if s.event == "commit":
        change = VoucherMove(v.serial, v.state.value, move.to_state.value, held.msisdn, held.reservation_id, s.at)
        ledger = credit(held.reservation_id, held.msisdn, held, held.validity_extension_days, snap.balance, s.at, s.transaction_id)
        entry = audit.entry(s.actor, s.at, "voucher.commit", "voucher", str(v.serial), {"state": v.state.value},
                            {"state": move.to_state.value, "msisdn": held.msisdn, "credited_micros": ledger.credited_micros,
                             "currency": ledger.currency, "transaction_id": ledger.transaction_id}, held.tenant_id,
                            held.reservation_id)
        return Settlement(AttemptResult(Outcome.DONE, redemption=ledger, reservation=settled), ledger=ledger, ledger_move=change,
                          ledger_tenant=held.tenant_id, reservation=settled, audit=entry)
    change = VoucherMove(v.serial, v.state.value, move.to_state.value, "", "", s.at)
    after: dict[str, object] = {"state": move.to_state.value, "msisdn": ""}
    if s.reason:
        after["reason"] = s.reason
    entry = audit.entry(s.actor, s.at, "voucher.release", "voucher", str(v.serial), {"state": v.state.value, "msisdn": held.msisdn},
                        after, held.tenant_id, held.reservation_id)
    return Settlement(AttemptResult(Outcome.DONE, reservation=settled), move=change, reservation=settled, audit=entry)
