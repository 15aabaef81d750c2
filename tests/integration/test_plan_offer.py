"""Once a plan set is active, subscribers go only on tariff plans their tenant offers."""

from __future__ import annotations

import grpc
import pytest

from billing.v1 import plan_pb2 as ppb
from billing.v1 import subscriber_pb2 as spb
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import plans, sample_files

pytestmark = pytest.mark.integration


def _provision(stack, client, plan: str, tenant: str = ""):  # type: ignore[no-untyped-def]
    return client.subscribers.rpc.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
        tenant_id=tenant, msisdn=stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="ACC",
        payment_type=spb.PAYMENT_TYPE_POSTPAID, tariff_plan=plan)).subscriber


def test_plans_are_checked_against_the_active_plan_set(stack) -> None:  # type: ignore[no-untyped-def]
    alpha = stack.client("mvno-alpha")
    # before any plan set is active, a well-formed id is accepted (plans may be uploaded later)
    early = _provision(stack, alpha, "TP_NOT_YET_DEFINED")
    svc = plans(stack)
    v = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v.version))
    assert _provision(stack, alpha, "TP_ALPHA_SIMPLE").tariff_plan == "TP_ALPHA_SIMPLE"
    for plan in ("TP_SMART_S", "TP_BETA_DATA", "TP_NOT_YET_DEFINED"):   # the operator's, another MVNO's, none
        err = rpc_error(lambda: _provision(stack, alpha, plan), grpc.StatusCode.INVALID_ARGUMENT)
        assert "tariff_plan" in field_violations(err)
    assert _provision(stack, stack.client("mno"), "TP_SMART_S").tariff_plan == "TP_SMART_S"
    err = rpc_error(lambda: alpha.subscribers.rpc.ChangeSubscriberPlan(
        spb.ChangeSubscriberPlanRequest(subscriber_id=early.subscriber_id, tariff_plan="TP_SMART_M")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "tariff_plan" in field_violations(err)
    moved = alpha.subscribers.rpc.ChangeSubscriberPlan(spb.ChangeSubscriberPlanRequest(subscriber_id=early.subscriber_id,
                                                                                   tariff_plan="TP_ALPHA_SIMPLE")).subscriber
    assert moved.tariff_plan == "TP_ALPHA_SIMPLE"
