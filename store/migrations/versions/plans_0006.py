"""Usage ledger on SQLite: its look-up key by CDR id as a column, not an index on a function.

Revision ID: plans_0006
Revises: plans_0005
Create Date: 2026-12-07

plans_0005 found SQLite ledger rows by CDR id through an index on ``rulebill_cdr_key(cdr_id)``, a Python function
SQLite called back for every row a chunk inserted.  Here the key (store.db.ledger_key, the same 64 bits of BLAKE2b)
is the column ``cdr_key``, written with the row (store.plans.UsageRepo.write_chunk), and ``ix_usage_ledger_cdr_key``
indexes that column.  Measured on the ledger's key index alone, 300k rows in 1,000-row transactions into a fresh
file: 4.43 KiB written a row through the function's index, 2.49 through the column's, and a fifth less CPU
(docs/BENCHMARKS.md).  An index on a plain column also comes back from a ``.dump`` restored by a shell that lacks the
function.

PostgreSQL finds its rows by the primary key ``(tenant_id, cdr_id)``: the column is added there too (one table
definition for both databases) and stays NULL, which a row stores as one bit of its null bitmap.  Its ledger's
key columns ``tenant_id``, ``cdr_id`` and ``msisdn`` compare bytewise (``COLLATE "C"``): each row a chunk writes
goes into the primary key and the subscriber index by about twenty comparisons each, which the database's default
collation (a libc locale) makes calls to ``strcoll``; measured on the insert-only floor, 1M rows, the backend's CPU
11.2-12.8 s before, 10.5-11.4 s after (docs/BENCHMARKS.md).  CDR ids, tenant ids and numbers are ASCII, so their
order is unchanged; a comparison with a column of the default collation (``mediated_cdrs`` in re-rating's join)
takes this one.  The indexes are rebuilt, the rows stay.

Rows keep their order (no rebuild); down again, the column's values are dropped, plans_0005's index on the function
is built (SQLite) and the columns take the database's collation again (PostgreSQL).
"""

from alembic import op

revision = "plans_0006"
down_revision = "plans_0005"
branch_labels = None
depends_on = None


# PostgreSQL: the ledger's key columns and their lengths (store.plans.usage_ledger)
KEY_COLUMNS = (("tenant_id", 40), ("cdr_id", 64), ("msisdn", 32))


def _collate(collation: str) -> None:
    changes = ", ".join(f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE "{collation}"' for name, length in KEY_COLUMNS)
    op.execute(f"ALTER TABLE usage_ledger {changes}")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("ALTER TABLE usage_ledger ADD COLUMN cdr_key BIGINT")
    if not sqlite:
        _collate("C")
    else:
        # the function every connection of store.db.make_engine registers (alembic's too, see migrations/env.py)
        op.execute("UPDATE usage_ledger SET cdr_key = rulebill_cdr_key(cdr_id)")
        op.execute("DROP INDEX IF EXISTS ix_usage_ledger_cdr_key")
        op.execute("CREATE INDEX ix_usage_ledger_cdr_key ON usage_ledger (cdr_key)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_usage_ledger_cdr_key")
        op.execute("ALTER TABLE usage_ledger DROP COLUMN cdr_key")
        op.execute("CREATE INDEX ix_usage_ledger_cdr_key ON usage_ledger (rulebill_cdr_key(cdr_id))")
    else:
        op.execute("ALTER TABLE usage_ledger DROP COLUMN cdr_key")
        _collate("default")
