"""The unit of work: one session, one transaction, every repository on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.repositories import AuditRepo, SubscriberRepo, TenantRepo, TokenRepo


class SqlUnitOfWork:
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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)
