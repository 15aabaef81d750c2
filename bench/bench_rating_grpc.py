"""RatingService.RateCdrs stream throughput over gRPC on 127.0.0.1, against two floors in the same run.

    python -m bench.bench_rating_grpc            # 100,000 CDRs in chunks of 1,000, 3 repetitions
    python -m bench.bench_rating_grpc --quick    # 5,000 CDRs (CI)

A real server (``servers.root.build_root`` and ``servers.app.create_server``) over a fresh SQLite
database, bootstrapped with the sample operator's plans (``plans/``).  The
client streams mvno-alpha voice, SMS and data CDRs (rated with the operator's
wholesale plan TP_WS_ALPHA, the MVNO's CDR path) in chunks of 1,000 and reads
the rated chunks back.  Floors: (1) the wire only -- encode every request chunk
and decode it again (protobuf, no network, no rating); (2) in-process rating --
the same CDRs through ``RatingDesk.rate_many`` (chunks of 1,000) directly (rating plus the store
look-ups, no gRPC).  Reported: medians of the repetitions, CDRs/s and ratios.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc

CHUNK = 1000
NUMBERS = ("33612", "33613", "33614", "331", "339", "4930", "4420", "1415", "3380")


def make_cdrs(count: int, rng: random.Random) -> list[mpb.NormalisedCdr]:
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5)
    kinds = (mpb.CDR_SERVICE_KIND_VOICE,) * 7 + (mpb.CDR_SERVICE_KIND_SMS,) * 2 + (mpb.CDR_SERVICE_KIND_DATA,)
    out = []
    for i in range(count):
        kind = rng.choice(kinds)
        t = Timestamp()
        t.FromDatetime(start + timedelta(seconds=rng.randint(0, 6 * 3600)))
        b = rng.choice(NUMBERS) + "".join(rng.choice("0123456789") for _ in range(7))
        out.append(mpb.NormalisedCdr(
            source="bench", origin_id=str(i), service=kind, direction=mpb.CDR_DIRECTION_ORIGINATING, start_time=t,
            a_number="33614" + f"{i % 100000:06d}", b_number=b if kind != mpb.CDR_SERVICE_KIND_DATA else "",
            duration_seconds=rng.randint(1, 900) if kind == mpb.CDR_SERVICE_KIND_VOICE else 0,
            volume_down_bytes=rng.randint(1, 50_000_000) if kind == mpb.CDR_SERVICE_KIND_DATA else 0,
            event_count=1 if kind == mpb.CDR_SERVICE_KIND_SMS else 0))
    return out


def chunks(cdrs: list[mpb.NormalisedCdr]) -> list[rpb.RateCdrsRequest]:
    return [rpb.RateCdrsRequest(cdrs=cdrs[i:i + CHUNK]) for i in range(0, len(cdrs), CHUNK)]


def wire_floor(requests: list[rpb.RateCdrsRequest]) -> float:
    t0 = time.perf_counter()
    for r in requests:
        rpb.RateCdrsRequest.FromString(r.SerializeToString())
    return time.perf_counter() - t0


def in_process(root: object, cdrs: list[mpb.NormalisedCdr]) -> tuple[float, int]:
    from dataclasses import replace

    from engine.errors import ErrorList
    from engine.identity import SYSTEM
    from servers.convert import cdr_from_pb

    desk = root.rating  # type: ignore[attr-defined]
    principal = replace(SYSTEM, tenant_id="mvno-alpha", is_operator=False, subject="bench")
    errors = ErrorList()
    t0 = time.perf_counter()
    rated = 0
    for i in range(0, len(cdrs), CHUNK):
        chunk = [cdr_from_pb(c, "cdr", errors) for c in cdrs[i:i + CHUNK]]
        rated += sum(1 for o in desk.rate_many(principal, chunk) if o.rated.status.value == "rated")
    return time.perf_counter() - t0, rated


def over_grpc(stub: rrpc.RatingServiceStub, requests: list[rpb.RateCdrsRequest]) -> tuple[float, int]:
    def feed() -> Iterator[rpb.RateCdrsRequest]:
        yield from requests

    t0 = time.perf_counter()
    rated = 0
    for reply in stub.RateCdrs(feed()):
        rated += sum(1 for r in reply.rated if r.status == rpb.RATING_STATUS_RATED)
    return time.perf_counter() - t0, rated


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 CDRs (CI)")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    count = args.count or (5_000 if args.quick else 100_000)

    from clients.client import RulebillClient
    from engine.identity import Role
    from engine.settings import Settings
    from servers.app import create_server, graceful_stop
    from servers.bootstrap import bootstrap
    from servers.root import build_root
    from store.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="rulebill-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        settings = Settings(home=Path(tmp), database_url=url)
        root = build_root(settings)
        bootstrap(settings, root, load_plans=True)
        server, port = create_server(root, "127.0.0.1:0")
        server.start()
        _, bearer = root.tokens.issue(None, "bench", "mvno-alpha", Role.MVNO_ADMIN, 0)
        client = RulebillClient(f"127.0.0.1:{port}", bearer)
        stub = client.stub(rrpc.RatingServiceStub)
        try:
            cdrs = make_cdrs(count, random.Random(4))
            requests = chunks(cdrs)
            over_grpc(stub, requests[:2])  # warm up: compiled plan cache, channel
            floors, local, remote = [], [], []
            rated_local = rated_remote = 0
            for _ in range(args.repeat):
                floors.append(wire_floor(requests))
                t, rated_local = in_process(root, cdrs)
                local.append(t)
                t, rated_remote = over_grpc(stub, requests)
                remote.append(t)
        finally:
            client.close()
            graceful_stop(server, root, 1.0).wait()
            root.close()
    f, lo, re_ = statistics.median(floors), statistics.median(local), statistics.median(remote)
    print(f"CDRs: {count:,} in chunks of {CHUNK} (mvno-alpha, wholesale plan TP_WS_ALPHA), medians of {args.repeat}")
    print(f"floor, protobuf encode+decode of the requests: {f:8.3f} s  {count / f:12,.0f} CDRs/s")
    print(f"in-process RatingDesk.rate_many (no gRPC):     {lo:8.3f} s  {count / lo:12,.0f} CDRs/s  rated {rated_local:,}")
    print(f"RateCdrs stream over gRPC on 127.0.0.1:        {re_:8.3f} s  {count / re_:12,.0f} CDRs/s  rated {rated_remote:,}")
    print(f"ratio gRPC / wire floor: {re_ / f:.1f}x   gRPC / in-process: {re_ / lo:.2f}x")
    return 0 if rated_remote == rated_local == count else 1


if __name__ == "__main__":
    sys.exit(main())
