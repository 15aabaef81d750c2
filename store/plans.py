"""Plan set versions, bundle counters and usage balances: the SQL side of engine.plans.catalogue's ports.

Everything runs on the session of the platform's unit of work, so a plan
change and its audit entry commit together.  Bundle counters are consumed
with one conditional UPDATE (``remaining >= units``): concurrent raters on
several replicas can never spend the same units twice.
"""

from __future__ import annotations

import builtins

import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from engine.plans.catalogue import LedgerEntry, PlanSetVersion
from engine.rating.alerts import CreditAlertRecord
from store.repositories import aware
from store.uow import SqlUnitOfWorkFactory

TS = DateTime(timezone=True)
meta = SQLModel.metadata

plan_set_versions = Table(
    "plan_set_versions", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("ir_json", Text, nullable=False),
    Column("sources_json", Text, nullable=False),
    Column("create_time", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("activate_time", TS, nullable=True),
    Index("ix_plan_set_versions_activation", "tenant_id", "activate_time"),
)

bundle_counters = Table(
    "bundle_counters", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("msisdn", String(32), primary_key=True),
    Column("cycle", String(7), primary_key=True),
    Column("bundle_id", String(64), primary_key=True),
    Column("allowance", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("unit", String(8), nullable=False),
)

usage_ledger = Table(
    "usage_ledger", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("cdr_id", String(64), primary_key=True),
    Column("msisdn", String(32), nullable=False),
    Column("cycle", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("charge_micros", BigInteger, nullable=False),
    Column("bundles_json", Text, nullable=False),
    # migration plans_0002: what the bill run reads per CDR (store/billing.py, SqlRatedUsage)
    Column("start_time", TS, nullable=True),
    Column("service", String(16), nullable=False, server_default=""),
    Column("destination_group", String(64), nullable=False, server_default=""),
    Column("tariff_plan", String(64), nullable=False, server_default=""),
    Column("plan_set_version", BigInteger, nullable=False, server_default="0"),
    Column("units", BigInteger, nullable=False, server_default="0"),
    Index("ix_usage_ledger_msisdn_start", "tenant_id", "msisdn", "start_time"),
)

usage_balances = Table(
    "usage_balances", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("msisdn", String(32), primary_key=True),
    Column("cycle", String(7), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("charged_micros", BigInteger, nullable=False),
)


# migration alerts_0001: one row per action of a fired credit threshold (the outbox)
credit_alert_log = Table(
    "credit_alert_log", meta,
    Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("msisdn", String(32), nullable=False),
    Column("period", String(7), nullable=False),
    Column("threshold_id", String(64), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("percent", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("service", String(16), nullable=False),
    Column("barring_flag", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("used_micros", BigInteger, nullable=False),
    Column("limit_micros", BigInteger, nullable=False),
    Column("fire_time", TS, nullable=False),
    Index("uq_credit_alert_once", "tenant_id", "msisdn", "period", "threshold_id", "action_index", unique=True),
    Index("ix_credit_alert_tenant", "tenant_id", "sequence"),
)


def _version(row: Any) -> PlanSetVersion:
    return PlanSetVersion(row.tenant_id, int(row.version), row.digest, row.ir_json, json.loads(row.sources_json),
                          aware(row.create_time), row.created_by, aware(row.activate_time))


class PlanVersionRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def latest_number(self, tenant_id: str) -> int:
        rows = self.s.execute(select(plan_set_versions.c.version).where(plan_set_versions.c.tenant_id == tenant_id)
                              .order_by(plan_set_versions.c.version.desc()).limit(1)).first()
        return int(rows[0]) if rows else 0

    def add(self, v: PlanSetVersion) -> None:
        self.s.execute(insert(plan_set_versions).values(
            tenant_id=v.tenant_id, version=v.version, digest=v.digest, ir_json=v.ir_json,
            sources_json=json.dumps(dict(v.sources), sort_keys=True), create_time=v.create_time, created_by=v.created_by,
            activate_time=v.activate_time))

    def get(self, tenant_id: str, version: int) -> PlanSetVersion | None:
        row = self.s.execute(select(plan_set_versions).where(and_(
            plan_set_versions.c.tenant_id == tenant_id, plan_set_versions.c.version == version))).first()
        return _version(row) if row else None

    def list(self, tenant_id: str, after: int | None, limit: int) -> builtins.list[PlanSetVersion]:
        q = select(plan_set_versions).where(plan_set_versions.c.tenant_id == tenant_id)
        if after is not None:
            q = q.where(plan_set_versions.c.version > int(after))
        return [_version(r) for r in self.s.execute(q.order_by(plan_set_versions.c.version).limit(limit))]

    def set_activation(self, tenant_id: str, version: int, activate_time: datetime) -> None:
        self.s.execute(update(plan_set_versions).where(and_(
            plan_set_versions.c.tenant_id == tenant_id, plan_set_versions.c.version == version)).values(activate_time=activate_time))

    def activation_heads(self, tenant_id: str) -> builtins.list[PlanSetVersion]:
        """Every activated version of a tenant without IR and sources (rating picks the one in force per CDR in memory)."""
        t = plan_set_versions
        rows = self.s.execute(select(t.c.tenant_id, t.c.version, t.c.digest, t.c.create_time, t.c.created_by, t.c.activate_time).where(
            and_(t.c.tenant_id == tenant_id, t.c.activate_time.is_not(None))).order_by(t.c.activate_time, t.c.version))
        return [PlanSetVersion(r.tenant_id, int(r.version), r.digest, "", {}, aware(r.create_time), r.created_by,
                               aware(r.activate_time)) for r in rows]

    def active(self, tenant_id: str, at: datetime) -> PlanSetVersion | None:
        # the latest activation at or before `at` wins (a later version activated earlier is superseded)
        row = self.s.execute(select(plan_set_versions).where(and_(
            plan_set_versions.c.tenant_id == tenant_id, plan_set_versions.c.activate_time.is_not(None),
            plan_set_versions.c.activate_time <= at)).order_by(plan_set_versions.c.activate_time.desc(),
                                                               plan_set_versions.c.version.desc()).limit(1)).first()
        return _version(row) if row else None


class BundleCounterRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def _key(self, table: Table, tenant_id: str, msisdn: str, cycle: str) -> Any:
        return and_(table.c.tenant_id == tenant_id, table.c.msisdn == msisdn, table.c.cycle == cycle)

    def get(self, tenant_id: str, msisdn: str, cycle: str) -> dict[str, tuple[int, int, str]]:
        rows = self.s.execute(select(bundle_counters).where(self._key(bundle_counters, tenant_id, msisdn, cycle)))
        return {r.bundle_id: (int(r.allowance), int(r.remaining), r.unit) for r in rows}

    def ensure(self, tenant_id: str, msisdn: str, cycle: str, bundle_id: str, allowance: int, unit: str) -> None:
        exists = self.s.execute(select(bundle_counters.c.remaining).where(and_(
            self._key(bundle_counters, tenant_id, msisdn, cycle), bundle_counters.c.bundle_id == bundle_id))).first()
        if exists is not None:
            return
        try:
            with self.s.begin_nested():
                self.s.execute(insert(bundle_counters).values(tenant_id=tenant_id, msisdn=msisdn, cycle=cycle, bundle_id=bundle_id,
                                                              allowance=allowance, remaining=allowance, unit=unit))
        except IntegrityError:
            pass  # created concurrently: fine, it starts at the same allowance

    def consume(self, tenant_id: str, msisdn: str, cycle: str, bundle_id: str, units: int) -> bool:
        result = self.s.execute(update(bundle_counters).where(and_(
            self._key(bundle_counters, tenant_id, msisdn, cycle), bundle_counters.c.bundle_id == bundle_id,
            bundle_counters.c.remaining >= units)).values(remaining=bundle_counters.c.remaining - units))
        return int(getattr(result, "rowcount", 0)) == 1

    def add_usage(self, tenant_id: str, msisdn: str, cycle: str, currency: str, micros: int) -> None:
        key = and_(self._key(usage_balances, tenant_id, msisdn, cycle), usage_balances.c.currency == currency)
        result = self.s.execute(update(usage_balances).where(key).values(charged_micros=usage_balances.c.charged_micros + micros))
        if int(getattr(result, "rowcount", 0)) == 0:
            try:
                with self.s.begin_nested():
                    self.s.execute(insert(usage_balances).values(tenant_id=tenant_id, msisdn=msisdn, cycle=cycle, currency=currency,
                                                                 charged_micros=micros))
            except IntegrityError:
                self.s.execute(update(usage_balances).where(key).values(charged_micros=usage_balances.c.charged_micros + micros))

    def usage(self, tenant_id: str, msisdn: str, cycle: str) -> dict[str, int]:
        rows = self.s.execute(select(usage_balances).where(self._key(usage_balances, tenant_id, msisdn, cycle)))
        return {r.currency: int(r.charged_micros) for r in rows}

    def give_back(self, tenant_id: str, msisdn: str, cycle: str, bundle_id: str, units: int) -> None:
        self.s.execute(update(bundle_counters).where(and_(
            self._key(bundle_counters, tenant_id, msisdn, cycle), bundle_counters.c.bundle_id == bundle_id))
            .values(remaining=bundle_counters.c.remaining + units))

    def ledger_get(self, tenant_id: str, cdr_id: str) -> LedgerEntry | None:
        r = self.s.execute(select(usage_ledger).where(and_(usage_ledger.c.tenant_id == tenant_id,
                                                            usage_ledger.c.cdr_id == cdr_id))).first()
        if r is None:
            return None
        return LedgerEntry(r.tenant_id, r.cdr_id, r.msisdn, r.cycle, r.currency, int(r.charge_micros),
                           tuple((b, int(u)) for b, u in json.loads(r.bundles_json)), aware(r.start_time), r.service,
                           r.destination_group, r.tariff_plan, int(r.plan_set_version), int(r.units))

    def ledger_put(self, e: LedgerEntry) -> None:
        values = dict(msisdn=e.msisdn, cycle=e.cycle, currency=e.currency, charge_micros=e.charge_micros,
                      bundles_json=json.dumps([list(b) for b in e.bundles]), start_time=e.start_time, service=e.service,
                      destination_group=e.destination, tariff_plan=e.tariff_plan, plan_set_version=e.plan_set_version, units=e.units)
        key = and_(usage_ledger.c.tenant_id == e.tenant_id, usage_ledger.c.cdr_id == e.cdr_id)
        if int(getattr(self.s.execute(update(usage_ledger).where(key).values(**values)), "rowcount", 0)) == 0:
            self.s.execute(insert(usage_ledger).values(tenant_id=e.tenant_id, cdr_id=e.cdr_id, **values))


class CreditAlertRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def fired(self, tenant_id: str, msisdn: str, period: str) -> set[str]:
        t = credit_alert_log
        rows = self.s.execute(select(t.c.threshold_id).where(and_(t.c.tenant_id == tenant_id, t.c.msisdn == msisdn, t.c.period == period)))
        return {r[0] for r in rows}

    def record(self, e: CreditAlertRecord) -> bool:
        try:
            with self.s.begin_nested():
                self.s.execute(insert(credit_alert_log).values(
                    tenant_id=e.tenant_id, msisdn=e.msisdn, period=e.period, threshold_id=e.threshold_id, action_index=e.action_index,
                    percent=e.percent, kind=e.kind, channel=e.channel, recipient=e.recipient[:200], text=e.text, service=e.service,
                    barring_flag=e.barring_flag, currency=e.currency, used_micros=e.used_micros, limit_micros=e.limit_micros,
                    fire_time=e.fire_time))
        except IntegrityError:
            return False  # fired concurrently by another rater: once per period
        return True

    def list(self, tenant_ids: set[str] | None, msisdn: str, period: str, after: int | None, limit: int) -> builtins.list[CreditAlertRecord]:
        t = credit_alert_log
        q = select(t).order_by(t.c.sequence).limit(limit)
        if tenant_ids is not None:
            q = q.where(t.c.tenant_id.in_(sorted(tenant_ids)))
        if msisdn:
            q = q.where(t.c.msisdn == msisdn)
        if period:
            q = q.where(t.c.period == period)
        if after is not None:
            q = q.where(t.c.sequence > int(after))
        return [CreditAlertRecord(r.tenant_id, r.msisdn, r.period, r.threshold_id, int(r.action_index), r.percent, r.kind, r.channel,
                                  r.recipient, r.text, r.service, r.barring_flag, r.currency, int(r.used_micros), int(r.limit_micros),
                                  aware(r.fire_time), int(r.sequence)) for r in self.s.execute(q)]


class SqlPlanUnitOfWork:
    """The platform unit of work plus the plan repositories on the same session."""

    plan_versions: PlanVersionRepo
    counters: BundleCounterRepo
    alerts: CreditAlertRepo
    subscribers: Any
    audit: Any

    def __init__(self, factory: SqlUnitOfWorkFactory, read_only: bool = False) -> None:
        self._inner = factory(read_only=read_only)

    def __enter__(self) -> "SqlPlanUnitOfWork":
        self._inner.__enter__()
        self.plan_versions = PlanVersionRepo(self._inner.session)
        self.counters = BundleCounterRepo(self._inner.session)
        self.alerts = CreditAlertRepo(self._inner.session)
        self.subscribers = self._inner.subscribers
        self.audit = self._inner.audit
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def commit(self) -> None:
        self._inner.commit()


class SqlPlanUnitOfWorkFactory:
    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self._factory = factory

    def __call__(self, read_only: bool = False) -> SqlPlanUnitOfWork:
        return SqlPlanUnitOfWork(self._factory, read_only)
