"""The recharge contract: one scenario through the in-memory store (engine.vouchers.redemption decides), SQLite
(the same decision, three statements) and PostgreSQL (the stored functions of vouchers_0003/0004) -- every answer,
counter, balance, voucher state, reservation and audit entry must be the same."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.clock import FixedClock
from engine.errors import DomainError
from engine.identity import SYSTEM, Principal, Role
from engine.ports import AuditFilter
from engine.settings import Settings
from engine.subscribers import NewSubscriber, PaymentType
from engine.vouchers.generation import BatchRequest
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.pins import luhn_check_digit
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.profile import load_profiles
from engine.vouchers.rules import load_voucher_rules
from engine.vouchers.settings import VoucherSettings
from servers.bootstrap import bootstrap
from servers.root import build_root
from tests.unit.vouchers.factories import REPO, World, build_world
from tests.unit.vouchers.fakes import FakeVoucherStore, RecordingLifecycle

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
ADMIN = Principal("contract-admin", "mno", Role.OPERATOR_ADMIN, is_operator=True)
REVEAL = Principal("contract-print", "mno", Role.OPERATOR_ADMIN, is_operator=True, privileges=frozenset({"voucher.reveal_pin"}))
CSR = Principal("contract-csr", "mno", Role.CSR, is_operator=True)
ALPHA_CSR = Principal("contract-alpha", "mvno-alpha", Role.CSR)
BETA_CSR = Principal("contract-beta", "mvno-beta", Role.CSR)
A, B, C, NOBODY, D = "4917011111111", "4917022222222", "4917033333333", "4917044444444", "4917055555555"
SUBSCRIBERS = ((A, "mno"), (B, "mno"), (C, "mvno-alpha"), (D, "mvno-beta"))


def _wrong(pin: str, i: int) -> str:
    payload = ("1" if pin[0] != "1" else "2") + pin[1:12] + f"{i:03d}"
    return payload + luhn_check_digit(payload)


def _random_ids_blank(value: Any) -> Any:
    """Batch and transaction ids are random per store; everything else must match."""
    for name in ("batch_id", "transaction_id"):
        if hasattr(value, name):
            value = replace(value, **{name: ""})
    return value


def _on_sale(desk: Any, profile: str, count: int) -> dict[int, str]:
    """A new active batch's PINs by serial."""
    batch = desk.generate_batch(ADMIN, BatchRequest(profile, count))
    desk.change_batch(ADMIN, batch.batch_id, "activate")
    return {r.voucher.serial: r.pin for chunk in desk.stream_vouchers(REVEAL, VoucherSelection(batch_id=batch.batch_id), reveal=True)
            for r in chunk}


