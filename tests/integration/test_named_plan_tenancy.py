"""A tariff plan named in a rating request (``options.tariff_plan``) must be the CDR tenant's: an MVNO without a plan
set of its own rates in its operator's, which holds the other MVNOs' wholesale plans (``customer: mvno-beta``) and
their hosted retail plans; naming one of those is answered exactly as naming a plan that exists nowhere, over
RateCdr and RateCdrs, on both databases, with the C resolver and the Python one.  The operator names any plan of
its own plan set for its own CDRs; for an MVNO's CDR, as that MVNO could."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from google.protobuf import text_format
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rating_resolver

pytestmark = pytest.mark.integration
CALL = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
NOWHERE = "TP_NO_SUCH_PLAN"


def _cdr(n: int, tenant: str = "") -> mpb.NormalisedCdr:
    return mpb.NormalisedCdr(cdr_id=f"np-{n}", source="it", origin_id=f"np-{n}", service=mpb.CDR_SERVICE_KIND_VOICE, direction=1,
                             start_time=Timestamp(seconds=int(CALL.timestamp())), a_number="33614000001",
                             b_number="33612345678", duration_seconds=600, tenant_id=tenant)


def _rated(s: BillingStack, tenant: str, plan: str, n: int, cdr_tenant: str = "") -> list[Any]:
    """The CDR rated with ``plan`` named, by RateCdr and by RateCdrs, as ``tenant``'s administrator; each reply with its
    CDR id blanked and the plan's name, wherever it is echoed, written as NAME (so that two names compare)."""
    stub = s.client(tenant).stub(rrpc.RatingServiceStub)
    options = rpb.RateOptions(tariff_plan=plan)
    one = stub.RateCdr(rpb.RateCdrRequest(cdr=_cdr(n, cdr_tenant), options=options)).rated
    many = [r for out in stub.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[_cdr(n + 1, cdr_tenant)], options=options)]))
            for r in out.rated]
    out = []
    for r in [one, *many]:
        r.cdr_id = ""
        out.append(text_format.MessageToString(r).replace(plan, "NAME"))
    return out


def _status(s: BillingStack, tenant: str, plan: str, n: int, cdr_tenant: str = "") -> tuple[int, str, int]:
    r = _parsed(_rated(s, tenant, plan, n, cdr_tenant)[0].replace("NAME", plan))
    return r.status, r.tariff_plan, r.charge.amount_micros


def _parsed(text: str) -> rpb.RatedCdr:
    return text_format.Parse(text, rpb.RatedCdr())


@pytest.mark.parametrize("use_c", [True, False], ids=["c", "python"])
def test_a_plan_named_in_a_rating_request_must_be_the_cdr_tenant_s(billing_stack: BillingStack, use_c: bool) -> None:
    s = billing_stack
    n = 1000 if use_c else 2000
    with rating_resolver(s.root.rating, use_c):
        assert s.root.plans.compiled_at("mvno-alpha", CALL)[0] is None   # alpha rates in the operator's plan set
        unknown = _rated(s, "mvno-alpha", NOWHERE, n)
        assert _parsed(unknown[0]).status == rpb.RATING_STATUS_UNRATED and "no-plan" in _parsed(unknown[0]).reason
        assert len(unknown) == 2 and "explanation" in unknown[0]   # RateCdr explains, RateCdrs does not unless asked
        # beta's wholesale plan, beta's hosted retail plan, the operator's own retail plan: as a plan that does not exist
        for i, other in enumerate(("TP_WS_BETA", "TP_BETA_DATA", "TP_SMART_S")):
            assert _rated(s, "mvno-alpha", other, n + 10 * (i + 1)) == unknown, other
        # alpha's own: its hosted retail plan and the wholesale plan it is the customer of
        for i, own in enumerate(("TP_ALPHA_SIMPLE", "TP_WS_ALPHA")):
            status, shown, charge = _status(s, "mvno-alpha", own, n + 100 + 10 * i)
            assert (status, shown) == (rpb.RATING_STATUS_RATED, own) and charge > 0
        # the operator: any plan of its own set for its own CDRs; for alpha's CDR, only what alpha could name
        status, shown, charge = _status(s, "mno", "TP_WS_BETA", n + 200)
        assert (status, shown) == (rpb.RATING_STATUS_RATED, "TP_WS_BETA") and charge > 0
        assert _rated(s, "mno", "TP_WS_BETA", n + 210, "mvno-alpha") == _rated(s, "mno", NOWHERE, n + 220, "mvno-alpha")
        assert _status(s, "mno", "TP_WS_ALPHA", n + 230, "mvno-alpha")[0] == rpb.RATING_STATUS_RATED
