"""Money checks that read a sum and then write must hold when two requests run at once: a CSR's one-off charges and
add-on purchases on one account (the profile's ``csr_limit``, 50.00 EUR for the operator), and the credit notes of
one invoice (never above what is left of it).  Over a real port, on both databases, with real threads.

On PostgreSQL each test makes the race happen every time: its own transaction holds a lock that the requests' write
waits for (a table in SHARE mode: reads go on, inserts wait; or the credit-note series' row), and it lets go only once
both requests wait on a lock.  Without the per-account (per-invoice) row lock, both have read the sum (the invoice)
by then and both write; with it, the second waits on the row before it reads.  SQLite serialises writers at
``BEGIN IMMEDIATE``: there the two requests run into each other through a barrier."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator

import grpc
import pytest

from tests.integration.billing_support import BillingStack, account_pb, account_with_subscribers, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error, until_lock_waits

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc


@contextmanager
def held(s: BillingStack, lock_sql: str) -> Iterator[Callable[[list[threading.Thread]], None]]:
    """On PostgreSQL, ``lock_sql`` run in a transaction of the test's that ends with the block; yields ``wait_for`` which
    returns once every given thread's request waits on a lock (or has ended).  On SQLite nothing is held."""
    if s.backend != "postgres":
        yield lambda threads: None
        return
    with s.root.db.connect() as conn:
        conn.exec_driver_sql(lock_sql)

        def wait_for(threads: list[threading.Thread]) -> None:
            waiting = until_lock_waits(s.root.db, len(threads), lambda: sum(not t.is_alive() for t in threads))
            assert waiting >= len(threads), f"{waiting} of {len(threads)} requests wait on a lock"

        yield wait_for
        conn.commit()


