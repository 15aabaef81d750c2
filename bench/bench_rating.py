"""Rating throughput: normalised CDRs rated with a 50,000-prefix plan, against a parse-only csv.reader floor.

    python -m bench.bench_rating            # 1,000,000 CDRs, 3 repetitions
    python -m bench.bench_rating --quick    # 20,000 CDRs (CI)

Both sides read the same generated ``*.cdr.csv`` file from disk in one process.
The floor is ``csv.reader`` over the file doing nothing with the rows (the
fastest CSV reading available).  Rating parses the same rows and rates each
with :meth:`engine.rating.bulk.BulkRater.rate_rows` (replay-style: status + exact charge
per CDR, summed) under a plan of 50,000 prefixes in 100 destination groups,
five time bands (peak, evening, off-peak, weekend, holiday) in Europe/Paris,
stepped rates with connect fees, minimums and caps.  Calls that cross a band
boundary are split into spans on the bulk path too; rows it cannot price take
the full rater (counted as full-path fallbacks).  Reported: medians of the
repetitions, CDRs/s, and the ratio of rating time to floor time.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

from engine.cdr import COLUMNS, cdr_identity
from engine.plans import compile_plan_set, load_plan_set
BulkRater = None  # replaced

GROUPS = 100
PREFIXES = 50_000
PLAN = "TP_BENCH"
CHUNK = 100_000  # rows per BulkRater.rate_rows call


def write_plan(folder: Path, rng: random.Random) -> list[list[str]]:
    """A plan set with PREFIXES unique prefixes; returns the prefixes per group (to draw numbers from)."""
    seen: set[str] = set()
    groups: list[list[str]] = [[] for _ in range(GROUPS)]
    while len(seen) < PREFIXES:
        p = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))
        if p in seen:
            continue  # unique; nested prefixes (44 and 447) are allowed, as in real price lists
        seen.add(p)
        groups[len(seen) % GROUPS].append(p)
    rows = []
    for g, prefixes in enumerate(groups):
        (folder / f"g{g:03d}.prefixes").write_text("\n".join(prefixes) + "\n")
        (folder / f"DST_G{g:03d}.yaml").write_text(f"kind: destination_group\nid: DST_G{g:03d}\nprefix_file: g{g:03d}.prefixes\n")
        for band, factor in (("PEAK", 3), ("EVENING", 2), ("OFFPEAK", 1), ("WEEKEND", 1), ("HOLIDAY", 1)):
            rows.append(f"      - {{service: voice, destination: DST_G{g:03d}, band: {band}, rate: RT_V{g % 20:02d}_{factor}}}")
    for r in range(20):
        for factor in (1, 2, 3):
            price = f"0.{(r + 1) * factor:02d}"
            extra = 'connect_fee: "0.05"\nminimum_charge: "0.10"\n' if r % 3 == 0 else ""
            extra += 'maximum_cost: {amount: "25.00", beyond: free_beyond}\n' if r % 5 == 0 else ""
            inc = ("60/1", "1/1", "30/6", "60/60")[r % 4]
            (folder / f"RT_V{r:02d}_{factor}.yaml").write_text(
                f"kind: rate\nid: RT_V{r:02d}_{factor}\ncurrency: EUR\nprice: \"{price}\"\nper: 60\nincrements: {inc}\n{extra}")
    (folder / "RT_SMS.yaml").write_text('kind: rate\nid: RT_SMS\nunit: event\ncurrency: EUR\nprice: "0.09"\nper: 1\n')
    (folder / "RT_DATA.yaml").write_text('kind: rate\nid: RT_DATA\nunit: byte\ncurrency: EUR\nprice: "0.02"\nper: 1MB\nincrements: 10KB/10KB\n')
    (folder / "HOL.yaml").write_text('kind: holiday_calendar\nid: HOL_B\nrecurring: ["01-01", "05-01", "12-25"]\n')
    (folder / "TB.yaml").write_text("""kind: time_bands
id: TB_BENCH
timezone: Europe/Paris
holiday_calendars: [HOL_B]
bands:
  - {id: OFFPEAK, days: weekdays, weight: 0}
  - {id: PEAK, days: weekdays, from: "08:00", to: "19:00", weight: 10}
  - {id: EVENING, days: weekdays, from: "19:00", to: "23:00", weight: 10}
  - {id: WEEKEND, days: weekend, weight: 5}
  - {id: HOLIDAY, holidays: true, weight: 100}
""")
    (folder / "TP.yaml").write_text(f"""kind: tariff_plan
id: {PLAN}
tenant: mno
segment: retail_postpaid
currency: EUR
versions:
  - version: 1
    effective_from: 2026-01-01
    time_bands: TB_BENCH
    rates:
{chr(10).join(rows)}
      - {{service: sms, rate: RT_SMS}}
      - {{service: data, direction: any, rate: RT_DATA}}
