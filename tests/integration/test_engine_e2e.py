"""Issue 4 end to end over gRPC and the CLI: bootstrap loads the sample plans, staff barring flags and credit
limits, AuthorizeCall against rules/barring, credit alerts fired while rating, and tenant isolation of every new RPC."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from billing.v1 import subscriber_pb2 as spb
from clients import cli
from engine.clock import FixedClock
from engine.settings import Settings
from servers.bootstrap import bootstrap
from store.migrate import upgrade
from tests.integration.conftest import MID_MONTH
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
C = grpc.StatusCode
EUR = 1_000_000


@pytest.fixture(scope="module")
def server_clock() -> FixedClock:
    """The server on a fixed clock in the middle of a month: every CDR here falls in one credit period, on any day."""
    return FixedClock(MID_MONTH)


def stamp(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def voice(n: int, a: str, b: str, seconds: int) -> mpb.NormalisedCdr:
    # after the bootstrap's activation (a CDR before it has no plan set in force), on the server's clock
    start = MID_MONTH + timedelta(minutes=2)
    return mpb.NormalisedCdr(source="e2e", origin_id=f"{a}-{n}", service=mpb.CDR_SERVICE_KIND_VOICE,
                             direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=stamp(start), a_number=a, b_number=b,
                             duration_seconds=seconds)


def rating(stack, tenant: str = "mno", role: str = ""):  # type: ignore[no-untyped-def]
    return stack.client(tenant, role).stub(rrpc.RatingServiceStub)


@pytest.fixture(scope="module")
def booted(stack):  # type: ignore[no-untyped-def]
    """`rulebill bootstrap` with plans: the sample plan set uploaded and active; a second run changes nothing."""
    first = bootstrap(stack.root.settings, stack.root, load_plans=True)
    again = bootstrap(stack.root.settings, stack.root, load_plans=True)
    return first, again


def provision(stack, tenant: str, plan: str, msisdn: str = "") -> spb.Subscriber:  # type: ignore[no-untyped-def]
    subs = stack.client(tenant).subscribers.rpc
    sub = subs.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
        msisdn=msisdn or stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="ACC-E2E",
        payment_type=spb.PAYMENT_TYPE_POSTPAID, tariff_plan=plan)).subscriber
    return subs.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=sub.subscriber_id)).subscriber


def authorize(stack, tenant: str, msisdn: str, to: str, **kw):  # type: ignore[no-untyped-def]
    return rating(stack, tenant).AuthorizeCall(rpb.AuthorizeCallRequest(msisdn=msisdn, destination=to, **kw))


# -- 1. bootstrap -------------------------------------------------------------------------------------------

def test_bootstrap_uploads_and_activates_the_sample_plans_once(stack, booted) -> None:  # type: ignore[no-untyped-def]
    first, again = booted
    assert first["plan_set_activated"] is True and first["plan_set_version"] >= 1
    assert again["plan_set_activated"] is False and again["plan_set_version"] == first["plan_set_version"]
    versions = stack.client("mno").stub(prpc.PlanServiceStub).ListPlanSetVersions(ppb.ListPlanSetVersionsRequest()).versions
    assert [v.version for v in versions] == [first["plan_set_version"]]
    assert {"TP_SMART_S", "TP_ALPHA_SIMPLE", "TP_WS_ALPHA"} <= set(versions[0].tariff_plans)
    assert versions[0].HasField("activate_time")


def test_after_bootstrap_a_provisioned_subscribers_cdr_is_rated(stack, booted) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mno", "TP_SMART_S")
    rated = rating(stack).RateCdr(rpb.RateCdrRequest(cdr=voice(1, sub.msisdn, "33198765432", 120))).rated
    assert rated.status == rpb.RATING_STATUS_RATED, rated.reason
    assert (rated.tariff_plan, rated.plan_set_version) == ("TP_SMART_S", booted[0]["plan_set_version"])
    assert rated.destination == "DST_NATIONAL_FIXED" and rated.explanation


def test_bootstrap_of_its_own_root_loads_plans_and_is_idempotent(tmp_path: Path) -> None:
    """The `rulebill bootstrap` / `make run` path: bootstrap builds its own root and loads plans/ by default."""
    url = f"sqlite:///{tmp_path / 'boot.db'}"
    upgrade(url)
    settings = Settings(home=tmp_path, database_url=url)
    first = bootstrap(settings)
    second = bootstrap(settings)
    assert first["plan_set_activated"] is True and first["plan_set_version"] == 1
    assert second["plan_set_activated"] is False and second["plan_set_version"] == 1


# -- 3. staff barring flags and credit limits ----------------------------------------------------------------

def test_set_and_clear_barring_flags_and_credit_limit(stack, booted) -> None:  # type: ignore[no-untyped-def]
    subs = stack.client("mvno-alpha").subscribers.rpc
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")
    before = audit_count(stack)
    got = subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_premium",
                                                                    barred=True, reason="customer request")).subscriber
    assert list(got.barring_flags) == ["bar_premium"]
    got = subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_international",
                                                                    barred=True)).subscriber
    assert list(got.barring_flags) == ["bar_international", "bar_premium"]
    got = subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_premium",
                                                                    barred=False)).subscriber
    assert list(got.barring_flags) == ["bar_international"]
    got = subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=50 * EUR, currency="EUR"))).subscriber
    assert (got.credit_limit.amount_micros, got.credit_limit.currency) == (50 * EUR, "EUR")
    shown = subs.GetSubscriber(spb.GetSubscriberRequest(subscriber_id=sub.subscriber_id)).subscriber
    assert list(shown.barring_flags) == ["bar_international"] and shown.credit_limit.amount_micros == 50 * EUR
    got = subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(subscriber_id=sub.subscriber_id, clear=True)).subscriber
    assert not got.HasField("credit_limit")
    assert audit_count(stack) == before + 5

    # bad input: every field named, nothing written
    err = rpc_error(lambda: subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id,
                                                                                      flag="bar_everything", barred=True)), C.INVALID_ARGUMENT)
    assert "flag" in field_violations(err)
    err = rpc_error(lambda: subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id,
                                                                                      flag="Not A Flag", barred=True)), C.INVALID_ARGUMENT)
    assert "flag" in field_violations(err)
    err = rpc_error(lambda: subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=-1, currency="EURO"))), C.INVALID_ARGUMENT)
    assert {"credit_limit.amount_micros", "credit_limit.currency"} <= set(field_violations(err))
    err = rpc_error(lambda: subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(subscriber_id=sub.subscriber_id)),
                    C.INVALID_ARGUMENT)
    assert "credit_limit" in field_violations(err)
    rpc_error(lambda: subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id="sub_nope", flag="bar_premium",
                                                                                barred=True)), C.NOT_FOUND)
    assert audit_count(stack) == before + 5

    subs.DeactivateSubscriber(spb.DeactivateSubscriberRequest(subscriber_id=sub.subscriber_id))
    err = rpc_error(lambda: subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id,
                                                                                      flag="bar_roaming", barred=True)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SUBSCRIBER_STATE"
    err = rpc_error(lambda: subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=EUR, currency="EUR"))), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SUBSCRIBER_STATE"


def test_a_credit_limit_is_in_whole_minor_units_of_the_currency_the_subscriber_is_charged_in(stack, booted) -> None:  # type: ignore[no-untyped-def]
    """A limit in another currency than the plan's, or finer than its minor unit, would never be compared with the charges
    (alerts and barring compare currencies by equality, amounts in minor units): both are refused on their field."""
    subs = stack.client("mvno-alpha").subscribers.rpc
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")            # an EUR plan
    before = audit_count(stack)

    def limit(micros: int, currency: str):  # type: ignore[no-untyped-def]
        return subs.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
            subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=micros, currency=currency)))

    err = rpc_error(lambda: limit(50 * EUR, "USD"), C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["credit_limit.currency"] and "EUR" in field_violations(err)["credit_limit.currency"]
    err = rpc_error(lambda: limit(1, "EUR"), C.INVALID_ARGUMENT)          # 0.000001 EUR: below the cent
    assert list(field_violations(err)) == ["credit_limit.amount_micros"]
    err = rpc_error(lambda: limit(1, "JPY"), C.INVALID_ARGUMENT)          # 1 micro-yen, and not the plan's currency
    assert set(field_violations(err)) == {"credit_limit.amount_micros", "credit_limit.currency"}
    assert audit_count(stack) == before
    got = limit(50 * EUR + 10_000, "EUR").subscriber                      # 50.01 EUR
    assert (got.credit_limit.amount_micros, got.credit_limit.currency) == (50 * EUR + 10_000, "EUR")


# -- 2. AuthorizeCall ---------------------------------------------------------------------------------------

def test_authorize_call_applies_plan_emergency_staff_and_roaming_rules(stack, booted) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mno", "TP_SMART_S")
    ok = authorize(stack, "mno", sub.msisdn, "33198765432")
    assert (ok.allowed, ok.action, ok.rule_id, ok.destination_group) == (True, "allow", "", "DST_NATIONAL_FIXED")
    assert (ok.tenant_id, ok.tariff_plan) == ("mno", "TP_SMART_S") and not ok.HasField("credit_limit")
    premium = authorize(stack, "mno", sub.msisdn, "33891234567")
    assert (premium.allowed, premium.rule_id, premium.destination_group) == (False, "BAR_SMART_S_PREMIUM", "DST_PREMIUM")
    assert premium.reason == "Smart S does not include premium-rate numbers"
    emergency = authorize(stack, "mno", sub.msisdn, "112")
    assert (emergency.allowed, emergency.rule_id) == (True, "ALLOW_EMERGENCY")

    subs = stack.client("mno").subscribers.rpc
    subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_international", barred=True))
    intl = authorize(stack, "mno", sub.msisdn, "4930123456")
    assert (intl.allowed, intl.rule_id, list(intl.barring_flags)) == (False, "BAR_STAFF_INTERNATIONAL", ["bar_international"])
    subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_international", barred=False))
    assert authorize(stack, "mno", sub.msisdn, "4930123456").allowed

    subs.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_roaming", barred=True))
    roam = authorize(stack, "mno", sub.msisdn, "33198765432", visited_network="DEUD2")
    assert (roam.allowed, roam.rule_id) == (False, "BAR_STAFF_ROAMING")
    assert authorize(stack, "mno", sub.msisdn, "33198765432").allowed  # at home the roaming bar does not apply

    subs.SuspendSubscriber(spb.SuspendSubscriberRequest(subscriber_id=sub.subscriber_id, reason="unpaid"))
    suspended = authorize(stack, "mno", sub.msisdn, "33198765432")
    assert (suspended.allowed, suspended.action, suspended.rule_id) == (False, "bar", "")
    assert "suspended" in suspended.reason
    assert authorize(stack, "mno", sub.msisdn, "112").allowed

    rpc_error(lambda: authorize(stack, "mno", "33999999999", "112"), C.NOT_FOUND)
    err = rpc_error(lambda: rating(stack).AuthorizeCall(rpb.AuthorizeCallRequest(msisdn=sub.msisdn, service=99)), C.INVALID_ARGUMENT)
    assert "service" in field_violations(err)


def test_authorize_call_for_an_mvno_plan(stack, booted) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")
    intl = authorize(stack, "mvno-alpha", sub.msisdn, "14155550100")
    assert (intl.allowed, intl.rule_id, intl.destination_group) == (False, "BAR_ALPHA_SIMPLE_INTERNATIONAL", "DST_NORTH_AMERICA")
    roam = authorize(stack, "mvno-alpha", sub.msisdn, "33612345678", roaming=True)
    assert (roam.allowed, roam.rule_id) == (False, "BAR_ALPHA_SIMPLE_ROAMING")
    assert authorize(stack, "mvno-alpha", sub.msisdn, "33612345678").allowed


# -- 4. credit alerts while rating ---------------------------------------------------------------------------

def test_credit_alerts_fire_once_each_and_bar_at_100_percent(stack, booted) -> None:  # type: ignore[no-untyped-def]
    alpha = stack.client("mvno-alpha")
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")
    alpha.subscribers.rpc.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=10 * EUR, currency="EUR")))
    svc = alpha.stub(rrpc.RatingServiceStub)
    counters = rpb.RateOptions(use_bundle_counters=True)
    national = "33198765432"   # DST_NATIONAL_FIXED on Alpha Simple: 0.06 EUR/min, 60/1 -> 0.001 EUR per second

    def rate(n: int, seconds: int) -> int:
        rated = svc.RateCdr(rpb.RateCdrRequest(cdr=voice(n, sub.msisdn, national, seconds), options=counters)).rated
        assert rated.status == rpb.RATING_STATUS_RATED, rated.reason
        assert rated.charge.amount_micros == seconds * 1000
        return rated.charge.amount_micros

    def alerts() -> list[tuple[str, int, str]]:
        found = svc.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=sub.msisdn)).alerts
        return [(a.threshold_id, a.kind, a.barring_flag) for a in found]

    rate(1, 4000)                      # 4.00 of 10.00: below every threshold
    assert alerts() == []
    rate(2, 2000)                      # 6.00: crosses 50 %
    assert alerts() == [("WS_ALPHA_50", rpb.CREDIT_ALERT_KIND_MESSAGE, "")]
    rate(2, 2000)                      # the same CDR again: a re-rate replaces, nothing crosses again
    rate(3, 1000)                      # 7.00: still below 80 %
    assert len(alerts()) == 1
    assert authorize(stack, "mvno-alpha", sub.msisdn, national).allowed
    rate(4, 1500)                      # 8.50: crosses 80 % (an e-mail and an MVNO notification)
    assert [a[0] for a in alerts()] == ["WS_ALPHA_50", "WS_ALPHA_80", "WS_ALPHA_80"]
    rate(5, 2000)                      # 10.50: crosses 100 % (notify the MVNO and bar all outgoing)
    logged = svc.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=sub.msisdn)).alerts
    assert [(a.threshold_id, a.kind) for a in logged[3:]] == [
        ("WS_ALPHA_100", rpb.CREDIT_ALERT_KIND_NOTIFY_MVNO), ("WS_ALPHA_100", rpb.CREDIT_ALERT_KIND_BAR_SERVICE)]
    assert logged[3].channel == "webhook" and "credit_exhausted" in logged[3].text and "used=10.50" in logged[3].text
    assert logged[4].barring_flag == "bar_all_outgoing" and logged[4].service == "all"
    assert logged[1].recipient == "billing@alpha-mobile.example" and "80% of a subscriber's credit limit" in logged[1].text
    assert (logged[0].credit_limit.amount_micros, logged[0].credit_used.amount_micros) == (10 * EUR, 6 * EUR)
    assert len({a.sequence for a in logged}) == 5
    rate(6, 500)                       # further usage fires nothing again in this period
    assert len(alerts()) == 5

    refused = authorize(stack, "mvno-alpha", sub.msisdn, national)
    assert (refused.allowed, refused.rule_id) == (False, "BAR_STAFF_ALL_OUTGOING")
    assert refused.reason == "All outgoing traffic barred by customer care"
    assert (refused.credit_used.amount_micros, refused.credit_limit.amount_micros) == (11 * EUR, 10 * EUR)
    assert authorize(stack, "mvno-alpha", sub.msisdn, "112").allowed   # emergency above every bar
    shown = alpha.subscribers.rpc.GetSubscriber(spb.GetSubscriberRequest(subscriber_id=sub.subscriber_id)).subscriber
    assert list(shown.barring_flags) == ["bar_all_outgoing"]

    # customer care lifts the flag: the credit rule still bars (credit exhausted), freephone stays reachable
    alpha.subscribers.rpc.SetSubscriberBarring(spb.SetSubscriberBarringRequest(subscriber_id=sub.subscriber_id, flag="bar_all_outgoing",
                                                                           barred=False))
    exhausted = authorize(stack, "mvno-alpha", sub.msisdn, national)
    assert (exhausted.allowed, exhausted.rule_id) == (False, "BAR_CREDIT_EXHAUSTED")
    assert exhausted.reason == "Credit limit reached; pay the open invoice or ask for a higher limit"
    freephone = authorize(stack, "mvno-alpha", sub.msisdn, "33800123456")
    assert (freephone.allowed, freephone.rule_id) == (True, "ALLOW_FREEPHONE_WHEN_EXHAUSTED")
    alpha.subscribers.rpc.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=20 * EUR, currency="EUR")))
    assert authorize(stack, "mvno-alpha", sub.msisdn, national).allowed

    # the operator sees the log of its MVNOs; a stream over RateCdrs fires alerts as well
    mno_view = rating(stack).ListCreditAlerts(rpb.ListCreditAlertsRequest(tenant_id="mvno-alpha", msisdn=sub.msisdn)).alerts
    assert len(mno_view) == 5
    paged = svc.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=sub.msisdn, page_size=2))
    assert len(paged.alerts) == 2 and paged.next_page_token
    rest = svc.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=sub.msisdn, page_size=10, page_token=paged.next_page_token))
    assert [a.sequence for a in rest.alerts] == [a.sequence for a in logged[2:]]


def test_rate_stream_with_counters_fires_alerts(stack, booted) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mno", "TP_SMART_S")
    stack.client("mno").subscribers.rpc.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
        subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=1 * EUR, currency="EUR")))
    svc = rating(stack)
    intl = [voice(100 + i, sub.msisdn, "4930123456", 600) for i in range(5)]   # calls to Germany (not in the Smart S bundle)
    out = list(svc.RateCdrs(iter([rpb.RateCdrsRequest(cdrs=intl, options=rpb.RateOptions(use_bundle_counters=True))])))
    assert all(r.status == rpb.RATING_STATUS_RATED and r.charge.amount_micros > 0 for r in out[0].rated)
    fired = svc.ListCreditAlerts(rpb.ListCreditAlertsRequest(tenant_id="mno", msisdn=sub.msisdn)).alerts
    assert {a.threshold_id for a in fired} == {"RETAIL_80", "RETAIL_100"}
    sms = [a for a in fired if a.channel == "sms"]
    assert sms and all(a.recipient == sub.msisdn for a in sms)
    refused = authorize(stack, "mno", sub.msisdn, "33198765432")
    assert (refused.allowed, refused.rule_id) == (False, "BAR_CREDIT_EXHAUSTED")


# -- 6. tenant isolation --------------------------------------------------------------------------------------

def test_every_new_rpc_is_tenant_isolated(stack, booted) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")
    beta = stack.client("mvno-beta")
    beta_csr = stack.client("mvno-beta", "csr")
    before = audit_count(stack)
    for client in (beta, beta_csr):
        rpc_error(lambda: client.subscribers.rpc.SetSubscriberBarring(spb.SetSubscriberBarringRequest(
            subscriber_id=sub.subscriber_id, flag="bar_all_outgoing", barred=True)), C.NOT_FOUND)
        rpc_error(lambda: client.subscribers.rpc.SetSubscriberCreditLimit(spb.SetSubscriberCreditLimitRequest(
            subscriber_id=sub.subscriber_id, credit_limit=common_pb2.Money(amount_micros=0, currency="EUR"))), C.NOT_FOUND)
        stub = client.stub(rrpc.RatingServiceStub)
        rpc_error(lambda: stub.AuthorizeCall(rpb.AuthorizeCallRequest(msisdn=sub.msisdn, destination="112")), C.NOT_FOUND)
        rpc_error(lambda: stub.ListCreditAlerts(rpb.ListCreditAlertsRequest(tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
        assert all(a.tenant_id == "mvno-beta" for a in stub.ListCreditAlerts(rpb.ListCreditAlertsRequest()).alerts)
        assert list(stub.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=sub.msisdn)).alerts) == []
    assert audit_count(stack) == before
    shown = stack.client("mvno-alpha").subscribers.rpc.GetSubscriber(spb.GetSubscriberRequest(subscriber_id=sub.subscriber_id)).subscriber
    assert list(shown.barring_flags) == [] and not shown.HasField("credit_limit")
    # a product manager may read and rate but not change subscribers
    pm = stack.client("mvno-alpha", "product_manager")
    rpc_error(lambda: pm.subscribers.rpc.SetSubscriberBarring(spb.SetSubscriberBarringRequest(
        subscriber_id=sub.subscriber_id, flag="bar_premium", barred=True)), C.PERMISSION_DENIED)


# -- CLI ------------------------------------------------------------------------------------------------------

def test_cli_bar_unbar_credit_limit_and_authorize(stack, booted, capsys) -> None:  # type: ignore[no-untyped-def]
    sub = provision(stack, "mvno-alpha", "TP_ALPHA_SIMPLE")
    flags = ["--server", stack.address, "--token", stack.token("mvno-alpha"), "--json"]
    assert cli.main(["subscribers", "bar", sub.subscriber_id, "--flag", "bar_all_outgoing", "--reason", "fraud", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["barring_flags"] == ["bar_all_outgoing"]
    assert cli.main(["rating", "authorize", "--msisdn", sub.msisdn, "--to", "33198765432", *flags]) == 1
    decision = json.loads(capsys.readouterr().out)
    assert decision["rule_id"] == "BAR_STAFF_ALL_OUTGOING" and not decision.get("allowed", False)
    assert cli.main(["subscribers", "unbar", sub.subscriber_id, "--flag", "bar_all_outgoing", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["barring_flags"] == []
    assert cli.main(["rating", "authorize", "--msisdn", sub.msisdn, "--to", "33198765432", *flags]) == 0
    capsys.readouterr()
    assert cli.main(["subscribers", "credit-limit", sub.subscriber_id, "--amount", "50.00", "--currency", "EUR", *flags]) == 0
    limit = json.loads(capsys.readouterr().out)["credit_limit"]
    assert int(limit["amount_micros"]) == 50 * EUR and limit["currency"] == "EUR"
    assert cli.main(["subscribers", "credit-limit", sub.subscriber_id, "--clear", *flags]) == 0
    assert "credit_limit" not in json.loads(capsys.readouterr().out)
    assert cli.main(["subscribers", "bar", sub.subscriber_id, "--flag", "bar_nothing", *flags]) == 2
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert cli.main(["rating", "alerts", *flags]) == 0
