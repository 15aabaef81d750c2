"""``rulebill rerate --from DATE --to DATE [--tenant T] [--plan-set-version N]``: re-rate stored CDRs (server).

The stored CDRs starting in [--from, --to) are rated again through RerateService, under the plan set
version given (default: the version in force at each CDR's start).  Their rows in the usage ledger are
replaced, never added; running the same command twice, or again after it was interrupted, gives the
result of one clean run.  Progress shows on a terminal; the summary is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import rerate_pb2 as pb
from billing.v1 import rerate_pb2_grpc as rpc
from clients.commandkit import bar, client_flags, client_from
from clients.output import emit_one


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("rerate", help="rate the stored CDRs of a period again (replaces their ledger rows)")
    p.add_argument("--from", dest="start", required=True, metavar="WHEN", help="period start: YYYY-MM-DD or an ISO time (UTC)")
    p.add_argument("--to", dest="end", required=True, metavar="WHEN", help="period end (exclusive)")
    p.add_argument("--tenant", default="", help="whose plan set prices the CDRs (default: yours)")
    p.add_argument("--plan-set-version", type=int, default=0, help="rate with this version (default: the one in force per CDR)")
    client_flags(p)
    p.set_defaults(func=run_rerate)


def _stamp(text: str, flag: str) -> Timestamp:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{flag}: {text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if len(text) == 10:
        when = datetime.combine(when.date(), time(0))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    out = Timestamp()
    out.FromDatetime(when.astimezone(timezone.utc))
    return out


def run_rerate(args: argparse.Namespace) -> int:
    request = pb.RerateRequest(tenant_id=args.tenant, period_start=_stamp(args.start, "--from"), period_end=_stamp(args.end, "--to"),
                               plan_set_version=args.plan_set_version)
    summary = None
    with client_from(args) as rb:
        for reply in rb.stub(rpc.RerateServiceStub).Rerate(request):
            if reply.HasField("progress"):
                if sys.stderr.isatty():
                    bar(reply.progress.done, reply.progress.total, "rerate")
            else:
                summary = reply.summary
    if summary is None:  # pragma: no cover - the server always ends with the summary
        raise SystemExit("the server ended the run without a summary")
    emit_one(summary, args.json)
    return 0
