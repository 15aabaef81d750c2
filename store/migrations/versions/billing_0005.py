"""Billing: add-on purchases listed per subscriber and cancelled (engine.billing.addons): the refund policy a purchase
was bought with, its cancel (instant, request id, who) and the refund it gave, the last bill cycle it is valid in
(its use is shown on the bill of every cycle it is valid in), and an index for a subscriber's list.

Revision ID: billing_0005
Revises: billing_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0005"
down_revision = "billing_0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("billing_addon_purchases") as t:
        # purchases made before it were bought under the default policy: no refund
        t.add_column(sa.Column("refund", sa.String(16), nullable=False, server_default="none"))
        t.add_column(sa.Column("cancel_time", TS, nullable=True))
        t.add_column(sa.Column("cancel_request_id", sa.String(128), nullable=False, server_default=""))
        t.add_column(sa.Column("refund_micros", sa.BigInteger(), nullable=False, server_default="0"))
        t.add_column(sa.Column("refund_charge_id", sa.String(40), nullable=False, server_default=""))
        t.add_column(sa.Column("cancelled_by", sa.String(128), nullable=False, server_default=""))
        # the bill cycle of its last valid instant ("" before it: the cycle it was bought in)
        t.add_column(sa.Column("last_bill_cycle", sa.String(7), nullable=False, server_default=""))
    op.create_index("ix_billing_addon_subscriber", "billing_addon_purchases", ["tenant_id", "subscriber_id", "purchase_time", "purchase_id"])


def downgrade() -> None:
    op.drop_index("ix_billing_addon_subscriber", table_name="billing_addon_purchases")
    with op.batch_alter_table("billing_addon_purchases") as t:
        for name in ("last_bill_cycle", "cancelled_by", "refund_charge_id", "refund_micros", "cancel_request_id", "cancel_time", "refund"):
            t.drop_column(name)
