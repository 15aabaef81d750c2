"""Dual control of the tokens a security officer issues: approval state, issuer, decision and the approver's half.

Revision ID: 0003_token_approval
Revises: 0002_subscriber_controls
Create Date: 2026-12-07

Like 0002, one more head off the foundation line (no branch label).  Tokens stored before it read as
``not_required``: they were issued under the one-officer rule and keep working.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_token_approval"
down_revision = "0002_subscriber_controls"
branch_labels = None
depends_on = None

TEXT_COLUMNS = (("approval", 16, "not_required"), ("issued_by", 200, ""), ("issued_by_token", 32, ""), ("decided_by", 200, ""),
                ("decided_by_token", 32, ""), ("approval_hash", 64, ""))
TIME_COLUMNS = ("approval_expire_time", "decide_time")


def upgrade() -> None:
    # plain ADD COLUMN with a constant default: no table rebuild on SQLite or PostgreSQL, every row kept
    for name, length, default in TEXT_COLUMNS:
        op.add_column("api_tokens", sa.Column(name, sa.String(length), nullable=False, server_default=default))
    for name in TIME_COLUMNS:
        op.add_column("api_tokens", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # a token still pending, rejected or approved under dual control would work with its first half alone (or, if
    # rejected, at all) under the old schema: such tokens are revoked first, so a downgrade never widens access
    op.execute(sa.text("UPDATE api_tokens SET revoke_time = CURRENT_TIMESTAMP "
                       "WHERE approval <> 'not_required' AND revoke_time IS NULL"))
    with op.batch_alter_table("api_tokens") as batch:
        for name in reversed(TIME_COLUMNS):
            batch.drop_column(name)
        for name, _, _ in reversed(TEXT_COLUMNS):
            batch.drop_column(name)
