"""Billing: the frozen CDRs of an invoice found through one list row per freeze (``billing_usage_lists``) instead of
an index entry per CDR (``ix_billing_usage_invoice``).

A bill run freezes 200 CDRs per invoice into ``billing_usage``; the index on their invoice id took a random
b-tree insert per CDR (invoice ids are random), about 40 % of the freeze's database time, for lookups only a
re-bill, the re-rated check and a draft's deletion make.  Each freeze now also writes the ids it froze per invoice as
one text row; ``billing_usage`` keeps its primary key (tenant, CDR id: each CDR billed once).  Existing frozen rows
get their lists here, then the index goes.

Revision ID: billing_0004
Revises: billing_0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0004"
down_revision = "billing_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_usage_lists",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("cdr_ids", sa.Text(), nullable=False),          # the CDR ids frozen for the invoice, one a line
    )
    op.create_index("ix_billing_usage_lists_invoice", "billing_usage_lists", ["invoice_id"])
    bind = op.get_bind()
    joined = "string_agg(cdr_id, chr(10))" if bind.dialect.name == "postgresql" else "group_concat(cdr_id, char(10))"
    op.execute(f"INSERT INTO billing_usage_lists (tenant_id, invoice_id, cdr_ids) SELECT tenant_id, invoice_id, {joined} "
               "FROM billing_usage GROUP BY tenant_id, invoice_id")
    op.drop_index("ix_billing_usage_invoice", table_name="billing_usage")


def downgrade() -> None:
    op.create_index("ix_billing_usage_invoice", "billing_usage", ["invoice_id"])
    op.drop_index("ix_billing_usage_lists_invoice", table_name="billing_usage_lists")
    op.drop_table("billing_usage_lists")
