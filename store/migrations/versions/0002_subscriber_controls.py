"""Subscriber controls: staff barring flags and a credit limit per subscriber.

Revision ID: 0002_subscriber_controls
Revises: 0001_foundation
Create Date: 2026-11-27

0001_foundation is the root every area branch hangs off; this revision is one
more head beside them (no branch label), so ``alembic upgrade heads`` applies it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_subscriber_controls"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN with a constant default works on SQLite and PostgreSQL without a table rebuild
    op.add_column("subscribers", sa.Column("barring_flags", sa.String(400), nullable=False, server_default=""))
    op.add_column("subscribers", sa.Column("credit_limit_micros", sa.BigInteger(), nullable=True))
    op.add_column("subscribers", sa.Column("credit_currency", sa.String(3), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("credit_currency")
        batch.drop_column("credit_limit_micros")
        batch.drop_column("barring_flags")
