"""The foundation ports (engine/ports.py: tenants, tokens, subscribers, audit) through the in-memory fake the unit
tests use (tests/fakes.py), SQLite and PostgreSQL (store/repositories.py): the same steps must give the same
answers, errors included, and leave the same data."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from engine.identity import ApiToken, Role, TokenApproval
from engine.model import AuditEntry, PaymentType, Subscriber, SubscriberFilter, SubscriberStatus, Tenant, TenantKind, TenantStatus
from engine.ports import AuditFilter, UnitOfWorkFactory
from store.db import make_engine
from store.uow import SqlUnitOfWorkFactory
from tests.fakes import FakeStore
from tests.integration.contract import Steps, Units, assert_same

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def tenant(tid: str, parent: str = "", status: TenantStatus = TenantStatus.ACTIVE) -> Tenant:
    kind = TenantKind.MVNO if parent else TenantKind.MNO
    return Tenant(tid, tid.upper(), kind, status, parent, "EUR", T0, T0)


def subscriber(sid: str, tid: str, msisdn: str, imsi: str, **kw: Any) -> Subscriber:
    values: dict[str, Any] = dict(billing_account="ACC-" + sid, payment_type=PaymentType.PREPAID, status=SubscriberStatus.ACTIVE,
                                  tariff_plan="TP_A", create_time=T0, update_time=T0)
    values.update(kw)
    return Subscriber(sid, tid, msisdn, imsi, **values)


def token(tok: str, tid: str, **kw: Any) -> ApiToken:
    return ApiToken(tok, "subject-" + tok, tid, kw.pop("role", Role.CSR), "hash-" + tok, T0, T0 + timedelta(days=30), **kw)


def scenario(uow: UnitOfWorkFactory) -> list[tuple[str, Any]]:
    step = Steps()
    units = Units(uow)
    write, read = units.write, units.read

    # tenants
    step("add mno", write(lambda u: u.tenants.add(tenant("mno"))))
    step("add alpha", write(lambda u: u.tenants.add(tenant("mvno-alpha", "mno"))))
    step("add beta", write(lambda u: u.tenants.add(tenant("mvno-beta", "mno", TenantStatus.SUSPENDED))))
    step("add alpha again", write(lambda u: u.tenants.add(tenant("mvno-alpha", "mno"))))
    step("get alpha", read(lambda u: u.tenants.get("mvno-alpha")))
    step("get nobody", read(lambda u: u.tenants.get("mvno-gamma")))
    step("update beta", write(lambda u: u.tenants.update(replace(tenant("mvno-beta", "mno"), display_name="Beta 2",
                                                                 update_time=T0 + timedelta(hours=1)))))
    step("list all", read(lambda u: u.tenants.list(None, None, None, 10)))
    step("list visible", read(lambda u: u.tenants.list({"mvno-alpha", "mvno-beta", "ghost"}, None, None, 10)))
    step("list active after", read(lambda u: u.tenants.list(None, TenantStatus.ACTIVE, "mno", 10)))
    step("list page", read(lambda u: u.tenants.list(None, None, None, 2)))
    step("uncommitted add", lambda: _uncommitted(uow, lambda u: u.tenants.add(tenant("mvno-ghost", "mno"))))
    step("ghost not kept", read(lambda u: u.tenants.get("mvno-ghost")))

    # tokens
    step("add t1", write(lambda u: u.tokens.add(token("tok_1", "mno", role=Role.OPERATOR_ADMIN))))
    step("add t2", write(lambda u: u.tokens.add(token("tok_2", "mvno-alpha", privileges=frozenset({"voucher.reveal_pin", "a.b"})))))
    step("add t3", write(lambda u: u.tokens.add(token("tok_3", "mvno-beta"))))
    step("add t2 again", write(lambda u: u.tokens.add(token("tok_2", "mvno-alpha"))))
    step("revoke t3", write(lambda u: u.tokens.revoke("tok_3", T0 + timedelta(hours=2))))
    step("revoke t3 again", write(lambda u: u.tokens.revoke("tok_3", T0 + timedelta(hours=4))))   # False: the first time stays
    # dual control (0003_token_approval): a pending token stored with its issuer, then decided; the issuer never changes
    step("add t4 pending", write(lambda u: u.tokens.add(token("tok_4", "mno", approval=TokenApproval.PENDING, issued_by="alice",
                                                              issued_by_token="tok_1", approval_expire_time=T0 + timedelta(days=1)))))
    step("approve t4", write(lambda u: u.tokens.decide(replace(
        token("tok_4", "mno", issued_by="mallory"), approval=TokenApproval.APPROVED, decided_by="bob", decided_by_token="tok_9",
        decide_time=T0 + timedelta(hours=3), approval_hash="b" * 64))))
    # decided once: a second decision (a concurrent rejection) changes nothing and says so
    step("reject t4 after", write(lambda u: u.tokens.decide(replace(token("tok_4", "mno"), approval=TokenApproval.REJECTED,
                                                                    decided_by="carol", decide_time=T0 + timedelta(hours=4)))))
    step("add t5 pending", write(lambda u: u.tokens.add(token("tok_5", "mno", approval=TokenApproval.PENDING, issued_by="alice",
                                                              approval_expire_time=T0 + timedelta(days=1)))))
    step("revoke t5", write(lambda u: u.tokens.revoke("tok_5", T0 + timedelta(hours=1))))
    step("approve t5 after", write(lambda u: u.tokens.decide(replace(token("tok_5", "mno"), approval=TokenApproval.APPROVED,
                                                                     decided_by="bob", decide_time=T0 + timedelta(hours=3)))))
    step("get t5", read(lambda u: u.tokens.get("tok_5")))
    step("get t4", read(lambda u: u.tokens.get("tok_4")))
    step("get t2", read(lambda u: u.tokens.get("tok_2")))
    step("get none", read(lambda u: u.tokens.get("tok_9")))
    step("list live", read(lambda u: u.tokens.list(None, False, None, 10)))
    step("list with revoked", read(lambda u: u.tokens.list(None, True, None, 10)))
    step("list tenant after", read(lambda u: u.tokens.list({"mno", "mvno-beta"}, True, "tok_1", 10)))

    # subscribers
    step("add s1", write(lambda u: u.subscribers.add(subscriber("sub_1", "mno", "4917000000001", "262010000000001",
                                                                barring_flags=("bar_premium", "bar_international"),
                                                                credit_limit_micros=50_000_000, credit_currency="EUR"))))
    step("add s2", write(lambda u: u.subscribers.add(subscriber("sub_2", "mvno-alpha", "4917000000002", "262010000000002",
                                                                payment_type=PaymentType.POSTPAID, tariff_plan="TP_B"))))
    step("add s3", write(lambda u: u.subscribers.add(subscriber("sub_3", "mvno-alpha", "3361000000003", "208010000000003",
                                                                status=SubscriberStatus.SUSPENDED, billing_account="ACC-SHARED"))))
    step("msisdn in use", write(lambda u: u.subscribers.add(subscriber("sub_4", "mno", "4917000000001", "262010000000004"))))
    step("imsi in use", write(lambda u: u.subscribers.add(subscriber("sub_5", "mno", "4917000000005", "262010000000002"))))
    step("deactivate s1", write(lambda u: u.subscribers.update(replace(u.subscribers.get("sub_1"), status=SubscriberStatus.DEACTIVATED,
                                                                       deactivate_time=T0 + timedelta(days=1)))))
    step("reuse s1's msisdn", write(lambda u: u.subscribers.add(subscriber("sub_6", "mno", "4917000000001", "262010000000001",
                                                                           activate_time=T0 + timedelta(days=2)))))
    step("take s3's msisdn by update", write(lambda u: u.subscribers.update(replace(u.subscribers.get("sub_2"), msisdn="3361000000003"))))
    step("get s1", read(lambda u: u.subscribers.get("sub_1")))
    step("live by msisdn", read(lambda u: u.subscribers.get_live_by_msisdn("4917000000001")))
    step("live by imsi", read(lambda u: u.subscribers.get_live_by_imsi("262010000000002")))
    step("live by nothing", read(lambda u: u.subscribers.get_live_by_msisdn("4917999999999")))
    step("live by many", read(lambda u: u.subscribers.get_live_by_msisdns(["4917000000001", "4917000000002", "3361000000003", "1"])))
    filters = {
        "all": SubscriberFilter(),
        "tenant": SubscriberFilter(tenant_ids={"mvno-alpha"}),
        "status": SubscriberFilter(status=SubscriberStatus.ACTIVE),
        "payment type": SubscriberFilter(payment_type=PaymentType.POSTPAID),
        "plan": SubscriberFilter(tariff_plan="TP_B"),
        "account": SubscriberFilter(billing_account="ACC-SHARED"),
        "prefix": SubscriberFilter(msisdn_prefix="4917"),
        "prefix with a wildcard": SubscriberFilter(msisdn_prefix="49_7"),
        "everything at once": SubscriberFilter(tenant_ids={"mno", "mvno-alpha"}, status=SubscriberStatus.ACTIVE, msisdn_prefix="49"),
    }
    for name, flt in filters.items():
        step(f"list {name}", read(lambda u, flt=flt: u.subscribers.list(flt, None, 10)))
    step("list after, limited", read(lambda u: u.subscribers.list(SubscriberFilter(), "sub_1", 2)))

    # audit
    entries = [
        AuditEntry(T0, "alice", "mno", "operator_admin", "tenant.create", "tenant", "mvno-alpha", {}, {"status": "active"}, "r1", "mvno-alpha"),
        AuditEntry(T0 + timedelta(seconds=1), "bob", "mvno-alpha", "csr", "subscriber.bar", "subscriber", "sub_2",
                   {"barring_flags": []}, {"barring_flags": ["bar_premium"], "until": T0 + timedelta(days=1), "n": 3}, "", "mvno-alpha"),
        AuditEntry(T0 + timedelta(seconds=2), "carol", "mno", "operator_admin", "tenant.update", "tenant", "mvno-beta", {"display_name": "B"},
                   {"display_name": "Beta 2"}, "r3", "mvno-beta"),
    ]
    for i, e in enumerate(entries):
        step(f"append {i}", write(lambda u, e=e: u.audit.append(e)))
    step("audit all", read(lambda u: u.audit.list(AuditFilter(), None, 10)))
    step("audit tenant", read(lambda u: u.audit.list(AuditFilter(tenant_ids={"mvno-alpha"}), None, 10)))
    step("audit object", read(lambda u: u.audit.list(AuditFilter(object_type="tenant", object_id="mvno-beta"), None, 10)))
    step("audit after", read(lambda u: [e.action for e in u.audit.list(AuditFilter(), 1, 1)]))
    step("audit entry and subscriber together", lambda: _uncommitted(uow, lambda u: (
        u.subscribers.update(replace(u.subscribers.get("sub_2"), tariff_plan="TP_X")),
        u.audit.append(replace(entries[0], action="never")))))
    step("neither kept", read(lambda u: (u.subscribers.get("sub_2").tariff_plan, [e.action for e in u.audit.list(AuditFilter(), None, 10)])))
    return step.out


def _uncommitted(uow: UnitOfWorkFactory, fn: Any) -> str:
    """A unit that does its work and ends without commit (a failed call): nothing of it may be kept."""
    with uow() as unit:
        fn(unit)
    return "left"


def _sequences_blank(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    # audit sequences are the database's to number (gaps allowed); their order is checked by "audit after"
    def blank(v: Any) -> Any:
        if isinstance(v, list):
            return [blank(x) for x in v]
        return replace(v, sequence=0) if isinstance(v, AuditEntry) else v
    return [(name, blank(v)) for name, v in steps]


def test_fake_and_sql_foundation_stores_agree(db_url: str) -> None:
    expected = _sequences_blank(scenario(FakeStore()))
    engine = make_engine(db_url)
    try:
        got = _sequences_blank(scenario(SqlUnitOfWorkFactory(engine)))
    finally:
        engine.dispose()
    assert_same(expected, got, db_url.split(":")[0])
    answers = dict(expected)  # the scenario reaches every answer the ports give
    assert answers["add alpha again"] == ("AlreadyExists", "", "tenant")
    assert answers["add t2 again"] == ("AlreadyExists", "", "token")
    assert answers["msisdn in use"] == answers["imsi in use"] == answers["take s3's msisdn by update"] == ("AlreadyExists", "", "subscriber")
    assert answers["reuse s1's msisdn"] is None
    assert answers["neither kept"] == ("TP_B", ["tenant.create", "subscriber.bar", "tenant.update"])
    assert answers["ghost not kept"] is None
