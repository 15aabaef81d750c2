"""The auth cache's forget counter: what an authentication read before a token or tenant was forgotten is never kept
after it (``AuthCache.put`` with the mark taken before the read), and ``TokenDesk.recheck`` (an open stream's check
between messages) reads again once the cache's freshness passed, the token expired, or it or its tenant was
forgotten.  Any interleaving of marks, forgets and puts, with the stamps' bound let go or not (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from engine.clock import FixedClock
from engine.errors import PermissionDenied, Unauthenticated
from engine.identity import SYSTEM, ApiToken, Principal, Role
from engine.model import TenantStatus
from engine.tenancy import TenantAdmin
from engine.tokens import AuthCache, TokenDesk
from tests.fakes import FakeStore

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
OPERATOR = replace(SYSTEM, tenant_id="mno", subject="op")
TOKENS, TENANTS = ["t0", "t1", "t2"], ["a", "b"]


def _token(token_id: str, tenant: str) -> tuple[ApiToken, Principal]:
    token = ApiToken(token_id, "s", tenant, Role.CSR, "h", T0, T0 + timedelta(days=1))
    return token, Principal("s", tenant, Role.CSR, token_id)


ops = st.lists(st.one_of(
    st.tuples(st.just("mark")),
    st.tuples(st.just("forget_token"), st.sampled_from(TOKENS)),
    st.tuples(st.just("forget_tenant"), st.sampled_from(TENANTS)),
    st.tuples(st.just("put"), st.sampled_from(TOKENS), st.sampled_from(TENANTS), st.integers(0, 20)),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(ops, st.sampled_from([2, 10_000]))
def test_a_read_begun_before_a_forget_is_never_kept(steps: list[tuple], bound: int) -> None:  # type: ignore[type-arg]
    cache = AuthCache(timedelta(seconds=5), max_entries=bound)
    marks: list[tuple[int, int]] = []              # (step, the cache's mark then)
    forgets: list[tuple[int, str, str]] = []       # (step, "token" or "tenant", which): the model
    for when, step in enumerate(steps):
        if step[0] == "mark":
            marks.append((when, cache.mark()))
        elif step[0] == "forget_token":
            cache.forget_token(step[1])
            forgets.append((when, "token", step[1]))
        elif step[0] == "forget_tenant":
            cache.forget_tenant(step[1])
            forgets.append((when, "tenant", step[1]))
        elif marks:
            _, token_id, tenant, which = step
            read_at, mark = marks[which % len(marks)]
            stale = any(at > read_at and name == (token_id if kind == "token" else tenant) for at, kind, name in forgets)
            token, principal = _token(token_id, tenant)
            cache.put(token, principal, T0, mark)
            got = cache._known.get(token_id)   # noqa: SLF001 - what the cache holds
            if stale:
                assert got is None or got.principal is not principal, "a principal read before a forget was kept"
            elif bound > 100:
                assert got is not None and got.principal is principal   # nothing let go: a fresh read is kept


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    store, clock = FakeStore(), FixedClock(T0)
    cache = AuthCache(timedelta(seconds=5))
    admin = TenantAdmin(store, clock, on_status_change=cache.forget_tenant)
    admin.create_mno("mno", "Op", "EUR")
    admin.create_mvno(OPERATOR, "mvno-a", "A", "EUR")
    return store, clock, admin, TokenDesk(store, clock, 3600, cache)


def test_recheck_reads_again_only_when_something_changed(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, admin, tokens = world
    token, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    checked = tokens.check(bearer)
    assert tokens.recheck(bearer, checked) is checked           # nothing changed, still fresh
    with store() as uow:                                         # revoked behind this process's back (another replica)
        uow.tokens.revoke(token.token_id, clock.now())
        uow.commit()
    clock.advance(seconds=4)
    assert tokens.recheck(bearer, checked) is checked
    clock.advance(seconds=1)                                     # auth_cache_seconds passed: read again
    with pytest.raises(Unauthenticated):
        tokens.recheck(bearer, checked)


def test_recheck_follows_a_forget_at_once(world) -> None:  # type: ignore[no-untyped-def]
    _, _, admin, tokens = world
    token, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    other, other_bearer = tokens.issue(None, "csr2", "mvno-a", Role.CSR)
    checked, other_checked = tokens.check(bearer), tokens.check(other_bearer)
    tokens.revoke(OPERATOR, token.token_id)
    with pytest.raises(Unauthenticated):
        tokens.recheck(bearer, checked)
    assert tokens.recheck(other_bearer, other_checked) is other_checked   # another token: untouched
    admin.set_status(OPERATOR, "mvno-a", TenantStatus.SUSPENDED, "unpaid")
    with pytest.raises(PermissionDenied):
        tokens.recheck(other_bearer, other_checked)


def test_recheck_at_the_tokens_expiry(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, _, tokens = world
    _, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR, ttl_seconds=2)
    checked = tokens.check(bearer)
    clock.advance(seconds=2)
    with pytest.raises(Unauthenticated):
        tokens.recheck(bearer, checked)
