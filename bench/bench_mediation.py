"""Mediation throughput: Rulebill's Asterisk layout against a parse-only csv.reader floor.

    python -m bench.bench_mediation            # 1,000,000 rows, 3 repetitions
    python -m bench.bench_mediation --quick    # 20,000 rows, a smoke run
    python -m bench.bench_mediation --stored [--postgres URL]   # also end to end into the store
    python -m bench.bench_mediation --offline --rss 1000000,10000000   # `rulebill mediate` to files: time and peak RSS


Both sides read the same generated Master.csv from disk.  Two floors, parse only,
doing nothing with the rows: ``csv.reader`` over the file opened as text (the
standard library's reader), and Rulebill's own C block splitter over the file's
128 KiB blocks, splitting all 18 columns into str (the fastest CSV reading here).  Rulebill mediation runs the shipped
``rules/mediation/asterisk.yaml`` layout (source ``london-pbx``) end to end (bytes ->
normalised CDR rows, leg rule, filters, E.164 numbers, tenant lookup, identities,
duplicate check, chunk commits) into a sink that drops the rows.  Reported: the median of the repetitions for
each (CPU time of this process, wall clock beside it), rows/s, and mediation time / floor time.  ``--stored`` adds stored ingestion end to
end (CDRs, rejects and checkpoints committed per chunk) into a fresh migrated SQLite file and,
with ``--postgres URL`` (or RULEBILL_TEST_POSTGRES_URL), a fresh PostgreSQL database.
``--offline`` adds the `rulebill mediate` path itself (``clients.commands.mediate.run_mediate``:
the normalised CDR file, the rejects file, checkpoints, the exact on-disk duplicate index).
``--rss N,M`` runs that path in a fresh process per size and reports its peak resident memory
(``ru_maxrss`` of the child), which must not grow with the file.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from engine.mediation import Mediator, find_layout
from engine.mediation.ports import Checkpoint, MediationChunk
from engine.mediation.sources import find_source

RULES = Path(__file__).resolve().parent.parent / "rules" / "mediation"
SOURCE = "london-pbx"


def _asterisk():  # type: ignore[no-untyped-def]
    return find_layout(RULES, "asterisk").bind(find_source(RULES, SOURCE))


class _CountingSink:
    """Keeps nothing: measures the pipeline, not a store."""

    def __init__(self) -> None:
        self.rows = 0

    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        return set()

    def checkpoint(self, file_id: str) -> Checkpoint | None:
        return None

    def commit(self, chunk: MediationChunk) -> None:
        self.rows += len(chunk.cdrs)


def write_asterisk_file(path: Path, rows: int) -> None:
    """Realistic Master.csv rows, as a busy switch writes them at hang-up (~12 calls a second).

    ~88% answered, UK mobile and international numbers from a 100,000-subscriber base,
    ring and talk times that vary, end times increasing, unique ids.
    """
    day0 = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()
    with open(path, "w", encoding="utf-8", newline="") as out:
        for i in range(rows):
            end = day0 + i // 12
            answered = i % 8 != 0
            billsec = (i * 37) % 600 if answered else 0
            ring = 3 + i % 20
            answer_ts = end - billsec
            start_ts = answer_ts - ring
            start, answer, finish = (_local(t) for t in (start_ts, answer_ts, end))
            caller = f"0{7700900000 + (i * 7919) % 100000}"
            dst = f"07700{900000 + (i * 104729) % 99991:06d}" if i % 3 else f"0033{612345678 + i % 7919}"
            out.write(
                f'"acct{i % 50}","{caller}","{dst}","from-internal",'
                f'"""Caller {i % 100}"" <{caller}>","SIP/trunk-{i:08x}","SIP/out-{i:08x}","Dial","SIP/out/{dst},60",'
                f'"{start}","{answer if answered else ""}","{finish}",{billsec + ring},{billsec},'
                f'"{"ANSWERED" if answered else "NO ANSWER"}","BILLING","{1764000000 + i // 12}.{i % 12}",""\n'
            )


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def floor(path: Path) -> int:
    n = 0
    with open(path, newline="", encoding="utf-8") as f:
        for _ in csv.reader(f):
            n += 1
    return n


def floor_splitter(path: Path) -> int:
    """The C block splitter alone: blocks cut at their last line break, every column made a str."""
    from engine.mediation import csvblock

    assert csvblock._split is not None, "the C extension is not built"
    split, columns, n, carry = csvblock._split, tuple(range(18)), 0, b""
    with open(path, "rb") as f:
        while data := f.read(1 << 17):
            buf = carry + data
            cut = buf.rfind(b"\n") + 1
            block, carry = buf[:cut], buf[cut:]
            got = split(block, 44, 34, 18, columns, 1 << 20, True, block.isascii())
            assert got is not None
            n += got[0]
    return n


def mediate(path: Path) -> int:
    sink = _CountingSink()
    summary = Mediator(_asterisk(), sink, sink).mediate_path(path)
    assert summary.records_in == summary.accounted and summary.file_error is None
    return summary.records_in


def offline(path: Path) -> int:
    """`rulebill mediate FILE --format asterisk --source london-pbx --json`, fresh outputs each run."""
    from clients.commands.mediate import run_mediate

    out_dir = Path(tempfile.mkdtemp(dir=path.parent))
    args = argparse.Namespace(file=str(path), format="asterisk", source=SOURCE, out=str(out_dir / "o.cdr.csv"),
                              rejects=str(out_dir / "o.rejects.jsonl"), rules=str(RULES), chunk_size=20_000, json=True, remote=False)
    out = io.StringIO()
    assert run_mediate(args, out, io.StringIO()) == 0
    import json
    import shutil

    summary = json.loads(out.getvalue())["summary"]
    shutil.rmtree(out_dir)
    assert summary["records_in"] == summary["normalised"] + summary["filtered_total"] + summary["rejected_total"] + summary["duplicates"] \
        + summary["aggregated"] + summary["non_billable_legs"]
    return int(summary["records_in"])


