"""Usage ledger on PostgreSQL: pages filled to half, so re-rating rewrites a row in place on its own page.

Revision ID: plans_0007
Revises: plans_0006
Create Date: 2026-12-07

Re-rating (engine.rating.rerate) rewrites a changed ledger row in place by its ctid (store.plans.UsageRepo's chunk
write: an ``UPDATE`` from a temporary table, where a ``DELETE`` and a ``COPY`` of the same rows came before).  An
update that changes no indexed column (tenant, CDR id, number, start time: re-rating changes none of them) and finds
room on the row's page is a heap-only tuple: the new version goes beside the old one and no index entry is written; on
a full page the new version goes to another page and both indexes get an entry, which is what the delete and insert
cost.  A chunk rewrites a run of consecutive rows, whole pages at a time, so a page needs room for a second copy of
its rows: ``fillfactor`` 50 (the rows an earlier run left dead are pruned on the page when it is next written).  The
ledger takes twice the pages of a packed one when it is written; one re-rating of a packed ledger without room left it
as large (a dead version of every row until vacuum).  The setting applies to pages written from now on: rows already
stored stay where they are.

SQLite has no such setting: nothing changes there (its chunk write deletes and inserts a changed row).  Down again,
the setting is reset to PostgreSQL's default (100).
"""

from alembic import op

revision = "plans_0007"
down_revision = "plans_0006"
branch_labels = None
depends_on = None

# the share of each ledger page that inserts fill (store.plans.usage_ledger; PostgreSQL only)
LEDGER_FILLFACTOR = 50


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"ALTER TABLE usage_ledger SET (fillfactor = {LEDGER_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("ALTER TABLE usage_ledger RESET (fillfactor)")
