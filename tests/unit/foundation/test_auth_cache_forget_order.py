"""The auth cache's readers take no lock, so a forget's steps must be ordered for a reader that runs between two of
them: a check that still finds a token's entry while it is being revoked (or its tenant suspended) must hold a mark
taken before the stamp, so the open call is refused at its next recheck; a recheck that runs while the stamps are let
go (their bound reached) must still see the token as forgotten.  Each test holds the forgetting thread between two
of its steps (an Event inside the cache's own dict operation) and runs the reader there."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

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


def _desk(max_entries: int = 10_000) -> tuple[TokenDesk, TenantAdmin, AuthCache]:
    store, clock = FakeStore(), FixedClock(T0)
    cache = AuthCache(timedelta(seconds=5), max_entries=max_entries)
    admin = TenantAdmin(store, clock, on_status_change=cache.forget_tenant)
    admin.create_mno("mno", "Op", "EUR")
    admin.create_mvno(OPERATOR, "mvno-a", "A", "EUR")
    return TokenDesk(store, clock, 3600, cache), admin, cache


class _Held(dict[str, Any]):
    """A dict whose ``method`` stops the calling thread (the forgetting one) until released."""

    def __init__(self, items: dict[str, Any], method: str) -> None:
        super().__init__(items)
        self.method, self.inside, self.go = method, threading.Event(), threading.Event()

    def _hold(self) -> None:
        self.inside.set()
        assert self.go.wait(30), "the reader never released the forgetting thread"

    def pop(self, *args: Any) -> Any:
        if self.method == "pop":
            self._hold()
        return super().pop(*args)

    def clear(self) -> None:
        super().clear()
        if self.method == "clear":
            self._hold()


def _between(held: _Held, forget: Callable[[], None], read: Callable[[], Any]) -> Any:
    """Run ``forget`` on a thread, ``read`` while that thread is held inside ``held``'s method; the read's outcome."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            forget()
        except BaseException as exc:   # reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.inside.wait(30), "the forget never reached the held step"
    try:
        return read()
    finally:
        held.go.set()
        thread.join(30)
        assert not thread.is_alive() and not errors, errors


@pytest.mark.parametrize("forget", ["revoke", "suspend"])
def test_a_check_during_the_forget_is_refused_at_its_recheck(forget: str) -> None:
    tokens, admin, cache = _desk()
    token, bearer = tokens.issue(None, "csr", "mvno-a", Role.CSR)
    tokens.check(bearer)   # cached
    cache._known = held = _Held(cache._known, "pop")
    do = ((lambda: tokens.revoke(OPERATOR, token.token_id)) if forget == "revoke"
          else (lambda: admin.set_status(OPERATOR, "mvno-a", TenantStatus.SUSPENDED)))
    during = _between(held, do, lambda: tokens.check(bearer))
    assert during.principal.subject == "csr"   # the entry was still there: the call overlapped the forget
    with pytest.raises(Unauthenticated if forget == "revoke" else PermissionDenied):
        tokens.recheck(bearer, during)


def test_a_recheck_while_the_stamps_are_let_go_still_refuses_a_revoked_token() -> None:
    tokens, _admin, cache = _desk(max_entries=3)
    issued = [tokens.issue(None, f"u{i}", "mvno-a", Role.CSR) for i in range(3)]
    (a, bearer_a), (b, _), (c, _) = issued
    stream = tokens.check(bearer_a)
    tokens.revoke(OPERATOR, a.token_id)
    tokens.revoke(OPERATOR, b.token_id)
    cache.forget_tenant("other")   # three stamps: the next forget lets them go and raises the floor
    cache._tenant_stamps = held = _Held(cache._tenant_stamps, "clear")

    def recheck() -> str:
        try:
            tokens.recheck(bearer_a, stream)
        except Unauthenticated:
            return "refused"
        return "let through"

    assert _between(held, lambda: tokens.revoke(OPERATOR, c.token_id), recheck) == "refused"
