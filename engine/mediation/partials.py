"""Partial records: a long call the switch wrote as several records, merged into one CDR.

Records share the layout's ``partials.key``, carry a sequence number 1..n and the
last one carries a final marker.  A call is complete when its final partial has
arrived and every sequence number up to it is present; then the partials become
one CDR: start time of partial 1, durations and volumes summed,
identity from the key.  The other n-1 records count as ``aggregated``.  A sequence
number seen twice is a duplicate; partials still open at the end of the file are
rejected (``partial.incomplete``) with their original bytes.
"""

from __future__ import annotations

from typing import Callable

from engine.mediation.mapper import POSITION, PartialInfo
from engine.mediation.ports import PendingRecord
from engine.mediation.rows import CdrRow

_SUMMED = [POSITION[f] for f in ("duration_seconds", "volume_up_bytes", "volume_down_bytes")]  # one call: event_count stays 1
_ID, _ORIGIN = POSITION["cdr_id"], POSITION["origin_id"]


class PartialAssembler:
    def __init__(self, identity: Callable[[str], str]) -> None:
        self.identity = identity
        self.groups: dict[str, dict[int, tuple[CdrRow, PendingRecord]]] = {}
        self.final_seq: dict[str, int] = {}

    def add(self, info: PartialInfo, row: CdrRow, record: PendingRecord) -> tuple[str, CdrRow | None, int]:
        """("open"|"duplicate"|"merged", merged row, records merged)."""
        group = self.groups.setdefault(info.key, {})
        if info.sequence in group:
            return ("duplicate", None, 0)
        group[info.sequence] = (row, record)
        if info.final:
            self.final_seq[info.key] = info.sequence
        last = self.final_seq.get(info.key)
        if last is None or len(group) != last or any(s not in group for s in range(1, last + 1)):
            return ("open", None, 0)
        del self.groups[info.key]
        del self.final_seq[info.key]
        parts = [group[s][0] for s in sorted(group)]
        return ("merged", self._merge(info.key, parts), len(parts))

    def _merge(self, key: str, parts: list[CdrRow]) -> CdrRow:
        merged = list(parts[0])
        for i in _SUMMED:
            merged[i] = sum(p[i] for p in parts)
        merged[_ORIGIN] = key
        merged[_ID] = self.identity(key)
        return tuple(merged)

    def pending(self) -> tuple[PendingRecord, ...]:
        return tuple(rec for group in self.groups.values() for _, rec in group.values())

    def drain(self) -> list[PendingRecord]:
        """Every record still open (end of file): each will be rejected."""
        out = sorted(self.pending(), key=lambda r: r.record_no)
        self.groups.clear()
        self.final_seq.clear()
        return out
