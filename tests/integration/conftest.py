"""Integration fixtures: a real database (SQLite file and, when configured, PostgreSQL)
and a real gRPC server on a free 127.0.0.1 port.

PostgreSQL runs when RULEBILL_TEST_POSTGRES_URL points at a server where the user may
CREATE DATABASE (``.ci/run`` starts one); each test module gets a fresh database.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clients.client import RulebillClient
from engine.identity import Role
from engine.settings import Settings
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.db import normalise_url
from store.migrate import upgrade

PG_ENV = "RULEBILL_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgres"]


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for one test module, on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "rulebill.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    admin = _pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (the CI script does)")
    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(admin)).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@dataclass
class Stack:
    """A running server plus credentials for the sample operator's tenants."""

    root: Root
    server: grpc.Server
    address: str
    backend: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _clients: list[RulebillClient] = field(default_factory=list)

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

    def client(self, tenant: str = "mno", role: str = "", token: str | None = None) -> RulebillClient:
        c = RulebillClient(self.address, token if token is not None else self.token(tenant, role))
        self._clients.append(c)
        return c

    def unique_msisdn(self) -> str:
        return "4917" + "".join(secrets.choice("0123456789") for _ in range(9))

    def unique_imsi(self) -> str:
        return "26201" + "".join(secrets.choice("0123456789") for _ in range(10))


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0)
    root = build_root(settings)
    # plan sets are uploaded by the tests that need them (they expect their upload to be version 1)
    bootstrap(settings, root, load_plans=False)
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    s = Stack(root=root, server=server, address=f"127.0.0.1:{port}", backend=backend)
    try:
        yield s
    finally:
        for c in s._clients:
            c.close()
        graceful_stop(server, root, 1.0).wait()
        root.close()
