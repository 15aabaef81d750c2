"""``rulebill tokens issue|revoke|list|whoami`` and ``rulebill audit``: API tokens and the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from billing.v1 import token_pb2 as pb
from clients.commandkit import client_flags, client_from, paging
from clients.output import as_dict, emit, emit_one, print_table

TOKEN_COLUMNS = ("token_id", "subject", "tenant_id", "role", "approval", "expire_time", "revoke_time")
AUDIT_COLUMNS = ("sequence", "time", "subject", "tenant_id", "action", "object_id", "summary")
SUMMARY_WIDTH = 60
ROLES = ("operator_admin", "mvno_admin", "csr", "product_manager", "auditor", "security_officer")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tokens", help="API tokens")
    ksub = p.add_subparsers(dest="action", required=True)
    q = ksub.add_parser("issue", help="a new API token (the secret is printed once)"); q.add_argument("--subject", required=True); q.add_argument("--tenant", default="")
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--ttl", type=int, default=0, help="seconds (default 30 days)")
    q.add_argument("--privilege", action="append", help="extra privilege, e.g. voucher.reveal_pin"); client_flags(q)
    q = ksub.add_parser("revoke", help="revoke a token at once"); q.add_argument("token_id"); client_flags(q)
    q = ksub.add_parser("list", help="tokens (without secrets); --all includes revoked and expired"); q.add_argument("--tenant", default=""); q.add_argument("--all", action="store_true"); client_flags(q)
    q.add_argument("--page-size", type=int, default=50)
    q = ksub.add_parser("whoami", help="the token you are using: subject, tenant, role"); client_flags(q)
    p.set_defaults(func=run_tokens)

    p = subparsers.add_parser("audit", help="read the audit log (a summary of each entry; --json for whole entries)")
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
                if issued.token.approval == pb.TOKEN_APPROVAL_PENDING:
                    print(f"pending: works once a second security officer runs `rulebill security-officer approve "
                          f"{issued.token.token_id}`, and only with both halves joined by a dot", file=sys.stderr)
                    print(f"secret (first half, shown once, hand it to {issued.token.subject}): {issued.secret}")
                else:
                    print(f"secret (shown once, store it safely): {issued.secret}")
        elif args.action == "revoke":
            emit_one(rb.tokens.revoke(args.token_id), args.json)
        elif args.action == "whoami":
            emit_one(rb.tokens.whoami(), args.json)
        else:
            emit(rb.tokens.list(args.tenant, args.all, page_size=args.page_size).items, TOKEN_COLUMNS, args.json)
    return 0


def register_decisions(subparsers: Any) -> None:
    """``rulebill security-officer approve|reject TOKEN_ID``: a second security officer's decision on a pending token,
    over the API with that officer's own token (added under ``security-officer`` by servers/admin.py)."""
    q = subparsers.add_parser("approve", help="as a second security officer: approve a pending token and receive the second half "
                                              "of its secret (shown once)")
    q.add_argument("token_id"); client_flags(q)
    q = subparsers.add_parser("reject", help="as a second security officer: refuse a pending token (it never works)")
    q.add_argument("token_id"); q.add_argument("--reason", default="", help="why, for the audit log"); client_flags(q)


def run_decision(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        if args.decision == "reject":
            emit_one(rb.tokens.reject(args.token_id, args.reason), args.json)
            return 0
        approved = rb.tokens.approve(args.token_id)
    if args.json:
        emit_one(approved, True)
        return 0
    emit_one(approved.token, False)
    print(f"second secret (shown once, hand it to {approved.token.subject}; their bearer is the issuer's half, a dot, "
          f"then this): {approved.second_secret}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        page = rb.audit.list(args.tenant, args.object_type, args.object_id, page_size=args.page_size, page_token=args.page_token)
    if args.json:
        emit(page.items, AUDIT_COLUMNS, True)
        return 0
    rows = [as_dict(entry) for entry in page.items]
    for row in rows:
        row["summary"] = audit_summary(row.get("after_json", ""))
    print_table(rows, AUDIT_COLUMNS)
    if page.next_page_token:
        print(f"next page: --page-token {page.next_page_token}", file=sys.stderr)
    return 0


def audit_summary(after_json: str, width: int = SUMMARY_WIDTH) -> str:
    """The first scalar fields of an entry's document as ``key=value``, cut to ``width`` (the table stays readable)."""
    try:
        doc = json.loads(after_json) if after_json else {}
    except ValueError:
        doc = after_json
    if not isinstance(doc, dict):
        text = str(doc)
    else:
        text = ", ".join(f"{k}={v}" for k, v in doc.items()
                         if not isinstance(v, (dict, list)) and v not in ("", None) and not k.endswith("_time"))
    return text if len(text) <= width else text[:width - 1] + "…"
