"""Alembic environment: the URL comes from the caller (store.migrate) or Rulebill settings."""

from __future__ import annotations

from alembic import context

from engine.settings import load_settings
from store.db import make_engine, normalise_url

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().effective_database_url


def run_migrations_offline() -> None:
    context.configure(url=normalise_url(url), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
            with context.begin_transaction():
                context.run_migrations()
    finally:  # a migration that refuses (vouchers_0004's downgrade) leaves no connection open
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
