"""Proto <-> domain conversions shared by servicers."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from engine.errors import InvalidArgument

E = TypeVar("E", bound=Enum)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


def from_ts(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=timezone.utc)


class EnumMap:
    """Maps a proto enum (``PREFIX_NAME`` values) to a domain enum by name.

    ``*_UNSPECIFIED`` maps to None; a number the proto does not define is an
    INVALID_ARGUMENT naming the field (proto3 enums are open: clients can send any int).
    """

    def __init__(self, proto_enum: object, prefix: str, domain: type[E]) -> None:
        self._to_domain: dict[int, Enum] = {}
        self._to_proto: dict[Enum, int] = {}
        self.names: list[str] = []
        for name, number in proto_enum.items():  # type: ignore[attr-defined]
            short = name[len(prefix):]
            if short == "UNSPECIFIED":
                continue
            member = domain[short]
            self._to_domain[number] = member
            self._to_proto[member] = number
            self.names.append(short)

    def domain(self, number: int, field: str, required: bool = True) -> Enum | None:
        if number == 0:
            if required:
                raise InvalidArgument.field(field, f"must be set: one of {', '.join(self.names)}")
            return None
        try:
            return self._to_domain[number]
        except KeyError:
            raise InvalidArgument.field(field, f"unknown value {number}: expected one of {', '.join(self.names)}") from None

    def lenient(self, number: int) -> Enum | None:
        """None for unspecified or unknown numbers: for fields the use case validates itself,
        so that the caller gets this field's violation together with all the others."""
        return self._to_domain.get(number)

    def proto(self, member: Enum) -> int:
        return self._to_proto[member]
