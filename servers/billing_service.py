"""BillingService: proto <-> domain only; the use cases live in engine.billing (``BillingDesk``, built in
``servers/root.py``).  Billing's background work (the scheduler, the bill runs' worker processes) is started by
``servers.app.start_scheduler``."""

from __future__ import annotations

from datetime import date
from typing import Any, Iterator

import grpc

from billing.v1 import billing_pb2 as pb
from billing.v1 import billing_pb2_grpc as rpc
from engine.billing.addons import OPEN, AddOnPurchase, AddOnView
from engine.billing.accounts import AccountSpec
from engine.billing.desk import BillingDesk
from engine.billing.html import render_html
from engine.billing.model import (
    Account,
    AccountStatus,
    Address,
    Assignment,
    Bill,
    BillLine,
    Delivery,
    DocumentKind,
    Invoice,
    InvoiceState,
    OneOffCharge,
    Totals,
)
from engine.billing.ports import BillRun, InvoiceFilter, RunMode, RunState
from engine.billing.runs import PREVIEW_NUMBER, RunRequest
from engine.billing.ubl import percent_text
from engine.errors import ErrorList, InvalidArgument
from engine.paging import next_token, page_request
from servers.context import current_principal
from servers.convert import EnumMap, day_problem, money, optional_ts, service_name, ts
from servers.root import Root


DELIVERY = EnumMap(pb.Delivery, "DELIVERY_", Delivery)
ACCOUNT_STATUS = EnumMap(pb.AccountStatus, "ACCOUNT_STATUS_", AccountStatus)
MODE = EnumMap(pb.BillRunMode, "BILL_RUN_MODE_", RunMode)
RUN_STATE = EnumMap(pb.BillRunState, "BILL_RUN_STATE_", RunState)
KIND = EnumMap(pb.InvoiceKind, "INVOICE_KIND_", DocumentKind)
STATE = EnumMap(pb.InvoiceState, "INVOICE_STATE_", InvoiceState)
FORMATS = {pb.DOCUMENT_FORMAT_UBL_XML: ("xml", "xml"), pb.DOCUMENT_FORMAT_HTML: ("html", "html"), pb.DOCUMENT_FORMAT_PDF: ("pdf", "pdf")}
DEFAULT_CHUNK = 64 * 1024
MAX_CHUNK = 1024 * 1024
ACCOUNT_FIELDS = ("name", "address", "currency", "anchor_day", "time_zone", "language", "delivery", "email", "vat_id", "company_id",
                  "payment_terms_days", "tax_exemption", "discount_plans", "buyer_reference")


def day(value: date | None) -> str:
    return value.isoformat() if value else ""


def parse_day(text: str, field: str, errors: ErrorList) -> date | None:
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        errors.add(field, f"{text!r} is not a date (YYYY-MM-DD)")
        return None
    if problem := day_problem(value):
        errors.add(field, problem)
        return None
    return value


def account_pb(a: Account) -> pb.Account:
    addr = None if a.address is None else pb.PostalAddress(lines=list(a.address.lines), city=a.address.city,
                                                          postal_code=a.address.postal_code, country=a.address.country,
                                                          region=a.address.region)
    return pb.Account(tenant_id=a.tenant_id, account_id=a.account_id, name=a.name, address=addr, currency=a.currency,
                      anchor_day=a.anchor_day, time_zone=a.time_zone, language=a.language, delivery=DELIVERY.proto(a.delivery),
                      email=a.email, vat_id=a.vat_id, company_id=a.company_id, payment_terms_days=a.payment_terms_days,
                      tax_exemption=a.tax_exemption, discount_plans=list(a.discount_plans), buyer_reference=a.buyer_reference,
                      status=ACCOUNT_STATUS.proto(a.status), create_time=ts(a.create_time), update_time=ts(a.update_time),
                      close_time=ts(a.close_time))


