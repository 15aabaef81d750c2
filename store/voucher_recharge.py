"""Recharge in the SQL store: a PIN entry (redeem / reserve) or a reservation step (commit / release) as one unit.

* PostgreSQL: one statement, ``SELECT * FROM voucher_pin_attempt(...)`` (or
  ``voucher_reservation_step``), on an autocommit connection: one round trip,
  one transaction.  The stored functions (migration ``vouchers_0003``) lock the
  subscriber's counter row first, so a subscriber's attempts run one at a time
  while other subscribers' run in parallel.  The pool of these connections does
  not ping before use (a ping is a round trip); a connection the server dropped
  fails one call, which the pool then replaces, and the client's retry with the
  same request id is answered from the ledger.
* SQLite (one writer at a time, ``BEGIN IMMEDIATE``): one ``SELECT`` reads an
  :class:`~engine.vouchers.redemption.AttemptSnapshot`, the engine's
  :func:`~engine.vouchers.redemption.settle_attempt` decides, and at most two
  statements write it -- a ledger row (the trigger ``voucher_redemption_books_credit``
  moves the voucher, stores the balance and resets the counter) or the counter,
  then the audit entry.  Three statements in all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, create_engine, event, literal_column, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.vouchers.model import Voucher, VoucherState
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
    settle_attempt,
    settle_step,
)
from store.repositories import AuditRepo, aware
from store.tables import SubscriberRow
from store.voucher_tables import (
    prepaid_balances,
    recharge_guards,
    voucher_batches,
    voucher_redemptions,
    voucher_reservations,
    vouchers,
)

subscribers = SubscriberRow.__table__  # type: ignore[attr-defined]


def redemption_from_row(r: Any, prefix: str = "") -> Redemption:
    m = r._mapping
    return Redemption(
        request_id=m[f"{prefix}request_id"], msisdn=m[f"{prefix}msisdn"], serial=int(m[f"{prefix}serial"]),
        batch_id=m[f"{prefix}batch_id"], currency=m[f"{prefix}currency"], credited_micros=int(m[f"{prefix}credited_micros"]),
        balance_micros=int(m[f"{prefix}balance_micros"]), valid_until=aware(m[f"{prefix}valid_until"]),  # type: ignore[arg-type]
        redeemed_at=aware(m[f"{prefix}redeemed_at"]), transaction_id=m[f"{prefix}transaction_id"],  # type: ignore[arg-type]
    )


def reservation_from_row(r: Any, prefix: str = "") -> Reservation:
    m = r._mapping
    return Reservation(
        reservation_id=m[f"{prefix}reservation_id"], msisdn=m[f"{prefix}msisdn"], serial=int(m[f"{prefix}serial"]),
        batch_id=m[f"{prefix}batch_id"], tenant_id=m[f"{prefix}tenant_id"], currency=m[f"{prefix}currency"],
        face_value_micros=int(m[f"{prefix}face_value_micros"]), validity_extension_days=int(m[f"{prefix}validity_extension_days"]),
        reserved_at=aware(m[f"{prefix}reserved_at"]), status=m[f"{prefix}status"],  # type: ignore[arg-type]
        settled_at=aware(m[f"{prefix}settled_at"]),
    )


# --- SQLite --------------------------------------------------------------------------------------------------------
def _prefixed(table: Any, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def _snapshot_query() -> Any:
    """One row: the earlier ledger row and reservation of the request id, the live subscriber, the counter, the voucher of
    the lookup hashes with its batch, and the subscriber's balance in the voucher's currency."""
    r, res, s, g = voucher_redemptions.alias("r"), voucher_reservations.alias("res"), subscribers.alias("s"), recharge_guards.alias("g")
    v, b, bal = vouchers.alias("v"), voucher_batches.alias("b"), prepaid_balances.alias("bal")
    anchor = select(literal_column("1").label("one")).subquery("one")
    joined = (anchor.outerjoin(r, r.c.request_id == bindparam("rid"))
              .outerjoin(res, res.c.reservation_id == bindparam("rid"))
              .outerjoin(s, and_(s.c.msisdn == bindparam("msisdn"), s.c.status != "deactivated"))
              .outerjoin(g, g.c.msisdn == bindparam("msisdn"))
              .outerjoin(v, v.c.lookup_hash.in_(bindparam("hashes", expanding=True)))
              .outerjoin(b, b.c.batch_id == v.c.batch_id)
              .outerjoin(bal, and_(bal.c.msisdn == bindparam("msisdn"), bal.c.currency == v.c.currency)))
    columns = (_prefixed(r, "r_") + _prefixed(res, "res_") + [s.c.tenant_id.label("s_tenant_id")] + _prefixed(g, "g_")
               + _prefixed(v, "v_") + [b.c.state.label("b_state"), b.c.recharge_extension_days.label("b_extension_days"),
                                       bal.c.balance_micros.label("bal_balance"), bal.c.valid_until.label("bal_valid_until")])
    return select(*columns).select_from(joined).limit(1)


_SNAPSHOT = _snapshot_query()


def _voucher(m: Any) -> Voucher | None:
    if m["v_serial"] is None:
        return None
    return Voucher(batch_id=m["v_batch_id"], serial=int(m["v_serial"]), state=VoucherState(m["v_state"]), currency=m["v_currency"],
                   face_value_micros=int(m["v_face_value_micros"]), expires_at=aware(m["v_expires_at"]),  # type: ignore[arg-type]
                   owner=m["v_tenant_id"], dealer=m["v_dealer"], redeemed_by=m["v_redeemed_by"],
                   redeemed_at=aware(m["v_redeemed_at"]), redemption_request_id=m["v_redemption_request_id"],
                   updated_at=aware(m["v_updated_at"]))


def _balance(m: Any) -> tuple[int, datetime] | None:
    if m["bal_balance"] is None:
        return None
    return int(m["bal_balance"]), aware(m["bal_valid_until"])  # type: ignore[return-value]


class SqliteRecharge:
    """Recharge under SQLite's single writer: read, decide in the engine, write (see the module doc)."""

    def __init__(self, session: Session, audit: AuditRepo) -> None:
        self.s = session
        self.audit = audit

    def attempt(self, a: PinAttempt) -> AttemptResult:
        row = self.s.execute(_SNAPSHOT, {"rid": a.request_id, "msisdn": a.msisdn, "hashes": list(a.lookup_hashes)}).one()
        m = row._mapping
        guard = RechargeGuard(a.msisdn)
        if m["g_msisdn"] is not None:
            guard = RechargeGuard(a.msisdn, int(m["g_failed_attempts"]), aware(m["g_barred_until"]), aware(m["g_last_failure_at"]))
        snap = AttemptSnapshot(
            earlier_redemption=redemption_from_row(row, "r_") if m["r_request_id"] is not None else None,
            earlier_reservation=reservation_from_row(row, "res_") if m["res_reservation_id"] is not None else None,
            subscriber_tenant=m["s_tenant_id"], guard=guard, voucher=_voucher(m), batch_state=m["b_state"] or "",
            validity_extension_days=int(m["b_extension_days"] or 0), balance=_balance(m))
        plan = settle_attempt(a, snap)
        self._write(plan, kind="redeem")
        return plan.result

    def step(self, step: ReservationStep) -> AttemptResult:
        held_row = self.s.execute(select(voucher_reservations).where(voucher_reservations.c.reservation_id == step.reservation_id)).first()
        held = reservation_from_row(held_row) if held_row else None
        voucher, batch_state, balance, earlier = None, "", None, None
        if held is not None:
            v, b = vouchers.alias("v"), voucher_batches.alias("b")
            row = self.s.execute(select(*_prefixed(v, "v_"), b.c.state.label("b_state"))
                                 .select_from(v.outerjoin(b, b.c.batch_id == v.c.batch_id)).where(v.c.serial == held.serial)).first()
            if row is not None:
                voucher, batch_state = _voucher(row._mapping), row._mapping["b_state"] or ""
            bal = self.s.execute(select(prepaid_balances.c.balance_micros.label("bal_balance"),
                                        prepaid_balances.c.valid_until.label("bal_valid_until"))
                                 .where(prepaid_balances.c.msisdn == held.msisdn, prepaid_balances.c.currency == held.currency)).first()
            balance = _balance(bal._mapping) if bal else None
            led = self.s.execute(select(voucher_redemptions).where(voucher_redemptions.c.request_id == step.reservation_id)).first()
            earlier = redemption_from_row(led) if led else None
        plan = settle_step(step, StepSnapshot(held, earlier, voucher, batch_state, balance))
        self._write(plan, kind="commit")
        return plan.result

    def _write(self, plan: Settlement, kind: str) -> None:
        if plan.ledger is not None:
            # the trigger books it: voucher move, balance, and for a PIN entry the counter reset (plan.guard)
            assert plan.ledger_move is not None
            assert plan.guard is None or (kind == "redeem" and plan.guard.failed_attempts == 0 and plan.guard.barred_until is None)
            led = plan.ledger
            self.s.execute(voucher_redemptions.insert().values(
                request_id=led.request_id, msisdn=led.msisdn, serial=led.serial, batch_id=led.batch_id, tenant_id=plan.ledger_tenant,
                currency=led.currency, credited_micros=led.credited_micros, balance_micros=led.balance_micros,
                valid_until=led.valid_until, redeemed_at=led.redeemed_at, transaction_id=led.transaction_id,
                voucher_state=plan.ledger_move.to_state, kind=kind))
        elif plan.guard is not None:
            g = plan.guard
            values = {"failed_attempts": g.failed_attempts, "barred_until": g.barred_until, "last_failure_at": g.last_failure_at}
            self.s.execute(sqlite_insert(recharge_guards).values(msisdn=g.msisdn, **values)
                           .on_conflict_do_update(index_elements=["msisdn"], set_=values))
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
                .on_conflict_do_update(index_elements=["reservation_id"], set_=settle))
        if plan.audit is not None:
            self.audit.append(plan.audit)


