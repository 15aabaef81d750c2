"""Bill runs: pick the accounts due, freeze their usage, compute, number and issue; dry runs and previews.

A run works through its accounts in batches.  Each batch is read in one
read-only unit, computed without I/O (``compute_bill``), rendered to UBL with
a placeholder number, and written in one transaction that

1. claims each account's period (unique per tenant, account and period start:
   a second claim fails, so no account is ever invoiced twice for a period,
   whichever run, replica or retry gets there first);
2. takes a block of invoice numbers from the tenant's series (a row lock:
   numbers are gapless because they are taken and used in the same
   transaction, and a crash takes back both);
3. stores the invoices, their documents, the frozen CDRs (later CDRs of the
   period go to the next bill), the one-off charges billed and the payments
   on account used.

A run killed at any point and started again (``resume`` its run id, or run the
same request) finds the claimed periods and goes on with the rest: the result
is that of one clean run.  A batch that loses a claim to a concurrent run is
read again and redone without the accounts already billed.

Batches of one run go in parallel (``workers``, each on its own database
connection): in workers outside this process for large runs when the composition
root gives ``batch_workers`` (PostgreSQL: worker processes), else in threads.  A batch reads each
number's CDRs as one usage block (``engine.billing.usage_blocks``) where that
gives the same bill, so nothing in Python runs once per CDR (but merging the
rows of an account with several numbers).  Each batch
claims its own periods, and the invoice numbers are taken last in its
transaction, under the series' row lock, so batches that commit in any order
still leave the numbers gapless.  The run's counters move by increments in
each batch's transaction.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION, BrokenExecutor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Callable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from engine import audit
from engine.billing.accounts import closing_refused, mark_closing
from engine.billing.catalogue import BillingCatalogue
from engine.billing.codec import pack_bill
from engine.billing.compute import BillInputError, BillInputs, compute_bill
from engine.billing.cycles import counter_cycles, local_day, local_midnight
from engine.billing.delivery import outbox_entries
from engine.billing.fees import sum_advance
from engine.billing.model import (
    Account,
    AccountStatus,
    Assignment,
    Bill,
    BillPeriod,
    BundleUse,
    DocumentKind,
    Invoice,
    InvoiceState,
    OneOffCharge,
    RatedUsage,
    SubscriberService,
)
from engine.billing.ports import (
    BatchWorkers,
    BillingUnitOfWork,
    BillingUnitOfWorkFactory,
    BillRun,
    LedgerEntry,
    PeriodClaim,
    PeriodStatus,
    RunMode,
    RunState,
    StoredBill,
    SubscriberFacts,
)
from engine.billing.profile import BillingProfile
from engine.billing.timeline import final_bill_period, interim_period, next_due_period, period_for_cycle_date, service_of
from engine.billing.ubl import Document, render_ubl, render_ubl_parts
from engine.billing.usage_blocks import Fit, UsageBlock, block_fit
from engine.clock import Clock
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import SYSTEM, Permission, Principal

log = logging.getLogger("rulebill.billing")

NUMBER_PLACEHOLDER = "@@INVOICE-NUMBER@@"
PREVIEW_NUMBER = "PREVIEW"
MAX_ACCOUNTS_PER_REQUEST = 10_000
DEFAULT_BATCH = 200
DEFAULT_WORKERS = 2
MAX_BATCH_RETRIES = 3

CatalogueSource = Callable[[str, datetime], "BillingCatalogue | None"]
# a run this large goes to worker processes even when none is started yet (each costs ~1.2 s of CPU to start: imports,
# runner, plan set); once started (the server starts them as it starts: servers.app.start_scheduler) they
# take every run of two batches or more, which threads of this process would share one core for
PROCESS_MIN_ACCOUNTS = 5_000
# a run of at least this many accounts reads its usage from a copy of the period's ledger made once at its start
# (BillingUnitOfWork.stage_usage, store.usage_stage on PostgreSQL): the ledger in the order calls were rated holds an
# account's CDRs on a page each, and a batch's read visited every one of them
STAGE_MIN_ACCOUNTS = 5_000


@dataclass(frozen=True)
class RunRequest:
    tenant_id: str
    mode: RunMode | None          # None only when resuming: the run's own mode
    cycle_date: date | None = None
    account_ids: tuple[str, ...] = ()
    dry_run: bool = False
    review: bool = False          # stop at drafts: an admin issues them later
    resume_run_id: str = ""
    interim: bool = False         # on demand: also bill the days since the last bill up to yesterday (engine.billing.timeline)


@dataclass
class _Job:
    account: Account
    assignments: list[Assignment]
    period: BillPeriod
    bill: Bill | None = None
    error: str = ""
    xml: tuple[str, bytes, str] = ("", b"", "")   # the document around its usage attachment (render_ubl_parts)
    close: bool = False
    credits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class _Tally:
    """What one batch did: added to its run's counters (in the batch's transaction, and to the progress shown)."""

    issued: int = 0
    drafts: int = 0
    empty: int = 0
    skipped: int = 0
    failed: int = 0
    failures: tuple[tuple[str, str], ...] = ()

    def onto(self, run: BillRun) -> BillRun:
        return replace(run, issued=run.issued + self.issued, drafts=run.drafts + self.drafts, empty=run.empty + self.empty,
                       skipped=run.skipped + self.skipped, failed=run.failed + self.failed, failures=run.failures + self.failures)


def _same_credits(uow: BillingUnitOfWork, tenant: str, jobs: Sequence[_Job], currency: str) -> None:
    """The credit on account the bills were computed with is still there: read again under the accounts' row locks
    (held to the commit; a re-bill takes the same lock before it reads the credit), so that one overpayment is not
    used by two bills.  A change sends the batch back to compute (AlreadyExists, as a lost claim does)."""
    using = sorted({j.account.account_id for j in jobs if j.bill is not None and j.bill.payments})
    if not using:
        return
    for account_id in using:
        uow.get_account(tenant, account_id, lock=True)
    now = uow.credits(tenant, using, currency)
    for j in jobs:
        if j.bill is not None and j.bill.payments and tuple(now.get(j.account.account_id, ())) != tuple(j.credits):
            raise AlreadyExists("credit on account", j.account.account_id,
                                f"the credit of account {j.account.account_id} changed while its bill was computed")


def invoice_number(series: str, number: int) -> str:
    return f"{series}{number:06d}"


def document_for(bill: Bill, number: str, profile: BillingProfile) -> Document:
    return Document(DocumentKind.INVOICE, number, bill.issue_date, bill.due_date, bill.currency, bill.period.start, bill.period.end,
                    bill.account, profile, bill.lines, bill.adjustments, bill.taxes, bill.totals, bill.usage, bill.usage_line_ids,
                    usage_rows=bill.usage_detail.rows if bill.usage_detail is not None else "")


class BillRunner:
    """Bill runs in every mode, dry runs and single-account previews."""

    def __init__(self, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile],
                 catalogues: CatalogueSource, batch_size: int = DEFAULT_BATCH, workers: int = DEFAULT_WORKERS,
                 batch_workers: BatchWorkers | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.profiles = profiles
        self._catalogues = catalogues
        self.batch_size = batch_size
        self.workers = max(1, workers)   # batches of one run in parallel, each on its own connection
        # set: the batches of large runs go to these workers outside this process, kept from one run to the next
        self.batch_workers = batch_workers
        self.process_min_accounts = PROCESS_MIN_ACCOUNTS
        self.stage_min_accounts = STAGE_MIN_ACCOUNTS

    # -- workers outside this process ---------------------------------------------------------
    def warm_workers(self, wait: bool = False) -> bool:
        """Start the batch workers ahead of the first large run (the server does as it starts); ``wait``: until
        each has built its runner and compiled the plan sets in force.  False when there are none to start."""
        return self.batch_workers is not None and self.batch_workers.warm(wait)

    def compile_plan_sets(self) -> None:
        """Compile each billed tenant's plan set in force now (a worker process as it starts: not in its first batch)."""
        for tenant in sorted(self.profiles):
            try:
                self._catalogues(tenant, self._clock.now())
            except Exception:  # noqa: BLE001 - a worker that cannot compile now still bills: its batch compiles, or says why
                log.exception("bill run worker: the plan set of tenant %s did not compile at start", tenant)

    def close(self) -> None:
        """Stop the batch workers (the server's end)."""
        if self.batch_workers is not None:
            self.batch_workers.close()

    # -- requests ----------------------------------------------------------------------------
    def _check(self, principal: Principal, request: RunRequest) -> str:
        if request.dry_run:
            principal.require(Permission.BILLING_PREVIEW)
        elif request.review and request.mode is not RunMode.FINAL:
            principal.require(Permission.BILLING_WRITE)
        else:
            principal.require(Permission.BILLING_ISSUE)   # a final bill is an admin's, drafts for review included
        tenant = request.tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        errors = ErrorList()
        if tenant not in self.profiles:
            errors.add("tenant_id", f"tenant {tenant} has no billing profile (plans/billing/{tenant}.yaml)")
        if len(request.account_ids) > MAX_ACCOUNTS_PER_REQUEST:
            errors.add("account_ids", f"at most {MAX_ACCOUNTS_PER_REQUEST} accounts per request; run by cycle date for more")
        # a resumed run bills what it was started for (its mode, cycle date, accounts, review and interim flag are
        # read from the run): the request's own need not name them again
        fresh = not request.resume_run_id
        if fresh and request.mode is None:
            errors.add("mode", "required: scheduled, manual, on_demand or final (only a resumed run takes its own)")
        if fresh and request.mode in (RunMode.ON_DEMAND, RunMode.FINAL) and len(request.account_ids) != 1:
            errors.add("account_ids", f"a {request.mode.value} bill is for exactly one account")
        if fresh and request.interim and request.mode is not RunMode.ON_DEMAND:
            errors.add("interim", "an interim bill is an on-demand bill of one account")
        if fresh and request.mode is RunMode.MANUAL and request.cycle_date is None and not request.account_ids:
            errors.add("cycle_date", "a manual run needs a cycle date or a list of accounts")
        if fresh and request.mode is RunMode.SCHEDULED and (request.cycle_date or request.account_ids):
            errors.add("mode", "a scheduled run picks its accounts itself (no cycle date or accounts)")
        if request.dry_run and request.review:
            errors.add("review", "a dry run issues nothing, drafts included")
        errors.raise_if_any("cannot start bill run")
        return tenant

    def start(self, principal: Principal, request: RunRequest) -> Iterator[BillRun]:
        """Run (or resume) a bill run; yields its progress after each batch, then its final state.  One request runs a
        run at a time (the run's lock, held to its end): resuming a run that runs now is FAILED_PRECONDITION."""
        tenant = self._check(principal, request)
        run_id = request.resume_run_id or "run_" + secrets.token_hex(8)
        with self._uow.run_lock(run_id) as mine:
            yield from self._start(principal, request, tenant, run_id, mine)

    def _start(self, principal: Principal, request: RunRequest, tenant: str, run_id: str, mine: bool) -> Iterator[BillRun]:
        now = self._clock.now()
        run = self._open_run(principal, tenant, request, now, run_id, mine)
        # from here on the run's own flags rule every step (plan, batches, tallies): a resume that names none of them
        # must still stop a review run at drafts
        request = replace(request, mode=run.mode, cycle_date=run.cycle_date, account_ids=run.account_ids, review=run.review,
                          interim=run.interim, dry_run=run.dry_run)
        jobs, skipped, failures = self._plan(tenant, request, run.run_id)
        run = replace(run, total=len(jobs) + skipped + len(failures), skipped=skipped,
                      failed=run.failed if request.resume_run_id else 0, failures=tuple(failures))
        if not request.dry_run:
            with self._uow() as uow:
                uow.update_run(run)
                uow.commit()
        yield run
        batches = [jobs[i:i + self.batch_size] for i in range(0, len(jobs), self.batch_size)]
        stage = self._stage(run, jobs, request)
        try:
            for tally in self._batches(run, batches, request, stage):
                run = tally.onto(run)
                yield run
        finally:
            if stage:
                with self._uow() as uow:
                    uow.drop_usage_stage(stage)
        run = replace(run, state=RunState.DONE, end_time=self._clock.now())
        if not request.dry_run:
            with self._uow() as uow:
                counted = uow.get_run(run.run_id)
                if counted is not None:
                    # each batch added its counts in its own transaction: exact even when a worker died after its
                    # commit, before its tally reached this process
                    run = replace(run, issued=counted.issued, drafts=counted.drafts, empty=counted.empty, skipped=counted.skipped,
                                  failed=counted.failed)
                uow.update_run(run)
                uow.audit.append(audit.entry(principal, self._clock.now(), "bill_run.finish", "bill_run", run.run_id, {},
                                             {"issued": run.issued, "drafts": run.drafts, "empty": run.empty, "failed": run.failed,
                                              "skipped": run.skipped}, tenant))
                uow.commit()
        yield run

    def _open_run(self, principal: Principal, tenant: str, request: RunRequest, now: datetime, run_id: str = "",
                  mine: bool = True) -> BillRun:
        """``mine``: whether this request holds the run's lock (``start``); a resume without it is refused."""
        if request.resume_run_id:
            with self._uow() as uow:
                found = uow.get_run(request.resume_run_id)
                if found is None or found.tenant_id != tenant:
                    raise NotFound("bill run", request.resume_run_id)
                if found.dry_run:
                    raise FailedPrecondition("RUN_IS_DRY", f"bill run {found.run_id} was a dry run: nothing to resume", found.run_id)
                if not mine:
                    raise FailedPrecondition("RUN_IN_PROGRESS", f"bill run {found.run_id} is running now (another request resumed or "
                                                                "started it): wait for it to end, then resume it if it did not finish",
                                             found.run_id)
                _same_as_run(request, found)
                if found.mode is RunMode.FINAL:
                    principal.require(Permission.BILLING_ISSUE)   # as _check for a fresh final run
                run = replace(found, state=RunState.RUNNING, end_time=None)
                uow.update_run(run)
                uow.commit()
            return run
        mode = request.mode
        assert mode is not None      # _check refused a fresh run without one
        run = BillRun(run_id or "run_" + secrets.token_hex(8), tenant, mode, request.cycle_date, request.account_ids, request.dry_run,
                      request.review, RunState.RUNNING, principal.subject, now, interim=request.interim)
        if not request.dry_run:
            with self._uow() as uow:
                uow.add_run(run)
                uow.audit.append(audit.entry(principal, now, "bill_run.start", "bill_run", run.run_id, {},
                                             {"mode": mode.value, "cycle_date": request.cycle_date,
                                              "accounts": len(request.account_ids), "review": request.review}, tenant))
                uow.commit()
        return run

    def _plan(self, tenant: str, request: RunRequest, run_id: str) -> tuple[list[_Job], int, list[tuple[str, str]]]:
        """The accounts and periods this run bills; periods already claimed are skipped (or refused when asked for by name)."""
        jobs: list[_Job] = []
        failures: list[tuple[str, str]] = []
        skipped = 0
        named = bool(request.account_ids) and not request.resume_run_id
        with self._uow(read_only=True) as uow:
            accounts = uow.active_accounts(tenant, list(request.account_ids) or None)
            found = {a.account_id for a in accounts}
            for missing in [a for a in request.account_ids if a not in found]:
                if named:
                    gone = uow.get_account(tenant, missing)
                    if gone is not None and gone.status is AccountStatus.CLOSING:
                        raise closing_refused(gone)   # its final bill waits as a draft: not billed again meanwhile
                    raise NotFound("account", missing)
                failures.append((missing, "not found or closed"))
            ids = sorted(found)
            assigned = uow.assignments(tenant, ids)
            lasts = uow.last_claims(tenant, ids)
            wanted_of = {a.account_id: period_for_cycle_date(a, request.cycle_date) for a in accounts} if request.cycle_date else {}
            claimed = uow.claims(tenant, ids, sorted({w.start for w in wanted_of.values() if w is not None})) if wanted_of else {}
            for account in accounts:
                tz = ZoneInfo(account.time_zone)
                today = local_day(self._clock.now(), tz)
                mine = assigned.get(account.account_id, [])
                last = lasts.get(account.account_id)
                due = next_due_period(account, last, mine, today)
                if request.mode is RunMode.FINAL:
                    if last is not None and last.status is PeriodStatus.DRAFT and not request.review:
                        # the final bill is issued last: an issued one closes the account behind an open draft (a review
                        # run's final draft waits instead; IssueDrafts issues it after the earlier ones)
                        raise FailedPrecondition("EARLIER_DRAFT_OPEN", f"account {account.account_id}: draft {last.invoice_id} of "
                                                                       f"the period from {last.period_start} is open: issue or discard "
                                                                       "it before the final bill", account.account_id)
                    jobs.extend(self._final_jobs(uow, account, mine, last, today, named))
                    continue
                if request.interim:
                    jobs.extend(_interim_jobs(account, mine, last, today))
                    continue
                if request.cycle_date is not None:
                    wanted = wanted_of[account.account_id]
                    if wanted is None:
                        if named:
                            raise InvalidArgument.field("cycle_date", f"{request.cycle_date} is not a cycle date of account "
                                                                      f"{account.account_id} (anchored on day {account.anchor_day})")
                        continue
                    if wanted.end > today:
                        raise InvalidArgument.field("cycle_date", f"the period closing on {request.cycle_date} has not ended yet for "
                                                                  f"account {account.account_id} (its day is {today})")
                    if due is not None and wanted.start < due.start and due.end == wanted.end:
                        jobs.append(_Job(account, mine, due))   # the rest of a cycle an interim bill began
                        continue
                    if (account.account_id, wanted.start) in claimed:
                        if named:
                            raise _already_billed(account.account_id, wanted.start, wanted.end)
                        skipped += 1
                        continue
                    if due is None or due.start != wanted.start:
                        failures.append((account.account_id, f"the period from {(due.start if due else last.period_end if last else '?')} "
                                                             f"is not billed yet: bill cycles in order"))
                        continue
                    jobs.append(_Job(account, mine, wanted))
                    continue
                if due is None:
                    if named:
                        end = last.period_end if last else today
                        raise FailedPrecondition("PERIOD_ALREADY_BILLED", f"account {account.account_id} is billed until {end}: no "
                                                                          f"period has ended since", account.account_id)
                    skipped += 1
                    continue
                jobs.append(_Job(account, mine, due))
        if named and not jobs and failures:
            raise FailedPrecondition("NOTHING_TO_BILL", "; ".join(f"{a}: {why}" for a, why in failures), failures[0][0])
        return jobs, skipped, failures

    def _final_jobs(self, uow: BillingUnitOfWork, account: Account, mine: list[Assignment], last: PeriodClaim | None, today: date,
                    named: bool) -> list[_Job]:
        tz = ZoneInfo(account.time_zone)
        facts = uow.subscriber_facts(account.tenant_id, [a.subscriber_id for a in mine])
        live = [a.subscriber_id for a in mine if a.valid_to is None and (f := facts.get(a.subscriber_id)) is not None
                and f.deactivate_time is None]
        if live:
            raise FailedPrecondition("ACCOUNT_HAS_ACTIVE_SUBSCRIBERS", f"account {account.account_id} still has active subscribers "
                                                                       f"({', '.join(sorted(live))}): deactivate or move them first",
                                     account.account_id)
        ends = [local_day(f.deactivate_time, tz) for f in facts.values() if f.deactivate_time is not None]
        ends += [local_day(a.valid_to, tz) - timedelta(days=1) for a in mine if a.valid_to is not None]
        last_day = min(max(ends), today) if ends else today
        jobs: list[_Job] = []
        cursor = last
        # regular periods that ended on or before the last day first, in order; then the final, short one
        while True:
            due = next_due_period(account, cursor, mine, min(today, last_day + timedelta(days=1)))
            if due is None:
                break
            jobs.append(_Job(account, mine, due))
            cursor = PeriodClaim(account.tenant_id, account.account_id, due.start, due.end, PeriodStatus.INVOICED, "", "")
        period = final_bill_period(account, cursor, mine, last_day)
        jobs.append(_Job(account, mine, period, close=True))
        return jobs

    def _stage(self, run: BillRun, jobs: Sequence[_Job], request: RunRequest) -> str:
        """A large run's usage staged once for its batches (``STAGE_MIN_ACCOUNTS``): the period of every job, from the
        earliest start less ``late_usage_days`` (as each batch reads) to the latest end; "" when not staged (a small run,
        a dry run, drafts for review, which read CDR by CDR, or a store that does not stage)."""
        if request.dry_run or request.review or len(jobs) < max(1, self.stage_min_accounts):
            return ""
        starts = [local_midnight(j.period.start, ZoneInfo(j.account.time_zone)) for j in jobs]
        ends = [local_midnight(j.period.end, ZoneInfo(j.account.time_zone)) for j in jobs]
        since = min(starts) - timedelta(days=self.profiles[run.tenant_id].late_usage_days)
        with self._uow() as uow:
            stage = uow.stage_usage(run.tenant_id, run.run_id, since, max(ends), self.workers)
            uow.commit()
        return stage

    # -- batches ---------------------------------------------------------------------------
    def _batches(self, run: BillRun, batches: list[list[_Job]], request: RunRequest, stage: str = "") -> Iterator[_Tally]:
        """Each batch's tally as it finishes: in order in this process with one worker; with several, in worker
        processes (``batch_workers`` set, and they are started or the run is large enough) or else threads, as they complete
        (at most ``workers`` batches in flight; the first failure stops the run, the batches committed stay)."""
        if self.workers == 1 or len(batches) < 2:
            for batch in batches:
                yield self._batch(run, batch, request, self._clock.now(), stage)
            return
        workers = self.batch_workers
        if workers is not None and (workers.started or sum(map(len, batches)) >= self.process_min_accounts):
            yield from self._in_processes(run, batches, request, stage)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bill-run") as pool:
            todo = iter(batches)
            running: set[Future[_Tally]] = set()
            try:
                while True:
                    while len(running) < self.workers and (batch := next(todo, [])):
                        running.add(pool.submit(self._batch, run, batch, request, self._clock.now(), stage))
                    if not running:
                        return
                    done, running = wait(running, return_when=FIRST_EXCEPTION)
                    for future in done:
                        yield future.result()
            finally:
                for future in running:
                    future.cancel()

    def _in_processes(self, run: BillRun, batches: list[list[_Job]], request: RunRequest, stage: str = "") -> Iterator[_Tally]:
        """Batches in the worker processes (``batch_workers``), each with its own runner and database connection.

        A worker that dies (killed, out of memory) takes down its pool: new workers start and every batch not
        reported done is sent again.  A batch whose transaction died with its worker redoes its accounts; one that
        had committed finds its periods claimed by this run and does nothing: one invoice per account and period
        either way, and the run's counters, added in each batch's transaction, stay exact."""
        workers = self.batch_workers
        assert workers is not None
        todo = list(range(len(batches)))
        for attempt in range(MAX_BATCH_RETRIES + 1):
            running: dict[Future[_Tally], int] = {}
            try:
                pending = iter(list(todo))
                while True:
                    # two batches queued per worker: the next one starts while this process takes the last one's tally
                    while len(running) < 2 * workers.size and (i := next(pending, -1)) >= 0:
                        running[workers.submit(run, batches[i], request, self._clock.now(), stage)] = i
                    if not running:
                        return
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        tally = future.result()
                        todo.remove(i)
                        yield tally
            except BrokenExecutor:
                if attempt == MAX_BATCH_RETRIES:
                    raise FailedPrecondition("BILL_RUN_WORKERS_DIED", f"bill run {run.run_id}: its worker processes died "
                                                                      f"{attempt + 1} times; resume it", run.run_id) from None
                log.warning("bill run %s: a worker process died; %d batches sent again", run.run_id, len(todo))
            finally:
                # a run that stops early (a batch failed, its caller went away) takes back what it queued; the pool stays
                for future in running:
                    future.cancel()

    def _batch(self, run: BillRun, jobs: list[_Job], request: RunRequest, now: datetime, stage: str = "") -> _Tally:
        skipped = 0
        for attempt in range(MAX_BATCH_RETRIES):
            self._compute(run.tenant_id, jobs, request, now, stage)
            if request.dry_run:
                break
            try:
                return self._write(run, jobs, request, skipped, now)
            except AlreadyExists:
                # a concurrent run claimed some of these periods first: read again, the claimed ones drop out (those
                # this run claimed itself, in a batch whose worker died after its commit, were counted by that commit)
                log.info("bill run %s: batch lost a claim, retrying (%d)", run.run_id, attempt + 1)
                with self._uow(read_only=True) as uow:
                    taken = uow.claims(run.tenant_id, [j.account.account_id for j in jobs], sorted({j.period.start for j in jobs}))
                skipped += sum(1 for j in jobs if (c := taken.get((j.account.account_id, j.period.start))) and c.run_id != run.run_id)
                jobs = [j for j in jobs if (j.account.account_id, j.period.start) not in taken]
        else:
            raise FailedPrecondition("BILL_RUN_CONTENDED", f"bill run {run.run_id}: a batch kept losing its claims to another run",
                                     run.run_id)
        return _tally(jobs, request, skipped)

    def _compute(self, tenant: str, jobs: list[_Job], request: RunRequest, now: datetime, stage: str = "") -> None:
        # review drafts keep their CDRs in the stored bill (bill_dict with usage): those read CDR by CDR
        inputs = self.load_inputs(tenant, jobs, blocks=not request.review, stage=stage)
        profile = self.profiles[tenant]
        for job in jobs:
            job.bill, job.error, job.xml = None, "", ("", b"", "")
            got = inputs.get(id(job))
            if isinstance(got, str):
                job.error = got
                continue
            assert got is not None
            catalogue, bill_inputs = got
            job.credits = bill_inputs.credits
            issue_date = max(local_day(now, ZoneInfo(job.account.time_zone)), bill_inputs.period.end)
            try:
                job.bill = compute_bill(bill_inputs, catalogue, profile, issue_date)
            except BillInputError as exc:
                job.error = exc.message
                continue
            if not job.bill.empty and not request.review:
                number = PREVIEW_NUMBER if request.dry_run else NUMBER_PLACEHOLDER
                job.xml = render_ubl_parts(document_for(job.bill, number, profile))

    def load_inputs(self, tenant: str, jobs: Sequence[_Job], blocks: bool = False,
                    stage: str = "") -> dict[int, tuple[BillingCatalogue, BillInputs] | str]:
        """Everything the batch's bills depend on, in one read-only unit (a few queries for the whole batch).

        ``blocks``: the usage as one summed block per number (``engine.billing.usage_blocks``), read CDR by CDR
        only for the accounts whose bill a block would change; ``stage``: the blocks from the run's staged usage."""
        out: dict[int, tuple[BillingCatalogue, BillInputs] | str] = {}
        profile = self.profiles[tenant]
        block_of: dict[str, UsageBlock] = {}
        with self._uow(read_only=True) as uow:
            subscriber_ids = sorted({a.subscriber_id for j in jobs for a in j.assignments})
            facts = uow.subscriber_facts(tenant, subscriber_ids)
            services_of = {id(j): self._services(j, facts) for j in jobs}   # once per job: the fit and the inputs
            msisdns = sorted({a.msisdn for j in jobs for a in j.assignments})
            starts, ends = [], []
            for j in jobs:
                tz = ZoneInfo(j.account.time_zone)
                starts.append(local_midnight(j.period.start, tz))
                ends.append(local_midnight(j.period.end, tz))
            usage: dict[str, list[RatedUsage]] = {}
            since = min(starts) - timedelta(days=profile.late_usage_days) if starts else datetime.min
            fits: dict[int, Fit] = {}
            one_by_one = msisdns
            if msisdns and blocks:
                block_of = {b.msisdn: b for b in uow.usage_blocks(tenant, msisdns, since, max(ends), stage)}
                for j, end in zip(jobs, ends):
                    fit = self._fit(j, services_of[id(j)], block_of, end)
                    if fit.fits:
                        fits[id(j)] = fit
                one_by_one = sorted({a.msisdn for j in jobs if id(j) not in fits for a in j.assignments})
            if one_by_one:
                for u in uow.unbilled_usage(tenant, one_by_one, since, max(ends)):
                    usage.setdefault(u.msisdn, []).append(u)
            ids = [j.account.account_id for j in jobs]
            pending = uow.pending_charges(tenant, ids, max((j.period.end for j in jobs), default=date.min))
            advance: dict[tuple[str, date], list[tuple[str, str, str, int]]] = {}
            for start in sorted({j.period.start for j in jobs}):
                for account_id, sub, kind, item, micros in uow.advance_fees(tenant, ids, start):
                    advance.setdefault((account_id, start), []).append((sub, kind, item, micros))
            credits = uow.credits(tenant, ids, profile.currency)
            cycles_of = {id(j): counter_cycles(j.account, j.period) for j in jobs}
            bundles = uow.bundle_use(tenant, msisdns, sorted(set().union(*cycles_of.values()))) if msisdns else []
        # each account's one-off charges and each number's bundles found by key, not by a pass over the batch's per account
        pending_of: dict[str, list[OneOffCharge]] = {}
        for c in pending:
            pending_of.setdefault(c.account_id, []).append(c)
        bundles_of: dict[str, list[tuple[int, BundleUse]]] = {}
        for i, b in enumerate(bundles):
            bundles_of.setdefault(b.msisdn, []).append((i, b))
        catalogues: dict[date, BillingCatalogue | None] = {}
        for j, end in zip(jobs, ends):
            tz = ZoneInfo(j.account.time_zone)
            catalogue = catalogues.get(end) if end in catalogues else catalogues.setdefault(end, self._catalogues(tenant, end - timedelta(microseconds=1)))
            if catalogue is None:
                out[id(j)] = f"tenant {tenant} has no plan set in force on {j.period.end}"
                continue
            services = services_of[id(j)]
            numbers = dict.fromkeys(s.msisdn for s in services)
            mine = [u for n in numbers for u in usage.get(n, ())]
            mine_blocks = tuple(block_of[n] for n in numbers if n in block_of) if id(j) in fits and not mine else None
            out[id(j)] = (catalogue, BillInputs(
                j.account, j.period, tuple(services), mine,
                tuple(c for c in pending_of.get(j.account.account_id, ()) if c.charge_date < j.period.end),
                sum_advance(advance.get((j.account.account_id, j.period.start), ())),
                tuple(credits.get(j.account.account_id, ())),
                tuple(b for _i, b in sorted(x for n in numbers for x in bundles_of.get(n, ()))   # in the read's order
                      if not b.cycle or b.cycle in cycles_of[id(j)]), mine_blocks,
                fits[id(j)] if mine_blocks is not None else None))
        return out

    @staticmethod
    def _services(job: _Job, facts: Mapping[str, SubscriberFacts]) -> list[SubscriberService]:
        tz = ZoneInfo(job.account.time_zone)
        return [service_of(a, f, tz) for a in job.assignments if (f := facts.get(a.subscriber_id)) is not None]

    @staticmethod
    def _fit(job: _Job, services: Sequence[SubscriberService], block_of: Mapping[str, UsageBlock], end_at: datetime) -> Fit:
        mine = tuple(block_of[n] for n in dict.fromkeys(s.msisdn for s in services) if n in block_of)
        return block_fit(mine, services, ZoneInfo(job.account.time_zone), job.account.currency, end_at)

    def _write(self, run: BillRun, jobs: list[_Job], request: RunRequest, skipped: int, now: datetime) -> _Tally:
        tenant = run.tenant_id
        profile = self.profiles[tenant]
        with self._uow() as uow:
            _same_credits(uow, tenant, jobs, profile.currency)
            claims: list[PeriodClaim] = []
            billed: list[tuple[_Job, str, bytes]] = []
            frozen: list[tuple[str, str, int, str, datetime]] = []
            frozen_blocks: list[tuple[str, object]] = []
            ledger: list[LedgerEntry] = []
            for job in jobs:
                if job.bill is None:
                    continue
                p = job.bill.period
                if job.bill.empty:
                    claims.append(PeriodClaim(tenant, job.account.account_id, p.start, p.end, PeriodStatus.EMPTY, "", run.run_id))
                    continue
                invoice_id = "inv_" + secrets.token_hex(8)
                bill = job.bill
                billed.append((job, invoice_id, pack_bill(bill, with_usage=request.review)))
                claims.append(PeriodClaim(tenant, job.account.account_id, p.start, p.end,
                                          PeriodStatus.DRAFT if request.review else PeriodStatus.INVOICED, invoice_id, run.run_id))
                if bill.usage_detail is not None:
                    frozen_blocks.extend([(invoice_id, f) for f in bill.usage_detail.frozen])
                else:
                    frozen.extend([(u.cdr_id, invoice_id, u.charge_micros, u.msisdn, u.start_time) for u in bill.usage])
                if bill.one_off_ids:
                    uow.mark_charges(tenant, bill.one_off_ids, invoice_id)
                available = dict(job.credits)
                for source, used in bill.payments:
                    if source.startswith("voucher:"):  # a recharge enters the account's ledger when it is first used
                        ledger.append(LedgerEntry(tenant, job.account.account_id, source, available[source], bill.currency, now, invoice_id))
                    ledger.append(LedgerEntry(tenant, job.account.account_id, f"applied:{invoice_id}:{source}", -used, bill.currency, now,
                                              invoice_id))
            uow.claim(claims)
            if frozen:
                uow.freeze_usage(tenant, frozen)
            if frozen_blocks:
                uow.freeze_blocks(tenant, frozen_blocks)
            if ledger:
                uow.add_ledger(ledger)
            for job in jobs:
                if job.close and job.bill is not None:
                    _final_bill_current(uow, job)
                    if not request.review or job.bill.empty:
                        # status and times only: the rest of the row may have changed since the run read it
                        uow.close_account(tenant, job.account.account_id, now)
                    else:
                        # a final bill stopped at a draft closes the account when it is issued (engine.billing.invoices.
                        # issue_drafts); until then the account is closing (nothing that would change the bill is taken),
                        # and a discarded draft makes it active again, its final period to be billed again
                        mark_closing(uow, tenant, job.account.account_id, now)
            # numbers last: the series' row lock is held from here to the commit, so parallel batches queue only for
            # the invoices' insert, and numbers taken are used in the same transaction (a crash gives them back)
            first = uow.take_numbers(tenant, profile.invoice_series, len(billed)) if billed and not request.review else 0
            stored: list[StoredBill] = []
            for n, (job, invoice_id, packed) in enumerate(billed):
                assert job.bill is not None
                bill = job.bill
                number = "" if request.review else invoice_number(profile.invoice_series, first + n)
                # the number goes into the text around the usage attachment (most of a document's bytes, never searched)
                head, attachment, tail = job.xml
                document = None if request.review else b"".join((head.replace(NUMBER_PLACEHOLDER, number).encode("utf-8"), attachment,
                                                                  tail.replace(NUMBER_PLACEHOLDER, number).encode("utf-8")))
                invoice = Invoice(invoice_id, tenant, job.account.account_id, DocumentKind.INVOICE,
                                  InvoiceState.DRAFT if request.review else InvoiceState.ISSUED, number, profile.invoice_series,
                                  bill.period.start, bill.period.end, bill.currency, bill.issue_date, bill.due_date, bill.totals,
                                  run_id=run.run_id, create_time=now, issue_time=None if request.review else now, lines=bill.lines)
                stored.append(StoredBill(invoice, packed, document))
            uow.add_invoices(stored)
            if not request.review:
                uow.queue_mail([e for (job, _i, _p), s in zip(billed, stored) for e in outbox_entries(job.account, [s.invoice], now)])
            tally = _tally(jobs, request, skipped)
            uow.count_run(run.run_id, tally.issued, tally.drafts, tally.empty, tally.skipped, tally.failed)
            uow.commit()
        return tally

    # -- previews ---------------------------------------------------------------------------
    def preview(self, principal: Principal, tenant_id: str, account_id: str, cycle_date: date | None = None) -> tuple[Bill, bytes]:
        """The next bill of an account as it would be issued now (or for ``cycle_date``), rendered, nothing stored.

        Before a period has ended, the preview shows the period in progress up to today (an estimate)."""
        principal.require(Permission.BILLING_PREVIEW)
        tenant = tenant_id or principal.tenant_id
        if not principal.can_see_tenant(tenant):
            raise NotFound("account", account_id)
        if tenant not in self.profiles:
            raise FailedPrecondition("NO_BILLING_PROFILE", f"tenant {tenant} has no billing profile (plans/billing/{tenant}.yaml)", tenant)
        with self._uow(read_only=True) as uow:
            account = uow.get_account(tenant, account_id)
            if account is None:
                raise NotFound("account", account_id)
            mine = uow.assignments(tenant, [account_id]).get(account_id, [])
            last = uow.last_claims(tenant, [account_id]).get(account_id)
        tz = ZoneInfo(account.time_zone)
        today = local_day(self._clock.now(), tz)
        if cycle_date is not None:
            period = period_for_cycle_date(account, cycle_date)
            if period is None:
                raise InvalidArgument.field("cycle_date", f"{cycle_date} is not a cycle date of account {account_id} "
                                                          f"(anchored on day {account.anchor_day})")
        else:
            period = next_due_period(account, last, mine, today)
            if period is None:
                # the period in progress: from the last bill's end to its cycle date
                far = next_due_period(account, last, mine, date.max - timedelta(days=40))
                assert far is not None
                period = far
        job = _Job(account, mine, period)
        got = self.load_inputs(tenant, [job])[id(job)]
        if isinstance(got, str):
            raise FailedPrecondition("NO_PLAN_SET", got, tenant)
        catalogue, inputs = got
        bill = compute_bill(inputs, catalogue, self.profiles[tenant], max(today, period.end))
        xml = render_ubl(document_for(bill, PREVIEW_NUMBER, self.profiles[tenant])) if not bill.empty else b""
        return bill, xml

    # -- the scheduler ----------------------------------------------------------------------
    def scheduled_tick(self) -> list[BillRun]:
        """What the server's scheduler does every few minutes: a scheduled run for each tenant with a billing profile."""
        out = []
        for tenant in sorted(self.profiles):
            principal = replace(SYSTEM, tenant_id=tenant, subject="scheduler")
            with self._uow(read_only=True) as uow:
                accounts = uow.active_accounts(tenant, None)
                ids = [a.account_id for a in accounts]
                assigned = uow.assignments(tenant, ids)
                lasts = uow.last_claims(tenant, ids)
            due = any(next_due_period(a, lasts.get(a.account_id), assigned.get(a.account_id, []),
                                      local_day(self._clock.now(), ZoneInfo(a.time_zone))) is not None for a in accounts)
            if not due:
                continue
            last = None
            for last in self.start(principal, RunRequest(tenant, RunMode.SCHEDULED)):
                pass
            if last is not None:
                out.append(last)
        return out


