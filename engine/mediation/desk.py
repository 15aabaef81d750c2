"""Mediation use cases behind MediationService: who may mediate, which layout, which store.

The caller's tenant owns the files it submits; an MVNO sees only its own files.
The store is reached through :class:`MediationStore` (both mediation ports plus reads),
built per submitting tenant by the composition root.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol, Sequence

from engine.errors import InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.mediation.layout import find_layout, layout_names, load_layout
from engine.mediation.outcome import ReconciliationSummary, RejectedRecord
from engine.mediation.pipeline import Mediator
from engine.mediation.ports import Checkpoint, MediationChunk
from engine.mediation.problems import LayoutError
from engine.mediation.rows import CdrRow


class MediationStore(Protocol):
    def seen(self, cdr_ids: Sequence[str]) -> set[str]: ...

    def checkpoint(self, file_id: str) -> Checkpoint | None: ...

    def commit(self, chunk: MediationChunk) -> None: ...

    def summary(self, file_id: str) -> ReconciliationSummary | None: ...

    def cdrs_of_file(self, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]: ...

    def rejects_of_file(self, file_id: str) -> list[RejectedRecord]: ...


class MediationDesk:
    def __init__(self, rules_dir: Path, store_for: Callable[[str], MediationStore], chunk_size: int = 20_000) -> None:
        self.rules_dir = Path(rules_dir)
        self.store_for = store_for
        self.chunk_size = chunk_size

    def layouts(self, principal: Principal) -> list[tuple[str, str]]:
        principal.require(Permission.MEDIATION)
        out = []
        for name in layout_names(self.rules_dir):
            try:
                out.append((name, load_layout(self.rules_dir / f"{name}.yaml").description))
            except LayoutError:
                continue  # a broken layout is reported by validation, not listed as usable
        return out

    def mediate(self, principal: Principal, layout_name: str, stream: BinaryIO, file_id: str, file_name: str) -> ReconciliationSummary:
        """Mediate one uploaded file (a seekable stream whose SHA-256 is ``file_id``) for the caller's tenant."""
        principal.require(Permission.MEDIATION)
        if not layout_name:
            raise InvalidArgument.field("header.layout", "name the layout, e.g. asterisk")
        try:
            layout = find_layout(self.rules_dir, layout_name)
        except LayoutError as exc:
            raise InvalidArgument.field("header.layout", exc.problems[0].message) from None
        store = self.store_for(principal.tenant_id)
        return Mediator(layout, store, store, chunk_size=self.chunk_size).mediate_stream(stream, file_id, file_name)

    def _known(self, principal: Principal, file_id: str) -> tuple[MediationStore, ReconciliationSummary]:
        principal.require(Permission.MEDIATION)
        store = self.store_for(principal.tenant_id)
        summary = store.summary(file_id) if file_id else None
        if summary is None:  # also for another tenant's file: its existence is not disclosed
            raise NotFound("mediation file", file_id)
        return store, summary

    def summary(self, principal: Principal, file_id: str) -> ReconciliationSummary:
        return self._known(principal, file_id)[1]

    def cdrs(self, principal: Principal, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]:
        store, _ = self._known(principal, file_id)
        return store.cdrs_of_file(file_id, page)

    def rejects(self, principal: Principal, file_id: str, after: int, limit: int) -> list[RejectedRecord]:
        store, _ = self._known(principal, file_id)
        return [r for r in store.rejects_of_file(file_id) if r.record_no > after][:limit]
