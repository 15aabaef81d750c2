"""Usage ledger: the store of rated CDRs for re-rating and stored what-if (zone, plan version, status, reason) and an
index by tenant and start time.

Revision ID: plans_0003
Revises: plans_0002
Create Date: 2026-12-06

Rating now writes a ledger row for every CDR it prices with counters, unrated ones included (status ``unrated`` and
the reason), so a re-rating run can replace exactly the rows of its period.  Rows written before this revision keep
NULL in the new columns and count as rated (the only kind written then).
"""

import sqlalchemy as sa
from alembic import op

revision = "plans_0003"
down_revision = "plans_0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("zone", sa.String(64)),
    ("plan_version", sa.Integer()),
    ("status", sa.String(10)),
    ("reason", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_usage_ledger_tenant_start", "usage_ledger", ["tenant_id", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_tenant_start", table_name="usage_ledger")
    with op.batch_alter_table("usage_ledger") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
