"""Re-rating stored CDRs on PostgreSQL: 1,000,000 CDRs of a period rated again under a plan set version.

    RULEBILL_TEST_POSTGRES_URL=postgresql://... python -m bench.bench_rerate           # 1,000,000 CDRs, 3 repetitions
    RULEBILL_TEST_POSTGRES_URL=postgresql://... python -m bench.bench_rerate --quick   # 20,000 CDRs, 1 repetition

A fresh database with the sample operator's plans (``plans/``) as version 1, a
version 2 with other international and national prices, 2,000 subscribers on
TP_SMART_M and the CDRs of a day stored as mediation stores them (COPY into
``mediated_cdrs``).  A first run rates them all under version 1 (the ledger then
holds every CDR); each timed repetition re-rates the period:
:meth:`engine.rating.rerate.RerateDesk.steps`, what RerateService runs.  A ledger
row is written only where its new value differs from the stored one (counters and
balances follow every row), so the figure depends on the share of rows that
change (``--change``):

- ``all`` (the default): each repetition re-rates under the other version, so
  every row changes (its plan set version; the charge of a national peak or an
  international call too);
- ``half``: version 2 is activated at noon of the day, and the repetitions re-rate
  under the version in force at each CDR (0), then under version 1 again: the
  afternoon's rows change each time, the morning's are rated to what they hold;
- ``none``: each repetition re-rates under version 1 again (a run repeated, or
  started again after a crash): no row changes.

Floor, in the same run: the stored-CDR read alone (the same chunks of the same
rows, through the same reader, nothing done with them: ``StoredCdrReader.chunks``,
a query per chunk from the last row's key, each in a transaction of its own).
Reported: medians, CDRs/s on CPU (this process: reading, rating, writing;
PostgreSQL runs beside it) and wall, and the load average; PostgreSQL's own
CPU-s too when its data directory is readable here (``bench.bench_billing.pg_cpu``:
its processes' user and system time from /proc, autovacuum included), so a run's
wall time can be split into this process's CPU, the server's and waiting.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def store_cdrs(url: str, count: int, start: datetime, subscribers: int) -> None:
    """``count`` CDRs of the subscribers in mediated_cdrs, by COPY (as mediation stores them)."""
    import psycopg

    from engine.cdr import cdr_identity
    from store.db import normalise_url
    from store.mediation import CDR_COLUMNS

    rng = random.Random(5)
    numbers = ("33698765", "33612345", "33123456", "33198765", "4420712", "1415555", "33614000")
    conninfo = normalise_url(url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY mediated_cdrs ({', '.join(CDR_COLUMNS)}) FROM STDIN") as cp:
            for i in range(count):
                kind = rng.random()
                service = "voice" if kind < 0.7 else ("sms" if kind < 0.9 else "data")
                origin = f"rr-{i}"
                cp.write_row((cdr_identity("bench", origin, "mno"), "bench", origin, service, "originating",
                              start + timedelta(seconds=i * 86400 // count), f"336100{rng.randrange(subscribers):05d}",
                              rng.choice(numbers) + f"{rng.randrange(10**4):04d}" if service != "data" else "internet", "",
                              rng.randint(1, 900) if service == "voice" else 0, 0,
                              rng.randint(1, 50_000_000) if service == "data" else 0, 1, "", "", None, "", "mno", "", "mno",
                              "bench-file", None, None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 CDRs, one repetition: a smoke run")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--change", choices=("all", "half", "none"), default="all",
                    help="which rows a repetition changes (see the module's text)")
    args = ap.parse_args(argv)
    if not os.environ.get("RULEBILL_TEST_POSTGRES_URL"):
        print("measured nothing: RULEBILL_TEST_POSTGRES_URL is not set and re-rating is measured on PostgreSQL only "
              "(tests/with-postgres.sh starts one)")
        return 2
    count = args.count or (20_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)

    from bench.bench_billing import pg_cpu
    from bench.bench_rating_grpc import SUBSCRIBERS, database, prepare
    from engine.identity import SYSTEM
    from engine.settings import Settings
    from servers.root import build_root
    from tests.integration.test_plans_rating import sample_files

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {count:,} stored CDRs of one day, "
          f"{SUBSCRIBERS:,} subscribers on TP_SMART_M, {repeat} repetition(s), medians; rows changed: {args.change}")
    with tempfile.TemporaryDirectory(prefix="rulebill-bench-rerate-") as tmp_name:
        tmp = Path(tmp_name)
        url, drop = database("postgres", tmp)
        try:
            prepare(url, tmp)
            root = build_root(Settings(home=tmp, database_url=url))
            operator = replace(SYSTEM, tenant_id="mno", subject="bench")
            files = {f.path: f.content for f in sample_files({
                "rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "1.25"'),
                "rates/retail/RT_VOICE_NATIONAL_PEAK.yaml": ('price: "0.12"', 'price: "0.15"')})}
            v2 = root.plans.upload(operator, "mno", files).version
            start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            end = start + timedelta(days=1)
            t0 = time.perf_counter()
            store_cdrs(url, count, start, SUBSCRIBERS)
            print(f"stored {count:,} CDRs in {time.perf_counter() - t0:.1f} s; first rating ...", flush=True)
            first = root.rerate.rerate(operator, "mno", start, end, 1)
            print(f"first rating: {first.rated:,} rated, {first.unrated:,} unrated", flush=True)
            if args.change == "half":
                root.plans.activate(operator, "mno", v2, start + timedelta(hours=12))
            versions = {"all": (v2, 1), "half": (0, 1), "none": (1, 1)}[args.change]
            floors: list[tuple[float, float, float]] = []
            cpus: list[float] = []
            walls: list[float] = []
            servers: list[float] = []
            for rep in range(repeat):
                cpu0, wall0, server0 = time.process_time(), time.perf_counter(), pg_cpu(root)
                n = sum(len(rows) for rows in root.rerate._stored.chunks({"mno"}, start, end, root.rerate._chunk))
                floors.append((time.process_time() - cpu0, time.perf_counter() - wall0, pg_cpu(root) - server0))
                assert n == count
                load = os.getloadavg()[0]
                races = root.rating.races
                summed: list[float] = []   # when the run's first step came: what its CDRs hold summed (RerateDesk.held)
                cpu0, wall0, server0 = time.process_time(), time.perf_counter(), pg_cpu(root)
                summary = root.rerate.rerate(operator, "mno", start, end, versions[rep % 2],
                                             lambda done, _: summed.append(time.perf_counter() - wall0) if not done else None)
                cpu, wall, server = time.process_time() - cpu0, time.perf_counter() - wall0, pg_cpu(root) - server0
                cpus.append(cpu)
                walls.append(wall)
                servers.append(server)
                print(f"  run {rep + 1}: version {summary.plan_set_version}: {summary.cdrs:,} CDRs, {count / wall:,.0f}/s wall, "
                      f"{count / cpu:,.0f}/s per core{_server_text(server)}, read floor {floors[-1][0]:.3f} CPU-s "
                      f"{floors[-1][1]:.3f} s wall{_server_text(floors[-1][2])}, charged "
                      f"{sum(summary.charged_before.values()) / 1e6:,.2f} -> {sum(summary.charged_after.values()) / 1e6:,.2f}, "
                      f"load {load:.2f}, chunks rated again {root.rating.races - races}, held summed in {summed[0]:.2f} s", flush=True)
                assert summary.cdrs == count
            root.close()
        finally:
            drop()
    f_cpu, f_wall = statistics.median(f[0] for f in floors), statistics.median(f[1] for f in floors)
    cpu, wall = statistics.median(cpus), statistics.median(walls)
    f_server = _median([f[2] for f in floors])
    print(f"floor, the stored-CDR read: {f_cpu:7.3f} CPU-s {count / f_cpu:>10,.0f} CDRs/s per core (wall {f_wall:.3f} s, "
          f"{count / f_wall:,.0f}/s){_server_text(f_server)}")
    print(f"re-rating:                  {cpu:7.3f} CPU-s {count / cpu:>10,.0f} CDRs/s per core (wall {wall:.3f} s, "
          f"{count / wall:,.0f}/s){_server_text(_median(servers))}; {wall / f_wall:.1f}x the floor's wall time")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values and not any(math.isnan(v) for v in values) else math.nan


def _server_text(cpu_s: float) -> str:
    return "" if math.isnan(cpu_s) else f", PostgreSQL {cpu_s:.2f} CPU-s"


if __name__ == "__main__":
    sys.exit(main())
