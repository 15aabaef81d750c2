"""Billing tables and the SQL unit of work implementing ``engine.billing.ports`` (SQLite and PostgreSQL).

Invariants the schema holds by itself:

- ``billing_periods`` has one row per (tenant, account, period start): the claim a bill run inserts in the
  transaction that stores the invoice.  A second run (or a resumed one, or another replica) cannot bill the
  same period again: its insert fails and its whole batch rolls back.
- ``billing_series.next_number`` is read with a row lock (``FOR UPDATE`` on PostgreSQL; SQLite transactions
  here are ``BEGIN IMMEDIATE``) and moved in the transaction that uses the numbers: a crash gives them back, so
  numbers stay gapless, and ``uq_billing_invoices_number`` makes a duplicate number impossible.
- ``billing_frozen_usage`` holds an invoice's frozen CDRs, one row per number and freeze: the CDR ids and their
  charges as two lists, with the span of their start times.  A freeze checks the rows of its numbers whose span
  meets its own for a CDR billed already, under a lock per number on PostgreSQL (SQLite has one writer): each CDR
  is billed once.

Rated usage is read from the rating area's ``usage_ledger`` through :class:`SqlRatedUsage`, the one place that
knows its columns.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any, Iterator, NamedTuple, Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from engine.billing.model import (
    Account,
    AccountStatus,
    Address,
    Assignment,
    BillLine,
    BundleUse,
    Delivery,
    DocumentKind,
    Invoice,
    InvoiceState,
    OneOffCharge,
    RatedUsage,
    Totals,
)
from engine.billing.ports import (
    BillRun,
    InvoiceFilter,
    LedgerEntry,
    OutboxEntry,
    PeriodClaim,
    PeriodStatus,
    RunMode,
    RunState,
    StoredBill,
    SubscriberFacts,
)
from engine.billing.usage_blocks import UsageBlock, UsageGroup, blocks_from_usage
from engine.billing.usagecsv import block_text, pg_time
from engine.errors import AlreadyExists, FailedPrecondition
from engine.billing.addons import add_on_use_name
from engine.billing.codec import compress
from store.addons import SqlAddOns
from store.db import LEDGER_KEY_COLUMN, LEDGER_KEY_INDEX, ledger_key
from store.repositories import UNIQUE_KEY_BROKEN, AuditRepo, among, aware
from store.uow import SqlUnitOfWorkFactory
from store.usage_stage import PREFIX as STAGE_PREFIX, check_stage, create_stage, drop_stage, stage_name

TS = DateTime(timezone=True)
meta = SQLModel.metadata
CHUNK = 500

billing_accounts = Table(
    "billing_accounts", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("account_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("address_json", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("anchor_day", Integer, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("delivery", String(16), nullable=False),
    Column("email", String(254), nullable=False),
    Column("vat_id", String(32), nullable=False),
    Column("company_id", String(200), nullable=False),
    Column("payment_terms_days", Integer, nullable=False),
    Column("tax_exemption", String(200), nullable=False),
    Column("discount_plans", Text, nullable=False),
    Column("buyer_reference", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("create_time", TS, nullable=False),
    Column("update_time", TS, nullable=False),
    Column("close_time", TS, nullable=True),
)

OPEN = text("valid_to IS NULL")

billing_assignments = Table(
    "billing_assignments", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("subscriber_id", String(40), primary_key=True),
    Column("valid_from", TS, primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("msisdn", String(32), nullable=False),
    Column("valid_to", TS, nullable=True),
    Index("ix_billing_assignments_account", "tenant_id", "account_id"),
    # a subscriber is billed to one account at a time: one open assignment each (billing_0011)
    Index("uq_billing_assignments_open", "tenant_id", "subscriber_id", unique=True, sqlite_where=OPEN, postgresql_where=OPEN),
)

billing_charges = Table(
    "billing_charges", meta,
    Column("charge_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("subscriber_id", String(40), nullable=False),
    Column("code", String(64), nullable=False),
    Column("description", String(200), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tax_category", String(40), nullable=False),
    Column("charge_date", Date, nullable=False),
    Column("raised_by", String(200), nullable=False),
    Column("invoice_id", String(40), nullable=False, server_default=""),
    Index("ix_billing_charges_account", "tenant_id", "account_id", "invoice_id"),
)

billing_periods = Table(
    "billing_periods", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("account_id", String(64), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("invoice_id", String(40), nullable=False),
    Column("run_id", String(40), nullable=False),
)

billing_series = Table(
    "billing_series", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("series", String(16), primary_key=True),
    Column("next_number", BigInteger, nullable=False),
)

HAS_NUMBER = text("number <> ''")

billing_invoices = Table(
    "billing_invoices", meta,
    Column("invoice_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("number", String(40), nullable=False),
    Column("series", String(16), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("issue_date", Date, nullable=True),
    Column("due_date", Date, nullable=True),
    Column("line_extension", BigInteger, nullable=False),
    Column("allowances", BigInteger, nullable=False),
    Column("charges", BigInteger, nullable=False),
    Column("tax_exclusive", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("tax_inclusive", BigInteger, nullable=False),
    Column("prepaid", BigInteger, nullable=False),
    Column("payable", BigInteger, nullable=False),
    Column("paid_micros", BigInteger, nullable=False),
    Column("credited_micros", BigInteger, nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("reference_id", String(40), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("create_time", TS, nullable=False),
    Column("issue_time", TS, nullable=True),
    Column("bill", LargeBinary, nullable=False),          # engine.billing.codec.pack(bill_dict(...))
    Column("document", LargeBinary, nullable=True),       # zlib of the UBL XML
    Index("uq_billing_invoices_number", "tenant_id", "number", unique=True, sqlite_where=HAS_NUMBER, postgresql_where=HAS_NUMBER),
    Index("ix_billing_invoices_tenant", "tenant_id", "invoice_id"),
    Index("ix_billing_invoices_account", "tenant_id", "account_id", "period_start"),
    Index("ix_billing_invoices_run", "run_id"),
)

billing_invoice_lines = Table(
    "billing_invoice_lines", meta,
    Column("invoice_id", String(40), primary_key=True),
    Column("line_id", String(16), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("subscriber_id", String(40), nullable=False),
    Column("charge_type", String(16), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("advance", Boolean, nullable=False),
    Column("period_start", Date, nullable=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("ref_line_id", String(16), nullable=False),
    Index("ix_billing_lines_advance", "tenant_id", "account_id", "period_start"),
)

# an invoice's frozen CDRs (billing_0008): one row per (invoice, number) and freeze -- a bill run's batch, a re-bill's
# move -- instead of a row per CDR under a primary key (a random b-tree insert per CDR, and a probe of that key per
# CDR each time the period's usage was read: about half of the database's CPU per invoice).  What is billed is found
# by number and start time (the CDRs of a period are read by number and start time); a CDR is in one row at most.
billing_frozen_usage = Table(
    "billing_frozen_usage", meta,
    Column("tenant_id", String(40), nullable=False),
    Column("invoice_id", String(40), nullable=False),
    Column("msisdn", String(32), nullable=False),          # '' for CDRs the ledger did not have when frozen
    Column("first_start", TS, nullable=False),
    Column("last_start", TS, nullable=False),
    Column("cdr_ids", Text, nullable=False),               # one a line
    Column("charges", Text, nullable=False),               # micro-units, one a line, in the ids' order
    Index("ix_billing_frozen_usage_number", "tenant_id", "msisdn", "last_start"),
    Index("ix_billing_frozen_usage_invoice", "invoice_id"),
)
NO_START = datetime(1970, 1, 1, tzinfo=timezone.utc)       # the span of a CDR frozen without its ledger row

billing_ledger = Table(
    "billing_ledger", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("source", String(120), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("time", TS, nullable=False),
    Column("invoice_id", String(40), nullable=False),
    Index("ix_billing_ledger_account", "tenant_id", "account_id"),
)

billing_outbox = Table(
    "billing_outbox", meta,                                # issued invoices to e-mail (engine.billing.delivery)
    Column("tenant_id", String(40), primary_key=True),
    Column("invoice_id", String(40), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("address", String(254), nullable=False),
    Column("queue_time", TS, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500), nullable=False),
    Column("sent_time", TS, nullable=True),
    Index("ix_billing_outbox_waiting", "sent_time", "queue_time"),
)

billing_runs = Table(
    "billing_runs", meta,
    Column("run_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("cycle_date", Date, nullable=True),
    Column("account_ids", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("review", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("start_time", TS, nullable=False),
    Column("end_time", TS, nullable=True),
    Column("total", BigInteger, nullable=False),
    Column("issued", BigInteger, nullable=False),
    Column("drafts", BigInteger, nullable=False),
    Column("empty", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("failures_json", Text, nullable=False),
    Column("interim", Boolean, nullable=False, server_default=false()),   # billing_0006
    Index("ix_billing_runs_tenant", "tenant_id", "start_time"),
)


class _Frozen(NamedTuple):
    """CDRs of one number to freeze for an invoice: a billing_frozen_usage row but its tenant and invoice (also
    ``UsageBlock.frozen`` on PostgreSQL, as the block's read wrote it)."""

    msisdn: str
    first_start: datetime
    last_start: datetime
    ids: str      # the CDR ids, one a line
    charges: str  # their charges, one a line


class SqlRatedUsage:
    """The rated usage port: per-CDR rows of the rating area's usage ledger, minus what billing froze already.

    The only code that knows the ledger's column names: when the rating side changes its storage, this class
    changes and nothing else in billing does."""

    LEDGER = "usage_ledger"
    COLUMNS = {"cdr_id": "cdr_id", "msisdn": "msisdn", "start_time": "start_time", "service": "service",
               "destination": "destination_group", "charge_micros": "charge_micros", "currency": "currency",
               "tariff_plan": "tariff_plan", "plan_set_version": "plan_set_version", "units": "units"}
    # rated rows only: the one rating evaluator also keeps rows it could not rate (status 'unrated'); rows stored
    # before the status column have none
    RATED = "(l.status IS NULL OR l.status = 'rated')"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        c = self.COLUMNS
        self._select = (f"SELECT l.{c['cdr_id']}, l.{c['msisdn']}, l.{c['start_time']}, l.{c['service']}, l.{c['destination']}, "
                        f"l.{c['charge_micros']}, l.{c['currency']}, l.{c['tariff_plan']}, l.{c['plan_set_version']}, l.{c['units']} "
                        f"FROM {self.LEDGER} l")

    @staticmethod
    def _rows(rows: Any) -> list[RatedUsage]:
        out = []
        for r in rows:
            start = r[2]
            if isinstance(start, str):  # SQLite
                start = datetime.fromisoformat(start)
            if start.tzinfo is None:
                start = start.replace(tzinfo=timezone.utc)
            out.append(RatedUsage(r[0], r[1], start, r[3], r[4], int(r[5]), r[6], r[7], int(r[8]), int(r[9])))
        return out

    def for_period(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime) -> list[RatedUsage]:
        """Rated CDRs of these numbers that started in ``[since, until)`` and are not on any bill yet (an unrated
        ledger row, status ``unrated``, is not usage to bill).

        Plain driver SQL: a bill run reads a few hundred thousand rows a batch, and SQLAlchemy's row objects cost
        more than the database does."""
        c = self.COLUMNS
        where = f"l.tenant_id = {{p}} AND l.{c['start_time']} >= {{p}} AND l.{c['start_time']} < {{p}} AND {self.RATED}"
        raw = self.conn.connection.dbapi_connection
        out: list[RatedUsage] = []
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            if self.conn.dialect.name == "postgresql":
                cur.execute(self._PG_READ_SETTINGS)
                sql = f"{self._select} WHERE {where.format(p='%s')} AND l.{c['msisdn']} = ANY(%s) AND l.{c['cdr_id']} <> ALL(%s)"
                for i in range(0, len(msisdns), 5 * CHUNK):
                    part = list(msisdns[i:i + 5 * CHUNK])
                    cur.execute(sql, (tenant_id, since, until, part, self.billed(tenant_id, part, since, until)))
                    # psycopg returns the columns as RatedUsage wants them: aware datetimes (UTC sessions), ints, text
                    out.extend(map(RatedUsage._make, cur.fetchall()))
                cur.execute(self._PG_READ_DEFAULTS)
            else:
                for i in range(0, len(msisdns), CHUNK):
                    part = list(msisdns[i:i + CHUNK])
                    billed = set(self.billed(tenant_id, part, since, until))
                    sql = f"{self._select} WHERE {where.format(p='?')} AND l.{c['msisdn']} IN ({', '.join('?' * len(part))})"
                    cur.execute(sql, (tenant_id, _sqlite_time(since), _sqlite_time(until), *part))
                    out.extend(u for u in self._rows(cur.fetchall()) if u.cdr_id not in billed)
        finally:
            cur.close()
        return out

    def billed(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime) -> list[str]:
        """The CDR ids frozen for these numbers in rows whose span of start times meets ``[since, until)``: every CDR
        of theirs started in it and billed is among them (a superset: a row's other CDRs may have started outside)."""
        t = billing_frozen_usage
        out: list[str] = []
        since, until = _utc(since), _utc(until)
        for i in range(0, len(msisdns), 5 * CHUNK):
            q = select(t.c.cdr_ids).where(and_(t.c.tenant_id == tenant_id, among(t.c.msisdn, msisdns[i:i + 5 * CHUNK], self.conn.dialect.name),
                                               t.c.last_start >= since, t.c.first_start < until))
            for (ids,) in self.conn.execute(q):
                out.extend(ids.split("\n"))
        return out

    # for the read (SET LOCAL in its transaction):
    # - no parallel workers and no JIT compilation for a plan run once (a batch of 500 accounts crossed jit_above_cost:
    #   ~100 ms of compiling, 6 % of the query); a bill run's parallelism is its batches
    # - the batch's rows sorted in memory (500 x 200 CDRs spilled ~10 MB to temporary files under the default 4 MB)
    # Set back once the read is done: the rest of the caller's transaction (the batch's other reads, a re-bill) plans
    # as usual.  A read that fails aborts the transaction, which drops SET LOCAL anyway.
    _PG_READ = {"max_parallel_workers_per_gather": "0", "jit": "off", "work_mem": "64MB"}
    _PG_READ_SETTINGS = "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in _PG_READ.items())
    _PG_READ_DEFAULTS = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _PG_READ)

    def blocks(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime, stage: str = "") -> list[UsageBlock]:
        """``for_period``'s CDRs as one block per number (engine.billing.usage_blocks): on PostgreSQL each number's CDRs
        come as one row of columns in the database's binary array form and engine.billing.usagecsv writes the block
        (C; the rows, the frozen rows' COPY text and the sums), elsewhere the block is built from the rows.
        ``stage``: read from the run's staged copy of the ledger (``stage``) instead, the same rows."""
        if self.conn.dialect.name != "postgresql":
            return [_with_frozen_row(b) for b in blocks_from_usage(self.for_period(tenant_id, msisdns, since, until))]
        c = self.COLUMNS
        arrays = ", ".join(f"array_send(array_agg(l.{c[name]}))" for name in
                           ("cdr_id", "start_time", "service", "destination", "tariff_plan", "units", "charge_micros", "currency"))
        batch = (f"FROM {stage_name(stage[len(STAGE_PREFIX):]) if stage else self.LEDGER} l WHERE l.tenant_id = %s AND l.{c['start_time']} >= %s AND l.{c['start_time']} < %s "
                 f"AND {self.RATED} AND l.{c['msisdn']} = ANY(%s)")
        # what is billed already comes from the frozen rows of the batch's numbers whose span meets the period (a row
        # per number and bill, not a probe per CDR read), as one array parameter: PostgreSQL hashes a constant array of
        # <> ALL (20,000 ids against 100,000 rows: 0.3 s).  A CDR frozen by another run after this read is found by
        # the check this batch's freeze makes (store.billing.SqlBillingUnitOfWork._write_frozen): the batch is then
        # read again.
        sql = f"SELECT l.{c['msisdn']}, {arrays} {batch} AND l.{c['cdr_id']} <> ALL(%s) GROUP BY l.{c['msisdn']}"
        out: list[UsageBlock] = []
        raw = self.conn.connection.dbapi_connection
        # binary results: the arrays arrive as array_send's bytes, not as text nor as Python values per CDR
        with raw.cursor() as settings, raw.cursor(binary=True) as cur:  # type: ignore[union-attr]
            settings.execute(self._PG_READ_SETTINGS)
            if stage:
                check_stage(settings, stage)
            for i in range(0, len(msisdns), 5 * CHUNK):
                part = list(msisdns[i:i + 5 * CHUNK])
                cur.execute(sql, (tenant_id, since, until, part, self.billed(tenant_id, part, since, until)))
                for r in cur.fetchall():
                    rows, charges, ids, sums = block_text(tenant_id, r[0], r[1:])
                    # sorted as the C sums (their keys are unique, and its start times in microseconds order as the
                    # datetimes do); the block's span from those integers, each time converted once
                    sums.sort()
                    groups = tuple([UsageGroup(p, s, d, cur_, m, n, pg_time(f), pg_time(last)) for p, s, d, cur_, m, n, f, last in sums])
                    first = pg_time(min([g[6] for g in sums])) if sums else NO_START
                    last_ = pg_time(max([g[7] for g in sums])) if sums else NO_START
                    out.append(UsageBlock(r[0], groups, rows, _Frozen(r[0], first, last_, ids, charges)))
            settings.execute(self._PG_READ_DEFAULTS)
        out.sort(key=lambda b: b.msisdn)
        return out

    def by_ids(self, tenant_id: str, cdr_ids: Sequence[str]) -> list[RatedUsage]:
        """The current rated rows of these CDRs (a re-bill's charges); a row re-rated to ``unrated`` is left out."""
        c = self.COLUMNS
        # the SQLite ledger finds CDR ids through the index on their narrow key (store.plans, migrations plans_0005-6)
        keyed = self.conn.dialect.name == "sqlite"
        by_key = f" AND l.{LEDGER_KEY_COLUMN} IN :keys" if keyed else ""
        index = f" INDEXED BY {LEDGER_KEY_INDEX}" if keyed else ""   # SQLite's planner would take the tenant's rows
        sql = text(f"{self._select}{index} WHERE l.tenant_id = :tenant AND {self.RATED} AND l.{c['cdr_id']} IN :ids{by_key}").bindparams(
            *map(_expanding, ("ids", "keys") if keyed else ("ids",)))
        out: list[RatedUsage] = []
        for i in range(0, len(cdr_ids), CHUNK):
            part = list(cdr_ids[i:i + CHUNK])
            params: dict[str, Any] = {"tenant": tenant_id, "ids": part}
            if keyed:
                params["keys"] = [ledger_key(x) for x in part]
            out.extend(self._rows(self.conn.execute(sql, params)))
        return out