# --- PostgreSQL ----------------------------------------------------------------------------------------------------
_PG_ATTEMPT = text(
    "SELECT * FROM voucher_pin_attempt(:event, :rid, :msisdn, CAST(:hashes AS bytea[]), :at, CAST(:visible AS text[]), "
    "CAST(:m_from AS text[]), CAST(:m_batch AS text[]), CAST(:m_expired AS boolean[]), CAST(:m_to AS text[]), "
    ":max_failures, :bar_seconds, :bar_until_text, :tx, :subject, :actor_tenant, :role)")
_PG_STEP = text(
    "SELECT * FROM voucher_reservation_step(:event, :rid, :at, CAST(:visible AS text[]), "
    "CAST(:m_from AS text[]), CAST(:m_batch AS text[]), CAST(:m_expired AS boolean[]), CAST(:m_to AS text[]), "
    ":tx, :subject, :actor_tenant, :role, :reason)")
POOL_SIZE = 20


def recharge_engine(engine: Engine) -> Engine:
    """Autocommit connections without a ping before use, disposed with ``engine``."""
    hot = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=POOL_SIZE, max_overflow=20)

    @event.listens_for(engine, "engine_disposed")
    def _dispose_with_main(_engine: Any) -> None:
        hot.dispose()

    return hot


