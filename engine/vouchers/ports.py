"""What the voucher domain needs from storage; ``store/vouchers.py`` implements it.

Every method runs inside the caller's unit of work (one database transaction):
a use case opens ``with uow_factory() as uow``, calls the repository and the
audit log, and commits once.  Conditional updates (``expected_state``) are how
concurrent requests and replicas avoid double spending: the update matches no
row when another request got there first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from engine.ports import AuditLog, SubscriberRepository, TenantRepository
from engine.vouchers.crypto import WrappedDataKey
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherRow, VoucherState
from engine.vouchers.redemption import AttemptResult, PinAttempt, RechargeGuard, Redemption, Reservation, ReservationStep


@dataclass(frozen=True)
class VoucherSelection:
    """Which vouchers an operation touches: one batch, a serial range, or both (intersection)."""

    batch_id: str = ""
    first_serial: int | None = None
    last_serial: int | None = None
    states: frozenset[VoucherState] | None = None
    expired_by: datetime | None = None  # only vouchers whose expiry is at or before this time (expired then)
    valid_at: datetime | None = None  # only vouchers whose expiry is after this time (still valid then)
    owners: frozenset[str] | None = None  # tenant scope; None = every tenant (operator)
    changed_by: datetime | None = None  # only vouchers last changed at or before this time (stale reservations)

    def matches(self, v: Voucher) -> bool:
        """Reference semantics (the in-memory fake uses it; SQL stores mirror it)."""
        return (
            (not self.batch_id or v.batch_id == self.batch_id)
            and (self.first_serial is None or v.serial >= self.first_serial)
            and (self.last_serial is None or v.serial <= self.last_serial)
            and (self.states is None or v.state in self.states)
            and (self.expired_by is None or v.expires_at <= self.expired_by)
            and (self.valid_at is None or v.expires_at > self.valid_at)
            and (self.owners is None or v.owner in self.owners)
            and (self.changed_by is None or (v.updated_at is not None and v.updated_at <= self.changed_by))
        )


RowReplacer = Callable[[Sequence[int]], list[VoucherRow]]


class VoucherRepository(ABC):
    # --- batches ---------------------------------------------------------
    @abstractmethod
    def next_serial(self) -> int:
        """The first serial number not used by any batch (the serial sequence is operator-wide)."""

    @abstractmethod
    def create_batch_atomically(self, batch: VoucherBatch, chunks: Iterable[Sequence[VoucherRow]], replace_rows: RowReplacer) -> int:
        """Insert the batch and all its rows in the current transaction; returns the row count.

        A row whose lookup hash already exists (another batch holds the same PIN)
        is not inserted; the store calls ``replace_rows(serials)`` for fresh rows with
        those serials and inserts them instead, until none collide.  Raises
        ``AlreadyExists`` when the batch id or a serial is taken.
        """

    @abstractmethod
    def get_batch(self, batch_id: str) -> VoucherBatch | None: ...

    @abstractmethod
    def list_batches(self, owners: frozenset[str] | None, after: str | None, limit: int) -> list[VoucherBatch]: ...

    @abstractmethod
    def set_batch_state(self, batch_id: str, expected: BatchState, new: BatchState, others_state: str = "",
                        expected_others: str | None = None) -> bool:
        """Conditional update; False when the batch is no longer in ``expected`` (nor, given, its ``others_state`` in
        ``expected_others``).  ``others_state``: the state the vouchers of other owners than the batch's see from now on
        ("": ``new``), VoucherBatch.others_state."""

    @abstractmethod
    def set_data_key(self, batch_id: str, wrapped: WrappedDataKey | None) -> None:
        """Store a re-wrapped data key, or ``None`` to destroy it (crypto-shredding)."""

    @abstractmethod
    def batches_with_master_version_below(self, version: int, limit: int) -> list[VoucherBatch]: ...

    # --- vouchers --------------------------------------------------------
    @abstractmethod
    def get_voucher(self, serial: int, for_update: bool = False) -> Voucher | None:
        """``for_update``: read to be written back (an amendment), locked until the unit ends."""

    @abstractmethod
    def find_by_lookup_hash(self, hashes: Sequence[bytes]) -> Voucher | None:
        """The voucher whose lookup hash is one of ``hashes`` (one per live lookup key version)."""

    @abstractmethod
    def stream_vouchers(self, selection: VoucherSelection, chunk_size: int) -> Iterator[list[Voucher]]:
        """Vouchers in serial order, ``chunk_size`` at a time."""

    @abstractmethod
    def count_by_state(self, selection: VoucherSelection) -> dict[VoucherState, int]: ...

    @abstractmethod
    def owners(self, selection: VoucherSelection) -> list[str]:
        """The tenants owning the selected vouchers, sorted."""

    @abstractmethod
    def batch_ids(self, selection: VoucherSelection) -> list[str]:
        """The batches the selected vouchers belong to (sorted)."""

    @abstractmethod
    def transition_vouchers(self, selection: VoucherSelection, from_state: VoucherState, to_state: VoucherState,
                            at: datetime) -> int:
        """``UPDATE ... SET state = to WHERE <selection> AND state = from``; returns rows changed.
        Moving to ``purged`` also forgets the PIN (lookup hash, nonce and ciphertext are cleared)."""

    @abstractmethod
    def update_voucher(self, voucher: Voucher, expected_state: VoucherState) -> bool:
        """Replace the amendable fields of one voucher if it is still in ``expected_state``."""

    # --- redemption ------------------------------------------------------
    @abstractmethod
    def get_redemption(self, tenant_id: str, request_id: str) -> Redemption | None:
        """The ledger row of ``request_id`` in ``tenant_id`` (request ids are per tenant)."""

    @abstractmethod
    def reservations_with_id(self, reservation_id: str) -> list[Reservation]:
        """The reservations with this id, one per tenant that used it
        (:func:`engine.vouchers.redemption.reservation_named` picks the caller's)."""

    @abstractmethod
    def attempt_pin(self, attempt: PinAttempt) -> AttemptResult:
        """One PIN entry (``redeem`` or ``reserve``) as :func:`engine.vouchers.redemption.settle_attempt`
        decides it: idempotency, subscriber, bar, counting, lookup, the lifecycle's move, credit,
        ledger row and audit entry, all in one transaction -- exactly one of N concurrent attempts on one
        voucher wins, and the failure counter never lets more than ``max_failures`` guesses through.

        Call it in a unit of work that does nothing else and commit right after: a store may run it
        as one statement that commits by itself (PostgreSQL: one round trip)."""

    @abstractmethod
    def step_reservation(self, step: ReservationStep) -> AttemptResult:
        """Commit or release one reservation as :func:`engine.vouchers.redemption.settle_step` decides
        (same transaction rules as :meth:`attempt_pin`)."""

    # --- brute-force guard ------------------------------------------------
    @abstractmethod
    def get_recharge_guard(self, msisdn: str) -> RechargeGuard: ...

    @abstractmethod
    def save_recharge_guard(self, guard: RechargeGuard) -> None: ...


class VoucherUnitOfWork(Protocol):
    vouchers: VoucherRepository
    subscribers: SubscriberRepository  # recharge credits a live subscriber of the voucher's tenant
    tenants: TenantRepository  # a voucher's new owner must exist
    audit: AuditLog

    def __enter__(self) -> "VoucherUnitOfWork": ...
    def __exit__(self, *exc: Any) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class VoucherUnitOfWorkFactory(Protocol):
    def __call__(self) -> VoucherUnitOfWork: ...
