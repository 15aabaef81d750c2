"""RatingService.RateCdrs over gRPC, stored with counters: 1,000,000 CDRs, on SQLite and PostgreSQL.

    python -m bench.bench_rating_grpc                 # 1,000,000 CDRs, 3 repetitions, SQLite (+ PostgreSQL when
                                                      # RULEBILL_TEST_POSTGRES_URL names a server where it may create a database)
    python -m bench.bench_rating_grpc --quick         # 20,000 CDRs, 1 repetition: a smoke run
    python -m bench.bench_rating_grpc --count 300000 --repeat 1 --only sqlite --no-floors
                                                      # RateCdrs alone (old and new code back to back)
    BENCH_GROUP=1 python -m bench.bench_rating_grpc --count 300000 --repeat 1 --no-floors
                                                      # the server's rating_group_max_cdrs set to 1 (each message
                                                      # its own transaction; default: the setting's default)
    python -m bench.bench_rating_grpc --count 200000 --repeat 1 --only sqlite --no-floors --resend
                                                      # each repetition's CDRs sent again right after it, timed on
                                                      # their own (every CDR stored: each gives back what it held)
    python -m bench.bench_rating_grpc --count 200000 --repeat 1 --only postgres --profile /tmp/prof
                                                      # the server's every thread under cProfile (CPU time of each
                                                      # thread), written to /tmp/prof.postgres for pstats; no floors

A real server runs in its own process (the composition root of ``servers.app``)
over a migrated database bootstrapped with the sample operator's plans
(``plans/``) and 2,000 subscribers on TP_SMART_M (voice, SMS and data bundles).
The client streams their CDRs (70 % voice, 20 % SMS, 10 % data, national,
mobile, on-net and international numbers) in chunks of 1,000 with
``use_bundle_counters``: the product path, ``RatingServicer.RateCdrs``
(servers/rating_service.py), reads each message's CDRs straight into evaluator
rows (``servers.convert.cdr_rows_from_pb``, from the message's bytes by the C
reader ``servers/_wire.c``), calls ``RatingDesk.rate_rows``,
which reads the chunk's subscribers, counters and balances once, rates it in
order and writes ledger rows (COPY / packed INSERT), counters and balances back
in one transaction, and writes the reply from the evaluator's rows
(``rated_rows_wire``: in protobuf's wire format by the same C module, handed to gRPC as bytes).  Each repetition sends
new CDRs.

Floors, in the same run: the same CDRs through the in-process evaluator
(``Evaluator.rate_rows`` with the subscribers' bundle counters in memory, no
gRPC, no store), and the ledger's insert-only floor: as many ledger rows of the
same shape written into a fresh database of the same kind through the same
``UsageRepo.write_chunk``, a transaction per chunk of 1,000, with no counters,
balances or reads (what the database costs for storing the rated CDRs alone), the same again in transactions of the
server's group bound (``rating_group_max_cdrs``: RateCdrs stores the messages waiting together up to that many CDRs,
so this is the insert-only floor at the transaction size the server reaches when it is slower than the client), and
the physical floor: as many rows of
nothing but a random 64-bit key, one transaction per chunk, into a fresh database opened the same way (one randomly
keyed B-tree a row: what the disk allows; a ledger row goes into two, its key by CDR id and its subscriber index).
Reported: medians, CDRs/s over the wall time, the client's
and the server's CPU time (on PostgreSQL also the database server's, from /proc: bench_billing.pg_cpu), the bytes the
server process wrote a CDR and, on SQLite, the insert-only floors' bytes written a row (``wchar`` of /proc/PID/io: on
SQLite the database's writes are the process's own, WAL, checkpoints and temporary files), and the load
average; the server logs how many messages it rated in how many groups.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHUNK = 1000
SUBSCRIBERS = 2000
NUMBERS = ("33698765", "33612345", "33123456", "33198765", "4420712", "1415555", "33614000")

SERVER = r"""
import resource, sys
from pathlib import Path
if len(sys.argv) > 3:   # --profile: each thread of the server under a profiler of its own, merged at the end
    import cProfile, threading, time
    profiles = []
    run_thread = threading.Thread.run
    def profiled(self):
        p = cProfile.Profile(time.thread_time)
        profiles.append(p)
        p.enable()
        try:
            run_thread(self)
        finally:
            p.disable()
    threading.Thread.run = profiled
