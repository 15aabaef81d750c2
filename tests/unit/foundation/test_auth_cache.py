"""The authentication cache (setting ``auth_cache_seconds``): a checked token's principal is reused for a while
without reading the store, but never past its freshness, the token's expiry, a wrong secret, a revocation or a
tenant suspension made through this process.  Time is the injected clock's."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from engine.clock import FixedClock
from engine.errors import PermissionDenied, Unauthenticated
from engine.identity import SYSTEM, Role
from engine.model import TenantStatus
from engine.tenancy import TenantAdmin
from engine.tokens import AuthCache, TokenDesk
from tests.fakes import FakeStore

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
OPERATOR = replace(SYSTEM, tenant_id="mno", subject="op")


class CountingStore(FakeStore):
    """The fake store, counting the units of work opened (each is a read of the token and its tenant)."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0

    def __call__(self, read_only: bool = False):  # type: ignore[no-untyped-def]
        self.opened += 1
        return super().__call__(read_only)


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    store, clock = CountingStore(), FixedClock(T0)
    cache = AuthCache(timedelta(seconds=5))
    admin = TenantAdmin(store, clock, on_status_change=cache.forget_tenant)
    admin.create_mno("mno", "Op", "EUR")
    admin.create_mvno(OPERATOR, "mvno-a", "A", "EUR")
    tokens = TokenDesk(store, clock, 3600, cache)
    return store, clock, admin, tokens


def test_a_checked_token_is_not_read_again_while_fresh(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, _, tokens = world
    _, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    first = tokens.authenticate(bearer)
    reads = store.opened
    for _ in range(100):
        assert tokens.authenticate(bearer) == first
    assert store.opened == reads
    clock.advance(seconds=5)
    assert tokens.authenticate(bearer) == first
    assert store.opened == reads + 1   # stale after the setting's seconds: read again


def test_a_wrong_secret_is_refused_even_when_the_token_is_cached(world) -> None:  # type: ignore[no-untyped-def]
    _, _, _, tokens = world
    token, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    tokens.authenticate(bearer)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(f"rbt_{token.token_id}_not-the-secret")


def test_revocation_here_applies_at_once_and_elsewhere_within_the_freshness(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, _, tokens = world
    token, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    tokens.authenticate(bearer)
    tokens.revoke(OPERATOR, token.token_id)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(bearer)
    # a revocation by another replica: the store changes behind this process's back
    other, bearer2 = tokens.issue(None, "csr2", "mvno-a", Role.CSR)
    tokens.authenticate(bearer2)
    with store() as uow:
        uow.tokens.revoke(other.token_id, clock.now())
        uow.commit()
    tokens.authenticate(bearer2)   # still fresh here
    clock.advance(seconds=5)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(bearer2)


def test_a_suspended_tenants_tokens_are_forgotten(world) -> None:  # type: ignore[no-untyped-def]
    _, _, admin, tokens = world
    _, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    tokens.authenticate(bearer)
    admin.set_status(OPERATOR, "mvno-a", TenantStatus.SUSPENDED, "unpaid")
    with pytest.raises(PermissionDenied):
        tokens.authenticate(bearer)


def test_an_expired_token_is_refused_even_when_fresh_in_the_cache(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, _, tokens = world
    _, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR, ttl_seconds=3)
    tokens.authenticate(bearer)
    clock.advance(seconds=3)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(bearer)


def test_zero_seconds_turns_the_cache_off_and_the_cache_is_bounded() -> None:
    store, clock = CountingStore(), FixedClock(T0)
    TenantAdmin(store, clock).create_mno("mno", "Op", "EUR")
    tokens = TokenDesk(store, clock, 3600, AuthCache(timedelta(0)))
    token, bearer = tokens.issue(None, "op", "mno", Role.OPERATOR_ADMIN)
    reads = store.opened
    tokens.authenticate(bearer)
    tokens.authenticate(bearer)
    assert store.opened == reads + 2
    small = AuthCache(timedelta(seconds=5), max_entries=3)
    principal = tokens.authenticate(bearer)
    for i in range(10):
        small.put(replace(token, token_id=f"t{i}"), principal, T0)
    assert len(small._known) <= 3
