"""Normalised CDR rows: the mediation hot path's tuples, and MediatedCdr built from them on demand.

A row holds the fields of :class:`engine.cdr.MediatedCdr` in :data:`engine.cdr.COLUMNS`
order, with ``start_time`` as ISO 8601 UTC text, service and direction as their
values and attributes in the ``k=v;k=v`` file form: exactly what
:func:`engine.cdr.write_cdrs` writes, so a row is written without building an object.
"""

from __future__ import annotations

from engine.cdr import COLUMNS, MediatedCdr, from_row, to_row

CdrRow = tuple

_TEXT_FORM = tuple(COLUMNS)


def row_to_cdr(row: CdrRow) -> MediatedCdr:
    """Build (and validate) the MediatedCdr a row stands for."""
    return from_row(dict(zip(_TEXT_FORM, row_text(row))))


def cdr_to_row(cdr: MediatedCdr) -> CdrRow:
    text = to_row(cdr)
    out: list[object] = []
    for name, value in zip(COLUMNS, text):
        if name in ("duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count"):
            out.append(int(value))
        elif name == "charge_micros":
            out.append(int(value) if value else None)
        else:
            out.append(value)
    return tuple(out)


def row_text(row: CdrRow) -> list[str]:
    """The row as the text cells of the normalised CDR file."""
    return ["" if v is None else v if isinstance(v, str) else str(v) for v in row]
