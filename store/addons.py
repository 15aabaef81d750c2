"""Add-on purchases (engine.billing.addons): the billing area's table, read by rating for the units it grants.

``billing_addon_purchases`` is written by BuyAddOn in the billing unit of work; rating reads the purchases valid in a
chunk's time span on its own unit of work (:class:`SqlAddOnReader`).  A purchase's units live in rating's
``bundle_counters`` under its counter cycle ``+NNNNNN``; the (tenant, msisdn, cycle) unique index makes two purchases
of one number never share a counter.  A cancelled purchase keeps its validity end and gets its ``cancel_time``
(migration ``billing_0005``): rating reads the earlier of the two as its end.  A monthly add-on (``billing_0007``:
its recurrence, the anchor day and time zone of its bill cycles) has one counter per bill cycle
(engine.rating.addons.monthly_counter_cycle) and its ``valid_until`` is the instant it stops at (open until cancelled,
stopped by a plan change or a deactivation); rating reads it as one grant that the chunk's rows cut into their bill
cycles (engine.rating.addons.in_row_cycles).  Rating asks for the purchases of only the numbers whose last purchase
ends after a CDR of the chunk: the chunk's subscriber read says when (store/plans.py ``_ADD_ONS_UNTIL``).
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import BigInteger, Column, Integer, DateTime, Index, String, Table, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from engine.billing.addons import OPEN_CYCLE, AddOnPurchase, grants_of
from engine.errors import AlreadyExists
from engine.rating.addons import ActiveAddOn, monthly_counter_cycle
from store.repositories import among, aware

TS = DateTime(timezone=True)
CHUNK = 500

billing_addon_purchases = Table(
    "billing_addon_purchases", SQLModel.metadata,
    Column("purchase_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("subscriber_id", String(40), nullable=False),
    Column("msisdn", String(32), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("bundle_id", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("cycle", String(7), nullable=False),
    Column("bill_cycle", String(7), nullable=False),
    Column("tariff_plan", String(64), nullable=False),
    Column("purchase_time", TS, nullable=False),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS, nullable=False),
    Column("allowance", BigInteger, nullable=False),
    Column("unit", String(8), nullable=False),
    Column("fee_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tax_category", String(40), nullable=False),
    Column("charge_id", String(40), nullable=False),
    Column("created_by", String(128), nullable=False),
    # billing_0005: the refund policy bought with it, and the cancel
    Column("refund", String(16), nullable=False, server_default="none"),
    Column("cancel_time", TS, nullable=True),
    Column("cancel_request_id", String(128), nullable=False, server_default=""),
    Column("refund_micros", BigInteger, nullable=False, server_default="0"),
    Column("refund_charge_id", String(40), nullable=False, server_default=""),
    Column("cancelled_by", String(128), nullable=False, server_default=""),
    Column("last_bill_cycle", String(7), nullable=False, server_default=""),
    # billing_0007: monthly add-ons
    Column("recurrence", String(16), nullable=False, server_default="one_off"),
    Column("anchor_day", Integer, nullable=False, server_default="1"),
    Column("cycle_zone", String(64), nullable=False, server_default=""),
    Index("ux_billing_addon_counter", "tenant_id", "msisdn", "cycle", unique=True),
    Index("ix_billing_addon_valid", "tenant_id", "msisdn", "valid_until"),
    Index("ix_billing_addon_subscriber", "tenant_id", "subscriber_id", "purchase_time", "purchase_id"),
)


def _purchase(r: Any) -> AddOnPurchase:
    return AddOnPurchase(r.purchase_id, r.tenant_id, r.subscriber_id, r.msisdn, r.account_id, r.bundle_id, r.request_id, r.cycle,
                         r.bill_cycle, r.tariff_plan, aware(r.purchase_time), aware(r.valid_from), aware(r.valid_until),
                         int(r.allowance), r.unit, int(r.fee_micros), r.currency, r.tax_category, r.charge_id, r.created_by, r.refund,
                         aware(r.cancel_time) if r.cancel_time is not None else None, r.cancel_request_id, int(r.refund_micros),
                         r.refund_charge_id, r.cancelled_by, r.last_bill_cycle, r.recurrence, int(r.anchor_day), r.cycle_zone)


class SqlAddOns:
    """engine.billing.addons.AddOnStore on the billing unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def _dialect(self) -> str:
        return self.s.get_bind().dialect.name

    def get(self, purchase_id: str) -> AddOnPurchase | None:
        r = self.s.execute(select(billing_addon_purchases).where(billing_addon_purchases.c.purchase_id == purchase_id)).first()
        return _purchase(r) if r is not None else None

    def count_for(self, tenant_id: str, msisdn: str) -> int:
        t = billing_addon_purchases
        return int(self.s.execute(select(func.count()).where(and_(t.c.tenant_id == tenant_id, t.c.msisdn == msisdn))).scalar_one())

    def add(self, p: AddOnPurchase) -> None:
        try:
            with self.s.begin_nested():
                self.s.execute(insert(billing_addon_purchases).values(
                    purchase_id=p.purchase_id, tenant_id=p.tenant_id, subscriber_id=p.subscriber_id, msisdn=p.msisdn,
                    account_id=p.account_id, bundle_id=p.bundle_id, request_id=p.request_id, cycle=p.cycle, bill_cycle=p.bill_cycle,
                    tariff_plan=p.tariff_plan, purchase_time=p.purchase_time, valid_from=p.valid_from, valid_until=p.valid_until,
                    allowance=p.allowance, unit=p.unit, fee_micros=p.fee_micros, currency=p.currency, tax_category=p.tax_category,
                    charge_id=p.charge_id, created_by=p.created_by, refund=p.refund, last_bill_cycle=p.last_bill_cycle,
                    recurrence=p.recurrence, anchor_day=p.anchor_day, cycle_zone=p.cycle_zone))
        except IntegrityError:
            raise AlreadyExists("add-on purchase", p.request_id, f"a purchase for {p.msisdn} was made at the same time: send the "
                                                                 f"request again") from None

    def fees_bought(self, tenant_id: str, account_id: str, subscriber_ids: Iterable[str], created_by: str, bill_cycle: str) -> int:
        t = billing_addon_purchases
        return self._account_sum(t.c.fee_micros, tenant_id, account_id, subscriber_ids, t.c.created_by == created_by,
                                 t.c.bill_cycle == bill_cycle)

    def refunds_given(self, tenant_id: str, account_id: str, subscriber_ids: Iterable[str], cancelled_by: str, since: datetime,
                      until: datetime) -> int:
        t = billing_addon_purchases
        return self._account_sum(t.c.refund_micros, tenant_id, account_id, subscriber_ids, t.c.cancelled_by == cancelled_by,
                                 t.c.cancel_time >= since, t.c.cancel_time < until)

    def _account_sum(self, column: Any, tenant_id: str, account_id: str, subscriber_ids: Iterable[str], *conditions: Any) -> int:
        """The sum of ``column`` over the purchases the account paid for these subscribers that meet ``conditions``."""
        t = billing_addon_purchases
        ids = sorted(set(subscriber_ids))
        total = 0
        for i in range(0, len(ids), CHUNK):   # by subscriber: ix_billing_addon_subscriber
            q = select(func.coalesce(func.sum(column), 0)).where(and_(
                t.c.tenant_id == tenant_id, among(t.c.subscriber_id, ids[i:i + CHUNK], self._dialect), t.c.account_id == account_id,
                *conditions))
            total += int(self.s.execute(q).scalar_one())
        return total

    def list_for(self, tenant_id: str, subscriber_id: str, after: list[str] | None, limit: int) -> list[AddOnPurchase]:
        t = billing_addon_purchases
        q = select(t).where(and_(t.c.tenant_id == tenant_id, t.c.subscriber_id == subscriber_id))
        if after is not None:
            at = datetime.fromisoformat(after[0])   # checked by the desk (engine.billing.addons)
            q = q.where(or_(t.c.purchase_time > at, and_(t.c.purchase_time == at, t.c.purchase_id > after[1])))
        return [_purchase(r) for r in self.s.execute(q.order_by(t.c.purchase_time, t.c.purchase_id).limit(limit))]

    def remaining(self, purchases: list[AddOnPurchase]) -> dict[str, int]:
        out: dict[str, int] = {}
        if not purchases or not self._has_counters():
            return {p.purchase_id: p.allowance for p in purchases}
        by_tenant: dict[str, list[AddOnPurchase]] = {}
        for p in purchases:
            by_tenant.setdefault(p.tenant_id, []).append(p)
        for tenant, items in by_tenant.items():
            left = self._remaining(tenant, [(p.msisdn, p.cycle, p.bundle_id) for p in items])
            out.update({p.purchase_id: left.get((p.msisdn, p.cycle, p.bundle_id), p.allowance) for p in items})
        return out

    def cancel(self, p: AddOnPurchase) -> bool:
        t = billing_addon_purchases
        done = self.s.execute(update(t).where(and_(t.c.purchase_id == p.purchase_id, t.c.cancel_time.is_(None))).values(
            cancel_time=p.cancel_time, cancel_request_id=p.cancel_request_id, refund_micros=p.refund_micros,
            refund_charge_id=p.refund_charge_id, cancelled_by=p.cancelled_by, last_bill_cycle=p.last_bill_cycle,
            valid_until=p.valid_until))
        return bool(getattr(done, "rowcount", 0))

    def live_monthly(self, tenant_id: str, subscriber_id: str, bundle_id: str, now: datetime) -> list[AddOnPurchase]:
        t = billing_addon_purchases
        q = select(t).where(and_(t.c.tenant_id == tenant_id, t.c.subscriber_id == subscriber_id, t.c.recurrence == "monthly",
                                 t.c.valid_until > now))
        if bundle_id:
            q = q.where(t.c.bundle_id == bundle_id)
        return [_purchase(r) for r in self.s.execute(q.order_by(t.c.purchase_time))]

    def monthly_of(self, tenant_id: str, subscriber_ids: list[str]) -> list[AddOnPurchase]:
        """The monthly purchases of these subscribers (billing's fees: engine.billing.ports.SubscriberFacts.add_ons)."""
        t = billing_addon_purchases
        out: list[AddOnPurchase] = []
        for i in range(0, len(subscriber_ids), CHUNK):
            q = select(t).where(and_(t.c.tenant_id == tenant_id, among(t.c.subscriber_id, subscriber_ids[i:i + CHUNK], self._dialect),
                                     t.c.recurrence == "monthly"))
            out.extend(_purchase(r) for r in self.s.execute(q.order_by(t.c.purchase_time, t.c.purchase_id)))
        return out

    def bundle_use(self, tenant_id: str, msisdns: list[str], bill_cycles: list[str]) -> list[tuple[Any, ...]]:
        """(msisdn, bill cycle, bundle, valid until, allowance, remaining, unit, monthly) of the add-ons valid in each of these bill
        cycles (from the cycle it was bought in to the cycle of its last valid instant): rating's counter as it is now
        when it has used some, the whole allowance before."""
        if not self._has_counters() or not bill_cycles:
            return []
        p = billing_addon_purchases
        lo, hi = min(bill_cycles), max(bill_cycles)
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(msisdns), CHUNK):
            q = (select(p.c.msisdn, p.c.bill_cycle, p.c.last_bill_cycle, p.c.bundle_id, p.c.valid_until, p.c.allowance, p.c.unit, p.c.cycle,
                        p.c.cancel_time, p.c.recurrence)
                 .where(and_(p.c.tenant_id == tenant_id, among(p.c.msisdn, msisdns[i:i + CHUNK], self._dialect), p.c.bill_cycle <= hi,
                             or_(p.c.bill_cycle >= lo, p.c.last_bill_cycle >= lo)))
                 .order_by(p.c.msisdn, p.c.cycle))
            rows = list(self.s.execute(q))
            # (row, bill cycle, counter cycle): a monthly add-on has a counter per bill cycle, a one-off one for all
            shown = [(r, c, monthly_counter_cycle(int(r.cycle[1:]), c) if r.recurrence == "monthly" else r.cycle)
                     for r in rows for c in sorted(bill_cycles) if r.bill_cycle <= c <= (r.last_bill_cycle or r.bill_cycle)]
            remaining = self._remaining(tenant_id, [(r.msisdn, key, r.bundle_id) for r, _c, key in shown])
            for r, c, key in shown:
                monthly = r.recurrence == "monthly"
                until = (min(aware(r.valid_until), aware(r.cancel_time)) if r.cancel_time is not None and not monthly
                         else aware(r.valid_until))
                left = remaining.get((r.msisdn, key, r.bundle_id), int(r.allowance))
                out.append((r.msisdn, c, r.bundle_id, until, int(r.allowance), left, r.unit, monthly))
        return out

    def _has_counters(self) -> bool:
        from sqlalchemy import inspect

        return bool(inspect(self.s.connection()).has_table("bundle_counters"))

    def _remaining(self, tenant_id: str, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        if not keys:
            return {}
        from sqlalchemy import text

        found: dict[tuple[str, str, str], int] = {}
        msisdns = sorted({k[0] for k in keys})
        sql = text("SELECT msisdn, cycle, bundle_id, remaining FROM bundle_counters WHERE tenant_id = :tenant AND msisdn IN :m "
                   "AND cycle LIKE '+%'").bindparams(_expanding("m"))
        for r in self.s.execute(sql, {"tenant": tenant_id, "m": msisdns}):
            found[(r.msisdn, r.cycle, r.bundle_id)] = int(r.remaining)
        return found


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


class SqlAddOnReader:
    """engine.rating.addons.AddOnReader on rating's unit of work (per chunk: whether its tenants have any purchase valid in its
    span, then one query by the numbers' index when they do)."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def active_add_ons(self, numbers: Iterable[tuple[str, str]], start: datetime, end: datetime) -> list[ActiveAddOn]:
        wanted = sorted(set(numbers))
        if not wanted or not self._table():
            return []
        p = billing_addon_purchases
        # most chunks meet no purchase at all: one small query on the tenants says so, before the look-up by hundreds
        # of numbers (whose expanded IN list costs more to build than to run)
        owners = sorted({t for t, _ in wanted})
        # cancelled before the span: no grant in it (a monthly add-on's valid_until is where its cancel stops it)
        live = or_(p.c.cancel_time.is_(None), p.c.cancel_time > start, p.c.recurrence == "monthly")
        probe = select(p.c.tenant_id).where(and_(p.c.tenant_id.in_(owners), p.c.valid_until > start,
                                                 p.c.valid_from <= end, live)).limit(1)
        if self.s.execute(probe).first() is None:
            return []
        out: list[ActiveAddOn] = []
        for i in range(0, len(wanted), CHUNK):
            part = wanted[i:i + CHUNK]
            tenants = {t for t, _ in part}
            who = (tuple_(p.c.tenant_id, p.c.msisdn).in_(part) if len(tenants) > 1
                   else and_(p.c.tenant_id == part[0][0], p.c.msisdn.in_([m for _, m in part])))
            q = select(p).where(and_(who, p.c.valid_until > start, p.c.valid_from <= end, live))
            # a cancelled one-off's grant ends at the cancel instant: a CDR starting then or later is not covered; a
            # monthly add-on grants afresh in each bill cycle of the rows that use it (engine.rating.addons.in_row_cycles)
            for r in self.s.execute(q):
                out.extend(grants_of(_purchase(r), start, end, cycles=False))
        return out

    def _table(self) -> bool:
        """Whether the billing area's table is there (a rating-only database has none); asked once per database."""
        bind = self.s.get_bind()
        present = _PRESENT.get(bind)
        if present is None:
            from sqlalchemy import inspect

            present = _PRESENT[bind] = bool(inspect(self.s.connection()).has_table("billing_addon_purchases"))
        return present


_PRESENT: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


__all__ = ["SqlAddOnReader", "SqlAddOns", "billing_addon_purchases"]
