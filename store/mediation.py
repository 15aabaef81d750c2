"""Mediation tables and the SQL store implementing ``engine.mediation.ports``.

One transaction per chunk: the chunk's normalised CDRs (bulk: SQLite ``executemany``,
PostgreSQL ``COPY``), its rejects (with the original bytes) and the file's checkpoint
row.  A process killed at any point leaves either the whole chunk or none of it, and
the next run resumes from the checkpoint: the stored result is one clean run's.

``mediated_cdrs.cdr_id`` is the primary key, so a CDR can never be stored twice, and
``SeenCdrIds.seen`` is a lookup on it.  Identities carry the submitting tenant
(``engine.cdr.cdr_identity``), so that key and that lookup never meet another tenant's CDRs.  Files are keyed by (submitting tenant,
SHA-256 of the content); a finished file is not ingested again.  Each file also gets a
small integer ``file_key`` and each of its CDRs a ``file_seq`` (1, 2, 3 ... in commit
order, derived from the checkpoint's count, so a resumed run numbers exactly as a clean
one): the per-file index is two integers appended in order, not ~100 bytes of text at a
random place (migration mediation_0002).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, LargeBinary, String, Table, Text, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from engine.cdr import COLUMNS
from engine.errors import FailedPrecondition
from engine.mediation.outcome import ReconciliationSummary, RejectedRecord
from engine.mediation.ports import Checkpoint, MediationChunk, checkpoint_from_json, checkpoint_to_json
from engine.mediation.rows import CdrRow
from store.repositories import UNIQUE_KEY_BROKEN

TS = DateTime(timezone=True)
meta = SQLModel.metadata

# the CDR table's columns in engine.cdr.COLUMNS order ("tenant" is tenant_id here), then where it came from
CDR_COLUMNS = tuple("tenant_id" if c == "tenant" else c for c in COLUMNS) + ("file_tenant_id", "file_id", "file_key", "file_seq")
_TENANT = COLUMNS.index("tenant")
_START = COLUMNS.index("start_time")

mediated_cdrs = Table(
    "mediated_cdrs", meta,
    Column("cdr_id", String(32), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("origin_id", String(255), nullable=False),
    Column("service", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("start_time", TS, nullable=False),
    Column("a_number", String(64), nullable=False),
    Column("b_number", String(255), nullable=False),
    Column("imsi", String(15), nullable=False),
    Column("duration_seconds", BigInteger, nullable=False),
    Column("volume_up_bytes", BigInteger, nullable=False),
    Column("volume_down_bytes", BigInteger, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Column("visited_network", String(16), nullable=False),
    Column("supplementary_code", String(16), nullable=False),
    Column("charge_micros", BigInteger, nullable=True),
    Column("charge_currency", String(3), nullable=False),
    Column("tenant_id", String(40), nullable=False),       # the tenant the CDR belongs to (by IMSI/MSISDN range)
    Column("attributes", Text, nullable=False),
    Column("file_tenant_id", String(40), nullable=False),  # who submitted the file
    Column("file_id", String(64), nullable=False),
    Column("file_key", BigInteger, nullable=True),         # mediation_files.file_key (migration mediation_0002)
    Column("file_seq", BigInteger, nullable=True),         # 1, 2, 3 ... in the order the file's CDRs were stored
    Index("ix_mediated_cdrs_tenant_start", "tenant_id", "start_time"),
    Index("ix_mediated_cdrs_file_seq", "file_key", "file_seq", unique=True),
)

mediation_rejects = Table(
    "mediation_rejects", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("file_id", String(64), primary_key=True),
    Column("record_no", BigInteger, primary_key=True, autoincrement=False),
    Column("line", BigInteger, nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("code", String(64), nullable=False),
    Column("field", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("raw_truncated", Boolean, nullable=False),
)

mediation_files = Table(
    "mediation_files", meta,
    Column("tenant_id", String(40), primary_key=True),
    Column("file_id", String(64), primary_key=True),
    Column("file_name", String(255), nullable=False),
    Column("layout", String(64), nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("record_no", BigInteger, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("checkpoint", Text, nullable=False),            # engine.mediation.ports.checkpoint_to_json
    Column("summary", Text, nullable=False),               # ReconciliationSummary.to_json(): final when done
    Column("updated_at", TS, nullable=False),
    Column("file_key", BigInteger, nullable=True),         # small unique number of the file, on each of its CDRs
    Index("ux_mediation_files_key", "file_key", unique=True),
)

_SQLITE_INSERT = f"INSERT INTO mediated_cdrs ({', '.join(CDR_COLUMNS)}) VALUES ({', '.join('?' * len(CDR_COLUMNS))})"
_PG_COPY = f"COPY mediated_cdrs ({', '.join(CDR_COLUMNS)}) FROM STDIN"
_SEEN_BATCH = 500
_SQLITE_CACHE_KIB = 65536   # per connection, while it ingests


class SqlMediationStore:
    """Both mediation ports for one submitting tenant, on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, db: Engine, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.dialect = db.dialect.name

    # ------------------------------------------------------------------ SeenCdrIds

    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        # plain driver SQL: SQLAlchemy compiling a 500-value IN per query cost more than the lookups
        found: set[str] = set()
        ids = list(cdr_ids)
        raw = self.db.raw_connection()
        try:
            cur = raw.cursor()
            if self.dialect == "postgresql":   # one array parameter: an IN list of 500 was planned badly once prepared
                cur.execute("SELECT cdr_id FROM mediated_cdrs WHERE cdr_id = ANY(%s::varchar[])", (ids,))
                found.update(r[0] for r in cur.fetchall())
            else:
                for i in range(0, len(ids), _SEEN_BATCH):
                    part = ids[i : i + _SEEN_BATCH]
                    cur.execute(f"SELECT cdr_id FROM mediated_cdrs WHERE cdr_id IN ({', '.join('?' * len(part))})", part)
                    found.update(r[0] for r in cur.fetchall())
            cur.close()
            raw.commit()   # end the read transaction (PostgreSQL opens one)
        finally:
            raw.close()
        return found

    # ------------------------------------------------------------------ MediationSink

    def checkpoint(self, file_id: str) -> Checkpoint | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(mediation_files.c.checkpoint).where(mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == file_id)
            ).first()
        return checkpoint_from_json(json.loads(row[0])) if row else None

    def commit(self, chunk: MediationChunk) -> None:
        cp = chunk.checkpoint
        now = datetime.now(timezone.utc)
        file_row = {
            "file_name": cp.summary.file_name[:255],
            "layout": cp.summary.layout,
            "byte_offset": cp.byte_offset,
            "record_no": cp.record_no,
            "done": cp.done,
            "checkpoint": json.dumps(checkpoint_to_json(cp)),
            "summary": cp.summary.to_json(),
            "updated_at": now,
        }
        try:
            self._commit(chunk, file_row)
        except UNIQUE_KEY_BROKEN:
            # another run of the same file, or of a file sharing CDRs, committed first; nothing of this chunk was stored
            raise FailedPrecondition(
                "MEDIATION_CONFLICT", "another mediation run stored some of these CDRs first; retry to resume from its checkpoint",
                chunk.file_id,
            ) from None

    def _commit(self, chunk: MediationChunk, file_row: dict[str, Any]) -> None:
        where = (mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == chunk.file_id)
        with self.db.begin() as conn:
            key = conn.execute(select(mediation_files.c.file_key).where(*where)).first()
            if key is None:
                # a new file: the next small key (a racing writer of another file hits the unique index and retries)
                file_key = conn.execute(select(func.coalesce(func.max(mediation_files.c.file_key), 0) + 1)).scalar_one()
                conn.execute(insert(mediation_files).values(tenant_id=self.tenant_id, file_id=chunk.file_id, file_key=file_key, **file_row))
            else:
                file_key = key[0]
                conn.execute(update(mediation_files).where(*where).values(**file_row))
            if chunk.cdrs:
                # the file's CDRs are numbered in commit order: this chunk's follow the ones its checkpoint counts before it
                first_seq = chunk.checkpoint.summary.normalised - len(chunk.cdrs) + 1
                raw = conn.connection.driver_connection
                assert raw is not None  # a live connection inside begin()
                if self.dialect == "postgresql":
                    self._copy(raw, chunk.cdrs, chunk.file_id, file_key, first_seq)
                else:
                    # the random cdr_id keys hit every page of the primary-key index: SQLite's default
                    # 2 MB page cache thrashes long before a million rows (measured: ~2x the wall time)
                    raw.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
                    self._executemany(raw, chunk.cdrs, chunk.file_id, file_key, first_seq)
            if chunk.rejects:
                conn.execute(insert(mediation_rejects), [_reject_row(self.tenant_id, r) for r in chunk.rejects])

    def _tail(self, file_id: str, file_key: int) -> tuple[str, str, int]:
        return (self.tenant_id, file_id, file_key)

    def _executemany(self, raw: Any, rows: Sequence[CdrRow], file_id: str, file_key: int, first_seq: int) -> None:
        tail = self._tail(file_id, file_key)
        fallback = self.tenant_id
        cur = raw.cursor()
        try:
            cur.executemany(_SQLITE_INSERT, [_sqlite_row(r, fallback) + tail + (seq,) for seq, r in enumerate(rows, first_seq)])
        finally:
            cur.close()

    def _copy(self, raw: Any, rows: Sequence[CdrRow], file_id: str, file_key: int, first_seq: int) -> None:
        tail = self._tail(file_id, file_key)
        fallback = self.tenant_id
        cur = raw.cursor()
        try:
            with cur.copy(_PG_COPY) as copy:
                for seq, r in enumerate(rows, first_seq):
                    copy.write_row((r if r[_TENANT] else _with_tenant(r, fallback)) + tail + (seq,))
        finally:
            cur.close()

    def record_rating(self, file_id: str, rated: int, unrated: int) -> None:
        """Store how many of a finished file's CDRs were rated (in its summary and its checkpoint's)."""
        where = (mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == file_id)
        with self.db.begin() as conn:
            row = conn.execute(select(mediation_files.c.checkpoint, mediation_files.c.summary).where(*where)).first()
            if row is None:
                return
            checkpoint = json.loads(row[0])
            summary = json.loads(row[1])
            for data in (checkpoint["summary"], summary):
                data["rated"], data["unrated"] = rated, unrated
            conn.execute(update(mediation_files).where(*where).values(
                checkpoint=json.dumps(checkpoint), summary=json.dumps(summary, sort_keys=True), updated_at=datetime.now(timezone.utc)))

    # ------------------------------------------------------------------ reading back

    def summary(self, file_id: str) -> ReconciliationSummary | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(mediation_files.c.summary).where(mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == file_id)
            ).first()
        return ReconciliationSummary.from_dict(json.loads(row[0])) if row else None

    def cdrs_of_file(self, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]:
        """The file's stored CDRs in pages, in the order they were stored, as rows in engine.cdr.COLUMNS
        order (start_time ISO UTC text)."""
        cols = [mediated_cdrs.c[c] for c in CDR_COLUMNS[: len(COLUMNS)]]
        with self.db.connect() as conn:
            key = conn.execute(select(mediation_files.c.file_key).where(
                mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == file_id)).scalar()
        if key is None:
            return
        after = 0
        while True:
            with self.db.connect() as conn:
                rows = conn.execute(
                    select(*cols, mediated_cdrs.c.file_seq)
                    .where(mediated_cdrs.c.file_key == key, mediated_cdrs.c.file_seq > after)
                    .order_by(mediated_cdrs.c.file_seq)
                    .limit(page)
                ).all()
            if not rows:
                return
            yield [_row_from_db(r[:-1]) for r in rows]
            after = rows[-1][-1]

    def rejects_of_file(self, file_id: str, after: int = 0, limit: int | None = None) -> list[RejectedRecord]:
        t = mediation_rejects
        q = select(t).where(t.c.tenant_id == self.tenant_id, t.c.file_id == file_id, t.c.record_no > after).order_by(t.c.record_no)
        with self.db.connect() as conn:
            rows = conn.execute(q if limit is None else q.limit(limit)).all()
        return [
            RejectedRecord(file_id, r.record_no, r.line, r.byte_offset, r.code, r.field, r.reason, bytes(r.raw), r.raw_truncated)
            for r in rows
        ]


