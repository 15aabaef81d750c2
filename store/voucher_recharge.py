"""Recharge in the SQL store: a PIN entry (redeem / reserve) or a reservation step (commit / release) as one unit.

* PostgreSQL: one statement, ``SELECT * FROM voucher_pin_attempt(...)`` (or
  ``voucher_reservation_step``), on an autocommit connection: one round trip,
  one transaction.  The stored functions (migrations ``vouchers_0003``, ``vouchers_0004``) lock the
  subscriber's counter row first, so a subscriber's attempts run one at a time
  while other subscribers' run in parallel.  The pool of these connections does
  not ping before use (a ping is a round trip); a connection the server dropped
  fails one call, which the pool then replaces, and the client's retry with the
  same request id is answered from the ledger.
* SQLite (one writer at a time): one ``SELECT`` reads an
  :class:`~engine.vouchers.redemption.AttemptSnapshot`, the engine's
  :func:`~engine.vouchers.redemption.settle_attempt` decides, and at most two
  statements write it -- a ledger row (the trigger ``voucher_redemption_books_credit``
  moves the voucher, stores the balance and resets the counter) or the counter,
  then the audit entry.  Three statements in all, inside the transaction of the
  group-commit writer's batch (:mod:`store.voucher_writer`), or of the caller's unit
  of work on an in-memory database.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import psycopg
from sqlalchemy import and_, case, create_engine, event, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.vouchers.model import Voucher, VoucherState
from engine.vouchers.moves import MoveTable
from engine.vouchers.redemption import (
    AttemptResult,
    AttemptSnapshot,
    Outcome,
    PinAttempt,
    RechargeGuard,
    Redemption,
    Reservation,
    ReservationStep,
    Settlement,
    StepSnapshot,
    VoucherFacts,
    reservation_named,
    settle_attempt,
    settle_step,
)
from store.db import FifoGate
from store.repositories import aware, audit_values
from store.voucher_tables import (
    prepaid_balances,
    recharge_guards,
    voucher_batches,
    voucher_redemptions,
    voucher_reservations,
    vouchers,
)



def redemption_from_row(r: Any, prefix: str = "") -> Redemption:
    m = r._mapping
    return Redemption(
        request_id=m[f"{prefix}request_id"], msisdn=m[f"{prefix}msisdn"], serial=int(m[f"{prefix}serial"]),
        batch_id=m[f"{prefix}batch_id"], currency=m[f"{prefix}currency"], credited_micros=int(m[f"{prefix}credited_micros"]),
        balance_micros=int(m[f"{prefix}balance_micros"]), valid_until=aware(m[f"{prefix}valid_until"]),
        redeemed_at=aware(m[f"{prefix}redeemed_at"]), transaction_id=m[f"{prefix}transaction_id"],
    )


def reservation_from_row(r: Any, prefix: str = "") -> Reservation:
    m = r._mapping
    return Reservation(
        reservation_id=m[f"{prefix}reservation_id"], msisdn=m[f"{prefix}msisdn"], serial=int(m[f"{prefix}serial"]),
        batch_id=m[f"{prefix}batch_id"], tenant_id=m[f"{prefix}tenant_id"], currency=m[f"{prefix}currency"],
        face_value_micros=int(m[f"{prefix}face_value_micros"]), validity_extension_days=int(m[f"{prefix}validity_extension_days"]),
        reserved_at=aware(m[f"{prefix}reserved_at"]), status=m[f"{prefix}status"],
        settled_at=aware(m[f"{prefix}settled_at"]),
    )


def reservations_with_id(session: Session, reservation_id: str) -> list[Reservation]:
    """The reservations with this id, one per tenant that used it (ids are per tenant)."""
    t = voucher_reservations
    rows = session.execute(select(t).where(t.c.reservation_id == reservation_id).order_by(t.c.tenant_id)).all()
    return [reservation_from_row(r) for r in rows]


# --- SQLite --------------------------------------------------------------------------------------------------------
# The hot path speaks SQL to the driver's own cursor (no statement compilation, no result metadata, no type
# processing), because it runs while this process holds SQLite's only write lock: every microsecond here is one
# every other writer waits.
_LEDGER = ("request_id", "msisdn", "serial", "batch_id", "currency", "credited_micros", "balance_micros", "valid_until",
           "redeemed_at", "transaction_id")
_HELD = ("reservation_id", "msisdn", "serial", "batch_id", "tenant_id", "currency", "face_value_micros", "validity_extension_days",
         "reserved_at", "status", "settled_at")
_VOUCHER = ("serial", "batch_id", "state", "currency", "face_value_micros", "expires_at", "tenant_id", "dealer", "redeemed_by",
            "redeemed_at", "redemption_request_id", "updated_at")
# the batch state a voucher is redeemed under: its batch's, or what the batch's owner left the vouchers the operator
# gave to other tenants when it blocked or purged only its own (VoucherBatch.state_for; the PostgreSQL functions of
# vouchers_0005 read the same)
BATCH_STATE_FOR_VOUCHER = "CASE WHEN b.others_state <> '' AND v.tenant_id <> b.tenant_id THEN b.others_state ELSE b.state END"
_SNAPSHOT_COLUMNS = ([f"r.{c}" for c in _LEDGER] + [f"res.{c}" for c in _HELD] + ["s.tenant_id"]
                     + ["g.msisdn", "g.failed_attempts", "g.barred_until", "g.last_failure_at"] + [f"v.{c}" for c in _VOUCHER]
                     + [BATCH_STATE_FOR_VOUCHER, "b.recharge_extension_days", "bal.balance_micros", "bal.valid_until"])
_SQLITE_SNAPSHOT = """SELECT {columns}
FROM (SELECT 1) AS one
LEFT JOIN subscribers AS s ON s.msisdn = :msisdn AND s.status <> 'deactivated'
LEFT JOIN voucher_redemptions AS r ON r.tenant_id = s.tenant_id AND r.request_id = :rid
LEFT JOIN voucher_reservations AS res ON res.tenant_id = s.tenant_id AND res.reservation_id = :rid
LEFT JOIN recharge_guards AS g ON g.msisdn = :msisdn
LEFT JOIN vouchers AS v ON v.lookup_hash IN ({hashes})
LEFT JOIN voucher_batches AS b ON b.batch_id = v.batch_id
LEFT JOIN prepaid_balances AS bal ON bal.msisdn = :msisdn AND bal.currency = v.currency
LIMIT 1"""
_SQLITE_LEDGER = ("INSERT INTO voucher_redemptions (request_id, msisdn, serial, batch_id, tenant_id, currency, credited_micros, "
                  "balance_micros, valid_until, redeemed_at, transaction_id, voucher_state, kind) VALUES (:request_id, :msisdn, "
                  ":serial, :batch_id, :tenant_id, :currency, :credited_micros, :balance_micros, :valid_until, :redeemed_at, "
                  ":transaction_id, :voucher_state, :kind)")
_SQLITE_GUARD = ("INSERT INTO recharge_guards (msisdn, failed_attempts, barred_until, last_failure_at) "
                 "VALUES (:msisdn, :failed_attempts, :barred_until, :last_failure_at) ON CONFLICT (msisdn) DO UPDATE SET "
                 "failed_attempts = excluded.failed_attempts, barred_until = excluded.barred_until, "
                 "last_failure_at = excluded.last_failure_at")
_SQLITE_AUDIT = ("INSERT INTO audit_log (time, subject, tenant_id, role, action, object_type, object_id, object_tenant_id, "
                 "before_json, after_json, request_id) VALUES (:time, :subject, :tenant_id, :role, :action, :object_type, "
                 ":object_id, :object_tenant_id, :before_json, :after_json, :request_id)")


def _snapshot_sql(hashes: int) -> str:
    placeholders = ", ".join(f":h{i}" for i in range(hashes)) or "NULL"
    return _SQLITE_SNAPSHOT.format(columns=", ".join(_SNAPSHOT_COLUMNS), hashes=placeholders)


_SNAPSHOT_SQL = {n: _snapshot_sql(n) for n in range(4)}  # one per live lookup key version (rotation keeps two)


def _ts(text: Any) -> datetime | None:
    """SQLAlchemy's SQLite storage of a UTC time ("2026-11-27 12:00:00.000000") back to an aware datetime."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _sqlite_ts(value: datetime | None) -> str | None:
    """The same text SQLAlchemy stores ("2026-11-27 12:00:00.000000"); isoformat is several times cheaper than strftime."""
    return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_snapshot(row: Sequence[Any], a: PinAttempt) -> AttemptSnapshot:
    r = dict(zip(_SNAPSHOT_COLUMNS, row))
    earlier = held = voucher = None
    if r["r.request_id"] is not None:
        earlier = Redemption(r["r.request_id"], r["r.msisdn"], int(r["r.serial"]), r["r.batch_id"], r["r.currency"],
                             int(r["r.credited_micros"]), int(r["r.balance_micros"]), _ts(r["r.valid_until"]),  # type: ignore[arg-type]
                             _ts(r["r.redeemed_at"]), r["r.transaction_id"])  # type: ignore[arg-type]
    if r["res.reservation_id"] is not None:
        held = Reservation(r["res.reservation_id"], r["res.msisdn"], int(r["res.serial"]), r["res.batch_id"], r["res.tenant_id"],
                           r["res.currency"], int(r["res.face_value_micros"]), int(r["res.validity_extension_days"]),
                           _ts(r["res.reserved_at"]), r["res.status"], _ts(r["res.settled_at"]))  # type: ignore[arg-type]
    guard = RechargeGuard(a.msisdn)
    if r["g.msisdn"] is not None:
        guard = RechargeGuard(a.msisdn, int(r["g.failed_attempts"]), _ts(r["g.barred_until"]), _ts(r["g.last_failure_at"]))
    if r["v.serial"] is not None:
        voucher = Voucher(batch_id=r["v.batch_id"], serial=int(r["v.serial"]), state=VoucherState(r["v.state"]),
                          currency=r["v.currency"], face_value_micros=int(r["v.face_value_micros"]),
                          expires_at=_ts(r["v.expires_at"]), owner=r["v.tenant_id"], dealer=r["v.dealer"],  # type: ignore[arg-type]
                          redeemed_by=r["v.redeemed_by"], redeemed_at=_ts(r["v.redeemed_at"]),
                          redemption_request_id=r["v.redemption_request_id"], updated_at=_ts(r["v.updated_at"]))
    balance = (int(r["bal.balance_micros"]), _ts(r["bal.valid_until"])) if r["bal.balance_micros"] is not None else None
    return AttemptSnapshot(earlier, held, r["s.tenant_id"], guard, voucher, r[BATCH_STATE_FOR_VOUCHER] or "",
                           int(r["b.recharge_extension_days"] or 0), balance)  # type: ignore[arg-type]


