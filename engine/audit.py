"""The append-only audit log: who did what to which object, when, before and after.

Use cases write entries with :func:`entry` inside their own unit of work;
:class:`AuditDesk` reads them back, each tenant only its own.
Only changed fields are recorded.  Fields named like secrets never reach the
log (defence in depth: callers should not pass them in the first place).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping

from engine.identity import Permission, Principal
from engine.model import AuditEntry
from engine.paging import Page
from engine.ports import AuditFilter, UnitOfWorkFactory

SECRET_FIELD_MARKERS = ("pin", "secret", "password", "key", "token_hash", "secret_hash", "ciphertext")


@lru_cache(maxsize=4096)  # field names are few and fixed in code; entries are written on hot paths
def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_FIELD_MARKERS)


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before/after of the fields that differ, secrets dropped, values made JSON-friendly."""
    keys = sorted(set(before) | set(after))
    b: dict[str, Any] = {}
    a: dict[str, Any] = {}
    for key in keys:
        if _is_secret(key):
            continue
        old, new = before.get(key), after.get(key)
        if old != new:
            b[key] = _jsonable(old)
            a[key] = _jsonable(new)
    return b, a


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, str)):
        return value.value
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    return value


def entry(
    principal: Principal,
    now: datetime,
    action: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    object_tenant_id: str = "",
    request_id: str = "",
) -> AuditEntry:
    b, a = changed_fields(before or {}, after or {})
    return AuditEntry(
        time=now,
        subject=principal.subject,
        tenant_id=principal.tenant_id,
        role=principal.role.value,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=b,
        after=a,
        request_id=request_id,
        object_tenant_id=object_tenant_id or principal.tenant_id,
    )


class AuditDesk:
    """Use cases of AuditService: reading the log, scoped to what the caller may see."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def list(self, principal: Principal, tenant_id: str, object_type: str, object_id: str, page: Page) -> list[AuditEntry]:
        """Entries after ``page.after`` (oldest first); an MVNO sees its own, the operator all or one tenant's."""
        principal.require(Permission.AUDIT_READ)
        scope = AuditFilter(principal.tenants_listed(tenant_id), object_type, object_id)
        with self._uow(read_only=True) as uow:
            return uow.audit.list(scope, page.after, page.size)
