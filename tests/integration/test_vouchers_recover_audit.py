"""Over a real port on SQLite and PostgreSQL: the ``recover`` event rules/lifecycle/voucher.yaml declares (stolen ->
blocked, privilege voucher.recover), and voucher audit entries filed under the vouchers' owner -- an operator acting
on an MVNO's vouchers is seen by that MVNO's auditor, and not by another's."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from billing.v1 import audit_pb2
from billing.v1 import voucher_pb2 as pb
from clients.cli import main
from tests.integration.helpers import precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, subscriber, pins_of, vs

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def _one(serial: int) -> pb.VoucherSelection:
    return pb.VoucherSelection(first_serial=serial, last_serial=serial)


def _state(client: Any, serial: int) -> int:
    return int(client.GetVoucher(pb.GetVoucherRequest(serial=serial)).voucher.state)


def test_recover_moves_a_stolen_voucher_back_to_blocked_with_the_privilege(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    alpha = vs(stack, "mvno-alpha")
    batch = activate(alpha, generate(alpha, "vp-alpha-eur-10", 4).batch_id)
    first = batch.first_serial
    for serial in (first, first + 1, first + 3):
        alpha.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(serial), event=pb.VOUCHER_EVENT_MARK_STOLEN))
    finder = vs(stack, token=stack.token("mvno-alpha", privileges=("voucher.recover",)))
    done = finder.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(first), event=pb.VOUCHER_EVENT_RECOVER, reason="found"))
    assert [(c.from_state, c.to_state, c.count) for c in done.changed] == [(pb.VOUCHER_STATE_STOLEN, pb.VOUCHER_STATE_BLOCKED, 1)]
    assert _state(alpha, first) == pb.VOUCHER_STATE_BLOCKED
    # without the privilege: refused, nothing moves
    err = rpc_error(lambda: alpha.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(first + 1), event=pb.VOUCHER_EVENT_RECOVER)),
                    C.PERMISSION_DENIED)
    assert "voucher.recover" in (err.details() or "")
    assert _state(alpha, first + 1) == pb.VOUCHER_STATE_STOLEN
    # a voucher that is not stolen: the lifecycle's reason
    err = rpc_error(lambda: finder.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(first + 2), event=pb.VOUCHER_EVENT_RECOVER)),
                    C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "VOUCHER_TRANSITION_REFUSED" and "only from stolen" in (err.details() or "")
    assert _state(alpha, first + 2) == pb.VOUCHER_STATE_ACTIVE
    # another tenant, privilege and all: like a missing voucher
    thief = vs(stack, token=stack.token("mvno-beta", privileges=("voucher.recover",)))
    rpc_error(lambda: thief.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(first + 1), event=pb.VOUCHER_EVENT_RECOVER)),
              C.NOT_FOUND)
    assert _state(alpha, first + 1) == pb.VOUCHER_STATE_STOLEN
    # the CLI verb
    code = main(["vouchers", "recover", "--serials", str(first + 3), "--json", "--server", stack.address,
                 "--token", stack.token("mvno-alpha", privileges=("voucher.recover",))])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["changed_count"] == "1" and _state(alpha, first + 3) == pb.VOUCHER_STATE_BLOCKED


def _seen_by(stack: Any, tenant: str, action: str) -> list[dict[str, Any]]:
    """The ``action`` entries of vouchers that ``tenant``'s auditor is shown: their after-values."""
    auditor = stack.client(tenant, "auditor").audit.rpc
    entries = auditor.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(page_size=1000, object_type="voucher_selection")).entries
    return [json.loads(e.after_json) for e in entries if e.action == action]


def test_the_owner_s_auditor_sees_what_the_operator_did_to_its_vouchers(stack: Any) -> None:
    alpha, beta, operator = vs(stack, "mvno-alpha"), vs(stack, "mvno-beta"), vs(stack, "mno")
    a = activate(alpha, generate(alpha, "vp-alpha-eur-10", 2).batch_id)
    b = activate(beta, generate(beta, "vp-beta-eur-20", 3).batch_id)
    assert b.first_serial == a.last_serial + 1  # one serial range spanning both owners
    # the operator blocks alpha's batch: alpha's auditor sees it, beta's does not
    operator.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(batch_id=a.batch_id), event=pb.VOUCHER_EVENT_BLOCK,
                                                     reason="audit probe", request_id="op-block-1"))
    assert [e["changed"] for e in _seen_by(stack, "mvno-alpha", "voucher.block") if e.get("reason") == "audit probe"] == [
        {"active->blocked": 2}]
    assert [e for e in _seen_by(stack, "mvno-beta", "voucher.block") if e.get("reason") == "audit probe"] == []
    # a range over both: one entry per owner, each with its own vouchers only
    span = pb.VoucherSelection(first_serial=a.first_serial, last_serial=b.last_serial)
    out = operator.ChangeVouchers(pb.ChangeVouchersRequest(selection=span, event=pb.VOUCHER_EVENT_MARK_STOLEN, reason="span"))
    assert out.changed_count == 5
    assert [e["changed"] for e in _seen_by(stack, "mvno-alpha", "voucher.mark_stolen") if e.get("reason") == "span"] == [
        {"blocked->stolen": 2}]
    assert [e["changed"] for e in _seen_by(stack, "mvno-beta", "voucher.mark_stolen") if e.get("reason") == "span"] == [
        {"active->stolen": 3}]
    # PINs revealed by the operator: each owner's auditor sees its own count
    revealer = vs(stack, token=stack.token("mno", privileges=("voucher.reveal_pin",)))
    shown = [v for m in revealer.StreamVouchers(pb.StreamVouchersRequest(selection=span, reveal=True)) for v in m.vouchers]
    assert len(shown) == 5
    assert _seen_by(stack, "mvno-alpha", "voucher.reveal")[-1] == {"revealed": 2}
    assert _seen_by(stack, "mvno-beta", "voucher.reveal")[-1] == {"revealed": 3}
    # the reservation timeout job run by the operator: filed under the reservation's owner
    c = activate(alpha, generate(alpha, "vp-alpha-eur-10", 1).batch_id)
    pin = pins_of(stack, c, "mvno-alpha")[c.first_serial]
    vs(stack, "mvno-alpha", "csr").ReserveVoucher(pb.ReserveVoucherRequest(msisdn=subscriber(stack, "mvno-alpha"), pin=pin,
                                                                          request_id="audit-held"))
    beta_before = _seen_by(stack, "mvno-beta", "voucher.reservation_timeout")
    request = pb.RecoverReservationsRequest()
    request.older_than.FromSeconds(0)
    assert operator.RecoverReservations(request).result.changed_count >= 1
    assert _seen_by(stack, "mvno-alpha", "voucher.reservation_timeout")[-1]["changed"] >= 1
    assert _seen_by(stack, "mvno-beta", "voucher.reservation_timeout") == beta_before


