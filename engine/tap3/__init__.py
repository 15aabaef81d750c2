"""TAP 3.12 (GSMA TD.57) and RAP (TD.32) files: decode, validate, convert to normalised CDRs.

    doc = decode_file(data)             # Tap3DecodeError (code, offset) when undecodable
    issues = validate(doc)              # fatal / record / warning Tap3Issue list
    cdrs, rejects = to_cdrs(doc)        # MediatedCdr list + RecordReject list
    to_json(doc)                        # for display

:func:`process_file` does all three and says whether clearing accepts the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.cdr import MediatedCdr

from .ber import Tap3DecodeError
from .convert import RecordReject, to_cdrs, to_micros
from .decode import decode_file
from .model import (
    AccountingInfo,
    Acknowledgement,
    AuditControlInfo,
    BatchControlInfo,
    CallEvent,
    EventKind,
    NetworkInfo,
    Notification,
    ReturnBatch,
    Tap3Document,
    TransferBatch,
)
from .render import to_json
from .validate import FATAL, RECORD, WARNING, Tap3Issue, validate


@dataclass
class Tap3Outcome:
    """A file through decode, validation and conversion.

    ``accepted`` is False when the file is refused as a whole (``reason`` says
    why, in one line); then ``cdrs`` is empty and nothing should be stored.
    """

    accepted: bool
    reason: str = ""
    document: Tap3Document | None = None
    issues: list[Tap3Issue] = field(default_factory=list)
    cdrs: list[MediatedCdr] = field(default_factory=list)
    rejects: list[RecordReject] = field(default_factory=list)


def process_file(data: bytes) -> Tap3Outcome:
    try:
        doc = decode_file(data)
    except Tap3DecodeError as exc:
        return Tap3Outcome(False, str(exc))
    issues = validate(doc)
    fatal = [i for i in issues if i.severity == FATAL]
    if fatal:
        return Tap3Outcome(False, fatal[0].line(), doc, issues)
    cdrs, rejects = to_cdrs(doc)
    return Tap3Outcome(True, "", doc, issues, cdrs, rejects)


__all__ = [
    "AccountingInfo", "Acknowledgement", "AuditControlInfo", "BatchControlInfo", "CallEvent", "EventKind",
    "FATAL", "NetworkInfo", "Notification", "RECORD", "RecordReject", "ReturnBatch", "Tap3DecodeError",
    "Tap3Document", "Tap3Issue", "Tap3Outcome", "TransferBatch", "WARNING", "decode_file", "process_file",
    "to_cdrs", "to_json", "to_micros", "validate",
]
