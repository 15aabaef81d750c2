"""A final bill that gives back more than it charges (a fee paid in advance for days after the deactivation) is an
``Invoice`` (UBL type 380, EN 16931 allows negative totals; docs/BILLING.md) with a negative amount payable: the
customer is owed money, so it never turns overdue and never raises the late payment penalty of the sample charge
rule, whatever the date.  Over a real port, on both databases, the billing scheduler's round doing the marking."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from billing.v1 import billing_pb2 as pb
from engine.identity import SYSTEM
from store.billing import billing_charges
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc


def test_a_negative_final_bill_never_turns_overdue_nor_raises_a_penalty(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-NEG-FINAL"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-NEG-FINAL", sub)
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-NEG-FINAL"]))                       # April; May in advance
    april = bc.list_invoices(account_id="ACC-NEG-FINAL").invoices[0]
    bc.record_payment(april.invoice_id, april.totals.payable.amount_micros, "EUR", "neg-final-april")
    s.at(datetime(2026, 5, 3, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    list(bc.run("final", account_ids=["ACC-NEG-FINAL"]))
    final = next(i for i in bc.list_invoices(account_id="ACC-NEG-FINAL").invoices if i.invoice_id != april.invoice_id)
    assert final.totals.payable.amount_micros < 0 and final.state == pb.INVOICE_STATE_ISSUED

    # long past its due date: the scheduler's rounds mark overdue only what the customer owes
    s.at(datetime(2026, 9, 1, 6, 0, tzinfo=UTC))
    s.desk().scheduler_tick()
    s.desk().scheduler_tick()
    assert bc.get_invoice(final.invoice_id).state == pb.INVOICE_STATE_ISSUED
    with s.root.db.connect() as conn:
        penalties = conn.execute(select(billing_charges.c.description).where(
            billing_charges.c.account_id == "ACC-NEG-FINAL", billing_charges.c.raised_by == "rule:invoice_overdue")).all()
    assert penalties == []
