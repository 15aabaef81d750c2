"""A CSR's limit (the billing profile's ``csr_limit``: 50.00 EUR for the operator) holds for the refunds it gives by
cancelling add-ons on one account in one bill cycle, together, not only for each refund: many cancels of 10.00 each
stop at 50.00, two at once cannot both pass, an admin's cancels do not count and the next bill cycle starts a new sum.
Over a real port, on both databases, with real threads (the race made to happen as in test_billing_money_races)."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from tests.integration.billing_support import BillingStack, account_with_subscribers, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rpc_error
from tests.integration.test_billing_money_races import _one_refused, at_once

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc
ADD_ON = "BN_ADDON_DATA_5GB"   # 10.00, refund: unused -- cancelled unused, the whole fee comes back


def test_a_csr_cannot_split_refunds_above_its_limit_into_cancels_below_it_nor_pass_it_with_two_at_once(
        billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin, csr = s.billing("mno"), s.billing("mno", "csr")
    subs = account_with_subscribers(s, "ACC-REFUND-LIM", 2, datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
    # the admin buys (no limit); add-ons on the account's two subscribers
    bought = [admin.buy_add_on(subs[i % 2], ADD_ON, f"rl-buy-{i}").purchase.purchase_id for i in range(9)]

    # four refunds of 10.00 by the CSR (40.00), one by an admin (not counted)
    for i in range(4):
        assert csr.cancel_add_on(bought[i], f"rl-cancel-{i}").purchase.refund.amount_micros == 10_000_000
    admin.cancel_add_on(bought[4], "rl-cancel-admin")
    # the fifth and a sixth at once: one fits under 50.00, not both
    csrs = [s.billing("mno", "csr") for _ in range(2)]
    calls = [lambda c=c, i=i: c.cancel_add_on(bought[5 + i], f"rl-at-once-{i}") for i, c in enumerate(csrs)]
    done, refused = _one_refused(at_once(s, calls, "LOCK TABLE billing_addon_purchases IN SHARE MODE"), C.PERMISSION_DENIED)
    assert done.purchase.refund.amount_micros == 10_000_000
    assert "before: 50.00" in refused.details() and "bill cycle" in refused.details()   # the other one counted
    # split small: one more refund is refused all the same, on either subscriber; the purchase stays uncancelled
    err = rpc_error(lambda: csr.cancel_add_on(bought[7], "rl-more"), C.PERMISSION_DENIED)
    assert "before: 50.00" in err.details()
    states = {p.purchase_id: p.cancel_time.seconds for sub in subs for p in admin.list_add_ons(sub).purchases}
    cancelled = [b for b in bought if states[b]]
    assert len(cancelled) == 6 and bought[7] not in cancelled and bought[8] not in cancelled
    # another tenant's CSR names the purchase as a missing one
    rpc_error(lambda: s.billing("mvno-alpha", "csr").cancel_add_on(bought[7], "rl-alpha"), C.NOT_FOUND)

    # the next bill cycle is a new sum
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    late = admin.buy_add_on(subs[0], ADD_ON, "rl-buy-may").purchase.purchase_id
    assert csr.cancel_add_on(late, "rl-cancel-may").purchase.refund.amount_micros == 10_000_000
