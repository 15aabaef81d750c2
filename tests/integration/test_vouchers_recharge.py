"""Recharge over a real port on SQLite and PostgreSQL, with an injected clock: one-step redemption, the two-step
redemption rules/lifecycle declares (reserve, commit, release, recover on timeout), the lockout under concurrency,
idempotency, and the SQL round trips one redemption costs."""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import event, func, select

from billing.v1 import voucher_pb2 as pb
from clients.cli import main
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.subscribers import NewSubscriber, PaymentType
from engine.vouchers.pins import luhn_check_digit
from engine.vouchers.recharge import RechargeRefused
from engine.ports import AuditFilter
from engine.settings import Settings
from store.vouchers import prepaid_balances, recharge_guards, vouchers
from tests.integration.conftest import Stack
from tests.integration.helpers import precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, pins_of, vs
from tests.integration.conftest import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
C = grpc.StatusCode
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Iterator[Stack]:
    """A server whose clock the tests move: expiry, bars and reservation timeouts without sleeping."""
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0, max_workers=32,
                        voucher_reservation_timeout_seconds=600)
    with running_stack(settings, clock) as s:
        yield s


def subscribers(stack: Stack, n: int, tenant: str = "mno") -> list[str]:
    """``n`` live prepaid subscribers, provisioned in-process (the subject here is recharge, not provisioning)."""
    numbers = []
    for _ in range(n):
        msisdn = stack.unique_msisdn()
        stack.root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
            tenant, msisdn, stack.unique_imsi(), "ACC-PP", PaymentType.PREPAID, "TP_PREPAID_FLEX"))
        numbers.append(msisdn)
    return numbers


def wrong(pin: str) -> str:
    return _guesses(pin, 1)[0]


def one_pin(stack: Stack, **kw: Any) -> tuple[pb.VoucherBatch, str]:
    op = vs(stack)
    batch = activate(op, generate(op, count=1, **kw).batch_id)
    return batch, pins_of(stack, batch)[batch.first_serial]


def together(n: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(i)`` in ``n`` threads released at once; each result or the refusal reason / status code."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = attempt(i)
        except grpc.RpcError as err:
            results[i] = precondition_reason(err) if err.code() == C.FAILED_PRECONDITION else err.code()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def guard(stack: Stack, msisdn: str) -> tuple[int, Any]:
    with stack.root.db.connect() as conn:
        row = conn.execute(select(recharge_guards.c.failed_attempts, recharge_guards.c.barred_until)
                           .where(recharge_guards.c.msisdn == msisdn)).first()
    return (int(row[0]), row[1]) if row else (0, None)


def test_a_hundred_concurrent_redemptions_of_one_pin_give_exactly_one_credit(stack: Stack) -> None:
    batch, pin = one_pin(stack)
    numbers = subscribers(stack, 100)
    clients = [vs(stack, "mno", "csr") for _ in range(8)]
    results = together(100, lambda i: clients[i % 8].Redeem(pb.RedeemRequest(msisdn=numbers[i], pin=pin, request_id=f"h-{numbers[i]}")))
    wins = [r for r in results if isinstance(r, pb.RedeemResponse)]
    assert len(wins) == 1 and results.count("VOUCHER_NOT_ACTIVE") == 99, results
    with stack.root.db.connect() as conn:
        total = conn.execute(select(func.sum(prepaid_balances.c.balance_micros)).where(prepaid_balances.c.msisdn.in_(numbers))).scalar()
        state, holder = conn.execute(select(vouchers.c.state, vouchers.c.redeemed_by).where(vouchers.c.serial == batch.first_serial)).one()
    assert total == 10_000_000 and state == "used" and holder == wins[0].request_id[2:]


def _guesses(pin: str, n: int) -> list[str]:
    """``n`` different wrong PINs with valid check digits."""
    out = []
    for i in range(n):
        payload = ("1" if pin[0] != "1" else "2") + pin[1:12] + f"{i:03d}"
        out.append(payload + luhn_check_digit(payload))
    return out


def test_concurrent_wrong_guesses_stop_at_the_lockout_limit(stack: Stack) -> None:
    """Issue #13 item 10: 20 different wrong PINs at once; exactly 5 reach the vouchers, the rest meet the bar."""
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    guesses = _guesses(pin, 20)
    csr = [vs(stack, "mno", "csr") for _ in range(4)]
    results = together(20, lambda i: csr[i % 4].Redeem(pb.RedeemRequest(msisdn=msisdn, pin=guesses[i], request_id=f"g{i}-{msisdn}")))
    assert (results.count("PIN_UNKNOWN"), results.count("RECHARGE_BARRED")) == (5, 15), results
    assert guard(stack, msisdn)[1] is not None
    err = rpc_error(lambda: csr[0].Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"right-{msisdn}")), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "RECHARGE_BARRED"
    assert vs(stack).GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.state == pb.VOUCHER_STATE_ACTIVE


