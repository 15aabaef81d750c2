"""Declared bounds of one CDR: what rating accepts, so the work of one request stays bounded.

A CDR outside these bounds is refused before any pricing: over gRPC with
``INVALID_ARGUMENT`` naming the field, in a file or a stored chunk as a
``rejected`` record with the reason.  The numeric limits come from settings
(``cdr_max_call_seconds``, ``cdr_max_volume_bytes``, ``cdr_max_events``); the
text lengths are those of the stored CDR columns.  Within them, the cost of
rating one CDR does not grow with its duration (see engine.rating.bandclock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from engine.money import MAX_AMOUNT_MICROS

# earliest and latest start times rating accepts (a typo'd year is refused, not priced)
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
EARLIEST_EPOCH = int(EARLIEST.timestamp())
LATEST_EPOCH = int(LATEST.timestamp())

# longest text per field (the mediated_cdrs columns); attributes: entries, key and value lengths
TEXT_LIMITS = {
    "cdr_id": 64, "source": 64, "origin_id": 255, "a_number": 64, "b_number": 255, "imsi": 15, "visited_network": 16,
    "supplementary_code": 16, "charge_currency": 3, "tenant": 40,
}
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 256
MAX_CHARGE_MICROS = MAX_AMOUNT_MICROS   # a charge already on the record (TAP): the bound of every amount


@dataclass(frozen=True)
class CdrLimits:
    max_call_seconds: int = 48 * 3600            # a voice call: 48 hours
    max_volume_bytes: int = 10**12               # a data session, up plus down: 1 TB
    max_events: int = 100_000                    # SMS/MMS/supplementary events in one record

    @classmethod
    def from_settings(cls, settings: Any) -> "CdrLimits":
        return cls(settings.cdr_max_call_seconds, settings.cdr_max_volume_bytes, settings.cdr_max_events)

    def max_units(self, service: str) -> int:
        if service == "voice":
            return self.max_call_seconds
        if service == "data":
            return self.max_volume_bytes
        return self.max_events

    def numeric_problems(self, duration: int, up: int, down: int, events: int, epoch: int) -> Iterator[tuple[str, str]]:
        """(field, message) for each numeric field out of bounds; negative values included."""
        if not 0 <= duration <= self.max_call_seconds:
            yield "duration_seconds", f"{duration} is outside 0..{self.max_call_seconds} s (setting cdr_max_call_seconds)"
        for name, value in (("volume_up_bytes", up), ("volume_down_bytes", down)):
            if not 0 <= value <= self.max_volume_bytes:
                yield name, f"{value} is outside 0..{self.max_volume_bytes} bytes (setting cdr_max_volume_bytes)"
        if 0 <= up <= self.max_volume_bytes and 0 <= down <= self.max_volume_bytes and up + down > self.max_volume_bytes:
            yield "volume_down_bytes", f"up plus down is {up + down} bytes, above {self.max_volume_bytes} (setting cdr_max_volume_bytes)"
        if not 0 <= events <= self.max_events:
            yield "event_count", f"{events} is outside 0..{self.max_events} (setting cdr_max_events)"
        if not EARLIEST_EPOCH <= epoch < LATEST_EPOCH:
            yield "start_time", f"must be between {EARLIEST.date()} and {LATEST.date()}"

    def problems(self, cdr: Any) -> list[tuple[str, str]]:
        """The bounds on rating work a MediatedCdr breaks (usage and start time), as (field, message)."""
        return list(self.numeric_problems(cdr.duration_seconds, cdr.volume_up_bytes, cdr.volume_down_bytes, cdr.event_count,
                                          int(cdr.start_time.timestamp()) if cdr.start_time.tzinfo else 0))

    def wire_problems(self, cdr: Any) -> list[tuple[str, str]]:
        """Every bound a CDR arriving over the wire breaks: usage, start time, text lengths, attributes, charge.

        Negative usage is not among them: that is an impossible CDR, rated ``rejected`` with its reason like a bad
        record in a file, so one such CDR does not refuse the chunk it came in."""
        out = [(f, m) for f, m in self.problems(cdr) if not m.startswith("-")]
        for name, limit in TEXT_LIMITS.items():
            value = getattr(cdr, name)
            if len(value) > limit:
                out.append((name, f"{len(value)} characters, at most {limit}"))
        if cdr.charge_micros is not None and abs(cdr.charge_micros) > MAX_CHARGE_MICROS:
            out.append(("charge_micros", f"beyond {MAX_CHARGE_MICROS} micro-units"))
        attributes = cdr.attributes
        if len(attributes) > MAX_ATTRIBUTES:
            out.append(("attributes", f"{len(attributes)} entries, at most {MAX_ATTRIBUTES}"))
        elif any(len(k) > MAX_ATTRIBUTE_KEY or len(v) > MAX_ATTRIBUTE_VALUE for k, v in attributes.items()):
            out.append(("attributes", f"keys at most {MAX_ATTRIBUTE_KEY} and values at most {MAX_ATTRIBUTE_VALUE} characters"))
        return out


DEFAULT_LIMITS = CdrLimits()

__all__ = ["CdrLimits", "DEFAULT_LIMITS", "EARLIEST", "LATEST", "TEXT_LIMITS"]
