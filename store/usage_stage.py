"""A large bill run's usage, staged: the period's rated rows copied once, grouped by number, for its batches to read.

Rating stores the ledger in the order calls are made, so one account's 200 CDRs of a month lie on ~200 heap pages,
and each batch's read (``SqlRatedUsage.blocks``) visited one page per CDR, out of a period far larger than the
buffer pool: ~1 ms of PostgreSQL's CPU per account, most of the run's database time.  A run of many accounts reads
the period's rows once instead, in the heap's order (a sequential scan: ~0.04 ms per account of 200 CDRs), and
writes them to an unlogged table ordered by a hash of the number, so each number's rows lie together on a few
pages; its batches read that table (``SqlRatedUsage.blocks(stage=...)``) with the same query as the ledger.

- The copy is the run's snapshot of its usage: a CDR rated after it goes to the next bill, as any CDR rated after
  its batch's read did before (the next bill reads ``late_usage_days`` back).  What is billed already is left out
  at each batch's read, as from the ledger.
- It is filled in ``shares`` statements on their own connections at once (each scans the period, sorts its share
  of the numbers), so a run's start uses the cores its batches will.
- Unlogged (no WAL for a copy the ledger can give again): PostgreSQL empties such a table after a crash, so the
  stage's last row, written once it is complete, is a mark (tenant and number empty) that each batch's read checks:
  a stage found without it (a crash, a stage dropped under a run) stops the batch; a resumed run stages again.
- Dropped at the run's end (whatever its outcome); a run started again with the same id replaces its stage.
- A run killed and never resumed leaves its stage (~3 GB at 100k accounts): :func:`drop_abandoned_stages` drops every
  stage no run reads any more -- its run finished, failed or unknown, or still marked running but staged longer ago
  than ``billing_stage_max_age_hours`` (a resumed run stages again: its old copy is never read).  The server runs it as
  it starts and on each billing scheduler round, ``rulebill db drop-stale-stages`` on demand.  Each stage is decided
  and dropped holding its run's row, so a resume (which writes that row before it stages) waits, and stages afresh.

PostgreSQL only: elsewhere a run reads the ledger (``stage_usage`` returns no name).
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import text

from engine.errors import FailedPrecondition

PREFIX = "billing_stage_"
MAX_SHARES = 8      # connections filling the stage at once (the engine's pool holds 30)
_RUN_ID = re.compile(r"^[A-Za-z0-9_]{1,48}$")


def stage_name(run_id: str) -> str:
    """The stage table of a run (its id is ``run_`` and hex digits: checked, it becomes an identifier)."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"not a bill run id: {run_id!r}")
    return PREFIX + run_id.lower()


def create_stage(engine: Any, columns: Mapping[str, str], ledger: str, rated: str, tenant_id: str, run_id: str,
                 since: datetime, until: datetime, shares: int) -> str:
    """The run's stage, filled from ``ledger`` (``columns``: the usage port's names for them; ``rated``: its condition
    on a rated row) with the tenant's rows started in ``[since, until)``; its name ("" when the ledger's rows of a
    number lie together already: ``scattered``)."""
    name = stage_name(run_id)
    c = columns
    if not scattered(engine, c, ledger, tenant_id, since, until):
        return ""
    keep = ", ".join(f"l.{c[k]}" for k in ("msisdn", "start_time", "cdr_id", "service", "destination", "tariff_plan", "units",
                                             "charge_micros", "currency"))
    shares = min(max(1, shares), MAX_SHARES)
    # one statement text, so one transaction: the table is never seen without its creation stamp (the comment that
    # drop_abandoned_stages reads its age from)
    _execute(engine, [f"DROP TABLE IF EXISTS {name}; "
                      # the columns as the ledger names them: the batches' read runs the same text on either
                      f"CREATE UNLOGGED TABLE {name} AS SELECT l.tenant_id, {keep}, l.status FROM {ledger} l WITH NO DATA; "
                      f"ALTER TABLE {name} SET (autovacuum_enabled = off); {_STAMP_SQL.format(name=name)}"])
    fill = (f"INSERT INTO {name} SELECT l.tenant_id, {keep}, l.status FROM {ledger} l WHERE l.tenant_id = %s "
            f"AND l.{c['start_time']} >= %s AND l.{c['start_time']} < %s AND {rated} "
            f"AND abs(hashtext(l.{c['msisdn']}) %% {shares}) = %s ORDER BY hashtext(l.{c['msisdn']})")
    with ThreadPoolExecutor(shares, thread_name_prefix="bill-run-stage") as pool:
        # each share on its own connection: the statements run in parallel in their backends
        for done in [pool.submit(_execute, engine, [(_SETTINGS, None), (fill, (tenant_id, since, until, k))]) for k in range(shares)]:
            done.result()
    _execute(engine, [f"CREATE INDEX ON {name} (msisdn)", f"ANALYZE {name}",
                      (f"INSERT INTO {name} (tenant_id, msisdn) VALUES ('', '')", None)])
    return name


# heap pages per CDR above which the ledger is read from a stage: in the order calls are rated ~1 (one page per CDR);
# laid out by number (written account by account, or clustered) ~0.05 (200 CDRs on 10 pages), where the ledger's own
# read costs less than the copy (20,000 x 200: 0.52 against 1.01 ms of PostgreSQL's CPU per invoice)
SCATTERED_PAGES_PER_CDR = 0.25
SAMPLE_NUMBERS = 20


