"""Stored rating on SQLite and PostgreSQL: the one evaluator behind every path, re-rating that replaces and never adds,
limits refused over gRPC, two replicas spending one bundle, and SIGKILL mid-stream then a rerun."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import mediation_pb2_grpc as mrpc
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from billing.v1 import rerate_pb2 as xpb
from billing.v1 import rerate_pb2_grpc as xrpc
from engine.cdr import COLUMNS, Direction, MediatedCdr, Service, cdr_identity, encode_attributes
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.mediation import mediated_cdrs
from store.plans import bundle_counters, credit_alert_log, usage_balances, usage_ledger
from tests.integration.conftest import MID_MONTH
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import sample_files

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
C = grpc.StatusCode
REPO = Path(__file__).resolve().parents[2]
EUR = 1_000_000


def stamp(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def voice_pb(n: int, a: str, b: str, seconds: int, start: datetime, tenant: str = "") -> mpb.NormalisedCdr:
    return mpb.NormalisedCdr(source="it-stored", origin_id=f"{a}-{n}", service=mpb.CDR_SERVICE_KIND_VOICE,
                             direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=stamp(start), a_number=a, b_number=b,
                             duration_seconds=seconds, tenant_id=tenant)


def voice(n: int, a: str, b: str, seconds: int, start: datetime, tenant: str = "mno", source: str = "it-stored") -> MediatedCdr:
    origin = f"{a}-{n}"
    return MediatedCdr(cdr_identity(source, origin), source, origin, Service.VOICE, Direction.ORIGINATING, start, a, b,
                       duration_seconds=seconds, tenant=tenant)


def store_cdrs(root: Root, cdrs: list[MediatedCdr]) -> None:
    """Put CDRs in the CDR store as mediation would (the rows re-rating and what-if read)."""
    rows = []
    for c in cdrs:
        row = {name: getattr(c, name) for name in COLUMNS if name not in ("tenant", "attributes", "service", "direction")}
        row.update(service=c.service.value, direction=c.direction.value, tenant_id=c.tenant, attributes=encode_attributes(c.attributes),
                   file_tenant_id=c.tenant, file_id="it-stored")
        rows.append(row)
    with root.db.begin() as conn:
        conn.execute(mediated_cdrs.insert(), rows)


def state(root: Root, msisdns: set[str]) -> dict[str, Any]:
    """What rating with counters leaves behind for these subscribers (without times that differ between runs)."""
    with root.db.connect() as conn:
        ledger = sorted((r.cdr_id, r.msisdn, r.status, r.charge_micros, r.currency, r.bundles_json, r.cycle, r.plan_set_version,
                         r.tariff_plan)
                        for r in conn.execute(select(usage_ledger).where(usage_ledger.c.msisdn.in_(msisdns))))
        counters = sorted((r.msisdn, r.cycle, r.bundle_id, r.allowance, r.remaining)
                          for r in conn.execute(select(bundle_counters).where(bundle_counters.c.msisdn.in_(msisdns))))
        balances = sorted((r.msisdn, r.cycle, r.currency, r.charged_micros)
                          for r in conn.execute(select(usage_balances).where(usage_balances.c.msisdn.in_(msisdns))))
        alerts = sorted((r.msisdn, r.period, r.threshold_id, r.action_index, r.used_micros)
                        for r in conn.execute(select(credit_alert_log).where(credit_alert_log.c.msisdn.in_(msisdns))))
    return {"ledger": ledger, "counters": counters, "balances": balances, "alerts": alerts}


def spent_once(root: Root, msisdn: str, rows: int) -> dict[str, Any]:
    """The subscriber's ``rows`` ledger rows spent its 120-minute bundle exactly: every unit once, none twice, none
    lost; counters and balances consistent with the ledger.  The state read is given back."""
    st = state(root, {msisdn})
    assert len(st["ledger"]) == rows
    used = sum(u for row in st["ledger"] for _b, u in json.loads(row[5]))
    [(_m, _c, _bid, allowance, remaining)] = [c for c in st["counters"] if c[2] == "BN_S_VOICE_120MIN"]
    assert used == allowance == 7200 and remaining == 0
    consistent(st)
    return st


def consistent(st: dict[str, Any]) -> None:
    """Counters and balances equal what the ledger's rows took."""
    used: dict[tuple[str, str, str], int] = {}
    charged: dict[tuple[str, str, str], int] = {}
    for _cdr_id, msisdn, _status, charge, currency, bundles, cycle, _v, _p in st["ledger"]:
        for b, u in json.loads(bundles):
            used[(msisdn, cycle, b)] = used.get((msisdn, cycle, b), 0) + u
        if charge:
            charged[(msisdn, cycle, currency)] = charged.get((msisdn, cycle, currency), 0) + charge
    for msisdn, cycle, bundle, allowance, remaining in st["counters"]:
        assert allowance - remaining == used.get((msisdn, cycle, bundle), 0), (bundle, allowance, remaining)
    assert {(m, c, cur): v for m, c, cur, v in st["balances"] if v} == charged


