"""Billing: a bill run keeps whether it is an interim bill (an on-demand run that also bills the days since the last
bill up to yesterday), so a run killed and resumed by its id bills the same interim period instead of the due one.

Revision ID: billing_0006
Revises: billing_0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0006"
down_revision = "billing_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("billing_runs") as t:
        # runs started before it were never resumed as interim runs: false keeps what they did
        t.add_column(sa.Column("interim", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("billing_runs") as t:
        t.drop_column("interim")
