"""The SQL implementation of ``engine.vouchers.ports.VoucherRepository`` (tables: ``store/voucher_tables.py``).

Bulk generation bypasses the ORM: SQLite gets a packed ``INSERT ... SELECT`` and
PostgreSQL binary ``COPY``, both on the unit of work's own connection, so a
batch commits with its audit entry or not at all (also when the process is
killed).  Recharge (redemption, reservations) is ``store/voucher_recharge.py``:
one round trip on PostgreSQL, one write lock and three statements on SQLite.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import and_, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import AlreadyExists
from engine.vouchers.crypto import WrappedDataKey, split_sealed
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherRow, VoucherState
from engine.vouchers.ports import RechargeGuard, Redemption, RowReplacer, VoucherRepository, VoucherSelection
from engine.vouchers.profile import SerialFormat
from engine.vouchers.redemption import AttemptResult, PinAttempt, Reservation, ReservationStep
from store.repositories import UNIQUE_KEY_BROKEN, AuditRepo, SubscriberRepo, TenantRepo, aware
from store.voucher_recharge import PgRecharge, SqliteRecharge, redemption_from_row, reservations_with_id
from store.voucher_writer import RechargeWriter
from store.voucher_tables import (  # noqa: F401 - the tables are part of this module's interface
    prepaid_balances,
    recharge_guards,
    voucher_batches,
    voucher_redemptions,
    voucher_reservations,
    vouchers,
)

BULK_COLUMNS = ("batch_id", "serial", "lookup_hash", "sealed",
                "tenant_id", "dealer", "state", "currency", "face_value_micros", "expires_at", "updated_at")
_SQLITE_INSERT = (f"INSERT INTO vouchers ({', '.join(BULK_COLUMNS)}) VALUES ({', '.join('?' * len(BULK_COLUMNS))}) "
                  "ON CONFLICT (lookup_hash) DO NOTHING")
# A whole chunk in ONE statement: the rows travel packed in a single blob (fixed-width
# lookup_hash + sealed per voucher, serials contiguous) and SQLite unpacks them itself with a
# recursive counter and substr().  Versus executemany this halves the CPU per row (no Python
# binding of 11 values per row) and, above all, sqlite3 releases the GIL for the whole statement,
# so the producer thread builds the next chunk on the other core meanwhile (with executemany the
# GIL changes hands per row and the two threads mostly wait for each other).
# ("WHERE true" is SQLite's required disambiguation of INSERT ... SELECT ... ON CONFLICT.)
_SQLITE_INSERT_PACKED = f"""
INSERT INTO vouchers ({', '.join(BULK_COLUMNS)})
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < :count)
SELECT :batch_id, :first + n, substr(:packed, n * :width + 1, :hash_width),
       substr(:packed, n * :width + :hash_width + 1, :width - :hash_width),
       :tenant_id, :dealer, :state, :currency, :face_value_micros, :expires_at, :updated_at
