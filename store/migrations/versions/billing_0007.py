"""Billing: monthly add-ons, bought apart from a plan and recurring every bill cycle until cancelled
(engine.billing.addons): a purchase's recurrence, and the anchor day and time zone of the bill cycles its allowance is
counted in afresh (its ``valid_until`` is the instant a cancel stops it at, open until then).

Revision ID: billing_0007
Revises: billing_0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0007"
down_revision = "billing_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("billing_addon_purchases") as t:
        # purchases made before it are one-off add-ons
        t.add_column(sa.Column("recurrence", sa.String(16), nullable=False, server_default="one_off"))
        t.add_column(sa.Column("anchor_day", sa.Integer(), nullable=False, server_default="1"))
        t.add_column(sa.Column("cycle_zone", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("billing_addon_purchases") as t:
        for name in ("cycle_zone", "anchor_day", "recurrence"):
            t.drop_column(name)
