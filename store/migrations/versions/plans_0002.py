"""Rating: the usage ledger becomes the store of rated CDRs (start time, service, destination, plan, status).

Revision ID: plans_0002
Revises: plans_0001
Create Date: 2026-11-28

The ledger keeps one row per CDR rated with counters; bill runs read the rated
rows of a period from it, so it gains what a bill line needs and two indexes
(per tenant and start time, per subscriber and start time).  Rows written
before this revision keep NULL in the new columns.
"""

import sqlalchemy as sa
from alembic import op

revision = "plans_0002"
down_revision = "plans_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
COLUMNS = (
    ("start_time", TS),
    ("service", sa.String(16)),
    ("destination", sa.String(64)),
    ("zone", sa.String(64)),
    ("units", sa.BigInteger()),
    ("plan_set_version", sa.BigInteger()),
    ("tariff_plan", sa.String(64)),
    ("plan_version", sa.Integer()),
    ("status", sa.String(10)),
    ("reason", sa.Text()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("usage_ledger", sa.Column(name, kind, nullable=True))
    op.create_index("ix_usage_ledger_tenant_start", "usage_ledger", ["tenant_id", "start_time"])
    op.create_index("ix_usage_ledger_subscriber_start", "usage_ledger", ["tenant_id", "msisdn", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_subscriber_start", "usage_ledger")
    op.drop_index("ix_usage_ledger_tenant_start", "usage_ledger")
    with op.batch_alter_table("usage_ledger") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