FROM k WHERE true
ON CONFLICT (lookup_hash) DO NOTHING"""
SQLITE_BULK_CACHE_KIB = 256 * 1024
SQLITE_DEFAULT_CACHE = -2000  # SQLite's default (2 MiB)
_PG_COPY = f"COPY vouchers ({', '.join(BULK_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# PostgreSQL binary COPY: no text to format here or to parse (hex bytea, timestamps) in the server
_PG_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PG_BINARY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _sqlite_ts(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime storage format (naive UTC text), for the raw bulk path."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _pg_field(value: Any) -> bytes:
    """One batch-constant value as a binary COPY field (length + PostgreSQL's binary form)."""
    if isinstance(value, datetime):  # timestamptz: microseconds since 2000-01-01 UTC
        delta = value - _PG_EPOCH
        return struct.pack(">iq", 8, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if isinstance(value, int):  # bigint
        return struct.pack(">iq", 8, value)
    data = str(value).encode("utf-8")  # text / varchar
    return struct.pack(">i", len(data)) + data


def _uniform(rows: Sequence[VoucherRow]) -> tuple[int, int] | None:
    """``(hash width, sealed width)`` when every row has the same widths, else None."""
    hw, sw = len(rows[0][2]), len(rows[0][3])
    for r in rows:
        if len(r[2]) != hw or len(r[3]) != sw:
            return None
    return hw, sw


def _contiguous(rows: Sequence[VoucherRow]) -> bool:
    first = rows[0][1]
    return all(r[1] == first + i for i, r in enumerate(rows))


def _sqlite_packed(rows: Sequence[VoucherRow]) -> dict[str, Any] | None:
    """The per-chunk parameters of _SQLITE_INSERT_PACKED, or None when the rows do not fit it
    (replacement rows: scattered serials)."""
    widths = _uniform(rows)
    if widths is None or not _contiguous(rows):
        return None
    return {"count": len(rows), "first": rows[0][1], "packed": b"".join(chain.from_iterable((r[2], r[3]) for r in rows)),
            "width": widths[0] + widths[1], "hash_width": widths[0]}


# PostgreSQL gets each chunk in lookup-hash order: the unique index is then filled in one sweep per
# chunk instead of at random pages (measured: the server's COPY time -13 %; sorting costs the client
# ~1 us per row, in the producer thread, overlapped with the server)
_LOOKUP_HASH = itemgetter(2)


def _pg_binary_rows(rows: Sequence[VoucherRow], batch_id: str, tail_values: tuple[Any, ...]) -> bytes:
    """One chunk as a complete binary COPY stream (header, tuples, trailer)."""
    head = struct.pack(">h", len(BULK_COLUMNS)) + _pg_field(batch_id)
    tail = b"".join(_pg_field(v) for v in tail_values)
    widths = _uniform(rows)
    if widths is not None:
        pack = struct.Struct(f">{len(head)}siqi{widths[0]}si{widths[1]}s{len(tail)}s").pack
        hw, sw = widths
        body = b"".join([pack(head, 8, serial, hw, digest, sw, sealed, tail) for _, serial, digest, sealed in rows])
    else:
        body = b"".join([head + struct.pack(">iq", 8, serial) + _pg_field_bytes(digest) + _pg_field_bytes(sealed) + tail
                         for _, serial, digest, sealed in rows])
    return _PG_BINARY_HEADER + body + _PG_BINARY_TRAILER


def _pg_field_bytes(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


_DONE = object()


def prefetched(chunks: Iterable[Sequence[VoucherRow]], prepare: Callable[[Sequence[VoucherRow]], Any],
               depth: int = 2) -> Iterator[tuple[Sequence[VoucherRow], Any]]:
    """Produce the next chunks -- and ``prepare(chunk)``, their insert payload -- in a helper thread
    while the database takes the current one; yields ``(chunk, payload)``.

    The drivers release the GIL while the server works (PostgreSQL) or SQLite runs a statement, so
    PIN generation, encoding and insertion overlap, and the database never waits for Python to
    encode the next chunk.  An exception of the producer (a cancelled request) surfaces here, in
    the caller's thread.
    """
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                box.put((chunk, prepare(chunk)))
            box.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the consumer
            box.put(exc)

    worker = threading.Thread(target=produce, name="voucher-rows", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class SqlVoucherRepository(VoucherRepository):
    """``session``: the unit of work's session, or a function that opens it on first use (PostgreSQL recharge needs none)."""

    def __init__(self, session: Session | Callable[[], Session], hot: PgRecharge | RechargeWriter | None = None) -> None:
        self._session = session
        # recharge: on PostgreSQL one statement on its own autocommit connection; on a SQLite file the group-commit
        # writer; without either (an in-memory SQLite database) in this unit of work
        self._hot = hot

    @property
    def s(self) -> Session:
        return self._session if isinstance(self._session, Session) else self._session()

    @property
    def _dialect(self) -> str:
        return self.s.get_bind().dialect.name

    # --- batches ---------------------------------------------------------
    def next_serial(self) -> int:
        top = self.s.execute(select(func.max(voucher_batches.c.first_serial + voucher_batches.c["count"]))).scalar()
        return int(top) if top else 1

    def create_batch_atomically(self, batch: VoucherBatch, chunks: Iterable[Sequence[VoucherRow]], replace_rows: RowReplacer) -> int:
        try:
            self.s.execute(insert(voucher_batches).values(**_batch_values(batch)))
        except IntegrityError:
            raise AlreadyExists("voucher batch", batch.batch_id) from None
        raw = self.s.connection().connection.driver_connection
        assert raw is not None
        extra = (batch.owner, batch.dealer, VoucherState.GENERATED.value, batch.currency, batch.face_value_micros)
        inserted = 0
        sqlite = self._dialect != "postgresql"
        if sqlite:
            # random lookup hashes make the unique index the cost of a bulk insert; a large page cache
            # for this connection while it runs more than halves it (reset below: connections are pooled)
            raw.execute(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
        try:
            pg_tail = extra + (_utc(batch.expires_at), _utc(batch.created_at))
            prepare: Callable[[Sequence[VoucherRow]], Any] = (_sqlite_packed if sqlite
                       else (lambda rows: _pg_binary_rows(sorted(rows, key=_LOOKUP_HASH), batch.batch_id, pg_tail)))
            for chunk, payload in prefetched(chunks, prepare):
                pending: Sequence[VoucherRow] = chunk
                while pending:
                    missing = (self._sqlite_chunk(raw, pending, extra, batch, payload) if sqlite
                               else self._copy_chunk(raw, pending, extra, batch, payload))
                    payload = None  # replacement rows are encoded on the spot
                    inserted += len(pending) - len(missing)
                    # a PIN another batch already holds: draw new ones for those serials
                    pending = replace_rows(missing) if missing else []
        except UNIQUE_KEY_BROKEN:  # a serial another batch holds
            raise AlreadyExists("voucher serials", f"{batch.first_serial}-{batch.last_serial}") from None
        finally:
            if sqlite:
                raw.execute(f"PRAGMA cache_size={SQLITE_DEFAULT_CACHE}")
        return inserted

    def _sqlite_chunk(self, raw: Any, rows: Sequence[VoucherRow], extra: tuple[Any, ...], batch: VoucherBatch,
                      packed: dict[str, Any] | None = None) -> list[int]:
        expires, created = _sqlite_ts(batch.expires_at), _sqlite_ts(batch.created_at)
        if packed is None:
            packed = _sqlite_packed(rows)
        cur = raw.cursor()
        try:
            if packed is not None:
                tenant_id, dealer, state, currency, micros = extra
                cur.execute(_SQLITE_INSERT_PACKED, packed | {
                    "batch_id": batch.batch_id, "tenant_id": tenant_id, "dealer": dealer, "state": state, "currency": currency,
                    "face_value_micros": micros, "expires_at": expires, "updated_at": created})
            else:  # replacement rows (scattered serials): the plain way
                tail = extra + (expires, created)
                cur.executemany(_SQLITE_INSERT, [row + tail for row in rows])
            if cur.rowcount == len(rows):
                return []
            serials = [row[1] for row in rows]
            cur.execute("SELECT serial FROM vouchers WHERE serial BETWEEN ? AND ?", (min(serials), max(serials)))
            present = {r[0] for r in cur.fetchall()}
        finally:
            cur.close()
        return [s for s in serials if s not in present]

    def _copy_chunk(self, raw: Any, rows: Sequence[VoucherRow], extra: tuple[Any, ...], batch: VoucherBatch,
                    payload: bytes | None = None) -> list[int]:
        tail = extra + (_utc(batch.expires_at), _utc(batch.created_at))
        cur = raw.cursor()
        try:
            cur.execute("SAVEPOINT voucher_chunk")
            try:
                with cur.copy(_PG_COPY) as copy:
                    copy.write(payload if payload is not None else _pg_binary_rows(rows, batch.batch_id, tail))
                cur.execute("RELEASE SAVEPOINT voucher_chunk")
                return []
            except Exception as exc:
                if getattr(getattr(exc, "diag", None), "constraint_name", "") != "uq_vouchers_lookup_hash":
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT voucher_chunk")
            # rare path: a PIN of this chunk exists in another batch; insert row by row, skipping those
            missing = []
            sql = (f"INSERT INTO vouchers ({', '.join(BULK_COLUMNS)}) VALUES ({', '.join(['%s'] * len(BULK_COLUMNS))}) "
                   "ON CONFLICT (lookup_hash) DO NOTHING")
            for row in rows:
                cur.execute(sql, row + tail)
                if cur.rowcount == 0:
                    missing.append(row[1])
            return missing
        finally:
            cur.close()

    def get_batch(self, batch_id: str) -> VoucherBatch | None:
        row = self.s.execute(select(voucher_batches).where(voucher_batches.c.batch_id == batch_id)).first()
        return _batch(row) if row else None

    def list_batches(self, owners: frozenset[str] | None, after: str | None, limit: int) -> list[VoucherBatch]:
        q = select(voucher_batches).order_by(voucher_batches.c.batch_id).limit(limit)
        if owners is not None:
            q = q.where(voucher_batches.c.tenant_id.in_(sorted(owners)))
        if after is not None:
            q = q.where(voucher_batches.c.batch_id > after)
        return [_batch(r) for r in self.s.execute(q)]

    def set_batch_state(self, batch_id: str, expected: BatchState, new: BatchState, others_state: str = "",
                        expected_others: str | None = None) -> bool:
        b = voucher_batches.c
        q = update(voucher_batches).where(b.batch_id == batch_id, b.state == expected.value)
        if expected_others is not None:
            q = q.where(b.others_state == expected_others)
        result = self.s.execute(q.values(state=new.value, others_state=others_state))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_data_key(self, batch_id: str, wrapped: WrappedDataKey | None) -> None:
        values: dict[str, Any] = {"wrapped_data_key": None}
        if wrapped is not None:
            values = {"wrapped_data_key": wrapped.wrapped, "key_wrap": wrapped.wrap_algorithm, "master_key_version": wrapped.master_version}
        self.s.execute(update(voucher_batches).where(voucher_batches.c.batch_id == batch_id).values(**values))

    def batches_with_master_version_below(self, version: int, limit: int) -> list[VoucherBatch]:
        q = (select(voucher_batches).where(voucher_batches.c.master_key_version < version,
                                           voucher_batches.c.wrapped_data_key.is_not(None))
             .order_by(voucher_batches.c.batch_id).limit(limit))
        return [_batch(r) for r in self.s.execute(q)]

    # --- vouchers --------------------------------------------------------
    def get_voucher(self, serial: int, for_update: bool = False) -> Voucher | None:
        q = select(vouchers).where(vouchers.c.serial == serial)
        # for_update (an amendment): two concurrent amendments each write the fields they read, so the second waits for
        # the first and reads what it left instead of writing back the fields the first changed
        row = self.s.execute(q.with_for_update() if for_update else q).first()
        return _voucher(row) if row else None

    def find_by_lookup_hash(self, hashes: Sequence[bytes]) -> Voucher | None:
        row = self.s.execute(select(vouchers).where(vouchers.c.lookup_hash.in_(list(hashes)))).first()
        return _voucher(row) if row else None

    def stream_vouchers(self, selection: VoucherSelection, chunk_size: int) -> Iterator[list[Voucher]]:
        after = -1
        while True:
            q = select(vouchers).where(_where(selection), vouchers.c.serial > after).order_by(vouchers.c.serial).limit(chunk_size)
            chunk = [_voucher(r) for r in self.s.execute(q)]
            if not chunk:
                return
            yield chunk
            if len(chunk) < chunk_size:
                return
            after = chunk[-1].serial

    def count_by_state(self, selection: VoucherSelection) -> dict[VoucherState, int]:
        q = select(vouchers.c.state, func.count()).where(_where(selection)).group_by(vouchers.c.state)
        return {VoucherState(state): int(n) for state, n in self.s.execute(q)}

    def owners(self, selection: VoucherSelection) -> list[str]:
        q = select(vouchers.c.tenant_id).where(_where(selection)).distinct().order_by(vouchers.c.tenant_id)
        return [r[0] for r in self.s.execute(q)]

    def batch_ids(self, selection: VoucherSelection) -> list[str]:
        q = select(vouchers.c.batch_id).where(_where(selection)).distinct().order_by(vouchers.c.batch_id)
        return [r[0] for r in self.s.execute(q)]

    def transition_vouchers(self, selection: VoucherSelection, from_state: VoucherState, to_state: VoucherState,
                            at: datetime) -> int:
        values: dict[str, Any] = {"state": to_state.value, "updated_at": at}
        if to_state is VoucherState.PURGED:
            # purge forgets the PIN: no lookup hash, no ciphertext
            values |= {"lookup_hash": None, "sealed": b""}
        q = update(vouchers).where(_where(selection), vouchers.c.state == from_state.value).values(**values)
        return int(self.s.execute(q).rowcount)  # type: ignore[attr-defined]

    def update_voucher(self, voucher: Voucher, expected_state: VoucherState) -> bool:
        q = (update(vouchers).where(vouchers.c.serial == voucher.serial, vouchers.c.state == expected_state.value)
             .values(expires_at=voucher.expires_at, face_value_micros=voucher.face_value_micros, tenant_id=voucher.owner,
                     dealer=voucher.dealer, updated_at=voucher.updated_at))
        return bool(self.s.execute(q).rowcount)  # type: ignore[attr-defined]

    # --- redemption ------------------------------------------------------
    def get_redemption(self, tenant_id: str, request_id: str) -> Redemption | None:
        t = voucher_redemptions
        row = self.s.execute(select(t).where(t.c.tenant_id == tenant_id, t.c.request_id == request_id)).first()
        return redemption_from_row(row) if row else None

    def reservations_with_id(self, reservation_id: str) -> list[Reservation]:
        return reservations_with_id(self.s, reservation_id)

    def attempt_pin(self, attempt: PinAttempt) -> AttemptResult:
        if self._hot is not None:
            return self._hot.attempt(attempt)
        return SqliteRecharge(self.s).attempt(attempt)

    def step_reservation(self, step: ReservationStep) -> AttemptResult:
        if self._hot is not None:
            return self._hot.step(step)
        return SqliteRecharge(self.s).step(step)

    # --- brute-force guard ------------------------------------------------
    def get_recharge_guard(self, msisdn: str) -> RechargeGuard:
        row = self.s.execute(select(recharge_guards).where(recharge_guards.c.msisdn == msisdn)).first()
        if row is None:
            return RechargeGuard(msisdn)
        return RechargeGuard(msisdn, int(row.failed_attempts), aware(row.barred_until), aware(row.last_failure_at))

    def save_recharge_guard(self, guard: RechargeGuard) -> None:
        values = {"failed_attempts": guard.failed_attempts, "barred_until": guard.barred_until, "last_failure_at": guard.last_failure_at}
        dialect_insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        stmt = dialect_insert(recharge_guards).values(msisdn=guard.msisdn, **values)
        self.s.execute(stmt.on_conflict_do_update(index_elements=["msisdn"], set_=values))


def _where(selection: VoucherSelection) -> Any:
    c = vouchers.c
    conditions = []
    if selection.batch_id:
        # a batch owns the serials first_serial .. first_serial + count - 1: the range lets the primary key
        # find its vouchers (there is no batch_id index); NULL bounds (unknown batch) match nothing
        b = voucher_batches.c
        of_batch = b.batch_id == selection.batch_id
        conditions += [c.batch_id == selection.batch_id,
                       c.serial >= select(b.first_serial).where(of_batch).scalar_subquery(),
                       c.serial < select(b.first_serial + b["count"]).where(of_batch).scalar_subquery()]
    if selection.first_serial is not None:
        conditions.append(c.serial >= selection.first_serial)
    if selection.last_serial is not None:
        conditions.append(c.serial <= selection.last_serial)
    if selection.states is not None:
        conditions.append(c.state.in_(sorted(s.value for s in selection.states)))
    if selection.expired_by is not None:
        conditions.append(c.expires_at <= selection.expired_by)
    if selection.valid_at is not None:
        conditions.append(c.expires_at > selection.valid_at)
    if selection.owners is not None:
        conditions.append(c.tenant_id.in_(sorted(selection.owners)))
    if selection.changed_by is not None:
        conditions.append(c.updated_at <= selection.changed_by)
    return and_(True, *conditions)


def _batch_values(b: VoucherBatch) -> dict[str, Any]:
    return dict(
        batch_id=b.batch_id, tenant_id=b.owner, profile_id=b.profile_id, dealer=b.dealer, currency=b.currency,
        face_value_micros=b.face_value_micros, count=b.count, first_serial=b.first_serial, serial_prefix=b.serial.prefix,
        serial_digits=b.serial.digits, pin_length=b.pin_length, created_at=b.created_at, expires_at=b.expires_at,
        recharge_extension_days=b.recharge_extension_days, state=b.state.value, pin_cipher=b.pin_cipher, key_wrap=b.key_wrap,
        wrapped_data_key=b.wrapped_data_key, master_key_version=b.master_key_version, lookup_key_version=b.lookup_key_version,
        created_by=b.created_by, others_state=b.others_state,
    )


def _batch(r: Row[Any]) -> VoucherBatch:
    return VoucherBatch(
        batch_id=r.batch_id, profile_id=r.profile_id, owner=r.tenant_id, dealer=r.dealer, currency=r.currency,
        face_value_micros=int(r.face_value_micros), count=int(r._mapping["count"]), first_serial=int(r.first_serial),
        serial=SerialFormat(r.serial_prefix, int(r.serial_digits)), pin_length=int(r.pin_length),
        created_at=aware(r.created_at),
        expires_at=aware(r.expires_at),
        recharge_extension_days=int(r.recharge_extension_days), state=BatchState(r.state), pin_cipher=r.pin_cipher,
        key_wrap=r.key_wrap, wrapped_data_key=bytes(r.wrapped_data_key) if r.wrapped_data_key is not None else None,
        master_key_version=int(r.master_key_version), lookup_key_version=int(r.lookup_key_version), created_by=r.created_by,
        others_state=r.others_state or "",
    )


def _voucher(r: Row[Any]) -> Voucher:
    nonce, ciphertext = split_sealed(bytes(r.sealed))
    return Voucher(
        batch_id=r.batch_id, serial=int(r.serial), state=VoucherState(r.state), currency=r.currency,
        face_value_micros=int(r.face_value_micros), expires_at=aware(r.expires_at),
        owner=r.tenant_id, dealer=r.dealer, nonce=nonce, ciphertext=ciphertext, redeemed_by=r.redeemed_by,
        redeemed_at=aware(r.redeemed_at), redemption_request_id=r.redemption_request_id, updated_at=aware(r.updated_at),
    )


class SqlVoucherUnitOfWork:
    """One session and transaction with the voucher repository beside the foundation's.

    The session opens on first use: a recharge (one statement on PostgreSQL's own connection, or a request to the
    SQLite writer thread) needs no session, so it pays for none.
    """

    def __init__(self, base: Any, hot: PgRecharge | RechargeWriter | None) -> None:
        self._base = base  # store.uow.SqlUnitOfWork (not entered yet)
        self._hot = hot
        self._open = False

    def __enter__(self) -> "SqlVoucherUnitOfWork":
        self.vouchers = SqlVoucherRepository(self._session, self._hot)
        return self

    def _session(self) -> Session:
        if not self._open:
            self._base.__enter__()
            self._open = True
        session: Session = self._base.session
        return session

    @property
    def session(self) -> Session:
        return self._session()

    @property
    def subscribers(self) -> SubscriberRepo:
        self._session()
        repo: SubscriberRepo = self._base.subscribers
        return repo

    @property
    def tenants(self) -> TenantRepo:
        self._session()
        repo: TenantRepo = self._base.tenants
        return repo

    @property
    def audit(self) -> AuditRepo:
        self._session()
        repo: AuditRepo = self._base.audit
        return repo

    def __exit__(self, *exc: Any) -> None:
        if self._open:
            self._base.__exit__(*exc)

    def commit(self) -> None:
        if self._open:
            self._base.commit()

    def rollback(self) -> None:
        if self._open:
            self._base.rollback()


class SqlVoucherUnitOfWorkFactory:
    """``base_factory``: store.uow.SqlUnitOfWorkFactory.  Recharge gets its own connections, closed with the main
    engine: on PostgreSQL a pool of autocommit connections (:func:`store.voucher_recharge.recharge_engine`), on a
    SQLite file the group-commit writer (:mod:`store.voucher_writer`)."""

    def __init__(self, base_factory: Any) -> None:
        self._base = base_factory
        engine: Engine = base_factory.engine
        self._hot: PgRecharge | RechargeWriter | None = None
        if engine.dialect.name == "postgresql":
            self._hot = PgRecharge.for_engine(engine)
        elif engine.url.database not in (None, "", ":memory:"):  # an in-memory database is private to its connection
            writer = self._hot = RechargeWriter(engine.url.render_as_string(hide_password=False))

            @event.listens_for(engine, "engine_disposed")
            def _close_with_main(_engine: Any) -> None:
                writer.close()

    def __call__(self) -> SqlVoucherUnitOfWork:
        return SqlVoucherUnitOfWork(self._base(), self._hot)
