"""Plain JSON-ready rendering of a decoded file, for display and the CLI's ``--json``."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

from .model import Tap3Document
from .validate import event_to_utc


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def to_json(doc: Tap3Document) -> dict[str, Any]:
    """The decoded structure as dicts/lists/str/int (no bytes, no dataclasses).

    Call events also get ``start_utc`` (ISO 8601) when their time stamp resolves.
    """
    out: dict[str, Any] = {"kind": doc.kind, "size": doc.size}
    body = doc.transfer_batch or doc.notification or doc.return_batch or doc.acknowledgement
    out[doc.kind] = _plain(body)
    batch = doc.transfer_batch
    if batch is not None:
        for rendered, event in zip(out[doc.kind]["events"], batch.events):
            rendered["problems"] = [
                {"code": c, "field": f, "message": m, "offset": o} for c, f, m, o in event.problems
            ]
            try:
                rendered["start_utc"] = (
                    event_to_utc(event.start, batch.network).strftime("%Y-%m-%dT%H:%M:%SZ") if event.start else None
                )
            except ValueError:
                rendered["start_utc"] = None
    if doc.skipped:
        out["skipped_elements"] = [{"path": p, "tag": t, "offset": o} for p, t, o in doc.skipped]
    return out
