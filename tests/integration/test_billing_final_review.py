"""A final bill stopped at drafts (``review``) closes its account only when its final draft is issued: discarding the
draft leaves the account open (active again) and its final period to be billed again.  While the final draft waits the
account is closing: a one-off charge, an update, a subscriber assigned to it or moved from it and another bill run of it
are refused FAILED_PRECONDITION naming the account; the final draft is not issued while a draft of an earlier period of
the account is open, nor is that earlier draft discarded while the final one waits.  A final run is an admin's (``billing.issue``),
drafts included.  Over a real port, on both databases."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from engine.identity import SYSTEM
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import precondition_reason, rpc_error

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
    # the draft closes nothing yet: the account is closing until it is issued or discarded
    assert admin.get_account("ACC-FINAL-REVIEW").account.status == pb.ACCOUNT_STATUS_CLOSING
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
    assert len(drafts) == 1 and admin.get_account("ACC-FINAL-ISSUE").account.status == pb.ACCOUNT_STATUS_CLOSING
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


def _two_drafts(s: BillingStack, account_id: str) -> tuple[str, pb.Invoice, pb.Invoice]:
    """A final run stopped at drafts of an account never billed: April's regular draft and May's final one (its only
    subscriber deactivated on 3 May).  Returns (the subscriber, April's draft, the final draft)."""
    admin = s.billing("mno")
    sub = _assigned(s, account_id)
    s.at(datetime(2026, 5, 3, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    done = list(admin.run("final", account_ids=[account_id], review=True))[-1]
    assert done.drafts == 2 and not done.failures
    april, final = sorted(_drafts(admin, account_id), key=lambda i: i.period_start)
    return sub, april, final


def _refused_closing(fn: Any, account_id: str, reason: str = "ACCOUNT_CLOSING") -> None:
    err = rpc_error(fn, grpc.StatusCode.FAILED_PRECONDITION)
    assert account_id in err.details() and precondition_reason(err) == reason, err.details()


def test_a_closing_account_refuses_what_would_change_its_final_bill(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    acc = "ACC-CLOSING-REFUSES"
    sub, april, final = _two_drafts(s, acc)
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSING
    _refused_closing(lambda: admin.add_charge(acc, "OC_SIM"), acc)
    _refused_closing(lambda: admin.update_account(account_pb(acc, name="Jeanne Durand"), ["name"]), acc)
    newcomer, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    _refused_closing(lambda: admin.assign(acc, newcomer), acc)
    admin.create_account(account_pb("ACC-CLOSING-OTHER"))
    _refused_closing(lambda: admin.assign("ACC-CLOSING-OTHER", sub), acc)    # moving its subscriber away
    _refused_closing(lambda: list(admin.run("on_demand", account_ids=[acc])), acc)
    # the final bill last: not while April's draft is open, nor is April's discarded while the final one waits
    _refused_closing(lambda: admin.issue_drafts([final.invoice_id]), acc, "EARLIER_DRAFT_OPEN")
    _refused_closing(lambda: admin.issue_drafts([final.invoice_id, april.invoice_id]), acc, "EARLIER_DRAFT_OPEN")
    _refused_closing(lambda: admin.discard_draft(april.invoice_id, "not April"), acc)
    assert {d.invoice_id for d in _drafts(admin, acc)} == {april.invoice_id, final.invoice_id}
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSING
    issued = admin.issue_drafts([april.invoice_id, final.invoice_id])
    assert [i.state for i in issued] == [pb.INVOICE_STATE_ISSUED] * 2 and issued[0].number < issued[1].number
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSED


def test_discarding_the_final_draft_makes_the_account_active_again(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    acc = "ACC-CLOSING-DISCARD"
    _, april, final = _two_drafts(s, acc)
    admin.issue_drafts([april.invoice_id])                 # an earlier draft issued alone, before: the final may follow
    admin.discard_draft(final.invoice_id, "a charge is missing")
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_ACTIVE
    admin.add_charge(acc, "OC_SIM", charge_date=date(2026, 5, 2))   # taken again, and billed by the final run made again
    done = list(admin.run("final", account_ids=[acc]))[-1]
    assert done.issued == 1 and not done.failures
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSED
    last = [i for i in admin.list_invoices(account_id=acc).invoices if i.state == pb.INVOICE_STATE_ISSUED]
    assert any("SIM" in line.description for i in last for line in admin.get_invoice(i.invoice_id).lines)


def test_a_charge_added_while_the_final_bill_is_computed_is_on_it(billing_stack: BillingStack) -> None:  # noqa: F811
    """A one-off charge committed between the final run's read and its write sends the batch back to compute: the
    charge is on the final bill, not left un-billed on a closed account."""
    s = billing_stack
    admin = s.billing("mno")
    acc = "ACC-FINAL-LATE-CHARGE"
    _deactivated(s, acc)
    runner = s.root.billing.runs
    real_write = runner._write   # noqa: SLF001 - the seam between the run's read and its write
    added: list[str] = []

    def write_after_a_charge(*args: Any, **kw: Any) -> Any:
        if not added:
            added.append(admin.add_charge(acc, "OC_SIM", charge_date=date(2026, 5, 2)).charge_id)
        return real_write(*args, **kw)

    runner._write = write_after_a_charge  # type: ignore[method-assign]
    try:
        done = list(admin.run("final", account_ids=[acc]))[-1]
    finally:
        del runner._write   # type: ignore[method-assign]
    assert added and done.issued == 1 and not done.failures
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSED
    final = [i for i in admin.list_invoices(account_id=acc).invoices if i.period_start.startswith("2026-05")]
    assert len(final) == 1
    assert any("SIM" in line.description for line in admin.get_invoice(final[0].invoice_id).lines)


def test_a_final_bill_is_not_issued_behind_an_open_draft(billing_stack: BillingStack) -> None:  # noqa: F811
    """A final run that issues at once is refused while a draft of an earlier period of the account is open (it would
    close the account behind it); once the draft is issued the final bill follows."""
    s = billing_stack
    admin = s.billing("mno")
    acc = "ACC-FINAL-BEHIND-DRAFT"
    sub = _assigned(s, acc)
    list(admin.run("on_demand", account_ids=[acc], review=True))       # April, as a draft
    [april] = _drafts(admin, acc)
    s.at(datetime(2026, 5, 3, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    _refused_closing(lambda: list(admin.run("final", account_ids=[acc])), acc, "EARLIER_DRAFT_OPEN")
    assert admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_ACTIVE and _drafts(admin, acc) == [april]
    admin.issue_drafts([april.invoice_id])
    done = list(admin.run("final", account_ids=[acc]))[-1]
    assert done.issued == 1 and admin.get_account(acc).account.status == pb.ACCOUNT_STATUS_CLOSED
