"""How the CLI prints: readable tables by default, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _short_enum(value: Any) -> Any:
    # ROLE_CSR -> CSR, SUBSCRIBER_STATUS_ACTIVE -> ACTIVE: tables show the operator's word only
    if isinstance(value, str) and value.isupper() and "_" in value:
        for marker in ("_STATUS_", "_STATE_", "_KIND_", "_TYPE_", "ROLE_", "_SERVICE_", "_DIRECTION_", "_ACTION_"):
            if marker in value:
                return value.split(marker, 1)[1]
    return value


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: Any = None) -> None:
    out = out or sys.stdout
    if not rows:
        print("(none)", file=out)
        return
    cells = [[str(_short_enum(r.get(c, ""))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def emit(messages: Iterable[Message], columns: Sequence[str], as_json: bool, key: str = "items") -> None:
    rows = [as_dict(m) for m in messages]
    if as_json:
        print(json.dumps(rows if key == "items" else {key: rows}, indent=2))
    else:
        print_table(rows, columns)


def emit_one(message: Message, as_json: bool) -> None:
    data = as_dict(message)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    width = max((len(k) for k in data), default=0)
    for k, v in data.items():
        print(f"{k.ljust(width)}  {_short_enum(v) if not isinstance(v, (list, dict)) else json.dumps(v)}")