from engine.settings import Settings
from servers.app import create_server, graceful_stop
from servers.root import build_root
import logging, os
logging.basicConfig(stream=sys.stderr, format="  server: %(message)s")
logging.getLogger("rulebill.rating.groups").setLevel(logging.DEBUG)
group = {"rating_group_max_cdrs": int(os.environ["BENCH_GROUP"])} if os.environ.get("BENCH_GROUP") else {}
root = build_root(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2], **group))
server, port = create_server(root, "127.0.0.1:0")
server.start()
print(port, flush=True)
for line in sys.stdin:
    u = resource.getrusage(resource.RUSAGE_SELF)
    print(u.ru_utime + u.ru_stime, flush=True)
    if line.strip() == "stop":
        break
graceful_stop(server, root, 1.0).wait()
root.close()
if len(sys.argv) > 3:
    import pstats
    class Snap:
        def __init__(self, p):
            p.snapshot_stats()
            self.stats = p.stats
        def create_stats(self):
            pass
    pstats.Stats(*[Snap(p) for p in profiles]).dump_stats(sys.argv[3])
"""


def stop(server: Any) -> None:
    """The server process of SERVER stopped gracefully, waited for."""
    server.stdin.write("stop\n")
    server.stdin.flush()
    server.wait(timeout=120)


def cpu_self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def msisdn(n: int) -> str:
    return f"336100{n:05d}"


def make_requests(count: int, start: datetime, tag: str, rng: random.Random) -> list[Any]:
    from billing.v1 import mediation_pb2 as mpb
    from billing.v1 import rating_pb2 as rpb
    from google.protobuf.timestamp_pb2 import Timestamp

    options = rpb.RateOptions(use_bundle_counters=True)
    kinds = (mpb.CDR_SERVICE_KIND_VOICE,) * 7 + (mpb.CDR_SERVICE_KIND_SMS,) * 2 + (mpb.CDR_SERVICE_KIND_DATA,)
    stamps = []
    for s in range(0, 6 * 3600, 7):
        t = Timestamp()
        t.FromDatetime(start + timedelta(seconds=s))
        stamps.append(t)
    requests = []
    for c in range(0, count, CHUNK):
        cdrs = []
        for i in range(c, min(c + CHUNK, count)):
            kind = rng.choice(kinds)
            b = rng.choice(NUMBERS) + f"{rng.randrange(10**4):04d}" if kind != mpb.CDR_SERVICE_KIND_DATA else "internet"
            cdrs.append(mpb.NormalisedCdr(
                source="bench", origin_id=f"{tag}-{i}", service=kind, direction=mpb.CDR_DIRECTION_ORIGINATING,
                start_time=stamps[i % len(stamps)], a_number=msisdn(rng.randrange(SUBSCRIBERS)), b_number=b, tenant_id="mno",
                duration_seconds=rng.randint(1, 900) if kind == mpb.CDR_SERVICE_KIND_VOICE else 0,
                volume_down_bytes=rng.randint(1, 50_000_000) if kind == mpb.CDR_SERVICE_KIND_DATA else 0,
                event_count=1 if kind == mpb.CDR_SERVICE_KIND_SMS else 0))
        requests.append(rpb.RateCdrsRequest(cdrs=cdrs, options=options))
    return requests


def database(kind: str, tmp: Path) -> tuple[str, Any]:
    """(url, drop) of a fresh database of this kind."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db import normalise_url

    admin = normalise_url(os.environ["RULEBILL_TEST_POSTGRES_URL"])
    name = f"rb_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return make_url(admin).set(database=name).render_as_string(hide_password=False), drop


