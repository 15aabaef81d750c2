"""Billing: an invoice's frozen CDRs as one row per number (``billing_frozen_usage``) instead of one row per CDR.

A bill run froze each CDR as a ``billing_usage`` row under a primary key of tenant and CDR id (random ids: a random
b-tree insert per CDR, then a probe of that key per CDR on every later read of the period) plus one
``billing_usage_lists`` row per invoice naming them: about half of the database's CPU per invoice.  Now each freeze
writes one row per (invoice, number): the number, the first and last start time of its CDRs, their ids and their
charges as two lists, one a line, in the same order.  Reads find what is billed already by number and start time;
a freeze checks the numbers' rows for a CDR billed twice (store.billing).

Existing frozen CDRs are grouped here by invoice and by the number and start time the usage ledger has for them
(a CDR the ledger no longer has goes under the number ''); the downgrade writes them back one row per CDR with one
list per invoice.

Revision ID: billing_0008
Revises: billing_0007
Create Date: 2026-12-07
"""

from datetime import datetime, timezone
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision = "billing_0008"
down_revision = "billing_0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NO_START = datetime(1970, 1, 1, tzinfo=timezone.utc)    # a CDR whose start the ledger no longer has
CHUNK = 2000

frozen = sa.table("billing_frozen_usage", sa.column("tenant_id", sa.String), sa.column("invoice_id", sa.String),
                  sa.column("msisdn", sa.String), sa.column("first_start", TS), sa.column("last_start", TS),
                  sa.column("cdr_ids", sa.Text), sa.column("charges", sa.Text))
per_cdr = sa.table("billing_usage", sa.column("tenant_id", sa.String), sa.column("cdr_id", sa.String),
                   sa.column("invoice_id", sa.String), sa.column("charge_micros", sa.BigInteger))
lists = sa.table("billing_usage_lists", sa.column("tenant_id", sa.String), sa.column("invoice_id", sa.String),
                 sa.column("cdr_ids", sa.Text))
ledger = sa.table("usage_ledger", sa.column("tenant_id", sa.String), sa.column("cdr_id", sa.String), sa.column("msisdn", sa.String),
                  sa.column("start_time", TS))


def _aware(value: object) -> datetime:
    if value is None:
        return NO_START
    if isinstance(value, str):   # SQLite without the column's type
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _flush(bind: sa.engine.Connection, table: sa.TableClause, rows: list[dict[str, object]]) -> None:
    if rows:
        bind.execute(table.insert(), rows)
        rows.clear()


def upgrade() -> None:
    op.create_table(
        "billing_frozen_usage",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("first_start", TS, nullable=False),
        sa.Column("last_start", TS, nullable=False),
        sa.Column("cdr_ids", sa.Text(), nullable=False),       # one a line
        sa.Column("charges", sa.Text(), nullable=False),       # micro-units, one a line, in the ids' order
    )
    op.create_index("ix_billing_frozen_usage_number", "billing_frozen_usage", ["tenant_id", "msisdn", "last_start"])
    op.create_index("ix_billing_frozen_usage_invoice", "billing_frozen_usage", ["invoice_id"])
    bind = op.get_bind()
    has_ledger = "usage_ledger" in sa.inspect(bind).get_table_names()
    u = per_cdr.c
    if has_ledger:
        lg = ledger.c
        q = (sa.select(u.tenant_id, u.invoice_id, u.cdr_id, u.charge_micros, sa.func.min(lg.msisdn), sa.func.min(lg.start_time))
             .select_from(per_cdr.outerjoin(ledger, sa.and_(lg.tenant_id == u.tenant_id, lg.cdr_id == u.cdr_id)))
             .group_by(u.tenant_id, u.invoice_id, u.cdr_id, u.charge_micros)
             .order_by(u.tenant_id, u.invoice_id, sa.func.min(lg.msisdn), sa.func.min(lg.start_time), u.cdr_id))
    else:
        q = sa.select(u.tenant_id, u.invoice_id, u.cdr_id, u.charge_micros, sa.literal(None), sa.literal(None)).order_by(
            u.tenant_id, u.invoice_id, u.cdr_id)
    # streamed in (tenant, invoice, number) order: one row per run of them
    rows = ((t, i, m or "", _aware(s), c, int(ch)) for t, i, c, ch, m, s in bind.execute(q.execution_options(yield_per=CHUNK)))
    out: list[dict[str, object]] = []
    for (tenant, invoice, msisdn), group in groupby(rows, key=lambda r: r[:3]):
        cdrs = list(group)
        starts = [r[3] for r in cdrs]
        out.append(dict(tenant_id=tenant, invoice_id=invoice, msisdn=msisdn, first_start=min(starts), last_start=max(starts),
                        cdr_ids="\n".join(r[4] for r in cdrs), charges="\n".join(str(r[5]) for r in cdrs)))
        if len(out) >= CHUNK:
            _flush(bind, frozen, out)
    _flush(bind, frozen, out)
    op.drop_index("ix_billing_usage_lists_invoice", table_name="billing_usage_lists")
    op.drop_table("billing_usage_lists")
    op.drop_table("billing_usage")


def downgrade() -> None:
    op.create_table(
        "billing_usage",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("cdr_id", sa.String(64), primary_key=True),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "billing_usage_lists",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("cdr_ids", sa.Text(), nullable=False),
    )
    op.create_index("ix_billing_usage_lists_invoice", "billing_usage_lists", ["invoice_id"])
    bind = op.get_bind()
    f = frozen.c
    usage: list[dict[str, object]] = []
    named: list[dict[str, object]] = []
    for tenant, invoice, ids, charges in bind.execute(sa.select(f.tenant_id, f.invoice_id, f.cdr_ids, f.charges)):
        cdrs = ids.split("\n")
        usage.extend(dict(tenant_id=tenant, cdr_id=c, invoice_id=invoice, charge_micros=int(m)) for c, m in zip(cdrs, charges.split("\n")))
        named.append(dict(tenant_id=tenant, invoice_id=invoice, cdr_ids=ids))
        if len(usage) >= CHUNK:
            _flush(bind, per_cdr, usage)
            _flush(bind, lists, named)
    _flush(bind, per_cdr, usage)
    _flush(bind, lists, named)
    op.drop_index("ix_billing_frozen_usage_invoice", table_name="billing_frozen_usage")
    op.drop_index("ix_billing_frozen_usage_number", table_name="billing_frozen_usage")
    op.drop_table("billing_frozen_usage")
