"""Credit alerts: the alert log (the outbox) of thresholds crossed while rating with counters.

Revision ID: alerts_0001
Revises: 0001_foundation
Create Date: 2026-11-27

One row per action of a fired threshold; the unique key (tenant, msisdn,
period, threshold, action) makes "each threshold fires once per period" hold
even when two replicas rate the same subscriber at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = "0001_foundation"
branch_labels = ("alerts",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credit_alert_log",
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("threshold_id", sa.String(64), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("percent", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("barring_flag", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("used_micros", sa.BigInteger(), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("fire_time", TS, nullable=False),
    )
    op.create_index("uq_credit_alert_once", "credit_alert_log",
                    ["tenant_id", "msisdn", "period", "threshold_id", "action_index"], unique=True)
    op.create_index("ix_credit_alert_tenant", "credit_alert_log", ["tenant_id", "sequence"])


def downgrade() -> None:
    op.drop_index("ix_credit_alert_tenant", "credit_alert_log")
    op.drop_index("uq_credit_alert_once", "credit_alert_log")
    op.drop_table("credit_alert_log")
