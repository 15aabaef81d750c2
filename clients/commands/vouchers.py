"""``rulebill vouchers generate|show|list|export|redeem|reserve|commit|release|recover-reservations|block|unblock|activate|
amend|expire|rotate-keys|unbar``.

Selections: ``--batch vb-...`` and/or ``--serials FIRST[-LAST]``.  PINs are shown
only by ``list --reveal`` (needs the voucher.reveal_pin privilege) and written
only into OpenPGP-sealed export files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from billing.v1 import voucher_pb2 as pb
from clients.commandkit import Progress, client_flags, client_from
from clients.output import as_dict, emit, emit_one, print_table
from clients.services.vouchers import ExportMismatch, selection

BATCH_COLUMNS = ("batch_id", "profile_id", "tenant_id", "count", "first_serial", "last_serial", "state")
VOUCHER_COLUMNS = ("serial_text", "state", "face_value", "expire_time", "tenant_id", "pin")
# the command's words for the voucher events
EVENTS = {"activate": "activate", "block": "block", "unblock": "unblock", "damaged": "mark_damaged", "stolen": "mark_stolen",
          "recover": "recover", "expire": "expire", "purge": "purge"}
# a change of several vouchers applies to those it may and counts the others (cmd_change)
CHANGE_EXIT_CODES = {0: "every selected voucher changed", 1: "some were refused (counted in the reply)"}

# reservation ids are per tenant: the operator names the MVNO when more than one used the id
_RESERVATION_TENANT = "the reservation's tenant (default: yours, or the only one you act for that used the id)"


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _selection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", default="", help="batch id (vb-...)")
    p.add_argument("--serials", default="", help="FIRST or FIRST-LAST (serial numbers, inclusive)")


def _selection(args: argparse.Namespace) -> pb.VoucherSelection:
    first = last = 0
    if args.serials:
        head, _, tail = args.serials.partition("-")
        try:
            first, last = int(head), int(tail or head)
        except ValueError:
            raise SystemExit(f"--serials: expected FIRST or FIRST-LAST, got {args.serials!r}") from None
    return selection(args.batch, first, last)


def _money(m: dict[str, Any]) -> str:
    micros = int(m.get("amount_micros", 0))
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}".rstrip("0").rstrip(".") + f" {m.get('currency', '')}"


def cmd_generate(args: argparse.Namespace) -> int:
    progress = None if args.json else Progress("generating")
    with client_from(args) as rb:
        batch = rb.vouchers.generate_batch(args.profile, args.count, args.value, args.currency, _when(args.expires), args.tenant,
                                           args.dealer, progress)
    emit_one(batch, args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.get_voucher(args.serial) if args.serial else rb.vouchers.get_batch(args.batch_id), args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        if not args.batch and not args.serials:
            page = rb.vouchers.list_batches(args.page_size, args.page_token)
            emit(page.items, BATCH_COLUMNS, args.json)
            if page.next_page_token and not args.json:
                print(f"next page: --page-token {page.next_page_token}", file=sys.stderr)
            return 0
        rows = [as_dict(v) for chunk in rb.vouchers.stream_vouchers(_selection(args), reveal=args.reveal, chunk_size=1000)
                for v in chunk]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            r["face_value"] = _money(r["face_value"])
        print_table(rows, VOUCHER_COLUMNS if args.reveal else VOUCHER_COLUMNS[:-1])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    try:
        with open(args.recipient_key, "rb") as fh:
            recipient = fh.read()
    except OSError as exc:
        raise SystemExit(f"--recipient-key: cannot read {args.recipient_key}: {exc.strerror}") from None
    if os.path.exists(args.output):
        raise SystemExit(f"{args.output} already exists; choose a new file name")
    progress = None if args.json else Progress("downloading", unit="bytes")
    try:
        with client_from(args) as rb:
            receipt = rb.vouchers.export(_selection(args), recipient, args.output, args.armor, args.request_id, progress)
    except ExportMismatch as exc:
        raise SystemExit(f"export: {exc}") from None
    emit_one(receipt, args.json)
    return 0


def _pin(args: argparse.Namespace) -> str:
    return args.pin if args.pin != "-" else sys.stdin.readline().strip()


def cmd_redeem(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.redeem(args.msisdn, _pin(args), args.request_id), args.json)
    return 0


def cmd_reserve(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.reserve(args.msisdn, _pin(args), args.request_id), args.json)
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.commit(args.reservation_id, args.tenant), args.json)
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.release(args.reservation_id, args.reason, args.tenant), args.json)
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    if args.older_than is not None and args.older_than < 0:
        raise SystemExit("--older-than: seconds, 0 or more")
    with client_from(args) as rb:
        emit_one(rb.vouchers.recover_reservations(args.older_than), args.json)
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        reply = rb.vouchers.change_vouchers(_selection(args), EVENTS[args.event], args.reason, args.request_id)
    emit_one(reply, args.json)
    return 0 if not reply.refused_count else 1


def cmd_amend(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        voucher = rb.vouchers.amend(args.serial, _when(args.expires), args.value, args.tenant, args.dealer, args.request_id)
    emit_one(voucher, args.json)
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    if args.batch or args.serials:
        args.event, args.reason, args.request_id = "expire", args.reason, ""
        return cmd_change(args)
    with client_from(args) as rb:
        emit_one(rb.vouchers.expire_due(), args.json)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.rotate_keys(args.new_master_key), args.json)
    return 0


def cmd_unbar(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        rb.vouchers.clear_recharge_bar(args.msisdn, args.reason)
    print(f"recharge bar lifted for {args.msisdn}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        emit_one(rb.vouchers.change_batch(args.batch_id, args.event, args.reason), args.json)
    return 0


def register(subparsers: Any) -> None:
    top = subparsers.add_parser("vouchers", help="recharge vouchers (VoMS)")
    sub = top.add_subparsers(dest="vouchers_command", required=True)

    p = sub.add_parser("generate", help="generate a batch from a profile (one transaction, with a progress bar)")
    p.add_argument("profile", help="voucher profile id, e.g. vp-mno-eur-10")
    p.add_argument("count", type=int)
    p.add_argument("--value", default="", help="face value override, decimal text")
    p.add_argument("--currency", default="")
    p.add_argument("--expires", default="", help="expiry override, ISO 8601 (UTC when no offset)")
    p.add_argument("--tenant", default="", help="owner MVNO override")
    p.add_argument("--dealer", default="")
    client_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("show", help="one batch, or one voucher with --serial")
    p.add_argument("batch_id", nargs="?", default="")
    p.add_argument("--serial", type=int, default=0)
    client_flags(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", help="batches, or the vouchers of --batch / --serials")
    _selection_flags(p)
    p.add_argument("--reveal", action="store_true", help="include PINs (voucher.reveal_pin privilege; audited)")
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--page-token", default="")
    client_flags(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("export", help="write an OpenPGP-encrypted, signed distribution file")
    _selection_flags(p)
    p.add_argument("--recipient-key", required=True, help="the recipient's exported OpenPGP public key")
    p.add_argument("--output", "-o", required=True)
    p.add_argument("--armor", action="store_true")
    p.add_argument("--request-id", default="")
    client_flags(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("redeem", help="recharge a subscriber (PIN '-' reads it from stdin)")
    p.add_argument("msisdn")
    p.add_argument("pin")
    p.add_argument("--request-id", required=True, help="idempotency key: a retry with the same id never credits twice")
    client_flags(p)
    p.set_defaults(func=cmd_redeem)

    p = sub.add_parser("reserve", help="two-step recharge, step 1: hold a voucher for a subscriber (PIN '-' reads stdin)")
    p.add_argument("msisdn")
    p.add_argument("pin")
    p.add_argument("--request-id", required=True, help="idempotency key; also the reservation id for commit / release")
    client_flags(p)
    p.set_defaults(func=cmd_reserve)

    p = sub.add_parser("commit", help="two-step recharge, step 2: credit the subscriber with a reserved voucher")
    p.add_argument("reservation_id", help="the --request-id given to reserve")
    p.add_argument("--tenant", default="", help=_RESERVATION_TENANT)
    client_flags(p)
    p.set_defaults(func=cmd_commit)

    p = sub.add_parser("release", help="two-step recharge: give a reserved voucher back (no credit)")
    p.add_argument("reservation_id", help="the --request-id given to reserve")
    p.add_argument("--tenant", default="", help=_RESERVATION_TENANT)
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("recover-reservations",
                       help="the scheduled job: reservations nobody committed or released in time become pending")
    p.add_argument("--older-than", type=int, default=None, help="seconds (default: the server's reservation timeout)")
    client_flags(p)
    p.set_defaults(func=cmd_recover)

    for name, event in (("activate", "activate"), ("block", "block"), ("unblock", "unblock"), ("mark-damaged", "damaged"),
                        ("mark-stolen", "stolen"), ("recover", "recover"), ("purge", "purge")):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} one voucher, a serial range or a batch's vouchers")
        _selection_flags(p)
        p.add_argument("--reason", default="")
        p.add_argument("--request-id", default="")
        client_flags(p)
        p.set_defaults(func=cmd_change, event=event, exit_codes=CHANGE_EXIT_CODES)

    p = sub.add_parser("batch", help="move a whole batch (activate and purge move its vouchers too)")
    p.add_argument("event", choices=("activate", "block", "unblock", "expire", "purge"))
    p.add_argument("batch_id")
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("amend", help="change expiry, value, owner or dealer of one voucher")
    p.add_argument("serial", type=int)
    p.add_argument("--expires", default="")
    p.add_argument("--value", default="")
    p.add_argument("--tenant", default="")
    p.add_argument("--dealer", default=None)
    p.add_argument("--request-id", default="")
    client_flags(p)
    p.set_defaults(func=cmd_amend)

    p = sub.add_parser("expire", help="expire every voucher past its expiry (the scheduled job), or --batch / --serials now")
    _selection_flags(p)
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_expire, exit_codes=CHANGE_EXIT_CODES)

    p = sub.add_parser("rotate-keys", help="re-wrap batch data keys under the current master key")
    p.add_argument("--new-master-key", action="store_true", help="first add a new master key version to the server's key file")
    client_flags(p)
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser("unbar", help="lift a subscriber's recharge bar")
    p.add_argument("msisdn")
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_unbar)