@pytest.fixture(scope="module")
def server_clock() -> FixedClock:
    """The server (and the replicas of ``roots``) on a fixed clock in the middle of a month: the CDRs here, minutes
    after it, fall in one bill cycle whenever the suite runs (spent_once reads one counter row per bundle)."""
    return FixedClock(MID_MONTH)


@pytest.fixture(scope="module")
def active(stack):  # type: ignore[no-untyped-def]
    svc = stack.client("mno").stub(prpc.PlanServiceStub)
    v = svc.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files())).version
    svc.ActivatePlanSetVersion(ppb.ActivatePlanSetVersionRequest(version=v.version))
    return v


_DRAWN: set[str] = set()   # the numbers provision drew in this process: six random digits meet again (hypothesis tests)


def provision(stack, plan: str = "TP_SMART_S", tenant: str = "mno", msisdn: str = ""):  # type: ignore[no-untyped-def]
    subs = stack.client(tenant).subscribers
    drawn = msisdn   # a number the caller names is used as it is; a drawn one is new in this process
    while not drawn or drawn in _DRAWN and not msisdn:
        drawn = "336120" + stack.unique_msisdn()[-6:]
    _DRAWN.add(drawn)
    msisdn = drawn
    sub = subs.provision(msisdn, stack.unique_imsi(), "ACC-ST", plan)
    return subs.transition(sub.subscriber_id, "activate")


def rerate(stack, start: datetime, end: datetime, version: int = 0, tenant: str = "mno") -> xpb.RerateSummary:  # type: ignore[no-untyped-def]
    replies = list(stack.client(tenant).stub(xrpc.RerateServiceStub).Rerate(xpb.RerateRequest(
        period_start=stamp(start), period_end=stamp(end), plan_set_version=version)))
    assert replies[0].progress.done == 0 and all(r.HasField("progress") for r in replies[:-1])
    return replies[-1].summary


# -- every path, one evaluator ------------------------------------------------------------------------------------

