"""A server stream checks its caller's bearer again between its messages, as a client stream does
(servers/interceptors.py): a bill run's progress (StartBillRun) open while its token is revoked, expires or its
tenant is suspended ends UNAUTHENTICATED / PERMISSION_DENIED at the next message, and nothing is sent after it; the
run stops there (its later batches are not billed).

The run is held between two messages by its first batch waiting on an Event (no sleeps); the server's clock is the
test's.  Over a real port, on both databases."""
from __future__ import annotations

import secrets
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import grpc
import pytest
from sqlalchemy import func, select

from billing.v1 import billing_pb2 as pb, billing_pb2_grpc as brpc
from engine.identity import SYSTEM, Role
from engine.model import TenantStatus
from store.billing import billing_invoices
from tests.integration.billing_support import START, BillingStack, account_pb, billing_stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc
OPERATOR = replace(SYSTEM, tenant_id="mno", is_operator=True)
BILL_DAY = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


def _accounts(s: BillingStack, tenant: str, plan: str, n: int) -> list[str]:
    """``n`` new accounts of ``tenant``, one subscriber each from START: their January is due on BILL_DAY."""
    admin = s.billing(tenant)
    ids = []
    for _ in range(n):
        account_id = "ss-" + secrets.token_hex(4)
        admin.create_account(account_pb(account_id))
        sub, _ = s.subscriber(tenant, plan, START)
        admin.assign(account_id, sub)
        ids.append(account_id)
    s.at(BILL_DAY)
    return ids


def _invoiced(s: BillingStack, tenant: str, ids: list[str]) -> int:
    with s.root.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(billing_invoices).where(
            billing_invoices.c.tenant_id == tenant, billing_invoices.c.account_id.in_(ids))).scalar_one())


def _run_held(s: BillingStack, tenant: str, bearer: str, ids: list[str], change: Callable[[], None]) -> tuple[list[Any], grpc.StatusCode]:
    """A manual run of ``ids`` (one account per batch) over the port with ``bearer``: its first message read, then
    ``change`` while its first batch waits, then the rest of the stream: (messages read, the call's code)."""
    runner = s.root.billing.runs
    go, entered = threading.Event(), threading.Event()
    real_batch = runner._batch   # noqa: SLF001 - the seam the run is held at

    def held_batch(*args: Any, **kw: Any) -> Any:
        if not go.is_set():
            entered.set()
            assert go.wait(30)
        return real_batch(*args, **kw)

    size, workers = runner.batch_size, runner.workers
    runner.batch_size, runner.workers = 1, 1
    runner._batch = held_batch  # type: ignore[method-assign]
    got: list[Any] = []
    try:
        with grpc.insecure_channel(s.address) as ch:
            replies: Iterator[pb.StartBillRunResponse] = brpc.BillingServiceStub(ch).StartBillRun(
                pb.StartBillRunRequest(tenant_id=tenant, mode=pb.BILL_RUN_MODE_MANUAL, account_ids=ids),
                metadata=[("authorization", f"Bearer {bearer}")])
            got.append(next(replies))
            assert entered.wait(30)
            change()
            go.set()
            try:
                got.extend(replies)
                return got, grpc.StatusCode.OK
            except grpc.RpcError as err:
                return got, err.code()
    finally:
        go.set()
        del runner._batch   # type: ignore[method-assign]
        runner.batch_size, runner.workers = size, workers


def _stopped(s: BillingStack, tenant: str, ids: list[str], got: list[Any], code: grpc.StatusCode, want: grpc.StatusCode) -> None:
    assert code == want
    assert len(got) == 1                      # the run's opening message only: nothing sent after the check
    # the batch that ran when the token was revoked committed (as when a client leaves); the run stopped there
    assert _invoiced(s, tenant, ids) == 1


def test_a_bill_run_stream_ends_when_its_token_is_revoked(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    ids = _accounts(s, "mno", "TP_SMART_S", 3)
    token, bearer = s.root.tokens.issue(None, "runner-revoked", "mno", Role.OPERATOR_ADMIN, 3600)
    got, code = _run_held(s, "mno", bearer, ids, lambda: s.root.tokens.revoke(OPERATOR, token.token_id))
    _stopped(s, "mno", ids, got, code, grpc.StatusCode.UNAUTHENTICATED)


def test_a_bill_run_stream_ends_when_its_tenant_is_suspended(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    ids = _accounts(s, "mvno-alpha", "TP_ALPHA_SIMPLE", 3)
    _, bearer = s.root.tokens.issue(None, "runner-suspended", "mvno-alpha", Role.MVNO_ADMIN, 3600)
    try:
        got, code = _run_held(s, "mvno-alpha", bearer, ids,
                              lambda: s.root.tenants.set_status(OPERATOR, "mvno-alpha", TenantStatus.SUSPENDED, "stream"))
    finally:
        s.root.tenants.set_status(OPERATOR, "mvno-alpha", TenantStatus.ACTIVE, "stream over")
    _stopped(s, "mvno-alpha", ids, got, code, grpc.StatusCode.PERMISSION_DENIED)


def test_a_bill_run_stream_ends_when_its_token_expires(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    ids = _accounts(s, "mno", "TP_SMART_S", 3)
    _, bearer = s.root.tokens.issue(None, "runner-expiring", "mno", Role.OPERATOR_ADMIN, 2)
    got, code = _run_held(s, "mno", bearer, ids, lambda: s.at(BILL_DAY + timedelta(seconds=2)))   # before the cache's 5 s
    _stopped(s, "mno", ids, got, code, grpc.StatusCode.UNAUTHENTICATED)


def test_a_bill_run_stream_checks_its_token_again_every_auth_cache_seconds(billing_stack: BillingStack) -> None:  # noqa: F811
    """A revocation this server is not told of (another replica's) ends the stream once ``auth_cache_seconds`` of the
    server's clock have passed; within them the stream goes on (as documented)."""
    s = billing_stack
    cache = s.root.tokens.cache
    ids = _accounts(s, "mno", "TP_SMART_S", 3)
    token, bearer = s.root.tokens.issue(None, "runner-elsewhere", "mno", Role.OPERATOR_ADMIN, 3600)
    cache.forget_token = lambda token_id: None  # type: ignore[method-assign]   # another replica revokes it
    try:
        got, code = _run_held(s, "mno", bearer, ids, lambda: s.root.tokens.revoke(OPERATOR, token.token_id))
        assert code == grpc.StatusCode.OK and len(got) == 5   # opened, three batches, done: still fresh
        ids = _accounts(s, "mno", "TP_SMART_S", 3)
        token, bearer = s.root.tokens.issue(None, "runner-elsewhere-2", "mno", Role.OPERATOR_ADMIN, 3600)

        def revoked_then_stale() -> None:
            s.root.tokens.revoke(OPERATOR, token.token_id)
            s.at(BILL_DAY + cache.ttl)

        got, code = _run_held(s, "mno", bearer, ids, revoked_then_stale)
    finally:
        del cache.forget_token   # type: ignore[method-assign]
    _stopped(s, "mno", ids, got, code, grpc.StatusCode.UNAUTHENTICATED)
