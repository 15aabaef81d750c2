"""Credit on account (an overpayment) is used once when a re-bill and a bill run of the same account run at once.
Over a real port, on both databases, with real threads; a module of its own (its own stack: it re-rates February).

On PostgreSQL the race happens every time: the test holds the invoice series' row, which both take last, until both
wait on a lock.  Without the account's row lock both have read the credit by then and both use it (the account's
ledger goes below zero); with it, whichever comes second reads the credit as the first left it (the run's batch reads
it again under the lock and computes again when it changed).  SQLite serialises writers at ``BEGIN IMMEDIATE``: there
the two requests run into each other through a barrier."""

from __future__ import annotations

from datetime import date, datetime, timezone

import grpc
import pytest
from sqlalchemy import text

from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.test_billing_money_races import at_once
from tests.integration.test_billing_rebill import rerate
from tests.integration.test_plans_rating import sample_files
from tests.integration.test_rating_stored import store_cdrs, voice

pytestmark = pytest.mark.integration
UTC = timezone.utc
OVERPAID = 5_000_000


def _balance(s: BillingStack, account: str) -> int:
    with s.root.db.connect() as c:
        return int(c.execute(text("SELECT coalesce(sum(amount_micros), 0) FROM billing_ledger WHERE tenant_id = 'mno' "
                                  "AND account_id = :a"), {"a": account}).scalar_one())


def test_a_rebill_and_a_bill_run_at_once_use_an_overpayment_once(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-RACE-CREDIT"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-RACE-CREDIT", sub)
    store_cdrs(s.root, [voice(i, msisdn, "442071234567", 120, datetime(2026, 2, 10 + i, 10, 0, tzinfo=UTC)) for i in range(3)])
    assert rerate(s).rated == 3
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-RACE-CREDIT"]))[-1].issued == 1
    feb = bc.get_invoice(bc.list_invoices(account_id="ACC-RACE-CREDIT").invoices[0].invoice_id)
    bc.record_payment(feb.invoice_id, feb.totals.payable.amount_micros + OVERPAID, "EUR", "race-credit-pay")
    assert _balance(s, "ACC-RACE-CREDIT") == OVERPAID
    # the international rate doubles: the re-bill's new invoice is above the credit note and the overpayment together
    v2 = s.client("mno").stub(prpc.PlanServiceStub).UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files({
        "rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "2.00"')}))).version
    rerate(s, v2.version)
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    rebiller, runner = s.billing("mno"), s.billing("mno")
    results = at_once(s, [lambda: rebiller.rebill(feb.invoice_id, "International rate corrected"),
                          lambda: list(runner.run("manual", cycle_date=date(2026, 4, 1), account_ids=["ACC-RACE-CREDIT"]))],
                      "SELECT next_number FROM billing_series WHERE tenant_id = 'mno' AND series = 'RT-' FOR UPDATE")
    assert not any(isinstance(r, grpc.RpcError) for r in results), results
    rebilled, run = results
    assert run[-1].issued == 1
    march = bc.get_invoice(next(i.invoice_id for i in bc.list_invoices(account_id="ACC-RACE-CREDIT").invoices if i.period_start == "2026-03-01"))
    # the credit was the overpayment and the credit note (all of February): the two new invoices took it once, in
    # either order (the re-bill's new invoice, above the note, leaves less than the overpayment), nothing below zero
    there = OVERPAID + rebilled.credit_note.totals.tax_inclusive.amount_micros
    assert rebilled.credit_note.totals.tax_inclusive == feb.totals.tax_inclusive
    assert rebilled.invoice.totals.prepaid.amount_micros + march.totals.prepaid.amount_micros == there
    assert _balance(s, "ACC-RACE-CREDIT") == 0
