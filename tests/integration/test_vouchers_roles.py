"""Who may do what with vouchers (issue #13 items 6, 7, 8): value-changing operations are an administrator's,
the PIN reveal privilege comes only from a security officer, recharge bars and amendments stay in their tenant."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import audit_pb2
from billing.v1 import token_pb2 as tpb
from billing.v1 import voucher_pb2 as pb
from servers.admin import main
from engine.identity import SYSTEM
from engine.subscribers import NewSubscriber, PaymentType
from store.vouchers import recharge_guards
from tests.integration.helpers import audit_count, field_violations, rpc_error
from tests.integration.test_vouchers import activate, generate, vs

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def _subscriber(stack: Any, tenant: str) -> str:
    msisdn = stack.unique_msisdn()
    stack.root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
        tenant, msisdn, stack.unique_imsi(), "ACC", PaymentType.PREPAID, "TP_PREPAID_FLEX"))
    return msisdn


def test_a_csr_cannot_create_or_move_value(stack: Any) -> None:
    op, csr = vs(stack), vs(stack, "mvno-alpha", "csr")
    batch = generate(vs(stack, "mvno-alpha"), "vp-alpha-eur-10", 3)
    before = audit_count(stack)
    rpc_error(lambda: generate(csr, "vp-alpha-eur-10", 1), C.PERMISSION_DENIED)
    rpc_error(lambda: csr.ChangeBatch(pb.ChangeBatchRequest(batch_id=batch.batch_id, event=pb.BATCH_EVENT_ACTIVATE)), C.PERMISSION_DENIED)
    rpc_error(lambda: csr.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id),
                                                                  event=pb.VOUCHER_EVENT_ACTIVATE)), C.PERMISSION_DENIED)
    err = rpc_error(lambda: csr.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, face_value="500.00")), C.PERMISSION_DENIED)
    assert "voucher.admin" in err.details()
    rpc_error(lambda: csr.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
    assert audit_count(stack) == before
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.face_value.amount_micros == 10_000_000
    # what a CSR does do: expiry dates, blocking
    later = Timestamp()
    later.FromDatetime(stack.root.clock.now().replace(year=stack.root.clock.now().year + 2))
    assert csr.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, expire_time=later)).voucher.expire_time == later
    r = csr.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), event=pb.VOUCHER_EVENT_BLOCK))
    assert r.changed_count == 3


def test_bad_times_and_tenants_are_named_by_the_request_s_fields(stack: Any) -> None:
    """AmendVoucher and GenerateBatch name expire_time and tenant_id, as their requests do (not the engine's names)."""
    op = vs(stack)
    batch = generate(op, count=1)
    past = Timestamp()
    past.FromDatetime(stack.root.clock.now().replace(year=2001))
    err = rpc_error(lambda: op.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, expire_time=past, tenant_id="Not An Id")),
                    C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"expire_time", "tenant_id"}
    err = rpc_error(lambda: list(op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=1, expire_time=past))),
                    C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"expire_time"}
    err = rpc_error(lambda: list(op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=1, tenant_id="mvno-nowhere"))),
                    C.INVALID_ARGUMENT)
    assert field_violations(err) == {"tenant_id": "there is no tenant mvno-nowhere"}


def test_amend_refuses_an_owner_that_does_not_exist(stack: Any) -> None:
    op = vs(stack)
    batch = generate(op, count=1)
    before = audit_count(stack)
    err = rpc_error(lambda: op.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, tenant_id="mvno-nowhere")),
                    C.INVALID_ARGUMENT)
    assert field_violations(err) == {"tenant_id": "there is no tenant mvno-nowhere"}
    assert audit_count(stack) == before and op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.tenant_id == "mno"
    assert op.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, tenant_id="mvno-beta")).voucher.tenant_id == "mvno-beta"


