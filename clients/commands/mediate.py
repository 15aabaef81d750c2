"""``rulebill mediate FILE --format NAME``: raw CDR file -> normalised CDRs + rejects, offline (``--remote``: on the
server's MediationService).

Writes ``--out`` (the normalised ``*.cdr.csv`` format of :mod:`engine.cdr`) and
``--rejects`` (JSON lines: record number, line, byte offset, code, field, reason and
the original bytes; for a refused file, one ``"level": "file"`` line per reason),
prints the reconciliation summary and shows progress on stderr for files of 8 MiB and more (a bar on a
terminal, a line per tenth elsewhere).
An interrupted run resumes from its checkpoint (``OUT.checkpoint.json``) when started
again.  A finished file is not mediated twice while its outputs are there ("already
mediated, outputs at ..."); if they were deleted or changed, it is mediated again.

``--source NAME`` says where the file comes from (``rules/mediation/sources.yaml``: its
time zone and numbering plan); a layout that needs one refuses files without it.
``--format tap3`` decodes a TAP 3.12 file with :mod:`engine.tap3` instead, through the
same store guarantees and with the same summary.

``--remote`` sends the file to the server's MediationService instead (1 MiB messages, progress of
the upload and then of the server's mediation on stderr; ``--rate`` also rates it there) and prints the stored summary.  ``--details``
says why CDRs were left unrated: the file's stored CDRs come back and are priced again through
RatingService without touching any counter or ledger (nothing is stored), and the unrated ones are
counted by reason and listed.

Exit codes: 0 mediated (record rejects are listed, not fatal); 1 the file was
refused (wrong layout, delimiter, header ...); 2 the input or layout cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from clients.commandkit import SERVER_HELP, TOKEN_HELP

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2
_PROGRESS_MIN_BYTES = 8 << 20


def register(subparsers: Any) -> None:
    """Add ``mediate`` to the ``rulebill`` parser."""
    p = subparsers.add_parser("mediate", help="mediate a raw CDR file into normalised CDRs (offline; on the server with --remote)")
    p.add_argument("file", help="the CDR file (Asterisk Master.csv, FreeSWITCH cdr-csv, CUCM flat file, MSC CSV ...)")
    p.add_argument("--format", required=True, help="layout name: a rules/mediation/<name>.yaml file, or tap3")
    p.add_argument("--source", default="", help="where the file comes from: a source of rules/mediation/sources.yaml")
    p.add_argument("--out", help="normalised CDR file to write (default: FILE.cdr.csv)")
    p.add_argument("--rejects", help="rejects file to write, JSON lines (default: FILE.rejects.jsonl)")
    p.add_argument("--rules", help="folder of layouts (default: rules/mediation of the settings' rules_dir)")
    p.add_argument("--chunk-size", type=int, default=20_000, help="records per commit/checkpoint (default 20000)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--remote", action="store_true", help="send the file to the server's MediationService instead (stored there)")
    p.add_argument("--rate", action="store_true", help="with --remote: also rate the normalised CDRs on the server")
    p.add_argument("--details", action="store_true", help="with --remote --rate: why CDRs are unrated (counts by reason, "
                                                          "and each unrated CDR); prices the CDRs again, stores nothing")
    p.add_argument("--server", help=f"with --remote: {SERVER_HELP}")
    p.add_argument("--token", help=f"with --remote: {TOKEN_HELP}")
    p.set_defaults(func=run_mediate, exit_codes={EXIT_OK: "mediated (record rejects are listed, not fatal)",
                                                 EXIT_REFUSED: "the file was refused (wrong layout, delimiter, header ...)",
                                                 EXIT_UNUSABLE: "the input or layout cannot be used"})


def _rules_dir(args: argparse.Namespace) -> Path:
    if args.rules:
        return Path(args.rules)
    from engine.settings import load_settings

    return Path(load_settings().rules_dir) / "mediation"


def _max_tap3_bytes() -> int:
    """The largest TAP file mediated here: the server's bound (setting max_tap3_bytes, RULEBILL_MAX_TAP3_BYTES)."""
    from engine.settings import load_settings

    return load_settings().max_tap3_bytes


