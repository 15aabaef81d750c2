"""Tenants: one MNO (the operator) owning N MVNOs, and what each may do (the records are in engine.model)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

from engine import audit
from engine.clock import Clock
from engine.currencies import is_currency
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.model import Tenant, TenantKind, TenantStatus
from engine.paging import Page
from engine.ports import UnitOfWorkFactory

TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")

# the records stay importable from here, where they were defined before engine.model
__all__ = ["TENANT_ID", "Tenant", "TenantAdmin", "TenantKind", "TenantStatus", "check_tenant_id", "require_active_tenant"]


def check_tenant_id(value: str, field: str, errors: ErrorList) -> None:
    if not TENANT_ID.match(value or ""):
        errors.add(field, "must be 3-40 characters: lowercase letters, digits and '-', starting with a letter")


class TenantAdmin:
    """Use cases of TenantService."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, on_status_change: Callable[[str], None] | None = None) -> None:
        self._uow = uow
        self._clock = clock
        # told the tenant id after a suspension or reactivation commits (the root forgets its cached principals)
        self._on_status_change = on_status_change

    def create_mno(self, tenant_id: str, display_name: str, currency: str) -> Tenant:
        """The operator itself; created once by bootstrap (no caller: there is no one yet)."""
        now = self._clock.now()
        tenant = Tenant(tenant_id, display_name, TenantKind.MNO, TenantStatus.ACTIVE, "", currency, now, now)
        with self._uow() as uow:
            if uow.tenants.get(tenant_id) is None:
                uow.tenants.add(tenant)
                uow.commit()
                return tenant
            existing = uow.tenants.get(tenant_id)
            assert existing is not None
            return existing

    def create_mvno(self, principal: Principal, tenant_id: str, display_name: str, currency: str) -> Tenant:
        principal.require(Permission.TENANT_WRITE)
        errors = ErrorList()
        check_tenant_id(tenant_id, "tenant_id", errors)
        if not display_name.strip():
            errors.add("display_name", "must not be empty")
        elif len(display_name) > 200:
            errors.add("display_name", "at most 200 characters")
        if not is_currency(currency):
            errors.add("currency", f"{currency!r} is not an ISO 4217 currency code")
        errors.raise_if_any("cannot create tenant")
        if not principal.is_operator:
            raise InvalidArgument.field("tenant_id", "only the operator (MNO) creates MVNOs")
        now = self._clock.now()
        tenant = Tenant(tenant_id, display_name.strip(), TenantKind.MVNO, TenantStatus.ACTIVE, principal.tenant_id, currency, now, now)
        with self._uow() as uow:
            if uow.tenants.get(tenant_id) is not None:
                raise AlreadyExists("tenant", tenant_id)
            uow.tenants.add(tenant)
            uow.audit.append(audit.entry(principal, now, "tenant.create", "tenant", tenant_id, {}, tenant.as_audit(), tenant_id))
            uow.commit()
        return tenant

    def get(self, principal: Principal, tenant_id: str) -> Tenant:
        principal.require(Permission.TENANT_READ)
        with self._uow(read_only=True) as uow:
            tenant = uow.tenants.get(tenant_id)
        # another tenant's existence is not disclosed: NOT_FOUND, as for a missing one
        if tenant is None or not principal.can_see_tenant(tenant_id):
            raise NotFound("tenant", tenant_id)
        return tenant

    def list(self, principal: Principal, page: Page, status: TenantStatus | None = None) -> list[Tenant]:
        principal.require(Permission.TENANT_READ)
        visible = principal.tenants_listed()
        with self._uow(read_only=True) as uow:
            return uow.tenants.list(visible, status, page.after, page.size)

    def set_status(self, principal: Principal, tenant_id: str, status: TenantStatus, reason: str = "") -> Tenant:
        principal.require(Permission.TENANT_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None or not principal.can_see_tenant(tenant_id):
                raise NotFound("tenant", tenant_id)
            if tenant.kind is TenantKind.MNO:
                raise FailedPrecondition("TENANT_IS_OPERATOR", "the operator (MNO) itself cannot be suspended", tenant_id)
            if tenant.status is status:
                raise FailedPrecondition(
                    "TENANT_STATE", f"tenant {tenant_id} is already {status.value}", tenant_id
                )
            updated = replace(tenant, status=status, update_time=now)
            uow.tenants.update(updated)
            action = "tenant.suspend" if status is TenantStatus.SUSPENDED else "tenant.reactivate"
            after = updated.as_audit() | ({"reason": reason} if reason else {})
            uow.audit.append(audit.entry(principal, now, action, "tenant", tenant_id, tenant.as_audit(), after, tenant_id))
            uow.commit()
        if self._on_status_change is not None:
            self._on_status_change(tenant_id)
        return updated


def require_active_tenant(tenant: Tenant | None, tenant_id: str) -> Tenant:
    if tenant is None:
        raise NotFound("tenant", tenant_id)
    if tenant.status is not TenantStatus.ACTIVE:
        raise FailedPrecondition("TENANT_SUSPENDED", f"tenant {tenant_id} is suspended", tenant_id)
    return tenant
