"""Usage ledger on SQLite: found by CDR id through a narrow key, no primary key on the id's text.

Revision ID: plans_0005
Revises: plans_0004
Create Date: 2026-12-06

A rated chunk writes its ledger rows at random places of every index keyed by CDR id.  On SQLite the primary key
``(tenant_id, cdr_id)`` was such an index of about 45 bytes an entry: at a million rows it outgrew the page cache and
each chunk's commit wrote (and each checkpoint copied) a page of it per row.  Here the SQLite table keeps its rows in
insertion order (rowid) and the look-up by CDR id goes through ``ix_usage_ledger_cdr_key``, an index on
``rulebill_cdr_key(cdr_id)`` (store.db.ledger_key: 64 bits of BLAKE2b, registered on every connection by
store.db.make_engine), 8 bytes an entry; every look-up compares the id too, so two ids with one key stay apart.  No
unique constraint holds the id once: SQLite writers are serialised (``BEGIN IMMEDIATE``) and
store.plans.UsageRepo.write_chunk refuses a row whose CDR already has one (the answer a broken key gave before).

PostgreSQL keeps its primary key: there two replicas insert concurrently, and the key is what stops them storing one
CDR twice.  Rows are copied as they are (both ways).
"""

import sqlalchemy as sa
from alembic import op

revision = "plans_0005"
down_revision = "plans_0004"
branch_labels = None
depends_on = None

COLUMNS = ("tenant_id", "cdr_id", "msisdn", "cycle", "currency", "charge_micros", "bundles_json", "start_time", "service",
           "destination_group", "tariff_plan", "plan_set_version", "units", "zone", "plan_version", "status", "reason")


def _columns(keyed: bool) -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.String(40), primary_key=keyed, nullable=False),
        sa.Column("cdr_id", sa.String(64), primary_key=keyed, nullable=False),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("cycle", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=False),
        sa.Column("bundles_json", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("service", sa.String(16), nullable=False, server_default=""),
        sa.Column("destination_group", sa.String(64), nullable=False, server_default=""),
        sa.Column("tariff_plan", sa.String(64), nullable=False, server_default=""),
        sa.Column("plan_set_version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("units", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    ]


def _rebuild(keyed: bool) -> None:
    """usage_ledger again with or without the primary key, its rows copied in rowid order, its indexes made anew."""
    op.create_table("usage_ledger_rebuilt", *_columns(keyed))
    names = ", ".join(COLUMNS)
    op.execute(f"INSERT INTO usage_ledger_rebuilt ({names}) SELECT {names} FROM usage_ledger ORDER BY rowid")
    op.drop_table("usage_ledger")   # with its indexes: their names are free again
    op.rename_table("usage_ledger_rebuilt", "usage_ledger")
    op.create_index("ix_usage_ledger_msisdn_start", "usage_ledger", ["tenant_id", "msisdn", "start_time"])
    if not keyed:
        op.execute("CREATE INDEX ix_usage_ledger_cdr_key ON usage_ledger (rulebill_cdr_key(cdr_id))")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(keyed=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(keyed=True)
