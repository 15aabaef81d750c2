"""``rulebill rating authorize|alerts``: ask the server's RatingService.

* ``rating authorize --msisdn 33612000001 --to 449012345678 [--service voice] [--visited-network DEUD2]``
  — the barring decision for a call attempt now (exit 0 allowed, 1 barred).
* ``rating alerts [--tenant T] [--msisdn N] [--period YYYY-MM]`` — the credit alert log.
"""

from __future__ import annotations

import argparse
from typing import Any

from clients.commandkit import client_flags, client_from, paging
from clients.output import emit, emit_one
from clients.services.rating import SERVICES

ALERT_COLUMNS = ("sequence", "fire_time", "tenant_id", "msisdn", "period", "threshold_id", "kind", "channel", "barring_flag", "text")
EXIT_ALLOWED = 0
EXIT_BARRED = 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("rating", help="authorise call attempts and read credit alerts (server)")
    commands = p.add_subparsers(dest="rating_command", required=True)
    a = commands.add_parser("authorize", help="may this MSISDN make this call now? exit 0 allowed, 1 barred")
    a.set_defaults(exit_codes={EXIT_ALLOWED: "the call is allowed", EXIT_BARRED: "the call is barred (the reason is printed)"})
    a.add_argument("--msisdn", required=True)
    a.add_argument("--to", default="", help="dialled number")
    a.add_argument("--service", choices=SERVICES, default="voice")
    a.add_argument("--visited-network", default="", help="TADIG code when roaming")
    a.add_argument("--roaming", action="store_true")
    client_flags(a)
    a.set_defaults(func=run_authorize)
    q = commands.add_parser("alerts", help="the credit alert log")
    q.add_argument("--tenant", default=""); q.add_argument("--msisdn", default=""); q.add_argument("--period", default="")
    client_flags(q); paging(q)
    q.set_defaults(func=run_alerts)


def run_authorize(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        reply = rb.rating.authorise(args.msisdn, args.to, args.service, args.roaming, args.visited_network)
    emit_one(reply, args.json)
    return EXIT_ALLOWED if reply.allowed else EXIT_BARRED


def run_alerts(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        page = rb.rating.credit_alert_log(args.tenant, args.msisdn, args.period, args.page_size, args.page_token)
    emit(page.items, ALERT_COLUMNS, args.json)
    return 0
