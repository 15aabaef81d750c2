"""What the billing desk needs from storage; ``store/billing.py`` implements it on SQLite and PostgreSQL.

One unit of work is one transaction.  The bill run reads a batch of accounts
in a read-only unit, computes their bills without I/O, and writes them in
one unit that also claims the accounts' periods and takes the invoice
numbers: a crash leaves all of the batch or none of it.

And what a bill run needs from workers outside its process (``BatchWorkers``;
``servers/adapters/bill_run_processes.py`` implements it with worker processes).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, ContextManager, Protocol, Sequence

from engine.billing.model import Account, Assignment, BundleUse, Invoice, InvoiceState, OneOffCharge, RatedUsage
from engine.billing.usage_blocks import UsageBlock
from engine.ports import AuditLog


@dataclass(frozen=True)
class SubscriberFacts:
    """What billing needs of a subscriber: identity, activation, deactivation and the plan history."""

    subscriber_id: str
    tenant_id: str
    msisdn: str
    activate_time: datetime | None
    deactivate_time: datetime | None
    plans: tuple[tuple[datetime, str], ...]   # (from, tariff plan), oldest first; the first entry is the provisioned plan
    postpaid: bool = True
    # monthly add-ons bought (engine.billing.addons): (bundle, purchase instant, the instant it stops at), oldest first
    add_ons: tuple[tuple[str, datetime, datetime], ...] = ()


class PeriodStatus(str, Enum):
    INVOICED = "invoiced"     # an invoice was issued for the period
    DRAFT = "draft"           # a draft waits for review
    EMPTY = "empty"           # nothing to bill: no invoice, and none will be made for it


@dataclass(frozen=True)
class PeriodClaim:
    """"Account X's period starting on D is billed": the key that makes bill runs idempotent."""

    tenant_id: str
    account_id: str
    period_start: date
    period_end: date
    status: PeriodStatus
    invoice_id: str
    run_id: str


class RunMode(str, Enum):
    SCHEDULED = "scheduled"   # the server's scheduler: every account whose cycle date has come
    MANUAL = "manual"         # a tenant's accounts due on a cycle date, or a list of accounts
    ON_DEMAND = "on_demand"   # one account now ("bill now")
    FINAL = "final"           # one account's final bill (closes the account)


class RunState(str, Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class BillRun:
    run_id: str
    tenant_id: str
    mode: RunMode
    cycle_date: date | None
    account_ids: tuple[str, ...]
    dry_run: bool
    review: bool
    state: RunState
    requested_by: str
    start_time: datetime
    end_time: datetime | None = None
    total: int = 0
    issued: int = 0
    drafts: int = 0
    empty: int = 0
    skipped: int = 0
    failed: int = 0
    failures: tuple[tuple[str, str], ...] = ()   # (account id, reason)
    interim: bool = False     # an on-demand run that also bills the days up to yesterday: a resume bills the same


@dataclass(frozen=True)
class LedgerEntry:
    """A movement of an account's balance: > 0 credits the customer (payments on account, credit notes beyond what
    was owed, voucher recharges), < 0 uses credit (applied to an invoice as a prepaid amount)."""

    tenant_id: str
    account_id: str
    source: str            # unique: payment:<ref>, voucher:<request id>, credit:<credit note id>, applied:<invoice id>:<source>
    amount_micros: int
    currency: str
    time: datetime
    invoice_id: str = ""


@dataclass(frozen=True)
class InvoiceFilter:
    tenant_ids: set[str] | None = None
    account_id: str = ""
    state: InvoiceState | None = None
    kind: str = ""
    run_id: str = ""
    states: frozenset[InvoiceState] | None = None   # in one of these states
    touching: tuple[date, date] | None = None        # a period sharing a day with [first, last]


@dataclass
class StoredBill:
    """An invoice row with what is kept beside it."""

    invoice: Invoice
    bill: bytes                # engine.billing.codec.pack(bill_dict(...))
    document: bytes | None     # the UBL XML (issued documents)
    extra: dict[str, Any] = field(default_factory=dict)


class BillingUnitOfWork(Protocol):
    # read-only, so implementations may hold a concrete audit repository
    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> "BillingUnitOfWork": ...
    def __exit__(self, *exc: Any) -> None: ...
    def commit(self) -> None: ...

    # accounts and subscribers
    # ``lock``: held to the commit, so that what is read and checked under it (a CSR's sums) is not changed meanwhile
    def get_account(self, tenant_id: str, account_id: str, lock: bool = False) -> Account | None: ...
    def add_account(self, account: Account) -> None: ...   # AlreadyExists when the id is taken (by a request at the same time)
    def update_account(self, account: Account) -> None: ...
    # the bill run's close of an account after its final bill: status and times only, if still active (True then)
    def close_account(self, tenant_id: str, account_id: str, when: datetime) -> bool: ...
    def list_accounts(self, tenant_ids: set[str] | None, after: str | None, limit: int) -> list[Account]: ...
    def active_accounts(self, tenant_id: str, account_ids: Sequence[str] | None) -> list[Account]: ...
    def assignments(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, list[Assignment]]: ...
    def open_assignment(self, tenant_id: str, subscriber_id: str) -> Assignment | None: ...
    # FailedPrecondition when the subscriber has an open assignment already (one written at the same time)
    def add_assignment(self, assignment: Assignment) -> None: ...
    def end_assignment(self, assignment: Assignment, valid_to: datetime) -> None: ...
    def subscriber_facts(self, tenant_id: str, subscriber_ids: Sequence[str]) -> dict[str, SubscriberFacts]: ...
    # ``lock``: the subscriber's row, held to the commit (its assignments are read and written under it)
    def subscriber(self, subscriber_id: str, lock: bool = False) -> SubscriberFacts | None: ...

    # what goes on a bill
    def unbilled_usage(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime) -> list[RatedUsage]: ...
    def usage_by_ids(self, tenant_id: str, cdr_ids: Sequence[str]) -> list[RatedUsage]: ...
    # unbilled_usage as one block per number (engine.billing.usage_blocks), and freezing such blocks' CDRs for invoices
    # ``stage``: read from a run's staged copy of the period's usage (stage_usage's name) rather than the ledger
    def usage_blocks(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime, stage: str = "") -> list[UsageBlock]: ...
    # a large run's usage of [since, until) copied once, grouped by number (store.usage_stage; "" where a store does not)
    def stage_usage(self, tenant_id: str, run_id: str, since: datetime, until: datetime, shares: int) -> str: ...
    def drop_usage_stage(self, stage: str) -> None: ...
    def freeze_blocks(self, tenant_id: str, blocks: Sequence[tuple[str, object]]) -> None: ...   # (invoice id, UsageBlock.frozen)
    def frozen_usage(self, invoice_id: str) -> list[tuple[str, int]]: ...
    # (cdr id, invoice id, charge[, number, start time]): a store may need the number and start time, and looks them up without
    def freeze_usage(self, tenant_id: str, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def move_frozen_usage(self, from_invoice: str, to_invoice: str, rows: Sequence[tuple[str, int]]) -> None: ...  # re-bill: new charges
    # ``drafts``: also the charges a draft holds (no issued invoice has taken them: a discard frees them)
    def pending_charges(self, tenant_id: str, account_ids: Sequence[str], before: date, drafts: bool = False) -> list[OneOffCharge]: ...
    def charges_of(self, invoice_id: str) -> list[OneOffCharge]: ...
    def add_charge(self, charge: OneOffCharge) -> None: ...
    def mark_charges(self, tenant_id: str, charge_ids: Sequence[str], invoice_id: str) -> None: ...
    def advance_fees(self, tenant_id: str, account_ids: Sequence[str], period_start: date,
                     exclude_invoice: str = "") -> list[tuple[str, str, str, str, int]]: ...
    def credits(self, tenant_id: str, account_ids: Sequence[str], currency: str) -> dict[str, list[tuple[str, int]]]: ...
    def add_ledger(self, entries: Sequence[LedgerEntry]) -> None: ...
    # rating's bundle counters of these numbers in these bill cycles (keys as engine.billing.cycles.counter_cycles gives)
    def bundle_use(self, tenant_id: str, msisdns: Sequence[str], cycles: Sequence[str]) -> list[BundleUse]: ...

    # periods, numbers, invoices
    def claims(self, tenant_id: str, account_ids: Sequence[str], period_starts: Sequence[date]) -> dict[tuple[str, date], PeriodClaim]: ...
    def last_claims(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, PeriodClaim]: ...   # the latest claim of each account
    def claim(self, claims: Sequence[PeriodClaim]) -> None: ...       # raises engine.errors.AlreadyExists when one exists
    def update_claim_status(self, tenant_id: str, account_id: str, period_start: date, status: PeriodStatus) -> None: ...
    def repoint_claim(self, tenant_id: str, account_id: str, period_start: date, invoice_id: str) -> None: ...
    def due_unpaid(self, today: date) -> list[Invoice]: ...   # what mark_overdue(today) turns overdue, before it does
    def take_numbers(self, tenant_id: str, series: str, count: int) -> int: ...   # first of ``count`` gapless numbers; locks the series
    def add_invoices(self, bills: Sequence[StoredBill]) -> None: ...
    def get_invoice(self, tenant_id: str, invoice_id: str, lock: bool = False) -> StoredBill | None: ...   # lock: as get_account
    def find_invoice(self, invoice_id: str) -> StoredBill | None: ...
    # ``was``: written only if the stored invoice is still in that state; False when it is not (or not written)
    def update_invoice(self, invoice: Invoice, document: bytes | None = None, bill: bytes | None = None,
                       was: InvoiceState | None = None) -> bool: ...
    # a draft with its own claim, frozen CDRs and one-off marks; False (nothing deleted) when it is no longer a draft
    def delete_draft(self, invoice: Invoice) -> bool: ...
    def mark_overdue(self, today: date) -> int: ...
    def list_invoices(self, flt: InvoiceFilter, after: str | None, limit: int) -> list[Invoice]: ...
    def credited_lines(self, invoice_id: str) -> dict[str, int]: ...

    # runs
    def add_run(self, run: BillRun) -> None: ...
    def get_run(self, run_id: str) -> BillRun | None: ...
    def update_run(self, run: BillRun) -> None: ...
    # the e-mail outbox: queued with the invoice, sent later
    def queue_mail(self, entries: Sequence[OutboxEntry]) -> None: ...
    def pending_mail(self, limit: int, max_attempts: int) -> list[OutboxEntry]: ...
    def mail_sent(self, tenant_id: str, invoice_id: str, when: datetime) -> None: ...
    def mail_failed(self, tenant_id: str, invoice_id: str, error: str) -> None: ...
    # a batch's counts added to its run's (parallel batches each add their own in their transaction)
    def count_run(self, run_id: str, issued: int, drafts: int, empty: int, skipped: int, failed: int) -> None: ...


@dataclass(frozen=True)
class OutboxEntry:
    """An issued invoice waiting to be e-mailed (engine.billing.delivery)."""

    tenant_id: str
    invoice_id: str
    account_id: str
    address: str
    queue_time: datetime
    attempts: int = 0
    last_error: str = ""


class BillingUnitOfWorkFactory(Protocol):
    def __call__(self, read_only: bool = False) -> BillingUnitOfWork: ...
    # a bill run's own lock while a request runs it: True when taken, False when another request (or replica) holds it;
    # let go when the context ends or when the process holding it dies
    def run_lock(self, run_id: str) -> ContextManager[bool]: ...


class BatchWorkers(Protocol):
    """Workers outside the bill run's own process that do its batches, each with a runner of its own on its own database
    connection, kept from one run to the next (``servers/adapters/bill_run_processes.py``: worker processes, given by
    the composition root on PostgreSQL).

    ``submit`` does ``BillRunner._batch(run, jobs, request, now, stage)`` in a worker; its future gives the batch's tally or
    its error as itself.  A batch whose worker died (killed, out of memory) fails with
    ``concurrent.futures.BrokenExecutor``, and so do the others in flight then; sent again, they go to new workers."""

    @property
    def size(self) -> int: ...       # how many workers (BillRunner keeps two batches in flight for each)
    @property
    def started(self) -> bool: ...   # whether they are started (by ``warm`` or a batch), not closed since

    def submit(self, run: BillRun, jobs: list[Any], request: Any, now: datetime, stage: str = "") -> Future[Any]: ...
    def warm(self, wait: bool = False) -> bool: ...   # start them all now; ``wait``: until each is ready (False: not in time)
    def close(self) -> None: ...
