"""The unit of work: one session, one transaction, every repository on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.repositories import AuditRepo, SubscriberRepo, TenantRepo, TokenRepo


class SqlUnitOfWork:
    session: Session
    tenants: TenantRepo
    tokens: TokenRepo
    subscribers: SubscriberRepo
    audit: AuditRepo

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> "SqlUnitOfWork":
        self.session = self._factory()
        self.tenants = TenantRepo(self.session)
        self.tokens = TokenRepo(self.session)
        self.subscribers = SubscriberRepo(self.session)
        self.audit = AuditRepo(self.session)
        return self

    def __exit__(self, *exc: Any) -> None:
        # anything not committed explicitly is rolled back: a failed call changes nothing
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SqlUnitOfWorkFactory:
    """``read_engine``: where read-only units run (on SQLite an engine with deferred BEGIN); default ``engine``."""

    def __init__(self, engine: Engine, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(bind=read_engine, expire_on_commit=False) if read_engine is not None else self._sessions

    def __call__(self, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._read_sessions if read_only else self._sessions)
