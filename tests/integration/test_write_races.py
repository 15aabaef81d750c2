"""Two writes of the same row at once, over a real port on PostgreSQL (READ COMMITTED: a plain read takes no lock, so a
write made from an earlier read could undo another call's write).  Each race is put in order with a seam, not with
time: the first call is held in the server right after it has read the row (``Pause``) while the second call runs;
where the second call must wait for the first (a row locked for update), the test lets the first go once PostgreSQL
says the second is waiting for a lock (``until_waiting``), or once it has ended (the code before the fix).

On SQLite there is nothing to interleave: its writer takes the whole database at BEGIN IMMEDIATE, so the second call
waits for the first before it reads anything; these tests run on PostgreSQL only."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator

import grpc
import pytest

import engine.tokens
from billing.v1 import audit_pb2, subscriber_pb2 as spb, token_pb2 as tpb, voucher_pb2 as vpb, voucher_pb2_grpc as vrpc
from engine.subscribers import SubscriberDesk
from store.vouchers import SqlVoucherRepository
from tests.integration.conftest import Stack
from tests.integration.helpers import precondition_reason, rpc_error, until_lock_waits

pytestmark = pytest.mark.integration
C = grpc.StatusCode
REVEAL = "voucher.reveal_pin"


@pytest.fixture(autouse=True)
def postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's writer serialises whole units at BEGIN IMMEDIATE: no read can interleave with a write")


class Pause:
    """A seam around a function of the server: its first call after the test started returns only when the test says
    ``go``; ``reached`` is set once that call has done its work (its row read).  Later calls pass straight through."""

    def __init__(self, mp: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        self._first = True
        self._lock = threading.Lock()
        original = getattr(owner, name)

        def paused(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            with self._lock:
                mine, self._first = self._first, False
            if mine:
                self.reached.set()
                self.go.wait(120)   # a safety net for a broken test, not a timing: the test sets go
            return out

        mp.setattr(owner, name, paused)

    def wait(self) -> None:
        assert self.reached.wait(120), "the paused call never reached its seam"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as p:
        yield p


def until_waiting(stack: Stack, call: Future[Any]) -> None:
    """Return once ``call`` has ended or a backend of the test database waits for another's lock (each look a fresh
    snapshot of the server's activity: one statement per transaction)."""
    until_lock_waits(stack.root.db, 1, lambda: int(call.done()))


def audit_actions(stack: Stack, object_type: str, object_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries = stack.client("mno", "auditor").audit.rpc.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(
        object_type=object_type, object_id=object_id)).entries
    return [(e.action, json.loads(e.after_json)) for e in entries]


# --- tokens: dual control -------------------------------------------------------------------------------------------

def officers(stack: Stack, *names: str) -> list[Any]:
    return [stack.client(token=stack.root.tokens.issue_security_officer(f"{n}@operator.test")[1]) for n in names]


def pending_request(alice: Any, grantee: str) -> tpb.IssueTokenResponse:
    issued = alice.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject=grantee, tenant_id="mno", role=tpb.ROLE_CSR,
                                                               privileges=[REVEAL]))
    assert issued.token.approval == tpb.TOKEN_APPROVAL_PENDING
    return issued


def stored_token(stack: Stack, token_id: str) -> Any:
    with stack.root.uow(read_only=True) as uow:
        return uow.tokens.get(token_id)


