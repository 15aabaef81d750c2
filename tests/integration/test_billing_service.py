"""BillingService over a real port: bad input named by field, roles and limits, tenant isolation, drafts, credit notes,
re-bills after re-rating, payments, write-offs, final bills, voucher recharges as payments on account."""

from __future__ import annotations

from datetime import date, datetime, timezone

import grpc
import pytest
from sqlalchemy import insert, select, update

from billing.v1 import billing_pb2 as pb
from tests.integration.billing_support import account_pb, BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, precondition_reason, rpc_error
from store.billing import billing_charges
from tests.ubl_conformance import check

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc


@pytest.fixture(scope="module")
def billed(billing_stack: BillingStack) -> dict:  # noqa: F811
    """mno: ACC-A (Smart S from 1 February, national calls) billed on 1 March; mvno-alpha: ALPHA-1."""
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-A"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-A", sub)
    s.rate("mno", msisdn, [(datetime(2026, 2, 3, 9, 0, tzinfo=UTC), 3 * 3600, "33140000000"),    # beyond the 120 minutes
                           (datetime(2026, 2, 4, 9, 0, tzinfo=UTC), 600, "4930123456")])
    alpha = s.billing("mvno-alpha")
    alpha.create_account(account_pb("ALPHA-1", name="Alpha customer"))
    asub, _ = s.subscriber("mvno-alpha", "TP_ALPHA_SIMPLE", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    alpha.assign("ALPHA-1", asub)
    bc.add_charge("ACC-A", "OC_PENALTY", 80_000_000, "EUR", "Contract breach", charge_date=date(2026, 2, 20))  # admins have no limit
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-A"]))
    inv = bc.list_invoices(account_id="ACC-A").invoices[0]
    return {"invoice": bc.get_invoice(inv.invoice_id), "msisdn": msisdn, "sub": sub, "alpha_sub": asub}


def test_bad_accounts_get_every_bad_field(billing_stack: BillingStack) -> None:  # noqa: F811
    bc = billing_stack.billing("mno")
    bad = account_pb("ACC BAD", anchor_day=32, time_zone="Mars/Olympus", currency="XXX", vat_id="12345", language="tlh",
                  address=pb.PostalAddress(lines=[], city="", country="ZZ"), delivery=pb.DELIVERY_EMAIL, discount_plans=["DP_GHOST"])
    err = rpc_error(lambda: bc.create_account(bad), C.INVALID_ARGUMENT)
    fields = field_violations(err)
    assert {"account_id", "anchor_day", "time_zone", "currency", "vat_id", "language", "address.lines", "address.city", "address.country",
            "email", "discount_plans[0]"} <= set(fields)
    assert "1..31" in fields["anchor_day"]
    for anchor in (0, -1, 32):
        err = rpc_error(lambda: bc.create_account(account_pb("ACC-ANCHOR", anchor_day=anchor)), C.INVALID_ARGUMENT)
        assert list(field_violations(err)) == ["anchor_day"]


def test_an_account_without_address_cannot_be_billed_and_nothing_is_issued(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(pb.Account(account_id="ACC-NOADDR", name="No Address", anchor_day=1, time_zone="Europe/Paris"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 10, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    bc.assign("ACC-NOADDR", sub, valid_from=datetime(2026, 2, 10, 8, 0, tzinfo=UTC))
    runs = list(bc.run("on_demand", account_ids=["ACC-NOADDR"]))
    assert runs[-1].failed == 1 and "ACC-NOADDR" in runs[-1].failures[0].reason and "address" in runs[-1].failures[0].reason
    assert not bc.list_invoices(account_id="ACC-NOADDR").invoices
    err = rpc_error(lambda: bc.preview("ACC-NOADDR"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "BILL_INPUT" and "address" in err.details()
    # a country without a tax table is named too
    bc.update_account(pb.Account(account_id="ACC-NOADDR", address=pb.PostalAddress(lines=["1 Main St"], city="Austin", country="US")),
                      ["address"])
    err = rpc_error(lambda: bc.preview("ACC-NOADDR"), C.FAILED_PRECONDITION)
    assert "no tax table for country US" in err.details()


def test_roles_and_limits(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    inv = billed["invoice"]
    csr = s.billing("mno", "csr")
    pm = s.billing("mno", "product_manager")
    auditor = s.billing("mno", "auditor")
    # a product manager previews but neither issues nor credits
    preview = pm.preview("ACC-A")
    assert preview.invoice.number == "PREVIEW"
    check(preview.ubl_xml)
    rpc_error(lambda: list(pm.run("manual", cycle_date=date(2026, 3, 1))), C.PERMISSION_DENIED)
    rpc_error(lambda: pm.credit_note(inv.invoice_id, "no"), C.PERMISSION_DENIED)
    # an auditor reads only
    assert auditor.get_invoice(inv.invoice_id).number == inv.number
    rpc_error(lambda: auditor.preview("ACC-A"), C.PERMISSION_DENIED)
    # a CSR: one-off charges and credit notes up to the profile's limit (50.00), drafts but no issuing
    csr.add_charge("ACC-A", "OC_SIM")
    err = rpc_error(lambda: csr.add_charge("ACC-A", "OC_PENALTY", 60_000_000, "EUR"), C.PERMISSION_DENIED)
    assert "50.00" in err.details()
    rpc_error(lambda: list(csr.run("on_demand", account_ids=["ACC-A"])), C.PERMISSION_DENIED)
    err = rpc_error(lambda: csr.credit_note(inv.invoice_id, "too much"), C.PERMISSION_DENIED)
    assert "50.00" in err.details()
    usage = next(ln for ln in inv.lines if ln.charge_type == "usage")
    note = csr.credit_note(inv.invoice_id, "dropped call", [(usage.line_id, 1_000_000, "EUR")])
    assert note.kind == pb.INVOICE_KIND_CREDIT_NOTE and note.totals.tax_inclusive.amount_micros == 1_000_000 + 200_000
    unknown = rpc_error(lambda: csr.add_charge("ACC-A", "OC_NOPE"), C.INVALID_ARGUMENT)
    assert "OC_ACTIVATION" in field_violations(unknown)["code"]


def test_tenants_never_see_each_other(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    beta = s.billing("mvno-beta")
    alpha = s.billing("mvno-alpha")
    inv = billed["invoice"]
    rpc_error(lambda: beta.get_account("ALPHA-1", tenant_id="mvno-alpha"), C.NOT_FOUND)
    rpc_error(lambda: beta.get_account("ALPHA-1"), C.NOT_FOUND)
    rpc_error(lambda: alpha.get_invoice(inv.invoice_id), C.NOT_FOUND)
    rpc_error(lambda: alpha.download(inv.invoice_id, "xml"), C.NOT_FOUND)
    rpc_error(lambda: alpha.credit_note(inv.invoice_id, "mine?"), C.NOT_FOUND)
    rpc_error(lambda: beta.assign("ALPHA-1", billed["alpha_sub"]), C.NOT_FOUND)
    rpc_error(lambda: beta.preview("ALPHA-1"), C.NOT_FOUND)
    rpc_error(lambda: list(beta.run("manual", cycle_date=date(2026, 3, 1), tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
    # a subscriber of another tenant cannot be assigned
    rpc_error(lambda: alpha.assign("ALPHA-1", billed["sub"]), C.NOT_FOUND)
    assert [a.account_id for a in beta.list_accounts().accounts] == []
    assert "ALPHA-1" in [a.account_id for a in s.billing("mno").list_accounts(tenant_id="mvno-alpha").accounts]
    runs = list(alpha.run("manual", cycle_date=date(2026, 3, 1)))
    assert runs[-1].issued == 1
    alpha_inv = alpha.list_invoices().invoices[0]
    assert alpha_inv.number.startswith("AM-") and alpha_inv.tenant_id == "mvno-alpha"
    rpc_error(lambda: beta.get_invoice(alpha_inv.invoice_id), C.NOT_FOUND)


def test_credit_notes_above_the_invoice_and_payments(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    bc = billing_stack.billing("mno")
    inv = bc.get_invoice(billed["invoice"].invoice_id)
    line = inv.lines[0]
    err = rpc_error(lambda: bc.credit_note(inv.invoice_id, "too much", [(line.line_id, line.amount.amount_micros + 10_000, "EUR")]),
                    C.INVALID_ARGUMENT)
    assert "lines[0].amount" in field_violations(err)
    rpc_error(lambda: bc.credit_note(inv.invoice_id, ""), C.INVALID_ARGUMENT)
    paid = bc.record_payment(inv.invoice_id, 10_000_000, "EUR", "bank-1")
    assert paid.state == pb.INVOICE_STATE_PARTIALLY_PAID and paid.paid.amount_micros == 10_000_000
    rpc_error(lambda: bc.record_payment(inv.invoice_id, 1_000_000, "EUR", "bank-1"), C.ALREADY_EXISTS)   # once per reference
    assert bc.get_invoice(inv.invoice_id).paid.amount_micros == 10_000_000


def test_review_runs_make_drafts_an_admin_issues(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    csr = s.billing("mno", "csr")
    bc.create_account(account_pb("ACC-DRAFT"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 2, 5, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    bc.assign("ACC-DRAFT", sub, valid_from=datetime(2026, 2, 5, 8, 0, tzinfo=UTC))
    runs = list(csr.run("on_demand", account_ids=["ACC-DRAFT"], review=True))
    assert runs[-1].drafts == 1 and runs[-1].issued == 0
    draft = bc.list_invoices(account_id="ACC-DRAFT").invoices[0]
    assert draft.state == pb.INVOICE_STATE_DRAFT and draft.number == ""
    rpc_error(lambda: bc.download(draft.invoice_id, "xml"), C.FAILED_PRECONDITION)
    assert "DRAFT" in bc.download(draft.invoice_id, "html")[0].decode()
    rpc_error(lambda: csr.issue_drafts([draft.invoice_id]), C.PERMISSION_DENIED)
    csr.discard_draft(draft.invoice_id, "wrong plan")                      # the period is free again
    list(csr.run("on_demand", account_ids=["ACC-DRAFT"], review=True))
    draft = bc.list_invoices(account_id="ACC-DRAFT").invoices[0]
    issued = bc.issue_drafts([draft.invoice_id])[0]
    assert issued.state == pb.INVOICE_STATE_ISSUED and issued.number.startswith("RT-")
    xml, _, _ = bc.download(issued.invoice_id, "xml")
    assert f"<cbc:ID>{issued.number}</cbc:ID>".encode() in xml and msisdn.encode() in xml


def test_rebill_after_rerating(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    inv = bc.get_invoice(billed["invoice"].invoice_id)
    rpc_error(lambda: bc.rebill(inv.invoice_id, "nothing changed"), C.FAILED_PRECONDITION)
    # re-rating changes a stored CDR's charge in the usage ledger (what rating's re-rate does): 1.00 less
    from store.billing import billing_frozen_usage
    from store.plans import usage_ledger

    with s.root.db.begin() as conn:
        frozen = billing_frozen_usage.c
        cdr_id = conn.execute(select(frozen.cdr_ids).where(frozen.invoice_id == inv.invoice_id)).scalar_one().split("\n")[0]
        conn.execute(update(usage_ledger).where(usage_ledger.c.cdr_id == cdr_id).values(charge_micros=usage_ledger.c.charge_micros - 1_000_000))
    reply = bc.rebill(inv.invoice_id, "national rate corrected")
    assert reply.credit_note.reference_id == inv.invoice_id and reply.invoice.reference_id == inv.invoice_id
    assert reply.invoice.period_start == inv.period_start and reply.invoice.number != inv.number
    old = bc.get_invoice(inv.invoice_id)
    assert old.state == pb.INVOICE_STATE_CREDITED
    assert old.credited.amount_micros == old.totals.tax_inclusive.amount_micros
    new_usage = sum(ln.amount.amount_micros for ln in reply.invoice.lines if ln.charge_type == "usage")
    old_usage = sum(ln.amount.amount_micros for ln in inv.lines if ln.charge_type == "usage")
    assert old_usage - new_usage == 1_000_000
    # the payment on the old invoice and the credit went to the account and pay the new invoice
    assert reply.invoice.totals.prepaid.amount_micros > 0


def test_voucher_recharges_are_payments_on_account(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-VOUCHER"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    bc.assign("ACC-VOUCHER", sub)
    from store.vouchers import voucher_redemptions

    with s.root.db.begin() as conn:
        conn.execute(insert(voucher_redemptions).values(request_id="r-topup-1", msisdn=msisdn, serial=1, batch_id="vb-x", tenant_id="mno",
                                                        currency="EUR", credited_micros=5_000_000, balance_micros=5_000_000,
                                                        valid_until=datetime(2027, 1, 1, tzinfo=UTC),
                                                        redeemed_at=datetime(2026, 3, 10, tzinfo=UTC), transaction_id="t1"))
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-VOUCHER"]))
    inv = bc.get_invoice(bc.list_invoices(account_id="ACC-VOUCHER").invoices[0].invoice_id)
    assert inv.totals.prepaid.amount_micros == 5_000_000
    assert inv.totals.payable.amount_micros == inv.totals.tax_inclusive.amount_micros - 5_000_000
    # used once: the next bill does not take it again
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-VOUCHER"]))
    second = [i for i in bc.list_invoices(account_id="ACC-VOUCHER").invoices if i.invoice_id != inv.invoice_id][0]
    assert second.totals.prepaid.amount_micros == 0


def test_final_bill_on_deactivation_refunds_days_and_closes_the_account(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-FINAL"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-FINAL", sub)
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-FINAL"]))                        # April; May in advance
    err = rpc_error(lambda: list(bc.run("final", account_ids=["ACC-FINAL"])), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "ACCOUNT_HAS_ACTIVE_SUBSCRIBERS"
    from dataclasses import replace

    from engine.identity import SYSTEM

    s.at(datetime(2026, 5, 10, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 5, 12, 8, 0, tzinfo=UTC))
    runs = list(bc.run("final", account_ids=["ACC-FINAL"]))
    assert runs[-1].issued == 1
    final = sorted(bc.list_invoices(account_id="ACC-FINAL").invoices, key=lambda i: i.number)[-1]
    final = bc.get_invoice(final.invoice_id)
    assert final.period_start == "2026-05-01" and final.period_end == "2026-05-10"
    fee = [ln for ln in final.lines if ln.charge_type == "fee"]
    # 10 of May's 31 days of 9.99: 3.22; 9.99 was charged in advance: -6.77, no June in advance
    assert [ln.amount.amount_micros for ln in fee] == [-6_770_000]
    assert bc.get_account("ACC-FINAL").account.status == pb.ACCOUNT_STATUS_CLOSED
    err = rpc_error(lambda: bc.assign("ACC-FINAL", sub), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "ACCOUNT_CLOSED"


def test_the_scheduler_bills_what_is_due_and_marks_overdue_invoices(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    s.at(datetime(2026, 6, 2, 6, 0, tzinfo=UTC))
    before = {i.invoice_id for i in bc.list_invoices(account_id="ACC-A", page_size=1000).invoices}
    runs = s.desk().scheduler_tick()
    assert {r.tenant_id for r in runs} >= {"mno"} and all(r.state.value == "done" for r in runs)
    new = [i for i in bc.list_invoices(account_id="ACC-A", page_size=1000).invoices if i.invoice_id not in before]
    assert [(i.period_start, i.period_end) for i in new] == [("2026-03-01", "2026-03-31")]   # one cycle per round, in order
    run = list(bc.run("scheduled"))[-1]                                                       # what the scheduler does, over gRPC
    assert run.mode == pb.BILL_RUN_MODE_SCHEDULED and run.issued >= 1
    assert bc.get_run(run.run_id).issued == run.issued
    overdue = [i for i in bc.list_invoices(account_id="ACC-A", page_size=1000).invoices if i.state == pb.INVOICE_STATE_OVERDUE]
    assert overdue and all(i.due_date < "2026-06-02" for i in overdue)
    # the sample charge rule (rules/billing/charges.yaml): each invoice turning overdue raised one late payment penalty, once
    s.desk().scheduler_tick()
    with s.root.db.connect() as conn:
        penalties = conn.execute(select(billing_charges.c.description, billing_charges.c.amount_micros)
                                 .where(billing_charges.c.account_id == "ACC-A", billing_charges.c.raised_by == "rule:invoice_overdue")).all()
    assert sorted(penalties) == sorted((f"Late payment penalty ({i.number})", 7_500_000) for i in overdue)


def test_write_off(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-WO"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    bc.assign("ACC-WO", sub, valid_from=datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-WO"]))
    inv = bc.list_invoices(account_id="ACC-WO").invoices[0]
    rpc_error(lambda: s.billing("mno", "csr").write_off(inv.invoice_id, "bankrupt"), C.PERMISSION_DENIED)
    rpc_error(lambda: bc.write_off(inv.invoice_id, ""), C.INVALID_ARGUMENT)
    done = bc.write_off(inv.invoice_id, "customer insolvent")
    assert done.state == pb.INVOICE_STATE_WRITTEN_OFF and done.reason == "customer insolvent"
    err = rpc_error(lambda: bc.credit_note(inv.invoice_id, "too late"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "INVOICE_STATE"
    rpc_error(lambda: bc.record_payment(inv.invoice_id, 1_000_000, "EUR", "late-pay"), C.FAILED_PRECONDITION)
