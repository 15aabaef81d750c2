"""An in-memory billing store: the same port as store/billing.py, for QA replay of bills and for unit tests.

It keeps the invariants the SQL schema keeps (one claim per account and period, gapless series, each CDR
frozen once, one ledger entry per source) so that a golden folder runs through the product's own bill runs,
credit notes and re-bills.  A unit of work works on a copy and publishes it on commit; units of work that
write hold the store's lock from start to end, so parallel batches of a bill run take turns as SQLite's writers do.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Iterator, Sequence

from engine.audit import AuditEntry
from engine.billing.model import (
    Account,
    AccountStatus,
    Assignment,
    BundleUse,
    DocumentKind,
    Invoice,
    InvoiceState,
    OneOffCharge,
    RatedUsage,
)
from engine.billing.ports import BillRun, InvoiceFilter, LedgerEntry, OutboxEntry, PeriodClaim, PeriodStatus, StoredBill, SubscriberFacts
from engine.billing.usage_blocks import UsageBlock, blocks_from_usage
from engine.errors import AlreadyExists, FailedPrecondition


@dataclass
class BillingData:
    accounts: dict[tuple[str, str], Account] = field(default_factory=dict)
    assignments: list[Assignment] = field(default_factory=list)
    subscribers: dict[str, SubscriberFacts] = field(default_factory=dict)
    ledger_usage: dict[tuple[str, str], RatedUsage] = field(default_factory=dict)   # the rating ledger: (tenant, cdr id)
    frozen: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)   # (tenant, cdr id) -> (invoice, charge)
    charges: dict[str, OneOffCharge] = field(default_factory=dict)
    claims: dict[tuple[str, str, date], PeriodClaim] = field(default_factory=dict)
    series: dict[tuple[str, str], int] = field(default_factory=dict)
    invoices: dict[str, StoredBill] = field(default_factory=dict)
    ledger: dict[tuple[str, str], LedgerEntry] = field(default_factory=dict)
    runs: dict[str, BillRun] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    bundles: list[BundleUse] = field(default_factory=list)
    outbox: dict[tuple[str, str], OutboxEntry] = field(default_factory=dict)     # (tenant, invoice id), unsent
    mailed: dict[tuple[str, str], datetime] = field(default_factory=dict)
    add_ons: dict[str, Any] = field(default_factory=dict)   # purchase id -> engine.billing.addons.AddOnPurchase
    add_on_left: dict[str, int] = field(default_factory=dict)   # msisdn + counter cycle -> units left in it (QA replay's rating)


class _Audit:
    def __init__(self, entries: list[AuditEntry]) -> None:
        self.entries = entries

    def append(self, entry: AuditEntry) -> None:
        self.entries.append(replace(entry, sequence=len(self.entries) + 1))

    def list(self, flt: Any, after: int | None, limit: int) -> list[AuditEntry]:
        return self.entries[:limit]


class _AddOns:
    """engine.billing.addons.AddOnStore in memory."""

    def __init__(self, purchases: dict[str, Any], left: dict[str, int]) -> None:
        self.purchases = purchases
        self.left = left

    def get(self, purchase_id: str) -> Any:
        return self.purchases.get(purchase_id)

    def count_for(self, tenant_id: str, msisdn: str) -> int:
        return sum(1 for p in self.purchases.values() if (p.tenant_id, p.msisdn) == (tenant_id, msisdn))

    def add(self, purchase: Any) -> None:
        if purchase.purchase_id in self.purchases or any((p.tenant_id, p.msisdn, p.cycle) == (purchase.tenant_id, purchase.msisdn, purchase.cycle)
                                                         for p in self.purchases.values()):
            raise AlreadyExists("add-on purchase", purchase.request_id, f"a purchase for {purchase.msisdn} was made at the same time: "
                                                                        f"send the request again")
        self.purchases[purchase.purchase_id] = purchase

    def fees_bought(self, tenant_id: str, account_id: str, subscriber_ids: Any, created_by: str, bill_cycle: str) -> int:
        ids = set(subscriber_ids)
        return sum(p.fee_micros for p in self.purchases.values() if p.tenant_id == tenant_id and p.subscriber_id in ids
                   and (p.account_id, p.created_by, p.bill_cycle) == (account_id, created_by, bill_cycle))

    def refunds_given(self, tenant_id: str, account_id: str, subscriber_ids: Any, cancelled_by: str, since: Any, until: Any) -> int:
        ids = set(subscriber_ids)
        return sum(p.refund_micros for p in self.purchases.values() if p.tenant_id == tenant_id and p.subscriber_id in ids
                   and (p.account_id, p.cancelled_by) == (account_id, cancelled_by) and p.cancel_time is not None
                   and since <= p.cancel_time < until)

    def list_for(self, tenant_id: str, subscriber_id: str, after: list[str] | None, limit: int) -> list[Any]:
        mine = sorted((p for p in self.purchases.values() if (p.tenant_id, p.subscriber_id) == (tenant_id, subscriber_id)),
                      key=lambda p: (p.purchase_time, p.purchase_id))
        if after is not None:
            at = datetime.fromisoformat(after[0])
            mine = [p for p in mine if (p.purchase_time, p.purchase_id) > (at, after[1])]
        return mine[:limit]

    def remaining(self, purchases: list[Any]) -> dict[str, int]:
        return {p.purchase_id: self.left.get(p.msisdn + p.cycle, p.allowance) for p in purchases}

    def cancel(self, purchase: Any) -> bool:
        if self.purchases[purchase.purchase_id].cancel_time is not None:
            return False
        self.purchases[purchase.purchase_id] = purchase
        return True

    def live_monthly(self, tenant_id: str, subscriber_id: str, bundle_id: str, now: datetime) -> list[Any]:
        return sorted((p for p in self.purchases.values() if (p.tenant_id, p.subscriber_id) == (tenant_id, subscriber_id)
                       and bundle_id in ("", p.bundle_id) and p.monthly and p.valid_until > now), key=lambda p: p.purchase_time)


class MemoryBillingUnitOfWork:
    def __init__(self, store: "MemoryBillingStore", read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only

    def __enter__(self) -> "MemoryBillingUnitOfWork":
        if not self._read_only:
            self._store.writer.acquire()
        self.d: BillingData = copy.deepcopy(self._store.data)
        self.audit = _Audit(self.d.audit)
        self.add_ons = _AddOns(self.d.add_ons, self.d.add_on_left)
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._read_only:
            self._store.writer.release()

    def commit(self) -> None:
        self._store.data = self.d

    # accounts and subscribers
    def get_account(self, tenant_id: str, account_id: str, lock: bool = False) -> Account | None:   # writers are serialised
        return self.d.accounts.get((tenant_id, account_id))

    def add_account(self, account: Account) -> None:
        if (account.tenant_id, account.account_id) in self.d.accounts:
            raise AlreadyExists("account", account.account_id)
        self.d.accounts[(account.tenant_id, account.account_id)] = account

    def update_account(self, account: Account) -> None:
        self.d.accounts[(account.tenant_id, account.account_id)] = account

    def close_account(self, tenant_id: str, account_id: str, when: datetime) -> bool:
        a = self.d.accounts.get((tenant_id, account_id))
        if a is None or a.status not in (AccountStatus.ACTIVE, AccountStatus.CLOSING):
            return False
        self.d.accounts[(tenant_id, account_id)] = replace(a, status=AccountStatus.CLOSED, close_time=when, update_time=when)
        return True

    def list_accounts(self, tenant_ids: set[str] | None, after: Any, limit: int) -> list[Account]:
        items = sorted(self.d.accounts.values(), key=lambda a: (a.tenant_id, a.account_id))
        items = [a for a in items if (tenant_ids is None or a.tenant_id in tenant_ids)
                 and (after is None or [a.tenant_id, a.account_id] > list(after))]
        return items[:limit]

    def active_accounts(self, tenant_id: str, account_ids: Sequence[str] | None) -> list[Account]:
        return sorted((a for (t, i), a in self.d.accounts.items() if t == tenant_id and a.status is AccountStatus.ACTIVE
                       and (account_ids is None or i in account_ids)), key=lambda a: a.account_id)

    def assignments(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, list[Assignment]]:
        out: dict[str, list[Assignment]] = defaultdict(list)
        for a in sorted(self.d.assignments, key=lambda a: a.valid_from):
            if a.tenant_id == tenant_id and a.account_id in account_ids:
                out[a.account_id].append(a)
        return dict(out)

    def open_assignment(self, tenant_id: str, subscriber_id: str) -> Assignment | None:
        return next((a for a in self.d.assignments if a.tenant_id == tenant_id and a.subscriber_id == subscriber_id and a.valid_to is None),
                    None)

    def add_assignment(self, assignment: Assignment) -> None:
        if assignment.valid_to is None and self.open_assignment(assignment.tenant_id, assignment.subscriber_id) is not None:
            raise FailedPrecondition("ASSIGNMENT_CHANGED", f"subscriber {assignment.subscriber_id} has an open assignment",
                                     assignment.subscriber_id)
        self.d.assignments.append(assignment)

    def end_assignment(self, assignment: Assignment, valid_to: datetime) -> None:
        self.d.assignments = [replace(a, valid_to=valid_to) if a == assignment else a for a in self.d.assignments]

    def subscriber_facts(self, tenant_id: str, subscriber_ids: Sequence[str]) -> dict[str, SubscriberFacts]:
        out = {s: f for s, f in self.d.subscribers.items() if s in subscriber_ids and f.tenant_id == tenant_id}
        for p in sorted(self.d.add_ons.values(), key=lambda p: (p.purchase_time, p.purchase_id)):   # as store/billing.py reads them
            if p.monthly and p.subscriber_id in out and p.tenant_id == tenant_id:
                f = out[p.subscriber_id]
                out[p.subscriber_id] = replace(f, add_ons=f.add_ons + ((p.bundle_id, p.valid_from, p.ends),))
        return out

    def subscriber(self, subscriber_id: str, lock: bool = False) -> SubscriberFacts | None:   # writers are serialised
        return self.d.subscribers.get(subscriber_id)

    # usage
    def unbilled_usage(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime) -> list[RatedUsage]:
        wanted = set(msisdns)
        return [u for (t, c), u in self.d.ledger_usage.items() if t == tenant_id and u.msisdn in wanted and since <= u.start_time < until
                and (t, c) not in self.d.frozen]

    def usage_blocks(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime, stage: str = "") -> list[UsageBlock]:
        return blocks_from_usage(self.unbilled_usage(tenant_id, msisdns, since, until))

    def stage_usage(self, tenant_id: str, run_id: str, since: datetime, until: datetime, shares: int) -> str:
        return ""   # nothing to stage: the memory ledger is read as it is

    def drop_usage_stage(self, stage: str) -> None:
        pass

    def freeze_blocks(self, tenant_id: str, blocks: Sequence[tuple[str, object]]) -> None:
        self.freeze_usage(tenant_id, [(cdr_id, invoice_id, charge) for invoice_id, frozen in blocks
                                      for cdr_id, charge in frozen])  # type: ignore[attr-defined]

    def usage_by_ids(self, tenant_id: str, cdr_ids: Sequence[str]) -> list[RatedUsage]:
        return [self.d.ledger_usage[(tenant_id, c)] for c in cdr_ids if (tenant_id, c) in self.d.ledger_usage]

    def frozen_usage(self, invoice_id: str) -> list[tuple[str, int]]:
        return [(c, m) for (_t, c), (i, m) in self.d.frozen.items() if i == invoice_id]

    def freeze_usage(self, tenant_id: str, rows: Sequence[tuple[Any, ...]]) -> None:
        for cdr_id, invoice_id, charge, *_where in rows:
            if (tenant_id, cdr_id) in self.d.frozen:
                raise AlreadyExists("billed CDR", cdr_id)
            self.d.frozen[(tenant_id, cdr_id)] = (invoice_id, charge)

    def move_frozen_usage(self, from_invoice: str, to_invoice: str, rows: Sequence[tuple[str, int]]) -> None:
        charges = dict(rows)
        for key, (invoice, _m) in list(self.d.frozen.items()):
            if invoice == from_invoice and key[1] in charges:
                self.d.frozen[key] = (to_invoice, charges[key[1]])

    # charges, advance fees, credits
    def pending_charges(self, tenant_id: str, account_ids: Sequence[str], before: date, drafts: bool = False) -> list[OneOffCharge]:
        def free(invoice_id: str) -> bool:
            held = self.d.invoices.get(invoice_id)
            return not invoice_id or (drafts and held is not None and held.invoice.state is InvoiceState.DRAFT)
        return [c for c in self.d.charges.values() if c.tenant_id == tenant_id and c.account_id in account_ids and free(c.invoice_id)
                and c.charge_date < before]

    def charges_of(self, invoice_id: str) -> list[OneOffCharge]:
        return [c for c in self.d.charges.values() if c.invoice_id == invoice_id]

    def add_charge(self, charge: OneOffCharge) -> None:
        self.d.charges[charge.charge_id] = charge

    def mark_charges(self, tenant_id: str, charge_ids: Sequence[str], invoice_id: str) -> None:
        for cid in charge_ids:
            self.d.charges[cid] = replace(self.d.charges[cid], invoice_id=invoice_id)

    def advance_fees(self, tenant_id: str, account_ids: Sequence[str], period_start: date,
                     exclude_invoice: str = "") -> list[tuple[str, str, str, str, int]]:
        out = []
        for stored in self.d.invoices.values():
            inv = stored.invoice
            if (inv.tenant_id != tenant_id or inv.account_id not in account_ids or inv.kind is not DocumentKind.INVOICE
                    or inv.state is InvoiceState.CREDITED or inv.invoice_id == exclude_invoice):
                continue
            for ln in inv.lines:
                if ln.advance and ln.period_start == period_start:
                    out.append((inv.account_id, ln.subscriber_id, ln.charge_type.value, ln.item_id, ln.amount_micros))
        return out

    def credits(self, tenant_id: str, account_ids: Sequence[str], currency: str) -> dict[str, list[tuple[str, int]]]:
        totals: dict[str, int] = defaultdict(int)
        for e in self.d.ledger.values():
            if e.tenant_id == tenant_id and e.account_id in account_ids and e.currency == currency:
                totals[e.account_id] += e.amount_micros
        return {a: [("balance", m)] for a, m in totals.items() if m > 0}

    def add_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        for e in entries:
            key = (e.tenant_id, e.source)
            if key in self.d.ledger:
                raise AlreadyExists("ledger entry", e.source)
            self.d.ledger[key] = e

    def bundle_use(self, tenant_id: str, msisdns: Sequence[str], cycles: Sequence[str]) -> list[BundleUse]:
        return [b for b in self.d.bundles if b.msisdn in msisdns and (not b.cycle or b.cycle in cycles)]

    # claims, numbers, invoices
    def claims(self, tenant_id: str, account_ids: Sequence[str], period_starts: Sequence[date]) -> dict[tuple[str, date], PeriodClaim]:
        return {(a, s): c for (t, a, s), c in self.d.claims.items() if t == tenant_id and a in account_ids and s in period_starts}

    def last_claims(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, PeriodClaim]:
        out: dict[str, PeriodClaim] = {}
        for (t, a, s), c in sorted(self.d.claims.items(), key=lambda kv: kv[0][2]):
            if t == tenant_id and a in account_ids:
                out[a] = c
        return out

    def claim(self, claims: Sequence[PeriodClaim]) -> None:
        for c in claims:
            key = (c.tenant_id, c.account_id, c.period_start)
            if key in self.d.claims:
                raise AlreadyExists("billing period", "claimed by another run")
            self.d.claims[key] = c

    def update_claim_status(self, tenant_id: str, account_id: str, period_start: date, status: PeriodStatus) -> None:
        key = (tenant_id, account_id, period_start)
        self.d.claims[key] = replace(self.d.claims[key], status=status)

    def repoint_claim(self, tenant_id: str, account_id: str, period_start: date, invoice_id: str) -> None:
        key = (tenant_id, account_id, period_start)
        self.d.claims[key] = replace(self.d.claims[key], invoice_id=invoice_id)

    def take_numbers(self, tenant_id: str, series: str, count: int) -> int:
        first = self.d.series.get((tenant_id, series), 1)
        self.d.series[(tenant_id, series)] = first + count
        return first

    def add_invoices(self, bills: Sequence[StoredBill]) -> None:
        for b in bills:
            self.d.invoices[b.invoice.invoice_id] = b

    def get_invoice(self, tenant_id: str, invoice_id: str, lock: bool = False) -> StoredBill | None:
        found = self.d.invoices.get(invoice_id)
        if found is None:
            found = next((b for b in self.d.invoices.values() if b.invoice.number == invoice_id and invoice_id), None)
        return found if found is not None and found.invoice.tenant_id == tenant_id else None

    def find_invoice(self, invoice_id: str) -> StoredBill | None:
        return self.d.invoices.get(invoice_id)

    def update_invoice(self, invoice: Invoice, document: bytes | None = None, bill: bytes | None = None,
                       was: InvoiceState | None = None) -> bool:
        old = self.d.invoices.get(invoice.invoice_id)
        if old is None or (was is not None and old.invoice.state is not was):
            return False
        self.d.invoices[invoice.invoice_id] = StoredBill(replace(invoice, lines=invoice.lines or old.invoice.lines), bill or old.bill,
                                                         document if document is not None else old.document)
        return True

    def delete_draft(self, invoice: Invoice) -> bool:
        i = invoice.invoice_id
        stored = self.d.invoices.get(i)
        if stored is None or stored.invoice.state is not InvoiceState.DRAFT:
            return False
        key = (invoice.tenant_id, invoice.account_id, invoice.period_start)
        if key in self.d.claims and self.d.claims[key].invoice_id == i:
            del self.d.claims[key]
        self.d.frozen = {k: v for k, v in self.d.frozen.items() if v[0] != i}
        for c in self.charges_of(i):
            self.d.charges[c.charge_id] = replace(c, invoice_id="")
        self.d.ledger = {k: e for k, e in self.d.ledger.items() if e.invoice_id != i}
        self.d.invoices.pop(i, None)
        return True

    def due_unpaid(self, today: date) -> list[Invoice]:
        return [b.invoice for b in self.d.invoices.values() if b.invoice.kind is DocumentKind.INVOICE and b.invoice.due_date
                and b.invoice.due_date < today and b.invoice.totals.payable > 0
                and b.invoice.state in (InvoiceState.ISSUED, InvoiceState.PARTIALLY_PAID)]

    def mark_overdue(self, today: date) -> int:
        n = 0
        for key, b in list(self.d.invoices.items()):
            inv = b.invoice
            if inv.kind is DocumentKind.INVOICE and inv.due_date and inv.due_date < today and inv.totals.payable > 0 \
                    and inv.state in (InvoiceState.ISSUED, InvoiceState.PARTIALLY_PAID):
                self.d.invoices[key] = StoredBill(replace(inv, state=InvoiceState.OVERDUE), b.bill, b.document)
                n += 1
        return n

    def list_invoices(self, flt: InvoiceFilter, after: Any, limit: int) -> list[Invoice]:
        items = sorted((b.invoice for b in self.d.invoices.values()), key=lambda i: (i.tenant_id, i.invoice_id))
        items = [i for i in items if (flt.tenant_ids is None or i.tenant_id in flt.tenant_ids)
                 and (not flt.account_id or i.account_id == flt.account_id) and (flt.state is None or i.state is flt.state)
                 and (not flt.kind or i.kind.value == flt.kind) and (not flt.run_id or i.run_id == flt.run_id)
                 and (flt.states is None or i.state in flt.states)
                 and (flt.touching is None or i.period_end >= flt.touching[0] and i.period_start <= flt.touching[1])
                 and (after is None or [i.tenant_id, i.invoice_id] > list(after))]
        return items[:limit]

    def credited_lines(self, invoice_id: str) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for b in self.d.invoices.values():
            if b.invoice.kind is DocumentKind.CREDIT_NOTE and b.invoice.reference_id == invoice_id:
                for ln in b.invoice.lines:
                    out[ln.ref_line_id] += ln.amount_micros
        return dict(out)

    # runs
    def add_run(self, run: BillRun) -> None:
        self.d.runs[run.run_id] = run

    update_run = add_run

    def queue_mail(self, entries: Sequence[OutboxEntry]) -> None:
        for e in entries:
            self.d.outbox[(e.tenant_id, e.invoice_id)] = e

    def pending_mail(self, limit: int, max_attempts: int) -> list[OutboxEntry]:
        waiting = sorted((e for e in self.d.outbox.values() if e.attempts < max_attempts), key=lambda e: (e.queue_time, e.invoice_id))
        return waiting[:limit]

    def mail_sent(self, tenant_id: str, invoice_id: str, when: datetime) -> None:
        self.d.outbox.pop((tenant_id, invoice_id), None)
        self.d.mailed[(tenant_id, invoice_id)] = when

    def mail_failed(self, tenant_id: str, invoice_id: str, error: str) -> None:
        e = self.d.outbox[(tenant_id, invoice_id)]
        self.d.outbox[(tenant_id, invoice_id)] = replace(e, attempts=e.attempts + 1, last_error=error)

    def count_run(self, run_id: str, issued: int, drafts: int, empty: int, skipped: int, failed: int) -> None:
        r = self.d.runs[run_id]
        self.d.runs[run_id] = replace(r, issued=r.issued + issued, drafts=r.drafts + drafts, empty=r.empty + empty,
                                      skipped=r.skipped + skipped, failed=r.failed + failed)

    def get_run(self, run_id: str) -> BillRun | None:
        return self.d.runs.get(run_id)


class MemoryBillingStore:
    """The unit-of-work factory over one :class:`BillingData`."""

    def __init__(self, data: BillingData | None = None) -> None:
        self.data = data or BillingData()
        self.writer = threading.RLock()
        self.running: set[str] = set()

    def __call__(self, read_only: bool = False) -> MemoryBillingUnitOfWork:
        return MemoryBillingUnitOfWork(self, read_only)

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[bool]:
        with self.writer:
            taken = run_id not in self.running
            self.running.add(run_id)
        try:
            yield taken
        finally:
            if taken:
                with self.writer:
                    self.running.discard(run_id)
