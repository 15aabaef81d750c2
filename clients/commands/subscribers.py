"""``rulebill subscribers provision|show|list|activate|...|change-plan|swap-sim|bar|unbar|credit-limit``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clients.commandkit import client_flags, client_from, paging
from clients.output import emit, emit_one
from clients.services.subscribers import TRANSITIONS
from engine.money import AmountError, parse_amount

SUB_COLUMNS = ("subscriber_id", "tenant_id", "msisdn", "imsi", "status", "payment_type", "tariff_plan", "billing_account")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("subscribers", help="provision and manage subscribers")
    ssub = p.add_subparsers(dest="action", required=True)
    q = ssub.add_parser("provision", help="a new subscriber (status provisioned: activate it before it may call)")
    q.add_argument("--msisdn", required=True); q.add_argument("--imsi", required=True); q.add_argument("--account", required=True)
    q.add_argument("--plan", required=True); q.add_argument("--payment", choices=("postpaid", "prepaid"), default="postpaid")
    q.add_argument("--tenant", default="", help="default: your own tenant"); client_flags(q)
    q = ssub.add_parser("show", help="by subscriber id or MSISDN"); q.add_argument("who"); client_flags(q)
    q = ssub.add_parser("list", help="subscribers, filtered by tenant, status, plan or MSISDN prefix"); q.add_argument("--tenant", default=""); q.add_argument("--status"); q.add_argument("--plan")
    q.add_argument("--msisdn-prefix"); client_flags(q); paging(q)
    for action in TRANSITIONS:
        q = ssub.add_parser(action, help=f"{action} a subscriber (its lifecycle move)"); q.add_argument("subscriber_id"); q.add_argument("--reason", default=""); client_flags(q)
    q = ssub.add_parser("change-plan", help="move a subscriber to another tariff plan"); q.add_argument("subscriber_id"); q.add_argument("--plan", required=True); client_flags(q)
    q = ssub.add_parser("swap-sim", help="move a subscriber to a new SIM card (same number): --imsi of the new SIM")
    q.add_argument("subscriber_id"); q.add_argument("--imsi", required=True); q.add_argument("--reason", default=""); client_flags(q)
    for action in ("bar", "unbar"):
        q = ssub.add_parser(action, help=f"{'set' if action == 'bar' else 'clear'} a barring flag (e.g. bar_international)")
        q.add_argument("subscriber_id"); q.add_argument("--flag", required=True); q.add_argument("--reason", default=""); client_flags(q)
    q = ssub.add_parser("credit-limit", help="set (--amount 50.00 --currency EUR) or remove (--clear) the credit limit per cycle")
    q.add_argument("subscriber_id"); g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--amount", help="decimal amount, e.g. 50.00"); g.add_argument("--clear", action="store_true")
    q.add_argument("--currency", default="EUR"); client_flags(q)
    p.set_defaults(func=run_subscribers)


def run_subscribers(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        s = rb.subscribers
        if args.action == "list":
            page = s.list(tenant_id=args.tenant, status=args.status or "", tariff_plan=args.plan or "",
                          msisdn_prefix=args.msisdn_prefix or "", page_size=args.page_size, page_token=args.page_token)
            emit(page.items, SUB_COLUMNS, args.json)
            if page.next_page_token and not args.json:
                print(f"next page: --page-token {page.next_page_token}", file=sys.stderr)
            return 0
        if args.action == "provision":
            sub = s.provision(args.msisdn, args.imsi, args.account, args.plan, args.payment, tenant_id=args.tenant)
        elif args.action == "show":
            by_number = args.who.isdigit() or args.who.startswith("+")
            sub = s.get(msisdn=args.who) if by_number else s.get(subscriber_id=args.who)
        elif args.action == "change-plan":
            sub = s.change_plan(args.subscriber_id, args.plan)
        elif args.action == "swap-sim":
            sub = s.swap_sim(args.subscriber_id, args.imsi, args.reason)
        elif args.action in ("bar", "unbar"):
            sub = s.set_barring(args.subscriber_id, args.flag, args.action == "bar", args.reason)
        elif args.action == "credit-limit":
            sub = s.set_credit_limit(args.subscriber_id, None if args.clear else _micros(args.amount), args.currency.upper())
        else:
            sub = s.transition(args.subscriber_id, args.action, args.reason)
        emit_one(sub, args.json)
    return 0


def _micros(amount: str) -> int:
    try:
        return parse_amount(amount)
    except AmountError as exc:
        raise SystemExit(f"--amount: {exc}") from None
