"""A replayed Redeem (a request id the subscriber already used) with another PIN is a guess like any other.

Its answer, REQUEST_ID_REUSED, differs from the answer to the right PIN (the stored redemption): it tells whether
the PIN sent is the earlier voucher's.  Before vouchers_0006 such replays were never counted nor barred, so one
request id probed PINs without ever reaching the lockout.  Now each is counted under the subscriber's lock: of
many sent at once exactly ``max_failures`` are answered REQUEST_ID_REUSED and the rest RECHARGE_BARRED, and the bar
then holds for every PIN entry of the subscriber.  A retry with the right PIN still gets its stored result, bar or
not (it tells nothing new).  On both databases (PostgreSQL: the stored function of vouchers_0006; SQLite:
engine.vouchers.redemption.settle_attempt)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FixedClock
from engine.errors import DomainError
from engine.identity import SYSTEM, Principal, Role
from engine.subscribers import NewSubscriber, PaymentType
from engine.settings import Settings
from engine.vouchers.generation import BatchRequest
from engine.vouchers.pins import luhn_check_digit
from engine.vouchers.ports import VoucherSelection
from servers.bootstrap import bootstrap
from servers.root import build_root

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
ADMIN = Principal("replay-admin", "mno", Role.OPERATOR_ADMIN, is_operator=True)
REVEAL = Principal("replay-print", "mno", Role.OPERATOR_ADMIN, is_operator=True, privileges=frozenset({"voucher.reveal_pin"}))
CSR = Principal("replay-csr", "mno", Role.CSR, is_operator=True)
A = "4917011111111"
GUESSES = 12


def _other(pin: str, i: int) -> str:
    """A well-formed PIN (right check digit) that is not ``pin``."""
    payload = ("1" if pin[0] != "1" else "2") + pin[1:12] + f"{i:03d}"
    return payload + luhn_check_digit(payload)


def _answer(fn: Any) -> str:
    try:
        fn()
        return "ok"
    except DomainError as exc:
        return getattr(exc, "reason", "") or type(exc).__name__


def test_replays_with_other_pins_count_towards_the_lockout(db_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=db_url)
    root = build_root(settings, FixedClock(T0))
    try:
        bootstrap(settings, root, load_plans=False)
        root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
            "mno", A, "26201" + A[-10:], "ACC", PaymentType.PREPAID, "TP_PREPAID_FLEX"))
        desk, recharger = root.vouchers.desk, root.vouchers.recharger
        batch = desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 2))
        desk.change_batch(ADMIN, batch.batch_id, "activate")
        first, second = (r.pin for chunk in desk.stream_vouchers(REVEAL, VoucherSelection(batch_id=batch.batch_id), reveal=True)
                         for r in chunk)
        done = recharger.redeem(CSR, A, first, "r1")
        max_failures = recharger._lockout.max_failures   # noqa: SLF001 - rules/lifecycle/recharge_lockout.yaml

        start = threading.Barrier(GUESSES)
        answers: list[str] = []

        def guess(i: int) -> None:
            start.wait(30)
            answers.append(_answer(lambda: recharger.redeem(CSR, A, _other(first, i), "r1")))

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert Counter(answers) == {"REQUEST_ID_REUSED": max_failures, "RECHARGE_BARRED": GUESSES - max_failures}
        # the bar holds for every PIN entry: the right PIN of an unused voucher under a new id too
        assert _answer(lambda: recharger.redeem(CSR, A, second, "r2")) == "RECHARGE_BARRED"
        # a retry of the first request with its own PIN still gets its stored result
        assert recharger.redeem(CSR, A, first, "r1") == done
        with root.vouchers.recharger._uow() as uow:   # noqa: SLF001
            guard = uow.vouchers.get_recharge_guard(A)
        assert guard.barred_until is not None and guard.barred_until > T0
    finally:
        root.close()