def test_every_rating_path_goes_through_the_one_evaluator(stack, active, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.rating import evaluator as ev_module
    from engine.replay import replay_folder

    calls: dict[str, int] = {}

    def spy(name: str) -> None:
        original = getattr(ev_module.Evaluator, name)

        def counted(self, *a, **kw):  # type: ignore[no-untyped-def]
            calls[name] = calls.get(name, 0) + 1
            return original(self, *a, **kw)

        monkeypatch.setattr(ev_module.Evaluator, name, counted)

    for name in ("rate_cdr", "rate_rows", "authorise"):
        spy(name)
    import importlib

    for module in ("engine.rating", "engine.rating.rater", "engine.rating.bulk"):
        if module != "engine.rating":
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module(module)   # no second pricing implementation
    sub = provision(stack)
    start = MID_MONTH + timedelta(minutes=5)
    seen: list[tuple[str, dict[str, int]]] = []

    def step(label: str, fn: Any) -> None:
        before = dict(calls)
        fn()
        seen.append((label, {k: calls.get(k, 0) - before.get(k, 0) for k in calls if calls.get(k, 0) != before.get(k, 0)}))

    rating = stack.client("mno").stub(rrpc.RatingServiceStub)
    step("RateCdr", lambda: rating.RateCdr(rpb.RateCdrRequest(cdr=voice_pb(1, sub.msisdn, "442071234567", 60, start))))
    step("RateCdrs", lambda: list(rating.RateCdrs(iter([rpb.RateCdrsRequest(
        cdrs=[voice_pb(2, sub.msisdn, "442071234567", 60, start)], options=rpb.RateOptions(use_bundle_counters=True))]))))
    step("AuthorizeCall", lambda: rating.AuthorizeCall(rpb.AuthorizeCallRequest(msisdn=sub.msisdn, destination="442071234567")))
    plans = stack.client("mno").stub(prpc.PlanServiceStub)
    step("WhatIf", lambda: plans.WhatIf(ppb.WhatIfRequest(candidate_version=active.version,
                                                          cdrs=[voice_pb(3, sub.msisdn, "442071234567", 60, start)])))
    store_cdrs(stack.root, [voice(4, sub.msisdn, "442071234567", 60, start + timedelta(minutes=1))])
    step("WhatIf period", lambda: plans.WhatIf(ppb.WhatIfRequest(candidate_version=active.version, period_start=stamp(start),
                                                                 period_end=stamp(start + timedelta(hours=1)))))
    step("Rerate", lambda: rerate(stack, start, start + timedelta(hours=1)))
    when = (start + timedelta(minutes=2)).strftime("%Y%m%d%H%M%S")
    data = ("record_id;record_type;served_imsi;served_msisdn;other_party;start_time;duration_ms;volume_up;volume_down;visited_plmn;"
            "call_reference;partial_seq;partial_last;termination;ss_code\n"
            f"S1;MOC;{sub.imsi};{sub.msisdn};00442071234567;{when};61500;0;0;;C1;;;normalRelease;\n").encode()
    mediation = stack.client("mno").stub(mrpc.MediationServiceStub)
    step("MediateFile --rate", lambda: list(mediation.MediateFile(iter([
        mpb.MediateFileRequest(header=mpb.MediateFileHeader(layout="msc_generic", file_name="same-evaluator.csv", rate=True)),
        mpb.MediateFileRequest(data=data)]))))
    step("replay", lambda: replay_folder(REPO / "tests" / "golden" / "bundles"))
    expected = {"RateCdr": "rate_rows", "RateCdrs": "rate_rows", "AuthorizeCall": "authorise", "WhatIf": "rate_rows",
                "WhatIf period": "rate_rows", "Rerate": "rate_rows", "MediateFile --rate": "rate_rows", "replay": "rate_rows"}
    for label, used in seen:
        assert used.get(expected[label], 0) >= 1, (label, used)


# -- re-rating ------------------------------------------------------------------------------------------------------

def test_rerate_replaces_never_adds_and_a_second_run_changes_nothing(stack, active) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack)
    start = MID_MONTH + timedelta(minutes=10)
    # 10 national calls of 1000 s against the 7200 s bundle (7 covered, 1 partly, 2 charged) and 3 international ones
    cdrs = [voice(i, sub.msisdn, "33698765432", 1000, start + timedelta(seconds=20 * i)) for i in range(10)]
    cdrs += [voice(10 + i, sub.msisdn, "442071234567", 125, start + timedelta(seconds=300 + 20 * i)) for i in range(3)]
    store_cdrs(stack.root, cdrs)
    end = start + timedelta(hours=1)
    first = rerate(stack, start, end)
    assert (first.cdrs, first.rated, first.unrated) == (13, 13, 0)
    one = state(stack.root, {sub.msisdn})
    consistent(one)
    [(_m, _c, _b, allowance, remaining)] = [c for c in one["counters"] if c[2] == "BN_S_VOICE_120MIN"]
    assert (allowance, remaining) == (7200, 0)
    assert rerate(stack, start, end).charged_after == first.charged_after
    assert state(stack.root, {sub.msisdn}) == one, "re-rating the same CDRs again must change nothing"

    # a new plan set version with other prices: re-rating under it replaces every row
    plans = stack.client("mno").stub(prpc.PlanServiceStub)
    v2 = plans.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files({
        "rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "2.00"')}))).version
    second = rerate(stack, start, end, v2.version)
    two = state(stack.root, {sub.msisdn})
    consistent(two)
    assert [m.amount_micros for m in second.charged_before] == [m.amount_micros for m in first.charged_after]
    assert second.charged_after[0].amount_micros > second.charged_before[0].amount_micros
    assert {r[7] for r in two["ledger"]} == {v2.version}
    assert rerate(stack, start, end, v2.version).charged_after == second.charged_after
    assert state(stack.root, {sub.msisdn}) == two
    # and back: exactly the first state, as if the second version had never been applied
    rerate(stack, start, end, active.version)
    assert state(stack.root, {sub.msisdn}) == one


def test_a_rap_return_is_kept_on_record_and_never_charged(stack, active) -> None:  # type: ignore[no-untyped-def]
    """A call event returned in a RAP file is stored by mediation (with its tenant) but disputes the TAP event
    that was rated: re-rating and what-if over the period leave it uncharged, with the reason."""
    sub = provision(stack)
    start = MID_MONTH + timedelta(hours=5)   # a period no other test stores CDRs in
    charged = voice(1, sub.msisdn, "442071234567", 120, start)
    returned = replace(voice(2, sub.msisdn, "442071234567", 120, start + timedelta(seconds=30), source="rap:GBRXX"),
                       attributes={"rap_return": "severeReturn", "rap_file_sequence_number": "00007"})
    store_cdrs(stack.root, [charged, returned])
    summary = rerate(stack, start, start + timedelta(minutes=5))
    assert (summary.cdrs, summary.rated, summary.unrated) == (2, 1, 1)
    with stack.root.db.connect() as conn:
        rows = {r.cdr_id: r for r in conn.execute(select(usage_ledger).where(usage_ledger.c.msisdn == sub.msisdn))}
    assert rows[charged.cdr_id].status == "rated" and rows[charged.cdr_id].charge_micros > 0
    assert rows[returned.cdr_id].status == "unrated" and rows[returned.cdr_id].charge_micros == 0
    assert rows[returned.cdr_id].reason.startswith("rap-return:")
    plans = stack.client("mno").stub(prpc.PlanServiceStub)
    report = plans.WhatIf(ppb.WhatIfRequest(candidate_version=active.version, period_start=stamp(start),
                                            period_end=stamp(start + timedelta(minutes=5))))
    assert sum(line.cdrs for line in report.lines) + report.rejected == 1   # the return is not compared


def test_rerate_is_tenant_scoped_and_checks_its_arguments(stack, active) -> None:  # type: ignore[no-untyped-def]
    now = MID_MONTH
    beta = stack.client("mvno-beta").stub(xrpc.RerateServiceStub)
    rpc_error(lambda: list(beta.Rerate(xpb.RerateRequest(tenant_id="mno", period_start=stamp(now), period_end=stamp(now + timedelta(1))))),
              C.PERMISSION_DENIED)
    rpc_error(lambda: list(beta.Rerate(xpb.RerateRequest(period_start=stamp(now), period_end=stamp(now + timedelta(1)),
                                                         plan_set_version=active.version))), C.NOT_FOUND)
    err = rpc_error(lambda: list(stack.client("mno").stub(xrpc.RerateServiceStub).Rerate(xpb.RerateRequest(
        period_start=stamp(now)))), C.INVALID_ARGUMENT)
    assert "period_end" in field_violations(err)
    err = rpc_error(lambda: list(stack.client("mno").stub(xrpc.RerateServiceStub).Rerate(xpb.RerateRequest(
        period_start=stamp(now), period_end=stamp(now - timedelta(1))))), C.INVALID_ARGUMENT)
    assert "period_end" in field_violations(err)


# -- the chunk's reply ---------------------------------------------------------------------------------------------

def test_a_chunk_reply_is_the_full_rated_cdr_of_each_of_its_cdrs(stack, active) -> None:  # type: ignore[no-untyped-def]
    """RateCdrs writes its reply straight from the evaluator's rows; RateCdr writes each CDR's full RatedCdr: the same
    messages (explanation aside, which RateCdr always writes and RateCdrs only when asked), CDR by CDR."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    sub = provision(stack, "TP_SMART_M")
    start = MID_MONTH + timedelta(minutes=3)
    data = mpb.NormalisedCdr(source="it-reply", origin_id="d1", service=mpb.CDR_SERVICE_KIND_DATA, start_time=stamp(start),
                             a_number=sub.msisdn, b_number="internet", volume_down_bytes=7_340_033)
    sms = mpb.NormalisedCdr(source="it-reply", origin_id="s1", service=mpb.CDR_SERVICE_KIND_SMS, start_time=stamp(start),
                            a_number=sub.msisdn, b_number="33698765432")
    chunk = [voice_pb(1, sub.msisdn, "33698765432", 95, start), voice_pb(2, sub.msisdn, "442071234567", 61, start), data, sms,
             voice_pb(3, sub.msisdn, "999", 60, start),                                    # no destination: unrated
             voice_pb(4, sub.msisdn, "33698765432", -5, start),                            # impossible: rejected
             voice_pb(5, sub.msisdn, "33698765432", 7200, _before_peak(start)),            # off-peak then peak: two spans
             voice_pb(6, "33699999999", "33698765432", 60, start, tenant="mvno-beta")]      # an MVNO without plans: unrated
    for options in (rpb.RateOptions(), rpb.RateOptions(tariff_plan="TP_SMART_S")):
        fast = list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=chunk, options=options)])))[0].rated
        explained = list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=chunk, options=rpb.RateOptions(
            tariff_plan=options.tariff_plan, explain=True))])))[0].rated
        for got, with_why, cdr in zip(fast, explained, chunk, strict=True):
            full = svc.RateCdr(rpb.RateCdrRequest(cdr=cdr, options=options)).rated
            assert with_why == full
            full.explanation = ""
            assert got == full
        assert {r.status for r in fast} == {rpb.RATING_STATUS_RATED, rpb.RATING_STATUS_UNRATED, rpb.RATING_STATUS_REJECTED}
        assert any(len(r.spans) > 1 for r in fast) and any(len(r.spans) == 1 for r in fast)


def test_rate_cdrs_on_its_own_handler_keeps_the_interceptors_checks(stack, active) -> None:  # type: ignore[no-untyped-def]
    """RateCdrs is registered with a handler of its own (requests read with their bytes, replies handed to gRPC as the
    bytes the C writer produced): over a real port it still refuses a caller without a valid token, a request that does
    not parse and text holding NUL, names a bad CDR's field, refuses another tenant's CDRs and never rates a CDR
    against another tenant's subscriber; a reply parses as the RateCdrsResponse of its chunk."""
    sub = provision(stack, "TP_SMART_M")
    start = MID_MONTH + timedelta(minutes=4)
    request = rpb.RateCdrsRequest(cdrs=[voice_pb(1, sub.msisdn, "33698765432", 60, start)],
                                  options=rpb.RateOptions(use_bundle_counters=True))
    path = "/billing.v1.RatingService/RateCdrs"
    with grpc.insecure_channel(stack.address) as ch:
        raw = ch.stream_stream(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        for metadata in ((), (("authorization", "Bearer rbt_nope_nope"),)):
            err = rpc_error(lambda: list(raw(iter([request.SerializeToString()]), metadata=metadata)), C.UNAUTHENTICATED)
            assert "bearer" in (err.details() or "").lower()
        auth = (("authorization", f"Bearer {stack.token('mno')}"),)
        rpc_error(lambda: list(raw(iter([b"\x0a\xff\xff"]), metadata=auth)), C.INVALID_ARGUMENT)   # a length past the end
        replies = list(raw(iter([request.SerializeToString()]), metadata=auth))
    reply = rpb.RateCdrsResponse.FromString(replies[0])
    assert [(r.status, r.tariff_plan) for r in reply.rated] == [(rpb.RATING_STATUS_RATED, "TP_SMART_M")]
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    nul = voice_pb(2, sub.msisdn, "3369876\x005432", 60, start)
    err = rpc_error(lambda: list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[request.cdrs[0], nul])]))), C.INVALID_ARGUMENT)
    assert "cdrs[1].b_number" in field_violations(err)
    bad = voice_pb(3, sub.msisdn, "33698765432", 2**62, start)
    err = rpc_error(lambda: list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[request.cdrs[0], bad])]))), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"cdrs[1].duration_seconds"}
    beta = stack.client("mvno-beta").stub(rrpc.RatingServiceStub)
    theirs = voice_pb(4, sub.msisdn, "33698765432", 60, start, tenant="mno")
    rpc_error(lambda: list(beta.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[theirs])]))), C.PERMISSION_DENIED)
    before = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=sub.msisdn))
    mine = voice_pb(5, sub.msisdn, "33698765432", 600, start)   # beta's own CDR naming mno's subscriber
    got = list(beta.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[mine], options=rpb.RateOptions(use_bundle_counters=True))])))
    assert [r.tariff_plan for r in got[0].rated] != ["TP_SMART_M"]
    assert svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=sub.msisdn)) == before


