"""Add-on bundles bought mid-cycle, over a real port on SQLite and PostgreSQL (BillingService.BuyAddOn), and the
charge rules on bundle_bought, plan_changed and subscriber_deactivated.

A Smart S subscriber (2 GB of data a month) buys the 5 GB add-on (30 days) on 10 February: rating takes the plan's
bundle first, then the add-on, then charges; a CDR from before the purchase never uses the add-on; rating a CDR
again gives its add-on units back to the purchase; the February bill charges the add-on's 10.00 once (never
prorated, standard VAT) and shows its use; the purchase is idempotent per request id, refused with field details for
bad arguments, invisible to another tenant.  Two replicas rating one add-on never spend its units twice."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from datetime import datetime, timezone
from typing import Iterator

import grpc
import pytest

from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.root import build_root
from tests.integration.billing_support import BillingStack, account_pb, serve_billing_stack
from tests.integration.helpers import field_violations, precondition_reason, rpc_error
from tests.integration.test_plans_rating import REPO

pytestmark = pytest.mark.integration
UTC = timezone.utc
INC = 102_400
MNO = replace(SYSTEM, tenant_id="mno", subject="test", is_operator=True)
RULES = """kind: charge_rules
rules:
  - {id: CR_MNO_ADDON_SETUP, tenant: mno, when: bundle_bought, bundles: [BN_ADDON_DATA_5GB], charge: OC_ACTIVATION}
  - {id: CR_MNO_WORLD_SETUP, tenant: mno, when: bundle_bought, bundles: [BN_ADDON_WORLD_DATA_1GB], charge: OC_SIM}
  - {id: CR_MNO_TERMINATION, tenant: mno, when: subscriber_deactivated, plans: [TP_SMART_M], charge: OC_PRESS}
