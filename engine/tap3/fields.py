"""Table-driven reading of TAP/RAP groups: one table per group says, for each tag, which attribute
it fills, how its bytes are read and its TD.57 name (for error paths).

Most TAP groups are flat lists of simple items (BatchControlInfo, AuditControlInfo, a
TaxInformation, a CurrencyConversion ...): they are read by :func:`read_group` with a
:data:`FieldTable` instead of a loop of ``if key == ...`` per group, and lists of such
groups by :func:`read_groups`.  A reader may itself read a nested group (``group(table)``).
Unknown items are skipped, as the extension markers of the TD.57 module allow, and reported
to ``skip`` when given (the document keeps them for display).
"""

from __future__ import annotations

from typing import Callable

from .ber import Tap3DecodeError, ascii_text, bcd, children, digits, integer
from .model import DateTime, DateTimeLong
from . import tags as T

Reader = Callable[[bytes, int, int, str], object]
FieldTable = dict[int, tuple[str, Reader, str]]     # tag key -> (attribute, reader, TD.57 name)
Skip = Callable[[str, int, int], None]              # (path, key, header offset)


def text(buf: bytes, s: int, e: int, _path: str) -> object:
    return ascii_text(buf, s, e)


def number_text(buf: bytes, s: int, e: int, _path: str) -> object:
    return digits(buf, s, e)


def number(buf: bytes, s: int, e: int, _path: str) -> object:
    return integer(buf, s, e)


def bcd_digits(buf: bytes, s: int, e: int, _path: str) -> object:
    return bcd(buf, s, e)


def span(buf: bytes, s: int, e: int, _path: str) -> object:
    """Where the item's value is, for the caller to read in its own context."""
    return (s, e)


_TEXT_READERS = (text, number_text, bcd_digits)


def group(table: FieldTable) -> Reader:
    """A reader of a nested group: its items by ``table``, as a dict."""

    def read(buf: bytes, s: int, e: int, path: str) -> object:
        return read_group(buf, s, e, table, path)

    read.needs_path = True  # type: ignore[attr-defined]
    return read


def groups(item_key: int, table: FieldTable, item_name: str) -> Reader:
    """A reader of a list of groups (each ``item_key``, read by ``table``), as a tuple of dicts."""

    def read(buf: bytes, s: int, e: int, path: str) -> object:
        return tuple(read_groups(buf, s, e, item_key, table, f"{path}.{item_name}"))

    read.empty = ()  # type: ignore[attr-defined]
    read.needs_path = True  # type: ignore[attr-defined]
    return read


def defaults(table: FieldTable) -> dict[str, object]:
    """What an absent item reads as: "" for text, () for lists, None for the rest."""
    return {attr: "" if reader in _TEXT_READERS else getattr(reader, "empty", None) for attr, reader, _name in table.values()}


_DEFAULTS: dict[int, tuple[FieldTable, dict[str, object]]] = {}   # id(table) -> (table, its defaults)


def read_group(buf: bytes, vs: int, ve: int, table: FieldTable, path: str, skip: Skip | None = None) -> dict[str, object]:
    cached = _DEFAULTS.get(id(table))
    if cached is None or cached[0] is not table:   # tables are module constants: computed once each
        cached = _DEFAULTS[id(table)] = (table, defaults(table))
    values = dict(cached[1])
    for key, hs, s, e in children(buf, vs, ve):
        spec = table.get(key)
        if spec is None:
            if skip is not None:
                skip(path, key, hs)
            continue
        attr, reader, name = spec
        # the item's path is only made for readers that report errors with it (most never fail that way)
        values[attr] = reader(buf, s, e, f"{path}.{name}" if getattr(reader, "needs_path", False) else path)
    return values


def read_groups(buf: bytes, vs: int, ve: int, item_key: int, table: FieldTable, path: str,
                skip: Skip | None = None) -> list[dict[str, object]]:
    """Every ``item_key`` element of a list, each read by ``table`` (with its header offset as ``_at``);
    ``skip`` hears of other elements in the list (unknown items inside an element are ignored)."""
    out = []
    for key, hs, s, e in children(buf, vs, ve):
        if key != item_key:
            if skip is not None:
                skip(path, key, hs)
            continue
        values = read_group(buf, s, e, table, path)
        values["_at"] = hs
        out.append(values)
    return out


# ---------------------------------------------------------------- time stamps

DATE_TIME_LONG: FieldTable = {
    T.LOCAL_TIME_STAMP: ("local", number_text, "localTimeStamp"),
    T.UTC_TIME_OFFSET: ("offset", text, "utcTimeOffset"),
}
DATE_TIME: FieldTable = {
    T.LOCAL_TIME_STAMP: ("local", number_text, "localTimeStamp"),
    T.UTC_TIME_OFFSET_CODE: ("code", number, "utcTimeOffsetCode"),
}


def date_time_long(buf: bytes, vs: int, ve: int, path: str) -> DateTimeLong:
    """DateTimeLong (control and audit blocks): both items are mandatory, or the file is refused."""
    v = read_group(buf, vs, ve, DATE_TIME_LONG, path)
    if not v["local"] or not v["offset"]:
        raise Tap3DecodeError("missing-field", vs, "time stamp lacks localTimeStamp or utcTimeOffset", path)
    return DateTimeLong(v["local"], v["offset"])  # type: ignore[arg-type]


date_time_long.needs_path = True  # type: ignore[attr-defined]


def date_time(buf: bytes, vs: int, ve: int, path: str) -> DateTime:
    """DateTime (call events): a missing item is the event's problem, found by validation."""
    v = read_group(buf, vs, ve, DATE_TIME, path)
    return DateTime(v["local"], v["code"])  # type: ignore[arg-type]


def operator_spec(buf: bytes, vs: int, ve: int, _path: str) -> tuple[str, ...]:
    return tuple(ascii_text(buf, s, e) for key, _h, s, e in children(buf, vs, ve) if key == T.OPERATOR_SPEC_INFORMATION)


operator_spec.empty = ()  # type: ignore[attr-defined]
