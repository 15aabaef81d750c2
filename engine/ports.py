"""Storage ports the engine needs; ``store/`` implements them (SQLite, PostgreSQL),
tests use the in-memory fakes in ``tests/fakes.py``.

A unit of work is one database transaction: everything done through it,
audit entries included, commits together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.audit import AuditEntry
from engine.identity import ApiToken

if TYPE_CHECKING:
    from engine.subscribers import Subscriber, SubscriberFilter
    from engine.tenancy import Tenant, TenantStatus


class TenantRepository(Protocol):
    def get(self, tenant_id: str) -> "Tenant | None": ...
    def add(self, tenant: "Tenant") -> None: ...
    def update(self, tenant: "Tenant") -> None: ...
    def list(self, visible: set[str] | None, status: "TenantStatus | None", after: str | None, limit: int) -> "list[Tenant]": ...


class TokenRepository(Protocol):
    def get(self, token_id: str) -> ApiToken | None: ...
    def add(self, token: ApiToken) -> None: ...
    def update(self, token: ApiToken) -> None: ...
    def list(self, tenant_ids: set[str] | None, include_revoked: bool, after: str | None, limit: int) -> list[ApiToken]: ...


class SubscriberRepository(Protocol):
    def get(self, subscriber_id: str) -> "Subscriber | None": ...
    def get_live_by_msisdn(self, msisdn: str) -> "Subscriber | None": ...
    def get_live_by_imsi(self, imsi: str) -> "Subscriber | None": ...
    def add(self, subscriber: "Subscriber") -> None: ...
    def update(self, subscriber: "Subscriber") -> None: ...
    def list(self, flt: "SubscriberFilter", after: str | None, limit: int) -> "list[Subscriber]": ...


@dataclass(frozen=True)
class AuditFilter:
    tenant_ids: set[str] | None = None
    object_type: str = ""
    object_id: str = ""


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> None: ...
    def list(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditEntry]: ...


class UnitOfWork(Protocol):
    tenants: TenantRepository
    tokens: TokenRepository
    subscribers: SubscriberRepository
    audit: AuditLog

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
