"""No PIN in any server log line, error or audit entry across generate / reveal / export / redeem over gRPC."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from billing.v1 import voucher_pb2 as pb
from engine.ports import AuditFilter
from tests.integration.test_vouchers import activate, generate, pins_of, subscriber, vs
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists(GPG), reason="gpg binary not installed")]


def test_server_side_cycle_never_logs_a_pin(stack: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    recipient = make_key(tmp_path / "r", "Printer <p@example.test>")
    operator = make_key(tmp_path / "o", "Operator <o@example.test>")
    errors: list[str] = []
    try:
        signing = Path(stack.root.vouchers.sealing.signing_key_file)
        signing.write_bytes(operator.secret_key)
        op, csr = vs(stack), vs(stack, "mno", "csr")
        batch = activate(op, generate(op, count=30).batch_id)
        pins = pins_of(stack, batch)
        exporter = vs(stack, token=stack.token("mno", privileges=("voucher.reveal_pin",)))
        parts = list(exporter.ExportVouchers(pb.ExportVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id),
                                                                      recipient_public_key=recipient.public_key)))
        assert parts[0].HasField("receipt") and parts[0].receipt.count == 30
        msisdn = subscriber(stack)
        first = pins[batch.first_serial]
        csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=first, request_id=f"log-{msisdn}"))
        bad_check = first[:-1] + str((int(first[-1]) + 1) % 10)
        for n, pin in enumerate([first, bad_check, first[:8], first + "9", "x" + first[1:]]):
            try:
                csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"log{n}-{msisdn}"))
            except grpc.RpcError as err:
                errors.append(f"{err.code()} {err.details()} {err.trailing_metadata()!r}")
    finally:
        stop_agent(recipient.home)
        stop_agent(operator.home)
    assert len(errors) == 5
    with stack.root.uow() as uow:
        audit_text = json.dumps([e.__dict__ for e in uow.audit.list(AuditFilter(), None, 100_000)], default=str)
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "voucher.redeem_failed" in audit_text and "voucher.export" in audit_text and logs
    for name, text in {"logs": logs, "errors": "\n".join(errors), "audit": audit_text}.items():
        for serial, pin in pins.items():
            assert pin[:12] not in text, f"(part of) the PIN of serial {serial} appears in {name}"
