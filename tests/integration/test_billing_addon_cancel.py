"""A subscriber's add-on purchases listed and cancelled over a real port on SQLite and PostgreSQL (BillingService
ListAddOns, CancelAddOn; ``rulebill accounts add-ons|cancel-add-on``).

A Smart S subscriber buys the 5 GB add-on (``refund: unused``), uses part of it, and cancels it: a CDR that starts
after the cancel instant is not covered by it (charged), one from before it still is; the refund is the fee times the
share of the units left at the cancel, rounded to cents, a negative one-off line on the next bill with the fee's VAT
category, beside the fee.  The world data pass (``refund: prorated``, 7 days) bought on the last day of a cycle is
billed on that cycle's bill, then cancelled: its refund (the days after the cancel day) lands on the next bill.
Listing shows state, validity, fee, units used and the request id; cancelling is idempotent per request id, a
second cancel is FAILED_PRECONDITION, another tenant's purchase NOT_FOUND.  Every bill's UBL is validated when the
module ends (billing_support)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterator

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from engine.cdr import MediatedCdr
from engine.identity import SYSTEM
from tests.integration.billing_support import BillingStack, account_pb, serve_billing_stack
from tests.integration.helpers import field_violations, precondition_reason, rpc_error
from tests.integration.test_billing_addons import _data
from tests.integration.test_plans_rating import REPO

pytestmark = pytest.mark.integration
UTC = timezone.utc
INC = 102_400
MNO = replace(SYSTEM, tenant_id="mno", subject="test", is_operator=True)


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    rules = tmp_path_factory.mktemp("checkout") / "rules"
    shutil.copytree(REPO / "rules", rules)
    yield from serve_billing_stack(db_url, tmp_path_factory.mktemp("home"), rules)


def _rate(s: BillingStack, cdr: MediatedCdr) -> tuple[dict[str, int], int]:
    out = s.root.rating.rate_many(MNO, [cdr], use_counters=True)[0].rated
    return {u.bundle_id: u.units for u in out.bundle_usage}, out.charge_micros


def _spend_plan_bundle(s: BillingStack, msisdn: str, at: datetime) -> None:
    _rate(s, _data(msisdn, at, 1, f"warm-{msisdn}"))
    counters, _, _ = s.root.rating.counters(MNO, "mno", msisdn, at.strftime("%Y-%m"))
    _rate(s, _data(msisdn, at.replace(hour=at.hour + 1), counters["BN_S_DATA_2GB"][1], f"spend-{msisdn}"))


def _cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 1_000_000)


def _one_offs(bill: pb.Invoice) -> list[tuple[str, int, str]]:
    return sorted((ln.item_id, ln.amount.amount_micros, ln.tax_category) for ln in bill.lines if ln.charge_type == "one_off")


def test_a_cancelled_add_on_stops_covering_later_cdrs_and_refunds_its_unused_share(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-CANCEL", name="Changed Mind"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 0, 30, tzinfo=UTC))
    mno.assign("MNO-CANCEL", sub)
    _spend_plan_bundle(s, msisdn, datetime(2026, 2, 3, 9, 0, tzinfo=UTC))

    s.at(datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
    p = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "shop-1").purchase
    allowance = p.allowance
    assert p.refund_policy == "unused" and p.state == pb.ADD_ON_STATE_UNSPECIFIED   # BuyAddOn says nothing of state
    used = 300 * INC
    took, charge = _rate(s, _data(msisdn, datetime(2026, 2, 11, 9, 0, tzinfo=UTC), used, "use-1"))
    assert took == {"BN_ADDON_DATA_5GB": used} and charge == 0

    listed = mno.list_add_ons(sub).purchases
    assert [(x.purchase_id, x.bundle_id, x.state, x.units_used, x.request_id, x.fee.amount_micros) for x in listed] == [
        (p.purchase_id, "BN_ADDON_DATA_5GB", pb.ADD_ON_STATE_ACTIVE, used, "shop-1", 10_000_000)]
    assert listed[0].purchase_time.ToDatetime(tzinfo=UTC) == datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    assert listed[0].valid_until.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    assert not listed[0].HasField("cancel_time")

    s.at(datetime(2026, 2, 12, 12, 0, tzinfo=UTC))
    done = mno.cancel_add_on(p.purchase_id, "cancel-1")
    refund = _cents(Decimal(10) * (allowance - used) / allowance)
    assert done.cancelled and done.purchase.refund.amount_micros == refund and 0 < refund < 10_000_000
    assert done.purchase.cancel_time.ToDatetime(tzinfo=UTC) == datetime(2026, 2, 12, 12, 0, tzinfo=UTC)
    assert done.purchase.state == pb.ADD_ON_STATE_CANCELLED and done.purchase.refund_charge_id
    # the same request again cancels nothing more; another cancel is refused
    again = mno.cancel_add_on(p.purchase_id, "cancel-1")
    assert not again.cancelled and again.purchase.refund.amount_micros == refund
    err = rpc_error(lambda: mno.cancel_add_on(p.purchase_id, "cancel-2"), grpc.StatusCode.FAILED_PRECONDITION)
    assert precondition_reason(err) == "ADD_ON_CANCELLED"

    # a CDR that starts after the cancel is not covered: charged, its counter untouched
    after, charged = _rate(s, _data(msisdn, datetime(2026, 2, 12, 12, 30, tzinfo=UTC), 10 * INC, "after-cancel"))
    assert after == {} and charged > 0
    counters, _, _ = s.root.rating.counters(MNO, "mno", msisdn, "+000001")
    assert counters["BN_ADDON_DATA_5GB"][1] == allowance - used
    # one that started before it (rated late) still is
    before, _ = _rate(s, _data(msisdn, datetime(2026, 2, 12, 11, 0, tzinfo=UTC), 10 * INC, "before-cancel"))
    assert before == {"BN_ADDON_DATA_5GB": 10 * INC}

    listed = mno.list_add_ons(sub).purchases
    assert [(x.state, x.units_used, x.cancel_request_id, x.refund.amount_micros) for x in listed] == [
        (pb.ADD_ON_STATE_CANCELLED, used + 10 * INC, "cancel-1", refund)]

    # the bill: the fee and the refund as one-off lines of the same VAT category
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-CANCEL"]))
    bill = mno.get_invoice(mno.list_invoices(account_id="MNO-CANCEL").invoices[0].invoice_id)
    assert _one_offs(bill) == [("BN_ADDON_DATA_5GB", -refund, "standard"), ("BN_ADDON_DATA_5GB", 10_000_000, "standard")]
    html = mno.download(bill.invoice_id, "html")[0].decode()
    assert "Refund: Extra data 5 GB, 30 days (add-on) (cancelled 2026-02-12, refund unused)" in html
    # the audit log names the cancel
    entries = s.client("mno").audit.list(object_type="subscriber", object_id=sub).items
    assert "subscriber.cancel_add_on" in [e.action for e in entries]


def test_a_prorated_refund_after_the_fee_was_billed_lands_on_the_next_bill(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-TRAVEL", name="Back Early"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-TRAVEL", sub)
    s.at(datetime(2026, 4, 30, 9, 0, tzinfo=UTC))
    p = mno.buy_add_on(sub, "BN_ADDON_WORLD_DATA_1GB", "trip").purchase
    assert p.refund_policy == "prorated" and p.fee.amount_micros == 15_000_000
    s.at(datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-TRAVEL"]))
    april = mno.list_invoices(account_id="MNO-TRAVEL").invoices[0]
    assert ("BN_ADDON_WORLD_DATA_1GB", 15_000_000, "standard") in _one_offs(mno.get_invoice(april.invoice_id))
    # cancelled on its third day (30 April, 1 and 2 May in Paris): 4 of its 7 days back
    s.at(datetime(2026, 5, 2, 15, 0, tzinfo=UTC))
    done = mno.cancel_add_on(p.purchase_id, "home")
    assert done.purchase.refund.amount_micros == _cents(Decimal(15) * 4 / 7) == 8_570_000
    s.at(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-TRAVEL"]))
    may = [i for i in mno.list_invoices(account_id="MNO-TRAVEL").invoices if i.invoice_id != april.invoice_id][0]
    assert _one_offs(mno.get_invoice(may.invoice_id)) == [("BN_ADDON_WORLD_DATA_1GB", -8_570_000, "standard")]
    # its use is on the bill of each cycle it was valid in: April's (bought then, issued before the cancel) and May's
    # (until the cancel)
    assert "BN_ADDON_WORLD_DATA_1GB (add-on, until 2026-05-06 22:00 UTC)" in mno.download(april.invoice_id, "html")[0].decode()
    assert "BN_ADDON_WORLD_DATA_1GB (add-on, until 2026-05-02 15:00 UTC)" in mno.download(may.invoice_id, "html")[0].decode()
    # one valid into July (5 GB, 30 days, bought 10 June): on June's bill and on July's, each with its use as then
    s.at(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    data = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "june").purchase
    name = f"BN_ADDON_DATA_5GB (add-on, until {data.valid_until.ToDatetime(tzinfo=UTC).strftime('%Y-%m-%d %H:%M')} UTC)"
    assert name == "BN_ADDON_DATA_5GB (add-on, until 2026-07-09 22:00 UTC)"
    seen = {april.invoice_id, may.invoice_id}
    for cycle_date in (datetime(2026, 7, 1, 8, 0, tzinfo=UTC), datetime(2026, 8, 1, 8, 0, tzinfo=UTC)):
        s.at(cycle_date)
        list(mno.run("on_demand", account_ids=["MNO-TRAVEL"]))
        [bill] = [i for i in mno.list_invoices(account_id="MNO-TRAVEL").invoices if i.invoice_id not in seen]
        seen.add(bill.invoice_id)
        assert name in mno.download(bill.invoice_id, "html")[0].decode(), cycle_date


def test_listing_pages_and_every_bad_request_is_refused_with_nothing_changed(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-LIST"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-LIST", sub)
    bought = []
    for n in range(3):
        s.at(datetime(2026, 7, 2 + n, 8, 0, tzinfo=UTC))
        bought.append(mno.buy_add_on(sub, "BN_ADDON_WORLD_DATA_1GB", f"w-{n}").purchase.purchase_id)
    first = mno.list_add_ons(sub, page_size=2)
    second = mno.list_add_ons(sub, page_size=2, page_token=first.next_page_token)
    assert [p.purchase_id for p in first.purchases] + [p.purchase_id for p in second.purchases] == bought
    assert first.next_page_token and not second.next_page_token
    # 7-day passes: on 9 July the first (2..8 July) has expired, the others (3..9, 4..10 July) have not
    s.at(datetime(2026, 7, 9, 8, 0, tzinfo=UTC))
    states = [p.state for p in mno.list_add_ons(sub).purchases]
    assert states == [pb.ADD_ON_STATE_EXPIRED, pb.ADD_ON_STATE_ACTIVE, pb.ADD_ON_STATE_ACTIVE]
    err = rpc_error(lambda: mno.cancel_add_on(bought[0], "late"), grpc.StatusCode.FAILED_PRECONDITION)
    assert precondition_reason(err) == "ADD_ON_EXPIRED"

    err = rpc_error(lambda: mno.cancel_add_on("", ""), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"purchase_id", "request_id"}
    assert "subscriber_id" in field_violations(rpc_error(lambda: mno.list_add_ons(""), grpc.StatusCode.INVALID_ARGUMENT))
    assert "page_token" in field_violations(rpc_error(lambda: mno.list_add_ons(sub, page_token="bad"), grpc.StatusCode.INVALID_ARGUMENT))
    rpc_error(lambda: mno.cancel_add_on("ao_nope", "x"), grpc.StatusCode.NOT_FOUND)
    # another tenant: neither the list nor the purchase exist for it; an auditor reads but never cancels
    rpc_error(lambda: s.billing("mvno-beta").list_add_ons(sub), grpc.StatusCode.NOT_FOUND)
    rpc_error(lambda: s.billing("mvno-beta").cancel_add_on(bought[1], "x"), grpc.StatusCode.NOT_FOUND)
    assert len(s.billing("mno", "auditor").list_add_ons(sub).purchases) == 3
    rpc_error(lambda: s.billing("mno", "auditor").cancel_add_on(bought[1], "x"), grpc.StatusCode.PERMISSION_DENIED)
    assert [p.state for p in mno.list_add_ons(sub).purchases][1:] == [pb.ADD_ON_STATE_ACTIVE, pb.ADD_ON_STATE_ACTIVE]
    # a CSR cancels (a refund below the profile's csr_limit)
    assert s.billing("mno", "csr").cancel_add_on(bought[1], "csr-1").cancelled


def test_add_ons_are_listed_and_cancelled_from_the_command_line(stack: BillingStack, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-CLI-CXL"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-CLI-CXL", sub)
    s.at(datetime(2026, 9, 2, 8, 0, tzinfo=UTC))
    pid = mno.buy_add_on(sub, "BN_ADDON_WORLD_DATA_1GB", "cli-buy").purchase.purchase_id
    flags = ["--server", s.address, "--token", s.token("mno", "csr")]
    assert main(["accounts", "add-ons", sub, *flags]) == 0
    out = capsys.readouterr().out
    assert pid in out and "ACTIVE" in out and "15.00 EUR" in out and "cli-buy" in out and "(prorated)" in out
    s.at(datetime(2026, 9, 3, 8, 0, tzinfo=UTC))
    assert main(["accounts", "cancel-add-on", pid, "--request-id", "cli-cxl", *flags]) == 0
    assert "10.71" in capsys.readouterr().out          # 15.00 x 5 / 7 days
    assert main(["accounts", "cancel-add-on", pid, "--request-id", "cli-cxl", *flags]) == 0
    assert "had cancelled it already" in capsys.readouterr().err
    assert main(["accounts", "cancel-add-on", pid, *flags]) == 2      # another request: cancelled already
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert main(["accounts", "add-ons", sub, *flags]) == 0
    assert "CANCELLED (cancelled 2026-09-03 08:00)" in capsys.readouterr().out
