"""Amounts in plans are bounded (engine.money.MAX_AMOUNT_MICROS, a billion currency units): a price, fee, cap or discount
beyond is refused at upload with files[...]:line:col, every one listed; a CDR whose charge still ends beyond (a price
within the bound times a 1 TB session) is rejected with its reason, not an INTERNAL error, over RateCdr and RateCdrs,
with and without bundle counters, on both databases."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import sample_files

pytestmark = pytest.mark.integration
UTC = timezone.utc
BEYOND = "1000000000.01"   # a cent beyond the bound
HIGH = "999999999"          # within it


def test_amounts_beyond_the_bound_are_refused_each_at_its_place(billing_stack: BillingStack) -> None:
    svc = billing_stack.client("mno").stub(prpc.PlanServiceStub)
    files = sample_files({
        "rates/retail/RT_DATA_HOME.yaml": ('price: "0.02"', f'price: "{BEYOND}"'),
        "tariff_plans/retail/TP_SMART_S.yaml": ('monthly_fee: "9.99"', 'monthly_fee: "1000000001"'),
        "discounts/DP_LOYALTY_2EUR.yaml": ('amount: "2.00"', 'amount: "99999999999999999999"'),
        "bundles/BN_ADDON_INTL_60MIN.yaml": ('fee: "5.00"', f'fee: "-{BEYOND}"'),
    })
    err = rpc_error(lambda: svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=files)), grpc.StatusCode.INVALID_ARGUMENT)
    beyond = {k: v for k, v in field_violations(err).items() if "largest amount" in v}
    assert {k.split("]")[0] for k in beyond} == {"files[rates/retail/RT_DATA_HOME.yaml", "files[tariff_plans/retail/TP_SMART_S.yaml",
                                                 "files[discounts/DP_LOYALTY_2EUR.yaml", "files[bundles/BN_ADDON_INTL_60MIN.yaml"}
    assert "files[rates/retail/RT_DATA_HOME.yaml]:6:8" in beyond
    assert all(v.startswith("value.amount") and "1000000000 currency units" in v for v in beyond.values())
    # at the bound is accepted
    ok = sample_files({"rates/retail/RT_DATA_HOME.yaml": ('price: "0.02"', 'price: "1000000000"')})
    assert svc.ValidatePlanSet(ppb.ValidatePlanSetRequest(files=ok)).valid


def _data(n: int, volume: int) -> mpb.NormalisedCdr:
    return mpb.NormalisedCdr(cdr_id=f"big-{n}", source="it", origin_id=f"big-{n}", service=mpb.CDR_SERVICE_KIND_DATA, direction=1,
                             start_time=Timestamp(seconds=int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp())),
                             a_number="33611000001", b_number="internet", volume_down_bytes=volume, tenant_id="mno")


def test_a_charge_beyond_the_bound_rejects_the_cdr_with_its_reason(billing_stack: BillingStack) -> None:
    s = billing_stack
    s.at(datetime(2026, 1, 15, tzinfo=UTC))
    svc = s.client("mno").stub(prpc.PlanServiceStub)
    files = sample_files({"rates/retail/RT_DATA_HOME.yaml": ('price: "0.02"', f'price: "{HIGH}"')})
    v = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=files)).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(
        version=v.version, activate_time=Timestamp(seconds=int(datetime(2026, 2, 1, tzinfo=UTC).timestamp()))))
    s.at(datetime(2026, 3, 3, tzinfo=UTC))
    _, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, tzinfo=UTC))
    s.at(datetime(2026, 3, 3, tzinfo=UTC))
    stub = s.client("mno").stub(rrpc.RatingServiceStub)
    for counters in (False, True):
        n = 10 if counters else 0
        options = rpb.RateOptions(tariff_plan="" if counters else "TP_SMART_S", use_bundle_counters=counters)
        huge, again, small = _data(n, 10**12), _data(n + 2, 10**12), _data(n + 1, 1_000_000)
        if counters:
            huge.a_number = again.a_number = small.a_number = msisdn
        one = stub.RateCdr(rpb.RateCdrRequest(cdr=huge, options=options)).rated
        many = [r for out in stub.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[again, small], options=options)]))
                for r in out.rated]
        for rated in (one, many[0]):
            assert rated.status == rpb.RATING_STATUS_REJECTED, rated
            assert rated.charge.amount_micros == 0
            assert "beyond what one CDR is charged" in rated.reason and "EUR" in rated.reason
        # the CDR beside it in the chunk is rated as usual (about a megabyte at HIGH per MB, or within the bundle)
        assert many[1].status == rpb.RATING_STATUS_RATED
        charge = many[1].charge.amount_micros
        assert (charge == 0) if counters else (10**14 < charge <= 10**15), (counters, charge)
    # the rejected sessions took nothing of the 2 GB bundle: only the megabyte rated within it
    [data] = [c for c in stub.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn)).counters if c.bundle_id == "BN_S_DATA_2GB"]
    assert 0 < data.allowance - data.remaining <= 1_100_000
