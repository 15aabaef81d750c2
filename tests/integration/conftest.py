"""Integration fixtures: a real database (SQLite file and, when configured, PostgreSQL)
and a real gRPC server on a free 127.0.0.1 port.

PostgreSQL runs when RULEBILL_TEST_POSTGRES_URL points at a server where the user may
CREATE DATABASE (``.ci/run`` starts one); each test module gets a fresh database.  The migrations run once per test
process (each xdist worker is one), into a template database on PostgreSQL and a template file on SQLite, and each
module's database is a copy of it (``CREATE DATABASE ... TEMPLATE``, a copied file): the same migrated schema, without
running the migrations again for every module.  The tests of the migrations themselves go down and up from such a copy.

Both event-rule backends (the ``event_rules_backend`` setting): every module that takes ``db_url`` runs on SQLite
with ``compiled`` and with ``durable_rules``; over PostgreSQL, ``durable_rules`` runs only the modules marked
``event_rules`` (their outcome goes through barring, credit alerts or the voucher lifecycles), which keeps
``make test`` within its time budget.  ``RULEBILL_TEST_EVENT_RULES_BACKENDS=compiled`` runs one backend only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.clock import Clock
from engine.eventrules import BACKENDS as EVENT_RULE_BACKENDS, DEFAULT_BACKEND
from engine.identity import Role
from engine.settings import Settings
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.db import normalise_url
from store.migrate import upgrade
from tests.integration.helpers import WireClient

PG_ENV = "RULEBILL_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgres"]
RULE_BACKENDS_ENV = "RULEBILL_TEST_EVENT_RULES_BACKENDS"
# the variable engine.settings reads: a Settings built while a module runs takes the module's rule backend
SETTING_ENV = "RULEBILL_EVENT_RULES_BACKEND"


def _rule_backends() -> list[str]:
    wanted = [b.strip() for b in os.environ.get(RULE_BACKENDS_ENV, ",".join(EVENT_RULE_BACKENDS)).split(",") if b.strip()]
    unknown = [b for b in wanted if b not in EVENT_RULE_BACKENDS]
    if unknown:
        raise pytest.UsageError(f"{RULE_BACKENDS_ENV}: unknown backend(s) {', '.join(unknown)} (use {', '.join(EVENT_RULE_BACKENDS)})")
    return wanted


def _db_params() -> list[Any]:
    """(database, rule backend); the default backend keeps the plain ids ``sqlite`` and ``postgres``."""
    return [pytest.param((db, rb), id=db if rb == DEFAULT_BACKEND else f"{db}-{rb}")
            for rb in _rule_backends() for db in BACKENDS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL on a second rule backend only for the modules whose outcome depends on it (marked event_rules)."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        db, rb = params.params.get("db_url", ("", DEFAULT_BACKEND)) if params is not None else ("", DEFAULT_BACKEND)
        if db == "postgres" and rb != DEFAULT_BACKEND and item.get_closest_marker("event_rules") is None:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="module", params=_db_params())
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for one test module, on each database and event-rule backend."""
    database, rule_backend = request.param
    before = os.environ.get(SETTING_ENV)
    os.environ[SETTING_ENV] = rule_backend
    try:
        yield from fresh_database(database, request, tmp_path_factory)
    finally:
        if before is None:
            os.environ.pop(SETTING_ENV, None)
        else:
            os.environ[SETTING_ENV] = before


def fresh_database(database: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database (``sqlite`` or ``postgres``) migrated to the heads: a copy of this test process's template."""
    template = request.getfixturevalue("migrated_sqlite" if database == "sqlite" else "migrated_postgres")
    yield from _database(database, tmp_path_factory, template)


def _database(database: str, tmp_path_factory: pytest.TempPathFactory, template: Path | str | None = None) -> Iterator[str]:
    """A fresh database migrated to the heads: a copy of ``template`` (this process's migrated_sqlite file or
    migrated_postgres database) or, without one, migrated here; a PostgreSQL one is dropped afterwards."""
    if database == "sqlite":
        path = tmp_path_factory.mktemp("db") / "rulebill.db"
        url = f"sqlite:///{path}"
        if template is None:
            upgrade(url)
        else:
            shutil.copyfile(template, path)
            path.chmod(0o600)   # as store.db creates it: the server refuses a database file others may read
        yield url
        return
    admin = _pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (the CI script does)")
    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    url = make_url(normalise_url(admin)).set(database=name).render_as_string(hide_password=False)
    try:
        if template is None:
            upgrade(url)
        yield url
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the heads once per test process (each xdist worker is one): every module's SQLite
    database is a copy of it."""
    url = next(_database("sqlite", tmp_path_factory))
    path = Path(make_url(url).database or "")
    with closing(sqlite3.connect(path)) as conn:   # everything in the file itself, nothing left in its WAL
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, f"{path}: the template's WAL could not be checkpointed"
    return path


@pytest.fixture(scope="session")
def migrated_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database migrated to the heads once per test process (each xdist worker is one): every module's
    PostgreSQL database is created from it as a template (CREATE DATABASE ... TEMPLATE), which needs nothing to stay
    connected to it -- the migrations' engine is disposed."""
    for url in _database("postgres", tmp_path_factory):
        yield make_url(url).database or ""


@dataclass
class Stack:
    """A running server plus credentials for the sample operator's tenants."""

    root: Root
    server: grpc.Server
    address: str
    backend: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _clients: list[WireClient] = field(default_factory=list)

    def token(self, tenant: str, role: str = "", **kw: Any) -> str:
        role = role or ("operator_admin" if tenant == "mno" else "mvno_admin")
        key = (tenant, role)
        if key not in self.tokens or kw:
            _, bearer = self.root.tokens.issue(None, f"test-{tenant}-{role}", tenant, Role(role), kw.get("ttl", 0),
                                                frozenset(kw.get("privileges", ())))
            if kw:
                return bearer
            self.tokens[key] = bearer
        return self.tokens[key]

    def client(self, tenant: str = "mno", role: str = "", token: str | None = None) -> WireClient:
        c = WireClient(self.address, token if token is not None else self.token(tenant, role))
        self._clients.append(c)
        return c

    def unique_msisdn(self) -> str:
        return "4917" + "".join(secrets.choice("0123456789") for _ in range(9))

    def unique_imsi(self) -> str:
        return "26201" + "".join(secrets.choice("0123456789") for _ in range(10))


@contextmanager
def running_stack(settings: Settings, clock: Clock | None = None) -> Iterator[Stack]:
    """A bootstrapped server (no plan set) on 127.0.0.1:0 over ``settings.database_url``, stopped afterwards."""
    root = build_root(settings, clock)
    # plan sets are uploaded by the tests that need them (they expect their upload to be version 1)
    bootstrap(settings, root, load_plans=False)
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    backend = "postgres" if settings.effective_database_url.startswith("postgresql") else "sqlite"
    s = Stack(root=root, server=server, address=f"127.0.0.1:{port}", backend=backend)
    try:
        yield s
    finally:
        for c in s._clients:
            c.close()
        graceful_stop(server, root, 1.0).wait()
        root.close()


# A time in the middle of a month and of a day in every zone the sample plans use: a module whose server runs on
# FixedClock(MID_MONTH) rates CDRs a few minutes after it and reads their cycle's counters without a day or month
# boundary falling in between, whenever the suite runs.
MID_MONTH = datetime(2026, 6, 16, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def server_clock() -> Clock | None:
    """The clock of the module's server: the system's; a module overrides this fixture to run its server on a fixed one."""
    return None


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory, server_clock: Clock | None) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("home")
    with running_stack(Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0), server_clock) as s:
        yield s