"""


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    rules = tmp_path_factory.mktemp("checkout") / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / "billing" / "addons.yaml").write_text(RULES, encoding="utf-8")
    yield from serve_billing_stack(db_url, tmp_path_factory.mktemp("home"), rules)


def _billed(volume: int) -> int:
    return -(-volume // INC) * INC     # RT_DATA_HOME bills data in 100 KB increments


def _data(msisdn: str, at: datetime, volume: int, origin: str) -> MediatedCdr:
    return MediatedCdr(cdr_identity("it", origin, "mno"), "it", origin, Service.DATA, Direction.ORIGINATING, at, msisdn, "internet",
                       volume_down_bytes=volume, tenant="mno")


def _rate(s: BillingStack, cdrs: list[MediatedCdr]) -> list[dict[str, int]]:
    return [{u.bundle_id: u.units for u in o.rated.bundle_usage} for o in s.root.rating.rate_many(MNO, cdrs, use_counters=True)]


def _counter(s: BillingStack, msisdn: str, cycle: str, bundle: str) -> tuple[int, int]:
    counters, _, _ = s.root.rating.counters(MNO, "mno", msisdn, cycle)
    allowance, remaining, _unit = counters[bundle]
    return allowance, remaining


def test_an_add_on_bought_mid_cycle_is_used_after_the_plan_bundle_then_billed_once(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-ADDON", name="Data Hungry"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 0, 30, tzinfo=UTC))
    mno.assign("MNO-ADDON", sub)
    assert _rate(s, [_data(msisdn, datetime(2026, 2, 3, 9, 0, tzinfo=UTC), 1, "warm-up")])[0] == {"BN_S_DATA_2GB": INC}
    _, left = _counter(s, msisdn, "2026-02", "BN_S_DATA_2GB")
    _rate(s, [_data(msisdn, datetime(2026, 2, 3, 10, 0, tzinfo=UTC), (left // INC - 5) * INC, "first")])   # most of the plan's bundle
    _, left = _counter(s, msisdn, "2026-02", "BN_S_DATA_2GB")
    assert 5 * INC <= left < 6 * INC

    s.at(datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
    reply = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "shop-1")
    p = reply.purchase
    assert reply.bought and p.counter_cycle == "+000001" and p.fee.amount_micros == 10_000_000 and p.charge_id
    assert p.valid_from.ToDatetime(tzinfo=UTC) == datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    assert p.valid_until.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 11, 23, 0, tzinfo=UTC)   # 12 March 00:00 in Paris: 30 days
    addon = p.allowance
    # a retry with the same request id buys nothing more and answers with the same purchase
    again = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "shop-1")
    assert not again.bought and again.purchase.purchase_id == p.purchase_id

    # plan bundle first (what is left of it), then the add-on
    both = _rate(s, [_data(msisdn, datetime(2026, 2, 11, 9, 0, tzinfo=UTC), left + 1000, "both")])[0]
    took = _billed(left + 1000) - left
    assert both == {"BN_S_DATA_2GB": left, "BN_ADDON_DATA_5GB": took}
    # a CDR from before the purchase (rated late) never uses the add-on: the plan's bundle is spent, so it is charged
    before = s.root.rating.rate_many(MNO, [_data(msisdn, datetime(2026, 2, 9, 9, 0, tzinfo=UTC), 5_000_000, "before")], use_counters=True)[0]
    assert not before.rated.bundle_usage and before.rated.charge_micros > 0
    # the rest of the add-on, then overage
    late = _data(msisdn, datetime(2026, 2, 20, 9, 0, tzinfo=UTC), addon - took + 2_000_000, "overage")
    out = s.root.rating.rate_many(MNO, [late], use_counters=True)[0].rated
    assert {u.bundle_id: u.units for u in out.bundle_usage} == {"BN_ADDON_DATA_5GB": addon - took} and out.charge_micros > 0
    assert _counter(s, msisdn, "+000001", "BN_ADDON_DATA_5GB") == (addon, 0)
    # rating it again replaces it: its add-on units go back to the purchase first, then are taken again
    again_rated = s.root.rating.rate_many(MNO, [late], use_counters=True)[0].rated
    assert again_rated.charge_micros == out.charge_micros and _counter(s, msisdn, "+000001", "BN_ADDON_DATA_5GB") == (addon, 0)
    # after the add-on's last day, its counter is never touched (the March plan bundle pays)
    s.rate("mno", msisdn, [(datetime(2026, 3, 13, 9, 0, tzinfo=UTC), 10, "0612345678")])

    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-ADDON"]))
    bill = mno.get_invoice(mno.list_invoices(account_id="MNO-ADDON").invoices[0].invoice_id)
    one_off = sorted((ln.item_id, ln.amount.amount_micros) for ln in bill.lines if ln.charge_type == "one_off")
    # the add-on's fee, whole, and the bundle_bought rule's charge (the sample catalogue's activation fee)
    assert one_off == [("BN_ADDON_DATA_5GB", 10_000_000), ("OC_ACTIVATION", 10_000_000)]
    html = mno.download(bill.invoice_id, "html")[0].decode()
    assert "Extra data 5 GB, 30 days (add-on) (2026-02-10 - 2026-03-11)" in html
    assert "BN_ADDON_DATA_5GB (add-on, until 2026-03-11 23:00 UTC)" in html     # bundle use: all of it used
    # the next bill does not charge it again
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-ADDON"]))
    march = [i for i in mno.list_invoices(account_id="MNO-ADDON").invoices if i.invoice_id != bill.invoice_id][0]
    assert not [ln for ln in mno.get_invoice(march.invoice_id).lines if ln.item_id == "BN_ADDON_DATA_5GB"]


def test_bad_purchases_are_refused_with_their_field_and_nothing_is_bought(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-BAD"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    mno.assign("MNO-BAD", sub)
    for bundle, why in (("BN_NOPE", "unknown bundle"), ("BN_ADDON_INTL_60MIN", "monthly bundle"),
                        ("BN_M_DATA_10GB", "monthly bundle"), ("", "required")):
        err = rpc_error(lambda: mno.buy_add_on(sub, bundle, "r-1"), grpc.StatusCode.INVALID_ARGUMENT)
        assert "bundle_id" in field_violations(err), (bundle, why)
    err = rpc_error(lambda: mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", ""), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"request_id"}
    # a one_off bundle that Smart M lists but another plan does not: move it to Business Pro, which lists no add-ons
    biz, _ = s.subscriber("mno", "TP_BUSINESS_PRO", datetime(2026, 5, 2, 9, 0, tzinfo=UTC))
    mno.assign("MNO-BAD", biz)
    err = rpc_error(lambda: mno.buy_add_on(biz, "BN_ADDON_DATA_5GB", "r-2"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "not an add-on of tariff plan TP_BUSINESS_PRO" in field_violations(err)["bundle_id"]
    # a subscriber on no account
    lonely, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 5, 2, 10, 0, tzinfo=UTC))
    err = rpc_error(lambda: mno.buy_add_on(lonely, "BN_ADDON_DATA_5GB", "r-3"), grpc.StatusCode.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SUBSCRIBER_NOT_BILLED"
    # the same request id for another bundle
    mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "r-4")
    rpc_error(lambda: mno.buy_add_on(sub, "BN_ADDON_WORLD_DATA_1GB", "r-4"), grpc.StatusCode.ALREADY_EXISTS)
    # a deactivated subscriber
    s.root.subscribers.transition(MNO, sub, "deactivate")
    err = rpc_error(lambda: mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "r-5"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "deactivated" in field_violations(err)["subscriber_id"]
    # roles: an auditor reads only; another tenant never sees the subscriber
    rpc_error(lambda: s.billing("mno", "auditor").buy_add_on(biz, "BN_ADDON_DATA_5GB", "r-6"), grpc.StatusCode.PERMISSION_DENIED)
    rpc_error(lambda: s.billing("mvno-beta").buy_add_on(biz, "BN_ADDON_DATA_5GB", "r-7"), grpc.StatusCode.NOT_FOUND)
    with s.root.db.connect() as conn:
        from sqlalchemy import func, select

        from store.addons import billing_addon_purchases as t
        bought = conn.execute(select(t.c.request_id).where(t.c.msisdn.in_([msisdn]))).scalars().all()
        assert bought == ["r-4"]
        assert conn.execute(select(func.count()).select_from(t).where(t.c.subscriber_id.in_([biz, lonely]))).scalar_one() == 0


def test_plan_change_and_deactivation_raise_their_rules_charges_once(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-EVENTS"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
    mno.assign("MNO-EVENTS", sub)
    subs = s.client("mno").subscribers
    s.at(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))
    subs.change_plan(sub, "TP_SMART_M")            # the same plan: no change, no fee
    subs.change_plan(sub, "TP_BUSINESS_PRO")       # not a move to Smart S: the sample rule's condition does not hold
    s.at(datetime(2026, 6, 12, 8, 0, tzinfo=UTC))
    subs.change_plan(sub, "TP_SMART_S")            # the sample CR_MNO_DOWNGRADE: 5.00
    s.at(datetime(2026, 6, 14, 8, 0, tzinfo=UTC))
    subs.change_plan(sub, "TP_SMART_M")
    s.at(datetime(2026, 6, 20, 8, 0, tzinfo=UTC))
    subs.transition(sub, "deactivate")             # CR_MNO_TERMINATION: on Smart M at the time
    s.at(datetime(2026, 7, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-EVENTS"]))
    bill = mno.get_invoice(mno.list_invoices(account_id="MNO-EVENTS").invoices[0].invoice_id)
    one_off = sorted((ln.item_id, ln.amount.amount_micros) for ln in bill.lines if ln.charge_type == "one_off")
    assert one_off == [("OC_PLAN_CHANGE", 5_000_000), ("OC_PRESS", 9_990_000)]


def test_two_replicas_rating_one_add_on_never_spend_its_units_twice(stack: BillingStack, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-RACE"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 8, 1, 0, 30, tzinfo=UTC))
    mno.assign("MNO-RACE", sub)
    _rate(s, [_data(msisdn, datetime(2026, 8, 1, 9, 0, tzinfo=UTC), 1, "race-warm")])
    _, remaining = _counter(s, msisdn, "2026-08", "BN_S_DATA_2GB")
    _rate(s, [_data(msisdn, datetime(2026, 8, 1, 10, 0, tzinfo=UTC), remaining, "race-empty")])   # the plan's bundle spent
    s.at(datetime(2026, 8, 2, 9, 0, tzinfo=UTC))
    addon = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "race").purchase.allowance
    # a second server process on the same database: another replica with its own evaluator and counters in memory
    other = build_root(replace(s.root.settings, home=tmp_path_factory.mktemp("replica")), s.clock)
    try:
        size = addon // 10 // INC * INC
        chunks = [[_data(msisdn, datetime(2026, 8, 3, h, m, tzinfo=UTC), size, f"race-{r}-{h}-{m}") for m in range(0, 60, 20)]
                  for r, h in ((0, 9), (1, 10), (0, 11), (1, 12))]
        used: list[int] = []
        errors: list[BaseException] = []

        def work(root: object, mine: list[list[MediatedCdr]]) -> None:
            try:
                for chunk in mine:
                    for o in root.rating.rate_many(MNO, chunk, use_counters=True):  # type: ignore[attr-defined]
                        used.append(sum(u.units for u in o.rated.bundle_usage if u.bundle_id == "BN_ADDON_DATA_5GB"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s.root, chunks[0::2])), threading.Thread(target=work, args=(other, chunks[1::2]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        # 12 CDRs of about a tenth each: the add-on pays 10 of them and part of the 11th, whoever rated them, never more
        assert sum(used) == addon
        assert _counter(s, msisdn, "+000001", "BN_ADDON_DATA_5GB") == (addon, 0)
    finally:
        other.close()


def test_an_add_on_is_bought_from_the_command_line_once_per_request_id(stack: BillingStack, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    s = stack
    s.billing("mno").create_account(account_pb("MNO-CLI"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
    s.billing("mno").assign("MNO-CLI", sub)
    args = ["accounts", "buy-add-on", sub, "BN_ADDON_WORLD_DATA_1GB", "--request-id", "shop-9", "--server", s.address,
            "--token", s.token("mno", "csr")]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "BN_ADDON_WORLD_DATA_1GB" in first.out and "+000001" in first.out and not first.err
    assert main(args) == 0
    again = capsys.readouterr()
    assert "had bought it already" in again.err
    assert main(["accounts", "buy-add-on", sub, "BN_M_DATA_10GB", "--server", s.address, "--token", s.token("mno")]) == 2
    assert "bundle_id" in capsys.readouterr().err
