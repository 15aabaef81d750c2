"""``rulebill bills run|preview|list|show|download|issue``: bill runs with a progress bar, previews, invoices."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from billing.v1 import billing_pb2 as pb
from clients.commandkit import Progress, client_flags, client_from, paging
from clients.output import as_dict, emit, emit_one, print_table

INVOICE_COLUMNS = ("number", "kind", "state", "account_id", "period_start", "period_end", "payable", "invoice_id")
STATES = {s.lower(): getattr(pb, f"INVOICE_STATE_{s}") for s in ("DRAFT", "ISSUED", "PARTIALLY_PAID", "PAID", "OVERDUE", "WRITTEN_OFF",
                                                                   "CREDITED")}


def _row(i: pb.Invoice) -> dict[str, Any]:
    row = as_dict(i)
    row["payable"] = money_text(i.totals.payable)
    return row


def money_text(m: Any) -> str:
    from engine.currencies import minor_units
    from engine.money import format_micros

    return f"{format_micros(m.amount_micros, minor_units(m.currency) if m.currency else 2)} {m.currency}"


def day_text(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_run(args: argparse.Namespace, bc: Any) -> int:
    # resuming, only a mode flag given names a mode (the run's own is used otherwise; another is refused)
    mode = "final" if args.final else ("on_demand" if args.now or args.interim else ("scheduled" if args.scheduled else None))
    accounts = list(args.account or [])
    if args.now or args.final or args.interim:
        if len(accounts) != 1:
            raise SystemExit("--now, --interim and --final bill exactly one --account")
    last = None
    progress = None if args.json else Progress("bill run")
    for last in bc.run(mode, day_text(args.cycle_date), accounts, args.dry_run, args.review, args.resume or "", args.tenant,
                       interim=args.interim):
        done = last.issued + last.drafts + last.empty + last.skipped + last.failed
        if progress is not None:
            progress(done, last.total)
    assert last is not None
    if args.json:
        emit_one(last, True)
    else:
        what, issued = ("dry run", "would be issued") if last.dry_run else ("bill run", "issued")
        print(f"{what} {last.run_id}: {last.issued} {issued}, {last.drafts} drafts, {last.empty} with nothing to bill, "
              f"{last.skipped} already billed, {last.failed} failed (of {last.total})")
        for f in last.failures:
            print(f"  {f.account_id}: {f.reason}", file=sys.stderr)
    return 1 if last.failed else 0


def cmd_preview(args: argparse.Namespace, bc: Any) -> int:
    reply = bc.preview(args.account, day_text(args.cycle_date), args.tenant)
    if args.html:
        Path(args.html).write_text(reply.html, encoding="utf-8")
    if args.xml:
        Path(args.xml).write_bytes(reply.ubl_xml)
    if args.json:
        emit_one(reply.invoice, True)
        return 0
    inv = reply.invoice
    print(f"PREVIEW for {inv.account_id}, period {inv.period_start} to {inv.period_end} (nothing is issued)")
    if not inv.lines:
        print("nothing to bill")
        return 0
    print_table([{"line": ln.line_id, "description": ln.description, "msisdn": ln.msisdn, "from": ln.period_start, "to": ln.period_end,
                  "qty": ln.quantity, "amount": money_text(ln.amount), "vat": f"{ln.tax_code} {ln.tax_percent}"} for ln in inv.lines],
                ("line", "description", "msisdn", "from", "to", "qty", "amount", "vat"))
    t = inv.totals
    for label, m in (("net", t.tax_exclusive), ("discounts", t.allowances), ("tax", t.tax), ("total", t.tax_inclusive),
                     ("paid on account", t.prepaid), ("amount due", t.payable)):
        print(f"{label:>16}: {money_text(m)}")
    return 0


def cmd_list(args: argparse.Namespace, bc: Any) -> int:
    kind = {"invoice": pb.INVOICE_KIND_INVOICE, "credit_note": pb.INVOICE_KIND_CREDIT_NOTE}.get(args.kind or "", 0)
    reply = bc.list_invoices(args.account or "", args.run or "", STATES.get(args.state or "", 0), kind, args.tenant, args.page_size,
                             args.page_token)
    if args.json:
        emit(reply.invoices, INVOICE_COLUMNS, True)
    else:
        print_table([_row(i) for i in reply.invoices], INVOICE_COLUMNS)
    if reply.next_page_token and not args.json:
        print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, bc: Any) -> int:
    inv = bc.get_invoice(args.invoice, args.tenant)
    if args.json:
        emit_one(inv, True)
        return 0
    print(f"{'credit note' if inv.kind == pb.INVOICE_KIND_CREDIT_NOTE else 'invoice'} {inv.number or '(draft)'} "
          f"[{pb.InvoiceState.Name(inv.state).removeprefix('INVOICE_STATE_').lower()}] account {inv.account_id}, "
          f"period {inv.period_start} to {inv.period_end}, issued {inv.issue_date or '-'}, due {inv.due_date or '-'}")
    print_table([{"line": ln.line_id, "description": ln.description, "msisdn": ln.msisdn, "qty": ln.quantity, "amount": money_text(ln.amount),
                  "vat": f"{ln.tax_code} {ln.tax_percent}"} for ln in inv.lines], ("line", "description", "msisdn", "qty", "amount", "vat"))
    print(f"total {money_text(inv.totals.tax_inclusive)}, due {money_text(inv.totals.payable)}, paid {money_text(inv.paid)}, "
          f"credited {money_text(inv.credited)}")
    return 0


def cmd_download(args: argparse.Namespace, bc: Any) -> int:
    data, content_type, name = bc.download(args.invoice, args.format, tenant_id=args.tenant)
    target = Path(args.output or name)
    target.write_bytes(data)
    print(f"{target} ({content_type}, {len(data)} bytes)")
    return 0


def cmd_issue(args: argparse.Namespace, bc: Any) -> int:
    emit(bc.issue_drafts(args.invoice, args.tenant), INVOICE_COLUMNS, args.json)
    return 0


def run(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        bc = rb.billing
        return {"run": cmd_run, "preview": cmd_preview, "list": cmd_list, "show": cmd_show, "download": cmd_download,
                "issue": cmd_issue}[args.action](args, bc)


def register(sub: Any) -> None:
    p = sub.add_parser("bills", help="bill runs, previews and invoices")
    s = p.add_subparsers(dest="action", required=True)
    q = s.add_parser("run", help="a bill run (progress bar on a terminal); exit 1 when an account failed")
    q.set_defaults(exit_codes={0: "every account billed (or nothing to bill)", 1: "an account failed (each on stderr with its reason)"})
    q.add_argument("--cycle-date", help="YYYY-MM-DD: bill every account whose cycle closes on this day")
    q.add_argument("--account", action="append", help="bill these accounts (their next due period), repeatable")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--now", action="store_true", help="bill one account now (its next due period)")
    g.add_argument("--interim", action="store_true",
                   help="bill one account up to yesterday: its due periods, then an interim bill of the days since (the next "
                        "regular bill covers the rest of the cycle)")
    g.add_argument("--final", action="store_true", help="one account's final bill (subscribers deactivated); closes it")
    g.add_argument("--scheduled", action="store_true", help="what the scheduler does: every account due today")
    q.add_argument("--dry-run", action="store_true", help="compute and count, store nothing")
    q.add_argument("--review", action="store_true", help="make drafts for review (`bills issue` issues them)")
    q.add_argument("--resume", help="continue an interrupted run by its id")
    q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("preview", help="an account's next bill, computed now; nothing is stored")
    q.add_argument("account"); q.add_argument("--cycle-date"); q.add_argument("--html", help="write the HTML bill here")
    q.add_argument("--xml", help="write the UBL document here"); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("list", help="invoices and credit notes")
    q.add_argument("--account"); q.add_argument("--run"); q.add_argument("--state", choices=tuple(STATES))
    q.add_argument("--kind", choices=("invoice", "credit_note")); q.add_argument("--tenant", default=""); client_flags(q); paging(q)
    q = s.add_parser("show", help="one invoice with its lines (by id or number)")
    q.add_argument("invoice"); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("download", help="the UBL XML, HTML or PDF of an invoice")
    q.add_argument("invoice"); q.add_argument("--format", choices=("xml", "html", "pdf"), default="pdf")
    q.add_argument("--output", "-o", help="file (default: <number>.<format>)"); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("issue", help="issue drafts"); q.add_argument("invoice", nargs="+"); q.add_argument("--tenant", default="")
    client_flags(q)
    p.set_defaults(func=run)
