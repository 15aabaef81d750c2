"""Mediation use cases behind MediationService: who may mediate, which layout, which store.

The caller's tenant owns the files it submits; an MVNO sees only its own files, the operator (MNO)
reads any tenant's by naming it.  The
CDRs are the caller's own too: their identities carry its tenant id, and an MVNO's
file may only hold its own subscribers (``record.foreign-tenant`` rejects the rest).
The store is reached through :class:`MediationStore` (both mediation ports plus reads),
built per submitting tenant by the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Protocol, Sequence

from engine import cancellation
from engine.errors import InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.mediation.layout import find_layout, layout_names, load_layout
from engine.mediation.outcome import ReconciliationSummary, RejectedRecord
from engine.mediation.pipeline import Mediator
from engine.mediation.ports import Checkpoint, MediationChunk
from engine.mediation.problems import LayoutError
from engine.mediation.rows import CdrRow
from engine.mediation.sources import find_source
from engine.mediation.tap3 import mediate_tap3, tap3_too_large
from engine.mediation.tenants import DEFAULT_DIRECTORY, SubscriberTenants, TenantDirectory, load_tenants
from engine.settings import Settings
from engine.yamlio import Problem
from engine.rating.result import RatingStatus


class MediationStore(Protocol):
    def seen(self, cdr_ids: Sequence[str]) -> set[str]: ...

    def checkpoint(self, file_id: str) -> Checkpoint | None: ...

    def commit(self, chunk: MediationChunk) -> None: ...

    def summary(self, file_id: str) -> ReconciliationSummary | None: ...

    def cdrs_of_file(self, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]: ...

    # the file's rejects by record number, those after ``after``, at most ``limit`` (None: all)
    def rejects_of_file(self, file_id: str, after: int = 0, limit: int | None = None) -> list[RejectedRecord]: ...

    def record_rating(self, file_id: str, rated: int, unrated: int) -> None: ...


class Rating(Protocol):
    """What mediation needs of rating: engine.rating.desk.RatingDesk.rate_stored (with counters, in chunks)."""

    def rate_stored(self, principal: Principal, rows: Sequence[CdrRow]) -> list[tuple[str, int]]: ...


TAP3 = "tap3"   # the format name of TAP 3.12 files (decoded by engine.tap3, not a CSV layout)
RATING_CHUNK = 2000   # stored CDRs rated per transaction (counters read once and written back once per chunk)


@dataclass(frozen=True)
class MediatedFile:
    """What one upload gives back: its summary and, when asked for, its normalised CDRs in pages."""

    summary: ReconciliationSummary
    cdrs: Iterator[list[CdrRow]]


class MediationDesk:
    def __init__(self, rules_dir: Path, store_for: Callable[[str], MediationStore], chunk_size: int = 20_000,
                 rating: Callable[[], Rating] | None = None, subscribers: SubscriberTenants | None = None,
                 max_tap3_bytes: int = Settings.max_tap3_bytes) -> None:
        self.rules_dir = Path(rules_dir)
        self.max_tap3_bytes = max_tap3_bytes   # a TAP file is read whole: its bound, far below the upload's
        self.store_for = store_for
        self.chunk_size = chunk_size
        self.rating = rating   # built on first use: the composition root's rating desk
        self.subscribers = subscribers   # the subscriber store's part in telling a CDR's tenant

    def layouts(self, principal: Principal) -> list[tuple[str, str]]:
        principal.require(Permission.MEDIATION)
        out = []
        for name in layout_names(self.rules_dir):
            try:
                out.append((name, load_layout(self.rules_dir / f"{name}.yaml").description))
            except LayoutError:
                continue  # a broken layout is reported by validation, not listed as usable
        return out

    def mediate(self, principal: Principal, layout_name: str, stream: BinaryIO, content_sha256: str, file_name: str,
                rate: bool = False, source: str = "", progress: Callable[[int, int], None] | None = None) -> ReconciliationSummary:
        """Mediate one uploaded file (a seekable stream whose content has that SHA-256) for the caller's tenant.

        ``layout_name`` "tap3" decodes a TAP 3.12 file instead of a CSV layout.  ``source`` names
        where the file comes from (rules/mediation/sources.yaml): a layout that needs one refuses
        files without it, and an unknown name refuses the file (both with the reason in the summary).
        With ``rate``, the file's normalised CDRs are also rated (see :meth:`_rate_file`).
        ``progress(bytes done, bytes in all)`` follows the file after each committed block (a TAP file is one).
        """
        principal.require(Permission.MEDIATION)
        if rate:
            principal.require(Permission.RATING_STORE)
            if self.rating is None:
                raise InvalidArgument.field("header.rate", "this server has no rating")
        if not layout_name:
            raise InvalidArgument.field("header.layout", "name the layout, e.g. asterisk")
        store = self.store_for(principal.tenant_id)
        only_tenant = None if principal.is_operator else principal.tenant_id
        total = stream.seek(0, 2)
        stream.seek(0)
        if layout_name == TAP3:
            if problem := tap3_too_large(total, self.max_tap3_bytes):
                raise InvalidArgument.field("data", f"{problem}; nothing was stored")
            summary = mediate_tap3(store, stream.read(), content_sha256, file_name, namespace=principal.tenant_id,
                                   tenants=self._tenants(), only_tenant=only_tenant, subscribers=self.subscribers)
            if progress is not None:
                progress(total, total)
        else:
            try:
                layout = find_layout(self.rules_dir, layout_name)
                origin = find_source(self.rules_dir, source)
            except LayoutError as exc:
                field = "header.source" if exc.problems[0].file.endswith("sources.yaml") else "header.layout"
                raise InvalidArgument.field(field, exc.problems[0].message) from None
            # the caller's CDRs are its own (identities namespaced by tenant); an MVNO's file holds only its subscribers'
            mediator = Mediator(layout, store, store, chunk_size=self.chunk_size, namespace=principal.tenant_id,
                                only_tenant=only_tenant, source=origin, subscribers=self.subscribers,
                                progress=None if progress is None else lambda done: progress(done, total))
            summary = mediator.mediate_stream(stream, content_sha256, file_name)
        if rate and summary.file_error is None and summary.complete and summary.rated + summary.unrated < summary.normalised:
            summary.rated, summary.unrated = self._rate_file(principal, store, summary.file_id)
            store.record_rating(summary.file_id, summary.rated, summary.unrated)
        return summary

    def _tenants(self) -> TenantDirectory:
        """The tenants file of the rules (IMSI and MSISDN ranges), as CSV layouts use it."""
        path = self.rules_dir / "tenants.yaml"
        if not path.is_file():
            return DEFAULT_DIRECTORY
        problems: list[Problem] = []
        tenants = load_tenants(path, problems)
        if problems:
            raise LayoutError(problems)
        return tenants

    def _rate_file(self, principal: Principal, store: MediationStore, file_id: str) -> tuple[int, int]:
        """Rate every stored CDR of a file: (rated, unrated).

        Runs after the file is stored, and again only when an earlier run did not record its
        counts (a crash in between): the rating ledger is keyed by cdr_id and replaces, so a CDR
        rated twice is charged once.  CDRs of a tenant the caller may not rate count as unrated.
        """
        assert self.rating is not None
        rating = self.rating()
        rated = unrated = 0
        for page in store.cdrs_of_file(file_id, RATING_CHUNK):
            cancellation.checkpoint()
            for status, _charge in rating.rate_stored(principal, page):
                if status == RatingStatus.RATED.value:
                    rated += 1
                else:
                    unrated += 1
        return rated, unrated

    def mediate_file(self, principal: Principal, layout_name: str, stream: BinaryIO, content_sha256: str, file_name: str,
                     rate: bool = False, source: str = "", cdr_page: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> MediatedFile:
        """:meth:`mediate`, and with ``cdr_page`` the file's normalised CDRs in pages of that size (none when the
        file as a whole was refused): what MediateFile streams back, in one call."""
        summary = self.mediate(principal, layout_name, stream, content_sha256, file_name, rate=rate, source=source,
                               progress=progress)
        pages = self.cdrs(principal, summary.file_id, cdr_page) if cdr_page and summary.file_error is None else iter(())
        return MediatedFile(summary, pages)

    def _known(self, principal: Principal, file_id: str, tenant_id: str = "") -> tuple[MediationStore, ReconciliationSummary]:
        """A stored file of ``tenant_id`` (empty: the caller's own tenant); only the operator may name another tenant."""
        principal.require(Permission.MEDIATION)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        store = self.store_for(tenant)
        summary = store.summary(file_id) if file_id else None
        if summary is None:  # also for another tenant's file: its existence is not disclosed
            raise NotFound("mediation file", file_id)
        return store, summary

    def summary(self, principal: Principal, file_id: str, tenant_id: str = "") -> ReconciliationSummary:
        return self._known(principal, file_id, tenant_id)[1]

    def cdrs(self, principal: Principal, file_id: str, page: int = 500) -> Iterator[list[CdrRow]]:
        store, _ = self._known(principal, file_id)
        return store.cdrs_of_file(file_id, page)

    def rejects(self, principal: Principal, file_id: str, after: int, limit: int, tenant_id: str = "") -> list[RejectedRecord]:
        store, _ = self._known(principal, file_id, tenant_id)
        return store.rejects_of_file(file_id, after, limit)   # one page read, not the whole file's
