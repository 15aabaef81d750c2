"""Hypothesis strategies for any protobuf request, built from its descriptor.

Each field is left unset or given a value a careless or hostile client might send: extreme integers (the
type's bounds, 2^62, negative counts), unknown enum numbers (proto3 enums are open), huge, empty, blank,
control-character and non-ASCII strings, timestamps of year 1 and 9999 and negative nanos, nested messages a
few levels deep, a few repeated entries and map entries.  New messages and fields are covered without
editing this module.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor
HUGE = 100_000   # characters of the longest string sent (a 100 KB layout name, id, path ...)

_INT_BOUNDS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1), F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1), F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1), F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    extremes = [v for v in (0, 1, -1, 2, 3, 60, 3600, 10**6 + 1, 2**31 - 1, -(2**31), 2**32, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), 2**64 - 1)
                if lo <= v <= hi]
    return st.one_of(st.sampled_from(extremes), st.integers(lo, hi), st.integers(max(lo, -1000), min(hi, 1000)))


_STRINGS = st.one_of(
    st.sampled_from(["", " ", "\t", "mno", "mvno-alpha", "mvno-beta", "TP_ALPHA_SIMPLE", "TP_SMART_M", "asterisk", "tap3", "london-pbx", "vp-mno-eur-10", "vp-alpha-eur-10", "ACC-1", "OC_ACTIVATION", "EUR",
                     "+33612345678", "33612345678", "0", "-1", "1e309", "NaN", "../../etc/passwd", "a/../../b.yaml", "x.yaml",
                     "%s%n", "' OR 1=1 --", "\x00", "é€😀", "\u202e", "2026-13-45", "1" * 64]),
    st.text(max_size=40),
    st.builds(lambda n, c: c * n, st.integers(1_000, HUGE), st.sampled_from(["x", "9", "é", "/"])),
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_BOUNDS:
        return _integers(*_INT_BOUNDS[t])
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == F.TYPE_FLOAT else 64)
    if t == F.TYPE_STRING:
        return _STRINGS
    if t == F.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.builds(lambda n: b"\xff" * n, st.integers(1_000, HUGE)),
                         st.sampled_from([b"", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n", b"\x30\x80\x30\x80\x00\x00"]))
    if t == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-5, max(numbers) + 5), st.sampled_from([2**31 - 1, -(2**31)]))
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")


def _timestamp() -> st.SearchStrategy[dict[str, int]]:
    seconds = st.one_of(st.sampled_from([0, -1, -62135596800, -62135596801, 253402300799, 253402300800, 2**62, -(2**62), 2**63 - 1,
                                         1_767_225_600]),
                        st.integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.sampled_from([0, -1, 999_999_999, 1_000_000_000, -(2**31), 2**31 - 1]), st.integers(-(2**31), 2**31 - 1))
    return st.fixed_dictionaries({}, optional={"seconds": seconds, "nanos": nanos})


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def message_values(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of field name -> value for ``descriptor`` (see :func:`fill`)."""
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp()
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
                if value.type == F.TYPE_MESSAGE:
                    continue
                optional[field.name] = st.dictionaries(_scalar(key), _scalar(value), max_size=3)
                continue
            if depth >= 3:
                continue
            inner = message_values(field.message_type, depth + 1)
            optional[field.name] = st.lists(inner, max_size=3) if _is_repeated(field) else inner
        else:
            optional[field.name] = st.lists(_scalar(field), max_size=4) if _is_repeated(field) else _scalar(field)
    return st.fixed_dictionaries({}, optional=optional)


def fill(message: Message, values: dict[str, Any]) -> Message:
    """Set ``values`` (from :func:`message_values`) on ``message``; oneof members set later win, as on the wire."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.type == F.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                getattr(message, name).update(value)
            elif _is_repeated(field):
                for item in value:
                    fill(getattr(message, name).add(), item)
            else:
                fill(getattr(message, name), value)
                getattr(message, name).SetInParent()
        elif _is_repeated(field):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def requests(request_class: Any) -> st.SearchStrategy[Message]:
    return message_values(request_class.DESCRIPTOR).map(lambda values: fill(request_class(), values))