def test_an_approval_that_read_the_request_before_its_issuer_revoked_it_takes_no_effect(
        stack: Stack, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = officers(stack, "alice", "bob")
    issued = pending_request(alice, "night-desk")
    token_id = issued.token.token_id
    seam = Pause(monkeypatch, engine.tokens, "_check_second_officer")   # bob's approval: the request read and checked
    approval = pool.submit(lambda: bob.tokens.rpc.ApproveToken(tpb.ApproveTokenRequest(token_id=token_id)))
    seam.wait()
    alice.tokens.rpc.RevokeToken(tpb.RevokeTokenRequest(token_id=token_id))   # the issuer withdraws meanwhile
    seam.go.set()
    err = rpc_error(approval.result, C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "TOKEN_NOT_PENDING"
    stored = stored_token(stack, token_id)
    assert stored.revoke_time is not None and stored.approval.value == "pending" and stored.approval_hash == ""
    # the audit says what happened: a revocation, and no approval
    assert [a for a, _ in audit_actions(stack, "token", token_id)] == ["token.issue", "privilege.grant", "token.revoke"]


def test_of_an_approval_and_a_rejection_at_once_only_the_first_written_stands(
        stack: Stack, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, carol = officers(stack, "alice2", "bob2", "carol2")
    issued = pending_request(alice, "day-desk")
    token_id = issued.token.token_id
    seam = Pause(monkeypatch, engine.tokens, "_check_second_officer")
    approval = pool.submit(lambda: bob.tokens.rpc.ApproveToken(tpb.ApproveTokenRequest(token_id=token_id)))
    seam.wait()
    rejected = carol.tokens.rpc.RejectToken(tpb.RejectTokenRequest(token_id=token_id, reason="not agreed")).token
    assert rejected.approval == tpb.TOKEN_APPROVAL_REJECTED
    seam.go.set()
    err = rpc_error(approval.result, C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "TOKEN_NOT_PENDING"
    stored = stored_token(stack, token_id)
    assert (stored.approval.value, stored.decided_by, stored.approval_hash) == ("rejected", "carol2@operator.test", "")
    actions = audit_actions(stack, "token", token_id)
    assert [a for a, _ in actions if a in ("token.approve", "token.reject")] == ["token.reject"]


def test_a_revocation_that_read_the_token_before_its_approval_still_revokes_it(
        stack: Stack, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = officers(stack, "alice3", "bob3")
    issued = pending_request(alice, "late-desk")
    token_id = issued.token.token_id
    seam = Pause(monkeypatch, engine.tokens, "_unrevoked_token")   # alice's revocation: the token read, not revoked
    revocation = pool.submit(lambda: alice.tokens.rpc.RevokeToken(tpb.RevokeTokenRequest(token_id=token_id)))
    seam.wait()
    approved = bob.tokens.rpc.ApproveToken(tpb.ApproveTokenRequest(token_id=token_id))
    seam.go.set()
    assert revocation.result().token.HasField("revoke_time")
    stored = stored_token(stack, token_id)
    assert stored.approval.value == "approved" and stored.revoke_time is not None
    bearer = f"{issued.secret}.{approved.second_secret}"
    rpc_error(lambda: stack.client(token=bearer).tokens.whoami(), C.UNAUTHENTICATED)


# --- subscribers ----------------------------------------------------------------------------------------------------

def live_subscriber(stack: Stack) -> tuple[Any, str]:
    csr = stack.client("mvno-alpha", "csr")
    s = csr.subscribers.rpc.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
        msisdn=stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="ACC-R", payment_type=spb.PAYMENT_TYPE_POSTPAID,
        tariff_plan="TP_POSTPAID_SMART")).subscriber
    csr.subscribers.rpc.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=s.subscriber_id))
    return csr, s.subscriber_id


def stored_subscriber(stack: Stack, subscriber_id: str) -> Any:
    with stack.root.uow(read_only=True) as uow:
        return uow.subscribers.get(subscriber_id)


def test_a_bar_that_read_the_subscriber_before_a_deactivation_does_not_bring_it_back(
        stack: Stack, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    csr, sid = live_subscriber(stack)
    seam = Pause(monkeypatch, SubscriberDesk, "_load")   # the bar's load: the row read (and, fixed, locked)
    bar = pool.submit(lambda: csr.subscribers.rpc.SetSubscriberBarring(spb.SetSubscriberBarringRequest(
        subscriber_id=sid, flag="bar_international", barred=True, reason="fraud")))
    seam.wait()
    deactivation = pool.submit(lambda: csr.subscribers.rpc.DeactivateSubscriber(spb.DeactivateSubscriberRequest(
        subscriber_id=sid, reason="customer left")))
    until_waiting(stack, deactivation)
    seam.go.set()
    bar.result()
    assert deactivation.result().subscriber.status == spb.SUBSCRIBER_STATUS_DEACTIVATED
    stored = stored_subscriber(stack, sid)
    assert stored.status.value == "deactivated" and stored.deactivate_time is not None
    assert stored.barring_flags == ("bar_international",)   # the bar came first and stays
    with stack.root.uow(read_only=True) as uow:
        assert uow.subscribers.get_live_by_msisdn(stored.msisdn) is None


def test_a_deactivation_that_read_the_subscriber_before_a_bar_does_not_lose_the_bar_silently(
        stack: Stack, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    csr, sid = live_subscriber(stack)
    seam = Pause(monkeypatch, SubscriberDesk, "_load")   # the deactivation's load
    deactivation = pool.submit(lambda: csr.subscribers.rpc.DeactivateSubscriber(spb.DeactivateSubscriberRequest(
        subscriber_id=sid, reason="customer left")))
    seam.wait()
    bar = pool.submit(lambda: csr.subscribers.rpc.SetSubscriberBarring(spb.SetSubscriberBarringRequest(
        subscriber_id=sid, flag="bar_international", barred=True, reason="fraud")))
    until_waiting(stack, bar)
    seam.go.set()
    deactivation.result()
    err = rpc_error(bar.result, C.FAILED_PRECONDITION)   # it reads the deactivated subscriber the first call left
    assert precondition_reason(err) == "SUBSCRIBER_STATE"
    stored = stored_subscriber(stack, sid)
    assert (stored.status.value, stored.barring_flags) == ("deactivated", ())
    # no bar audited that the subscriber does not carry
    assert "subscriber.bar" not in [a for a, _ in audit_actions(stack, "subscriber", sid)]


# --- vouchers: amendments -------------------------------------------------------------------------------------------

def test_two_amendments_of_one_voucher_at_once_both_stand(stack: Stack, pool: ThreadPoolExecutor,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    op = stack.client("mno").stub(vrpc.VoucherServiceStub)
    events = list(op.GenerateBatch(vpb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=2)))
    serial = events[-1].batch.first_serial
    seam = Pause(monkeypatch, SqlVoucherRepository, "get_voucher")   # the first amendment's read of the voucher
    first = pool.submit(lambda: op.AmendVoucher(vpb.AmendVoucherRequest(serial=serial, face_value="11.00")))
    seam.wait()
    second = pool.submit(lambda: op.AmendVoucher(vpb.AmendVoucherRequest(serial=serial, dealer="kiosk-9", set_dealer=True)))
    until_waiting(stack, second)
    seam.go.set()
    assert first.result().voucher.face_value.amount_micros == 11_000_000
    after = second.result().voucher
    assert (after.face_value.amount_micros, after.dealer) == (11_000_000, "kiosk-9")
    got = op.GetVoucher(vpb.GetVoucherRequest(serial=serial)).voucher
    assert (got.face_value.amount_micros, got.dealer) == (11_000_000, "kiosk-9")
    # each audit entry's after is what the voucher really held once it was written
    amends = [after for a, after in audit_actions(stack, "voucher", str(serial)) if a == "voucher.amend"]
    assert amends == [{"face_value_micros": 11_000_000}, {"dealer": "kiosk-9"}]