def scattered(engine: Any, c: Mapping[str, str], ledger: str, tenant_id: str, since: datetime, until: datetime) -> bool:
    """Whether the period's rows of a number lie on many heap pages: the pages per CDR of the numbers of the first
    rows found (a few thousand rows read, by the ledger's index on the number)."""
    period = f"l.tenant_id = %s AND l.{c['start_time']} >= %s AND l.{c['start_time']} < %s"
    raw = engine.raw_connection()
    try:
        with raw.dbapi_connection.cursor() as cur:
            cur.execute(f"SELECT count(DISTINCT (l.ctid::text::point)[0]), count(*) FROM {ledger} l WHERE {period} AND "
                        f"l.{c['msisdn']} = ANY(ARRAY(SELECT DISTINCT s.{c['msisdn']} FROM (SELECT l.{c['msisdn']} FROM {ledger} l "
                        f"WHERE {period} LIMIT {SAMPLE_NUMBERS * 10}) s LIMIT {SAMPLE_NUMBERS}))",
                        (tenant_id, since, until, tenant_id, since, until))
            pages, rows = cur.fetchone()
        raw.rollback()
    finally:
        raw.close()
    return bool(rows) and pages / rows > SCATTERED_PAGES_PER_CDR


def drop_stage(engine: Any, name: str) -> None:
    if name:
        _execute(engine, [f"DROP TABLE IF EXISTS {stage_name(name[len(PREFIX):])}"])


# the stage's creation time as its table comment, the database's clock (transaction_timestamp, UTC)
_STAMP = "rulebill bill run usage stage, created "
_STAMP_SQL = ("DO $stamp$ BEGIN EXECUTE format('COMMENT ON TABLE {name} IS %L', '" + _STAMP + "' || "
              "to_char(transaction_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')); END $stamp$")
FINISHED = ("done", "failed")   # engine.billing.ports.RunState: a run in these reads no stage (a resume stages again)
log = logging.getLogger("rulebill.billing")


def abandoned(run_state: str | None, staged_at: datetime | None, now: datetime, max_age: timedelta) -> bool:
    """Whether a stage is read by no run: its run is unknown (``None``) or finished, or it is still marked running but
    was staged more than ``max_age`` before ``now`` (killed and never resumed: a resume stages again).  A stage of a
    running run of unknown age is kept."""
    if run_state is None or run_state in FINISHED:
        return True
    return staged_at is not None and now - staged_at > max_age


def drop_abandoned_stages(engine: Any, now: datetime, max_age: timedelta, runs_table: str = "billing_runs") -> list[str]:
    """Drop the stages :func:`abandoned` says no run reads; their names.  Each one is decided and dropped in one
    transaction that holds its run's row (``FOR UPDATE``): a resume of that run, which marks it running before it
    stages, waits for it, then stages afresh.  A stage a batch is reading right now (a drop that cannot have its table
    within a few seconds) is left for the next time.  PostgreSQL only (elsewhere nothing is staged): []."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND starts_with(c.relname, :prefix) ORDER BY 1"),
            {"prefix": PREFIX})]
    dropped = []
    for name in names:
        run_id = name[len(PREFIX):]
        if not _RUN_ID.match(run_id):
            continue
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                run = conn.execute(text(f"SELECT state, start_time FROM {runs_table} WHERE lower(run_id) = :run FOR UPDATE"),
                                   {"run": run_id}).first()
                # read under the run's row: a resume that staged afresh before it is seen with its new stamp
                comment = conn.execute(text("SELECT obj_description(to_regclass(:name), 'pg_class')"), {"name": name}).scalar()
                staged_at = _stamped(comment) or (run.start_time if run is not None else None)
                if not abandoned(run.state if run is not None else None, staged_at, now, max_age):
                    continue
                conn.execute(text(f"DROP TABLE IF EXISTS {stage_name(run_id)}"))
        except Exception as exc:  # noqa: BLE001 - a table in use (lock timeout) or gone meanwhile: the next sweep
            log.warning("bill run usage stage %s not dropped now (%s); the next sweep tries again", name, type(exc).__name__)
            continue
        log.info("dropped the abandoned bill run usage stage %s (run %s)", name, run_id)
        dropped.append(name)
    return dropped


def _stamped(comment: str | None) -> datetime | None:
    if not comment or not comment.startswith(_STAMP):
        return None
    try:
        return datetime.fromisoformat(comment[len(_STAMP):]).astimezone(timezone.utc)
    except ValueError:
        return None


def check_stage(cur: Any, name: str) -> None:
    """Raise unless ``name`` is a complete stage (its mark row is there): an unlogged table emptied by a crash must not
    bill its accounts as if they had no usage."""
    cur.execute(f"SELECT 1 FROM {stage_name(name[len(PREFIX):])} WHERE msisdn = '' AND tenant_id = '' LIMIT 1")
    if cur.fetchone() is None:
        raise FailedPrecondition("USAGE_STAGE_LOST", f"the bill run's staged usage ({name}) is incomplete (the database restarted?): "
                                                     "resume the run", name)


# a share's sort in memory up to this much (spilled to temporary files beyond), no parallel workers of its own (the
# shares are the parallelism), no JIT for a statement run once
_SETTINGS = "SET work_mem = '64MB'; SET max_parallel_workers_per_gather = 0; SET jit = off"


def _execute(engine: Any, statements: list[Any]) -> None:
    raw = engine.raw_connection()
    try:
        driver = raw.dbapi_connection
        driver.autocommit = True
        try:
            with driver.cursor() as cur:
                for s in statements:
                    sql, params = s if isinstance(s, tuple) else (s, None)
                    cur.execute(sql, params)
        finally:
            driver.execute("RESET ALL")
            driver.autocommit = False
    finally:
        raw.close()
