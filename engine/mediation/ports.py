"""What mediation needs from storage, as ports the store implements.

Crash safety rests on one rule: a :class:`MediationChunk` (its normalised CDRs, its
rejects and the checkpoint that says how far the file has been read) is committed
in ONE transaction.  After a crash the pipeline asks for the checkpoint, seeks to
its byte offset and goes on; what was committed is never written twice and what
was not is redone.  So kill -9 and a rerun give exactly one clean run's result.

A file id (:func:`mediation_id`) names one mediation of a file: the SHA-256 of its
content, the layout and its version, and the source.  The same file under another
name is recognised and a finished one (``checkpoint.done``) is not ingested again;
the same bytes with another layout or source (after a refusal for the wrong one) are
mediated afresh.  Stores keep files per submitting tenant, the fourth part.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from engine.mediation.outcome import FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.rows import CdrRow


def mediation_id(content_sha256: str, layout: str, layout_version: str, source: str = "", source_version: str = "") -> str:
    """The identity of one mediation of a file (see the module doc)."""
    key = "\x1f".join((content_sha256, f"{layout}@{layout_version}", f"{source}@{source_version}"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingRecord:
    """A partial record read but not yet merged (its call's last partial has not arrived)."""

    record_no: int
    line: int
    last_line: int
    byte_offset: int
    raw: bytes


@dataclass(frozen=True)
class Checkpoint:
    file_id: str
    byte_offset: int                         # the next record starts here
    line: int                                # physical lines consumed so far
    record_no: int                           # records consumed so far
    summary: ReconciliationSummary           # counts up to this point (final when done)
    header: tuple[str, ...] | None = None    # column names read from the file's header
    pending: tuple[PendingRecord, ...] = ()  # records held back (open partials, legs), replayed on resume
    done: bool = False
    width: int = 0                           # the column count of the file's first record


@dataclass(frozen=True)
class MediationChunk:
    file_id: str
    cdrs: list[CdrRow]                       # rows in engine.cdr.COLUMNS order, none already stored
    rejects: list[RejectedRecord]
    checkpoint: Checkpoint
    duplicates: list[str] = field(default_factory=list)   # cdr ids recognised as duplicates in this chunk
    file_problems: list[FileProblem] = field(default_factory=list)   # why the whole file was refused (all the reasons)


class SeenCdrIds(Protocol):
    """Which CDR ids are already stored (from this file's earlier chunks or from other files)."""

    def seen(self, cdr_ids: Sequence[str]) -> set[str]: ...


class MediationSink(Protocol):
    """Durable destination of a mediation run.

    ``commit`` stores the chunk's CDRs, rejects and checkpoint atomically; once it
    returns, ``SeenCdrIds.seen`` of the same store must report the chunk's CDR ids.
    A checkpoint with ``done`` also stores its summary as the file's summary.
    """

    def checkpoint(self, file_id: str) -> Checkpoint | None: ...

    def commit(self, chunk: MediationChunk) -> None: ...


def checkpoint_to_json(cp: Checkpoint) -> dict[str, Any]:
    """A JSON-able form of a checkpoint (stores keep it in one text column or file)."""
    return {
        "file_id": cp.file_id,
        "byte_offset": cp.byte_offset,
        "line": cp.line,
        "record_no": cp.record_no,
        "summary": cp.summary.as_dict(),
        "header": list(cp.header) if cp.header is not None else None,
        "pending": [
            {"record_no": p.record_no, "line": p.line, "last_line": p.last_line, "byte_offset": p.byte_offset, "raw": base64.b64encode(p.raw).decode()}
            for p in cp.pending
        ],
        "done": cp.done,
        "width": cp.width,
    }


def checkpoint_from_json(data: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        file_id=data["file_id"],
        byte_offset=data["byte_offset"],
        line=data["line"],
        record_no=data["record_no"],
        summary=ReconciliationSummary.from_dict(data["summary"]),
        header=tuple(data["header"]) if data["header"] is not None else None,
        pending=tuple(
            PendingRecord(p["record_no"], p["line"], p["last_line"], p["byte_offset"], base64.b64decode(p["raw"])) for p in data["pending"]
        ),
        done=data["done"],
        width=data.get("width", 0),
    )
