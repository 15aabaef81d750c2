"""Vouchers: two-step recharge (reservations) and redemption in one round trip.

* ``voucher_reservations``: a voucher held for a subscriber (``reserve``), later
  committed (credit booked) or released; its id is the reservation request's id.
* ``voucher_redemptions`` (the credit ledger) records what the credit did to the
  voucher (``voucher_state``) and how it was made (``kind``: ``redeem`` with a
  PIN, ``commit`` of a reservation).
* PostgreSQL: ``voucher_pin_attempt`` (redeem / reserve) and
  ``voucher_reservation_step`` (commit / release) carry out a whole request in
  one statement -- one round trip, one transaction.  They follow
  ``engine/vouchers/redemption.py`` step by step (the contract tests run the same
  scenarios through both); the lifecycle's allowed moves and the lockout policy
  arrive as arguments, so no state name or limit is written here.
* SQLite (one writer at a time): a trigger books a ledger row -- moves the
  voucher, stores the balance and validity the row carries, and for a PIN entry
  resets the failure counter -- so a redemption is three statements: read, ledger
  row, audit entry.

Revision ID: vouchers_0003
Revises: vouchers_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "vouchers_0003"
down_revision = "vouchers_0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

SQLITE_TRIGGER = """
CREATE TRIGGER voucher_redemption_books_credit AFTER INSERT ON voucher_redemptions
BEGIN
    UPDATE vouchers SET state = NEW.voucher_state, redeemed_by = NEW.msisdn, redeemed_at = NEW.redeemed_at,
           redemption_request_id = NEW.request_id, updated_at = NEW.redeemed_at
     WHERE serial = NEW.serial;
    INSERT INTO prepaid_balances (msisdn, currency, tenant_id, balance_micros, valid_until, updated_at)
    VALUES (NEW.msisdn, NEW.currency, NEW.tenant_id, NEW.balance_micros, NEW.valid_until, NEW.redeemed_at)
    ON CONFLICT (msisdn, currency) DO UPDATE SET balance_micros = excluded.balance_micros,
           valid_until = excluded.valid_until, updated_at = excluded.updated_at;
    UPDATE recharge_guards SET failed_attempts = 0, barred_until = NULL
     WHERE msisdn = NEW.msisdn AND NEW.kind = 'redeem' AND (failed_attempts <> 0 OR barred_until IS NOT NULL);
END
"""

PG_RESULT_TYPE = """
CREATE TYPE voucher_attempt_result AS (
    outcome text, reason text,
    serial bigint, batch_id text, voucher_state text, batch_state text, expired boolean, redeemed_by text,
    msisdn text, tenant_id text, currency text, amount_micros bigint, balance_micros bigint, valid_until timestamptz,
    done_at timestamptz, transaction_id text, extension_days integer, status text, settled_at timestamptz,
    failed_attempts integer, barred_until timestamptz)
