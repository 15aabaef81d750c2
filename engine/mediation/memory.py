"""In-memory store implementing both mediation ports: for unit tests and embedding.

``fail_after_commits`` simulates a crash: the N+1-th commit raises before storing
anything, like a process killed mid-transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Sequence

from engine.cdr import COLUMNS
from engine.errors import FailedPrecondition
from engine.mediation.outcome import FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.ports import Checkpoint, MediationChunk
from engine.mediation.rows import CdrRow


_TENANT = COLUMNS.index("tenant")


class SimulatedCrash(RuntimeError):
    pass


class MemoryMediationStore:
    """The mediation of one submitting tenant (``tenant_id``: what a CDR without a tenant is stored under, as the SQL
    store does); tests/integration/test_mediation_contract.py holds it to store/mediation.py's answers."""

    def __init__(self, tenant_id: str = "", fail_after_commits: int | None = None) -> None:
        self.tenant_id = tenant_id
        self.cdrs: dict[str, CdrRow] = {}
        self.rejects: list[RejectedRecord] = []
        self.checkpoints: dict[str, Checkpoint] = {}
        self.summaries: dict[str, ReconciliationSummary] = {}
        self.commits = 0
        self.fail_after_commits = fail_after_commits
        self.files: dict[str, list[str]] = {}   # file id -> ids of the CDRs it stored
        self.file_problems: dict[str, list[FileProblem]] = {}   # file id -> why it was refused

    # SeenCdrIds
    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        known = self.cdrs
        return {i for i in cdr_ids if i in known}

    # MediationSink
    def checkpoint(self, file_id: str) -> Checkpoint | None:
        return self.checkpoints.get(file_id)

    def commit(self, chunk: MediationChunk) -> None:
        if self.fail_after_commits is not None and self.commits >= self.fail_after_commits:
            raise SimulatedCrash(f"simulated crash at commit {self.commits + 1}")
        if any(r[0] in self.cdrs for r in chunk.cdrs):  # the store's unique key: nothing of the chunk is kept
            raise FailedPrecondition(
                "MEDIATION_CONFLICT", "another mediation run stored some of these CDRs first; retry to resume from its checkpoint",
                chunk.file_id)
        for row in chunk.cdrs:
            self.cdrs[row[0]] = row if row[_TENANT] or not self.tenant_id else row[:_TENANT] + (self.tenant_id,) + row[_TENANT + 1:]
        self.files.setdefault(chunk.file_id, []).extend(row[0] for row in chunk.cdrs)
        self.rejects.extend(chunk.rejects)
        if chunk.file_problems:
            self.file_problems[chunk.file_id] = list(chunk.file_problems)
        self.checkpoints[chunk.file_id] = chunk.checkpoint
        if chunk.checkpoint.done:
            self.summaries[chunk.file_id] = chunk.checkpoint.summary.copy()
        self.commits += 1

    def record_rating(self, file_id: str, rated: int, unrated: int) -> None:
        checkpoint = self.checkpoints.get(file_id)
        if checkpoint is None:
            return
        summary = checkpoint.summary.copy()
        summary.rated, summary.unrated = rated, unrated
        self.checkpoints[file_id] = replace(checkpoint, summary=summary)
        self.summaries[file_id] = summary.copy()

    # reads (engine.mediation.desk.MediationStore)
    def summary(self, file_id: str) -> ReconciliationSummary | None:
        checkpoint = self.checkpoints.get(file_id)
        return checkpoint.summary.copy() if checkpoint is not None else None

    def cdrs_of_file(self, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]:
        ids = self.files.get(file_id, [])   # in the order they were stored
        for i in range(0, len(ids), page):
            yield [self.cdrs[cdr_id] for cdr_id in ids[i : i + page]]

    def rejects_of_file(self, file_id: str, after: int = 0, limit: int | None = None) -> list[RejectedRecord]:
        found = sorted((r for r in self.rejects if r.file_id == file_id and r.record_no > after), key=lambda r: r.record_no)
        return found if limit is None else found[:limit]
