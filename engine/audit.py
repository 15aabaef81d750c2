"""The append-only audit log: who did what to which object, when, before and after.

Only changed fields are recorded.  Fields named like secrets never reach the
log (defence in depth: callers should not pass them in the first place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from engine.identity import Principal

SECRET_FIELD_MARKERS = ("pin", "secret", "password", "key", "token_hash", "secret_hash", "ciphertext")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_FIELD_MARKERS)


@dataclass(frozen=True)
class AuditEntry:
    time: datetime
    subject: str
    tenant_id: str
    role: str
    action: str
    object_type: str
    object_id: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = ""
    # the tenant that owns the object (for tenant-scoped reading of the log)
    object_tenant_id: str = ""
    sequence: int = 0


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