def _interim_jobs(account: Account, mine: list[Assignment], last: PeriodClaim | None, today: date) -> list[_Job]:
    """A CSR's "bill now": the regular periods that have ended, then the days since up to yesterday (today is not
    over).  The next regular bill starts where this one ends (engine.billing.timeline.interim_period)."""
    jobs: list[_Job] = []
    cursor = last
    while (due := next_due_period(account, cursor, mine, today)) is not None:
        jobs.append(_Job(account, mine, due))
        cursor = PeriodClaim(account.tenant_id, account.account_id, due.start, due.end, PeriodStatus.INVOICED, "", "")
    period = interim_period(account, cursor, mine, today)
    if period is not None:
        jobs.append(_Job(account, mine, period))
    if not jobs:
        end = cursor.period_end if cursor is not None else today
        raise FailedPrecondition("PERIOD_ALREADY_BILLED", f"account {account.account_id} is billed until {end}: nothing to bill "
                                                          f"before today", account.account_id)
    return jobs


def _same_as_run(request: RunRequest, run: BillRun) -> None:
    """A resume bills what its run was started for: a request that also names a mode, cycle date, accounts, review, interim
    or dry run different from the run's own is refused, field by field, rather than silently billing the run's."""
    errors = ErrorList()
    if request.mode is not None and request.mode is not run.mode:
        errors.add("mode", f"bill run {run.run_id} is a {run.mode.value} run; resume it without a mode or with its own")
    if request.cycle_date is not None and request.cycle_date != run.cycle_date:
        errors.add("cycle_date", f"bill run {run.run_id} bills cycle date {run.cycle_date or 'none'}, not {request.cycle_date}")
    if request.account_ids and tuple(request.account_ids) != tuple(run.account_ids):
        errors.add("account_ids", f"bill run {run.run_id} bills {'its own list of accounts' if run.account_ids else 'the accounts due'};"
                                  " resume it without accounts")
    if request.review and not run.review:
        errors.add("review", f"bill run {run.run_id} issues its invoices; it was not started to stop at drafts")
    if request.interim and not run.interim:
        errors.add("interim", f"bill run {run.run_id} is not an interim bill")
    if request.dry_run:
        errors.add("dry_run", "a dry run is not resumed: start a new one")
    errors.raise_if_any(f"cannot resume bill run {run.run_id}")


