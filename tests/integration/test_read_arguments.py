"""Reads that name a subscriber number, a bill cycle or a number prefix refuse malformed ones with INVALID_ARGUMENT on
the field (they answered OK with nothing: an empty number, month 13, "DROP TABLE", a 100,000-character prefix), and
still answer well-formed ones.  On both databases."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import subscriber_pb2_grpc as srpc
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def test_malformed_numbers_months_and_prefixes_are_refused_on_their_field(billing_stack: BillingStack) -> None:
    s = billing_stack
    _, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, tzinfo=timezone.utc))
    rating = s.client("mno").stub(rrpc.RatingServiceStub)
    subs = s.client("mno").stub(srpc.SubscriberServiceStub)
    for number, cycle, bad in (("", "", {"msisdn"}), (msisdn, "2026-13", {"cycle"}), (msisdn, "DROP TABLE", {"cycle"}), (msisdn, "+00001", {"cycle"}),
                               ("33 6x", "2026-00", {"msisdn", "cycle"})):
        err = rpc_error(lambda: rating.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=number, cycle=cycle)), C.INVALID_ARGUMENT)
        assert set(field_violations(err)) == bad, (number, cycle)
    for number, period, bad in (("", "not-a-month", {"period"}), ("abc", "", {"msisdn"}), ("", "2026-3", {"period"})):
        err = rpc_error(lambda: rating.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=number, period=period)), C.INVALID_ARGUMENT)
        assert set(field_violations(err)) == bad, (number, period)
    for prefix in ("3" * 100_000, "3" * 16, "33%", "33_6"):
        err = rpc_error(lambda: subs.ListSubscribers(spb.ListSubscribersRequest(msisdn_prefix=prefix)), C.INVALID_ARGUMENT)
        assert set(field_violations(err)) == {"msisdn_prefix"}
    # well-formed ones answer
    got = rating.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn="+" + msisdn, cycle="2026-02"))
    assert {c.bundle_id for c in got.counters} <= {"BN_S_VOICE_120MIN", "BN_S_DATA_2GB"}
    # an add-on purchase's counters are named by their counter cycle (engine.rating.addons)
    assert list(rating.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=msisdn, cycle="+000001")).counters) == []
    assert list(rating.ListCreditAlerts(rpb.ListCreditAlertsRequest(msisdn=msisdn, period="2026-02")).alerts) == []
    listed = subs.ListSubscribers(spb.ListSubscribersRequest(msisdn_prefix="+" + msisdn[:15])).subscribers
    assert [x.msisdn for x in listed] == [msisdn]
