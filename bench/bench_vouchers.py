"""Voucher batch generation: Rulebill's GenerateBatch over gRPC against a hand-written raw floor.

    python -m bench.bench_vouchers            # 100,000 and 1,000,000 vouchers, 3 repetitions
    python -m bench.bench_vouchers --quick    # 20,000 vouchers, a smoke run
    python -m bench.bench_vouchers --postgres postgresql://...   # also PostgreSQL (default RULEBILL_TEST_POSTGRES_URL)

Per voucher both sides do the same work: draw 15 random digits from ``os.urandom``
with rejection sampling and append a Luhn digit, HMAC-SHA256 the PIN under a
lookup key (first 16 bytes kept), AES-256-GCM it under a data key with batch id +
serial as associated data and a fresh 96-bit nonce, then store the row in the
same table layout as Rulebill's ``vouchers`` (schema vouchers_0002: primary key on
serial, ``lookup_hash`` 16 bytes under a unique index, ``sealed`` = nonce + ciphertext,
the batch-constant columns; the floor has no foreign key -- Rulebill's SQLite table
keeps one) in ONE transaction.

* **floor** -- no Rulebill code: the whole batch built in memory, then SQLite
  ``executemany`` of full rows (WAL, 256 MiB cache) or PostgreSQL binary ``COPY``
  (rows packed with ``struct``), into an empty table.
* **packed floor** (SQLite) -- the same rows inserted by one ``INSERT ... SELECT``
  per 25,000 rows that unpacks a single blob (the technique Rulebill's store uses),
  still sequential, for reference.
* **rulebill** -- ``GenerateBatch`` over gRPC against a real server on 127.0.0.1
  over a fresh, migrated database (validation, envelope key wrap, in-batch
  uniqueness, collision replacement, audit, streamed progress).  Note: Rulebill's
  later runs insert into a table that already holds the earlier batches (the
  unique index grows), the floor always into an empty one.

Reported: medians of the repetitions, wall time and CPU time of this process
(``time.process_time``: the server runs in-process, so that is client + server
Python + SQLite; PostgreSQL's own backend is not included), ratio = rulebill /
floor wall time, load average before each block (the machine is shared).
Also: the generation part alone (rows built, nothing stored), and redemption with
32 concurrent clients -- rate, p50, p95, p99, CPU per redemption and CPU seconds per wall second of this process,
medians of the runs (each run's rate and p99 printed too):

* **floor** -- one trivial unit of database work per item through the same connections
  (PostgreSQL: ``SELECT 1`` on the recharge pool; SQLite: ``SELECT 1`` as a request to the group-commit writer);
* **Recharger.redeem** -- the product path: the function ``VoucherService.Redeem`` calls
  (one round trip on PostgreSQL; on SQLite three statements in the writer thread's batch transaction);
* **token check** -- what each RPC adds first (``TokenDesk.authenticate``);
* **Redeem over gRPC, client process** -- end to end with the clients in a separate process (``--client-process``:
  one ``grpc.aio`` process, 32 calls in flight over ``--channels`` connections, each client redeeming its own
  vouchers for its own subscriber): the rate and latencies are what the clients saw, the CPU per item is the server
  process's alone (gRPC, interceptor, servicer, recharge; PostgreSQL's backends not included), and the client
  process's CPU per call is printed below it.  Both processes share the machine's 2 cores;
* **Redeem over gRPC, in-process** -- the same with 32 client threads in the server's process (they share its CPU
  and GIL: a figure of the Python process, not of the server; kept to compare with earlier runs).

``--only`` picks redemption lines (``floor,redeem,token,apart,grpc``).  The server starts as ``rulebill serve`` does:
the settings' defaults (``max_workers`` 16; ``--workers`` sets another; before 2026-12-07 this benchmark ran 48) and
its start-up heap frozen as ``servers.app.freeze_startup_heap`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REPO = Path(__file__).resolve().parent.parent
Timing = tuple[float, float]  # (wall s, cpu s)

# --- the raw floor: plain Python, no Rulebill imports ------------------------------------------------------------
_DIGIT = bytes(b % 10 for b in range(256))
_REJECT = bytes(range(250, 256))
_ASCII = bytes((48 + b) % 256 for b in range(256))
_DOUBLE = bytes((2 * b if b < 5 else 2 * b - 9) % 256 for b in range(256))
_CHECK = bytes(48 + (10 - s % 10) % 10 for s in range(256))


def floor_pins(count: int) -> list[bytes]:
    need = count * 15
    digits = bytearray()
    while len(digits) < need:
        digits += os.urandom(need - len(digits) + 1024).translate(_DIGIT, _REJECT)
    values = bytes(digits[:need])
    lanes = 0
    for k in range(15):  # Luhn sums of all PINs at once, one byte lane per PIN
        column = values[k::15]
        lanes += int.from_bytes(column.translate(_DOUBLE) if k % 2 == 0 else column, "little")
    checks = lanes.to_bytes(count, "little").translate(_CHECK)
    text = values.translate(_ASCII)
    full = bytearray(count * 16)
    for k in range(15):
        full[k::16] = text[k::15]
    full[15::16] = checks
    data = bytes(full)
    return [data[i:i + 16] for i in range(0, len(data), 16)]


def floor_rows(count: int, batch_id: str) -> list[tuple[str, int, bytes, bytes]]:
    """``(batch_id, serial, lookup_hash[:16], nonce + ciphertext)`` for ``count`` fresh PINs."""
    key = os.urandom(32).ljust(64, b"\0")
    inner0 = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer0 = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    aead = AESGCM(os.urandom(32)).encrypt
    nonces = os.urandom(12 * count)
    prefix = batch_id.encode() + b"\0"
    rows: list[tuple[str, int, bytes, bytes]] = []
    append = rows.append
    for i, pin in enumerate(floor_pins(count)):
        inner = inner0.copy()
        inner.update(pin)
        outer = outer0.copy()
        outer.update(inner.digest())
        nonce = nonces[12 * i:12 * i + 12]
        serial = i + 1
        append((batch_id, serial, outer.digest()[:16], nonce + aead(nonce, pin, prefix + b"%d" % serial)))
    return rows


# the vouchers table as of migration vouchers_0002, written out by hand
FLOOR_COLUMNS = ("batch_id", "serial", "lookup_hash", "sealed", "tenant_id", "dealer", "state", "currency", "face_value_micros",
                 "expires_at", "updated_at")
SQLITE_SCHEMA = """
CREATE TABLE floor_vouchers (
    serial BIGINT NOT NULL PRIMARY KEY, batch_id VARCHAR(19) NOT NULL, lookup_hash BLOB, tenant_id VARCHAR(40) NOT NULL,
    dealer VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, currency VARCHAR(3) NOT NULL, face_value_micros BIGINT NOT NULL,
    expires_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, redeemed_by VARCHAR(15) DEFAULT '' NOT NULL, redeemed_at DATETIME,
    redemption_request_id VARCHAR(80) DEFAULT '' NOT NULL, sealed BLOB NOT NULL);
