"""Recharge: checks in order, atomic credit, idempotency, concurrency, brute-force lockout."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Callable, Sequence

import pytest

from engine.errors import InvalidArgument, NotFound, PermissionDenied
from engine.eventrules import LockoutPolicy
from engine.vouchers.model import Voucher, VoucherState
from engine.vouchers.pins import luhn_check_digit
from engine.vouchers.ports import RechargeGuard, VoucherSelection
from engine.vouchers.recharge import Recharger, RechargeRefused

from .factories import ADMIN, ALPHA_CSR, AUDITOR, CSR, T0, World
from .fakes import FakeVoucherRepository

MSISDN = "491701234567"
ALPHA_MSISDN = "491705555555"


def _together(n: int, attempt: Callable[[int], object]) -> list[object]:
    """``attempt(i)`` in ``n`` threads released at once: each result, or the refusal's reason."""
    results: list[object] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = attempt(i)
        except RechargeRefused as exc:
            results[i] = exc.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _wrong_pin(pin: str) -> str:
    """A PIN with a valid check digit that is not ``pin``."""
    payload = ("1" if pin[0] != "1" else "2") + pin[1:-1]
    return payload + luhn_check_digit(payload)


def test_redeem_credits_extends_and_records(world: World) -> None:
    batch = world.batch("vp-mno-eur-10", count=3)
    pin = world.pins(batch)[2]
    result = world.recharger.redeem(CSR, "+49 170 1234567", pin, "req-1")
    assert (result.msisdn, result.serial, result.currency, result.credited_micros) == (MSISDN, 2, "EUR", 10_000_000)
    assert result.balance_micros == 10_000_000 and result.valid_until == T0 + timedelta(days=30)
    state = world.store.state
    voucher = state.vouchers[2]
    assert (voucher.state.value, voucher.redeemed_by, voucher.redemption_request_id) == ("used", MSISDN, "req-1")
    entry = state.audit[-1]
    assert (entry.action, entry.object_id, entry.request_id) == ("voucher.redeem", "2", "req-1")
    assert entry.after["transaction_id"] == result.transaction_id


def test_second_voucher_adds_up_and_extends_from_current_validity(world: World) -> None:
    batch = world.batch("vp-mno-eur-25", count=2)
    pins = world.pins(batch)
    world.recharger.redeem(CSR, MSISDN, pins[1], "a")
    result = world.recharger.redeem(CSR, MSISDN, pins[2], "b")
    assert result.balance_micros == 50_000_000
    assert result.valid_until == T0 + timedelta(days=180)


def test_same_request_id_returns_same_result_without_second_credit(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    first = world.recharger.redeem(CSR, MSISDN, pin, "req-7")
    again = world.recharger.redeem(CSR, MSISDN, pin, "req-7")
    assert again == first
    assert world.store.state.balances[(MSISDN, "EUR")] == 10_000_000
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, "491709999999", pin, "req-7")
    assert err.value.reason == "REQUEST_ID_REUSED"


def test_used_pin_with_new_request_is_refused(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    world.recharger.redeem(CSR, MSISDN, pin, "r1")
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, pin, "r2")
    assert err.value.reason == "VOUCHER_NOT_ACTIVE" and "used" in err.value.message


def test_check_digit_is_checked_before_any_lookup(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    bad = pin[:-1] + str((int(pin[-1]) + 1) % 10)
    lookups: list[object] = []
    original = FakeVoucherRepository.find_by_lookup_hash

    def spy(self: FakeVoucherRepository, hashes: Sequence[bytes]) -> Voucher | None:
        lookups.append(hashes)
        return original(self, hashes)

    monkeypatch.setattr(FakeVoucherRepository, "find_by_lookup_hash", spy)
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, bad, "r1")
    assert err.value.reason == "PIN_CHECK_DIGIT" and lookups == []
    assert world.store.state.guards[MSISDN].failed_attempts == 1


