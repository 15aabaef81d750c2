"""The platform's foundation records: tenants, subscribers and audit entries.

Plain values only.  The storage ports (:mod:`engine.ports`) and the use cases
(:mod:`engine.tenancy`, :mod:`engine.subscribers`, :mod:`engine.audit`) import
them from here, so no use-case module and no port needs the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Mapping


class TenantKind(str, Enum):
    MNO = "mno"
    MVNO = "mvno"


class TenantStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    kind: TenantKind
    status: TenantStatus
    parent_tenant_id: str
    currency: str
    create_time: datetime
    update_time: datetime

    def as_audit(self) -> dict[str, object]:
        return asdict(self)


class PaymentType(str, Enum):
    POSTPAID = "postpaid"
    PREPAID = "prepaid"


class SubscriberStatus(str, Enum):
    PROVISIONED = "provisioned"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class Subscriber:
    subscriber_id: str
    tenant_id: str
    msisdn: str
    imsi: str
    billing_account: str
    payment_type: PaymentType
    status: SubscriberStatus
    tariff_plan: str
    create_time: datetime
    update_time: datetime
    activate_time: datetime | None = None
    deactivate_time: datetime | None = None
    # staff barring flags (sorted, e.g. ("bar_international",)); rules/barring decides what each bars
    barring_flags: tuple[str, ...] = ()
    # credit limit per bill cycle in micro-units; None: no limit
    credit_limit_micros: int | None = None
    credit_currency: str = ""

    def as_audit(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SubscriberFilter:
    tenant_ids: set[str] | None = None   # None: every tenant (operator callers only)
    status: SubscriberStatus | None = None
    payment_type: PaymentType | None = None
    tariff_plan: str = ""
    billing_account: str = ""
    msisdn_prefix: str = ""


@dataclass(frozen=True)
class NewSubscriber:
    tenant_id: str
    msisdn: str
    imsi: str
    billing_account: str
    payment_type: PaymentType | None
    tariff_plan: str


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
