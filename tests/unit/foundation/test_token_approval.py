"""The two-person rule of engine.tokens, on the fake store: who may decide a pending token, and what its secret's two
halves do.  The wire, the databases and the auth cache across replicas: tests/integration/test_token_approval.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from engine.clock import FixedClock
from engine.errors import FailedPrecondition, PermissionDenied, Unauthenticated
from engine.identity import SYSTEM, Principal, Role, TokenApproval, bearer_secret_matches, hash_secret
from engine.tenancy import TenantAdmin
from engine.tokens import AuthCache, TokenDesk
from tests.fakes import FakeStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
OPERATOR = replace(SYSTEM, tenant_id="mno", subject="op")


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    store, clock = FakeStore(), FixedClock(T0)
    admin = TenantAdmin(store, clock)
    admin.create_mno("mno", "Op", "EUR")
    admin.create_mvno(OPERATOR, "mvno-a", "A", "EUR")
    return clock, TokenDesk(store, clock, 30 * 86400, AuthCache(timedelta(seconds=5)), approval_seconds=600)


def _officer(tokens: TokenDesk, subject: str) -> Principal:
    return tokens.authenticate(tokens.issue_security_officer(subject)[1])


def test_what_an_officer_issues_is_pending_and_what_the_host_or_an_administrator_issues_is_not(world) -> None:  # type: ignore[no-untyped-def]
    _, tokens = world
    alice = _officer(tokens, "alice")
    assert tokens.issue_security_officer("bob")[0].approval is TokenApproval.NOT_REQUIRED
    assert tokens.issue(OPERATOR, "clerk", "mvno-a", Role.CSR)[0].approval is TokenApproval.NOT_REQUIRED
    for role, privileges in ((Role.CSR, {"voucher.reveal_pin"}), (Role.AUDITOR, {"voucher.reveal_pin"}), (Role.SECURITY_OFFICER, set())):
        token, _ = tokens.issue(alice, "someone", "mno", role, privileges=frozenset(privileges))
        assert (token.approval, token.issued_by, token.issued_by_token) == (TokenApproval.PENDING, "alice", alice.token_id)
        assert token.approval_expire_time == T0 + timedelta(seconds=600)


def test_the_issuer_the_grantee_and_the_token_itself_cannot_decide(world) -> None:  # type: ignore[no-untyped-def]
    _, tokens = world
    alice, bob = _officer(tokens, "alice"), _officer(tokens, "bob")
    token, _ = tokens.issue(alice, "carol", "mno", Role.CSR, privileges=frozenset({"voucher.reveal_pin"}))
    for decide in (lambda who: tokens.approve(who, token.token_id), lambda who: tokens.reject(who, token.token_id)):
        # the issuer by its token even under another name, by its name (any case) under another token
        with pytest.raises(PermissionDenied, match="two-person rule"):
            decide(replace(bob, token_id=alice.token_id))
        with pytest.raises(PermissionDenied, match="two-person rule"):
            decide(replace(bob, subject=" ALICE "))
        with pytest.raises(PermissionDenied, match="issued to themselves"):
            decide(replace(bob, subject="Carol"))
        with pytest.raises(PermissionDenied, match="cannot (approve|reject) itself"):
            decide(replace(bob, token_id=token.token_id))
        with pytest.raises(PermissionDenied, match="only a security officer of the operator"):
            decide(replace(bob, is_operator=False))
        with pytest.raises(PermissionDenied, match="only a security officer of the operator"):
            decide(replace(OPERATOR, privileges=frozenset({"voucher.reveal_pin"})))
    assert tokens.approve(bob, token.token_id)[0].approval is TokenApproval.APPROVED


def test_the_two_halves_work_only_together_and_only_once_approved(world) -> None:  # type: ignore[no-untyped-def]
    clock, tokens = world
    alice, bob = _officer(tokens, "alice"), _officer(tokens, "bob")
    token, first = tokens.issue(alice, "carol", "mno", Role.CSR, privileges=frozenset({"voucher.reveal_pin"}))
    with pytest.raises(Unauthenticated, match="awaits approval"):
        tokens.authenticate(first)
    _, second = tokens.approve(bob, token.token_id)
    with pytest.raises(Unauthenticated, match="unknown bearer"):
        tokens.authenticate(first)
    with pytest.raises(Unauthenticated, match="unknown bearer"):
        tokens.authenticate(f"{first}.{second}x")
    assert tokens.authenticate(f"{first}.{second}").privileges == {"voucher.reveal_pin"}
    clock.advance(seconds=601)   # past the approval deadline: an approved token is not affected
    assert tokens.authenticate(f"{first}.{second}").subject == "carol"
    assert tokens.authenticate(f"{first}.{second}").subject == "carol"   # the cached entry checks both halves too
    with pytest.raises(Unauthenticated):
        tokens.authenticate(f"{first}.")


def test_an_expired_request_cannot_be_approved(world) -> None:  # type: ignore[no-untyped-def]
    clock, tokens = world
    alice, bob = _officer(tokens, "alice"), _officer(tokens, "bob")
    token, first = tokens.issue(alice, "carol", "mno", Role.CSR, privileges=frozenset({"voucher.reveal_pin"}))
    clock.advance(seconds=600)
    with pytest.raises(FailedPrecondition, match="expired"):
        tokens.approve(bob, token.token_id)
    with pytest.raises(Unauthenticated, match="approval request expired"):
        tokens.authenticate(first)


def test_half_secrets_compare_each_half_to_its_own_hash() -> None:
    a, b = hash_secret("first"), hash_secret("second")
    assert bearer_secret_matches("first.second", a, b)
    assert not bearer_secret_matches("first", a, b) and not bearer_secret_matches("second.first", a, b)
    assert not bearer_secret_matches("firstsecond", a, b)
    assert bearer_secret_matches("first", a, "") and not bearer_secret_matches("first.second", a, "")


def test_the_approval_time_is_bounded() -> None:
    with pytest.raises(ValueError, match="token_approval_seconds"):
        TokenDesk(FakeStore(), FixedClock(T0), 3600, approval_seconds=0)
