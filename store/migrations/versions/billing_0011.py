"""Billing: one open assignment per subscriber (``uq_billing_assignments_open``), a partial unique index.

AssignSubscriber read a subscriber's open assignment without a lock and then inserted the new one: two requests at once
(to two accounts) could both find none and leave the subscriber billed to both.  The desk now locks the subscriber's row
first (engine.billing.accounts); this index makes a second open assignment impossible whatever writes it.

A database where that race happened has subscribers with more than one open assignment.  Before the index is built,
each such subscriber keeps its latest one open and every earlier one ends where the next one starts, as one request
after the other would have left them (the subscriber moved account on that instant).

Revision ID: billing_0011
Revises: billing_0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0011"
down_revision = "billing_0008"
branch_labels = None
depends_on = None

OPEN = sa.text("valid_to IS NULL")
# the times untyped: each start is written back as the database gave it (SQLite keeps them as text)
assignments = sa.table("billing_assignments", sa.column("tenant_id", sa.String), sa.column("subscriber_id", sa.String),
                       sa.column("valid_from"), sa.column("valid_to"))


def _close_doubles(bind: sa.engine.Connection) -> None:
    a = assignments.c
    doubles = (sa.select(a.tenant_id, a.subscriber_id).where(a.valid_to.is_(None)).group_by(a.tenant_id, a.subscriber_id)
               .having(sa.func.count() > 1))
    for tenant, subscriber in bind.execute(doubles).all():
        starts = [r[0] for r in bind.execute(sa.select(a.valid_from).where(
            sa.and_(a.tenant_id == tenant, a.subscriber_id == subscriber, a.valid_to.is_(None))).order_by(a.valid_from))]
        for start, next_start in zip(starts, starts[1:]):
            bind.execute(assignments.update().where(sa.and_(a.tenant_id == tenant, a.subscriber_id == subscriber,
                                                            a.valid_from == start)).values(valid_to=next_start))


def upgrade() -> None:
    _close_doubles(op.get_bind())
    op.create_index("uq_billing_assignments_open", "billing_assignments", ["tenant_id", "subscriber_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("uq_billing_assignments_open", table_name="billing_assignments")
