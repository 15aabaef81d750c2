"""``rating.store``: what stores usage or rewrites the usage ledger (RateCdr/RateCdrs with the bundle counters, Rerate)
is the administrators' only.  A product manager prices (what-if, rating without counters) and a CSR's usage would reach
the bill past its csr_limit: both are refused, and nothing of theirs is stored.  Over a real port, on both databases."""
from __future__ import annotations

import secrets
from datetime import date, datetime, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from billing.v1 import mediation_pb2 as mpb
from clients.client import RulebillClient
from store.plans import usage_ledger
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc
DENIED = grpc.StatusCode.PERMISSION_DENIED


def _cdrs(msisdn: str, n: int) -> list[mpb.NormalisedCdr]:
    start = Timestamp()
    start.FromDatetime(datetime(2026, 6, 9, 12, 0, tzinfo=UTC))
    return [mpb.NormalisedCdr(cdr_id="st" + secrets.token_hex(8), source="st", origin_id=secrets.token_hex(6),
                              service=mpb.CDR_SERVICE_KIND_VOICE, direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=start,
                              a_number=msisdn, b_number="447700900123", duration_seconds=20_000, tenant_id="mno")
            for _ in range(n)]


def _stored(s: BillingStack, cdrs: list[mpb.NormalisedCdr]) -> int:
    with s.root.db.connect() as conn:
        return len(conn.execute(select(usage_ledger.c.cdr_id).where(usage_ledger.c.cdr_id.in_([c.cdr_id for c in cdrs]))).all())


@pytest.mark.parametrize("role", ["product_manager", "csr"])
def test_only_an_admin_stores_usage(billing_stack: BillingStack, role: str) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    account = f"ACC-STORE-{role.upper()}"
    admin.create_account(account_pb(account))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    admin.assign(account, sub)
    s.at(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))

    def usage() -> int:
        return sum(ln.amount.amount_micros for ln in admin.preview(account, cycle_date=date(2026, 7, 1)).invoice.lines
                   if ln.charge_type == "usage")

    before = usage()
    caller = RulebillClient(s.address, s.token("mno", role))
    s.clients.append(caller)
    cdrs = _cdrs(msisdn, 3)
    err = rpc_error(lambda: list(caller.rating.rate_many(cdrs, use_bundle_counters=True)), DENIED)
    assert "rating.store" in err.details()
    rpc_error(lambda: caller.rating.rate(cdrs[0], use_bundle_counters=True), DENIED)
    rpc_error(lambda: caller.rerate.rerate(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC)), DENIED)
    assert _stored(s, cdrs) == 0 and usage() == before
    # pricing stores nothing and stays theirs
    priced = list(caller.rating.rate_many(cdrs))
    assert len(priced) == 3 and all(r.charge.amount_micros > 0 for r in priced)
    assert caller.rating.rate(cdrs[0]).charge.amount_micros == priced[0].charge.amount_micros
    assert _stored(s, cdrs) == 0 and usage() == before
    # an admin's rating with the counters stores them, and they reach the bill
    admin_client = RulebillClient(s.address, s.token("mno"))
    s.clients.append(admin_client)
    assert len(list(admin_client.rating.rate_many(cdrs, use_bundle_counters=True))) == 3
    assert _stored(s, cdrs) == 3 and usage() > before
