"""Billing: the e-mail outbox (issued invoices of accounts billed by e-mail, queued in the transaction that issues
them, marked when sent).

Revision ID: billing_0002
Revises: billing_0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0002"
down_revision = "billing_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "billing_outbox",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("invoice_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("queue_time", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("sent_time", TS, nullable=True),
    )
    op.create_index("ix_billing_outbox_waiting", "billing_outbox", ["sent_time", "queue_time"])


def downgrade() -> None:
    op.drop_index("ix_billing_outbox_waiting", table_name="billing_outbox")
    op.drop_table("billing_outbox")
