"""A CSR's limit (the billing profile's ``csr_limit``: 50.00 EUR for the operator) holds for amounts that add up, not
only for each part: the credit notes of one invoice together, and the one-off charges a CSR raised on one account
until a bill takes them.  Over a real port, on both databases."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from tests.integration.billing_support import account_pb, BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rpc_error

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc
LIMIT = 50_000_000


def _account(s: BillingStack, account_id: str, since: datetime) -> tuple[Any, Any]:
    """An operator's account with one Smart S subscriber since ``since``: (the admin's client, a CSR's)."""
    admin, csr = s.billing("mno"), s.billing("mno", "csr")
    admin.create_account(account_pb(account_id))
    sub, _ = s.subscriber("mno", "TP_SMART_S", since)
    admin.assign(account_id, sub)
    return admin, csr


def test_a_csr_cannot_split_a_credit_above_its_limit_into_notes_below_it(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin, csr = _account(s, "ACC-SPLIT-CN", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    admin.add_charge("ACC-SPLIT-CN", "OC_PENALTY", 200_000_000, "EUR", "Contract breach", charge_date=date(2026, 2, 20))
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(admin.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-SPLIT-CN"]))
    inv = admin.get_invoice(admin.list_invoices(account_id="ACC-SPLIT-CN").invoices[0].invoice_id)
    penalty = next(ln for ln in inv.lines if ln.amount.amount_micros == 200_000_000)
    part = [(penalty.line_id, 15_000_000, "EUR")]   # 15.00 before tax
    notes = [csr.credit_note(inv.invoice_id, f"goodwill {i}", part) for i in range(2)]
    each = notes[0].totals.tax_inclusive.amount_micros
    assert 2 * each <= LIMIT < 3 * each      # each note is within the limit, three are not
    err = rpc_error(lambda: csr.credit_note(inv.invoice_id, "goodwill 3", part), C.PERMISSION_DENIED)
    assert "50.00" in err.details() and "credited on the invoice" in err.details()
    assert admin.get_invoice(inv.invoice_id).credited.amount_micros == 2 * each   # the refused note changed nothing
    # an admin credits any amount; past the limit, a CSR credits this invoice no more, not even a cent
    admin.credit_note(inv.invoice_id, "admin goodwill", part)
    rpc_error(lambda: csr.credit_note(inv.invoice_id, "one cent", [(penalty.line_id, 10_000, "EUR")]), C.PERMISSION_DENIED)
    assert admin.get_invoice(inv.invoice_id).credited.amount_micros == 3 * each


def test_a_csr_cannot_split_a_charge_above_its_limit_into_charges_below_it(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin, csr = _account(s, "ACC-SPLIT-OC", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    admin.add_charge("ACC-SPLIT-OC", "OC_PENALTY", 200_000_000, "EUR", charge_date=date(2026, 4, 2))   # an admin's: not counted
    csr.add_charge("ACC-SPLIT-OC", "OC_PENALTY", 30_000_000, "EUR", charge_date=date(2026, 4, 3))
    csr.add_charge("ACC-SPLIT-OC", "OC_PENALTY", 20_000_000, "EUR", charge_date=date(2026, 4, 4))   # 50.00 in all: at the limit
    err = rpc_error(lambda: csr.add_charge("ACC-SPLIT-OC", "OC_SIM", 10_000, "EUR", charge_date=date(2026, 4, 5)), C.PERMISSION_DENIED)
    assert "50.00" in err.details() and "before: 50.00" in err.details()
    charges = [ln for ln in admin.preview("ACC-SPLIT-OC", cycle_date=date(2026, 5, 1)).invoice.lines if ln.charge_type == "one_off"]
    assert sorted(ln.amount.amount_micros for ln in charges) == [20_000_000, 30_000_000, 200_000_000]
    # another account has its own sum; once a bill took the CSR's charges, it raises again
    admin.create_account(account_pb("ACC-SPLIT-OC2"))
    csr.add_charge("ACC-SPLIT-OC2", "OC_PENALTY", 40_000_000, "EUR", charge_date=date(2026, 4, 3))
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    list(admin.run("manual", cycle_date=date(2026, 5, 1), account_ids=["ACC-SPLIT-OC"]))
    csr.add_charge("ACC-SPLIT-OC", "OC_PENALTY", 30_000_000, "EUR", charge_date=date(2026, 5, 2))


def test_a_csr_cannot_park_its_charges_on_a_draft_to_raise_more(billing_stack: BillingStack) -> None:  # noqa: F811
    """A review draft holds the CSR's charges until it is issued: they still count (a discard would give them back
    un-billed), so parking them on a draft the CSR makes and discarding it raises nothing past the limit."""
    s = billing_stack
    admin, csr = _account(s, "ACC-PARK-OC", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    csr.add_charge("ACC-PARK-OC", "OC_PENALTY", LIMIT, "EUR", charge_date=date(2026, 4, 10))            # at the limit
    list(csr.run("manual", cycle_date=date(2026, 5, 1), account_ids=["ACC-PARK-OC"], review=True))     # the CSR's own draft
    drafts = [d for d in admin.list_invoices(account_id="ACC-PARK-OC").invoices if d.state == pb.INVOICE_STATE_DRAFT]
    assert len(drafts) == 1
    err = rpc_error(lambda: csr.add_charge("ACC-PARK-OC", "OC_PENALTY", 10_000, "EUR", charge_date=date(2026, 4, 11)),
                    C.PERMISSION_DENIED)
    assert "before: 50.00" in err.details()
    csr.discard_draft(drafts[0].invoice_id, "park")
    rpc_error(lambda: csr.add_charge("ACC-PARK-OC", "OC_PENALTY", 10_000, "EUR", charge_date=date(2026, 4, 11)), C.PERMISSION_DENIED)
    charges = [ln.amount.amount_micros for ln in admin.preview("ACC-PARK-OC", cycle_date=date(2026, 5, 1)).invoice.lines
               if ln.charge_type == "one_off"]
    assert charges == [LIMIT]
    # once an admin issues the draft that holds them, the CSR raises again
    list(csr.run("manual", cycle_date=date(2026, 5, 1), account_ids=["ACC-PARK-OC"], review=True))
    draft = next(d for d in admin.list_invoices(account_id="ACC-PARK-OC").invoices if d.state == pb.INVOICE_STATE_DRAFT)
    admin.issue_drafts([draft.invoice_id])
    csr.add_charge("ACC-PARK-OC", "OC_PENALTY", LIMIT, "EUR", charge_date=date(2026, 5, 2))
