"""PINs never appear in logs, exception messages or audit entries of a generate/export/redeem cycle."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict

import pytest

from engine.vouchers.ports import VoucherSelection
from engine.vouchers.recharge import RechargeRefused

from .factories import ADMIN, CSR, REVEALER, World
from .fakes import PlainSealer


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))
        self.records.append(repr(record.args))


def test_full_cycle_never_shows_a_pin(world: World) -> None:
    handler = _Everything()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_info)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    messages: list[str] = []
    try:
        batch = world.batch(count=40)
        pins = world.pins(batch)
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), PlainSealer(), io.BytesIO())
        world.recharger.redeem(CSR, "491701234567", pins[1], "r-ok")
        for attempt, pin in enumerate([pins[1], pins[2][:-1] + str((int(pins[2][-1]) + 1) % 10), pins[3][:10], pins[4] + "x"]):
            try:
                world.recharger.redeem(CSR, "491701234567", pin, f"r-bad-{attempt}")
            except Exception as exc:  # noqa: BLE001 - every error message is inspected
                messages.append(f"{type(exc).__name__}: {exc} {vars(exc)!r}")
        for event in ("block", "unblock"):
            world.desk.change_vouchers(ADMIN, event, VoucherSelection(batch_id=batch.batch_id))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert len(messages) == 4 and any("RECHARGE" in m or "VOUCHER_NOT_ACTIVE" in m for m in messages)
    audit_text = json.dumps([asdict(e) for e in world.store.state.audit], default=str)
    haystacks = {"logs": "\n".join(handler.records), "errors": "\n".join(messages), "audit": audit_text}
    assert "voucher.export" in audit_text and "voucher.redeem_failed" in audit_text and handler.records
    for name, text in haystacks.items():
        for serial, pin in pins.items():
            # the full PIN, and the 15-digit payload a mistyped PIN shares with it
            assert pin not in text and pin[:15] not in text, f"PIN of serial {serial} leaked into {name}"
            assert pin[:10] not in text, f"part of the PIN of serial {serial} leaked into {name}"


def test_refusal_messages_describe_rules_not_values(world: World) -> None:
    batch = world.batch(count=1)
    pin = world.pins(batch)[1]
    wrong = pin[:-1] + str((int(pin[-1]) + 1) % 10)
    with pytest.raises(RechargeRefused) as err:
        world.recharger.redeem(CSR, "491701234567", wrong, "r1")
    assert wrong not in str(err.value) and wrong not in repr(err.value.__dict__)
    assert wrong[:15] not in str(err.value)
