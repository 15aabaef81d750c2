"""Run every benchmark in one go and keep their reports: ``make bench`` or
``python -m bench.run_all [--quick] [--only NAME ...]``.

Each benchmark measures its own raw floor in the same run and prints medians and
ratios; this runner records the machine (cores, CPU, load average) before and after,
so docs/BENCHMARKS.md can quote figures with the conditions they were taken under.
Reports go to bench/out/<name>.txt.

A benchmark that needs PostgreSQL (``NEEDS_POSTGRES``: the bill run and re-rating are measured on PostgreSQL only) is
skipped, with a line saying so, when ``RULEBILL_TEST_POSTGRES_URL`` is not set; the others then run their SQLite parts
only.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

# name -> extra arguments for a full run
BENCHMARKS: dict[str, list[str]] = {
    "bench_rating": [],
    "bench_rating_grpc": [],
    "bench_rerate": [],
    "bench_mediation": ["--stored"],
    "bench_tap3": [],
    "bench_eventrules": [],
    "bench_vouchers": [],
    "bench_billing": [],
    "bench_rating_memory": [],
}
# these cannot run at all without a PostgreSQL URL (the others add PostgreSQL parts when one is given)
NEEDS_POSTGRES = frozenset({"bench_billing", "bench_rerate"})
POSTGRES_URL = "RULEBILL_TEST_POSTGRES_URL"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run (minutes, not hours)")
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    failed, skipped = [], []
    for name in args.only or BENCHMARKS:
        if name in NEEDS_POSTGRES and not os.environ.get(POSTGRES_URL):
            print(f"# {name}: skipped, it needs PostgreSQL: set {POSTGRES_URL} (tests/with-postgres.sh starts one)\n", flush=True)
            skipped.append(name)
            continue
        cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else BENCHMARKS[name])]
        started = time.perf_counter()
        header = f"# {name} ({' '.join(cmd[2:])})\n# before: {machine()}\n"
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        footer = f"# after: {machine()}; {time.perf_counter() - started:.1f} s wall; exit {proc.returncode}\n"
        report = header + proc.stdout + (("\n# stderr:\n" + proc.stderr) if proc.returncode else "") + footer
        (OUT / f"{name}.txt").write_text(report)
        print(report, flush=True)
        if proc.returncode:
            failed.append(name)
    if skipped:
        print(f"skipped (no PostgreSQL): {', '.join(skipped)}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
