"""TAP 3.12 files through the mediation store: the same guarantees as a CSV file.

Roaming clearing accepts or refuses a TAP file as a whole: a file that does not
decode, or whose clearing validation has a fatal issue (audit totals, trailing
bytes ...), is refused with a summary whose ``file_error`` names the code and the
field, and nothing else is stored.  An accepted file stores, in ONE commit (so a
crash leaves all or nothing), its call events as normalised CDRs, the events that
failed record validation as rejects with their original BER bytes and byte
offset, and its reconciliation summary.  CDR identities come from
:mod:`engine.tap3` (sender + record), so the same event arriving again, in the
same file or another, counts as a duplicate; a finished file is not ingested again.
"""

from __future__ import annotations

from typing import Protocol

from engine.mediation.outcome import FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.ports import Checkpoint, MediationChunk, MediationSink, SeenCdrIds
from engine.mediation.rows import cdr_to_row

LAYOUT = "tap3"


class _Store(MediationSink, SeenCdrIds, Protocol):
    pass


def mediate_tap3(store: _Store, data: bytes, file_id: str, file_name: str, namespace: str = "") -> ReconciliationSummary:
    """``namespace``: the submitting tenant, part of every CDR identity (see :func:`engine.cdr.cdr_identity`)."""
    from engine.tap3 import FATAL, Tap3DecodeError, decode_file, to_cdrs, validate

    previous = store.checkpoint(file_id)
    if previous is not None and previous.done:
        summary = previous.summary.copy()
        summary.already_ingested = True
        return summary
    summary = ReconciliationSummary(file_id, file_name, LAYOUT, bytes_in=len(data))
    try:
        doc = decode_file(data)
    except Tap3DecodeError as exc:
        where = f" in {exc.path}" if exc.path else ""
        return _refuse(store, summary, FileProblem(exc.code, f"{exc.message}{where}", 0, exc.offset))
    fatal = [issue for issue in validate(doc) if issue.severity == FATAL]
    if fatal:
        issue = fatal[0]
        return _refuse(store, summary, FileProblem(issue.code, f"{issue.field}: {issue.message}", 0, issue.offset or 0))
    cdrs, rejects = to_cdrs(doc, namespace)
    rows = [cdr_to_row(cdr) for cdr in cdrs]
    known = store.seen([row[0] for row in rows])
    kept, duplicates, in_file = [], [], set()
    for row in rows:
        if row[0] in known or row[0] in in_file:
            duplicates.append(row[0])
        else:
            in_file.add(row[0])
            kept.append(row)
    records = [
        RejectedRecord(file_id, r.index + 1, 0, r.offset, r.code, r.field, r.reason, r.raw) for r in rejects
    ]
    for r in records:
        summary.rejected[r.code] = summary.rejected.get(r.code, 0) + 1
    summary.records_in = len(rows) + len(records)
    summary.normalised = len(kept)
    summary.duplicates = len(duplicates)
    summary.complete = True
    summary.check()
    checkpoint = Checkpoint(file_id, len(data), 0, summary.records_in, summary.copy(), None, (), True)
    store.commit(MediationChunk(file_id, kept, records, checkpoint, duplicates))
    return summary


def _refuse(store: _Store, summary: ReconciliationSummary, problem: FileProblem) -> ReconciliationSummary:
    """The whole file refused: only its summary, saying why, is stored."""
    summary.file_error = problem
    summary.complete = True
    store.commit(MediationChunk(summary.file_id, [], [], Checkpoint(summary.file_id, 0, 0, 0, summary.copy(), None, (), True)))
    return summary
