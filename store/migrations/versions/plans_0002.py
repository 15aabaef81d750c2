"""Usage ledger: per-CDR detail the bill run reads (start time, service, destination group, tariff plan,
plan set version, units) and an index by subscriber and time.

Revision ID: plans_0002
Revises: plans_0001
Create Date: 2026-12-06

Rows rated before this revision keep empty detail (start_time NULL): the bill run cannot place them in a
period and does not bill them.
"""

import sqlalchemy as sa
from alembic import op

revision = "plans_0002"
down_revision = "plans_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as batch:
        batch.add_column(sa.Column("start_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("service", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("destination_group", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("tariff_plan", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("plan_set_version", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("units", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_usage_ledger_msisdn_start", "usage_ledger", ["tenant_id", "msisdn", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_msisdn_start", table_name="usage_ledger")
    with op.batch_alter_table("usage_ledger") as batch:
        for name in ("units", "plan_set_version", "tariff_plan", "destination_group", "service", "start_time"):
            batch.drop_column(name)
