"""Use cases of the foundation against in-memory fakes: fast, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from engine.clock import FixedClock
from engine.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from engine.identity import SYSTEM, Role
from engine.paging import page_request
from engine.subscribers import NewSubscriber, PaymentType, SubscriberDesk, SubscriberFilter, SubscriberStatus
from engine.tenancy import TenantAdmin
from engine.tokens import TokenDesk
from tests.fakes import FakeStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    store, clock = FakeStore(), FixedClock(T0)
    admin = TenantAdmin(store, clock)
    admin.create_mno("mno", "Op", "EUR")
    op = replace(SYSTEM, tenant_id="mno", subject="op")
    admin.create_mvno(op, "mvno-a", "A", "EUR")
    admin.create_mvno(op, "mvno-b", "B", "EUR")
    tokens = TokenDesk(store, clock, 3600)
    desk = SubscriberDesk(store, clock)

    def principal(tenant: str, role: Role = Role.MVNO_ADMIN):  # type: ignore[no-untyped-def]
        return tokens.authenticate(tokens.issue(None, f"u-{tenant}", tenant, role)[1])

    return store, clock, admin, tokens, desk, principal


def _new(msisdn: str = "4917012345678", imsi: str = "262011234567890", tenant: str = "") -> NewSubscriber:
    return NewSubscriber(tenant, msisdn, imsi, "ACC", PaymentType.POSTPAID, "TP_X")


def test_failed_use_case_commits_nothing(world) -> None:  # type: ignore[no-untyped-def]
    store, _, _, _, desk, principal = world
    a = principal("mvno-a")
    commits = store.commits
    with pytest.raises(InvalidArgument) as err:
        desk.provision(a, _new(msisdn="12", imsi="x"))
    assert {v.field for v in err.value.violations} == {"msisdn", "imsi"}
    assert store.commits == commits


def test_subscriber_state_machine_and_isolation(world) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, desk, principal = world
    a, b = principal("mvno-a"), principal("mvno-b")
    s = desk.provision(a, _new())
    with pytest.raises(AlreadyExists):
        desk.provision(b, _new(imsi="262019999999999"))
    with pytest.raises(NotFound):
        desk.get(b, s.subscriber_id)
    with pytest.raises(PermissionDenied):
        desk.provision(b, _new(msisdn="4917099999999", imsi="262010000000001", tenant="mvno-a"))
    with pytest.raises(FailedPrecondition) as err:
        desk.transition(a, s.subscriber_id, "suspend")
    assert err.value.reason == "SUBSCRIBER_STATE"
    assert desk.transition(a, s.subscriber_id, "activate").status is SubscriberStatus.ACTIVE
    listed = desk.list(b, SubscriberFilter(), page_request(0, "", "subscribers", str))
    assert listed == []


def test_tokens_expire_and_revoke(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, _, tokens, _, _ = world
    token, bearer = tokens.issue(None, "x", "mvno-a", Role.CSR, 60)
    assert tokens.authenticate(bearer).role is Role.CSR
    clock.advance(seconds=61)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(bearer)
    _, bearer2 = tokens.issue(None, "y", "mvno-a", Role.CSR)
    tokens.revoke(replace(SYSTEM, tenant_id="mno"), bearer2.split("_")[1])
    with pytest.raises(Unauthenticated):
        tokens.authenticate(bearer2)
    with pytest.raises(Unauthenticated):
        tokens.authenticate("rbt_" + token.token_id + "_wrongsecret")


def test_operator_only_roles_are_refused_for_mvnos(world) -> None:  # type: ignore[no-untyped-def]
    _, _, _, tokens, _, _ = world
    with pytest.raises(FailedPrecondition):
        tokens.issue(None, "x", "mvno-a", Role.OPERATOR_ADMIN)
    with pytest.raises(FailedPrecondition):
        tokens.issue(None, "x", "mno", Role.MVNO_ADMIN)


def test_the_audit_log_is_read_within_the_callers_scope(world) -> None:  # type: ignore[no-untyped-def]
    from engine.audit import AuditDesk

    store, _, _, _, desk, principal = world
    a, b, op = principal("mvno-a"), principal("mvno-b"), principal("mno", Role.OPERATOR_ADMIN)
    desk.provision(a, _new())
    desk.provision(b, _new(msisdn="4917012345679", imsi="262011234567891"))
    log = AuditDesk(store)
    page = page_request(0, "", "audit", int)
    assert {e.object_tenant_id for e in log.list(a, "", "subscriber", "", page)} == {"mvno-a"}
    assert {e.object_tenant_id for e in log.list(op, "", "subscriber", "", page)} == {"mvno-a", "mvno-b"}
    assert {e.object_tenant_id for e in log.list(op, "mvno-b", "", "", page)} == {"mvno-b"}
    with pytest.raises(PermissionDenied, match="may not act on tenant mvno-b"):
        log.list(a, "mvno-b", "", "", page)
    with pytest.raises(PermissionDenied, match="audit.read"):
        log.list(principal("mvno-a", Role.CSR), "", "", "", page)


def test_before_any_plan_set_a_credit_limit_is_in_the_tenants_currency(world) -> None:  # type: ignore[no-untyped-def]
    store, _, _, _, desk, principal = world
    a = principal("mvno-a")
    s = desk.provision(a, _new())
    commits = store.commits
    with pytest.raises(InvalidArgument) as err:
        desk.set_credit_limit(a, s.subscriber_id, 20_000_000, "GBP")
    assert [(v.field, "EUR" in v.description) for v in err.value.violations] == [("credit_limit.currency", True)]
    assert store.commits == commits
    assert desk.set_credit_limit(a, s.subscriber_id, 20_000_000, "EUR").credit_currency == "EUR"
