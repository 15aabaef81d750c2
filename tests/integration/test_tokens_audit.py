from __future__ import annotations

import json

import grpc
import pytest
from sqlalchemy import text

from billing.v1 import audit_pb2, subscriber_pb2, token_pb2 as pb
from tests.integration.helpers import field_violations, rpc_error

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def test_issue_use_list_and_revoke(stack) -> None:  # type: ignore[no-untyped-def]
    admin = stack.client("mvno-alpha")
    reply = admin.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="alice@alpha", role=pb.ROLE_CSR, ttl_seconds=600))
    assert reply.secret.startswith("rbt_") and reply.token.tenant_id == "mvno-alpha"
    alice = stack.client(token=reply.secret)
    assert alice.tokens.rpc.WhoAmI(pb.WhoAmIRequest()).token.subject == "alice@alpha"
    listed = admin.tokens.rpc.ListTokens(pb.ListTokensRequest()).tokens
    assert reply.token.token_id in {t.token_id for t in listed} and all(t.tenant_id == "mvno-alpha" for t in listed)
    admin.tokens.rpc.RevokeToken(pb.RevokeTokenRequest(token_id=reply.token.token_id))
    rpc_error(lambda: alice.tokens.rpc.WhoAmI(pb.WhoAmIRequest()), C.UNAUTHENTICATED)
    rpc_error(lambda: admin.tokens.rpc.RevokeToken(pb.RevokeTokenRequest(token_id=reply.token.token_id)), C.FAILED_PRECONDITION)
    assert reply.token.token_id not in {t.token_id for t in admin.tokens.rpc.ListTokens(pb.ListTokensRequest()).tokens}
    assert reply.token.token_id in {t.token_id for t in admin.tokens.rpc.ListTokens(pb.ListTokensRequest(include_revoked=True)).tokens}


def test_secrets_are_stored_hashed_only(stack) -> None:  # type: ignore[no-untyped-def]
    reply = stack.client("mno").tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="svc", role=pb.ROLE_AUDITOR))
    secret = reply.secret.split("_", 2)[2]
    with stack.root.db.connect() as conn:
        rows = conn.execute(text("SELECT secret_hash FROM api_tokens")).scalars().all()
        audit_rows = conn.execute(text("SELECT before_json || after_json FROM audit_log")).scalars().all()
    assert secret not in "".join(rows) and secret not in "".join(audit_rows)
    assert all(len(h) == 64 for h in rows)


def test_token_rules_and_isolation(stack) -> None:  # type: ignore[no-untyped-def]
    alpha, beta = stack.client("mvno-alpha"), stack.client("mvno-beta")
    err = rpc_error(lambda: alpha.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="", role=99, ttl_seconds=-1)), C.INVALID_ARGUMENT)
    assert {"subject", "role", "ttl_seconds"} <= set(field_violations(err))
    rpc_error(lambda: alpha.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="x", role=pb.ROLE_OPERATOR_ADMIN)), C.FAILED_PRECONDITION)
    rpc_error(lambda: alpha.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="x", tenant_id="mvno-beta", role=pb.ROLE_CSR)), C.PERMISSION_DENIED)
    rpc_error(lambda: alpha.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="x", role=pb.ROLE_CSR, privileges=["voucher.reveal_pin"])), C.PERMISSION_DENIED)
    beta_token = beta.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="bob@beta", role=pb.ROLE_CSR)).token
    rpc_error(lambda: alpha.tokens.rpc.RevokeToken(pb.RevokeTokenRequest(token_id=beta_token.token_id)), C.NOT_FOUND)
    rpc_error(lambda: alpha.tokens.rpc.ListTokens(pb.ListTokensRequest(tenant_id="mvno-beta")), C.PERMISSION_DENIED)
    csr = stack.client("mvno-alpha", "csr")
    rpc_error(lambda: csr.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="y", role=pb.ROLE_CSR)), C.PERMISSION_DENIED)
    rpc_error(lambda: csr.tokens.rpc.ListTokens(pb.ListTokensRequest()), C.PERMISSION_DENIED)
    # the PIN reveal privilege is granted by a security officer, never by an administrator (see test_vouchers_roles.py)
    rpc_error(lambda: stack.client("mno").tokens.rpc.IssueToken(pb.IssueTokenRequest(
        subject="printer-ops", role=pb.ROLE_OPERATOR_ADMIN, privileges=["voucher.reveal_pin"])), C.PERMISSION_DENIED)
    officer = stack.client(token=stack.root.tokens.issue_security_officer("sec-officer")[1])
    r = officer.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="printer-ops", role=pb.ROLE_CSR, privileges=["voucher.reveal_pin"]))
    assert list(r.token.privileges) == ["voucher.reveal_pin"]
    rpc_error(lambda: stack.client("mno").tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="z", role=pb.ROLE_CSR, privileges=["root"])), C.INVALID_ARGUMENT)


def test_audit_records_who_did_what_with_before_and_after(stack) -> None:  # type: ignore[no-untyped-def]
    csr = stack.client("mvno-beta", "csr")
    s = csr.subscribers.rpc.ProvisionSubscriber(
        subscriber_pb2.ProvisionSubscriberRequest(msisdn=stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="A1",
                                                  payment_type=subscriber_pb2.PAYMENT_TYPE_PREPAID, tariff_plan="TP_PREPAID_GO")
    ).subscriber
    csr.subscribers.rpc.ActivateSubscriber(subscriber_pb2.ActivateSubscriberRequest(subscriber_id=s.subscriber_id))
    entries = stack.client("mvno-beta", "auditor").audit.rpc.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(object_type="subscriber", object_id=s.subscriber_id)
    ).entries
    assert [e.action for e in entries] == ["subscriber.provision", "subscriber.activate"]
    act = entries[1]
    assert (act.subject, act.tenant_id, act.role) == ("test-mvno-beta-csr", "mvno-beta", "csr")
    assert json.loads(act.before_json)["status"] == "provisioned" and json.loads(act.after_json)["status"] == "active"
    assert "msisdn" not in json.loads(act.after_json)  # only changed fields
    # another MVNO cannot read it
    other = stack.client("mvno-alpha", "auditor").audit.rpc.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(object_type="subscriber", object_id=s.subscriber_id)
    ).entries
    assert list(other) == []
    rpc_error(lambda: stack.client("mvno-alpha").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(tenant_id="mvno-beta")), C.PERMISSION_DENIED)
    rpc_error(lambda: csr.audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest()), C.PERMISSION_DENIED)


def test_the_audit_log_is_append_only_in_the_database(stack) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import DatabaseError

    for statement in ("UPDATE audit_log SET subject = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError):
            with stack.root.db.begin() as conn:
                conn.execute(text(statement))