CREATE UNIQUE INDEX floor_vouchers_lookup ON floor_vouchers (lookup_hash);
"""
PG_SCHEMA = """
CREATE TABLE floor_vouchers (
    serial BIGINT NOT NULL PRIMARY KEY, batch_id VARCHAR(19) NOT NULL, lookup_hash BYTEA, tenant_id VARCHAR(40) NOT NULL,
    dealer VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, currency VARCHAR(3) NOT NULL, face_value_micros BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, redeemed_by VARCHAR(15) DEFAULT '' NOT NULL,
    redeemed_at TIMESTAMPTZ, redemption_request_id VARCHAR(80) DEFAULT '' NOT NULL, sealed BYTEA NOT NULL);
CREATE UNIQUE INDEX floor_vouchers_lookup ON floor_vouchers (lookup_hash);
"""
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
CONSTANTS = ("mno", "", "generated", "EUR", 10_000_000, NOW + timedelta(days=365), NOW)


def _sqlite_constants() -> tuple[object, ...]:
    return CONSTANTS[:5] + tuple(d.strftime("%Y-%m-%d %H:%M:%S.%f") for d in CONSTANTS[5:])  # type: ignore[attr-defined]


def _sqlite_database(folder: Path) -> sqlite3.Connection:
    path = folder / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB, as the store uses during a bulk load
    con.executescript(SQLITE_SCHEMA)
    return con


def _timed(fn: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_generate_only(count: int) -> Timing:
    return _timed(lambda: floor_rows(count, "vb-floor0000000000"))


def run_floor_sqlite(count: int, folder: Path, packed: bool = False) -> Timing:
    def work() -> None:
        rows = floor_rows(count, "vb-floor0000000000")
        con = _sqlite_database(folder)
        tail = _sqlite_constants()
        con.execute("BEGIN IMMEDIATE")
        if packed:
            sql = (f"INSERT INTO floor_vouchers ({', '.join(FLOOR_COLUMNS)}) "
                   "WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < ?) "
                   "SELECT ?, ? + n, substr(?4, n * 60 + 1, 16), substr(?4, n * 60 + 17, 44), ?, ?, ?, ?, ?, ?, ? FROM k")
            for start in range(0, count, 25_000):
                part = rows[start:start + 25_000]
                packed_rows = b"".join(r[2] + r[3] for r in part)
                con.execute(sql, (len(part), part[0][0], part[0][1], packed_rows) + tail)
        else:
            con.executemany(f"INSERT INTO floor_vouchers ({', '.join(FLOOR_COLUMNS)}) VALUES ({', '.join('?' * 11)})",
                            [r + tail for r in rows])
        con.execute("COMMIT")
        con.close()
    return _timed(work)


def run_floor_postgres(count: int, url: str) -> Timing:
    import psycopg

    from store.db import normalise_url  # only to turn the SQLAlchemy URL into a libpq one

    dsn = normalise_url(url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS floor_vouchers")
        con.execute(PG_SCHEMA)

    def field(v: object) -> bytes:
        if isinstance(v, datetime):
            d = v - datetime(2000, 1, 1, tzinfo=timezone.utc)
            return struct.pack(">iq", 8, (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds)
        if isinstance(v, int):
            return struct.pack(">iq", 8, v)
        b = str(v).encode()
        return struct.pack(">i", len(b)) + b

    def work() -> None:
        rows = floor_rows(count, "vb-floor0000000000")
        head = struct.pack(">h", 11) + field(rows[0][0])
        tail = b"".join(field(v) for v in CONSTANTS)
        pack = struct.Struct(f">{len(head)}siqi16si44s{len(tail)}s").pack
        with psycopg.connect(dsn) as con, con.cursor() as cur:
            with cur.copy(f"COPY floor_vouchers ({', '.join(FLOOR_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                for start in range(0, count, 25_000):
                    copy.write(b"".join([pack(head, 8, s, 16, h, 44, c, tail) for _, s, h, c in rows[start:start + 25_000]]))
                copy.write(struct.pack(">h", -1))
            con.commit()

    try:
        return _timed(work)
    finally:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("DROP TABLE IF EXISTS floor_vouchers")


def run_rulebill_generate_only(count: int) -> Timing:
    from engine.vouchers.crypto import CryptoSettings
    from engine.vouchers.generation import BatchProducer, BatchRequest, plan_batch
    from engine.vouchers.keyring import StaticKeyProvider
    from engine.vouchers.profile import load_profiles

    profile = load_profiles([REPO / "plans" / "vouchers"]).profiles["vp-mno-eur-10"]
    keys = StaticKeyProvider.random()

    def work() -> None:
        batch, data_key = plan_batch(profile, BatchRequest(profile.profile_id, count), first_serial=1, now=datetime.now(timezone.utc),
                                     keys=keys, crypto=CryptoSettings(), max_count=count)
        for _ in BatchProducer(batch, data_key, keys).chunks(progress=lambda done, total: None):
            pass
    return _timed(work)


def _median(fn: Callable[[], Timing], runs: int) -> Timing:
    results = [fn() for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def _load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


# --- end to end over gRPC: GenerateBatch and Redeem against a real server ------------------------------------
def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db import normalise_url

    name = f"rb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


class _Server:
    """A real Rulebill server on 127.0.0.1:0 over a fresh, migrated database, with the settings ``rulebill serve``
    starts with (``workers``: another ``max_workers``)."""

    def __init__(self, url: str, home: Path, workers: int = 0) -> None:
        from engine.identity import Role
        from engine.settings import Settings
        from servers.app import create_server, freeze_startup_heap
        from servers.bootstrap import bootstrap
        from servers.root import build_root
        from store.migrate import upgrade

        upgrade(url)
        settings = Settings(home=home, database_url=url)
        self.root = build_root(replace(settings, max_workers=workers) if workers else settings)
        bootstrap(self.root.settings, self.root)
        self.server, port = create_server(self.root, "127.0.0.1:0")
        freeze_startup_heap()   # as `rulebill serve` does (unfrozen again in close(): this may run inside a test process)
        self.server.start()
        self.address = f"127.0.0.1:{port}"
        self.token = lambda role="operator_admin", privileges=(): self.root.tokens.issue(  # noqa: E731
            None, "bench", "mno", Role(role), 0, frozenset(privileges))[1]
        self.numbers: list[str] = []  # subscribers provisioned so far (each run takes new ones)

    def client(self, role: str = "operator_admin", privileges: Sequence[str] = ()) -> object:
        from clients.client import RulebillClient

        return RulebillClient(self.address, self.token(role, privileges)).vouchers.rpc

    def close(self) -> None:
        import gc

        self.server.stop(1).wait()
        self.root.close()
        gc.unfreeze()


Rates = tuple[float, float, float, float, float, float]  # per second, p50, p95, p99 ms, CPU µs per item (this process, all
# threads), CPU seconds per wall second


def _concurrently(work: Callable[[int, int], None], per_client: int, clients: int) -> Rates:
    """``work(client, n)`` for n in range(per_client) in each of ``clients`` threads released together."""
    import threading

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        local = []
        barrier.wait()
        for n in range(per_client):
            t = time.perf_counter()
            work(i, n)
            local.append(time.perf_counter() - t)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    latencies.sort()
    n = len(latencies)
    return (n / elapsed, latencies[n // 2] * 1000, latencies[int(n * 0.95)] * 1000, latencies[int(n * 0.99)] * 1000,
            cpu / n * 1e6, cpu / elapsed)


class _Redemptions:
    """Activated vouchers with their PINs and ``clients`` live prepaid subscribers, on a running server."""

    def __init__(self, server: _Server, count: int, clients: int) -> None:
        from billing.v1 import subscriber_pb2 as spb
        from billing.v1 import voucher_pb2 as pb
        from clients.client import RulebillClient

        op = server.client()
        *_, last = op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-5", count=count))  # type: ignore[attr-defined]
        batch = op.ChangeBatch(pb.ChangeBatchRequest(batch_id=last.batch.batch_id, event=pb.BATCH_EVENT_ACTIVATE)).batch  # type: ignore[attr-defined]
        self.pins = [v.pin for msg in server.client(privileges=("voucher.reveal_pin",)).StreamVouchers(  # type: ignore[attr-defined]
            pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), reveal=True, chunk_size=1000))
            for v in msg.vouchers]
        admin = RulebillClient(server.address, server.token())
        self.numbers = []
        for i in range(clients):
            msisdn = f"49170{len(server.numbers) + 9_000_000:07d}"
            s = admin.subscribers.rpc.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
                msisdn=msisdn, imsi=f"26201{len(server.numbers):010d}", billing_account="BENCH", payment_type=spb.PAYMENT_TYPE_PREPAID,
                tariff_plan="TP_SMART_S")).subscriber
            admin.subscribers.rpc.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=s.subscriber_id))
            server.numbers.append(msisdn)
            self.numbers.append(msisdn)
        admin.close()
        self.clients = clients
        self.per_client = len(self.pins) // clients

    def pin(self, client: int, n: int) -> str:
        return self.pins[n * self.clients + client]


def run_redemptions(server: _Server, count: int, clients: int = 32) -> Rates:
    """The product path: ``Recharger.redeem``, the function VoucherService.Redeem calls, from ``clients`` threads.
    The caller is the CSR principal the server's interceptor builds from a bearer token (checked once here: the
    token check of each RPC is measured by :func:`run_token_checks`)."""
    batch = _Redemptions(server, count, clients)
    recharger = server.root.vouchers.recharger
    principal = server.root.tokens.authenticate(server.token("csr"))
    tag = f"pp{len(server.numbers)}"

    def redeem(i: int, n: int) -> None:
        recharger.redeem(principal, batch.numbers[i], batch.pin(i, n), f"{tag}-{i}-{n}")
    return _concurrently(redeem, batch.per_client, clients)


def run_redemptions_grpc(server: _Server, count: int, clients: int = 32) -> Rates:
    """End to end: ``Redeem`` over gRPC from ``clients`` in-process client threads (they share this process's CPU
    and GIL with the server), each call with its bearer-token check."""
    from billing.v1 import voucher_pb2 as pb

    batch = _Redemptions(server, count, clients)
    stubs = [server.client("csr") for _ in range(clients)]
    tag = f"rpc{len(server.numbers)}"

    def redeem(i: int, n: int) -> None:
        stubs[i].Redeem(pb.RedeemRequest(msisdn=batch.numbers[i], pin=batch.pin(i, n), request_id=f"{tag}-{i}-{n}"))  # type: ignore[attr-defined]
    return _concurrently(redeem, batch.per_client, clients)


def run_redemptions_apart(server: _Server, count: int, clients: int = 32, channels: int = 4) -> Rates:
    """End to end with the clients in a separate process: ``Redeem`` over gRPC from ``clients`` concurrent calls of
    one asyncio client process (``grpc.aio``, ``channels`` connections), each call with its bearer token.  The rate
    and latencies are the client's; the CPU per item is the SERVER process's (this one: gRPC, interceptor, servicer,
    Recharger.redeem; PostgreSQL's backends not included), and the client process's CPU is printed beside it."""
    import gc
    import json
    import subprocess

    batch = _Redemptions(server, count, clients)
    tag = f"apart{len(server.numbers)}"
    calls = [[[batch.numbers[i], batch.pin(i, n), f"{tag}-{i}-{n}"] for n in range(batch.per_client)] for i in range(clients)]
    with subprocess.Popen([sys.executable, "-m", "bench.bench_vouchers", "--client-process"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=REPO) as child:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"address": server.address, "token": server.token("csr"), "channels": channels,
                                      "calls": calls}) + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ready"   # connected: the clock starts now
        pauses: list[float] = []   # the server process's full collections meanwhile: each stops every call

        def collector(phase: str, info: dict[str, int]) -> None:
            if info["generation"] != 2:
                return
            if phase == "start":
                pauses.append(time.perf_counter())
            else:
                pauses.append(time.perf_counter() - pauses.pop())

        gc.callbacks.append(collector)
        cpu = time.process_time()
        child.stdin.write("go\n")
        child.stdin.flush()
        answer = json.loads(child.stdout.readline())
        cpu = time.process_time() - cpu
        gc.callbacks.remove(collector)
        child.wait()
    _PAUSES.append(pauses)
    latencies, elapsed, n = sorted(answer["latencies"]), answer["elapsed"], len(answer["latencies"])
    assert answer["failed"] == 0, answer["first_error"]
    _CLIENT_CPU.append(answer["cpu"] / n * 1e6)
    return (n / elapsed, latencies[n // 2] * 1000, latencies[int(n * 0.95)] * 1000, latencies[int(n * 0.99)] * 1000,
            cpu / n * 1e6, cpu / elapsed)


_CLIENT_CPU: list[float] = []   # µs of the client process's CPU per call, one per run of run_redemptions_apart
_PAUSES: list[list[float]] = []   # the server's full collections (seconds each), one list per run of run_redemptions_apart


def client_process() -> int:
    """The client side of :func:`run_redemptions_apart` (``--client-process``): the calls from standard input, one list
    per client (its own subscriber, as the in-process clients do), the clients' lists run concurrently over
    ``channels`` channels; latencies, wall time and this process's CPU to standard output as JSON.  Imports grpc and
    the generated messages only."""
    import asyncio
    import json

    import grpc

    from billing.v1 import voucher_pb2 as pb
    from billing.v1 import voucher_pb2_grpc as rpc

    job = json.loads(sys.stdin.readline())
    metadata = (("authorization", f"Bearer {job['token']}"),)
    requests = [[pb.RedeemRequest(msisdn=m, pin=p, request_id=r) for m, p, r in own] for own in job["calls"]]

    async def run() -> dict[str, object]:
        chans = [grpc.aio.insecure_channel(job["address"], options=[("grpc.use_local_subchannel_pool", 1)])
                 for _ in range(job["channels"])]
        for c in chans:
            await c.channel_ready()
        stubs = [rpc.VoucherServiceStub(c) for c in chans]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        latencies: list[float] = []
        failed: list[str] = []

        async def worker(k: int) -> None:
            redeem = stubs[k % len(stubs)].Redeem
            for request in requests[k]:
                t = time.perf_counter()
                try:
                    await redeem(request, metadata=metadata)
                except grpc.aio.AioRpcError as exc:
                    failed.append(f"{exc.code().name}: {exc.details()}")
                latencies.append(time.perf_counter() - t)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(k) for k in range(len(requests))))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        for c in chans:
            await c.close()
        return {"latencies": latencies, "elapsed": elapsed, "cpu": cpu, "failed": len(failed),
                "first_error": failed[0] if failed else ""}

    print(json.dumps(asyncio.run(run())), flush=True)
    return 0


def run_round_trip_floor(server: _Server, count: int, clients: int = 32) -> Rates:
    """The same-run floor: one trivial unit of database work per item, through the same connections and queue the
    recharge uses (PostgreSQL: ``SELECT 1`` on the recharge pool behind its admission gate; SQLite: ``SELECT 1`` as a
    request to the group-commit writer, which batches it like a redemption: its queue, its transaction, its
    durable commit)."""
    from store.voucher_recharge import PgRecharge

    hot = server.root.vouchers.recharger._uow._hot
    per_client = count // clients

    def one(i: int, n: int) -> None:
        if isinstance(hot, PgRecharge):
            with hot._turns:
                raw = hot.engine.raw_connection()
                try:
                    raw.cursor().execute("SELECT 1")
                finally:
                    raw.close()
        else:
            hot.run(lambda session: session.connection().exec_driver_sql("SELECT 1"))
    return _concurrently(one, per_client, clients)


def run_token_checks(server: _Server, count: int, clients: int = 32) -> Rates:
    """What every RPC adds before the servicer runs: ``TokenDesk.authenticate`` (the interceptor's call)."""
    bearer = server.token("csr")
    return _concurrently(lambda i, n: server.root.tokens.authenticate(bearer), count // clients, clients)


def run_grpc_generate(server: _Server, count: int) -> Timing:
    from billing.v1 import voucher_pb2 as pb

    stub = server.client()
    messages = []

    def work() -> None:
        messages.extend(stub.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=count)))  # type: ignore[attr-defined]
    timing = _timed(work)
    assert messages[-1].batch.count == count
    return timing


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 vouchers: a smoke run")
    parser.add_argument("--no-redeem", action="store_true", help="skip the redemption part")
    parser.add_argument("--no-generate", action="store_true", help="skip the generation part (redemption only)")
    parser.add_argument("--redeem", type=int, default=0, help="redemptions per run (default 6,400; --quick 2,048)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--postgres", default=os.environ.get("RULEBILL_TEST_POSTGRES_URL", ""),
                        help="admin URL of a PostgreSQL server (may CREATE DATABASE); default RULEBILL_TEST_POSTGRES_URL")
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)   # run_redemptions_apart's client
    parser.add_argument("--only", default="", help="redemption lines to run, comma-separated: floor, redeem, token, grpc, apart "
                        "(default all)")
    parser.add_argument("--channels", type=int, default=4, help="connections of the separate client process (default 4)")
    parser.add_argument("--workers", type=int, default=0, help="the server's max_workers (default: the setting's default, "
                        "as `rulebill serve` starts)")
    args = parser.parse_args(argv)
    if args.client_process:
        return client_process()
    count = 20_000 if args.quick else args.count
    runs = max(3, args.runs)
    sizes = [count] if args.quick else sorted({100_000, count})
    logging.getLogger("rulebill").setLevel(logging.WARNING)
    print(f"vouchers, median of {runs} runs, 2-core shared machine; {_load()}")
    if args.no_generate:
        sizes = []
    else:
        floor, rulebill = _median(lambda: run_generate_only(count), runs), _median(lambda: run_rulebill_generate_only(count), runs)
        print(f"generate only, {count:,} (no storage): floor {floor[0]:.3f} s (cpu {floor[1]:.3f}), "
              f"rulebill producer {rulebill[0]:.3f} s (cpu {rulebill[1]:.3f}), ratio {rulebill[0] / floor[0]:.2f}")
    backends = [b for b in args.backends.split(",") if b == "sqlite" or (b == "postgres" and args.postgres)]
    print(f"\n{'backend':9} {'vouchers':>10} {'what':22} {'wall s':>8} {'cpu s':>7} {'rows/s':>10} {'ratio':>6}")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="rb-bench-") as tmp:
            drop: Callable[[], None] = lambda: None  # noqa: E731
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'rulebill.db'}"
            else:
                url, drop = _pg_database(args.postgres)
            server = _Server(url, Path(tmp), args.workers)
            print(f"{backend}: the server's thread pool: {server.root.settings.max_workers} workers")
            try:
                for size in sizes:
                    print(f"{'':9} {'':>10} ({_load()})")
                    lines = []
                    if backend == "sqlite":
                        floor = _median(lambda: run_floor_sqlite(size, Path(tmp)), runs)
                        lines.append(("floor executemany", floor))
                        lines.append(("floor packed insert", _median(lambda: run_floor_sqlite(size, Path(tmp), packed=True), runs)))
                    else:
                        floor = _median(lambda: run_floor_postgres(size, url), runs)
                        lines.append(("floor binary COPY", floor))
                    lines.append(("GenerateBatch gRPC", _median(lambda: run_grpc_generate(server, size), runs)))
                    for what, (wall, cpu) in lines:
                        print(f"{backend:9} {size:>10,} {what:22} {wall:8.3f} {cpu:7.3f} {size / wall:10,.0f} {wall / floor[0]:6.2f}")
                if not args.no_redeem:
                    redeem_count = args.redeem or (2_048 if args.quick else 6_400)
                    print(f"{backend:9} redemption, 32 concurrent clients, {redeem_count:,} per run, median of {runs} runs "
                          f"({_load()}):")
                    parts: list[tuple[str, str, Callable[[_Server, int], Rates]]] = [
                             ("floor", "floor: 1 trivial unit", run_round_trip_floor),
                             ("redeem", "Recharger.redeem (product path)", run_redemptions),
                             ("token", "token check per RPC", run_token_checks),
                             ("apart", "Redeem over gRPC, client process", lambda s, c: run_redemptions_apart(s, c, channels=args.channels)),
                             ("grpc", "Redeem over gRPC, in-process", run_redemptions_grpc)]
                    for key, what, fn in parts:
                        if args.only and key not in args.only.split(","):
                            continue
                        _CLIENT_CPU.clear()
                        _PAUSES.clear()
                        results = [fn(server, redeem_count) for _ in range(runs)]
                        rate, p50, p95, p99, cpu, busy = (statistics.median(r[k] for r in results) for k in range(6))
                        print(f"{backend:9}   {what:33} {rate:8,.0f}/s  p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f} ms  "
                              f"cpu {cpu:6.0f} µs/item, {busy:4.2f} cpu-s/wall-s  ({_load()})")
                        print(f"{'':9}   {'':33} runs: " + "; ".join(f"{r[0]:,.0f}/s p99 {r[3]:.1f} ms" for r in results))
                        if _CLIENT_CPU:
                            print(f"{'':9}   {'':33} cpu above is the server process's; the client process's: "
                                  f"{statistics.median(_CLIENT_CPU):.0f} µs/call; the server's full collections per run: "
                                  + "; ".join(f"{len(p)}, longest {max(p, default=0) * 1000:.1f} ms" for p in _PAUSES))
            finally:
                server.close()
                drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
