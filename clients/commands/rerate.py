"""``rulebill rerate --from DATE --to DATE [--tenant T] [--plan-set-version N] [--rebill REASON]``: re-rate stored CDRs.

The stored CDRs starting in [--from, --to) are rated again through RerateService, under the plan set
version given (default: the version in force at each CDR's start).  Their rows in the usage ledger are
replaced, never added; running the same command twice, or again after it was interrupted, gives the
result of one clean run.  Progress shows on a terminal; the summary is printed at the end.  ``--rebill`` then
asks BillingService.RebillRerated to re-bill the issued invoices whose CDRs changed (a credit note and a new invoice each).
"""

from __future__ import annotations

import argparse
from datetime import datetime, time, timedelta, timezone
from typing import Any

from billing.v1.rerate_pb2 import RerateSummary
from clients.commandkit import Progress, client_flags, client_from
from clients.commands.invoices import print_rebills
from clients.output import emit_one


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("rerate", help="rate the stored CDRs of a period again (replaces their ledger rows)")
    p.add_argument("--from", dest="start", required=True, metavar="WHEN", help="period start: YYYY-MM-DD or an ISO time (UTC)")
    p.add_argument("--to", dest="end", required=True, metavar="WHEN", help="period end (exclusive)")
    p.add_argument("--tenant", default="", help="whose plan set prices the CDRs (default: yours)")
    p.add_argument("--plan-set-version", type=int, default=0, help="rate with this version (default: the one in force per CDR)")
    p.add_argument("--rebill", metavar="REASON", default="",
                   help="then re-bill every issued invoice whose CDRs' charges changed (credit note + new invoice, with this reason)")
    client_flags(p)
    p.set_defaults(func=run_rerate)


def _when(text: str, flag: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{flag}: {text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if len(text) == 10:
        when = datetime.combine(when.date(), time(0))
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def run_rerate(args: argparse.Namespace) -> int:
    start, end = _when(args.start, "--from"), _when(args.end, "--to")
    summary = None
    progress = Progress("rerate")
    with client_from(args) as rb:
        for step in rb.rerate.steps(start, end, args.plan_set_version, args.tenant):
            if isinstance(step, RerateSummary):
                summary = step
            else:
                progress(step.done, step.total)
    if summary is None:  # pragma: no cover - the server always ends with the summary
        raise SystemExit("the server ended the run without a summary")
    emit_one(summary, args.json)
    if args.rebill:  # billed periods: never a silent edit, a credit note and a new invoice per invoice that changed
        last = end.date() if end.time() == time(0) else end.date() + timedelta(days=1)
        with client_from(args) as rb:
            print_rebills(rb.billing.rebill_rerated(start.date(), last, args.rebill, tenant_id=args.tenant), dry_run=False)
    return 0
