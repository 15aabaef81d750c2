"""The wholesale price of an MVNO's traffic is the operator's: rated from the operator's plan set in force, whatever
plan set the MVNO itself has in force (its own retail plans; a version stored before uploads were checked holding a
wholesale plan of its own), over RateCdr and RateCdrs, on both databases, with the C resolver and the Python one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from engine.plans.catalogue import PlanSetVersion, validate_files
from engine.plans.compiler import build_ir, dump_ir, ir_digest
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rating_resolver
from tests.integration.test_plans_rating import sample_files

pytestmark = pytest.mark.integration
UTC = timezone.utc
CALL = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _cdr(n: int) -> mpb.NormalisedCdr:
    """A call of an alpha number the operator does not know (alpha's own subscriber base): wholesale traffic."""
    return mpb.NormalisedCdr(cdr_id=f"ws-{n}", source="it", origin_id=f"ws-{n}", service=mpb.CDR_SERVICE_KIND_VOICE, direction=1,
                             start_time=Timestamp(seconds=int(CALL.timestamp())), a_number="33614000001",
                             b_number="33612345678", duration_seconds=600, tenant_id="mvno-alpha")


def _rated(s: BillingStack, n: int) -> list[tuple[str, str, int, int, str]]:
    """The CDR rated by the operator with RateCdr and with RateCdrs: (status, plan, plan set version, charge, currency)."""
    stub = s.client("mno").stub(rrpc.RatingServiceStub)
    one = stub.RateCdr(rpb.RateCdrRequest(cdr=_cdr(n))).rated
    many = [r for out in stub.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[_cdr(n + 1)])])) for r in out.rated]
    return [(r.status, r.tariff_plan, r.plan_set_version, r.charge.amount_micros, r.charge.currency) for r in [one, *many]]


@pytest.mark.parametrize("use_c", [True, False], ids=["c", "python"])
def test_an_mvno_s_wholesale_traffic_is_priced_by_the_operator_s_plan_set(billing_stack: BillingStack, use_c: bool) -> None:
    s = billing_stack
    with rating_resolver(s.root.rating, use_c):
        _check(s, 100 if use_c else 200)


def _check(s: BillingStack, n: int) -> None:
    operator_version = s.root.plans.compiled_at("mno", CALL)[0].version
    before = _rated(s, n)
    status, plan, version, charge, currency = before[0]
    assert (plan, version, currency) == ("TP_WS_ALPHA", operator_version, "EUR") and charge > 0 and status == rpb.RATING_STATUS_RATED
    assert before[1] == before[0]

    # alpha's own retail plan set in force: its wholesale traffic is still the operator's to price
    alpha = s.client("mvno-alpha", "product_manager").stub(prpc.PlanServiceStub)
    if s.root.plans.compiled_at("mvno-alpha", CALL)[0] is None:
        s.at(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
        own = alpha.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files(tenant="mvno-alpha"))).version
        alpha.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(
            version=own.version, activate_time=Timestamp(seconds=int(datetime(2026, 2, 1, tzinfo=UTC).timestamp()))))
        assert s.root.plans.compiled_at("mvno-alpha", CALL)[0].version == own.version
    assert _rated(s, n + 10) == before

    # a version of alpha's stored before uploads were checked, holding TP_WS_ALPHA at price 0, in force at the call:
    # it prices nothing of what the operator charges alpha
    files = {f.path: f.content.replace('price: "', 'price: "0') if f.path.startswith("rates/wholesale/") else f.content
             for f in sample_files()}
    plan_set, problems = validate_files(files)
    assert problems == []
    ir = build_ir(plan_set)
    with s.root.plan_uow() as uow:
        number = uow.plan_versions.latest_number("mvno-alpha") + 1
        uow.plan_versions.add(PlanSetVersion("mvno-alpha", number, ir_digest(ir), dump_ir(ir), files, s.clock.now(), "legacy",
                                             datetime(2026, 3, 1, n // 100, tzinfo=UTC)))
        uow.commit()
    assert s.root.plans.compiled_at("mvno-alpha", CALL)[0].version == number
    assert _rated(s, n + 20) == before