def account_spec(m: pb.Account, fields: set[str] | None = None) -> AccountSpec:
    """``fields``: the update mask (None: every field the message sets)."""
    def wanted(name: str, present: bool) -> bool:
        return name in fields if fields is not None else present

    address = None
    if wanted("address", m.HasField("address")):
        address = Address(tuple(m.address.lines), m.address.city, m.address.postal_code, m.address.country.upper(), m.address.region)
    delivery = DELIVERY.domain(m.delivery, "account.delivery", required=False)
    return AccountSpec(
        account_id=m.account_id, tenant_id=m.tenant_id,
        name=m.name if wanted("name", bool(m.name)) else None,
        address=address,
        currency=m.currency.upper() if wanted("currency", bool(m.currency)) else None,
        anchor_day=m.anchor_day if wanted("anchor_day", m.HasField("anchor_day")) else None,
        time_zone=m.time_zone if wanted("time_zone", bool(m.time_zone)) else None,
        language=m.language if wanted("language", bool(m.language)) else None,
        delivery=delivery if wanted("delivery", delivery is not None) else None,
        email=m.email if wanted("email", bool(m.email)) else None,
        vat_id=m.vat_id if wanted("vat_id", bool(m.vat_id)) else None,
        company_id=m.company_id if wanted("company_id", bool(m.company_id)) else None,
        payment_terms_days=m.payment_terms_days if wanted("payment_terms_days", m.payment_terms_days != 0) else None,
        tax_exemption=m.tax_exemption if wanted("tax_exemption", bool(m.tax_exemption)) else None,
        discount_plans=tuple(m.discount_plans) if wanted("discount_plans", bool(m.discount_plans)) else None,
        buyer_reference=m.buyer_reference if wanted("buyer_reference", bool(m.buyer_reference)) else None,
    )


def assignment_pb(a: Assignment) -> pb.Assignment:
    return pb.Assignment(account_id=a.account_id, subscriber_id=a.subscriber_id, msisdn=a.msisdn, valid_from=ts(a.valid_from),
                         valid_to=ts(a.valid_to))


def charge_pb(c: OneOffCharge) -> pb.OneOffCharge:
    return pb.OneOffCharge(charge_id=c.charge_id, account_id=c.account_id, code=c.code, description=c.description,
                           amount=money(c.amount_micros, c.currency), tax_category=c.tax_category, charge_date=day(c.charge_date),
                           subscriber_id=c.subscriber_id, invoice_id=c.invoice_id)


ADD_ON_STATE = {"active": pb.ADD_ON_STATE_ACTIVE, "expired": pb.ADD_ON_STATE_EXPIRED, "cancelled": pb.ADD_ON_STATE_CANCELLED}


def add_on_pb(p: AddOnPurchase, view: AddOnView | None = None) -> pb.AddOnPurchase:
    return pb.AddOnPurchase(purchase_id=p.purchase_id, subscriber_id=p.subscriber_id, msisdn=p.msisdn, account_id=p.account_id,
                            bundle_id=p.bundle_id, request_id=p.request_id, counter_cycle=p.cycle, valid_from=ts(p.valid_from),
                            valid_until=ts(p.valid_until) if p.valid_until < OPEN else None,   # a monthly add-on running: none
                            allowance=p.allowance, unit=p.unit, fee=money(p.fee_micros, p.currency),
                            tax_category=p.tax_category, charge_id=p.charge_id, purchase_time=ts(p.purchase_time),
                            state=ADD_ON_STATE[view.state] if view is not None else (pb.ADD_ON_STATE_CANCELLED if p.cancel_time else 0),
                            units_used=view.used if view is not None else 0, refund_policy=p.refund,
                            cancel_time=ts(p.cancel_time) if p.cancel_time is not None else None, cancel_request_id=p.cancel_request_id,
                            refund=money(p.refund_micros, p.currency), refund_charge_id=p.refund_charge_id,
                            recurrence=p.recurrence)


def run_pb(r: BillRun) -> pb.BillRun:
    return pb.BillRun(run_id=r.run_id, tenant_id=r.tenant_id, mode=MODE.proto(r.mode), cycle_date=day(r.cycle_date),
                      account_ids=list(r.account_ids), dry_run=r.dry_run, review=r.review, state=RUN_STATE.proto(r.state), total=r.total,
                      issued=r.issued, drafts=r.drafts, empty=r.empty, skipped=r.skipped, failed=r.failed,
                      failures=[pb.BillRunFailure(account_id=a, reason=why) for a, why in r.failures], start_time=ts(r.start_time),
                      end_time=ts(r.end_time), requested_by=r.requested_by)


def totals_pb(t: Totals, currency: str) -> pb.InvoiceTotals:
    return pb.InvoiceTotals(line_extension=money(t.line_extension, currency), allowances=money(t.allowances, currency),
                            charges=money(t.charges, currency), tax_exclusive=money(t.tax_exclusive, currency), tax=money(t.tax, currency),
                            tax_inclusive=money(t.tax_inclusive, currency), prepaid=money(t.prepaid, currency),
                            payable=money(t.payable, currency))