def scenario(desk: Any, recharger: Any, clock: FixedClock) -> list[Any]:
    """Every outcome of redemption and reservation, in an order where each depends on the ones before."""
    first = desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 8))
    desk.change_batch(ADMIN, first.batch_id, "activate")
    pins = {r.voucher.serial: r.pin for chunk in desk.stream_vouchers(REVEAL, VoucherSelection(batch_id=first.batch_id), reveal=True)
            for r in chunk}
    short = desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-5", 1, expires_at=T0 + timedelta(hours=30)))
    desk.change_batch(ADMIN, short.batch_id, "activate")
    short_pin = next(r.pin for chunk in desk.stream_vouchers(REVEAL, VoucherSelection(batch_id=short.batch_id), reveal=True)
                     for r in chunk)
    out: list[Any] = []

    def step(name: str, fn: Callable[[], Any]) -> None:
        try:
            value = fn()
        except DomainError as exc:
            value = (type(exc).__name__, getattr(exc, "reason", ""), exc.message)
        else:
            value = _random_ids_blank(value)
        out.append((name, value))

    redeem, reserve = recharger.redeem, recharger.reserve
    step("redeem", lambda: redeem(CSR, A, pins[1], "r1"))
    step("replay", lambda: redeem(CSR, A, pins[1], "r1"))
    step("same id, other PIN", lambda: redeem(CSR, A, pins[2], "r1"))
    step("same id, other subscriber", lambda: redeem(CSR, B, pins[1], "r1"))
    step("own used voucher", lambda: redeem(CSR, A, pins[1], "r2"))
    step("someone else's used voucher", lambda: redeem(CSR, B, pins[1], "r3"))
    step("another tenant's voucher", lambda: redeem(ALPHA_CSR, C, pins[2], "r4"))
    step("nobody", lambda: redeem(CSR, NOBODY, pins[2], "r5"))
    step("check digit", lambda: redeem(CSR, B, pins[2][:-1] + str((int(pins[2][-1]) + 1) % 10), "r6"))
    for i in range(3):
        step(f"wrong {i}", lambda i=i: redeem(CSR, B, _wrong(pins[2], i), f"r7-{i}"))
    step("barred, right PIN", lambda: redeem(CSR, B, pins[3], "r8"))
    clock.advance(hours=24, seconds=1)
    step("after the bar", lambda: redeem(CSR, B, pins[3], "r9"))
    step("reserve", lambda: reserve(CSR, A, pins[4], "s1"))
    step("reserve again", lambda: reserve(CSR, A, pins[4], "s1"))
    step("redeem own reserved", lambda: redeem(CSR, A, pins[4], "r10"))
    step("reserve someone else's reserved", lambda: reserve(CSR, B, pins[4], "s2"))
    step("commit", lambda: recharger.commit(CSR, "s1"))
    step("commit again", lambda: recharger.commit(CSR, "s1"))
    step("release committed", lambda: recharger.release(CSR, "s1"))
    step("reserve 2", lambda: reserve(CSR, A, pins[5], "s3"))
    step("release", lambda: recharger.release(CSR, "s3", reason="hung up"))
    step("release again", lambda: recharger.release(CSR, "s3"))
    step("commit released", lambda: recharger.commit(CSR, "s3"))
    step("reservation id as redemption id", lambda: redeem(CSR, A, pins[5], "s3"))
    step("unknown reservation", lambda: recharger.commit(CSR, "nope"))
    step("another tenant's reservation", lambda: recharger.commit(ALPHA_CSR, "s1"))
    clock.advance(hours=6)
    step("expired", lambda: redeem(CSR, A, short_pin, "r11"))
    desk.change_batch(ADMIN, first.batch_id, "block")
    step("blocked batch", lambda: redeem(CSR, A, pins[6], "r12"))
    step("reserve in blocked batch", lambda: reserve(CSR, A, pins[7], "s4"))
    # request and reservation ids are per tenant (the subscriber's): mno used r1 and s1 above
    alpha, beta = list(_on_sale(desk, "vp-alpha-eur-10", 3).values()), list(_on_sale(desk, "vp-beta-eur-20", 1).values())
    step("another tenant's replay", lambda: redeem(ALPHA_CSR, A, pins[1], "r1"))
    step("another tenant's request id", lambda: redeem(ALPHA_CSR, C, alpha[0], "r1"))
    step("its own replay", lambda: redeem(ALPHA_CSR, C, alpha[0], "r1"))
    step("its own id, other PIN", lambda: redeem(ALPHA_CSR, C, alpha[1], "r1"))
    step("another tenant's reservation id", lambda: reserve(ALPHA_CSR, C, alpha[1], "s1"))
    step("its own reservation", lambda: recharger.commit(ALPHA_CSR, "s1"))
    step("the operator's own first", lambda: recharger.commit(CSR, "s1"))
    step("reserve in alpha", lambda: reserve(ALPHA_CSR, C, alpha[2], "s9"))
    step("reserve in beta", lambda: reserve(BETA_CSR, D, beta[0], "s9"))
    step("the operator: which tenant", lambda: recharger.commit(CSR, "s9"))
    step("the operator names it", lambda: recharger.commit(CSR, "s9", "mvno-beta"))
    step("alpha names beta", lambda: recharger.release(ALPHA_CSR, "s9", tenant_id="mvno-beta"))
    step("alpha's own", lambda: recharger.release(ALPHA_CSR, "s9", reason="hung up"))
    return out


def state(uow_factory: Any) -> Any:
    with uow_factory() as uow:
        repo = uow.vouchers
        guards = [repo.get_recharge_guard(m) for m in (A, B, C, NOBODY, D)]
        vouchers = [(v.serial, v.state.value, v.redeemed_by, v.redemption_request_id, v.redeemed_at)
                    for chunk in repo.stream_vouchers(VoucherSelection(first_serial=1, last_serial=100), 100) for v in chunk]
        ledger = [_random_ids_blank(repo.get_redemption(t, r)) for t, r in (("mno", "r1"), ("mno", "r9"), ("mno", "s1"),
                                                                          ("mvno-alpha", "r1"), ("mvno-alpha", "s1"),
                                                                          ("mvno-beta", "s9"), ("mvno-alpha", "s9"))]
        held = [[_random_ids_blank(h) for h in repo.reservations_with_id(r)] for r in ("s1", "s3", "s9")]
        entries = [(e.action, e.object_type, e.object_id, e.object_tenant_id, e.request_id, e.subject,
                    {k: v for k, v in e.before.items()}, {k: v for k, v in e.after.items() if k != "transaction_id"})
                   for e in uow.audit.list(AuditFilter(), None, 10_000)
                   if e.action.startswith(("voucher.redeem", "voucher.reserve", "voucher.commit", "voucher.release"))]
    return guards, vouchers, ledger, held, entries


