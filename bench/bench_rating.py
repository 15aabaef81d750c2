"""Rating throughput of `rulebill replay` and what-if: 1,000,000 CDRs, 50,000 prefixes, 5 bands, bundles on.

    python -m bench.bench_rating            # 1,000,000 CDRs, 3 repetitions
    python -m bench.bench_rating --quick    # 20,000 CDRs, a smoke run
    python -m bench.bench_rating --distinct-starts   # start times as a real file has them (not 4,096 instants)
    python -m bench.bench_rating --against-kernel OLD/engine/rating/_rowkernel.cpython-311-x86_64-linux-gnu.so
                                            # replay and what-if also with another build of the C row kernel

A golden-style case folder is generated on disk: ``plans/`` with 50,000 prefixes
in 100 destination groups, five time bands (peak, evening, off-peak, weekend,
holiday) in Europe/Paris, stepped rates with connect fees, minimums and caps,
a voice and a data bundle on the plan; ``subscribers.yaml`` giving 1,000
subscribers both bundles (fewer in a smaller file, one per 1,000 CDRs, so that
a quick run's calls too go beyond the voice bundles); ``cdrs.cdr.csv`` with the CDRs (70 % voice, 20 % SMS,
10 % data) of those subscribers.  Timed, CPU and wall, in one process:

* floor: ``csv.reader`` over the CDR file doing nothing with the rows;
* read only: the reading replay and what-if do (:mod:`engine.csvrows`), doing
  nothing with the rows, as a second reference;
* replay: :func:`engine.replay.replay_folder` -- what ``rulebill replay`` runs
  (loads the plans and subscribers, reads the file, rates every CDR through the
  evaluator with bundle counters carried in order, writes each CDR's expected
  line and compares it with expected.jsonl, which ``update_folder`` wrote once
  before the timer);
* rate only: :func:`engine.replay.rate_folder` -- the same without the
  comparison, as a second reference;
* what-if: :func:`clients.commands.plans.run_what_if` -- ``rulebill plans
  what-if --active ... --subscribers ... --format json`` as the command runs it
  (the active plan set loaded and compiled, the file rated under a candidate plan
  set (voice prices doubled) and the active one, both through the evaluator).

Reported: medians of the repetitions, CDRs/s per core (CPU time of this
single-threaded process) and wall, and the ratio to the floor.

``--against-kernel PATH``: replay and what-if are also run with another build
of :mod:`engine.rating._rowkernel` (an older commit's, built in place), in the
same process, the two builds taking turns in each repetition (the order
swapped every repetition).  On a shared machine whose load moves by the minute,
a pair measured so is fairer than two processes run one after the other.  The
Python code is this checkout's for both (the kernel's interface must be the
same), and both must give the same results.  What-if is not timed with a build
that has no ``rate_columns_both`` (what-if's one walk of both sides).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from engine.cdr import COLUMNS, cdr_identity

GROUPS = 100
PREFIXES = 50_000
SUBSCRIBERS = 1_000
PLAN = "TP_BENCH"


def write_plan(folder: Path, rng: random.Random, price_factor: int = 1) -> list[list[str]]:
    """A plan set with PREFIXES unique prefixes and two bundles; returns the prefixes per group (to draw numbers from)."""
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
            price = f"0.{(r + 1) * factor * price_factor:02d}"
            extra = 'connect_fee: "0.05"\nminimum_charge: "0.10"\n' if r % 3 == 0 else ""
            extra += 'maximum_cost: {amount: "25.00", beyond: free_beyond}\n' if r % 5 == 0 else ""
            inc = ("60/1", "1/1", "30/6", "60/60")[r % 4]
            (folder / f"RT_V{r:02d}_{factor}.yaml").write_text(
                f"kind: rate\nid: RT_V{r:02d}_{factor}\ncurrency: EUR\nprice: \"{price}\"\nper: 60\nincrements: {inc}\n{extra}")
    (folder / "RT_SMS.yaml").write_text('kind: rate\nid: RT_SMS\nunit: event\ncurrency: EUR\nprice: "0.09"\nper: 1\n')
    (folder / "RT_DATA.yaml").write_text('kind: rate\nid: RT_DATA\nunit: byte\ncurrency: EUR\nprice: "0.02"\nper: 1MB\nincrements: 10KB/10KB\n')
    (folder / "BN_VOICE.yaml").write_text("kind: bundle\nid: BN_BENCH_VOICE\nallowance: {service: voice, amount: 1000min}\n"
                                          "recurrence: monthly\ncurrency: EUR\npriority: 10\n")
    (folder / "BN_DATA.yaml").write_text('kind: bundle\nid: BN_BENCH_DATA\nallowance: {service: data, amount: "1GB"}\n'
                                         "recurrence: monthly\ncurrency: EUR\npriority: 10\n")
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
    bundles: [BN_BENCH_VOICE, BN_BENCH_DATA]
    rates:
{chr(10).join(rows)}
      - {{service: sms, rate: RT_SMS}}
      - {{service: data, direction: any, rate: RT_DATA}}
""")
    return groups


