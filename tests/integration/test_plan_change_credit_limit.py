"""A plan change to a plan charged in another currency is refused while the subscriber has a credit limit in the old one
(the limit is never converted, so it would stop protecting the subscriber without a word): FAILED_PRECONDITION
CREDIT_LIMIT_CURRENCY, nothing changed or audited; clearing the limit first lets the change through, and a limit in
the new currency can then be set.  Over gRPC on both databases."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from billing.v1 import common_pb2 as cpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import subscriber_pb2_grpc as srpc
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import audit_count, precondition_reason, rpc_error
from tests.integration.test_plans_rating import sample_files

pytestmark = pytest.mark.integration
C = grpc.StatusCode
GBP_RATE = 'kind: rate\nid: RT_SMS_GB\nname: SMS in pounds\nunit: event\ncurrency: GBP\nprice: "0.10"\nper: 1\n'
GBP_PLAN = """kind: tariff_plan
id: TP_SMART_GB
name: Smart GB
tenant: mno
segment: retail_postpaid
currency: GBP
versions:
  - version: 1
    effective_from: 2026-01-01
    time_bands: TB_ANYTIME
    monthly_fee: "8.00"
    rates:
      - {service: sms, zone: any, rate: RT_SMS_GB}
"""


def test_a_credit_limit_in_another_currency_holds_the_plan_change_back(billing_stack: BillingStack) -> None:
    s = billing_stack
    s.at(datetime(2026, 6, 1, 8, tzinfo=timezone.utc))
    plans = s.client("mno").stub(prpc.PlanServiceStub)
    files = [*sample_files(), ppb.PlanFile(path="rates/retail/RT_SMS_GB.yaml", content=GBP_RATE),
             ppb.PlanFile(path="tariff_plans/retail/TP_SMART_GB.yaml", content=GBP_PLAN)]
    v = plans.UploadPlanSet(ppb.UploadPlanSetRequest(files=files)).version
    plans.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v.version))
    sub_id, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 6, 1, 8, tzinfo=timezone.utc))
    subs = s.client("mno").stub(srpc.SubscriberServiceStub)
    eur = cpb.Money(amount_micros=50_000_000, currency="EUR")
    subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(subscriber_id=sub_id, credit_limit=eur))

    before = audit_count(s)
    err = rpc_error(lambda: subs.ChangeSubscriberPlan(spb.ChangeSubscriberPlanRequest(subscriber_id=sub_id, tariff_plan="TP_SMART_GB")),
                    C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "CREDIT_LIMIT_CURRENCY"
    assert "50.00 EUR" in err.details() and "GBP" in err.details() and "clear" in err.details()
    got = subs.GetSubscriber(spb.GetSubscriberRequest(subscriber_id=sub_id)).subscriber
    assert (got.tariff_plan, got.credit_limit.amount_micros, got.credit_limit.currency) == ("TP_SMART_S", 50_000_000, "EUR")
    assert audit_count(s) == before

    # a plan in the limit's currency changes as before
    assert subs.ChangeSubscriberPlan(spb.ChangeSubscriberPlanRequest(subscriber_id=sub_id, tariff_plan="TP_SMART_M")).subscriber.tariff_plan \
        == "TP_SMART_M"
    # clear, change, set in the new currency
    subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(subscriber_id=sub_id, clear=True))
    moved = subs.ChangeSubscriberPlan(spb.ChangeSubscriberPlanRequest(subscriber_id=sub_id, tariff_plan="TP_SMART_GB")).subscriber
    assert moved.tariff_plan == "TP_SMART_GB" and not moved.HasField("credit_limit")
    gbp = cpb.Money(amount_micros=40_000_000, currency="GBP")
    limited = subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(subscriber_id=sub_id, credit_limit=gbp)).subscriber
    assert (limited.credit_limit.amount_micros, limited.credit_limit.currency) == (40_000_000, "GBP")
