"""``rulebill vouchers generate|show|list|export|redeem|reserve|commit|release|recover-reservations|block|unblock|activate|
amend|expire|rotate-keys|unbar``.

Selections: ``--batch vb-...`` and/or ``--serials FIRST[-LAST]``.  PINs are shown
only by ``list --reveal`` (needs the voucher.reveal_pin privilege) and written
only into OpenPGP-sealed export files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from datetime import datetime, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import voucher_pb2 as pb
from billing.v1 import voucher_pb2_grpc as rpc
from clients.commandkit import bar, client_flags, client_from
from clients.output import as_dict, emit, emit_one, print_table

BATCH_COLUMNS = ("batch_id", "profile_id", "tenant_id", "count", "first_serial", "last_serial", "state")
VOUCHER_COLUMNS = ("serial_text", "state", "face_value", "expire_time", "tenant_id", "pin")
EVENTS = {"activate": pb.VOUCHER_EVENT_ACTIVATE, "block": pb.VOUCHER_EVENT_BLOCK, "unblock": pb.VOUCHER_EVENT_UNBLOCK,
          "damaged": pb.VOUCHER_EVENT_MARK_DAMAGED, "stolen": pb.VOUCHER_EVENT_MARK_STOLEN, "expire": pb.VOUCHER_EVENT_EXPIRE,
          "purge": pb.VOUCHER_EVENT_PURGE}


def _stub(args: argparse.Namespace) -> Any:
    return client_from(args).stub(rpc.VoucherServiceStub)


def _timestamp(text: str) -> Timestamp:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


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
    return pb.VoucherSelection(batch_id=args.batch, first_serial=first, last_serial=last)


def _money(m: dict[str, Any]) -> str:
    micros = int(m.get("amount_micros", 0))
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}".rstrip("0").rstrip(".") + f" {m.get('currency', '')}"


def cmd_generate(args: argparse.Namespace) -> int:
    req = pb.GenerateBatchRequest(profile_id=args.profile, count=args.count, face_value=args.value, currency=args.currency,
                                  tenant_id=args.tenant, dealer=args.dealer)
    if args.expires:
        req.expire_time.CopyFrom(_timestamp(args.expires))
    batch = None
    for event in _stub(args).GenerateBatch(req):
        if event.HasField("progress"):
            if not args.json:
                bar(event.progress.done, event.progress.total, "generating")
        else:
            batch = event.batch
    assert batch is not None
    emit_one(batch, args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    stub = _stub(args)
    if args.serial:
        emit_one(stub.GetVoucher(pb.GetVoucherRequest(serial=args.serial)).voucher, args.json)
    else:
        emit_one(stub.GetBatch(pb.GetBatchRequest(batch_id=args.batch_id)).batch, args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    stub = _stub(args)
    if not args.batch and not args.serials:
        reply = stub.ListBatches(pb.ListBatchesRequest(page_size=args.page_size, page_token=args.page_token))
        emit(reply.batches, BATCH_COLUMNS, args.json)
        if reply.next_page_token and not args.json:
            print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
        return 0
    rows: list[dict[str, Any]] = []
    for msg in stub.StreamVouchers(pb.StreamVouchersRequest(selection=_selection(args), reveal=args.reveal, chunk_size=1000)):
        rows.extend(as_dict(v) for v in msg.vouchers)
    if args.json:
        import json

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
    req = pb.ExportVouchersRequest(selection=_selection(args), recipient_public_key=recipient, armor=args.armor,
                                   request_id=args.request_id)
    receipt = None
    digest = hashlib.sha256()
    tmp = args.output + ".part"
    try:
        with open(tmp, "wb") as out:
            for part in _stub(args).ExportVouchers(req):
                if part.HasField("receipt"):
                    receipt = part.receipt
                else:
                    out.write(part.data)
                    digest.update(part.data)
                    if receipt is not None and not args.json:
                        bar(out.tell(), receipt.size, "downloading")
        if receipt is None or digest.hexdigest() != receipt.sha256:
            raise SystemExit("export: the file does not match the server's SHA-256; nothing kept")
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    emit_one(receipt, args.json)
    return 0


def _pin(args: argparse.Namespace) -> str:
    return args.pin if args.pin != "-" else sys.stdin.readline().strip()


def cmd_redeem(args: argparse.Namespace) -> int:
    emit_one(_stub(args).Redeem(pb.RedeemRequest(msisdn=args.msisdn, pin=_pin(args), request_id=args.request_id)), args.json)
    return 0


def cmd_reserve(args: argparse.Namespace) -> int:
    reply = _stub(args).ReserveVoucher(pb.ReserveVoucherRequest(msisdn=args.msisdn, pin=_pin(args), request_id=args.request_id))
    emit_one(reply.reservation, args.json)
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    emit_one(_stub(args).CommitReservation(pb.CommitReservationRequest(reservation_id=args.reservation_id)), args.json)
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    reply = _stub(args).ReleaseReservation(pb.ReleaseReservationRequest(reservation_id=args.reservation_id, reason=args.reason))
    emit_one(reply.reservation, args.json)
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    req = pb.RecoverReservationsRequest()
    if args.older_than is not None:
        if args.older_than < 0:
            raise SystemExit("--older-than: seconds, 0 or more")
        req.older_than.FromSeconds(args.older_than)
    emit_one(_stub(args).RecoverReservations(req).result, args.json)
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    reply = _stub(args).ChangeVouchers(pb.ChangeVouchersRequest(selection=_selection(args), event=EVENTS[args.event],
                                                                reason=args.reason, request_id=args.request_id))
    emit_one(reply, args.json)
    return 0 if not reply.refused_count else 1


def cmd_amend(args: argparse.Namespace) -> int:
    req = pb.AmendVoucherRequest(serial=args.serial, face_value=args.value, tenant_id=args.tenant, request_id=args.request_id)
    if args.expires:
        req.expire_time.CopyFrom(_timestamp(args.expires))
    if args.dealer is not None:
        req.dealer, req.set_dealer = args.dealer, True
    emit_one(_stub(args).AmendVoucher(req).voucher, args.json)
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    if args.batch or args.serials:
        args.event, args.reason, args.request_id = "expire", args.reason, ""
        return cmd_change(args)
    emit_one(_stub(args).ExpireDueVouchers(pb.ExpireDueVouchersRequest()).result, args.json)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    emit_one(_stub(args).RotateKeys(pb.RotateKeysRequest(add_master_key=args.new_master_key)), args.json)
    return 0


def cmd_unbar(args: argparse.Namespace) -> int:
    _stub(args).ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=args.msisdn, reason=args.reason))
    print(f"recharge bar lifted for {args.msisdn}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    event = getattr(pb, f"BATCH_EVENT_{args.event.upper()}")
    emit_one(_stub(args).ChangeBatch(pb.ChangeBatchRequest(batch_id=args.batch_id, event=event, reason=args.reason)).batch, args.json)
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
    client_flags(p)
    p.set_defaults(func=cmd_commit)

    p = sub.add_parser("release", help="two-step recharge: give a reserved voucher back (no credit)")
    p.add_argument("reservation_id", help="the --request-id given to reserve")
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("recover-reservations",
                       help="the scheduled job: reservations nobody committed or released in time become pending")
    p.add_argument("--older-than", type=int, default=None, help="seconds (default: the server's reservation timeout)")
    client_flags(p)
    p.set_defaults(func=cmd_recover)

    for name, event in (("activate", "activate"), ("block", "block"), ("unblock", "unblock"), ("mark-damaged", "damaged"),
                        ("mark-stolen", "stolen"), ("purge", "purge")):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} one voucher, a serial range or a batch's vouchers")
        _selection_flags(p)
        p.add_argument("--reason", default="")
        p.add_argument("--request-id", default="")
        client_flags(p)
        p.set_defaults(func=cmd_change, event=event)

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
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("rotate-keys", help="re-wrap batch data keys under the current master key")
    p.add_argument("--new-master-key", action="store_true", help="first add a new master key version to the server's key file")
    client_flags(p)
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser("unbar", help="lift a subscriber's recharge bar")
    p.add_argument("msisdn")
    p.add_argument("--reason", default="")
    client_flags(p)
    p.set_defaults(func=cmd_unbar)
