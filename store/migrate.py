"""Apply alembic migrations: ``rulebill db upgrade`` and ``make run`` call this.

Each area (foundation, vouchers, plans, mediation ...) is its own alembic branch
rooted at the foundation revision, so the target is always ``heads``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import LEDGER_KEY, LEDGER_KEY_COLUMN, LEDGER_KEY_INDEX, is_sqlite, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# The SQLite ledger's look-up by CDR id was an index on a function every connection of store.db.make_engine
# registers (migration plans_0005; on the column cdr_key since plans_0006).  A shell without the function cannot build
# it: a database restored from the `sqlite3` shell's `.dump` has the revision table but not this index.
# `missing_migrations` reports a missing key index and `upgrade` builds it again (on the column where there is one),
# so `rulebill serve` refuses such a database until `rulebill db upgrade` has mended it.
def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "heads")
    if _ledger_key_index_missing(url):
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                columns = {c[1] for c in conn.exec_driver_sql("PRAGMA table_info(usage_ledger)")}
                key = LEDGER_KEY_COLUMN if LEDGER_KEY_COLUMN in columns else f"{LEDGER_KEY}(cdr_id)"
                conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {LEDGER_KEY_INDEX} ON usage_ledger ({key})")
        finally:
            engine.dispose()


def _ledger_key_index_missing(url: str) -> bool:
    """A SQLite ledger without a primary key (plans_0005 and after) needs the key index; is it absent?"""
    if not is_sqlite(url):
        return False
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            columns = conn.exec_driver_sql("PRAGMA table_info(usage_ledger)").fetchall()
            if not columns or any(c[5] for c in columns):  # no ledger yet, or one keyed by (tenant, CDR id)
                return False
            return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                                        (LEDGER_KEY_INDEX,)).first() is None
    finally:
        engine.dispose()


def current_heads(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads


def missing_migrations(url: str) -> set[str]:
    """The migration heads the database has not reached (empty when it is up to date)."""
    from alembic.script import ScriptDirectory

    wanted = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    missing = wanted - current_heads(url)
    if not missing and _ledger_key_index_missing(url):
        missing.add(f"plans_0005 ({LEDGER_KEY_INDEX})")
    return missing
