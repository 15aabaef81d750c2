"""A final bill stopped at drafts (``review``) closes its account only when its final draft is issued: discarding the
draft leaves the account open and its final period to be billed again.  A final run is an admin's (``billing.issue``),
drafts included.  Over a real port, on both databases."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from engine.identity import SYSTEM
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc


def _assigned(s: BillingStack, account_id: str) -> str:
    """An account with one subscriber since 1 April; the clock on 2 May (April has ended): the subscriber's id."""
    admin = s.billing("mno")
    admin.create_account(account_pb(account_id))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    admin.assign(account_id, sub)
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    return sub


def _deactivated(s: BillingStack, account_id: str) -> None:
    """An account billed once (April), whose only subscriber is deactivated on 3 May; the clock on 4 May."""
    sub = _assigned(s, account_id)
    list(s.billing("mno").run("on_demand", account_ids=[account_id]))
    s.at(datetime(2026, 5, 3, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))


def _drafts(admin, account_id: str) -> list[pb.Invoice]:  # type: ignore[no-untyped-def]
    return [i for i in admin.list_invoices(account_id=account_id).invoices if i.state == pb.INVOICE_STATE_DRAFT]


def test_a_discarded_final_draft_leaves_the_account_open(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin, csr = s.billing("mno"), s.billing("mno", "csr")
    _deactivated(s, "ACC-FINAL-REVIEW")
    # a final bill is an admin's, stopped at drafts or not
    rpc_error(lambda: list(csr.run("final", account_ids=["ACC-FINAL-REVIEW"])), grpc.StatusCode.PERMISSION_DENIED)
    err = rpc_error(lambda: list(csr.run("final", account_ids=["ACC-FINAL-REVIEW"], review=True)), grpc.StatusCode.PERMISSION_DENIED)
    assert "billing.issue" in err.details()
    assert not _drafts(admin, "ACC-FINAL-REVIEW")
    list(admin.run("final", account_ids=["ACC-FINAL-REVIEW"], review=True))
    drafts = _drafts(admin, "ACC-FINAL-REVIEW")
    assert len(drafts) == 1
    assert admin.get_account("ACC-FINAL-REVIEW").account.status == pb.ACCOUNT_STATUS_ACTIVE   # the draft closes nothing
    csr.discard_draft(drafts[0].invoice_id, "not now")
    assert admin.get_account("ACC-FINAL-REVIEW").account.status == pb.ACCOUNT_STATUS_ACTIVE
    # the final period is billed again, this time issued: the account is closed
    done = list(admin.run("final", account_ids=["ACC-FINAL-REVIEW"]))[-1]
    assert done.issued == 1 and not done.failures
    assert admin.get_account("ACC-FINAL-REVIEW").account.status == pb.ACCOUNT_STATUS_CLOSED


def test_issuing_the_final_draft_closes_the_account(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    _deactivated(s, "ACC-FINAL-ISSUE")
    run_id = list(admin.run("final", account_ids=["ACC-FINAL-ISSUE"], review=True))[-1].run_id
    # nor does a CSR resume an admin's final run at drafts
    csr = s.billing("mno", "csr")
    rpc_error(lambda: list(csr.run(resume_run_id=run_id, review=True)), grpc.StatusCode.PERMISSION_DENIED)
    drafts = _drafts(admin, "ACC-FINAL-ISSUE")
    assert len(drafts) == 1 and admin.get_account("ACC-FINAL-ISSUE").account.status == pb.ACCOUNT_STATUS_ACTIVE
    issued = admin.issue_drafts([drafts[0].invoice_id])
    assert [i.state for i in issued] == [pb.INVOICE_STATE_ISSUED]
    assert admin.get_account("ACC-FINAL-ISSUE").account.status == pb.ACCOUNT_STATUS_CLOSED


def test_issuing_a_regular_draft_leaves_the_account_open(billing_stack: BillingStack) -> None:  # noqa: F811
    """Only a final run's final draft closes: a draft of an on-demand run of the same account does not."""
    s = billing_stack
    admin = s.billing("mno")
    _assigned(s, "ACC-REGULAR-ISSUE")
    list(admin.run("on_demand", account_ids=["ACC-REGULAR-ISSUE"], review=True))
    admin.issue_drafts([d.invoice_id for d in _drafts(admin, "ACC-REGULAR-ISSUE")])
    assert admin.get_account("ACC-REGULAR-ISSUE").account.status == pb.ACCOUNT_STATUS_ACTIVE
