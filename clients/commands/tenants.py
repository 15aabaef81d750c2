"""``rulebill tenants list|show|create|suspend|reactivate``: the MNO and its MVNOs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clients.commandkit import client_flags, client_from, paging
from clients.output import emit, emit_one

TENANT_COLUMNS = ("tenant_id", "display_name", "kind", "status", "parent_tenant_id", "currency")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tenants", help="the MNO and its MVNOs")
    tsub = p.add_subparsers(dest="action", required=True)
    q = tsub.add_parser("list", help="the tenants you may see"); client_flags(q); paging(q)
    q = tsub.add_parser("show", help="one tenant"); q.add_argument("tenant_id"); client_flags(q)
    q = tsub.add_parser("create", help="create an MVNO")
    q.add_argument("tenant_id"); q.add_argument("--name", required=True); q.add_argument("--currency", default="EUR"); client_flags(q)
    q = tsub.add_parser("suspend", help="suspend an MVNO (its calls are barred)"); q.add_argument("tenant_id"); q.add_argument("--reason", default=""); client_flags(q)
    q = tsub.add_parser("reactivate", help="reactivate a suspended MVNO"); q.add_argument("tenant_id"); client_flags(q)
    p.set_defaults(func=run_tenants)


def run_tenants(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        tenants = rb.tenants
        if args.action == "list":
            page = tenants.list(page_size=args.page_size, page_token=args.page_token)
            emit(page.items, TENANT_COLUMNS, args.json)
            if page.next_page_token and not args.json:
                print(f"next page: --page-token {page.next_page_token}", file=sys.stderr)
            return 0
        if args.action == "show":
            tenant = tenants.get(args.tenant_id)
        elif args.action == "create":
            tenant = tenants.create_mvno(args.tenant_id, args.name, args.currency)
        elif args.action == "suspend":
            tenant = tenants.suspend(args.tenant_id, args.reason)
        else:
            tenant = tenants.reactivate(args.tenant_id)
        emit_one(tenant, args.json)
    return 0
