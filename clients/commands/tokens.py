"""``rulebill tokens issue|revoke|list|whoami`` and ``rulebill audit``: API tokens and the audit log."""

from __future__ import annotations

import argparse
from typing import Any

from clients.commandkit import client_flags, client_from, paging
from clients.output import emit, emit_one

TOKEN_COLUMNS = ("token_id", "subject", "tenant_id", "role", "expire_time", "revoke_time")
AUDIT_COLUMNS = ("sequence", "time", "subject", "tenant_id", "action", "object_type", "object_id", "after_json")
ROLES = ("operator_admin", "mvno_admin", "csr", "product_manager", "auditor", "security_officer")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tokens", help="API tokens")
    ksub = p.add_subparsers(dest="action", required=True)
    q = ksub.add_parser("issue"); q.add_argument("--subject", required=True); q.add_argument("--tenant", default="")
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--ttl", type=int, default=0, help="seconds (default 30 days)")
    q.add_argument("--privilege", action="append", help="extra privilege, e.g. voucher.reveal_pin"); client_flags(q)
    q = ksub.add_parser("revoke"); q.add_argument("token_id"); client_flags(q)
    q = ksub.add_parser("list"); q.add_argument("--tenant", default=""); q.add_argument("--all", action="store_true"); client_flags(q)
    q.add_argument("--page-size", type=int, default=50)
    q = ksub.add_parser("whoami"); client_flags(q)
    p.set_defaults(func=run_tokens)

    p = subparsers.add_parser("audit", help="read the audit log")
    p.add_argument("--object-type", default=""); p.add_argument("--object-id", default=""); p.add_argument("--tenant", default="")
    client_flags(p); paging(p)
    p.set_defaults(func=run_audit)


def run_tokens(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        if args.action == "issue":
            issued = rb.tokens.issue(args.subject, args.role, args.tenant, args.ttl, args.privilege or [])
            if args.json:
                emit_one(issued, True)
            else:
                emit_one(issued.token, False)
                print(f"secret (shown once, store it safely): {issued.secret}")
        elif args.action == "revoke":
            emit_one(rb.tokens.revoke(args.token_id), args.json)
        elif args.action == "whoami":
            emit_one(rb.tokens.whoami(), args.json)
        else:
            emit(rb.tokens.list(args.tenant, args.all, page_size=args.page_size).items, TOKEN_COLUMNS, args.json)
    return 0


def run_audit(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        page = rb.audit.list(args.tenant, args.object_type, args.object_id, page_size=args.page_size, page_token=args.page_token)
        emit(page.items, AUDIT_COLUMNS, args.json)
    return 0
