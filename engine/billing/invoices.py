"""Invoices after a run: read and download them, issue drafts, credit notes, re-bills, payments, write-offs.

States: draft -> issued -> partially_paid / paid, issued -> overdue (the
scheduler marks unpaid invoices past their due date) -> written_off; credit
notes reverse all or part of an issued invoice (fully reversed: credited).
An issued invoice is never edited: a re-bill after re-rating issues a credit
note for it and a new invoice for the same period with the CDRs' current
charges, both numbered in their own series in the same transaction.
"""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from engine import audit
from engine.billing.accounts import closing_refused, reopen
from engine.billing.catalogue import BillingCatalogue
from engine.billing.chargerules import rule_charge
from engine.billing.codec import bill_of, pack_bill
from engine.billing.compute import BillInputs, compute_bill
from engine.billing.credit import credit_parts
from engine.billing.csr_limit import within_csr_limit
from engine.billing.cycles import local_day
from engine.billing.delivery import outbox_entries
from engine.billing.fees import sum_advance
from engine.billing.html import render_html
from engine.billing.model import AccountStatus, Bill, DocumentKind, Invoice, InvoiceState
from engine.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory, InvoiceFilter, LedgerEntry, PeriodStatus, RunMode, StoredBill
from engine.billing.profile import BillingProfile
from engine.billing.runs import document_for, invoice_number
from engine.billing.timeline import service_of
from engine.billing.ubl import Document, render_ubl
from engine.clock import Clock
from engine.currencies import currency_mismatch
from engine.errors import ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.money import positive_amount_problem
from engine.paging import Page
from engine.periods import check_period

FORMATS = ("xml", "html", "pdf")
MAX_REASON = 500
MAX_REBILLS = 1000           # and re-bills at most this many invoices (bounded work per request)
MAX_ISSUE_DRAFTS = 1000      # drafts issued by one IssueDrafts request (one transaction holding the series' row lock)
Printer = Callable[[str], bytes]   # HTML -> PDF (servers/billing_pdf.py: weasyprint)
CatalogueSource = Callable[[str, datetime], "BillingCatalogue | None"]