"""

# the moves a lifecycle allows, as parallel arrays (from, batch state, expired, to): the first match wins
PG_FIND_MOVE = """
CREATE FUNCTION voucher_find_move(p_from text[], p_batch text[], p_expired boolean[], p_to text[],
                                  p_state text, p_batch_state text, p_is_expired boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT m.t FROM unnest(p_from, p_batch, p_expired, p_to) WITH ORDINALITY AS m(f, b, e, t, i)
     WHERE m.f = p_state AND m.b = p_batch_state AND m.e = p_is_expired ORDER BY m.i LIMIT 1
$$
"""

# MoveTable.refusal: which fact stands in the way, in the order a customer fixes them
PG_REFUSAL = """
CREATE FUNCTION voucher_refusal(p_from text[], p_batch text[], p_state text, p_batch_state text, p_is_expired boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN NOT (p_state = ANY (p_from)) THEN 'VOUCHER_NOT_ACTIVE'
        WHEN NOT EXISTS (SELECT 1 FROM unnest(p_from, p_batch) AS m(f, b) WHERE m.f = p_state AND m.b = p_batch_state)
            THEN 'BATCH_NOT_ACTIVE'
        WHEN p_is_expired THEN 'VOUCHER_EXPIRED'
        ELSE 'VOUCHER_NOT_ACTIVE' END
$$
"""

# engine.vouchers.redemption.credit: face value on top, validity extended from the later of now and the current one
PG_CREDIT = """
CREATE FUNCTION voucher_credit(p_request_id text, p_kind text, p_msisdn text, p_serial bigint, p_batch_id text,
                               p_tenant_id text, p_currency text, p_amount bigint, p_extension_days integer,
                               p_voucher_state text, p_at timestamptz, p_transaction_id text,
                               OUT o_balance bigint, OUT o_valid_until timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO prepaid_balances AS pb (msisdn, currency, tenant_id, balance_micros, valid_until, updated_at)
    VALUES (p_msisdn, p_currency, p_tenant_id, p_amount, p_at + make_interval(days => p_extension_days), p_at)
    ON CONFLICT (msisdn, currency) DO UPDATE
       SET balance_micros = pb.balance_micros + EXCLUDED.balance_micros,
           valid_until = GREATEST(pb.valid_until, p_at) + make_interval(days => p_extension_days), updated_at = p_at
    RETURNING pb.balance_micros, pb.valid_until INTO o_balance, o_valid_until;
    INSERT INTO voucher_redemptions (request_id, msisdn, serial, batch_id, tenant_id, currency, credited_micros,
                                     balance_micros, valid_until, redeemed_at, transaction_id, voucher_state, kind)
    VALUES (p_request_id, p_msisdn, p_serial, p_batch_id, p_tenant_id, p_currency, p_amount, o_balance, o_valid_until,
            p_at, p_transaction_id, p_voucher_state, p_kind);
END
$$
"""

PG_AUDIT = """
CREATE FUNCTION voucher_audit(p_at timestamptz, p_subject text, p_tenant text, p_role text, p_action text,
                              p_object_type text, p_object_id text, p_object_tenant text, p_before jsonb, p_after jsonb,
                              p_request_id text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (time, subject, tenant_id, role, action, object_type, object_id, object_tenant_id, before_json,
                           after_json, request_id)
    VALUES (p_at, p_subject, p_tenant, p_role, p_action, p_object_type, p_object_id, p_object_tenant, p_before::text,
            p_after::text, p_request_id)
$$
"""

# the same request again: its stored result (same subscriber, same voucher) or a refusal naming what differs
PG_REPLAY = """
CREATE FUNCTION voucher_pin_replay(p_event text, p_request_id text, p_msisdn text, p_hashes bytea[])
RETURNS SETOF voucher_attempt_result LANGUAGE plpgsql STABLE AS $$
DECLARE
    red voucher_redemptions%ROWTYPE;
    res voucher_reservations%ROWTYPE;
    e_msisdn text;
    e_serial bigint;
    v_serial bigint;
    r voucher_attempt_result;
BEGIN
    IF p_event = 'redeem' THEN
        SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_request_id;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM voucher_reservations WHERE reservation_id = p_request_id) THEN
                r.outcome := 'request_id_reused'; r.reason := 'request'; RETURN NEXT r;
            END IF;
            RETURN;
        END IF;
        e_msisdn := red.msisdn; e_serial := red.serial;
    ELSE
        SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_request_id;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM voucher_redemptions WHERE request_id = p_request_id) THEN
                r.outcome := 'request_id_reused'; r.reason := 'request'; RETURN NEXT r;
            END IF;
            RETURN;
        END IF;
        e_msisdn := res.msisdn; e_serial := res.serial;
    END IF;
    r.outcome := 'request_id_reused';
    IF e_msisdn <> p_msisdn THEN
        r.reason := 'subscriber'; RETURN NEXT r; RETURN;
    END IF;
    SELECT v.serial INTO v_serial FROM vouchers v WHERE v.lookup_hash = ANY (p_hashes) LIMIT 1;
    IF v_serial IS NULL OR v_serial <> e_serial THEN
        r.reason := 'voucher'; RETURN NEXT r; RETURN;
    END IF;
    r.outcome := 'replayed';
    IF p_event = 'redeem' THEN
        r.serial := red.serial; r.batch_id := red.batch_id; r.msisdn := red.msisdn; r.tenant_id := red.tenant_id;
        r.currency := red.currency; r.amount_micros := red.credited_micros; r.balance_micros := red.balance_micros;
        r.valid_until := red.valid_until; r.done_at := red.redeemed_at; r.transaction_id := red.transaction_id;
    ELSE
        r.serial := res.serial; r.batch_id := res.batch_id; r.msisdn := res.msisdn; r.tenant_id := res.tenant_id;
        r.currency := res.currency; r.amount_micros := res.face_value_micros; r.extension_days := res.validity_extension_days;
        r.done_at := res.reserved_at; r.status := res.status; r.settled_at := res.settled_at;
    END IF;
    RETURN NEXT r;
END
$$
"""

PG_ATTEMPT = """
CREATE FUNCTION voucher_pin_attempt(
    p_event text, p_request_id text, p_msisdn text, p_hashes bytea[], p_at timestamptz, p_visible text[],
    p_from text[], p_batch text[], p_expired boolean[], p_to text[],
    p_max_failures integer, p_bar_seconds bigint, p_bar_until_text text, p_transaction_id text,
    p_subject text, p_actor_tenant text, p_role text)
RETURNS SETOF voucher_attempt_result LANGUAGE plpgsql AS $$
DECLARE
    r voucher_attempt_result;
    sub_tenant text;
    g recharge_guards%ROWTYPE;
    counted integer;
    v record;
    v_expired boolean;
    to_state text;
    code text;
    after jsonb;
BEGIN
    -- 1. the same request again (checked once more below, under the subscriber's lock)
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;
    -- 2. a live subscriber the caller may act for
    SELECT s.tenant_id INTO sub_tenant FROM subscribers s WHERE s.msisdn = p_msisdn AND s.status <> 'deactivated';
    IF sub_tenant IS NULL OR (p_visible IS NOT NULL AND NOT (sub_tenant = ANY (p_visible))) THEN
        r.outcome := 'no_subscriber'; RETURN NEXT r; RETURN;
    END IF;
    -- the subscriber's counter row, locked: one attempt of this subscriber at a time from here to commit
    INSERT INTO recharge_guards AS rg (msisdn, failed_attempts) VALUES (p_msisdn, 0)
    ON CONFLICT (msisdn) DO UPDATE SET msisdn = rg.msisdn RETURNING * INTO g;
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;
    -- 3. the bar
    IF g.barred_until IS NOT NULL AND p_at < g.barred_until THEN
        r.outcome := 'barred'; r.failed_attempts := g.failed_attempts; r.barred_until := g.barred_until;
        RETURN NEXT r; RETURN;
    END IF;
    -- 4. count the attempt before the PIN is looked up (a bar that ran out starts a fresh count)
    UPDATE recharge_guards SET failed_attempts = CASE WHEN barred_until IS NULL THEN failed_attempts + 1 ELSE 1 END,
                               barred_until = NULL
     WHERE msisdn = p_msisdn AND (barred_until IS NULL OR barred_until <= p_at)
    RETURNING failed_attempts INTO counted;
    -- 5. the voucher
    IF cardinality(p_hashes) = 0 THEN
        code := 'PIN_CHECK_DIGIT';
    ELSE
        SELECT vv.serial, vv.batch_id, vv.state, vv.tenant_id, vv.expires_at, vv.redeemed_by, vv.currency, vv.face_value_micros,
               b.state AS batch_state, b.recharge_extension_days
          INTO v
          FROM vouchers vv LEFT JOIN voucher_batches b ON b.batch_id = vv.batch_id
         WHERE vv.lookup_hash = ANY (p_hashes) LIMIT 1;
        IF v.serial IS NULL OR v.tenant_id <> sub_tenant OR (p_visible IS NOT NULL AND NOT (v.tenant_id = ANY (p_visible))) THEN
            code := 'PIN_UNKNOWN';
        END IF;
    END IF;
    IF code IS NULL THEN
        v_expired := v.expires_at <= p_at;
        r.serial := v.serial; r.batch_id := v.batch_id; r.voucher_state := v.state; r.batch_state := coalesce(v.batch_state, '');
        r.expired := v_expired; r.redeemed_by := v.redeemed_by;
        to_state := voucher_find_move(p_from, p_batch, p_expired, p_to, v.state, coalesce(v.batch_state, ''), v_expired);
        IF to_state IS NULL AND v.redeemed_by = p_msisdn THEN
            -- this subscriber used or holds the voucher: a double submission, not a guess
            UPDATE recharge_guards SET failed_attempts = g.failed_attempts, barred_until = g.barred_until WHERE msisdn = p_msisdn;
            r.outcome := 'already_yours';
            r.reason := voucher_refusal(p_from, p_batch, v.state, coalesce(v.batch_state, ''), v_expired);
            r.failed_attempts := g.failed_attempts; r.barred_until := g.barred_until;
            RETURN NEXT r; RETURN;
        END IF;
        IF to_state IS NULL THEN
            code := voucher_refusal(p_from, p_batch, v.state, coalesce(v.batch_state, ''), v_expired);
        ELSE
            -- 6. the move, conditional on everything the rules looked at (another request may have been first)
            UPDATE vouchers SET state = to_state, redeemed_by = p_msisdn, redeemed_at = p_at,
                                redemption_request_id = p_request_id, updated_at = p_at
             WHERE serial = v.serial AND state = v.state AND (expires_at <= p_at) = v_expired
               AND EXISTS (SELECT 1 FROM voucher_batches b WHERE b.batch_id = v.batch_id AND b.state = v.batch_state);
            IF NOT FOUND THEN
                code := 'VOUCHER_NOT_ACTIVE';
                SELECT state INTO r.voucher_state FROM vouchers WHERE serial = v.serial;
            END IF;
        END IF;
    END IF;
    IF code IS NOT NULL THEN
        IF counted >= p_max_failures THEN
            UPDATE recharge_guards SET failed_attempts = 0, barred_until = p_at + make_interval(secs => p_bar_seconds),
                                       last_failure_at = p_at
             WHERE msisdn = p_msisdn RETURNING failed_attempts, barred_until INTO r.failed_attempts, r.barred_until;
            after := jsonb_build_object('reason', code, 'failed_attempts', 0, 'barred_until', p_bar_until_text);
            PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.' || p_event || '_failed', 'subscriber', p_msisdn,
                                  sub_tenant, jsonb_build_object('reason', NULL, 'failed_attempts', NULL, 'barred_until', NULL),
                                  after, p_request_id);
        ELSE
            UPDATE recharge_guards SET last_failure_at = p_at WHERE msisdn = p_msisdn;
            r.failed_attempts := counted;
            PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.' || p_event || '_failed', 'subscriber', p_msisdn,
                                  sub_tenant, jsonb_build_object('reason', NULL, 'failed_attempts', NULL),
                                  jsonb_build_object('reason', code, 'failed_attempts', counted), p_request_id);
        END IF;
        r.outcome := CASE WHEN code IN ('PIN_CHECK_DIGIT', 'PIN_UNKNOWN') THEN 'wrong_pin' ELSE 'refused' END;
        r.reason := code;
        RETURN NEXT r; RETURN;
    END IF;
    -- success: the counter starts again
    UPDATE recharge_guards SET failed_attempts = 0, barred_until = NULL WHERE msisdn = p_msisdn;
    r.outcome := 'done'; r.voucher_state := to_state; r.msisdn := p_msisdn; r.tenant_id := v.tenant_id;
    r.currency := v.currency; r.amount_micros := v.face_value_micros; r.done_at := p_at;
    r.extension_days := v.recharge_extension_days;
    IF p_event = 'redeem' THEN
        SELECT c.o_balance, c.o_valid_until INTO r.balance_micros, r.valid_until
          FROM voucher_credit(p_request_id, 'redeem', p_msisdn, v.serial, v.batch_id, v.tenant_id, v.currency, v.face_value_micros,
                              v.recharge_extension_days, to_state, p_at, p_transaction_id) c;
        r.transaction_id := p_transaction_id;
        PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.redeem', 'voucher', v.serial::text, v.tenant_id,
                              jsonb_build_object('state', v.state, 'msisdn', NULL, 'credited_micros', NULL, 'currency', NULL,
                                                 'transaction_id', NULL),
                              jsonb_build_object('state', to_state, 'msisdn', p_msisdn, 'credited_micros', v.face_value_micros,
                                                 'currency', v.currency, 'transaction_id', p_transaction_id), p_request_id);
    ELSE
        INSERT INTO voucher_reservations (reservation_id, msisdn, serial, batch_id, tenant_id, currency, face_value_micros,
                                          validity_extension_days, reserved_at, status)
        VALUES (p_request_id, p_msisdn, v.serial, v.batch_id, v.tenant_id, v.currency, v.face_value_micros,
                v.recharge_extension_days, p_at, 'reserved');
        r.status := 'reserved';
        PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.' || p_event, 'voucher', v.serial::text, v.tenant_id,
                              jsonb_build_object('state', v.state, 'msisdn', NULL),
                              jsonb_build_object('state', to_state, 'msisdn', p_msisdn), p_request_id);
    END IF;
    RETURN NEXT r;
