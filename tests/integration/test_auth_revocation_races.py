"""A revocation or a tenant suspension made through this server applies at once, to new calls and to open streams:

* an authentication that read the token before the revocation (or suspension) committed does not put the old
  principal back in the auth cache after the revocation forgot it (the window held open with Events, no sleeps);
* an open client stream (RateCdrs) checks its bearer again between messages: at once after a revocation or a
  suspension through this server, and every ``auth_cache_seconds`` of the server's clock (a revocation through
  another replica, an expiry); the message after it is refused and nothing of it is stored.

Over a real port, on both databases."""
from __future__ import annotations

import queue
import secrets
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from billing.v1 import mediation_pb2 as mpb, rating_pb2 as rpb, rating_pb2_grpc as rrpc
from billing.v1 import tenant_pb2 as tpb, tenant_pb2_grpc as trpc
from engine.identity import SYSTEM, Role
from engine.model import TenantStatus
from store.plans import usage_ledger
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc
OPERATOR = replace(SYSTEM, tenant_id="mno", is_operator=True)


def _get_tenant(s: BillingStack, bearer: str, tenant: str) -> grpc.StatusCode:
    """GetTenant over the server's port with ``bearer``: its status code."""
    with grpc.insecure_channel(s.address) as ch:
        try:
            trpc.TenantServiceStub(ch).GetTenant(tpb.GetTenantRequest(tenant_id=tenant),
                                                  metadata=[("authorization", f"Bearer {bearer}")])
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


def _held_authentication(s: BillingStack, bearer: str, token_id: str, between: Callable[[], None]) -> None:
    """``bearer`` authenticated on a thread that is held after its store read, before it keeps what it read in the
    cache; ``between`` runs in that window (a revocation or suspension, committed and forgotten)."""
    desk = s.root.tokens
    entered, go = threading.Event(), threading.Event()
    real_put = desk.cache.put

    def held_put(token: Any, *args: Any) -> None:
        if token.token_id == token_id and not go.is_set():
            entered.set()
            assert go.wait(30)
        real_put(token, *args)

    desk.cache.put = held_put  # type: ignore[method-assign]
    try:
        t = threading.Thread(target=desk.authenticate, args=(bearer,))
        t.start()
        assert entered.wait(30)
        between()
        go.set()
        t.join(30)
        assert not t.is_alive()
    finally:
        desk.cache.put = real_put  # type: ignore[method-assign]