def _before_peak(after: datetime) -> datetime:
    """07:59 in Paris (TB_RETAIL's peak starts at 08:00) on a working day after ``after`` that is no French holiday."""
    from zoneinfo import ZoneInfo

    day = after.date() + timedelta(days=1)
    while day.weekday() not in (1, 2, 3) or day.month == 5 or (day.month, day.day) in {(1, 1), (7, 14), (8, 15), (11, 1), (11, 11),
                                                                                      (12, 25)}:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 7, 59, tzinfo=ZoneInfo("Europe/Paris")).astimezone(timezone.utc)


# -- limits ----------------------------------------------------------------------------------------------------------

def test_cdrs_beyond_the_limits_are_invalid_arguments_naming_the_field(stack, active) -> None:  # type: ignore[no-untyped-def]
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    start = MID_MONTH + timedelta(minutes=2)
    huge = voice_pb(1, "33612000001", "33612345678", 2**62, start)
    err = rpc_error(lambda: svc.RateCdr(rpb.RateCdrRequest(cdr=huge)), C.INVALID_ARGUMENT)
    assert "cdr.duration_seconds" in field_violations(err)
    far = voice_pb(2, "33612000001", "33612345678", 60, start)
    far.start_time.seconds = 253402300799   # 9999-12-31
    err = rpc_error(lambda: svc.RateCdr(rpb.RateCdrRequest(cdr=far)), C.INVALID_ARGUMENT)
    assert "cdr.start_time" in field_violations(err)
    long_number = voice_pb(3, "33612000001", "3" * 100_000, 60, start)
    err = rpc_error(lambda: svc.RateCdr(rpb.RateCdrRequest(cdr=long_number)), C.INVALID_ARGUMENT)
    assert "cdr.b_number" in field_violations(err)
    data = mpb.NormalisedCdr(source="it", origin_id="d", service=mpb.CDR_SERVICE_KIND_DATA, start_time=stamp(start),
                             a_number="33612000001", volume_down_bytes=2**62)
    chunk = [voice_pb(10 + i, "33612000001", "33612345678", 60, start) for i in range(3)] + [data]
    err = rpc_error(lambda: list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=chunk)]))), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"cdrs[3].volume_down_bytes"}
    plans = stack.client("mno").stub(prpc.PlanServiceStub)
    err = rpc_error(lambda: plans.WhatIf(ppb.WhatIfRequest(candidate_version=active.version, cdrs=[huge])), C.INVALID_ARGUMENT)
    assert "cdrs[0].duration_seconds" in field_violations(err)
    # a negative value is an impossible CDR, not a limit: rated "rejected", the rest of its chunk rated
    negative = voice_pb(20, "33612000001", "33612345678", -5, start)
    rated = list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=[negative, chunk[0]],
                                                        options=rpb.RateOptions(tariff_plan="TP_SMART_S"))])))[0].rated
    assert [r.status for r in rated] == [rpb.RATING_STATUS_REJECTED, rpb.RATING_STATUS_RATED]


