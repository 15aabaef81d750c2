"""A running monthly add-on across a plan change and an anchor-day change, over a real port on SQLite and PostgreSQL
(SubscriberService ChangeSubscriberPlan, BillingService ListAddOns and UpdateAccount, ``rulebill subscribers
change-plan`` and ``rulebill accounts add-ons``), rated by the product's rating desk and billed by its bill runs; and
rating's look-up of purchases per chunk, with a purchase made on another replica between two chunks.

Smart M offers ``BN_ADDON_INTL_60MIN`` (60 minutes abroad, 5.00 a month, in advance, ``proration: daily``); Smart S
does not.  Bought on 10 March, the subscriber moves to Smart S on 15 April at 09:00 UTC: the add-on stops then (a
call at 08:00 is covered, one at 10:00 is not), ListAddOns shows it cancelled by ``plan_change``, and May's bill
gives back the April days after the change day: 15 of 30 days of 5.00 kept, -2.50."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import grpc
import pytest
from sqlalchemy import event

from billing.v1 import billing_pb2 as pb
from clients.client import RulebillClient
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.identity import SYSTEM
from servers.root import build_root
from tests.integration.billing_support import BillingStack, account_pb
from tests.integration.helpers import rpc_error
# the stack (module-scoped: one per module) and the helpers of the monthly add-on's own tests
from tests.integration.test_billing_addon_monthly import ADD_ON, NEW_YORK, _add_on_fees, _bill, _took, stack  # noqa: F401

pytestmark = pytest.mark.integration
UTC = timezone.utc
MNO = replace(SYSTEM, tenant_id="mno", subject="test", is_operator=True)


def test_a_plan_change_to_a_plan_without_the_add_on_stops_it_at_the_change(stack: BillingStack) -> None:
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-PC"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-PC", sub)
    s.at(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    p = mno.buy_add_on(sub, ADD_ON, "pc-1").purchase
    seen: set[str] = set()
    march = _bill(s, "MNO-PC", datetime(2026, 4, 1, 8, 0, tzinfo=UTC), seen)
    assert _add_on_fees(march) == [("2026-03-10", "2026-03-31", 3_550_000), ("2026-04-01", "2026-04-30", 5_000_000)]
    assert _took(s, msisdn, datetime(2026, 4, 2, 10, 0, tzinfo=UTC), 20) == (1200, 0)

    s.at(datetime(2026, 4, 14, 9, 0, tzinfo=UTC))
    one_off = mno.buy_add_on(sub, "BN_ADDON_DATA_5GB", "pc-data").purchase   # a one-off add-on runs out its validity
    s.at(datetime(2026, 4, 15, 9, 0, tzinfo=UTC))
    with RulebillClient(s.address, s.token("mno")) as rb:
        assert rb.subscribers.change_plan(sub, "TP_SMART_S").tariff_plan == "TP_SMART_S"
    by_id = {x.purchase_id: x for x in mno.list_add_ons(sub).purchases}
    stopped = by_id[p.purchase_id]
    assert (stopped.state, stopped.cancel_request_id) == (pb.ADD_ON_STATE_CANCELLED, "plan_change")
    assert stopped.valid_until.ToDatetime(tzinfo=UTC) == datetime(2026, 4, 15, 9, 0, tzinfo=UTC)
    assert stopped.units_used == 1200
    assert by_id[one_off.purchase_id].state == pb.ADD_ON_STATE_ACTIVE

    # rating: covered before the change instant, not after (a CDR that arrives late is rated by its start time)
    assert _took(s, msisdn, datetime(2026, 4, 15, 10, 0, tzinfo=UTC), 10)[0] == 0
    assert _took(s, msisdn, datetime(2026, 4, 15, 8, 0, tzinfo=UTC), 10) == (600, 0)
    assert _took(s, msisdn, datetime(2026, 5, 2, 10, 0, tzinfo=UTC), 10)[0] == 0

    april = _bill(s, "MNO-PC", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), seen)
    # 1..15 April served (the change day counts, as a deactivation day does): 5.00 x 15 / 30 = 2.50, 5.00 charged in advance
    assert _add_on_fees(april) == [("2026-04-01", "2026-04-15", -2_500_000)]
    rpc_error(lambda: list(mno.run("on_demand", account_ids=["MNO-PC"])), grpc.StatusCode.FAILED_PRECONDITION)
    may = _bill(s, "MNO-PC", datetime(2026, 6, 1, 8, 0, tzinfo=UTC), seen)
    assert _add_on_fees(may) == []        # nothing more: no May fee, no second true-up
    # not offered by Smart S: it cannot be bought again; a CSR cannot cancel what the change stopped
    rpc_error(lambda: mno.buy_add_on(sub, ADD_ON, "pc-2"), grpc.StatusCode.INVALID_ARGUMENT)
    rpc_error(lambda: mno.cancel_add_on(p.purchase_id, "pc-x"), grpc.StatusCode.FAILED_PRECONDITION)


def test_a_plan_change_from_the_command_line_shows_the_stop(stack: BillingStack, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-PC-CLI"))
    sub, _ = s.subscriber("mno", "TP_SMART_M", datetime(2026, 8, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-PC-CLI", sub)
    s.at(datetime(2026, 8, 5, 8, 0, tzinfo=UTC))
    flags = ["--server", s.address, "--token", s.token("mno")]
    assert main(["accounts", "buy-add-on", sub, ADD_ON, "--request-id", "cli-pc", *flags]) == 0
    capsys.readouterr()
    s.at(datetime(2026, 8, 20, 6, 30, tzinfo=UTC))
    assert main(["subscribers", "change-plan", sub, "--plan", "TP_SMART_S", *flags]) == 0
    capsys.readouterr()
    assert main(["accounts", "add-ons", sub, *flags]) == 0
    out = capsys.readouterr().out
    assert "CANCELLED (plan change 2026-08-20 06:30)" in out and "2026-08-20 06:30" in out.replace("CANCELLED (plan change 2026-08-20 06:30)", "")


def test_an_anchor_day_changed_after_the_purchase_moves_the_add_on_s_cycles(stack: BillingStack) -> None:
    """Anchored on the 1st, bought on 10 March, the 60 minutes all used in March; the account moves its anchor to the
    20th on 5 April.  Rating then keys the add-on by the account's new cycles, as it keys the plan's bundles: a call on
    10 April is in the cycle 20 March - 19 April (named 2026-03, used up), one on 21 April in a fresh cycle."""
    s = stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-ANCHOR"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    mno.assign("MNO-ANCHOR", sub)
    s.at(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    mno.buy_add_on(sub, ADD_ON, "anchor-1")
    assert _took(s, msisdn, datetime(2026, 3, 25, 10, 0, tzinfo=UTC), 60) == (3600, 0)
    s.at(datetime(2026, 4, 5, 8, 0, tzinfo=UTC))
    account = mno.get_account("MNO-ANCHOR").account
    account.anchor_day = 20
    mno.update_account(account, ["anchor_day"])
    covered, charged = _took(s, msisdn, datetime(2026, 4, 10, 10, 0, tzinfo=UTC), 10)
    assert covered == 0 and charged > 0          # the purchase's own anchor (the 1st) would have granted April afresh
    assert _took(s, msisdn, datetime(2026, 4, 21, 10, 0, tzinfo=UTC), 10) == (600, 0)
    s.at(datetime(2026, 4, 22, 8, 0, tzinfo=UTC))
    [listed] = mno.list_add_ons(sub).purchases
    assert listed.units_used == 600              # the current cycle's counter, under the new anchor


def _purchase_queries(root: Any) -> list[str]:
    """The statements on ``root``'s database that read add-on purchases (SQLAlchemy's: rating's reader)."""
    seen: list[str] = []

    @event.listens_for(root.db, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "billing_addon_purchases" in statement:
            seen.append(statement)

    return seen


def test_a_chunk_without_a_running_add_on_asks_for_no_purchase_even_across_replicas(stack: BillingStack) -> None:
    s = stack
    other = build_root(replace(s.root.settings), s.clock)    # a second replica on the same database
    try:
        queries = _purchase_queries(other)
        mno = s.billing("mno")
        mno.create_account(account_pb("MNO-REPLICA"))
        holder, holder_msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
        plain, plain_msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
        mno.assign("MNO-REPLICA", holder)
        mno.assign("MNO-REPLICA", plain)
        s.at(datetime(2026, 9, 2, 8, 0, tzinfo=UTC))
        mno.buy_add_on(holder, ADD_ON, "replica-1")      # the tenant has a running add-on, bought on the first replica

        def rate_on_other(msisdn: str, at: datetime) -> int:
            origin = secrets.token_hex(6)
            cdr = MediatedCdr(cdr_identity("it", origin, "mno"), "it", origin, Service.VOICE, Direction.ORIGINATING, at, msisdn,
                              NEW_YORK, duration_seconds=600, tenant="mno")
            [out] = other.rating.rate_many(MNO, [cdr], use_counters=True)
            return {u.bundle_id: u.units for u in out.rated.bundle_usage}.get(ADD_ON, 0)

        assert rate_on_other(plain_msisdn, datetime(2026, 9, 3, 10, 0, tzinfo=UTC)) == 0
        assert queries == []                              # no purchase look-up for a chunk of a number without one
        assert rate_on_other(holder_msisdn, datetime(2026, 9, 3, 10, 0, tzinfo=UTC)) == 600
        assert queries                                    # its purchase is read for the number that holds one
        # a purchase made on the first replica between two chunks of the second is seen by the next chunk
        s.at(datetime(2026, 9, 3, 12, 0, tzinfo=UTC))
        mno.buy_add_on(plain, ADD_ON, "replica-2")
        assert rate_on_other(plain_msisdn, datetime(2026, 9, 3, 13, 0, tzinfo=UTC)) == 600
        # and a stop (a plan change on the first replica) too
        s.at(datetime(2026, 9, 4, 12, 0, tzinfo=UTC))
        s.root.subscribers.change_plan(MNO, plain, "TP_SMART_S")
        assert rate_on_other(plain_msisdn, datetime(2026, 9, 4, 13, 0, tzinfo=UTC)) == 0
        # the numbers whose purchases have all ended before a chunk's CDRs ask nothing again
        del queries[:]
        assert rate_on_other(plain_msisdn, datetime(2026, 9, 5, 13, 0, tzinfo=UTC)) == 0
        assert queries == []
    finally:
        other.close()