def _with_frozen_row(block: UsageBlock) -> UsageBlock:
    """A block built from rows, its (CDR id, charge) pairs as the CDRs to freeze with its number and start times."""
    pairs: Sequence[tuple[str, int]] = block.frozen  # type: ignore[assignment]
    first = min((g.first for g in block.groups), default=NO_START)
    last = max((g.last for g in block.groups), default=NO_START)
    return replace(block, frozen=_Frozen(block.msisdn, first, last, "\n".join(c for c, _m in pairs), "\n".join(str(m) for _c, m in pairs)))


def _utc(value: datetime) -> datetime:
    """An aware time in UTC: SQLite keeps a time's wall clock without its zone, so every time compared there is UTC's."""
    return value.astimezone(timezone.utc)


def _sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores an aware datetime in SQLite (UTC, naive text), for comparisons in plain SQL."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


_PG_TYPES = ((Boolean, "bool"), (BigInteger, "int8"), (Integer, "int4"), (LargeBinary, "bytea"), (DateTime, "timestamptz"),
             (Date, "date"), (Text, "text"), (String, "varchar"))


def _pg_type(sql_type: Any) -> str:
    """The PostgreSQL type name of a column's SQLAlchemy type, for a binary COPY's values."""
    name = next(n for kind, n in _PG_TYPES if isinstance(sql_type, kind))
    return "timestamp" if name == "timestamptz" and not sql_type.timezone else name


