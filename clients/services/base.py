"""What every service client shares: the page shape, timestamps, enum words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list call; ``next_page_token`` is "" on the last page."""

    items: list[T] = field(default_factory=list)
    next_page_token: str = ""


def timestamp(value: datetime) -> Timestamp:
    """A wire timestamp; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


def enum_number(enum: Any, prefix: str, word: str) -> int:
    """The operator's word for a proto enum value (``"postpaid"`` -> ``PAYMENT_TYPE_POSTPAID``); "" is unspecified.
    An unknown word is a ValueError naming it."""
    return int(enum.Value(f"{prefix}{word.upper().replace('-', '_')}")) if word else 0