def line_pb(ln: BillLine, currency: str) -> pb.InvoiceLine:
    from datetime import timedelta

    return pb.InvoiceLine(line_id=ln.line_id, charge_type=ln.charge_type.value, description=ln.description,
                          amount=money(ln.amount_micros, currency), tax_code=ln.tax.code, tax_percent=percent_text(ln.tax.percent),
                          tax_category=ln.tax_category, subscriber_id=ln.subscriber_id, msisdn=ln.msisdn, item_id=ln.item_id,
                          service=ln.service, destination=ln.destination, tariff_plan=ln.tariff_plan, period_start=day(ln.period_start),
                          period_end=day(ln.period_end - timedelta(days=1) if ln.period_end else None), quantity=ln.quantity,
                          ref_line_id=ln.ref_line_id)


def invoice_pb(i: Invoice, with_lines: bool = True) -> pb.Invoice:
    from datetime import timedelta

    return pb.Invoice(invoice_id=i.invoice_id, tenant_id=i.tenant_id, account_id=i.account_id, kind=KIND.proto(i.kind),
                      state=STATE.proto(i.state), number=i.number, period_start=day(i.period_start),
                      period_end=day(i.period_end - timedelta(days=1)), currency=i.currency, issue_date=day(i.issue_date),
                      due_date=day(i.due_date), totals=totals_pb(i.totals, i.currency), paid=money(i.paid_micros, i.currency),
                      credited=money(i.credited_micros, i.currency), run_id=i.run_id, reference_id=i.reference_id, reason=i.reason,
                      lines=[line_pb(ln, i.currency) for ln in i.lines] if with_lines else [], create_time=ts(i.create_time),
                      issue_time=ts(i.issue_time))


def preview_invoice(bill: Bill) -> Invoice:
    return Invoice("", bill.tenant_id, bill.account.account_id, DocumentKind.INVOICE, InvoiceState.DRAFT, PREVIEW_NUMBER, "",
                   bill.period.start, bill.period.end, bill.currency, bill.issue_date, bill.due_date, bill.totals, lines=bill.lines)


