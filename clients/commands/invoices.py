"""``rulebill invoices credit-note|rebill|rebill-rerated|pay|write-off|discard``: after an invoice is issued."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from clients.commandkit import client_flags, client_from
from clients.commands.accounts import money
from clients.commands.bills import day_text, money_text
from clients.output import emit_one


def run(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        bc = rb.billing
        if args.action == "credit-note":
            lines = []
            for item in args.line or []:
                line_id, _, amount = item.partition("=")
                if not amount:
                    raise SystemExit(f"--line: expected LINE=AMOUNT (e.g. 3=2.50), got {item!r}")
                lines.append((line_id, money(amount), args.currency))
            emit_one(bc.credit_note(args.invoice, args.reason, lines, args.tenant), args.json)
        elif args.action == "rebill":
            reply = bc.rebill(args.invoice, args.reason, args.tenant)
            print(f"credit note {reply.credit_note.number} and new invoice {reply.invoice.number}")
        elif args.action == "rebill-rerated":
            start, end = day_text(args.start), day_text(args.end)
            assert start is not None and end is not None
            print_rebills(bc.rebill_rerated(start, end, args.reason, args.dry_run, args.tenant), args.dry_run)
        elif args.action == "pay":
            emit_one(bc.record_payment(args.invoice, money(args.amount), args.currency, args.reference, args.tenant), args.json)
        elif args.action == "write-off":
            emit_one(bc.write_off(args.invoice, args.reason, args.tenant), args.json)
        elif args.action == "discard":
            bc.discard_draft(args.invoice, args.reason, args.tenant)
            print(f"draft {args.invoice} discarded")
    return 0


def print_rebills(rebills: Sequence[Any], dry_run: bool) -> None:
    """One line per invoice whose CDRs were re-rated: its usage before and after, and its credit note and new invoice."""
    for r in rebills:
        was, now = money_text(r.usage_before), money_text(r.usage_after)
        if r.invoice.number:
            print(f"{r.replaced.number}: usage {was} -> {now}: credit note {r.credit_note.number}, new invoice {r.invoice.number}")
        else:
            print(f"{r.replaced.number}: usage {was} -> {now}: {'would be re-billed' if dry_run else 'not re-billed: ' + r.note}")
    done = sum(1 for r in rebills if r.invoice.number)
    print(f"{len(rebills)} invoice(s) with re-rated CDRs" + ("" if dry_run else f", {done} re-billed"))


def register(sub: Any) -> None:
    p = sub.add_parser("invoices", help="credit notes, re-bills, payments, write-offs")
    s = p.add_subparsers(dest="action", required=True)
    q = s.add_parser("credit-note", help="credit all of an invoice, or --line LINE=AMOUNT parts of it")
    q.add_argument("invoice"); q.add_argument("--reason", required=True); q.add_argument("--line", action="append")
    q.add_argument("--currency", default="", help="the amounts' currency, default the invoice's (another is refused)")
    q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("rebill", help="after re-rating: a credit note and a new invoice for the same period")
    q.add_argument("invoice"); q.add_argument("--reason", required=True); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("rebill-rerated", help="after re-rating: re-bill every issued invoice whose CDRs' charges changed")
    q.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="the first re-rated day")
    q.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="the day after the last re-rated day")
    q.add_argument("--reason", required=True); q.add_argument("--dry-run", action="store_true", help="only list them")
    q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("pay", help="record a payment (once per reference)")
    q.add_argument("invoice"); q.add_argument("--amount", required=True)
    q.add_argument("--currency", default="", help="the payment's currency, default the invoice's (another is refused)")
    q.add_argument("--reference", required=True); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("write-off", help="write off an unpaid invoice (admins only, with a reason)"); q.add_argument("invoice"); q.add_argument("--reason", required=True)
    q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("discard", help="drop a draft"); q.add_argument("invoice"); q.add_argument("--reason", required=True)
    q.add_argument("--tenant", default=""); client_flags(q)
    p.set_defaults(func=run)