@pytest.mark.parametrize(
    ("msisdn", "pin", "request_id", "fields"),
    [
        (MSISDN, "12345", "r", ["pin"]),
        (MSISDN, "12345678901234a6", "r", ["pin"]),
        ("0170", "1234567890123452", "r", ["msisdn"]),
        (MSISDN, "1234567890123452", "", ["request_id"]),
        ("x", "1" * 30, "bad id!", ["msisdn", "pin", "request_id"]),
    ],
)
def test_malformed_requests(world: World, msisdn: str, pin: str, request_id: str, fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as err:
        world.recharger.redeem(CSR, msisdn, pin, request_id)
    assert [v.field for v in err.value.violations] == fields
    assert pin not in str(err.value) or len(pin) < 6


def test_printed_separators_are_accepted(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    spaced = " ".join(pin[i:i + 4] for i in range(0, 16, 4))
    assert world.recharger.redeem(CSR, MSISDN, spaced, "r").serial == 1


def test_voucher_and_batch_must_be_active_and_unexpired(world: World) -> None:
    generated = world.batch(count=1, activate=False)
    pin = world.pins(generated)[1]
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, pin, "r1")
    assert err.value.reason == "VOUCHER_NOT_ACTIVE"

    blocked_batch = world.batch(count=1)
    world.desk.change_batch(ADMIN, blocked_batch.batch_id, "block")
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, world.pins(blocked_batch)[2], "r2")
    assert err.value.reason == "BATCH_NOT_ACTIVE"

    short = world.batch(count=1, expires_at=T0 + timedelta(hours=1))
    world.clock.advance(hours=2)
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, world.pins(short)[3], "r3")
    assert err.value.reason == "VOUCHER_EXPIRED"


def test_unknown_pin_and_other_tenants_vouchers_look_the_same(world: World) -> None:
    mno_batch = world.batch(count=1)
    pin = world.pins(mno_batch)[1]
    with pytest.raises(RechargeRefused) as unknown:
        world.recharger.redeem(CSR, MSISDN, _wrong_pin(pin), "r1")
    with pytest.raises(RechargeRefused) as foreign:  # an mno voucher for an mvno-alpha subscriber
        world.recharger.redeem(ALPHA_CSR, ALPHA_MSISDN, pin, "r2")
    with pytest.raises(RechargeRefused) as foreign_by_operator:
        world.recharger.redeem(CSR, ALPHA_MSISDN, pin, "r3")
    assert unknown.value.reason == foreign.value.reason == foreign_by_operator.value.reason == "PIN_UNKNOWN"
    with pytest.raises(PermissionDenied):
        world.recharger.redeem(AUDITOR, MSISDN, pin, "r4")