def _final_bill_current(uow: BillingUnitOfWork, job: _Job) -> None:
    """A final bill is written only as it was computed: under the account's row lock (which AccountDesk's changes take
    too), no one-off charge of its period is left un-billed and its subscribers are those it was computed with.  A
    charge added meanwhile sends the batch back to compute (AlreadyExists, as a lost claim does); a subscriber assigned
    meanwhile stops the run (the final run refuses an account with active subscribers)."""
    account_id, tenant = job.account.account_id, job.account.tenant_id
    uow.get_account(tenant, account_id, lock=True)
    assert job.bill is not None
    if uow.pending_charges(tenant, [account_id], job.bill.period.end):   # its own were marked above, in this transaction
        raise AlreadyExists("one-off charge", account_id, f"a one-off charge was added to account {account_id} while its final "
                                                          "bill was computed")
    now = sorted((a.subscriber_id, a.valid_from, str(a.valid_to)) for a in uow.assignments(tenant, [account_id]).get(account_id, []))
    if now != sorted((a.subscriber_id, a.valid_from, str(a.valid_to)) for a in job.assignments):
        raise FailedPrecondition("ACCOUNT_CHANGED", f"account {account_id}: its subscribers changed while its final bill was "
                                                    "computed; run the final bill again", account_id)


def _tally(jobs: Sequence[_Job], request: RunRequest, skipped: int) -> _Tally:
    billed = sum(1 for j in jobs if j.bill is not None and not j.bill.empty)
    return _Tally(issued=0 if request.review else billed, drafts=billed if request.review else 0,
                  empty=sum(1 for j in jobs if j.bill is not None and j.bill.empty), skipped=skipped,
                  failed=sum(1 for j in jobs if j.error), failures=tuple((j.account.account_id, j.error) for j in jobs if j.error))


def _already_billed(account_id: str, start: date, end: date) -> FailedPrecondition:
    return FailedPrecondition("PERIOD_ALREADY_BILLED", f"account {account_id}: the period {start} to {end - timedelta(days=1)} is "
                                                       f"already billed (credit and re-bill it to change it)", account_id)
