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

from engine.ports import AuditLog, SubscriberRepository
from engine.vouchers.crypto import WrappedDataKey
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherRow, VoucherState


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
        )


@dataclass(frozen=True)
class RedemptionCommand:
    """One recharge, applied by :meth:`VoucherRepository.redeem_atomically` all-or-nothing."""

    request_id: str
    msisdn: str
    serial: int
    batch_id: str
    currency: str
    credit_micros: int
    validity_extension_days: int
    at: datetime
    transaction_id: str


@dataclass(frozen=True)
class Redemption:
    """The stored result of a recharge; the same ``request_id`` always returns it again."""

    request_id: str
    msisdn: str
    serial: int
    batch_id: str
    currency: str
    credited_micros: int
    balance_micros: int  # the subscriber's balance in that currency after the credit
    valid_until: datetime  # the subscriber's validity after the extension
    redeemed_at: datetime
    transaction_id: str


@dataclass(frozen=True)
class RechargeGuard:
    """Per-subscriber brute-force state: consecutive failed PINs and a bar."""

    msisdn: str
    failed_attempts: int = 0
    barred_until: datetime | None = None
    last_failure_at: datetime | None = None


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
    def set_batch_state(self, batch_id: str, expected: BatchState, new: BatchState) -> bool:
        """Conditional update; False when the batch is no longer in ``expected``."""

    @abstractmethod
    def set_data_key(self, batch_id: str, wrapped: WrappedDataKey | None) -> None:
        """Store a re-wrapped data key, or ``None`` to destroy it (crypto-shredding)."""

    @abstractmethod
    def batches_with_master_version_below(self, version: int, limit: int) -> list[VoucherBatch]: ...

    # --- vouchers --------------------------------------------------------
    @abstractmethod
    def get_voucher(self, serial: int) -> Voucher | None: ...

    @abstractmethod
    def find_by_lookup_hash(self, hashes: Sequence[bytes]) -> Voucher | None:
        """The voucher whose lookup hash is one of ``hashes`` (one per live lookup key version)."""

    @abstractmethod
    def stream_vouchers(self, selection: VoucherSelection, chunk_size: int) -> Iterator[list[Voucher]]:
        """Vouchers in serial order, ``chunk_size`` at a time."""

    @abstractmethod
    def count_by_state(self, selection: VoucherSelection) -> dict[VoucherState, int]: ...

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
    def get_redemption(self, request_id: str) -> Redemption | None: ...

    @abstractmethod
    def redeem_atomically(self, cmd: RedemptionCommand) -> Redemption | None:
        """In the current transaction: move the voucher ``active -> used`` if (and only if) it is
        still active in an active batch and unexpired at ``cmd.at``, credit the subscriber's balance
        in ``cmd.currency``, extend the validity, record the redemption under ``request_id``.
        Returns None (changing nothing) when the conditional update matches no row.
        A concurrent duplicate ``request_id`` raises ``AlreadyExists``."""

    # --- brute-force guard ------------------------------------------------
    @abstractmethod
    def get_recharge_guard(self, msisdn: str) -> RechargeGuard: ...

    @abstractmethod
    def save_recharge_guard(self, guard: RechargeGuard) -> None: ...


class VoucherUnitOfWork(Protocol):
    vouchers: VoucherRepository
    subscribers: SubscriberRepository  # recharge credits a live subscriber of the voucher's tenant
    audit: AuditLog

    def __enter__(self) -> "VoucherUnitOfWork": ...
    def __exit__(self, *exc: Any) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class VoucherUnitOfWorkFactory(Protocol):
    def __call__(self) -> VoucherUnitOfWork: ...