def at_once(s: BillingStack, calls: list[Callable[[], Any]], lock_sql: str, in_order: bool = False) -> list[Any]:
    """Run ``calls`` on threads released together by a barrier, with ``lock_sql`` held (PostgreSQL) until all of them
    wait; each call's result or its grpc.RpcError.  ``in_order``: started one after the other instead, each once the
    ones before wait on the lock, so that they go on in this order once it is let go (PostgreSQL queues a row's
    waiters in order); on SQLite run one after the other."""
    out: list[Any] = [None] * len(calls)
    start = threading.Barrier(1 if in_order else len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = calls[i]()
        except grpc.RpcError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with held(s, lock_sql) as wait_for:
        for k, t in enumerate(threads):
            t.start()
            if in_order:
                if s.backend != "postgres":
                    t.join()
                wait_for(threads[:k + 1])
        wait_for(threads)
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return out


def _one_refused(results: list[Any], code: grpc.StatusCode) -> tuple[Any, grpc.RpcError]:
    refused = [r for r in results if isinstance(r, grpc.RpcError)]
    done = [r for r in results if not isinstance(r, grpc.RpcError)]
    assert len(done) == 1 and len(refused) == 1, f"exactly one must pass: {results}"
    assert refused[0].code() == code, f"{refused[0].code().name}: {refused[0].details()}"
    return done[0], refused[0]


def test_two_csr_charges_at_once_cannot_both_pass_the_limit(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    admin.create_account(account_pb("ACC-RACE-OC"))
    s.at(datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    csrs = [s.billing("mno", "csr") for _ in range(2)]
    # 30.00 each: either one is within the 50.00 limit, both together are not
    calls = [lambda c=c: c.add_charge("ACC-RACE-OC", "OC_PENALTY", 30_000_000, "EUR", charge_date=date(2026, 4, 2)) for c in csrs]
    _, refused = _one_refused(at_once(s, calls, "LOCK TABLE billing_charges IN SHARE MODE"), C.PERMISSION_DENIED)
    assert "before: 30.00" in refused.details() and "50.00" in refused.details()
    # another tenant's CSR and admin name the account as a missing one, and add nothing
    for other in (s.billing("mvno-alpha", "csr"), s.billing("mvno-alpha")):
        rpc_error(lambda: other.add_charge("ACC-RACE-OC", "OC_PENALTY", 1_000_000, "EUR", tenant_id="mno"), C.NOT_FOUND)
        rpc_error(lambda: other.add_charge("ACC-RACE-OC", "OC_PENALTY", 1_000_000, "EUR"), C.NOT_FOUND)
    pending = [ln for ln in admin.preview("ACC-RACE-OC", cycle_date=date(2026, 5, 1)).invoice.lines if ln.charge_type == "one_off"]
    assert [ln.amount.amount_micros for ln in pending] == [30_000_000]


def test_two_csr_add_ons_at_once_cannot_both_pass_the_limit_nor_can_many_small_ones(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin, csr = s.billing("mno"), s.billing("mno", "csr")
    subs = account_with_subscribers(s, "ACC-RACE-AO", 2, datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    s.at(datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
    # BN_ADDON_DATA_5GB costs 10.00: a CSR buys four on the account's two subscribers (40.00), an admin any number
    for i in range(4):
        csr.buy_add_on(subs[i % 2], "BN_ADDON_DATA_5GB", f"race-ao-{i}")
    admin.buy_add_on(subs[0], "BN_ADDON_DATA_5GB", "race-ao-admin")
    # the fifth and a sixth at once: one fits under 50.00, not both
    csrs = [s.billing("mno", "csr") for _ in range(2)]
    calls = [lambda c=c, i=i: c.buy_add_on(subs[i], "BN_ADDON_DATA_5GB", f"race-ao-at-once-{i}") for i, c in enumerate(csrs)]
    _, refused = _one_refused(at_once(s, calls, "LOCK TABLE billing_addon_purchases IN SHARE MODE"), C.PERMISSION_DENIED)
    assert "before: 50.00" in refused.details() and "bill cycle" in refused.details()   # the other one counted
    # split small: one more add-on of 10.00 is refused all the same, on either subscriber
    for i, sub in enumerate(subs):
        err = rpc_error(lambda: csr.buy_add_on(sub, "BN_ADDON_DATA_5GB", f"race-ao-more-{i}"), C.PERMISSION_DENIED)
        assert "before: 50.00" in err.details()
    # another tenant's CSR names the subscribers as missing ones
    alpha_csr = s.billing("mvno-alpha", "csr")
    rpc_error(lambda: alpha_csr.buy_add_on(subs[0], "BN_ADDON_DATA_5GB", "race-ao-alpha"), C.NOT_FOUND)
    bought = sum(len(admin.list_add_ons(sub).purchases) for sub in subs)
    assert bought == 6   # four, the admin's, one of the two at once
    # the next bill cycle is a new window
    s.at(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    assert csr.buy_add_on(subs[0], "BN_ADDON_DATA_5GB", "race-ao-may").bought


def test_two_credit_notes_at_once_cannot_credit_more_than_the_invoice(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    admin = s.billing("mno")
    s.at(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    admin.create_account(account_pb("ACC-RACE-CN"))
    admin.add_charge("ACC-RACE-CN", "OC_PENALTY", 200_000_000, "EUR", "Contract breach", charge_date=date(2026, 6, 2))
    s.at(datetime(2026, 7, 2, 8, 0, tzinfo=UTC))
    list(admin.run("manual", cycle_date=date(2026, 7, 1), account_ids=["ACC-RACE-CN"]))
    inv = admin.get_invoice(admin.list_invoices(account_id="ACC-RACE-CN").invoices[0].invoice_id)
    penalty = next(ln for ln in inv.lines if ln.amount.amount_micros == 200_000_000)
    first = admin.credit_note(inv.invoice_id, "goodwill", [(penalty.line_id, 10_000_000, "EUR")])   # 190.00 of the line left
    admins = [s.billing("mno") for _ in range(2)]
    # 150.00 each: either fits what is left of the line, both do not
    calls = [lambda c=c, i=i: c.credit_note(inv.invoice_id, f"at once {i}", [(penalty.line_id, 150_000_000, "EUR")])
             for i, c in enumerate(admins)]
    series = s.root.billing.invoices.profiles["mno"].credit_note_series   # held: each note waits for its number
    lock = f"SELECT next_number FROM billing_series WHERE tenant_id = 'mno' AND series = '{series}' FOR UPDATE"
    note, refused = _one_refused(at_once(s, calls, lock), C.INVALID_ARGUMENT)
    assert "lines[0].amount" in field_violations(refused) and "40.00" in refused.details()
    after = admin.get_invoice(inv.invoice_id)
    assert after.credited.amount_micros == first.totals.tax_inclusive.amount_micros + note.totals.tax_inclusive.amount_micros
    assert after.credited.amount_micros <= after.totals.tax_inclusive.amount_micros
    # another tenant's admin credits nothing of it, by id or by number
    alpha = s.billing("mvno-alpha")
    for name in (inv.invoice_id, inv.number):
        rpc_error(lambda: alpha.credit_note(name, "probe", [(penalty.line_id, 1_000_000, "EUR")], tenant_id="mno"), C.NOT_FOUND)
        rpc_error(lambda: alpha.credit_note(name, "probe", [(penalty.line_id, 1_000_000, "EUR")]), C.NOT_FOUND)
    notes = [i for i in admin.list_invoices(account_id="ACC-RACE-CN").invoices if i.reference_id == inv.invoice_id]
    assert len(notes) == 2 and admin.get_invoice(inv.invoice_id).credited == after.credited
