"""``rulebill tap3 decode FILE [--json] [--structure-only]``: show a TAP/RAP file and whether clearing accepts it.

Exit codes: 0 the file is accepted (record-level rejects are listed, not fatal);
1 the file is refused (undecodable, or a fatal validation issue) with a one-line
reason on stderr; 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from engine.tap3 import FATAL, Tap3DecodeError, Tap3Document, decode_file, to_cdrs, to_json, validate
from engine.tap3.validate import event_to_utc

EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_UNREADABLE = 2


def register(subparsers: Any) -> None:
    """Add ``tap3`` (with its ``decode`` subcommand) to the ``rulebill`` parser."""
    tap3 = subparsers.add_parser("tap3", help="TAP 3.12 / RAP roaming files")
    commands = tap3.add_subparsers(dest="tap3_command", required=True)
    decode = commands.add_parser("decode", help="decode a TAP/RAP file and print its structure")
    decode.add_argument("file", help="path of the .ber file")
    decode.add_argument("--json", action="store_true", help="print JSON instead of text")
    decode.add_argument("--structure-only", action="store_true",
                        help="decode only: skip clearing validation (audit totals etc.)")
    decode.set_defaults(func=run_decode, exit_codes={
        EXIT_ACCEPTED: "the file is accepted (record-level rejects are listed, not fatal)",
        EXIT_REFUSED: "the file is refused: undecodable or a fatal validation issue (one line on stderr, with its byte offset)",
        EXIT_UNREADABLE: "the file cannot be read"})


def run_decode(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with open(args.file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        print(f"tap3: {args.file}: cannot read: {exc.strerror or exc}", file=err)
        return EXIT_UNREADABLE
    try:
        doc = decode_file(data)
    except Tap3DecodeError as exc:
        if args.json:
            json.dump({"file": args.file, "accepted": False, "error": {"code": exc.code, "offset": exc.offset,
                       "message": exc.message, "path": exc.path}}, out, indent=2)
            out.write("\n")
        print(f"tap3: {args.file}: refused: {exc}", file=err)
        return EXIT_REFUSED
    issues = [] if args.structure_only else validate(doc)
    fatal = [i for i in issues if i.severity == FATAL]
    cdrs, rejects = to_cdrs(doc)
    if args.json:
        payload = {"file": args.file, "accepted": not fatal, "document": to_json(doc),
                   "issues": [{"severity": i.severity, "code": i.code, "field": i.field, "message": i.message,
                               "offset": i.offset, "record_index": i.record_index} for i in issues],
                   "record_rejects": [{"index": r.index, "offset": r.offset, "code": r.code, "field": r.field,
                                       "reason": r.reason, "raw": r.raw.hex()} for r in rejects],
                   "cdr_count": len(cdrs)}
        json.dump(payload, out, indent=2)
        out.write("\n")
    else:
        _print_text(doc, out)
        for issue in issues:
            print(f"  {issue.line()}", file=out)
        if not fatal:
            print(f"cdrs: {len(cdrs)} normalised, {len(rejects)} record(s) rejected", file=out)
    if fatal:
        extra = f" (+{len(fatal) - 1} more fatal issue(s))" if len(fatal) > 1 else ""
        print(f"tap3: {args.file}: refused: {fatal[0].line()}{extra}", file=err)
        return EXIT_REFUSED
    return EXIT_ACCEPTED


def _print_text(doc: Tap3Document, out: TextIO) -> None:
    p = lambda text="": print(text, file=out)  # noqa: E731
    if doc.transfer_batch is not None:
        tb = doc.transfer_batch
        bc = tb.batch_control
        if bc is not None:
            p(f"TransferBatch {bc.sender} -> {bc.recipient} seq {bc.file_sequence_number} "
              f"TAP {bc.specification_version}.{bc.release_version}{' TEST' if bc.file_type_indicator == 'T' else ''}")
            if bc.file_available:
                p(f"  file available {bc.file_available.local}{bc.file_available.utc_offset}")
        acc = tb.accounting
        if acc is not None:
            rates = ", ".join(f"code {c.exchange_rate_code}: {c.exchange_rate}e-{c.decimal_places}"
                              for c in acc.currency_conversions)
            p(f"  currency {acc.batch_currency} (local {acc.local_currency}), {acc.tap_decimal_places} decimal places"
              + (f", exchange rates {rates}" if rates else ""))
        if tb.network is not None:
            p("  utc offsets " + ", ".join(f"{k}={v}" for k, v in sorted(tb.network.utc_offsets.items()))
              + "; recording entities " + ", ".join(f"{r.code}:{r.id}" for r in tb.network.rec_entities))
        p(f"  {len(tb.events)} call event(s)")
        for ev in tb.events:
            try:
                when = event_to_utc(ev.start, tb.network).strftime("%Y-%m-%dT%H:%M:%SZ") if ev.start else "-"
            except ValueError:
                when = f"{ev.start.local}?" if ev.start else "-"
            charge = sum(c.total_charge for c in ev.all_charges())
            detail = " ".join(x for x in (
                f"imsi={ev.imsi}" if ev.imsi else "", f"msisdn={ev.msisdn}" if ev.msisdn else "",
                f"called={ev.called_number}" if ev.called_number else "",
                f"calling={ev.calling_number}" if ev.calling_number else "",
                f"apn={ev.access_point_name_ni}" if ev.access_point_name_ni else "",
                f"dur={ev.duration}s" if ev.duration is not None else "",
                f"in={ev.volume_incoming} out={ev.volume_outgoing}" if ev.volume_incoming is not None else "",
                f"ss={ev.suppl_service_code}" if ev.suppl_service_code else "",
                f"charge={charge}") if x)
            p(f"  [{ev.index}] @{ev.offset} {ev.kind.value} {when} {detail}")
        a = tb.audit
        if a is not None:
            p(f"  audit: count {a.call_event_details_count}, total charge {a.total_charge}, tax {a.total_tax_value}, "
              f"discount {a.total_discount_value}, earliest {a.earliest_call.local if a.earliest_call else '-'}, "
              f"latest {a.latest_call.local if a.latest_call else '-'}")
    elif doc.notification is not None:
        n = doc.notification
        p(f"Notification {n.sender} -> {n.recipient} seq {n.file_sequence_number} TAP {n.specification_version}."
          f"{n.release_version} (no call events for this sequence number)")
    elif doc.return_batch is not None:
        rb = doc.return_batch
        c = rb.control
        if c is not None:
            p(f"ReturnBatch (RAP {c.rap_specification_version}.{c.rap_release_version}) {c.sender} -> {c.recipient} "
              f"RAP seq {c.rap_file_sequence_number}")
        if rb.return_details is None:
            p("  returnDetails: absent")
        else:
            p(f"  {len(rb.return_details)} returned item(s): "
              + ", ".join(f"{d.kind}@{d.offset}" for d in rb.return_details))
    elif doc.acknowledgement is not None:
        a2 = doc.acknowledgement
        p(f"Acknowledgement {a2.sender} -> {a2.recipient} of RAP seq {a2.rap_file_sequence_number}")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m clients.commands.tap3 decode FILE``)."""
    parser = argparse.ArgumentParser(prog="rulebill")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
