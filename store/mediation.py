"""Mediation tables and the SQL store implementing ``engine.mediation.ports``.

One transaction per chunk: the chunk's normalised CDRs (bulk: SQLite ``executemany``,
PostgreSQL ``COPY``), its rejects (with the original bytes) and the file's checkpoint
row.  A process killed at any point leaves either the whole chunk or none of it, and
the next run resumes from the checkpoint: the stored result is one clean run's.

``mediated_cdrs.cdr_id`` is the primary key, so a CDR can never be stored twice, and
``SeenCdrIds.seen`` is a lookup on it.  Files are keyed by (submitting tenant,
SHA-256 of the content); a finished file is not ingested again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, LargeBinary, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from engine.cdr import COLUMNS
from engine.errors import FailedPrecondition
from engine.mediation.outcome import ReconciliationSummary, RejectedRecord
from engine.mediation.ports import Checkpoint, MediationChunk, checkpoint_from_json, checkpoint_to_json
from engine.mediation.rows import CdrRow

TS = DateTime(timezone=True)
meta = SQLModel.metadata

# the CDR table's columns in engine.cdr.COLUMNS order ("tenant" is tenant_id here), then where it came from
CDR_COLUMNS = tuple("tenant_id" if c == "tenant" else c for c in COLUMNS) + ("file_tenant_id", "file_id")
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
    Index("ix_mediated_cdrs_tenant_start", "tenant_id", "start_time"),
    Index("ix_mediated_cdrs_file", "file_tenant_id", "file_id"),
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
)

_SQLITE_INSERT = f"INSERT INTO mediated_cdrs ({', '.join(CDR_COLUMNS)}) VALUES ({', '.join('?' * len(CDR_COLUMNS))})"
_PG_COPY = f"COPY mediated_cdrs ({', '.join(CDR_COLUMNS)}) FROM STDIN"
_SEEN_BATCH = 500


class SqlMediationStore:
    """Both mediation ports for one submitting tenant, on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, db: Engine, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.dialect = db.dialect.name

    # ------------------------------------------------------------------ SeenCdrIds

    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(cdr_ids)
        with self.db.connect() as conn:
            for i in range(0, len(ids), _SEEN_BATCH):
                part = ids[i : i + _SEEN_BATCH]
                rows = conn.execute(select(mediated_cdrs.c.cdr_id).where(mediated_cdrs.c.cdr_id.in_(part)))
                found.update(r[0] for r in rows)
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
        except Exception as exc:
            # the driver's unique violation (a raw COPY raises psycopg's own): another run of the same
            # file, or of a file sharing CDRs, committed first; nothing of this chunk was stored
            if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
                raise FailedPrecondition(
                    "MEDIATION_CONFLICT", "another mediation run stored some of these CDRs first; retry to resume from its checkpoint",
                    chunk.file_id,
                ) from None
            raise

    def _commit(self, chunk: MediationChunk, file_row: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            if chunk.cdrs:
                raw = conn.connection.driver_connection
                if self.dialect == "postgresql":
                    self._copy(raw, chunk.cdrs, chunk.file_id)
                else:
                    self._executemany(raw, chunk.cdrs, chunk.file_id)
            if chunk.rejects:
                conn.execute(insert(mediation_rejects), [_reject_row(self.tenant_id, r) for r in chunk.rejects])
            done = conn.execute(
                update(mediation_files)
                .where(mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == chunk.file_id)
                .values(**file_row)
            )
            if done.rowcount == 0:
                conn.execute(insert(mediation_files).values(tenant_id=self.tenant_id, file_id=chunk.file_id, **file_row))

    def _tail(self, file_id: str) -> tuple[str, str]:
        return (self.tenant_id, file_id)

    def _executemany(self, raw: Any, rows: Sequence[CdrRow], file_id: str) -> None:
        tail = self._tail(file_id)
        fallback = self.tenant_id
        cur = raw.cursor()
        try:
            cur.executemany(_SQLITE_INSERT, [_sqlite_row(r, fallback) + tail for r in rows])
        finally:
            cur.close()

    def _copy(self, raw: Any, rows: Sequence[CdrRow], file_id: str) -> None:
        tail = self._tail(file_id)
        fallback = self.tenant_id
        cur = raw.cursor()
        try:
            with cur.copy(_PG_COPY) as copy:
                for r in rows:
                    copy.write_row((r if r[_TENANT] else _with_tenant(r, fallback)) + tail)
        finally:
            cur.close()

    # ------------------------------------------------------------------ reading back

    def summary(self, file_id: str) -> ReconciliationSummary | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(mediation_files.c.summary).where(mediation_files.c.tenant_id == self.tenant_id, mediation_files.c.file_id == file_id)
            ).first()
        return ReconciliationSummary.from_dict(json.loads(row[0])) if row else None

    def cdrs_of_file(self, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]:
        """The file's stored CDRs in pages, as rows in engine.cdr.COLUMNS order (start_time ISO UTC text)."""
        cols = [mediated_cdrs.c[c] for c in CDR_COLUMNS[: len(COLUMNS)]]
        after = ""
        while True:
            with self.db.connect() as conn:
                rows = conn.execute(
                    select(*cols)
                    .where(mediated_cdrs.c.file_tenant_id == self.tenant_id, mediated_cdrs.c.file_id == file_id, mediated_cdrs.c.cdr_id > after)
                    .order_by(mediated_cdrs.c.cdr_id)
                    .limit(page)
                ).all()
            if not rows:
                return
            yield [_row_from_db(r) for r in rows]
            after = rows[-1][0]

    def rejects_of_file(self, file_id: str) -> list[RejectedRecord]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(mediation_rejects)
                .where(mediation_rejects.c.tenant_id == self.tenant_id, mediation_rejects.c.file_id == file_id)
                .order_by(mediation_rejects.c.record_no)
            ).all()
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
