"""Requests over stored data cover at most ``engine.periods.MAX_PERIOD_DAYS`` (186 days, as RebillRerated always did),
over a real port on SQLite and PostgreSQL: WhatIf by stored period and Rerate past it are INVALID_ARGUMENT on
``period_end`` before anything is read; at the maximum they run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from billing.v1 import plan_pb2 as ppb
from billing.v1 import rerate_pb2 as xpb
from billing.v1 import rerate_pb2_grpc as xrpc
from engine.periods import MAX_PERIOD_DAYS
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import plans, sample_files, stamp

pytestmark = pytest.mark.integration
C = grpc.StatusCode
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
TOO_LONG = START + timedelta(days=MAX_PERIOD_DAYS, seconds=1)
LONGEST = START + timedelta(days=MAX_PERIOD_DAYS)


@pytest.fixture(scope="module")
def candidate(stack) -> int:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    v1 = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v1.version))
    return int(v1.version)


def test_what_if_by_period_is_bounded(stack, candidate: int) -> None:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    err = rpc_error(lambda: svc.WhatIf(ppb.WhatIfRequest(candidate_version=candidate, period_start=stamp(START), period_end=stamp(TOO_LONG))),
                    C.INVALID_ARGUMENT)
    assert f"{MAX_PERIOD_DAYS} days" in field_violations(err)["period_end"]
    report = svc.WhatIf(ppb.WhatIfRequest(candidate_version=candidate, period_start=stamp(START), period_end=stamp(LONGEST)))
    assert list(report.lines) == []


def test_rerate_is_bounded(stack, candidate: int) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(xrpc.RerateServiceStub)
    err = rpc_error(lambda: list(stub.Rerate(xpb.RerateRequest(period_start=stamp(START), period_end=stamp(TOO_LONG)))), C.INVALID_ARGUMENT)
    assert f"{MAX_PERIOD_DAYS} days" in field_violations(err)["period_end"]
    replies = list(stub.Rerate(xpb.RerateRequest(period_start=stamp(START), period_end=stamp(LONGEST))))
    assert replies[-1].HasField("summary") and replies[-1].summary.rated == 0