# -- replicas and crashes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def roots(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Root, Root]]:
    """Two roots over the database of this module (two replicas), the sample plans active."""
    home = tmp_path_factory.mktemp("replicas")
    settings = Settings(home=home, database_url=db_url)
    first = build_root(settings, FixedClock(MID_MONTH))
    bootstrap(settings, first, load_plans=True)
    second = build_root(settings, FixedClock(MID_MONTH))
    yield first, second
    first.close()
    second.close()


_NUMBERS = itertools.count(random.randrange(10**5))


def _subscriber(root: Root, plan: str = "TP_SMART_S", limit: int | None = None) -> Any:
    from engine.subscribers import NewSubscriber, PaymentType

    operator = replace(SYSTEM, tenant_id="mno", subject="it")
    msisdn = "336129" + f"{next(_NUMBERS) % 10**5:05d}"   # distinct within a run (random ones collided now and then)
    sub = root.subscribers.provision(operator, NewSubscriber("mno", msisdn, "20801" + f"{random.randrange(10**10):010d}",
                                                             "ACC-R", PaymentType.POSTPAID, plan))
    sub = root.subscribers.transition(operator, sub.subscriber_id, "activate")
    if limit is not None:
        sub = root.subscribers.set_credit_limit(operator, sub.subscriber_id, limit, "EUR")
    return sub


