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
from engine.tenancy import Tenant, TenantKind, TenantStatus
from engine.vouchers.ports import RowReplacer, VoucherRepository, VoucherSelection, VoucherUnitOfWork
from engine.vouchers.redemption import (
    AttemptResult,
    AttemptSnapshot,
    PinAttempt,
    RechargeGuard,
    Redemption,
    Reservation,
    ReservationStep,
    Settlement,
    StepSnapshot,
    reservation_named,
    settle_attempt,
    settle_step,
)


@dataclass
class StoreState:
    batches: dict[str, VoucherBatch] = field(default_factory=dict)
    vouchers: dict[int, Voucher] = field(default_factory=dict)
    by_hash: dict[bytes, int] = field(default_factory=dict)
    redemptions: dict[tuple[str, str], Redemption] = field(default_factory=dict)  # by (tenant, request id)
    reservations: dict[tuple[str, str], Reservation] = field(default_factory=dict)  # by (tenant, reservation id)
    guards: dict[str, RechargeGuard] = field(default_factory=dict)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # (msisdn, currency) -> micros
    valid_until: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (msisdn, currency), as the SQL store
    audit: list[AuditEntry] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)

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

    def set_batch_state(self, batch_id: str, expected: BatchState, new: BatchState, others_state: str = "",
                        expected_others: str | None = None) -> bool:
        batch = self.s.batches.get(batch_id)
        if batch is None or batch.state is not expected or expected_others not in (None, batch.others_state):
            return False
        self.s.batches[batch_id] = replace(batch, state=new, others_state=others_state)
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

    def get_voucher(self, serial: int, for_update: bool = False) -> Voucher | None:
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

    def owners(self, selection: VoucherSelection) -> list[str]:
        return sorted({v.owner for v in self.s.vouchers.values() if selection.matches(v)})

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

    def get_redemption(self, tenant_id: str, request_id: str) -> Redemption | None:
        return self.s.redemptions.get((tenant_id, request_id))

    def reservations_with_id(self, reservation_id: str) -> list[Reservation]:
        return sorted((r for (_, rid), r in self.s.reservations.items() if rid == reservation_id), key=lambda r: r.tenant_id)

    def _balance(self, msisdn: str, currency: str) -> tuple[int, datetime] | None:
        key = (msisdn, currency)
        return (self.s.balances[key], self.s.valid_until[key]) if key in self.s.balances else None

    def attempt_pin(self, attempt: PinAttempt) -> AttemptResult:
        # the whole unit of work holds the store's lock: read, decide, write, like SQLite's single writer
        voucher = self.find_by_lookup_hash(attempt.lookup_hashes) if attempt.lookup_hashes else None
        batch = self.s.batches.get(voucher.batch_id) if voucher else None
        subscriber = self.s.subscribers.get(attempt.msisdn)
        tenant = subscriber.tenant_id if subscriber else ""
        key = (tenant, attempt.request_id)
        snap = AttemptSnapshot(self.s.redemptions.get(key), self.s.reservations.get(key), subscriber.tenant_id if subscriber else None, self.get_recharge_guard(attempt.msisdn), voucher,
                               batch.state.value if batch else "", batch.recharge_extension_days if batch else 0,
                               self._balance(attempt.msisdn, voucher.currency) if voucher else None)
        plan = settle_attempt(attempt, snap)
        self._write(plan)
        return plan.result

    def step_reservation(self, step: ReservationStep) -> AttemptResult:
        held, ambiguous = reservation_named(step.actor, step.tenant_id, self.reservations_with_id(step.reservation_id))
        voucher = self.s.vouchers.get(held.serial) if held else None
        batch = self.s.batches.get(voucher.batch_id) if voucher else None
        snap = StepSnapshot(held, self.s.redemptions.get((held.tenant_id, held.reservation_id)) if held else None, voucher,
                            batch.state.value if batch else "", self._balance(held.msisdn, held.currency) if held else None, ambiguous)
        plan = settle_step(step, snap)
        self._write(plan)
        return plan.result

    def _write(self, plan: Settlement) -> None:
        if plan.guard is not None:
            self.s.guards[plan.guard.msisdn] = plan.guard
        for move in (plan.move, plan.ledger_move):
            if move is not None:
                v = self.s.vouchers[move.serial]
                assert v.state.value == move.from_state
                self.s.vouchers[move.serial] = replace(v, state=VoucherState(move.to_state), redeemed_by=move.holder,
                                                       redemption_request_id=move.holder_request,
                                                       redeemed_at=move.at if move.holder else None, updated_at=move.at)
        if plan.ledger is not None:
            led = plan.ledger
            self.s.redemptions[(plan.ledger_tenant, led.request_id)] = led
            self.s.balances[(led.msisdn, led.currency)] = led.balance_micros
            self.s.valid_until[(led.msisdn, led.currency)] = led.valid_until
        if plan.reservation is not None:
            self.s.reservations[(plan.reservation.tenant_id, plan.reservation.reservation_id)] = plan.reservation
        if plan.audit is not None:
            FakeAuditLog(self.s).append(plan.audit)

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


class FakeTenants:
    def __init__(self, state: StoreState) -> None:
        self.s = state

    def get(self, tenant_id: str) -> Tenant | None:
        return self.s.tenants.get(tenant_id)

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"FakeTenants.{name} is not needed by the voucher domain")


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
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.state.tenants["mno"] = Tenant("mno", "Operator", TenantKind.MNO, TenantStatus.ACTIVE, "", "EUR", at, at)
        for mvno in ("mvno-alpha", "mvno-beta"):
            self.state.tenants[mvno] = Tenant(mvno, mvno, TenantKind.MVNO, TenantStatus.ACTIVE, "mno", "EUR", at, at)

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
        self.tenants = FakeTenants(work)
        self.audit = FakeAuditLog(work)

    def __exit__(self, *exc: Any) -> None:
        self._store.lock.release()

    def commit(self) -> None:
        self._store.state = self._work
        self._switch(self._work.clone())

    def rollback(self) -> None:
        self._switch(self._store.state.clone())


class RecordingLifecycle:
    """Wraps the lifecycle of rules/lifecycle and records every decision asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.models = inner.models
        self.calls: list[tuple[str, str, str, dict[str, Any], tuple[str, ...]]] = []

    def decide(self, entity_kind: str, current_state: str, event: str, facts: Mapping[str, Any],
               privileges: Iterable[str] = ()) -> Any:
        self.calls.append((entity_kind, current_state, event, dict(facts), tuple(privileges)))
        return self.inner.decide(entity_kind, current_state, event, facts, privileges)


class PlainSealer:
    """Stands in for the OpenPGP adapter in engine tests: writes the clear text it is given after a marker line,
    so a test reads back exactly what the recipient would decrypt.  ``refuse`` names a key field to reject."""

    MARKER = b"-- sealed for tests --\n"

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.sealed = 0

    def check(self) -> Any:
        from engine.errors import InvalidArgument
        from engine.vouchers.distribution import SealReport

        if self.refuse:
            raise InvalidArgument.field(self.refuse, "not a usable OpenPGP key")
        return SealReport("RECIPIENT-FPR", "SIGNER-FPR")

    def seal(self, clear: Iterable[bytes], out: Any) -> Any:
        report = self.check()
        out.write(self.MARKER)
        for block in clear:
            out.write(block)
        self.sealed += 1
        return report

    @classmethod
    def opened(cls, data: bytes) -> str:
        assert data.startswith(cls.MARKER)
        return data[len(cls.MARKER):].decode("utf-8")