def prepare(url: str, home: Path, add_on_holders: int = 0) -> str:
    """Migrate, bootstrap the sample operator and its plans, provision the subscribers; the operator's bearer token.
    ``add_on_holders``: that many of them (the first) billed to an account, each with a running monthly add-on
    (BN_ADDON_INTL_60MIN), so rating looks add-on purchases up."""
    from engine.identity import SYSTEM, Role
    from engine.settings import Settings
    from engine.subscribers import NewSubscriber, PaymentType
    from servers.bootstrap import bootstrap
    from servers.root import build_root
    from store.migrate import upgrade

    upgrade(url)
    settings = Settings(home=home, database_url=url)
    root = build_root(settings)
    try:
        bootstrap(settings, root, load_plans=True)
        operator = replace(SYSTEM, tenant_id="mno", subject="bench")
        for n in range(SUBSCRIBERS):
            sub = root.subscribers.provision(operator, NewSubscriber("mno", msisdn(n), f"208019{n:09d}", "ACC-B", PaymentType.POSTPAID,
                                                                      "TP_SMART_M"))
            root.subscribers.transition(operator, sub.subscriber_id, "activate")
            if n < add_on_holders:
                from engine.billing.accounts import AccountSpec

                if n == 0:
                    root.billing.accounts.create(operator, AccountSpec("ACC-ADDONS", "mno", name="Add-on holders"))
                root.billing.accounts.assign(operator, "mno", "ACC-ADDONS", sub.subscriber_id, None)
                root.billing.add_ons.buy(operator, sub.subscriber_id, "BN_ADDON_INTL_60MIN", f"bench-{n}")
        _, bearer = root.tokens.issue(None, "bench", "mno", Role.OPERATOR_ADMIN, 0)
        return bearer
    finally:
        root.close()


def floor(url: str, home: Path, requests: list[Any]) -> float:
    """The same CDRs through the in-process evaluator: seconds of CPU (rows built outside the timer)."""
    from engine.errors import ErrorList
    from engine.rating.evaluator import Evaluator, row_of
    from engine.settings import Settings
    from servers.convert import cdr_from_pb
    from servers.root import build_root

    root = build_root(Settings(home=home, database_url=url))
    try:
        _, compiled = root.rating.plan_set_at("mno", datetime.now(timezone.utc))
        assert compiled is not None
        errors = ErrorList()
        rows = [row_of(cdr_from_pb(c, "cdr", errors)) for r in requests for c in r.cdrs]  # type: ignore[arg-type]
        bundles = {b: compiled.bundles[b].allowance for b in compiled.plan("TP_SMART_M").versions[0].bundles}  # type: ignore[union-attr]
        wallets = {msisdn(n): dict(bundles) for n in range(SUBSCRIBERS)}
        ev = Evaluator(compiled)
        started = cpu_self()
        for i in range(0, len(rows), CHUNK):
            ev.rate_rows(rows[i:i + CHUNK], "TP_SMART_M", wallets)
        return cpu_self() - started
    finally:
        root.close()


def ledger_floor(kind: str, tmp: Path, count: int, chunk: int = CHUNK) -> float:
    """Seconds of wall time to write ``count`` ledger rows like the run's (a subscriber of 2,000, start times in
    order, 32-hex CDR ids) into a fresh database through UsageRepo.write_chunk, one transaction per ``chunk`` rows."""
    import hashlib

    from sqlalchemy.orm import Session

    from store.db import make_engine
    from store.migrate import upgrade
    from store.plans import UsageRepo

    where = tmp / f"floor-{chunk}"
    where.mkdir(exist_ok=True)
    url, drop = database(kind, where)
    try:
        upgrade(url)
        engine = make_engine(url)
        rng = random.Random(5)
        at = datetime(2026, 12, 1, tzinfo=timezone.utc)
        chunks = [[("mno", hashlib.sha256(f"floor-{i}".encode()).hexdigest()[:32], msisdn(rng.randrange(SUBSCRIBERS)), "2026-12",
                    "EUR", 12_000, '[["BN_VOICE", 60]]', at + timedelta(seconds=7 * (i % 3086)), "voice", "DG_NATIONAL", "", 60, 1,
                    "TP_SMART_M", 1, "rated", "") for i in range(c, min(c + chunk, count))] for c in range(0, count, chunk)]
        started, wrote = time.perf_counter(), written(os.getpid())
        for entries in chunks:
            with Session(engine) as s, s.begin():
                assert UsageRepo(s).write_chunk(entries, set(), [], [])
        wall = time.perf_counter() - started
        if kind == "sqlite":   # SQLite writes in this process: its WAL, checkpoints and temporary files
            FLOOR_BYTES.setdefault(chunk, []).append((written(os.getpid()) - wrote) / count)
        engine.dispose()
        return wall
    finally:
        drop()


FLOOR_BYTES: dict[int, list[float]] = {}   # SQLite: bytes ledger_floor wrote a row, by rows a transaction


