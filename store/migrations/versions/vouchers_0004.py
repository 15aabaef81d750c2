"""Vouchers: request ids and reservation ids belong to a tenant.

A request id is the caller's idempotency key, and two MVNOs may both send
``r-1``.  Before this revision ``voucher_redemptions.request_id`` and
``voucher_reservations.reservation_id`` were keys on their own, and a PIN entry
looked the id up before it checked the subscriber's tenant: one tenant was refused
(``REQUEST_ID_REUSED``) for an id another had used, and learnt that it had.

* both tables are keyed by (id, tenant) -- the subscriber's tenant, the voucher's
  owner (the id first, so a commit naming only the id rides on the key); rows are
  kept as they are;
* PostgreSQL: ``voucher_pin_attempt`` checks the subscriber (live, visible to the
  caller) before it looks for an earlier request, and looks only in the
  subscriber's tenant (``voucher_pin_replay`` takes the tenant);
  ``voucher_reservation_step`` takes the tenant the caller names ('' = its own, or
  the only one it sees that has the id; several: ``ambiguous``), as
  ``engine.vouchers.redemption.reservation_named`` decides;
* SQLite: the two tables are rebuilt with the new key (SQLite cannot change a
  key in place), and the ledger trigger of ``vouchers_0003`` made again.

Downgrading restores the single-column keys and the functions of ``vouchers_0003``;
it refuses while two tenants share an id (the old key cannot hold both rows).

Revision ID: vouchers_0004
Revises: vouchers_0003
Create Date: 2026-12-07
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "vouchers_0004"
down_revision = "vouchers_0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _previous() -> ModuleType:
    """vouchers_0003, whose functions and trigger this revision changes (or restores on downgrade)."""
    spec = importlib.util.spec_from_file_location("vouchers_0003_for_0004", Path(__file__).with_name("vouchers_0003.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swap(sql: str, old: str, new: str) -> str:
    """``sql`` with the one occurrence of ``old`` replaced (a missing or repeated one is a mistake here)."""
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


def _replay(v3: ModuleType) -> str:
    sql = _swap(v3.PG_REPLAY, "voucher_pin_replay(p_event text, p_request_id text,",
                "voucher_pin_replay(p_event text, p_tenant text, p_request_id text,")
    sql = _swap(sql, "SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_request_id;",
                "SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_request_id AND tenant_id = p_tenant;")
    sql = _swap(sql, "IF EXISTS (SELECT 1 FROM voucher_reservations WHERE reservation_id = p_request_id) THEN",
                "IF EXISTS (SELECT 1 FROM voucher_reservations WHERE reservation_id = p_request_id AND tenant_id = p_tenant) THEN")
    sql = _swap(sql, "SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_request_id;",
                "SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_request_id AND tenant_id = p_tenant;")
    return _swap(sql, "IF EXISTS (SELECT 1 FROM voucher_redemptions WHERE request_id = p_request_id) THEN",
                 "IF EXISTS (SELECT 1 FROM voucher_redemptions WHERE request_id = p_request_id AND tenant_id = p_tenant) THEN")


# engine.vouchers.redemption.settle_attempt's order: the subscriber (and so the tenant whose ids these are) first
_OLD_FIRST_STEPS = """    -- 1. the same request again (checked once more below, under the subscriber's lock)
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;
    -- 2. a live subscriber the caller may act for
    SELECT s.tenant_id INTO sub_tenant FROM subscribers s WHERE s.msisdn = p_msisdn AND s.status <> 'deactivated';
    IF sub_tenant IS NULL OR (p_visible IS NOT NULL AND NOT (sub_tenant = ANY (p_visible))) THEN
        r.outcome := 'no_subscriber'; RETURN NEXT r; RETURN;
    END IF;
"""
_NEW_FIRST_STEPS = """    -- 1. a live subscriber the caller may act for: request ids are its tenant's, so no id is looked up before
    --    (another tenant's caller learns what an unknown subscriber gives, nothing about the id)
    SELECT s.tenant_id INTO sub_tenant FROM subscribers s WHERE s.msisdn = p_msisdn AND s.status <> 'deactivated';
    IF sub_tenant IS NULL OR (p_visible IS NOT NULL AND NOT (sub_tenant = ANY (p_visible))) THEN
        r.outcome := 'no_subscriber'; RETURN NEXT r; RETURN;
    END IF;
    -- 2. the same request again, in the subscriber's tenant (checked once more below, under the subscriber's lock)
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;
"""


def _attempt(v3: ModuleType) -> str:
    sql = _swap(v3.PG_ATTEMPT, _OLD_FIRST_STEPS, _NEW_FIRST_STEPS)
    return _swap(sql, """    ON CONFLICT (msisdn) DO UPDATE SET msisdn = rg.msisdn RETURNING * INTO g;
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, p_request_id, p_msisdn, p_hashes);""",
                 """    ON CONFLICT (msisdn) DO UPDATE SET msisdn = rg.msisdn RETURNING * INTO g;
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes);""")


def _step(v3: ModuleType) -> str:
    sql = _swap(v3.PG_STEP, "p_subject text, p_actor_tenant text, p_role text, p_reason text)",
                "p_subject text, p_actor_tenant text, p_role text, p_reason text, p_tenant text)")
    sql = _swap(sql, "    before jsonb;\nBEGIN\n", "    before jsonb;\n    tenants text[];\nBEGIN\n")
    # reservation_named: the tenant named, else the caller's own, else the only one the caller sees
    sql = _swap(sql, "    SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_reservation_id FOR UPDATE;\n", """\
    SELECT array_agg(x.tenant_id ORDER BY (x.tenant_id = p_actor_tenant) DESC, x.tenant_id) INTO tenants
      FROM voucher_reservations x
     WHERE x.reservation_id = p_reservation_id AND (p_tenant = '' OR x.tenant_id = p_tenant)
       AND (p_visible IS NULL OR x.tenant_id = ANY (p_visible));
    IF cardinality(tenants) > 1 AND tenants[1] <> p_actor_tenant THEN
        r.outcome := 'ambiguous'; RETURN NEXT r; RETURN;
    END IF;
    SELECT * INTO res FROM voucher_reservations WHERE reservation_id = p_reservation_id AND tenant_id = tenants[1] FOR UPDATE;
