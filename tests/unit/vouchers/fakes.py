"""In-memory implementations of the voucher ports, with real transaction semantics.

A unit of work holds one global lock from enter to exit (like SQLite's single
writer) and works on a copy of the state; commit swaps the copy in, anything
else throws it away -- so "complete or absent" is testable without a database.
"""

from __future__ import annotations

import threading
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from engine.audit import AuditEntry
from engine.errors import AlreadyExists
from engine.ports import AuditFilter, AuditLog, SubscriberRepository
from engine.subscribers import PaymentType, Subscriber, SubscriberStatus
from engine.vouchers.crypto import WrappedDataKey, split_sealed
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherRow, VoucherState
from engine.vouchers.ports import (
    RechargeGuard,
    Redemption,
    RedemptionCommand,
    RowReplacer,
    VoucherRepository,
    VoucherSelection,
    VoucherUnitOfWork,
)


@dataclass
class StoreState:
    batches: dict[str, VoucherBatch] = field(default_factory=dict)
    vouchers: dict[int, Voucher] = field(default_factory=dict)
    by_hash: dict[bytes, int] = field(default_factory=dict)
    redemptions: dict[str, Redemption] = field(default_factory=dict)
    guards: dict[str, RechargeGuard] = field(default_factory=dict)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # (msisdn, currency) -> micros
    valid_until: dict[str, datetime] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)

    def clone(self) -> "StoreState":
        return StoreState(*(copy(getattr(self, f)) for f in self.__dataclass_fields__))


class FakeVoucherRepository(VoucherRepository):
    def __init__(self, state: StoreState) -> None:
        self.s = state
        self.fail_after_rows: int | None = None  # simulate a crash mid-insert

    def next_serial(self) -> int:
        return max((b.last_serial for b in self.s.batches.values()), default=0) + 1

    def create_batch_atomically(self, batch: VoucherBatch, chunks: Iterable[Sequence[VoucherRow]], replace_rows: RowReplacer) -> int:
        if batch.batch_id in self.s.batches:
            raise AlreadyExists("voucher batch", batch.batch_id)
        if any(b.first_serial <= batch.last_serial and batch.first_serial <= b.last_serial for b in self.s.batches.values()):
            raise AlreadyExists("voucher serials", f"{batch.first_serial}-{batch.last_serial}")
        self.s.batches[batch.batch_id] = batch
        inserted = 0
        for chunk in chunks:
            pending = list(chunk)
            while pending:
                collided = []
                for row in pending:
                    if self.fail_after_rows is not None and inserted >= self.fail_after_rows:
                        raise RuntimeError("simulated crash during bulk insert")
                    _, serial, lookup_hash, sealed = row
                    nonce, ciphertext = split_sealed(sealed)
                    if lookup_hash in self.s.by_hash:
                        collided.append(serial)  # ON CONFLICT DO NOTHING, then ask for new PINs
                        continue
                    self.s.by_hash[lookup_hash] = serial
                    self.s.vouchers[serial] = Voucher(batch.batch_id, serial, VoucherState.GENERATED, batch.currency,
                                                      batch.face_value_micros, batch.expires_at, batch.owner, batch.dealer,
                                                      nonce, ciphertext, updated_at=batch.created_at)
                    inserted += 1
                pending = replace_rows(collided) if collided else []
        return inserted

    def get_batch(self, batch_id: str) -> VoucherBatch | None:
        return self.s.batches.get(batch_id)

    def list_batches(self, owners: frozenset[str] | None, after: str | None, limit: int) -> list[VoucherBatch]:
        items = sorted((b for b in self.s.batches.values() if owners is None or b.owner in owners), key=lambda b: b.batch_id)
        return [b for b in items if after is None or b.batch_id > after][:limit]

    def set_batch_state(self, batch_id: str, expected: BatchState, new: BatchState) -> bool:
        batch = self.s.batches.get(batch_id)
        if batch is None or batch.state is not expected:
            return False
        self.s.batches[batch_id] = replace(batch, state=new)
        return True

    def set_data_key(self, batch_id: str, wrapped: WrappedDataKey | None) -> None:
        batch = self.s.batches[batch_id]
        if wrapped is None:
            self.s.batches[batch_id] = replace(batch, wrapped_data_key=None)
        else:
            self.s.batches[batch_id] = replace(batch, wrapped_data_key=wrapped.wrapped, key_wrap=wrapped.wrap_algorithm,
                                               master_key_version=wrapped.master_version)

    def batches_with_master_version_below(self, version: int, limit: int) -> list[VoucherBatch]:
        return sorted((b for b in self.s.batches.values() if b.master_key_version < version and b.wrapped_data_key is not None),
                      key=lambda b: b.batch_id)[:limit]

    def get_voucher(self, serial: int) -> Voucher | None:
        return self.s.vouchers.get(serial)

    def find_by_lookup_hash(self, hashes: Sequence[bytes]) -> Voucher | None:
        for h in hashes:
            if h in self.s.by_hash:
                return self.s.vouchers[self.s.by_hash[h]]
        return None

    def stream_vouchers(self, selection: VoucherSelection, chunk_size: int) -> Iterator[list[Voucher]]:
        chosen = [v for _, v in sorted(self.s.vouchers.items()) if selection.matches(v)]
        for i in range(0, len(chosen), chunk_size):
            yield chosen[i:i + chunk_size]

    def count_by_state(self, selection: VoucherSelection) -> dict[VoucherState, int]:
        counts: dict[VoucherState, int] = {}
        for v in self.s.vouchers.values():
            if selection.matches(v):
                counts[v.state] = counts.get(v.state, 0) + 1
        return counts

    def batch_ids(self, selection: VoucherSelection) -> list[str]:
        return sorted({v.batch_id for v in self.s.vouchers.values() if selection.matches(v)})

    def transition_vouchers(self, selection: VoucherSelection, from_state: VoucherState, to_state: VoucherState, at: datetime) -> int:
        changed = 0
        for serial, v in list(self.s.vouchers.items()):
            if v.state is from_state and selection.matches(v):
                if to_state is VoucherState.PURGED:  # purge forgets the PIN
                    self.s.by_hash = {h: s for h, s in self.s.by_hash.items() if s != serial}
                    v = replace(v, nonce=b"", ciphertext=b"")
                self.s.vouchers[serial] = replace(v, state=to_state, updated_at=at)
                changed += 1
        return changed

    def update_voucher(self, voucher: Voucher, expected_state: VoucherState) -> bool:
        current = self.s.vouchers.get(voucher.serial)
        if current is None or current.state is not expected_state:
            return False
        self.s.vouchers[voucher.serial] = replace(current, expires_at=voucher.expires_at, face_value_micros=voucher.face_value_micros,
                                                  owner=voucher.owner, dealer=voucher.dealer, updated_at=voucher.updated_at)
        return True

    def get_redemption(self, request_id: str) -> Redemption | None:
        return self.s.redemptions.get(request_id)

    def redeem_atomically(self, cmd: RedemptionCommand) -> Redemption | None:
        if cmd.request_id in self.s.redemptions:
            raise AlreadyExists("redemption", cmd.request_id)
        v = self.s.vouchers.get(cmd.serial)
        batch = self.s.batches.get(cmd.batch_id)
        if v is None or v.state is not VoucherState.ACTIVE or batch is None or batch.state is not BatchState.ACTIVE or v.expires_at <= cmd.at:
            return None
        self.s.vouchers[cmd.serial] = replace(v, state=VoucherState.USED, redeemed_by=cmd.msisdn, redeemed_at=cmd.at,
                                              redemption_request_id=cmd.request_id, updated_at=cmd.at)
        key = (cmd.msisdn, cmd.currency)
        self.s.balances[key] = self.s.balances.get(key, 0) + cmd.credit_micros
        valid = max(self.s.valid_until.get(cmd.msisdn, cmd.at), cmd.at) + timedelta(days=cmd.validity_extension_days)
        self.s.valid_until[cmd.msisdn] = valid
        result = Redemption(cmd.request_id, cmd.msisdn, cmd.serial, cmd.batch_id, cmd.currency, cmd.credit_micros,
                            self.s.balances[key], valid, cmd.at, cmd.transaction_id)
        self.s.redemptions[cmd.request_id] = result
        return result

    def get_recharge_guard(self, msisdn: str) -> RechargeGuard:
        return self.s.guards.get(msisdn) or RechargeGuard(msisdn)

    def save_recharge_guard(self, guard: RechargeGuard) -> None:
        self.s.guards[guard.msisdn] = guard