def test_two_replicas_never_spend_one_bundle_twice(roots) -> None:  # type: ignore[no-untyped-def]
    operator = replace(SYSTEM, tenant_id="mno", subject="it")

    def each_chunk(root: Root, chunks: list[list[MediatedCdr]]) -> None:
        for cdrs in chunks:
            root.rating.rate_many(operator, cdrs, use_counters=True)

    st = replicas_spend_one_bundle(roots, each_chunk)
    covered_calls = sum(1 for row in st["ledger"] if row[5] != "[]")
    assert 72 <= covered_calls <= 73
    a, b = roots
    races = a.rating.races + b.rating.races
    print(f"chunks rated again after losing a race: {races}")


def replicas_spend_one_bundle(roots: tuple[Root, Root], rate: Callable[[Root, list[list[MediatedCdr]]], None]) -> dict[str, Any]:
    """Two replicas at once, each rating (``rate(root, chunks)``) 10 chunks of 40 calls of one subscriber whose bundle
    covers 72 of the 800: every unit spent once, none twice, none lost (the state left, checked)."""
    a, b = roots
    sub = _subscriber(a)
    start = MID_MONTH + timedelta(minutes=5)
    errors: list[BaseException] = []

    def replica(root: Root, tag: int) -> None:
        try:
            rate(root, [[voice(tag * 10_000 + chunk * 100 + i, sub.msisdn, "33698765432", 100, start + timedelta(seconds=chunk * 60 + i))
                         for i in range(40)] for chunk in range(10)])
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(root, n)) for n, root in ((1, a), (2, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return spent_once(a, sub.msisdn, 800)


CHILD = r"""
import sys, json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.root import build_root
from tests.integration.test_rating_stored import crash_stream

url, home, msisdns, start = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), datetime.fromisoformat(sys.argv[4])
root = build_root(Settings(home=Path(home), database_url=url))
desk = root.rating
operator = replace(SYSTEM, tenant_id="mno", subject="it")
for n, chunk in enumerate(crash_stream(msisdns, start)):
    desk.rate_many(operator, chunk, use_counters=True)
    print("commit", n, flush=True)
print("done", flush=True)
"""


def crash_stream(msisdns: list[str], start: datetime) -> Iterator[list[MediatedCdr]]:
    """The same stream every time: 12 chunks of national (bundle) and international (charged, credit alerts) calls."""
    rng = random.Random(7)
    for chunk in range(12):
        out = []
        for i in range(60):
            a = msisdns[(chunk * 60 + i) % len(msisdns)]
            b = "33698765432" if rng.random() < 0.6 else "442071234567"
            out.append(voice(chunk * 1000 + i, a, b, rng.randint(1, 900), start + timedelta(seconds=chunk * 60 + i), source="crash"))
        yield out


def killed_mid_stream(child_code: str, db_url: str, tmp_path: Path, msisdns: list[str], start: datetime, chunks: int) -> int:
    """Twice: a child process rates the stream (``child_code``, printing ``commit N`` after each stored chunk) and is
    killed by SIGKILL after a random committed chunk; the number of kills."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    for _ in range(2):
        child = subprocess.Popen([sys.executable, "-c", child_code, db_url, str(tmp_path), json.dumps(msisdns), start.isoformat()],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
        assert child.stdout is not None
        target = rng.randint(1, chunks)
        for line in child.stdout:
            if line.startswith("commit") and int(line.split()[1]) + 1 >= target:
                os.kill(child.pid, signal.SIGKILL)   # between chunks, or inside the next chunk's transaction
                kills += 1
                break
            if line.startswith("done"):
                break
        child.wait(timeout=120)
        child.stdout.close()
    return kills


def _wipe_rating(root: Root, msisdns: set[str]) -> None:
    with root.db.begin() as conn:
        for table in (usage_ledger, bundle_counters, usage_balances, credit_alert_log):
            conn.execute(table.delete().where(table.c.msisdn.in_(msisdns)))
    operator = replace(SYSTEM, tenant_id="mno", subject="it")
    with root.uow() as uow:
        subs = [uow.subscribers.get_live_by_msisdn(m) for m in msisdns]
    for s in subs:
        if s is not None and s.barring_flags:
            for flag in s.barring_flags:
                root.subscribers.set_barring(operator, s.subscriber_id, flag, False, "test reset")


def test_sigkill_mid_stream_then_the_whole_stream_again_equals_one_clean_run(roots, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    subs = [_subscriber(root, limit=30 * EUR) for _ in range(3)] + [_subscriber(root) for _ in range(2)]
    msisdns = [s.msisdn for s in subs]
    start = MID_MONTH + timedelta(minutes=5)
    operator = replace(SYSTEM, tenant_id="mno", subject="it")
    
    desk = root.rating
    for chunk in crash_stream(msisdns, start):
        desk.rate_many(operator, chunk, use_counters=True)
    clean = state(root, set(msisdns))
    assert clean["alerts"], "the stream should cross credit alert thresholds"
    _wipe_rating(root, set(msisdns))

    assert killed_mid_stream(CHILD, db_url, tmp_path, msisdns, start, 10) >= 1
    for chunk in crash_stream(msisdns, start):   # the sender's retry: the whole stream again
        desk.rate_many(operator, chunk, use_counters=True)
    assert state(root, set(msisdns)) == clean