def _among_sql(name: str, dialect: str) -> str:
    """:func:`store.repositories.among` in SQL text, for the parameter ``name`` (expanding on SQLite: ``_expanding``)."""
    return f"= ANY(:{name})" if dialect == "postgresql" else f"IN :{name}"


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _account(r: Any) -> Account:
    addr = json.loads(r.address_json)
    return Account(
        r.tenant_id, r.account_id, r.name,
        None if addr is None else Address(tuple(addr["lines"]), addr["city"], addr["postal_code"], addr["country"], addr.get("region", "")),
        r.currency, int(r.anchor_day), r.time_zone, r.language, Delivery(r.delivery), r.email, r.vat_id, r.company_id,
        int(r.payment_terms_days), r.tax_exemption, tuple(d for d in r.discount_plans.split(",") if d), r.buyer_reference,
        AccountStatus(r.status), aware(r.create_time), aware(r.update_time), aware(r.close_time))


def _account_values(a: Account) -> dict[str, Any]:
    addr = None if a.address is None else {"lines": list(a.address.lines), "city": a.address.city, "postal_code": a.address.postal_code,
                                            "country": a.address.country, "region": a.address.region}
    return dict(tenant_id=a.tenant_id, account_id=a.account_id, name=a.name, address_json=json.dumps(addr), currency=a.currency,
                anchor_day=a.anchor_day, time_zone=a.time_zone, language=a.language, delivery=a.delivery.value, email=a.email,
                vat_id=a.vat_id, company_id=a.company_id, payment_terms_days=a.payment_terms_days, tax_exemption=a.tax_exemption,
                discount_plans=",".join(a.discount_plans), buyer_reference=a.buyer_reference, status=a.status.value,
                create_time=a.create_time, update_time=a.update_time, close_time=a.close_time)


def _invoice(r: Any) -> Invoice:
    return Invoice(
        r.invoice_id, r.tenant_id, r.account_id, DocumentKind(r.kind), InvoiceState(r.state), r.number, r.series, r.period_start,
        r.period_end, r.currency, r.issue_date, r.due_date,
        Totals(int(r.line_extension), int(r.allowances), int(r.charges), int(r.tax_exclusive), int(r.tax), int(r.tax_inclusive),
               int(r.prepaid), int(r.payable)),
        int(r.paid_micros), int(r.credited_micros), r.run_id, r.reference_id, r.reason, aware(r.create_time), aware(r.issue_time))


def _invoice_values(i: Invoice) -> dict[str, Any]:
    t = i.totals
    return dict(invoice_id=i.invoice_id, tenant_id=i.tenant_id, account_id=i.account_id, kind=i.kind.value, state=i.state.value,
                number=i.number, series=i.series, period_start=i.period_start, period_end=i.period_end, currency=i.currency,
                issue_date=i.issue_date, due_date=i.due_date, line_extension=t.line_extension, allowances=t.allowances, charges=t.charges,
                tax_exclusive=t.tax_exclusive, tax=t.tax, tax_inclusive=t.tax_inclusive, prepaid=t.prepaid, payable=t.payable,
                paid_micros=i.paid_micros, credited_micros=i.credited_micros, run_id=i.run_id, reference_id=i.reference_id,
                reason=i.reason, create_time=i.create_time, issue_time=i.issue_time)


def _run(r: Any) -> BillRun:
    return BillRun(r.run_id, r.tenant_id, RunMode(r.mode), r.cycle_date, tuple(json.loads(r.account_ids)), bool(r.dry_run), bool(r.review),
                   RunState(r.state), r.requested_by, aware(r.start_time), aware(r.end_time), int(r.total), int(r.issued),
                   int(r.drafts), int(r.empty), int(r.skipped), int(r.failed), tuple(tuple(x) for x in json.loads(r.failures_json)),
                   bool(r.interim))


def _run_values(run: BillRun) -> dict[str, Any]:
    return dict(run_id=run.run_id, tenant_id=run.tenant_id, mode=run.mode.value, cycle_date=run.cycle_date,
                account_ids=json.dumps(list(run.account_ids)), dry_run=run.dry_run, review=run.review, state=run.state.value,
                requested_by=run.requested_by, start_time=run.start_time, end_time=run.end_time, total=run.total, issued=run.issued,
                drafts=run.drafts, empty=run.empty, skipped=run.skipped, failed=run.failed,
                failures_json=json.dumps([list(f) for f in run.failures[-1000:]]), interim=run.interim)


# the rest of the transaction TOASTs long values with LZ4 where the server has it (PostgreSQL 14+ built with lz4; else
# nothing changes).  A frozen batch's lists of CDR ids (~6.6 kB an invoice of 200 random hex ids) and the invoices'
# documents and bills (deflated already) do not shrink: the default pglz tried the whole list before giving up, ~2.5x
# the backend time of the lists' COPY (2,000 lists: 510-645 ms against 195-270 ms with lz4, or with no compression at
# all).  Readers decompress either kind.
# the class of billing_frozen_usage's per-number advisory locks (pg_advisory_xact_lock(class, hash of tenant and number))
_FREEZE_LOCKS = 0x62696C6C   # "bill"
_LZ4_IN_TRANSACTION = ("SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
                       "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")