def _batch_entries(stack: Any, tenant: str, batch_id: str) -> list[dict[str, Any]]:
    auditor = stack.client(tenant, "auditor").audit.rpc
    entries = auditor.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(page_size=1000, object_type="voucher_batch",
                                                                         object_id=batch_id)).entries
    return [json.loads(e.after_json) for e in entries if e.action == "voucher_batch.activate"]


def test_a_batch_move_moves_only_the_caller_s_vouchers_and_a_given_voucher_is_seen_by_its_owner(stack: Any) -> None:
    """The operator gives one voucher of alpha's batch to beta (AmendVoucher tenant_id): alpha activating its batch
    leaves beta's voucher as it was (it is beta's to move), beta sees its voucher; the operator moves them all, each
    owner's auditor seeing its own."""
    alpha, beta, operator = vs(stack, "mvno-alpha"), vs(stack, "mvno-beta"), vs(stack, "mno")
    batch = generate(alpha, "vp-alpha-eur-10", 3)
    given = batch.first_serial + 1
    operator.AmendVoucher(pb.AmendVoucherRequest(serial=given, tenant_id="mvno-beta"))
    # beta sees its voucher (it used to be NOT_FOUND: visibility went by the batch's owner), alpha no longer does
    seen = beta.GetVoucher(pb.GetVoucherRequest(serial=given)).voucher
    assert (seen.tenant_id, seen.state) == ("mvno-beta", pb.VOUCHER_STATE_GENERATED)
    span = pb.VoucherSelection(first_serial=batch.first_serial, last_serial=batch.last_serial)
    assert [v.serial for m in beta.StreamVouchers(pb.StreamVouchersRequest(selection=span)) for v in m.vouchers] == [given]
    assert rpc_error(lambda: alpha.GetVoucher(pb.GetVoucherRequest(serial=given)), C.NOT_FOUND)
    # alpha activates its batch: its own two vouchers move, beta's stays generated
    beta_moves = _seen_by(stack, "mvno-beta", "voucher.activate")
    activate(alpha, batch.batch_id)
    assert _state(alpha, batch.first_serial) == _state(alpha, batch.last_serial) == pb.VOUCHER_STATE_ACTIVE
    assert _state(beta, given) == pb.VOUCHER_STATE_GENERATED
    assert _batch_entries(stack, "mvno-alpha", batch.batch_id)[-1]["vouchers_changed"] == 2
    assert _seen_by(stack, "mvno-beta", "voucher.activate") == beta_moves
    # beta moves its own voucher, by serial
    out = beta.ChangeVouchers(pb.ChangeVouchersRequest(selection=_one(given), event=pb.VOUCHER_EVENT_ACTIVATE, reason="mine"))
    assert out.changed_count == 1 and _state(beta, given) == pb.VOUCHER_STATE_ACTIVE

    # the operator activates a batch of alpha's holding a voucher of beta's: all move, one audit entry per owner
    other = generate(alpha, "vp-alpha-eur-10", 3)
    operator.AmendVoucher(pb.AmendVoucherRequest(serial=other.last_serial, tenant_id="mvno-beta"))
    activate(operator, other.batch_id)
    assert _state(beta, other.last_serial) == _state(alpha, other.first_serial) == pb.VOUCHER_STATE_ACTIVE
    assert _batch_entries(stack, "mvno-alpha", other.batch_id)[-1]["vouchers_changed"] == 2
    assert _seen_by(stack, "mvno-beta", "voucher.activate")[-1]["changed"] == {"generated->active": 1}
    assert _batch_entries(stack, "mvno-beta", other.batch_id) == []   # the batch's own entry is alpha's