def written(pid: int) -> int:
    """Bytes process ``pid`` has written (``wchar`` of /proc/PID/io: files, the WAL, temporary files); 0 where unread."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))
    except OSError:
        return 0


def _kib(values: list[float]) -> str:
    return f", {statistics.median(values) / 1024:.2f} KiB written a row" if values else ""


def key_floor(kind: str, tmp: Path, count: int) -> float:
    """Seconds of wall time to write ``count`` rows of nothing but a random 64-bit key into a fresh database of this
    kind opened like the product's (store.db.make_engine), one transaction per chunk: the narrowest row a check by CDR
    id can have, one randomly keyed B-tree (SQLite: the table itself; PostgreSQL: the heap and its primary key), so
    what this machine's disk and the database's write path allow whatever the ledger's layout."""
    from store.db import make_engine

    (tmp / "keys").mkdir(exist_ok=True)
    url, drop = database(kind, tmp / "keys")
    try:
        engine = make_engine(url)
        rng = random.Random(7)
        chunks = [[(rng.getrandbits(63),) for _ in range(min(CHUNK, count - c))] for c in range(0, count, CHUNK)]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            if kind == "sqlite":   # autocommit driver (store.db): the transactions are ours
                cur.execute("CREATE TABLE floor_keys (k INTEGER PRIMARY KEY)")
            else:
                cur.execute("CREATE TABLE floor_keys (k BIGINT PRIMARY KEY)")
                raw.commit()
            started = time.perf_counter()
            for keys in chunks:
                if kind == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                    cur.executemany("INSERT INTO floor_keys (k) VALUES (?)", keys)
                    cur.execute("COMMIT")
                else:
                    with cur.copy("COPY floor_keys (k) FROM STDIN") as cp:
                        for key in keys:
                            cp.write_row(key)
                    raw.commit()
            wall = time.perf_counter() - started
        finally:
            raw.close()
        engine.dispose()
        return wall
    finally:
        drop()


def postgres_cpu_of(url: str) -> Any:
    """A function giving the CPU seconds the PostgreSQL server at ``url`` has used (bench_billing.pg_cpu)."""
    from types import SimpleNamespace

    from bench.bench_billing import pg_cpu
    from store.db import make_engine

    root = SimpleNamespace(db=make_engine(url))
    return lambda: pg_cpu(root)


def _pg(cpu_s: float) -> str:
    return "" if cpu_s != cpu_s else f", PostgreSQL {cpu_s:.2f} CPU-s"


def group_size() -> int:
    """The server's rating_group_max_cdrs: BENCH_GROUP when set, else the setting's default."""
    from engine.settings import Settings

    # (getattr: this script also drives a checkout from before the setting, for before/after pairs)
    return int(os.environ.get("BENCH_GROUP") or getattr(Settings(), "rating_group_max_cdrs", 1))