def test_the_right_pin_among_concurrent_guesses_is_found_only_within_the_limit(stack: Stack) -> None:
    """The attacker's right PIN can only be among the first 5 attempts that reach the vouchers (in commit order)."""
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    guesses = _guesses(pin, 19) + [pin]
    csr = [vs(stack, "mno", "csr") for _ in range(4)]
    results = together(20, lambda i: csr[i % 4].Redeem(pb.RedeemRequest(msisdn=msisdn, pin=guesses[i], request_id=f"a{i}-{msisdn}")))
    with stack.root.uow() as uow:
        entries = [e for e in uow.audit.list(AuditFilter(), None, 100_000) if e.request_id.endswith(f"-{msisdn}")]
    order = [e.action for e in sorted(entries, key=lambda e: e.sequence)]
    if "voucher.redeem" in order:  # found: fewer than 5 wrong guesses were looked up before it
        assert order.index("voucher.redeem") <= 4, order
    else:
        assert order == ["voucher.redeem_failed"] * 5 and results.count("RECHARGE_BARRED") == 15, (order, results)


def test_same_request_id_with_another_pin_is_refused_and_changes_nothing(stack: Stack) -> None:
    """Issue #13 item 11."""
    op, csr = vs(stack), vs(stack, "mno", "csr")
    batch = activate(op, generate(op, count=2).batch_id)
    pins = pins_of(stack, batch)
    [msisdn] = subscribers(stack, 1)
    first = csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"same-{msisdn}"))
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial + 1], request_id=f"same-{msisdn}")),
                    C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "REQUEST_ID_REUSED" and "another voucher" in err.details()
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial + 1)).voucher.state == pb.VOUCHER_STATE_ACTIVE
    assert csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"same-{msisdn}")) == first
    # the answer tells whether the PIN is the earlier voucher's: a guess, counted (vouchers_0006); the retry is not
    assert guard(stack, msisdn)[0] == 1


def test_a_subscribers_concurrent_double_submissions_are_not_wrong_guesses(stack: Stack) -> None:
    """Issue #13 item 11: the owner's app sends one valid PIN six times at once, each with its own request id."""
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    csr = [vs(stack, "mno", "csr") for _ in range(3)]
    results = together(6, lambda i: csr[i % 3].Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"d{i}-{msisdn}")))
    assert len([r for r in results if isinstance(r, pb.RedeemResponse)]) == 1
    assert results.count("VOUCHER_NOT_ACTIVE") == 5
    assert guard(stack, msisdn) == (0, None)  # not counted, not barred
    # and the bar never comes from them: a right PIN still works
    _, other = one_pin(stack)
    assert vs(stack, "mno", "csr").Redeem(pb.RedeemRequest(msisdn=msisdn, pin=other, request_id=f"after-{msisdn}")).credited.amount_micros


