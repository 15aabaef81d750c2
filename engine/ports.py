"""Storage ports the engine needs; ``store/`` implements them (SQLite, PostgreSQL),
tests use the in-memory fakes in ``tests/fakes.py``.

A unit of work is one database transaction: everything done through it,
audit entries included, commits together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.identity import ApiToken
from engine.model import AuditEntry, Subscriber, SubscriberFilter, Tenant, TenantStatus


class TenantRepository(Protocol):
    def get(self, tenant_id: str) -> Tenant | None: ...
    def add(self, tenant: Tenant) -> None: ...
    def update(self, tenant: Tenant) -> None: ...
    def list(self, visible: set[str] | None, status: TenantStatus | None, after: str | None, limit: int) -> list[Tenant]: ...


class TokenRepository(Protocol):
    def get(self, token_id: str) -> ApiToken | None: ...
    def add(self, token: ApiToken) -> None: ...
    def decide(self, token: ApiToken) -> bool:
        """Store ``token``'s approval decision if the stored token is still pending and unrevoked; False otherwise."""
    def revoke(self, token_id: str, when: datetime) -> bool:
        """Set the revoke time if the token is not revoked yet; False when it already is."""
    def list(self, tenant_ids: set[str] | None, include_revoked: bool, after: str | None, limit: int) -> list[ApiToken]: ...


class SubscriberRepository(Protocol):
    def get(self, subscriber_id: str, for_update: bool = False) -> Subscriber | None:
        """``for_update``: the subscriber is read to be written back; a concurrent writer waits until this unit ends."""
    def get_live_by_msisdn(self, msisdn: str) -> Subscriber | None: ...
    def get_live_by_imsi(self, imsi: str) -> Subscriber | None: ...
    def add(self, subscriber: Subscriber) -> None: ...
    def update(self, subscriber: Subscriber) -> None: ...
    def list(self, flt: SubscriberFilter, after: str | None, limit: int) -> list[Subscriber]: ...


@dataclass(frozen=True)
class AuditFilter:
    tenant_ids: set[str] | None = None
    object_type: str = ""
    object_id: str = ""


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> None: ...
    def list(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditEntry]: ...


class UnitOfWork(Protocol):
    # read-only members, so implementations may hold concrete repository types
    @property
    def tenants(self) -> TenantRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def subscribers(self) -> SubscriberRepository: ...
    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc: Any) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """``read_only=True`` promises the unit will not write (the store may then run it without the write lock)."""

    def __call__(self, read_only: bool = False) -> UnitOfWork: ...


class PlanCatalogue(Protocol):
    """Which tariff plans exist (filled by the plan engine)."""

    def has_tariff_plan(self, plan_id: str, tenant_id: str) -> bool: ...
    def plan_currency(self, plan_id: str, tenant_id: str) -> str: ...   # "" when not known
