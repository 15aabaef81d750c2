"""Plan set versions, the usage ledger, bundle counters and usage balances: the SQL side of
engine.plans.catalogue's and engine.rating.usage's ports.

Everything runs on the session of the platform's unit of work, so a plan
change and its audit entry commit together, and a rated chunk's ledger rows,
counters, balances and credit alerts commit together.  The chunk's write is
bulk: ``COPY`` of the ledger rows on PostgreSQL, packed multi-row ``INSERT``
on SQLite, and an ``UPDATE ... FROM`` per table that sets each counter or
balance only where it still holds the value read (compare-and-set; on
PostgreSQL these, the new counters and balances and the delete of any replaced
ledger rows named are one statement): replicas rating the same subscriber never
spend the same units twice, the one that loses rolls back and rates again.
Rating reads the physical address (ctid, rowid) of the rows it replaces when it
reads what they held (``take_holdings``, no lock, no delete); the chunk's write
leaves a row whose new value is the stored one unwritten and rewrites a changed
one in place (PostgreSQL: compared and updated by ctid in one statement,
heap-only on the ledger's half-filled pages of migration plans_0007; SQLite:
compared here, deleted by rowid and inserted), so re-rating a period to the
same result writes no ledger row.
"""

from __future__ import annotations

import builtins

import json
import operator
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text, and_, or_, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from engine.plans.catalogue import PlanSetVersion
from engine.rating.alerts import CreditAlertRecord
from engine.rating.usage import LEDGER_FIELDS, NO_ADD_ONS, CounterKey, CounterRow, Held, LedgerEntry, RatedSubscriber, bundle_units
from store.addons import SqlAddOnReader
from store.db import LEDGER_KEY_COLUMN, LEDGER_KEY_INDEX, ledger_key
from store.repositories import aware
from store.uow import SqlUnitOfWorkFactory

try:   # the ledger's COPY rows written in C (store/_copytext.c), when it is built
    from store import _copytext
except ImportError:  # pragma: no cover - a build without a C compiler
    _copytext = None   # type: ignore[assignment]

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

def _key_of_row(context: Any) -> int | None:
    """The SQLite ledger key of a row inserted through SQLAlchemy (write_chunk writes its own)."""
    if context.dialect.name != "sqlite":
        return None
    return ledger_key(context.get_current_parameters()["cdr_id"])


# the usage ledger: one row per CDR rated with counters (engine.rating.usage); columns after bundles_json
# came with migration plans_0002.  On PostgreSQL the primary key's columns are (cdr_id, tenant_id) since plans_0009 (the
# CDR id decides its comparisons); SQLite's ledger has no primary key since plans_0005 (ix_usage_ledger_cdr_key)
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
    # migration plans_0003: the ledger as the rated-CDR store (re-rating, replay of stored usage)
    Column("zone", String(64), nullable=True),
    Column("plan_version", Integer, nullable=True),
    Column("status", String(10), nullable=True),
    Column("reason", Text, nullable=True),
    # migration plans_0006: on SQLite the key the ledger is found by CDR id through (store.db.ledger_key, indexed by
    # ix_usage_ledger_cdr_key); NULL on PostgreSQL, where the primary key finds the rows
    Column(LEDGER_KEY_COLUMN, BigInteger, nullable=True, default=_key_of_row),
    # the bill run's read (store/billing.py); lookups by CDR go through the primary key (no index by tenant and start
    # time since plans_0004: nothing read by it, and each index is one more B-tree write per rated CDR)
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


# the class of the per-tenant advisory locks that number plan set versions (pg_advisory_xact_lock(class, hash of tenant))
_NUMBERING_LOCKS = 0x706C616E   # "plan"


class PlanVersionRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def latest_number(self, tenant_id: str, lock: bool = False) -> int:
        """``lock``: the tenant's version numbering, held to the commit, so that two uploads at once number N+1 and N+2
        (on PostgreSQL an advisory lock of the tenant; SQLite's writer holds the database from BEGIN IMMEDIATE)."""
        if lock and self.s.get_bind().dialect.name == "postgresql":
            self.s.execute(text("SELECT pg_advisory_xact_lock(:kind, hashtext(:tenant))"), {"kind": _NUMBERING_LOCKS, "tenant": tenant_id})
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