def test_expiry_follows_the_injected_clock(stack: Stack, clock: FixedClock) -> None:
    """Issue #9 item 7: no sleeping; the server's clock moves."""
    op, csr = vs(stack), vs(stack, "mno", "csr")
    soon = Timestamp()
    soon.FromDatetime(clock.now() + timedelta(hours=1))
    batch = activate(op, generate(op, count=4, expire_time=soon).batch_id)
    pins = pins_of(stack, batch)
    [msisdn] = subscribers(stack, 1)
    assert op.ExpireDueVouchers(pb.ExpireDueVouchersRequest()).result.changed_count == 0
    clock.advance(hours=1)
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"exp-{msisdn}")),
                    C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "VOUCHER_EXPIRED"
    result = op.ExpireDueVouchers(pb.ExpireDueVouchersRequest()).result
    assert result.changed_count == 4
    states = {v.state for m in op.StreamVouchers(pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id)))
              for v in m.vouchers}
    assert states == {pb.VOUCHER_STATE_EXPIRED}


def test_expire_with_nothing_due_is_success_with_a_count_of_zero(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #13 item 18: a scheduled job must not fail when there is nothing to do."""
    op = vs(stack)
    op.ExpireDueVouchers(pb.ExpireDueVouchersRequest())  # whatever was due is done
    assert op.ExpireDueVouchers(pb.ExpireDueVouchersRequest()).result.changed_count == 0
    code = main(["vouchers", "expire", "--json", "--server", stack.address, "--token", stack.token("mno")])
    out, err = capsys.readouterr()
    assert (code, err, json.loads(out)["changed_count"]) == (0, "", "0")


def test_two_step_reserve_then_commit(stack: Stack) -> None:
    op, ivr = vs(stack), vs(stack, "mno", "csr")
    batch = activate(op, generate(op, "vp-mno-eur-25", 1).batch_id)
    pin = pins_of(stack, batch)[batch.first_serial]
    [msisdn] = subscribers(stack, 1)
    held = ivr.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pin, request_id=f"res-{msisdn}")).reservation
    assert (held.reservation_id, held.serial, held.status, held.face_value.amount_micros) == (
        f"res-{msisdn}", batch.first_serial, pb.RESERVATION_STATUS_RESERVED, 25_000_000)
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.state == pb.VOUCHER_STATE_RESERVED
    # the same reservation request again: the same reservation; a one-step redeem of the held voucher is refused
    assert ivr.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pin, request_id=f"res-{msisdn}")).reservation == held
    err = rpc_error(lambda: ivr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"r-{msisdn}")), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "VOUCHER_NOT_ACTIVE"
    with stack.root.db.connect() as conn:
        assert conn.execute(select(prepaid_balances.c.balance_micros).where(prepaid_balances.c.msisdn == msisdn)).scalar() is None
    done = ivr.CommitReservation(pb.CommitReservationRequest(reservation_id=held.reservation_id))
    assert (done.redemption.credited.amount_micros, done.redemption.balance.amount_micros) == (25_000_000, 25_000_000)
    assert done.reservation.status == pb.RESERVATION_STATUS_COMMITTED
    again = ivr.CommitReservation(pb.CommitReservationRequest(reservation_id=held.reservation_id))
    assert (again.redemption, again.reservation) == (done.redemption, done.reservation)  # idempotent: no second credit
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.state == pb.VOUCHER_STATE_USED
    err = rpc_error(lambda: ivr.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id=held.reservation_id)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "RESERVATION_SETTLED"
    rpc_error(lambda: ivr.CommitReservation(pb.CommitReservationRequest(reservation_id="nope")), C.NOT_FOUND)
    with stack.root.db.connect() as conn:
        assert conn.execute(select(prepaid_balances.c.balance_micros).where(prepaid_balances.c.msisdn == msisdn)).scalar() == 25_000_000