class BillingServicer(rpc.BillingServiceServicer):
    def __init__(self, desk: BillingDesk) -> None:
        self.desk = desk

    def CreateAccount(self, request: pb.CreateAccountRequest, context: grpc.ServicerContext) -> pb.CreateAccountResponse:
        return pb.CreateAccountResponse(account=account_pb(self.desk.accounts.create(current_principal(), account_spec(request.account))))

    def UpdateAccount(self, request: pb.UpdateAccountRequest, context: grpc.ServicerContext) -> pb.UpdateAccountResponse:
        paths = set(request.update_mask.paths) if request.HasField("update_mask") and request.update_mask.paths else None
        if paths is not None:
            unknown = sorted(paths - set(ACCOUNT_FIELDS))
            if unknown:
                raise InvalidArgument.field("update_mask", f"unknown or read-only field(s): {', '.join(unknown)}")
        spec = account_spec(request.account, paths)
        return pb.UpdateAccountResponse(account=account_pb(self.desk.accounts.update(current_principal(), spec)))

    def GetAccount(self, request: pb.GetAccountRequest, context: grpc.ServicerContext) -> pb.GetAccountResponse:
        account, assigned = self.desk.accounts.get(current_principal(), request.tenant_id, request.account_id)
        return pb.GetAccountResponse(account=account_pb(account), assignments=[assignment_pb(a) for a in assigned])

    def ListAccounts(self, request: pb.ListAccountsRequest, context: grpc.ServicerContext) -> pb.ListAccountsResponse:
        page = page_request(request.page_size, request.page_token, "accounts", (str, str))
        items = self.desk.accounts.list(current_principal(), request.tenant_id, page)
        return pb.ListAccountsResponse(accounts=[account_pb(a) for a in items],
                                       next_page_token=next_token(items, page, lambda a: [a.tenant_id, a.account_id]))

    def AssignSubscriber(self, request: pb.AssignSubscriberRequest, context: grpc.ServicerContext) -> pb.AssignSubscriberResponse:
        when = optional_ts(request, "valid_from")
        a = self.desk.accounts.assign(current_principal(), request.tenant_id, request.account_id, request.subscriber_id, when)
        return pb.AssignSubscriberResponse(assignment=assignment_pb(a))

    def AddOneOffCharge(self, request: pb.AddOneOffChargeRequest, context: grpc.ServicerContext) -> pb.AddOneOffChargeResponse:
        errors = ErrorList()
        when = parse_day(request.charge_date, "charge_date", errors)
        errors.raise_if_any("cannot add one-off charge")
        amount = request.amount.amount_micros if request.HasField("amount") else None
        charge = self.desk.accounts.add_charge(current_principal(), request.tenant_id, request.account_id, request.code, amount,
                                               request.description, request.subscriber_id, when, request.amount.currency)
        return pb.AddOneOffChargeResponse(charge=charge_pb(charge))

    def BuyAddOn(self, request: pb.BuyAddOnRequest, context: grpc.ServicerContext) -> pb.BuyAddOnResponse:
        purchase, bought = self.desk.add_ons.buy(current_principal(), request.subscriber_id, request.bundle_id, request.request_id)
        return pb.BuyAddOnResponse(purchase=add_on_pb(purchase), bought=bought)

    def ListAddOns(self, request: pb.ListAddOnsRequest, context: grpc.ServicerContext) -> pb.ListAddOnsResponse:
        page = page_request(request.page_size, request.page_token, "add_ons", (str, str))
        items = self.desk.add_ons.list(current_principal(), request.subscriber_id, page)
        return pb.ListAddOnsResponse(purchases=[add_on_pb(v.purchase, v) for v in items],
                                     next_page_token=next_token(items, page, lambda v: [v.purchase.purchase_time.isoformat(),
                                                                                        v.purchase.purchase_id]))

    def CancelAddOn(self, request: pb.CancelAddOnRequest, context: grpc.ServicerContext) -> pb.CancelAddOnResponse:
        purchase, cancelled = self.desk.add_ons.cancel(current_principal(), request.purchase_id, request.request_id)
        return pb.CancelAddOnResponse(purchase=add_on_pb(purchase), cancelled=cancelled)

    def StartBillRun(self, request: pb.StartBillRunRequest, context: grpc.ServicerContext) -> Iterator[pb.StartBillRunResponse]:
        errors = ErrorList()
        cycle = parse_day(request.cycle_date, "cycle_date", errors)
        # resuming, no mode means the run's own
        mode = MODE.domain(request.mode, "mode", required=not request.resume_run_id)
        errors.raise_if_any("cannot start bill run")
        run_request = RunRequest(request.tenant_id, mode, cycle, tuple(request.account_ids), request.dry_run, request.review,
                                 request.resume_run_id, request.interim)
        for run in self.desk.runs.start(current_principal(), run_request):
            yield pb.StartBillRunResponse(run=run_pb(run))

    def GetBillRun(self, request: pb.GetBillRunRequest, context: grpc.ServicerContext) -> pb.GetBillRunResponse:
        return pb.GetBillRunResponse(run=run_pb(self.desk.get_run(current_principal(), request.run_id)))

    def PreviewBill(self, request: pb.PreviewBillRequest, context: grpc.ServicerContext) -> pb.PreviewBillResponse:
        errors = ErrorList()
        cycle = parse_day(request.cycle_date, "cycle_date", errors)
        errors.raise_if_any("cannot preview bill")
        bill, xml = self.desk.runs.preview(current_principal(), request.tenant_id, request.account_id, cycle)
        html = render_html(bill, PREVIEW_NUMBER, self.desk.runs.profiles[bill.tenant_id], preview=True)
        return pb.PreviewBillResponse(invoice=invoice_pb(preview_invoice(bill)), ubl_xml=xml, html=html)

    def ListInvoices(self, request: pb.ListInvoicesRequest, context: grpc.ServicerContext) -> pb.ListInvoicesResponse:
        page = page_request(request.page_size, request.page_token, "invoices", (str, str))
        flt = InvoiceFilter(tenant_ids={request.tenant_id} if request.tenant_id else None, account_id=request.account_id,
                            state=STATE.domain(request.state, "state", required=False),
                            kind=(KIND.domain(request.kind, "kind", required=False) or DocumentKind.INVOICE).value if request.kind else "",
                            run_id=request.run_id)
        items = self.desk.invoices.list(current_principal(), flt, page)
        return pb.ListInvoicesResponse(invoices=[invoice_pb(i, with_lines=False) for i in items],
                                       next_page_token=next_token(items, page, lambda i: [i.tenant_id, i.invoice_id]))

    def GetInvoice(self, request: pb.GetInvoiceRequest, context: grpc.ServicerContext) -> pb.GetInvoiceResponse:
        return pb.GetInvoiceResponse(invoice=invoice_pb(self.desk.invoices.get(current_principal(), request.tenant_id, request.invoice_id)))

    def DownloadInvoice(self, request: pb.DownloadInvoiceRequest, context: grpc.ServicerContext) -> Iterator[pb.DownloadInvoiceResponse]:
        fmt = FORMATS.get(request.format)
        if fmt is None:
            raise InvalidArgument.field("format", "one of UBL_XML, HTML, PDF")
        if request.chunk_size < 0 or request.chunk_size > MAX_CHUNK:
            raise InvalidArgument.field("chunk_size", f"0 (default {DEFAULT_CHUNK}) to {MAX_CHUNK} bytes")
        size = request.chunk_size or DEFAULT_CHUNK
        inv, data, content_type = self.desk.invoices.download(current_principal(), request.tenant_id, request.invoice_id, fmt[0])
        name = f"{inv.number or inv.invoice_id}.{fmt[1]}"
        for i in range(0, max(len(data), 1), size):
            first = i == 0
            yield pb.DownloadInvoiceResponse(chunk=data[i:i + size], content_type=content_type if first else "",
                                             file_name=name if first else "", total_bytes=len(data) if first else 0)

    def IssueDrafts(self, request: pb.IssueDraftsRequest, context: grpc.ServicerContext) -> pb.IssueDraftsResponse:
        if not request.invoice_ids:
            raise InvalidArgument.field("invoice_ids", "name the drafts to issue")
        issued = self.desk.invoices.issue_drafts(current_principal(), request.tenant_id, list(request.invoice_ids))
        return pb.IssueDraftsResponse(invoices=[invoice_pb(i) for i in issued])

    def DiscardDraft(self, request: pb.DiscardDraftRequest, context: grpc.ServicerContext) -> pb.DiscardDraftResponse:
        self.desk.invoices.discard_draft(current_principal(), request.tenant_id, request.invoice_id, request.reason)
        return pb.DiscardDraftResponse()

    def CreateCreditNote(self, request: pb.CreateCreditNoteRequest, context: grpc.ServicerContext) -> pb.CreateCreditNoteResponse:
        lines = [(ln.line_id, ln.amount.amount_micros) for ln in request.lines] or None
        note = self.desk.invoices.credit_note(current_principal(), request.tenant_id, request.invoice_id, request.reason, lines,
                                              [ln.amount.currency for ln in request.lines])
        return pb.CreateCreditNoteResponse(credit_note=invoice_pb(note))

    def RebillInvoice(self, request: pb.RebillInvoiceRequest, context: grpc.ServicerContext) -> pb.RebillInvoiceResponse:
        note, new = self.desk.invoices.rebill(current_principal(), request.tenant_id, request.invoice_id, request.reason)
        return pb.RebillInvoiceResponse(credit_note=invoice_pb(note), invoice=invoice_pb(new))

    def RebillRerated(self, request: pb.RebillReratedRequest, context: grpc.ServicerContext) -> pb.RebillReratedResponse:
        errors = ErrorList()
        start = parse_day(request.period_start, "period_start", errors)
        end = parse_day(request.period_end, "period_end", errors)
        for name, text in (("period_start", request.period_start), ("period_end", request.period_end)):
            if not text:
                errors.add(name, "the re-rated days, as YYYY-MM-DD")
        errors.raise_if_any("cannot re-bill re-rated invoices")
        assert start is not None and end is not None
        done = self.desk.invoices.rebill_rerated(current_principal(), request.tenant_id, start, end, request.reason, request.dry_run)
        return pb.RebillReratedResponse(rebills=[
            pb.RebilledInvoice(replaced=invoice_pb(r.replaced), usage_before=money(r.usage_before, r.replaced.currency),
                               usage_after=money(r.usage_after, r.replaced.currency),
                               credit_note=invoice_pb(r.credit_note) if r.credit_note else None,
                               invoice=invoice_pb(r.invoice) if r.invoice else None, note=r.note)
            for r in done])

    def RecordPayment(self, request: pb.RecordPaymentRequest, context: grpc.ServicerContext) -> pb.RecordPaymentResponse:
        inv = self.desk.invoices.record_payment(current_principal(), request.tenant_id, request.invoice_id, request.amount.amount_micros,
                                                request.reference, request.amount.currency)
        return pb.RecordPaymentResponse(invoice=invoice_pb(inv))

    def WriteOffInvoice(self, request: pb.WriteOffInvoiceRequest, context: grpc.ServicerContext) -> pb.WriteOffInvoiceResponse:
        inv = self.desk.invoices.write_off(current_principal(), request.tenant_id, request.invoice_id, request.reason)
        return pb.WriteOffInvoiceResponse(invoice=invoice_pb(inv))


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_BillingServiceServicer_to_server(BillingServicer(root.billing), server)
    return service_name(pb, "BillingService")


__all__ = ["BillingServicer", "register"]
