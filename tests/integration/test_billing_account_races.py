"""Check-then-write requests on accounts, assignments, drafts and plan set versions must hold when two run at once.
Over a real port, on both databases, with real threads.

On PostgreSQL each test makes the race happen every time (as test_billing_money_races does): its own transaction holds a
lock that the requests' write waits for, and lets go only once every request waits on a lock.  Without the desk's lock
(the subscriber's row, the account's row, the draft's row, the tenant's plan numbering) each request has read the state
before the other one's write by then, and both write; with it, the second waits before it reads.  Where the outcome
depends on which request goes first, the requests are started one after the other, each once the one before waits
(PostgreSQL queues row-lock waiters in order).  SQLite serialises writers at ``BEGIN IMMEDIATE``: there the same calls
run one after the other (``at_once``: together through a barrier), and the same outcome is asserted."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Any, Callable

import grpc
import pytest
from sqlalchemy import text

from billing.v1 import billing_pb2 as pb
from clients.client import RulebillClient
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import precondition_reason, rpc_error, until_lock_waits
from tests.integration.test_billing_money_races import _one_refused, at_once, held
from tests.integration.test_plans_rating import sample_files

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc


def _count(s: BillingStack, sql: str, **kw: Any) -> Any:
    with s.root.db.connect() as c:
        return c.execute(text(sql), kw).scalar()


def _open_on(s: BillingStack, sub: str, accounts: tuple[str, ...]) -> list[str]:
    bc = s.billing("mno")
    return [a for a in accounts if any(x.subscriber_id == sub and not x.HasField("valid_to") for x in bc.get_account(a).assignments)]


# -- assignments -----------------------------------------------------------------------------------------------------

def _two_accounts(s: BillingStack, prefix: str) -> tuple[tuple[str, str], str]:
    """Accounts ``<prefix>-A`` and ``-B``, and a postpaid subscriber on none."""
    accounts = (f"{prefix}-A", f"{prefix}-B")
    for a in accounts:
        s.billing("mno").create_account(account_pb(a))
    return accounts, s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))[0]


def test_two_assignments_of_one_subscriber_at_once_leave_it_on_one_account(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    accounts, sub = _two_accounts(s, "ACC-RACE-AS")
    first, second = datetime(2026, 2, 2, 8, 0, tzinfo=UTC), datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    results = at_once(s, [lambda: bc.assign(accounts[0], sub, valid_from=first), lambda: bc.assign(accounts[1], sub, valid_from=second)],
                      "LOCK TABLE billing_assignments IN SHARE MODE", in_order=True)
    assert not any(isinstance(r, grpc.RpcError) for r in results), results
    # as one after the other: the subscriber moved from A to B at 9:00, billed to B alone from then on
    assert _open_on(s, sub, accounts) == [accounts[1]]
    ended = [x for x in bc.get_account(accounts[0]).assignments if x.subscriber_id == sub]
    assert len(ended) == 1 and ended[0].valid_to.ToDatetime(tzinfo=UTC) == second


def test_two_assignments_from_the_same_instant_refuse_the_second_not_internal(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    accounts, sub = _two_accounts(s, "ACC-RACE-SAME")
    when = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
    ok, refused = at_once(s, [lambda a=a: bc.assign(a, sub, valid_from=when) for a in accounts], "LOCK TABLE billing_assignments IN SHARE MODE",
                          in_order=True)
    assert not isinstance(ok, grpc.RpcError), ok
    assert isinstance(refused, grpc.RpcError) and refused.code() == C.INVALID_ARGUMENT, refused
    assert f"joined account {accounts[0]}" in refused.details()
    assert _open_on(s, sub, accounts) == [accounts[0]]


def test_a_second_open_assignment_is_refused_by_the_store(billing_stack: BillingStack) -> None:  # noqa: F811
    """uq_billing_assignments_open (billing_0011): whatever writes it, a subscriber has one open assignment, and the store
    names the conflict as a precondition the caller can act on."""
    from engine.billing.model import Assignment
    from engine.errors import FailedPrecondition

    s = billing_stack
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    from store.billing import SqlBillingUnitOfWorkFactory

    with SqlBillingUnitOfWorkFactory(s.root.uow)() as uow:
        uow.add_assignment(Assignment("mno", "ACC-STORE-A", sub, msisdn, datetime(2026, 2, 2, 8, 0, tzinfo=UTC)))
        with pytest.raises(FailedPrecondition) as exc:
            uow.add_assignment(Assignment("mno", "ACC-STORE-B", sub, msisdn, datetime(2026, 2, 2, 9, 0, tzinfo=UTC)))
        assert exc.value.reason == "ASSIGNMENT_CHANGED" and sub in str(exc.value)
        # the unit goes on after the refusal (a savepoint): a closed one beside the open one is fine
        uow.add_assignment(Assignment("mno", "ACC-STORE-C", sub, msisdn, datetime(2026, 1, 20, 8, 0, tzinfo=UTC),
                                      datetime(2026, 2, 2, 8, 0, tzinfo=UTC)))


# -- accounts --------------------------------------------------------------------------------------------------------

def test_two_creates_of_one_account_at_once_answer_already_exists(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    clients = [s.billing("mno") for _ in range(2)]
    results = at_once(s, [lambda c=c: c.create_account(account_pb("ACC-RACE-DUP")) for c in clients], "LOCK TABLE billing_accounts IN SHARE MODE")
    _, refused = _one_refused(results, C.ALREADY_EXISTS)
    assert "ACC-RACE-DUP" in refused.details()


def test_two_updates_of_one_account_at_once_keep_both_changes(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-RACE-UPD"))
    clients = [s.billing("mno") for _ in range(2)]
    results = at_once(s, [lambda: clients[0].update_account(pb.Account(account_id="ACC-RACE-UPD", name="Jeanne Dupont"), ["name"]),
                          lambda: clients[1].update_account(pb.Account(account_id="ACC-RACE-UPD", buyer_reference="PO-42"), ["buyer_reference"])],
                      "SELECT 1 FROM billing_accounts WHERE tenant_id = 'mno' AND account_id = 'ACC-RACE-UPD' FOR UPDATE")
    assert not any(isinstance(r, grpc.RpcError) for r in results), results
    got = bc.get_account("ACC-RACE-UPD").account
    assert (got.name, got.buyer_reference) == ("Jeanne Dupont", "PO-42")


def test_the_final_bill_run_closes_the_account_without_undoing_an_update_meanwhile(billing_stack: BillingStack) -> None:  # noqa: F811
    """The run reads the account when it plans, and closes it in the batch that stores the final bill: an UpdateAccount
    committed in between keeps its change (the close writes the status and its times, nothing else)."""
    from dataclasses import replace

    from engine.identity import SYSTEM

    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-RACE-FINAL"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-RACE-FINAL", sub)
    s.at(datetime(2026, 4, 10, 15, 0, tzinfo=UTC))
    s.root.subscribers.transition(replace(SYSTEM, tenant_id="mno"), sub, "deactivate")
    s.at(datetime(2026, 4, 12, 8, 0, tzinfo=UTC))
    runs: list[Any] = []
    run = threading.Thread(target=lambda: runs.extend(bc.run("final", account_ids=["ACC-RACE-FINAL"])))
    # the run waits to claim its period (PostgreSQL): the account is read by then, not closed yet
    with held(s, "LOCK TABLE billing_periods IN SHARE MODE") as wait_for:
        run.start()
        if s.backend != "postgres":
            run.join()   # SQLite: the update comes after the close, and is refused as on a closed account
        wait_for([run])
        if s.backend == "postgres":
            bc.update_account(pb.Account(account_id="ACC-RACE-FINAL", buyer_reference="PO-FINAL"), ["buyer_reference"])
    run.join(120)
    assert not run.is_alive() and runs[-1].issued == 1
    got = bc.get_account("ACC-RACE-FINAL").account
    assert got.status == pb.ACCOUNT_STATUS_CLOSED
    if s.backend == "postgres":
        assert got.buyer_reference == "PO-FINAL"
    else:
        err = rpc_error(lambda: bc.update_account(pb.Account(account_id="ACC-RACE-FINAL", buyer_reference="PO-FINAL"), ["buyer_reference"]),
                        C.FAILED_PRECONDITION)
        assert precondition_reason(err) == "ACCOUNT_CLOSED"


# -- drafts ----------------------------------------------------------------------------------------------------------

def _draft(s: BillingStack, account: str) -> str:
    bc = s.billing("mno")
    bc.create_account(account_pb(account, delivery=pb.DELIVERY_EMAIL, email=f"{account.lower()}@example.org"))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign(account, sub, valid_from=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert list(bc.run("on_demand", account_ids=[account], review=True))[-1].drafts == 1
    return bc.list_invoices(account_id=account).invoices[0].invoice_id


def _series_next(s: BillingStack) -> int:
    """The RT- series' next number (its row made by one issued invoice first, for the tests to hold)."""
    if not _count(s, "SELECT count(*) FROM billing_series WHERE tenant_id = 'mno' AND series = 'RT-'"):
        s.billing("mno").issue_drafts([_draft(s, "ACC-RACE-FIRST")])
    return int(_count(s, "SELECT next_number FROM billing_series WHERE tenant_id = 'mno' AND series = 'RT-'"))


