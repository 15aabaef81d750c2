"""Usage ledger: drop the index by tenant and start time.

Revision ID: plans_0004
Revises: plans_0003
Create Date: 2026-12-06

Every ledger row cost a write in each of the table's B-trees, and ``ix_usage_ledger_tenant_start`` served no
product read: the bill run reads by tenant, subscriber and start time (``ix_usage_ledger_msisdn_start``), rating
and re-rating by tenant and CDR id (the primary key), and re-rating finds its period's CDRs in ``mediated_cdrs``
(its own index by tenant and start time) before joining the ledger on the primary key.  The rows stay as they are.
"""

from alembic import op

revision = "plans_0004"
down_revision = "plans_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_usage_ledger_tenant_start", table_name="usage_ledger")


def downgrade() -> None:
    op.create_index("ix_usage_ledger_tenant_start", "usage_ledger", ["tenant_id", "start_time"])