def run(kind: str, count: int, repeat: int, profile: str = "", add_on_holders: int = 0, floors_too: bool = True,
        resend: bool = False) -> None:
    from clients.client import RulebillClient

    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="rulebill-bench-grpc-") as tmp_name:
        tmp = Path(tmp_name)
        url, drop = database(kind, tmp)
        try:
            bearer = prepare(url, tmp, add_on_holders)
            start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp), url, *([f"{profile}.{kind}"] if profile else [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, cwd=REPO, env=env)
            assert server.stdin is not None and server.stdout is not None
            port = int(server.stdout.readline())

            def server_cpu() -> float:
                server.stdin.write("cpu\n")   # type: ignore[union-attr]
                server.stdin.flush()          # type: ignore[union-attr]
                return float(server.stdout.readline())   # type: ignore[union-attr]

            client = RulebillClient(f"127.0.0.1:{port}", bearer)
            walls, client_cpus, server_cpus, floors, inserts, keys, grouped, postgres_cpus = [], [], [], [], [], [], [], []
            server_bytes: list[float] = []
            postgres_cpu = postgres_cpu_of(url) if kind == "postgres" else lambda: float("nan")
            group = group_size()
            try:
                warm = make_requests(2 * CHUNK, start, "warm", rng)
                list(client.rating.rpc.RateCdrs(iter(warm)))
                for rep in range(repeat):
                    requests = make_requests(count, start, f"r{rep}", rng)
                    if profile or not floors_too:   # the server's profile or RateCdrs only: no floors
                        floors.append(1.0), inserts.append(1.0), keys.append(1.0), grouped.append(1.0)
                    else:
                        floors.append(floor(url, tmp, requests))
                        inserts.append(ledger_floor(kind, tmp, count))
                        grouped.append(ledger_floor(kind, tmp, count, group))
                        keys.append(key_floor(kind, tmp, count))
                    load = os.getloadavg()[0]
                    p0, s0, c0, w0, b0 = postgres_cpu(), server_cpu(), cpu_self(), time.perf_counter(), written(server.pid)
                    rated = 0
                    for reply in client.rating.rpc.RateCdrs(iter(requests)):
                        rated += sum(1 for r in reply.rated if r.status == 1)
                    wall = time.perf_counter() - w0
                    walls.append(wall)
                    client_cpus.append(cpu_self() - c0)
                    server_cpus.append(server_cpu() - s0)
                    postgres_cpus.append(postgres_cpu() - p0)
                    server_bytes.append((written(server.pid) - b0) / count)
                    print(f"  {kind} run {rep + 1}: {count / wall:,.0f} CDRs/s wall ({wall:.2f} s), rated {rated:,}, "
                          f"load {load:.2f}", flush=True)
                    if resend:   # the same CDRs again: the ledger replaces, each gives back what it held
                        s0, w0 = server_cpu(), time.perf_counter()
                        again = sum(1 for reply in client.rating.rpc.RateCdrs(iter(requests)) for r in reply.rated if r.status == 1)
                        wall = time.perf_counter() - w0
                        print(f"  {kind} run {rep + 1} sent again: {count / wall:,.0f} CDRs/s wall ({wall:.2f} s), rated {again:,}, "
                              f"server {server_cpu() - s0:.2f} CPU-s, load {os.getloadavg()[0]:.2f}", flush=True)
            finally:
                client.close()
                stop(server)
        finally:
            drop()
    wall, f = statistics.median(walls), statistics.median(floors)
    s_cpu, c_cpu = statistics.median(server_cpus), statistics.median(client_cpus)
    ins, key, ins_group = statistics.median(inserts), statistics.median(keys), statistics.median(grouped)
    print(f"{kind}: floor, the in-process evaluator: {f:7.3f} CPU-s {count / f:>10,.0f} CDRs/s per core")
    print(f"{kind}: floor, ledger rows insert-only:  {ins:7.3f} s wall {count / ins:>10,.0f} rows/s{_kib(FLOOR_BYTES.get(CHUNK, []))}")
    print(f"{kind}: floor, the same at {group:,}-row transactions (the server's group bound): {ins_group:7.3f} s wall "
          f"{count / ins_group:>10,.0f} rows/s{_kib(FLOOR_BYTES.get(group, []))}")
    print(f"{kind}: floor, a random 64-bit key a row: {key:7.3f} s wall {count / key:>10,.0f} rows/s (one random B-tree: the disk)")
    print(f"{kind}: RateCdrs stored with counters:     {wall:7.3f} s wall {count / wall:>10,.0f} CDRs/s; server CPU {s_cpu:.2f} s "
          f"({count / s_cpu:,.0f} CDRs/s per core), client CPU {c_cpu:.2f} s{_pg(statistics.median(postgres_cpus))}; {wall / f:.1f}x the evaluator floor, "
          f"{wall / ins:.1f}x the insert-only floor, {wall / ins_group:.1f}x at {group:,}-row transactions; the server wrote "
          f"{statistics.median(server_bytes) / 1024:.2f} KiB a CDR")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 CDRs, one repetition: a smoke run")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--only", choices=("sqlite", "postgres"))
    ap.add_argument("--profile", default="", help="write the server's cProfile (every thread) to PROFILE.<database>; no floors")
    ap.add_argument("--no-floors", action="store_true", help="RateCdrs alone (old and new code back to back); the floor lines "
                                                           "then read 1 s")
    ap.add_argument("--add-on-holders", type=int, default=0, help="subscribers with a running monthly add-on (default none)")
    ap.add_argument("--resend", action="store_true", help="each repetition's CDRs sent again right after it, timed on their own")
    args = ap.parse_args(argv)
    count = args.count or (20_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)
    kinds = [args.only] if args.only else ["sqlite"] + (["postgres"] if os.environ.get("RULEBILL_TEST_POSTGRES_URL") else [])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {count:,} CDRs in chunks of {CHUNK}, "
          f"{SUBSCRIBERS:,} subscribers on TP_SMART_M ({args.add_on_holders} with a running monthly add-on), {repeat} repetition(s), medians")
    for kind in kinds:
        run(kind, count, repeat, args.profile, args.add_on_holders, not args.no_floors, args.resend)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