def test_two_step_release_gives_the_voucher_back(stack: Stack) -> None:
    op, ivr = vs(stack), vs(stack, "mno", "csr")
    batch, pin = one_pin(stack)
    [msisdn, other] = subscribers(stack, 2)
    held = ivr.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pin, request_id=f"rel-{msisdn}")).reservation
    out = ivr.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id=held.reservation_id, reason="caller hung up")).reservation
    assert out.status == pb.RESERVATION_STATUS_RELEASED
    v = op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher
    assert (v.state, v.redeemed_by) == (pb.VOUCHER_STATE_ACTIVE, "")
    err = rpc_error(lambda: ivr.CommitReservation(pb.CommitReservationRequest(reservation_id=held.reservation_id)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "RESERVATION_SETTLED"
    assert ivr.Redeem(pb.RedeemRequest(msisdn=other, pin=pin, request_id=f"after-rel-{other}")).serial == batch.first_serial


def test_reservations_nobody_settles_are_recovered_on_timeout(stack: Stack, clock: FixedClock) -> None:
    op, ivr = vs(stack), vs(stack, "mno", "csr")
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    held = ivr.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pin, request_id=f"stale-{msisdn}")).reservation
    assert op.RecoverReservations(pb.RecoverReservationsRequest()).result.changed_count == 0  # not yet (timeout: 600 s)
    clock.advance(seconds=601)
    result = op.RecoverReservations(pb.RecoverReservationsRequest()).result
    assert [(c.from_state, c.to_state) for c in result.changed] == [(pb.VOUCHER_STATE_RESERVED, pb.VOUCHER_STATE_PENDING)]
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.state == pb.VOUCHER_STATE_PENDING
    # pending: customer care settles it (commit from pending is allowed by rules/lifecycle/voucher.yaml)
    done = ivr.CommitReservation(pb.CommitReservationRequest(reservation_id=held.reservation_id))
    assert done.redemption.credited.amount_micros == 10_000_000
    assert op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher.state == pb.VOUCHER_STATE_USED


def test_two_step_over_the_cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    flags = ["--server", stack.address, "--token", stack.token("mno", "csr")]
    assert main(["vouchers", "reserve", msisdn, pin, "--request-id", f"cli-{msisdn}", "--json", *flags]) == 0
    assert f"cli-{msisdn}" in capsys.readouterr().out
    assert main(["vouchers", "commit", f"cli-{msisdn}", "--json", *flags]) == 0
    assert '"amount_micros": "10000000"' in capsys.readouterr().out
    assert main(["vouchers", "recover-reservations", "--older-than", "0", "--json",
                 "--server", stack.address, "--token", stack.token("mno")]) == 0
    capsys.readouterr()


class _Statements:
    """What reaches the database, counted at the driver through SQLAlchemy's pool events.  SQLite: every statement the
    library executes on the recharge writer's connection, from SQLite's own trace hook (a trigger's sub-programs repeat
    the statement that fired them and are folded into it).  PostgreSQL: the wire itself, traced by libpq on the
    recharge pool's one connection -- a round trip is one ReadyForQuery from the server, so a BEGIN, a COMMIT or a
    pool ping before use would each count.  On both, the main pool must not be used at all."""

    def __init__(self, main: Any, hot: Any, postgres: bool) -> None:
        self.sql: list[str] = []
        self.round_trips = 0
        self.main_checkouts = 0
        self._main, self._hot, self._postgres = main, hot, postgres
        self._trace = tempfile.TemporaryFile()

    def __enter__(self) -> "_Statements":
        event.listen(self._main.pool, "checkout", self._main_checkout)
        if self._postgres:
            from psycopg import pq

            self._hot.dispose()  # one connection from here on: the one traced
            raw = self._hot.raw_connection()
            self._traced = raw.dbapi_connection
            self._traced.pgconn.trace(self._trace.fileno())
            self._traced.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            raw.close()
        else:
            event.listen(self._hot.pool, "checkout", self._checkout)
            event.listen(self._hot.pool, "checkin", self._checkin)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self._main.pool, "checkout", self._main_checkout)
        if self._postgres:
            assert self._hot.pool.checkedin() == 1  # the traced connection served the call
            self._traced.pgconn.untrace()  # flushes libpq's trace stream
            self._trace.seek(0)
            self.round_trips = sum(1 for line in self._trace.read().decode().splitlines() if "ReadyForQuery" in line)
            self._hot.dispose()
        else:
            event.remove(self._hot.pool, "checkout", self._checkout)
            event.remove(self._hot.pool, "checkin", self._checkin)
        self._trace.close()

    def _statement(self, statement: str) -> None:
        text = " ".join(statement.split())[:60]
        if not self.sql or self.sql[-1] != text:
            self.sql.append(text)

    def _main_checkout(self, *args: Any) -> None:
        # the running server's own periodic work (the health monitor's database probe, the bill-run scheduler) may
        # check out the main pool at any moment: a checkout of the redemption is one made by any other thread
        if threading.current_thread().name not in ("health-monitor", "billing-scheduler"):
            self.main_checkouts += 1

    def _checkout(self, dbapi_conn: Any, *args: Any) -> None:
        dbapi_conn.set_trace_callback(self._statement)

    def _checkin(self, dbapi_conn: Any, *args: Any) -> None:
        dbapi_conn.set_trace_callback(None)

    def transactions(self) -> list[list[str]]:
        """The traced SQLite statements cut into transactions, without their BEGIN and COMMIT / ROLLBACK."""
        out: list[list[str]] = []
        for text in self.sql:
            if text == "BEGIN IMMEDIATE":
                out.append([])
            elif text not in ("COMMIT", "ROLLBACK"):
                out[-1].append(text)
        return out


