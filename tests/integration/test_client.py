"""The typed Python client against a real server: each service's client offers its desk's methods over the wire
and returns pages, chunks and typed messages (the CLI is built on it)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2, rating_pb2, subscriber_pb2, tenant_pb2, voucher_pb2
from clients.services.base import Page
from clients.services.vouchers import selection
from engine.clock import FixedClock
from engine.plans.loader import plan_files
from tests.integration.conftest import MID_MONTH
from tests.integration.helpers import field_violations, rpc_error

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "unit" / "mediation" / "fixtures"
EUR = 1_000_000


@pytest.fixture(scope="module")
def server_clock() -> FixedClock:
    """The server on a fixed clock in the middle of a month: the CDRs' cycle is the server's cycle now, on any day."""
    return FixedClock(MID_MONTH)


@pytest.fixture(scope="module")
def plans(stack: Any) -> plan_pb2.PlanSetVersion:
    """The sample plan set, uploaded and activated through the typed client."""
    rb = stack.client("mno")
    version = rb.plans.upload(plan_files(REPO / "plans"))
    return rb.plans.activate(version.version)


def _voice(a: str, b: str, seconds: int, n: int = 0) -> mpb.NormalisedCdr:
    start = Timestamp()
    start.FromDatetime(MID_MONTH + timedelta(minutes=2))   # after the activation, on the server's clock
    return mpb.NormalisedCdr(source="client", origin_id=f"{a}-{n}", service=mpb.CDR_SERVICE_KIND_VOICE, start_time=start,
                             a_number=a, b_number=b, duration_seconds=seconds)


def _subscriber(stack: Any, plan: str = "TP_SMART_S", tenant: str = "mno") -> subscriber_pb2.Subscriber:
    subs = stack.client(tenant).subscribers
    made = subs.provision(stack.unique_msisdn(), stack.unique_imsi(), "ACC-CLIENT", plan, "postpaid")
    return subs.transition(made.subscriber_id, "activate")


def test_tenants_tokens_and_the_audit_log(stack: Any) -> None:
    rb = stack.client("mno")
    page = rb.tenants.list(page_size=1)
    assert isinstance(page, Page) and len(page.items) == 1 and page.next_page_token
    assert {"mvno-alpha", "mvno-beta"} <= {t.tenant_id for t in rb.tenants.list().items}
    made = rb.tenants.create_mvno("mvno-client", "Client MVNO", "EUR")
    assert rb.tenants.get("mvno-client") == made and made.kind == tenant_pb2.TENANT_KIND_MVNO
    assert rb.tenants.suspend("mvno-client", "unpaid").status == tenant_pb2.TENANT_STATUS_SUSPENDED
    assert [t.tenant_id for t in rb.tenants.list(status="suspended").items] == ["mvno-client"]
    assert rb.tenants.reactivate("mvno-client").status == tenant_pb2.TENANT_STATUS_ACTIVE
    issued = rb.tokens.issue("client-csr", "csr", tenant_id="mvno-alpha")
    assert issued.secret and issued.token.tenant_id == "mvno-alpha"
    assert stack.client(token=issued.secret).tokens.whoami().subject == "client-csr"
    assert issued.token.token_id in {t.token_id for t in rb.tokens.list("mvno-alpha").items}
    assert rb.tokens.revoke(issued.token.token_id).HasField("revoke_time")
    assert issued.token.token_id in {t.token_id for t in rb.tokens.list("mvno-alpha", include_revoked=True).items}
    actions = [e.action for e in rb.audit.list(object_type="tenant", object_id="mvno-client").items]
    assert actions == ["tenant.create", "tenant.suspend", "tenant.reactivate"]
    assert rb.audit.list("mvno-alpha", object_type="token").items and not stack.client("mvno-beta").audit.list(
        object_type="tenant", object_id="mvno-client").items


def test_subscribers(stack: Any, plans: plan_pb2.PlanSetVersion) -> None:
    sub = _subscriber(stack)
    subs = stack.client("mno").subscribers
    assert subs.get(msisdn=sub.msisdn).subscriber_id == sub.subscriber_id
    assert subs.change_plan(sub.subscriber_id, "TP_SMART_M").tariff_plan == "TP_SMART_M"
    assert list(subs.set_barring(sub.subscriber_id, "bar_international", True, "fraud").barring_flags) == ["bar_international"]
    limited = subs.set_credit_limit(sub.subscriber_id, 50 * EUR, "EUR")
    assert (limited.credit_limit.amount_micros, limited.credit_limit.currency) == (50 * EUR, "EUR")
    assert not subs.set_credit_limit(sub.subscriber_id, None).HasField("credit_limit")
    assert subs.transition(sub.subscriber_id, "suspend", "lost phone").status == subscriber_pb2.SUBSCRIBER_STATUS_SUSPENDED
    assert sub.subscriber_id in {s.subscriber_id for s in subs.list(status="suspended", tariff_plan="TP_SMART_M").items}
    with pytest.raises(ValueError):
        subs.transition(sub.subscriber_id, "archive")


def test_plans_and_rating(stack: Any, plans: plan_pb2.PlanSetVersion) -> None:
    rb = stack.client("mno")
    checked = rb.plans.validate({"destinations/DST_X.yaml": "kind: destination_group\nid: DST_X\n"})
    assert not checked.valid and [p.code for p in checked.problems] == ["destinations.empty"]
    assert [v.version for v in rb.plans.list_versions().items] == [plans.version]
    active = rb.plans.get(include_ir=True)
    assert active.version.version == plans.version and '"tariff_plans"' in active.ir_json
    assert rb.plans.diff(plans.version, plans.version) == []
    sub = _subscriber(stack)
    rated = rb.rating.rate(_voice(sub.msisdn, "33198765432", 120))
    assert rated.status == rating_pb2.RATING_STATUS_RATED and rated.tariff_plan == "TP_SMART_S"
    many = list(rb.rating.rate_many((_voice(sub.msisdn, "33198765432", s, n) for n, s in enumerate((30, 60, 90))), chunk=2,
                                    use_bundle_counters=True))
    assert [r.cdr_id for r in many] == [r.cdr_id for r in rb.rating.rate_many([_voice(sub.msisdn, "33198765432", s, n)
                                                                                 for n, s in enumerate((30, 60, 90))])]
    assert len(many) == 3 and all(r.status == rating_pb2.RATING_STATUS_RATED for r in many)
    cycle = MID_MONTH.strftime("%Y-%m")
    counters = {c.bundle_id: c for c in rb.rating.counters(sub.msisdn, cycle).counters}
    voice = counters["BN_S_VOICE_120MIN"]
    assert voice.remaining == voice.allowance - sum(u.units for r in many for u in r.bundles)
    allowed = rb.rating.authorise(sub.msisdn, "33198765432")
    assert allowed.allowed and allowed.tariff_plan == "TP_SMART_S"
    assert isinstance(rb.rating.credit_alert_log(msisdn=sub.msisdn), Page)
    report = rb.plans.what_if(plans.version, [_voice(sub.msisdn, "33198765432", 60)], assignments={sub.msisdn: "TP_SMART_S"})
    assert report.active_version == report.candidate_version == plans.version
    assert [(x.tariff_plan, x.difference.amount_micros) for x in report.lines] == [("TP_SMART_S", 0)]
    err = rpc_error(lambda: rb.plans.what_if(plans.version, period=(MID_MONTH, MID_MONTH)), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(err) == {"period_end": "must be after period_start"}


def test_mediation(stack: Any) -> None:
    rb = stack.client("mno")
    assert "asterisk" in {layout.name for layout in rb.mediation.layouts()}
    sent: list[int] = []
    done = rb.mediation.mediate(io.BytesIO((FIXTURES / "msc_sample.csv").read_bytes()), "msc_generic", "msc.csv",
                                return_cdrs=True, progress=sent.append)
    assert (done.summary.records_in, done.summary.normalised, len(done.cdrs)) == (11, 6, 6) and sent
    assert rb.mediation.summary(done.summary.file_id) == done.summary
    first = rb.mediation.rejects(done.summary.file_id, page_size=1)
    rest = rb.mediation.rejects(done.summary.file_id, page_token=first.next_page_token)
    assert [r.code for r in first.items + rest.items] == ["partial.incomplete", "value.unmapped"]


def test_vouchers(stack: Any, plans: plan_pb2.PlanSetVersion) -> None:
    rb = stack.client("mno")
    seen: list[tuple[int, int]] = []
    batch = rb.vouchers.generate_batch("vp-mno-eur-10", 5, progress=lambda done, total: seen.append((done, total)))
    assert batch.count == 5 and seen and seen[-1] == (5, 5)
    assert rb.vouchers.get_batch(batch.batch_id) == batch
    assert batch.batch_id in {b.batch_id for b in rb.vouchers.list_batches().items}
    active = rb.vouchers.change_batch(batch.batch_id, "activate")
    assert active.state == voucher_pb2.BATCH_STATE_ACTIVE
    revealer = stack.client(token=stack.token("mno", privileges=("voucher.reveal_pin",)))
    shown = [v for chunk in revealer.vouchers.stream_vouchers(selection(batch.batch_id), reveal=True, chunk_size=2) for v in chunk]
    assert len(shown) == 5 and all(v.pin for v in shown)
    assert rb.vouchers.get_voucher(batch.first_serial).serial_text == shown[0].serial_text
    msisdn = _subscriber(stack).msisdn
    redeemed = rb.vouchers.redeem(msisdn, shown[0].pin, f"rq-{msisdn}")
    assert redeemed.credited.amount_micros == 10 * EUR
    blocked = rb.vouchers.change_vouchers(selection(first_serial=batch.first_serial + 1), "block", "lost box")
    assert blocked.changed_count == 1
    later = MID_MONTH + timedelta(days=400)
    assert rb.vouchers.amend(batch.first_serial + 2, expire_time=later, dealer="shop-1").dealer == "shop-1"
    assert rb.vouchers.expire_due().changed_count == 0   # nothing is due: a count of 0 (issue #13 item 18)
    assert rb.vouchers.rotate_keys().master_key_version >= 1
    rb.vouchers.clear_recharge_bar(msisdn, "no bar: a no-op")