class SqlBillingUnitOfWork:
    """One transaction over the billing tables (and read-only views of subscribers, audit, ledger, vouchers)."""

    def __init__(self, factory: SqlUnitOfWorkFactory, read_only: bool) -> None:
        self._inner = factory(read_only=read_only)

    def __enter__(self) -> "SqlBillingUnitOfWork":
        self._inner.__enter__()
        return self._on_session()

    def _on_session(self) -> "SqlBillingUnitOfWork":
        self.s = self._inner.session
        self.audit: AuditRepo = self._inner.audit
        self.dialect = self.s.get_bind().dialect.name
        self.add_ons = SqlAddOns(self.s)
        return self

    @classmethod
    def joined(cls, inner: Any) -> "SqlBillingUnitOfWork":
        """The billing tables on a platform unit of work already open (the subscriber desk's): its transaction, its commit."""
        unit = cls.__new__(cls)
        unit._inner = inner
        return unit._on_session()

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def commit(self) -> None:
        self._inner.commit()

    def _conn(self) -> Connection:
        return self.s.connection()

    # -- accounts ---------------------------------------------------------------------------
    def get_account(self, tenant_id: str, account_id: str, lock: bool = False) -> Account | None:
        q = select(billing_accounts).where(and_(billing_accounts.c.tenant_id == tenant_id, billing_accounts.c.account_id == account_id))
        if lock and self.dialect == "postgresql":
            q = q.with_for_update()   # held to the commit (SQLite: the transaction holds the write lock from BEGIN IMMEDIATE)
        r = self.s.execute(q).first()
        return _account(r) if r else None

    def add_account(self, account: Account) -> None:
        try:
            with self.s.begin_nested():
                self.s.execute(insert(billing_accounts).values(**_account_values(account)))
        except UNIQUE_KEY_BROKEN:
            # created by a request that checked the id at the same time as this one
            raise AlreadyExists("account", account.account_id) from None

    def update_account(self, account: Account) -> None:
        self.s.execute(update(billing_accounts).where(and_(billing_accounts.c.tenant_id == account.tenant_id,
                                                           billing_accounts.c.account_id == account.account_id))
                       .values(**_account_values(account)))

    def close_account(self, tenant_id: str, account_id: str, when: datetime) -> bool:
        t = billing_accounts
        result = self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.account_id == account_id,
                                                     t.c.status.in_((AccountStatus.ACTIVE.value, AccountStatus.CLOSING.value))))
                                .values(status=AccountStatus.CLOSED.value, close_time=when, update_time=when))
        return int(getattr(result, "rowcount", 0)) == 1

    def list_accounts(self, tenant_ids: set[str] | None, after: Any, limit: int) -> list[Account]:
        t = billing_accounts
        q = select(t).order_by(t.c.tenant_id, t.c.account_id).limit(limit)
        if tenant_ids is not None:
            q = q.where(t.c.tenant_id.in_(sorted(tenant_ids)))
        if after is not None:
            tenant, account = after
            q = q.where(or_(t.c.tenant_id > tenant, and_(t.c.tenant_id == tenant, t.c.account_id > account)))
        return [_account(r) for r in self.s.execute(q)]

    def active_accounts(self, tenant_id: str, account_ids: Sequence[str] | None) -> list[Account]:
        t = billing_accounts
        base = select(t).where(and_(t.c.tenant_id == tenant_id, t.c.status == AccountStatus.ACTIVE.value)).order_by(t.c.account_id)
        if account_ids is None:
            return [_account(r) for r in self.s.execute(base)]
        out: list[Account] = []
        ids = list(account_ids)
        for i in range(0, len(ids), CHUNK):
            out.extend(_account(r) for r in self.s.execute(base.where(among(t.c.account_id, ids[i:i + CHUNK], self.dialect))))
        return out

    def assignments(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, list[Assignment]]:
        t = billing_assignments
        out: dict[str, list[Assignment]] = defaultdict(list)
        ids = list(account_ids)
        for i in range(0, len(ids), CHUNK):
            q = select(t).where(and_(t.c.tenant_id == tenant_id, among(t.c.account_id, ids[i:i + CHUNK], self.dialect))).order_by(t.c.valid_from)
            for r in self.s.execute(q):
                out[r.account_id].append(Assignment(r.tenant_id, r.account_id, r.subscriber_id, r.msisdn, aware(r.valid_from),
                                                    aware(r.valid_to)))
        return dict(out)

    def open_assignment(self, tenant_id: str, subscriber_id: str) -> Assignment | None:
        t = billing_assignments
        r = self.s.execute(select(t).where(and_(t.c.tenant_id == tenant_id, t.c.subscriber_id == subscriber_id, t.c.valid_to.is_(None)))).first()
        return None if r is None else Assignment(r.tenant_id, r.account_id, r.subscriber_id, r.msisdn, aware(r.valid_from))

    def add_assignment(self, a: Assignment) -> None:
        try:
            with self.s.begin_nested():
                self.s.execute(insert(billing_assignments).values(tenant_id=a.tenant_id, subscriber_id=a.subscriber_id,
                                                                  valid_from=a.valid_from, account_id=a.account_id, msisdn=a.msisdn,
                                                                  valid_to=a.valid_to))
        except UNIQUE_KEY_BROKEN:
            # uq_billing_assignments_open or the key: another assignment of the subscriber was written meanwhile
            raise FailedPrecondition("ASSIGNMENT_CHANGED", f"subscriber {a.subscriber_id} was assigned by another request at the same "
                                                           "time: read its accounts and try again", a.subscriber_id) from None

    def end_assignment(self, a: Assignment, valid_to: datetime) -> None:
        t = billing_assignments
        self.s.execute(update(t).where(and_(t.c.tenant_id == a.tenant_id, t.c.subscriber_id == a.subscriber_id,
                                            t.c.valid_from == a.valid_from)).values(valid_to=valid_to))

    def subscriber(self, subscriber_id: str, lock: bool = False) -> SubscriberFacts | None:
        from store.tables import SubscriberRow

        # lock: FOR NO KEY UPDATE (rows that only reference the subscriber go on being written)
        row = self.s.get(SubscriberRow, subscriber_id, with_for_update={"key_share": True} if lock and self.dialect == "postgresql" else None)
        if row is None:
            return None
        return self.subscriber_facts(row.tenant_id, [subscriber_id]).get(subscriber_id)

    def subscriber_facts(self, tenant_id: str, subscriber_ids: Sequence[str]) -> dict[str, SubscriberFacts]:
        """Subscribers as billing sees them; plan history from the audit log (each ``subscriber.change_plan`` entry is
        written in the transaction that changed the plan, with the plan before and after)."""
        from store.tables import AuditRow, SubscriberRow

        out: dict[str, SubscriberFacts] = {}
        ids = list(subscriber_ids)
        sub = SubscriberRow.__table__  # type: ignore[attr-defined]
        aud = AuditRow.__table__  # type: ignore[attr-defined]
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            rows = list(self.s.execute(select(sub).where(and_(sub.c.tenant_id == tenant_id, among(sub.c.subscriber_id, part, self.dialect)))))
            changes: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
            q = select(aud.c.object_id, aud.c.time, aud.c.before_json, aud.c.after_json).where(and_(
                aud.c.object_type == "subscriber", among(aud.c.object_id, part, self.dialect), aud.c.action == "subscriber.change_plan")).order_by(aud.c.sequence)
            for r in self.s.execute(q):
                before, after = json.loads(r.before_json), json.loads(r.after_json)
                if "tariff_plan" in after:
                    changes[r.object_id].append((aware(r.time), before.get("tariff_plan", ""), after["tariff_plan"]))
            for r in rows:
                history = changes.get(r.subscriber_id, [])
                first_plan = history[0][1] if history else r.tariff_plan
                plans = [(aware(r.create_time), first_plan)] + [(when, new) for when, _old, new in history]
                out[r.subscriber_id] = SubscriberFacts(r.subscriber_id, r.tenant_id, r.msisdn, aware(r.activate_time),
                                                       aware(r.deactivate_time), tuple(plans), r.payment_type == "postpaid")
        if out:   # monthly add-ons: their fees are the bill run's (engine.billing.fees)
            for p in self.add_ons.monthly_of(tenant_id, list(out)):
                f = out[p.subscriber_id]
                out[p.subscriber_id] = replace(f, add_ons=f.add_ons + ((p.bundle_id, p.valid_from, p.ends),))
        return out

    # -- usage --------------------------------------------------------------------------------
    def unbilled_usage(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime) -> list[RatedUsage]:
        return SqlRatedUsage(self._conn()).for_period(tenant_id, msisdns, since, until)

    def usage_blocks(self, tenant_id: str, msisdns: Sequence[str], since: datetime, until: datetime, stage: str = "") -> list[UsageBlock]:
        return SqlRatedUsage(self._conn()).blocks(tenant_id, msisdns, since, until, stage)

    def stage_usage(self, tenant_id: str, run_id: str, since: datetime, until: datetime, shares: int) -> str:
        """A large run's usage staged once (store.usage_stage) for ``usage_blocks(stage=...)``; "" where nothing is staged.
        On connections of their own (the engine's, not this unit's: its work is committed as it goes)."""
        if self.dialect != "postgresql":
            return ""
        u = SqlRatedUsage
        return create_stage(self.s.get_bind(), u.COLUMNS, u.LEDGER, u.RATED, tenant_id, run_id, since, until, shares)

    def drop_usage_stage(self, stage: str) -> None:
        drop_stage(self.s.get_bind(), stage)

    def freeze_blocks(self, tenant_id: str, blocks: Sequence[tuple[str, object]]) -> None:
        """Freeze the CDRs of blocks read by ``usage_blocks``: (invoice id, UsageBlock.frozen); an invoice may have
        several blocks (one per number).  On PostgreSQL a block's frozen CDRs come as the read wrote them
        (:class:`_Frozen`), elsewhere as (CDR id, charge) pairs with the block's number and start times."""
        packs = [(invoice_id, f) for invoice_id, f in blocks if isinstance(f, _Frozen)]
        rows = [(cdr_id, invoice_id, charge) for invoice_id, f in blocks if not isinstance(f, _Frozen)
                for cdr_id, charge in f]  # type: ignore[attr-defined]
        if rows:
            self.freeze_usage(tenant_id, rows)
        self._write_frozen(tenant_id, packs)

    def freeze_usage(self, tenant_id: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Freeze CDRs: (CDR id, invoice id, charge[, number, start time]); the usage ledger is asked for the number
        and start time of rows without them (a CDR it does not have goes under the number '')."""
        if not rows:
            return
        ids = [r[0] for r in rows]
        if len(set(ids)) != len(ids):
            raise AlreadyExists("billed CDR", f"one of {len(rows)} CDRs is twice among them")
        where: dict[str, tuple[str, datetime]] = {}
        bare = [r[0] for r in rows if len(r) < 5]
        if bare:
            where = {u.cdr_id: (u.msisdn, u.start_time) for u in SqlRatedUsage(self._conn()).by_ids(tenant_id, bare)}
        grouped: dict[tuple[str, str], list[tuple[datetime, str, int]]] = defaultdict(list)
        for r in rows:
            msisdn, start = (r[3], r[4]) if len(r) >= 5 else where.get(r[0], ("", NO_START))
            grouped[(r[1], msisdn)].append((start, r[0], int(r[2])))
        packs = []
        for (invoice_id, msisdn), cdrs in grouped.items():
            starts = [c[0] for c in cdrs]
            packs.append((invoice_id, _Frozen(msisdn, min(starts), max(starts), "\n".join(c[1] for c in cdrs),
                                              "\n".join(str(c[2]) for c in cdrs))))
        self._write_frozen(tenant_id, packs)

    def _write_frozen(self, tenant_id: str, packs: Sequence[tuple[str, _Frozen]]) -> None:
        """billing_frozen_usage rows, after checking that none of their CDRs is frozen already (AlreadyExists then).

        The check reads the rows of the same numbers whose span meets these ones' (a bill run's first freeze of a
        period finds none); on PostgreSQL each number's lock (an advisory lock held to the commit, taken in one
        order) keeps a concurrent freeze of the same numbers from passing the same check before this one commits."""
        if not packs:
            return
        numbers = sorted({f.msisdn for _i, f in packs})
        packs = [(i, f._replace(first_start=_utc(f.first_start), last_start=_utc(f.last_start))) for i, f in packs]
        low, high = min(f.first_start for _i, f in packs), max(f.last_start for _i, f in packs)
        conn = self._conn()
        raw = conn.connection.dbapi_connection
        if self.dialect == "postgresql":
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute("SELECT pg_advisory_xact_lock(%s, k) FROM (SELECT DISTINCT hashtext(%s || chr(9) || n) AS k "
                            "FROM unnest(%s::text[]) n ORDER BY 1 OFFSET 0) s", (_FREEZE_LOCKS, tenant_id, numbers))
        t = billing_frozen_usage
        billed: set[str] = set()
        for i in range(0, len(numbers), 5 * CHUNK):
            q = select(t.c.cdr_ids).where(and_(t.c.tenant_id == tenant_id, among(t.c.msisdn, numbers[i:i + 5 * CHUNK], self.dialect),
                                               t.c.last_start >= low, t.c.first_start <= high))
            for (ids,) in conn.execute(q):
                billed.update(ids.split("\n"))
        if billed:
            twice = next((c for _i, f in packs for c in f.ids.split("\n") if c in billed), None)
            if twice is not None:
                raise AlreadyExists("billed CDR", twice)
        values = [(tenant_id, invoice_id, f.msisdn, f.first_start, f.last_start, f.ids, f.charges) for invoice_id, f in packs]
        if self.dialect == "postgresql":
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(_LZ4_IN_TRANSACTION)
                with cur.copy("COPY billing_frozen_usage (tenant_id, invoice_id, msisdn, first_start, last_start, cdr_ids, charges) "
                              "FROM STDIN") as cp:
                    for v in values:
                        cp.write_row(v)
            return
        conn.execute(insert(t), [dict(zip(("tenant_id", "invoice_id", "msisdn", "first_start", "last_start", "cdr_ids", "charges"), v))
                                 for v in values])

    def _packs(self, invoice_id: str) -> list[Any]:
        t = billing_frozen_usage
        return list(self.s.execute(select(t).where(t.c.invoice_id == invoice_id)))

    def usage_by_ids(self, tenant_id: str, cdr_ids: Sequence[str]) -> list[RatedUsage]:
        return SqlRatedUsage(self._conn()).by_ids(tenant_id, cdr_ids)

    def frozen_usage(self, invoice_id: str) -> list[tuple[str, int]]:
        return [(c, int(m)) for r in self._packs(invoice_id) for c, m in zip(r.cdr_ids.split("\n"), r.charges.split("\n"))]

    def move_frozen_usage(self, from_invoice: str, to_invoice: str, rows: Sequence[tuple[str, int]]) -> None:
        """A re-bill's move: these CDRs of ``from_invoice`` go to ``to_invoice`` with their new charges (each keeps
        its number and the span of the row it was in); the others stay."""
        charges = dict(rows)
        t = billing_frozen_usage
        moved: list[tuple[str, _Frozen]] = []
        for r in self._packs(from_invoice):
            pairs = list(zip(r.cdr_ids.split("\n"), r.charges.split("\n")))
            going = [(c, charges[c]) for c, _m in pairs if c in charges]
            if not going:
                continue
            staying = [(c, m) for c, m in pairs if c not in charges]
            first, last = aware(r.first_start), aware(r.last_start)
            key = and_(t.c.invoice_id == from_invoice, t.c.tenant_id == r.tenant_id, t.c.msisdn == r.msisdn, t.c.cdr_ids == r.cdr_ids)
            if staying:
                self.s.execute(update(t).where(key).values(cdr_ids="\n".join(c for c, _m in staying),
                                                           charges="\n".join(m for _c, m in staying)))
            else:
                self.s.execute(delete(t).where(key))
            moved.append((r.tenant_id, _Frozen(r.msisdn, first, last, "\n".join(c for c, _m in going), "\n".join(str(m) for _c, m in going))))
        if moved:
            # the CDRs were frozen (for the invoice moved from): no check to make, the same rows' CDRs again
            self.s.execute(insert(t), [dict(tenant_id=tenant, invoice_id=to_invoice, msisdn=f.msisdn, first_start=f.first_start,
                                            last_start=f.last_start, cdr_ids=f.ids, charges=f.charges) for tenant, f in moved])

    # -- one-off charges ------------------------------------------------------------------------
    @staticmethod
    def _charge(r: Any) -> OneOffCharge:
        return OneOffCharge(r.charge_id, r.tenant_id, r.account_id, r.code, r.description, int(r.amount_micros), r.currency, r.tax_category,
                            r.charge_date, r.subscriber_id, r.raised_by, r.invoice_id)

    def pending_charges(self, tenant_id: str, account_ids: Sequence[str], before: date, drafts: bool = False) -> list[OneOffCharge]:
        t, inv = billing_charges, billing_invoices
        out: list[OneOffCharge] = []
        ids = list(account_ids)
        # ``drafts``: one statement, so a draft issued or discarded meanwhile neither hides its charges nor counts them twice
        free = or_(t.c.invoice_id == "", t.c.invoice_id.in_(select(inv.c.invoice_id).where(and_(
            inv.c.tenant_id == tenant_id, inv.c.state == InvoiceState.DRAFT.value)))) if drafts else t.c.invoice_id == ""
        for i in range(0, len(ids), CHUNK):
            q = select(t).where(and_(t.c.tenant_id == tenant_id, among(t.c.account_id, ids[i:i + CHUNK], self.dialect), free,
                                     t.c.charge_date < before))
            out.extend(self._charge(r) for r in self.s.execute(q))
        return out

    def charges_of(self, invoice_id: str) -> list[OneOffCharge]:
        return [self._charge(r) for r in self.s.execute(select(billing_charges).where(billing_charges.c.invoice_id == invoice_id))]

    def add_charge(self, c: OneOffCharge) -> None:
        self.s.execute(insert(billing_charges).values(
            charge_id=c.charge_id, tenant_id=c.tenant_id, account_id=c.account_id, subscriber_id=c.subscriber_id, code=c.code,
            description=c.description, amount_micros=c.amount_micros, currency=c.currency, tax_category=c.tax_category,
            charge_date=c.charge_date, raised_by=c.raised_by, invoice_id=c.invoice_id))

    def mark_charges(self, tenant_id: str, charge_ids: Sequence[str], invoice_id: str) -> None:
        t = billing_charges
        self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.charge_id.in_(list(charge_ids)))).values(invoice_id=invoice_id))

    # -- what the previous bill charged in advance ----------------------------------------------------
    def advance_fees(self, tenant_id: str, account_ids: Sequence[str], period_start: date,
                     exclude_invoice: str = "") -> list[tuple[str, str, str, str, int]]:
        ln, inv = billing_invoice_lines, billing_invoices
        out: list[tuple[str, str, str, str, int]] = []
        ids = list(account_ids)
        for i in range(0, len(ids), CHUNK):
            q = (select(ln.c.account_id, ln.c.subscriber_id, ln.c.charge_type, ln.c.item_id, ln.c.amount_micros)
                 .select_from(ln.join(inv, inv.c.invoice_id == ln.c.invoice_id))
                 .where(and_(ln.c.tenant_id == tenant_id, among(ln.c.account_id, ids[i:i + CHUNK], self.dialect), ln.c.period_start == period_start,
                             ln.c.advance.is_(True), inv.c.kind == DocumentKind.INVOICE.value,
                             inv.c.state != InvoiceState.CREDITED.value, inv.c.invoice_id != exclude_invoice)))
            out.extend((r[0], r[1], r[2], r[3], int(r[4])) for r in self.s.execute(q))
        return out

    # -- payments on account ------------------------------------------------------------------------
    def credits(self, tenant_id: str, account_ids: Sequence[str], currency: str) -> dict[str, list[tuple[str, int]]]:
        """Per account: its positive balance (``balance``), then each voucher recharge of its subscribers not used yet."""
        t = billing_ledger
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        ids = list(account_ids)
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            q = (select(t.c.account_id, func.sum(t.c.amount_micros)).where(and_(t.c.tenant_id == tenant_id, among(t.c.account_id, part, self.dialect),
                                                                               t.c.currency == currency)).group_by(t.c.account_id))
            for account_id, total in self.s.execute(q):
                if total and int(total) > 0:
                    out[account_id].append(("balance", int(total)))
            if self._has_table("voucher_redemptions"):
                sql = text("SELECT a.account_id, r.request_id, r.credited_micros FROM billing_assignments a JOIN voucher_redemptions r "
                           "ON r.msisdn = a.msisdn AND r.tenant_id = a.tenant_id AND r.redeemed_at >= a.valid_from "
                           "AND (a.valid_to IS NULL OR r.redeemed_at < a.valid_to) "
                           f"WHERE a.tenant_id = :tenant AND a.account_id {_among_sql('ids', self.dialect)} AND r.currency = :currency "
                           "AND NOT EXISTS (SELECT 1 FROM billing_ledger g WHERE g.tenant_id = a.tenant_id "
                           "AND g.source = 'voucher:' || r.request_id) ORDER BY r.redeemed_at")
                if self.dialect != "postgresql":
                    sql = sql.bindparams(_expanding("ids"))
                for account_id, request_id, micros in self.s.execute(sql, {"tenant": tenant_id, "ids": part, "currency": currency}):
                    out[account_id].append((f"voucher:{request_id}", int(micros)))
        return dict(out)

    def _has_table(self, name: str) -> bool:
        from sqlalchemy import inspect

        return name in inspect(self._conn()).get_table_names()

    def add_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        for e in entries:
            try:
                with self.s.begin_nested():
                    self.s.execute(insert(billing_ledger).values(tenant_id=e.tenant_id, source=e.source, account_id=e.account_id,
                                                                 amount_micros=e.amount_micros, currency=e.currency, time=e.time,
                                                                 invoice_id=e.invoice_id))
            except IntegrityError:
                raise AlreadyExists("ledger entry", e.source, f"{e.source} is recorded already") from None

    def bundle_use(self, tenant_id: str, msisdns: Sequence[str], cycles: Sequence[str]) -> list[BundleUse]:
        """Allowance and use of each subscriber's bundles in these bill cycles (rating's counters, keyed by the month
        the cycle started in)."""
        if not self._has_table("bundle_counters"):
            return []
        sql = text("SELECT msisdn, cycle, bundle_id, allowance, remaining, unit FROM bundle_counters WHERE tenant_id = :tenant "
                   f"AND msisdn {_among_sql('msisdns', self.dialect)} AND cycle IN :cycles ORDER BY msisdn, cycle, bundle_id")
        sql = sql.bindparams(_expanding("cycles")) if self.dialect == "postgresql" else sql.bindparams(_expanding("msisdns"), _expanding("cycles"))
        out: list[BundleUse] = []
        ids = list(msisdns)
        for i in range(0, len(ids), CHUNK):
            for r in self.s.execute(sql, {"tenant": tenant_id, "msisdns": ids[i:i + CHUNK], "cycles": list(cycles)}):
                out.append(BundleUse("", r.msisdn, r.bundle_id, f"{r.bundle_id} ({r.cycle})", "", int(r.allowance),
                                     int(r.allowance) - int(r.remaining), r.unit, r.cycle))
        # add-ons bought in these cycles (engine.billing.addons): on the bill of the cycle they were bought in
        for msisdn, cycle, bundle, until, allowance, remaining, unit, monthly in self.add_ons.bundle_use(tenant_id, ids, list(cycles)):
            out.append(BundleUse("", msisdn, bundle, add_on_use_name(bundle, until, monthly), "", allowance, allowance - remaining, unit,
                                 cycle))
        return out

    # -- periods, numbers, invoices ----------------------------------------------------------------
    @staticmethod
    def _claim(r: Any) -> PeriodClaim:
        return PeriodClaim(r.tenant_id, r.account_id, r.period_start, r.period_end, PeriodStatus(r.status), r.invoice_id, r.run_id)

    def claims(self, tenant_id: str, account_ids: Sequence[str], period_starts: Sequence[date]) -> dict[tuple[str, date], PeriodClaim]:
        t = billing_periods
        out: dict[tuple[str, date], PeriodClaim] = {}
        ids = list(account_ids)
        if not period_starts:
            return out
        for i in range(0, len(ids), CHUNK):
            q = select(t).where(and_(t.c.tenant_id == tenant_id, among(t.c.account_id, ids[i:i + CHUNK], self.dialect),
                                     t.c.period_start.in_(list(period_starts))))
            for r in self.s.execute(q):
                out[(r.account_id, r.period_start)] = self._claim(r)
        return out

    def last_claims(self, tenant_id: str, account_ids: Sequence[str]) -> dict[str, PeriodClaim]:
        t = billing_periods
        out: dict[str, PeriodClaim] = {}
        ids = list(account_ids)
        for i in range(0, len(ids), CHUNK):
            q = select(t).where(and_(t.c.tenant_id == tenant_id, among(t.c.account_id, ids[i:i + CHUNK], self.dialect))).order_by(t.c.period_start)
            for r in self.s.execute(q):
                out[r.account_id] = self._claim(r)  # the latest start wins
        return out

    def claim(self, claims: Sequence[PeriodClaim]) -> None:
        if not claims:
            return
        rows = [dict(tenant_id=c.tenant_id, account_id=c.account_id, period_start=c.period_start, period_end=c.period_end,
                     status=c.status.value, invoice_id=c.invoice_id, run_id=c.run_id) for c in claims]
        try:
            with self.s.begin_nested():
                if self.dialect == "postgresql":
                    # a batch's claims in one COPY (SQLAlchemy's multi-row insert: ~0.3 ms a claim in a profile)
                    self._copy(billing_periods, rows)
                else:
                    self.s.execute(insert(billing_periods), rows)
        except UNIQUE_KEY_BROKEN:
            # the unique key: another run (or this one, before a crash) claimed one of these periods first (the COPY
            # raises the driver's error, the insert SQLAlchemy's)
            raise AlreadyExists("billing period", "claimed by another run") from None

    def update_claim_status(self, tenant_id: str, account_id: str, period_start: date, status: PeriodStatus) -> None:
        t = billing_periods
        self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.account_id == account_id, t.c.period_start == period_start))
                       .values(status=status.value))

    def repoint_claim(self, tenant_id: str, account_id: str, period_start: date, invoice_id: str) -> None:
        t = billing_periods
        self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.account_id == account_id, t.c.period_start == period_start))
                       .values(invoice_id=invoice_id))

    def take_numbers(self, tenant_id: str, series: str, count: int) -> int:
        t = billing_series
        key = and_(t.c.tenant_id == tenant_id, t.c.series == series)
        q = select(t.c.next_number).where(key)
        if self.dialect == "postgresql":
            q = q.with_for_update()
        row = self.s.execute(q).first()
        if row is None:
            try:
                with self.s.begin_nested():
                    self.s.execute(insert(t).values(tenant_id=tenant_id, series=series, next_number=1))
            except IntegrityError:
                pass  # created by a concurrent transaction: read it (and lock it) below
            row = self.s.execute(q).first()
        assert row is not None
        first = int(row[0])
        self.s.execute(update(t).where(key).values(next_number=first + count))
        return first

    def add_invoices(self, bills: Sequence[StoredBill]) -> None:
        if not bills:
            return
        rows: list[dict[str, Any]] = []
        for b in bills:
            values = _invoice_values(b.invoice)
            values["bill"] = b.bill
            values["document"] = compress(b.document) if b.document is not None else None
            rows.append(values)

        def lines() -> list[tuple[Any, ...]]:
            # the lines as row tuples only where they go so (SQLite; a value COPY's text format would escape)
            return [_line_row(b.invoice, ln) for b in bills for ln in b.invoice.lines]

        if self.dialect == "postgresql":
            self._copy(billing_invoices, rows, binary=True)
            text = _lines_copy_text([b.invoice for b in bills])
            if text is None:
                self._copy_rows(billing_invoice_lines, lines())
            elif text:
                self._copy_text(billing_invoice_lines, text)
            return
        self.s.execute(insert(billing_invoices), rows)
        if rows_of_lines := lines():
            names = [c.name for c in billing_invoice_lines.columns]
            self.s.execute(insert(billing_invoice_lines), [dict(zip(names, line)) for line in rows_of_lines])

    def _copy(self, table: Table, rows: Sequence[dict[str, Any]], binary: bool = False) -> None:
        """PostgreSQL COPY of dict rows (a bill run batch's invoices and lines: one round trip, no per-row statement)."""
        if not rows:
            return
        names = [c.name for c in table.columns]
        self._copy_rows(table, [[row.get(n) for n in names] for row in rows], binary)

    def _copy_rows(self, table: Table, rows: Sequence[Sequence[Any]], binary: bool = False) -> None:
        """PostgreSQL COPY of rows with the table's columns in order (an invoice's lines: no dict per line).

        ``binary``: in COPY's binary format -- the invoices' bills and documents (~15 kB of deflated bytes each) then
        go as they are, not as hex text that psycopg writes and the server decodes again."""
        if not rows:
            return
        raw = self._conn().connection.dbapi_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {table.name} ({', '.join(c.name for c in table.columns)}) FROM STDIN"
                          + (" (FORMAT BINARY)" if binary else "")) as cp:
                if binary:
                    cp.set_types([_pg_type(c.type) for c in table.columns])
                for row in rows:
                    cp.write_row(row)

    def _copy_text(self, table: Table, text: str) -> None:
        """PostgreSQL COPY of rows already in COPY's text format, the table's columns in order."""
        raw = self._conn().connection.dbapi_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {table.name} ({', '.join(c.name for c in table.columns)}) FROM STDIN") as cp:
                cp.write(text.encode("utf-8"))

    def _stored(self, r: Any) -> StoredBill:
        from dataclasses import replace

        from engine.billing.codec import line_from, unpack

        bill = bytes(r.bill)
        lines = tuple(line_from(x) for x in unpack(bill)["lines"])
        return StoredBill(replace(_invoice(r), lines=lines), bill, zlib.decompress(r.document) if r.document is not None else None)

    def get_invoice(self, tenant_id: str, invoice_id: str, lock: bool = False) -> StoredBill | None:
        t = billing_invoices
        by_id = select(t).where(and_(t.c.tenant_id == tenant_id, t.c.invoice_id == invoice_id))
        by_number = select(t).where(and_(t.c.tenant_id == tenant_id, t.c.number == invoice_id, t.c.number != ""))
        if lock and self.dialect == "postgresql":
            # the row as it is once locked: a credit note or payment committed meanwhile is in it (READ COMMITTED
            # reads again after the wait); SQLite's writer holds the database from BEGIN IMMEDIATE
            by_id, by_number = by_id.with_for_update(), by_number.with_for_update()
        r = self.s.execute(by_id).first()
        if r is None:
            r = self.s.execute(by_number).first()
        return self._stored(r) if r else None

    def find_invoice(self, invoice_id: str) -> StoredBill | None:
        r = self.s.execute(select(billing_invoices).where(billing_invoices.c.invoice_id == invoice_id)).first()
        return self._stored(r) if r else None

    def update_invoice(self, invoice: Invoice, document: bytes | None = None, bill: bytes | None = None,
                       was: InvoiceState | None = None) -> bool:
        values = _invoice_values(invoice)
        if document is not None:
            values["document"] = compress(document)
        if bill is not None:
            values["bill"] = bill
        t = billing_invoices
        q = update(t).where(t.c.invoice_id == invoice.invoice_id)
        if was is not None:
            q = q.where(t.c.state == was.value)
        return int(getattr(self.s.execute(q.values(**values)), "rowcount", 0)) == 1

    def delete_draft(self, invoice: Invoice) -> bool:
        i = invoice.invoice_id
        gone = self.s.execute(delete(billing_invoices).where(and_(billing_invoices.c.invoice_id == i,
                                                                  billing_invoices.c.state == InvoiceState.DRAFT.value)))
        if int(getattr(gone, "rowcount", 0)) != 1:
            return False   # issued (or discarded) meanwhile: nothing of it is touched
        # its own claim only: the period may be claimed again by a later run's draft once this one is gone
        self.s.execute(delete(billing_periods).where(and_(billing_periods.c.tenant_id == invoice.tenant_id,
                                                          billing_periods.c.account_id == invoice.account_id,
                                                          billing_periods.c.period_start == invoice.period_start,
                                                          billing_periods.c.invoice_id == i)))
        self.s.execute(delete(billing_frozen_usage).where(and_(billing_frozen_usage.c.invoice_id == i,
                                                               billing_frozen_usage.c.tenant_id == invoice.tenant_id)))
        self.s.execute(update(billing_charges).where(billing_charges.c.invoice_id == i).values(invoice_id=""))
        self.s.execute(delete(billing_ledger).where(billing_ledger.c.invoice_id == i))
        self.s.execute(delete(billing_invoice_lines).where(billing_invoice_lines.c.invoice_id == i))
        return True

    def due_unpaid(self, today: date) -> list[Invoice]:
        t = billing_invoices
        cols = [c for c in t.c if c.name not in ("bill", "document")]
        # an invoice of zero or less asks nothing of the customer (a final bill that gives back fees paid in advance)
        q = select(*cols).where(and_(t.c.kind == DocumentKind.INVOICE.value, t.c.due_date < today, t.c.payable > 0,
                                     t.c.state.in_([InvoiceState.ISSUED.value, InvoiceState.PARTIALLY_PAID.value])))
        return [_invoice(r) for r in self.s.execute(q)]

    def mark_overdue(self, today: date) -> int:
        t = billing_invoices
        result = self.s.execute(update(t).where(and_(t.c.kind == DocumentKind.INVOICE.value, t.c.due_date < today, t.c.payable > 0,
                                                     t.c.state.in_([InvoiceState.ISSUED.value, InvoiceState.PARTIALLY_PAID.value])))
                                .values(state=InvoiceState.OVERDUE.value))
        return int(getattr(result, "rowcount", 0))

    def list_invoices(self, flt: InvoiceFilter, after: Any, limit: int) -> list[Invoice]:
        t = billing_invoices
        cols = [c for c in t.c if c.name not in ("bill", "document")]
        q = select(*cols).order_by(t.c.tenant_id, t.c.invoice_id).limit(limit)
        if flt.tenant_ids is not None:
            q = q.where(t.c.tenant_id.in_(sorted(flt.tenant_ids)))
        if flt.account_id:
            q = q.where(t.c.account_id == flt.account_id)
        if flt.state is not None:
            q = q.where(t.c.state == flt.state.value)
        if flt.kind:
            q = q.where(t.c.kind == flt.kind)
        if flt.run_id:
            q = q.where(t.c.run_id == flt.run_id)
        if flt.states is not None:
            q = q.where(t.c.state.in_(sorted(s.value for s in flt.states)))
        if flt.touching is not None:
            q = q.where(t.c.period_end >= flt.touching[0], t.c.period_start <= flt.touching[1])
        if after is not None:
            tenant, invoice = after
            q = q.where(or_(t.c.tenant_id > tenant, and_(t.c.tenant_id == tenant, t.c.invoice_id > invoice)))
        return [_invoice(r) for r in self.s.execute(q)]

    def credited_lines(self, invoice_id: str) -> dict[str, int]:
        ln, inv = billing_invoice_lines, billing_invoices
        q = (select(ln.c.ref_line_id, func.sum(ln.c.amount_micros)).select_from(ln.join(inv, inv.c.invoice_id == ln.c.invoice_id))
             .where(and_(inv.c.reference_id == invoice_id, inv.c.kind == DocumentKind.CREDIT_NOTE.value)).group_by(ln.c.ref_line_id))
        return {r[0]: int(r[1]) for r in self.s.execute(q)}

    # -- runs -----------------------------------------------------------------------------------
    def add_run(self, run: BillRun) -> None:
        self.s.execute(insert(billing_runs).values(**_run_values(run)))

    def get_run(self, run_id: str) -> BillRun | None:
        r = self.s.execute(select(billing_runs).where(billing_runs.c.run_id == run_id)).first()
        return _run(r) if r else None

    def update_run(self, run: BillRun) -> None:
        self.s.execute(update(billing_runs).where(billing_runs.c.run_id == run.run_id).values(**_run_values(run)))

    # -- the e-mail outbox ------------------------------------------------------------------------
    def queue_mail(self, entries: Sequence[OutboxEntry]) -> None:
        if entries:
            self.s.execute(insert(billing_outbox), [dict(tenant_id=e.tenant_id, invoice_id=e.invoice_id, account_id=e.account_id,
                                                         address=e.address, queue_time=e.queue_time, attempts=0, last_error="",
                                                         sent_time=None) for e in entries])

    def pending_mail(self, limit: int, max_attempts: int) -> list[OutboxEntry]:
        t = billing_outbox
        q = (select(t).where(and_(t.c.sent_time.is_(None), t.c.attempts < max_attempts)).order_by(t.c.queue_time, t.c.invoice_id)
             .limit(limit))
        return [OutboxEntry(r.tenant_id, r.invoice_id, r.account_id, r.address, aware(r.queue_time), int(r.attempts), r.last_error)
                for r in self.s.execute(q)]

    def mail_sent(self, tenant_id: str, invoice_id: str, when: datetime) -> None:
        t = billing_outbox
        self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.invoice_id == invoice_id)).values(sent_time=when))

    def mail_failed(self, tenant_id: str, invoice_id: str, error: str) -> None:
        t = billing_outbox
        self.s.execute(update(t).where(and_(t.c.tenant_id == tenant_id, t.c.invoice_id == invoice_id))
                       .values(attempts=t.c.attempts + 1, last_error=error[:500]))

    def count_run(self, run_id: str, issued: int, drafts: int, empty: int, skipped: int, failed: int) -> None:
        t = billing_runs
        self.s.execute(update(t).where(t.c.run_id == run_id).values(issued=t.c.issued + issued, drafts=t.c.drafts + drafts,
                                                                     empty=t.c.empty + empty, skipped=t.c.skipped + skipped,
                                                                     failed=t.c.failed + failed))

    def list_runs(self, tenant_ids: set[str] | None, limit: int) -> list[BillRun]:
        q = select(billing_runs).order_by(billing_runs.c.start_time.desc()).limit(limit)
        if tenant_ids is not None:
            q = q.where(billing_runs.c.tenant_id.in_(sorted(tenant_ids)))
        return [_run(r) for r in self.s.execute(q)]


