"""Voucher batch generation: Rulebill's producer against a hand-written raw floor, both into SQLite.

    python -m bench.bench_vouchers            # 1,000,000 vouchers, 3 repetitions
    python -m bench.bench_vouchers --quick    # 20,000 vouchers (CI)
    python -m bench.bench_vouchers --postgres postgresql://...   # also PostgreSQL (default RULEBILL_TEST_POSTGRES_URL)

Part 2 (end to end): a real server on 127.0.0.1 over a fresh database; ``GenerateBatch``
of 100,000 and 1,000,000 vouchers over gRPC (streamed progress, one transaction,
SQLite executemany / PostgreSQL COPY) against the raw floor on the same backend;
then redemption throughput and p50/p99 latency with 32 concurrent clients.

Per voucher both sides do the same work: draw 15 random digits from
``os.urandom`` with rejection sampling and append a Luhn digit, HMAC-SHA256 the
PIN under a lookup key, AES-256-GCM it under a data key with batch id + serial
as associated data and a fresh 96-bit nonce, then insert
``(batch_id, serial, lookup_hash, nonce, ciphertext)`` into the same SQLite
table (primary key on serial, unique index on lookup_hash) with ``executemany``
in one transaction.

* **floor** -- no Rulebill code: the fastest straightforward Python for those
  steps, PINs built in bulk, one ``executemany`` for everything.
* **rulebill** -- ``plan_batch`` + ``BatchProducer.chunks`` (validation,
  envelope key wrap, in-batch uniqueness, chunked rows, progress callback) with
  one ``executemany`` per chunk, as the store does (phase 1: no gRPC, no ORM).

Also reported: the generation part alone (rows built, nothing inserted).
Reported figures are medians of the repetitions; ratio = rulebill time / floor time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.vouchers.crypto import CryptoSettings
from engine.vouchers.generation import BatchProducer, BatchRequest, plan_batch
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.profile import load_profiles

REPO = Path(__file__).resolve().parent.parent
SCHEMA = """
CREATE TABLE voucher (
    batch_id TEXT NOT NULL,
    serial INTEGER PRIMARY KEY,
    lookup_hash BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'generated'
);
CREATE UNIQUE INDEX voucher_lookup ON voucher (lookup_hash);
"""
INSERT = "INSERT INTO voucher (batch_id, serial, lookup_hash, nonce, ciphertext) VALUES (?, ?, ?, ?, ?)"


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


def floor_rows(count: int, batch_id: str) -> list[tuple[str, int, bytes, bytes, bytes]]:
    key = os.urandom(32).ljust(64, b"\0")
    inner0 = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer0 = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    aead = AESGCM(os.urandom(32)).encrypt
    nonces = os.urandom(12 * count)
    prefix = batch_id.encode() + b"\0"
    rows: list[tuple[str, int, bytes, bytes, bytes]] = []
    append = rows.append
    for i, pin in enumerate(floor_pins(count)):
        inner = inner0.copy()
        inner.update(pin)
        outer = outer0.copy()
        outer.update(inner.digest())
        nonce = nonces[12 * i:12 * i + 12]
        serial = i + 1
        append((batch_id, serial, outer.digest(), nonce, aead(nonce, pin, prefix + b"%d" % serial)))
    return rows


# --- harness -----------------------------------------------------------------------------------------------------
def _database(folder: Path, name: str) -> sqlite3.Connection:
    path = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB: the random lookup_hash index is what bulk insert pays for
    con.executescript(SCHEMA)
    return con


def run_floor(count: int, folder: Path, insert: bool) -> float:
    start = time.perf_counter()
    rows = floor_rows(count, "vb-floor")
    if insert:
        con = _database(folder, "floor")
        con.execute("BEGIN")
        con.executemany(INSERT, rows)
        con.execute("COMMIT")
        con.close()
    return time.perf_counter() - start


def run_rulebill(count: int, folder: Path, insert: bool) -> float:
    profile = load_profiles([REPO / "plans" / "vouchers"]).profiles["vp-mno-eur-10"]
    keys = StaticKeyProvider.random()
    start = time.perf_counter()
    batch, data_key = plan_batch(profile, BatchRequest(profile.profile_id, count), first_serial=1,
                                 now=datetime.now(timezone.utc), keys=keys, crypto=CryptoSettings(), max_count=count)
    producer = BatchProducer(batch, data_key, keys)
    chunks: Iterable[Sequence[tuple[str, int, bytes, bytes, bytes]]] = producer.chunks(10_000, lambda done, total: None)
    if insert:
        con = _database(folder, "rulebill")
        con.execute("BEGIN")
        for chunk in chunks:
            con.executemany(INSERT, chunk)
        con.execute("COMMIT")
        con.close()
    else:
        for _ in chunks:
            pass
    return time.perf_counter() - start


def _median(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 vouchers (CI)")
    parser.add_argument("--no-e2e", action="store_true", help="skip the gRPC end-to-end part")
    parser.add_argument("--postgres", default=os.environ.get("RULEBILL_TEST_POSTGRES_URL", ""),
                        help="admin URL of a PostgreSQL server (may CREATE DATABASE); default RULEBILL_TEST_POSTGRES_URL")
    args = parser.parse_args(argv)
    count = 20_000 if args.quick else args.count
    runs = max(3, args.runs)
    print(f"voucher generation, {count:,} vouchers, median of {runs} runs (SQLite WAL, 256 MiB cache, executemany, one transaction)")
    with tempfile.TemporaryDirectory(prefix="rb-bench-") as tmp:
        folder = Path(tmp)
        results = []
        for label, insert in (("generate only", False), ("generate + insert", True)):
            floor = _median(lambda: run_floor(count, folder, insert), runs)
            rulebill = _median(lambda: run_rulebill(count, folder, insert), runs)
            results.append((label, floor, rulebill))
    print(f"{'':20} {'floor s':>9} {'floor/s':>11} {'rulebill s':>11} {'rulebill/s':>11} {'ratio':>6}")
    for label, floor, rulebill in results:
        print(f"{label:20} {floor:9.3f} {count / floor:11,.0f} {rulebill:11.3f} {count / rulebill:11,.0f} {rulebill / floor:6.2f}")
    if not args.no_e2e:
        sizes = [count] if args.quick else sorted({100_000, count})
        main_e2e(sizes, runs, 2_000 if args.quick else 5_000, args.postgres or None)
    return 0



# --- end to end over gRPC (phase 2): GenerateBatch and Redeem against a real server -----------------------------
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
    """A real Rulebill server on 127.0.0.1:0 over a fresh, migrated database."""

    def __init__(self, url: str, home: Path) -> None:
        from engine.identity import Role
        from engine.settings import Settings
        from servers.app import bootstrap, build_root, create_server
        from store.migrate import upgrade

        upgrade(url)
        self.root = build_root(Settings(home=home, database_url=url, max_workers=48))
        bootstrap(self.root.settings, self.root)
        self.server, port = create_server(self.root, "127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{port}"
        self.token = lambda role="operator_admin", privileges=(): self.root.tokens.issue(  # noqa: E731
            None, "bench", "mno", Role(role), 0, frozenset(privileges))[1]

    def client(self, role: str = "operator_admin", privileges: Sequence[str] = ()) -> object:
        from billing.v1 import voucher_pb2_grpc
        from clients.client import RulebillClient

        return RulebillClient(self.address, self.token(role, privileges)).stub(voucher_pb2_grpc.VoucherServiceStub)

    def close(self) -> None:
        self.server.stop(1).wait()
        self.root.close()


def run_grpc_generate(server: _Server, count: int) -> float:
    from billing.v1 import voucher_pb2 as pb

    stub = server.client()
    start = time.perf_counter()
    *_, last = stub.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=count))  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    assert last.batch.count == count
    return elapsed


def run_floor_postgres(count: int, url: str) -> float:
    import psycopg

    from store.db import normalise_url

    dsn = normalise_url(url).replace("postgresql+psycopg://", "postgresql://")
    start = time.perf_counter()
    rows = floor_rows(count, "vb-floor")
    with psycopg.connect(dsn) as con:
        with con.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS floor_voucher")
            cur.execute("CREATE TABLE floor_voucher (batch_id TEXT NOT NULL, serial BIGINT PRIMARY KEY, lookup_hash BYTEA NOT NULL,"
                        " nonce BYTEA NOT NULL, ciphertext BYTEA NOT NULL, state TEXT NOT NULL DEFAULT 'generated')")
            cur.execute("CREATE UNIQUE INDEX floor_voucher_lookup ON floor_voucher (lookup_hash)")
            with cur.copy("COPY floor_voucher (batch_id, serial, lookup_hash, nonce, ciphertext) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        con.commit()
    return time.perf_counter() - start


def run_redemptions(server: _Server, vouchers_count: int, clients: int = 32) -> tuple[float, float, float]:
    """Throughput (redemptions/s), median and p99 latency (ms) with ``clients`` concurrent callers."""
    import threading

    from billing.v1 import subscriber_pb2 as spb
    from billing.v1 import voucher_pb2 as pb
    from clients.client import RulebillClient

    op = server.client()
    *_, last = op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-5", count=vouchers_count))  # type: ignore[attr-defined]
    batch = op.ChangeBatch(pb.ChangeBatchRequest(batch_id=last.batch.batch_id, event=pb.BATCH_EVENT_ACTIVATE)).batch  # type: ignore[attr-defined]
    pins = [v.pin for msg in server.client(privileges=("voucher.reveal_pin",)).StreamVouchers(  # type: ignore[attr-defined]
        pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), reveal=True, chunk_size=1000)) for v in msg.vouchers]
    admin = RulebillClient(server.address, server.token())
    numbers = []
    for i in range(clients):
        msisdn = f"49170{9_000_000 + i:07d}"
        s = admin.subscribers.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
            msisdn=msisdn, imsi=f"26201{i:010d}", billing_account="BENCH", payment_type=spb.PAYMENT_TYPE_PREPAID,
            tariff_plan="TP_PREPAID")).subscriber
        admin.subscribers.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=s.subscriber_id))
        numbers.append(msisdn)
    stubs = [server.client("csr") for _ in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        mine = pins[i::clients]
        local = []
        barrier.wait()
        for n, pin in enumerate(mine):
            t = time.perf_counter()
            stubs[i].Redeem(pb.RedeemRequest(msisdn=numbers[i], pin=pin, request_id=f"bench-{i}-{n}"))  # type: ignore[attr-defined]
            local.append(time.perf_counter() - t)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000


def main_e2e(sizes: Sequence[int], runs: int, redeem_count: int, postgres_url: str | None) -> None:
    import logging

    logging.getLogger("rulebill").setLevel(logging.WARNING)
    backends = ["sqlite"] + (["postgres"] if postgres_url else [])
    print(f"\nGenerateBatch end to end over gRPC (127.0.0.1), median of {runs} runs, fresh database per backend")
    print(f"{'backend':9} {'vouchers':>10} {'floor s':>9} {'grpc s':>9} {'grpc/s':>11} {'ratio':>6}")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="rb-bench-e2e-") as tmp:
            drop: Callable[[], None] = lambda: None  # noqa: E731
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'rulebill.db'}"
            else:
                assert postgres_url
                url, drop = _pg_database(postgres_url)
            server = _Server(url, Path(tmp))
            try:
                for size in sizes:
                    if backend == "sqlite":
                        floor = _median(lambda: run_floor(size, Path(tmp), True), runs)
                    else:
                        floor = _median(lambda: run_floor_postgres(size, url), runs)
                    grpc_time = _median(lambda: run_grpc_generate(server, size), runs)
                    print(f"{backend:9} {size:>10,} {floor:9.3f} {grpc_time:9.3f} {size / grpc_time:11,.0f} {grpc_time / floor:6.2f}")
                rate, p50, p99 = run_redemptions(server, redeem_count)
                print(f"{backend:9} redeem: {redeem_count:,} vouchers, 32 concurrent clients: {rate:,.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            finally:
                server.close()
                drop()


if __name__ == "__main__":
    sys.exit(main())
