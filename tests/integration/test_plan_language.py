"""Issue #16 constructs over a real port: each golden folder of the new plan language uploaded as a plan set version
and activated on the billing stack's movable clock (in January 2026, before the folders' CDRs), its CDRs rated by RatingService.RateCdr and compared with the folder's expected output, and
PlanService.WhatIf totals (active against a candidate with one price changed) checked against the same expectations."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import rating_pb2 as rpb
from engine.replay import load_assignments
from tests.integration.billing_support import START, billing_stack  # noqa: F401 - the fixture
from tests.integration.test_plans_rating import plans, rating, stamp

pytestmark = pytest.mark.integration
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = ("prefix-priority", "prefix-fallback", "plan-syntax", "declared-policies", "plan-inheritance", "row-time-bands")
_SERVICE = {"voice": mpb.CDR_SERVICE_KIND_VOICE, "sms": mpb.CDR_SERVICE_KIND_SMS, "mms": mpb.CDR_SERVICE_KIND_MMS,
            "data": mpb.CDR_SERVICE_KIND_DATA}
_DIRECTION = {"originating": mpb.CDR_DIRECTION_ORIGINATING, "terminating": mpb.CDR_DIRECTION_TERMINATING}


def _files(case: str, change: tuple[str, str, str] | None = None) -> list[ppb.PlanFile]:
    root = GOLDEN / case / "plans"
    out = []
    for p in sorted(root.iterdir()):
        text = p.read_text()
        if change and p.name == change[0]:
            text = text.replace(change[1], change[2])
        out.append(ppb.PlanFile(path=p.name, content=text))
    return out


def _cdrs(case: str) -> list[tuple[mpb.NormalisedCdr, str]]:
    from datetime import datetime

    assignments = load_assignments(GOLDEN / case / "subscribers.yaml", [])
    out = []
    with (GOLDEN / case / "cdrs.cdr.csv").open() as fh:
        for row in csv.DictReader(fh):
            start = datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
            cdr = mpb.NormalisedCdr(
                source="it16", origin_id=f"{case}-{row['origin_id']}", service=_SERVICE[row["service"]],
                direction=_DIRECTION[row["direction"]], start_time=stamp(start), a_number=row["a_number"], b_number=row["b_number"],
                duration_seconds=int(row["duration_seconds"]), volume_down_bytes=int(row["volume_down_bytes"]),
                event_count=int(row["event_count"]))
            out.append((cdr, assignments.subscribers.get(row["a_number"]) or assignments.default_plan))
    return out


def _expected(case: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (GOLDEN / case / "expected.jsonl").read_text().splitlines() if line.strip()]


# one price per case to change in the what-if candidate: (file, old, new)
_CHANGES = {
    "prefix-priority": ("rt_world.yaml", 'price: "1.00"', 'price: "2.00"'),
    "prefix-fallback": ("rt_mobile.yaml", 'price: "0.12"', 'price: "0.24"'),
    "plan-syntax": ("rt_peak.yaml", 'price: "1.20"', 'price: "2.40"'),
    "declared-policies": ("rt_disconnect.yaml", 'price: "0.60"', 'price: "1.20"'),
    "plan-inheritance": ("rt_default_world.yaml", 'price: "1.00"', 'price: "2.00"'),
    "row-time-bands": ("rt_uk_holiday.yaml", 'price: "0.06"', 'price: "0.12"'),
}


@pytest.mark.parametrize("case", CASES)
def test_the_new_constructs_rate_over_rating_service_and_what_if(billing_stack, case: str) -> None:  # type: ignore[no-untyped-def]
    stack = billing_stack
    stack.at(START + timedelta(days=1 + CASES.index(case)))   # each case's set active from a later day, before its CDRs
    svc = plans(stack)
    version = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=_files(case))).version.version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=version))
    expected = _expected(case)
    cdrs = _cdrs(case)
    assert len(cdrs) == len(expected)
    for (cdr, plan), want in zip(cdrs, expected):
        got = rating(stack).RateCdr(rpb.RateCdrRequest(cdr=cdr, options=rpb.RateOptions(tariff_plan=plan))).rated
        if want["status"] == "rated":
            assert got.status == rpb.RATING_STATUS_RATED, (case, got.reason)
            assert got.charge.amount_micros == want["charge_micros"], (case, want)
            assert (got.tariff_plan, got.destination) == (want["plan"], want["destination"])
            assert [s.rate_id for s in got.spans] == [s["rate"] for s in want["spans"]]
            assert list(got.flags) == want.get("flags", [])
        else:
            assert got.status == rpb.RATING_STATUS_UNRATED and got.reason == want["reason"], (case, got.reason)

    # what-if: the active version against a candidate with one price changed, per plan and service
    candidate = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=_files(case, _CHANGES[case]))).version.version
    assignments = [ppb.PlanAssignment(key=c.a_number, tariff_plan=p) for c, p in cdrs]
    report = svc.WhatIf(ppb.WhatIfRequest(candidate_version=candidate, cdrs=[c for c, _ in cdrs], assignments=assignments))
    active_total = sum(line.active.amount_micros for line in report.lines)
    assert active_total == sum(w.get("charge_micros", 0) for w in expected)
    assert sum(line.active_unrated for line in report.lines) == sum(w["status"] == "unrated" for w in expected)
    # the changed rate prices some of the case's CDRs: the candidate costs more, never less
    assert sum(line.difference.amount_micros for line in report.lines) > 0
    assert sum(line.candidate.amount_micros for line in report.lines) > active_total
