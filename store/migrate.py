"""Apply alembic migrations: ``rulebill db upgrade`` and ``make run`` call this.

Each area (foundation, vouchers, plans, mediation ...) is its own alembic branch
rooted at the foundation revision, so the target is always ``heads``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "heads")


def current_heads(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    from store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads


def missing_migrations(url: str) -> set[str]:
    """The migration heads the database has not reached (empty when it is up to date)."""
    from alembic.script import ScriptDirectory

    wanted = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    return wanted - current_heads(url)