END
$$
"""

PG_STEP = """
CREATE FUNCTION voucher_reservation_step(
    p_event text, p_reservation_id text, p_at timestamptz, p_visible text[],
    p_from text[], p_batch text[], p_expired boolean[], p_to text[], p_transaction_id text,
    p_subject text, p_actor_tenant text, p_role text, p_reason text)
RETURNS SETOF voucher_attempt_result LANGUAGE plpgsql AS $$
DECLARE
    r voucher_attempt_result;
    res voucher_reservations%ROWTYPE;
    red voucher_redemptions%ROWTYPE;
    v record;
    v_expired boolean;
    to_state text;
    done text := CASE WHEN p_event = 'commit' THEN 'committed' ELSE 'released' END;
    after jsonb;
    before jsonb;
BEGIN
    SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_reservation_id FOR UPDATE;
    IF NOT FOUND OR (p_visible IS NOT NULL AND NOT (res.tenant_id = ANY (p_visible))) THEN
        r.outcome := 'not_found'; RETURN NEXT r; RETURN;
    END IF;
    r.serial := res.serial; r.batch_id := res.batch_id; r.msisdn := res.msisdn; r.tenant_id := res.tenant_id;
    r.currency := res.currency; r.amount_micros := res.face_value_micros; r.extension_days := res.validity_extension_days;
    r.done_at := res.reserved_at; r.status := res.status; r.settled_at := res.settled_at;
    IF res.status = done THEN
        r.outcome := 'replayed';
        SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_reservation_id;
        IF FOUND THEN
            r.balance_micros := red.balance_micros; r.valid_until := red.valid_until; r.transaction_id := red.transaction_id;
        END IF;
        RETURN NEXT r; RETURN;
    END IF;
    SELECT vv.serial, vv.batch_id, vv.state, vv.expires_at, vv.redeemed_by, b.state AS batch_state
      INTO v FROM vouchers vv LEFT JOIN voucher_batches b ON b.batch_id = vv.batch_id WHERE vv.serial = res.serial FOR UPDATE OF vv;
    IF res.status <> 'reserved' OR v.serial IS NULL THEN
        r.outcome := 'refused'; r.reason := 'reservation is ' || res.status; RETURN NEXT r; RETURN;
    END IF;
    v_expired := v.expires_at <= p_at;
    r.voucher_state := v.state; r.batch_state := coalesce(v.batch_state, ''); r.expired := v_expired; r.redeemed_by := v.redeemed_by;
    to_state := voucher_find_move(p_from, p_batch, p_expired, p_to, v.state, coalesce(v.batch_state, ''), v_expired);
    IF to_state IS NULL THEN
        r.outcome := 'refused';
        r.reason := voucher_refusal(p_from, p_batch, v.state, coalesce(v.batch_state, ''), v_expired);
        RETURN NEXT r; RETURN;
    END IF;
    UPDATE voucher_reservations SET status = done, settled_at = p_at WHERE reservation_id = p_reservation_id;
    r.outcome := 'done'; r.status := done; r.settled_at := p_at;
    IF p_event = 'commit' THEN
        -- the voucher row is locked above: the move needs no further condition
        UPDATE vouchers SET state = to_state, redeemed_at = p_at, updated_at = p_at WHERE serial = v.serial;
        SELECT c.o_balance, c.o_valid_until INTO r.balance_micros, r.valid_until
          FROM voucher_credit(p_reservation_id, 'commit', res.msisdn, res.serial, res.batch_id, res.tenant_id, res.currency,
                              res.face_value_micros, res.validity_extension_days, to_state, p_at, p_transaction_id) c;
        r.transaction_id := p_transaction_id;
        PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.commit', 'voucher', v.serial::text, res.tenant_id,
                              jsonb_build_object('state', v.state, 'msisdn', NULL, 'credited_micros', NULL, 'currency', NULL,
                                                 'transaction_id', NULL),
                              jsonb_build_object('state', to_state, 'msisdn', res.msisdn, 'credited_micros', res.face_value_micros,
                                                 'currency', res.currency, 'transaction_id', p_transaction_id), p_reservation_id);
    ELSE
        UPDATE vouchers SET state = to_state, redeemed_by = '', redeemed_at = NULL, redemption_request_id = '', updated_at = p_at
         WHERE serial = v.serial;
        before := jsonb_build_object('state', v.state, 'msisdn', res.msisdn);
        after := jsonb_build_object('state', to_state, 'msisdn', '');
        IF p_reason <> '' THEN
            before := before || jsonb_build_object('reason', NULL);
            after := after || jsonb_build_object('reason', p_reason);
        END IF;
        PERFORM voucher_audit(p_at, p_subject, p_actor_tenant, p_role, 'voucher.release', 'voucher', v.serial::text, res.tenant_id,
                              before, after, p_reservation_id);
    END IF;
    r.voucher_state := to_state;
    RETURN NEXT r;
