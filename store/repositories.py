"""Repositories implementing the engine's ports over one SQLAlchemy session."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any, Sequence, overload

import psycopg
from sqlalchemy import any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import AlreadyExists
from engine.identity import ApiToken, Role, TokenApproval
from engine.model import AuditEntry, PaymentType, Subscriber, SubscriberFilter, SubscriberStatus, Tenant, TenantKind, TenantStatus
from engine.ports import AuditFilter
from store.tables import ApiTokenRow, AuditRow, SubscriberRow, TenantRow

# a unique key broken: by a statement (SQLAlchemy's error) or on a raw connection (a COPY on psycopg, packed
# inserts on sqlite3); each driver's class also covers its more precise subclasses (psycopg's UniqueViolation)
UNIQUE_KEY_BROKEN = (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError)


def among(column: Any, values: Sequence[Any], dialect: str) -> Any:
    """``column IN values``; on PostgreSQL as one array parameter (``= ANY``): a query of 500 placeholders is too long for
    psycopg's cache of converted queries, and converting it again each time cost ~3 ms (a bill run's batch makes a
    dozen of them, the add-ons' reads among them)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


@overload
def aware(ts: datetime) -> datetime: ...
@overload
def aware(ts: datetime | None) -> datetime | None: ...


def aware(ts: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; everything we store is UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


class TenantRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _to_domain(row: TenantRow) -> Tenant:
        return Tenant(
            tenant_id=row.tenant_id,
            display_name=row.display_name,
            kind=TenantKind(row.kind),
            status=TenantStatus(row.status),
            parent_tenant_id=row.parent_tenant_id,
            currency=row.currency,
            create_time=aware(row.create_time),
            update_time=aware(row.update_time),
        )

    @staticmethod
    def _values(t: Tenant) -> dict[str, Any]:
        return dict(
            tenant_id=t.tenant_id, display_name=t.display_name, kind=t.kind.value, status=t.status.value,
            parent_tenant_id=t.parent_tenant_id, currency=t.currency, create_time=t.create_time, update_time=t.update_time,
        )

    def get(self, tenant_id: str) -> Tenant | None:
        row = self.s.get(TenantRow, tenant_id)
        return self._to_domain(row) if row else None

    def add(self, tenant: Tenant) -> None:
        self.s.add(TenantRow(**self._values(tenant)))
        _flush(self.s, "tenant", tenant.tenant_id)

    def update(self, tenant: Tenant) -> None:
        row = self.s.get(TenantRow, tenant.tenant_id)
        assert row is not None
        for k, v in self._values(tenant).items():
            setattr(row, k, v)
        self.s.flush()

    def list(self, visible: set[str] | None, status: TenantStatus | None, after: str | None, limit: int) -> list[Tenant]:
        q = select(TenantRow).order_by(TenantRow.tenant_id).limit(limit)
        if visible is not None:
            q = q.where(col(TenantRow.tenant_id).in_(sorted(visible)))
        if status is not None:
            q = q.where(col(TenantRow.status) == status.value)
        if after is not None:
            q = q.where(col(TenantRow.tenant_id) > after)
        return [self._to_domain(r) for r in self.s.scalars(q)]


class TokenRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _to_domain(row: ApiTokenRow) -> ApiToken:
        return ApiToken(
            token_id=row.token_id,
            subject=row.subject,
            tenant_id=row.tenant_id,
            role=Role(row.role),
            secret_hash=row.secret_hash,
            create_time=aware(row.create_time),
            expire_time=aware(row.expire_time),
            revoke_time=aware(row.revoke_time),
            privileges=frozenset(p for p in row.privileges.split(",") if p),
            approval=TokenApproval(row.approval),
            issued_by=row.issued_by,
            issued_by_token=row.issued_by_token,
            approval_expire_time=aware(row.approval_expire_time),
            decided_by=row.decided_by,
            decided_by_token=row.decided_by_token,
            decide_time=aware(row.decide_time),
            approval_hash=row.approval_hash,
        )

    def get(self, token_id: str) -> ApiToken | None:
        row = self.s.get(ApiTokenRow, token_id)
        return self._to_domain(row) if row else None

    def add(self, token: ApiToken) -> None:
        self.s.add(
            ApiTokenRow(
                token_id=token.token_id, subject=token.subject, tenant_id=token.tenant_id, role=token.role.value,
                secret_hash=token.secret_hash, privileges=",".join(sorted(token.privileges)), create_time=token.create_time,
                expire_time=token.expire_time, revoke_time=token.revoke_time, approval=token.approval.value,
                issued_by=token.issued_by, issued_by_token=token.issued_by_token, approval_expire_time=token.approval_expire_time,
                decided_by=token.decided_by, decided_by_token=token.decided_by_token, decide_time=token.decide_time,
                approval_hash=token.approval_hash,
            )
        )
        _flush(self.s, "token", token.token_id)

    def decide(self, token: ApiToken) -> bool:
        """One conditional statement, so two concurrent calls cannot both take effect: of an approval and a rejection
        (or a revocation) racing, one changes the row and the other finds it no longer pending and changes nothing."""
        q = (update(ApiTokenRow)
             .where(col(ApiTokenRow.token_id) == token.token_id, col(ApiTokenRow.approval) == TokenApproval.PENDING.value,
                    col(ApiTokenRow.revoke_time).is_(None))
             .values(approval=token.approval.value, decided_by=token.decided_by, decided_by_token=token.decided_by_token,
                     decide_time=token.decide_time, approval_hash=token.approval_hash)
             .execution_options(synchronize_session=False))
        return _changed(self.s.execute(q))

    def revoke(self, token_id: str, when: datetime) -> bool:
        q = (update(ApiTokenRow).where(col(ApiTokenRow.token_id) == token_id, col(ApiTokenRow.revoke_time).is_(None))
             .values(revoke_time=when).execution_options(synchronize_session=False))
        return _changed(self.s.execute(q))

    def list(self, tenant_ids: set[str] | None, include_revoked: bool, after: str | None, limit: int) -> list[ApiToken]:
        q = select(ApiTokenRow).order_by(ApiTokenRow.token_id).limit(limit)
        if tenant_ids is not None:
            q = q.where(col(ApiTokenRow.tenant_id).in_(sorted(tenant_ids)))
        if not include_revoked:
            q = q.where(col(ApiTokenRow.revoke_time).is_(None))
        if after is not None:
            q = q.where(col(ApiTokenRow.token_id) > after)
        return [self._to_domain(r) for r in self.s.scalars(q)]


class SubscriberRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _to_domain(row: SubscriberRow) -> Subscriber:
        return Subscriber(
            subscriber_id=row.subscriber_id, tenant_id=row.tenant_id, msisdn=row.msisdn, imsi=row.imsi,
            billing_account=row.billing_account, payment_type=PaymentType(row.payment_type),
            status=SubscriberStatus(row.status), tariff_plan=row.tariff_plan,
            create_time=aware(row.create_time),
            update_time=aware(row.update_time),
            activate_time=aware(row.activate_time), deactivate_time=aware(row.deactivate_time),
            barring_flags=tuple(f for f in (row.barring_flags or "").split(",") if f),
            credit_limit_micros=None if row.credit_limit_micros is None else int(row.credit_limit_micros),
            credit_currency=row.credit_currency or "",
        )

    @staticmethod
    def _values(s: Subscriber) -> dict[str, Any]:
        return dict(
            subscriber_id=s.subscriber_id, tenant_id=s.tenant_id, msisdn=s.msisdn, imsi=s.imsi,
            billing_account=s.billing_account, payment_type=s.payment_type.value, status=s.status.value,
            tariff_plan=s.tariff_plan, create_time=s.create_time, update_time=s.update_time,
            activate_time=s.activate_time, deactivate_time=s.deactivate_time,
            barring_flags=",".join(sorted(s.barring_flags)), credit_limit_micros=s.credit_limit_micros,
            credit_currency=s.credit_currency,
        )

    def get(self, subscriber_id: str, for_update: bool = False) -> Subscriber | None:
        # for_update: the row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's writer holds the whole database
        # from BEGIN IMMEDIATE) until the unit ends, so the whole-row write of update() cannot undo a concurrent
        # change read before it (a bar lost, a deactivation undone); a second writer waits and reads the row it left
        row = self.s.get(SubscriberRow, subscriber_id, with_for_update=for_update or None, populate_existing=for_update)
        return self._to_domain(row) if row else None

    def _live_by(self, column: Any, value: str) -> Subscriber | None:
        q = select(SubscriberRow).where(column == value, col(SubscriberRow.status) != SubscriberStatus.DEACTIVATED.value)
        row = self.s.scalars(q).first()
        return self._to_domain(row) if row else None

    def get_live_by_msisdn(self, msisdn: str) -> Subscriber | None:
        return self._live_by(SubscriberRow.msisdn, msisdn)

    def get_live_by_imsi(self, imsi: str) -> Subscriber | None:
        return self._live_by(SubscriberRow.imsi, imsi)

    def get_live_by_msisdns(self, msisdns: list[str]) -> dict[str, Subscriber]:
        """The live subscribers of many MSISDNs at once (rating a chunk of CDRs), by MSISDN."""
        out: dict[str, Subscriber] = {}
        for i in range(0, len(msisdns), 500):
            q = select(SubscriberRow).where(col(SubscriberRow.msisdn).in_(msisdns[i:i + 500]),
                                            col(SubscriberRow.status) != SubscriberStatus.DEACTIVATED.value)
            out.update((row.msisdn, self._to_domain(row)) for row in self.s.scalars(q))
        return out

    def add(self, subscriber: Subscriber) -> None:
        self.s.add(SubscriberRow(**self._values(subscriber)))
        _flush(self.s, "subscriber", subscriber.msisdn, "MSISDN or IMSI is already in use")

    def update(self, subscriber: Subscriber) -> None:
        row = self.s.get(SubscriberRow, subscriber.subscriber_id)
        assert row is not None
        for k, v in self._values(subscriber).items():
            setattr(row, k, v)
        _flush(self.s, "subscriber", subscriber.msisdn, "MSISDN or IMSI is already in use")

    def list(self, flt: SubscriberFilter, after: str | None, limit: int) -> list[Subscriber]:
        q = select(SubscriberRow).order_by(SubscriberRow.subscriber_id).limit(limit)
        if flt.tenant_ids is not None:
            q = q.where(col(SubscriberRow.tenant_id).in_(sorted(flt.tenant_ids)))
        if flt.status is not None:
            q = q.where(col(SubscriberRow.status) == flt.status.value)
        if flt.payment_type is not None:
            q = q.where(col(SubscriberRow.payment_type) == flt.payment_type.value)
        if flt.tariff_plan:
            q = q.where(col(SubscriberRow.tariff_plan) == flt.tariff_plan)
        if flt.billing_account:
            q = q.where(col(SubscriberRow.billing_account) == flt.billing_account)
        if flt.msisdn_prefix:
            q = q.where(col(SubscriberRow.msisdn).startswith(flt.msisdn_prefix, autoescape=True))
        if after is not None:
            q = q.where(col(SubscriberRow.subscriber_id) > after)
        return [self._to_domain(r) for r in self.s.scalars(q)]


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    """The audit_log row of an entry (also written by hot paths that bypass the ORM, e.g. store/voucher_recharge.py)."""
    return dict(
        time=entry.time, subject=entry.subject, tenant_id=entry.tenant_id, role=entry.role, action=entry.action,
        object_type=entry.object_type, object_id=entry.object_id, object_tenant_id=entry.object_tenant_id,
        before_json=json.dumps(entry.before, sort_keys=True, default=str),
        after_json=json.dumps(entry.after, sort_keys=True, default=str), request_id=entry.request_id,
    )


class AuditRepo:
    """Append-only: there is no update or delete here, and triggers refuse them in the database."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def append(self, entry: AuditEntry) -> None:
        self.s.add(AuditRow(**audit_values(entry)))
        self.s.flush()

    def list(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditEntry]:
        q = select(AuditRow).order_by(AuditRow.sequence).limit(limit)  # type: ignore[arg-type]
        if flt.tenant_ids is not None:
            q = q.where(col(AuditRow.object_tenant_id).in_(sorted(flt.tenant_ids)))
        if flt.object_type:
            q = q.where(col(AuditRow.object_type) == flt.object_type)
        if flt.object_id:
            q = q.where(col(AuditRow.object_id) == flt.object_id)
        if after is not None:
            q = q.where(col(AuditRow.sequence) > after)
        return [
            AuditEntry(
                time=aware(r.time),
                subject=r.subject, tenant_id=r.tenant_id, role=r.role, action=r.action,
                object_type=r.object_type, object_id=r.object_id, before=json.loads(r.before_json),
                after=json.loads(r.after_json), request_id=r.request_id, object_tenant_id=r.object_tenant_id,
                sequence=r.sequence or 0,
            )
            for r in self.s.scalars(q)
        ]


def _changed(result: Any) -> bool:
    """Whether a conditional UPDATE of one row found its row in the expected state."""
    return bool(result.rowcount)


def _flush(session: Session, kind: str, name: str, message: str | None = None) -> None:
    """Flush now so a unique-index violation becomes ALREADY_EXISTS at the right place."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(kind, name, message) from None