def _recharge_pool(stack: Stack) -> Any:
    """The recharge's own connections: PostgreSQL's autocommit pool, or the SQLite writer thread's connection."""
    return stack.root.vouchers.recharger._uow._hot.engine


def test_one_redemption_is_one_round_trip_on_postgresql_and_three_statements_on_sqlite(stack: Stack) -> None:
    """Issue #10: counted at the driver (SQLite) and on the wire (PostgreSQL), for the product path (the Recharger the
    servicer calls); the bearer-token check of the RPC around it is not part of this count."""
    batch, pin = one_pin(stack)
    [msisdn] = subscribers(stack, 1)
    parts = stack.root.vouchers
    admin = replace(SYSTEM, tenant_id="mno", subject="rt")
    for attempt in range(3):  # psycopg prepares a statement after its 5th use: before and after look the same on the wire
        with _Statements(stack.root.db, _recharge_pool(stack), stack.backend == "postgres") as seen:
            if attempt == 0:
                parts.recharger.redeem(admin, msisdn, pin, f"rt-{msisdn}")
            else:
                with pytest.raises(RechargeRefused):  # a wrong PIN: counted and audited, same bound
                    parts.recharger.redeem(admin, msisdn, wrong(pin), f"rt{attempt}-{msisdn}")
        if stack.backend == "postgres":
            # one statement on an autocommit connection of the recharge pool: no BEGIN, no COMMIT, no ping; the
            # main pool is not even checked out
            assert (seen.round_trips, seen.main_checkouts, seen.sql) == (1, 0, []), (seen.round_trips, seen.main_checkouts)
        else:
            # alone in its batch: BEGIN IMMEDIATE, the three statements, COMMIT, on the writer's connection only
            assert seen.sql[0] == "BEGIN IMMEDIATE" and seen.sql[-1] == "COMMIT" and len(seen.sql) == 5, seen.sql
            assert seen.main_checkouts == 0
    with stack.root.uow() as uow:
        actions = [e.action for e in uow.audit.list(AuditFilter(object_type="subscriber", object_id=msisdn), None, 10)]
    assert actions == ["voucher.redeem_failed"] * 2


def _vouchers_for(stack: Stack, n: int) -> tuple[pb.VoucherBatch, list[str], list[str]]:
    """``n`` active vouchers (the batch and their PINs in serial order) and ``n`` live subscribers."""
    op = vs(stack)
    batch = activate(op, generate(op, count=n).batch_id)
    return batch, list(pins_of(stack, batch).values()), subscribers(stack, n)


