"""Where every input record ended: rejects and the per-file reconciliation summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.mediation.problems import ReconciliationError


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
        data = asdict(self)
        data["raw"] = self.raw.decode("utf-8", "backslashreplace")
        return data


@dataclass(frozen=True)
class FileProblem:
    code: str
    message: str
    line: int
    byte_offset: int


@dataclass
class ReconciliationSummary:
    """Counts for one file.  ``records_in`` always equals the sum of the outcomes (see :meth:`check`).

    ``aggregated`` counts partial records merged into another record's CDR (a call
    split into 3 partials gives 1 normalised + 2 aggregated).
    """

    file_id: str
    file_name: str = ""
    layout: str = ""
    records_in: int = 0
    normalised: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    aggregated: int = 0
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
        return self.normalised + self.filtered_total + self.rejected_total + self.duplicates + self.aggregated

    def check(self) -> None:
        """Raise :class:`ReconciliationError` unless every record is accounted for exactly once."""
        if self.records_in != self.accounted:
            raise ReconciliationError(
                f"{self.file_name or self.file_id}: {self.records_in} records in, {self.accounted} accounted for "
                f"(normalised {self.normalised}, filtered {self.filtered_total}, rejected {self.rejected_total}, "
                f"duplicates {self.duplicates}, aggregated {self.aggregated})"
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
        data = {k: v for k, v in data.items() if k not in ("rejected_total", "filtered_total")}
        problem = data.pop("file_error", None)
        return cls(**data, file_error=FileProblem(**problem) if problem else None)

    def copy(self) -> "ReconciliationSummary":
        return ReconciliationSummary.from_dict(self.as_dict())

    def lines(self) -> list[str]:
        """A short human report (the CLI prints it)."""
        out = [f"file      {self.file_name}  (sha256 {self.file_id[:16]}…, layout {self.layout})"]
        if self.already_ingested:
            out.append("          already ingested: nothing new stored")
        if self.file_error is not None:
            e = self.file_error
            out.append(f"REFUSED   line {e.line}: {e.code}: {e.message}")
        out.append(f"records   {self.records_in}")
        out.append(f"  normalised  {self.normalised}")
        out.append(f"  filtered    {self.filtered_total}" + "".join(f"\n    {k:<20} {v}" for k, v in sorted(self.filtered.items())))
        out.append(f"  rejected    {self.rejected_total}" + "".join(f"\n    {k:<20} {v}" for k, v in sorted(self.rejected.items())))
        out.append(f"  duplicates  {self.duplicates}")
        out.append(f"  aggregated  {self.aggregated}")
        if self.rated or self.unrated:
            out.append(f"rating    {self.rated} rated, {self.unrated} unrated")
        status = "reconciled" if self.records_in == self.accounted else "NOT RECONCILED"
        out.append(f"{status}: {self.records_in} = {self.normalised} + {self.filtered_total} + {self.rejected_total} + {self.duplicates} + {self.aggregated}")
        return out