_LINE_COLUMNS = 11
_COPY_NULL = "\\N"


def _lines_copy_text(invoices: Sequence[Invoice]) -> str | None:
    """The invoices' lines as billing_invoice_lines' COPY text (the columns of ``_line_row``), or None when a value holds
    a character COPY's text format escapes (tab, newline, carriage return, backslash): those go row by row.

    A bill run stores ~10 lines per invoice; psycopg's per-row writer took ~7 us a row, one string per batch a
    fraction of it.  Whether a value needed escaping is decided by counting: every row has exactly its 10 tabs, its
    newline and, for a line with no period, the one backslash of ``\\N``."""
    out: list[str] = []
    nulls = 0
    for i in invoices:
        head = f"{i.invoice_id}\t"
        owner = f"\t{i.tenant_id}\t{i.account_id}\t"
        for ln in i.lines:
            start = ln.period_start
            if start is None:
                nulls += 1
            out.append(f"{head}{ln.line_id}{owner}{ln.subscriber_id}\t{ln.charge_type._value_}\t{ln.item_id}\t{'t' if ln.advance else 'f'}\t"
                       f"{_COPY_NULL if start is None else start.isoformat()}\t{int(ln.amount_micros)}\t{ln.ref_line_id}\n")
    text = "".join(out)
    if (text.count("\t") != (_LINE_COLUMNS - 1) * len(out) or text.count("\n") != len(out) or text.count("\\") != nulls
            or "\r" in text):
        return None
    return text