class FakeSubscribers:
    """Only what recharge needs: live subscribers by MSISDN."""

    def __init__(self, state: StoreState) -> None:
        self.s = state

    def get_live_by_msisdn(self, msisdn: str) -> Subscriber | None:
        return self.s.subscribers.get(msisdn)

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"FakeSubscribers.{name} is not needed by the voucher domain")


class FakeAuditLog:
    def __init__(self, state: StoreState) -> None:
        self.s = state

    def append(self, entry: AuditEntry) -> None:
        self.s.audit.append(replace(entry, sequence=len(self.s.audit) + 1))

    def list(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditEntry]:
        return [e for e in self.s.audit if (after is None or e.sequence > after)][:limit]


class FakeVoucherStore:
    """The whole in-memory database; ``store()`` opens a unit of work (call it like a factory)."""

    def __init__(self) -> None:
        self.state = StoreState()
        self.lock = threading.RLock()
        self.fail_after_rows: int | None = None

    def __call__(self) -> VoucherUnitOfWork:
        return FakeUnitOfWork(self)

    def add_subscriber(self, msisdn: str, tenant_id: str = "mno") -> Subscriber:
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        sub = Subscriber(f"sub_{msisdn}", tenant_id, msisdn, "26201" + msisdn[-10:].rjust(10, "0"), "ACC-1", PaymentType.PREPAID,
                         SubscriberStatus.ACTIVE, "TP_PREPAID", at, at, at)
        self.state.subscribers[msisdn] = sub
        return sub


class FakeUnitOfWork:
    vouchers: VoucherRepository
    subscribers: SubscriberRepository
    audit: AuditLog

    def __init__(self, store: FakeVoucherStore) -> None:
        self._store = store

    def __enter__(self) -> "FakeUnitOfWork":
        self._store.lock.acquire()
        self._switch(self._store.state.clone())
        return self

    def _switch(self, work: StoreState) -> None:
        self._work = work
        repo = FakeVoucherRepository(work)
        repo.fail_after_rows = self._store.fail_after_rows
        self.vouchers = repo
        self.subscribers = FakeSubscribers(work)  # type: ignore[assignment]
        self.audit = FakeAuditLog(work)

    def __exit__(self, *exc: Any) -> None:
        self._store.lock.release()

    def commit(self) -> None:
        self._store.state = self._work
        self._switch(self._work.clone())

    def rollback(self) -> None:
        self._switch(self._store.state.clone())


class RecordingLifecycle:
    """Wraps a lifecycle (the real rules or the built-in table) and records every decision asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str, dict[str, Any], tuple[str, ...]]] = []

    def decide(self, entity_kind: str, current_state: str, event: str, facts: Mapping[str, Any],
               privileges: Iterable[str] = ()) -> Any:
        self.calls.append((entity_kind, current_state, event, dict(facts), tuple(privileges)))
        return self.inner.decide(entity_kind, current_state, event, facts, privileges)
