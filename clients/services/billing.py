"""BillingService over the wire: the billing desks' use cases (the CLI's accounts, bills and invoices commands use it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterator, Sequence

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from billing.v1 import billing_pb2 as pb
from billing.v1 import billing_pb2_grpc as rpc
from billing.v1 import common_pb2
from clients.services.base import timestamp

FORMATS = {"xml": pb.DOCUMENT_FORMAT_UBL_XML, "html": pb.DOCUMENT_FORMAT_HTML, "pdf": pb.DOCUMENT_FORMAT_PDF}
MODES = {"scheduled": pb.BILL_RUN_MODE_SCHEDULED, "manual": pb.BILL_RUN_MODE_MANUAL, "on_demand": pb.BILL_RUN_MODE_ON_DEMAND,
         "final": pb.BILL_RUN_MODE_FINAL}


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


class BillingClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.BillingServiceStub(channel)

    # accounts
    def create_account(self, account: pb.Account) -> pb.Account:
        return self.rpc.CreateAccount(pb.CreateAccountRequest(account=account)).account

    def update_account(self, account: pb.Account, fields: Sequence[str] = ()) -> pb.Account:
        mask = FieldMask(paths=list(fields)) if fields else None
        return self.rpc.UpdateAccount(pb.UpdateAccountRequest(account=account, update_mask=mask)).account

    def get_account(self, account_id: str, tenant_id: str = "") -> pb.GetAccountResponse:
        return self.rpc.GetAccount(pb.GetAccountRequest(tenant_id=tenant_id, account_id=account_id))

    def list_accounts(self, tenant_id: str = "", page_size: int = 0, page_token: str = "") -> pb.ListAccountsResponse:
        return self.rpc.ListAccounts(pb.ListAccountsRequest(tenant_id=tenant_id, page_size=page_size, page_token=page_token))

    def assign(self, account_id: str, subscriber_id: str, valid_from: datetime | None = None, tenant_id: str = "") -> pb.Assignment:
        when = timestamp(valid_from) if valid_from is not None else None
        return self.rpc.AssignSubscriber(pb.AssignSubscriberRequest(tenant_id=tenant_id, account_id=account_id, subscriber_id=subscriber_id,
                                                                     valid_from=when)).assignment

    def add_charge(self, account_id: str, code: str, amount_micros: int | None = None, currency: str = "", description: str = "",
                   subscriber_id: str = "", charge_date: date | None = None, tenant_id: str = "") -> pb.OneOffCharge:
        amount = None if amount_micros is None else common_pb2.Money(amount_micros=amount_micros, currency=currency)
        return self.rpc.AddOneOffCharge(pb.AddOneOffChargeRequest(tenant_id=tenant_id, account_id=account_id, code=code, amount=amount,
                                                                   description=description, subscriber_id=subscriber_id,
                                                                   charge_date=_day(charge_date))).charge

    def buy_add_on(self, subscriber_id: str, bundle_id: str, request_id: str) -> pb.BuyAddOnResponse:
        """Buy an add-on bundle for a subscriber (its plan's ``add_ons``); a retry with the same request id buys nothing more."""
        return self.rpc.BuyAddOn(pb.BuyAddOnRequest(subscriber_id=subscriber_id, bundle_id=bundle_id, request_id=request_id))

    def list_add_ons(self, subscriber_id: str, page_size: int = 0, page_token: str = "") -> pb.ListAddOnsResponse:
        """A subscriber's add-on purchases with their state and units used, oldest first."""
        return self.rpc.ListAddOns(pb.ListAddOnsRequest(subscriber_id=subscriber_id, page_size=page_size, page_token=page_token))

    def cancel_add_on(self, purchase_id: str, request_id: str) -> pb.CancelAddOnResponse:
        """Cancel an add-on purchase now (refund per its bundle's policy); a retry with the same request id cancels nothing more."""
        return self.rpc.CancelAddOn(pb.CancelAddOnRequest(purchase_id=purchase_id, request_id=request_id))

    # bill runs
    def run(self, mode: str | None = None, cycle_date: date | None = None, account_ids: Sequence[str] = (), dry_run: bool = False,
            review: bool = False, resume_run_id: str = "", tenant_id: str = "", interim: bool = False) -> Iterator[pb.BillRun]:
        # a resume names no mode unless asked to (the run's own is used; another is refused); a new run is manual by default
        number = MODES[mode] if mode else (0 if resume_run_id else MODES["manual"])
        request = pb.StartBillRunRequest(tenant_id=tenant_id, mode=number, cycle_date=_day(cycle_date),
                                         account_ids=list(account_ids), dry_run=dry_run, review=review, resume_run_id=resume_run_id,
                                         interim=interim)
        for reply in self.rpc.StartBillRun(request):
            yield reply.run

    def get_run(self, run_id: str) -> pb.BillRun:
        return self.rpc.GetBillRun(pb.GetBillRunRequest(run_id=run_id)).run

    def preview(self, account_id: str, cycle_date: date | None = None, tenant_id: str = "") -> pb.PreviewBillResponse:
        return self.rpc.PreviewBill(pb.PreviewBillRequest(tenant_id=tenant_id, account_id=account_id, cycle_date=_day(cycle_date)))

    # invoices
    def list_invoices(self, account_id: str = "", run_id: str = "", state: int = 0, kind: int = 0, tenant_id: str = "",
                      page_size: int = 0, page_token: str = "") -> pb.ListInvoicesResponse:
        return self.rpc.ListInvoices(pb.ListInvoicesRequest(tenant_id=tenant_id, account_id=account_id, run_id=run_id, state=state,
                                                             kind=kind, page_size=page_size, page_token=page_token))

    def get_invoice(self, invoice_id: str, tenant_id: str = "") -> pb.Invoice:
        return self.rpc.GetInvoice(pb.GetInvoiceRequest(tenant_id=tenant_id, invoice_id=invoice_id)).invoice

    def download(self, invoice_id: str, fmt: str = "xml", chunk_size: int = 0, tenant_id: str = "") -> tuple[bytes, str, str]:
        """(document bytes, content type, file name)."""
        parts: list[bytes] = []
        content_type = name = ""
        for reply in self.rpc.DownloadInvoice(pb.DownloadInvoiceRequest(tenant_id=tenant_id, invoice_id=invoice_id, format=FORMATS[fmt],
                                                                         chunk_size=chunk_size)):
            parts.append(reply.chunk)
            content_type = content_type or reply.content_type
            name = name or reply.file_name
        return b"".join(parts), content_type, name

    def credit_note(self, invoice_id: str, reason: str, lines: Sequence[tuple[str, int, str]] = (), tenant_id: str = "") -> pb.Invoice:
        """``lines``: (line id, amount micros, currency); none = the whole invoice."""
        credit_lines = [pb.CreditLine(line_id=i, amount=common_pb2.Money(amount_micros=m, currency=c)) for i, m, c in lines]
        return self.rpc.CreateCreditNote(pb.CreateCreditNoteRequest(tenant_id=tenant_id, invoice_id=invoice_id, reason=reason,
                                                                     lines=credit_lines)).credit_note

    def rebill(self, invoice_id: str, reason: str, tenant_id: str = "") -> pb.RebillInvoiceResponse:
        return self.rpc.RebillInvoice(pb.RebillInvoiceRequest(tenant_id=tenant_id, invoice_id=invoice_id, reason=reason))

    def rebill_rerated(self, start: date, end: date, reason: str, dry_run: bool = False, tenant_id: str = "") -> list[pb.RebilledInvoice]:
        """Re-bill every issued invoice touching the re-rated days ``[start, end)`` whose CDRs' charges changed."""
        return list(self.rpc.RebillRerated(pb.RebillReratedRequest(tenant_id=tenant_id, period_start=_day(start), period_end=_day(end),
                                                                    reason=reason, dry_run=dry_run)).rebills)

    def issue_drafts(self, invoice_ids: Sequence[str], tenant_id: str = "") -> list[pb.Invoice]:
        return list(self.rpc.IssueDrafts(pb.IssueDraftsRequest(tenant_id=tenant_id, invoice_ids=list(invoice_ids))).invoices)

    def discard_draft(self, invoice_id: str, reason: str, tenant_id: str = "") -> None:
        self.rpc.DiscardDraft(pb.DiscardDraftRequest(tenant_id=tenant_id, invoice_id=invoice_id, reason=reason))

    def record_payment(self, invoice_id: str, amount_micros: int, currency: str, reference: str, tenant_id: str = "") -> pb.Invoice:
        return self.rpc.RecordPayment(pb.RecordPaymentRequest(tenant_id=tenant_id, invoice_id=invoice_id, reference=reference,
                                                               amount=common_pb2.Money(amount_micros=amount_micros, currency=currency))).invoice

    def write_off(self, invoice_id: str, reason: str, tenant_id: str = "") -> pb.Invoice:
        return self.rpc.WriteOffInvoice(pb.WriteOffInvoiceRequest(tenant_id=tenant_id, invoice_id=invoice_id, reason=reason)).invoice
