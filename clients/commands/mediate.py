"""``rulebill mediate FILE --format NAME``: raw CDR file -> normalised CDRs + rejects, offline.

Writes ``--out`` (the normalised ``*.cdr.csv`` format of :mod:`engine.cdr`) and
``--rejects`` (JSON lines: record number, line, byte offset, code, field, reason and
the original bytes), prints the reconciliation summary and shows a progress bar on
stderr for large files.  An interrupted run resumes from its checkpoint
(``OUT.checkpoint.json``) when started again; a finished file is not mediated twice.

``--format tap3`` decodes a TAP 3.12 file with :mod:`engine.tap3` instead.

``--remote`` sends the file to the server's MediationService instead (1 MiB messages,
progress bar on a terminal; ``--rate`` also rates it there) and prints the stored summary.

Exit codes: 0 mediated (record rejects are listed, not fatal); 1 the file was
refused (wrong layout, delimiter, header ...); 2 the input or layout cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2
_PROGRESS_MIN_BYTES = 8 << 20


def register(subparsers: Any) -> None:
    """Add ``mediate`` to the ``rulebill`` parser."""
    p = subparsers.add_parser("mediate", help="mediate a raw CDR file into normalised CDRs (offline)")
    p.add_argument("file", help="the CDR file (Asterisk Master.csv, FreeSWITCH cdr-csv, CUCM flat file, MSC CSV ...)")
    p.add_argument("--format", required=True, help="layout name: a rules/mediation/<name>.yaml file, or tap3")
    p.add_argument("--out", help="normalised CDR file to write (default: FILE.cdr.csv)")
    p.add_argument("--rejects", help="rejects file to write, JSON lines (default: FILE.rejects.jsonl)")
    p.add_argument("--rules", help="folder of layouts (default: rules/mediation of the settings' rules_dir)")
    p.add_argument("--chunk-size", type=int, default=20_000, help="records per commit/checkpoint (default 20000)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--remote", action="store_true", help="send the file to the server's MediationService instead (stored there)")
    p.add_argument("--rate", action="store_true", help="with --remote: also rate the normalised CDRs on the server")
    p.add_argument("--server", help="with --remote: host:port (default: RULEBILL_SERVER or 127.0.0.1:50051)")
    p.add_argument("--token", help="with --remote: bearer token (default: RULEBILL_TOKEN or the bootstrap credential file)")
    p.set_defaults(func=run_mediate)


def _rules_dir(args: argparse.Namespace) -> Path:
    if args.rules:
        return Path(args.rules)
    from engine.settings import load_settings

    return Path(load_settings().rules_dir) / "mediation"


def run_mediate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from engine.mediation import LayoutError, Mediator, OfflineSink, find_layout

    out = out or sys.stdout
    err = err or sys.stderr
    source = Path(args.file)
    if not source.is_file():
        print(f"mediate: {source}: no such file", file=err)
        return EXIT_UNUSABLE
    if getattr(args, "remote", False):
        return _remote(source, args, out, err)
    target = Path(args.out) if args.out else source.with_name(source.name + ".cdr.csv")
    rejects = Path(args.rejects) if args.rejects else source.with_name(source.name + ".rejects.jsonl")
    if args.format == "tap3":
        return _tap3(source, target, rejects, args, out, err)
    try:
        layout = find_layout(_rules_dir(args), args.format)
    except LayoutError as exc:
        for problem in exc.problems:
            print(f"mediate: {problem}", file=err)
        return EXIT_UNUSABLE
    total = source.stat().st_size
    progress = _Bar(total, source.name, err) if total >= _PROGRESS_MIN_BYTES and err.isatty() else None
    sink = OfflineSink(target, rejects)
    try:
        summary = Mediator(layout, sink, sink, chunk_size=args.chunk_size, progress=progress).mediate_path(source)
    except OSError as exc:
        print(f"mediate: {exc}", file=err)
        return EXIT_UNUSABLE
    finally:
        sink.close()
        if progress is not None:
            progress.finish()
    if args.json:
        json.dump({"file": str(source), "out": str(target), "rejects": str(rejects), "summary": summary.as_dict()}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write("\n".join(summary.lines()) + "\n")
        if summary.file_error is None:
            out.write(f"wrote {target} ({summary.normalised} CDRs) and {rejects} ({summary.rejected_total} rejects)\n")
    if summary.file_error is not None:
        e = summary.file_error
        print(f"mediate: {source}:{e.line}: {e.code}: {e.message}", file=err)
        return EXIT_REFUSED
    return EXIT_OK


class _Bar:
    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        self.total, self.label, self.stream, self.shown = total, label, stream, -1

    def __call__(self, done: int) -> None:
        percent = min(100, done * 100 // max(1, self.total))
        if percent != self.shown:
            self.shown = percent
            filled = percent * 30 // 100
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%  {done >> 20} MiB")
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _tap3(source: Path, target: Path, rejects: Path, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """TAP 3.12 through engine.tap3: the whole batch is accepted or refused (roaming clearing rules)."""
    try:
        from engine.cdr import write_cdrs
        from engine.tap3 import FATAL, Tap3DecodeError, decode_file, to_cdrs, validate
    except ImportError as exc:  # pragma: no cover - the TAP3 package ships with Rulebill
        print(f"mediate: TAP3 support unavailable: {exc}", file=err)
        return EXIT_UNUSABLE
    try:
        doc = decode_file(source.read_bytes())
    except Tap3DecodeError as exc:
        print(f"mediate: {source}: refused: {exc}", file=err)
        return EXIT_REFUSED
    fatal = [i for i in validate(doc) if i.severity == FATAL]
    if fatal:
        for issue in fatal:
            print(f"mediate: {source}: refused: {issue.code}: {issue.field}: {issue.message}", file=err)
        return EXIT_REFUSED
    cdrs, record_rejects = to_cdrs(doc)
    with open(target, "w", encoding="utf-8", newline="") as stream:
        written = write_cdrs(cdrs, stream)
    with open(rejects, "w", encoding="utf-8") as stream:
        for r in record_rejects:
            record = {"index": r.index, "offset": r.offset, "kind": r.kind, "code": r.code, "field": r.field, "reason": r.reason, "raw_hex": r.raw.hex()}
            stream.write(json.dumps(record, sort_keys=True) + "\n")
    summary = {"file": str(source), "records_in": written + len(record_rejects), "normalised": written, "rejected": len(record_rejects)}
    if args.json:
        json.dump(summary, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write(f"tap3 {source}: {written} CDRs, {len(record_rejects)} rejects -> {target}, {rejects}\n")
    return EXIT_OK


def _remote(source: Path, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Stream the file to MediationService in chunks (progress bar on a terminal); print the stored summary.

    gRPC errors propagate (the CLI prints one line and exits 2)."""
    from google.protobuf.json_format import MessageToDict

    from clients.client import connect

    total = source.stat().st_size
    progress = _Bar(total, source.name, err) if total >= _PROGRESS_MIN_BYTES and err.isatty() else None
    with connect(args.server, args.token) as rb:
        summary = rb.mediation.mediate_path(source, args.format, rate=args.rate, progress=progress).summary
    if progress is not None:
        progress.finish()
    if args.json:
        json.dump({"file": str(source), "summary": MessageToDict(summary, preserving_proto_field_name=True)}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        rejected, filtered = sum(summary.rejected.values()), sum(summary.filtered.values())
        out.write(f"file      {summary.file_name}  (sha256 {summary.file_id[:16]}…, layout {summary.layout}, stored on the server)\n")
        if summary.already_ingested:
            out.write("          already ingested: nothing new stored\n")
        out.write(f"records   {summary.records_in} = normalised {summary.normalised} + filtered {filtered} + rejected {rejected}"
                  f" + duplicates {summary.duplicates} + aggregated {summary.aggregated}\n")
        if args.rate:
            out.write(f"rating    {summary.rated} rated, {summary.unrated} unrated\n")
    if summary.HasField("file_error"):
        e = summary.file_error
        print(f"mediate: {source}:{e.line}: {e.code}: {e.message}", file=err)
        return EXIT_REFUSED
    return EXIT_OK