def run_mediate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from clients.mediation_files import OfflineSink
    from engine.mediation import LayoutError, Mediator, find_layout
    from engine.mediation.sources import find_source

    out = out or sys.stdout
    err = err or sys.stderr
    source = Path(args.file)
    if not source.is_file():
        print(f"mediate: {source}: no such file", file=err)
        return EXIT_UNUSABLE
    if getattr(args, "remote", False):
        return _remote(source, args, out, err)
    if args.format == "tap3":
        from engine.mediation.tap3 import tap3_too_large

        if problem := tap3_too_large(source.stat().st_size, _max_tap3_bytes()):
            print(f"mediate: {source}: {problem}; nothing was written", file=err)
            return EXIT_REFUSED
    target = Path(args.out) if args.out else source.with_name(source.name + ".cdr.csv")
    rejects = Path(args.rejects) if args.rejects else source.with_name(source.name + ".rejects.jsonl")
    rules = _rules_dir(args)
    sink = OfflineSink(target, rejects)
    progress = None
    try:
        if args.format == "tap3":
            summary = _tap3(source, sink, rules)
        else:
            layout = find_layout(rules, args.format)
            origin = find_source(rules, getattr(args, "source", ""))
            total = source.stat().st_size
            progress = _Bar(total, source.name, err) if total >= _PROGRESS_MIN_BYTES else None
            summary = Mediator(layout, sink, sink, chunk_size=args.chunk_size, progress=progress, source=origin).mediate_path(source)
    except LayoutError as exc:
        for problem in exc.problems:
            print(f"mediate: {problem}", file=err)
        return EXIT_UNUSABLE
    except OSError as exc:
        print(f"mediate: {exc}", file=err)
        return EXIT_UNUSABLE
    finally:
        sink.close()
        if progress is not None:
            progress.finish()
    if args.json:
        json.dump({"file": str(source), "out": str(target), "rejects": str(rejects), "summary": summary.as_dict(),
                   "already_mediated": summary.already_ingested, "rewritten": sink.rewritten}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write("\n".join(summary.lines()) + "\n")
        if sink.rewritten:
            out.write("the outputs of an earlier run of this file were missing or changed: mediated again\n")
        if summary.already_ingested:
            out.write(f"already mediated, outputs at {target} ({summary.normalised} CDRs) and {rejects} ({summary.rejected_total} rejects)\n")
        elif summary.file_error is None:
            out.write(f"wrote {target} ({summary.normalised} CDRs) and {rejects} ({summary.rejected_total} rejects)\n")
        else:
            out.write(f"wrote {rejects} (why the file was refused)\n")
    if summary.file_error is not None:
        e = summary.file_error
        print(f"mediate: {_where(source, e)}: {e.code}: {e.message}", file=err)
        return EXIT_REFUSED
    return EXIT_OK


def _where(source: Path, e: Any) -> str:
    """FILE:LINE in a text file, FILE: byte N in a binary one (a refused TAP file has no lines)."""
    from engine.mediation.outcome import refused_at

    return f"{source}:{e.line}" if e.line else f"{source}: {refused_at(e.line, e.byte_offset)}"


class _Bar:
    """Bytes read of a file of ``total`` bytes, as :class:`clients.commandkit.Progress` shows progress."""

    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        from clients.commandkit import Progress

        self.total, self.shown = total, Progress(label, stream, unit="bytes")

    def __call__(self, done: int, total: int | None = None) -> None:
        self.shown(done, self.total if total is None else total)

    def finish(self) -> None:
        self.shown.finish()


def _tap3(source: Path, sink: Any, rules: Path) -> Any:
    """TAP 3.12 through engine.mediation.tap3: the whole batch is accepted or refused (roaming clearing
    rules), its CDRs attributed to tenants as CSV files' are; the same summary as a CSV layout."""
    from engine.mediation import file_id_of
    from engine.mediation.tap3 import mediate_tap3
    from engine.mediation.tenants import DEFAULT_DIRECTORY, load_tenants
    from engine.mediation.problems import LayoutError

    tenants = DEFAULT_DIRECTORY
    if (rules / "tenants.yaml").is_file():
        problems: list[Any] = []
        tenants = load_tenants(rules / "tenants.yaml", problems)
        if problems:
            raise LayoutError(problems)
    return mediate_tap3(sink, source.read_bytes(), file_id_of(source), source.name, tenants=tenants)


def _remote(source: Path, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Stream the file to MediationService in chunks (progress bar on a terminal); print the stored summary.

    gRPC errors propagate (the CLI prints one line and exits 2)."""
    from google.protobuf.json_format import MessageToDict

    from clients.client import connect

    total = source.stat().st_size
    big = total >= _PROGRESS_MIN_BYTES
    progress = _Bar(total, f"{source.name} sent", err) if big else None
    on_server = _Bar(total, f"{source.name} mediated", err) if big else None   # the server's progress messages
    details = bool(getattr(args, "details", False))
    if details and not args.rate:
        raise SystemExit("mediate: --details needs --rate (it says why rated CDRs were left unrated)")
    with connect(args.server, args.token) as rb:
        mediated = rb.mediation.mediate_path(source, args.format, rate=args.rate, progress=progress, return_cdrs=details,
                                             source=getattr(args, "source", ""), mediated=on_server)
        summary = mediated.summary
        for bar in (progress, on_server):
            if bar is not None:
                bar.finish()
        unrated = _unrated(rb, mediated.cdrs) if details else []
    if args.json:
        payload: dict[str, Any] = {"file": str(source), "summary": MessageToDict(summary, preserving_proto_field_name=True)}
        if details:
            payload["unrated"] = [{"cdr_id": c.cdr_id, "a_number": c.a_number, "b_number": c.b_number, "reason": reason}
                                  for c, reason in unrated]
        json.dump(payload, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        rejected, filtered = sum(summary.rejected.values()), sum(summary.filtered.values())
        out.write(f"file      {summary.file_name}  (sha256 {summary.file_id[:16]}…, layout {summary.layout}, stored on the server)\n")
        if summary.already_ingested:
            out.write("          already ingested: nothing new stored\n")
        out.write(f"records   {summary.records_in} = normalised {summary.normalised} + filtered {filtered} + rejected {rejected}"
                  f" + duplicates {summary.duplicates} + aggregated {summary.aggregated} + non-billable legs {summary.non_billable_legs}\n")
        if args.rate:
            hint = " (--details says why)" if summary.unrated and not details else ""
            out.write(f"rating    {summary.rated} rated, {summary.unrated} unrated{hint}\n")
        if details:
            _print_unrated(unrated, out)
    if summary.HasField("file_error"):
        e = summary.file_error
        print(f"mediate: {_where(source, e)}: {e.code}: {e.message}", file=err)
        return EXIT_REFUSED
    return EXIT_OK


def _unrated(rb: Any, cdrs: list[Any]) -> list[tuple[Any, str]]:
    """The CDRs that price as unrated now, with the reason (RatingService without counters: nothing is stored)."""
    from billing.v1 import rating_pb2

    rated = rb.rating.rate_many(cdrs, use_bundle_counters=False)
    return [(cdr, r.reason or rating_pb2.RatingStatus.Name(r.status)) for cdr, r in zip(cdrs, rated)
            if r.status != rating_pb2.RATING_STATUS_RATED]


def _print_unrated(unrated: list[tuple[Any, str]], out: TextIO) -> None:
    from collections import Counter

    by_reason = Counter(reason.split(":", 1)[0] for _, reason in unrated)
    out.write("unrated   " + (", ".join(f"{code} {n}" for code, n in by_reason.most_common()) or "none") + "\n")
    for cdr, reason in unrated:
        out.write(f"  {cdr.cdr_id[:12]}  {cdr.a_number or '-'} -> {cdr.b_number or '-'}  {reason}\n")
