"""Monthly add-ons bought apart from a plan, over a real port on SQLite and PostgreSQL (BillingService BuyAddOn,
ListAddOns, CancelAddOn; ``rulebill accounts buy-add-on|add-ons``), rated by the product's rating desk and billed by
its bill runs.

Smart M lists ``BN_ADDON_INTL_60MIN`` (60 minutes to the EU and North America, 5.00 a month, ``proration: daily``,
``refund: none``) in its ``add_ons``.  Bought on 10 March, its 60 minutes cover calls from the purchase instant and
come afresh in April (a counter per bill cycle); March's bill charges 22 of 31 days (3.55) and April in advance
(5.00), a re-run charges nothing twice; cancelled on 15 April it stays in force to the cycle's end (1 May, Paris),
May's bill charges no May fee.  A second purchase while one is live is ALREADY_EXISTS (a retry with the request id
returns the first); another currency, a bundle the plan does not offer, another tenant and an auditor are refused.  A
deactivation's final bill gives back the days after it.  Every bill's UBL is validated when the module ends."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timezone
from typing import Iterator

import grpc
import pytest
from sqlalchemy import update

from billing.v1 import billing_pb2 as pb
from engine.identity import SYSTEM
from store.billing import billing_accounts
from tests.integration.billing_support import BillingStack, account_pb, serve_billing_stack
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import REPO

pytestmark = pytest.mark.integration
UTC = timezone.utc
MNO = replace(SYSTEM, tenant_id="mno", subject="test", is_operator=True)
ADD_ON = "BN_ADDON_INTL_60MIN"
NEW_YORK = "12125550100"


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    rules = tmp_path_factory.mktemp("checkout") / "rules"
    shutil.copytree(REPO / "rules", rules)
    yield from serve_billing_stack(db_url, tmp_path_factory.mktemp("home"), rules)


def _took(s: BillingStack, msisdn: str, at: datetime, minutes: int) -> tuple[int, int]:
    """(seconds the add-on covered, the charge) of one call to New York."""
    [rated] = s.rate("mno", msisdn, [(at, minutes * 60, NEW_YORK)])
    return {u.bundle_id: u.units for u in rated.bundle_usage}.get(ADD_ON, 0), rated.charge_micros


def _add_on_fees(bill: pb.Invoice) -> list[tuple[str, str, int]]:
    return sorted((ln.period_start, ln.period_end, ln.amount.amount_micros) for ln in bill.lines
                  if ln.charge_type == "bundle_fee" and ln.item_id == ADD_ON)


def _bill(s: BillingStack, account: str, at: datetime, seen: set[str]) -> pb.Invoice:
    s.at(at)
    list(s.billing("mno").run("on_demand", account_ids=[account]))
    [new] = [i for i in s.billing("mno").list_invoices(account_id=account).invoices if i.invoice_id not in seen]
    seen.add(new.invoice_id)
    return s.billing("mno").get_invoice(new.invoice_id)


def test_a_monthly_add_on_recurs_per_cycle_until_cancelled_and_is_billed_per_cycle(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-INTL", name="Calls Abroad"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-INTL", sub)

    assert _took(s, msisdn, datetime(2026, 3, 9, 10, 0, tzinfo=UTC), 10)[0] == 0      # not bought yet
    s.at(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    bought = mno.buy_add_on(sub, ADD_ON, "intl-1")
    p = bought.purchase
    assert bought.bought and p.recurrence == "monthly" and p.counter_cycle == "+000001"
    assert not p.charge_id and not p.HasField("valid_until") and p.fee.amount_micros == 5_000_000   # fee: the bill run's
    # a retry returns the purchase; a second purchase while it runs is refused, naming the live one
    again = mno.buy_add_on(sub, ADD_ON, "intl-1")
    assert not again.bought and again.purchase.purchase_id == p.purchase_id
    err = rpc_error(lambda: mno.buy_add_on(sub, ADD_ON, "intl-2"), grpc.StatusCode.ALREADY_EXISTS)
    assert p.purchase_id in (err.details() or "") and "intl-1" in (err.details() or "")

    # March: 60 minutes from the purchase instant
    assert _took(s, msisdn, datetime(2026, 3, 11, 10, 0, tzinfo=UTC), 40) == (2400, 0)
    covered, charged = _took(s, msisdn, datetime(2026, 3, 20, 10, 0, tzinfo=UTC), 30)
    assert covered == 1200 and charged > 0
    [listed] = mno.list_add_ons(sub).purchases
    assert (listed.state, listed.units_used, listed.recurrence) == (pb.ADD_ON_STATE_ACTIVE, 3600, "monthly")

    seen: set[str] = set()
    march = _bill(s, "MNO-INTL", datetime(2026, 4, 1, 8, 0, tzinfo=UTC), seen)
    # 22 of March's 31 days (10..31 March) of 5.00, then April in advance
    assert _add_on_fees(march) == [("2026-03-10", "2026-03-31", 3_550_000), ("2026-04-01", "2026-04-30", 5_000_000)]
    assert f"{ADD_ON} (add-on, monthly)" in mno.download(march.invoice_id, "html")[0].decode()
    # the same run again bills nothing twice
    rpc_error(lambda: list(mno.run("on_demand", account_ids=["MNO-INTL"])), grpc.StatusCode.FAILED_PRECONDITION)
    assert len(mno.list_invoices(account_id="MNO-INTL").invoices) == 1

    # April: the allowance comes afresh, in the cycle's own counter
    assert _took(s, msisdn, datetime(2026, 4, 2, 10, 0, tzinfo=UTC), 50) == (3000, 0)
    s.at(datetime(2026, 4, 10, 8, 0, tzinfo=UTC))
    assert mno.list_add_ons(sub).purchases[0].units_used == 3000
    # cancelled (refund none): in force to the end of the bill cycle, 1 May 00:00 in Paris
    s.at(datetime(2026, 4, 15, 9, 0, tzinfo=UTC))
    done = mno.cancel_add_on(p.purchase_id, "stop").purchase
    assert done.state == pb.ADD_ON_STATE_CANCELLED and done.refund.amount_micros == 0 and not done.refund_charge_id
    assert done.valid_until.ToDatetime(tzinfo=UTC) == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
    assert _took(s, msisdn, datetime(2026, 4, 20, 10, 0, tzinfo=UTC), 20)[0] == 600
    # while it runs out its cycle it is not bought again: refused as stopping, naming when it can be
    err = rpc_error(lambda: mno.buy_add_on(sub, ADD_ON, "intl-2b"), grpc.StatusCode.FAILED_PRECONDITION)
    assert "was cancelled and runs until 2026-04-30T22:00:00+00:00" in (err.details() or "")
    assert _took(s, msisdn, datetime(2026, 5, 3, 10, 0, tzinfo=UTC), 5)[0] == 0      # stopped

    april = _bill(s, "MNO-INTL", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), seen)
    assert _add_on_fees(april) == []          # April was charged in full in advance; no May fee
    assert f"{ADD_ON} (add-on, monthly until 2026-04-30 22:00 UTC)" in mno.download(april.invoice_id, "html")[0].decode()
    # stopped, it can be bought again
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    assert mno.buy_add_on(sub, ADD_ON, "intl-3").bought


def test_a_prorated_cancel_and_a_deactivation_settle_on_the_final_bill(stack: BillingStack) -> None:
    """Deactivated on 10 June after June was charged in advance: the final bill gives back 20 of June's 30 days."""
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-INTL-END"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-INTL-END", sub)
    s.at(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    mno.buy_add_on(sub, ADD_ON, "end-1")
    seen: set[str] = set()
    may = _bill(s, "MNO-INTL-END", datetime(2026, 6, 1, 8, 0, tzinfo=UTC), seen)
    assert _add_on_fees(may) == [("2026-05-01", "2026-05-31", 5_000_000), ("2026-06-01", "2026-06-30", 5_000_000)]
    s.at(datetime(2026, 6, 10, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(MNO, sub, "deactivate")
    # the deactivation stops it then, in its transaction
    [stopped] = mno.list_add_ons(sub).purchases
    assert (stopped.state, stopped.cancel_request_id) == (pb.ADD_ON_STATE_CANCELLED, "deactivation")
    assert stopped.valid_until.ToDatetime(tzinfo=UTC) == datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
    s.at(datetime(2026, 6, 12, 8, 0, tzinfo=UTC))
    list(mno.run("final", account_ids=["MNO-INTL-END"]))
    final = mno.get_invoice(sorted(mno.list_invoices(account_id="MNO-INTL-END").invoices, key=lambda i: i.number)[-1].invoice_id)
    # 10 of June's 30 days of 5.00: 1.67; 5.00 was charged in advance
    assert _add_on_fees(final) == [("2026-06-01", "2026-06-10", 1_670_000 - 5_000_000)]


def test_monthly_add_on_refusals(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    # an account in USD (from before accounts were held to the profile's currency: CreateAccount refuses one now)
    mno.create_account(account_pb("MNO-INTL-USD"))
    with s.root.db.begin() as conn:
        conn.execute(update(billing_accounts).where(billing_accounts.c.account_id == "MNO-INTL-USD").values(currency="USD"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-INTL-USD", sub)
    s.at(datetime(2026, 7, 2, 8, 0, tzinfo=UTC))
    err = rpc_error(lambda: mno.buy_add_on(sub, ADD_ON, "usd"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "USD" in field_violations(err)["bundle_id"]
    # a monthly bundle the plan does not offer as an add-on (one of Smart S's own)
    err = rpc_error(lambda: mno.buy_add_on(sub, "BN_S_VOICE_120MIN", "not-offered"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "not an add-on of tariff plan TP_SMART_M" in field_violations(err)["bundle_id"]

    mno.create_account(account_pb("MNO-INTL-EUR"))
    sub2, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-INTL-EUR", sub2)
    s.at(datetime(2026, 7, 2, 8, 0, tzinfo=UTC))
    # another tenant neither buys for, lists nor cancels this subscriber's; an auditor never buys
    rpc_error(lambda: s.billing("mvno-beta").buy_add_on(sub2, ADD_ON, "probe"), grpc.StatusCode.NOT_FOUND)
    rpc_error(lambda: s.billing("mno", "auditor").buy_add_on(sub2, ADD_ON, "aud"), grpc.StatusCode.PERMISSION_DENIED)
    p = s.billing("mno", "csr").buy_add_on(sub2, ADD_ON, "csr").purchase       # a CSR may (5.00 is under its limit)
    rpc_error(lambda: s.billing("mvno-beta").list_add_ons(sub2), grpc.StatusCode.NOT_FOUND)
    rpc_error(lambda: s.billing("mvno-beta").cancel_add_on(p.purchase_id, "probe"), grpc.StatusCode.NOT_FOUND)
    assert mno.list_add_ons(sub2).purchases[0].state == pb.ADD_ON_STATE_ACTIVE


def test_a_monthly_add_on_from_the_command_line(stack: BillingStack, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-INTL-CLI"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 8, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-INTL-CLI", sub)
    s.at(datetime(2026, 8, 5, 8, 0, tzinfo=UTC))
    flags = ["--server", s.address, "--token", s.token("mno", "csr")]
    assert main(["accounts", "buy-add-on", sub, ADD_ON, "--request-id", "cli-m", *flags]) == 0
    assert "monthly" in capsys.readouterr().out
    assert main(["accounts", "buy-add-on", sub, ADD_ON, "--request-id", "cli-m2", *flags]) == 2
    assert "ALREADY_EXISTS" in capsys.readouterr().err
    assert main(["accounts", "add-ons", sub, *flags]) == 0
    out = capsys.readouterr().out
    assert "ACTIVE" in out and "monthly" in out and "5.00 EUR" in out
    pid = mno.list_add_ons(sub).purchases[0].purchase_id
    s.at(datetime(2026, 8, 20, 8, 0, tzinfo=UTC))
    assert main(["accounts", "cancel-add-on", pid, "--request-id", "cli-x", *flags]) == 0
    assert "2026-08-31 22:00" in capsys.readouterr().out        # stops at the cycle's end (1 September in Paris)
