"""A CSR's "bill now" (an interim bill) over a real port and the CLI, on SQLite and PostgreSQL: it bills the days since
the last bill up to yesterday and nothing in advance; the next regular bill covers the rest of the cycle, prorated on the
same cycle, so no day, CDR or fee is billed twice and the cycle's fee adds up to the plan's fee exactly."""

from __future__ import annotations

from datetime import date, datetime, timezone

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from clients.cli import main
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, precondition_reason, rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode


def lines(inv: pb.Invoice, kind: str) -> list[tuple[str, str, int]]:
    return [(ln.period_start, ln.period_end, ln.amount.amount_micros) for ln in inv.lines if ln.charge_type == kind]


def test_an_interim_bill_and_the_rest_of_the_cycle_bill_nothing_twice(billing_stack: BillingStack,  # noqa: F811
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-INT"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-INT", sub)
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-INT"]))                          # February; March's 9.99 in advance
    [feb] = bc.list_invoices(account_id="ACC-INT").invoices
    assert [m for _s, e, m in lines(bc.get_invoice(feb.invoice_id), "fee") if e == "2026-03-31"] == [9_990_000]
    early = s.rate("mno", msisdn, [(datetime(2026, 3, 5, 10, 0, tzinfo=UTC), 600, "4930123456")])
    today = s.rate("mno", msisdn, [(datetime(2026, 3, 11, 6, 0, tzinfo=UTC), 300, "4930123456")])   # today: not on the interim bill

    # an interim bill is an on-demand bill of one account
    err = rpc_error(lambda: list(bc.run("manual", cycle_date=date(2026, 3, 1), interim=True)), C.INVALID_ARGUMENT)
    assert "interim" in field_violations(err)

    # "bill now" on 11 March from the command line: 1 to 10 March, the usage so far, nothing in advance
    s.at(datetime(2026, 3, 11, 8, 0, tzinfo=UTC))
    code = main(["bills", "run", "--interim", "--account", "ACC-INT", "--server", s.address, "--token", s.token("mno", "operator_admin")])
    assert code == 0 and "1 issued" in capsys.readouterr().out
    interim = bc.get_invoice(next(i.invoice_id for i in bc.list_invoices(account_id="ACC-INT").invoices if i.invoice_id != feb.invoice_id))
    assert (interim.period_start, interim.period_end) == ("2026-03-01", "2026-03-10")
    # 10 of March's 31 days of 9.99 cost 3.22; 9.99 was charged in advance: 6.77 back, and no April in advance
    assert lines(interim, "fee") == [("2026-03-01", "2026-03-10", -6_770_000)]
    usage = lines(interim, "usage")
    assert usage and sum(m for *_x, m in usage) == sum(r.charge_micros for r in early)
    # twice the same day: nothing left to bill, nothing issued
    err = rpc_error(lambda: list(bc.run("on_demand", account_ids=["ACC-INT"], interim=True)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PERIOD_ALREADY_BILLED" and "ACC-INT" in err.details()
    preview = bc.preview("ACC-INT").invoice
    assert (preview.period_start, preview.period_end) == ("2026-03-11", "2026-03-31")

    # the cycle run of 1 April bills the rest of March: 21 days, 9.99 - 3.22 = 6.77 (the cycle's fee adds up to 9.99)
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    run = list(bc.run("manual", cycle_date=date(2026, 4, 1)))[-1]
    assert run.failed == 0 and run.issued >= 1
    rest = [bc.get_invoice(i.invoice_id) for i in bc.list_invoices(account_id="ACC-INT").invoices
            if i.invoice_id not in (feb.invoice_id, interim.invoice_id)]
    assert len(rest) == 1 and (rest[0].period_start, rest[0].period_end) == ("2026-03-11", "2026-03-31")
    fees = lines(rest[0], "fee")
    assert ("2026-03-11", "2026-03-31", 6_770_000) in fees and ("2026-04-01", "2026-04-30", 9_990_000) in fees
    assert sum(m for *_x, m in lines(rest[0], "usage")) == sum(r.charge_micros for r in today)   # the call of 11 March only
    err = rpc_error(lambda: list(bc.run("manual", cycle_date=date(2026, 4, 1), account_ids=["ACC-INT"])), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PERIOD_ALREADY_BILLED"


def test_an_interim_run_killed_after_it_opened_resumes_as_the_same_interim_bill(billing_stack: BillingStack) -> None:  # noqa: F811
    """The run keeps its interim flag (billing_0006): resumed by its id, it bills the days up to yesterday again, not
    the account's due period with the next month in advance."""
    from dataclasses import replace

    from engine.billing.ports import RunMode
    from engine.billing.runs import RunRequest
    from engine.identity import SYSTEM

    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-INT-KILLED"))
    sub, _msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-INT-KILLED", sub)
    s.at(datetime(2026, 5, 13, 8, 0, tzinfo=UTC))
    # what a process killed right after opening the run leaves behind: the run, running, nothing billed
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    request = RunRequest("mno", RunMode.ON_DEMAND, account_ids=("ACC-INT-KILLED",), interim=True)
    opened = s.root.billing.runs._open_run(principal, "mno", request, s.clock.now())  # noqa: SLF001 - the crash point
    assert bc.get_run(opened.run_id).state == pb.BILL_RUN_STATE_RUNNING
    # a resume naming arguments other than the run's own is refused field by field, and bills nothing
    err = rpc_error(lambda: list(bc.run("manual", cycle_date=date(2026, 5, 1), account_ids=["ACC-OTHER"], review=True,
                                        resume_run_id=opened.run_id)), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"mode", "cycle_date", "account_ids", "review"}
    assert bc.list_invoices(account_id="ACC-INT-KILLED").invoices == []
    # its own arguments named again are accepted (as is naming none: the CLI's `bills run --resume RUN_ID`)
    done = list(bc.run("on_demand", account_ids=["ACC-INT-KILLED"], interim=True, resume_run_id=opened.run_id))[-1]
    assert (done.run_id, done.issued, done.failed) == (opened.run_id, 1, 0)
    [bill] = [bc.get_invoice(i.invoice_id) for i in bc.list_invoices(account_id="ACC-INT-KILLED").invoices]
    assert (bill.period_start, bill.period_end) == ("2026-05-01", "2026-05-12")
    assert [e for _s, e, _m in lines(bill, "fee")] == ["2026-05-12"]          # nothing of June in advance
