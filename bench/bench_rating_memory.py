"""RatingService.RateCdrs' peak memory on one stream of CDRs with large attributes: the server's peak RSS (VmHWM).

    python -m bench.bench_rating_memory                   # 50 messages of 1,000 CDRs, each with 32 attributes of 256
                                                          # characters (~10.6 MB a message), SQLite, 1 run
    python -m bench.bench_rating_memory --runs 3 --messages 50 --hold 15
    BENCH_GROUP=1 python -m bench.bench_rating_memory     # the server's rating_group_max_cdrs set to 1

A real server runs in its own process (bench.bench_rating_grpc's, over a database prepared the same way: the sample
operator's plans and 2,000 subscribers on TP_SMART_M) with the default settings (``max_message_bytes`` 16 MiB,
``rating_group_max_cdrs`` 20,000).  The client sends the whole stream at once with ``use_bundle_counters`` and reads no
reply for ``--hold`` seconds (so the server reads ahead, groups and waits with its replies unread), then reads them
all.  Reported per run: the server's peak resident set (``VmHWM`` of /proc/PID/status, the process's high-water mark
since it started, its start-up included), its RSS at the start, the wall time and the load average.  The product path
is ``RatingServicer.RateCdrs`` → ``RatingStream.grouped`` (engine.rating.groups) → ``RatingStream.rate_rows``: what it
holds is what the read-ahead holds (twice ``max_message_bytes`` of messages at most) and the two groups (the one rated,
the one waiting for its commit and its replies), each bounded in CDRs and in bytes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.bench_rating_grpc import CHUNK, REPO, SERVER, database, make_requests, prepare, stop

ATTRIBUTES = {f"k{i:02d}".ljust(64, "x"): "v" * 256 for i in range(32)}   # 32 as large as a CDR may carry


def vm(pid: int, field: str) -> int:
    """A size from /proc/PID/status (``VmHWM``, ``VmRSS``) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def one_run(messages: int, hold: float, run: int) -> tuple[int, int, float, float]:
    """(peak RSS, RSS before the stream, wall seconds, load average) of a fresh server rating one stream."""
    from clients.client import RulebillClient

    with tempfile.TemporaryDirectory(prefix="rulebill-bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        url, drop = database("sqlite", tmp)
        try:
            bearer = prepare(url, tmp)
            start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
            requests = make_requests(messages * CHUNK, start, f"mem{run}", random.Random(run))
            for request in requests:
                for cdr in request.cdrs:
                    cdr.attributes.update(ATTRIBUTES)
            server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp), url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))})
            assert server.stdin is not None and server.stdout is not None
            port = int(server.stdout.readline())
            client = RulebillClient(f"127.0.0.1:{port}", bearer)
            try:
                before = vm(server.pid, "VmRSS")
                load = os.getloadavg()[0]
                started = time.perf_counter()
                replies = client.rating.rpc.RateCdrs(iter(requests))
                time.sleep(hold)   # the replies unread: the server reads ahead and holds its groups
                answered = sum(len(reply.rated) for reply in replies)
                wall = time.perf_counter() - started
                assert answered == messages * CHUNK, answered
                peak = vm(server.pid, "VmHWM")
            finally:
                client.close()
                stop(server)
        finally:
            drop()
    return peak, before, wall, max(load, os.getloadavg()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--messages", type=int, default=50, help="messages of 1,000 CDRs in the stream")
    ap.add_argument("--hold", type=float, default=15.0, help="seconds before the client reads its first reply")
    args = ap.parse_args()
    peaks = []
    for run in range(args.runs):
        peak, before, wall, load = one_run(args.messages, args.hold, run)
        peaks.append(peak)
        print(f"  run {run + 1}: peak RSS {peak / 2**20:,.0f} MiB (VmHWM; {before / 2**20:,.0f} MiB before the stream), "
              f"{wall:.1f} s wall, load {load:.2f}", flush=True)
    print(f"RateCdrs, {args.messages} messages of {CHUNK:,} CDRs with {len(ATTRIBUTES)} attributes of 256 characters: "
          f"peak RSS median {statistics.median(peaks) / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