def _line_row(i: Invoice, ln: BillLine) -> tuple[Any, ...]:
    """A billing_invoice_lines row, its values in the table's column order."""
    return (i.invoice_id, ln.line_id, i.tenant_id, i.account_id, ln.subscriber_id, ln.charge_type.value, ln.item_id, ln.advance,
            ln.period_start, ln.amount_micros, ln.ref_line_id)


class SqlBillingUnitOfWorkFactory:
    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self._factory = factory

    def __call__(self, read_only: bool = False) -> SqlBillingUnitOfWork:
        return SqlBillingUnitOfWork(self._factory, read_only)

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[bool]:
        """On PostgreSQL a session advisory lock on a connection of its own (no transaction left open on it), so that
        every server on the database sees it and a server that dies lets go of it; on SQLite (one server process) a
        set of the runs this process runs."""
        engine = self._factory.engine
        if engine.dialect.name != "postgresql":
            with _RUNNING_HERE_LOCK:
                taken = run_id not in _RUNNING_HERE
                _RUNNING_HERE.add(run_id)
            try:
                yield taken
            finally:
                if taken:
                    with _RUNNING_HERE_LOCK:
                        _RUNNING_HERE.discard(run_id)
            return
        key = {"kind": _RUN_LOCKS, "run": run_id}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:kind, hashtext(:run))"), key).scalar_one())
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:kind, hashtext(:run))"), key)


# the class of the bill runs' advisory locks (pg_try_advisory_lock(class, hash of the run id)), and SQLite's runs in progress
_RUN_LOCKS = 0x72756E73   # "runs"
_RUNNING_HERE: set[str] = set()
_RUNNING_HERE_LOCK = threading.Lock()