""")
    return groups


def write_cdrs(path: Path, count: int, groups: list[list[str]], rng: random.Random) -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    times = [(start + timedelta(seconds=rng.randrange(31 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ") for _ in range(4096)]
    index = {c: i for i, c in enumerate(COLUMNS)}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for n in range(count):
            row = [""] * len(COLUMNS)
            kind = rng.random()
            service = "voice" if kind < 0.7 else ("sms" if kind < 0.9 else "data")
            origin = f"{n:09d}"
            row[index["cdr_id"]] = cdr_identity("bench", origin)
            row[index["source"]] = "bench"
            row[index["origin_id"]] = origin
            row[index["service"]] = service
            row[index["direction"]] = "originating"
            row[index["start_time"]] = times[n & 4095]
            row[index["a_number"]] = "33612000001"
            group = groups[rng.randrange(GROUPS)]
            row[index["b_number"]] = group[rng.randrange(len(group))] + str(rng.randrange(10**6, 10**7))
            row[index["duration_seconds"]] = str(rng.randint(1, 600)) if service == "voice" else "0"
            row[index["volume_up_bytes"]] = str(rng.randint(0, 10**6)) if service == "data" else "0"
            row[index["volume_down_bytes"]] = str(rng.randint(0, 10**7)) if service == "data" else "0"
            row[index["event_count"]] = "1"
            w.writerow(row)


def floor(path: Path) -> tuple[float, float, int]:
    """Parse only; returns (CPU seconds, wall seconds, rows)."""
    started, cpu = time.perf_counter(), time.process_time()
    n = 0
    with path.open(newline="", encoding="utf-8") as f:
        for _row in csv.reader(f):
            n += 1
    return time.process_time() - cpu, time.perf_counter() - started, n - 1


def rate(path: Path, compiled: object) -> tuple[float, float, int, int, int]:
    """Parse and rate; returns (CPU seconds, wall seconds, rated, total micros, full-path fallbacks)."""
    started, cpu = time.perf_counter(), time.process_time()
    total = 0
    rated = 0
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        bulk = BulkRater(compiled, next(reader))  # type: ignore[arg-type]
        while True:
            # the batch API consumes the reader itself (parsing stays in the timed loop), in chunks to bound memory
            statuses, charges, _ = bulk.rate_rows(islice(reader, CHUNK), PLAN)
            if not statuses:
                break
            total += sum(charges)
            rated += statuses.count("rated")
    return time.process_time() - cpu, time.perf_counter() - started, rated, total, bulk.fallbacks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 CDRs (CI)")
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    count = args.count or (20_000 if args.quick else 1_000_000)
    rng = random.Random(20261127)
    with tempfile.TemporaryDirectory(prefix="rulebill-bench-rating-") as tmp:
        folder = Path(tmp) / "plans"
        folder.mkdir()
        groups = write_plan(folder, rng)
        t0 = time.perf_counter()
        plan_set, problems = load_plan_set([folder])
        t1 = time.perf_counter()
        if plan_set is None:
            print("\n".join(map(str, problems)), file=sys.stderr)
            return 1
        compiled = compile_plan_set(plan_set)
        t2 = time.perf_counter()
        cdr_file = Path(tmp) / "bench.cdr.csv"
        write_cdrs(cdr_file, count, groups, rng)
        print(f"plan: {PREFIXES:,} prefixes in {GROUPS} groups, 5 bands; load+validate {t1 - t0:.2f} s, compile {t2 - t1:.2f} s")
        print(f"CDRs: {count:,} in {cdr_file.stat().st_size / 1e6:.0f} MB; {args.repeat} repetitions, medians")
        floors, rates, floor_walls, rate_walls = [], [], [], []
        results = set()
        for _ in range(args.repeat):
            cpu, wall, n = floor(cdr_file)
            floors.append(cpu)
            floor_walls.append(wall)
            cpu, wall, rated, total, fallbacks = rate(cdr_file, compiled)
            rates.append(cpu)
            rate_walls.append(wall)
            results.add((rated, total, fallbacks))
        assert len(results) == 1, "rating must be deterministic"
        rated, total, fallbacks = results.pop()
        # CPU time of this single-threaded process = throughput per core; wall time is shown beside it
        # because it depends on what else the shared machine runs
        f_med, r_med = statistics.median(floors), statistics.median(rates)
        fw, rw = statistics.median(floor_walls), statistics.median(rate_walls)
        print(f"floor  (csv.reader only): {f_med:.3f} CPU-s  {count / f_med:>12,.0f} CDRs/s per core  (wall {fw:.3f} s, {count / fw:,.0f}/s)")
        print(f"rating (parse + rate):    {r_med:.3f} CPU-s  {count / r_med:>12,.0f} CDRs/s per core  (wall {rw:.3f} s, {count / rw:,.0f}/s)")
        print(f"ratio rating/floor CPU time: {r_med / f_med:.2f}x; rated {rated:,}, full-path fallbacks {fallbacks:,}, "
              f"total {total / 1e6:,.2f} EUR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
