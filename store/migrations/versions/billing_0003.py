"""Billing: add-on purchases (one-off bundles bought for a subscriber; engine.billing.addons).

Revision ID: billing_0003
Revises: billing_0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0003"
down_revision = "billing_0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "billing_addon_purchases",
        sa.Column("purchase_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("subscriber_id", sa.String(40), nullable=False),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("cycle", sa.String(7), nullable=False),
        sa.Column("bill_cycle", sa.String(7), nullable=False),
        sa.Column("tariff_plan", sa.String(64), nullable=False),
        sa.Column("purchase_time", TS, nullable=False),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("allowance", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("fee_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tax_category", sa.String(40), nullable=False),
        sa.Column("charge_id", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ux_billing_addon_counter", "billing_addon_purchases", ["tenant_id", "msisdn", "cycle"], unique=True)
    op.create_index("ix_billing_addon_valid", "billing_addon_purchases", ["tenant_id", "msisdn", "valid_until"])


def downgrade() -> None:
    op.drop_index("ix_billing_addon_valid", table_name="billing_addon_purchases")
    op.drop_index("ux_billing_addon_counter", table_name="billing_addon_purchases")
    op.drop_table("billing_addon_purchases")