def _gapless(s: BillingStack) -> None:
    """Every RT- number below the series' next one is on exactly one invoice."""
    numbers = sorted(int(i.number[3:]) for i in s.billing("mno").list_invoices(page_size=1000).invoices if re.fullmatch(r"RT-\d+", i.number))
    assert numbers == list(range(1, _series_next(s))), numbers


def _traces(s: BillingStack, draft: str) -> tuple[int, int, int]:
    """The draft's rows left, its invoice.issue audit entries and its queued mails."""
    return (_count(s, "SELECT count(*) FROM billing_invoices WHERE invoice_id = :i", i=draft),
            _count(s, "SELECT count(*) FROM audit_log WHERE action = 'invoice.issue' AND object_id = :i", i=draft),
            _count(s, "SELECT count(*) FROM billing_outbox WHERE invoice_id = :i", i=draft))


def test_two_issues_of_one_draft_at_once_number_it_once(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    draft = _draft(s, "ACC-RACE-ISSUE")
    before = _series_next(s)
    clients = [s.billing("mno") for _ in range(2)]
    # the series' row held, as a bill run or another issue holds it: both requests have read the draft by then
    results = at_once(s, [lambda c=c: c.issue_drafts([draft]) for c in clients],
                      "SELECT next_number FROM billing_series WHERE tenant_id = 'mno' AND series = 'RT-' FOR UPDATE")
    done, refused = _one_refused(results, C.FAILED_PRECONDITION)
    assert precondition_reason(refused) == "INVOICE_STATE" and draft in refused.details()
    assert [i.number for i in done] == [f"RT-{before:06d}"]
    assert _series_next(s) == before + 1
    assert _traces(s, draft) == (1, 1, 1)
    assert s.billing("mno").get_invoice(draft).number == done[0].number
    _gapless(s)


@pytest.mark.parametrize("issue_first", [True, False], ids=["issue-first", "discard-first"])
def test_an_issue_and_a_discard_of_one_draft_at_once(billing_stack: BillingStack, issue_first: bool) -> None:  # noqa: F811
    s = billing_stack
    draft = _draft(s, f"ACC-RACE-DISCARD-{int(issue_first)}")
    before = _series_next(s)
    issuer, discarder = s.billing("mno"), s.billing("mno")
    calls = [lambda: issuer.issue_drafts([draft]), lambda: discarder.discard_draft(draft, "not wanted")]
    # the draft's row held: the first request waits on it, then the second
    results = at_once(s, calls if issue_first else calls[::-1], f"SELECT 1 FROM billing_invoices WHERE invoice_id = '{draft}' FOR UPDATE",
                      in_order=True)
    issued, discarded = results if issue_first else results[::-1]
    if issue_first:
        assert not isinstance(issued, grpc.RpcError), issued
        assert isinstance(discarded, grpc.RpcError) and discarded.code() == C.FAILED_PRECONDITION, discarded
        assert precondition_reason(discarded) == "INVOICE_STATE" and draft in discarded.details()
        inv = s.billing("mno").get_invoice(draft)
        assert inv.state == pb.INVOICE_STATE_ISSUED and inv.lines   # nothing of it deleted
        assert _count(s, "SELECT count(*) FROM billing_periods WHERE invoice_id = :i AND status = 'invoiced'", i=draft) == 1
        assert (_series_next(s), _traces(s, draft)) == (before + 1, (1, 1, 1))
    else:
        assert not isinstance(discarded, grpc.RpcError), discarded
        assert isinstance(issued, grpc.RpcError) and issued.code() == C.NOT_FOUND, issued
        assert draft in issued.details()
        # no number used up, no audit entry, no mail for an invoice that is gone
        assert (_series_next(s), _traces(s, draft)) == (before, (0, 0, 0))
    _gapless(s)


# -- plan set versions -----------------------------------------------------------------------------------------------

def test_two_uploads_at_once_are_both_stored_as_the_next_two_versions(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    files = {f.path: f.content for f in sample_files()}
    clients = [RulebillClient(s.address, s.token("mno")) for _ in range(2)]
    s.clients.extend(clients)
    latest = max(v.version for v in clients[0].plans.list_versions(page_size=1000).items)
    results = at_once(s, [lambda c=c: c.plans.upload(files) for c in clients], "LOCK TABLE plan_set_versions IN SHARE MODE")
    assert not any(isinstance(r, grpc.RpcError) for r in results), results
    assert sorted(r.version for r in results) == [latest + 1, latest + 2]


# -- bill runs -------------------------------------------------------------------------------------------------------

def _finished_run(s: BillingStack, account: str) -> str:
    bc = s.billing("mno")
    bc.create_account(account_pb(account))
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign(account, sub)
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    runs = list(bc.run("manual", account_ids=[account]))
    assert runs[-1].issued == 1
    return str(runs[-1].run_id)


def test_a_run_that_runs_now_is_not_resumed(billing_stack: BillingStack) -> None:  # noqa: F811
    from store.billing import SqlBillingUnitOfWorkFactory

    s = billing_stack
    bc = s.billing("mno")
    run_id = _finished_run(s, "ACC-RACE-RUNNING")
    # the run's lock held as the request running it holds it (on PostgreSQL a session of its own, as another server's)
    with SqlBillingUnitOfWorkFactory(s.root.uow).run_lock(run_id) as taken:
        assert taken
        err = rpc_error(lambda: list(bc.run(resume_run_id=run_id)), C.FAILED_PRECONDITION)
        assert precondition_reason(err) == "RUN_IN_PROGRESS" and run_id in err.details()
        # another tenant learns nothing of it
        rpc_error(lambda: list(s.billing("mvno-alpha").run(resume_run_id=run_id)), C.NOT_FOUND)
    runs = list(bc.run(resume_run_id=run_id))   # let go: resumed (nothing left to bill)
    assert runs[-1].state == pb.BILL_RUN_STATE_DONE and runs[-1].issued == 1


def test_two_resumes_of_one_run_at_once_run_it_once(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    if s.backend != "postgres":
        pytest.skip("SQLite: one server process runs the run (its lock is tested above); the race needs two sessions")
    run_id = _finished_run(s, "ACC-RACE-RESUME")
    clients = [s.billing("mno") for _ in range(2)]
    # the run's row held: the resume that took the run's lock waits on it to mark the run running again, the other one
    # has read the run by then
    results: list[Any] = [None, None]

    def resume(i: int) -> None:
        try:
            results[i] = list(clients[i].run(resume_run_id=run_id))
        except grpc.RpcError as exc:
            results[i] = exc

    threads = [threading.Thread(target=resume, args=(i,)) for i in range(2)]
    with s.root.db.connect() as conn:
        conn.exec_driver_sql(f"SELECT 1 FROM billing_runs WHERE run_id = '{run_id}' FOR UPDATE")
        for t in threads:
            t.start()
        # one waits on the row, the other has ended (refused, or, without the run's lock, waits on the row too)
        until_lock_waits(s.root.db, 2, lambda: sum(not t.is_alive() for t in threads))
        conn.commit()
    for t in threads:
        t.join(120)
    done, refused = _one_refused(results, C.FAILED_PRECONDITION)
    assert precondition_reason(refused) == "RUN_IN_PROGRESS"
    assert done[-1].state == pb.BILL_RUN_STATE_DONE