def _voucher(m: Any) -> Voucher | None:
    if m["v_serial"] is None:
        return None
    return Voucher(batch_id=m["v_batch_id"], serial=int(m["v_serial"]), state=VoucherState(m["v_state"]), currency=m["v_currency"],
                   face_value_micros=int(m["v_face_value_micros"]), expires_at=aware(m["v_expires_at"]),
                   owner=m["v_tenant_id"], dealer=m["v_dealer"], redeemed_by=m["v_redeemed_by"],
                   redeemed_at=aware(m["v_redeemed_at"]), redemption_request_id=m["v_redemption_request_id"],
                   updated_at=aware(m["v_updated_at"]))


def _prefixed(table: Any, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def _balance(m: Any) -> tuple[int, datetime] | None:
    if m["bal_balance"] is None:
        return None
    return int(m["bal_balance"]), aware(m["bal_valid_until"])


class SqliteRecharge:
    """Recharge under SQLite's single writer: read, decide in the engine, write (see the module doc)."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def attempt(self, a: PinAttempt) -> AttemptResult:
        # BEGIN IMMEDIATE (the engine's begin event): from here to commit this process writes alone
        cursor = self.s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        params: dict[str, Any] = {"rid": a.request_id, "msisdn": a.msisdn}
        params.update((f"h{i}", h) for i, h in enumerate(a.lookup_hashes))
        row = cursor.execute(_SNAPSHOT_SQL[len(a.lookup_hashes)], params).fetchone()
        plan = settle_attempt(a, _sqlite_snapshot(row, a))
        self._write(cursor, plan, kind="redeem")
        cursor.close()
        return plan.result

    def step(self, step: ReservationStep) -> AttemptResult:
        held, ambiguous = reservation_named(step.actor, step.tenant_id, reservations_with_id(self.s, step.reservation_id))
        voucher, batch_state, balance, earlier = None, "", None, None
        if held is not None:
            v, b = vouchers.alias("v"), voucher_batches.alias("b")
            state_for = case((and_(b.c.others_state != "", v.c.tenant_id != b.c.tenant_id), b.c.others_state), else_=b.c.state)
            row = self.s.execute(select(*_prefixed(v, "v_"), state_for.label("b_state"))
                                 .select_from(v.outerjoin(b, b.c.batch_id == v.c.batch_id)).where(v.c.serial == held.serial)).first()
            if row is not None:
                voucher, batch_state = _voucher(row._mapping), row._mapping["b_state"] or ""
            bal = self.s.execute(select(prepaid_balances.c.balance_micros.label("bal_balance"),
                                        prepaid_balances.c.valid_until.label("bal_valid_until"))
                                 .where(prepaid_balances.c.msisdn == held.msisdn, prepaid_balances.c.currency == held.currency)).first()
            balance = _balance(bal._mapping) if bal else None
            t = voucher_redemptions
            led = self.s.execute(select(t).where(t.c.tenant_id == held.tenant_id, t.c.request_id == held.reservation_id)).first()
            earlier = redemption_from_row(led) if led else None
        plan = settle_step(step, StepSnapshot(held, earlier, voucher, batch_state, balance, ambiguous))
        cursor = self.s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._write(cursor, plan, kind="commit")
        cursor.close()
        return plan.result

    def _write(self, cursor: Any, plan: Settlement, kind: str) -> None:
        if plan.ledger is not None:
            # the trigger books it: voucher move, balance, and for a PIN entry the counter reset (plan.guard)
            assert plan.ledger_move is not None
            assert plan.guard is None or (kind == "redeem" and plan.guard.failed_attempts == 0 and plan.guard.barred_until is None)
            led = plan.ledger
            cursor.execute(_SQLITE_LEDGER, {
                "request_id": led.request_id, "msisdn": led.msisdn, "serial": led.serial, "batch_id": led.batch_id,
                "tenant_id": plan.ledger_tenant, "currency": led.currency, "credited_micros": led.credited_micros,
                "balance_micros": led.balance_micros, "valid_until": _sqlite_ts(led.valid_until),
                "redeemed_at": _sqlite_ts(led.redeemed_at), "transaction_id": led.transaction_id,
                "voucher_state": plan.ledger_move.to_state, "kind": kind})
        elif plan.guard is not None:
            g = plan.guard
            cursor.execute(_SQLITE_GUARD, {"msisdn": g.msisdn, "failed_attempts": g.failed_attempts,
                                                 "barred_until": _sqlite_ts(g.barred_until),
                                                 "last_failure_at": _sqlite_ts(g.last_failure_at)})
        if plan.move is not None:
            mv = plan.move
            self.s.execute(update(vouchers).where(vouchers.c.serial == mv.serial, vouchers.c.state == mv.from_state).values(
                state=mv.to_state, redeemed_by=mv.holder, redemption_request_id=mv.holder_request,
                redeemed_at=mv.at if mv.holder else None, updated_at=mv.at))
        if plan.reservation is not None:
            held = plan.reservation
            settle: dict[str, Any] = {"status": held.status, "settled_at": held.settled_at}
            self.s.execute(sqlite_insert(voucher_reservations).values(
                reservation_id=held.reservation_id, msisdn=held.msisdn, serial=held.serial, batch_id=held.batch_id,
                tenant_id=held.tenant_id, currency=held.currency, face_value_micros=held.face_value_micros,
                validity_extension_days=held.validity_extension_days, reserved_at=held.reserved_at, **settle)
                .on_conflict_do_update(index_elements=["tenant_id", "reservation_id"], set_=settle))
        if plan.audit is not None:
            values = audit_values(plan.audit)
            values["time"] = _sqlite_ts(values["time"])
            cursor.execute(_SQLITE_AUDIT, values)


# --- PostgreSQL ----------------------------------------------------------------------------------------------------
# driver SQL (psycopg placeholders): no statement compilation per call, and psycopg prepares it on the server after a
# few calls.  The row comes back as one JSON text (one column to describe, decoded in C); the move table and the
# caller's tenants travel as array literals rendered once per table (no per-call list dumping).
_PG_ATTEMPT = (
    "SELECT row_to_json(r)::text FROM voucher_pin_attempt(%(event)s, %(rid)s, %(msisdn)s, %(hashes)s::bytea[], %(at)s, "
    "%(visible)s::text[], %(m_from)s::text[], %(m_batch)s::text[], %(m_expired)s::boolean[], %(m_to)s::text[], "
    "%(max_failures)s, %(bar_seconds)s, %(bar_until_text)s, %(tx)s, %(subject)s, %(actor_tenant)s, %(role)s) AS r")
_PG_STEP = (
    "SELECT row_to_json(r)::text FROM voucher_reservation_step(%(event)s, %(rid)s, %(at)s, %(visible)s::text[], "
    "%(m_from)s::text[], %(m_batch)s::text[], %(m_expired)s::boolean[], %(m_to)s::text[], "
    "%(tx)s, %(subject)s, %(actor_tenant)s, %(role)s, %(reason)s, %(tenant)s) AS r")
_TIMES = ("valid_until", "done_at", "settled_at", "barred_until")
# recharges of this process in the database at once; more wait their turn in arrival order (measured on 2 cores,
# 32 callers: 8 gives the best rate and tail, see docs/BENCHMARKS.md)
CONCURRENT_RECHARGES = 8


def recharge_engine(engine: Engine) -> Engine:
    """Autocommit connections without a ping before use, disposed with ``engine``."""
    hot = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=CONCURRENT_RECHARGES,
                        max_overflow=0)

    @event.listens_for(engine, "engine_disposed")
    def _dispose_with_main(_engine: Any) -> None:
        hot.dispose()

    return hot


def _array(values: Sequence[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _bytea_array(values: Sequence[bytes]) -> str:
    """The lookup hashes as one bytea[] literal in hex (psycopg would work out and dump a list's element type per call)."""
    return "{" + ",".join('"\\\\x' + v.hex() + '"' for v in values) + "}"


_MOVE_ARRAYS: dict[int, tuple[MoveTable, dict[str, str]]] = {}


def _move_arrays(moves: MoveTable) -> dict[str, str]:
    """The table as four PostgreSQL array literals, rendered once per table (the Recharger keeps its tables)."""
    cached = _MOVE_ARRAYS.get(id(moves))
    if cached is None or cached[0] is not moves:
        cached = _MOVE_ARRAYS[id(moves)] = (moves, {
            "m_from": _array([m.from_state.value for m in moves.moves]), "m_batch": _array([m.batch_state for m in moves.moves]),
            "m_expired": "{" + ",".join("t" if m.expired else "f" for m in moves.moves) + "}",
            "m_to": _array([m.to_state.value for m in moves.moves])})
    return cached[1]


def _common(actor: Any, moves: MoveTable) -> dict[str, Any]:
    return {"visible": None if actor.is_operator else _array([actor.tenant_id]), "subject": actor.subject,
            "actor_tenant": actor.tenant_id, "role": actor.role.value, **_move_arrays(moves)}


class PgRecharge:
    def __init__(self, engine: Engine, concurrent: int = CONCURRENT_RECHARGES) -> None:
        self.engine = engine
        self._turns = FifoGate(concurrent)  # no barging past callers that waited longer (the pool's queue allows it)

    @classmethod
    def for_engine(cls, engine: Engine) -> "PgRecharge":
        return cls(recharge_engine(engine))

    def _call(self, sql: str, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            # the driver's own cursor on a pooled connection: one Parse/Bind/Execute/Sync (or, once psycopg has
            # prepared it, Bind/Execute/Sync) -- one round trip -- and no result metadata built per call
            try:
                with self._turns:
                    raw = self.engine.raw_connection()
                    try:
                        cursor = raw.cursor()
                        cursor.execute(sql, params)
                        row = cursor.fetchone()
                        cursor.close()
                    finally:
                        raw.close()
            except psycopg.IntegrityError:
                # another request with the same id committed between our check and our insert (a different
                # subscriber, or a reservation and a redemption): the second run sees it and refuses or replays
                if attempt == 2:
                    raise
                continue
            assert row is not None
            out: dict[str, Any] = json.loads(row[0])
            for name in _TIMES:
                if out[name] is not None:
                    out[name] = datetime.fromisoformat(out[name]).astimezone(timezone.utc)
            return out
        raise AssertionError("unreachable")

    def attempt(self, a: PinAttempt) -> AttemptResult:
        params = _common(a.actor, a.moves) | {
            "event": a.event, "rid": a.request_id, "msisdn": a.msisdn, "hashes": _bytea_array(a.lookup_hashes), "at": a.at,
            "max_failures": a.lockout.max_failures, "bar_seconds": a.lockout.bar_seconds,
            "bar_until_text": (a.at + timedelta(seconds=a.lockout.bar_seconds)).isoformat(), "tx": a.transaction_id,
        }
        return _result(self._call(_PG_ATTEMPT, params), a.event, a.request_id)

    def step(self, s: ReservationStep) -> AttemptResult:
        params = _common(s.actor, s.moves) | {"event": s.event, "rid": s.reservation_id, "at": s.at, "tx": s.transaction_id,
                                              "reason": s.reason, "tenant": s.tenant_id}
        return _result(self._call(_PG_STEP, params), s.event, s.reservation_id)


def _result(m: dict[str, Any], event: str, request_id: str) -> AttemptResult:
    """The stored function's row (voucher_attempt_result, migrations vouchers_0003 and 0004) as the engine's
    :class:`AttemptResult` -- the same fields settle_attempt / settle_step fill."""
    outcome = Outcome(m["outcome"])
    facts = None
    if outcome in (Outcome.REFUSED, Outcome.ALREADY_YOURS) and m["voucher_state"] is not None:
        facts = VoucherFacts(int(m["serial"]), m["voucher_state"], m["batch_state"] or "", bool(m["expired"]), m["redeemed_by"] or "")
    redemption = reservation = None
    step = event in ("commit", "release")
    if (step and outcome not in (Outcome.NOT_FOUND, Outcome.AMBIGUOUS)) or (event == "reserve" and outcome in (Outcome.DONE, Outcome.REPLAYED)):
        reservation = Reservation(request_id, m["msisdn"], int(m["serial"]), m["batch_id"], m["tenant_id"], m["currency"],
                                  int(m["amount_micros"]), int(m["extension_days"] or 0), m["done_at"], m["status"] or "reserved",
                                  m["settled_at"])
    if event in ("redeem", "commit") and outcome in (Outcome.DONE, Outcome.REPLAYED) and m["balance_micros"] is not None:
        redemption = Redemption(request_id, m["msisdn"], int(m["serial"]), m["batch_id"], m["currency"], int(m["amount_micros"]),
                                int(m["balance_micros"]), m["valid_until"], m["done_at"] if event == "redeem" else m["settled_at"],
                                m["transaction_id"])
    return AttemptResult(outcome, m["reason"] or "", redemption, reservation, facts, int(m["failed_attempts"] or 0),
                         m["barred_until"])

