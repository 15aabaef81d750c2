"""Where every input record ended: rejects and the per-file reconciliation summary."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from engine.mediation.problems import ReconciliationError

NON_BILLABLE_LEG = "(non-billable leg)"   # the id a layout's leg rule drops records under (engine.mediation.legs)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """One record that could not be mediated, with what is needed to fix and resubmit it."""

    file_id: str
    record_no: int        # 1-based count of records in the file (header rows excluded)
    line: int             # first physical line of the record, 1-based
    byte_offset: int      # where the record starts in the file
    code: str             # stable reason code, e.g. "value.bad-timestamp", "record.column-count"
    field: str            # the CDR field or column at fault; "record" for the whole record
    reason: str
    raw: bytes            # the original bytes, exactly as in the file (line breaks included)
    raw_truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        """A JSON-able form: ``raw`` as text for people, plus ``raw_base64`` (the exact bytes) when
        they are not UTF-8 (a Latin-1 byte, a BER record)."""
        data = asdict(self)
        try:
            data["raw"] = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            data["raw"] = self.raw.decode("utf-8", "backslashreplace")
            data["raw_base64"] = base64.b64encode(self.raw).decode("ascii")
        return data


@dataclass(frozen=True)
class FileProblem:
    code: str
    message: str
    line: int
    byte_offset: int

    def as_json(self, file_id: str) -> dict[str, Any]:
        """A line of the rejects output for a refused file: the whole file, with why."""
        return {"file_id": file_id, "level": "file", "code": self.code, "reason": self.message, "line": self.line,
                "byte_offset": self.byte_offset}


def refused_at(line: int, byte_offset: int) -> str:
    """Where a refused file's problem is: its line in a text file; in a binary one (TAP), which has no lines (0), the
    byte offset ``rulebill tap3 decode`` names too."""
    return f"line {line}" if line else f"byte {byte_offset}"


@dataclass
class ReconciliationSummary:
    """Counts for one file.  ``records_in`` always equals the sum of the outcomes (see :meth:`check`).

    ``aggregated`` counts partial records merged into another record's CDR (a call
    split into 3 partials gives 1 normalised + 2 aggregated); ``non_billable_legs`` the
    records a layout's leg rule recognised as another leg of a call billed once.

    ``file_id`` is the identity of this mediation of the file: its content
    (``content_sha256``), the layout and its version, the source, and (in the store)
    the submitting tenant.  The same bytes sent with another layout or source are
    another mediation, so a file refused for a wrong layout can be sent again.
    """

    file_id: str
    file_name: str = ""
    layout: str = ""
    layout_version: str = ""
    source: str = ""
    content_sha256: str = ""
    records_in: int = 0
    normalised: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    aggregated: int = 0
    non_billable_legs: int = 0
    header_rows: int = 0
    blank_lines: int = 0
    bytes_in: int = 0
    file_error: FileProblem | None = None
    complete: bool = False
    already_ingested: bool = False
    rated: int = 0        # normalised CDRs rated when the submitter asked for rating (not part of the reconciliation)
    unrated: int = 0      # ... and those rating could not price (no plan, unknown destination, another tenant's)

    @property
    def filtered_total(self) -> int:
        return sum(self.filtered.values())

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def accounted(self) -> int:
        return self.normalised + self.filtered_total + self.rejected_total + self.duplicates + self.aggregated + self.non_billable_legs

    def add_dropped(self, dropped: Mapping[str, int]) -> None:
        """Records a mapper dropped, by filter id; the leg rule's go under their own heading."""
        filtered = self.filtered
        for key, count in dropped.items():
            if key == NON_BILLABLE_LEG:
                self.non_billable_legs += count
            else:
                filtered[key] = filtered.get(key, 0) + count

    def check(self) -> None:
        """Raise :class:`ReconciliationError` unless every record is accounted for exactly once."""
        if self.records_in != self.accounted:
            raise ReconciliationError(
                f"{self.file_name or self.file_id}: {self.records_in} records in, {self.accounted} accounted for "
                f"(normalised {self.normalised}, filtered {self.filtered_total}, rejected {self.rejected_total}, "
                f"duplicates {self.duplicates}, aggregated {self.aggregated}, non-billable legs {self.non_billable_legs})"
            )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rejected_total"] = self.rejected_total
        data["filtered_total"] = self.filtered_total
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReconciliationSummary":
        known = {f.name for f in fields(cls)}   # summaries stored by older versions lack the newer counts
        data = {k: v for k, v in data.items() if k in known}
        problem = data.pop("file_error", None)
        return cls(**data, file_error=FileProblem(**problem) if problem else None)

    def copy(self) -> "ReconciliationSummary":
        return ReconciliationSummary.from_dict(self.as_dict())

    def lines(self) -> list[str]:
        """A short human report (the CLI prints it)."""
        layout = f"{self.layout}@{self.layout_version}" if self.layout_version else self.layout
        origin = f", source {self.source}" if self.source else ""
        out = [f"file      {self.file_name}  (sha256 {(self.content_sha256 or self.file_id)[:16]}…, layout {layout}{origin})"]
        if self.already_ingested:
            out.append("          already ingested: nothing new stored")
        if self.file_error is not None:
            e = self.file_error
            out.append(f"REFUSED   {refused_at(e.line, e.byte_offset)}: {e.code}: {e.message}")
        out.append(f"records   {self.records_in}")
        out.append(f"  normalised  {self.normalised}")
        out.append(f"  filtered    {self.filtered_total}" + "".join(f"\n    {k:<20} {v}" for k, v in sorted(self.filtered.items())))
        out.append(f"  rejected    {self.rejected_total}" + "".join(f"\n    {k:<20} {v}" for k, v in sorted(self.rejected.items())))
        out.append(f"  duplicates  {self.duplicates}")
        out.append(f"  aggregated  {self.aggregated}")
        out.append(f"  non-billable legs  {self.non_billable_legs}")
        if self.rated or self.unrated:
            out.append(f"rating    {self.rated} rated, {self.unrated} unrated")
        status = "reconciled" if self.records_in == self.accounted else "NOT RECONCILED"
        out.append(f"{status}: {self.records_in} = {self.normalised} + {self.filtered_total} + {self.rejected_total} + {self.duplicates}"
                   f" + {self.aggregated} + {self.non_billable_legs}")
        return out
