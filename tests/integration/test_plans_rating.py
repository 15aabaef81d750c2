"""PlanService and RatingService over a real port: versions, activation, diff, what-if, rating with counters,
streams, and tenant isolation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from billing.v1 import subscriber_pb2 as spb
from engine.clock import FixedClock
from tests.integration.conftest import MID_MONTH
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error

pytestmark = pytest.mark.integration
C = grpc.StatusCode
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_clock() -> FixedClock:
    """The server on a fixed clock in the middle of a month: the CDRs' cycle is the server's cycle now, on any day."""
    return FixedClock(MID_MONTH)


def sample_files(change: dict[str, tuple[str, str]] | None = None, tenant: str = "") -> list[ppb.PlanFile]:
    """The files of plans/ as an upload carries them (``change``: a replacement in some); ``tenant``: an MVNO's own
    plan set, without the tariff plans of other tenants (an MVNO may hold only its own retail plans)."""
    root = REPO / "plans"
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith("vouchers/") or rel == "operator.yaml" or p.suffix not in (".yaml", ".prefixes"):
            continue
        text = p.read_text()
        if tenant and rel.startswith("tariff_plans/") and f"\ntenant: {tenant}\n" not in text:
            continue
        if change and rel in change:
            text = text.replace(*change[rel])
        out.append(ppb.PlanFile(path=rel, content=text))
    return out


def stamp(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def plans(stack, tenant: str = "mno", role: str = ""):  # type: ignore[no-untyped-def]
    return stack.client(tenant, role).stub(prpc.PlanServiceStub)


def rating(stack, tenant: str = "mno", role: str = ""):  # type: ignore[no-untyped-def]
    return stack.client(tenant, role).stub(rrpc.RatingServiceStub)


def cdr(n: int, b: str = "33612999999", seconds: int = 120, tenant: str = "", a: str = "33614000001", **kw):  # type: ignore[no-untyped-def]
    start = MID_MONTH + timedelta(minutes=2)   # after the activation, on the server's clock
    return mpb.NormalisedCdr(source="it", origin_id=f"{n}", service=kw.pop("service", mpb.CDR_SERVICE_KIND_VOICE),
                             direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=stamp(start), a_number=a, b_number=b,
                             duration_seconds=seconds, tenant_id=tenant, **kw)


@pytest.fixture(scope="module")
def active(stack):  # type: ignore[no-untyped-def]
    """Version 1 of the sample catalogue uploaded by the operator and active now."""
    svc = plans(stack)
    v = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v.version))
    return v


def test_upload_stores_a_validated_version(stack, active) -> None:  # type: ignore[no-untyped-def]
    assert active.version == 1 and active.tenant_id == "mno" and len(active.digest) == 64
    assert {"TP_SMART_S", "TP_WS_ALPHA", "TP_WS_BETA"} <= set(active.tariff_plans)
    assert active.object_counts["rates"] >= 30
    got = plans(stack).GetPlanSetVersion(ppb.GetPlanSetVersionRequest(version=0, include_ir=True))
    assert got.version.version == 1 and got.version.HasField("activate_time")
    assert '"format": "rulebill.plans.ir/1"' in got.ir_json


def test_invalid_plan_set_is_refused_with_every_problem_and_stores_nothing(stack, active) -> None:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    before = audit_count(stack)
    files = sample_files({"rates/retail/RT_MMS.yaml": ('price: "0.40"', "price: 0.40"),
                          "time_bands/TB_ANYTIME.yaml": ("days: all", "days: weekdays")})
    err = rpc_error(lambda: svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=files)), C.INVALID_ARGUMENT)
    violations = field_violations(err)
    assert any(k.startswith("files[rates/retail/RT_MMS.yaml]:") and v.startswith("value.amount") for k, v in violations.items())
    assert any(k.startswith("files[time_bands/TB_ANYTIME.yaml]:") and v.startswith("bands.gap") for k, v in violations.items())
    assert audit_count(stack) == before
    listed = svc.ListPlanSetVersions(ppb.ListPlanSetVersionsRequest()).versions
    assert [v.version for v in listed] == [1]
    checked = svc.ValidatePlanSet(ppb.ValidatePlanSetRequest(files=files))
    assert not checked.valid and {p.code for p in checked.problems} == {"value.amount", "bands.gap"}
    bad_path = [ppb.PlanFile(path="../etc/passwd.yaml", content="x")]
    rpc_error(lambda: svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=bad_path)), C.INVALID_ARGUMENT)


def test_future_activation_diff_and_what_if(stack, active) -> None:  # type: ignore[no-untyped-def]
    svc = plans(stack)
    v2 = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files(
        {"rates/retail/RT_MMS.yaml": ('price: "0.40"', 'price: "0.55"')}))).version
    assert v2.version == 2
    changes = svc.DiffPlanSetVersions(ppb.DiffPlanSetVersionsRequest(from_version=1, to_version=2)).changes
    assert [(c.kind, c.id, c.change) for c in changes] == [("rates", "RT_MMS", ppb.PLAN_CHANGE_KIND_CHANGED)]

    later = MID_MONTH + timedelta(days=30)
    got = svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=2, activate_time=stamp(later))).version
    assert abs(got.activate_time.ToDatetime(tzinfo=timezone.utc) - later) < timedelta(seconds=1)
    assert svc.GetPlanSetVersion(ppb.GetPlanSetVersionRequest()).version.version == 1  # still v1 today
    past = MID_MONTH - timedelta(days=1)
    err = rpc_error(lambda: svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=2, activate_time=stamp(past))),
                    C.INVALID_ARGUMENT)
    assert "activate_time" in field_violations(err)
    err = rpc_error(lambda: svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=1)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PLAN_SET_ALREADY_ACTIVE"
    rpc_error(lambda: svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=99)), C.NOT_FOUND)

    mms = [cdr(i, b="33698765432", seconds=0, service=mpb.CDR_SERVICE_KIND_MMS, event_count=1) for i in range(3)]
    report = svc.WhatIf(ppb.WhatIfRequest(candidate_version=2, cdrs=mms, default_tariff_plan="TP_SMART_M"))
    assert (report.active_version, report.candidate_version) == (1, 2)
    [line] = report.lines
    assert (line.tariff_plan, line.service, line.cdrs) == ("TP_SMART_M", mpb.CDR_SERVICE_KIND_MMS, 3)
    assert (line.active.amount_micros, line.candidate.amount_micros, line.difference.amount_micros) == (1_200_000, 1_650_000, 450_000)


def test_rate_an_mvno_cdr_with_the_operators_wholesale_plan(stack, active) -> None:  # type: ignore[no-untyped-def]
    alpha = rating(stack, "mvno-alpha")
    rated = alpha.RateCdr(rpb.RateCdrRequest(cdr=cdr(1, b="33612999999", seconds=120))).rated
    assert rated.status == rpb.RATING_STATUS_RATED, rated.reason
    assert (rated.tariff_plan, rated.plan_set_version, rated.destination) == ("TP_WS_ALPHA", 1, "DST_ONNET")
    assert (rated.charge.amount_micros, rated.charge.currency) == (12_000, "EUR")   # 120 s at 0.0060/min
    assert rated.spans[0].rate_id == "RT_WS_VOICE_ONNET" and rated.explanation
    unknown = alpha.RateCdr(rpb.RateCdrRequest(cdr=cdr(2, b="5511999999999"), options=rpb.RateOptions(tariff_plan="TP_NOPE"))).rated
    assert unknown.status == rpb.RATING_STATUS_UNRATED and unknown.reason.startswith("no-plan")
    negative = alpha.RateCdr(rpb.RateCdrRequest(cdr=cdr(3, seconds=-5))).rated
    assert negative.status == rpb.RATING_STATUS_REJECTED and "duration" in negative.reason
    err = rpc_error(lambda: alpha.RateCdr(rpb.RateCdrRequest(cdr=mpb.NormalisedCdr(source="it", origin_id="x"))), C.INVALID_ARGUMENT)
    assert {"cdr.service", "cdr.start_time"} <= set(field_violations(err))


def test_bundle_counters_are_consumed_and_persisted(stack, active) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    msisdn = "336120" + str(stack.unique_msisdn())[-6:]
    op.subscribers.rpc.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
        msisdn=msisdn, imsi=stack.unique_imsi(), billing_account="ACC-R", payment_type=spb.PAYMENT_TYPE_POSTPAID, tariff_plan="TP_SMART_S"))
    svc = rating(stack)
    options = rpb.RateOptions(use_bundle_counters=True)
    first = svc.RateCdr(rpb.RateCdrRequest(cdr=cdr(10, b="33698765432", seconds=600, a=msisdn, tenant="mno"), options=options)).rated
    assert first.status == rpb.RATING_STATUS_RATED and first.tariff_plan == "TP_SMART_S"
    assert [(b.bundle_id, b.units) for b in first.bundles] == [("BN_S_VOICE_120MIN", 600)] and first.charge.amount_micros == 0
    intl = svc.RateCdr(rpb.RateCdrRequest(cdr=cdr(11, b="442071234567", seconds=60, a=msisdn, tenant="mno"), options=options)).rated
    assert intl.charge.amount_micros == 1_200_000  # connect 0.20 + first minute 1.00, not in the bundle
    cycle = MID_MONTH.strftime("%Y-%m")  # the CDRs' month, in the plan's time zone too
    counters = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn, cycle=cycle))
    by_id = {c.bundle_id: (c.allowance, c.remaining) for c in counters.counters}
    assert by_id["BN_S_VOICE_120MIN"] == (7200, 6600)
    assert by_id["BN_S_DATA_2GB"] == (2 * 1024**3, 2 * 1024**3)
    assert counters.usage_charged.amount_micros == 1_200_000
    # rating the same CDR again replaces the first rating: nothing is consumed or charged twice
    again_first = svc.RateCdr(rpb.RateCdrRequest(cdr=cdr(10, b="33698765432", seconds=600, a=msisdn, tenant="mno"), options=options)).rated
    assert again_first.cdr_id == first.cdr_id and [(b.bundle_id, b.units) for b in again_first.bundles] == [("BN_S_VOICE_120MIN", 600)]
    svc.RateCdr(rpb.RateCdrRequest(cdr=cdr(11, b="442071234567", seconds=60, a=msisdn, tenant="mno"), options=options))
    rerated = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn, cycle=cycle))
    assert {c.bundle_id: c.remaining for c in rerated.counters}["BN_S_VOICE_120MIN"] == 6600
    assert rerated.usage_charged.amount_micros == 1_200_000
    # without counters nothing is consumed
    svc.RateCdr(rpb.RateCdrRequest(cdr=cdr(12, b="33698765432", seconds=600, a=msisdn, tenant="mno")))
    again = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn, cycle=cycle))
    assert {c.bundle_id: c.remaining for c in again.counters}["BN_S_VOICE_120MIN"] == 6600
    # the number as people write it (+, spaces) is the subscriber's, with or without a cycle: not an empty answer
    current = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn))      # the subscriber's cycle now
    assert {c.bundle_id: c.remaining for c in current.counters}["BN_S_VOICE_120MIN"] == 6600
    assert {c.cycle for c in current.counters} == {c.cycle for c in again.counters} == {cycle}  # the cycle it found, named
    for written in ("+" + msisdn, f"+{msisdn[:2]} {msisdn[2:]}"):
        assert svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=written, cycle=cycle)) == again
        assert svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=written)) == current


def test_rate_cdrs_streams_chunks_in_order(stack, active) -> None:  # type: ignore[no-untyped-def]
    svc = rating(stack, "mvno-beta")
    chunks = [rpb.RateCdrsRequest(cdrs=[cdr(100 * k + i, seconds=60 + i) for i in range(50)]) for k in range(3)]
    responses = list(svc.RateCdrs(iter(chunks)))
    assert [len(r.rated) for r in responses] == [50, 50, 50]
    flat = [r for resp in responses for r in resp.rated]
    assert all(r.status == rpb.RATING_STATUS_RATED and r.tariff_plan == "TP_WS_BETA" for r in flat)
    assert [r.units for r in flat[:3]] == [60, 61, 62]
    too_many = rpb.RateCdrsRequest(cdrs=[cdr(i) for i in range(1001)])
    rpc_error(lambda: list(svc.RateCdrs(iter([too_many]))), C.INVALID_ARGUMENT)


def test_tenant_isolation(stack, active) -> None:  # type: ignore[no-untyped-def]
    beta_plans = plans(stack, "mvno-beta")
    beta_rating = rating(stack, "mvno-beta")
    csr = plans(stack, "mno", "csr")   # issuing tokens is audited: create the clients first
    before = audit_count(stack)
    rpc_error(lambda: beta_plans.ListPlanSetVersions(ppb.ListPlanSetVersionsRequest(tenant_id="mno")), C.PERMISSION_DENIED)
    rpc_error(lambda: beta_plans.GetPlanSetVersion(ppb.GetPlanSetVersionRequest(tenant_id="mno", version=1)), C.PERMISSION_DENIED)
    rpc_error(lambda: beta_plans.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(tenant_id="mno", version=2)),
              C.PERMISSION_DENIED)
    rpc_error(lambda: beta_plans.UploadPlanSet(ppb.UploadPlanSetRequest(tenant_id="mvno-alpha", files=sample_files())),
              C.PERMISSION_DENIED)
    rpc_error(lambda: beta_rating.RateCdr(rpb.RateCdrRequest(cdr=cdr(1, tenant="mvno-alpha"))), C.PERMISSION_DENIED)
    rpc_error(lambda: beta_rating.GetBundleCounters(rpb.GetBundleCountersRequest(tenant_id="mvno-alpha", msisdn="33614000001")),
              C.PERMISSION_DENIED)
    # its own (empty) catalogue: nothing there
    assert list(beta_plans.ListPlanSetVersions(ppb.ListPlanSetVersionsRequest()).versions) == []
    rpc_error(lambda: beta_plans.GetPlanSetVersion(ppb.GetPlanSetVersionRequest(version=1)), C.NOT_FOUND)
    # a CSR may rate but not upload plans
    rpc_error(lambda: csr.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())), C.PERMISSION_DENIED)
    assert audit_count(stack) == before