def peak_rss(path: Path) -> tuple[int, float, float, int]:
    """The offline path in a fresh process: (peak RSS in bytes, its CPU seconds, wall seconds, rows)."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "bench.bench_mediation", "--offline-child", str(path)],
                             stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, output
    return usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, wall, int(output.split()[-1])


def stored(url: str) -> Callable[[Path], int]:
    """Mediation committed into the SQL store (a fresh copy of the schema per run)."""
    from store.db import make_engine
    from store.mediation import SqlMediationStore, mediated_cdrs, mediation_files, mediation_rejects

    def run(path: Path) -> int:
        engine = make_engine(url)
        with engine.begin() as conn:
            for table in (mediated_cdrs, mediation_rejects, mediation_files):
                conn.execute(table.delete())
        store = SqlMediationStore(engine, "mno")
        summary = Mediator(_asterisk(), store, store).mediate_path(path)
        engine.dispose()
        return summary.records_in

    return run


def _fresh_postgres(admin_url: str) -> tuple[str, Callable[[], None]]:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db import normalise_url
    from store.migrate import upgrade

    name = f"rb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def timed(fn: Callable[[Path], int], path: Path, runs: int) -> tuple[float, float, int]:
    """Medians of (CPU seconds of this process, wall seconds) over ``runs`` and the row count.

    CPU time is the figure to compare: the benchmark machine is shared, so wall clock also
    counts other processes' turns.  (A PostgreSQL server's own CPU is only in the wall figure.)
    """
    cpu, wall, n = [], [], 0
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        n = fn(path)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall), n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 rows: a smoke run")
    parser.add_argument("--stored", action="store_true", help="also measure ingestion into the SQL store (SQLite, PostgreSQL)")
    parser.add_argument("--postgres", default=os.environ.get("RULEBILL_TEST_POSTGRES_URL", ""), help="admin URL of a PostgreSQL server")
    parser.add_argument("--offline", action="store_true", help="also measure `rulebill mediate` to files (the CLI's path)")
    parser.add_argument("--rss", default="", help="comma-separated row counts: peak RSS of the offline path, one fresh process each")
    parser.add_argument("--offline-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.offline_child:
        print(offline(Path(args.offline_child)))
        return 0
    rows = 20_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Master.csv"
        write_asterisk_file(path, rows)
        size = path.stat().st_size
        floor_s, floor_wall, n1 = timed(floor, path, args.runs)
        split_s, split_wall, n0 = timed(floor_splitter, path, args.runs)
        med_s, med_wall, n2 = timed(mediate, path, args.runs)
        assert n0 == n1 == n2 == rows, (n0, n1, n2, rows)
        print(f"mediation bench: {rows:,} Asterisk rows ({size / 1e6:.1f} MB), median of {args.runs} runs, CPU time (wall in brackets)")
        print(f"  floor  csv.reader parse only   {floor_s:7.3f} s  {rows / floor_s:12,.0f} rows/s  ({rows / floor_wall:,.0f} rows/s wall)")
        print(f"  floor  C splitter, 18 columns  {split_s:7.3f} s  {rows / split_s:12,.0f} rows/s  ({rows / split_wall:,.0f} rows/s wall)")
        print(f"  rulebill mediation (asterisk)  {med_s:7.3f} s  {rows / med_s:12,.0f} rows/s  ({rows / med_wall:,.0f} rows/s wall)")
        print(f"  ratio mediation/floor          {med_s / floor_s:7.2f}x csv.reader, {med_s / split_s:.2f}x C splitter")
        if args.offline:
            off_s, off_wall, n4 = timed(offline, path, args.runs)
            assert n4 == rows
            print(f"  rulebill mediate to files      {off_s:7.3f} s  {rows / off_s:12,.0f} rows/s  ({rows / off_wall:,.0f} rows/s wall;"
                  f" {off_s / floor_s:.2f}x csv.reader)")
        if args.stored:
            from store.migrate import upgrade

            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(sqlite_url)
            targets = [("SQLite", sqlite_url, None)]
            if args.postgres:
                pg_url, drop = _fresh_postgres(args.postgres)
                targets.append(("PostgreSQL", pg_url, drop))
            for label, url, cleanup in targets:
                try:
                    store_s, store_wall, n3 = timed(stored(url), path, args.runs)
                finally:
                    if cleanup is not None:
                        cleanup()
                assert n3 == rows
                print(f"  stored end to end ({label:10s}) {store_s:7.3f} s  {rows / store_s:12,.0f} rows/s  "
                      f"({store_s / floor_s:.2f}x floor; wall {store_wall:.3f} s = {rows / store_wall:,.0f} rows/s)")
    for count in (int(n) for n in args.rss.split(",") if n):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "Master.csv"
            write_asterisk_file(path, count)
            size = path.stat().st_size
            rss, cpu, wall, n = peak_rss(path)
            assert n == count
            print(f"  peak RSS, rulebill mediate, {count:>11,} rows ({size / 1e9:.2f} GB): {rss / 2**20:7.1f} MiB"
                  f"  ({count / cpu:,.0f} rows/s CPU, {count / wall:,.0f} rows/s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