def subscriber(n: int) -> str:
    return f"3361{n:07d}"


def subscribers_of(count: int) -> int:
    """SUBSCRIBERS for a million CDRs, one per 1,000 CDRs in a smaller file (at least 10)."""
    return max(10, min(SUBSCRIBERS, count // 1_000))


def write_case(folder: Path, count: int, rng: random.Random, distinct_starts: bool = False) -> list[list[str]]:
    """A replay case: plans/, subscribers.yaml (every subscriber with both bundles), cdrs.cdr.csv."""
    (folder / "plans").mkdir(parents=True)
    groups = write_plan(folder / "plans", rng)
    with (folder / "subscribers.yaml").open("w") as f:
        f.write(f"default_plan: {PLAN}\nsubscribers:\n")
        for n in range(subscribers_of(count)):
            f.write(f'  "{subscriber(n)}": {{bundles: {{BN_BENCH_VOICE: 60000, BN_BENCH_DATA: 1073741824}}}}\n')
    write_cdrs(folder / "cdrs.cdr.csv", count, groups, rng, distinct_starts)
    return groups


def write_cdrs(path: Path, count: int, groups: list[list[str]], rng: random.Random, distinct_starts: bool = False) -> None:
    """The CDRs; their start times drawn from 4,096 instants of the month (the benchmark's figures since the first
    session), or with ``distinct_starts`` each at a random second of the month, as a real file has them (about
    830,000 distinct cells per million rows, every minute of the month; the other columns are the same)."""
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    times = [(start + timedelta(seconds=rng.randrange(31 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ") for _ in range(4096)]
    own = random.Random(20261206)   # a generator of its own: the other columns stay those of the 4,096-start file
    epoch0 = int(start.timestamp())
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
            row[index["start_time"]] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch0 + own.randrange(31 * 86400))) \
                if distinct_starts else times[n & 4095]
            row[index["a_number"]] = subscriber(rng.randrange(subscribers_of(count)))
            group = groups[rng.randrange(GROUPS)]
            row[index["b_number"]] = group[rng.randrange(len(group))] + str(rng.randrange(10**6, 10**7))
            row[index["duration_seconds"]] = str(rng.randint(1, 600)) if service == "voice" else "0"
            row[index["volume_up_bytes"]] = str(rng.randint(0, 10**6)) if service == "data" else "0"
            row[index["volume_down_bytes"]] = str(rng.randint(0, 10**7)) if service == "data" else "0"
            row[index["event_count"]] = "1"
            w.writerow(row)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(CPU seconds, wall seconds, result)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - started, result


def floor(path: Path) -> int:
    n = 0
    with path.open(newline="", encoding="utf-8") as f:
        for _row in csv.reader(f):
            n += 1
    return n - 1


def read_floor(path: Path) -> int:
    """The reading replay and what-if do (engine.csvrows: plain blocks split in C), doing nothing with the rows."""
    from engine.csvrows import CsvRows
    from engine.gcpause import collector_paused

    n = 0
    with path.open("rb") as f, collector_paused():   # as replay reads (chunks of rows held)
        for _lines, rows in CsvRows(f).chunks(50_000):
            n += len(rows)
    return n


def kernel_build(path: str) -> Any:
    """Another build of engine.rating._rowkernel (its shared object), loaded beside this checkout's own."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("rulebill_bench_other._rowkernel", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    import io
    import json
    from decimal import Decimal

    from clients.commands.plans import run_what_if
    from engine.plans import load_plan_set
    from engine.replay import rate_folder, replay_folder, update_folder

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 CDRs: a smoke run")
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-kernel", action="store_true", help="rate with the Python loop only (as a build without a C compiler)")
    ap.add_argument("--distinct-starts", action="store_true",
                    help="start times at random seconds of the month, as a real file has them (default: 4,096 start times, the "
                         "figures so far)")
    ap.add_argument("--against-kernel", metavar="PATH", default=None,
                    help="another build of engine.rating._rowkernel (its .so): replay and what-if also run with it, taking turns "
                         "with this checkout's in the same process")
    args = ap.parse_args(argv)
    count = args.count or (20_000 if args.quick else 1_000_000)
    if args.no_kernel:
        from engine.rating import evaluator

        evaluator._kernel = lambda *_rows: None  # type: ignore[assignment]
    rng = random.Random(20261127)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="rulebill-bench-rating-") as tmp:
        case = Path(tmp) / "case"
        write_case(case, count, rng, args.distinct_starts)
        candidate = Path(tmp) / "candidate"
        candidate.mkdir()
        write_plan(candidate, random.Random(20261127), price_factor=2)   # the same prefixes, voice prices doubled
        cpu, _wall, plan_set = timed(lambda: load_plan_set([case / "plans"])[0])
        cdr_file = case / "cdrs.cdr.csv"
        what_if_args = argparse.Namespace(active=[str(case / "plans")], candidate=[str(candidate)], cdrs=str(cdr_file),
                                          subscribers=str(case / "subscribers.yaml"), format="json")

        def what_if() -> int:   # `rulebill plans what-if --active ... --format json`: the difference in micro-units
            out = io.StringIO()
            assert run_what_if(what_if_args, out) == 0
            return sum(int(Decimal(x) * 1_000_000) for x in json.loads(out.getvalue())["difference"].values())

        update_folder(case)   # expected.jsonl, once, before the timer
        print(f"plan: {PREFIXES:,} prefixes in {GROUPS} groups, 5 bands, 2 bundles (load+validate {cpu:.2f} CPU-s); "
              f"{subscribers_of(count):,} subscribers with bundles")
        print(f"CDRs: {count:,} in {cdr_file.stat().st_size / 1e6:.0f} MB, "
              f"{'start times at random seconds of the month' if args.distinct_starts else 'start times from 4,096 instants'}; "
              f"{args.repeat} repetitions, medians")
        runs: dict[str, list[tuple[float, float]]] = {"floor": [], "read": [], "replay": [], "rate": [], "what-if": []}
        checks = set()
        differences = set()
        kernels: list[tuple[str, Any]] = [("", sys.modules.get("engine.rating._rowkernel"))]
        if args.against_kernel:
            import engine.rating._rowkernel as own

            kernels = [("", own), (" [other kernel]", kernel_build(args.against_kernel))]
            runs.update({"replay [other kernel]": [], "rate [other kernel]": [], "what-if [other kernel]": []})
        for repetition in range(args.repeat):
            cpu, wall, n = timed(lambda: floor(cdr_file))
            runs["floor"].append((cpu, wall))
            cpu, wall, _n = timed(lambda: read_floor(cdr_file))
            runs["read"].append((cpu, wall))
            for tag, kernel in kernels if repetition % 2 == 0 else kernels[::-1]:
                if kernel is not None:   # (the evaluator imports the kernel's functions when it rates)
                    sys.modules["engine.rating._rowkernel"] = kernel
                cpu, wall, compared = timed(lambda: replay_folder(case))
                runs["replay" + tag].append((cpu, wall))
                assert compared.ok, compared.render()[:2000]
                cpu, wall, result = timed(lambda: rate_folder(case))
                runs["rate" + tag].append((cpu, wall))
                statuses: dict[str, int] = {}
                for r in result.rows:
                    statuses[r[0]] = statuses.get(r[0], 0) + 1
                covered = sum(1 for r in result.rows if r[3])
                if kernel is not None and not hasattr(kernel, "rate_columns_both"):
                    # a build from before what-if's one walk of both sides: what-if would not time that build's C loop
                    # but the batch loops the walk falls back to, so it is not timed with it
                    print(f"what-if{tag}: not timed (that build has no rate_columns_both)")
                else:
                    cpu, wall, difference = timed(what_if)
                    runs["what-if" + tag].append((cpu, wall))
                    differences.add(difference)
                checks.add((n, result.count, result.charged_micros, compared.charged_micros, tuple(sorted(statuses.items())),
                            covered))
            if kernels[0][1] is not None:
                sys.modules["engine.rating._rowkernel"] = kernels[0][1]
        assert len(checks) == 1, f"rating must be deterministic: {checks}"
        assert len(differences) == 1, f"what-if must be deterministic: {differences}"
        n, rated_count, charged, _charged_again, statuses_t, covered = checks.pop()
        difference = differences.pop()
        f_cpu = statistics.median(c for c, _ in runs["floor"])
        for name, label in (("floor", "floor (csv.reader only)     "), ("read", "read only (engine.csvrows)  "),
                            ("replay", "replay (replay_folder)      "), ("rate", "rate only (rate_folder)     "),
                            ("what-if", "what-if (run_what_if)       "),
                            ("replay [other kernel]", "replay, other kernel        "),
                            ("rate [other kernel]", "rate only, other kernel     "),
                            ("what-if [other kernel]", "what-if, other kernel       ")):
            if not runs.get(name):
                continue
            cpu = statistics.median(c for c, _ in runs[name])
            wall = statistics.median(w for _, w in runs[name])
            ratio = "" if name == "floor" else f"  {cpu / f_cpu:.2f}x floor"
            print(f"{label}: {cpu:7.3f} CPU-s {count / cpu:>12,.0f} CDRs/s per core  (wall {wall:7.3f} s, {count / wall:>10,.0f}/s){ratio}")
        print(f"replay: {dict(statuses_t)}, {covered:,} CDRs paid (partly) by bundles, charged {charged / 1e6:,.2f} EUR; "
              f"what-if difference {difference / 1e6:,.2f} EUR")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
