"""Dual control of the tokens a security officer issues, over a real port on each database: a token carrying
voucher.reveal_pin (or a security officer token) issued by one officer authenticates nothing until a second officer
approves it; the issuer holds the first half of its secret, the approver the second.  Time is the stack's clock."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from billing.v1 import audit_pb2, token_pb2 as pb, voucher_pb2 as vpb
from clients.client import RulebillClient
from engine.clock import FixedClock
from engine.identity import Role
from engine.settings import Settings
from servers.root import token_administration
from tests.integration.conftest import Stack, running_stack
from tests.integration.cross_tenant import database_rows
from tests.integration.helpers import rpc_error
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = pytest.mark.integration
C = grpc.StatusCode
APPROVAL_SECONDS = 3600
REVEAL = "voucher.reveal_pin"


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # the authentication cache on (5 s, the default): a pending token's refusal must not outlive its approval
    return Settings(home=Path(tmp_path_factory.mktemp("home")), database_url=db_url, shutdown_grace_seconds=2.0,
                    token_approval_seconds=APPROVAL_SECONDS, auth_cache_seconds=5.0)


@pytest.fixture(scope="module")
def stack(settings: Settings, clock: FixedClock) -> Iterator[Stack]:
    with running_stack(settings, clock) as s:
        yield s


def officer(stack: Stack, subject: str) -> RulebillClient:
    """A security officer issued on the server host (`rulebill security-officer issue`): active at once."""
    return stack.client(token=stack.root.tokens.issue_security_officer(subject)[1])


def ask(stack: Stack, by: RulebillClient, subject: str, role: int = pb.ROLE_CSR, privileges: tuple[str, ...] = (REVEAL,)) -> pb.IssueTokenResponse:
    return by.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject=subject, tenant_id="mno", role=role, privileges=list(privileges)))


def whoami(stack: Stack, bearer: str) -> pb.TokenInfo:
    return stack.client(token=bearer).tokens.whoami()


def listed(by: RulebillClient, token_id: str) -> pb.TokenInfo:
    return next(t for t in by.tokens.rpc.ListTokens(pb.ListTokensRequest(include_revoked=True, page_size=1000)).tokens
                if t.token_id == token_id)


def audit_of(stack: Stack, token_id: str, action: str) -> list[tuple[str, dict[str, Any]]]:
    entries = stack.client("mno", "auditor").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(
        object_type="token", object_id=token_id)).entries
    return [(e.subject, json.loads(e.after_json)) for e in entries if e.action == action]


def test_a_reveal_token_works_only_after_a_second_officer_approves_it(stack: Stack, tmp_path: Path) -> None:
    alice, bob = officer(stack, "alice@operator.test"), officer(stack, "bob@operator.test")
    issued = ask(stack, alice, "print-desk")
    token_id, first = issued.token.token_id, issued.secret
    assert issued.token.approval == pb.TOKEN_APPROVAL_PENDING and issued.token.issued_by == "alice@operator.test"
    assert issued.token.approval_expire_time.ToDatetime(timezone.utc) == stack.root.clock.now() + timedelta(seconds=APPROVAL_SECONDS)

    # pending: every call with it is UNAUTHENTICATED, saying why
    err = rpc_error(lambda: whoami(stack, first), C.UNAUTHENTICATED)
    assert "awaits approval by a second security officer" in err.details()
    batch = stack.client("mno").vouchers.generate_batch("vp-mno-usd-20", 3)
    stack.client("mno").vouchers.change_batch(batch.batch_id, "activate")
    pending = stack.client(token=first)
    rpc_error(lambda: list(pending.vouchers.stream_vouchers(vpb.VoucherSelection(batch_id=batch.batch_id), reveal=True)), C.UNAUTHENTICATED)

    # the issuer cannot approve its own request, with this token or another of its own
    err = rpc_error(lambda: alice.tokens.approve(token_id), C.PERMISSION_DENIED)
    assert "two-person rule" in err.details() and "alice@operator.test issued" in err.details()
    alice_again = officer(stack, "Alice@Operator.test ")
    err = rpc_error(lambda: alice_again.tokens.approve(token_id), C.PERMISSION_DENIED)
    assert "two-person rule" in err.details()
    # nor can the pending token approve itself (it authenticates nothing)
    rpc_error(lambda: pending.tokens.approve(token_id), C.UNAUTHENTICATED)
    assert listed(bob, token_id).approval == pb.TOKEN_APPROVAL_PENDING

    approved = bob.tokens.approve(token_id)
    second = approved.second_secret
    assert approved.token.approval == pb.TOKEN_APPROVAL_APPROVED and approved.token.decided_by == "bob@operator.test"
    assert second and second not in first
    shown = listed(bob, token_id)
    assert (shown.approval, shown.issued_by, shown.decided_by) == (pb.TOKEN_APPROVAL_APPROVED, "alice@operator.test", "bob@operator.test")
    # neither half alone works; joined, the token works at once (the pending refusal was not cached)
    rpc_error(lambda: whoami(stack, first), C.UNAUTHENTICATED)
    rpc_error(lambda: whoami(stack, f"rbt_{token_id}_{second}"), C.UNAUTHENTICATED)
    bearer = f"{first}.{second}"
    holder = stack.client(token=bearer)
    assert holder.tokens.whoami().subject == "print-desk"
    pins = [v.pin for chunk in holder.vouchers.stream_vouchers(vpb.VoucherSelection(batch_id=batch.batch_id), reveal=True) for v in chunk]
    assert len(pins) == 3 and all(pins)
    if os.path.exists(GPG):   # ExportVouchers, which needs only voucher.reveal_pin
        recipient, operator = make_key(tmp_path / "r", "Printer <p@example.test>"), make_key(tmp_path / "o", "Operator <o@example.test>")
        try:
            Path(stack.root.vouchers.sealing.signing_key_file).write_bytes(operator.secret_key)
            receipt = holder.vouchers.export(vpb.VoucherSelection(batch_id=batch.batch_id), recipient.public_key, tmp_path / "out.gpg")
            assert receipt.count == 3 and (tmp_path / "out.gpg").stat().st_size > 0
        finally:
            stop_agent(recipient.home)
            stop_agent(operator.home)
            shutil.rmtree(tmp_path / "r", ignore_errors=True)

    # a decision is made once
    err = rpc_error(lambda: bob.tokens.approve(token_id), C.FAILED_PRECONDITION)
    assert "TOKEN_NOT_PENDING" in err.details() or "not awaiting approval" in err.details()
    # audited with both officers: the approver as the entry's subject, the issuer in its document
    [(subject, doc)] = audit_of(stack, token_id, "token.approve")
    assert subject == "bob@operator.test"
    assert (doc["issued_by"], doc["decided_by"], doc["approval"], doc["privileges"]) == (
        "alice@operator.test", "bob@operator.test", "approved", [REVEAL])
    assert doc["issued_by_token"] == alice.tokens.whoami().token_id and doc["decided_by_token"] == bob.tokens.whoami().token_id
    # no half of any secret is stored or audited in clear
    with stack.root.db.connect() as conn:
        from sqlalchemy import text

        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_tokens")).all() for v in row)
        audited = " ".join(conn.execute(text("SELECT before_json || after_json FROM audit_log")).scalars().all())
    for half in (first.split("_", 2)[2], second):
        assert half not in stored and half not in audited


def test_a_rejected_token_never_works(stack: Stack) -> None:
    alice, bob = officer(stack, "alice@operator.test"), officer(stack, "bob@operator.test")
    issued = ask(stack, alice, "auditor-desk", role=pb.ROLE_AUDITOR)
    token_id = issued.token.token_id
    err = rpc_error(lambda: alice.tokens.reject(token_id, "changed my mind"), C.PERMISSION_DENIED)
    assert "two-person rule" in err.details()
    rejected = bob.tokens.reject(token_id, "no ticket for this request")
    assert rejected.approval == pb.TOKEN_APPROVAL_REJECTED and rejected.decided_by == "bob@operator.test"
    err = rpc_error(lambda: whoami(stack, issued.secret), C.UNAUTHENTICATED)
    assert "rejected" in err.details()
    rpc_error(lambda: bob.tokens.approve(token_id), C.FAILED_PRECONDITION)
    [(subject, doc)] = audit_of(stack, token_id, "token.reject")
    assert subject == "bob@operator.test"
    assert (doc["issued_by"], doc["decided_by"], doc["reason"]) == ("alice@operator.test", "bob@operator.test", "no ticket for this request")
    assert listed(bob, token_id).approval == pb.TOKEN_APPROVAL_REJECTED
    # the issuer withdraws a request of its own by revoking it
    withdrawn = ask(stack, alice, "typo-desk").token.token_id
    assert alice.tokens.revoke(withdrawn).revoke_time.seconds > 0
    rpc_error(lambda: bob.tokens.approve(withdrawn), C.FAILED_PRECONDITION)


def test_a_request_nobody_approves_expires(stack: Stack) -> None:
    alice, bob = officer(stack, "alice@operator.test"), officer(stack, "bob@operator.test")
    issued = ask(stack, alice, "late-desk")
    token_id = issued.token.token_id
    clock = stack.root.clock
    assert isinstance(clock, FixedClock)
    clock.advance(seconds=APPROVAL_SECONDS - 1)
    assert listed(bob, token_id).approval == pb.TOKEN_APPROVAL_PENDING
    clock.advance(seconds=1)
    assert listed(bob, token_id).approval == pb.TOKEN_APPROVAL_EXPIRED
    err = rpc_error(lambda: bob.tokens.approve(token_id), C.FAILED_PRECONDITION)
    assert "APPROVAL_EXPIRED" in err.details() or "expired" in err.details()
    err = rpc_error(lambda: whoami(stack, issued.secret), C.UNAUTHENTICATED)
    assert "approval request expired" in err.details()


def test_one_officer_cannot_make_a_second_officer_to_approve_its_own_requests(stack: Stack) -> None:
    """A security officer token issued by an officer is under dual control too: its issuer never holds a working one."""
    alice, bob = officer(stack, "alice@operator.test"), officer(stack, "bob@operator.test")
    puppet = ask(stack, alice, "mallory@operator.test", role=pb.ROLE_SECURITY_OFFICER, privileges=())
    assert puppet.token.approval == pb.TOKEN_APPROVAL_PENDING
    request = ask(stack, alice, "print-desk-2").token.token_id
    rpc_error(lambda: stack.client(token=puppet.secret).tokens.approve(request), C.UNAUTHENTICATED)
    # approved by bob, mallory's token works only with bob's half, which alice never sees
    half = bob.tokens.approve(puppet.token.token_id).second_secret
    rpc_error(lambda: stack.client(token=puppet.secret).tokens.approve(request), C.UNAUTHENTICATED)
    mallory = stack.client(token=f"{puppet.secret}.{half}")
    assert mallory.tokens.approve(request).token.approval == pb.TOKEN_APPROVAL_APPROVED
    # the grantee of a token may not approve it
    for_bob = ask(stack, alice, "bob@operator.test", role=pb.ROLE_AUDITOR).token.token_id
    err = rpc_error(lambda: bob.tokens.approve(for_bob), C.PERMISSION_DENIED)
    assert "issued to themselves" in err.details()


def test_an_approval_made_through_another_replica_applies_at_the_next_call(stack: Stack, settings: Settings) -> None:
    """The authentication cache keeps accepted tokens only: a pending token refused here works as soon as another
    server sharing the database approves it, without waiting for auth_cache_seconds."""
    alice = officer(stack, "alice@operator.test")
    _, bob_bearer = stack.root.tokens.issue_security_officer("bob@operator.test")
    issued = ask(stack, alice, "replica-desk")
    for _ in range(3):
        rpc_error(lambda: whoami(stack, issued.secret), C.UNAUTHENTICATED)
    with token_administration(settings, stack.root.clock) as replica:
        _, second = replica.approve(replica.authenticate(bob_bearer), issued.token.token_id)
    assert whoami(stack, f"{issued.secret}.{second}").subject == "replica-desk"   # same clock instant: no cache wait


def test_only_operator_security_officers_decide_and_other_tenants_learn_nothing(stack: Stack) -> None:
    alice, bob = officer(stack, "alice@operator.test"), officer(stack, "bob@operator.test")
    issued = alice.tokens.rpc.IssueToken(pb.IssueTokenRequest(subject="alpha-printer", tenant_id="mvno-alpha", role=pb.ROLE_CSR,
                                                              privileges=[REVEAL]))
    token_id = issued.token.token_id
    every = ("voucher.reveal_pin", "voucher.purge", "voucher.recover")
    callers = {
        "mvno-beta admin": stack.root.tokens.issue(None, "xt-beta", "mvno-beta", Role.MVNO_ADMIN, 0, frozenset(every))[1],
        "mvno-alpha admin": stack.root.tokens.issue(None, "xt-alpha", "mvno-alpha", Role.MVNO_ADMIN, 0, frozenset(every))[1],
        "mvno-alpha csr": stack.token("mvno-alpha", "csr"),
        "operator admin": stack.root.tokens.issue(None, "xt-op", "mno", Role.OPERATOR_ADMIN, 0, frozenset(every))[1],
        "operator auditor": stack.token("mno", "auditor"),
    }
    before = database_rows(stack.root.db)
    for who, bearer in callers.items():
        caller = stack.client(token=bearer)
        for call in (lambda: caller.tokens.approve(token_id), lambda: caller.tokens.reject(token_id, "probe"),
                     lambda: caller.tokens.approve("no-such-token")):
            err = rpc_error(call, C.PERMISSION_DENIED)
            assert "only a security officer of the operator" in err.details(), who
    assert database_rows(stack.root.db) == before, "a refused decision changed the database"
    rpc_error(lambda: bob.tokens.approve("no-such-token"), C.NOT_FOUND)
    assert bob.tokens.approve(token_id).token.tenant_id == "mvno-alpha"


def test_the_security_officer_commands_approve_and_reject(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """`rulebill security-officer approve|reject TOKEN_ID` over the API with the second officer's own token."""
    from servers.admin import main

    _, alice_bearer = stack.root.tokens.issue_security_officer("alice@operator.test")
    alice = stack.client(token=alice_bearer)
    _, bob_bearer = stack.root.tokens.issue_security_officer("bob@operator.test")
    issued = ask(stack, alice, "cli-desk")
    capsys.readouterr()
    assert main(["security-officer", "approve", issued.token.token_id, "--server", stack.address, "--token", bob_bearer]) == 0
    out = capsys.readouterr().out
    second = next(line for line in out.splitlines() if line.startswith("second secret")).rsplit(" ", 1)[-1]
    assert "APPROVED" in out and whoami(stack, f"{issued.secret}.{second}").subject == "cli-desk"
    refused = ask(stack, alice, "cli-desk-2")
    assert main(["security-officer", "reject", refused.token.token_id, "--reason", "no ticket", "--json", "--server", stack.address,
                 "--token", bob_bearer]) == 0
    assert json.loads(capsys.readouterr().out)["approval"] == "TOKEN_APPROVAL_REJECTED"
    # the issuer's own approval is one line on stderr and exit 2
    again = ask(stack, alice, "cli-desk-3")
    assert main(["security-officer", "approve", again.token.token_id, "--server", stack.address, "--token", alice_bearer]) == 2
    assert "two-person rule" in capsys.readouterr().err
