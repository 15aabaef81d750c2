"""Money taken in over gRPC is bounded (engine.money.MAX_AMOUNT_MICROS, a billion currency units): one-off charges,
payments, credit limits and credit-note lines beyond are INVALID_ARGUMENT on their field; charges each within it that
add up beyond what one bill holds fail that account's bill with the reason (PreviewBill, and the run reports it), instead
of an int64 overflow (INTERNAL) that left the account unbillable.  On both databases."""

from __future__ import annotations

from datetime import date, datetime, timezone

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from billing.v1 import billing_pb2_grpc as brpc
from billing.v1 import common_pb2 as cpb
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import subscriber_pb2_grpc as srpc
from engine.money import MAX_AMOUNT_MICROS
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, precondition_reason, rpc_error
from tests.integration.test_billing_service import billed  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode
INT64_NEAR_MAX = (2**63 - 1) // 10_000 * 10_000   # whole cents, what the review sent
JUST_BEYOND = MAX_AMOUNT_MICROS + 10_000           # a cent beyond


def _eur(micros: int) -> cpb.Money:
    return cpb.Money(amount_micros=micros, currency="EUR")


def test_amounts_beyond_the_bound_are_refused_on_their_field(billing_stack: BillingStack, billed: dict) -> None:  # noqa: F811
    s = billing_stack
    raw = s.client("mno").stub(brpc.BillingServiceStub)
    subs = s.client("mno").stub(srpc.SubscriberServiceStub)
    inv = billed["invoice"]
    for big in (INT64_NEAR_MAX, JUST_BEYOND):
        err = rpc_error(lambda: raw.AddOneOffCharge(pb.AddOneOffChargeRequest(account_id="ACC-A", code="OC_PENALTY", amount=_eur(big),
                                                                              description="x")), C.INVALID_ARGUMENT)
        assert "largest amount" in field_violations(err)["amount"]
        err = rpc_error(lambda: raw.RecordPayment(pb.RecordPaymentRequest(invoice_id=inv.invoice_id, amount=_eur(big),
                                                                          reference=f"huge-{big}")), C.INVALID_ARGUMENT)
        assert "largest amount" in field_violations(err)["amount"]
        err = rpc_error(lambda: subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
            subscriber_id=billed["sub"], credit_limit=_eur(big))), C.INVALID_ARGUMENT)
        assert "largest amount" in field_violations(err)["credit_limit.amount_micros"]
        line = inv.lines[0].line_id
        err = rpc_error(lambda: raw.CreateCreditNote(pb.CreateCreditNoteRequest(
            invoice_id=inv.invoice_id, reason="r", lines=[pb.CreditLine(line_id=line, amount=_eur(big))])), C.INVALID_ARGUMENT)
        assert "largest amount" in field_violations(err)["lines[0].amount"]
    # the bound itself is taken
    raw.AddOneOffCharge(pb.AddOneOffChargeRequest(account_id="ACC-A", code="OC_PENALTY", amount=_eur(MAX_AMOUNT_MICROS),
                                                  description="at the bound", charge_date="2026-04-10"))


def test_charges_adding_up_beyond_the_bound_fail_that_account_s_bill_with_the_reason(billing_stack: BillingStack) -> None:
    s = billing_stack
    s.at(datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
    bc = s.billing("mno")
    raw = s.client("mno").stub(brpc.BillingServiceStub)
    bc.create_account(account_pb("ACC-HUGE"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
    bc.assign("ACC-HUGE", sub, valid_from=datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
    for n in range(2):   # each within the bound, together beyond it
        raw.AddOneOffCharge(pb.AddOneOffChargeRequest(account_id="ACC-HUGE", code="OC_PENALTY", amount=_eur(MAX_AMOUNT_MICROS * 3 // 5),
                                                      description=f"part {n}", charge_date="2026-04-10"))
    err = rpc_error(lambda: bc.preview("ACC-HUGE", cycle_date=date(2026, 5, 1)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "BILL_INPUT" and "totals" in err.details() and "largest amount" in err.details()
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    runs = list(bc.run("manual", cycle_date=date(2026, 5, 1), account_ids=["ACC-HUGE"]))
    assert runs[-1].failed == 1
    assert runs[-1].failures[0].account_id == "ACC-HUGE" and "largest amount" in runs[-1].failures[0].reason
    assert not bc.list_invoices(account_id="ACC-HUGE").invoices