def test_unknown_or_foreign_subscriber_is_not_found_and_not_counted(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    with pytest.raises(NotFound):
        world.recharger.redeem(CSR, "491700000999", pin, "r1")
    with pytest.raises(NotFound):  # an MVNO's agent cannot recharge the operator's subscribers
        world.recharger.redeem(ALPHA_CSR, MSISDN, pin, "r2")
    assert world.store.state.guards == {} and world.store.state.vouchers[1].state.value == "active"


def test_five_wrong_pins_bar_for_a_day_and_success_resets(world: World) -> None:
    batch = world.batch(count=2)
    pins = world.pins(batch)
    wrong = _wrong_pin(pins[1])
    for i in range(4):
        with pytest.raises(RechargeRefused):
            world.recharger.redeem(CSR, MSISDN, wrong, f"w{i}")
    world.recharger.redeem(CSR, MSISDN, pins[1], "ok-1")  # success resets the counter
    assert world.store.state.guards[MSISDN].failed_attempts == 0
    for i in range(5):
        with pytest.raises(RechargeRefused) as err:
            world.recharger.redeem(CSR, MSISDN, wrong, f"x{i}")
        assert err.value.reason == "PIN_UNKNOWN"
    guard = world.store.state.guards[MSISDN]
    # the rule (rules/lifecycle/recharge_lockout.yaml via engine.eventrules): the fifth failure bars, the count starts again
    assert guard.failed_attempts == 0 and guard.barred_until == T0 + timedelta(hours=24)
    with pytest.raises(RechargeRefused) as barred:
        world.recharger.redeem(CSR, MSISDN, pins[2], "ok-2")  # even the right PIN
    assert barred.value.reason == "RECHARGE_BARRED"
    assert world.store.state.vouchers[2].state.value == "active"
    failures = [e for e in world.store.state.audit if e.action == "voucher.redeem_failed"]
    assert len(failures) == 9 and all(e.object_id == MSISDN for e in failures)
    assert failures[-1].after["barred_until"] == (T0 + timedelta(hours=24)).isoformat()
    world.clock.advance(hours=24, seconds=1)
    assert world.recharger.redeem(CSR, MSISDN, pins[2], "ok-3").serial == 2


def test_staff_can_lift_and_set_a_bar(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    for i in range(5):
        with pytest.raises(RechargeRefused):
            world.recharger.redeem(CSR, MSISDN, _wrong_pin(pin), f"w{i}")
    world.recharger.clear_bar(ADMIN, MSISDN, reason="customer called")
    assert world.store.state.guards[MSISDN] == RechargeGuard(MSISDN, 0, None, T0)
    assert world.store.state.audit[-1].action == "recharge.unbar"
    world.recharger.bar(ADMIN, MSISDN, T0 + timedelta(days=7), reason="fraud suspicion")
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, pin, "ok")
    assert err.value.reason == "RECHARGE_BARRED"


def test_rule_book_lockout_follows_the_rule_file(world: World) -> None:
    recharger = Recharger(world.store, world.keys, world.lifecycle, world.clock, LockoutPolicy(3, 3600))  # type: ignore[arg-type]
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    wrong = _wrong_pin(pin)
    for i in range(3):
        with pytest.raises(RechargeRefused):
            recharger.redeem(CSR, MSISDN, wrong, f"w{i}")
    assert world.store.state.guards[MSISDN].barred_until == T0 + timedelta(hours=1)
    with pytest.raises(RechargeRefused) as err:
        recharger.redeem(CSR, MSISDN, pin, "ok")
    assert err.value.reason == "RECHARGE_BARRED"
    world.clock.advance(hours=1)
    assert recharger.redeem(CSR, MSISDN, pin, "ok2").serial == 1
    assert world.store.state.guards[MSISDN].failed_attempts == 0


def test_shipped_lockout_rule_is_five_failures_for_a_day() -> None:
    from engine.vouchers.rules import load_voucher_rules

    from .factories import REPO

    assert load_voucher_rules(REPO / "rules").lockout == LockoutPolicy(5, 86_400)


def test_a_bar_that_ran_out_starts_a_fresh_count(world: World) -> None:
    recharger = Recharger(world.store, world.keys, world.lifecycle, world.clock, LockoutPolicy(2, 300))  # type: ignore[arg-type]
    wrong = _wrong_pin(world.pins(world.batch(count=1))[1])
    for i in range(2):
        with pytest.raises(RechargeRefused):
            recharger.redeem(CSR, MSISDN, wrong, f"w{i}")
    assert world.store.state.guards[MSISDN].barred_until == T0 + timedelta(minutes=5)
    world.clock.advance(minutes=6)
    with pytest.raises(RechargeRefused) as err:
        recharger.redeem(CSR, MSISDN, wrong, "w-later")
    assert err.value.reason == "PIN_UNKNOWN"
    guard = world.store.state.guards[MSISDN]
    assert (guard.failed_attempts, guard.barred_until) == (1, None)


def test_concurrent_redemptions_of_one_pin_exactly_one_wins(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    results = _together(16, lambda i: world.recharger.redeem(CSR, f"4917000000{i:02d}", pin, f"c{i}"))
    wins = [r for r in results if not isinstance(r, str)]
    assert len(wins) == 1 and results.count("VOUCHER_NOT_ACTIVE") == 15
    assert sum(world.store.state.balances.values()) == 10_000_000


def test_range_selection_counts(world: World) -> None:
    batch = world.batch(count=4)
    pins = world.pins(batch)
    world.recharger.redeem(CSR, MSISDN, pins[1], "r")
    outcome = world.desk.change_vouchers(ADMIN, "block", VoucherSelection(batch_id=batch.batch_id))
    assert outcome.changed_count == 3 and [g.state.value for g in outcome.refused] == ["used"]


def test_same_request_id_with_another_pin_is_refused_and_the_other_voucher_stays_active(world: World) -> None:
    batch = world.batch(count=2)
    pins = world.pins(batch)
    world.recharger.redeem(CSR, MSISDN, pins[1], "req-1")
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, MSISDN, pins[2], "req-1")
    assert err.value.reason == "REQUEST_ID_REUSED" and "another voucher" in err.value.message
    assert world.store.state.vouchers[2].state.value == "active"
    assert world.store.state.balances[(MSISDN, "EUR")] == 10_000_000
    # another PIN under a used id is a guess (its answer tells whether the PIN is the earlier voucher's): counted
    assert world.store.state.guards[MSISDN].failed_attempts == 1
    assert [e.after["reason"] for e in world.store.state.audit if e.action == "voucher.redeem_failed"] == ["voucher"]


def test_concurrent_double_submissions_by_the_owner_are_not_guesses(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    results = _together(8, lambda i: world.recharger.redeem(CSR, MSISDN, pin, f"dup-{i}"))
    assert results.count("VOUCHER_NOT_ACTIVE") == 7
    assert world.store.state.guards.get(MSISDN, RechargeGuard(MSISDN)).failed_attempts == 0
    assert not [e for e in world.store.state.audit if e.action == "voucher.redeem_failed"]


def test_concurrent_wrong_guesses_stop_at_five(world: World) -> None:
    pin = world.pins(world.batch(count=1))[1]

    def guess(i: int) -> object:
        payload = ("1" if pin[0] != "1" else "2") + pin[1:12] + f"{i:03d}"
        return world.recharger.redeem(CSR, MSISDN, payload + luhn_check_digit(payload), f"g-{i}")

    results = _together(20, guess)
    assert (results.count("PIN_UNKNOWN"), results.count("RECHARGE_BARRED")) == (5, 15)


def test_two_step_reserve_commit_release(world: World) -> None:
    batch = world.batch(count=2)
    pins = world.pins(batch)
    held = world.recharger.reserve(CSR, MSISDN, pins[1], "res-1")
    assert (held.serial, held.status, world.store.state.vouchers[1].state.value) == (1, "reserved", "reserved")
    assert (MSISDN, "EUR") not in world.store.state.balances
    assert world.recharger.reserve(CSR, MSISDN, pins[1], "res-1") == held
    done = world.recharger.commit(CSR, "res-1")
    assert (done.credited_micros, done.balance_micros, done.valid_until) == (10_000_000, 10_000_000, T0 + timedelta(days=30))
    assert world.recharger.commit(CSR, "res-1") == done and world.store.state.vouchers[1].state.value == "used"
    # what CommitReservation answers in one desk call: the credit and the reservation as it now stands
    assert world.recharger.commit_reservation(CSR, "res-1") == (done, world.recharger.get_reservation(CSR, "res-1"))
    world.recharger.reserve(CSR, MSISDN, pins[2], "res-2")
    released = world.recharger.release(CSR, "res-2", reason="no answer")
    assert released.status == "released" and world.store.state.vouchers[2].state.value == "active"
    assert world.store.state.vouchers[2].redeemed_by == ""
    with pytest.raises(RechargeRefused) as err:
        world.recharger.commit(CSR, "res-2")
    assert err.value.reason == "RESERVATION_SETTLED"
    with pytest.raises(NotFound):
        world.recharger.commit(ALPHA_CSR, "res-1")  # another tenant's reservation is a missing one
    actions = [e.action for e in world.store.state.audit if e.object_type == "voucher" and e.action != "voucher.reveal"]
    assert actions[-4:] == ["voucher.reserve", "voucher.commit", "voucher.reserve", "voucher.release"]


def test_a_stale_reservation_is_recovered_and_can_still_be_committed(world: World) -> None:
    batch = world.batch(count=1)
    world.recharger.reserve(CSR, MSISDN, world.pins(batch)[1], "res-9")
    assert world.desk.recover_reservations(CSR).changed_count == 0
    world.clock.advance(minutes=15)
    outcome = world.desk.recover_reservations(CSR)
    assert outcome.changed == {(VoucherState.RESERVED, VoucherState.PENDING): 1}
    assert world.recharger.commit(CSR, "res-9").credited_micros == 10_000_000
    assert world.store.state.vouchers[1].state is VoucherState.USED