class InvoiceDesk:
    def __init__(self, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile],
                 catalogues: CatalogueSource, printer: Printer | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.profiles = profiles
        self._catalogues = catalogues
        self.printer = printer

    # -- reading ----------------------------------------------------------------------------
    def _load(self, uow: BillingUnitOfWork, principal: Principal, tenant_id: str, invoice_id: str, lock: bool = False) -> StoredBill:
        """``lock``: the invoice read again under its row lock, held to the commit: what a credit note, a payment or a
        write-off computes from it (credited and paid so far, its state) is what it writes back over."""
        tenant = tenant_id or principal.tenant_id
        found = uow.get_invoice(tenant, invoice_id) if principal.can_see_tenant(tenant) else None
        if found is None and not tenant_id and principal.is_operator:
            found = uow.find_invoice(invoice_id)  # the operator may name an MVNO's invoice without its tenant
        if found is None or not principal.can_see_tenant(found.invoice.tenant_id):
            raise NotFound("invoice", invoice_id)
        if lock:
            found = uow.get_invoice(found.invoice.tenant_id, found.invoice.invoice_id, lock=True)
            if found is None:   # a draft discarded while this request waited for it
                raise NotFound("invoice", invoice_id)
        return found

    def list(self, principal: Principal, flt: InvoiceFilter, page: Page) -> builtins.list[Invoice]:
        principal.require(Permission.BILLING_READ)
        if flt.tenant_ids:
            for t in flt.tenant_ids:
                principal.require_tenant(t)
        elif not principal.is_operator:
            flt = replace(flt, tenant_ids={principal.tenant_id})
        with self._uow(read_only=True) as uow:
            return uow.list_invoices(flt, page.after, page.size)

    def get(self, principal: Principal, tenant_id: str, invoice_id: str) -> Invoice:
        principal.require(Permission.BILLING_READ)
        with self._uow(read_only=True) as uow:
            return self._load(uow, principal, tenant_id, invoice_id).invoice

    def bill_of(self, stored: StoredBill) -> Bill:
        return bill_of(stored)

    def download(self, principal: Principal, tenant_id: str, invoice_id: str, fmt: str) -> tuple[Invoice, bytes, str]:
        """The document as UBL XML (the legal e-invoice), HTML or PDF (the human-readable bill)."""
        principal.require(Permission.BILLING_READ)
        if fmt not in FORMATS:
            raise InvalidArgument.field("format", f"one of {', '.join(FORMATS)}")
        with self._uow(read_only=True) as uow:
            stored = self._load(uow, principal, tenant_id, invoice_id)
            reference = None
            if stored.invoice.kind is DocumentKind.CREDIT_NOTE and stored.invoice.reference_id:
                ref = uow.get_invoice(stored.invoice.tenant_id, stored.invoice.reference_id)
                reference = ref.invoice if ref else None
        inv = stored.invoice
        if fmt == "xml":
            if stored.document is None:
                raise FailedPrecondition("INVOICE_DRAFT", f"invoice {invoice_id} is a draft: it has no e-invoice until it is issued", invoice_id)
            return inv, stored.document, "application/xml"
        html = render_html(self.bill_of(stored), inv.number or "DRAFT", self.profiles[inv.tenant_id], inv.kind,
                           reference.number if reference else "", inv.reason)
        if fmt == "html":
            return inv, html.encode("utf-8"), "text/html; charset=utf-8"
        if self.printer is None:
            raise FailedPrecondition("NO_PDF_PRINTER", "this server has no PDF printer (weasyprint and Pango: see the README)")
        return inv, self.printer(html), "application/pdf"

    # -- drafts -----------------------------------------------------------------------------
    def issue_drafts(self, principal: Principal, tenant_id: str, invoice_ids: Sequence[str]) -> builtins.list[Invoice]:
        """Number, render and issue drafts (a review run's output) in one transaction."""
        principal.require(Permission.BILLING_ISSUE)
        _distinct_drafts(invoice_ids)
        now = self._clock.now()
        out: builtins.list[Invoice] = []
        with self._uow() as uow:
            # each draft under its row lock, taken in id order (two requests with drafts in common cannot deadlock), and its
            # state checked under it: a second IssueDrafts or a DiscardDraft of the same draft waits here, then finds it issued
            locked = {i: self._load(uow, principal, tenant_id, i, lock=True) for i in sorted(invoice_ids)}
            drafts = [locked[i] for i in invoice_ids]
            for d in drafts:
                if d.invoice.state is not InvoiceState.DRAFT:
                    raise FailedPrecondition("INVOICE_STATE", f"invoice {d.invoice.invoice_id} is {d.invoice.state.value}, not a draft",
                                             d.invoice.invoice_id)
            for k, d in enumerate(drafts):
                if _is_final_draft(uow, d):
                    _earlier_drafts_issued(uow, d.invoice, invoice_ids[:k])
            by_tenant: dict[str, builtins.list[StoredBill]] = {}
            for d in drafts:
                by_tenant.setdefault(d.invoice.tenant_id, []).append(d)
            for tenant, items in by_tenant.items():
                profile = self.profiles[tenant]
                first = uow.take_numbers(tenant, profile.invoice_series, len(items))
                for k, d in enumerate(items):
                    number = invoice_number(profile.invoice_series, first + k)
                    bill = self.bill_of(d)
                    xml = render_ubl(document_for(bill, number, profile))
                    issued = replace(d.invoice, state=InvoiceState.ISSUED, number=number, issue_time=now)
                    if not uow.update_invoice(issued, xml, pack_bill(bill, with_usage=False), was=InvoiceState.DRAFT):
                        raise _no_longer_draft(d.invoice.invoice_id)
                    uow.update_claim_status(tenant, issued.account_id, issued.period_start, PeriodStatus.INVOICED)
                    if bill.period.final and _of_final_run(uow, issued):
                        uow.close_account(tenant, issued.account_id, now)   # the final bill's draft: closed once issued
                    account = uow.get_account(tenant, issued.account_id)
                    if account is not None:
                        uow.queue_mail(outbox_entries(account, [issued], now))
                    uow.audit.append(audit.entry(principal, now, "invoice.issue", "invoice", issued.invoice_id, {"state": "draft"},
                                                 {"state": "issued", "number": number}, tenant))
                    out.append(issued)
            uow.commit()
        return out

    def discard_draft(self, principal: Principal, tenant_id: str, invoice_id: str, reason: str) -> None:
        """Drop a draft: its period, CDRs and one-off charges are free to be billed again (a draft has no number, so no gap)."""
        principal.require(Permission.BILLING_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            d = self._load(uow, principal, tenant_id, invoice_id, lock=True)   # an IssueDrafts of it at once: one waits for the other
            if d.invoice.state is not InvoiceState.DRAFT:
                raise FailedPrecondition("INVOICE_STATE", f"invoice {invoice_id} is {d.invoice.state.value}: only drafts are discarded; "
                                                          "credit an issued invoice", invoice_id)
            final = _is_final_draft(uow, d)
            if not final:
                account = uow.get_account(d.invoice.tenant_id, d.invoice.account_id, lock=True)
                if account is not None and account.status is AccountStatus.CLOSING:
                    # the final draft, of a later period, waits: discarding this one would leave a period unbilled forever
                    raise closing_refused(account)
            if not uow.delete_draft(d.invoice):
                raise _no_longer_draft(invoice_id)
            if final:
                reopen(uow, d.invoice.tenant_id, d.invoice.account_id, now)   # closing no more: its final period is billed again
            uow.audit.append(audit.entry(principal, now, "invoice.discard", "invoice", invoice_id, {"state": "draft"},
                                         {"state": "discarded", "reason": reason}, d.invoice.tenant_id))
            uow.commit()

    # -- credit notes and re-bills ----------------------------------------------------------
    def credit_note(self, principal: Principal, tenant_id: str, invoice_id: str, reason: str,
                    lines: Sequence[tuple[str, int]] | None, currencies: Sequence[str] = ()) -> Invoice:
        """Credit all of ``invoice_id`` (``lines`` None) or amounts of some of its lines; CSRs up to the profile's limit.
        ``currencies``: the currency each line's amount was sent in ("" for none), refused unless the invoice's."""
        principal.require(Permission.BILLING_WRITE)
        _reason(reason)
        now = self._clock.now()
        with self._uow() as uow:
            stored = self._load(uow, principal, tenant_id, invoice_id, lock=True)
            errors = ErrorList()
            for i, currency in enumerate(currencies):
                if problem := currency_mismatch(currency, stored.invoice.currency):
                    errors.add(f"lines[{i}].amount.currency", problem)
            errors.raise_if_any("cannot credit invoice")
            note = self._credit(uow, principal, stored, reason, lines, now)
            uow.commit()
        return note

    def _credit(self, uow: BillingUnitOfWork, principal: Principal, stored: StoredBill, reason: str,
                lines: Sequence[tuple[str, int]] | None, now: datetime) -> Invoice:
        inv = stored.invoice
        if inv.kind is not DocumentKind.INVOICE:
            raise FailedPrecondition("NOT_AN_INVOICE", f"{inv.invoice_id} is a credit note: credit notes are not credited", inv.invoice_id)
        if inv.state in (InvoiceState.DRAFT, InvoiceState.CREDITED, InvoiceState.WRITTEN_OFF):
            raise FailedPrecondition("INVOICE_STATE", f"invoice {inv.number or inv.invoice_id} is {inv.state.value}: only an issued invoice "
                                                      "is credited", inv.invoice_id)
        bill = self.bill_of(stored)
        parts = credit_parts(bill, inv.number, inv.credited_micros, uow.credited_lines(inv.invoice_id), lines)
        profile = self.profiles[inv.tenant_id]
        amount = parts.totals.tax_inclusive
        number = invoice_number(profile.credit_note_series, uow.take_numbers(inv.tenant_id, profile.credit_note_series, 1))
        # a CSR's limit holds for the invoice's credit notes together: ``stored`` was read under the invoice's row lock
        # (``_load(lock=True)``), so a note committed meanwhile counts; a refusal rolls the number back
        within_csr_limit(principal, profile, amount, inv.currency, "a credit note", lambda: inv.credited_micros, "credited on the invoice")
        today = local_day(now, ZoneInfo(bill.account.time_zone))
        doc = Document(DocumentKind.CREDIT_NOTE, number, today, None, inv.currency, inv.period_start, inv.period_end, bill.account, profile,
                       parts.lines, parts.adjustments, parts.taxes, parts.totals, references=((inv.number, inv.issue_date or today),),
                       note=f"Credit note for invoice {inv.number}: {reason}")
        xml = render_ubl(doc)
        note_bill = replace(bill, issue_date=today, due_date=today, lines=parts.lines, adjustments=parts.adjustments, taxes=parts.taxes,
                            totals=parts.totals, usage=(), usage_line_ids=(), one_off_ids=(), payments=())
        note = Invoice("cn_" + secrets.token_hex(8), inv.tenant_id, inv.account_id, DocumentKind.CREDIT_NOTE, InvoiceState.ISSUED, number,
                       profile.credit_note_series, inv.period_start, inv.period_end, inv.currency, today, None, parts.totals,
                       reference_id=inv.invoice_id, reason=reason, create_time=now, issue_time=now, lines=parts.lines)
        uow.add_invoices([StoredBill(note, pack_bill(note_bill, with_usage=False), xml)])
        owed_before = max(inv.totals.payable - inv.paid_micros - inv.credited_micros, 0)
        to_account = amount - min(amount, owed_before)
        credited = inv.credited_micros + amount
        state = InvoiceState.CREDITED if credited >= inv.totals.tax_inclusive else inv.state
        if state is not InvoiceState.CREDITED and inv.totals.payable - inv.paid_micros - credited <= 0:
            state = InvoiceState.PAID
        uow.update_invoice(replace(inv, credited_micros=credited, state=state))
        if to_account:
            uow.add_ledger([LedgerEntry(inv.tenant_id, inv.account_id, f"credit:{note.invoice_id}", to_account, inv.currency, now,
                                        note.invoice_id)])
        # delivered like an invoice: the e-mail outbox, in the transaction that issues it
        uow.queue_mail(outbox_entries(uow.get_account(inv.tenant_id, inv.account_id) or bill.account, [note], now))
        uow.audit.append(audit.entry(principal, now, "invoice.credit_note", "invoice", inv.invoice_id, {"state": inv.state.value},
                                     {"state": state.value, "credit_note": number, "amount_micros": amount, "reason": reason}, inv.tenant_id))
        return note

    def rebill(self, principal: Principal, tenant_id: str, invoice_id: str, reason: str) -> tuple[Invoice, Invoice]:
        """After re-rating: credit the invoice in full and issue a new one for the same period with the CDRs' current charges."""
        principal.require(Permission.BILLING_ISSUE)
        _reason(reason)
        now = self._clock.now()
        with self._uow() as uow:
            stored = self._load(uow, principal, tenant_id, invoice_id, lock=True)
            inv = stored.invoice
            old = self.bill_of(stored)
            profile = self.profiles[inv.tenant_id]
            # the account's row lock before its credit is read (below): a bill run's batch takes it too before it writes
            # the credit its bills use, so one overpayment is not used by both
            account = uow.get_account(inv.tenant_id, inv.account_id, lock=True)
            assert account is not None
            frozen = uow.frozen_usage(inv.invoice_id)
            current = uow.usage_by_ids(inv.tenant_id, [cdr for cdr, _ in frozen])
            assigned = uow.assignments(inv.tenant_id, [inv.account_id]).get(inv.account_id, [])
            facts = uow.subscriber_facts(inv.tenant_id, [a.subscriber_id for a in assigned])
            tz = ZoneInfo(account.time_zone)
            services = tuple(service_of(a, facts[a.subscriber_id], tz) for a in assigned if a.subscriber_id in facts)
            advance = sum_advance((s, k, i, m) for _a, s, k, i, m in uow.advance_fees(inv.tenant_id, [inv.account_id], inv.period_start,
                                                                                       exclude_invoice=inv.invoice_id))
            charges = tuple(uow.charges_of(inv.invoice_id))
            catalogue = self._catalogues(inv.tenant_id, datetime.combine(inv.period_end, datetime.min.time(), tz) - timedelta(microseconds=1))
            if catalogue is None:
                raise FailedPrecondition("NO_PLAN_SET", f"tenant {inv.tenant_id} has no plan set for {inv.period_end}", inv.tenant_id)
            note = self._credit(uow, principal, stored, reason, None, now)
            credits = tuple(uow.credits(inv.tenant_id, [inv.account_id], inv.currency).get(inv.account_id, []))
            inputs = BillInputs(account, old.period, services, current, charges, advance, credits, old.bundles)
            bill = compute_bill(inputs, catalogue, profile, local_day(now, tz))
            if bill.lines == old.lines and bill.adjustments == old.adjustments:
                raise FailedPrecondition("NOTHING_TO_REBILL", f"invoice {inv.number}: the CDRs' charges have not changed since it was issued",
                                         inv.invoice_id)
            number = invoice_number(profile.invoice_series, uow.take_numbers(inv.tenant_id, profile.invoice_series, 1))
            xml = render_ubl(document_for(bill, number, profile))
            new = Invoice("inv_" + secrets.token_hex(8), inv.tenant_id, inv.account_id, DocumentKind.INVOICE, InvoiceState.ISSUED, number,
                          profile.invoice_series, inv.period_start, inv.period_end, inv.currency, bill.issue_date, bill.due_date,
                          bill.totals, run_id=inv.run_id, reference_id=inv.invoice_id, reason=reason, create_time=now, issue_time=now,
                          lines=bill.lines)
            uow.add_invoices([StoredBill(new, pack_bill(bill, with_usage=False), xml)])
            uow.move_frozen_usage(inv.invoice_id, new.invoice_id, [(u.cdr_id, u.charge_micros) for u in bill.usage])
            if bill.one_off_ids:
                uow.mark_charges(inv.tenant_id, bill.one_off_ids, new.invoice_id)
            uow.add_ledger([LedgerEntry(inv.tenant_id, inv.account_id, f"applied:{new.invoice_id}:{source}", -used, inv.currency, now,
                                        new.invoice_id) for source, used in bill.payments])
            uow.repoint_claim(inv.tenant_id, inv.account_id, inv.period_start, new.invoice_id)
            uow.queue_mail(outbox_entries(account, [new], now))
            uow.audit.append(audit.entry(principal, now, "invoice.rebill", "invoice", inv.invoice_id, {"number": inv.number},
                                         {"credit_note": note.number, "new_invoice": number, "reason": reason}, inv.tenant_id))
            uow.commit()
        return note, new

    def rebill_rerated(self, principal: Principal, tenant_id: str, start: date, end: date, reason: str,
                       dry_run: bool = False) -> builtins.list[Rebilled]:
        """After re-rating ``[start, end)``: every issued invoice of the tenant whose period touches those days and whose
        CDRs now carry other charges in the usage ledger than the ones it froze is re-billed (credit note and new invoice,
        each in its own transaction, queued for e-mail like any invoice).  Running it again finds nothing left to do: a
        re-billed invoice is credited, and its replacement froze the current charges.  ``dry_run`` only lists them."""
        principal.require(Permission.BILLING_PREVIEW if dry_run else Permission.BILLING_ISSUE)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        errors = ErrorList()
        check_period(start, end, errors, "re-bill")
        if not dry_run and (not reason.strip() or len(reason) > MAX_REASON):
            errors.add("reason", f"say why (1-{MAX_REASON} characters): it is printed on the credit notes and new invoices")
        errors.raise_if_any("cannot re-bill re-rated invoices")
        found = self._changed(tenant, start, end)
        out: builtins.list[Rebilled] = []
        for inv, before, after in found:
            if dry_run:
                out.append(Rebilled(inv, before, after))
                continue
            try:
                note, new = self.rebill(principal, tenant, inv.invoice_id, reason)
            except FailedPrecondition as exc:
                if exc.reason != "NOTHING_TO_REBILL":
                    raise
                out.append(Rebilled(inv, before, after, note="the new charges round to the same bill"))
                continue
            out.append(Rebilled(inv, before, after, note, new))
        return out

    def _changed(self, tenant: str, start: date, end: date) -> builtins.list[tuple[Invoice, int, int]]:
        """Issued invoices touching ``[start, end)`` (a day of margin either side: periods are local days) whose frozen
        CDR charges differ from the ledger's: (invoice, frozen total, current total)."""
        live = frozenset((InvoiceState.ISSUED, InvoiceState.PARTIALLY_PAID, InvoiceState.PAID, InvoiceState.OVERDUE))
        # the store reads only these: not every invoice the tenant ever had
        flt = InvoiceFilter(tenant_ids={tenant}, kind=DocumentKind.INVOICE.value, states=live,
                            touching=(start - timedelta(days=1), end + timedelta(days=1)))
        out: builtins.list[tuple[Invoice, int, int]] = []
        after: Any = None   # the store's keyset: (tenant, invoice id) of the last row read
        with self._uow(read_only=True) as uow:
            while True:
                page = uow.list_invoices(flt, after, 500)
                for inv in page:
                    frozen = dict(uow.frozen_usage(inv.invoice_id))
                    if not frozen:
                        continue
                    current = {u.cdr_id: u.charge_micros for u in uow.usage_by_ids(inv.tenant_id, builtins.list(frozen))}
                    if current != frozen:
                        out.append((inv, sum(frozen.values()), sum(current.values())))
                        if len(out) > MAX_REBILLS:
                            raise FailedPrecondition("TOO_MANY_REBILLS", f"more than {MAX_REBILLS} invoices of tenant {tenant} changed "
                                                                         f"from {start} to {end}: re-bill a shorter period", tenant)
                if len(page) < 500:
                    break
                after = [page[-1].tenant_id, page[-1].invoice_id]
        return out

    # -- payments and write-offs -----------------------------------------------------------
    def record_payment(self, principal: Principal, tenant_id: str, invoice_id: str, amount_micros: int, reference: str,
                       currency: str = "") -> Invoice:
        """A payment received for an invoice; anything above what is owed goes to the account as credit."""
        principal.require(Permission.BILLING_ISSUE)
        now = self._clock.now()
        errors = ErrorList()
        if not reference or len(reference) > 80:
            errors.add("reference", "the payment's reference (1-80 characters): a payment is recorded once per reference")
        with self._uow() as uow:
            inv = self._load(uow, principal, tenant_id, invoice_id, lock=True).invoice
            if problem := positive_amount_problem(amount_micros, inv.currency):
                errors.add("amount", problem)
            if problem := currency_mismatch(currency, inv.currency):
                errors.add("amount.currency", problem)
            errors.raise_if_any("cannot record payment")
            if inv.kind is not DocumentKind.INVOICE or inv.state not in (InvoiceState.ISSUED, InvoiceState.PARTIALLY_PAID, InvoiceState.OVERDUE):
                raise FailedPrecondition("INVOICE_STATE", f"invoice {inv.number or inv.invoice_id} is {inv.state.value}: payments go to "
                                                          "issued, partially paid or overdue invoices", inv.invoice_id)
            owed = max(inv.totals.payable - inv.paid_micros - inv.credited_micros, 0)
            applied = min(owed, amount_micros)
            paid = inv.paid_micros + applied
            state = InvoiceState.PAID if paid + inv.credited_micros >= inv.totals.payable else InvoiceState.PARTIALLY_PAID
            uow.add_ledger([LedgerEntry(inv.tenant_id, inv.account_id, f"payment:{reference}", amount_micros - applied, inv.currency, now,
                                        inv.invoice_id)])
            updated = replace(inv, paid_micros=paid, state=state)
            uow.update_invoice(updated)
            uow.audit.append(audit.entry(principal, now, "invoice.payment", "invoice", inv.invoice_id, {"state": inv.state.value},
                                         {"state": state.value, "amount_micros": amount_micros, "reference": reference}, inv.tenant_id))
            uow.commit()
        return updated

    def write_off(self, principal: Principal, tenant_id: str, invoice_id: str, reason: str) -> Invoice:
        principal.require(Permission.BILLING_ISSUE)
        _reason(reason)
        now = self._clock.now()
        with self._uow() as uow:
            inv = self._load(uow, principal, tenant_id, invoice_id, lock=True).invoice
            if inv.kind is not DocumentKind.INVOICE or inv.state not in (InvoiceState.ISSUED, InvoiceState.PARTIALLY_PAID, InvoiceState.OVERDUE):
                raise FailedPrecondition("INVOICE_STATE", f"invoice {inv.number or inv.invoice_id} is {inv.state.value}: only an unpaid "
                                                          "issued invoice is written off", inv.invoice_id)
            updated = replace(inv, state=InvoiceState.WRITTEN_OFF, reason=reason)
            uow.update_invoice(updated)
            uow.audit.append(audit.entry(principal, now, "invoice.write_off", "invoice", inv.invoice_id, {"state": inv.state.value},
                                         {"state": "written_off", "reason": reason}, inv.tenant_id))
            uow.commit()
        return updated

    def mark_overdue(self, today: date) -> int:
        """Issued or partially paid invoices past their due date become overdue (the scheduler calls this); the
        profile's ``invoice_overdue`` charge rules raise their charges (a late payment penalty) in the same transaction."""
        with self._uow() as uow:
            for inv in uow.due_unpaid(today):
                profile = self.profiles.get(inv.tenant_id)
                for kind in profile.rules_for("invoice_overdue", due_micros=inv.open_micros) if profile else ():
                    uow.add_charge(rule_charge("invoice_overdue", kind, inv.tenant_id, inv.account_id, inv.currency, today, inv.invoice_id,
                                               description=f"{kind.name} ({inv.number})"))
            n = uow.mark_overdue(today)
            uow.commit()
        return n


@dataclass(frozen=True)
class Rebilled:
    """An issued invoice whose CDRs were re-rated: what it froze, what the ledger says now, and (unless a dry run) its
    credit note and the new invoice."""

    replaced: Invoice
    usage_before: int                 # the frozen charges of its CDRs (micros)
    usage_after: int                  # their charges in the usage ledger now
    credit_note: Invoice | None = None
    invoice: Invoice | None = None
    note: str = ""                    # why it was not re-billed


def _reason(reason: str) -> None:
    if not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidArgument.field("reason", f"say why (1-{MAX_REASON} characters): it is printed on the document and audited")


def _no_longer_draft(invoice_id: str) -> FailedPrecondition:
    return FailedPrecondition("INVOICE_STATE", f"invoice {invoice_id} is no longer a draft: another request issued or discarded it",
                              invoice_id)


def _distinct_drafts(invoice_ids: Sequence[str]) -> None:
    """Each draft named once (a repeat took a number per mention: a gap in the series), at most MAX_ISSUE_DRAFTS."""
    errors = ErrorList()
    if len(invoice_ids) > MAX_ISSUE_DRAFTS:
        errors.add("invoice_ids", f"at most {MAX_ISSUE_DRAFTS} drafts per request, not {len(invoice_ids)}: issue them in parts")
    seen: dict[str, int] = {}
    for i, invoice_id in enumerate(invoice_ids[:MAX_ISSUE_DRAFTS]):
        if invoice_id in seen:
            errors.add(f"invoice_ids[{i}]", f"{invoice_id} is already named at invoice_ids[{seen[invoice_id]}]: name each draft once")
        else:
            seen[invoice_id] = i
    errors.raise_if_any("cannot issue drafts")


def _is_final_draft(uow: BillingUnitOfWork, stored: StoredBill) -> bool:
    """Whether ``stored`` is a final run's final draft (issuing it closes the account, discarding it reopens it)."""
    return _of_final_run(uow, stored.invoice) and bill_of(stored).period.final


def _earlier_drafts_issued(uow: BillingUnitOfWork, final: Invoice, before: Sequence[str]) -> None:
    """A final bill is issued last: no draft of an earlier period of its account may still be open, unless it is issued
    by the same request before it (``before``: the drafts named ahead of it)."""
    flt = InvoiceFilter(tenant_ids={final.tenant_id}, account_id=final.account_id, state=InvoiceState.DRAFT)
    waiting = sorted((i.period_start, i.invoice_id) for i in uow.list_invoices(flt, None, MAX_ISSUE_DRAFTS)
                     if i.period_start < final.period_start and i.invoice_id not in before)
    if waiting:
        start, invoice_id = waiting[0]
        raise FailedPrecondition("EARLIER_DRAFT_OPEN", f"account {final.account_id}: its final bill {final.invoice_id} cannot be "
                                                       f"issued while draft {invoice_id} of an earlier period (from {start}) is open: "
                                                       "issue that draft first, or name it before the final one", final.account_id)


def _of_final_run(uow: BillingUnitOfWork, invoice: Invoice) -> bool:
    """Whether ``invoice`` was made by a final bill run (its final period's draft closes the account when issued)."""
    run = uow.get_run(invoice.run_id) if invoice.run_id else None
    return run is not None and run.mode is RunMode.FINAL