class UsageRepo:
    """engine.rating.usage.UsageRepository: bulk reads, and one conditional bulk write per chunk."""

    def __init__(self, session: Session) -> None:
        self.s = session
        # the CDR ids take_holdings looked up in this unit of work, by tenant: on SQLite (one writer, the write lock
        # held from BEGIN IMMEDIATE to the commit) those without a row cannot have one before this transaction writes
        # it, and those with one are in _stored, so the chunk's write need not look any of them up a second time
        self._taken: dict[str, set[str]] = {}
        # the ledger rows take_holdings read, by (tenant, CDR id): PostgreSQL their ctid, SQLite (their rowid, the row in
        # LEDGER_COLUMNS order as the database gives it back): the chunk's write replaces those its rows differ from
        self._stored: dict[tuple[str, str], Any] = {}
        # PostgreSQL: the rewrite's temporary table was filled in this transaction (it is emptied at the commit, see
        # _REWRITE_TABLE; a second rewrite in the same transaction empties it first)
        self._rewrote = False

    # -- reads ---------------------------------------------------------------------------------------------
    def ledger_of(self, tenant_id: str, cdr_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        ids = sorted(set(cdr_ids))
        out: dict[str, LedgerEntry] = {}
        if not ids:
            return out
        pg, cur = self._cursor()
        try:
            step = _batch(pg)
            for i in range(0, len(ids), step):
                cur.execute(*_lookup(pg, ", ".join(LEDGER_COLUMNS), tenant_id, ids[i:i + step]))
                for row in cur.fetchall():
                    out[row[1]] = _entry_of(row, pg)
        finally:
            cur.close()
        return out

    def holdings_of(self, tenant_id: str, cdr_ids: Iterable[str]) -> builtins.list[tuple[str, str, str, str, int, str]]:
        """The six columns of these CDRs' ledger rows that say what they took (no LedgerEntry per row: a re-rating
        chunk replaces thousands of rows and needs no more of them)."""
        return self._holdings(tenant_id, cdr_ids, take=False)

    def take_holdings(self, tenant_id: str, cdr_ids: Iterable[str]) -> builtins.list[tuple[str, str, str, str, int, str]] | None:
        """What ``holdings_of`` reads, for rows the chunk's write (``write_chunk`` on this unit of work) replaces: their
        physical address (PostgreSQL's ctid; SQLite's rowid and the whole row) is read in the same pass, and the write
        leaves a row whose new value is the same as the stored one alone and rewrites the others in place (see
        _changed, _rewrite), so re-rating a row to the same result writes nothing.  None: a lost race (kept for the
        port's sake: the read takes no lock; a row another writer changed meanwhile is found at the write)."""
        try:
            return self._holdings(tenant_id, cdr_ids, take=True)
        except _LOST_RACE:
            return None

    def _holdings(self, tenant_id: str, cdr_ids: Iterable[str], take: bool) -> builtins.list[tuple[str, str, str, str, int, str]]:
        ids = sorted(set(cdr_ids))
        out: builtins.list[tuple[str, str, str, str, int, str]] = []
        if not ids:
            return out
        pg, cur = self._cursor()
        step = _batch(pg)
        if take and not pg:
            self._taken.setdefault(tenant_id, set()).update(ids)
        try:
            if not take:
                for i in range(0, len(ids), step):
                    cur.execute(*_lookup(pg, "cdr_id, msisdn, cycle, currency, charge_micros, bundles_json", tenant_id, ids[i:i + step]))
                    out.extend(cur.fetchall())
                return out
            stored = self._stored
            if pg:
                return _pg_holdings(cur, tenant_id, ids, stored)
            # the rows found one key at a time (see _lookup) with their physical address; on SQLite whole, for the write
            # to compare with the new ones (PostgreSQL compares them itself, see _rewrite)
            columns = f"{', '.join(LEDGER_COLUMNS)}, rowid"
            for i in range(0, len(ids), step):
                cur.execute(*_lookup(pg, columns, tenant_id, ids[i:i + step]))
                for row in cur.fetchall():
                    stored[(tenant_id, row[1])] = (row[-1], row[:-1])
                    out.append(row[1:7])   # cdr_id, msisdn, cycle, currency, charge_micros, bundles_json
        finally:
            cur.close()
        return out

    def held_ahead(self, tenant_id: str, ahead: "HeldAhead") -> builtins.list[tuple[str, str, str, str, int, str]]:
        """``take_holdings`` of a chunk's CDRs of ``tenant_id`` (all of them), from what StoredCdrReader.chunks_held read
        with the chunk (PostgreSQL): the rows' addresses were read in an earlier transaction, and the write finds each
        row still there as read or loses the race (_rewrite: a row changed since lies elsewhere; a row added since
        breaks the primary key), as it does for rows read by take_holdings without a lock."""
        held, where = ahead.get(tenant_id, _NONE_HELD)
        self._stored.update(where)
        return held

    def _cursor(self) -> tuple[bool, Any]:
        """(PostgreSQL?, a driver cursor on the unit of work's connection and transaction)."""
        raw = self.s.connection().connection.dbapi_connection
        assert raw is not None
        return self.s.get_bind().dialect.name == "postgresql", raw.cursor()

    def counters_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, CounterRow]]:
        out: dict[CounterKey, dict[str, CounterRow]] = {}
        for tenant, cycle, rows in self._by_subscriber("bundle_counters", "bundle_id, allowance, remaining, unit", keys):
            mine: dict[str, dict[str, CounterRow]] = {}   # this batch's (one tenant and cycle) by MSISDN: no key built a row
            for msisdn, bundle, allowance, remaining, unit in rows:
                by = mine.get(msisdn)
                if by is None:
                    by = mine[msisdn] = out[(tenant, msisdn, cycle)] = {}
                by[bundle] = CounterRow(int(allowance), int(remaining), unit)
        return out

    def balances_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, int]]:
        out: dict[CounterKey, dict[str, int]] = {}
        for tenant, cycle, rows in self._by_subscriber("usage_balances", "currency, charged_micros", keys):
            mine: dict[str, dict[str, int]] = {}
            for msisdn, currency, charged in rows:
                by = mine.get(msisdn)
                if by is None:
                    by = mine[msisdn] = out[(tenant, msisdn, cycle)] = {}
                by[currency] = int(charged)
        return out

    def _by_subscriber(self, table: str, columns: str, keys: Iterable[CounterKey]) -> Iterator[tuple[str, str, builtins.list[tuple[Any, ...]]]]:
        """``(tenant, cycle, rows of (msisdn, *columns))`` of these (tenant, msisdn, cycle) keys, a batch at a time: one
        query per tenant, cycle and 5,000 (SQLite: 500) subscribers on the primary key, through the driver's cursor (a
        chunk of a rating stream asks for hundreds)."""
        by_group: dict[tuple[str, str], set[str]] = {}
        for tenant, msisdn, cycle in keys:
            group = by_group.get((tenant, cycle))
            if group is None:
                group = by_group[(tenant, cycle)] = set()
            group.add(msisdn)
        if not by_group:
            return
        pg, cur = self._cursor()
        mark = "%s" if pg else "?"
        step = _batch(pg)
        try:
            for (tenant, cycle), msisdns in sorted(by_group.items()):
                ordered = sorted(msisdns)
                for i in range(0, len(ordered), step):
                    where, params = _in(pg, "msisdn", ordered[i:i + step])
                    cur.execute(f"SELECT msisdn, {columns} FROM {table} WHERE tenant_id = {mark} AND {where} AND cycle = {mark}",
                                [tenant, *params, cycle])
                    yield tenant, cycle, cur.fetchall()
        finally:
            cur.close()

    def subscribers_of(self, msisdns: Iterable[str]) -> dict[str, RatedSubscriber]:
        """What rating needs of the live subscribers of these MSISDNs (a chunk of a rating stream asks for hundreds):
        plain columns through the driver's cursor, not the subscriber store's full records."""
        out: dict[str, RatedSubscriber] = {}
        ordered = sorted(set(msisdns))
        if not ordered:
            return out
        pg, cur = self._cursor()
        mark = "%s" if pg else "?"
        try:
            step = _batch(pg)
            for i in range(0, len(ordered), step):
                where, params = _in(pg, "msisdn", ordered[i:i + step])
                cur.execute(f"SELECT subscriber_id, tenant_id, msisdn, tariff_plan, billing_account, status, credit_limit_micros, "
                            f"credit_currency, ({_ANCHOR_DAY}), ({_ADD_ONS_UNTIL}) FROM subscribers WHERE {where} AND status <> {mark}",
                            [*params, "deactivated"])
                for sid, tenant, msisdn, plan, account, status, limit, currency, anchor, add_ons in cur.fetchall():
                    out[msisdn] = RatedSubscriber(sid, tenant, msisdn, plan, account, status,
                                                  None if limit is None else int(limit), currency or "", int(anchor or 1),
                                                  _instant(add_ons) if add_ons is not None else NO_ADD_ONS)
        finally:
            cur.close()
        return out

    def held_by_stored(self, tenant_ids: set[str], start: datetime, end: datetime) -> Held:
        """What the ledger rows of the stored CDRs of ``tenant_ids`` in [start, end) hold, per subscriber cycle
        (the start of a re-rating run, engine.rating.rerate)."""
        charges: dict[CounterKey, dict[str, int]] = {}
        bundles: dict[CounterKey, dict[str, int]] = {}
        pg, cur = self._cursor()
        tenants = sorted(tenant_ids)
        mark = "%s" if pg else "?"
        try:
            if pg:
                # no JIT: the estimate of a join of two large tables had it compile code for seconds.  No parallel workers:
                # a run sums its period in slices at once, each on a connection of its own (engine.rating.rerate,
                # HELD_PARTS); on analysed tables each slice's plan also took two workers (a parallel hash join and
                # partial aggregates), a quarter more of the server's CPU for the same sums and no sooner on two cores
                cur.execute("SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)")
            # one pass over the period's rows, added up by the database per cycle, currency and what a row took; each
            # distinct text's JSON read here once (PostgreSQL reading every row's JSON took about half the query's time)
            cur.execute(f"SELECT t.tenant_id, t.msisdn, t.cycle, t.currency, t.bundles_json, SUM(t.charge_micros), COUNT(*) FROM "
                        f"{_HELD_WHERE.format(tenants=', '.join([mark] * len(tenants)), mark=mark)} "
                        f"GROUP BY t.tenant_id, t.msisdn, t.cycle, t.currency, t.bundles_json",
                        [*tenants, start, end] if pg else [*tenants, _sqlite_time(start), _sqlite_time(end)])
            for tenant, msisdn, cycle, currency, text, charged, n in cur.fetchall():
                key = (tenant, msisdn, cycle)
                if charged:
                    by = charges.get(key)
                    if by is None:
                        by = charges[key] = {}
                    by[currency] = by.get(currency, 0) + int(charged)
                if text != "[]":
                    by = bundles.get(key)
                    if by is None:
                        by = bundles[key] = {}
                    for b, u in bundle_units(text):
                        by[b] = by.get(b, 0) + u * n
        finally:
            cur.close()
        return Held(bundles, charges)

    def rated_usage(self, tenant_id: str, start: datetime, end: datetime, msisdn: str = "") -> builtins.list[LedgerEntry]:
        """Rated rows of a tenant (and subscriber) with start_time in [start, end), in start order: what a bill run reads."""
        t = usage_ledger
        q = select(t).where(t.c.tenant_id == tenant_id, or_(t.c.status == "rated", t.c.status.is_(None)), t.c.start_time >= start, t.c.start_time < end)
        if msisdn:
            q = q.where(t.c.msisdn == msisdn)
        return [_entry(r) for r in self.s.execute(q.order_by(t.c.start_time, t.c.cdr_id))]

    # -- the chunk's write ------------------------------------------------------------------------------------
    def write_chunk(self, entries: builtins.list[tuple[Any, ...]], replaced: set[tuple[str, str]],
                    counters: builtins.list[tuple[CounterKey, str, CounterRow, int | None]],
                    balances: builtins.list[tuple[CounterKey, str, int, int | None]]) -> bool:
        try:
            return self._write_chunk(entries, replaced, sorted(counters, key=_by_key), sorted(balances, key=_by_key))
        except _LOST_RACE:
            # another writer holds or created the same rows (a deadlock broken by PostgreSQL, a ledger row of the same
            # CDR inserted meanwhile): the unit of work rolls back and the chunk is rated again
            return False

    def _write_chunk(self, entries: builtins.list[tuple[Any, ...]], replaced: set[tuple[str, str]],
                     counters: builtins.list[tuple[CounterKey, str, CounterRow, int | None]],
                     balances: builtins.list[tuple[CounterKey, str, int, int | None]]) -> bool:
        raw = self.s.connection().connection.dbapi_connection
        assert raw is not None
        pg = self.s.get_bind().dialect.name == "postgresql"
        cur = raw.cursor()
        try:
            # counters and balances first: a lost race is found before anything else is written (on PostgreSQL all these
            # writes go in one statement, one round trip; a count that differs rolls the whole chunk back all the same)
            writes = _Writes(cur, pg)
            changed = [(k[0], k[1], k[2], b, read, row.remaining) for k, b, row, read in counters if read is not None]
            writes.cas("bundle_counters", "bundle_id", "remaining", changed)
            writes.insert_new("bundle_counters", ("tenant_id", "msisdn", "cycle", "bundle_id", "allowance", "remaining", "unit"),
                              ("text", "text", "text", "text", "bigint", "bigint", "text"),
                              [(k[0], k[1], k[2], b, row.allowance, row.remaining, row.unit) for k, b, row, read in counters
                               if read is None])
            writes.cas("usage_balances", "currency", "charged_micros",
                       [(k[0], k[1], k[2], c, read, value) for k, c, value, read in balances if read is not None])
            writes.insert_new("usage_balances", ("tenant_id", "msisdn", "cycle", "currency", "charged_micros"),
                              ("text", "text", "text", "text", "bigint"),
                              [(k[0], k[1], k[2], c, value) for k, c, value, read in balances if read is None])
            by_tenant: dict[str, builtins.list[str]] = {}
            for tenant, cdr_id in sorted(replaced):
                by_tenant.setdefault(tenant, []).append(cdr_id)
            step = _batch(pg)
            for tenant, ids in by_tenant.items():
                for i in range(0, len(ids), step):
                    # the rows found one key at a time (see _lookup), deleted by their physical address (SQLite: rowid)
                    found, params = _lookup(pg, "ctid" if pg else "rowid", tenant, ids[i:i + step])
                    writes.add(f"DELETE FROM usage_ledger WHERE ctid = ANY(ARRAY({found}))" if pg else
                               f"DELETE FROM usage_ledger WHERE rowid IN ({found})", params, None)
            if not writes.done():
                return False
            if not pg and len({(e[0], e[1]) for e in entries}) != len(entries):
                return False   # a CDR twice in the chunk: what the primary key refuses on PostgreSQL
            fresh, replacing = self._changed(entries, pg, replaced)
            if replacing:
                rewritten = self._rewrite(cur, pg, replacing)
                if rewritten is None:
                    return False
                fresh += rewritten
            if fresh and not pg and _sqlite_stored_already(cur, fresh, self._taken):
                return False
            self._wrote(entries, pg)
            entries = fresh
            if entries:
                if pg:
                    # in subscriber order (stable: a subscriber's rows keep theirs, start order in a stream), so the
                    # subscriber index takes the rows leaf after leaf and its path stays in the CPU's cache (see
                    # _COPY_ORDER)
                    _copy(cur, f"usage_ledger ({', '.join(LEDGER_COLUMNS)})", sorted(entries, key=_COPY_ORDER))
                else:
                    # each row with its look-up key (plans_0006: a column, not an index on a function SQLite calls back);
                    # OR FAIL: no statement journal (see _NO_STATEMENT_JOURNAL); in subscriber order, as on PostgreSQL
                    # (_COPY_ORDER: the subscriber index's descents stay on the path the row before took)
                    columns = (*LEDGER_COLUMNS, LEDGER_KEY_COLUMN)
                    width = len(columns)
                    per = 32000 // width
                    one = f"({', '.join('?' * width)})"
                    values = _sqlite_ledger_params(_in_copy_order(entries))
                    for i in range(0, len(entries), per):
                        count = min(per, len(entries) - i)
                        cur.execute(f"INSERT {_NO_STATEMENT_JOURNAL} INTO usage_ledger ({', '.join(columns)}) VALUES {', '.join([one] * count)}",
                                    values[i * width:(i + count) * width])
            return True
        finally:
            cur.close()

    def _changed(self, entries: builtins.list[tuple[Any, ...]], pg: bool, replaced: set[tuple[str, str]]
                 ) -> tuple[builtins.list[tuple[Any, ...]], builtins.list[tuple[Any, tuple[Any, ...]]]]:
        """``(rows to insert, (address, row) of rows that replace a stored one)``: those of CDRs whose stored row
        take_holdings read.  A row equal to the stored one in every column is not written (re-rating it came to the
        same: what it takes of counters and balances is the same too): on SQLite it is left out here; PostgreSQL
        compares each row with the stored one itself, in the statement that rewrites the others (_rewrite: the rows
        read here would cost this process more than the server's comparison)."""
        stored = self._stored
        if not stored:
            return list(entries), []
        for key in replaced:   # deleted by key above: written anew
            stored.pop(key, None)
        fresh: builtins.list[tuple[Any, ...]] = []
        changed: builtins.list[tuple[Any, tuple[Any, ...]]] = []
        pop = stored.pop
        if pg:
            for e in entries:
                at = pop((e[0], e[1]), None)
                if at is None:
                    fresh.append(e)
                else:
                    changed.append((at, e))
            return fresh, changed
        for e in entries:
            old = pop((e[0], e[1]), None)
            if old is None:
                fresh.append(e)
            elif old[1] != _sqlite_row(e):
                changed.append((old[0], e))
        return fresh, changed

    def _rewrite(self, cur: Any, pg: bool, changed: builtins.list[tuple[Any, tuple[Any, ...]]]) -> builtins.list[tuple[Any, ...]] | None:
        """The stored rows of ``changed`` given their new values; None when one of them is no longer there as it was
        read (another writer replaced or removed it meanwhile: a lost race).  On PostgreSQL the new values go into a
        temporary table by COPY, and one statement finds each stored row by its ctid (and its key: a slot freed and
        reused since the read holds another row), and updates in place those that differ from their new values in
        any column (no index entry is written when no indexed column changes and the page has room, see migration
        plans_0007; a DELETE and a COPY of the same rows wrote the heap and both indexes again): nothing left to
        insert.  On SQLite the rows are deleted by rowid and given back to be inserted with the new ones."""
        if not pg:
            addresses = [a for a, _ in changed]
            for i in range(0, len(addresses), _IN_BATCH):
                part = addresses[i:i + _IN_BATCH]
                cur.execute(f"DELETE FROM usage_ledger WHERE rowid IN ({', '.join('?' * len(part))})", part)
                if cur.rowcount != len(part):
                    return None
            return [e for _, e in changed]
        cur.execute(_REWRITE_TABLE)
        if self._rewrote:
            cur.execute(f"DELETE FROM {_REWRITE}")
        self._rewrote = True
        _copy(cur, f"{_REWRITE} (old_tid, {', '.join(LEDGER_COLUMNS)})", [e for _, e in changed], [a for a, _ in changed])
        # the new values read from the temporary table (emptied by the commit: taking them out by ``DELETE ... RETURNING``
        # cost PostgreSQL about 2 us a row more); the answer: rows updated, and of the others those found as read and
        # equal to their new values (see _REWRITE_SQL)
        cur.execute("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
        cur.execute(_REWRITE_SQL, [len(changed)])
        updated, same = cur.fetchone()
        return [] if updated + same == len(changed) else None

    def _wrote(self, entries: builtins.list[tuple[Any, ...]], pg: bool) -> None:
        """These CDRs have rows now: a later write in this transaction looks them up again (SQLite)."""
        if pg:
            return
        for e in entries:
            gone = self._taken.get(e[0])
            if gone:
                gone.discard(e[1])


# the new values of a chunk's changed ledger rows, by the ctid of the row each replaces (PostgreSQL: a temporary table
# of the connection, emptied when the transaction ends: ``ON COMMIT DELETE ROWS`` truncates it, a rollback leaves
# none).  One UPDATE finds each stored row by its ctid (a TID scan per row: no join that reads the ledger; hash and
# merge joins are off for it), checks its key (a slot freed and reused since the read holds another row) and writes it
# where a column differs; it answers the rows it updated.  Only the rows it left are read again (in the statement's
# snapshot, before the update): each must be there as read and equal to its new value.  When the UPDATE wrote every row
# of the table (the parameter: how many it holds; a re-rating to a new version, each row names it) there are none, and
# that second part is not run (a scan of the table and a hash of the rows updated, 7 % of the statement's CPU).  The
# first form compared every row in a CTE and joined that CTE to the UPDATE, a second TID fetch per changed row: a third
# more of the statement's CPU (docs/BENCHMARKS.md).  A row another writer updated meanwhile lies elsewhere: it is
# neither updated nor found equal, a lost race.
_REWRITE = "rulebill_ledger_rewrite"
_REWRITE_TABLE = f"CREATE TEMPORARY TABLE IF NOT EXISTS {_REWRITE} (old_tid tid, LIKE usage_ledger) ON COMMIT DELETE ROWS"
_REWRITTEN = [c for c in LEDGER_FIELDS if c not in ("tenant_id", "cdr_id")]
_OLD, _NEW = (f"({', '.join(f'{t}.{c}' for c in _REWRITTEN)})" for t in ("u", "n"))
_AT_ITS_ADDRESS = "u.ctid = n.old_tid AND u.cdr_id = n.cdr_id AND u.tenant_id = n.tenant_id"
_REWRITE_SQL = (
    f"WITH w AS (UPDATE usage_ledger AS u SET {', '.join(f'{c} = n.{c}' for c in _REWRITTEN)} FROM {_REWRITE} AS n "
    f"WHERE {_AT_ITS_ADDRESS} AND {_OLD} IS DISTINCT FROM {_NEW} RETURNING n.old_tid) "
    f"SELECT (SELECT count(*) FROM w), CASE WHEN (SELECT count(*) FROM w) = %s THEN 0 ELSE (SELECT count(*) FROM {_REWRITE} AS n "
    f"WHERE n.old_tid NOT IN (SELECT old_tid FROM w) "
    f"AND EXISTS (SELECT 1 FROM usage_ledger AS u WHERE {_AT_ITS_ADDRESS} AND {_OLD} IS NOT DISTINCT FROM {_NEW})) END")


# what StoredCdrReader.chunks_held reads with a chunk (PostgreSQL): by tenant, the ledger rows of the chunk's CDRs as
# take_holdings gives them (cdr_id, msisdn, cycle, currency, charge_micros, bundles_json) and their ctids by (tenant, CDR id)
HeldAhead = dict[str, tuple[builtins.list[tuple[str, str, str, str, int, str]], dict[tuple[str, str], str]]]
_NONE_HELD: tuple[builtins.list[Any], dict[Any, Any]] = ([], {})


def _pg_holdings(cur: Any, tenant_id: str, ids: builtins.list[str],
                 stored: dict[tuple[str, str], Any]) -> builtins.list[tuple[str, str, str, str, int, str]]:
    """The holding columns of the ledger rows of a tenant's CDRs ``ids`` (sorted), found one key at a time (see
    _lookup); each row's ctid put in ``stored`` by (tenant, CDR id)."""
    out: builtins.list[tuple[str, str, str, str, int, str]] = []
    step = _batch(True)
    for i in range(0, len(ids), step):
        cur.execute(*_lookup(True, "cdr_id, msisdn, cycle, currency, charge_micros, bundles_json, ctid", tenant_id, ids[i:i + step]))
        for row in cur.fetchall():
            stored[(tenant_id, row[0])] = row[6]
            out.append(row[:6])
    return out


def _held_ahead(cur: Any, rows: builtins.list[tuple[Any, ...]], since: datetime, until: datetime) -> HeldAhead:
    """HeldAhead of a chunk of stored CDRs (StoredCdrReader rows, their start times in [since, until]), read on ``cur``.

    The ledger rows are found by subscriber, not by CDR id: per tenant, each of the chunk's subscribers' rows that start
    in the chunk's window (the subscriber index, ``(tenant_id, msisdn, start_time)``: one descent per subscriber and its
    rows side by side on the leaf, where a look-up by CDR id descends the primary key once per CDR: with ten CDRs a
    subscriber in a chunk, about a third of the backend's CPU, docs/BENCHMARKS.md; with about one CDR a subscriber, as
    many descents as by id), those of the chunk's CDRs kept.  A CDR whose row is not found there
    (never rated, or its row names another subscriber or start time: a corrected CDR sent again, a row from before the
    ledger kept start times) is looked up by its id (_pg_holdings), so the rows found are the same as by id."""
    from engine.cdr import COLUMNS

    tenant_at, a_at = COLUMNS.index("tenant"), COLUMNS.index("a_number")
    by_tenant: dict[str, tuple[set[str], set[str]]] = {}
    for row in rows:
        mine = by_tenant.get(row[tenant_at])
        if mine is None:
            mine = by_tenant[row[tenant_at]] = (set(), set())
        mine[0].add(row[0])
        mine[1].add(row[a_at])
    # the ledger's start times are the CDRs' to the second (engine.rating.desk: the rows' text times)
    since = since.replace(microsecond=0)
    step = _batch(True)
    out: HeldAhead = {}
    for tenant, (ids, msisdns) in by_tenant.items():
        where: dict[tuple[str, str], str] = {}
        held: builtins.list[tuple[str, str, str, str, int, str]] = []
        add = held.append
        subscribers = sorted(msisdns)
        for i in range(0, len(subscribers), step):
            cur.execute(_BY_SUBSCRIBER, [_json(subscribers[i:i + step]), tenant, since, until])
            for found in cur.fetchall():
                if found[0] in ids:
                    where[(tenant, found[0])] = found[6]
                    add(found[:6])
        if len(where) < len(ids):
            held += _pg_holdings(cur, tenant, sorted(i for i in ids if (tenant, i) not in where), where)
        out[tenant] = (held, where)
    return out


# a chunk's subscribers' ledger rows in its window (_held_ahead): per subscriber a range of the subscriber index, in a
# lateral subquery (``OFFSET 0`` keeps the planner from flattening it into a join it could plan as a scan of the ledger)
_BY_SUBSCRIBER = ("SELECT r.* FROM json_array_elements_text(%s::json) AS k(v) CROSS JOIN LATERAL (SELECT cdr_id, msisdn, cycle, "
                  "currency, charge_micros, bundles_json, ctid FROM usage_ledger WHERE tenant_id = %s AND msisdn = k.v AND "
                  "start_time >= %s AND start_time <= %s OFFSET 0) AS r")


def _copy(cur: Any, into: str, rows: builtins.list[tuple[Any, ...]], first: builtins.list[Any] | None = None) -> None:
    """``rows`` into ``into`` (a table and its columns) by COPY, each row after its value in ``first`` when given: in
    COPY's text format written in one C call (store/_copytext.c: psycopg's bytes, a tenth of its cost), or row by row by
    psycopg when a value is one the C writer leaves to it."""
    text = _copytext.copy_text(rows, first) if _copytext is not None else None
    with cur.copy(f"COPY {into} FROM STDIN") as cp:
        if text is not None:
            cp.write(text)
        else:
            for i, row in enumerate(rows):
                cp.write_row(row if first is None else (first[i], *row))


def _sqlite_row(e: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ledger row as SQLite stores it (its start time as SQLAlchemy's text), to compare with one read back."""
    return (*e[:7], _sqlite_time(e[7]), *e[8:])


# the ledger rows of a re-rating run's stored CDRs (counted rows only: those with a cycle)
_HELD_WHERE = ("mediated_cdrs m JOIN usage_ledger t ON t.tenant_id = m.tenant_id AND t.cdr_id = m.cdr_id WHERE m.tenant_id IN "
               "({tenants}) AND m.start_time >= {mark} AND m.start_time < {mark} AND t.cycle <> ''")


def _sqlite_stored_already(cur: Any, entries: builtins.list[tuple[Any, ...]], taken: dict[str, set[str]]) -> bool:
    """Whether one of these ledger rows' CDRs has a row already (one not replaced) or twice among them: what the
    primary key refused before plans_0005, and PostgreSQL's still does (a broken key there is a lost race too).
    ``taken``: ids this transaction looked up (UsageRepo.take_holdings) and has not written since, known to have no row
    here (none was found, or the one found was deleted by its rowid to be written anew): not looked up again (a rated
    chunk takes every one of its CDRs' rows first, so a stream's chunk looks up none twice)."""
    by_tenant: dict[str, set[str]] = {}
    for e in entries:
        by_tenant.setdefault(e[0], set()).add(e[1])
    if sum(map(len, by_tenant.values())) != len(entries):
        return True
    for tenant, ids in sorted(by_tenant.items()):
        gone = taken.get(tenant)
        ordered = sorted(ids - gone if gone else ids)
        for i in range(0, len(ordered), _IN_BATCH):
            sql, params = _lookup(False, "1", tenant, ordered[i:i + _IN_BATCH])
            cur.execute(f"{sql} LIMIT 1", params)
            if cur.fetchone() is not None:
                return True
    return False


# SQLite's conflict resolution for the chunk's multi-row writes (the ledger's packed INSERT, the counters' and balances'
# compare-and-set and new rows): FAIL, not the default ABORT.  A statement that writes several rows and may ABORT keeps a
# statement journal, a temporary file holding the original of every page the statement changes that was in the database
# when it began, so that it can undo itself alone: for the ledger's packed INSERT nearly every page of its two
# random-keyed indexes the statement reaches, written to a file and thrown away at the statement's end (measured on
# write_chunk's rows in 20,000-row transactions: 4.07 KiB written a row with it, 0.84 without, from an empty ledger;
# docs/BENCHMARKS.md).  The chunk never needs that: a write that fails (a constraint,
# a count that falls short) makes write_chunk give False or raise, and its unit of work is rolled back whole, so the
# rows a failing statement wrote before the failure never commit.
_NO_STATEMENT_JOURNAL = "OR FAIL"

# one order for every writer (its key, then bundle or currency): rows are locked in the same order
_by_key = operator.itemgetter(0, 1)

# the order a chunk's new ledger rows are copied in on PostgreSQL (and inserted in on SQLite): by MSISDN (the subscriber index's second column;
# each tenant's rows still come in MSISDN order, the tenants interleaved).  A rating group of 20,000 CDRs of 2,000
# subscribers puts about ten rows on each subscriber's leaf of ix_usage_ledger_msisdn_start: in arrival order each
# row descends the index to a leaf the previous rows left cold in the CPU's caches, in this order the next row finds
# the same path.  The backend's CPU for 400k rows in 20,000-row transactions fell about 15 % (docs/BENCHMARKS.md), for
# about 0.25 us a row of sorting here; a subscriber's rows of a group land on the same heap pages too, which the bill
# run's read of a subscriber's period (through that index) finds together.
_COPY_ORDER = operator.itemgetter(2)


def _in_copy_order(entries: builtins.list[tuple[Any, ...]]) -> builtins.list[tuple[Any, ...]]:
    """The rows in _COPY_ORDER; as given when their numbers do not compare (a row without one: the table refuses it)."""
    try:
        return sorted(entries, key=_COPY_ORDER)
    except TypeError:
        return entries


def _lost_race_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        from psycopg import errors as pg

        errors += [pg.DeadlockDetected, pg.SerializationFailure, pg.UniqueViolation]
    except ImportError:  # pragma: no cover - PostgreSQL driver not installed
        pass
    return tuple(errors)


_LOST_RACE = _lost_race_errors()

LEDGER_COLUMNS = LEDGER_FIELDS
_IN_BATCH = 500


def _batch(pg: bool) -> int:
    """Values per ``IN`` look-up: PostgreSQL takes one array parameter whatever its length (see _in); SQLite one
    ``?`` each, under its parameter limit."""
    return 5000 if pg else _IN_BATCH

# the anchor day of the billing account a subscriber is assigned to now (the bill run's billing_assignments and
# billing_accounts, migration billing_0001): its bundle counters and credit alerts run per that bill cycle
_ANCHOR_DAY = ("SELECT b.anchor_day FROM billing_assignments a JOIN billing_accounts b ON b.tenant_id = a.tenant_id "
               "AND b.account_id = a.account_id WHERE a.tenant_id = subscribers.tenant_id AND a.subscriber_id = "
               "subscribers.subscriber_id AND a.valid_to IS NULL ORDER BY a.valid_from DESC LIMIT 1")

# when the last add-on purchase of the subscriber's number ends (store/addons.py, its (tenant, msisdn, valid_until)
# index): read with the subscriber on every chunk, so rating asks for the purchases of only the numbers whose purchases
# reach the chunk's CDRs (engine.rating.desk._add_ons_of) and sees a purchase or a stop made by any replica at once
_ADD_ONS_UNTIL = ("SELECT MAX(p.valid_until) FROM billing_addon_purchases p WHERE p.tenant_id = subscribers.tenant_id "
                  "AND p.msisdn = subscribers.msisdn")


def _instant(value: Any) -> datetime:
    """A timestamp as the driver gives it (SQLite: the text SQLAlchemy wrote, UTC), aware."""
    return aware(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def _json(values: Any) -> str:
    """Values (or rows of values) as one JSON text parameter for PostgreSQL: psycopg writes an array parameter element
    by element in Python (a thousand text elements cost about 0.35 ms in binary, 2 ms as text), ``json.dumps`` in C
    (0.16 ms; six 1,000-element columns of a compare-and-set 2.4 ms as binary arrays, 0.7 ms as one JSON array of
    rows).  Text that PostgreSQL stores cannot hold NUL, so no value here needs the ``\\u0000`` JSON that ``->>``
    refuses."""
    return json.dumps(values, separators=(",", ":"))


def _in(pg: bool, column: str, values: builtins.list[Any]) -> tuple[str, builtins.list[Any]]:
    """``column`` in ``values``: one array parameter on PostgreSQL, a ``text[]`` literal (binary when the C writer is not
    built; a JSON parameter as _lookup's leaves the planner no array to probe the primary key with: counters read 10x
    slower), a list of ``?`` on SQLite."""
    if pg:
        # the values as one text array literal written in C (store/_copytext.c) where it is built: psycopg dumps a list
        # element by element in Python
        literal = _copytext.text_array(values) if _copytext is not None else None
        if literal is not None:
            return f"{column} = ANY(%s::text[])", [literal]
        return f"{column} = ANY(%b)", [list(values)]
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def _lookup(pg: bool, columns: str, tenant_id: str, cdr_ids: builtins.list[str]) -> tuple[str, builtins.list[Any]]:
    """A query for ``columns`` of the ledger rows of a tenant's CDRs ``cdr_ids``.

    On PostgreSQL the ids are one parameter (psycopg parses each placeholder of a query in Python, so a thousand of
    them cost more than the query), a JSON array (see _json: psycopg writes an array parameter element by element in
    Python), and looked up one at a time through a lateral join on the
    primary key.  The plain ``cdr_id = ANY(array)`` leaves the choice to the planner's statistics: on a ledger that
    autovacuum has not analysed yet (the first minutes after a bulk load) it estimated that every row matches and
    scanned the whole table for each chunk (as a join it hashed every row of the tenant); one equality per key on the
    unique index is one index probe whatever the statistics say (``LIMIT 1``, true of a unique key, keeps the planner
    from flattening the lateral subquery back into that join).  (Not for the subscriber-keyed reads: there a lateral
    probe of a small table that has no statistics yet was planned as a scan per key.)  On SQLite the ids' narrow keys
    (store.db.ledger_key) as a list of ``?`` probe ``ix_usage_ledger_cdr_key`` on the ``cdr_key`` column (migrations
    plans_0005, plans_0006), and the ids themselves pick the rows (two ids may share a key)."""
    if pg:
        sql = (f"SELECT r.* FROM json_array_elements_text(%s::json) AS k(v) CROSS JOIN LATERAL (SELECT {columns} "
               f"FROM usage_ledger WHERE tenant_id = %s AND cdr_id = k.v LIMIT 1) AS r")
        return sql, [_json(cdr_ids), tenant_id]
    marks = ", ".join("?" * len(cdr_ids))
    # INDEXED BY: without statistics SQLite's planner takes ``tenant_id = ?`` on the subscriber index for the narrower
    # search and reads every row of the tenant (200 CDRs/s at 160k rows)
    sql = (f"SELECT {columns} FROM usage_ledger INDEXED BY {LEDGER_KEY_INDEX} WHERE {LEDGER_KEY_COLUMN} IN ({marks}) "
           f"AND tenant_id = ? AND cdr_id IN ({marks})")
    return sql, [*_ledger_keys(cdr_ids), tenant_id, *cdr_ids]


def _ledger_keys(cdr_ids: builtins.list[str]) -> builtins.list[int]:
    """store.db.ledger_key of each id: in one C call (store/_copytext.c) where it is built."""
    if _copytext is not None:
        return _copytext.ledger_keys(cdr_ids, ledger_key)
    return builtins.list(map(ledger_key, cdr_ids))


def _sqlite_ledger_params(entries: builtins.list[tuple[Any, ...]]) -> builtins.list[Any]:
    """The SQLite ledger's packed INSERT parameters of these rows, one after the other: each row's columns with its start
    time as SQLite text (_sqlite_time), then its key (ledger_key); in one C call (store/_copytext.c) where it is built
    (in Python about 10 us a row: two thirds of the chunk's Python on SQLite)."""
    values = _copytext.sqlite_ledger_params(entries, _sqlite_time, ledger_key) if _copytext is not None else None
    if values is None:
        values = [v for e in entries for v in (*e[:7], _sqlite_time(e[7]), *e[8:], ledger_key(e[1]))]
    return values


def _sqlite_time(at: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC text), so its reads parse it
    return None if at is None else at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _entry_of(row: tuple[Any, ...], pg: bool) -> LedgerEntry:
    """A ledger row read through a driver cursor (LEDGER_COLUMNS order) as a LedgerEntry."""
    start = row[7]
    if start is not None and not pg:
        start = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    (tenant, cdr_id, msisdn, cycle, currency, charge, bundles, _start, service, destination, zone, units, psv, plan, pv, status,
     reason) = row
    taken = () if bundles == "[]" else tuple((b, int(u)) for b, u in json.loads(bundles))   # no JSON to read for a CDR charged in money only
    return LedgerEntry(tenant, cdr_id, msisdn, cycle, currency, int(charge), taken,
                       aware(start) if start is not None else None, service or "", destination or "", zone or "", int(units or 0),
                       int(psv or 0), plan or "", int(pv or 0), status or "rated", reason or "", counted=bool(cycle))


def _entry(r: Any) -> LedgerEntry:
    return LedgerEntry(r.tenant_id, r.cdr_id, r.msisdn, r.cycle, r.currency, int(r.charge_micros),
                       tuple((b, int(u)) for b, u in json.loads(r.bundles_json)), aware(r.start_time) if r.start_time else None,
                       r.service or "", r.destination_group or "", r.zone or "", int(r.units or 0), int(r.plan_set_version or 0),
                       r.tariff_plan or "", int(r.plan_version or 0), r.status or "rated", r.reason or "",
                       counted=bool(r.cycle))


class _Writes:
    """A chunk's conditional writes, each with the number of rows it must change (None: any).

    On PostgreSQL they are gathered into one statement of data-modifying ``WITH`` queries (one round trip, whatever
    the chunk holds; rows as one JSON parameter each, see _json) that answers each one's count; on SQLite each runs at once, in
    parts under its parameter limit, and the first one that falls short stops the rest."""

    def __init__(self, cur: Any, pg: bool) -> None:
        self.cur, self.pg = cur, pg
        self.queries: builtins.list[str] = []
        self.params: builtins.list[Any] = []
        self.expected: builtins.list[int | None] = []
        self.ok = True

    def add(self, sql: str, params: builtins.list[Any], expected: int | None) -> None:
        if self.pg:
            self.queries.append(sql)
            self.params.extend(params)
            self.expected.append(expected)
        elif self.ok:
            self.cur.execute(sql, params)
            self.ok = expected is None or self.cur.rowcount == expected

    def cas(self, table: str, item: str, column: str, rows: builtins.list[tuple[Any, ...]]) -> None:
        """Set ``column`` to the new value where the row still holds the value read (every row must)."""
        if not rows:
            return
        if self.pg:
            # the rows as one JSON parameter (see _json), read back as a row of columns per element
            self.add(f"UPDATE {table} SET {column} = v.new FROM (SELECT e->>0 AS t, e->>1 AS m, e->>2 AS c, e->>3 AS k, "
                     f"(e->>4)::bigint AS old, (e->>5)::bigint AS new FROM json_array_elements(%s::json) AS e) AS v "
                     f"WHERE {table}.tenant_id = v.t AND {table}.msisdn = v.m AND {table}.cycle = v.c AND {table}.{item} = v.k "
                     f"AND {table}.{column} = v.old", [_json(rows)], len(rows))
            return
        for i in range(0, len(rows), 4000):
            part = rows[i:i + 4000]
            values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))
            # SQLite names a VALUES list's columns column1..column6 (and counts rows only for statements that start
            # with UPDATE, so no WITH here)
            self.add(f"UPDATE {_NO_STATEMENT_JOURNAL} {table} SET {column} = v.column6 FROM (VALUES {values}) AS v WHERE {table}.tenant_id = v.column1 "
                     f"AND {table}.msisdn = v.column2 AND {table}.cycle = v.column3 AND {table}.{item} = v.column4 "
                     f"AND {table}.{column} = v.column5", [x for row in part for x in row], len(part))

    def insert_new(self, table: str, columns: tuple[str, ...], types: tuple[str, ...], rows: builtins.list[tuple[Any, ...]]) -> None:
        """Insert rows that must not exist yet (fewer inserted: another writer created some)."""
        if not rows:
            return
        if self.pg:
            values = ", ".join(f"(e->>{i})::{t}" for i, t in enumerate(types))
            self.add(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_array_elements(%s::json) AS e "
                     f"ON CONFLICT DO NOTHING", [_json(rows)], len(rows))
            return
        one = f"({', '.join('?' * len(columns))})"
        for i in range(0, len(rows), 4000):
            part = rows[i:i + 4000]
            self.add(f"INSERT {_NO_STATEMENT_JOURNAL} INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * len(part))} "
                     f"ON CONFLICT DO NOTHING",
                     [x for row in part for x in row], len(part))

    def done(self) -> bool:
        """Whether every write changed the rows it had to (on PostgreSQL: run them now)."""
        if not self.pg or not self.queries:
            return self.ok
        # each row found through the primary key: the planner, estimating a JSON array at 100 rows, would otherwise
        # hash every row of the table for each write (the counters of every subscriber, 4-5x the time of the probes
        # measured at 6,000 counters; more as the table grows with subscribers and cycles).  Until the chunk commits.
        self.cur.execute("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
        steps = ", ".join(f"w{i} AS ({q} RETURNING 1)" for i, q in enumerate(self.queries))
        counts = ", ".join(f"(SELECT count(*) FROM w{i})" for i in range(len(self.queries)))
        self.cur.execute(f"WITH {steps} SELECT {counts}", self.params)
        got = self.cur.fetchone()
        return all(want is None or int(n) == want for n, want in zip(got, self.expected))


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
    usage: UsageRepo
    alerts: CreditAlertRepo
    subscribers: Any
    audit: Any

    def __init__(self, factory: SqlUnitOfWorkFactory, read_only: bool = False) -> None:
        self._inner = factory(read_only=read_only)

    def __enter__(self) -> "SqlPlanUnitOfWork":
        self._inner.__enter__()
        self.plan_versions = PlanVersionRepo(self._inner.session)
        self.usage = UsageRepo(self._inner.session)
        self.alerts = CreditAlertRepo(self._inner.session)
        self.add_ons = SqlAddOnReader(self._inner.session)   # add-on purchases valid in a chunk (engine.rating.addons)
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
        # whether two units of work write at once (a rating stream's chunk is written while the next is read, see
        # engine.rating.desk.RatingStream); SQLite has one writer at a time
        self.concurrent_writers = factory.engine.dialect.name == "postgresql"
        # whether a read-only unit reads a snapshot without waiting for the one writer (SQLite in WAL mode on its
        # read engine, deferred BEGIN): the stream's next chunk is read there while the chunk before is written
        self.snapshot_reads = (factory.engine.dialect.name == "sqlite" and factory.read_engine is not None
                               and factory.engine.url.database not in (None, "", ":memory:"))

    def __call__(self, read_only: bool = False) -> SqlPlanUnitOfWork:
        return SqlPlanUnitOfWork(self._factory, read_only)


class StoredCdrReader:
    """The CDR store (mediation's ``mediated_cdrs``) as re-rating reads it: engine.rating.rerate.StoredCdrRows.

    Rows come in start order (then cdr_id), as typed tuples of the normalised layout with ``start_time`` as
    ``YYYY-MM-DDTHH:MM:SSZ`` text written by the database itself, through the driver's own cursor (the ORM's row
    objects would cost more than the rating).  A chunk is one query from the last row's key in a transaction of its
    own: a run holds no transaction open between chunks (a server's ``idle_in_transaction_session_timeout`` would end
    it; on SQLite an open read keeps the WAL from being checkpointed)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.pg = db.dialect.name == "postgresql"

    def _where(self, tenant_ids: set[str]) -> tuple[str, list[Any]]:
        mark = "%s" if self.pg else "?"
        tenants = sorted(tenant_ids)
        return (f"tenant_id IN ({', '.join([mark] * len(tenants))}) AND start_time >= {mark} AND start_time < {mark}", tenants)

    def _time(self, at: datetime) -> Any:
        return at if self.pg else _sqlite_time(at)

    def count(self, tenant_ids: set[str], start: datetime, end: datetime) -> int:
        where, params = self._where(tenant_ids)
        raw = self.db.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(f"SELECT COUNT(*) FROM mediated_cdrs WHERE {where}", [*params, self._time(start), self._time(end)])
            return int(cur.fetchone()[0])
        finally:
            raw.close()

    def chunks(self, tenant_ids: set[str], start: datetime, end: datetime, size: int) -> Iterator[builtins.list[tuple[Any, ...]]]:
        """The period's CDRs, ``size`` a chunk (see _pages)."""
        for rows, _ in self._pages(tenant_ids, start, end, size, False):
            yield rows

    def chunks_held(self, tenant_ids: set[str], start: datetime, end: datetime,
                    size: int) -> Iterator[tuple[builtins.list[tuple[Any, ...]], "HeldAhead | None"]]:
        """``chunks``, each with what its CDRs' ledger rows hold and where they lie (HeldAhead), read in the chunk's
        read transaction on PostgreSQL (None on SQLite): a re-rating run reads them on its read-ahead thread, a chunk
        ahead of the rating, instead of the rating thread waiting for the look-up (UsageRepo.held_ahead)."""
        return self._pages(tenant_ids, start, end, size, self.pg)

    def _pages(self, tenant_ids: set[str], start: datetime, end: datetime, size: int,
               holdings: bool) -> Iterator[tuple[builtins.list[tuple[Any, ...]], "HeldAhead | None"]]:
        """The period's CDRs, ``size`` a chunk.  A chunk is one query: per tenant, the (tenant, start time) index read in
        order from the last row's key (start time, CDR id) on, ``LIMIT size``, the tenants' rows merged in that order.
        That is one range read in order whatever the planner's statistics say: on PostgreSQL sorts, sequential and
        bitmap scans are off for it (on CDRs loaded since the last ``ANALYZE`` a query per chunk was once planned as a
        read and sort of the whole period for every chunk; one query for the run, through a server-side cursor, sorted
        the whole period up front when the operator's MVNOs were in it).  The last row's exact start time (the text one
        is to the second) is looked up by its CDR id, the primary key: stored CDRs are never changed nor deleted."""
        from engine.cdr import COLUMNS

        tenants = sorted(tenant_ids)
        if not tenants:
            return
        pg, mark, size = self.pg, "%s" if self.pg else "?", int(size)
        text_time = ("to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" if pg
                     else "substr(start_time, 1, 10) || 'T' || substr(start_time, 12, 8) || 'Z'")
        names = ["tenant_id" if c == "tenant" else c for c in COLUMNS]
        cols = ", ".join(f"{text_time} AS start_time" if c == "start_time" else c for c in names)
        first = (f"SELECT * FROM (SELECT {cols}, start_time AS at_key FROM mediated_cdrs WHERE tenant_id = {mark} AND start_time >= "
                 f"{mark} AND start_time < {mark} ORDER BY mediated_cdrs.start_time, cdr_id LIMIT {size}) AS t")   # the column, not the text
        following = first.replace(" ORDER BY", f" AND (start_time > {mark} OR cdr_id > {mark}) ORDER BY")
        after: tuple[Any, str] | None = None   # (exact start time, cdr_id) of the last row read
        while True:
            branch = following if after else first
            sql = (f"SELECT {', '.join(f'u.{c}' for c in names)} FROM ({' UNION ALL '.join([branch] * len(tenants))}) AS u "
                   f"ORDER BY u.at_key, u.cdr_id LIMIT {size}")
            args: builtins.list[Any] = []
            for tenant in tenants:
                args += [tenant, after[0], self._time(end), after[0], after[1]] if after else [tenant, self._time(start), self._time(end)]
            raw = self.db.raw_connection()
            try:
                cur = raw.cursor()
                if pg:
                    cur.execute("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true), "
                                "set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)")
                cur.execute(sql, args)
                rows = cur.fetchall()
                # the chunk's start times lie in [since, until]: from the last row read before to this chunk's last row (the
                # period's end for the last chunk)
                since, until = (after[0] if after else start), end
                if len(rows) == size:
                    cur.execute(f"SELECT start_time FROM mediated_cdrs WHERE cdr_id = {mark}", [rows[-1][0]])
                    after = (cur.fetchone()[0], rows[-1][0])
                    until = after[0]
                ahead = _held_ahead(cur, rows, since, until) if holdings and rows else None
                raw.rollback()   # only read: the chunk's transaction ends here, before the chunk is rated
            finally:
                raw.close()
            if rows:
                yield rows, ahead
            if len(rows) < size:
                return