def _with_tenant(row: CdrRow, tenant: str) -> CdrRow:
    return row[:_TENANT] + (tenant,) + row[_TENANT + 1 :]


def _sqlite_row(row: CdrRow, fallback_tenant: str) -> tuple:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC text), so ORM reads parse it
    iso = row[_START]
    stamp = f"{iso[:10]} {iso[11:19]}.000000"
    out = row[:_START] + (stamp,) + row[_START + 1 :]
    return out if row[_TENANT] else _with_tenant(out, fallback_tenant)


def _row_from_db(r: Any) -> CdrRow:
    start = r[_START]
    if isinstance(start, datetime):
        start = (start if start.tzinfo else start.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return tuple(r[:_START]) + (start,) + tuple(r[_START + 1 :])


def _reject_row(tenant_id: str, r: RejectedRecord) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "file_id": r.file_id,
        "record_no": r.record_no,
        "line": r.line,
        "byte_offset": r.byte_offset,
        "code": r.code,
        "field": r.field[:64],
        "reason": r.reason,
        "raw": r.raw,
        "raw_truncated": r.raw_truncated,
    }


class SqlSubscriberTenants:
    """engine.mediation.tenants.SubscriberTenants on the subscribers table: the tenant of each live
    subscriber with one of these IMSIs / MSISDNs (one query per 500, for a whole batch)."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def tenants_by_imsi(self, imsis: Sequence[str]) -> dict[str, str]:
        return self._by("imsi", imsis)

    def tenants_by_msisdn(self, msisdns: Sequence[str]) -> dict[str, str]:
        return self._by("msisdn", msisdns)

    def _by(self, column: str, values: Sequence[str]) -> dict[str, str]:
        from store.tables import SubscriberRow

        table = SubscriberRow.__table__  # type: ignore[attr-defined]
        key = table.c[column]
        out: dict[str, str] = {}
        wanted = [v for v in values if v and len(v) <= 15]
        with self.db.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(select(key, table.c.tenant_id).where(key.in_(wanted[i:i + 500]), table.c.status != "deactivated"))
                out.update((r[0], r[1]) for r in rows)
        return out


def stored_cdrs_between(db: Engine, tenant_ids: set[str] | None, start: datetime, end: datetime,
                        page: int = 2000) -> Iterator[CdrRow]:
    """Stored CDRs of ``tenant_ids`` (None: every tenant) with start_time in [start, end), in pages
    (keyset on cdr_id, so memory stays bounded whatever the period)."""
    cols = [mediated_cdrs.c[c] for c in CDR_COLUMNS[: len(COLUMNS)]]
    after = ""
    while True:
        q = select(*cols).where(mediated_cdrs.c.start_time >= start, mediated_cdrs.c.start_time < end,
                                mediated_cdrs.c.cdr_id > after).order_by(mediated_cdrs.c.cdr_id).limit(page)
        if tenant_ids is not None:
            q = q.where(mediated_cdrs.c.tenant_id.in_(sorted(tenant_ids)))
        with db.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return
        for r in rows:
            yield _row_from_db(r)
        after = rows[-1][0]
