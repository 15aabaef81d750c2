"""TAP 3.12 files through the mediation store: the same guarantees as a CSV file.

Roaming clearing accepts or refuses a TAP file as a whole: a file that does not
decode, or whose clearing validation has a fatal issue (audit totals, trailing
bytes ...), is refused with a summary whose ``file_error`` names the code and the
field (every fatal reason goes with the refusal, for a rejects file), and nothing
else is stored.  An accepted file stores, in ONE commit (so a crash leaves all or
nothing), its call events as normalised CDRs, the events that failed record
validation as rejects with their original BER bytes and byte offset, and its
reconciliation summary.

Each CDR gets its tenant by the same subscriber identification as a CSV file
(:mod:`engine.mediation.tenants`: IMSI ranges, the subscriber store, MSISDN ranges);
an event whose IMSI is nobody's here, or (for an MVNO's file) another tenant's
subscriber, is rejected with its bytes.  CDR identities come from :mod:`engine.tap3`
(sender + record), so the same event arriving again, in the same file or another,
counts as a duplicate; a finished file is not ingested again.

A RAP ReturnBatch goes the same way: each call event it returns (a SevereReturn) is one record,
converted and given its tenant by the same code as a TAP event (an MVNO's RAP file may only hold
its own subscribers), stored as a CDR marked ``rap_return`` with an identity of its own (see
:func:`engine.tap3.convert.returned_events`).  The other returns (fatal, missing, stop) name no
call event, and a Notification or an Acknowledgement has none: they are accounted for with no records.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from engine.cdr import Direction, MediatedCdr
from engine.mediation.outcome import FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.ports import Checkpoint, MediationChunk, MediationSink, SeenCdrIds, mediation_id
from engine.mediation.problems import FieldError
from engine.mediation.rows import cdr_to_row
from engine.mediation.tenants import DEFAULT_DIRECTORY, SubscriberTenants, TenantDirectory

if TYPE_CHECKING:
    from engine.tap3.model import Tap3Document

LAYOUT = "tap3"
VERSION = "3.12"   # the "layout version" of TAP files: the TD.57 release the decoder reads


class _Store(MediationSink, SeenCdrIds, Protocol):
    pass


def tap3_too_large(size: int, limit: int) -> str | None:
    """Why a TAP file of ``size`` bytes is refused before it is read (None: it is not), the server's bound and the
    local CLI's: a TAP file is decoded whole in memory, unlike a CSV file read in blocks."""
    if size <= limit:
        return None
    return (f"this TAP3 file is {size:,} bytes, more than the {limit:,} of the setting max_tap3_bytes (a TAP file is decoded "
            f"whole in memory, about 15 times its size)")


def tap3_file_id(content_sha256: str) -> str:
    return mediation_id(content_sha256, LAYOUT, VERSION)


def mediate_tap3(store: _Store, data: bytes, content_sha256: str, file_name: str, namespace: str = "", *,
                 tenants: TenantDirectory = DEFAULT_DIRECTORY, only_tenant: str | None = None,
                 subscribers: SubscriberTenants | None = None) -> ReconciliationSummary:
    """``namespace``: the submitting tenant, part of every CDR identity (see :func:`engine.cdr.cdr_identity`);
    ``only_tenant``: every event must be that tenant's subscriber's (an MVNO's file)."""
    from engine.tap3 import FATAL, Tap3DecodeError, decode_file, to_cdrs, validate

    file_id = tap3_file_id(content_sha256)
    previous = store.checkpoint(file_id)
    if previous is not None and previous.done:
        summary = previous.summary.copy()
        summary.already_ingested = True
        return summary
    summary = ReconciliationSummary(file_id, file_name, LAYOUT, VERSION, "", content_sha256, bytes_in=len(data))
    try:
        doc = decode_file(data)
    except Tap3DecodeError as exc:
        where = f" in {exc.path}" if exc.path else ""
        return _refuse(store, summary, [FileProblem(exc.code, f"{exc.message}{where}", 0, exc.offset)])
    fatal = [issue for issue in validate(doc) if issue.severity == FATAL]
    if fatal:
        return _refuse(store, summary, [FileProblem(i.code, f"{i.field}: {i.message}", 0, i.offset or 0) for i in fatal])
    cdrs, rejects = to_cdrs(doc, namespace)
    records = [RejectedRecord(file_id, r.index + 1, 0, r.offset, r.code, r.field, r.reason, r.raw) for r in rejects]
    attributed = _attribute(cdrs, doc, tenants, subscribers, only_tenant, file_id, records)
    rows = [cdr_to_row(cdr) for cdr in attributed]
    known = store.seen([row[0] for row in rows])
    kept, duplicates, in_file = [], [], set()
    for row in rows:
        if row[0] in known or row[0] in in_file:
            duplicates.append(row[0])
        else:
            in_file.add(row[0])
            kept.append(row)
    records.sort(key=lambda r: r.record_no)
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


def _attribute(cdrs: list[MediatedCdr], doc: Tap3Document, tenants: TenantDirectory, subscribers: SubscriberTenants | None,
               only_tenant: str | None, file_id: str, rejects: list[RejectedRecord]) -> list[MediatedCdr]:
    """Each CDR with its tenant; the events that cannot have one (or have another tenant than the
    submitter) go to ``rejects`` with their BER bytes."""
    if not tenants.default_tenant:
        return cdrs
    identify = tenants.compile(subscribers)
    served = [c.b_number if c.direction is Direction.TERMINATING else c.a_number for c in cdrs]
    identify.prefetch([c.imsi for c in cdrs], served)  # type: ignore[attr-defined]
    from engine.tap3.convert import record_spans

    spans = record_spans(doc)
    out = []
    for cdr, number in zip(cdrs, served):
        index = int(cdr.origin_id.rpartition(":")[2])   # engine.tap3.convert: "<file sequence>:<index>", TAP or RAP
        try:
            tenant = identify(cdr.imsi, number)
            if only_tenant is not None and tenant != only_tenant:
                raise FieldError("tenant", "record.foreign-tenant",
                                 f"the subscriber belongs to tenant {tenant!r}, not to {only_tenant!r}, which submitted the file")
        except FieldError as exc:
            if index not in spans:
                raise
            offset, end = spans[index]
            rejects.append(RejectedRecord(file_id, index + 1, 0, offset, exc.code, exc.field, exc.message, doc.data[offset:end]))
            continue
        out.append(replace(cdr, tenant=tenant))
    return out


def _refuse(store: _Store, summary: ReconciliationSummary, problems: list[FileProblem]) -> ReconciliationSummary:
    """The whole file refused: only its summary, saying why, is stored (with every reason for a rejects file)."""
    summary.file_error = problems[0]
    summary.complete = True
    checkpoint = Checkpoint(summary.file_id, 0, 0, 0, summary.copy(), None, (), True)
    store.commit(MediationChunk(summary.file_id, [], [], checkpoint, file_problems=problems))
    return summary
