"""Tables of the platform foundation (tenants, tokens, subscribers, audit).

Other areas keep their tables in their own module (``store/vouchers.py`` ...)
and their own alembic migration branch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel


def utc_column(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class TenantRow(SQLModel, table=True):
    __tablename__ = "tenants"
    tenant_id: str = Field(primary_key=True, max_length=40)
    display_name: str = Field(max_length=200)
    kind: str = Field(max_length=8)
    status: str = Field(max_length=16)
    parent_tenant_id: str = Field(default="", max_length=40)
    currency: str = Field(max_length=3)
    create_time: datetime = Field(sa_column=utc_column())
    update_time: datetime = Field(sa_column=utc_column())


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"
    token_id: str = Field(primary_key=True, max_length=32)
    subject: str = Field(max_length=200)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=40)
    role: str = Field(max_length=32)
    secret_hash: str = Field(max_length=64)
    privileges: str = Field(default="", max_length=400)
    create_time: datetime = Field(sa_column=utc_column())
    expire_time: datetime = Field(sa_column=utc_column())
    revoke_time: Optional[datetime] = Field(default=None, sa_column=utc_column(nullable=True))
    # migration 0003_token_approval: dual control of the tokens a security officer issues (engine.identity.TokenApproval);
    # rows from before it read as not_required and keep working
    approval: str = Field(default="not_required", sa_column=Column(String(16), nullable=False, server_default="not_required"))
    issued_by: str = Field(default="", sa_column=Column(String(200), nullable=False, server_default=""))
    issued_by_token: str = Field(default="", sa_column=Column(String(32), nullable=False, server_default=""))
    approval_expire_time: Optional[datetime] = Field(default=None, sa_column=utc_column(nullable=True))
    decided_by: str = Field(default="", sa_column=Column(String(200), nullable=False, server_default=""))
    decided_by_token: str = Field(default="", sa_column=Column(String(32), nullable=False, server_default=""))
    decide_time: Optional[datetime] = Field(default=None, sa_column=utc_column(nullable=True))
    approval_hash: str = Field(default="", sa_column=Column(String(64), nullable=False, server_default=""))


LIVE = text("status <> 'deactivated'")


class SubscriberRow(SQLModel, table=True):
    __tablename__ = "subscribers"
    __table_args__ = (
        # one live subscriber per MSISDN / IMSI across the operator; a deactivated number can be reused
        Index("uq_subscribers_live_msisdn", "msisdn", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        Index("uq_subscribers_live_imsi", "imsi", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        Index("ix_subscribers_tenant_id", "tenant_id", "subscriber_id"),
    )
    subscriber_id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=40)
    msisdn: str = Field(max_length=15)
    imsi: str = Field(max_length=15)
    billing_account: str = Field(max_length=64)
    payment_type: str = Field(max_length=16)
    status: str = Field(max_length=16)
    tariff_plan: str = Field(max_length=64)
    create_time: datetime = Field(sa_column=utc_column())
    update_time: datetime = Field(sa_column=utc_column())
    activate_time: Optional[datetime] = Field(default=None, sa_column=utc_column(nullable=True))
    deactivate_time: Optional[datetime] = Field(default=None, sa_column=utc_column(nullable=True))
    # migration 0002_subscriber_controls: staff barring flags (comma-separated, sorted) and the credit limit
    barring_flags: str = Field(default="", sa_column=Column(String(400), nullable=False, server_default=""))
    credit_limit_micros: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    credit_currency: str = Field(default="", sa_column=Column(String(3), nullable=False, server_default=""))


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_object", "object_type", "object_id"),
        Index("ix_audit_object_tenant", "object_tenant_id", "sequence"),
    )
    sequence: Optional[int] = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    time: datetime = Field(sa_column=utc_column())
    subject: str = Field(max_length=200)
    tenant_id: str = Field(max_length=40)
    role: str = Field(max_length=32)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=40)
    object_id: str = Field(max_length=80)
    object_tenant_id: str = Field(max_length=40)
    before_json: str = Field(sa_column=Column(Text, nullable=False))
    after_json: str = Field(sa_column=Column(Text, nullable=False))
    request_id: str = Field(default="", max_length=80)