END
$$
"""

PG_FUNCTIONS = ("voucher_reservation_step(text, text, timestamptz, text[], text[], text[], boolean[], text[], text, text, text, "
                "text, text)",
                "voucher_pin_attempt(text, text, text, bytea[], timestamptz, text[], text[], text[], boolean[], text[], integer, "
                "bigint, text, text, text, text, text)",
                "voucher_pin_replay(text, text, text, bytea[])",
                "voucher_audit(timestamptz, text, text, text, text, text, text, text, jsonb, jsonb, text)",
                "voucher_credit(text, text, text, bigint, text, text, text, bigint, integer, text, timestamptz, text)",
                "voucher_refusal(text[], text[], text, text, boolean)",
                "voucher_find_move(text[], text[], boolean[], text[], text, text, boolean)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "voucher_reservations",
        sa.Column("reservation_id", sa.String(80), primary_key=True),
        sa.Column("msisdn", sa.String(15), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(19), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_value_micros", sa.BigInteger(), nullable=False),
        sa.Column("validity_extension_days", sa.Integer(), nullable=False),
        sa.Column("reserved_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled_at", TS, nullable=True),
    )
    op.add_column("voucher_redemptions", sa.Column("voucher_state", sa.String(16), nullable=False, server_default="used"))
    op.add_column("voucher_redemptions", sa.Column("kind", sa.String(8), nullable=False, server_default="redeem"))
    if dialect == "postgresql":
        for sql in (PG_RESULT_TYPE, PG_FIND_MOVE, PG_REFUSAL, PG_CREDIT, PG_AUDIT, PG_REPLAY, PG_ATTEMPT, PG_STEP):
            op.execute(sql)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
        op.execute("DROP TYPE IF EXISTS voucher_attempt_result")
    else:
        op.execute("DROP TRIGGER IF EXISTS voucher_redemption_books_credit")
    op.drop_column("voucher_redemptions", "kind")
    op.drop_column("voucher_redemptions", "voucher_state")
    op.drop_table("voucher_reservations")