def test_fake_and_sql_stores_give_the_same_recharges(db_url: str, tmp_path: Path) -> None:
    rules = load_voucher_rules(REPO / "rules")
    fake_clock = FixedClock(T0)
    store = FakeVoucherStore()
    for msisdn, tenant in SUBSCRIBERS:
        store.add_subscriber(msisdn, tenant)
    world: World = build_world(store, load_profiles([REPO / "plans" / "vouchers"], root=REPO), StaticKeyProvider.random(), fake_clock,
                               RecordingLifecycle(rules.lifecycle), VoucherSettings(), rules.lockout)
    expected = scenario(world.desk, world.recharger, fake_clock)

    sql_clock = FixedClock(T0)
    settings = Settings(home=tmp_path, database_url=db_url)
    root = build_root(settings, sql_clock)
    try:
        bootstrap(settings, root, load_plans=False)
        for msisdn, tenant in SUBSCRIBERS:
            root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
                tenant, msisdn, "26201" + msisdn[-10:], "ACC", PaymentType.PREPAID, "TP_PREPAID_FLEX"))
        parts = root.vouchers
        got = scenario(parts.desk, parts.recharger, sql_clock)
        for (name, want), (_, have) in zip(expected, got):
            assert have == want, name
        assert state(parts.recharger._uow) == state(store)
    finally:
        root.close()
    outcomes = {name: (value[1] or value[0]) if isinstance(value, tuple) else type(value).__name__ for name, value in expected}
    assert outcomes == {  # the scenario covers every answer
        "redeem": "Redemption", "replay": "Redemption", "same id, other PIN": "REQUEST_ID_REUSED",
        "same id, other subscriber": "REQUEST_ID_REUSED", "own used voucher": "VOUCHER_NOT_ACTIVE",
        "someone else's used voucher": "VOUCHER_NOT_ACTIVE", "another tenant's voucher": "PIN_UNKNOWN", "nobody": "NotFound",
        "check digit": "PIN_CHECK_DIGIT", "wrong 0": "PIN_UNKNOWN", "wrong 1": "PIN_UNKNOWN", "wrong 2": "PIN_UNKNOWN",
        "barred, right PIN": "RECHARGE_BARRED", "after the bar": "Redemption", "reserve": "Reservation",
        "reserve again": "Reservation", "redeem own reserved": "VOUCHER_NOT_ACTIVE",
        "reserve someone else's reserved": "VOUCHER_NOT_ACTIVE", "commit": "Redemption", "commit again": "Redemption",
        "release committed": "RESERVATION_SETTLED", "reserve 2": "Reservation", "release": "Reservation",
        "release again": "Reservation", "commit released": "RESERVATION_SETTLED", "reservation id as redemption id": "REQUEST_ID_REUSED",
        "unknown reservation": "NotFound", "another tenant's reservation": "NotFound", "expired": "VOUCHER_EXPIRED",
        "blocked batch": "BATCH_NOT_ACTIVE", "reserve in blocked batch": "BATCH_NOT_ACTIVE",
        # ids per tenant: another tenant's ids are neither taken nor replayed; the operator names the tenant when two have it
        "another tenant's replay": "NotFound", "another tenant's request id": "Redemption", "its own replay": "Redemption",
        "its own id, other PIN": "REQUEST_ID_REUSED", "another tenant's reservation id": "Reservation",
        "its own reservation": "Redemption", "the operator's own first": "Redemption", "reserve in alpha": "Reservation",
        "reserve in beta": "Reservation", "the operator: which tenant": "InvalidArgument", "the operator names it": "Redemption",
        "alpha names beta": "NotFound", "alpha's own": "Reservation",
    }
    replayed = dict(expected)
    assert replayed["its own replay"] == replayed["another tenant's request id"] != replayed["redeem"]
    assert replayed["the operator's own first"] == replayed["commit"]  # mno's s1, committed before: its stored credit
    assert (replayed["the operator names it"].msisdn, replayed["alpha's own"].tenant_id) == (D, "mvno-alpha")