def _common(actor: Any, moves: Any) -> dict[str, Any]:
    return {
        "visible": None if actor.is_operator else [actor.tenant_id],
        "m_from": [m.from_state.value for m in moves.moves], "m_batch": [m.batch_state for m in moves.moves],
        "m_expired": [m.expired for m in moves.moves], "m_to": [m.to_state.value for m in moves.moves],
        "subject": actor.subject, "actor_tenant": actor.tenant_id, "role": actor.role.value,
    }


class PgRecharge:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def for_engine(cls, engine: Engine) -> "PgRecharge":
        return cls(recharge_engine(engine))

    def _call(self, sql: Any, params: dict[str, Any]) -> Row[Any]:
        for attempt in (1, 2):
            try:
                with self.engine.connect() as conn:
                    return conn.execute(sql, params).one()
            except IntegrityError:
                # another request with the same id committed between our check and our insert (a different
                # subscriber, or a reservation and a redemption): the second run sees it and refuses or replays
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def attempt(self, a: PinAttempt) -> AttemptResult:
        params = _common(a.actor, a.moves) | {
            "event": a.event, "rid": a.request_id, "msisdn": a.msisdn, "hashes": list(a.lookup_hashes), "at": a.at,
            "max_failures": a.lockout.max_failures, "bar_seconds": a.lockout.bar_seconds,
            "bar_until_text": (a.at + timedelta(seconds=a.lockout.bar_seconds)).isoformat(), "tx": a.transaction_id,
        }
        return _result(self._call(_PG_ATTEMPT, params), a.event, a.request_id)

    def step(self, s: ReservationStep) -> AttemptResult:
        params = _common(s.actor, s.moves) | {"event": s.event, "rid": s.reservation_id, "at": s.at, "tx": s.transaction_id,
                                              "reason": s.reason}
        return _result(self._call(_PG_STEP, params), s.event, s.reservation_id)


def _result(row: Row[Any], event: str, request_id: str) -> AttemptResult:
    """The stored function's row as the engine's :class:`AttemptResult` (the same fields settle_* fills)."""
    m = row._mapping
    outcome = Outcome(m["outcome"])
    facts = None
    if outcome in (Outcome.REFUSED, Outcome.ALREADY_YOURS) and m["voucher_state"] is not None:
        facts = VoucherFacts(int(m["serial"]), m["voucher_state"], m["batch_state"] or "", bool(m["expired"]), m["redeemed_by"] or "")
    redemption = reservation = None
    step = event in ("commit", "release")
    if (step and outcome is not Outcome.NOT_FOUND) or (event == "reserve" and outcome in (Outcome.DONE, Outcome.REPLAYED)):
        reservation = Reservation(request_id, m["msisdn"], int(m["serial"]), m["batch_id"], m["tenant_id"], m["currency"],
                                  int(m["amount_micros"]), int(m["extension_days"] or 0), m["done_at"], m["status"] or "reserved",
                                  m["settled_at"])
    if event in ("redeem", "commit") and outcome in (Outcome.DONE, Outcome.REPLAYED) and m["balance_micros"] is not None:
        redemption = Redemption(request_id, m["msisdn"], int(m["serial"]), m["batch_id"], m["currency"], int(m["amount_micros"]),
                                int(m["balance_micros"]), m["valid_until"], m["done_at"] if event == "redeem" else m["settled_at"],
                                m["transaction_id"])
    return AttemptResult(outcome, m["reason"] or "", redemption, reservation, facts, int(m["failed_attempts"] or 0),
                         m["barred_until"])