""")
    sql = _swap(sql, "SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_reservation_id;",
                "SELECT * INTO red FROM voucher_redemptions WHERE request_id = p_reservation_id AND tenant_id = res.tenant_id;")
    return _swap(sql, "UPDATE voucher_reservations SET status = done, settled_at = p_at WHERE reservation_id = p_reservation_id;",
                 "UPDATE voucher_reservations SET status = done, settled_at = p_at\n"
                 "     WHERE reservation_id = p_reservation_id AND tenant_id = res.tenant_id;")


_OLD_SIGNATURES = ("voucher_reservation_step(text, text, timestamptz, text[], text[], text[], boolean[], text[], text, text, text, "
                   "text, text)", "voucher_pin_attempt(text, text, text, bytea[], timestamptz, text[], text[], text[], boolean[], "
                   "text[], integer, bigint, text, text, text, text, text)", "voucher_pin_replay(text, text, text, bytea[])")
_NEW_SIGNATURES = ("voucher_reservation_step(text, text, timestamptz, text[], text[], text[], boolean[], text[], text, text, text, "
                   "text, text, text)", "voucher_pin_attempt(text, text, text, bytea[], timestamptz, text[], text[], text[], "
                   "boolean[], text[], integer, bigint, text, text, text, text, text)",
                   "voucher_pin_replay(text, text, text, text, bytea[])")

# the columns of the two tables as vouchers_0003 left them (SQLite rebuilds them)
_REDEMPTIONS = (
    ("request_id", sa.String(80), False, None), ("msisdn", sa.String(15), False, None), ("serial", sa.BigInteger(), False, None),
    ("batch_id", sa.String(19), False, None), ("tenant_id", sa.String(40), False, None), ("currency", sa.String(3), False, None),
    ("credited_micros", sa.BigInteger(), False, None), ("balance_micros", sa.BigInteger(), False, None),
    ("valid_until", TS, False, None), ("redeemed_at", TS, False, None), ("transaction_id", sa.String(40), False, None),
    ("voucher_state", sa.String(16), False, "used"), ("kind", sa.String(8), False, "redeem"),
)
_RESERVATIONS = (
    ("reservation_id", sa.String(80), False, None), ("msisdn", sa.String(15), False, None), ("serial", sa.BigInteger(), False, None),
    ("batch_id", sa.String(19), False, None), ("tenant_id", sa.String(40), False, None), ("currency", sa.String(3), False, None),
    ("face_value_micros", sa.BigInteger(), False, None), ("validity_extension_days", sa.Integer(), False, None),
    ("reserved_at", TS, False, None), ("status", sa.String(16), False, None), ("settled_at", TS, True, None),
)


def _rekey(table: str, columns: tuple[tuple[str, sa.types.TypeEngine, bool, str | None], ...], key: list[str]) -> None:
    """Give ``table`` a new primary key, its rows kept: in place on PostgreSQL, by a rebuild on SQLite."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(key)})")
        return
    names = ", ".join(c[0] for c in columns)
    op.create_table(f"{table}_rekeyed", *[sa.Column(n, t, nullable=null, server_default=d) for n, t, null, d in columns],
                    sa.PrimaryKeyConstraint(*key))
    op.execute(f"INSERT INTO {table}_rekeyed ({names}) SELECT {names} FROM {table}")
    op.drop_table(table)  # its index and trigger go with it; the caller makes them again
    op.rename_table(f"{table}_rekeyed", table)


def _rekey_both(redemption_key: list[str], reservation_key: list[str], trigger: str) -> None:
    _rekey("voucher_redemptions", _REDEMPTIONS, redemption_key)
    _rekey("voucher_reservations", _RESERVATIONS, reservation_key)
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("ix_voucher_redemptions_msisdn", "voucher_redemptions", ["msisdn", "redeemed_at"])
        op.execute(trigger)


def upgrade() -> None:
    v3 = _previous()
    _rekey_both(["request_id", "tenant_id"], ["reservation_id", "tenant_id"], v3.SQLITE_TRIGGER)
    if op.get_bind().dialect.name == "postgresql":
        for signature in _OLD_SIGNATURES:
            op.execute(f"DROP FUNCTION {signature}")
        for sql in (_replay(v3), _attempt(v3), _step(v3)):
            op.execute(sql)


def downgrade() -> None:
    v3 = _previous()
    bind = op.get_bind()
    for table, column in (("voucher_redemptions", "request_id"), ("voucher_reservations", "reservation_id")):
        shared = bind.execute(sa.text(f"SELECT {column} FROM {table} GROUP BY {column} HAVING count(*) > 1 LIMIT 5")).scalars().all()
        if shared:
            raise RuntimeError(f"cannot downgrade below vouchers_0004: {table} holds ids used by more than one tenant "
                               f"({', '.join(shared)}); vouchers_0003 keys them by id alone")
    if bind.dialect.name == "postgresql":
        for signature in _NEW_SIGNATURES:
            op.execute(f"DROP FUNCTION {signature}")
        for sql in (v3.PG_REPLAY, v3.PG_ATTEMPT, v3.PG_STEP):
            op.execute(sql)
    _rekey_both(["request_id"], ["reservation_id"], v3.SQLITE_TRIGGER)