def test_a_revocation_during_an_authentication_is_not_undone_by_its_cache(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    token, bearer = s.root.tokens.issue(None, "race-revoke", "mvno-alpha", Role.CSR, 3600)
    assert _get_tenant(s, bearer, "mvno-alpha") == grpc.StatusCode.OK
    s.root.tokens.cache.forget_token(token.token_id)   # not cached: the next authentication reads the store
    _held_authentication(s, bearer, token.token_id, lambda: s.root.tokens.revoke(OPERATOR, token.token_id))
    assert _get_tenant(s, bearer, "mvno-alpha") == grpc.StatusCode.UNAUTHENTICATED


def test_a_suspension_during_an_authentication_is_not_undone_by_its_cache(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    token, bearer = s.root.tokens.issue(None, "race-suspend", "mvno-beta", Role.CSR, 3600)
    try:
        _held_authentication(s, bearer, token.token_id,
                             lambda: s.root.tenants.set_status(OPERATOR, "mvno-beta", TenantStatus.SUSPENDED, "race"))
        assert _get_tenant(s, bearer, "mvno-beta") == grpc.StatusCode.PERMISSION_DENIED
    finally:
        s.root.tenants.set_status(OPERATOR, "mvno-beta", TenantStatus.ACTIVE, "race over")
    assert _get_tenant(s, bearer, "mvno-beta") == grpc.StatusCode.OK


class _Stream:
    """A RateCdrs call kept open: one message sent at a time, its reply read (or the call's end)."""

    def __init__(self, s: BillingStack, bearer: str, tenant: str, msisdn: str) -> None:
        self.tenant, self.msisdn = tenant, msisdn
        self.outbox: "queue.Queue[rpb.RateCdrsRequest | None]" = queue.Queue()
        self.channel = grpc.insecure_channel(s.address)
        self.replies = rrpc.RatingServiceStub(self.channel).RateCdrs(self._requests(), metadata=[("authorization", f"Bearer {bearer}")])

    def _requests(self) -> Iterator[rpb.RateCdrsRequest]:
        while (m := self.outbox.get()) is not None:
            yield m

    def send(self) -> tuple[str, grpc.StatusCode]:
        """One CDR sent, stored with the bundle counters: its id and the call's answer to it."""
        start = Timestamp()
        start.FromDatetime(datetime(2026, 6, 9, 12, 0, tzinfo=UTC))
        cdr_id = "rv" + secrets.token_hex(8)
        self.outbox.put(rpb.RateCdrsRequest(cdrs=[mpb.NormalisedCdr(
            cdr_id=cdr_id, source="rv", origin_id=secrets.token_hex(6), service=mpb.CDR_SERVICE_KIND_VOICE,
            direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=start, a_number=self.msisdn, b_number="447700900123",
            duration_seconds=60, tenant_id=self.tenant)], options=rpb.RateOptions(use_bundle_counters=True)))
        try:
            reply = next(self.replies)
            assert [r.cdr_id for r in reply.rated] == [cdr_id]
            return cdr_id, grpc.StatusCode.OK
        except grpc.RpcError as err:
            return cdr_id, err.code()

    def close(self) -> None:
        self.outbox.put(None)
        self.channel.close()


def _stored(s: BillingStack, cdr_id: str) -> bool:
    with s.root.db.connect() as conn:
        return conn.execute(select(usage_ledger.c.cdr_id).where(usage_ledger.c.cdr_id == cdr_id)).first() is not None


def _open_stream(s: BillingStack, tenant: str, plan: str, role: Role, ttl: int = 3600) -> tuple[Any, _Stream]:
    _, msisdn = s.subscriber(tenant, plan, datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))
    token, bearer = s.root.tokens.issue(None, "streamer", tenant, role, ttl)
    return token, _Stream(s, bearer, tenant, msisdn)


def _refused_after(s: BillingStack, stream: _Stream, change: Callable[[], None], code: grpc.StatusCode) -> None:
    """A message stored, then ``change``, then the next message refused with ``code`` and not stored; the stream closed."""
    try:
        first, answer = stream.send()
        assert answer == grpc.StatusCode.OK and _stored(s, first)
        change()
        second, answer = stream.send()
        assert answer == code
        assert not _stored(s, second)
    finally:
        stream.close()


def test_an_open_stream_ends_when_its_token_is_revoked(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    token, stream = _open_stream(s, "mno", "TP_SMART_S", Role.OPERATOR_ADMIN)
    # revoked through this very server
    _refused_after(s, stream, lambda: s.root.tokens.revoke(OPERATOR, token.token_id), grpc.StatusCode.UNAUTHENTICATED)


def test_an_open_stream_ends_when_its_tenant_is_suspended(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    _, stream = _open_stream(s, "mvno-alpha", "TP_ALPHA_SIMPLE", Role.MVNO_ADMIN)
    try:
        _refused_after(s, stream, lambda: s.root.tenants.set_status(OPERATOR, "mvno-alpha", TenantStatus.SUSPENDED, "stream"),
                       grpc.StatusCode.PERMISSION_DENIED)
    finally:
        s.root.tenants.set_status(OPERATOR, "mvno-alpha", TenantStatus.ACTIVE, "stream over")


def test_an_open_stream_checks_its_token_again_every_auth_cache_seconds(billing_stack: BillingStack) -> None:  # noqa: F811
    """A revocation this server does not hear of (made through another replica: its cache is not told) ends the stream
    once ``auth_cache_seconds`` of the server's clock have passed, as it ends a new call's use of the cache."""
    s = billing_stack
    token, stream = _open_stream(s, "mno", "TP_SMART_S", Role.OPERATOR_ADMIN)
    cache = s.root.tokens.cache
    try:
        first, code = stream.send()
        assert code == grpc.StatusCode.OK
        cache.forget_token = lambda token_id: None  # type: ignore[method-assign]   # another replica revokes it
        s.root.tokens.revoke(OPERATOR, token.token_id)
        second, code = stream.send()
        assert code == grpc.StatusCode.OK and _stored(s, second)   # still fresh: within auth_cache_seconds, as documented
        s.at(datetime(2026, 6, 10, 8, 0, tzinfo=UTC) + cache.ttl)
        third, code = stream.send()
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert not _stored(s, third)
    finally:
        del cache.forget_token   # type: ignore[method-assign]
        stream.close()


def test_an_open_stream_ends_when_its_token_expires(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    _, stream = _open_stream(s, "mno", "TP_SMART_S", Role.OPERATOR_ADMIN, ttl=2)
    try:
        first, code = stream.send()
        assert code == grpc.StatusCode.OK
        s.at(datetime(2026, 6, 10, 8, 0, tzinfo=UTC) + timedelta(seconds=2))   # the token's expiry, before the cache's 5 s
        second, code = stream.send()
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert not _stored(s, second)
    finally:
        stream.close()
