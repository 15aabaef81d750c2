"""Plans and rating: stored plan set versions (IR + sources), bundle counters, usage ledger and balances.

Revision ID: plans_0001
Revises: 0001_foundation
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "plans_0001"
down_revision = "0001_foundation"
branch_labels = ("plans",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plan_set_versions",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("ir_json", sa.Text(), nullable=False),
        sa.Column("sources_json", sa.Text(), nullable=False),
        sa.Column("create_time", TS, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("activate_time", TS, nullable=True),
    )
    op.create_index("ix_plan_set_versions_activation", "plan_set_versions", ["tenant_id", "activate_time"])
    op.create_table(
        "bundle_counters",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("msisdn", sa.String(32), primary_key=True),
        sa.Column("cycle", sa.String(7), primary_key=True),
        sa.Column("bundle_id", sa.String(64), primary_key=True),
        sa.Column("allowance", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
    )
    op.create_table(
        "usage_ledger",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("cdr_id", sa.String(64), primary_key=True),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("cycle", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=False),
        sa.Column("bundles_json", sa.Text(), nullable=False),
    )
    op.create_table(
        "usage_balances",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("msisdn", sa.String(32), primary_key=True),
        sa.Column("cycle", sa.String(7), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("charged_micros", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_balances")
    op.drop_table("usage_ledger")
    op.drop_table("bundle_counters")
    op.drop_index("ix_plan_set_versions_activation", table_name="plan_set_versions")
    op.drop_table("plan_set_versions")
