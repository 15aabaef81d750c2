"""What-if over the stored CDRs of a period: the same answer as sending those CDRs by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import mediation_pb2_grpc as mrpc
from billing.v1 import plan_pb2 as ppb
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_mediation_service import FIXTURES, _mediate
from tests.integration.test_plans_rating import plans, sample_files, stamp

pytestmark = pytest.mark.integration
C = grpc.StatusCode
DAY = (datetime(2026, 11, 27, tzinfo=timezone.utc), datetime(2026, 11, 28, tzinfo=timezone.utc))


def _lines(report: ppb.WhatIfResponse) -> list[tuple[object, ...]]:
    return sorted((x.tariff_plan, x.service, x.cdrs, x.active.amount_micros, x.candidate.amount_micros,
                   x.active_unrated, x.candidate_unrated) for x in report.lines)


def test_what_if_on_a_period_replays_the_stored_cdrs(stack) -> None:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    v1 = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v1.version))
    v2 = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files(
        {"rates/retail/RT_MMS.yaml": ('price: "0.40"', 'price: "0.55"')}))).version
    mediation = stack.client("mno").stub(mrpc.MediationServiceStub)
    cdrs, summary = _mediate(mediation, (FIXTURES / "msc_sample.csv").read_bytes(), "msc_generic", name="whatif.csv")
    assert summary.normalised == 6 and len(cdrs) == 6

    by_hand = svc.WhatIf(ppb.WhatIfRequest(candidate_version=v2.version, cdrs=cdrs, default_tariff_plan="TP_SMART_M"))
    stored = svc.WhatIf(ppb.WhatIfRequest(candidate_version=v2.version, period_start=stamp(DAY[0]), period_end=stamp(DAY[1]),
                                          default_tariff_plan="TP_SMART_M"))
    assert _lines(stored) == _lines(by_hand)
    assert sum(x.cdrs for x in stored.lines) == 6

    before = svc.WhatIf(ppb.WhatIfRequest(candidate_version=v2.version, period_start=stamp(datetime(2020, 1, 1, tzinfo=timezone.utc)),
                                          period_end=stamp(datetime(2020, 1, 2, tzinfo=timezone.utc))))
    assert list(before.lines) == []

    # an MVNO replays only its own stored traffic
    alpha = plans(stack, "mvno-alpha")
    a1 = alpha.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files(tenant="mvno-alpha"))).version
    alpha.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=a1.version))
    a2 = alpha.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files(tenant="mvno-alpha"))).version
    mine = alpha.WhatIf(ppb.WhatIfRequest(candidate_version=a2.version, period_start=stamp(DAY[0]), period_end=stamp(DAY[1]),
                                          default_tariff_plan="TP_ALPHA_SIMPLE"))
    alpha_cdrs = [c for c in cdrs if c.tenant_id == "mvno-alpha"]
    assert 0 < sum(x.cdrs for x in mine.lines) == len(alpha_cdrs) < 6


def test_bad_period_requests(stack) -> None:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    err = rpc_error(lambda: svc.WhatIf(ppb.WhatIfRequest(candidate_version=1, period_start=stamp(DAY[0]))), C.INVALID_ARGUMENT)
    assert "period_end" in field_violations(err)
    err = rpc_error(lambda: svc.WhatIf(ppb.WhatIfRequest(candidate_version=1, period_start=stamp(DAY[1]), period_end=stamp(DAY[0]))),
                    C.INVALID_ARGUMENT)
    assert "period_end" in field_violations(err)
    err = rpc_error(lambda: svc.WhatIf(ppb.WhatIfRequest(candidate_version=1, period_start=stamp(DAY[0]), period_end=stamp(DAY[1]),
                                                         cdrs=[mpb.NormalisedCdr()])), C.INVALID_ARGUMENT)
    assert "period_start" in field_violations(err)