def test_no_administrator_can_grant_itself_the_reveal_privilege(stack: Any, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    admin = stack.client("mno")
    for request in (tpb.IssueTokenRequest(subject="me-again", role=tpb.ROLE_OPERATOR_ADMIN, privileges=["voucher.reveal_pin"]),
                    tpb.IssueTokenRequest(subject="me-csr", role=tpb.ROLE_CSR, privileges=["voucher.reveal_pin"]),
                    tpb.IssueTokenRequest(subject="me-officer", role=tpb.ROLE_SECURITY_OFFICER)):
        err = rpc_error(lambda: admin.tokens.rpc.IssueToken(request), C.PERMISSION_DENIED)
        assert "security officer" in err.details()
    # the second, separate step: a security officer, made on the server host
    monkeypatch.setenv("RULEBILL_HOME", str(stack.root.settings.home))
    monkeypatch.setenv("RULEBILL_DATABASE_URL", stack.root.settings.effective_database_url)
    assert main(["security-officer", "--subject", "carol@operator.test"]) == 0
    bearer = capsys.readouterr().out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    officer = stack.client(token=bearer)
    assert officer.tokens.rpc.WhoAmI(tpb.WhoAmIRequest()).token.role == tpb.ROLE_SECURITY_OFFICER
    rpc_error(lambda: officer.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="x", role=tpb.ROLE_OPERATOR_ADMIN,
                                                                      privileges=["voucher.reveal_pin"])), C.PERMISSION_DENIED)
    rpc_error(lambda: officer.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="x", role=tpb.ROLE_CSR)), C.PERMISSION_DENIED)
    rpc_error(lambda: generate(vs(stack, token=bearer), count=1), C.PERMISSION_DENIED)
    printer = officer.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="print-desk", tenant_id="mno", role=tpb.ROLE_CSR,
                                                              privileges=["voucher.reveal_pin"]))
    # dual control: a second security officer approves it (tests/integration/test_token_approval.py)
    assert main(["security-officer", "issue", "--subject", "dave@operator.test"]) == 0
    second = stack.client(token=capsys.readouterr().out.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    half = second.tokens.rpc.ApproveToken(tpb.ApproveTokenRequest(token_id=printer.token.token_id)).second_secret
    batch = generate(vs(stack), count=2)
    pins = [v.pin for m in vs(stack, token=f"{printer.secret}.{half}").StreamVouchers(pb.StreamVouchersRequest(
        selection=pb.VoucherSelection(batch_id=batch.batch_id), reveal=True)) for v in m.vouchers]
    assert len(pins) == 2 and all(len(p) == 16 for p in pins)
    grants = admin.audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(object_type="token",
                                                                           object_id=printer.token.token_id)).entries
    granted = [json.loads(e.after_json) for e in grants if e.action == "privilege.grant"]
    assert granted == [{"privilege": "voucher.reveal_pin", "grantee": "print-desk", "grantee_role": "csr",
                        "granted_by_role": "security_officer"}]
    assert [e.subject for e in grants if e.action == "privilege.grant"] == ["carol@operator.test"]


def test_clear_recharge_bar_stays_in_the_subscribers_tenant(stack: Any) -> None:
    """Issue #13 item 6: no cross-tenant unbar, bad MSISDNs refused, the audit entry filed under the subscriber's tenant."""
    beta_number = _subscriber(stack, "mvno-beta")
    from engine.vouchers.redemption import RechargeGuard
    from datetime import timedelta

    until = stack.root.clock.now() + timedelta(hours=5)
    with stack.root.uow() as uow:
        from store.vouchers import SqlVoucherRepository

        SqlVoucherRepository(uow.session).save_recharge_guard(RechargeGuard(beta_number, 0, until))
        uow.commit()
    alpha_csr, beta_csr = vs(stack, "mvno-alpha", "csr"), vs(stack, "mvno-beta", "csr")
    before = audit_count(stack)
    rpc_error(lambda: alpha_csr.ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=beta_number, reason="x")), C.NOT_FOUND)
    assert audit_count(stack) == before
    with stack.root.db.connect() as conn:
        from sqlalchemy import select

        assert conn.execute(select(recharge_guards.c.barred_until).where(recharge_guards.c.msisdn == beta_number)).scalar() is not None
    for garbage in ("not a number", "1" * 1_000_000, "+0012"):
        err = rpc_error(lambda: beta_csr.ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=garbage)), C.INVALID_ARGUMENT)
        assert set(field_violations(err)) == {"msisdn"} and len(err.details()) < 300
    beta_csr.ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=beta_number, reason="verified caller"))
    seen_by_beta = stack.client("mvno-beta").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(object_id=beta_number)).entries
    seen_by_alpha = stack.client("mvno-alpha").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(object_id=beta_number)).entries
    assert [e.action for e in seen_by_beta] == ["recharge.unbar"] and seen_by_alpha == []
    # the operator acts for every tenant, and its entry is filed under the subscriber's tenant too
    rpc_error(lambda: vs(stack).ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn="4917999999999")), C.NOT_FOUND)
    vs(stack).ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=beta_number))
    assert len(stack.client("mvno-beta").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(object_id=beta_number)).entries) == 2


def test_activation_by_an_administrator_still_works(stack: Any) -> None:
    op = vs(stack, "mvno-alpha")
    batch = activate(op, generate(op, "vp-alpha-eur-10", 2).batch_id)
    assert batch.state == pb.BATCH_STATE_ACTIVE