def test_concurrent_redemptions_cost_three_statements_each_on_sqlite(stack: Stack) -> None:
    """Issue #10: 32 redemptions at once through the group-commit writer; whatever the batches were, each redemption
    is its snapshot read, its ledger row and its audit entry, and a batch is one BEGIN ... COMMIT."""
    if stack.backend != "sqlite":
        pytest.skip("the SQLite writer; PostgreSQL's one round trip is counted above")
    _, pins, numbers = _vouchers_for(stack, 32)
    admin, recharger = replace(SYSTEM, tenant_id="mno", subject="rt"), stack.root.vouchers.recharger
    with _Statements(stack.root.db, _recharge_pool(stack), postgres=False) as seen:
        results = together(32, lambda i: recharger.redeem(admin, numbers[i], pins[i], f"c32-{numbers[i]}"))
    assert all(r.credited_micros == 10_000_000 for r in results), results
    transactions = seen.transactions()
    assert 1 <= len(transactions) <= 32 and seen.sql.count("COMMIT") == len(transactions), seen.sql
    statements = [text for t in transactions for text in t]
    assert len(statements) == 3 * 32 and seen.main_checkouts == 0, statements
    kinds = {tuple(text.split(" (")[0] if text.startswith("INSERT") else "SELECT" for text in statements[k:k + 3])
             for k in range(0, len(statements), 3)}
    assert kinds == {("SELECT", "INSERT INTO voucher_redemptions", "INSERT INTO audit_log")}, statements


def test_a_failing_request_never_fails_the_others_of_its_batch(stack: Stack) -> None:
    """The writer applies a batch in one transaction; a request that raises midway (here the database refuses its
    audit entry, after its ledger row was written) is answered with that error, and the others of the batch are
    stored as if it had never been there: credited, audited once, replayed by their request id."""
    if stack.backend != "sqlite":
        pytest.skip("the SQLite group-commit writer")
    from store.voucher_recharge import SqliteRecharge
    from store.voucher_writer import WriterRequest

    batch, pins, numbers = _vouchers_for(stack, 3)
    admin, recharger = replace(SYSTEM, tenant_id="mno", subject="rt"), stack.root.vouchers.recharger
    attempts = [recharger.pin_attempt("redeem", admin, numbers[i], pins[i], f"batch-{numbers[i]}") for i in range(3)]
    again = recharger.pin_attempt("redeem", admin, numbers[0], pins[0], f"batch-{numbers[0]}")  # the same request twice
    requests = [WriterRequest(lambda s, a=a: SqliteRecharge(s).attempt(a)) for a in (*attempts, again)]
    with stack.root.db.begin() as conn:
        conn.exec_driver_sql(f"CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log WHEN NEW.request_id = "
                             f"'batch-{numbers[1]}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    try:
        with _Statements(stack.root.db, _recharge_pool(stack), postgres=False) as seen:
            stack.root.vouchers.recharger._uow._hot.apply(requests)
    finally:
        with stack.root.db.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER test_refuse_audit")
    assert all(r.done for r in requests)
    assert "refused by the test" in str(requests[1].error)
    first, third, replayed = requests[0].result, requests[2].result, requests[3].result
    assert (first.outcome.value, third.outcome.value, replayed.outcome.value) == ("done", "done", "replayed")
    assert replayed.redemption == first.redemption
    # one rolled back transaction (the first two requests), then one with the three others
    assert seen.sql.count("ROLLBACK") == 1 and seen.sql.count("COMMIT") == 1 and len(seen.transactions()[1]) == 3 + 3 + 1
    with stack.root.db.connect() as conn:
        balances = dict(conn.execute(select(prepaid_balances.c.msisdn, prepaid_balances.c.balance_micros)
                                     .where(prepaid_balances.c.msisdn.in_(numbers))).all())
        states = [conn.execute(select(vouchers.c.state).where(vouchers.c.serial == batch.first_serial + i)).scalar() for i in range(3)]
    assert balances == {numbers[0]: 10_000_000, numbers[2]: 10_000_000} and states == ["used", "active", "used"]
    with stack.root.uow() as uow:
        audited = [e.request_id for e in uow.audit.list(AuditFilter(), None, 100_000) if e.request_id.startswith("batch-")]
    assert sorted(audited) == sorted([f"batch-{numbers[0]}", f"batch-{numbers[2]}"])
